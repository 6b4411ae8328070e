//! The control plane's tables on SQLite: workspaces, API key metadata, delivery analytics.

use chimatic_crypto::ApiKeyDigest;
use chimatic_domain::{ApiKeyId, Plan, Region, Scopes, Timestamp, WorkspaceId};
use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::{SqliteBackend, audit};
use crate::StoreError;
use crate::backend::*;
use chimatic_audit::{AuditEvent, Stream};

type RawApiKey = (String, String, String, String, Vec<u8>, String, i64, Option<i64>, Option<i64>);

fn raw_api_key(r: &Row<'_>) -> rusqlite::Result<RawApiKey> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?))
}

fn to_api_key(raw: RawApiKey) -> Result<ApiKeyRow, StoreError> {
    let (id, ws, name, scopes, digest, last4, created, used, revoked) = raw;
    Ok(ApiKeyRow {
        id: parse(&id, "api key id")?,
        workspace_id: parse(&ws, "workspace id")?,
        name,
        scopes: Scopes::from_storage(&scopes).map_err(|_| StoreError::Corrupt("scopes"))?,
        digest: ApiKeyDigest::from_slice(&digest).ok_or(StoreError::Corrupt("api key digest"))?,
        last4,
        created_at: Timestamp(created),
        last_used_at: used.map(Timestamp),
        revoked_at: revoked.map(Timestamp),
    })
}

const API_KEY_COLUMNS: &str =
    "k.id, k.workspace_id, k.name, k.scopes, k.digest, k.last4, k.created_at, k.last_used_at, k.revoked_at";

fn insert_api_key(tx: &Transaction<'_>, row: &ApiKeyRow) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO api_keys (id, workspace_id, name, scopes, digest, last4, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        row.id.to_string(),
        row.workspace_id.to_string(),
        row.name,
        row.scopes.to_storage(),
        row.digest.0.as_slice(),
        row.last4,
        row.created_at.0
    ])?;
    Ok(())
}

fn count(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt("delivery count"))
}

fn stored_count(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[async_trait::async_trait]
impl ControlBackend for SqliteBackend {
    async fn ping(&self) -> Result<(), StoreError> {
        DataBackend::ping(self).await
    }

    async fn create_workspace(
        &self,
        row: &WorkspaceRow,
        owner_key: &ApiKeyRow,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let (row, owner_key, audit) = (row.clone(), owner_key.clone(), audit.clone());
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO workspaces (id, name, region, created_at, plan, audit_retention_days, owner_key_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    row.id.to_string(),
                    row.name,
                    row.region.as_str(),
                    row.created_at.0,
                    row.plan.name(),
                    row.plan.custom_retention_days(),
                    owner_key.id.to_string()
                ],
            )?;
            insert_api_key(tx, &owner_key)?;
            audit::append_one(tx, Stream::Control, row.id, &audit)
        })
        .await
    }

    async fn set_plan(&self, ws: WorkspaceId, plan: &Plan, audit: &AuditEvent) -> Result<bool, StoreError> {
        let (plan, audit) = (*plan, audit.clone());
        self.write(move |tx| {
            let n = tx.execute(
                "UPDATE workspaces SET plan = ?2, audit_retention_days = ?3 WHERE id = ?1",
                params![ws.to_string(), plan.name(), plan.custom_retention_days()],
            )?;
            audit::audit_one_change(tx, n, Stream::Control, ws, &audit)
        })
        .await
    }

    async fn workspace(&self, id: WorkspaceId) -> Result<Option<WorkspaceRow>, StoreError> {
        type Raw = (String, String, i64, String, Option<i64>, Option<i64>, i64, Option<String>, Option<i64>);
        let raw: Option<Raw> = self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT name, region, created_at, plan, audit_retention_days, frozen_at, payload_retention_days, \
                        owner_key_id, deleting_at \
                 FROM workspaces WHERE id = ?1",
            )?
            .query_row([id.to_string()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?))
            })
            .optional()?)
        })?;
        raw.map(|(name, region, created, plan, days, frozen, payload_days, owner, deleting)| {
            Ok(WorkspaceRow {
                id,
                name,
                region: parse(&region, "region")?,
                created_at: Timestamp(created),
                plan: stored_plan(&plan, days)?,
                frozen_at: frozen.map(Timestamp),
                payload_retention_days: u32_of(payload_days, "payload retention")?,
                owner_key_id: owner.map(|o| parse(&o, "owner key id")).transpose()?,
                deleting_at: deleting.map(Timestamp),
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
        let audit = audit.clone();
        self.write(move |tx| {
            let current: Option<Option<i64>> = tx
                .prepare_cached("SELECT frozen_at FROM workspaces WHERE id = ?1")?
                .query_row([ws.to_string()], |r| r.get(0))
                .optional()?;
            let Some(current) = current else { return Ok(None) };
            if current.is_some() == at.is_some() {
                return Ok(Some(false));
            }
            tx.execute("UPDATE workspaces SET frozen_at = ?2 WHERE id = ?1", params![ws.to_string(), at.map(|t| t.0)])?;
            audit::append_one(tx, Stream::Control, ws, &audit)?;
            Ok(Some(true))
        })
        .await
    }

    async fn set_payload_retention(&self, ws: WorkspaceId, days: u32, audit: &AuditEvent) -> Result<bool, StoreError> {
        let audit = audit.clone();
        self.write(move |tx| {
            let n = tx.execute(
                "UPDATE workspaces SET payload_retention_days = ?2 WHERE id = ?1",
                params![ws.to_string(), i64::from(days)],
            )?;
            audit::audit_one_change(tx, n, Stream::Control, ws, &audit)
        })
        .await
    }

    async fn payload_retentions(&self, region: &Region) -> Result<Vec<(WorkspaceId, u32)>, StoreError> {
        let region = region.as_str().to_string();
        let raws: Vec<(String, i64)> = self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT id, payload_retention_days FROM workspaces WHERE region = ?1")?;
            let rows = stmt.query_map([region], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        raws.iter().map(|(id, days)| Ok((parse(id, "workspace id")?, u32_of(*days, "payload retention")?))).collect()
    }

    async fn start_deletion(&self, ws: WorkspaceId, now: Timestamp) -> Result<bool, StoreError> {
        self.write(move |tx| {
            let n = tx.execute(
                "UPDATE workspaces SET deleting_at = COALESCE(deleting_at, ?2) WHERE id = ?1 AND erased_at IS NULL",
                params![ws.to_string(), now.0],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn deletions(&self, region: &Region) -> Result<Vec<WorkspaceId>, StoreError> {
        let region = region.as_str().to_string();
        let ids: Vec<String> = self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id FROM workspaces WHERE region = ?1 AND deleting_at IS NOT NULL AND erased_at IS NULL",
            )?;
            let rows = stmt.query_map([region], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        ids.iter().map(|id| parse(id, "workspace id")).collect()
    }

    async fn finish_deletion(&self, ws: WorkspaceId, now: Timestamp, audit: &AuditEvent) -> Result<bool, StoreError> {
        let audit = audit.clone();
        self.write(move |tx| {
            let n = tx.execute(
                "UPDATE workspaces SET erased_at = ?2, name = '' \
                 WHERE id = ?1 AND deleting_at IS NOT NULL AND erased_at IS NULL",
                params![ws.to_string(), now.0],
            )?;
            audit::audit_one_change(tx, n, Stream::Control, chimatic_audit::system_workspace(), &audit)
        })
        .await
    }

    async fn erased_before(&self, region: &Region, cutoff: Timestamp) -> Result<Vec<WorkspaceId>, StoreError> {
        let region = region.as_str().to_string();
        let ids: Vec<String> = self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT id FROM workspaces WHERE region = ?1 AND erased_at <= ?2")?;
            let rows = stmt.query_map(params![region, cutoff.0], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        ids.iter().map(|id| parse(id, "workspace id")).collect()
    }

    async fn forget_workspace(&self, ws: WorkspaceId, audit: &AuditEvent) -> Result<bool, StoreError> {
        let audit = audit.clone();
        self.write(move |tx| {
            let n = tx.execute("DELETE FROM workspaces WHERE id = ?1 AND erased_at IS NOT NULL", [ws.to_string()])?;
            audit::audit_one_change(tx, n, Stream::Control, chimatic_audit::system_workspace(), &audit)
        })
        .await
    }

    async fn frozen_workspaces(&self) -> Result<Vec<WorkspaceId>, StoreError> {
        let ids: Vec<String> = self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT id FROM workspaces WHERE frozen_at IS NOT NULL OR deleting_at IS NOT NULL")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        ids.iter().map(|id| parse(id, "workspace id")).collect()
    }

    async fn insert_api_key(&self, row: &ApiKeyRow, audit: &AuditEvent) -> Result<(), StoreError> {
        let (row, audit) = (row.clone(), audit.clone());
        self.write(move |tx| {
            insert_api_key(tx, &row)?;
            audit::append_one(tx, Stream::Control, row.workspace_id, &audit)
        })
        .await
    }

    async fn api_key_by_digest(&self, digest: &ApiKeyDigest) -> Result<Option<KeyOwner>, StoreError> {
        let raw = self.read(|c| {
            let sql = format!(
                "SELECT {API_KEY_COLUMNS}, w.region, w.frozen_at IS NOT NULL \
                 FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id \
                 WHERE k.digest = ?1 AND w.deleting_at IS NULL"
            );
            Ok(c.prepare_cached(&sql)?
                .query_row([digest.0.as_slice()], |r| {
                    Ok((raw_api_key(r)?, r.get::<_, String>(9)?, r.get::<_, bool>(10)?))
                })
                .optional()?)
        })?;
        raw.map(|(key, region, frozen)| {
            Ok(KeyOwner { key: to_api_key(key)?, region: parse(&region, "region")?, frozen })
        })
        .transpose()
    }

    async fn list_api_keys(&self, ws: WorkspaceId) -> Result<Vec<ApiKeyRow>, StoreError> {
        let raws = self.read(|c| {
            let sql = format!("SELECT {API_KEY_COLUMNS} FROM api_keys k WHERE k.workspace_id = ?1 ORDER BY k.id");
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map([ws.to_string()], raw_api_key)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })?;
        raws.into_iter().map(to_api_key).collect()
    }

    async fn revoke_api_key(
        &self,
        ws: WorkspaceId,
        id: ApiKeyId,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let audit = audit.clone();
        self.write(move |tx| {
            let n = tx.execute(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?3) WHERE workspace_id = ?1 AND id = ?2",
                params![ws.to_string(), id.to_string(), now.0],
            )?;
            audit::audit_one_change(tx, n, Stream::Control, ws, &audit)
        })
        .await
    }

    async fn touch_api_key(&self, ws: WorkspaceId, id: ApiKeyId, now: Timestamp) -> Result<(), StoreError> {
        self.write(move |tx| {
            tx.execute(
                "UPDATE api_keys SET last_used_at = ?3 WHERE workspace_id = ?1 AND id = ?2",
                params![ws.to_string(), id.to_string(), now.0],
            )?;
            Ok(())
        })
        .await
    }

    async fn add_stats(&self, rows: &[(WorkspaceId, StatsRow)]) -> Result<(), StoreError> {
        let rows = rows.to_vec();
        self.write(move |tx| {
            let mut add = tx.prepare_cached(
                "INSERT INTO delivery_stats (workspace_id, day, accepted, attempts, delivered, failed) \
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6 \
                 WHERE EXISTS (SELECT 1 FROM workspaces WHERE id = ?1 AND deleting_at IS NULL) \
                 ON CONFLICT (workspace_id, day) DO UPDATE SET \
                   accepted = accepted + excluded.accepted, attempts = attempts + excluded.attempts, \
                   delivered = delivered + excluded.delivered, failed = failed + excluded.failed",
            )?;
            for (ws, s) in &rows {
                add.execute(params![
                    ws.to_string(),
                    s.day,
                    stored_count(s.accepted),
                    stored_count(s.attempts),
                    stored_count(s.delivered),
                    stored_count(s.failed)
                ])?;
            }
            Ok(())
        })
        .await
    }

    async fn stats(&self, ws: WorkspaceId, from_day: i64, to_day: i64) -> Result<Vec<StatsRow>, StoreError> {
        let raws: Vec<(i64, i64, i64, i64, i64)> = self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT day, accepted, attempts, delivered, failed FROM delivery_stats \
                 WHERE workspace_id = ?1 AND day BETWEEN ?2 AND ?3 ORDER BY day",
            )?;
            let rows = stmt.query_map(params![ws.to_string(), from_day, to_day], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        raws.into_iter()
            .map(|(day, accepted, attempts, delivered, failed)| {
                Ok(StatsRow {
                    day,
                    accepted: count(accepted)?,
                    attempts: count(attempts)?,
                    delivered: count(delivered)?,
                    failed: count(failed)?,
                })
            })
            .collect()
    }
}
