//! Topic fan-outs on SQLite.

use chimatic_domain::{Timestamp, WorkspaceId};
use rusqlite::{OptionalExtension, params};

use super::{SqliteBackend, insert_notification};
use crate::StoreError;
use crate::backend::*;

/// Inserts a fan-out row (inside the event's transaction).
pub(super) fn insert_fanout(tx: &rusqlite::Transaction<'_>, ws: &str, f: &FanoutRow) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO fanouts (id, workspace_id, event_id, topic_id, workflow_id, data, cursor, due_at, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
    )?
    .execute(params![
        f.id.to_string(),
        ws,
        f.event_id.to_string(),
        f.topic_id.to_string(),
        f.workflow_id.to_string(),
        f.data,
        f.cursor,
        f.created_at.0
    ])?;
    Ok(())
}

#[async_trait::async_trait]
impl DirectoryBackend for SqliteBackend {
    async fn claim_fanout(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<(WorkspaceId, FanoutRow)>, StoreError> {
        type Raw = (String, String, String, String, String, Vec<u8>, String, i64);
        let token = uuid::Uuid::new_v4().simple().to_string();
        let lease = token.clone();
        let raw: Option<Raw> = self
            .write(move |tx| {
                Ok(tx
                    .prepare_cached(
                        "UPDATE fanouts SET due_at = ?2, lease_token = ?3 WHERE id = ( \
                           SELECT id FROM fanouts WHERE done_at IS NULL AND due_at <= ?1 ORDER BY due_at LIMIT 1) \
                         RETURNING workspace_id, id, event_id, topic_id, workflow_id, data, cursor, created_at",
                    )?
                    .query_row(params![now.0, lease_until.0, lease], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
                    })
                    .optional()?)
            })
            .await?;
        let Some((ws, id, event, topic, workflow, data, cursor, created)) = raw else { return Ok(None) };
        Ok(Some((
            parse(&ws, "workspace id")?,
            FanoutRow {
                id: parse(&id, "fan-out id")?,
                event_id: parse(&event, "event id")?,
                topic_id: parse(&topic, "topic id")?,
                workflow_id: parse(&workflow, "workflow id")?,
                data,
                cursor,
                lease_token: Some(token),
                created_at: Timestamp(created),
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
        let (rows, progress, fanout) = (rows.to_vec(), progress.clone(), fanout.clone());
        self.write(move |tx| {
            let moved = tx.execute(
                "UPDATE fanouts SET cursor = ?3, done_at = ?4, due_at = ?5 \
                 WHERE workspace_id = ?1 AND id = ?2 AND lease_token = ?6 AND done_at IS NULL",
                params![
                    ws.to_string(),
                    fanout.id.to_string(),
                    progress.cursor,
                    progress.done.then_some(progress.now.0),
                    progress.lease_until.0,
                    fanout.lease_token
                ],
            )?;
            if moved != 1 {
                return Ok(false);
            }
            let ws = ws.to_string();
            for row in &rows {
                insert_notification(tx, &ws, row)?;
            }
            Ok(true)
        })
        .await
    }
}
