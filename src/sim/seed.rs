//! Seed data: the `Sample` dev instance, the `TargetConnections` prod instance, `Generated(n)`.

use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::state::{
    ArchiveSource, Certificate, ConnRef, ConnStatus, Connection, InstanceData, IntStatus,
    Integration, Invoke, InvokeVia, Lookup, Property, Schedule, ScheduleState,
};

fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 15, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

/// Connections of the sample dev instance: (code, name, adapter, role, policy).
const SAMPLE_CONNECTIONS: &[(&str, &str, &str, &str, &str)] = &[
    ("HR_REST", "HR REST Trigger", "rest", "SOURCE", "BASIC_AUTH"),
    (
        "ORACLE_HCM",
        "Oracle HCM Cloud",
        "hcm",
        "TARGET",
        "USERNAME_PASSWORD_TOKEN",
    ),
    (
        "FIN_ERP",
        "Oracle ERP Cloud",
        "erp",
        "SOURCE_AND_TARGET",
        "USERNAME_PASSWORD_TOKEN",
    ),
    (
        "FIN_ATP",
        "Finance ATP",
        "atpdatabase",
        "TARGET",
        "JDBC_OVER_SSL",
    ),
    (
        "SFTP_OUT",
        "Outbound SFTP",
        "ftp",
        "TARGET",
        "FTP_PUBLIC_KEY_AUTHENTICATION",
    ),
    (
        "SCM_REST",
        "SCM REST API",
        "rest",
        "SOURCE_AND_TARGET",
        "OAUTH_CLIENT_CREDENTIALS",
    ),
];

fn connection(
    code: &str,
    name: &str,
    adapter: &str,
    role: &str,
    policy: &str,
    env: &str,
    t: DateTime<Utc>,
) -> Connection {
    let host = format!(
        "{}.{env}.example.com",
        code.to_lowercase().replace('_', "-")
    );
    Connection {
        code: code.into(),
        name: name.into(),
        description: format!("{name} ({env})"),
        status: ConnStatus::Configured,
        role: role.into(),
        adapter: adapter.into(),
        security_policy: policy.into(),
        connection_properties: vec![Property {
            property_group: "CONNECTION_PROPS".into(),
            property_name: "connectionUrl".into(),
            property_type: "URL".into(),
            property_value: Some(format!("https://{host}")),
        }],
        security_properties: vec![
            Property {
                property_group: "CREDENTIALS".into(),
                property_name: "username".into(),
                property_type: "STRING".into(),
                property_value: Some(format!("svc_{env}")),
            },
            Property {
                property_group: "CREDENTIALS".into(),
                property_name: "password".into(),
                property_type: "PASSWORD".into(),
                property_value: Some(format!("{env}-secret")),
            },
        ],
        agent_group_id: None,
        locked_by: None,
        created: t,
        created_by: "admin@example.com".into(),
        last_updated: t,
        last_updated_by: "admin@example.com".into(),
    }
}

fn conn_role(code: &str) -> String {
    SAMPLE_CONNECTIONS
        .iter()
        .find(|c| c.0 == code)
        .map(|c| {
            if c.3 == "SOURCE_AND_TARGET" {
                "TARGET"
            } else {
                c.3
            }
        })
        .unwrap_or("TARGET")
        .to_string()
}

#[allow(clippy::too_many_arguments)]
fn integration(
    code: &str,
    version: &str,
    name: &str,
    status: IntStatus,
    conns: &[&str],
    who: &str,
    t: DateTime<Utc>,
    scheduled: bool,
) -> Integration {
    Integration {
        code: code.into(),
        version: version.into(),
        name: name.into(),
        description: format!("{name} integration"),
        status,
        pattern: if scheduled {
            "Scheduled".into()
        } else {
            "Orchestration".into()
        },
        pattern_description: if scheduled {
            "Scheduled".into()
        } else {
            "Orchestration".into()
        },
        style: "FREEFORM".into(),
        locked_by: None,
        project_type: "DEVELOPED".into(),
        tracing: false,
        payload_tracing: false,
        record_enabled: false,
        schedule: scheduled.then(|| {
            let mut s = Schedule::ical(
                &format!("Schedule2{}_{}", code, version.replace('.', "_")),
                "FREQ=DAILY;BYHOUR=2;BYMINUTE=0;",
                who,
                t - ChronoDuration::days(30),
            );
            if status == IntStatus::Activated {
                s.state = ScheduleState::Active;
            }
            s
        }),
        runs: Vec::new(),
        connections: conns
            .iter()
            .map(|c| ConnRef {
                code: (*c).into(),
                role: conn_role(c),
            })
            .collect(),
        lookups: Vec::new(),
        package_name: String::new(),
        created: t - ChronoDuration::days(30),
        created_by: who.into(),
        last_updated: t,
        last_updated_by: who.into(),
        archive: ArchiveSource::Generated { padding: 0 },
        activation_errors: Vec::new(),
        draft: status == IntStatus::InProgress,
        project: None,
        calls: Vec::new(),
    }
}

fn add(data: &mut InstanceData, i: Integration) {
    data.integrations
        .insert((i.code.clone(), i.version.clone()), i);
}

/// The certificates of the sample instance: three uploaded (an X509 trust certificate, an X509
/// identity certificate with its private key, a PGP public key) and one shipped with OIC.
fn sample_certificates(data: &mut InstanceData, t: DateTime<Utc>) {
    for (name, ty, cat, installed, desc, who, years) in [
        (
            "FIN_ERP_CA",
            "X509",
            "TRUST",
            "USER",
            "CA of the FIN ERP endpoints",
            "max.mustermann@example.com",
            2,
        ),
        (
            "HR_MTLS_CLIENT",
            "X509",
            "IDENTITY",
            "USER",
            "Client certificate and key for mTLS to HCM",
            "jane.doe@example.com",
            1,
        ),
        (
            "SFTP_OUT_PGP",
            "PGP",
            "PUBLIC",
            "USER",
            "Payroll partner's PGP key for SFTP_OUT",
            "max.mustermann@example.com",
            3,
        ),
        (
            "DigiCertGlobalRootG2",
            "X509",
            "TRUST",
            "SYSTEM",
            "",
            "oracle@example.com",
            12,
        ),
    ] {
        let c = Certificate {
            name: name.into(),
            cert_type: ty.into(),
            category: cat.into(),
            installed_type: installed.into(),
            description: desc.into(),
            issued: t - ChronoDuration::days(60),
            expires: t + ChronoDuration::days(365 * years),
            created_by: who.into(),
            last_updated: t - ChronoDuration::days(60),
        };
        data.certificates.insert(c.id(), c);
    }
}

/// One integration of the sample dev instance.
struct SampleIntegration {
    code: &'static str,
    version: &'static str,
    name: &'static str,
    status: IntStatus,
    connections: &'static [&'static str],
    who: &'static str,
    /// Last updated this many hours after the base time.
    hour: i64,
    scheduled: bool,
    lookups: &'static [&'static str],
    /// Locked by `who`.
    locked: bool,
    /// Shipped by Oracle (`PREBUILT`), not developed.
    prebuilt: bool,
    package: &'static str,
}

const JANE: &str = "jane.doe@example.com";
const MAX: &str = "max.mustermann@example.com";
const ANA: &str = "ana.silva@example.com";

/// A sample integration with the common values (developed, unlocked, no lookups or package).
const fn sample_int(
    code: &'static str,
    version: &'static str,
    name: &'static str,
    status: IntStatus,
    connections: &'static [&'static str],
    who: &'static str,
    hour: i64,
) -> SampleIntegration {
    SampleIntegration {
        code,
        version,
        name,
        status,
        connections,
        who,
        hour,
        scheduled: false,
        lookups: &[],
        locked: false,
        prebuilt: false,
        package: "",
    }
}

/// The integrations of the sample dev instance: two versions of HR_NEW_HIRE, a scheduled one, a
/// draft, a locked one, a prebuilt one, two in the package `fin.payables`.
#[rustfmt::skip]
const SAMPLE_INTEGRATIONS: &[SampleIntegration] = &[
    SampleIntegration {
        lookups: &["COUNTRY_CODES"],
        ..sample_int("HR_EMPLOYEE_SYNC", "01.00.0000", "HR Employee Sync", IntStatus::Activated, &["HR_REST", "ORACLE_HCM"], JANE, 1)
    },
    sample_int("HR_NEW_HIRE", "01.00.0000", "HR New Hire", IntStatus::Configured, &["HR_REST", "ORACLE_HCM"], JANE, 2),
    sample_int("HR_NEW_HIRE", "01.01.0000", "HR New Hire", IntStatus::Activated, &["HR_REST", "ORACLE_HCM"], JANE, 3),
    SampleIntegration {
        scheduled: true,
        ..sample_int("HR_PAYROLL_EXPORT", "01.00.0000", "HR Payroll Export", IntStatus::Activated, &["ORACLE_HCM", "SFTP_OUT"], MAX, 4)
    },
    sample_int("HR_ABSENCE_FEED", "01.00.0000", "HR Absence Feed", IntStatus::InProgress, &["ORACLE_HCM"], ANA, 5),
    SampleIntegration {
        package: "fin.payables",
        ..sample_int("FIN_INVOICE_IMPORT", "01.00.0000", "FIN Invoice Import", IntStatus::Activated, &["FIN_ERP", "FIN_ATP"], MAX, 6)
    },
    sample_int("FIN_GL_JOURNAL", "02.00.0000", "FIN GL Journal", IntStatus::Configured, &["FIN_ERP"], MAX, 7),
    SampleIntegration {
        locked: true,
        ..sample_int("FIN_SUPPLIER_SYNC", "01.00.0000", "FIN Supplier Sync", IntStatus::Configured, &["FIN_ERP", "FIN_ATP"], ANA, 8)
    },
    SampleIntegration {
        package: "fin.payables",
        ..sample_int("FIN_PAYMENT_STATUS", "01.00.0000", "FIN Payment Status", IntStatus::Activated, &["FIN_ERP", "FIN_ATP"], ANA, 9)
    },
    SampleIntegration {
        prebuilt: true,
        ..sample_int("ORCL_ERP_ACCEL_SYNC", "01.00.0000", "Oracle ERP Accelerator Sync", IntStatus::Configured, &["FIN_ERP"], "oracle@example.com", 10)
    },
    sample_int("SCM_ORDER_NOTIFY", "01.00.0000", "SCM Order Notify", IntStatus::Configured, &["SCM_REST"], JANE, 11),
];

/// Who calls whom in the sample, (caller at 01.00.0000, code, version, REST connection or
/// `""` for the local integration adapter): HR_EMPLOYEE_SYNC and FIN_INVOICE_IMPORT invoke a
/// co-located integration locally; SCM_ORDER_NOTIFY calls FIN_INVOICE_IMPORT's REST endpoint
/// through SCM_REST.
const SAMPLE_CALLS: &[(&str, &str, &str, &str)] = &[
    ("HR_EMPLOYEE_SYNC", "HR_NEW_HIRE", "01.01.0000", ""),
    ("FIN_INVOICE_IMPORT", "FIN_PAYMENT_STATUS", "01.00.0000", ""),
    (
        "SCM_ORDER_NOTIFY",
        "FIN_INVOICE_IMPORT",
        "01.00.0000",
        "SCM_REST",
    ),
];

/// The JavaScript library of the sample.
const SAMPLE_JS: &str = "function toIsoDate(d) {\n  return new Date(d).toISOString().substring(0, 10);\n}\n\nfunction addDays(d, n) {\n  var x = new Date(d);\n  x.setDate(x.getDate() + n);\n  return x.toISOString();\n}\n";

/// The `Sample` dev instance.
pub fn sample(data: &mut InstanceData) {
    let t = base_time();
    sample_certificates(data, t);
    for (code, name, adapter, role, policy) in SAMPLE_CONNECTIONS {
        data.connections.insert(
            (*code).into(),
            connection(code, name, adapter, role, policy, "dev", t),
        );
    }
    data.lookups.insert(
        "COUNTRY_CODES".into(),
        Lookup {
            name: "COUNTRY_CODES".into(),
            description: "ISO country codes per system".into(),
            columns: vec!["HCM".into(), "ERP".into()],
            rows: vec![
                vec!["DE".into(), "DEU".into()],
                vec!["FR".into(), "FRA".into()],
                vec!["US".into(), "USA".into()],
            ],
            last_updated: t,
        },
    );
    for s in SAMPLE_INTEGRATIONS {
        add(data, sample_integration(s, t));
    }
    for (caller, code, version, via) in SAMPLE_CALLS {
        if let Some(i) = data
            .integrations
            .get_mut(&(caller.to_string(), "01.00.0000".to_string()))
        {
            i.calls.push(Invoke {
                code: (*code).into(),
                version: (*version).into(),
                via: match *via {
                    "" => InvokeVia::Local,
                    c => InvokeVia::Rest {
                        connection: c.into(),
                    },
                },
            });
        }
    }
    data.packages.insert(
        "fin.payables".into(),
        super::state::Package {
            name: "fin.payables".into(),
            package_type: "DEVELOPED".into(),
        },
    );
    data.libraries.insert(
        ("DATE_UTILS".into(), "01.00.0000".into()),
        super::state::Library {
            code: "DATE_UTILS".into(),
            version: "01.00.0000".into(),
            name: "Date Utils".into(),
            description: "Date helpers".into(),
            library_type: "API".into(),
            archive: bytes::Bytes::from(super::libraries::make_jar("DATE_UTILS", SAMPLE_JS)),
            functions: super::libraries::js_functions(SAMPLE_JS),
            last_updated: t,
        },
    );
}

/// One row of [`SAMPLE_INTEGRATIONS`] as an integration.
fn sample_integration(s: &SampleIntegration, t: DateTime<Utc>) -> Integration {
    let mut i = integration(
        s.code,
        s.version,
        s.name,
        s.status,
        s.connections,
        s.who,
        t + ChronoDuration::hours(s.hour),
        s.scheduled,
    );
    i.lookups = s.lookups.iter().map(|l| (*l).into()).collect();
    if s.locked {
        i.locked_by = Some(s.who.into());
    }
    if s.prebuilt {
        i.project_type = "PREBUILT".into();
    }
    i.package_name = s.package.into();
    i
}

/// The `TargetConnections` prod instance: the sample connection codes, configured, no integrations.
pub fn target_connections(data: &mut InstanceData) {
    let t = base_time();
    for (code, name, adapter, role, policy) in SAMPLE_CONNECTIONS {
        data.connections.insert(
            (*code).into(),
            connection(code, name, adapter, role, policy, "prod", t),
        );
    }
}

const PREFIXES: &[&str] = &["HR", "FIN", "SCM", "CRM", "PROC", "INV", "PAY", "ERP"];
const NOUNS: &[&str] = &[
    "EMPLOYEE", "INVOICE", "ORDER", "SUPPLIER", "CUSTOMER", "PAYMENT", "JOURNAL", "ITEM",
    "ABSENCE", "SHIPMENT", "CONTRACT", "RECEIPT", "ASSET", "BUDGET", "LEAD",
];
const VERBS: &[&str] = &[
    "SYNC",
    "IMPORT",
    "EXPORT",
    "NOTIFY",
    "FEED",
    "LOAD",
    "REPLICATE",
    "STATUS",
];
const PEOPLE: &[&str] = &[
    "jane.doe@example.com",
    "max.mustermann@example.com",
    "ana.silva@example.com",
    "li.wei@example.com",
    "omar.haddad@example.com",
];

fn title_case(code: &str) -> String {
    code.split('_')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => format!("{f}{}", c.as_str().to_lowercase()),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `Generated(n)`: n integrations with realistic names, versions and statuses.
pub fn generated(data: &mut InstanceData, n: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let t = base_time();
    for p in PREFIXES {
        for (k, adapter) in [("REST", "rest"), ("DB", "atpdatabase")] {
            let code = format!("{p}_{k}");
            data.connections.insert(
                code.clone(),
                connection(
                    &code,
                    &title_case(&code),
                    adapter,
                    "SOURCE_AND_TARGET",
                    "BASIC_AUTH",
                    "dev",
                    t,
                ),
            );
        }
    }
    let mut count = 0usize;
    let mut serial = 0usize;
    let mut used = std::collections::HashSet::new();
    while count < n {
        serial += 1;
        let p = PREFIXES[rng.random_range(0..PREFIXES.len())];
        let noun = NOUNS[rng.random_range(0..NOUNS.len())];
        let verb = VERBS[rng.random_range(0..VERBS.len())];
        let code = if serial <= PREFIXES.len() * NOUNS.len() {
            format!("{p}_{noun}_{verb}")
        } else {
            format!("{p}_{noun}_{verb}_{serial}")
        };
        if !used.insert(code.clone()) {
            continue;
        }
        let versions = match rng.random_range(0..10) {
            0 => vec!["01.00.0000", "01.01.0000"],
            1 => vec!["01.00.0000", "02.00.0000"],
            _ => vec!["01.00.0000"],
        };
        let who = PEOPLE[rng.random_range(0..PEOPLE.len())];
        let conns = [format!("{p}_REST"), format!("{p}_DB")];
        let conn_refs: Vec<&str> = conns.iter().map(String::as_str).collect();
        let nv = versions.len();
        for (vi, v) in versions.into_iter().enumerate() {
            if count >= n {
                break;
            }
            let latest = vi + 1 == nv;
            let status = match rng.random_range(0..100) {
                _ if !latest => IntStatus::Configured,
                0..=54 => IntStatus::Activated,
                55..=89 => IntStatus::Configured,
                _ => IntStatus::InProgress,
            };
            let scheduled = verb == "EXPORT" || verb == "LOAD";
            let when = t + ChronoDuration::minutes(rng.random_range(0..200_000));
            let mut i = integration(
                &code,
                v,
                &title_case(&code),
                status,
                &conn_refs,
                who,
                when,
                scheduled,
            );
            i.connections = conns
                .iter()
                .enumerate()
                .map(|(k, c)| ConnRef {
                    code: c.clone(),
                    role: if k == 0 {
                        "SOURCE".into()
                    } else {
                        "TARGET".into()
                    },
                })
                .collect();
            // Archive sizes: mostly tens of KB, some MB, a few tens of MB.
            i.archive = ArchiveSource::Generated {
                padding: match rng.random_range(0..100) {
                    0 => rng.random_range(5_000_000..50_000_000),
                    1..=19 => rng.random_range(50_000..2_000_000),
                    _ => rng.random_range(1_000..50_000),
                },
            };
            add(data, i);
            count += 1;
        }
    }
    generated_calls(data, seed);
}

/// Calls between generated integrations (drawn from a hash, not the generator's RNG, so the rest of the
/// generated data does not change): about one integration code in five invokes one of the same prefix that sorts
/// before it (version `01.00.0000`), through the local adapter or through `<PREFIX>_REST`. Calls only go to earlier
/// codes, so the call graph has no cycle.
fn generated_calls(data: &mut InstanceData, seed: u64) {
    use sha2::{Digest, Sha256};
    let h = |s: &str| {
        let d = Sha256::digest(format!("{seed}:calls:{s}").as_bytes());
        u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
    };
    let mut seen: Vec<String> = Vec::new();
    let mut calls: Vec<((String, String), Invoke)> = Vec::new();
    for ((code, version), _) in data.integrations.iter() {
        if seen.last() == Some(code) {
            continue;
        }
        let prefix = code.split('_').next().unwrap_or("").to_string();
        let x = h(code);
        let earlier: Vec<&String> = seen
            .iter()
            .filter(|c| c.split('_').next() == Some(prefix.as_str()))
            .collect();
        if x % 5 == 0 && !earlier.is_empty() {
            let callee = earlier[(x / 5) as usize % earlier.len()].clone();
            let via = if (x / 7) % 2 == 0 {
                InvokeVia::Local
            } else {
                InvokeVia::Rest {
                    connection: format!("{prefix}_REST"),
                }
            };
            calls.push((
                (code.clone(), version.clone()),
                Invoke {
                    code: callee,
                    version: "01.00.0000".into(),
                    via,
                },
            ));
        }
        seen.push(code.clone());
    }
    for (key, call) in calls {
        if let Some(i) = data.integrations.get_mut(&key) {
            i.calls.push(call);
        }
    }
}

/// Identity-domain seed: the people who appear as `lastUpdatedBy`, and a developers group.
pub fn identity(ids: &mut super::scim::IdentityStore) {
    ids.add_user("jane.doe@example.com", "Jane Doe");
    ids.add_user("max.mustermann@example.com", "Max Mustermann");
    ids.add_user("ana.silva@example.com", "Ana Silva");
    ids.add_group(
        "OIC-Developers",
        &["jane.doe@example.com", "max.mustermann@example.com"],
    );
}

/// A project for gen-3 `Sample` instances: `HR_ONBOARDING` with two integrations, two connections, a lookup
/// and the deployment `HR-ONB-REL1`.
pub fn sample_project(data: &mut InstanceData) {
    use super::state::{Deployment, Project};
    let t = base_time();
    let who = "jane.doe@example.com";
    let mut p = Project {
        code: "HR_ONBOARDING".into(),
        name: "HR Onboarding".into(),
        description: "New-hire onboarding flows".into(),
        project_type: "DEVELOPED".into(),
        created: t,
        created_by: who.into(),
        updated: t,
        updated_by: who.into(),
        deployments: Default::default(),
        acl: super::projects::default_acl(who),
        data: InstanceData::default(),
    };
    for (code, name, adapter, role, policy) in SAMPLE_CONNECTIONS
        .iter()
        .filter(|c| c.0 == "HR_REST" || c.0 == "ORACLE_HCM")
    {
        p.data.connections.insert(
            (*code).into(),
            connection(code, name, adapter, role, policy, "dev", t),
        );
    }
    let mut a = integration(
        "ONB_CREATE_ACCOUNT",
        "01.00.0000",
        "Onboarding Create Account",
        IntStatus::Activated,
        &["HR_REST", "ORACLE_HCM"],
        who,
        t,
        false,
    );
    a.project = Some(p.code.clone());
    let mut b = integration(
        "ONB_WELCOME_MAIL",
        "01.00.0000",
        "Onboarding Welcome Mail",
        IntStatus::Configured,
        &["HR_REST"],
        who,
        t,
        false,
    );
    b.project = Some(p.code.clone());
    let mut b2 = b.clone();
    b2.version = "01.01.0000".into();
    p.deployments.insert(
        "HR-ONB-REL1".into(),
        Deployment {
            code: "HR-ONB-REL1".into(),
            name: "HR-ONB-REL1".into(),
            description: "release 1".into(),
            integrations: vec![
                (a.code.clone(), a.version.clone()),
                (b.code.clone(), b.version.clone()),
            ],
            last_updated: t,
        },
    );
    for i in [a, b, b2] {
        p.data
            .integrations
            .insert((i.code.clone(), i.version.clone()), i);
    }
    data.projects.insert(p.code.clone(), p);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_table_gives_the_sample_instance() {
        let mut d = InstanceData::default();
        sample(&mut d);
        assert_eq!(d.integrations.len(), 11);
        let get = |c: &str, v: &str| &d.integrations[&(c.to_string(), v.to_string())];
        assert_eq!(
            get("FIN_SUPPLIER_SYNC", "01.00.0000").locked_by.as_deref(),
            Some(ANA)
        );
        assert_eq!(
            get("ORCL_ERP_ACCEL_SYNC", "01.00.0000").project_type,
            "PREBUILT"
        );
        assert!(get("HR_PAYROLL_EXPORT", "01.00.0000").schedule.is_some());
        assert!(get("HR_ABSENCE_FEED", "01.00.0000").draft);
        assert_eq!(
            get("HR_EMPLOYEE_SYNC", "01.00.0000").lookups,
            ["COUNTRY_CODES"]
        );
        let in_package: Vec<&str> = d
            .integrations
            .values()
            .filter(|i| i.package_name == "fin.payables")
            .map(|i| i.code.as_str())
            .collect();
        assert_eq!(in_package, ["FIN_INVOICE_IMPORT", "FIN_PAYMENT_STATUS"]);
        let scm = get("SCM_ORDER_NOTIFY", "01.00.0000");
        assert_eq!(scm.calls.len(), 1);
        assert!(
            matches!(&scm.calls[0].via, InvokeVia::Rest { connection } if connection == "SCM_REST")
        );
        assert!(matches!(
            get("HR_EMPLOYEE_SYNC", "01.00.0000").calls[0].via,
            InvokeVia::Local
        ));
        assert_eq!(
            get("HR_NEW_HIRE", "01.01.0000").last_updated,
            base_time() + ChronoDuration::hours(3)
        );
    }
}
