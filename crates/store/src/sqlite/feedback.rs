//! Provider feedback on SQLite: the suppression list and inbound webhook history.

use chimatic_domain::{ChannelKind, InboundEventId, IntegrationId, SuppressionId, Timestamp, WorkspaceId};
use rusqlite::{Row, Transaction, params};

use super::SqliteBackend;
use crate::StoreError;
use crate::backend::*;

const SUPPRESSION_COLUMNS: &str = "id, kind, address_key, address, reason, integration_id, created_at";

type RawSuppression = (String, String, Vec<u8>, Vec<u8>, String, Option<String>, i64);

fn raw_suppression(r: &Row<'_>) -> rusqlite::Result<RawSuppression> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
}

fn to_suppression(raw: RawSuppression) -> Result<SuppressionRow, StoreError> {
    let (id, kind, address_key, address, reason, integration, created) = raw;
    Ok(SuppressionRow {
        id: parse(&id, "suppression id")?,
        kind: ChannelKind::parse(&kind).ok_or(StoreError::Corrupt("suppression kind"))?,
        address_key: address_key.try_into().map_err(|_| StoreError::Corrupt("suppression key"))?,
        address,
        reason,
        integration_id: integration.as_deref().map(|i| parse(i, "integration id")).transpose()?,
        created_at: Timestamp(created),
    })
}

const INBOUND_COLUMNS: &str = "id, integration_id, provider_event_key, kind, outcome, detail, received_at";

type RawInbound = (String, String, Vec<u8>, String, String, Vec<u8>, i64);

fn raw_inbound(r: &Row<'_>) -> rusqlite::Result<RawInbound> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
}

fn to_inbound(raw: RawInbound) -> Result<InboundEventRow, StoreError> {
    let (id, integration, key, kind, outcome, detail, received) = raw;
    Ok(InboundEventRow {
        id: parse(&id, "inbound event id")?,
        integration_id: parse(&integration, "integration id")?,
        provider_event_key: key.try_into().map_err(|_| StoreError::Corrupt("provider event key"))?,
        kind,
        outcome,
        detail,
        received_at: Timestamp(received),
    })
}

fn insert_suppression(tx: &Transaction<'_>, ws: &str, row: &SuppressionRow) -> Result<bool, StoreError> {
    let n = tx
        .prepare_cached(
            "INSERT INTO suppressions (id, workspace_id, kind, address_key, address, reason, integration_id, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (workspace_id, address_key) DO NOTHING",
        )?
        .execute(params![
            row.id.to_string(),
            ws,
            row.kind.as_str(),
            row.address_key.as_slice(),
            row.address,
            row.reason,
            row.integration_id.map(|i| i.to_string()),
            row.created_at.0,
        ])?;
    Ok(n == 1)
}

#[async_trait::async_trait]
impl FeedbackBackend for SqliteBackend {
    async fn insert_suppression(&self, ws: WorkspaceId, row: &SuppressionRow) -> Result<bool, StoreError> {
        let row = row.clone();
        self.write(move |tx| insert_suppression(tx, &ws.to_string(), &row)).await
    }

    async fn suppressed_keys(&self, ws: WorkspaceId, keys: &[[u8; 32]]) -> Result<Vec<[u8; 32]>, StoreError> {
        // In-process point reads: cheaper than building an IN list per batch.
        self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT 1 FROM suppressions WHERE workspace_id = ?1 AND address_key = ?2")?;
            let ws = ws.to_string();
            let mut found = Vec::new();
            for key in keys {
                if stmt.exists(params![ws, key.as_slice()])? {
                    found.push(*key);
                }
            }
            Ok(found)
        })
    }

    async fn list_suppressions(
        &self,
        ws: WorkspaceId,
        after: Option<SuppressionId>,
        limit: u32,
    ) -> Result<Vec<SuppressionRow>, StoreError> {
        let after = after.map(|a| a.to_string()).unwrap_or_default();
        let raws = self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {SUPPRESSION_COLUMNS} FROM suppressions WHERE workspace_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
            ))?;
            let rows = stmt.query_map(params![ws.to_string(), after, i64::from(limit)], raw_suppression)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        raws.into_iter().map(to_suppression).collect()
    }

    async fn delete_suppression(&self, ws: WorkspaceId, id: SuppressionId) -> Result<bool, StoreError> {
        self.write(move |tx| {
            let n = tx.execute(
                "DELETE FROM suppressions WHERE workspace_id = ?1 AND id = ?2",
                params![ws.to_string(), id.to_string()],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn record_inbound(
        &self,
        ws: WorkspaceId,
        event: &InboundEventRow,
        suppressions: &[SuppressionRow],
    ) -> Result<bool, StoreError> {
        let (event, suppressions) = (event.clone(), suppressions.to_vec());
        self.write(move |tx| {
            let ws = ws.to_string();
            let n = tx
                .prepare_cached(
                    "INSERT INTO inbound_events (id, workspace_id, integration_id, provider_event_key, kind, outcome, \
                       detail, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                     ON CONFLICT (workspace_id, integration_id, provider_event_key) DO NOTHING",
                )?
                .execute(params![
                    event.id.to_string(),
                    ws,
                    event.integration_id.to_string(),
                    event.provider_event_key.as_slice(),
                    event.kind,
                    event.outcome,
                    event.detail,
                    event.received_at.0,
                ])?;
            if n == 0 {
                return Ok(false);
            }
            for row in &suppressions {
                insert_suppression(tx, &ws, row)?;
            }
            Ok(true)
        })
        .await
    }

    async fn inbound_events(
        &self,
        ws: WorkspaceId,
        integration: IntegrationId,
        before: Option<InboundEventId>,
        limit: u32,
    ) -> Result<Vec<InboundEventRow>, StoreError> {
        // Ids are time-ordered; '~' sorts after every id.
        let before = before.map(|b| b.to_string()).unwrap_or_else(|| "~".into());
        let raws = self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {INBOUND_COLUMNS} FROM inbound_events WHERE workspace_id = ?1 AND integration_id = ?2 \
                 AND id < ?3 ORDER BY id DESC LIMIT ?4"
            ))?;
            let rows = stmt
                .query_map(params![ws.to_string(), integration.to_string(), before, i64::from(limit)], raw_inbound)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        raws.into_iter().map(to_inbound).collect()
    }

    async fn purge_inbound_events(&self, before: Timestamp, limit: u32) -> Result<Option<u64>, StoreError> {
        // SQLite has one writer at a time, across processes too: the batch is exclusive already.
        self.write(move |tx| {
            let n = tx
                .prepare_cached(
                    "DELETE FROM inbound_events WHERE id IN ( \
                       SELECT id FROM inbound_events WHERE received_at < ?1 ORDER BY received_at LIMIT ?2)",
                )?
                .execute(params![before.0, i64::from(limit)])?;
            Ok(Some(n as u64))
        })
        .await
    }
}
