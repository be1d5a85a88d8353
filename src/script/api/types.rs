//! The script types `Integration` and `Artifact`: their properties, their views (`to_string`,
//! `to_debug`, `to_map`, `to_json`, from [`crate::ops::view`]) and `Artifact.verify`.

use rhai::plugin::*;
use rhai::{Array, Dynamic, Engine, Map};

use super::args::{RhaiResultOf, map_of};
use crate::artifact::Artifact;
use crate::oic::Integration;
use crate::ops::view::{ArtifactView, IntegrationView, artifact_text, integration_text};
use crate::script::api::OrUnit;
use crate::script::errors::{self, Ctx};

/// A view as JSON (through the map: keys sorted, as scripts see them).
fn json_of(view: &impl serde::Serialize) -> RhaiResultOf<String> {
    super::util::to_json(&Dynamic::from_map(map_of(view)?))
}

fn strings(v: &[String]) -> Array {
    v.iter().cloned().map(Dynamic::from).collect()
}

#[export_module]
mod integration_api {
    use super::*;

    /// The integration code (`HR_SYNC`).
    ///
    /// # Example
    /// ```rhai
    /// print(i.code);
    /// ```
    #[rhai_fn(get = "code", pure)]
    pub fn code(i: &mut Integration) -> String {
        i.code.clone()
    }

    /// The version, `MM.mm.pppp` (`01.00.0000`).
    ///
    /// # Example
    /// ```rhai
    /// print(i.version);
    /// ```
    #[rhai_fn(get = "version", pure)]
    pub fn version(i: &mut Integration) -> String {
        i.version.clone()
    }

    /// `CODE|VERSION`.
    ///
    /// # Example
    /// ```rhai
    /// print(i.id);
    /// ```
    #[rhai_fn(get = "id", pure)]
    pub fn id(i: &mut Integration) -> String {
        format!("{}|{}", i.code, i.version)
    }

    /// The display name.
    ///
    /// # Example
    /// ```rhai
    /// print(i.name);
    /// ```
    #[rhai_fn(get = "name", pure)]
    pub fn name(i: &mut Integration) -> String {
        i.name.clone()
    }

    /// `CONFIGURED`, `ACTIVATED`, `ACTIVATION_INPROGRESS`, `FAILEDACTIVATION` or `INPROGRESS` (incomplete draft).
    ///
    /// # Example
    /// ```rhai
    /// print(i.status);
    /// ```
    #[rhai_fn(get = "status", pure)]
    pub fn status(i: &mut Integration) -> String {
        i.status.clone()
    }

    /// True while someone edits it (OIC refuses to export it).
    ///
    /// # Example
    /// ```rhai
    /// print(i.locked);
    /// ```
    #[rhai_fn(get = "locked", pure)]
    pub fn locked(i: &mut Integration) -> bool {
        i.locked
    }

    /// True when a schedule is defined.
    ///
    /// # Example
    /// ```rhai
    /// print(i.scheduled);
    /// ```
    #[rhai_fn(get = "scheduled", pure)]
    pub fn scheduled(i: &mut Integration) -> bool {
        i.schedule_defined
    }

    /// `DEVELOPED`, `CUSTOM` or `PREBUILT` (accelerators cannot be exported).
    ///
    /// # Example
    /// ```rhai
    /// print(i.project_type);
    /// ```
    #[rhai_fn(get = "project_type", pure)]
    pub fn project_type(i: &mut Integration) -> String {
        i.project_type.clone()
    }

    /// The OIC 3 project code, or `()` for a global integration.
    ///
    /// # Example
    /// ```rhai
    /// print(i.project);
    /// ```
    #[rhai_fn(get = "project", pure)]
    pub fn project(i: &mut Integration) -> Dynamic {
        i.project_code.clone().or_unit()
    }

    /// When it was last changed (as OIC reports it).
    ///
    /// # Example
    /// ```rhai
    /// print(i.last_updated);
    /// ```
    #[rhai_fn(get = "last_updated", pure)]
    pub fn last_updated(i: &mut Integration) -> String {
        i.last_updated.clone()
    }

    /// Who changed it last (an e-mail or user name): the owner notified about failures.
    ///
    /// # Example
    /// ```rhai
    /// print(i.last_updated_by);
    /// ```
    #[rhai_fn(get = "last_updated_by", pure)]
    pub fn last_updated_by(i: &mut Integration) -> String {
        i.last_updated_by.clone()
    }

    /// The codes of the connections it uses (on the items of `inst.integrations()`, those of its endpoints).
    ///
    /// # Example
    /// ```rhai
    /// print(i.connections);
    /// ```
    #[rhai_fn(get = "connections", pure)]
    pub fn connections(i: &mut Integration) -> Array {
        strings(&i.connections)
    }

    /// The names of the lookups it uses; empty on the items of `inst.integrations()` (OIC's list does not carry them): `inst.integration(id)` has them.
    ///
    /// # Example
    /// ```rhai
    /// print(i.lookups);
    /// ```
    #[rhai_fn(get = "lookups", pure)]
    pub fn lookups(i: &mut Integration) -> Array {
        strings(&i.lookups)
    }

    /// `CODE|VERSION  STATUS  Name`.
    ///
    /// # Example
    /// ```rhai
    /// print(i);
    /// ```
    #[rhai_fn(name = "to_string", pure)]
    pub fn to_string(i: &mut Integration) -> String {
        integration_text(i)
    }

    /// Same as `to_string`.
    ///
    /// # Example
    /// ```rhai
    /// debug(i);
    /// ```
    #[rhai_fn(name = "to_debug", pure)]
    pub fn to_debug(i: &mut Integration) -> String {
        integration_text(i)
    }

    /// The integration's fields as a map.
    ///
    /// # Example
    /// ```rhai
    /// let m = i.to_map();
    /// ```
    #[rhai_fn(name = "to_map", pure, return_raw)]
    pub fn to_map(i: &mut Integration) -> RhaiResultOf<Map> {
        map_of(&IntegrationView::of(i))
    }

    /// The integration's fields as JSON.
    ///
    /// # Example
    /// ```rhai
    /// print(i.to_json());
    /// ```
    #[rhai_fn(name = "to_json", pure, return_raw)]
    pub fn to_json(i: &mut Integration) -> RhaiResultOf<String> {
        json_of(&IntegrationView::of(i))
    }
}

#[export_module]
mod artifact_api {
    use super::*;

    /// `integration`, `project`, `lookup`, `library` or `package`.
    ///
    /// # Example
    /// ```rhai
    /// print(a.kind);
    /// ```
    #[rhai_fn(get = "kind", pure)]
    pub fn kind(a: &mut Artifact) -> String {
        a.key.kind.as_str().to_string()
    }

    /// The code of what the archive holds.
    ///
    /// # Example
    /// ```rhai
    /// print(a.code);
    /// ```
    #[rhai_fn(get = "code", pure)]
    pub fn code(a: &mut Artifact) -> String {
        a.key.code.clone()
    }

    /// The version (empty for kinds without one).
    ///
    /// # Example
    /// ```rhai
    /// print(a.version);
    /// ```
    #[rhai_fn(get = "version", pure)]
    pub fn version(a: &mut Artifact) -> String {
        a.key.version.clone()
    }

    /// `CODE|VERSION`.
    ///
    /// # Example
    /// ```rhai
    /// print(a.id);
    /// ```
    #[rhai_fn(get = "id", pure)]
    pub fn id(a: &mut Artifact) -> String {
        a.key.id()
    }

    /// Size in bytes.
    ///
    /// # Example
    /// ```rhai
    /// print(a.size);
    /// ```
    #[rhai_fn(get = "size", pure)]
    pub fn size(a: &mut Artifact) -> i64 {
        i64::try_from(a.size).unwrap_or(i64::MAX)
    }

    /// The sha256 of the archive (hex).
    ///
    /// # Example
    /// ```rhai
    /// print(a.sha256);
    /// ```
    #[rhai_fn(get = "sha256", pure)]
    pub fn sha256(a: &mut Artifact) -> String {
        a.sha256.clone()
    }

    /// Where it came from: the instance it was exported from.
    ///
    /// # Example
    /// ```rhai
    /// print(a.source);
    /// ```
    #[rhai_fn(get = "source", pure)]
    pub fn source(a: &mut Artifact) -> String {
        a.source.clone()
    }

    /// Its status on the source (`ACTIVATED`, ...), or `()`.
    ///
    /// # Example
    /// ```rhai
    /// print(a.source_status);
    /// ```
    #[rhai_fn(get = "source_status", pure)]
    pub fn source_status(a: &mut Artifact) -> Dynamic {
        a.source_status.clone().or_unit()
    }

    /// The conventional file name (`CODE_VERSION.iar`).
    ///
    /// # Example
    /// ```rhai
    /// print(a.file_name);
    /// ```
    #[rhai_fn(get = "file_name", pure)]
    pub fn file_name(a: &mut Artifact) -> String {
        a.file_name()
    }

    /// `kind CODE|VERSION (size bytes, sha256 prefix)`.
    ///
    /// # Example
    /// ```rhai
    /// print(a);
    /// ```
    #[rhai_fn(name = "to_string", pure)]
    pub fn to_string(a: &mut Artifact) -> String {
        artifact_text(a)
    }

    /// Same as `to_string`.
    ///
    /// # Example
    /// ```rhai
    /// debug(a);
    /// ```
    #[rhai_fn(name = "to_debug", pure)]
    pub fn to_debug(a: &mut Artifact) -> String {
        artifact_text(a)
    }

    /// The artifact's fields as a map.
    ///
    /// # Example
    /// ```rhai
    /// let m = a.to_map();
    /// ```
    #[rhai_fn(name = "to_map", pure, return_raw)]
    pub fn to_map(a: &mut Artifact) -> RhaiResultOf<Map> {
        map_of(&ArtifactView::of(a))
    }

    /// The artifact's fields as JSON.
    ///
    /// # Example
    /// ```rhai
    /// print(a.to_json());
    /// ```
    #[rhai_fn(name = "to_json", pure, return_raw)]
    pub fn to_json(a: &mut Artifact) -> RhaiResultOf<String> {
        json_of(&ArtifactView::of(a))
    }

    /// Re-reads the file and checks its size and sha256; raises an `integrity` error on a mismatch.
    ///
    /// # Example
    /// ```rhai
    /// a.verify();
    /// ```
    #[rhai_fn(pure, volatile, return_raw)]
    pub fn verify(a: &mut Artifact) -> RhaiResultOf<bool> {
        if a.is_planned() {
            return Ok(true);
        }
        a.verify().map(|_| true).map_err(|e| {
            let ctx = Ctx::default().artifact(a.key.id());
            errors::script_error("integrity", None, e.to_string(), ctx)
        })
    }
}

/// Registers the two types, their properties and methods.
pub fn register(e: &mut Engine) {
    e.register_type_with_name::<Integration>("Integration");
    e.register_type_with_name::<Artifact>("Artifact");
    e.register_global_module(exported_module!(integration_api).into());
    e.register_global_module(exported_module!(artifact_api).into());
}
