//! The OIC emulator: a local, faithful stand-in for Oracle Integration (Gen2 and OIC 3) over real HTTP.
//!
//! Written from `docs/oic-api.md` independently of [`crate::oic`]: it shares no model or wire types with the
//! client. [`start`] binds real TCP listeners on loopback:
//!
//! * one **identity domain** listener: `/oauth2/v1/token` (client credentials with Basic client
//!   authentication) and SCIM `/admin/v1/{Users,Groups,Apps,AppRoles,Grants}` ([`scim`]);
//! * one listener per **Gen2** instance (the host *is* the instance; Basic auth and bearer tokens);
//! * one **OIC 3 design host** listener shared by all gen-3 instances, selected by `?integrationInstance=`
//!   (bearer tokens only).
//!
//! Developer API paths live under `/ic/api/integration/v1/` (§1.2): integrations ([`integrations`]),
//! connections ([`connections`]), lookups ([`lookups`]), libraries ([`libraries`]), packages ([`packages`]),
//! monitoring ([`monitoring`]) and, on OIC 3, projects ([`projects`]) with the same sub-resources under
//! `/projects/{p}/`. Integration ids are `CODE|VERSION`, accepted with a raw `|` or `%7C`. JSON bodies are compact
//! with camelCase names; errors have exactly the §1.6 shape
//! `{"status":"HTTP 409 Conflict","title":"...","type":"https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.10"}`
//! with `Content-Type: application/json`.
//!
//! Every listener also serves the emulator's own admin routes (no auth): `GET/POST /__sim/faults`
//! ([`Faults`] as JSON), `GET/DELETE /__sim/log` (request log as JSON lines, the most recent 200 000 requests) and `POST /__sim/archive_size`
//! (`{"instance","id","bytes"}`).
//!
//! # Choices
//!
//! For every behaviour the reference marks inferred (I) or unknown (?), the emulator does exactly this.
//!
//! ## Hosts, auth, tokens
//! * **Listeners / ports.** `port == 0`: every listener is ephemeral. Otherwise instance *i* (index in
//!   [`SimConfig::instances`]) of gen 2 listens on `port + i`, the OIC 3 design host on `port + n` and the identity
//!   domain on `port + n + 1` (`n` = number of instances).
//! * **`integrationInstance`** (gen 3) is `<name>-sim-lo`. Missing → 400, unknown → 404. Order of checks:
//!   credentials first (401 for no/invalid/expired token, or Basic auth on the design host), then the instance
//!   selector (400/404), then the token scope (401 when the token was issued for another instance).
//! * **401** (§2.3): body in the §1.6 shape, header `WWW-Authenticate: Bearer`.
//! * **Tokens**: JWT-looking opaque strings. The `scope` form field is required and must be the instance scope
//!   `https://<32 upper hex>.integration.sim.ocp.oraclecloud.com:443/ic/api/` or
//!   `https://<...>:443urn:opc:resource:consumer::all` (the audience is the same form on Gen2); otherwise 400
//!   `invalid_scope`. Client authentication by Basic header or `client_id`/`client_secret` form fields. Bad client
//!   → 401 `invalid_client` (`WWW-Authenticate: Basic realm="idcs"`); other grant types → 400
//!   `unsupported_grant_type`; missing grant type → 400 `invalid_request`. `expires_in` = the current TTL in
//!   seconds. Each instance has its own client; a token works only on its instance.
//! * **Credentials** (client ids, secrets, Gen2 user `svc-<name>@example.com` and password, audiences) are derived
//!   from [`SimConfig::seed`] and the instance name, so they are stable across runs and restarts.
//!
//! ## Collections
//! * **Paging**: `limit` default 100, values above 1000 clamped to 1000, `limit=0` or non-numbers → 400.
//!   Envelope `{items, hasMore, limit, offset, totalResults, links}`; `totalResults` counts all matches.
//! * **`q`**: `{key:'v'}` exact, case-sensitive; `{key:/re/}` unanchored case-insensitive regex; conditions
//!   separated by `,` are ANDed. Keys: integrations `name code status type style version pattern`; connections
//!   `name code status role type adapter`; projects `name code type`; lookups `name status`; libraries
//!   `name code type`; packages `name type`; monitoring `timewindow code version status name primaryValue
//!   startdate enddate minDuration`. Unknown keys or bad syntax → 400.
//! * **Order**: default by code then version (integrations), by code (others). `orderBy=name`
//!   (case-insensitive), `orderBy=time` (last updated, newest first), `orderBy=type` (connections: adapter);
//!   other values → 400.
//! * **Rendering**: an integration list page is rendered once per state of its instance and kept
//!   ([`state::PageCache`], bounded); the same request is answered with the same bytes until anything
//!   locks the instance for a change ([`state::Instance::lock`] moves its generation on).
//! * **`expand=connection`** adds `adapterType`/`securityPolicy` to the connections inside integrations;
//!   **`expand=adapter`** adds adapter details to connections.
//!
//! ## Integrations
//! * **Ids** without `|` → 404. Links use `%7C` (`HELLO_WORLD%7C01.00.0000`).
//! * **`POST /integrations/{id}` without `X-HTTP-Method-Override: PATCH`** → 405 (a real `PATCH` is accepted too).
//! * **Update body**: `status` `ACTIVATED`/`CONFIGURED` or absent (flags only); other values → 400. Activation →
//!   412 when already `ACTIVATED`/`ACTIVATION_INPROGRESS`, `INPROGRESS`, locked, or a connection is not
//!   `CONFIGURED`. Deactivation → 412 unless `ACTIVATED`, `ACTIVATION_INPROGRESS` or `FAILEDACTIVATION`; it also
//!   stops a running schedule. A flags-only update of an active integration → 412 "Failed to save integration
//!   configuration because it is active or is in the process of being activated.". The 200 body is the GH-RCH
//!   activation body (`{"apiDeploymentInprogress":false,...,"status":"..."}`).
//! * **Async activation** (`enableAsyncActivationMode=true`): `ACTIVATION_INPROGRESS`, then `ACTIVATED` after
//!   [`DEFAULT_ASYNC_ACTIVATION`] ([`SimHandle::set_async_activation_delay`]). The fault `fail_activation` makes
//!   listed ids end in `FAILEDACTIVATION` (sync: at once) with one `activationErrors` item.
//! * **Minor-version rule**: activating `X|MM.mm.pppp` sets every other active version of `X` with the same
//!   major `MM` to `CONFIGURED`.
//! * **Import**: `POST` → 204 (empty body); `PUT` → 200 with the integration resource; PUT of an ACTIVATED (or
//!   activating) integration → 412, of a locked one → 423. Missing `file` part → 400; the form field `type` is
//!   ignored. Imports keep the uploaded bytes and export them unchanged. The imported integration is
//!   `CONFIGURED` when the archive is not a draft (`project_persisted_state`) and all its connections are
//!   `CONFIGURED` on the instance, otherwise `INPROGRESS`; its lock is cleared; PUT keeps creator, creation date,
//!   tracing flags and package; `lastUpdatedBy` is the Basic-auth user or the OAuth client id.
//! * **Connections/lookups in an imported archive** are created when missing (connections as `INPROGRESS`
//!   drafts without security properties); existing ones are never modified. When a connection later becomes
//!   `CONFIGURED` (successful test), integrations that were `INPROGRESS` only because of it become `CONFIGURED`.
//! * **Export**: `Content-Disposition: attachment; filename="CODE_VERSION.iar"`; locked or PREBUILT → 423.
//!   `includeRecordingFlag` is ignored.
//! * **Delete** → 200 with an empty body; ACTIVATED → 412, locked → 423.
//! * **Schedule**: `GET .../schedule` → `{id, icalExpression, frequency, timezone:"UTC", state:"STARTED"|"STOPPED",
//!   scheduleDefinedFlag}`; not scheduled → 412 (get/start/stop). `start` ignores its body and needs an
//!   ACTIVATED integration with a stopped schedule (else 412); `stop` needs a running one (else 412).
//! * **`activationErrors`** → `{"items":[{"code","message"}],"totalResults":n}` (empty unless FAILEDACTIVATION).
//! * **`POST /integrations/reactivate`** (JSON array of ids) → 200 `{"items":[{"id","status":"ACTIVATED"|"FAILED",
//!   "message"}]}`; a body that is not an array of strings → 400.
//! * **Global vs project integrations (OIC 3)**: `GET /integrations` lists only global ones; project
//!   integrations carry `projectCode` and live under `/projects/{p}/integrations`.
//!
//! ## Connections
//! * Read fields: `id code name description status role adapterType{name,displayName,type} securityPolicy
//!   connectionProperties securityProperties agentGroupId lockedFlag lockedBy usage usageActive
//!   percentageComplete created createdBy lastUpdated lastUpdatedBy links`. `securityProperties` items carry
//!   `propertyGroup/propertyName/propertyType` and `hasValue`, never the value.
//! * **Update** honours only `connectionProperties`, `securityPolicy`, `securityProperties`, `agentGroupId`
//!   (other members are ignored); properties are merged by `propertyName`; an update never changes `status`.
//!   Locked → 412; bad JSON → 400; empty `securityPolicy` → 400.
//! * **Test**: incomplete (no non-empty connection property, or policy other than `NONE` without a non-empty
//!   security property) → 409; locked → 412. `FAILED` (200) when a connection property value contains
//!   `.invalid` or a security property value is `invalid`; otherwise `SUCCESS` (200) and the connection becomes
//!   `CONFIGURED`. `validate` answers the same without changing state.
//! * **Attachments**: the uploaded file becomes the property value `<attachment N bytes>` (200, connection body).
//! * **Delete** → 200; used by an integration → 412.
//!
//! ## Projects (OIC 3; on Gen2 every project route → 404)
//! * `POST /projects` `{name, code?, description?}` → 201 (code derived from the name when absent); 409 exists.
//! * **Export** body `{type, code, label?, name?, builtBy?}`: `code` must equal the path (else 400); unknown
//!   `label` → 404; with `label` only that deployment's integration versions and the connections/lookups they use
//!   are included, without it the whole project; a locked integration → 423. File name `CODE-LABEL.car` or
//!   `CODE.car`.
//! * **Import** → 200 with the project; connections arrive as drafts, integrations `INPROGRESS` until their
//!   connections are configured; 409 when the project exists; there is no replace.
//! * **Delete** → 200; any integration active or locked → 412.
//! * **Deployments**: create → 201 (409 exists; 400 when an integration is not in the project); update by
//!   PATCH override replaces the given members; delete → 200. Project `state.status` is always `DRAFT`.
//! * **ACL**: principal `id` is the identity-domain (SCIM) user/group id; GET adds `idNotFound` per principal
//!   (true when the id is not a user/group of the identity domain) and `createdBy/createdDate/updatedBy/
//!   updatedDate`. PUT replaces the whole ACL (204); missing role keys become `{allowAll:false, allowed:[]}`;
//!   wrong types → 400. New projects: the creator administers, everyone views and monitors.
//! * **`.car` layout**: see [`car`] (`project/` root, `project.yaml` with JSON-scalar values, one integrity hash
//!   in `project/oic_project.properties`).
//!
//! ## Lookups, libraries, packages, monitoring
//! * Lookup CSV: `DVM,<name>,<description>`, then the column line, then rows (RFC 4180 quoting). Lookup status is
//!   always `CONFIGURED`. JSON create → 201; delete in use → 412.
//! * Libraries: import needs the multipart fields `code` and `version` (400 otherwise); `type` defaults to `API`;
//!   `metadata` lists `function name(` declarations of the `.js` file(s). Delete → 200 (usage is not tracked).
//! * Packages: `.par` = `package.json` + one `.iar` per integration. Import → 204 (409 when the package or one of
//!   its integrations exists); PUT → 200 (404 missing; 412 when a contained integration is active or locked);
//!   delete removes the package and its integrations (412 when one is active or locked).
//! * Monitoring numbers are deterministic: seeded ACTIVATED integrations have traffic derived from a hash of
//!   their id (some with errors); imported or inactive ones have none, unless the fault `traffic` gives them
//!   instances at each activation with an error rate (and the REST trigger `…/flows/rest/CODE/1.0/…` records
//!   one per call). `GET /monitoring/instances` filters on `startdate`/`enddate` (UTC). The fault
//!   `fail_connection_tests` makes connection tests answer `FAILED` with an OIC-like message.
//! * Integrations call one another ([`state::Invoke`]): written into their archives as a local-adapter or REST
//!   `.jca` (see `docs/oic-fidelity.md`). `GET /monitoring/instances` lists up to 5
//!   runs per integration; `timewindow` must be `1h 6h 1d 2d 3d RETENTIONPERIOD` (else 400).
//!
//! ## Identity domain (SCIM)
//! * Needs a token of the admin client (`SimInfo::admin_client_id`, scope `urn:opc:idm:__myscopes__`): none or
//!   expired → 401, another scope → 403. Responses are `application/scim+json`.
//! * Each instance has an app `OICINST_<name>` (`<integrationInstance>` on OIC 3), `serviceTypeURN`
//!   `INTEGRATIONCAUTO`, with the roles `ServiceAdministrator ServiceDeveloper ServiceViewer ServiceMonitor
//!   ServiceDeployer ServiceUser ServiceInvoker ServiceEndUser`.
//! * Filters: `attr op "value"` joined by `and`; ops `eq ne co sw ew` (case-insensitive) and `pr`; dotted paths
//!   into arrays (`emails.value`). Bad filter → 400 `invalidFilter`. Paging `startIndex` (1-based), `count`
//!   (default 50, max 1000); `POST /{kind}/.search` takes the same in a JSON body.
//! * Grants: 201; already granted → 409 `uniqueness`; unknown grantee/app/role → 404; malformed → 400.
//!   DELETE → 204 / 404. Groups accept `PATCH` add/remove of `members`. Users, groups and apps cannot be created
//!   over HTTP (405); use [`SimHandle::add_user`] / [`SimHandle::add_group`].
//!
//! ## Archives, faults, persistence
//! * **`.iar` layout** (§11.1): `icspackage/project/CODE_VERSION/{ics_project_attributes.properties,
//!   PROJECT-INF/project.xml, PROJECT-INF/layout.json, resources/...}`, `icspackage/appinstances/<CONN>.xml`
//!   (root `<applicationInstance xmlns="http://www.oracle.com/2014/03/ics/appinstance">`),
//!   `icspackage/dvms/<LOOKUP>.dvm`, `icspackage/schedule/schedule.xml` for scheduled flows.
//! * **Integrity hash** (`mod=`): see [`archive`]: SHA-256 over the sorted file entries (name, NUL, u64 BE length,
//!   content; properties files without their `mod=` line), first 16 bytes, standard base64. A mismatch, a
//!   directory name that does not match `CODE_VERSION`, or a `project.xml` that disagrees → 400 whose title
//!   contains `ICS-20099`. Not a zip / wrong layout → 400.
//! * **Large archives**: generated resources above 1 MiB are stored (not deflated) and archives with more than
//!   4 MiB of generated content are streamed (memory stays flat); [`SimHandle::set_archive_size`]. Integration
//!   uploads above 8 MiB are spooled to disk (a temporary directory, or `state_dir/spool`), validated by
//!   streaming, and exported by streaming the file. `.car`, `.par`, lookup and library uploads are read into
//!   memory.
//! * **Error type URLs** for codes outside RFC 2616 (423, 429): `...rfc2616-sec10.html#sec10.4`. Unknown paths →
//!   404, wrong methods → 405, both in the §1.6 shape.
//! * **Faults** ([`Faults`]) apply to every listener except `/__sim/`: latency + jitter, shares of 429/500/503
//!   drawn from an RNG reset to the seed whenever faults are set (replayable), a `script` of statuses for the next
//!   requests, a per-instance cap of concurrent requests (excess → 429), `Retry-After` on injected 429s when
//!   `retry_after_secs` is set, downloads cut after N bytes (the connection is aborted), `path_regex`/`instances`
//!   scoping, token TTL, `fail_activation` ids, and `conflict_on_parallel_writes` (a POST/PUT/PATCH/DELETE that
//!   overlaps another one on the same instance → 409, as OIC is reported to do for parallel imports/activations).
//!   Injected errors use the §1.6 body.
//! * **Parallel writes** are served as they come unless `conflict_on_parallel_writes` is set, schedule writes
//!   included: no public source says OIC refuses parallel schedule writes (Oracle's pages document a create's
//!   409 as "already exists" only; the parallel-import/activation 409 is itself inferred, `oic-api.md` §9), so
//!   the emulator does not invent it. The knob, when set, refuses any overlapping write, schedule writes too
//!   (scope it with `path_regex`, e.g. `/schedule`), for testing a client's back-off.
//! * **Service-instance jobs** (§7, [`jobs`]): POST → 202 with `{jobId, jobName, overallStatus:"IN_PROGRESS",
//!   archiveFile, storageUrl, startTime, endTime}`; the job ends `COMPLETED` (or `FAILED` with `message`) after
//!   [`jobs::JOB_DURATION`]; a second job on the same instance while one runs → 409; `storageInfo` with url, user
//!   and password is required (400). Object Storage is emulated in memory, shared by all instances: an import on
//!   any instance finds an earlier export by `storageUrl` + `archiveFile`. `importActivateMode` is
//!   case-insensitive (`ImportOnly` default); without `importSecurityArtifacts` imported connections are drafts;
//!   active integrations on the target are left untouched; `ImportActivate`/`ActivateOnly` activate what was
//!   active in the source and is ready.
//! * **Persistence** ([`SimConfig::state_dir`]): see [`persist`].
//! * **Seeds**: see [`Seed`]. Timestamps of seeded data are fixed (2026), so runs are reproducible. `Sample` on a
//!   gen-3 instance also has the project `HR_ONBOARDING` (deployment `HR-ONB-REL1`). The identity domain is seeded
//!   with the people of the sample data and the group `OIC-Developers`.

pub mod archive;
pub mod auth;
pub mod car;
pub mod certificates;
pub mod clock;
pub mod connections;
pub mod error;
pub mod extract;
pub mod faults;
pub mod integrations;
pub mod jobs;
pub mod jwt;
pub mod libraries;
pub mod lookups;
pub mod monitoring;
pub mod packages;
pub mod persist;
pub mod projects;
pub mod query;
pub mod schedules;
pub mod scim;
pub mod seed;
pub mod state;
pub mod stream;
pub mod wire;

pub use faults::{Faults, LogEntry};

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{any, get, post};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use error::ApiError;
use state::{Instance, InstanceData, InstanceIdent, Shared};

/// Prefix of the developer API.
pub const API: &str = "/ic/api/integration/v1";

/// Default delay between `ACTIVATION_INPROGRESS` and `ACTIVATED` for async activations.
pub const DEFAULT_ASYNC_ACTIVATION: Duration = Duration::from_millis(300);

/// Emulator configuration.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Instances to emulate.
    pub instances: Vec<SimInstanceSpec>,
    /// Lifetime of issued access tokens (default 3600 s).
    pub token_ttl: Duration,
    /// Address to bind (default 127.0.0.1).
    pub host: IpAddr,
    /// Base port; 0 = ephemeral ports (see the module docs for the layout otherwise).
    pub port: u16,
    /// Random seed for generated data, credentials and faults.
    pub seed: u64,
    /// Persist the emulator state in this directory (`ferry sim --state DIR`): loaded at start when present,
    /// saved after every successful mutating request and on shutdown.
    pub state_dir: Option<std::path::PathBuf>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            instances: Vec::new(),
            token_ttl: Duration::from_secs(3600),
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            seed: 42,
            state_dir: None,
        }
    }
}

/// One emulated instance.
#[derive(Debug, Clone)]
pub struct SimInstanceSpec {
    /// Instance name (`dev`, `prod`, ...).
    pub name: String,
    /// OIC generation: 2 or 3.
    pub generation: u8,
    /// Initial content.
    pub seed: Seed,
}

/// Initial content of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seed {
    /// Nothing.
    Empty,
    /// A realistic dev instance: 11 integrations over HR_/FIN_/SCM_ (activated, configured, a draft, a locked one,
    /// a PREBUILT one, two versions of `HR_NEW_HIRE`, a scheduled `HR_PAYROLL_EXPORT`), six connections and the
    /// lookup `COUNTRY_CODES`.
    Sample,
    /// A target (prod) instance: the `Sample` connection codes, configured, and no integrations.
    TargetConnections,
    /// `n` generated integrations.
    Generated(usize),
}

/// Where everything listens (printed by `ferry sim`).
#[derive(Serialize, Clone, Debug)]
pub struct SimInfo {
    /// Identity domain base URL (token endpoint at `/oauth2/v1/token`).
    pub identity_url: String,
    /// Instances.
    pub instances: Vec<SimInstanceInfo>,
    /// Identity-domain admin client id (scope `urn:opc:idm:__myscopes__`; SCIM at `{identity_url}/admin/v1/`).
    pub admin_client_id: String,
    /// Identity-domain admin client secret.
    pub admin_client_secret: String,
    /// Scope of the admin client.
    pub admin_scope: String,
}

/// Connection details of one emulated instance.
#[derive(Serialize, Clone, Debug)]
pub struct SimInstanceInfo {
    /// Instance name.
    pub name: String,
    /// 2 or 3.
    pub generation: u8,
    /// Developer API host, e.g. `http://127.0.0.1:PORT` (no trailing slash).
    pub base_url: String,
    /// `integrationInstance` query value (gen 3 only).
    pub integration_instance: Option<String>,
    /// `{identity_url}/oauth2/v1/token`.
    pub token_url: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: String,
    /// OAuth scope of the developer API.
    pub scope: String,
    /// Basic-auth user (gen 2 only).
    pub username: Option<String>,
    /// Basic-auth password (gen 2 only).
    pub password: Option<String>,
    /// SCIM id of the instance's OIC application in the identity domain.
    pub idcs_app_id: String,
    /// Display name of that application (`OICINST_<instance>`).
    pub idcs_app_name: String,
}

/// Which listener a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// The identity domain.
    Identity,
    /// The OIC 3 design host.
    Design,
    /// A Gen2 instance host (index into the instances).
    Gen2(usize),
}

/// Per-listener handler state.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Shared emulator state.
    pub shared: Arc<Shared>,
    /// This listener.
    pub kind: ListenerKind,
    /// This listener's base URL.
    pub base_url: String,
}

/// A running emulator. Dropping it stops the servers.
pub struct SimHandle {
    /// Where everything listens.
    pub info: SimInfo,
    shared: Arc<Shared>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl SimHandle {
    /// Changes the lifetime of tokens issued from now on.
    pub fn set_token_ttl(&self, ttl: Duration) {
        self.shared
            .token_ttl_ms
            .store(ttl.as_millis() as u64, Ordering::Relaxed);
    }

    /// Makes every access token issued so far expired (a test of expiry without waiting for it;
    /// token lifetimes run on the wall clock).
    pub fn expire_tokens(&self) {
        let now = std::time::Instant::now();
        for t in self.shared.tokens().values_mut() {
            t.expires = t.expires.min(now);
        }
    }

    /// Changes the delay of async activations.
    pub fn set_async_activation_delay(&self, d: Duration) {
        self.shared
            .async_activation_ms
            .store(d.as_millis() as u64, Ordering::Relaxed);
    }

    /// Moves the emulator's clock forward by `d` (see [`clock`]): a started schedule has produced the runs
    /// of the periods passed when monitoring is next read, and asynchronous activations, deactivations and
    /// instance archive jobs due by then end at once. Tests advance time with this instead of sleeping.
    pub fn advance_clock(&self, d: Duration) {
        self.shared.clock.advance(d);
    }

    /// Whether this emulator's exports carry their export time (on by default, as real OIC: two
    /// exports are never byte-identical); off, generated exports are byte for byte the same and
    /// imported ones exactly as uploaded (see [`archive::stamped_exports`]).
    pub fn set_stamped_exports(&self, on: bool) {
        self.shared.stamped_exports.store(on, Ordering::Relaxed);
    }

    /// The emulator's current time (wall time plus what [`SimHandle::advance_clock`] added).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.shared.clock.now()
    }

    /// Makes every started schedule produce one run per `tick` (instead of the period its definition names);
    /// `None` goes back to the definitions.
    pub fn set_schedule_tick(&self, tick: Option<Duration>) {
        self.shared.schedule_tick_ms.store(
            tick.map(|d| (d.as_millis() as u64).max(1)).unwrap_or(0),
            Ordering::Relaxed,
        );
    }

    /// State peek for tests: the status of integration `id` (`CODE|VERSION`) on instance `instance`.
    pub fn integration_status(&self, instance: &str, id: &str) -> Option<String> {
        let inst = self.shared.instance_by_name(instance)?;
        let (code, version) = id.split_once('|')?;
        let data = inst.lock();
        data.integrations
            .get(&(code.to_string(), version.to_string()))
            .map(|i| i.status.as_str().to_string())
    }

    /// Sets the size of the generated resource content of a seeded integration (its export then weighs about
    /// `bytes`; large ones are streamed, memory stays flat). Returns false when the integration is unknown or was
    /// imported (imported archives are exported as uploaded).
    pub fn set_archive_size(&self, instance: &str, id: &str, bytes: u64) -> bool {
        self.shared.set_archive_size(instance, id, bytes)
    }

    /// State peek for tests: the status of connection `code` on instance `instance`.
    pub fn connection_status(&self, instance: &str, code: &str) -> Option<String> {
        let inst = self.shared.instance_by_name(instance)?;
        let data = inst.lock();
        data.connections
            .get(code)
            .map(|c| c.status.as_str().to_string())
    }

    /// Adds an identity-domain user (id returned; an existing user with that e-mail is reused).
    pub fn add_user(&self, email: &str, name: &str) -> String {
        self.shared.identity().add_user(email, name)
    }

    /// Adds (or replaces the members of) an identity-domain group; members are e-mails (created when unknown).
    pub fn add_group(&self, name: &str, members: &[&str]) -> String {
        self.shared.identity().add_group(name, members)
    }

    /// Uploads a certificate's public key (PEM) to the confidential application of `instance`'s
    /// client under `alias`, so that JWT user and client assertions it signs are accepted.
    pub fn register_jwt_key(
        &self,
        instance: &str,
        alias: &str,
        public_pem: &[u8],
    ) -> Result<(), String> {
        let client = self
            .instance(instance)
            .map(|i| i.client_id.clone())
            .ok_or_else(|| format!("no emulated instance `{instance}`"))?;
        self.shared.jwt_keys.register(&client, alias, public_pem)
    }

    /// The SCIM id of a user by e-mail.
    pub fn user_id(&self, email: &str) -> Option<String> {
        self.shared
            .identity()
            .users
            .iter()
            .find(|(_, u)| {
                u["userName"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(email))
            })
            .map(|(id, _)| id.clone())
    }

    /// App-role display names granted to a user (directly or via groups) on an instance's OIC app.
    pub fn granted_roles(&self, instance: &str, email: &str) -> Vec<String> {
        let Some(app) = self.instance(instance).map(|i| i.idcs_app_id.clone()) else {
            return Vec::new();
        };
        let Some(uid) = self.user_id(email) else {
            return Vec::new();
        };
        let ids = self.shared.identity();
        let groups: Vec<String> = ids
            .groups
            .iter()
            .filter(|(_, g)| {
                g["members"]
                    .as_array()
                    .is_some_and(|m| m.iter().any(|x| x["value"] == uid.as_str()))
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut out: Vec<String> = ids
            .grants
            .values()
            .filter(|g| g["app"]["value"] == app.as_str())
            .filter(|g| {
                let v = g["grantee"]["value"].as_str().unwrap_or("");
                v == uid || groups.iter().any(|x| x == v)
            })
            .filter_map(|g| g["entitlement"]["attributeValue"].as_str())
            .filter_map(|r| ids.app_roles.get(r))
            .filter_map(|r| r["displayName"].as_str().map(str::to_string))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Info of one instance by name.
    pub fn instance(&self, name: &str) -> Option<&SimInstanceInfo> {
        self.info.instances.iter().find(|i| i.name == name)
    }

    /// Replaces the fault knobs (resets the fault RNG to the seed, so runs replay).
    pub fn set_faults(&self, f: Faults) {
        if let Some(s) = f.token_ttl_secs {
            self.set_token_ttl(Duration::from_secs(s));
        }
        self.shared.faults.set(f);
    }

    /// The fault knobs in effect.
    pub fn faults(&self) -> Faults {
        self.shared.faults.get()
    }

    /// The request log (all listeners, in order).
    pub fn request_log(&self) -> Vec<LogEntry> {
        self.shared.faults.log()
    }

    /// Blocks until `pred` holds over the request log (checked at once and after every logged
    /// request) or `timeout` passes; returns whether it held.
    pub fn wait_for_requests(
        &self,
        timeout: Duration,
        pred: impl FnMut(&[LogEntry]) -> bool,
    ) -> bool {
        self.shared.faults.wait_log(timeout, pred)
    }

    /// Calls `hook` with every request as it is logged: after the emulator handled it, before
    /// its response is sent (a test can stop a client exactly there).
    pub fn on_request(&self, hook: impl Fn(&LogEntry) + Send + Sync + 'static) {
        self.shared.faults.on_request(std::sync::Arc::new(hook));
    }

    /// Removes the hooks set with [`SimHandle::on_request`].
    pub fn clear_request_hooks(&self) {
        self.shared.faults.clear_hooks();
    }

    /// Empties the request log.
    pub fn clear_request_log(&self) {
        self.shared.faults.clear_log();
    }

    /// Saves the state now (no-op without `state_dir`).
    pub fn save_state(&self) -> anyhow::Result<()> {
        match &self.shared.state_dir {
            Some(d) => persist::save(&self.shared, d),
            None => Ok(()),
        }
    }

    /// Stops all servers (saving the state first when `state_dir` is set).
    pub async fn shutdown(self) {
        if let Err(e) = self.save_state() {
            tracing::warn!("emulator state not saved: {e:#}");
        }
        let tasks: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    }
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No credentials: only where things listen.
        f.debug_struct("SimHandle")
            .field("identity_url", &self.info.identity_url)
            .field(
                "instances",
                &self
                    .info
                    .instances
                    .iter()
                    .map(|i| (&i.name, &i.base_url))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        for t in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            t.abort();
        }
    }
}

/// One JSON line describing the running emulator (for `ferry sim`).
pub fn standalone_info_line(info: &SimInfo) -> String {
    serde_json::to_string(info).unwrap_or_else(|_| "{}".to_string())
}

fn name_seed(seed: u64, name: &str) -> u64 {
    let d = Sha256::digest(format!("{seed}:{name}").as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_be_bytes(b)
}

fn make_ident(spec: &SimInstanceSpec, seed: u64) -> InstanceIdent {
    let mut rng = StdRng::seed_from_u64(name_seed(seed, &spec.name));
    let mut hex = |n: usize, upper: bool| {
        let s: String = (0..n)
            .map(|_| {
                let d = rng.random_range(0..16u32);
                std::char::from_digit(d, 16).unwrap_or('0')
            })
            .collect();
        if upper { s.to_uppercase() } else { s }
    };
    let audience_hex = hex(32, true);
    let client_id = hex(32, false);
    let client_secret = format!("idcscs-{}-{}", hex(8, false), hex(24, false));
    let password = format!("Sim#{}", hex(12, false));
    let audience = format!("https://{audience_hex}.integration.sim.ocp.oraclecloud.com:443");
    let gen3 = spec.generation >= 3;
    InstanceIdent {
        name: spec.name.clone(),
        generation: if gen3 { 3 } else { 2 },
        integration_instance: gen3.then(|| format!("{}-sim-lo", spec.name)),
        client_id,
        client_secret,
        scope: format!("{audience}/ic/api/"),
        audience,
        username: (!gen3).then(|| format!("svc-{}@example.com", spec.name)),
        password: (!gen3).then_some(password),
    }
}

fn seed_data(spec: &SimInstanceSpec, seed: u64) -> InstanceData {
    let mut data = InstanceData::default();
    match spec.seed {
        Seed::Empty => {}
        Seed::Sample => {
            seed::sample(&mut data);
            if spec.generation >= 3 {
                seed::sample_project(&mut data);
            }
        }
        Seed::TargetConnections => seed::target_connections(&mut data),
        Seed::Generated(n) => seed::generated(&mut data, n, name_seed(seed, &spec.name)),
    }
    data
}

async fn not_found_fallback() -> ApiError {
    ApiError::not_found("The requested resource was not found.")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "The HTTP method is not allowed on this resource.",
    )
}

/// Routes of the developer API, for the global space and (`/projects/{p}/...`) for projects.
fn api_routes() -> Router<Ctx> {
    use connections as c;
    use integrations as i;
    let mut r = Router::new();
    for base in [API.to_string(), format!("{API}/projects/{{p}}")] {
        r = r
            .route(&format!("{base}/integrations"), get(i::list))
            .route(
                &format!("{base}/integrations/archive"),
                post(i::import_new).put(i::import_replace),
            )
            .route(
                &format!("{base}/integrations/{{id}}"),
                get(i::get)
                    .post(i::update)
                    .patch(i::update)
                    .delete(i::delete),
            )
            .route(
                &format!("{base}/integrations/{{id}}/archive"),
                get(i::export),
            )
            .route(
                &format!("{base}/integrations/{{id}}/activationStatus"),
                get(i::activation_status),
            )
            .route(
                &format!("{base}/integrations/{{id}}/activationErrors"),
                get(i::activation_errors),
            )
            .route(
                &format!("{base}/integrations/{{id}}/schedule"),
                get(schedules::get)
                    .post(schedules::create)
                    .put(schedules::replace)
                    .delete(schedules::delete),
            )
            .route(
                &format!("{base}/integrations/{{id}}/schedule/start"),
                post(schedules::start),
            )
            .route(
                &format!("{base}/integrations/{{id}}/schedule/stop"),
                post(schedules::stop),
            )
            .route(
                &format!("{base}/integrations/{{id}}/schedule/pause"),
                post(schedules::pause),
            )
            .route(
                &format!("{base}/integrations/{{id}}/schedule/resume"),
                post(schedules::resume),
            )
            .route(
                &format!("{base}/integrations/{{id}}/schedule/jobs"),
                post(schedules::run_now),
            )
            .route(
                &format!("{base}/integrations/reactivate"),
                post(i::reactivate),
            )
            .route(&format!("{base}/connections"), get(c::list))
            .route(
                &format!("{base}/connections/{{id}}"),
                get(c::get)
                    .post(c::update)
                    .patch(c::update)
                    .delete(c::delete),
            )
            .route(&format!("{base}/connections/{{id}}/test"), post(c::test))
            .route(
                &format!("{base}/connections/{{id}}/validate"),
                post(c::validate),
            )
            .route(
                &format!("{base}/connections/{{id}}/attachments/{{prop}}"),
                post(c::attachment),
            )
            .route(
                &format!("{base}/lookups"),
                get(lookups::list).post(lookups::create),
            )
            .route(
                &format!("{base}/lookups/archive"),
                post(lookups::import_new).put(lookups::import_replace),
            )
            .route(
                &format!("{base}/lookups/{{id}}"),
                get(lookups::get).delete(lookups::delete),
            )
            .route(
                &format!("{base}/lookups/{{id}}/archive"),
                get(lookups::export),
            )
            .route(&format!("{base}/libraries"), get(libraries::list))
            .route(
                &format!("{base}/libraries/archive"),
                post(libraries::import),
            )
            .route(
                &format!("{base}/libraries/{{id}}"),
                get(libraries::get).delete(libraries::delete),
            )
            .route(
                &format!("{base}/libraries/{{id}}/archive"),
                get(libraries::export).post(libraries::replace),
            )
            .route(
                &format!("{base}/libraries/{{id}}/metadata"),
                get(libraries::metadata),
            )
            .route(
                &format!("{base}/monitoring/integrations"),
                get(monitoring::integrations),
            )
            .route(
                &format!("{base}/monitoring/integrations/{{id}}"),
                get(monitoring::integration),
            )
            .route(
                &format!("{base}/monitoring/instances"),
                get(monitoring::instances),
            )
            .route(
                &format!("{base}/monitoring/instances/{{id}}"),
                get(monitoring::instance),
            )
            .route(
                &format!("{base}/monitoring/errors"),
                get(monitoring::errors),
            );
    }
    r = r
        .route(
            &format!("{API}/flows/rest/{{code}}/{{ver}}"),
            any(monitoring::trigger),
        )
        .route(
            &format!("{API}/flows/rest/{{code}}/{{ver}}/{{*rest}}"),
            any(monitoring::trigger),
        )
        .route(&format!("{API}/certificates"), get(certificates::list))
        .route(
            &format!("{API}/certificates/{{id}}"),
            get(certificates::get),
        )
        .route(&format!("{API}/packages"), get(packages::list))
        .route(
            &format!("{API}/packages/archive"),
            post(packages::import_new).put(packages::import_replace),
        )
        .route(
            &format!("{API}/packages/{{id}}"),
            get(packages::get).delete(packages::delete),
        )
        .route(
            &format!("{API}/packages/{{id}}/archive"),
            get(packages::export),
        );
    r = r
        .route(
            "/ic/api/common/v1/exportServiceInstanceArchive",
            post(jobs::export_start),
        )
        .route(
            "/ic/api/common/v1/exportServiceInstanceArchive/{id}",
            get(jobs::export_status),
        )
        .route(
            "/ic/api/common/v1/importServiceInstanceArchive",
            post(jobs::import_start),
        )
        .route(
            "/ic/api/common/v1/importServiceInstanceArchive/{id}",
            get(jobs::import_status),
        )
        .route("/ic/api/common/v1/serviceInstance/jobs", get(jobs::list));
    use projects as p;
    r.route(&format!("{API}/projects"), get(p::list).post(p::create))
        .route(&format!("{API}/projects/archive"), post(p::import))
        .route(
            &format!("{API}/projects/{{p}}"),
            get(p::get).delete(p::delete),
        )
        .route(&format!("{API}/projects/{{p}}/archive"), post(p::export))
        .route(
            &format!("{API}/projects/{{p}}/acl"),
            get(p::acl_get).put(p::acl_put),
        )
        .route(
            &format!("{API}/projects/{{p}}/deployments"),
            get(p::deployments_list).post(p::deployment_create),
        )
        .route(
            &format!("{API}/projects/{{p}}/deployments/{{d}}"),
            get(p::deployment_get)
                .post(p::deployment_update)
                .patch(p::deployment_update)
                .delete(p::deployment_delete),
        )
}

/// Emulator admin routes, present on every listener.
fn admin_routes() -> Router<Ctx> {
    Router::new()
        .route(
            "/__sim/faults",
            get(faults::get_faults).post(faults::set_faults),
        )
        .route("/__sim/log", get(faults::get_log).delete(faults::clear_log))
        .route("/__sim/in_flight", get(faults::get_in_flight))
        .route("/__sim/archive_size", post(faults::set_archive_size))
}

fn finish(router: Router<Ctx>, ctx: Ctx) -> Router {
    router
        .merge(admin_routes())
        .fallback(not_found_fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            persist::layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            stamp_layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            faults::layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            wire::layer,
        ))
        .layer(DefaultBodyLimit::disable())
        .with_state(ctx)
}

/// Runs the request with this emulator's export stamping ([`archive::STAMPED`]).
async fn stamp_layer(
    axum::extract::State(ctx): axum::extract::State<Ctx>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let on = ctx.shared.stamped_exports.load(Ordering::Relaxed);
    archive::STAMPED.scope(on, next.run(req)).await
}

/// Routes of an OIC listener (Gen2 host or OIC 3 design host).
fn oic_router(ctx: Ctx) -> Router {
    finish(api_routes(), ctx)
}

/// Routes of the identity-domain listener.
fn identity_router(ctx: Ctx) -> Router {
    let r = Router::new()
        .route("/oauth2/v1/token", post(auth::token))
        .route(
            "/admin/v1/{kind}",
            get(scim::list).post(scim::create_dispatch),
        )
        .route(
            "/admin/v1/{kind}/{id}",
            get(scim::get_one)
                .post(scim::search_dispatch)
                .delete(scim::delete_dispatch)
                .patch(scim::patch_dispatch),
        );
    finish(r, ctx)
}

async fn bind(host: IpAddr, port: u16) -> anyhow::Result<(tokio::net::TcpListener, String)> {
    let addr = SocketAddr::new(host, port);
    let l = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the emulator to {addr}"))?;
    let local = l.local_addr().context("reading the listener address")?;
    Ok((l, format!("http://{local}")))
}

fn serve(l: tokio::net::TcpListener, router: Router) -> JoinHandle<()> {
    // The path is normalised before routing: a trailing `/` names the same resource.
    let router = Router::new()
        .fallback_service(router)
        .layer(axum::middleware::map_request(wire::strip_trailing_slash));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(l, router).await {
            tracing::warn!("emulator listener stopped: {e}");
        }
    })
}

/// Starts the emulator: binds every listener and serves until [`SimHandle::shutdown`] or drop.
pub async fn start(cfg: SimConfig) -> anyhow::Result<SimHandle> {
    check_instances(&cfg)?;
    let (spool, spool_guard) = spool_dir(&cfg)?;
    let mut snapshot = match &cfg.state_dir {
        Some(d) => persist::load(d)?,
        None => None,
    };
    let instances = load_instances(&cfg, snapshot.as_mut());
    let shared = new_shared(&cfg, instances, spool, spool_guard);
    let n = cfg.instances.len() as u16;
    let port_at = |off: u16| {
        if cfg.port == 0 {
            0
        } else {
            cfg.port.saturating_add(off)
        }
    };
    let mut tasks = Vec::new();

    let (id_l, identity_url) = bind(cfg.host, port_at(n + 1)).await?;
    let ctx = Ctx {
        shared: shared.clone(),
        kind: ListenerKind::Identity,
        base_url: identity_url.clone(),
    };
    tasks.push(serve(id_l, identity_router(ctx)));

    let mut design_url = None;
    if cfg.instances.iter().any(|s| s.generation == 3) {
        let (l, url) = bind(cfg.host, port_at(n)).await?;
        let ctx = Ctx {
            shared: shared.clone(),
            kind: ListenerKind::Design,
            base_url: url.clone(),
        };
        tasks.push(serve(l, oic_router(ctx)));
        design_url = Some(url);
    }

    let mut infos = Vec::new();
    for (idx, inst) in shared.instances.iter().enumerate() {
        let id = &inst.ident;
        let app_name = format!(
            "OICINST_{}",
            id.integration_instance.as_deref().unwrap_or(&id.name)
        );
        let app_id = shared.identity().add_oic_app(&app_name, &id.audience);
        let base_url = if id.generation == 2 {
            let (l, url) = bind(cfg.host, port_at(idx as u16)).await?;
            let ctx = Ctx {
                shared: shared.clone(),
                kind: ListenerKind::Gen2(idx),
                base_url: url.clone(),
            };
            tasks.push(serve(l, oic_router(ctx)));
            url
        } else {
            design_url.clone().unwrap_or_default()
        };
        infos.push(SimInstanceInfo {
            name: id.name.clone(),
            generation: id.generation,
            base_url,
            integration_instance: id.integration_instance.clone(),
            token_url: format!("{identity_url}/oauth2/v1/token"),
            client_id: id.client_id.clone(),
            client_secret: id.client_secret.clone(),
            scope: id.scope.clone(),
            username: id.username.clone(),
            password: id.password.clone(),
            idcs_app_id: app_id,
            idcs_app_name: app_name,
        });
    }
    if let Some(snap) = snapshot.as_mut() {
        *shared.identity() = std::mem::take(&mut snap.identity);
    } else {
        seed::identity(&mut shared.identity());
    }
    Ok(SimHandle {
        info: SimInfo {
            identity_url,
            instances: infos,
            admin_client_id: shared.admin_client_id.clone(),
            admin_client_secret: shared.admin_client_secret.clone(),
            admin_scope: scim::ADMIN_SCOPE.to_string(),
        },
        shared,
        tasks: Mutex::new(tasks),
    })
}

/// The state every listener shares.
fn new_shared(
    cfg: &SimConfig,
    instances: Vec<Arc<Instance>>,
    spool: PathBuf,
    spool_guard: Option<tempfile::TempDir>,
) -> Arc<Shared> {
    let (admin_client_id, admin_client_secret) = admin_credentials(cfg.seed);
    Arc::new(Shared {
        instances,
        tokens: Mutex::new(HashMap::new()),
        token_ttl_ms: AtomicU64::new(cfg.token_ttl.as_millis() as u64),
        async_activation_ms: AtomicU64::new(DEFAULT_ASYNC_ACTIVATION.as_millis() as u64),
        schedule_tick_ms: AtomicU64::new(0),
        token_counter: AtomicU64::new(1),
        seed: cfg.seed,
        faults: faults::FaultState::new(cfg.seed),
        identity: Mutex::new(scim::IdentityStore::new(cfg.seed)),
        admin_client_id,
        admin_client_secret,
        state_dir: cfg.state_dir.clone(),
        spool,
        spool_guard,
        jobs: jobs::JobStore::default(),
        jwt_keys: Default::default(),
        clock: Default::default(),
        stamped_exports: std::sync::atomic::AtomicBool::new(true),
    })
}

/// Generations are 2 or 3 and names are unique: the listeners and snapshots key on them.
fn check_instances(cfg: &SimConfig) -> anyhow::Result<()> {
    for spec in &cfg.instances {
        anyhow::ensure!(
            spec.generation == 2 || spec.generation == 3,
            "instance '{}': generation must be 2 or 3",
            spec.name
        );
    }
    let mut names: Vec<&str> = cfg.instances.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    anyhow::ensure!(
        names.len() == cfg.instances.len(),
        "instance names must be unique"
    );

    Ok(())
}

/// The directory export bodies are spooled to: under the state directory when there is one (it
/// survives a restart with the state), else a temporary directory removed with the emulator.
fn spool_dir(cfg: &SimConfig) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    Ok(match &cfg.state_dir {
        Some(d) => {
            let s = d.join("spool");
            std::fs::create_dir_all(&s).with_context(|| format!("creating {}", s.display()))?;
            (s, None)
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("ferry-sim-")
                .tempdir()
                .context("creating the emulator spool directory")?;
            (t.path().to_path_buf(), Some(t))
        }
    })
}

/// Every configured instance, from the saved snapshot when it has one, else freshly seeded.
fn load_instances(
    cfg: &SimConfig,
    mut snapshot: Option<&mut persist::Snapshot>,
) -> Vec<Arc<Instance>> {
    cfg.instances
        .iter()
        .map(|spec| {
            let saved = snapshot
                .as_mut()
                .and_then(|s| s.instances.remove(&spec.name));
            Arc::new(Instance::new(
                make_ident(spec, cfg.seed),
                saved.unwrap_or_else(|| seed_data(spec, cfg.seed)),
            ))
        })
        .collect()
}

/// The identity domain's admin client, derived from the seed so a restarted emulator keeps it.
fn admin_credentials(seed: u64) -> (String, String) {
    let mut rng = StdRng::seed_from_u64(name_seed(seed, "__identity_admin__"));
    let mut hex = |n: usize| -> String {
        (0..n)
            .map(|_| std::char::from_digit(rng.random_range(0..16u32), 16).unwrap_or('0'))
            .collect()
    };
    (hex(32), format!("idcscs-{}-{}", hex(8), hex(24)))
}
