//! Emulator at scale: `Generated(5000)`.

use crate::support::sim as common;

use std::time::Instant;

use common::*;
use ferry::sim::{self, Seed, SimConfig};
use serde_json::Value;

#[tokio::test]
async fn generated_5000_pages() {
    let h = sim::start(SimConfig {
        instances: vec![spec("big", 3, Seed::Generated(5000))],
        ..SimConfig::default()
    })
    .await
    .expect("start");
    let o = Oic::new(&h, "big").await;
    let t = Instant::now();
    let mut ids = std::collections::HashSet::new();
    let mut offset = 0;
    let mut pages = 0;
    loop {
        let p = o
            .json(&format!("/integrations?limit=1000&offset={offset}"))
            .await;
        assert_eq!(p["totalResults"], 5000);
        let items = p["items"].as_array().expect("items");
        for i in items {
            assert!(ids.insert(i["id"].as_str().expect("id").to_string()));
            assert!(i["lastUpdatedBy"].as_str().is_some_and(|e| e.contains('@')));
        }
        pages += 1;
        offset += items.len();
        if !p["hasMore"].as_bool().expect("hasMore") {
            break;
        }
    }
    assert_eq!(ids.len(), 5000);
    assert_eq!(pages, 5);
    assert!(
        t.elapsed().as_secs() < 60,
        "paging 5000 took {:?}",
        t.elapsed()
    );
    // Realistic mix of statuses and several versions of some codes.
    let act = o
        .json("/integrations?q=%7Bstatus%3A%27ACTIVATED%27%7D&limit=1")
        .await["totalResults"]
        .as_u64()
        .unwrap_or(0);
    assert!(act > 1500 && act < 3500, "{act}");
    assert!(ids.iter().any(|i| i.ends_with("|01.01.0000")));
    // Same seed → same data.
    let h2 = sim::start(SimConfig {
        instances: vec![spec("big", 3, Seed::Generated(5000))],
        ..SimConfig::default()
    })
    .await
    .expect("start");
    let o2 = Oic::new(&h2, "big").await;
    let key = |v: Value| -> Vec<(Value, Value, Value)> {
        v["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|i| {
                        (
                            i["id"].clone(),
                            i["status"].clone(),
                            i["lastUpdated"].clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        key(o.json("/integrations?limit=50").await),
        key(o2.json("/integrations?limit=50").await)
    );
}
