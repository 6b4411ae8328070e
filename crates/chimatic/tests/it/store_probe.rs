//! Which store the suite runs against, and direct access to it for tests that inspect or
//! tamper with what is stored. `CHIMATIC_TEST_BACKEND=postgres` runs the whole suite on
//! PostgreSQL (admin URL in `CHIMATIC_TEST_POSTGRES_URL`, default
//! `postgres://postgres:postgres@127.0.0.1:5432`); otherwise the embedded SQLite files.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres { admin: String },
}

pub fn backend() -> &'static Backend {
    static B: OnceLock<Backend> = OnceLock::new();
    B.get_or_init(|| match std::env::var("CHIMATIC_TEST_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres {
            admin: std::env::var("CHIMATIC_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432".into()),
        },
        Ok("sqlite") | Err(_) => Backend::Sqlite,
        Ok(other) => panic!("CHIMATIC_TEST_BACKEND={other}: expected sqlite or postgres"),
    })
}

/// The two databases of one test's store, named after its data directory so a restarted server
/// finds the same ones.
fn database_names(dir: &Path) -> (String, String) {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in dir.as_os_str().as_encoded_bytes() {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    (format!("chimatic_test_{h:016x}_data"), format!("chimatic_test_{h:016x}_vault"))
}

fn psql(admin: &str, db: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([&format!("{admin}/{db}"), "-v", "ON_ERROR_STOP=1", "-Atqc", sql])
        .output()
        .expect("psql must be installed for CHIMATIC_TEST_BACKEND=postgres");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// With `CHIMATIC_TEST_KEK=pkcs11` every server and CLI run of the suite keeps its KEK in one
/// SoftHSM2 token (set up once per run); otherwise they use the local provider.
fn kek_env() -> Vec<(String, String)> {
    static HSM: OnceLock<Option<crate::keys::SoftHsm>> = OnceLock::new();
    let hsm = HSM.get_or_init(|| match std::env::var("CHIMATIC_TEST_KEK").as_deref() {
        Ok("pkcs11") => {
            let hsm = crate::keys::SoftHsm::new();
            hsm.init_key();
            Some(hsm)
        }
        // aws-kms: the deployment KEK is local; the harness moves each workspace to its own key.
        Ok("local" | "aws-kms") | Err(_) => None,
        Ok(other) => panic!("CHIMATIC_TEST_KEK={other}: expected local, pkcs11 or aws-kms"),
    });
    hsm.iter().flat_map(|h| h.env()).map(|(k, v)| (k.to_string(), v)).collect()
}

/// Environment that points a `chimatic` process at this test's store (creating the databases
/// on first use; for SQLite the files live in the data directory) and its KEK.
pub fn store_env(dir: &Path) -> Vec<(String, String)> {
    let mut env = kek_env();
    let Backend::Postgres { admin } = backend() else { return env };
    let (data, vault) = database_names(dir);
    for db in [&data, &vault] {
        if psql(admin, "postgres", &format!("SELECT 1 FROM pg_database WHERE datname = '{db}'")).is_empty() {
            psql(admin, "postgres", &format!("CREATE DATABASE {db}"));
        }
    }
    env.push(("CHIMATIC_DATABASE_URL".into(), format!("{admin}/{data}")));
    env.push(("CHIMATIC_VAULT_DATABASE_URL".into(), format!("{admin}/{vault}")));
    env
}

/// The URL of an additional store for this test (a region's, or a separate control store):
/// a SQLite file in the data directory, or a fresh PostgreSQL database dropped with the others.
pub fn extra_store_url(dir: &Path, name: &str) -> String {
    match backend() {
        Backend::Sqlite => format!("sqlite://{}", dir.join(format!("{name}.db")).display()),
        Backend::Postgres { admin } => {
            let (data, _) = database_names(dir);
            let db = data.replace("_data", &format!("_x_{name}"));
            if psql(admin, "postgres", &format!("SELECT 1 FROM pg_database WHERE datname = '{db}'")).is_empty() {
                psql(admin, "postgres", &format!("CREATE DATABASE {db}"));
            }
            format!("{admin}/{db}")
        }
    }
}

/// `SELECT COUNT(*) …` on the store at `url` (from [`extra_store_url`]).
pub fn count_at(url: &str, sql: &str) -> i64 {
    match url.strip_prefix("sqlite://") {
        Some(path) => {
            let c = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
            c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            c.query_row(sql, [], |r| r.get(0)).unwrap()
        }
        None => {
            let (admin, db) = url.rsplit_once('/').unwrap();
            psql(admin, db, sql).parse().unwrap()
        }
    }
}

/// The user tables of the store at `url`, sorted.
pub fn tables_at(url: &str) -> Vec<String> {
    let mut names: Vec<String> = match url.strip_prefix("sqlite://") {
        Some(path) => {
            let c = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
            let mut stmt = c.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").unwrap();
            stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
        }
        None => {
            let (admin, db) = url.rsplit_once('/').unwrap();
            psql(admin, db, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                .lines()
                .map(str::to_string)
                .collect()
        }
    };
    names.sort();
    names
}

/// The files holding the store at `url` (for PostgreSQL, its database directory; the cluster's
/// shared write-ahead log is not included).
pub fn files_at(url: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let paths: Vec<PathBuf> = match url.strip_prefix("sqlite://") {
        Some(path) => ["", "-wal", "-shm"].iter().map(|s| PathBuf::from(format!("{path}{s}"))).collect(),
        None => {
            let (admin, db) = url.rsplit_once('/').unwrap();
            psql(admin, "postgres", "CHECKPOINT");
            let root = PathBuf::from(psql(admin, "postgres", "SHOW data_directory"));
            let oid = psql(admin, "postgres", &format!("SELECT oid FROM pg_database WHERE datname = '{db}'"));
            std::fs::read_dir(root.join("base").join(oid)).unwrap().map(|e| e.unwrap().path()).collect()
        }
    };
    paths.into_iter().filter(|p| p.is_file()).map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect()
}

/// Takes a copy of the notification store (a backup) of the stopped server at `dir`, for
/// [`restore_data_store`].
pub fn snapshot_data_store(dir: &Path) {
    match backend() {
        Backend::Sqlite => {
            for suffix in ["", "-wal", "-shm"] {
                let from = dir.join(format!("data.db{suffix}"));
                if from.exists() {
                    std::fs::copy(&from, dir.join(format!("backup-data.db{suffix}"))).unwrap();
                }
            }
        }
        Backend::Postgres { admin } => {
            let (data, _) = database_names(dir);
            let copy = data.replace("_data", "_x_backup");
            psql(admin, "postgres", &format!("CREATE DATABASE {copy} TEMPLATE {data}"));
        }
    }
}

/// Puts the copy taken by [`snapshot_data_store`] back in place of the stopped server's
/// notification store (its vault stays as it is now).
pub fn restore_data_store(dir: &Path) {
    match backend() {
        Backend::Sqlite => {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(dir.join(format!("data.db{suffix}")));
                let from = dir.join(format!("backup-data.db{suffix}"));
                if from.exists() {
                    std::fs::copy(&from, dir.join(format!("data.db{suffix}"))).unwrap();
                }
            }
        }
        Backend::Postgres { admin } => {
            let (data, _) = database_names(dir);
            let copy = data.replace("_data", "_x_backup");
            psql(admin, "postgres", &format!("DROP DATABASE {data} WITH (FORCE)"));
            psql(admin, "postgres", &format!("CREATE DATABASE {data} TEMPLATE {copy}"));
        }
    }
}

/// Drops this test's databases (PostgreSQL only).
pub fn drop_store(dir: &Path) {
    if let Backend::Postgres { admin } = backend() {
        let (data, vault) = database_names(dir);
        let extras = psql(
            admin,
            "postgres",
            &format!("SELECT datname FROM pg_database WHERE datname LIKE '{}'", data.replace("_data", "_x_%")),
        );
        for db in [data, vault].into_iter().chain(extras.lines().map(str::to_string)) {
            let _ = Command::new("psql")
                .args([&format!("{admin}/postgres"), "-Atqc", &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")])
                .output();
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Db {
    /// The control plane's store (by default `control.db`, or the primary PostgreSQL data database).
    Control,
    Data,
    Vault,
}

/// Direct access to a test's store, below the API.
pub struct StoreProbe {
    dir: PathBuf,
}

impl StoreProbe {
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.to_path_buf() }
    }

    fn sqlite(&self, db: Db) -> rusqlite::Connection {
        let file = match db {
            Db::Control => "control.db",
            Db::Data => "data.db",
            Db::Vault => "vault.db",
        };
        let c = rusqlite::Connection::open_with_flags(self.dir.join(file), rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
            .expect("open database");
        c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
        c
    }

    fn pg_db(&self, db: Db) -> String {
        let (data, vault) = database_names(&self.dir);
        match db {
            Db::Control | Db::Data => data,
            Db::Vault => vault,
        }
    }

    /// URLs of the primary region's data and vault stores, for [`count_at`] and friends.
    pub fn urls(&self) -> (String, String) {
        match backend() {
            Backend::Sqlite => (
                format!("sqlite://{}", self.dir.join("data.db").display()),
                format!("sqlite://{}", self.dir.join("vault.db").display()),
            ),
            Backend::Postgres { admin } => {
                (format!("{admin}/{}", self.pg_db(Db::Data)), format!("{admin}/{}", self.pg_db(Db::Vault)))
            }
        }
    }

    pub fn count(&self, db: Db, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match backend() {
            Backend::Sqlite => self.sqlite(db).query_row(&sql, [], |r| r.get(0)).unwrap(),
            Backend::Postgres { admin } => psql(admin, &self.pg_db(db), &sql).parse().unwrap(),
        }
    }

    /// `SELECT COUNT(*) …`, valid SQL on both backends.
    pub fn count_sql(&self, db: Db, sql: &str) -> i64 {
        match backend() {
            Backend::Sqlite => self.sqlite(db).query_row(sql, [], |r| r.get(0)).unwrap(),
            Backend::Postgres { admin } => psql(admin, &self.pg_db(db), sql).parse().unwrap(),
        }
    }

    /// Rows of workspace `ws` in every table of every store that has a `workspace_id` column (so
    /// a table added later is covered too), and its row in `workspaces`.
    pub fn rows_of_workspace(&self, ws: &str) -> Vec<(String, i64)> {
        let mut out = Vec::new();
        for db in [Db::Control, Db::Data, Db::Vault] {
            let tables: Vec<String> = match backend() {
                Backend::Sqlite => {
                    let c = self.sqlite(db);
                    let mut stmt = c
                        .prepare(
                            "SELECT m.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                             WHERE m.type = 'table' AND p.name = 'workspace_id'",
                        )
                        .unwrap();
                    stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
                }
                Backend::Postgres { admin } => psql(
                    admin,
                    &self.pg_db(db),
                    "SELECT table_name FROM information_schema.columns \
                     WHERE table_schema = 'public' AND column_name = 'workspace_id'",
                )
                .lines()
                .map(str::to_string)
                .collect(),
            };
            assert!(!tables.is_empty(), "{db:?} has tables with a workspace_id column");
            for table in tables {
                let n = self.count_sql(db, &format!("SELECT COUNT(*) FROM {table} WHERE workspace_id = '{ws}'"));
                out.push((format!("{db:?}.{table}"), n));
            }
        }
        out.push((
            "Control.workspaces".into(),
            self.count_sql(Db::Control, &format!("SELECT COUNT(*) FROM workspaces WHERE id = '{ws}'")),
        ));
        out
    }

    /// Runs one statement that is valid SQL on both backends.
    pub fn execute(&self, db: Db, sql: &str) {
        match backend() {
            Backend::Sqlite => {
                self.sqlite(db).execute(sql, []).unwrap();
            }
            Backend::Postgres { admin } => {
                psql(admin, &self.pg_db(db), sql);
            }
        }
    }

    /// `SELECT column FROM table WHERE key = id`, a blob.
    pub fn blob(&self, db: Db, table: &str, column: &str, key: &str, id: &str) -> Vec<u8> {
        match backend() {
            Backend::Sqlite => self
                .sqlite(db)
                .query_row(&format!("SELECT {column} FROM {table} WHERE {key} = ?1"), [id], |r| r.get(0))
                .unwrap(),
            Backend::Postgres { admin } => {
                let hex = psql(
                    admin,
                    &self.pg_db(db),
                    &format!("SELECT encode({column}, 'hex') FROM {table} WHERE {key} = '{id}'"),
                );
                (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
            }
        }
    }

    /// `UPDATE table SET column = value WHERE key = id`; exactly one row must change.
    pub fn set_blob(&self, db: Db, table: &str, column: &str, key: &str, id: &str, value: &[u8]) {
        let n: usize = match backend() {
            Backend::Sqlite => self
                .sqlite(db)
                .execute(&format!("UPDATE {table} SET {column} = ?1 WHERE {key} = ?2"), rusqlite::params![value, id])
                .unwrap(),
            Backend::Postgres { admin } => {
                let hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
                let out = psql(
                    admin,
                    &self.pg_db(db),
                    &format!(
                        "WITH u AS (UPDATE {table} SET {column} = decode('{hex}', 'hex') WHERE {key} = '{id}' RETURNING 1) SELECT COUNT(*) FROM u"
                    ),
                );
                out.parse().unwrap()
            }
        };
        assert_eq!(n, 1, "UPDATE {table}.{column} for {id}");
    }

    /// Every byte the store has on disk: the SQLite files (with their WAL), or for PostgreSQL the
    /// files of this test's two databases and the cluster's write-ahead log.
    pub fn files_on_disk(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut dirs = Vec::new();
        match backend() {
            Backend::Sqlite => dirs.push(self.dir.clone()),
            Backend::Postgres { admin } => {
                psql(admin, "postgres", "CHECKPOINT");
                let root = PathBuf::from(psql(admin, "postgres", "SHOW data_directory"));
                for db in [Db::Data, Db::Vault] {
                    let oid = psql(
                        admin,
                        "postgres",
                        &format!("SELECT oid FROM pg_database WHERE datname = '{}'", self.pg_db(db)),
                    );
                    dirs.push(root.join("base").join(oid));
                }
                dirs.push(root.join("pg_wal"));
                dirs.push(self.dir.clone());
            }
        }
        let mut out = Vec::new();
        for d in dirs {
            for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("read {}: {e}", d.display())) {
                let path = entry.unwrap().path();
                if path.is_file() {
                    let bytes = std::fs::read(&path).unwrap();
                    out.push((path, bytes));
                }
            }
        }
        out
    }
}
