//! The shared ledger on PostgreSQL (`[ledger] url = "postgres://..."`): the same tables and
//! numbered migrations as the SQLite file, with the version kept in a `schema_version` table.
//!
//! The synchronous `postgres` client runs its own small runtime, which must not be entered from
//! inside another one; the ledger is called from async code too, so the connection lives on a
//! thread of its own and each call is a message to it. A dropped connection is reopened on the
//! next call. ferry needs no superuser: the writer role owns the tables it creates, and a
//! read-only role can open a ledger that is already at the current version.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use bytes::BytesMut;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, NoTls};

use super::store::{
    Dialect, LedgerStore, MIGRATIONS, Row, Stmt, Val, latest_version, newer_schema,
};
use crate::config::{PgLedger, SslMode};

/// An arbitrary constant: the advisory lock held while the schema is migrated.
const MIGRATION_LOCK: i64 = 0x6665_7272_795f_6c67;

type Job = Box<dyn FnOnce(&mut Conn) + Send>;

/// The ledger in a PostgreSQL database.
pub struct PgStore {
    jobs: mpsc::Sender<Job>,
    location: String,
}

/// The connection, on its own thread.
struct Conn {
    cfg: PgLedger,
    client: Option<Client>,
}

impl Conn {
    fn client(&mut self) -> Result<&mut Client, String> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = Some(connect(&self.cfg)?);
        }
        self.client
            .as_mut()
            .ok_or_else(|| "no connection".to_string())
    }
}

/// The error with its causes (a TLS failure says why), or the server's message.
fn pg_err(e: postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    let mut out = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cause = c.source();
    }
    out
}

fn tls(cfg: &PgLedger) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match &cfg.ca_file {
        Some(f) => {
            for c in CertificateDer::pem_file_iter(f)
                .map_err(|e| format!("ca_file {}: {e}", f.display()))?
            {
                let c = c.map_err(|e| format!("ca_file {}: {e}", f.display()))?;
                roots
                    .add(c)
                    .map_err(|e| format!("ca_file {}: {e}", f.display()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

fn connect(cfg: &PgLedger) -> Result<Client, String> {
    let mut c: postgres::Config = cfg
        .url
        .parse()
        .map_err(|e: postgres::Error| format!("ledger url: {e}"))?;
    if let Some(p) = &cfg.password {
        c.password(p.expose());
    }
    let timeout = Duration::from_secs(cfg.timeout_secs);
    c.connect_timeout(timeout)
        .tcp_user_timeout(timeout)
        .keepalives(true)
        .application_name("ferry")
        .options(&format!(
            "-c statement_timeout={}",
            timeout.as_millis().max(1000)
        ));
    let r = match cfg.sslmode {
        SslMode::Disable => {
            c.ssl_mode(postgres::config::SslMode::Disable);
            c.connect(NoTls)
        }
        SslMode::Prefer => {
            c.ssl_mode(postgres::config::SslMode::Prefer);
            c.connect(tls(cfg)?)
        }
        SslMode::Require | SslMode::VerifyFull => {
            c.ssl_mode(postgres::config::SslMode::Require);
            c.connect(tls(cfg)?)
        }
    };
    r.map_err(pg_err)
}

impl ToSql for Val {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Val::Null => Ok(IsNull::Yes),
            Val::Int(n) => match *ty {
                Type::INT2 => i16::try_from(*n)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*n)?.to_sql(ty, out),
                _ => n.to_sql(ty, out),
            },
            Val::Text(s) => s.as_str().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn from_pg(r: &postgres::Row, i: usize) -> Result<Val, String> {
    let ty = r.columns()[i].type_().clone();
    let v = match ty {
        Type::INT8 => r.try_get::<_, Option<i64>>(i).map(|v| v.map(Val::Int)),
        Type::INT4 => r
            .try_get::<_, Option<i32>>(i)
            .map(|v| v.map(|n| Val::Int(n.into()))),
        Type::INT2 => r
            .try_get::<_, Option<i16>>(i)
            .map(|v| v.map(|n| Val::Int(n.into()))),
        Type::BOOL => r
            .try_get::<_, Option<bool>>(i)
            .map(|v| v.map(|b| Val::Int(b.into()))),
        _ => r.try_get::<_, Option<String>>(i).map(|v| v.map(Val::Text)),
    };
    v.map(|o| o.unwrap_or(Val::Null)).map_err(pg_err)
}

/// `?N` placeholders (the ledger's SQL) become PostgreSQL's `$N`.
fn dollars(sql: &str) -> String {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r"\?(\d+)").expect("placeholder pattern"))
        .replace_all(sql, "$$$1")
        .into_owned()
}

fn params(vals: &[Val]) -> Vec<&(dyn ToSql + Sync)> {
    vals.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

fn current_version(c: &mut Client) -> Result<i64, String> {
    let exists: bool = c
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
        .map_err(pg_err)?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let v: Option<i64> = c
        .query_one("SELECT MAX(version) FROM schema_version", &[])
        .map_err(pg_err)?
        .get(0);
    Ok(v.unwrap_or(0))
}

/// Applies the missing migrations in one transaction, under an advisory lock.
fn migrate(c: &mut Client) -> Result<(), String> {
    let latest = latest_version();
    let now = current_version(c)?;
    if now == latest {
        return Ok(());
    }
    if now > latest {
        return Err(newer_schema(now, latest));
    }
    let mut tx = c.transaction().map_err(pg_err)?;
    tx.batch_execute(&format!(
        "SELECT pg_advisory_xact_lock({MIGRATION_LOCK});
         CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL, ferry_version TEXT NOT NULL)"
    ))
    .map_err(|e| format!("{} (a read-only role cannot create the ledger's tables: open it once with the writer role)", pg_err(e)))?;
    let now: i64 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
        .map_err(pg_err)?
        .get(0);
    for m in MIGRATIONS.iter().filter(|m| m.version > now) {
        for s in m.statements(Dialect::Postgres) {
            tx.batch_execute(&s).map_err(|e| {
                format!("schema migration {} ({}): {}", m.version, m.name, pg_err(e))
            })?;
        }
        tx.execute(
            "INSERT INTO schema_version (version, name, applied, ferry_version) VALUES ($1, $2, $3, $4)",
            &[&m.version, &m.name, &chrono::Utc::now().to_rfc3339(), &env!("CARGO_PKG_VERSION")],
        )
        .map_err(pg_err)?;
    }
    tx.commit().map_err(pg_err)
}

impl PgStore {
    /// Connects (on a thread of its own) and brings the schema up to date.
    pub fn open(cfg: &PgLedger) -> Result<PgStore, String> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let mut conn = Conn {
            cfg: cfg.clone(),
            client: None,
        };
        std::thread::Builder::new()
            .name("ferry-ledger-pg".into())
            .spawn(move || {
                for job in rx {
                    job(&mut conn);
                }
            })
            .map_err(|e| e.to_string())?;
        let s = PgStore {
            jobs,
            location: cfg.url.clone(),
        };
        s.call(|c| migrate(c.client()?))?;
        Ok(s)
    }

    /// Runs `f` on the connection thread and waits for its answer.
    fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.jobs
            .send(Box::new(move |c| {
                let _ = tx.send(f(c));
            }))
            .map_err(|_| "the ledger's connection thread has stopped".to_string())?;
        rx.recv()
            .map_err(|_| "the ledger's connection thread has stopped".to_string())?
    }
}

impl LedgerStore for PgStore {
    fn batch(&mut self, stmts: &[Stmt]) -> Result<Vec<u64>, String> {
        let stmts: Vec<Stmt> = stmts.iter().map(|(s, p)| (dollars(s), p.clone())).collect();
        self.call(move |c| {
            let mut tx = c.client()?.transaction().map_err(pg_err)?;
            let mut counts = Vec::with_capacity(stmts.len());
            for (sql, vals) in &stmts {
                counts.push(tx.execute(sql.as_str(), &params(vals)).map_err(pg_err)?);
            }
            tx.commit().map_err(pg_err)?;
            Ok(counts)
        })
    }

    fn query(&mut self, sql: &str, vals: &[Val]) -> Result<Vec<Row>, String> {
        let sql = dollars(sql);
        let vals = vals.to_vec();
        self.call(move |c| {
            let rows = c
                .client()?
                .query(sql.as_str(), &params(&vals))
                .map_err(pg_err)?;
            rows.iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| from_pg(r, i))
                        .collect::<Result<Vec<_>, _>>()
                        .map(Row)
                })
                .collect()
        })
    }

    fn schema_version(&mut self) -> Result<i64, String> {
        self.call(|c| current_version(c.client()?))
    }

    fn location(&self) -> String {
        self.location.clone()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_become_dollars() {
        assert_eq!(
            super::dollars("a = ?1 AND (CAST(?12 AS TEXT) IS NULL)"),
            "a = $1 AND (CAST($12 AS TEXT) IS NULL)"
        );
    }
}
