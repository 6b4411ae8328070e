//! The `suppressions` and `inbound_events` tables: one body for both backends, except the
//! suppression lookup of a delivery batch (see `sql.rs`).

use chimatic_domain::{ChannelKind, InboundEventId, IntegrationId, SuppressionId, Timestamp, WorkspaceId};
use rusqlite::params;

use super::sql;
use crate::db::{Arg, Columns, Db, Step, args, fetch_all};
use crate::{PostgresBackend, SqliteBackend, StoreError};

/// An address on a workspace's suppression list.
#[derive(Clone)]
pub struct SuppressionRow {
    pub id: SuppressionId,
    pub kind: ChannelKind,
    /// Keyed digest of kind and normalised address.
    pub address_key: [u8; 32],
    /// The address, under the workspace DEK.
    pub address: Vec<u8>,
    pub reason: String,
    pub integration_id: Option<IntegrationId>,
    pub created_at: Timestamp,
}

/// A verified inbound provider webhook.
#[derive(Clone)]
pub struct InboundEventRow {
    pub id: InboundEventId,
    pub integration_id: IntegrationId,
    /// Keyed digest of the provider's event id, to recognise redeliveries.
    pub provider_event_key: [u8; 32],
    pub kind: String,
    pub outcome: String,
    /// Recipient and provider codes (JSON), under the workspace DEK.
    pub detail: Vec<u8>,
    pub received_at: Timestamp,
}

/// A row of `id, kind, address_key, address, reason, integration_id, created_at`.
fn suppression(r: &dyn Columns) -> Result<SuppressionRow, StoreError> {
    Ok(SuppressionRow {
        id: r.parsed(0, "suppression id")?,
        kind: ChannelKind::parse(&r.text(1)?).ok_or(StoreError::Corrupt("suppression kind"))?,
        address_key: r.digest(2, "suppression key")?,
        address: r.blob(3)?,
        reason: r.text(4)?,
        integration_id: r.opt_parsed(5, "integration id")?,
        created_at: r.at(6)?,
    })
}

/// A row of `id, integration_id, provider_event_key, kind, outcome, detail, received_at`.
fn inbound(r: &dyn Columns) -> Result<InboundEventRow, StoreError> {
    Ok(InboundEventRow {
        id: r.parsed(0, "inbound event id")?,
        integration_id: r.parsed(1, "integration id")?,
        provider_event_key: r.digest(2, "provider event key")?,
        kind: r.text(3)?,
        outcome: r.text(4)?,
        detail: r.blob(5)?,
        received_at: r.at(6)?,
    })
}

fn insert_suppression(ws: WorkspaceId, row: &SuppressionRow) -> Vec<Arg> {
    args![
        ws,
        row.id,
        row.kind.as_str(),
        &row.address_key,
        &row.address,
        &row.reason,
        row.integration_id,
        row.created_at
    ]
}

/// What providers report back: inbound webhook history and the suppression list it feeds.
#[async_trait::async_trait]
pub trait FeedbackRows: Db {
    /// `false` when the address is already suppressed.
    async fn insert_suppression(&self, ws: WorkspaceId, row: &SuppressionRow) -> Result<bool, StoreError> {
        Ok(self.execute(&sql::INSERT_SUPPRESSION, insert_suppression(ws, row), None).await? == 1)
    }

    /// Those of `keys` that are on the workspace's suppression list.
    async fn suppressed_keys(&self, ws: WorkspaceId, keys: &[[u8; 32]]) -> Result<Vec<[u8; 32]>, StoreError>;

    async fn list_suppressions(
        &self,
        ws: WorkspaceId,
        after: Option<SuppressionId>,
        limit: u32,
    ) -> Result<Vec<SuppressionRow>, StoreError> {
        let after = after.map(|a| a.to_string()).unwrap_or_default();
        fetch_all(self, &sql::LIST_SUPPRESSIONS, args![ws, after, limit], suppression).await
    }

    async fn delete_suppression(&self, ws: WorkspaceId, id: SuppressionId) -> Result<bool, StoreError> {
        Ok(self.execute(&sql::DELETE_SUPPRESSION, args![ws, id], None).await? == 1)
    }

    /// Records an inbound webhook and the suppressions it causes, in one transaction; `false`
    /// (nothing written) when the same provider event was recorded before.
    async fn record_inbound(
        &self,
        ws: WorkspaceId,
        event: &InboundEventRow,
        suppressions: &[SuppressionRow],
    ) -> Result<bool, StoreError> {
        let event_args = args![
            ws,
            event.id,
            event.integration_id,
            &event.provider_event_key,
            &event.kind,
            &event.outcome,
            &event.detail,
            event.received_at
        ];
        let mut steps = vec![Step::required(&sql::INSERT_INBOUND, event_args)];
        steps.extend(suppressions.iter().map(|row| Step::new(&sql::INSERT_SUPPRESSION, insert_suppression(ws, row))));
        Ok(self.transaction(steps, None).await?[0] == 1)
    }

    /// An integration's inbound webhooks, newest first, before `before`.
    async fn inbound_events(
        &self,
        ws: WorkspaceId,
        integration: IntegrationId,
        before: Option<InboundEventId>,
        limit: u32,
    ) -> Result<Vec<InboundEventRow>, StoreError> {
        // Ids are time-ordered; '~' sorts after every id.
        let before = before.map(|b| b.to_string()).unwrap_or_else(|| "~".into());
        fetch_all(self, &sql::LIST_INBOUND, args![ws, integration, before, limit], inbound).await
    }

    /// Deletes up to `limit` inbound webhooks received before `before`; `None` when another node
    /// holds this job's lock.
    async fn purge_inbound_events(&self, before: Timestamp, limit: u32) -> Result<Option<u64>, StoreError> {
        self.execute_job("inbound_purge", &sql::PURGE_INBOUND, args![before, limit]).await
    }
}

#[async_trait::async_trait]
impl FeedbackRows for SqliteBackend {
    async fn suppressed_keys(&self, ws: WorkspaceId, keys: &[[u8; 32]]) -> Result<Vec<[u8; 32]>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(sql::IS_SUPPRESSED.sqlite())?;
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
}

#[async_trait::async_trait]
impl FeedbackRows for PostgresBackend {
    async fn suppressed_keys(&self, ws: WorkspaceId, keys: &[[u8; 32]]) -> Result<Vec<[u8; 32]>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
        let found: Vec<Vec<u8>> = sqlx::query_scalar(sql::SUPPRESSED_KEYS.postgres())
            .bind(ws.to_string())
            .bind(&wanted)
            .fetch_all(&self.pool)
            .await?;
        found.into_iter().map(|k| k.try_into().map_err(|_| StoreError::Corrupt("suppression key"))).collect()
    }
}
