//! The script types `Integration` and `Artifact`: their properties, their views (`to_string`,
//! `to_debug`, `to_map`, `to_json`, from [`crate::ops::view`]) and `Artifact.verify`.

use rhai::plugin::*;
use rhai::{Array, Dynamic, Engine, FnNamespace, FuncRegistration, Map};

use super::args::{RhaiResultOf, map_of};
use crate::artifact::Artifact;
use crate::oic::Integration;
use crate::ops::view::{ArtifactView, IntegrationView, artifact_text, integration_text};
use crate::script::api::OrUnit;
use crate::script::errors::{self, Ctx};

fn strings(v: &[String]) -> Array {
    v.iter().cloned().map(Dynamic::from).collect()
}

/// Registers `to_map` and `to_json` of script type `T` (`v: T` in the examples): `map`, its
/// fields as a map, and the same as JSON (keys sorted, as scripts see them).
fn views<T: rhai::Variant + Clone>(
    e: &mut Engine,
    v: &str,
    t: &str,
    map: fn(&T) -> RhaiResultOf<Map>,
) {
    let (what, this) = (t.to_lowercase(), format!("{v}: {t}"));
    let reg = |name: &str, ret: &str, text: &str, ex: String| {
        let text = format!("The {what}'s fields as {text}.\n\n# Example\n```rhai\n{ex}\n```");
        FuncRegistration::new(name)
            .with_namespace(FnNamespace::Global)
            .with_volatility(true)
            .with_params_info([this.as_str(), ret])
            .with_comments([super::doc(&text)])
    };
    let m = reg("to_map", "Map", "a map", format!("let m = {v}.to_map();"));
    m.register_into_engine(e, move |x: &mut T| map(x));
    let j = reg(
        "to_json",
        "String",
        "JSON",
        format!("print({v}.to_json());"),
    );
    j.register_into_engine(e, move |x: &mut T| super::util::to_json(&map(x)?.into()));
}

#[export_module]
mod artifact_api {
    use super::*;

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
        fn to_string -> String: "`CODE|VERSION  STATUS  Name`.", integration_text(i);
        fn to_debug -> String: "Same as `to_string`." => "debug(i);", integration_text(i);
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
        fn to_string -> String: "`kind CODE|VERSION (size bytes, sha256 prefix)`.", artifact_text(a);
        fn to_debug -> String: "Same as `to_string`." => "debug(a);", artifact_text(a);
    });
    views(e, "i", "Integration", |i| map_of(&IntegrationView::of(i)));
    views(e, "a", "Artifact", |a| map_of(&ArtifactView::of(a)));
    e.register_global_module(exported_module!(artifact_api).into());
}
