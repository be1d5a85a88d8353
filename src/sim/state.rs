//! The emulator's in-memory model: instances, integrations, connections, lookups, tokens.
//!
//! These types are the emulator's own; they are deliberately not shared with `crate::oic`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};

/// Date format of OIC payloads: `yyyy-MM-dd'T'HH:mm:ss.SSS+0000`.
pub fn oic_date(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// Integration lifecycle state (§12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum IntStatus {
    /// Incomplete draft.
    InProgress,
    /// Complete, not active.
    Configured,
    /// Async activation running.
    ActivationInProgress,
    /// Async deactivation running.
    DeactivationInProgress,
    /// Active.
    Activated,
    /// Activation failed.
    FailedActivation,
}

impl IntStatus {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            IntStatus::InProgress => "INPROGRESS",
            IntStatus::Configured => "CONFIGURED",
            IntStatus::ActivationInProgress => "ACTIVATION_INPROGRESS",
            IntStatus::DeactivationInProgress => "DEACTIVATION_INPROGRESS",
            IntStatus::Activated => "ACTIVATED",
            IntStatus::FailedActivation => "FAILEDACTIVATION",
        }
    }
}

/// Connection state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ConnStatus {
    /// Draft, created by an import without credentials.
    InProgress,
    /// Complete and tested.
    Configured,
}

impl ConnStatus {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnStatus::InProgress => "INPROGRESS",
            ConnStatus::Configured => "CONFIGURED",
        }
    }
}

/// A connection used by an integration.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ConnRef {
    /// Connection code.
    pub code: String,
    /// `SOURCE` / `TARGET`.
    pub role: String,
}

/// Where the bytes of an integration export come from.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum ArchiveSource {
    /// Generated from the model on every export (seeded data), with `padding` bytes of extra resource content.
    Generated {
        /// Extra bytes of generated resource content.
        padding: u64,
    },
    /// The archive as it was imported (exported byte for byte).
    Stored(#[serde(with = "super::persist::blob")] Bytes),
    /// A large imported archive spooled to disk (exported byte for byte, streamed).
    Spilled(#[serde(with = "super::persist::file_blob")] std::path::PathBuf),
}

/// State of a schedule, as the recorded 412 messages name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ScheduleState {
    /// Started: runs are produced.
    Active,
    /// Stopped (the state of a new or imported schedule).
    Cancelled,
    /// Paused.
    Hold,
}

impl ScheduleState {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleState::Active => "ACTIVE",
            ScheduleState::Cancelled => "CANCELLED",
            ScheduleState::Hold => "HOLD",
        }
    }
}

/// The schedule of a scheduled integration: its definition (as written by `POST/PUT …/schedule`) and state.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Schedule {
    /// Schedule name.
    pub name: String,
    /// The `frequency` object of a basic schedule (`{"frequencyType":"DAILY","interval":1}`), as JSON text.
    pub frequency: Option<String>,
    /// The iCal expression of an iCal schedule (`FREQ=DAILY;BYHOUR=12;BYMINUTE=20;`).
    pub ical: Option<String>,
    /// `startDate` as written (`2/14/2025|0:0:0`).
    pub start_date: Option<String>,
    /// `endDate` as written.
    pub end_date: Option<String>,
    /// `scheduleTZ`.
    pub tz: String,
    /// `scheduleTZDisplayName`.
    pub tz_display: Option<String>,
    /// State.
    pub state: ScheduleState,
    /// Creation time.
    pub created: DateTime<Utc>,
    /// Creator.
    pub created_by: String,
    /// Last change of the definition.
    pub updated: DateTime<Utc>,
    /// Who changed it last.
    pub updated_by: String,
    /// Start of the current `ACTIVE` period (runs are counted from here).
    pub active_since: Option<DateTime<Utc>>,
}

impl Schedule {
    /// A stopped schedule with an iCal definition.
    pub fn ical(name: &str, expression: &str, who: &str, t: DateTime<Utc>) -> Schedule {
        Schedule {
            name: name.to_string(),
            frequency: None,
            ical: Some(expression.to_string()),
            start_date: None,
            end_date: None,
            tz: "UTC".into(),
            tz_display: None,
            state: ScheduleState::Cancelled,
            created: t,
            created_by: who.to_string(),
            updated: t,
            updated_by: who.to_string(),
            active_since: None,
        }
    }
}

/// One run of an integration produced by its schedule or by "run now".
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Run {
    /// Instance id (22 characters, as recorded: `KbDMUOnwEe-V0IkQaNnLzg`).
    pub id: String,
    /// When it ran.
    pub at: DateTime<Utc>,
    /// `true` for a scheduled run, `false` for "run now".
    pub scheduled: bool,
    /// The run failed (`FAILED` in monitoring): injected traffic ([`super::faults::TrafficRule`]).
    #[serde(default)]
    pub failed: bool,
}

/// How an integration invokes another one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum InvokeVia {
    /// Through the local integration adapter (a co-located integration).
    Local,
    /// Through its REST endpoint (`/ic/api/integration/v1/flows/rest/CODE/1.0/...`) with this connection.
    Rest {
        /// The REST connection the call goes through.
        connection: String,
    },
}

/// An integration this one invokes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Invoke {
    /// Code of the integration called.
    pub code: String,
    /// Its version (`01.00.0000`).
    pub version: String,
    /// How.
    pub via: InvokeVia,
}

/// An integration (`CODE|VERSION`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Integration {
    /// Code.
    pub code: String,
    /// Version `MM.mm.pppp`.
    pub version: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Lifecycle state.
    pub status: IntStatus,
    /// `Orchestration`, `Scheduled`, ...
    pub pattern: String,
    /// Pattern description.
    pub pattern_description: String,
    /// `FREEFORM`, `SCHEDULED`, ...
    pub style: String,
    /// Who holds the edit lock.
    pub locked_by: Option<String>,
    /// `DEVELOPED` / `PREBUILT` / `CUSTOM`.
    pub project_type: String,
    /// Tracing flags.
    pub tracing: bool,
    /// Payload tracing flag.
    pub payload_tracing: bool,
    /// Recording flag.
    pub record_enabled: bool,
    /// Schedule (scheduled integrations only; `None` when not defined).
    pub schedule: Option<Schedule>,
    /// Runs produced by the schedule or by "run now" (the most recent ones).
    #[serde(default)]
    pub runs: Vec<Run>,
    /// Connections used.
    pub connections: Vec<ConnRef>,
    /// Lookups used.
    pub lookups: Vec<String>,
    /// Package name ("" when none).
    pub package_name: String,
    /// Creation time.
    pub created: DateTime<Utc>,
    /// Creator e-mail.
    pub created_by: String,
    /// Last update time.
    pub last_updated: DateTime<Utc>,
    /// Last updater e-mail.
    pub last_updated_by: String,
    /// Export content.
    pub archive: ArchiveSource,
    /// Activation errors of the last failed activation (code, message).
    pub activation_errors: Vec<(String, String)>,
    /// The flow itself is incomplete (an `INPROGRESS` draft regardless of its connections).
    pub draft: bool,
    /// Project the integration belongs to (OIC 3 project integrations).
    pub project: Option<String>,
    /// Integrations this one invokes (written into its archive; see [`super::archive::integration_entries`]).
    #[serde(default)]
    pub calls: Vec<Invoke>,
}

impl Integration {
    /// `CODE|VERSION`.
    pub fn id(&self) -> String {
        format!("{}|{}", self.code, self.version)
    }
    /// Major version component (`01` of `01.02.0000`).
    pub fn major(&self) -> &str {
        self.version.split('.').next().unwrap_or("")
    }
    /// Short version as in OIC messages (`1.0` for `01.00.0000`).
    pub fn short_version(&self) -> String {
        let mut parts = self.version.split('.');
        let maj = parts
            .next()
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or(0);
        let min = parts
            .next()
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or(0);
        format!("{maj}.{min}")
    }
}

/// A connection property (`connectionProperties[]` / `securityProperties[]`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Property {
    /// Group.
    #[serde(default)]
    pub property_group: String,
    /// Name.
    pub property_name: String,
    /// Type (`URL`, `STRING`, `PASSWORD`, ...).
    #[serde(default)]
    pub property_type: String,
    /// Value (never returned for security properties).
    #[serde(default)]
    pub property_value: Option<String>,
}

/// A connection.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Connection {
    /// Code (= id).
    pub code: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// State.
    pub status: ConnStatus,
    /// `SOURCE`, `TARGET`, `SOURCE_AND_TARGET`.
    pub role: String,
    /// Adapter id (`rest`, `atpdatabase`, ...).
    pub adapter: String,
    /// Security policy.
    pub security_policy: String,
    /// Connection properties.
    pub connection_properties: Vec<Property>,
    /// Security properties (values stored, never returned).
    pub security_properties: Vec<Property>,
    /// Agent group.
    pub agent_group_id: Option<String>,
    /// Who holds the edit lock.
    pub locked_by: Option<String>,
    /// Creation time.
    pub created: DateTime<Utc>,
    /// Creator.
    pub created_by: String,
    /// Last update time.
    pub last_updated: DateTime<Utc>,
    /// Last updater.
    pub last_updated_by: String,
}

/// A lookup (DVM).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Lookup {
    /// Name (= id).
    pub name: String,
    /// Description.
    pub description: String,
    /// Column (domain) names.
    pub columns: Vec<String>,
    /// Rows.
    pub rows: Vec<Vec<String>>,
    /// Last update time.
    pub last_updated: DateTime<Utc>,
}

/// A certificate of the instance: what OIC shows of it. The file and any private key stay on
/// the instance (the documented API gives neither back), so the emulator keeps neither.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Certificate {
    /// Alias.
    pub name: String,
    /// `X509`, `PGP`, `SAML`, `SIGNKEY`, `DIGITALSIGNATURE`.
    pub cert_type: String,
    /// `TRUST`/`IDENTITY` (X509), `PUBLIC`/`PRIVATE` (PGP, SIGNKEY), `OWSM` (SAML).
    pub category: String,
    /// `USER` (uploaded) or `SYSTEM`.
    pub installed_type: String,
    /// Description.
    pub description: String,
    /// Issued.
    pub issued: DateTime<Utc>,
    /// Expires.
    pub expires: DateTime<Utc>,
    /// Who uploaded it.
    pub created_by: String,
    /// Last update time.
    pub last_updated: DateTime<Utc>,
}

impl Certificate {
    /// OIC's composite id: `installedType|type|category|name`.
    pub fn id(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.installed_type, self.cert_type, self.category, self.name
        )
    }
}

/// Static identity of an instance: names and credentials.
#[derive(Debug, Clone)]
pub struct InstanceIdent {
    /// Name from the spec.
    pub name: String,
    /// 2 or 3.
    pub generation: u8,
    /// `integrationInstance` value (gen 3).
    pub integration_instance: Option<String>,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: String,
    /// OAuth scope of the developer API.
    pub scope: String,
    /// Primary audience (`https://<HEX>.integration.sim.ocp.oraclecloud.com:443`).
    pub audience: String,
    /// Basic-auth user (gen 2).
    pub username: Option<String>,
    /// Basic-auth password (gen 2).
    pub password: Option<String>,
}

/// A deployment (project "label").
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Deployment {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Integration versions (code, version).
    pub integrations: Vec<(String, String)>,
    /// Last update.
    pub last_updated: DateTime<Utc>,
}

/// An OIC 3 project.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Project {
    /// Code (= id).
    pub code: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// `DEVELOPED` / `ACCELERATOR`.
    pub project_type: String,
    /// Creation time.
    pub created: DateTime<Utc>,
    /// Creator.
    pub created_by: String,
    /// Last update time.
    pub updated: DateTime<Utc>,
    /// Last updater.
    pub updated_by: String,
    /// Deployments by code.
    pub deployments: BTreeMap<String, Deployment>,
    /// The ACL document (four role keys).
    pub acl: serde_json::Value,
    /// Project content (integrations, connections, lookups, libraries).
    pub data: InstanceData,
}

/// A JavaScript library.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Library {
    /// Code.
    pub code: String,
    /// Version.
    pub version: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// `API`.
    pub library_type: String,
    /// The archive (`.jar`/`.js`) as uploaded or generated.
    #[serde(with = "super::persist::blob")]
    pub archive: Bytes,
    /// Function names (metadata).
    pub functions: Vec<String>,
    /// Last update.
    pub last_updated: DateTime<Utc>,
}

/// A package (Gen2 grouping of integrations).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Package {
    /// Name (= id).
    pub name: String,
    /// `DEVELOPED` / `PREBUILT`.
    pub package_type: String,
}

/// Mutable content of one instance (or of one project).
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct InstanceData {
    /// Integrations by (code, version).
    #[serde(with = "super::persist::tuple_map")]
    pub integrations: BTreeMap<(String, String), Integration>,
    /// Connections by code.
    pub connections: BTreeMap<String, Connection>,
    /// Lookups by name.
    pub lookups: BTreeMap<String, Lookup>,
    /// Libraries by (code, version).
    #[serde(with = "super::persist::tuple_map")]
    pub libraries: BTreeMap<(String, String), Library>,
    /// Packages by name.
    pub packages: BTreeMap<String, Package>,
    /// Projects by code (OIC 3; empty in projects themselves).
    pub projects: BTreeMap<String, Project>,
    /// Certificates by composite id (instance-wide; empty in projects).
    #[serde(default)]
    pub certificates: BTreeMap<String, Certificate>,
}

/// One emulated OIC instance.
#[derive(Debug)]
pub struct Instance {
    /// Identity and credentials.
    pub ident: InstanceIdent,
    /// Content.
    pub data: Mutex<InstanceData>,
    /// Generation of the content: bumped by every [`Instance::lock`] (each may change it), inside
    /// the lock; [`Instance::read`] leaves it. A rendered answer of generation `g` stays true while
    /// the generation is `g`.
    pub generation: AtomicU64,
    /// Rendered list pages of one generation ([`PageCache`]).
    pub pages: Mutex<PageCache>,
}

impl Instance {
    /// A new instance.
    pub fn new(ident: InstanceIdent, data: InstanceData) -> Self {
        Instance {
            ident,
            data: Mutex::new(data),
            generation: AtomicU64::new(0),
            pages: Mutex::new(PageCache::default()),
        }
    }

    /// Locks the content for a possible change (a poisoned lock is recovered: the data is still
    /// usable); the generation moves on, so rendered pages are not served again.
    pub fn lock(&self) -> MutexGuard<'_, InstanceData> {
        let g = self.data.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::SeqCst);
        g
    }

    /// Locks the content to read it (the caller must not change it), with its generation.
    pub fn read(&self) -> (MutexGuard<'_, InstanceData>, u64) {
        let g = self.data.lock().unwrap_or_else(|e| e.into_inner());
        let n = self.generation.load(Ordering::SeqCst);
        (g, n)
    }

    /// The current generation (read without the content lock: a page cached for it was rendered
    /// after every change up to it had finished).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The page rendered for `key` in the current generation, if any.
    pub fn cached_page(&self, key: &str) -> Option<Bytes> {
        let now = self.generation();
        let c = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        (c.generation == now).then(|| c.pages.get(key).cloned())?
    }

    /// Keeps `page`, rendered for `key` in generation `generation` (see [`Instance::read`]).
    pub fn cache_page(&self, generation: u64, key: String, page: Bytes) {
        let mut c = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        c.put(generation, key, page);
    }
}

/// Rendered list pages of one generation of an instance, by request (path prefix and query), so
/// a client polling or re-reading a list is answered without rendering it again. Bounded: at most
/// [`PageCache::MAX_BYTES`] of pages, emptied when full or when the generation moves on.
#[derive(Debug, Default)]
pub struct PageCache {
    generation: u64,
    bytes: usize,
    pages: HashMap<String, Bytes>,
}

impl PageCache {
    /// Most bytes of pages kept per instance.
    pub const MAX_BYTES: usize = 32 * 1024 * 1024;

    fn put(&mut self, generation: u64, key: String, page: Bytes) {
        if generation < self.generation || page.len() > Self::MAX_BYTES {
            return;
        }
        if generation > self.generation || self.bytes + page.len() > Self::MAX_BYTES {
            self.pages.clear();
            self.bytes = 0;
            self.generation = generation;
        }
        self.bytes += page.len();
        if let Some(old) = self.pages.insert(key, page) {
            self.bytes -= old.len();
        }
    }
}

/// An issued access token.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    /// Granted scope.
    pub scope: String,
    /// Client it was issued to.
    pub client_id: String,
    /// Expiry.
    pub expires: Instant,
}

/// State shared by all listeners.
#[derive(Debug)]
pub struct Shared {
    /// Instances, in spec order.
    pub instances: Vec<Arc<Instance>>,
    /// Issued tokens.
    pub tokens: Mutex<HashMap<String, TokenInfo>>,
    /// Token lifetime in milliseconds.
    pub token_ttl_ms: AtomicU64,
    /// Delay of an async activation, in milliseconds.
    pub async_activation_ms: AtomicU64,
    /// Period of every schedule in milliseconds (0: the period its definition names).
    pub schedule_tick_ms: AtomicU64,
    /// Counter used to make tokens unique.
    pub token_counter: AtomicU64,
    /// Seed of the emulator.
    pub seed: u64,
    /// Fault knobs and the request log.
    pub faults: super::faults::FaultState,
    /// Identity-domain content (SCIM).
    pub identity: Mutex<super::scim::IdentityStore>,
    /// Admin client id (scope `urn:opc:idm:__myscopes__`).
    pub admin_client_id: String,
    /// Admin client secret.
    pub admin_client_secret: String,
    /// Where the state is persisted (`None`: in memory only).
    pub state_dir: Option<std::path::PathBuf>,
    /// Directory for spooled uploads.
    pub spool: std::path::PathBuf,
    /// Owns the spool directory when it is temporary (removed on drop).
    pub spool_guard: Option<tempfile::TempDir>,
    /// Service-instance export/import jobs and the emulated Object Storage.
    pub jobs: super::jobs::JobStore,
    /// Certificates' public keys uploaded to the clients, for JWT assertions.
    pub jwt_keys: super::jwt::JwtKeys,
    /// The clock of everything timed (schedule runs, asynchronous (de)activations, archive jobs).
    pub clock: super::clock::SimClock,
    /// Whether exports carry their export time ([`super::archive::stamped_exports`]; default on).
    pub stamped_exports: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// Current token lifetime.
    pub fn token_ttl(&self) -> Duration {
        Duration::from_millis(self.token_ttl_ms.load(Ordering::Relaxed))
    }
    /// Locks the token table.
    pub fn tokens(&self) -> MutexGuard<'_, HashMap<String, TokenInfo>> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// The OAuth clients of the identity domain.
    pub fn clients(&self) -> Vec<super::auth::Client> {
        self.instances
            .iter()
            .map(|i| super::auth::Client {
                client_id: i.ident.client_id.clone(),
                client_secret: i.ident.client_secret.clone(),
                scopes: super::auth::instance_scopes(i).to_vec(),
            })
            .chain(std::iter::once(super::auth::Client {
                client_id: self.admin_client_id.clone(),
                client_secret: self.admin_client_secret.clone(),
                scopes: vec![super::scim::ADMIN_SCOPE.to_string()],
            }))
            .collect()
    }
    /// Locks the identity store.
    pub fn identity(&self) -> MutexGuard<'_, super::scim::IdentityStore> {
        self.identity.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// A fresh file name in the spool directory.
    pub fn spool_path(&self) -> std::path::PathBuf {
        let n = self.token_counter.fetch_add(1, Ordering::Relaxed);
        self.spool
            .join(format!("upload-{n}-{}.zip", std::process::id()))
    }
    /// See `SimHandle::set_archive_size`.
    pub fn set_archive_size(&self, instance: &str, id: &str, bytes: u64) -> bool {
        let Some(inst) = self.instance_by_name(instance) else {
            return false;
        };
        let Some((code, version)) = id.split_once('|') else {
            return false;
        };
        let mut data = inst.lock();
        match data
            .integrations
            .get_mut(&(code.to_string(), version.to_string()))
        {
            Some(i) if matches!(i.archive, ArchiveSource::Generated { .. }) => {
                i.archive = ArchiveSource::Generated { padding: bytes };
                true
            }
            _ => false,
        }
    }
    /// Instance by name.
    pub fn instance_by_name(&self, name: &str) -> Option<&Arc<Instance>> {
        self.instances.iter().find(|i| i.ident.name == name)
    }
}
