//! Large archives stream through the client with flat memory (own test binary, so the process
//! high-water mark is not polluted by other tests).

mod support;

use ferry::artifact::hash_file;
use ferry::config::InstanceProfile;
use ferry::oic::{IntegrationId, OicClient, archive};
use ferry::sim::Seed;
use support::emulator;

/// Peak resident set size of this process, in KiB (`VmHWM`).
fn peak_rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[tokio::test]
async fn a_large_export_streams_to_disk_with_flat_memory() {
    let h = emulator::start(vec![emulator::spec("dev3", 3, Seed::Sample)]).await;
    let i = h.instance("dev3").unwrap();
    let p = InstanceProfile {
        timeout_secs: 60,
        ..emulator::profile(i)
    };
    let c = OicClient::new(&p).unwrap();
    const SIZE: u64 = 128 * 1024 * 1024;
    assert!(h.set_archive_size("dev3", "HR_EMPLOYEE_SYNC|01.00.0000", SIZE));
    // warm up (token, connection pool, allocator) before taking the baseline
    c.get_integration(&IntegrationId::new("HR_NEW_HIRE", "01.00.0000"))
        .await
        .unwrap();
    let before = peak_rss_kib();
    let a = c
        .export_integration(&IntegrationId::new("HR_EMPLOYEE_SYNC", "01.00.0000"))
        .await
        .expect("export");
    let grown_mib = (peak_rss_kib().saturating_sub(before)) / 1024;
    eprintln!("peak RSS growth: {grown_mib} MiB");
    assert!(a.size >= SIZE * 9 / 10, "{} bytes", a.size);
    assert!(
        grown_mib < 48,
        "peak RSS grew by {grown_mib} MiB for a {} MiB archive",
        a.size / (1024 * 1024)
    );
    assert_eq!(hash_file(a.path()).unwrap(), (a.size, a.sha256.clone()));
    assert_eq!(
        archive::inspect(a.path()).unwrap().id(),
        "HR_EMPLOYEE_SYNC|01.00.0000"
    );
}
