//! `--sandbox`: emulated OIC instances in-process and a local vault, with embedded defaults.
//!
//! * `dev`: an OIC Gen2 instance seeded with sample integrations in several states;
//! * `prod`: an OIC 3 instance with its connections configured and no integrations;
//! * `uat`: an OIC 3 instance seeded like `dev`, plus the project `HR_ONBOARDING` (deployment
//!   `HR-ONB-REL1`), for recipes that move OIC 3 projects;
//! * vault `backups`: `file://<working dir>/.ferry/sandbox/vault`, encrypted with an age key made
//!   on first use (`.ferry/sandbox/vault.key`);
//! * mail goes to `.ferry/sandbox/outbox` as `.eml` files.

use std::path::Path;

use crate::config::{
    Auth, Config, Generation, IdentityProfile, InstanceProfile, MailProfile, Secret, VaultProfile,
    VaultSettings,
};
use crate::sim::{self, Seed, SimConfig, SimHandle, SimInstanceSpec};

/// A running sandbox: the emulator and the config that points at it.
pub struct Sandbox {
    pub sim: SimHandle,
    pub config: Config,
}

/// The sandbox vault encrypts with an age X25519 key made on first use: the public key is the
/// vault's recipient, the private one (`.ferry/sandbox/vault.key`, mode 0600) restores.
fn sandbox_encryption(state_dir: &Path, url: String) -> anyhow::Result<VaultSettings> {
    use age::secrecy::ExposeSecret;
    let key = std::path::absolute(state_dir.join("sandbox").join("vault.key"))?;
    let identity = match std::fs::read_to_string(&key) {
        Ok(text) => text
            .trim()
            .parse::<age::x25519::Identity>()
            .map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?,
        Err(_) => {
            let id = age::x25519::Identity::generate();
            std::fs::create_dir_all(key.parent().unwrap_or(state_dir))?;
            std::fs::write(&key, format!("{}\n", id.to_string().expose_secret()))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
            }
            id
        }
    };
    Ok(VaultSettings {
        url,
        recipients: Some(vec![identity.to_public().to_string()]),
        identity: Some(format!("file:{}", key.display())),
        ..Default::default()
    })
}

/// Starts the emulator and builds the config. `state_dir` is where runs, the vault and the outbox go.
pub async fn start(state_dir: &Path) -> anyhow::Result<Sandbox> {
    start_with(state_dir, default_instances()).await
}

/// The sandbox's instances: `dev` (Gen2, sample), `prod` (OIC 3, connections only), `uat` (OIC 3,
/// sample with a project).
pub fn default_instances() -> Vec<SimInstanceSpec> {
    vec![
        SimInstanceSpec {
            name: "dev".into(),
            generation: 2,
            seed: Seed::Sample,
        },
        SimInstanceSpec {
            name: "prod".into(),
            generation: 3,
            seed: Seed::TargetConnections,
        },
        SimInstanceSpec {
            name: "uat".into(),
            generation: 3,
            seed: Seed::Sample,
        },
    ]
}

/// Starts the emulator with these instances (`ferry test` fixtures choose them).
pub async fn start_with(
    state_dir: &Path,
    instances: Vec<SimInstanceSpec>,
) -> anyhow::Result<Sandbox> {
    let cfg = SimConfig {
        instances,
        ..SimConfig::default()
    };
    let sim = sim::start(cfg).await?;
    let config = config_for(&sim.info, state_dir)?;
    Ok(Sandbox { sim, config })
}

/// A config for a running emulator: one instance profile per emulated instance, vault `backups`.
pub fn config_for(info: &sim::SimInfo, state_dir: &Path) -> anyhow::Result<Config> {
    let mut config = Config {
        file: "<sandbox>".into(),
        state_dir: state_dir.to_path_buf(),
        ..Default::default()
    };
    for i in &info.instances {
        let secret = Secret::new(i.client_secret.clone());
        config.secrets.push(secret.clone());
        if let Some(p) = &i.password {
            config.secrets.push(Secret::new(p.clone()));
        }
        config.instances.insert(
            i.name.clone(),
            InstanceProfile {
                name: i.name.clone(),
                base_url: i.base_url.clone(),
                generation: if i.generation == 2 {
                    Generation::Gen2
                } else {
                    Generation::Gen3
                },
                integration_instance: i.integration_instance.clone(),
                auth: Auth::ClientCredentials {
                    token_url: i.token_url.clone(),
                    client_id: i.client_id.clone(),
                    client_secret: secret,
                    scope: i.scope.clone(),
                },
                timeout_secs: 60,
                reads: Default::default(),
            },
        );
    }
    let vault_dir = std::path::absolute(state_dir.join("sandbox").join("vault"))?;
    std::fs::create_dir_all(&vault_dir)?;
    let url = format!("file://{}", vault_dir.display());
    config.vaults.insert(
        "backups".into(),
        VaultProfile {
            name: "backups".into(),
            url: url.clone(),
            settings: sandbox_encryption(state_dir, url)?,
            base_dir: state_dir.to_path_buf(),
        },
    );
    // Access and notification: the emulator's identity domain with its admin client, and mail
    // written to the outbox folder as .eml files.
    let admin_secret = Secret::new(info.admin_client_secret.clone());
    config.secrets.push(admin_secret.clone());
    config.identities.insert(
        "sandbox".into(),
        IdentityProfile {
            name: "sandbox".into(),
            url: info.identity_url.clone(),
            token_url: format!("{}/oauth2/v1/token", info.identity_url),
            client_id: info.admin_client_id.clone(),
            client_secret: admin_secret,
            scope: info.admin_scope.clone(),
            apps: info
                .instances
                .iter()
                .map(|i| (i.name.clone(), i.idcs_app_name.clone()))
                .collect(),
            timeout_secs: 60,
        },
    );
    config.mail = Some(MailProfile {
        admins: vec!["ops@sandbox.local".into()],
        from: Some("ferry <ferry@sandbox.local>".into()),
        outbox: Some(std::path::absolute(
            state_dir.join("sandbox").join("outbox"),
        )?),
        ..Default::default()
    });
    Ok(config)
}
