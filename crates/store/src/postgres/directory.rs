//! The directory's tables on PostgreSQL: subscribers, their channels, provider integrations.

use chimatic_domain::{SubscriberChannelId, SubscriberId, Timestamp, WorkspaceId};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::{PostgresBackend, audit, insert_notification};
use crate::StoreError;
use crate::backend::*;
use chimatic_audit::{AuditEvent, Stream};

const SUBSCRIBER_COLUMNS: &str =
    "id, external_key, external_id, subscriber_key, attributes, created_at, updated_at, preferences";

fn subscriber_row(r: &PgRow) -> Result<SubscriberRow, StoreError> {
    let external_key: Vec<u8> = r.try_get("external_key")?;
    Ok(SubscriberRow {
        id: parse(r.try_get("id")?, "subscriber id")?,
        external_key: external_key.try_into().map_err(|_| StoreError::Corrupt("subscriber external key"))?,
        external_id: r.try_get("external_id")?,
        subscriber_key: r.try_get("subscriber_key")?,
        attributes: r.try_get("attributes")?,
        preferences: r.try_get("preferences")?,
        created_at: Timestamp(r.try_get("created_at")?),
        updated_at: Timestamp(r.try_get("updated_at")?),
    })
}

fn channel_row(r: &PgRow) -> Result<SubscriberChannelRow, StoreError> {
    Ok(SubscriberChannelRow {
        id: parse(r.try_get("id")?, "subscriber channel id")?,
        subscriber_id: parse(r.try_get("subscriber_id")?, "subscriber id")?,
        kind: r.try_get("kind")?,
        address: r.try_get("address")?,
        created_at: Timestamp(r.try_get("created_at")?),
    })
}

/// Inserts a fan-out row (inside the event's transaction).
pub(super) async fn insert_fanout(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    ws: &str,
    f: &FanoutRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO fanouts (id, workspace_id, event_id, topic_id, workflow_id, data, cursor, due_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(f.id.to_string())
    .bind(ws)
    .bind(f.event_id.to_string())
    .bind(f.topic_id.to_string())
    .bind(f.workflow_id.to_string())
    .bind(&f.data)
    .bind(&f.cursor)
    .bind(f.created_at.0)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[async_trait::async_trait]
impl DirectoryBackend for PostgresBackend {
    async fn insert_subscriber(&self, ws: WorkspaceId, row: &SubscriberRow) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "INSERT INTO subscribers (id, workspace_id, external_key, external_id, subscriber_key, attributes, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (workspace_id, external_key) DO NOTHING",
        )
        .bind(row.id.to_string())
        .bind(ws.to_string())
        .bind(row.external_key.as_slice())
        .bind(&row.external_id)
        .bind(&row.subscriber_key)
        .bind(&row.attributes)
        .bind(row.created_at.0)
        .bind(row.updated_at.0)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn subscriber(&self, ws: WorkspaceId, id: SubscriberId) -> Result<Option<SubscriberRow>, StoreError> {
        let sql = format!("SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE workspace_id = $1 AND id = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ws.to_string())
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(subscriber_row).transpose()
    }

    async fn subscriber_by_external_key(
        &self,
        ws: WorkspaceId,
        key: &[u8; 32],
    ) -> Result<Option<SubscriberRow>, StoreError> {
        let sql = format!("SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE workspace_id = $1 AND external_key = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ws.to_string())
            .bind(key.as_slice())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(subscriber_row).transpose()
    }

    async fn update_subscriber_attributes(
        &self,
        ws: WorkspaceId,
        id: SubscriberId,
        attributes: &[u8],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let n =
            sqlx::query("UPDATE subscribers SET attributes = $3, updated_at = $4 WHERE workspace_id = $1 AND id = $2")
                .bind(ws.to_string())
                .bind(id.to_string())
                .bind(attributes)
                .bind(now.0)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(n == 1)
    }

    async fn update_subscriber_preferences(
        &self,
        ws: WorkspaceId,
        id: SubscriberId,
        preferences: &[u8],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let n =
            sqlx::query("UPDATE subscribers SET preferences = $3, updated_at = $4 WHERE workspace_id = $1 AND id = $2")
                .bind(ws.to_string())
                .bind(id.to_string())
                .bind(preferences)
                .bind(now.0)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(n == 1)
    }

    async fn erase_subscriber(
        &self,
        ws: WorkspaceId,
        id: SubscriberId,
        audit: &AuditEvent,
    ) -> Result<ErasureCounts, StoreError> {
        let (w, s) = (ws.to_string(), id.to_string());
        let mut tx = self.pool.begin().await?;
        // Queue rows, then notifications, then their attempts: the order in which a finishing
        // delivery locks them, so the two wait for each other instead of deadlocking, and an
        // attempt committed meanwhile is seen (and deleted) by the last statement.
        sqlx::query(
            "DELETE FROM delivery_queue WHERE notification_id IN \
               (SELECT id FROM notifications WHERE workspace_id = $1 AND subscriber_id = $2)",
        )
        .bind(&w)
        .bind(&s)
        .execute(&mut *tx)
        .await?;
        let erased: Vec<String> =
            sqlx::query_scalar("DELETE FROM notifications WHERE workspace_id = $1 AND subscriber_id = $2 RETURNING id")
                .bind(&w)
                .bind(&s)
                .fetch_all(&mut *tx)
                .await?;
        let messages = erased.len() as u64;
        let attempts = sqlx::query("DELETE FROM attempts WHERE workspace_id = $1 AND notification_id = ANY($2)")
            .bind(&w)
            .bind(&erased)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let channels = sqlx::query("DELETE FROM subscriber_channels WHERE workspace_id = $1 AND subscriber_id = $2")
            .bind(&w)
            .bind(&s)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let topics = sqlx::query("DELETE FROM topic_subscribers WHERE workspace_id = $1 AND subscriber_id = $2")
            .bind(&w)
            .bind(&s)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM subscribers WHERE workspace_id = $1 AND id = $2")
            .bind(&w)
            .bind(&s)
            .execute(&mut *tx)
            .await?;
        let counts = ErasureCounts { channels, messages, attempts, topics };
        audit::append_one(&mut tx, Stream::Data, ws, &counts.audited(audit.clone())).await?;
        tx.commit().await?;
        Ok(counts)
    }

    async fn list_subscribers(
        &self,
        ws: WorkspaceId,
        after: Option<SubscriberId>,
        limit: u32,
    ) -> Result<Vec<SubscriberRow>, StoreError> {
        let sql = format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ws.to_string())
            .bind(after.map(|a| a.to_string()).unwrap_or_default())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(subscriber_row).collect()
    }

    async fn insert_subscriber_channel(
        &self,
        ws: WorkspaceId,
        row: &SubscriberChannelRow,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO subscriber_channels (id, workspace_id, subscriber_id, kind, address, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(row.id.to_string())
        .bind(ws.to_string())
        .bind(row.subscriber_id.to_string())
        .bind(&row.kind)
        .bind(&row.address)
        .bind(row.created_at.0)
        .execute(&mut *tx)
        .await?;
        audit::append_one(&mut tx, Stream::Data, ws, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn subscriber_channels(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
    ) -> Result<Vec<SubscriberChannelRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, subscriber_id, kind, address, created_at FROM subscriber_channels \
             WHERE workspace_id = $1 AND subscriber_id = $2 ORDER BY id",
        )
        .bind(ws.to_string())
        .bind(subscriber.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(channel_row).collect()
    }

    async fn delete_subscriber_channel(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        id: SubscriberChannelId,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let statement =
            sqlx::query("DELETE FROM subscriber_channels WHERE workspace_id = $1 AND subscriber_id = $2 AND id = $3")
                .bind(ws.to_string())
                .bind(subscriber.to_string())
                .bind(id.to_string());
        audit::change_one(&self.pool, statement, Stream::Data, ws, audit).await
    }

    async fn claim_fanout(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<(WorkspaceId, FanoutRow)>, StoreError> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let row = sqlx::query(
            "UPDATE fanouts SET due_at = $2, lease_token = $3 WHERE id = ( \
               SELECT id FROM fanouts WHERE done_at IS NULL AND due_at <= $1 ORDER BY due_at LIMIT 1 \
               FOR UPDATE SKIP LOCKED) \
             RETURNING workspace_id, id, event_id, topic_id, workflow_id, data, cursor, created_at",
        )
        .bind(now.0)
        .bind(lease_until.0)
        .bind(&token)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some((
            parse(r.try_get("workspace_id")?, "workspace id")?,
            FanoutRow {
                id: parse(r.try_get("id")?, "fan-out id")?,
                event_id: parse(r.try_get("event_id")?, "event id")?,
                topic_id: parse(r.try_get("topic_id")?, "topic id")?,
                workflow_id: parse(r.try_get("workflow_id")?, "workflow id")?,
                data: r.try_get("data")?,
                cursor: r.try_get("cursor")?,
                lease_token: Some(token),
                created_at: Timestamp(r.try_get("created_at")?),
            },
        )))
    }

    async fn fanout_batch(
        &self,
        ws: WorkspaceId,
        fanout: &FanoutRow,
        rows: &[NewNotificationRow],
        progress: &FanoutProgress,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let moved = sqlx::query(
            "UPDATE fanouts SET cursor = $3, done_at = $4, due_at = $5 \
             WHERE workspace_id = $1 AND id = $2 AND lease_token = $6 AND done_at IS NULL",
        )
        .bind(ws.to_string())
        .bind(fanout.id.to_string())
        .bind(&progress.cursor)
        .bind(progress.done.then_some(progress.now.0))
        .bind(progress.lease_until.0)
        .bind(&fanout.lease_token)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved != 1 {
            return Ok(false);
        }
        let ws = ws.to_string();
        for row in rows {
            insert_notification(&mut tx, &ws, row).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
