//! Topic fan-outs on PostgreSQL.

use chimatic_domain::{Timestamp, WorkspaceId};
use sqlx::Row;

use super::{PostgresBackend, insert_notification};
use crate::StoreError;
use crate::backend::*;

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
