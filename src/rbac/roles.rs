//! Role names and role maps: who gets which OIC role (or project role), from a Rhai map or a CSV
//! file.

use std::path::Path;

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
}
