//! The vault suite on a `FileStore` in a temp dir, plus file-vault specifics.

use crate::vault_suite;

use std::sync::Arc;

use ferry::vault::{FileStore, Vault};
use vault_suite::{Crypt, Fx};

fn file_store() -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::new(dir.path()).unwrap());
    Fx {
        store,
        _guard: Box::new(dir),
    }
}

vault_suite::instantiate!(file_store, ferry::vault::ShareVia::Hardlink);

// Cheap on files: the combinations the suite does not instantiate.
#[test]
fn locking_and_resume_plain() {
    vault_suite::locking_and_resume(&file_store, Crypt::Plain);
}

#[test]
fn new_jobs_started_at_once() {
    vault_suite::new_jobs_started_at_once(&file_store, Crypt::Plain);
}

#[test]
fn refuses_changed_local_file_x25519() {
    vault_suite::refuses_changed_local_file(&file_store, Crypt::X25519);
}

/// `Vault::open` from a profile: file URL, encryption settings, relative identity path.
#[test]
fn open_from_profile() {
    use age::secrecy::ExposeSecret;
    let dir = tempfile::tempdir().unwrap();
    let id = age::x25519::Identity::generate();
    std::fs::write(
        dir.path().join("backup.key"),
        format!("# test key\n{}\n", id.to_string().expose_secret()),
    )
    .unwrap();
    let root = dir.path().join("vault");
    let toml = format!(
        "[vaults.main]\nurl = \"file://{}\"\nrecipients = [\"{}\"]\nidentity = \"file:backup.key\"\n",
        root.display(),
        id.to_public()
    );
    let cfg = ferry::config::Config::parse(&toml, "ferry.toml", dir.path()).unwrap();
    let v = Vault::open(cfg.vault("main").unwrap()).unwrap();
    assert_eq!(
        v.describe(),
        format!("file://{} (age-x25519)", root.display())
    );
    let job = v
        .create_job(
            "j",
            chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
            Default::default(),
        )
        .unwrap();
    let a = vault_suite::artifact(
        ferry::artifact::ArtifactKind::Integration,
        "I",
        "01.00.0000",
        b"data",
    );
    job.store(&a).unwrap();
    let m = job.finish().unwrap();
    assert_eq!(m.ferry_version, env!("CARGO_PKG_VERSION"));
    let r = v.open_job(&m.path).unwrap();
    let got = r.fetch(&m.entries[0]).unwrap();
    assert_eq!(std::fs::read(got.path()).unwrap(), b"data");
    assert!(
        root.join("OIC_Backups/2026/11/26/j/Integrations/I_01.00.0000.iar.age")
            .is_file()
    );

    // Typos in settings are refused rather than silently ignored.
    let bad = format!(
        "[vaults.main]\nurl = \"file://{}\"\nrecipient = [\"x\"]\n",
        root.display()
    );
    let e = ferry::config::Config::parse(&bad, "ferry.toml", dir.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("`vaults.main.recipient`: unknown key"), "{e}");
    // Bad recipient, missing passphrase env var.
    let bad = format!(
        "[vaults.main]\nurl = \"file://{}\"\nrecipients = [\"age1nope\"]\n",
        root.display()
    );
    let cfg = ferry::config::Config::parse(&bad, "ferry.toml", dir.path()).unwrap();
    let e = Vault::open(cfg.vault("main").unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("vaults.main.recipients") && e.contains("age1nope"),
        "{e}"
    );
    let bad = format!(
        "[vaults.main]\nurl = \"file://{}\"\npassphrase_secret = \"env:FERRY_TEST_UNSET_PASS\"\n",
        root.display()
    );
    let cfg = ferry::config::Config::parse(&bad, "ferry.toml", dir.path()).unwrap();
    let e = Vault::open(cfg.vault("main").unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("FERRY_TEST_UNSET_PASS") && e.contains("passphrase_secret"),
        "{e}"
    );
    // Relative file URLs are refused.
    let bad = "[vaults.main]\nurl = \"file://relative/path\"\n";
    let cfg = ferry::config::Config::parse(bad, "ferry.toml", dir.path()).unwrap();
    assert!(Vault::open(cfg.vault("main").unwrap()).is_err());
}

/// resume does not take over the lock of a run that is still alive on this machine.
#[test]
fn resume_refuses_a_live_lock_holder() {
    let fx = file_store();
    let v = vault_suite::vault(fx.store.clone(), Crypt::Plain);
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
    let jp = Vault::job_path("busy", day).unwrap();
    fx.store.create_dir_all(&jp).unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    // A live process that is not us: our parent (cargo or the shell).
    let ppid = std::os::unix::process::parent_id();
    let lock = format!(
        r#"{{"host":"{host}","pid":{ppid},"run_by":"someone","started_at":"2026-11-26T10:00:00Z"}}"#
    );
    fx.store
        .write_small(&format!("{jp}/.lock"), lock.as_bytes())
        .unwrap();
    let meta = ferry::vault::JobMeta {
        resume: true,
        ..Default::default()
    };
    let e = v.create_job("busy", day, meta.clone()).unwrap_err();
    assert!(matches!(e, ferry::vault::VaultError::Locked { .. }), "{e}");
    assert!(
        e.to_string().contains("still running") && e.to_string().contains("someone"),
        "{e}"
    );
    // A dead holder (no such pid) is taken over.
    let lock = format!(
        r#"{{"host":"{host}","pid":999999999,"run_by":"someone","started_at":"2026-11-26T10:00:00Z"}}"#
    );
    fx.store
        .write_small(&format!("{jp}/.lock"), lock.as_bytes())
        .unwrap();
    let job = v.create_job("busy", day, meta).unwrap();
    job.finish().unwrap();
}
