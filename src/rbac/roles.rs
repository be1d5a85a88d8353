//! Role names and role maps: who gets which OIC role (or project role), from a Rhai map or a CSV
//! file.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{PrincipalKind, RbacError};

/// The OIC application roles (identity-domain app roles of the OIC application).
pub const OIC_ROLES: &[&str] = &[
    "ServiceAdministrator",
    "ServiceDeveloper",
    "ServiceViewer",
    "ServiceMonitor",
    "ServiceDeployer",
    "ServiceUser",
    "ServiceInvoker",
    "ServiceEndUser",
];

/// The project ACL roles (OIC 3).
pub const PROJECT_ROLES: &[&str] = &["administrators", "editors", "viewers", "monitors"];

fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// The canonical OIC role name for `s`: `ServiceDeveloper`, `Service Developer`,
/// `service_developer` and `developer` are all `ServiceDeveloper`; `admin` is
/// `ServiceAdministrator`.
pub fn oic_role(s: &str) -> Option<&'static str> {
    let k = squash(s);
    let k = k.strip_prefix("service").unwrap_or(&k);
    Some(match k {
        "administrator" | "admin" => "ServiceAdministrator",
        "developer" => "ServiceDeveloper",
        "viewer" => "ServiceViewer",
        "monitor" => "ServiceMonitor",
        "deployer" => "ServiceDeployer",
        "user" => "ServiceUser",
        "invoker" => "ServiceInvoker",
        "enduser" => "ServiceEndUser",
        _ => return None,
    })
}

/// The project ACL role for `s`: `administrators`/`admin`/`ServiceAdministrator`,
/// `editors`/`editor`/`ServiceDeveloper`, `viewers`/`ServiceViewer`, `monitors`/`ServiceMonitor`.
pub fn project_role(s: &str) -> Option<&'static str> {
    let k = squash(s);
    let k = k.strip_prefix("service").unwrap_or(&k);
    let k = k.strip_suffix('s').unwrap_or(k);
    Some(match k {
        "administrator" | "admin" => "administrators",
        "editor" | "developer" => "editors",
        "viewer" => "viewers",
        "monitor" => "monitors",
        _ => return None,
    })
}

/// A user (by e-mail) or a group (by name).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// The e-mail of a user, the name of a group.
    pub name: String,
}

impl Principal {
    /// `group:NAME` is a group, an e-mail is a user, any other name is a group.
    pub fn parse(s: &str) -> Principal {
        let s = s.trim();
        if let Some(g) = s.strip_prefix("group:") {
            return Principal {
                kind: PrincipalKind::Group,
                name: g.trim().to_string(),
            };
        }
        if let Some(u) = s.strip_prefix("user:") {
            return Principal {
                kind: PrincipalKind::User,
                name: u.trim().to_string(),
            };
        }
        Principal {
            kind: if s.contains('@') {
                PrincipalKind::User
            } else {
                PrincipalKind::Group
            },
            name: s.to_string(),
        }
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.name)
    }
}

/// One line of a role map: a principal, a role and, for project access, the project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleEntry {
    pub principal: Principal,
    /// Canonical: an OIC role (`ServiceDeveloper`) without a project, an ACL role (`editors`)
    /// with one.
    pub role: String,
    pub project: Option<String>,
}

/// Who gets which role: the same recipe serves several teams with different maps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleMap {
    pub entries: Vec<RoleEntry>,
}

impl RoleMap {
    /// Adds one entry, checking the role name. `source` names where it came from, for errors.
    pub fn push(
        &mut self,
        principal: Principal,
        role: &str,
        project: Option<&str>,
        source: &str,
    ) -> Result<(), RbacError> {
        if principal.name.is_empty() {
            return Err(RbacError::RoleMap {
                origin: source.into(),
                message: "empty user or group".into(),
            });
        }
        let project = project.map(str::trim).filter(|p| !p.is_empty());
        let canon = match project {
            None => oic_role(role).ok_or_else(|| RbacError::RoleMap {
                origin: source.into(),
                message: format!(
                    "unknown OIC role `{role}` (known: {})",
                    OIC_ROLES.join(", ")
                ),
            })?,
            Some(_) => project_role(role).ok_or_else(|| RbacError::RoleMap {
                origin: source.into(),
                message: format!(
                    "unknown project role `{role}` (known: administrators, editors, viewers, monitors, or ServiceAdministrator, ServiceDeveloper, ServiceViewer, ServiceMonitor)"
                ),
            })?,
        };
        let e = RoleEntry {
            principal,
            role: canon.to_string(),
            project: project.map(str::to_string),
        };
        if !self.entries.contains(&e) {
            self.entries.push(e);
        }
        Ok(())
    }

    /// Reads a `.csv` file (the one file format of role maps).
    pub fn load(path: &Path) -> Result<RoleMap, RbacError> {
        let shown = path.display().to_string();
        let is_csv = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        if !is_csv {
            return Err(RbacError::RoleMap {
                origin: shown,
                message: "expected a .csv file (`user or group, role[, project]`)".into(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| RbacError::RoleMap {
            origin: shown.clone(),
            message: format!("cannot read: {e}"),
        })?;
        RoleMap::parse_csv(&text, &shown)
    }

    /// CSV: `user or group, role[, project]`, one per line; a header line (`...,role,...`),
    /// blank lines and `#` comments are skipped. A user is an e-mail; `group:NAME` or any other
    /// name is a group. Several roles may be given in one field separated by `;`.
    pub fn parse_csv(text: &str, source: &str) -> Result<RoleMap, RbacError> {
        let mut m = RoleMap::default();
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .comment(Some(b'#'))
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        for (i, rec) in rdr.records().enumerate() {
            let rec = rec.map_err(|e| RbacError::RoleMap {
                origin: source.into(),
                message: e.to_string(),
            })?;
            let line = rec.position().map_or(i as u64 + 1, |p| p.line());
            let at = format!("{source}:{line}");
            if i == 0 && rec.get(1).is_some_and(|c| c.eq_ignore_ascii_case("role")) {
                continue;
            }
            if !(2..=3).contains(&rec.len()) {
                return Err(RbacError::RoleMap {
                    origin: at,
                    message: format!(
                        "expected `user or group, role[, project]`, found {} field(s)",
                        rec.len()
                    ),
                });
            }
            let p = Principal::parse(&rec[0]);
            for role in rec[1].split(';').map(str::trim).filter(|r| !r.is_empty()) {
                m.push(p.clone(), role, rec.get(2), &at)?;
            }
        }
        Ok(m)
    }
}

/// A role, or a list of roles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, expecting = "expected a role or a list of roles (strings)")]
pub enum Roles {
    One(String),
    Many(Vec<String>),
}

impl Roles {
    fn list(self) -> Vec<String> {
        match self {
            Roles::One(r) => vec![r],
            Roles::Many(v) => v,
        }
    }
}

/// One line of a role map as recipes write it: `user` or `group` (or `principal`, parsed like a
/// CSV field), `role` or `roles`, and `project` for project access. `rbac::load_roles` returns
/// these; unknown keys are refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleRow {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Roles>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Roles>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

impl RoleMap {
    /// A role map from a recipe's value: the path of a `.csv` file, a map
    /// (`"e-mail or group" => role or [roles]`), or an array of [`RoleRow`] maps. A value of
    /// the wrong shape is [`RbacError::Usage`]; an unknown role [`RbacError::RoleMap`].
    pub fn from_value(v: &Value) -> Result<RoleMap, RbacError> {
        let usage = |at: &str, m: &dyn std::fmt::Display| RbacError::Usage(format!("{at}: {m}"));
        let mut m = RoleMap::default();
        match v {
            Value::String(path) => return RoleMap::load(Path::new(path)),
            Value::Object(map) => {
                for (who, r) in map {
                    let at = format!("roles[\"{who}\"]");
                    let roles = Roles::deserialize(r).map_err(|e| usage(&at, &e))?;
                    for role in roles.list() {
                        m.push(Principal::parse(who), &role, None, &at)?;
                    }
                }
            }
            Value::Array(rows) => {
                for (i, row) in rows.iter().enumerate() {
                    let at = format!("roles[{i}]");
                    if !row.is_object() {
                        let like = "expected a map like #{ user: \"jane@example.com\", role: \"ServiceDeveloper\" }";
                        return Err(usage(&at, &like));
                    }
                    let r = RoleRow::deserialize(row).map_err(|e| {
                        usage(&at, &e.to_string().replace("unknown field", "unknown key"))
                    })?;
                    let p = match (r.user, r.group, r.principal) {
                        (Some(u), None, None) => Principal {
                            kind: PrincipalKind::User,
                            name: u,
                        },
                        (None, Some(g), None) => Principal {
                            kind: PrincipalKind::Group,
                            name: g,
                        },
                        (None, None, Some(p)) => Principal::parse(&p),
                        _ => return Err(usage(&at, &"give one of `user`, `group`")),
                    };
                    let roles = match (r.role, r.roles) {
                        (Some(x), None) | (None, Some(x)) => x.list(),
                        _ => return Err(usage(&at, &"give `role` or `roles`")),
                    };
                    for role in roles {
                        m.push(p.clone(), &role, r.project.as_deref(), &at)?;
                    }
                }
            }
            _ => {
                let what =
                    "expected a file path, a map of user/group to roles, or an array of maps";
                return Err(usage("roles", &what));
            }
        }
        Ok(m)
    }

    /// The entries as [`RoleRow`]s (`user` or `group`, `role`, `project`).
    pub fn rows(&self) -> Vec<RoleRow> {
        self.entries
            .iter()
            .map(|e| {
                let name = Some(e.principal.name.clone());
                let user = e.principal.kind == PrincipalKind::User;
                RoleRow {
                    user: if user { name.clone() } else { None },
                    group: if user { None } else { name },
                    role: Some(Roles::One(e.role.clone())),
                    project: e.project.clone(),
                    ..Default::default()
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_normalise() {
        for s in [
            "ServiceDeveloper",
            "Service Developer",
            "service_developer",
            "developer",
            "SERVICE-DEVELOPER",
        ] {
            assert_eq!(oic_role(s), Some("ServiceDeveloper"), "{s}");
        }
        assert_eq!(
            oic_role("Service Administrator"),
            Some("ServiceAdministrator")
        );
        assert_eq!(oic_role("admin"), Some("ServiceAdministrator"));
        assert_eq!(oic_role("Service Invoker"), Some("ServiceInvoker"));
        assert_eq!(oic_role("Service End User"), Some("ServiceEndUser"));
        assert_eq!(oic_role("Superuser"), None);
        assert_eq!(project_role("Editors"), Some("editors"));
        assert_eq!(project_role("ServiceDeveloper"), Some("editors"));
        assert_eq!(project_role("Service Monitor"), Some("monitors"));
        assert_eq!(project_role("ServiceDeployer"), None);
    }

    #[test]
    fn csv_with_header_comments_groups_projects() {
        let m = RoleMap::parse_csv(
            "principal,role,project\n# team A\njane@example.com, Service Developer\n\"OIC Devs, EU\",ServiceViewer;ServiceMonitor\ngroup:ops@team,administrators,ORDERS\n",
            "roles.csv",
        )
        .unwrap();
        assert_eq!(m.entries.len(), 4);
        assert_eq!(m.entries[0].principal.kind, PrincipalKind::User);
        assert_eq!(m.entries[0].role, "ServiceDeveloper");
        assert_eq!(m.entries[1].principal.name, "OIC Devs, EU");
        assert_eq!(m.entries[1].principal.kind, PrincipalKind::Group);
        assert_eq!(m.entries[2].role, "ServiceMonitor");
        assert_eq!(m.entries[3].principal.kind, PrincipalKind::Group);
        assert_eq!(m.entries[3].principal.name, "ops@team");
        assert_eq!(m.entries[3].role, "administrators");
        assert_eq!(m.entries[3].project.as_deref(), Some("ORDERS"));
        let e = RoleMap::parse_csv("jane@example.com,Boss\n", "r.csv")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("role map r.csv:1: unknown OIC role `Boss`"),
            "{e}"
        );
        let e = RoleMap::parse_csv("a,b,c,d\n", "r.csv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("r.csv:1"), "{e}");
    }

    #[test]
    fn role_maps_from_values() {
        use serde_json::json;
        let m = RoleMap::from_value(&json!({
            "jane@example.com": "Service Developer",
            "group:OIC-Developers": ["ServiceViewer", "ServiceMonitor"],
        }))
        .unwrap();
        assert_eq!(m.entries.len(), 3);
        let m = RoleMap::from_value(&json!([
            { "user": "a@x.io", "roles": ["ServiceViewer"] },
            { "group": "Ops", "role": "editors", "project": "HR" },
            { "principal": "b@x.io", "role": "ServiceMonitor" },
        ]))
        .unwrap();
        assert_eq!(m.entries[1].project.as_deref(), Some("HR"));
        assert_eq!(m.entries[2].principal.kind, PrincipalKind::User);
        let rows = m.rows();
        assert_eq!(rows[1].group.as_deref(), Some("Ops"));
        assert_eq!(
            RoleMap::from_value(&serde_json::to_value(&rows).unwrap()).unwrap(),
            m
        );

        let err = |v: Value| RoleMap::from_value(&v).unwrap_err().to_string();
        assert!(
            err(json!([{ "user": "a@x.io", "role": "ServiceViewer", "team": 1 }]))
                .starts_with("roles[0]: unknown key `team`")
        );
        assert_eq!(
            err(json!([{ "role": "ServiceViewer" }])),
            "roles[0]: give one of `user`, `group`"
        );
        assert_eq!(
            err(json!([{ "user": "a@x.io" }])),
            "roles[0]: give `role` or `roles`"
        );
        assert!(err(json!([1])).starts_with("roles[0]: expected a map like"));
        assert!(err(json!({ "a@x.io": 3 })).contains("expected a role or a list of roles"));
        assert!(err(json!(5)).starts_with("roles: expected a file path"));
        assert!(matches!(
            RoleMap::from_value(&json!({ "a@x.io": "Nope" })),
            Err(RbacError::RoleMap { .. })
        ));
    }
}
