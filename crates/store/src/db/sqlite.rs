//! The embedded backend: two SQLite files (notification data, credential vault) in WAL mode with
//! `synchronous=FULL`, so a committed write survives a crash of the process or the machine.
//!
//! Threading is chosen for throughput on small machines: point reads are index lookups served
//! from the page cache, so they run inline on the calling task with a pooled connection; writes
//! (which fsync) run on the blocking pool through the single writer connection, and callers
//! group many rows into one transaction.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chimatic_domain::{Region, WorkspaceId};
use rusqlite::{Connection, Transaction, TransactionBehavior, params};

use crate::StoreError;
use crate::audit::sqlite as audit;
use crate::backend::*;
use crate::db::columns::OwnedRow;
use crate::db::{Arg, Audited, Db, EachRow, Returned, Sql, Step};

pub const CONTROL_FILE: &str = "control.db";
pub const DATA_FILE: &str = "data.db";
pub const VAULT_FILE: &str = "vault.db";

/// A set of migrations and the table that records which of them a database has.
pub(crate) struct Schema {
    pub(crate) ledger: &'static str,
    pub(crate) migrations: &'static [(i64, &'static str)],
}

pub(crate) const DATA: Schema = Schema {
    ledger: "chimatic_migrations",
    migrations: &[
        (1, include_str!("../../migrations/sqlite/data/0001_spine.sql")),
        (2, include_str!("../../migrations/sqlite/data/0002_directory.sql")),
        (3, include_str!("../../migrations/sqlite/data/0003_events.sql")),
        (4, include_str!("../../migrations/sqlite/data/0004_feedback.sql")),
        (5, include_str!("../../migrations/sqlite/data/0005_audit.sql")),
        (6, include_str!("../../migrations/sqlite/data/0006_lifecycle.sql")),
        (7, include_str!("../../migrations/sqlite/data/0007_channel_purge_start.sql")),
        (8, include_str!("../../migrations/sqlite/data/0008_portal_endpoints.sql")),
    ],
};
pub(crate) const VAULT: Schema = Schema {
    ledger: "chimatic_migrations",
    migrations: &[
        (1, include_str!("../../migrations/sqlite/vault/0001_vault.sql")),
        (2, include_str!("../../migrations/sqlite/vault/0002_kek_versions.sql")),
    ],
};
pub(crate) const CONTROL: Schema = Schema {
    ledger: "chimatic_control_migrations",
    migrations: &[
        (1, include_str!("../../migrations/sqlite/control/0001_control.sql")),
        (2, include_str!("../../migrations/sqlite/control/0002_audit.sql")),
        (3, include_str!("../../migrations/sqlite/control/0003_plans.sql")),
        (4, include_str!("../../migrations/sqlite/control/0004_freeze.sql")),
        (5, include_str!("../../migrations/sqlite/control/0005_payload_retention.sql")),
        (6, include_str!("../../migrations/sqlite/control/0006_workspace_deletion.sql")),
        (7, include_str!("../../migrations/sqlite/control/0007_erasure_sweep.sql")),
        (8, include_str!("../../migrations/sqlite/control/0008_console.sql")),
        (9, include_str!("../../migrations/sqlite/control/0009_console_team.sql")),
        (10, include_str!("../../migrations/sqlite/control/0010_hourly_stats.sql")),
        (11, include_str!("../../migrations/sqlite/control/0011_sso.sql")),
        (12, include_str!("../../migrations/sqlite/control/0012_sso_policy.sql")),
        (13, include_str!("../../migrations/sqlite/control/0013_connect_flows.sql")),
    ],
};

/// Idle read connections kept per file.
const MAX_IDLE_READERS: usize = 16;

/// The database files of the embedded default: the control plane's and one region's.
pub struct SqliteFiles {
    pub control: PathBuf,
    pub data: PathBuf,
    pub vault: PathBuf,
}

impl SqliteFiles {
    pub fn in_dir(dir: &Path) -> Self {
        Self { control: dir.join(CONTROL_FILE), data: dir.join(DATA_FILE), vault: dir.join(VAULT_FILE) }
    }
}

#[derive(Clone)]
pub struct SqliteBackend {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// The workspace the last claim started after, so claims go round the tenants.
    pub(crate) claim_cursor: Mutex<String>,
}

/// Runs one statement of the catalogue on `conn` (inside the caller's transaction, if any);
/// the rows it changed.
pub(crate) fn run(conn: &Connection, statement: &'static Sql, args: impl AsRef<[Arg]>) -> Result<u64, StoreError> {
    Ok(conn.prepare_cached(statement.sqlite())?.execute(rusqlite::params_from_iter(args.as_ref().iter()))? as u64)
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SqliteBackend {
    /// Opens (creating if needed) and migrates a region's notification store. Refuses a schema
    /// newer than this build.
    pub fn open_data(path: &Path) -> Result<Self, StoreError> {
        Self::open_file(path, &DATA)
    }

    /// Opens (creating if needed) and migrates a region's credential vault.
    pub fn open_vault(path: &Path) -> Result<Self, StoreError> {
        Self::open_file(path, &VAULT)
    }

    /// Opens (creating if needed) and migrates the control plane's store.
    pub fn open_control(path: &Path) -> Result<Self, StoreError> {
        Self::open_file(path, &CONTROL)
    }

    fn open_file(path: &Path, schema: &Schema) -> Result<Self, StoreError> {
        // Created owner-only before SQLite opens it; SQLite gives the -wal and -shm files the same mode.
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| StoreError::Io(e.to_string()))?;
        let mut writer = connect(path)?;
        migrate(&mut writer, schema)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Mutex::new(writer),
                readers: Mutex::default(),
                claim_cursor: Mutex::default(),
            }),
        })
    }

    /// Runs a read on a pooled connection, inline.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let pooled = lock(&self.inner.readers).pop();
        let conn = match pooled {
            Some(c) => c,
            None => connect(&self.inner.path)?,
        };
        let result = f(&conn);
        let mut idle = lock(&self.inner.readers);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result
    }

    /// Runs a write transaction on the blocking pool (it fsyncs on commit).
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = lock(&inner.writer);
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
        .map_err(|_| StoreError::Unavailable)?
    }
}

#[async_trait::async_trait]
impl Db for SqliteBackend {
    async fn each_row(&self, sql: &'static Sql, args: Vec<Arg>, each: &mut EachRow<'_>) -> Result<(), StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(sql.sqlite())?;
            let mut rows = stmt.query(rusqlite::params_from_iter(args.iter()))?;
            while let Some(row) = rows.next()? {
                each(row)?;
            }
            Ok(())
        })
    }

    async fn execute(&self, sql: &'static Sql, args: Vec<Arg>, audit: Option<Audited>) -> Result<u64, StoreError> {
        self.write(move |tx| {
            let n = run(tx, sql, args)?;
            if let Some(a) = &audit {
                audit::audit_one_change(tx, n, a.stream, a.ws, &a.event)?;
            }
            Ok(n)
        })
        .await
    }

    async fn transaction(&self, steps: Vec<Step>, audit: Option<Audited>) -> Result<Vec<u64>, StoreError> {
        self.write(move |tx| {
            let mut changed = Vec::with_capacity(steps.len());
            for step in &steps {
                let n = run(tx, step.sql, &step.args)?;
                changed.push(n);
                if step.required && n == 0 {
                    return Ok(changed);
                }
            }
            if let Some(a) = &audit {
                audit::append_one(tx, a.stream, a.ws, &a.event)?;
            }
            Ok(changed)
        })
        .await
    }

    async fn execute_job(
        &self,
        _job: &'static str,
        sql: &'static Sql,
        args: Vec<Arg>,
    ) -> Result<Option<u64>, StoreError> {
        self.execute(sql, args, None).await.map(Some)
    }

    async fn execute_returning(&self, sql: &'static Sql, args: Vec<Arg>) -> Result<Vec<Returned>, StoreError> {
        self.write(move |tx| {
            let mut stmt = tx.prepare_cached(sql.sqlite())?;
            let mut rows = stmt.query(rusqlite::params_from_iter(args.iter()))?;
            let mut out: Vec<Returned> = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(Box::new(OwnedRow::of(row)?));
            }
            Ok(out)
        })
        .await
    }
}

impl SqliteBackend {
    async fn bind_region_once(&self, region: &Region) -> Result<(), StoreError> {
        let region = region.clone();
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO store_region (only_row, region) VALUES (1, ?1) ON CONFLICT DO NOTHING",
                [region.as_str()],
            )?;
            let bound: String = tx.query_row("SELECT region FROM store_region", [], |r| r.get(0))?;
            if bound == region.as_str() { Ok(()) } else { Err(StoreError::WrongRegion { bound, expected: region }) }
        })
        .await
    }
}

pub(crate) fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // Freed pages are zeroed, so deleted ciphertext does not linger in the file.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;",
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Applies embedded migrations in order, each in its own transaction, and refuses to run
/// against a database migrated by a newer build.
pub(crate) fn migrate(conn: &mut Connection, schema: &Schema) -> Result<(), StoreError> {
    let ledger = schema.ledger;
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {ledger} (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"
    ))?;
    let newest: Option<i64> = conn.query_row(&format!("SELECT MAX(version) FROM {ledger}"), [], |r| r.get(0))?;
    let migrations = schema.migrations;
    let known = migrations.last().map(|m| m.0).unwrap_or(0);
    if let Some(v) = newest
        && v > known
    {
        return Err(StoreError::SchemaTooNew { found: v, known });
    }
    for (version, sql) in migrations {
        if newest.is_some_and(|n| n >= *version) {
            continue;
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.execute(
            &format!("INSERT INTO {ledger} (version, applied_at) VALUES (?1, strftime('%s','now'))"),
            [version],
        )?;
        tx.commit()?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl DataBackend for SqliteBackend {
    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?)).map(|_| ())
    }

    async fn bind_region(&self, region: &Region) -> Result<(), StoreError> {
        self.bind_region_once(region).await
    }
}

#[async_trait::async_trait]
impl WorkspaceEraser for SqliteBackend {
    async fn delete_workspace_rows(
        &self,
        table: &'static str,
        key: &'static str,
        ws: WorkspaceId,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.write(move |tx| {
            let n = tx.execute(&delete_rows_sql(table, key), params![ws.to_string(), i64::from(limit)])?;
            Ok(n as u64)
        })
        .await
    }
}

#[async_trait::async_trait]
impl ControlBackend for SqliteBackend {
    async fn ping(&self) -> Result<(), StoreError> {
        DataBackend::ping(self).await
    }
}

#[async_trait::async_trait]
impl VaultBackend for SqliteBackend {
    async fn ping(&self) -> Result<(), StoreError> {
        DataBackend::ping(self).await
    }

    async fn bind_region(&self, region: &Region) -> Result<(), StoreError> {
        self.bind_region_once(region).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_from_a_newer_build_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.db");
        let mut conn = connect(&path).unwrap();
        migrate(&mut conn, &DATA).unwrap();
        conn.execute("INSERT INTO chimatic_migrations (version, applied_at) VALUES (99, 0)", []).unwrap();
        drop(conn);
        let mut conn = connect(&path).unwrap();
        let newest = DATA.migrations.iter().map(|(v, _)| *v).max().unwrap();
        assert!(matches!(
            migrate(&mut conn, &DATA),
            Err(StoreError::SchemaTooNew { found: 99, known }) if known == newest
        ));
        // Re-running known migrations is a no-op.
        let dir2 = tempfile::tempdir().unwrap();
        let mut fresh = connect(&dir2.path().join("e.db")).unwrap();
        migrate(&mut fresh, &DATA).unwrap();
        migrate(&mut fresh, &DATA).unwrap();
    }
}
