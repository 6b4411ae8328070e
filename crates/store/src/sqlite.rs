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

use chimatic_audit::Stream;
use chimatic_domain::{EventId, NotificationId, NotificationStatus, Region, SubscriberId, Timestamp, WorkspaceId};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};

use crate::StoreError;
use crate::backend::*;
use crate::db::columns::OwnedRow;
use crate::db::{Arg, Audited, Db, EachRow, Returned, Sql, Step};
use crate::fairness::WorkspaceWalk;

pub(crate) mod audit;
mod directory;

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
        (1, include_str!("../migrations/sqlite/data/0001_spine.sql")),
        (2, include_str!("../migrations/sqlite/data/0002_directory.sql")),
        (3, include_str!("../migrations/sqlite/data/0003_events.sql")),
        (4, include_str!("../migrations/sqlite/data/0004_feedback.sql")),
        (5, include_str!("../migrations/sqlite/data/0005_audit.sql")),
        (6, include_str!("../migrations/sqlite/data/0006_lifecycle.sql")),
        (7, include_str!("../migrations/sqlite/data/0007_channel_purge_start.sql")),
    ],
};
pub(crate) const VAULT: Schema = Schema {
    ledger: "chimatic_migrations",
    migrations: &[
        (1, include_str!("../migrations/sqlite/vault/0001_vault.sql")),
        (2, include_str!("../migrations/sqlite/vault/0002_kek_versions.sql")),
    ],
};
pub(crate) const CONTROL: Schema = Schema {
    ledger: "chimatic_control_migrations",
    migrations: &[
        (1, include_str!("../migrations/sqlite/control/0001_control.sql")),
        (2, include_str!("../migrations/sqlite/control/0002_audit.sql")),
        (3, include_str!("../migrations/sqlite/control/0003_plans.sql")),
        (4, include_str!("../migrations/sqlite/control/0004_freeze.sql")),
        (5, include_str!("../migrations/sqlite/control/0005_payload_retention.sql")),
        (6, include_str!("../migrations/sqlite/control/0006_workspace_deletion.sql")),
        (7, include_str!("../migrations/sqlite/control/0007_erasure_sweep.sql")),
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
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// The workspace the last claim started after, so claims go round the tenants.
    claim_cursor: Mutex<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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
            let n = tx.prepare_cached(sql.sqlite())?.execute(rusqlite::params_from_iter(args.iter()))?;
            if let Some(a) = &audit {
                audit::audit_one_change(tx, n, a.stream, a.ws, &a.event)?;
            }
            Ok(n as u64)
        })
        .await
    }

    async fn transaction(&self, steps: Vec<Step>, audit: Option<Audited>) -> Result<Vec<u64>, StoreError> {
        self.write(move |tx| {
            let mut changed = Vec::with_capacity(steps.len());
            for step in &steps {
                let n = tx.prepare_cached(step.sql.sqlite())?.execute(rusqlite::params_from_iter(step.args.iter()))?;
                changed.push(n as u64);
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

fn connect(path: &Path) -> Result<Connection, StoreError> {
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

    async fn insert_notifications(
        &self,
        rows: &[(WorkspaceId, NewNotificationRow)],
        idempotency_window: Duration,
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        let rows = rows.to_vec();
        self.write(move |tx| {
            let mut outcomes = Vec::with_capacity(rows.len());
            for (ws, row) in &rows {
                let ws = ws.to_string();
                if let Some(digest) = &row.idempotency_digest
                    && let Some(existing) =
                        claim_idempotency(tx, &ws, digest, &row.id.to_string(), row.created_at, idempotency_window)?
                {
                    outcomes.push(InsertOutcome::Existing(parse(&existing, "notification id")?));
                    continue;
                }
                insert_notification(tx, &ws, row)?;
                outcomes.push(InsertOutcome::Created);
            }
            Ok(outcomes)
        })
        .await
    }

    async fn insert_event(
        &self,
        ws: WorkspaceId,
        event: &NewEvent,
        idempotency_window: Duration,
    ) -> Result<Option<EventId>, StoreError> {
        let event = event.clone();
        self.write(move |tx| {
            let ws = ws.to_string();
            if let Some(digest) = &event.idempotency_digest
                && let Some(existing) =
                    claim_idempotency(tx, &ws, digest, &event.id.to_string(), event.created_at, idempotency_window)?
            {
                return Ok(Some(parse(&existing, "event id")?));
            }
            for row in &event.rows {
                insert_notification(tx, &ws, row)?;
            }
            for fanout in &event.fanouts {
                directory::insert_fanout(tx, &ws, fanout)?;
            }
            Ok(None)
        })
        .await
    }

    async fn notification(&self, ws: WorkspaceId, id: NotificationId) -> Result<Option<NotificationRow>, StoreError> {
        let raw = self.read(|c| {
            let sql = format!(
                "SELECT {NOTIFICATION_COLUMNS}, q.due_at, q.lease_token \
                 FROM notifications n LEFT JOIN delivery_queue q ON q.notification_id = n.id \
                 WHERE n.workspace_id = ?1 AND n.id = ?2"
            );
            Ok(c.prepare_cached(&sql)?.query_row([ws.to_string(), id.to_string()], raw_notification).optional()?)
        })?;
        raw.map(to_notification).transpose()
    }

    async fn attempts(&self, ws: WorkspaceId, id: NotificationId) -> Result<Vec<AttemptRow>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, started_at, succeeded, detail FROM attempts \
                 WHERE workspace_id = ?1 AND notification_id = ?2 ORDER BY started_at, id",
            )?;
            let rows = stmt.query_map([ws.to_string(), id.to_string()], |r| {
                Ok(AttemptRow {
                    id: r.get(0)?,
                    started_at: Timestamp(r.get(1)?),
                    succeeded: r.get::<_, i64>(2)? != 0,
                    detail: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    async fn delivery_rows(
        &self,
        ws: WorkspaceId,
        id: NotificationId,
    ) -> Result<Option<(Vec<u8>, Target, Option<crate::ChannelRow>)>, StoreError> {
        // Point lookups: in-process they cost less than a join, which SQLite plans poorly
        // without statistics (measured: ~20% less throughput with the join).
        let raw = self.read(|c| {
            let found = c
                .prepare_cached(concat!(
                    "SELECT n.payload, ",
                    route_columns!(),
                    " FROM notifications n WHERE n.workspace_id = ?1 AND n.id = ?2"
                ))?
                .query_row([ws.to_string(), id.to_string()], |r| Ok((r.get::<_, Vec<u8>>(0)?, raw_route(r, 1)?)))
                .optional()?;
            let Some((payload, route)) = found else {
                return Ok(None);
            };
            let channel = match &route.channel_id {
                Some(channel_id) => {
                    // A deactivated channel is out of use: nothing is delivered to it.
                    let mut stmt = c.prepare_cached(crate::channels::sql::ACTIVE_BY_ID.sqlite())?;
                    let mut rows = stmt.query([ws.to_string(), channel_id.clone()])?;
                    Some(rows.next()?.map(|r| crate::channels::channel_row(r, 0)).transpose()?)
                }
                None => None,
            };
            Ok(Some((payload, route, channel)))
        })?;
        let Some((payload, route, channel)) = raw else {
            return Ok(None);
        };
        let target = route.target()?;
        let channel = match channel {
            // A direct webhook whose channel is gone is not deliverable.
            Some(None) => return Ok(None),
            Some(Some(channel)) => Some(channel),
            None => None,
        };
        Ok(Some((payload, target, channel)))
    }

    async fn inbox(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        before: Option<NotificationId>,
        limit: u32,
        archived: bool,
    ) -> Result<Vec<NotificationRow>, StoreError> {
        let raws = self.read(|c| {
            let sql = format!(
                "SELECT {NOTIFICATION_COLUMNS}, NULL, NULL FROM notifications n \
                 WHERE n.workspace_id = ?1 AND n.subscriber_id = ?2 AND n.kind = 'inapp' AND n.status <> 'skipped' AND n.payload_removed_at IS NULL AND n.id < ?3 \
                   AND (?4 OR n.archived_at IS NULL) \
                 ORDER BY n.id DESC LIMIT ?5"
            );
            let before = before.map(|b| b.to_string()).unwrap_or_else(|| "msg_g".into());
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(
                params![ws.to_string(), subscriber.to_string(), before, archived, i64::from(limit)],
                raw_notification,
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        raws.into_iter().map(to_notification).collect()
    }

    async fn inbox_unread(&self, ws: WorkspaceId, subscriber: SubscriberId) -> Result<u64, StoreError> {
        let n: i64 = self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT COUNT(*) FROM notifications WHERE workspace_id = ?1 AND subscriber_id = ?2 AND kind = 'inapp' \
                 AND status <> 'skipped' AND payload_removed_at IS NULL AND read_at IS NULL AND archived_at IS NULL",
            )?
            .query_row([ws.to_string(), subscriber.to_string()], |r| r.get(0))?)
        })?;
        u64::try_from(n).map_err(|_| StoreError::Corrupt("unread count"))
    }

    async fn mark_inbox(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        id: NotificationId,
        read_at: Option<Option<Timestamp>>,
        archived_at: Option<Option<Timestamp>>,
    ) -> Result<bool, StoreError> {
        self.write(move |tx| {
            let n = tx.execute(
                "UPDATE notifications SET \
                   read_at = CASE WHEN ?4 THEN ?5 ELSE read_at END, \
                   archived_at = CASE WHEN ?6 THEN ?7 ELSE archived_at END \
                 WHERE workspace_id = ?1 AND subscriber_id = ?2 AND id = ?3 AND kind = 'inapp'",
                params![
                    ws.to_string(),
                    subscriber.to_string(),
                    id.to_string(),
                    read_at.is_some(),
                    read_at.flatten().map(|t| t.0),
                    archived_at.is_some(),
                    archived_at.flatten().map(|t| t.0)
                ],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn purge_idempotency_keys(&self, before: Timestamp, limit: u32) -> Result<Option<u64>, StoreError> {
        // SQLite has one writer at a time, across processes too: the batch is exclusive already.
        self.write(move |tx| {
            let n = tx
                .prepare_cached(
                    "DELETE FROM idempotency_keys WHERE (workspace_id, key_digest) IN ( \
                       SELECT workspace_id, key_digest FROM idempotency_keys WHERE created_at < ?1 \
                       ORDER BY created_at LIMIT ?2)",
                )?
                .execute(params![before.0, i64::from(limit)])?;
            Ok(Some(n as u64))
        })
        .await
    }

    async fn replay(&self, ws: WorkspaceId, id: NotificationId, now: Timestamp) -> Result<bool, StoreError> {
        self.write(move |tx| {
            let changed = tx.execute(
                "UPDATE notifications SET status = 'queued', updated_at = ?3 \
                 WHERE workspace_id = ?1 AND id = ?2 AND status = 'failed' AND payload_removed_at IS NULL",
                params![ws.to_string(), id.to_string(), now.0],
            )?;
            if changed == 1 {
                tx.execute(
                    "INSERT INTO delivery_queue (notification_id, workspace_id, due_at) VALUES (?1, ?2, ?3)",
                    params![id.to_string(), ws.to_string(), now.0],
                )?;
            }
            Ok(changed == 1)
        })
        .await
    }

    async fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let cursor = lock(&self.inner.claim_cursor).clone();
        let (raws, next_cursor) = self
            .write({
                let token = token.clone();
                move |tx| fair_claim(tx, &cursor, now, lease_until, limit, &token)
            })
            .await?;
        *lock(&self.inner.claim_cursor) = next_cursor;
        raws.into_iter().map(|(nid, ws, round)| ClaimedJob::from_stored(&nid, &ws, round, &token)).collect()
    }

    async fn release_claims(&self, jobs: &[ClaimedJob], now: Timestamp) -> Result<(), StoreError> {
        let jobs = jobs.to_vec();
        self.write(move |tx| {
            let mut release = tx.prepare_cached(
                "UPDATE delivery_queue SET due_at = ?1, lease_token = NULL WHERE notification_id = ?2 AND lease_token = ?3",
            )?;
            for job in &jobs {
                release.execute(params![now.0, job.notification_id.to_string(), job.lease_token])?;
            }
            Ok(())
        })
        .await
    }

    async fn remove_payloads(
        &self,
        ws: WorkspaceId,
        before: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<Option<u64>, StoreError> {
        self.write(move |tx| {
            let w = ws.to_string();
            let n = tx.execute(
                "UPDATE notifications SET payload = X'', payload_removed_at = ?3 WHERE id IN ( \
                   SELECT id FROM notifications WHERE workspace_id = ?1 AND created_at < ?2 \
                     AND payload_removed_at IS NULL AND status IN ('delivered', 'failed', 'skipped', 'suppressed', 'cancelled') LIMIT ?4)",
                params![w, before.0, now.0, i64::from(limit)],
            )?;
            tx.execute(
                "DELETE FROM fanouts WHERE workspace_id = ?1 AND done_at IS NOT NULL AND done_at < ?2",
                params![w, before.0],
            )?;
            Ok(Some(n as u64))
        })
        .await
    }

    async fn held_workspaces(&self) -> Result<Vec<WorkspaceId>, StoreError> {
        let ids: Vec<String> = self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT DISTINCT workspace_id FROM delivery_queue WHERE due_at = ?1")?;
            let rows = stmt.query_map([HELD.0], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        ids.iter().map(|id| parse(id, "workspace id")).collect()
    }

    async fn release_held(&self, ws: WorkspaceId, now: Timestamp) -> Result<u64, StoreError> {
        self.write(move |tx| {
            let n = tx.execute(
                "UPDATE delivery_queue SET due_at = ?3 WHERE workspace_id = ?1 AND due_at = ?2",
                params![ws.to_string(), HELD.0, now.0],
            )?;
            Ok(n as u64)
        })
        .await
    }

    async fn complete_attempts(&self, done: &[(ClaimedJob, CompletedAttempt)]) -> Result<Vec<bool>, StoreError> {
        let done = done.to_vec();
        self.write(move |tx| {
            let mut recorded = Vec::with_capacity(done.len());
            for (job, attempt) in &done {
                recorded.push(complete_attempt(tx, job, attempt)?);
            }
            let events: Vec<_> = done
                .iter()
                .zip(&recorded)
                .filter(|(_, r)| **r)
                .map(|((job, a), _)| (job.workspace_id, &a.audit))
                .collect();
            audit::append(tx, Stream::Data, &events)?;
            Ok(recorded)
        })
        .await
    }
}

/// Claims an idempotency key for `holder` unless a live claim (younger than the window) holds
/// it; returns that claim's holder.
fn claim_idempotency(
    tx: &Transaction<'_>,
    ws: &str,
    digest: &[u8; 32],
    holder: &str,
    now: Timestamp,
    window: Duration,
) -> Result<Option<String>, StoreError> {
    let claimed: Option<String> = tx
        .prepare_cached(
            "INSERT INTO idempotency_keys (workspace_id, key_digest, notification_id, created_at) \
             VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (workspace_id, key_digest) DO UPDATE \
               SET notification_id = excluded.notification_id, created_at = excluded.created_at \
               WHERE idempotency_keys.created_at < ?5 \
             RETURNING notification_id",
        )?
        .query_row(params![ws, digest.as_slice(), holder, now.0, now.minus(window).0], |r| r.get(0))
        .optional()?;
    if claimed.is_some() {
        return Ok(None);
    }
    let existing: String = tx
        .prepare_cached("SELECT notification_id FROM idempotency_keys WHERE workspace_id = ?1 AND key_digest = ?2")?
        .query_row(params![ws, digest.as_slice()], |r| r.get(0))?;
    Ok(Some(existing))
}

fn insert_notification(tx: &Transaction<'_>, ws: &str, row: &NewNotificationRow) -> Result<(), StoreError> {
    let id = row.id.to_string();
    let route = RouteColumns::of(&row.target);
    tx.prepare_cached(
        "INSERT INTO notifications (id, workspace_id, channel_id, payload, status, attempt_count, created_at, updated_at, \
           kind, event_id, subscriber_id, subscriber_channel_id, integration_id, fallback_integration_id, failover_after) \
         VALUES (?1, ?2, ?3, ?4, ?11, 0, ?5, ?5, ?6, ?7, ?8, ?9, ?10, ?12, ?13)",
    )?
    .execute(params![
        id,
        ws,
        route.channel_id,
        row.payload,
        row.created_at.0,
        route.kind,
        route.event_id,
        route.subscriber_id,
        route.subscriber_channel_id,
        route.integration_id,
        row.status.as_str(),
        route.fallback_integration_id,
        route.failover_after,
    ])?;
    if row.status != NotificationStatus::Queued {
        return Ok(());
    }
    tx.prepare_cached("INSERT INTO delivery_queue (notification_id, workspace_id, due_at) VALUES (?1, ?2, ?3)")?
        .execute(params![id, ws, row.created_at.0])?;
    Ok(())
}

const NOTIFICATION_COLUMNS: &str = concat!(
    "n.id, CASE WHEN n.payload_removed_at IS NULL THEN n.payload END, n.status, n.attempt_count, n.created_at, \
     n.updated_at, n.read_at, n.archived_at, ",
    route_columns!()
);

/// The [`route_columns!`] of a row, from column `at` on.
fn raw_route(r: &Row<'_>, at: usize) -> rusqlite::Result<RouteColumns> {
    Ok(RouteColumns {
        channel_id: r.get(at)?,
        kind: r.get(at + 1)?,
        event_id: r.get(at + 2)?,
        subscriber_id: r.get(at + 3)?,
        subscriber_channel_id: r.get(at + 4)?,
        integration_id: r.get(at + 5)?,
        fallback_integration_id: r.get(at + 6)?,
        failover_after: r.get(at + 7)?,
    })
}

struct RawNotification {
    id: String,
    payload: Option<Vec<u8>>,
    status: String,
    attempts: i64,
    created: i64,
    updated: i64,
    read_at: Option<i64>,
    archived_at: Option<i64>,
    route: RouteColumns,
    due: Option<i64>,
    lease: Option<String>,
}

/// A row of [`NOTIFICATION_COLUMNS`] followed by the queue's `due_at` and `lease_token`.
fn raw_notification(r: &Row<'_>) -> rusqlite::Result<RawNotification> {
    Ok(RawNotification {
        id: r.get(0)?,
        payload: r.get(1)?,
        status: r.get(2)?,
        attempts: r.get(3)?,
        created: r.get(4)?,
        updated: r.get(5)?,
        read_at: r.get(6)?,
        archived_at: r.get(7)?,
        route: raw_route(r, 8)?,
        due: r.get(16)?,
        lease: r.get(17)?,
    })
}

fn to_notification(raw: RawNotification) -> Result<NotificationRow, StoreError> {
    Ok(NotificationRow {
        id: parse(&raw.id, "notification id")?,
        target: raw.route.target()?,
        read_at: raw.read_at.map(Timestamp),
        archived_at: raw.archived_at.map(Timestamp),
        payload: raw.payload,
        status: NotificationStatus::parse(&raw.status).ok_or(StoreError::Corrupt("status"))?,
        attempt_count: u32_of(raw.attempts, "attempt count")?,
        created_at: Timestamp(raw.created),
        updated_at: Timestamp(raw.updated),
        queued_due_at: raw.due.map(Timestamp),
        leased: raw.lease.is_some(),
    })
}

type RawClaim = (String, String, i64);

/// Claims up to `limit` due jobs fairly: first an equal share for each workspace with queued
/// work (visiting them round-robin from `cursor`, so a tenant with a huge backlog cannot starve
/// the others), then whatever capacity is left in due order, so one busy tenant alone still
/// gets the whole pool. Workspaces are enumerated by skip-scan over the
/// `(workspace_id, due_at)` index: a seek per workspace, never a scan of the backlog.
fn fair_claim(
    tx: &Transaction<'_>,
    cursor: &str,
    now: Timestamp,
    lease_until: Timestamp,
    limit: u32,
    token: &str,
) -> Result<(Vec<RawClaim>, String), StoreError> {
    let mut next_ws = tx.prepare_cached("SELECT MIN(workspace_id) FROM delivery_queue WHERE workspace_id > ?1")?;
    let mut walk = WorkspaceWalk::after(cursor);
    while let Some(at) = walk.next_query() {
        let next = next_ws.query_row([at], |r| r.get::<_, Option<String>>(0))?;
        walk.answer(next);
    }
    let mut claimed = Vec::new();
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let share = walk.share(limit);
    let workspaces = walk.found;
    let mut per_workspace = tx.prepare_cached(
        "UPDATE delivery_queue SET due_at = ?1, lease_token = ?2 \
         WHERE notification_id IN ( \
             SELECT notification_id FROM delivery_queue WHERE workspace_id = ?3 AND due_at <= ?4 ORDER BY due_at LIMIT ?5) \
         RETURNING notification_id, workspace_id, round_attempts",
    )?;
    let mut last_served = cursor.to_string();
    for ws in &workspaces {
        if claimed.len() >= limit {
            break;
        }
        let rows = per_workspace
            .query_map(params![lease_until.0, token, ws, now.0, share], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        claimed.extend(rows.collect::<Result<Vec<RawClaim>, _>>()?);
        last_served.clone_from(ws);
    }
    if claimed.len() < limit {
        let rest = i64::try_from(limit - claimed.len()).unwrap_or(i64::MAX);
        let mut any = tx.prepare_cached(
            "UPDATE delivery_queue SET due_at = ?1, lease_token = ?2 \
             WHERE notification_id IN ( \
                 SELECT notification_id FROM delivery_queue WHERE due_at <= ?3 ORDER BY due_at LIMIT ?4) \
             RETURNING notification_id, workspace_id, round_attempts",
        )?;
        let rows =
            any.query_map(params![lease_until.0, token, now.0, rest], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        claimed.extend(rows.collect::<Result<Vec<RawClaim>, _>>()?);
    }
    Ok((claimed, last_served))
}

/// Records one attempt and moves its job on; `false` when the notification is gone (a subscriber
/// or workspace erased while the delivery was on the wire): no attempt is recorded, and the queue
/// row left for it, if any, is removed.
fn complete_attempt(tx: &Transaction<'_>, job: &ClaimedJob, done: &CompletedAttempt) -> Result<bool, StoreError> {
    let ws = job.workspace_id.to_string();
    let nid = job.notification_id.to_string();
    let status = match done.outcome {
        QueueOutcome::Delivered => "delivered",
        QueueOutcome::RetryAt(_) => "queued",
        QueueOutcome::Failed => "failed",
    };
    // Only the holder of the current lease moves the job; a worker whose lease ran out and was
    // taken over still records its attempt but leaves the queue to the new holder. The queue row
    // is touched before the notification, in the same order as the erasures, so the two never
    // wait for each other.
    let moved = match done.outcome {
        QueueOutcome::RetryAt(at) => tx
            .prepare_cached(
                "UPDATE delivery_queue SET due_at = ?1, lease_token = NULL, round_attempts = round_attempts + 1 \
                 WHERE notification_id = ?2 AND lease_token = ?3",
            )?
            .execute(params![at.0, nid, job.lease_token])?,
        QueueOutcome::Delivered | QueueOutcome::Failed => tx
            .prepare_cached("DELETE FROM delivery_queue WHERE notification_id = ?1 AND lease_token = ?2")?
            .execute(params![nid, job.lease_token])?,
    };
    let counted = if moved == 1 {
        tx.prepare_cached(
            "UPDATE notifications SET attempt_count = attempt_count + 1, status = ?3, updated_at = ?4 \
             WHERE workspace_id = ?1 AND id = ?2",
        )?
        .execute(params![ws, nid, status, done.now.0])?
    } else {
        tx.prepare_cached(
            "UPDATE notifications SET attempt_count = attempt_count + 1, updated_at = ?3 WHERE workspace_id = ?1 AND id = ?2",
        )?
        .execute(params![ws, nid, done.now.0])?
    };
    if counted == 0 {
        tx.prepare_cached("DELETE FROM delivery_queue WHERE notification_id = ?1")?.execute([&nid])?;
        return Ok(false);
    }
    tx.prepare_cached(
        "INSERT INTO attempts (id, notification_id, workspace_id, started_at, succeeded, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        done.attempt.id,
        nid,
        ws,
        done.attempt.started_at.0,
        i64::from(done.attempt.succeeded),
        done.attempt.detail
    ])?;
    Ok(true)
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

    fn queue(tx: &Transaction<'_>, ws: &str, n: usize, due: i64) {
        for i in 0..n {
            tx.execute(
                "INSERT INTO delivery_queue (notification_id, workspace_id, due_at) VALUES (?1, ?2, ?3)",
                params![format!("{ws}-{i}"), ws, due + i as i64],
            )
            .unwrap();
        }
    }

    fn claim(conn: &mut Connection, cursor: &str, limit: u32) -> (Vec<String>, String) {
        let tx = conn.transaction().unwrap();
        let (rows, next) = fair_claim(&tx, cursor, Timestamp(1_000), Timestamp(9_999), limit, "t").unwrap();
        tx.commit().unwrap();
        (rows.into_iter().map(|r| r.1).collect(), next)
    }

    #[test]
    fn claims_share_capacity_across_workspaces_then_fill_from_the_busiest() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = connect(&dir.path().join("q.db")).unwrap();
        migrate(&mut conn, &DATA).unwrap();
        let tx = conn.transaction().unwrap();
        queue(&tx, "ws_a", 50, 0); // a backlog that is due first
        queue(&tx, "ws_b", 2, 500);
        queue(&tx, "ws_c", 1, 900);
        queue(&tx, "ws_d", 3, 5_000); // not due yet
        tx.commit().unwrap();

        let (got, cursor) = claim(&mut conn, "", 6);
        let count = |w: &str| got.iter().filter(|g| g.as_str() == w).count();
        assert_eq!((count("ws_a"), count("ws_b"), count("ws_c"), count("ws_d")), (4, 1, 1, 0), "{got:?}");
        assert_eq!(cursor, "ws_d");

        // The next claim starts after the cursor and wraps round; capacity left over goes to the backlog.
        let (got, _) = claim(&mut conn, &cursor, 8);
        let count = |w: &str| got.iter().filter(|g| g.as_str() == w).count();
        assert_eq!((count("ws_a"), count("ws_b"), count("ws_c"), count("ws_d")), (7, 1, 0, 0), "{got:?}");
    }

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
