//! Role names and role maps: who gets which OIC role (or project role), from a Rhai map, a CSV
//! file or a TOML file.

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

    /// Reads a `.csv` or `.toml` file.
    pub fn load(path: &Path) -> Result<RoleMap, RbacError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| RbacError::RoleMap {
            origin: shown.clone(),
            message: format!("cannot read: {e}"),
        })?;
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("csv") => RoleMap::parse_csv(&text, &shown),
            Some("toml") => RoleMap::parse_toml(&text, &shown),
            _ => Err(RbacError::RoleMap {
                origin: shown,
                message: "expected a .csv or .toml file".into(),
            }),
        }
    }

    /// CSV: `user or group, role[, project]`, one per line; a header line (`...,role,...`),
    /// blank lines and `#` comments are skipped. A user is an e-mail; `group:NAME` or any other
    /// name is a group. Several roles may be given in one field separated by `;`.
    pub fn parse_csv(text: &str, source: &str) -> Result<RoleMap, RbacError> {
        let mut m = RoleMap::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let cols = split_csv(line);
            let at = format!("{source}:{}", n + 1);
            if n == 0
                && cols
                    .get(1)
                    .is_some_and(|c| c.trim().eq_ignore_ascii_case("role"))
            {
                continue;
            }
            if cols.len() < 2 || cols.len() > 3 {
                return Err(RbacError::RoleMap {
                    origin: at,
                    message: format!(
                        "expected `user or group, role[, project]`, found {} field(s)",
                        cols.len()
                    ),
                });
            }
            let p = Principal::parse(&cols[0]);
            for role in cols[1].split(';').map(str::trim).filter(|r| !r.is_empty()) {
                m.push(p.clone(), role, cols.get(2).map(String::as_str), &at)?;
            }
        }
        Ok(m)
    }

    /// TOML: `[[grant]]` tables with `user` or `group`, `role` or `roles`, optional `project`;
    /// and/or `[users]` / `[groups]` tables mapping a name to a role or a list of roles.
    pub fn parse_toml(text: &str, source: &str) -> Result<RoleMap, RbacError> {
        let err = |m: String| RbacError::RoleMap {
            origin: source.into(),
            message: m,
        };
        let t: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| err(e.message().to_string()))?;
        let mut m = RoleMap::default();
        let roles_of = |v: &toml::Value, key: &str| -> Result<Vec<String>, RbacError> {
            match v {
                toml::Value::String(s) => Ok(vec![s.clone()]),
                toml::Value::Array(a) => a
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| err(format!("`{key}`: expected role names")))
                    })
                    .collect(),
                _ => Err(err(format!("`{key}`: expected a role or a list of roles"))),
            }
        };
        for (k, v) in &t {
            match k.as_str() {
                "grant" | "grants" => {
                    let arr = v
                        .as_array()
                        .ok_or_else(|| err(format!("`{k}`: expected [[{k}]] tables")))?;
                    for (i, g) in arr.iter().enumerate() {
                        let key = format!("{k}[{i}]");
                        let g = g
                            .as_table()
                            .ok_or_else(|| err(format!("`{key}`: expected a table")))?;
                        let p = match (g.get("user"), g.get("group")) {
                            (Some(toml::Value::String(u)), None) => Principal {
                                kind: PrincipalKind::User,
                                name: u.clone(),
                            },
                            (None, Some(toml::Value::String(gr))) => Principal {
                                kind: PrincipalKind::Group,
                                name: gr.clone(),
                            },
                            _ => {
                                return Err(err(format!(
                                    "`{key}`: expected one of `user = \"e-mail\"` or `group = \"name\"`"
                                )));
                            }
                        };
                        let roles = match (g.get("role"), g.get("roles")) {
                            (Some(r), None) | (None, Some(r)) => roles_of(r, &key)?,
                            _ => return Err(err(format!("`{key}`: expected `role` or `roles`"))),
                        };
                        let project = match g.get("project") {
                            None => None,
                            Some(toml::Value::String(s)) => Some(s.as_str()),
                            Some(_) => {
                                return Err(err(format!(
                                    "`{key}.project`: expected a project code"
                                )));
                            }
                        };
                        for r in roles {
                            m.push(p.clone(), &r, project, &format!("{source}: {key}"))?;
                        }
                    }
                }
                "users" | "groups" => {
                    let kind = if k == "users" {
                        PrincipalKind::User
                    } else {
                        PrincipalKind::Group
                    };
                    let tt = v
                        .as_table()
                        .ok_or_else(|| err(format!("`{k}`: expected a table")))?;
                    for (name, r) in tt {
                        for role in roles_of(r, &format!("{k}.{name}"))? {
                            m.push(
                                Principal {
                                    kind,
                                    name: name.clone(),
                                },
                                &role,
                                None,
                                &format!("{source}: {k}.{name}"),
                            )?;
                        }
                    }
                }
                other => {
                    return Err(err(format!(
                        "unknown key `{other}` (known: [[grant]], [users], [groups])"
                    )));
                }
            }
        }
        Ok(m)
    }
}

/// Splits one CSV line (double quotes protect commas; `""` is a quote).
fn split_csv(line: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(cur.trim().to_string());
                cur.clear();
            }
            c => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out
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
    fn toml_forms() {
        let m = RoleMap::parse_toml(
            r#"
[[grant]]
user = "jane@example.com"
roles = ["ServiceDeveloper", "Service Monitor"]

[[grant]]
group = "OIC-Developers"
role = "editor"
project = "ORDERS"

[users]
"max@example.com" = "ServiceViewer"

[groups]
"OIC-Ops" = ["ServiceAdministrator"]
"#,
            "roles.toml",
        )
        .unwrap();
        let got: Vec<String> = m
            .entries
            .iter()
            .map(|e| format!("{} {} {:?}", e.principal, e.role, e.project))
            .collect();
        assert_eq!(
            got,
            [
                "user:jane@example.com ServiceDeveloper None",
                "user:jane@example.com ServiceMonitor None",
                "group:OIC-Developers editors Some(\"ORDERS\")",
                "group:OIC-Ops ServiceAdministrator None",
                "user:max@example.com ServiceViewer None",
            ]
        );
        assert!(RoleMap::parse_toml("[[grant]]\nrole='x'\n", "r.toml").is_err());
    }
}
