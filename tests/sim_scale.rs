//! Emulator large archives: streamed with flat memory (alone in this binary so RSS is meaningful).

mod support;

use support::sim as common;

use std::io::Write;

use common::*;
use reqwest::{Method, StatusCode};

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn large_archive_streams_with_flat_memory() {
    let h = start().await;
    let dev = Oic::new(&h, "dev").await;
    let size: u64 = std::env::var("SIM_BIG_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
        * 1024
        * 1024;
    assert!(h.set_archive_size("dev", "SCM_ORDER_NOTIFY|01.00.0000", size));
    let before = rss_kb();
    let mut r = dev
        .get("/integrations/SCM_ORDER_NOTIFY%7C01.00.0000/archive")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut file = tempfile::NamedTempFile::new().expect("tmp");
    let mut total = 0u64;
    let mut peak = before;
    while let Some(c) = r.chunk().await.expect("chunk") {
        total += c.len() as u64;
        file.write_all(&c).expect("write");
        peak = peak.max(rss_kb());
    }
    assert!(total > size, "{total}");
    eprintln!(
        "growth {} MB for {} MB",
        (peak.saturating_sub(before)) / 1024,
        total / 1024 / 1024
    );
    let growth_mb = (peak.saturating_sub(before)) / 1024;
    assert!(
        growth_mb < 40,
        "memory grew by {growth_mb} MB while streaming {} MB",
        total / 1024 / 1024
    );
    // The streamed archive is a valid, sealed IAR: it imports elsewhere.
    let bytes = std::fs::read(file.path()).expect("read");
    let z = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).expect("zip");
    assert!(z.len() > 5);
    let other = Oic::new(&h, "empty2").await;
    let before_import = rss_kb();
    assert_eq!(
        other.import(Method::POST, bytes.clone()).await.status(),
        StatusCode::NO_CONTENT
    );
    let import_growth_mb = rss_kb().saturating_sub(before_import) / 1024;
    // The request body is copied once by the client (multipart); the server spools it to disk.
    assert!(
        import_growth_mb < 100,
        "import grew memory by {import_growth_mb} MB"
    );
    // Exported back byte for byte (streamed from the spool file).
    let mut r = other
        .get("/integrations/SCM_ORDER_NOTIFY%7C01.00.0000/archive")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut back = Vec::with_capacity(bytes.len());
    while let Some(c) = r.chunk().await.expect("chunk") {
        back.extend_from_slice(&c);
    }
    assert!(back == bytes, "round trip differs");
    // A tampered large archive is refused with ICS-20099 (streamed integrity check).
    let mut bad = bytes.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x01;
    let r = other.import(Method::PUT, bad).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // The admin endpoint does the same.
    let resp = reqwest::Client::new()
        .post(format!("{}/__sim/archive_size", dev.info.base_url))
        .json(&serde_json::json!({"instance":"dev","id":"NOPE|01.00.0000","bytes":1}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}
