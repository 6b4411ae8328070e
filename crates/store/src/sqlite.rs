//! The embedded backend: two SQLite files (notification data, credential vault) in WAL mode with
//! `synchronous=FULL`, so a committed write survives a crash of the process or the machine.
//! Queries use `$N` placeholders and standard SQL so the PostgreSQL backend can mirror them.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chimatic_crypto::ApiKeyDigest;
use chimatic_domain::{ApiKeyId, ChannelId, NotificationId, NotificationStatus, Scopes, Timestamp, WorkspaceId};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::StoreError;
use crate::backend::*;

static DATA_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite/data");
static VAULT_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite/vault");

pub const DATA_FILE: &str = "chimatic.db";
pub const VAULT_FILE: &str = "vault.db";

/// The two database files of the embedded default.
pub struct SqliteFiles {
    pub data: PathBuf,
    pub vault: PathBuf,
}

impl SqliteFiles {
    pub fn in_dir(dir: &Path) -> Self {
        Self { data: dir.join(DATA_FILE), vault: dir.join(VAULT_FILE) }
    }
}

#[derive(Clone)]
pub struct SqliteBackend {
    pool: SqlitePool,
}

impl SqliteBackend {
    /// Opens (creating if needed) and migrates both files. Refuses a schema newer than this build.
    pub async fn open(files: &SqliteFiles) -> Result<(Self, Self), StoreError> {
        let data = Self { pool: pool(&files.data).await? };
        DATA_MIGRATIONS.run(&data.pool).await?;
        let vault = Self { pool: pool(&files.vault).await? };
        VAULT_MIGRATIONS.run(&vault.pool).await?;
        Ok((data, vault))
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

async fn pool(path: &Path) -> Result<SqlitePool, StoreError> {
    // Created owner-only before SQLite opens it; SQLite gives the -wal and -shm files the same mode.
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
        // Freed pages are zeroed, so deleted ciphertext does not linger in the file.
        .pragma("secure_delete", "ON");
    Ok(SqlitePoolOptions::new().max_connections(8).connect_with(opts).await?)
}

fn parse<T: FromStr>(text: &str, what: &'static str) -> Result<T, StoreError> {
    text.parse().map_err(|_| StoreError::Corrupt(what))
}

fn ts(v: i64) -> Timestamp {
    Timestamp(v)
}

fn u32_of(v: i64, what: &'static str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(what))
}

fn key_row(r: &SqliteRow) -> Result<WrappedKeyRow, StoreError> {
    Ok(WrappedKeyRow {
        version: u32_of(r.try_get("version")?, "key version")?,
        kek_id: r.try_get("kek_id")?,
        wrapped: r.try_get("wrapped")?,
    })
}

fn api_key_row(r: &SqliteRow) -> Result<ApiKeyRow, StoreError> {
    let digest: Vec<u8> = r.try_get("digest")?;
    Ok(ApiKeyRow {
        id: parse(r.try_get("id")?, "api key id")?,
        workspace_id: parse(r.try_get("workspace_id")?, "workspace id")?,
        name: r.try_get("name")?,
        scopes: Scopes::from_storage(r.try_get("scopes")?).map_err(|_| StoreError::Corrupt("scopes"))?,
        digest: ApiKeyDigest::from_slice(&digest).ok_or(StoreError::Corrupt("api key digest"))?,
        last4: r.try_get("last4")?,
        created_at: ts(r.try_get("created_at")?),
        last_used_at: r.try_get::<Option<i64>, _>("last_used_at")?.map(ts),
        revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(ts),
    })
}

fn channel_row(r: &SqliteRow) -> Result<ChannelRow, StoreError> {
    Ok(ChannelRow {
        id: parse(r.try_get("id")?, "channel id")?,
        kind: r.try_get("kind")?,
        url: r.try_get("url")?,
        created_at: ts(r.try_get("created_at")?),
    })
}

macro_rules! select_api_keys {
    ($tail:literal) => {
        concat!(
            "SELECT id, workspace_id, name, scopes, digest, last4, created_at, last_used_at, revoked_at FROM api_keys ",
            $tail
        )
    };
}

async fn insert_api_key<'e, E: sqlx::SqliteExecutor<'e>>(ex: E, row: &ApiKeyRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO api_keys (id, workspace_id, name, scopes, digest, last4, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(row.id.to_string())
    .bind(row.workspace_id.to_string())
    .bind(&row.name)
    .bind(row.scopes.to_storage())
    .bind(row.digest.0.as_slice())
    .bind(&row.last4)
    .bind(row.created_at.0)
    .execute(ex)
    .await?;
    Ok(())
}

/// The two key tables (`data_keys` in the data file, `vault_keys` in the vault) share a shape.
#[derive(Clone, Copy)]
enum KeyTable {
    Data,
    Vault,
}

async fn wrapped_key(
    pool: &SqlitePool,
    table: KeyTable,
    ws: WorkspaceId,
    version: Option<u32>,
) -> Result<Option<WrappedKeyRow>, StoreError> {
    let sql = match (table, version.is_some()) {
        (KeyTable::Data, true) => {
            "SELECT version, kek_id, wrapped FROM data_keys WHERE workspace_id = $1 AND version = $2"
        }
        (KeyTable::Data, false) => {
            "SELECT version, kek_id, wrapped FROM data_keys WHERE workspace_id = $1 ORDER BY version DESC LIMIT 1"
        }
        (KeyTable::Vault, true) => {
            "SELECT version, kek_id, wrapped FROM vault_keys WHERE workspace_id = $1 AND version = $2"
        }
        (KeyTable::Vault, false) => {
            "SELECT version, kek_id, wrapped FROM vault_keys WHERE workspace_id = $1 ORDER BY version DESC LIMIT 1"
        }
    };
    let mut q = sqlx::query(sql).bind(ws.to_string());
    if let Some(v) = version {
        q = q.bind(i64::from(v));
    }
    let row = q.fetch_optional(pool).await?;
    row.as_ref().map(key_row).transpose()
}

#[async_trait::async_trait]
impl DataBackend for SqliteBackend {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_workspace(
        &self,
        id: WorkspaceId,
        name: &str,
        dek: WrappedKeyRow,
        owner_key: &ApiKeyRow,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(id.to_string())
            .bind(name)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO data_keys (workspace_id, version, kek_id, wrapped, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id.to_string())
        .bind(i64::from(dek.version))
        .bind(&dek.kek_id)
        .bind(&dek.wrapped)
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        insert_api_key(&mut *tx, owner_key).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn data_key(&self, ws: WorkspaceId, version: Option<u32>) -> Result<Option<WrappedKeyRow>, StoreError> {
        wrapped_key(&self.pool, KeyTable::Data, ws, version).await
    }

    async fn insert_api_key(&self, row: &ApiKeyRow) -> Result<(), StoreError> {
        insert_api_key(&self.pool, row).await
    }

    async fn api_key_by_digest(&self, digest: &ApiKeyDigest) -> Result<Option<ApiKeyRow>, StoreError> {
        let row = sqlx::query(select_api_keys!("WHERE digest = $1"))
            .bind(digest.0.as_slice())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(api_key_row).transpose()
    }

    async fn list_api_keys(&self, ws: WorkspaceId) -> Result<Vec<ApiKeyRow>, StoreError> {
        let rows = sqlx::query(select_api_keys!("WHERE workspace_id = $1 ORDER BY id"))
            .bind(ws.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(api_key_row).collect()
    }

    async fn revoke_api_key(&self, ws: WorkspaceId, id: ApiKeyId, now: Timestamp) -> Result<bool, StoreError> {
        let found = sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) WHERE workspace_id = $1 AND id = $2",
        )
        .bind(ws.to_string())
        .bind(id.to_string())
        .bind(now.0)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(found == 1)
    }

    async fn touch_api_key(&self, ws: WorkspaceId, id: ApiKeyId, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_keys SET last_used_at = $3 WHERE workspace_id = $1 AND id = $2")
            .bind(ws.to_string())
            .bind(id.to_string())
            .bind(now.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn insert_channel(&self, ws: WorkspaceId, row: &ChannelRow) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO channels (id, workspace_id, kind, url, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(row.id.to_string())
            .bind(ws.to_string())
            .bind(&row.kind)
            .bind(&row.url)
            .bind(row.created_at.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn channel(&self, ws: WorkspaceId, id: ChannelId) -> Result<Option<ChannelRow>, StoreError> {
        let row = sqlx::query("SELECT id, kind, url, created_at FROM channels WHERE workspace_id = $1 AND id = $2")
            .bind(ws.to_string())
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(channel_row).transpose()
    }

    async fn list_channels(
        &self,
        ws: WorkspaceId,
        after: Option<ChannelId>,
        limit: u32,
    ) -> Result<Vec<ChannelRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, url, created_at FROM channels WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(ws.to_string())
        .bind(after.map(|a| a.to_string()).unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(channel_row).collect()
    }

    async fn insert_notification(
        &self,
        ws: WorkspaceId,
        row: &NewNotificationRow,
        idempotency_window_start: Timestamp,
    ) -> Result<InsertOutcome, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        if let Some(digest) = &row.idempotency_digest {
            // Claims the key unless a live (younger than the window) claim already holds it.
            let claimed = sqlx::query(
                "INSERT INTO idempotency_keys (workspace_id, key_digest, notification_id, created_at) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (workspace_id, key_digest) DO UPDATE \
                   SET notification_id = excluded.notification_id, created_at = excluded.created_at \
                   WHERE idempotency_keys.created_at < $5 \
                 RETURNING notification_id",
            )
            .bind(ws.to_string())
            .bind(digest.as_slice())
            .bind(row.id.to_string())
            .bind(row.created_at.0)
            .bind(idempotency_window_start.0)
            .fetch_optional(&mut *tx)
            .await?;
            if claimed.is_none() {
                let existing: String = sqlx::query_scalar(
                    "SELECT notification_id FROM idempotency_keys WHERE workspace_id = $1 AND key_digest = $2",
                )
                .bind(ws.to_string())
                .bind(digest.as_slice())
                .fetch_one(&mut *tx)
                .await?;
                tx.rollback().await?;
                return Ok(InsertOutcome::Existing(parse(&existing, "notification id")?));
            }
        }
        sqlx::query(
            "INSERT INTO notifications (id, workspace_id, channel_id, payload, status, attempt_count, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'queued', 0, $5, $5)",
        )
        .bind(row.id.to_string())
        .bind(ws.to_string())
        .bind(row.channel_id.to_string())
        .bind(&row.payload)
        .bind(row.created_at.0)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO delivery_queue (notification_id, workspace_id, due_at) VALUES ($1, $2, $3)")
            .bind(row.id.to_string())
            .bind(ws.to_string())
            .bind(row.created_at.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(InsertOutcome::Created)
    }

    async fn notification(&self, ws: WorkspaceId, id: NotificationId) -> Result<Option<NotificationRow>, StoreError> {
        let row = sqlx::query(
            "SELECT n.channel_id, n.payload, n.status, n.attempt_count, n.created_at, n.updated_at, \
                    q.due_at, q.lease_token \
             FROM notifications n LEFT JOIN delivery_queue q ON q.notification_id = n.id \
             WHERE n.workspace_id = $1 AND n.id = $2",
        )
        .bind(ws.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let status: String = r.try_get("status")?;
        let lease: Option<String> = r.try_get("lease_token")?;
        Ok(Some(NotificationRow {
            id,
            channel_id: parse(r.try_get("channel_id")?, "channel id")?,
            payload: r.try_get("payload")?,
            status: NotificationStatus::parse(&status).ok_or(StoreError::Corrupt("status"))?,
            attempt_count: u32_of(r.try_get("attempt_count")?, "attempt count")?,
            created_at: ts(r.try_get("created_at")?),
            updated_at: ts(r.try_get("updated_at")?),
            queued_due_at: r.try_get::<Option<i64>, _>("due_at")?.map(ts),
            leased: lease.is_some(),
        }))
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
                    started_at: ts(r.try_get("started_at")?),
                    succeeded: r.try_get::<i64, _>("succeeded")? != 0,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    async fn replay(&self, ws: WorkspaceId, id: NotificationId, now: Timestamp) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let changed = sqlx::query(
            "UPDATE notifications SET status = 'queued', updated_at = $3 \
             WHERE workspace_id = $1 AND id = $2 AND status = 'failed'",
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

    async fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let rows = sqlx::query(
            "UPDATE delivery_queue SET due_at = $1, lease_token = $2 \
             WHERE notification_id IN ( \
                 SELECT notification_id FROM delivery_queue WHERE due_at <= $3 ORDER BY due_at LIMIT $4) \
             RETURNING notification_id, workspace_id, round_attempts",
        )
        .bind(lease_until.0)
        .bind(&token)
        .bind(now.0)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ClaimedJob {
                    notification_id: parse(r.try_get("notification_id")?, "notification id")?,
                    workspace_id: parse(r.try_get("workspace_id")?, "workspace id")?,
                    round_attempts: u32_of(r.try_get("round_attempts")?, "round attempts")?,
                    lease_token: token.clone(),
                })
            })
            .collect()
    }

    async fn complete_attempt(&self, job: &ClaimedJob, done: CompletedAttempt) -> Result<(), StoreError> {
        let ws = job.workspace_id.to_string();
        let nid = job.notification_id.to_string();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO attempts (id, notification_id, workspace_id, started_at, succeeded, detail) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&done.attempt.id)
        .bind(&nid)
        .bind(&ws)
        .bind(done.attempt.started_at.0)
        .bind(i64::from(done.attempt.succeeded))
        .bind(&done.attempt.detail)
        .execute(&mut *tx)
        .await?;
        let status = match done.outcome {
            QueueOutcome::Delivered => "delivered",
            QueueOutcome::RetryAt(_) => "queued",
            QueueOutcome::Failed => "failed",
        };
        // Only the holder of the current lease moves the job; a worker whose lease ran out and
        // was taken over still records its attempt but leaves the queue to the new holder.
        let moved = match done.outcome {
            QueueOutcome::RetryAt(at) => sqlx::query(
                "UPDATE delivery_queue SET due_at = $1, lease_token = NULL, round_attempts = round_attempts + 1 \
                 WHERE notification_id = $2 AND lease_token = $3",
            )
            .bind(at.0)
            .bind(&nid)
            .bind(&job.lease_token)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
            QueueOutcome::Delivered | QueueOutcome::Failed => {
                sqlx::query("DELETE FROM delivery_queue WHERE notification_id = $1 AND lease_token = $2")
                    .bind(&nid)
                    .bind(&job.lease_token)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
            }
        };
        let status_sql = if moved == 1 {
            "UPDATE notifications SET attempt_count = attempt_count + 1, status = $3, updated_at = $4 \
             WHERE workspace_id = $1 AND id = $2"
        } else {
            "UPDATE notifications SET attempt_count = attempt_count + 1, updated_at = $4 \
             WHERE workspace_id = $1 AND id = $2 AND $3 = $3"
        };
        sqlx::query(status_sql).bind(&ws).bind(&nid).bind(status).bind(done.now.0).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl VaultBackend for SqliteBackend {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn insert_vault_key(&self, ws: WorkspaceId, key: WrappedKeyRow, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO vault_keys (workspace_id, version, kek_id, wrapped, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(ws.to_string())
        .bind(i64::from(key.version))
        .bind(&key.kek_id)
        .bind(&key.wrapped)
        .bind(now.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn vault_key(&self, ws: WorkspaceId, version: Option<u32>) -> Result<Option<WrappedKeyRow>, StoreError> {
        wrapped_key(&self.pool, KeyTable::Vault, ws, version).await
    }

    async fn put_secret(
        &self,
        ws: WorkspaceId,
        owner_id: &str,
        kind: &str,
        secret: &[u8],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO secrets (workspace_id, owner_id, kind, secret, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(ws.to_string())
        .bind(owner_id)
        .bind(kind)
        .bind(secret)
        .bind(now.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn secret(&self, ws: WorkspaceId, owner_id: &str, kind: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(sqlx::query_scalar("SELECT secret FROM secrets WHERE workspace_id = $1 AND owner_id = $2 AND kind = $3")
            .bind(ws.to_string())
            .bind(owner_id)
            .bind(kind)
            .fetch_optional(&self.pool)
            .await?)
    }
}
