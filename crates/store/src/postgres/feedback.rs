//! Provider feedback on PostgreSQL: the suppression list and inbound webhook history.

use chimatic_domain::{ChannelKind, InboundEventId, IntegrationId, SuppressionId, Timestamp, WorkspaceId};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row, Transaction};

use super::{PostgresBackend, try_job_lock};
use crate::StoreError;
use crate::backend::*;

fn suppression_row(r: &PgRow) -> Result<SuppressionRow, StoreError> {
    let key: Vec<u8> = r.try_get("address_key")?;
    let kind: String = r.try_get("kind")?;
    Ok(SuppressionRow {
        id: parse(r.try_get("id")?, "suppression id")?,
        kind: ChannelKind::parse(&kind).ok_or(StoreError::Corrupt("suppression kind"))?,
        address_key: key.try_into().map_err(|_| StoreError::Corrupt("suppression key"))?,
        address: r.try_get("address")?,
        reason: r.try_get("reason")?,
        integration_id: r
            .try_get::<Option<String>, _>("integration_id")?
            .map(|i| parse(&i, "integration id"))
            .transpose()?,
        created_at: Timestamp(r.try_get("created_at")?),
    })
}

fn inbound_row(r: &PgRow) -> Result<InboundEventRow, StoreError> {
    let key: Vec<u8> = r.try_get("provider_event_key")?;
    Ok(InboundEventRow {
        id: parse(r.try_get("id")?, "inbound event id")?,
        integration_id: parse(r.try_get("integration_id")?, "integration id")?,
        provider_event_key: key.try_into().map_err(|_| StoreError::Corrupt("provider event key"))?,
        kind: r.try_get("kind")?,
        outcome: r.try_get("outcome")?,
        detail: r.try_get("detail")?,
        received_at: Timestamp(r.try_get("received_at")?),
    })
}

async fn insert_suppression(
    tx: &mut Transaction<'_, Postgres>,
    ws: &str,
    row: &SuppressionRow,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "INSERT INTO suppressions (id, workspace_id, kind, address_key, address, reason, integration_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (workspace_id, address_key) DO NOTHING",
    )
    .bind(row.id.to_string())
    .bind(ws)
    .bind(row.kind.as_str())
    .bind(row.address_key.as_slice())
    .bind(&row.address)
    .bind(&row.reason)
    .bind(row.integration_id.map(|i| i.to_string()))
    .bind(row.created_at.0)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

#[async_trait::async_trait]
impl FeedbackBackend for PostgresBackend {
    async fn insert_suppression(&self, ws: WorkspaceId, row: &SuppressionRow) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let inserted = insert_suppression(&mut tx, &ws.to_string(), row).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    async fn suppressed_keys(&self, ws: WorkspaceId, keys: &[[u8; 32]]) -> Result<Vec<[u8; 32]>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // One round trip for a whole batch.
        let wanted: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
        let found: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT address_key FROM suppressions WHERE workspace_id = $1 AND address_key = ANY($2)",
        )
        .bind(ws.to_string())
        .bind(&wanted)
        .fetch_all(&self.pool)
        .await?;
        found.into_iter().map(|k| k.try_into().map_err(|_| StoreError::Corrupt("suppression key"))).collect()
    }

    async fn list_suppressions(
        &self,
        ws: WorkspaceId,
        after: Option<SuppressionId>,
        limit: u32,
    ) -> Result<Vec<SuppressionRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, address_key, address, reason, integration_id, created_at FROM suppressions \
             WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(ws.to_string())
        .bind(after.map(|a| a.to_string()).unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(suppression_row).collect()
    }

    async fn delete_suppression(&self, ws: WorkspaceId, id: SuppressionId) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM suppressions WHERE workspace_id = $1 AND id = $2")
            .bind(ws.to_string())
            .bind(id.to_string())
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    async fn record_inbound(
        &self,
        ws: WorkspaceId,
        event: &InboundEventRow,
        suppressions: &[SuppressionRow],
    ) -> Result<bool, StoreError> {
        let ws = ws.to_string();
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "INSERT INTO inbound_events (id, workspace_id, integration_id, provider_event_key, kind, outcome, detail, \
               received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (workspace_id, integration_id, provider_event_key) DO NOTHING",
        )
        .bind(event.id.to_string())
        .bind(&ws)
        .bind(event.integration_id.to_string())
        .bind(event.provider_event_key.as_slice())
        .bind(&event.kind)
        .bind(&event.outcome)
        .bind(&event.detail)
        .bind(event.received_at.0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        for row in suppressions {
            insert_suppression(&mut tx, &ws, row).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn inbound_events(
        &self,
        ws: WorkspaceId,
        integration: IntegrationId,
        before: Option<InboundEventId>,
        limit: u32,
    ) -> Result<Vec<InboundEventRow>, StoreError> {
        // Ids are time-ordered; '~' sorts after every id.
        let rows = sqlx::query(
            "SELECT id, integration_id, provider_event_key, kind, outcome, detail, received_at FROM inbound_events \
             WHERE workspace_id = $1 AND integration_id = $2 AND id < $3 ORDER BY id DESC LIMIT $4",
        )
        .bind(ws.to_string())
        .bind(integration.to_string())
        .bind(before.map(|b| b.to_string()).unwrap_or_else(|| "~".into()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(inbound_row).collect()
    }

    async fn purge_inbound_events(&self, before: Timestamp, limit: u32) -> Result<Option<u64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !try_job_lock(&mut tx, "inbound_purge").await? {
            return Ok(None);
        }
        let n = sqlx::query(
            "DELETE FROM inbound_events WHERE id IN ( \
               SELECT id FROM inbound_events WHERE received_at < $1 ORDER BY received_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(before.0)
        .bind(i64::from(limit))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(Some(n))
    }
}
