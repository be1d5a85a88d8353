//! Helpers for the ledger, plan, resume and rollback tests: an emulator in the test process, a
//! `ferry.toml` pointing at it (secrets in files), and reading the target's state over plain HTTP.
#![allow(dead_code)]

pub(crate) use crate::support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

#[allow(unused_imports)]
pub use support::{
    api_get, api_url, archive_path, content_digest, list_integrations, sha256_hex, text, token,
};

use ferry::sim::{Seed, SimHandle, SimInstanceInfo};
use serde_json::Value;

/// An emulator (dev and prod) and a working folder with a `ferry.toml` for it.
pub struct Env {
    pub rt: tokio::runtime::Runtime,
    pub sim: SimHandle,
    pub dir: tempfile::TempDir,
}

impl Env {
    /// dev: Gen2 seeded with the sample integrations; prod: OIC 3 with `prod_seed`.
    pub fn start(prod_seed: Seed) -> Env {
        let rt = ferry::cli::runtime().expect("runtime");
        let sim = rt.block_on(super::emulator::start(vec![
            super::sim::spec("dev", 2, Seed::Sample),
            super::sim::spec("prod", 3, prod_seed),
        ]));
        let dir = tempfile::tempdir().expect("tempdir");
        write_config(dir.path(), &sim);
        Env { rt, sim, dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn instance(&self, name: &str) -> SimInstanceInfo {
        self.sim
            .info
            .instances
            .iter()
            .find(|i| i.name == name)
            .expect("instance")
            .clone()
    }

    /// Writes a recipe into the working folder; returns its file name.
    pub fn recipe(&self, name: &str, text: &str) -> String {
        std::fs::write(self.path().join(name), text).expect("write recipe");
        name.to_string()
    }

    /// Runs ferry to its end.
    pub fn ferry(&self, args: &[&str]) -> Output {
        command(self.path(), args).output().expect("run ferry")
    }

    /// Starts ferry in the background.
    pub fn spawn(&self, args: &[&str]) -> Child {
        command(self.path(), args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ferry")
    }

    /// An instance's integrations: id → (status, content digest of its exported archive: two
    /// exports differ byte for byte, as on real OIC; see `ferry::vault::content_hash`).
    pub fn state(&self, name: &str) -> BTreeMap<String, (String, String)> {
        let i = self.instance(name);
        self.rt.block_on(async {
            let mut out = BTreeMap::new();
            for it in list_integrations(&i).await {
                let id = it["id"].as_str().expect("id").to_string();
                let sha = try_export(&i, &id)
                    .await
                    .map(|b| content_digest(&b))
                    .unwrap_or_default();
                out.insert(id, (it["status"].as_str().unwrap_or("").to_string(), sha));
            }
            out
        })
    }

    /// A request to an instance of the emulator (`path` under `/ic/api/integration/v1`).
    pub fn call(
        &self,
        inst: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> u16 {
        let i = self.instance(inst);
        self.rt.block_on(async {
            let tok = token(&i).await;
            let mut url = format!("{}/ic/api/integration/v1{path}", i.base_url);
            if let Some(ii) = &i.integration_instance {
                url.push_str(&format!(
                    "{}integrationInstance={ii}",
                    if url.contains('?') { '&' } else { '?' }
                ));
            }
            let mut rb = reqwest::Client::new().request(method, url).bearer_auth(tok);
            if let Some(b) = body {
                rb = rb.header("X-HTTP-Method-Override", "PATCH").json(&b);
            }
            rb.send().await.expect("request").status().as_u16()
        })
    }

    /// Sets an integration's status on an instance (`ACTIVATED` or `CONFIGURED`).
    pub fn set_status(&self, inst: &str, id: &str, status: &str) {
        let code = self.call(
            inst,
            reqwest::Method::POST,
            &format!("/integrations/{}", id.replace('|', "%7C")),
            Some(serde_json::json!({ "status": status })),
        );
        assert!(code < 300, "set {id} to {status} on {inst}: HTTP {code}");
    }
}

impl Env {
    /// dev's archive of `id` with one more file (`icspackage/prod-note.txt` holding `note`),
    /// sealed again: another archive of the same integration, as a later edit would make.
    pub fn edited_archive(&self, id: &str, note: &str) -> Vec<u8> {
        use ferry::sim::archive;
        let bytes = self
            .rt
            .block_on(try_export(&self.instance("dev"), id))
            .expect("export from dev");
        let mut entries = archive::read_zip(&bytes).expect("read the archive");
        entries.insert(
            "icspackage/prod-note.txt".into(),
            archive::Content::Bytes(note.as_bytes().to_vec()),
        );
        archive::seal_and_zip(entries).expect("seal")
    }

    /// Uploads `bytes` as `id`'s archive on `inst`: `POST` imports, `PUT` replaces.
    pub fn upload_archive(&self, inst: &str, method: reqwest::Method, id: &str, bytes: Vec<u8>) {
        let i = self.instance(inst);
        let what = format!("{method} {id} on {inst}");
        let (code, body) = self.rt.block_on(async {
            let tok = token(&i).await;
            let mut url = format!("{}/ic/api/integration/v1/integrations/archive", i.base_url);
            if let Some(ii) = &i.integration_instance {
                url.push_str(&format!("?integrationInstance={ii}"));
            }
            let part = reqwest::multipart::Part::bytes(bytes)
                .file_name(format!("{}.iar", id.replace('|', "_")));
            let form = reqwest::multipart::Form::new().part("file", part);
            let r = reqwest::Client::new()
                .request(method, url)
                .bearer_auth(tok)
                .multipart(form)
                .send()
                .await
                .expect("upload");
            let code = r.status().as_u16();
            (code, r.text().await.unwrap_or_default())
        });
        assert!(code < 300, "{what}: HTTP {code} {body}");
    }
}

/// The bytes of an integration's archive, or `None` when it cannot be exported (a draft, a
/// locked or prebuilt integration).
pub async fn try_export(i: &SimInstanceInfo, id: &str) -> Option<Vec<u8>> {
    let tok = token(i).await;
    let r = reqwest::Client::new()
        .get(api_url(i, &archive_path(id)))
        .bearer_auth(&tok)
        .send()
        .await
        .ok()?;
    if r.status() != 200 {
        return None;
    }
    Some(r.bytes().await.ok()?.to_vec())
}

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ferry"));
    c.current_dir(dir)
        .args(args)
        .env_remove("FERRY_CONFIG")
        .env_remove("FERRY_PATH")
        .env_remove("FERRY_LEDGER")
        .env("NO_COLOR", "1");
    c
}

/// A `ferry.toml` for the emulator: short retry and resume timings, one profile per instance
/// (secrets in files), vault `backups` in `<dir>/vault`.
pub fn write_config(dir: &Path, sim: &SimHandle) {
    let mut t = String::from("[run]\nretry_base_ms = 5\nresume_grace_ms = 3000\n\n");
    std::fs::create_dir_all(dir.join("secrets")).expect("secrets dir");
    for i in &sim.info.instances {
        let sf = format!("secrets/{}.txt", i.name);
        std::fs::write(dir.join(&sf), &i.client_secret).expect("secret file");
        t.push_str(&format!(
            "[instances.{}]\nbase_url = \"{}\"\ngeneration = {}\n",
            i.name, i.base_url, i.generation
        ));
        if let Some(ii) = &i.integration_instance {
            t.push_str(&format!("integration_instance = \"{ii}\"\n"));
        }
        t.push_str(&format!(
            "token_url = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"file:{sf}\"\nscope = \"{}\"\ntimeout_secs = 30\n\n",
            i.token_url, i.client_id, i.scope
        ));
    }
    let vault = dir.join("vault");
    std::fs::create_dir_all(&vault).expect("vault dir");
    t.push_str(&format!(
        "[vaults.backups]\nurl = \"file://{}\"\n",
        vault.display()
    ));
    std::fs::write(dir.join("ferry.toml"), t).expect("write ferry.toml");
}

/// What `scripts/migrate.rhai` selects from dev: the latest version of each code, without drafts,
/// locked and prebuilt integrations; id → status on dev.
pub fn expected_selection(dev: &[Value]) -> BTreeMap<String, String> {
    let mut latest: BTreeMap<String, &Value> = BTreeMap::new();
    for i in dev {
        let code = i["code"].as_str().unwrap_or("").to_string();
        let newer = latest
            .get(&code)
            .map(|b| b["version"].as_str() < i["version"].as_str())
            .unwrap_or(true);
        if newer {
            latest.insert(code, i);
        }
    }
    latest
        .values()
        .filter(|i| {
            i["status"] != "INPROGRESS" && i["lockedFlag"] != true && i["projectType"] != "PREBUILT"
        })
        .map(|i| {
            (
                i["id"].as_str().unwrap_or("").to_string(),
                i["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The repository's migrate recipe.
pub const MIGRATE: &str = include_str!("../../scripts/migrate.rhai");

/// JSON from a command's stdout.
pub fn json_out(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            text(&o.stdout),
            text(&o.stderr)
        )
    })
}

/// The folder of the only run... or of run `id`.
pub fn run_dir(dir: &Path, id: &str) -> PathBuf {
    dir.join(".ferry").join("runs").join(id)
}

/// Every regular file under `dir`.
pub fn support_files(dir: &Path) -> Vec<PathBuf> {
    support::files_under(dir)
}
