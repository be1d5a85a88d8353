//! The dashboard as a person sees it: `ferry serve` (the binary) over a ledger, driven in headless
//! Chromium through chromedriver (WebDriver, `fantoccini`). A running run's progress moves on the
//! page while steps land (server-sent events, no reload), a failed artifact's root cause shows
//! (hostile markup as text), the error log's filter narrows the rows, and the pages fit a phone's
//! width. Over SQLite and over PostgreSQL (the dashboard reading as the read-only viewer role).
//! Screenshots go to `target/screenshots/dashboard-<backend>-*.png`.
//!
//! Needs `chromium` and `chromedriver` (Debian: chromium, chromium-driver; `tests/run.sh` installs
//! them): without them the test fails, unless FERRY_ALLOW_SKIP=1 (then it says SKIP).
//! Every wait is on what the page shows (WebDriver polls for an element or its text), bounded.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use ferry::ledger::{Ledger, LedgerLocation, Stage};
use serde_json::json;
use support::dashboard::{HOSTILE_CAUSE, seed, step};

const TOKEN: &str = "browser-t0ken";
const WAIT: Duration = Duration::from_secs(20);

/// A child process ended when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` and waits (bounded) for a line of its `stderr` or `stdout` that `pick` accepts;
/// the rest of the output is drained in the background.
fn start_and_read(
    mut cmd: Command,
    stderr: bool,
    pick: fn(&str) -> Option<String>,
) -> (Proc, String) {
    cmd.stdin(Stdio::null());
    if stderr {
        cmd.stderr(Stdio::piped()).stdout(Stdio::null());
    } else {
        cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    }
    let mut child = cmd.spawn().expect("start the process");
    let out: Box<dyn std::io::Read + Send> = if stderr {
        Box::new(child.stderr.take().unwrap())
    } else {
        Box::new(child.stdout.take().unwrap())
    };
    let proc = Proc(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        let mut sent = false;
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if !sent {
                seen.push_str(&line);
                seen.push('\n');
                if let Some(v) = pick(&line) {
                    let _ = tx.send(Ok(v));
                    sent = true;
                }
            }
        }
        if !sent {
            let _ = tx.send(Err(seen));
        }
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(v)) => (proc, v),
        Ok(Err(seen)) => panic!("the process ended without the expected line:\n{seen}"),
        Err(_) => panic!("no expected line within 30 s"),
    }
}

/// Whether the browser and its driver are here; without them the test fails unless
/// FERRY_ALLOW_SKIP=1.
fn browser_present() -> bool {
    let have = |c: &str| {
        Command::new(c)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if have("chromedriver") && have("chromium") {
        return true;
    }
    assert!(
        std::env::var("FERRY_ALLOW_SKIP").as_deref() == Ok("1"),
        "chromium and chromedriver are needed: `apt-get install chromium chromium-driver` (or FERRY_ALLOW_SKIP=1)"
    );
    eprintln!("SKIP: chromium or chromedriver missing (FERRY_ALLOW_SKIP=1)");
    false
}

/// chromedriver on a free loopback port, ready when it says so.
fn chromedriver() -> (Proc, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new("chromedriver");
    cmd.arg(format!("--port={port}"));
    let (p, _) = start_and_read(cmd, false, |l| {
        l.contains("started successfully").then(String::new)
    });
    (p, format!("http://127.0.0.1:{port}"))
}

/// `ferry serve` over the ledger of `ledger_toml` (a `[ledger]` table), from a working folder
/// `dir` with its config.
fn ferry_serve(dir: &Path, ledger_toml: &str) -> (Proc, String) {
    std::fs::write(
        dir.join("ferry.toml"),
        format!("{ledger_toml}\n[serve]\ntoken = \"env:FERRY_TEST_SERVE_TOKEN\"\n"),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.current_dir(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("FERRY_CONFIG")
        .env("NO_COLOR", "1")
        .env("FERRY_TEST_SERVE_TOKEN", TOKEN);
    start_and_read(cmd, true, |l| {
        let rest = l.split("ferry serve: ").nth(1)?;
        Some(
            rest.split_whitespace()
                .next()?
                .trim_end_matches('/')
                .to_string(),
        )
    })
}

/// A headless Chromium session; `phone` emulates a 390 px wide phone screen.
async fn browser(driver: &str, phone: bool) -> Client {
    let mut opts = json!({
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,900", "--hide-scrollbars"],
    });
    if Path::new("/usr/bin/chromium").exists() {
        opts["binary"] = json!("/usr/bin/chromium");
    }
    if phone {
        opts["mobileEmulation"] =
            json!({"deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2.0}});
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), opts);
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(driver)
        .await
        .expect("a WebDriver session")
}

fn shots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let d = target.join("screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Saves `target/screenshots/dashboard-<backend>-<name>`.
async fn shot(c: &Client, backend: &str, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(shots_dir().join(format!("dashboard-{backend}-{name}")), png).unwrap();
}

/// Waits until the element at XPath `xpath` is on the page.
async fn until(c: &Client, xpath: &str) -> fantoccini::elements::Element {
    match c
        .wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(xpath))
        .await
    {
        Ok(e) => e,
        Err(e) => {
            let src = c.source().await.unwrap_or_default();
            panic!("waited for {xpath}: {e}\npage:\n{src}")
        }
    }
}

async fn js(c: &Client, script: &str) -> serde_json::Value {
    c.execute(script, vec![]).await.expect("script")
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn typed(c: &Client, css: &str, text: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

/// The export of the run's `n`th artifact.
fn exported(n: u64) -> ferry::ledger::Step {
    step(n, Stage::Export, &format!("INT_{n}"), "dev", None)
}

/// The page fits the screen's width: nothing to scroll sideways but inside the tables' frames.
async fn fits_width(c: &Client, what: &str) {
    let v = js(
        c,
        "return [document.documentElement.scrollWidth, window.innerWidth];",
    )
    .await;
    let (sw, iw) = (v[0].as_u64().unwrap(), v[1].as_u64().unwrap());
    assert!(sw <= iw, "{what} is {sw} px wide on a {iw} px screen");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_real_browser_over_sqlite() {
    if !browser_present() {
        return;
    }
    let dir = support::tempdir();
    let db = dir.path().join("central.db");
    let writer = Ledger::open_at(&LedgerLocation::Sqlite(db.clone())).unwrap();
    let toml = format!("[ledger]\nurl = \"sqlite:{}\"\n", db.display());
    check("sqlite", dir.path(), writer, &toml).await;
}

/// The shared ledger on PostgreSQL, the dashboard reading it as the read-only viewer role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_real_browser_over_postgres() {
    if !browser_present() {
        return;
    }
    let Some(pg) = support::pg::pg() else { return };
    let pg = std::sync::Arc::new(pg);
    let p = pg.clone();
    let name = tokio::task::spawn_blocking(move || p.fresh_db())
        .await
        .unwrap();
    let writer = Ledger::open_at(&pg.writer_at(&name)).unwrap();
    let dir = support::tempdir();
    std::fs::write(dir.path().join("viewer.pw"), &pg.viewer.1).unwrap();
    let toml = format!(
        "[ledger]\nurl = \"postgres://{}@{}:{}/{name}\"\npassword = \"file:viewer.pw\"\nsslmode = \"require\"\nca_file = \"{}\"\n",
        pg.viewer.0, pg.host, pg.port, pg.ca
    );
    check("postgres", dir.path(), writer, &toml).await;
}

/// Seeds the ledger through `writer`, serves it with `ferry serve` and checks what a person sees.
async fn check(backend: &str, dir: &Path, mut writer: Ledger, ledger_toml: &str) {
    seed(&mut writer);
    let (_serve, base) = ferry_serve(dir, ledger_toml);
    let (_driver, driver_url) = chromedriver();
    let c = browser(&driver_url, false).await;

    // Without the token: the login page, no data.
    c.goto(&format!("{base}/")).await.unwrap();
    until(&c, "//h1[contains(., 'Access token needed')]").await;
    assert!(!c.source().await.unwrap().contains("run-live"));

    // With it: the runs, the running one's progress as the ledger says.
    c.goto(&format!("{base}/?token={TOKEN}")).await.unwrap();
    until(
        &c,
        "//span[@id='t-run-live'][contains(., 'running: 1 of 10 artifacts (1 steps)')]",
    )
    .await;
    assert_eq!(
        js(&c, "return document.getElementById('p-run-live').value;").await,
        1.0
    );
    js(&c, "window.ferryNotReloaded = true; return null;").await;
    shot(&c, backend, "runs-progress-1.png").await;

    // The run advances: the same page (not reloaded) shows it through the event stream.
    for s in 2..=4 {
        writer.insert_step("run-live", &exported(s)).unwrap();
    }
    until(
        &c,
        "//span[@id='t-run-live'][contains(., 'running: 4 of 10 artifacts (4 steps)')]",
    )
    .await;
    for s in 5..=7 {
        writer.insert_step("run-live", &exported(s)).unwrap();
    }
    // A later stage of an artifact already counted moves the steps, not the artifacts.
    writer
        .insert_step("run-live", &step(8, Stage::Import, "ORDERS", "prod", None))
        .unwrap();
    until(
        &c,
        "//span[@id='t-run-live'][contains(., 'running: 7 of 10 artifacts (8 steps)')]",
    )
    .await;
    let v = js(
        &c,
        "var p = document.getElementById('p-run-live'); return [p.value, p.max, window.ferryNotReloaded === true];",
    )
    .await;
    assert!(
        v[0] == 7.0 && v[1] == 10.0 && v[2] == true,
        "progress moved without a reload: {v}"
    );
    shot(&c, backend, "runs-progress-7.png").await;

    // The failed run: its root cause first, hostile markup shown as text, its backup job.
    c.find(Locator::LinkText("run-failed"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let cause = until(&c, "//ul[@id='failures']/li[1]/span[@class='cause']").await;
    assert_eq!(cause.text().await.unwrap(), HOSTILE_CAUSE);
    let first = until(&c, "//ul[@id='failures']/li[1]")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        first.contains("import of BILLING") && first.contains("on prod"),
        "{first}"
    );
    assert_eq!(
        js(
            &c,
            "return document.querySelectorAll('script:not([src])').length;"
        )
        .await,
        0.0,
        "no script from the ledger's text (a finished run's page has none of its own)"
    );
    until(&c, "//td[contains(., '2026/nightly-1')]").await;
    until(&c, "//td[contains(., 'alice')]").await;
    shot(&c, backend, "run-failed-root-cause.png").await;

    // Its report: who ran it, from which instance to which, into which backup job.
    c.find(Locator::LinkText("The run's report"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    for (k, v) in [
        ("Run by", "alice"),
        ("From", "dev"),
        ("To", "prod"),
        ("Backup jobs", "nightly (vault backups): 2026/nightly-1"),
    ] {
        until(&c, &format!("//table[@id='facts']//tr[th='{k}'][td='{v}']")).await;
    }
    let cause = until(&c, "//table[@id='failures']//tr[@class='failure'][1]/td[1]").await;
    assert!(cause.text().await.unwrap().contains(HOSTILE_CAUSE));
    shot(&c, backend, "run-report.png").await;
    c.back().await.unwrap();

    // The error log: both failures, then the filter narrows them.
    c.find(Locator::LinkText("Errors"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(&c, "//p[@id='count'][normalize-space(.)='2 failed steps']").await;
    click(&c, "select[name=stage] option[value=activate]").await;
    click(&c, "#filter button[type=submit]").await;
    until(&c, "//p[@id='count'][normalize-space(.)='1 failed steps']").await;
    let rows = c
        .find(Locator::Id("errors"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        rows.contains("activation refused")
            && rows.contains("PAYROLL")
            && !rows.contains("BILLING"),
        "{rows}"
    );
    assert_eq!(
        js(
            &c,
            "return document.querySelector('select[name=stage]').value;"
        )
        .await,
        "activate",
        "the filter keeps its choice"
    );
    shot(&c, backend, "errors-filter-stage.png").await;
    click(&c, "select[name=stage] option[value='']").await;
    typed(&c, "input[name=artifact]", "bill").await;
    typed(&c, "input[name=instance]", "prod").await;
    click(&c, "#filter button[type=submit]").await;
    until(&c, "//table[@id='errors']//td[contains(., 'BILLING')]").await;
    let rows = c
        .find(Locator::Id("errors"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        rows.contains(HOSTILE_CAUSE) && !rows.contains("PAYROLL"),
        "{rows}"
    );
    shot(&c, backend, "errors-filter-artifact.png").await;
    c.close().await.unwrap();

    // A phone: the same pages fit 390 px; the tables scroll inside their frames.
    let p = browser(&driver_url, true).await;
    p.goto(&format!("{base}/?token={TOKEN}")).await.unwrap();
    until(
        &p,
        "//span[@id='t-run-live'][contains(., 'of 10 artifacts')]",
    )
    .await;
    assert_eq!(js(&p, "return window.innerWidth;").await, 390.0);
    fits_width(&p, "the runs page").await;
    shot(&p, backend, "phone-runs.png").await;
    p.goto(&format!("{base}/runs/run-failed")).await.unwrap();
    until(&p, "//ul[@id='failures']/li[1]/span[@class='cause']").await;
    fits_width(&p, "a run's page").await;
    shot(&p, backend, "phone-run-failed.png").await;
    p.goto(&format!("{base}/errors?stage=import"))
        .await
        .unwrap();
    until(&p, "//p[@id='count'][normalize-space(.)='1 failed steps']").await;
    fits_width(&p, "the error log").await;
    shot(&p, backend, "phone-errors.png").await;
    p.close().await.unwrap();
}
