//! The test PostgreSQL server (the private cluster of `.ci/pg.sh`, TEST_PG_* from
//! `/srv/ocitest/env`): its roles, a fresh database per test, ledger locations on it.

use ferry::config::{PgLedger, Secret, SslMode};
use ferry::ledger::LedgerLocation;

/// Where the server is and the two roles of the README (a writer and a read-only viewer).
pub struct Pg {
    pub host: String,
    pub port: String,
    pub writer: (String, String),
    pub viewer: (String, String),
    pub ca: String,
}

/// The server from TEST_PG_*; without it the test fails, unless FERRY_ALLOW_SKIP=1 (then it says
/// SKIP and gets `None`).
pub fn pg() -> Option<Pg> {
    let v = |k: &str| std::env::var(k).ok().filter(|s| !s.is_empty());
    match (
        v("TEST_PG_HOST"),
        v("TEST_PG_PORT"),
        v("TEST_PG_WRITER_PASSWORD"),
    ) {
        (Some(host), Some(port), Some(wp)) => Some(Pg {
            host,
            port,
            writer: (v("TEST_PG_WRITER").unwrap_or("ferry_writer".into()), wp),
            viewer: (
                v("TEST_PG_VIEWER").unwrap_or("ferry_viewer".into()),
                v("TEST_PG_VIEWER_PASSWORD").unwrap_or_default(),
            ),
            ca: v("TEST_PG_CA").unwrap_or_default(),
        }),
        _ => {
            assert!(
                std::env::var("FERRY_ALLOW_SKIP").as_deref() == Ok("1"),
                "TEST_PG_* is not set: start PostgreSQL with `bash .ci/pg.sh && . /srv/ocitest/env` (or set FERRY_ALLOW_SKIP=1)"
            );
            eprintln!("SKIP: TEST_PG_* is not set (FERRY_ALLOW_SKIP=1)");
            None
        }
    }
}

impl Pg {
    /// The ledger in database `db` as `role`.
    pub fn ledger(&self, db: &str, role: &(String, String), sslmode: SslMode) -> PgLedger {
        PgLedger {
            url: format!("postgres://{}@{}:{}/{db}", role.0, self.host, self.port),
            password: Some(Secret::new(role.1.clone())),
            sslmode,
            ca_file: (!self.ca.is_empty()).then(|| self.ca.clone().into()),
            timeout_secs: 20,
        }
    }

    /// A plain client to `db` as the writer (blocking: call it off the async threads).
    pub fn client(&self, db: &str) -> postgres::Client {
        postgres::Config::new()
            .host(&self.host)
            .port(self.port.parse().unwrap())
            .user(&self.writer.0)
            .password(&self.writer.1)
            .dbname(db)
            .connect(postgres::NoTls)
            .expect("connect as the writer")
    }

    /// A new database owned by the writer, with the README's grants for the viewer (blocking).
    pub fn fresh_db(&self) -> String {
        let name = format!("ferry_t_{:08x}", rand::random::<u32>());
        self.client("ferry")
            .batch_execute(&format!("CREATE DATABASE {name} OWNER {}", self.writer.0))
            .unwrap();
        self.client(&name)
            .batch_execute(&format!(
                "GRANT CONNECT ON DATABASE {name} TO {v};
                 GRANT USAGE ON SCHEMA public TO {v};
                 ALTER DEFAULT PRIVILEGES FOR ROLE {w} IN SCHEMA public GRANT SELECT ON TABLES TO {v};",
                v = self.viewer.0,
                w = self.writer.0
            ))
            .unwrap();
        name
    }

    /// The ledger in `db` as the writer, over TLS.
    pub fn writer_at(&self, db: &str) -> LedgerLocation {
        LedgerLocation::Postgres(self.ledger(db, &self.writer, SslMode::Require))
    }
}
