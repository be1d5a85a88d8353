//! The vault suite against a real S3-compatible server on loopback (Garage, started by
//! `.ci/garage.sh`, TEST_S3_* variables), plus object-storage specifics: multipart uploads,
//! abandoned uploads, credentials.
//!
//! Without TEST_S3_ENDPOINT the tests fail, unless FERRY_ALLOW_SKIP=1 (then they print SKIP).

use crate::support;
use crate::vault_suite;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use ferry::config::Secret;
use ferry::vault::{S3Store, Store};
use support::vaults::{S3Env, s3_config as config, unique};
use vault_suite::{Fx, bytes};

type Env = S3Env;

/// Garage's settings, or: a failure, or (FERRY_ALLOW_SKIP=1 outside CI) a SKIP and return.
macro_rules! need_env {
    () => {
        match support::vaults::s3_env(module_path!()) {
            Some(e) => e,
            None => return,
        }
    };
}

fn s3_store(e: &Env) -> Fx {
    let store =
        Arc::new(S3Store::connect(config(e, &unique("t/vault"))).expect("connect to Garage"));
    Fx {
        store,
        _guard: Box::new(()),
    }
}

vault_suite::instantiate!(
    {
        let e = need_env!();
        move || s3_store(&e)
    },
    ferry::vault::ShareVia::Reference
);

/// The object's ETag as the server reports it (multipart ETags end in `-PARTS`).
fn etag(e: &Env, prefix: &str, key: &str) -> String {
    use object_store::ObjectStoreExt;
    let c = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(&e.bucket)
        .with_region(&e.region)
        .with_endpoint(&e.endpoint)
        .with_allow_http(true)
        .with_access_key_id(&e.key_id)
        .with_secret_access_key(&e.secret)
        .build()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let path = object_store::path::Path::from(format!("{prefix}/{key}"));
    rt.block_on(c.head(&path)).unwrap().e_tag.unwrap()
}

/// A file bigger than a part goes up as a multipart upload and reads back whole.
#[test]
fn big_file_goes_up_in_parts() {
    let e = need_env!();
    let prefix = unique("t/multipart");
    let mut cfg = config(&e, &prefix);
    cfg.part_size = 5 * 1024 * 1024;
    let st = S3Store::connect(cfg).unwrap();
    let data = bytes(12 * 1024 * 1024 + 5, 7);
    let mut w = st.create("big.bin").unwrap();
    for c in data.chunks(1024 * 1024) {
        w.write_all(c).unwrap();
    }
    w.finish().unwrap();
    assert_eq!(st.stat("big.bin").unwrap(), Some(data.len() as u64));
    assert_eq!(st.read_small("big.bin").unwrap(), data);
    let tag = etag(&e, &prefix, "big.bin");
    assert!(
        tag.trim_matches('"').ends_with("-3"),
        "3 parts of 5 MiB: {tag}"
    );
    // A small file is a single PUT.
    st.write_small("small.bin", b"tiny").unwrap();
    let tag = etag(&e, &prefix, "small.bin");
    assert!(!tag.contains('-'), "{tag}");
    // Folders are prefixes: listed, stat-able, gone with their last object.
    st.write_small("dir/sub/f", b"x").unwrap();
    let names: Vec<(String, bool)> = st
        .list("")
        .unwrap()
        .into_iter()
        .map(|d| (d.name, d.is_dir))
        .collect();
    assert_eq!(
        names,
        vec![
            ("big.bin".into(), false),
            ("dir".into(), true),
            ("small.bin".into(), false)
        ]
    );
    assert_eq!(st.stat("dir").unwrap(), Some(0));
    st.remove_tree("dir").unwrap();
    assert_eq!(st.stat("dir").unwrap(), None);
    assert!(st.list("nothing/here").unwrap().is_empty());
}

/// A writer dropped mid-upload leaves no object behind, and a missing key reads as not found.
#[test]
fn abandoned_upload_leaves_nothing() {
    let e = need_env!();
    let mut cfg = config(&e, &unique("t/abandon"));
    cfg.part_size = 5 * 1024 * 1024;
    let st = S3Store::connect(cfg).unwrap();
    let mut w = st.create("half.bin").unwrap();
    w.write_all(&bytes(11 * 1024 * 1024, 3)).unwrap();
    drop(w);
    assert_eq!(st.stat("half.bin").unwrap(), None);
    let e = st.open("half.bin").err().unwrap();
    assert!(e.is_not_found(), "{e}");
    // create_exclusive: only the first one wins.
    assert!(st.create_exclusive("lock", b"one").unwrap());
    assert!(!st.create_exclusive("lock", b"two").unwrap());
    assert_eq!(st.read_small("lock").unwrap(), b"one");
}

/// Wrong credentials are refused at connect, and the message carries no secret.
#[test]
fn wrong_secret_is_refused_without_leaking_it() {
    let e = need_env!();
    let mut cfg = config(&e, &unique("t/auth"));
    cfg.secret_access_key = Some(Secret::new("not-the-secret-0123456789"));
    let err = S3Store::connect(cfg).unwrap_err().to_string();
    assert!(!err.contains("not-the-secret"), "{err}");
    assert!(!err.contains(&e.secret), "{err}");
    assert!(err.contains(&format!("s3://{}", e.bucket)), "{err}");
    // A server that is not there fails within the timeout.
    let mut cfg = config(&e, "x");
    cfg.endpoint = Some("http://127.0.0.1:9".into());
    cfg.timeout = Duration::from_secs(2);
    let t = std::time::Instant::now();
    assert!(S3Store::connect(cfg).is_err());
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
}
