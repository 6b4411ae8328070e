//! The directory's tables on SQLite: subscribers, their channels, provider integrations.

use chimatic_domain::{SubscriberChannelId, SubscriberId, Timestamp, WorkspaceId};
use rusqlite::{OptionalExtension, Row, params};

use super::{SqliteBackend, audit, insert_notification};
use crate::StoreError;
use crate::backend::*;
use chimatic_audit::{AuditEvent, Stream};

const SUBSCRIBER_COLUMNS: &str =
    "id, external_key, external_id, subscriber_key, attributes, created_at, updated_at, preferences";

type RawSubscriber = (String, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, i64, i64, Option<Vec<u8>>);

fn raw_subscriber(r: &Row<'_>) -> rusqlite::Result<RawSubscriber> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
}

fn to_subscriber(raw: RawSubscriber) -> Result<SubscriberRow, StoreError> {
    let (id, external_key, external_id, subscriber_key, attributes, created, updated, preferences) = raw;
    Ok(SubscriberRow {
        id: parse(&id, "subscriber id")?,
        external_key: external_key.try_into().map_err(|_| StoreError::Corrupt("subscriber external key"))?,
        external_id,
        subscriber_key,
        attributes,
        preferences,
        created_at: Timestamp(created),
        updated_at: Timestamp(updated),
    })
}

type RawChannel = (String, String, String, Vec<u8>, i64);

fn to_channel((id, subscriber, kind, address, created): RawChannel) -> Result<SubscriberChannelRow, StoreError> {
    Ok(SubscriberChannelRow {
        id: parse(&id, "subscriber channel id")?,
        subscriber_id: parse(&subscriber, "subscriber id")?,
        kind,
        address,
        created_at: Timestamp(created),
    })
}

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
    async fn insert_subscriber(&self, ws: WorkspaceId, row: &SubscriberRow) -> Result<bool, StoreError> {
        let row = row.clone();
        self.write(move |tx| {
            let n = tx
                .prepare_cached(
                    "INSERT INTO subscribers (id, workspace_id, external_key, external_id, subscriber_key, attributes, \
                     created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                     ON CONFLICT (workspace_id, external_key) DO NOTHING",
                )?
                .execute(params![
                    row.id.to_string(),
                    ws.to_string(),
                    row.external_key.as_slice(),
                    row.external_id,
                    row.subscriber_key,
                    row.attributes,
                    row.created_at.0,
                    row.updated_at.0
                ])?;
            Ok(n == 1)
        })
        .await
    }

    async fn subscriber(&self, ws: WorkspaceId, id: SubscriberId) -> Result<Option<SubscriberRow>, StoreError> {
        let raw = self.read(|c| {
            let sql = format!("SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE workspace_id = ?1 AND id = ?2");
            Ok(c.prepare_cached(&sql)?.query_row([ws.to_string(), id.to_string()], raw_subscriber).optional()?)
        })?;
        raw.map(to_subscriber).transpose()
    }

    async fn subscriber_by_external_key(
        &self,
        ws: WorkspaceId,
        key: &[u8; 32],
    ) -> Result<Option<SubscriberRow>, StoreError> {
        let raw = self.read(|c| {
            let sql =
                format!("SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE workspace_id = ?1 AND external_key = ?2");
            Ok(c.prepare_cached(&sql)?.query_row(params![ws.to_string(), key.as_slice()], raw_subscriber).optional()?)
        })?;
        raw.map(to_subscriber).transpose()
    }

    async fn update_subscriber_attributes(
        &self,
        ws: WorkspaceId,
        id: SubscriberId,
        attributes: &[u8],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let attributes = attributes.to_vec();
        self.write(move |tx| {
            let n = tx.execute(
                "UPDATE subscribers SET attributes = ?3, updated_at = ?4 WHERE workspace_id = ?1 AND id = ?2",
                params![ws.to_string(), id.to_string(), attributes, now.0],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn update_subscriber_preferences(
        &self,
        ws: WorkspaceId,
        id: SubscriberId,
        preferences: &[u8],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let preferences = preferences.to_vec();
        self.write(move |tx| {
            let n = tx.execute(
                "UPDATE subscribers SET preferences = ?3, updated_at = ?4 WHERE workspace_id = ?1 AND id = ?2",
                params![ws.to_string(), id.to_string(), preferences, now.0],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn erase_subscriber(
        &self,
        ws: WorkspaceId,
        id: SubscriberId,
        audit: &AuditEvent,
    ) -> Result<ErasureCounts, StoreError> {
        let audit = audit.clone();
        self.write(move |tx| {
            let (w, s) = (ws.to_string(), id.to_string());
            // One writer at a time: no delivery can record an attempt between these statements.
            let of_subscriber = "SELECT id FROM notifications WHERE workspace_id = ?1 AND subscriber_id = ?2";
            let attempts = tx.execute(
                &format!("DELETE FROM attempts WHERE workspace_id = ?1 AND notification_id IN ({of_subscriber})"),
                params![w, s],
            )?;
            tx.execute(
                &format!("DELETE FROM delivery_queue WHERE notification_id IN ({of_subscriber})"),
                params![w, s],
            )?;
            let messages =
                tx.execute("DELETE FROM notifications WHERE workspace_id = ?1 AND subscriber_id = ?2", params![w, s])?;
            let channels = tx.execute(
                "DELETE FROM subscriber_channels WHERE workspace_id = ?1 AND subscriber_id = ?2",
                params![w, s],
            )?;
            let topics = tx.execute(
                "DELETE FROM topic_subscribers WHERE workspace_id = ?1 AND subscriber_id = ?2",
                params![w, s],
            )?;
            tx.execute("DELETE FROM subscribers WHERE workspace_id = ?1 AND id = ?2", params![w, s])?;
            let counts = ErasureCounts {
                channels: channels as u64,
                messages: messages as u64,
                attempts: attempts as u64,
                topics: topics as u64,
            };
            audit::append_one(tx, Stream::Data, ws, &counts.audited(audit))?;
            Ok(counts)
        })
        .await
    }

    async fn list_subscribers(
        &self,
        ws: WorkspaceId,
        after: Option<SubscriberId>,
        limit: u32,
    ) -> Result<Vec<SubscriberRow>, StoreError> {
        let raws = self.read(|c| {
            let sql = format!(
                "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE workspace_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
            );
            let after = after.map(|a| a.to_string()).unwrap_or_default();
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![ws.to_string(), after, i64::from(limit)], raw_subscriber)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        raws.into_iter().map(to_subscriber).collect()
    }

    async fn insert_subscriber_channel(
        &self,
        ws: WorkspaceId,
        row: &SubscriberChannelRow,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let (row, audit) = (row.clone(), audit.clone());
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO subscriber_channels (id, workspace_id, subscriber_id, kind, address, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    row.id.to_string(),
                    ws.to_string(),
                    row.subscriber_id.to_string(),
                    row.kind,
                    row.address,
                    row.created_at.0
                ],
            )?;
            audit::append_one(tx, Stream::Data, ws, &audit)
        })
        .await
    }

    async fn subscriber_channels(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
    ) -> Result<Vec<SubscriberChannelRow>, StoreError> {
        let raws = self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, subscriber_id, kind, address, created_at FROM subscriber_channels \
                 WHERE workspace_id = ?1 AND subscriber_id = ?2 ORDER BY id",
            )?;
            let rows = stmt.query_map([ws.to_string(), subscriber.to_string()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?;
            Ok(rows.collect::<Result<Vec<RawChannel>, _>>()?)
        })?;
        raws.into_iter().map(to_channel).collect()
    }

    async fn delete_subscriber_channel(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        id: SubscriberChannelId,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let audit = audit.clone();
        self.write(move |tx| {
            let n = tx.execute(
                "DELETE FROM subscriber_channels WHERE workspace_id = ?1 AND subscriber_id = ?2 AND id = ?3",
                params![ws.to_string(), subscriber.to_string(), id.to_string()],
            )?;
            audit::audit_one_change(tx, n, Stream::Data, ws, &audit)
        })
        .await
    }

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
