//! The PostgreSQL backend: the same behaviour as the SQLite one, for deployments with many
//! stateless nodes. Notification data and the credential vault are separate databases, reached
//! through separate URLs (and so, in production, separate roles). Claims use
//! `FOR UPDATE SKIP LOCKED`, so nodes never wait on each other's jobs; migrations run under an
//! advisory lock, so nodes starting together do not race.

use std::str::FromStr;
use std::time::Duration;

use chimatic_audit::Stream;
use chimatic_domain::{EventId, NotificationId, NotificationStatus, Region, SubscriberId, Timestamp, WorkspaceId};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};

use crate::StoreError;
use crate::backend::*;
use crate::db::{Arg, Audited, Db, EachRow, Returned, Sql, Step, bind_all};
use crate::fairness::WorkspaceWalk;

pub(crate) mod audit;
mod directory;

/// A set of migrations, the table that records which of them a database has, and the advisory
/// lock that serialises nodes migrating at once.
struct Schema {
    ledger: &'static str,
    lock: &'static str,
    migrations: &'static [(i64, &'static str)],
}

const DATA: Schema = Schema {
    ledger: "chimatic_migrations",
    lock: "chimatic.data",
    migrations: &[
        (1, include_str!("../migrations/postgres/data/0001_spine.sql")),
        (2, include_str!("../migrations/postgres/data/0002_directory.sql")),
        (3, include_str!("../migrations/postgres/data/0003_events.sql")),
        (4, include_str!("../migrations/postgres/data/0004_feedback.sql")),
        (5, include_str!("../migrations/postgres/data/0005_audit.sql")),
        (6, include_str!("../migrations/postgres/data/0006_lifecycle.sql")),
        (7, include_str!("../migrations/postgres/data/0007_channel_purge_start.sql")),
    ],
};
const VAULT: Schema = Schema {
    ledger: "chimatic_migrations",
    lock: "chimatic.vault",
    migrations: &[
        (1, include_str!("../migrations/postgres/vault/0001_vault.sql")),
        (2, include_str!("../migrations/postgres/vault/0002_kek_versions.sql")),
    ],
};
// Its own ledger, so the control tables can share a database with a region's data.
const CONTROL: Schema = Schema {
    ledger: "chimatic_control_migrations",
    lock: "chimatic.control",
    migrations: &[
        (1, include_str!("../migrations/postgres/control/0001_control.sql")),
        (2, include_str!("../migrations/postgres/control/0002_audit.sql")),
        (3, include_str!("../migrations/postgres/control/0003_plans.sql")),
        (4, include_str!("../migrations/postgres/control/0004_freeze.sql")),
        (5, include_str!("../migrations/postgres/control/0005_payload_retention.sql")),
        (6, include_str!("../migrations/postgres/control/0006_workspace_deletion.sql")),
        (7, include_str!("../migrations/postgres/control/0007_erasure_sweep.sql")),
    ],
};

#[derive(Clone)]
pub struct PostgresBackend {
    pub(crate) pool: PgPool,
    claim_cursor: std::sync::Arc<std::sync::Mutex<String>>,
}

impl PostgresBackend {
    /// Connects to a region's notification database and migrates it.
    pub async fn open_data(url: &str) -> Result<Self, StoreError> {
        Self::connect(url, &DATA).await
    }

    /// Connects to a region's credential vault database and migrates it.
    pub async fn open_vault(url: &str) -> Result<Self, StoreError> {
        Self::connect(url, &VAULT).await
    }

    /// Connects to the control plane's database and migrates it.
    pub async fn open_control(url: &str) -> Result<Self, StoreError> {
        Self::connect(url, &CONTROL).await
    }

    async fn connect(url: &str, schema: &Schema) -> Result<Self, StoreError> {
        let opts = PgConnectOptions::from_str(url).map_err(|_| StoreError::Config("invalid PostgreSQL URL"))?;
        // No ping before every query: a broken connection fails its query and is replaced.
        // One direct connection first, so a refused TLS version is reported as such at start
        // (the pool would retry it until its acquire timeout).
        let mut first = <sqlx::PgConnection as sqlx::Connection>::connect_with(&opts).await?;
        require_tls13(&mut first).await?;
        let _ = sqlx::Connection::close(first).await;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(|conn, _| Box::pin(async move { require_tls13(conn).await }))
            .connect_with(opts)
            .await?;
        migrate(&pool, schema).await?;
        Ok(Self { pool, claim_cursor: Default::default() })
    }
}

/// sqlx cannot be told a minimum TLS version, so every new connection checks what it
/// negotiated: a connection that uses TLS must use TLS 1.3, or it is closed before any query
/// carries data. (Plaintext is governed by `sslmode` in the URL.)
async fn require_tls13(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    let (ssl, version): (bool, Option<String>) =
        sqlx::query_as("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetch_one(conn).await?;
    if ssl && version.as_deref() != Some("TLSv1.3") {
        return Err(sqlx::Error::Protocol(format!(
            "the database connection negotiated {}, but Chimatic requires TLS 1.3",
            version.as_deref().unwrap_or("an unknown TLS version")
        )));
    }
    Ok(())
}

/// Takes a background job's lock for the rest of the transaction, without waiting: `false`
/// when another node holds it. Each batch of a job runs in one such transaction, so exactly one
/// node works on a job at a time and a node that dies releases it with its connection.
pub(crate) async fn try_job_lock(tx: &mut Transaction<'_, Postgres>, job: &str) -> Result<bool, StoreError> {
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext($1))")
        .bind(format!("chimatic.job.{job}"))
        .fetch_one(&mut **tx)
        .await?;
    Ok(locked)
}

#[async_trait::async_trait]
impl Db for PostgresBackend {
    async fn each_row(&self, sql: &'static Sql, args: Vec<Arg>, each: &mut EachRow<'_>) -> Result<(), StoreError> {
        for row in bind_all(sqlx::query(sql.postgres()), args).fetch_all(&self.pool).await? {
            each(&row)?;
        }
        Ok(())
    }

    async fn execute(&self, sql: &'static Sql, args: Vec<Arg>, audit: Option<Audited>) -> Result<u64, StoreError> {
        let statement = bind_all(sqlx::query(sql.postgres()), args);
        let Some(a) = audit else {
            return Ok(statement.execute(&self.pool).await?.rows_affected());
        };
        let mut tx = self.pool.begin().await?;
        let n = statement.execute(&mut *tx).await?.rows_affected();
        if n == 1 {
            audit::append_one(&mut tx, a.stream, a.ws, &a.event).await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    async fn transaction(&self, steps: Vec<Step>, audit: Option<Audited>) -> Result<Vec<u64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut changed = Vec::with_capacity(steps.len());
        for step in steps {
            let n = bind_all(sqlx::query(step.sql.postgres()), step.args).execute(&mut *tx).await?.rows_affected();
            changed.push(n);
            if step.required && n == 0 {
                return Ok(changed);
            }
        }
        if let Some(a) = audit {
            audit::append_one(&mut tx, a.stream, a.ws, &a.event).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn execute_job(
        &self,
        job: &'static str,
        sql: &'static Sql,
        args: Vec<Arg>,
    ) -> Result<Option<u64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !try_job_lock(&mut tx, job).await? {
            return Ok(None);
        }
        let n = bind_all(sqlx::query(sql.postgres()), args).execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(Some(n))
    }

    async fn execute_returning(&self, sql: &'static Sql, args: Vec<Arg>) -> Result<Vec<Returned>, StoreError> {
        let rows = bind_all(sqlx::query(sql.postgres()), args).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|r| Box::new(r) as Returned).collect())
    }
}

impl PostgresBackend {
    async fn bind_region_once(&self, region: &Region) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO store_region (only_row, region) VALUES (1, $1) ON CONFLICT DO NOTHING")
            .bind(region.as_str())
            .execute(&self.pool)
            .await?;
        let bound: String = sqlx::query_scalar("SELECT region FROM store_region").fetch_one(&self.pool).await?;
        if bound == region.as_str() { Ok(()) } else { Err(StoreError::WrongRegion { bound, expected: region.clone() }) }
    }
}

async fn migrate(pool: &PgPool, schema: &Schema) -> Result<(), StoreError> {
    let (ledger, migrations) = (schema.ledger, schema.migrations);
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))").bind(schema.lock).execute(&mut *tx).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE IF NOT EXISTS {ledger} (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)"
    )))
    .execute(&mut *tx)
    .await?;
    let newest: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT MAX(version) FROM {ledger}")))
        .fetch_one(&mut *tx)
        .await?;
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
        sqlx::raw_sql(sqlx::AssertSqlSafe(*sql)).execute(&mut *tx).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {ledger} (version, applied_at) VALUES ($1, EXTRACT(EPOCH FROM now())::BIGINT)"
        )))
        .bind(version)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Claims an idempotency key for `holder` unless a live claim (younger than the window) holds
/// it; returns that claim's holder.
async fn claim_idempotency(
    tx: &mut Transaction<'_, Postgres>,
    ws: &str,
    digest: &[u8; 32],
    holder: &str,
    now: Timestamp,
    window: Duration,
) -> Result<Option<String>, StoreError> {
    let claimed: Option<String> = sqlx::query_scalar(
        "INSERT INTO idempotency_keys (workspace_id, key_digest, notification_id, created_at) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (workspace_id, key_digest) DO UPDATE \
           SET notification_id = excluded.notification_id, created_at = excluded.created_at \
           WHERE idempotency_keys.created_at < $5 \
         RETURNING notification_id",
    )
    .bind(ws)
    .bind(digest.as_slice())
    .bind(holder)
    .bind(now.0)
    .bind(now.minus(window).0)
    .fetch_optional(&mut **tx)
    .await?;
    if claimed.is_some() {
        return Ok(None);
    }
    let existing: String =
        sqlx::query_scalar("SELECT notification_id FROM idempotency_keys WHERE workspace_id = $1 AND key_digest = $2")
            .bind(ws)
            .bind(digest.as_slice())
            .fetch_one(&mut **tx)
            .await?;
    Ok(Some(existing))
}

async fn insert_notification(
    tx: &mut Transaction<'_, Postgres>,
    ws: &str,
    row: &NewNotificationRow,
) -> Result<(), StoreError> {
    let id = row.id.to_string();
    let route = RouteColumns::of(&row.target);
    sqlx::query(
        "INSERT INTO notifications (id, workspace_id, channel_id, payload, status, attempt_count, created_at, updated_at, \
           kind, event_id, subscriber_id, subscriber_channel_id, integration_id, fallback_integration_id, failover_after) \
         VALUES ($1, $2, $3, $4, $11, 0, $5, $5, $6, $7, $8, $9, $10, $12, $13)",
    )
    .bind(&id)
    .bind(ws)
    .bind(&route.channel_id)
    .bind(&row.payload)
    .bind(row.created_at.0)
    .bind(&route.kind)
    .bind(&route.event_id)
    .bind(&route.subscriber_id)
    .bind(&route.subscriber_channel_id)
    .bind(&route.integration_id)
    .bind(row.status.as_str())
    .bind(&route.fallback_integration_id)
    .bind(route.failover_after)
    .execute(&mut **tx)
    .await?;
    if row.status != NotificationStatus::Queued {
        return Ok(());
    }
    sqlx::query("INSERT INTO delivery_queue (notification_id, workspace_id, due_at) VALUES ($1, $2, $3)")
        .bind(&id)
        .bind(ws)
        .bind(row.created_at.0)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

const NOTIFICATION_COLUMNS: &str = concat!(
    "n.id AS notification_id, CASE WHEN n.payload_removed_at IS NULL THEN n.payload END AS payload, n.status, \
     n.attempt_count, n.created_at, n.updated_at, n.read_at, n.archived_at, ",
    route_columns!()
);

/// The [`route_columns!`] of a row.
fn route_of(r: &PgRow) -> Result<RouteColumns, sqlx::Error> {
    Ok(RouteColumns {
        channel_id: r.try_get("channel_id")?,
        kind: r.try_get("route_kind")?,
        event_id: r.try_get("event_id")?,
        subscriber_id: r.try_get("subscriber_id")?,
        subscriber_channel_id: r.try_get("subscriber_channel_id")?,
        integration_id: r.try_get("integration_id")?,
        fallback_integration_id: r.try_get("fallback_integration_id")?,
        failover_after: r.try_get("failover_after")?,
    })
}

/// A row of [`NOTIFICATION_COLUMNS`] with the queue's `due_at` and `lease_token`.
fn notification_row(r: &PgRow) -> Result<NotificationRow, StoreError> {
    let status: String = r.try_get("status")?;
    Ok(NotificationRow {
        id: parse(r.try_get("notification_id")?, "notification id")?,
        target: route_of(r)?.target()?,
        read_at: r.try_get::<Option<i64>, _>("read_at")?.map(Timestamp),
        archived_at: r.try_get::<Option<i64>, _>("archived_at")?.map(Timestamp),
        payload: r.try_get("payload")?,
        status: NotificationStatus::parse(&status).ok_or(StoreError::Corrupt("status"))?,
        attempt_count: u32_of(r.try_get("attempt_count")?, "attempt count")?,
        created_at: Timestamp(r.try_get("created_at")?),
        updated_at: Timestamp(r.try_get("updated_at")?),
        queued_due_at: r.try_get::<Option<i64>, _>("due_at")?.map(Timestamp),
        leased: r.try_get::<Option<String>, _>("lease_token")?.is_some(),
    })
}

fn claim_row(r: &PgRow) -> Result<(String, String, i64), StoreError> {
    Ok((r.try_get("notification_id")?, r.try_get("workspace_id")?, r.try_get("round_attempts")?))
}

#[async_trait::async_trait]
impl DataBackend for PostgresBackend {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn bind_region(&self, region: &Region) -> Result<(), StoreError> {
        self.bind_region_once(region).await
    }

    async fn insert_notifications(
        &self,
        rows: &[(WorkspaceId, NewNotificationRow)],
        idempotency_window: Duration,
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut outcomes = Vec::with_capacity(rows.len());
        for (ws, row) in rows {
            let ws = ws.to_string();
            if let Some(digest) = &row.idempotency_digest
                && let Some(existing) =
                    claim_idempotency(&mut tx, &ws, digest, &row.id.to_string(), row.created_at, idempotency_window)
                        .await?
            {
                outcomes.push(InsertOutcome::Existing(parse(&existing, "notification id")?));
                continue;
            }
            insert_notification(&mut tx, &ws, row).await?;
            outcomes.push(InsertOutcome::Created);
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn insert_event(
        &self,
        ws: WorkspaceId,
        event: &NewEvent,
        idempotency_window: Duration,
    ) -> Result<Option<EventId>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let ws = ws.to_string();
        if let Some(digest) = &event.idempotency_digest
            && let Some(existing) =
                claim_idempotency(&mut tx, &ws, digest, &event.id.to_string(), event.created_at, idempotency_window)
                    .await?
        {
            return Ok(Some(parse(&existing, "event id")?));
        }
        for row in &event.rows {
            insert_notification(&mut tx, &ws, row).await?;
        }
        for fanout in &event.fanouts {
            directory::insert_fanout(&mut tx, &ws, fanout).await?;
        }
        tx.commit().await?;
        Ok(None)
    }

    async fn notification(&self, ws: WorkspaceId, id: NotificationId) -> Result<Option<NotificationRow>, StoreError> {
        let sql = format!(
            "SELECT {NOTIFICATION_COLUMNS}, q.due_at, q.lease_token \
             FROM notifications n LEFT JOIN delivery_queue q ON q.notification_id = n.id \
             WHERE n.workspace_id = $1 AND n.id = $2"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ws.to_string())
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(notification_row).transpose()
    }

    async fn attempts(&self, ws: WorkspaceId, id: NotificationId) -> Result<Vec<AttemptRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, started_at, succeeded, detail FROM attempts \
             WHERE workspace_id = $1 AND notification_id = $2 ORDER BY started_at, id",
        )
        .bind(ws.to_string())
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AttemptRow {
                    id: r.try_get("id")?,
                    started_at: Timestamp(r.try_get("started_at")?),
                    succeeded: r.try_get("succeeded")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    async fn delivery_rows(
        &self,
        ws: WorkspaceId,
        id: NotificationId,
    ) -> Result<Option<(Vec<u8>, Target, Option<crate::ChannelRow>)>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT n.payload, ",
            route_columns!(),
            ", c.id, c.kind, c.destination, c.created_at, c.deactivated_at, c.purge_at \
             FROM notifications n \
             LEFT JOIN channels c ON c.id = n.channel_id AND c.workspace_id = n.workspace_id \
                                  AND c.deactivated_at IS NULL \
             WHERE n.workspace_id = $1 AND n.id = $2"
        ))
        .bind(ws.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let route = route_of(&r)?;
        let target = route.target()?;
        let channel_id = route.channel_id;
        let channel = match channel_id {
            Some(_) if r.try_get::<Option<String>, _>("id")?.is_none() => return Ok(None),
            // After the payload and the route columns.
            Some(_) => Some(crate::channels::channel_row(&r, 9)?),
            None => None,
        };
        Ok(Some((r.try_get("payload")?, target, channel)))
    }

    async fn inbox(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        before: Option<NotificationId>,
        limit: u32,
        archived: bool,
    ) -> Result<Vec<NotificationRow>, StoreError> {
        let sql = format!(
            "SELECT {NOTIFICATION_COLUMNS}, NULL::BIGINT AS due_at, NULL::TEXT AS lease_token FROM notifications n \
             WHERE n.workspace_id = $1 AND n.subscriber_id = $2 AND n.kind = 'inapp' AND n.status <> 'skipped' AND n.payload_removed_at IS NULL AND n.id < $3 \
               AND ($4 OR n.archived_at IS NULL) \
             ORDER BY n.id DESC LIMIT $5"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ws.to_string())
            .bind(subscriber.to_string())
            .bind(before.map(|b| b.to_string()).unwrap_or_else(|| "msg_g".into()))
            .bind(archived)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(notification_row).collect()
    }

    async fn inbox_unread(&self, ws: WorkspaceId, subscriber: SubscriberId) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM notifications WHERE workspace_id = $1 AND subscriber_id = $2 AND kind = 'inapp' \
             AND status <> 'skipped' AND payload_removed_at IS NULL AND read_at IS NULL AND archived_at IS NULL",
        )
        .bind(ws.to_string())
        .bind(subscriber.to_string())
        .fetch_one(&self.pool)
        .await?;
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
        let n = sqlx::query(
            "UPDATE notifications SET \
               read_at = CASE WHEN $4 THEN $5 ELSE read_at END, \
               archived_at = CASE WHEN $6 THEN $7 ELSE archived_at END \
             WHERE workspace_id = $1 AND subscriber_id = $2 AND id = $3 AND kind = 'inapp'",
        )
        .bind(ws.to_string())
        .bind(subscriber.to_string())
        .bind(id.to_string())
        .bind(read_at.is_some())
        .bind(read_at.flatten().map(|t| t.0))
        .bind(archived_at.is_some())
        .bind(archived_at.flatten().map(|t| t.0))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn purge_idempotency_keys(&self, before: Timestamp, limit: u32) -> Result<Option<u64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !try_job_lock(&mut tx, "idempotency_purge").await? {
            return Ok(None);
        }
        let n = sqlx::query(
            "DELETE FROM idempotency_keys WHERE (workspace_id, key_digest) IN ( \
               SELECT workspace_id, key_digest FROM idempotency_keys WHERE created_at < $1 \
               ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(before.0)
        .bind(i64::from(limit))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(Some(n))
    }

    async fn replay(&self, ws: WorkspaceId, id: NotificationId, now: Timestamp) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query(
            "UPDATE notifications SET status = 'queued', updated_at = $3 WHERE workspace_id = $1 AND id = $2 AND status = 'failed' AND payload_removed_at IS NULL",
        )
        .bind(ws.to_string())
        .bind(id.to_string())
        .bind(now.0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 1 {
            sqlx::query("INSERT INTO delivery_queue (notification_id, workspace_id, due_at) VALUES ($1, $2, $3)")
                .bind(id.to_string())
                .bind(ws.to_string())
                .bind(now.0)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(changed == 1)
    }

    /// The same fair claim as the SQLite backend (an equal share per workspace, round-robin, then
    /// fill in due order), with `SKIP LOCKED` so concurrent nodes take disjoint jobs.
    async fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let cursor = self.claim_cursor.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let mut tx = self.pool.begin().await?;
        let mut walk = WorkspaceWalk::after(&cursor);
        while let Some(at) = walk.next_query() {
            let next: Option<String> =
                sqlx::query_scalar("SELECT MIN(workspace_id) FROM delivery_queue WHERE workspace_id > $1")
                    .bind(at.to_string())
                    .fetch_one(&mut *tx)
                    .await?;
            walk.answer(next);
        }
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let share = walk.share(limit);
        let workspaces = walk.found;
        let mut claimed = Vec::new();
        let mut last_served = cursor.clone();
        for ws in &workspaces {
            if claimed.len() >= limit {
                break;
            }
            let rows = sqlx::query(
                "UPDATE delivery_queue SET due_at = $1, lease_token = $2 \
                 WHERE notification_id IN ( \
                     SELECT notification_id FROM delivery_queue WHERE workspace_id = $3 AND due_at <= $4 \
                     ORDER BY due_at LIMIT $5 FOR UPDATE SKIP LOCKED) \
                 RETURNING notification_id, workspace_id, round_attempts",
            )
            .bind(lease_until.0)
            .bind(&token)
            .bind(ws)
            .bind(now.0)
            .bind(share)
            .fetch_all(&mut *tx)
            .await?;
            for r in &rows {
                claimed.push(claim_row(r)?);
            }
            last_served.clone_from(ws);
        }
        if claimed.len() < limit {
            let rest = i64::try_from(limit - claimed.len()).unwrap_or(i64::MAX);
            let rows = sqlx::query(
                "UPDATE delivery_queue SET due_at = $1, lease_token = $2 \
                 WHERE notification_id IN ( \
                     SELECT notification_id FROM delivery_queue WHERE due_at <= $3 \
                     ORDER BY due_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
                 RETURNING notification_id, workspace_id, round_attempts",
            )
            .bind(lease_until.0)
            .bind(&token)
            .bind(now.0)
            .bind(rest)
            .fetch_all(&mut *tx)
            .await?;
            for r in &rows {
                claimed.push(claim_row(r)?);
            }
        }
        tx.commit().await?;
        *self.claim_cursor.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = last_served;
        claimed.into_iter().map(|(nid, ws, round)| ClaimedJob::from_stored(&nid, &ws, round, &token)).collect()
    }

    async fn release_claims(&self, jobs: &[ClaimedJob], now: Timestamp) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for job in jobs {
            sqlx::query("UPDATE delivery_queue SET due_at = $1, lease_token = NULL WHERE notification_id = $2 AND lease_token = $3")
                .bind(now.0)
                .bind(job.notification_id.to_string())
                .bind(&job.lease_token)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn remove_payloads(
        &self,
        ws: WorkspaceId,
        before: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<Option<u64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !try_job_lock(&mut tx, "payload_retention").await? {
            return Ok(None);
        }
        let n = sqlx::query(
            "UPDATE notifications SET payload = ''::bytea, payload_removed_at = $3 WHERE id IN ( \
               SELECT id FROM notifications WHERE workspace_id = $1 AND created_at < $2 \
                 AND payload_removed_at IS NULL AND status IN ('delivered', 'failed', 'skipped', 'suppressed', 'cancelled') \
               LIMIT $4 FOR UPDATE SKIP LOCKED)",
        )
        .bind(ws.to_string())
        .bind(before.0)
        .bind(now.0)
        .bind(i64::from(limit))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM fanouts WHERE workspace_id = $1 AND done_at IS NOT NULL AND done_at < $2")
            .bind(ws.to_string())
            .bind(before.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(n))
    }

    async fn held_workspaces(&self) -> Result<Vec<WorkspaceId>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT DISTINCT workspace_id FROM delivery_queue WHERE due_at = $1")
            .bind(HELD.0)
            .fetch_all(&self.pool)
            .await?;
        ids.iter().map(|id| parse(id, "workspace id")).collect()
    }

    async fn release_held(&self, ws: WorkspaceId, now: Timestamp) -> Result<u64, StoreError> {
        let n = sqlx::query("UPDATE delivery_queue SET due_at = $3 WHERE workspace_id = $1 AND due_at = $2")
            .bind(ws.to_string())
            .bind(HELD.0)
            .bind(now.0)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n)
    }

    async fn complete_attempts(&self, done: &[(ClaimedJob, CompletedAttempt)]) -> Result<Vec<bool>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut recorded = Vec::with_capacity(done.len());
        for (job, attempt) in done {
            recorded.push(complete_attempt(&mut tx, job, attempt).await?);
        }
        let events: Vec<_> =
            done.iter().zip(&recorded).filter(|(_, r)| **r).map(|((job, a), _)| (job.workspace_id, &a.audit)).collect();
        audit::append(&mut tx, Stream::Data, &events).await?;
        tx.commit().await?;
        Ok(recorded)
    }
}

/// Records one attempt and moves its job on; `false` when the notification is gone (a subscriber
/// or workspace erased while the delivery was on the wire): no attempt is recorded, and the queue
/// row left for it, if any, is removed.
async fn complete_attempt(
    tx: &mut Transaction<'_, Postgres>,
    job: &ClaimedJob,
    done: &CompletedAttempt,
) -> Result<bool, StoreError> {
    let ws = job.workspace_id.to_string();
    let nid = job.notification_id.to_string();
    let status = match done.outcome {
        QueueOutcome::Delivered => "delivered",
        QueueOutcome::RetryAt(_) => "queued",
        QueueOutcome::Failed => "failed",
    };
    // Only the holder of the current lease moves the job on. The queue row is locked before the
    // notification, in the same order as the erasures take them, so the two cannot deadlock; an
    // erasure that got there first leaves no notification to count the attempt on.
    let moved = match done.outcome {
        QueueOutcome::RetryAt(at) => sqlx::query(
            "UPDATE delivery_queue SET due_at = $1, lease_token = NULL, round_attempts = round_attempts + 1 \
             WHERE notification_id = $2 AND lease_token = $3",
        )
        .bind(at.0)
        .bind(&nid)
        .bind(&job.lease_token)
        .execute(&mut **tx)
        .await?
        .rows_affected(),
        QueueOutcome::Delivered | QueueOutcome::Failed => {
            sqlx::query("DELETE FROM delivery_queue WHERE notification_id = $1 AND lease_token = $2")
                .bind(&nid)
                .bind(&job.lease_token)
                .execute(&mut **tx)
                .await?
                .rows_affected()
        }
    };
    let counted = if moved == 1 {
        sqlx::query("UPDATE notifications SET attempt_count = attempt_count + 1, status = $3, updated_at = $4 WHERE workspace_id = $1 AND id = $2")
            .bind(&ws)
            .bind(&nid)
            .bind(status)
            .bind(done.now.0)
            .execute(&mut **tx)
            .await?
            .rows_affected()
    } else {
        sqlx::query("UPDATE notifications SET attempt_count = attempt_count + 1, updated_at = $3 WHERE workspace_id = $1 AND id = $2")
            .bind(&ws)
            .bind(&nid)
            .bind(done.now.0)
            .execute(&mut **tx)
            .await?
            .rows_affected()
    };
    if counted == 0 {
        sqlx::query("DELETE FROM delivery_queue WHERE notification_id = $1").bind(&nid).execute(&mut **tx).await?;
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO attempts (id, notification_id, workspace_id, started_at, succeeded, detail) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&done.attempt.id)
    .bind(&nid)
    .bind(&ws)
    .bind(done.attempt.started_at.0)
    .bind(done.attempt.succeeded)
    .bind(&done.attempt.detail)
    .execute(&mut **tx)
    .await?;
    Ok(true)
}

#[async_trait::async_trait]
impl WorkspaceEraser for PostgresBackend {
    async fn delete_workspace_rows(
        &self,
        table: &'static str,
        key: &'static str,
        ws: WorkspaceId,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let n = sqlx::query(sqlx::AssertSqlSafe(delete_rows_sql(table, key)))
            .bind(ws.to_string())
            .bind(i64::from(limit))
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n)
    }
}

#[async_trait::async_trait]
impl ControlBackend for PostgresBackend {
    async fn ping(&self) -> Result<(), StoreError> {
        DataBackend::ping(self).await
    }
}

#[async_trait::async_trait]
impl VaultBackend for PostgresBackend {
    async fn ping(&self) -> Result<(), StoreError> {
        DataBackend::ping(self).await
    }

    async fn bind_region(&self, region: &Region) -> Result<(), StoreError> {
        self.bind_region_once(region).await
    }
}
