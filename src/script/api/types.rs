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
    props!(e, i: Integration {
        code -> String: "The integration code (`HR_SYNC`).", i.code.clone();
        version -> String: "The version, `MM.mm.pppp` (`01.00.0000`).", i.version.clone();
        id -> String: "`CODE|VERSION`.", format!("{}|{}", i.code, i.version);
        name -> String: "The display name.", i.name.clone();
        status -> String: "`CONFIGURED`, `ACTIVATED`, `ACTIVATION_INPROGRESS`, `FAILEDACTIVATION` or `INPROGRESS` (incomplete draft).", i.status.clone();
        locked -> bool: "True while someone edits it (OIC refuses to export it).", i.locked;
        scheduled -> bool: "True when a schedule is defined.", i.schedule_defined;
        project_type -> String: "`DEVELOPED`, `CUSTOM` or `PREBUILT` (accelerators cannot be exported).", i.project_type.clone();
        project -> Dynamic: "The OIC 3 project code, or `()` for a global integration.", i.project_code.clone().or_unit();
        last_updated -> String: "When it was last changed (as OIC reports it).", i.last_updated.clone();
        last_updated_by -> String: "Who changed it last (an e-mail or user name): the owner notified about failures.", i.last_updated_by.clone();
        connections -> Array: "The codes of the connections it uses (on the items of `inst.integrations()`, those of its endpoints).", strings(&i.connections);
        lookups -> Array: "The names of the lookups it uses; empty on the items of `inst.integrations()` (OIC's list does not carry them): `inst.integration(id)` has them.", strings(&i.lookups);
    });
    props!(e, a: Artifact {
        kind -> String: "`integration`, `project`, `lookup`, `library` or `package`.", a.key.kind.as_str().to_string();
        code -> String: "The code of what the archive holds.", a.key.code.clone();
        version -> String: "The version (empty for kinds without one).", a.key.version.clone();
        id -> String: "`CODE|VERSION`.", a.key.id();
        size -> i64: "Size in bytes.", i64::try_from(a.size).unwrap_or(i64::MAX);
        sha256 -> String: "The sha256 of the archive (hex).", a.sha256.clone();
        source -> String: "Where it came from: the instance it was exported from.", a.source.clone();
        source_status -> Dynamic: "Its status on the source (`ACTIVATED`, ...), or `()`.", a.source_status.clone().or_unit();
        file_name -> String: "The conventional file name (`CODE_VERSION.iar`).", a.file_name();
    });
    e.register_global_module(exported_module!(integration_api).into());
    e.register_global_module(exported_module!(artifact_api).into());
}
