//! The control plane's tables on PostgreSQL: workspaces, API key metadata, delivery analytics.

use chimatic_crypto::ApiKeyDigest;
use chimatic_domain::{ApiKeyId, Plan, Region, Scopes, Timestamp, WorkspaceId};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row, Transaction};

use super::{PostgresBackend, audit};
use crate::StoreError;
use crate::backend::*;
use chimatic_audit::{AuditEvent, Stream};

fn api_key_row(r: &PgRow) -> Result<ApiKeyRow, StoreError> {
    let digest: Vec<u8> = r.try_get("digest")?;
    Ok(ApiKeyRow {
        id: parse(r.try_get("id")?, "api key id")?,
        workspace_id: parse(r.try_get("workspace_id")?, "workspace id")?,
        name: r.try_get("name")?,
        scopes: Scopes::from_storage(r.try_get("scopes")?).map_err(|_| StoreError::Corrupt("scopes"))?,
        digest: ApiKeyDigest::from_slice(&digest).ok_or(StoreError::Corrupt("api key digest"))?,
        last4: r.try_get("last4")?,
        created_at: Timestamp(r.try_get("created_at")?),
        last_used_at: r.try_get::<Option<i64>, _>("last_used_at")?.map(Timestamp),
        revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(Timestamp),
    })
}

async fn insert_api_key(tx: &mut Transaction<'_, Postgres>, row: &ApiKeyRow) -> Result<(), StoreError> {
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
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn count(r: &PgRow, column: &str) -> Result<u64, StoreError> {
    u64::try_from(r.try_get::<i64, _>(column)?).map_err(|_| StoreError::Corrupt("delivery count"))
}

fn stored_count(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[async_trait::async_trait]
impl ControlBackend for PostgresBackend {
    async fn ping(&self) -> Result<(), StoreError> {
        DataBackend::ping(self).await
    }

    async fn create_workspace(
        &self,
        row: &WorkspaceRow,
        owner_key: &ApiKeyRow,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO workspaces (id, name, region, created_at, plan, audit_retention_days, owner_key_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(row.id.to_string())
        .bind(&row.name)
        .bind(row.region.as_str())
        .bind(row.created_at.0)
        .bind(row.plan.name())
        .bind(row.plan.custom_retention_days().map(i64::from))
        .bind(owner_key.id.to_string())
        .execute(&mut *tx)
        .await?;
        insert_api_key(&mut tx, owner_key).await?;
        audit::append_one(&mut tx, Stream::Control, row.id, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_plan(&self, ws: WorkspaceId, plan: &Plan, audit: &AuditEvent) -> Result<bool, StoreError> {
        let statement = sqlx::query("UPDATE workspaces SET plan = $2, audit_retention_days = $3 WHERE id = $1")
            .bind(ws.to_string())
            .bind(plan.name())
            .bind(plan.custom_retention_days().map(i64::from));
        audit::change_one(&self.pool, statement, Stream::Control, ws, audit).await
    }

    async fn workspace(&self, id: WorkspaceId) -> Result<Option<WorkspaceRow>, StoreError> {
        let row = sqlx::query(
            "SELECT name, region, created_at, plan, audit_retention_days, frozen_at, payload_retention_days, \
                    owner_key_id, deleting_at \
             FROM workspaces WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(WorkspaceRow {
                id,
                name: r.try_get("name")?,
                region: parse(r.try_get("region")?, "region")?,
                created_at: Timestamp(r.try_get("created_at")?),
                plan: stored_plan(r.try_get("plan")?, r.try_get("audit_retention_days")?)?,
                frozen_at: r.try_get::<Option<i64>, _>("frozen_at")?.map(Timestamp),
                payload_retention_days: u32_of(r.try_get("payload_retention_days")?, "payload retention")?,
                owner_key_id: r
                    .try_get::<Option<String>, _>("owner_key_id")?
                    .map(|o| parse(&o, "owner key id"))
                    .transpose()?,
                deleting_at: r.try_get::<Option<i64>, _>("deleting_at")?.map(Timestamp),
            })
        })
        .transpose()
    }

    async fn set_frozen(
        &self,
        ws: WorkspaceId,
        at: Option<Timestamp>,
        audit: &AuditEvent,
    ) -> Result<Option<bool>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let current: Option<Option<i64>> =
            sqlx::query_scalar("SELECT frozen_at FROM workspaces WHERE id = $1 FOR UPDATE")
                .bind(ws.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        let Some(current) = current else { return Ok(None) };
        if current.is_some() == at.is_some() {
            return Ok(Some(false));
        }
        sqlx::query("UPDATE workspaces SET frozen_at = $2 WHERE id = $1")
            .bind(ws.to_string())
            .bind(at.map(|t| t.0))
            .execute(&mut *tx)
            .await?;
        audit::append_one(&mut tx, Stream::Control, ws, audit).await?;
        tx.commit().await?;
        Ok(Some(true))
    }

    async fn set_payload_retention(&self, ws: WorkspaceId, days: u32, audit: &AuditEvent) -> Result<bool, StoreError> {
        let statement = sqlx::query("UPDATE workspaces SET payload_retention_days = $2 WHERE id = $1")
            .bind(ws.to_string())
            .bind(i64::from(days));
        audit::change_one(&self.pool, statement, Stream::Control, ws, audit).await
    }

    async fn payload_retentions(&self, region: &Region) -> Result<Vec<(WorkspaceId, u32)>, StoreError> {
        let rows = sqlx::query("SELECT id, payload_retention_days FROM workspaces WHERE region = $1")
            .bind(region.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    parse(r.try_get("id")?, "workspace id")?,
                    u32_of(r.try_get("payload_retention_days")?, "payload retention")?,
                ))
            })
            .collect()
    }

    async fn start_deletion(&self, ws: WorkspaceId, now: Timestamp) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE workspaces SET deleting_at = COALESCE(deleting_at, $2) WHERE id = $1 AND erased_at IS NULL",
        )
        .bind(ws.to_string())
        .bind(now.0)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn deletions(&self, region: &Region) -> Result<Vec<WorkspaceId>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM workspaces WHERE region = $1 AND deleting_at IS NOT NULL AND erased_at IS NULL",
        )
        .bind(region.as_str())
        .fetch_all(&self.pool)
        .await?;
        ids.iter().map(|id| parse(id, "workspace id")).collect()
    }

    async fn finish_deletion(&self, ws: WorkspaceId, now: Timestamp, audit: &AuditEvent) -> Result<bool, StoreError> {
        let statement = sqlx::query(
            "UPDATE workspaces SET erased_at = $2, name = '' \
             WHERE id = $1 AND deleting_at IS NOT NULL AND erased_at IS NULL",
        )
        .bind(ws.to_string())
        .bind(now.0);
        audit::change_one(&self.pool, statement, Stream::Control, chimatic_audit::system_workspace(), audit).await
    }

    async fn erased_before(&self, region: &Region, cutoff: Timestamp) -> Result<Vec<WorkspaceId>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM workspaces WHERE region = $1 AND erased_at <= $2")
            .bind(region.as_str())
            .bind(cutoff.0)
            .fetch_all(&self.pool)
            .await?;
        ids.iter().map(|id| parse(id, "workspace id")).collect()
    }

    async fn forget_workspace(&self, ws: WorkspaceId, audit: &AuditEvent) -> Result<bool, StoreError> {
        let statement =
            sqlx::query("DELETE FROM workspaces WHERE id = $1 AND erased_at IS NOT NULL").bind(ws.to_string());
        audit::change_one(&self.pool, statement, Stream::Control, chimatic_audit::system_workspace(), audit).await
    }

    async fn frozen_workspaces(&self) -> Result<Vec<WorkspaceId>, StoreError> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM workspaces WHERE frozen_at IS NOT NULL OR deleting_at IS NOT NULL")
                .fetch_all(&self.pool)
                .await?;
        ids.iter().map(|id| parse(id, "workspace id")).collect()
    }

    async fn insert_api_key(&self, row: &ApiKeyRow, audit: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_api_key(&mut tx, row).await?;
        audit::append_one(&mut tx, Stream::Control, row.workspace_id, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn api_key_by_digest(&self, digest: &ApiKeyDigest) -> Result<Option<KeyOwner>, StoreError> {
        let row = sqlx::query(
            "SELECT k.id, k.workspace_id, k.name, k.scopes, k.digest, k.last4, k.created_at, k.last_used_at, \
                    k.revoked_at, w.region, w.frozen_at IS NOT NULL AS frozen \
             FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id \
             WHERE k.digest = $1 AND w.deleting_at IS NULL",
        )
        .bind(digest.0.as_slice())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(KeyOwner {
                key: api_key_row(&r)?,
                region: parse(r.try_get("region")?, "region")?,
                frozen: r.try_get("frozen")?,
            })
        })
        .transpose()
    }

    async fn list_api_keys(&self, ws: WorkspaceId) -> Result<Vec<ApiKeyRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, workspace_id, name, scopes, digest, last4, created_at, last_used_at, revoked_at \
             FROM api_keys WHERE workspace_id = $1 ORDER BY id",
        )
        .bind(ws.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(api_key_row).collect()
    }

    async fn revoke_api_key(
        &self,
        ws: WorkspaceId,
        id: ApiKeyId,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let statement = sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) WHERE workspace_id = $1 AND id = $2",
        )
        .bind(ws.to_string())
        .bind(id.to_string())
        .bind(now.0);
        audit::change_one(&self.pool, statement, Stream::Control, ws, audit).await
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

    async fn add_stats(&self, rows: &[(WorkspaceId, StatsRow)]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (ws, s) in rows {
            sqlx::query(
                "INSERT INTO delivery_stats AS d (workspace_id, day, accepted, attempts, delivered, failed) \
                 SELECT $1, $2, $3, $4, $5, $6 \
                 WHERE EXISTS (SELECT 1 FROM workspaces WHERE id = $1 AND deleting_at IS NULL) \
                 ON CONFLICT (workspace_id, day) DO UPDATE SET \
                   accepted = d.accepted + excluded.accepted, attempts = d.attempts + excluded.attempts, \
                   delivered = d.delivered + excluded.delivered, failed = d.failed + excluded.failed",
            )
            .bind(ws.to_string())
            .bind(s.day)
            .bind(stored_count(s.accepted))
            .bind(stored_count(s.attempts))
            .bind(stored_count(s.delivered))
            .bind(stored_count(s.failed))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn stats(&self, ws: WorkspaceId, from_day: i64, to_day: i64) -> Result<Vec<StatsRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT day, accepted, attempts, delivered, failed FROM delivery_stats \
             WHERE workspace_id = $1 AND day BETWEEN $2 AND $3 ORDER BY day",
        )
        .bind(ws.to_string())
        .bind(from_day)
        .bind(to_day)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StatsRow {
                    day: r.try_get("day")?,
                    accepted: count(r, "accepted")?,
                    attempts: count(r, "attempts")?,
                    delivered: count(r, "delivered")?,
                    failed: count(r, "failed")?,
                })
            })
            .collect()
    }
}
