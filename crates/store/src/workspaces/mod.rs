//! [`ControlStore`]: the control plane's interface — workspaces (and so their regions), API key
//! metadata and delivery analytics. It never holds notification content, addresses or
//! credentials; those are in the workspace's region [`Store`].

use std::sync::Arc;
use std::time::Duration;

use chimatic_audit::{AuditContext, Stream, actions};
use chimatic_crypto::{ApiKeyDigest, GeneratedApiKey};
use chimatic_domain::{ApiKeyId, Plan, Region, Scopes, Sensitive, Timestamp, WorkspaceId};

mod rows;
pub(crate) mod sql;

pub(crate) use rows::KeyOwner;
pub use rows::{ApiKeyRow, ControlRows, StatsRow, WorkspaceRow};

use crate::backend::{CONTROL_TABLES, WorkspaceEraser};
use crate::{AuditLog, ControlBackend, Store, StoreError};

/// How long after a workspace's deletion its stores are swept once more: longer than any request
/// or delivery lease that could have been under way when it started.
pub const ERASURE_SWEEP_DELAY: Duration = Duration::from_secs(3600);

/// `last_used_at` is written at most this often per key, so authentication is not a write.
const LAST_USED_RESOLUTION: Duration = Duration::from_secs(60);

pub struct ControlStore {
    pub(crate) backend: Arc<dyn ControlBackend>,
    audit: AuditLog,
}

/// A caller's valid key and where its workspace's data lives.
pub struct Authenticated {
    pub key: ApiKeyRow,
    pub region: Region,
    /// The workspace is frozen: the caller is known, but nothing may be read or written.
    pub frozen: bool,
}

impl ControlStore {
    pub fn new(backend: Arc<dyn ControlBackend>) -> Self {
        let audit = AuditLog::new(backend.clone(), Stream::Control);
        Self { backend, audit }
    }

    /// The control plane's audit trail (API keys, plans, workspace lifecycle).
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Changes a workspace's plan (and so its audit retention).
    pub async fn set_plan(
        &self,
        ws: WorkspaceId,
        plan: Plan,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<(), StoreError> {
        let audit = by.event(now, actions::WORKSPACE_PLAN_CHANGED, "workspace", ws).with_detail(serde_json::json!({
            "plan": plan.name(),
            "audit_retention_days": plan.audit_retention_days(),
        }));
        if self.backend.set_plan(ws, &plan, &audit).await? { Ok(()) } else { Err(StoreError::NotFound) }
    }

    /// Freezes a workspace (incident isolation): from the next request on, its API keys, inbox
    /// tokens and inbound webhooks get 423 and its deliveries are held. Returns whether the state
    /// changed (freezing a frozen workspace changes nothing and records nothing).
    pub async fn freeze(&self, ws: WorkspaceId, now: Timestamp, by: &AuditContext) -> Result<bool, StoreError> {
        let audit = by.event(now, actions::WORKSPACE_FROZEN, "workspace", ws);
        self.backend.set_frozen(ws, Some(now), &audit).await?.ok_or(StoreError::NotFound)
    }

    /// Lifts a freeze: requests are served again and held deliveries resume.
    pub async fn unfreeze(&self, ws: WorkspaceId, now: Timestamp, by: &AuditContext) -> Result<bool, StoreError> {
        let audit = by.event(now, actions::WORKSPACE_UNFROZEN, "workspace", ws);
        self.backend.set_frozen(ws, None, &audit).await?.ok_or(StoreError::NotFound)
    }

    /// Sets how many days a finished notification's content is kept (1 to 3650).
    pub async fn set_payload_retention(
        &self,
        ws: WorkspaceId,
        days: u32,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<(), StoreError> {
        if !chimatic_domain::PAYLOAD_RETENTION_DAYS.contains(&days) {
            return Err(StoreError::Invalid("the payload retention must be 1 to 3650 days"));
        }
        let audit = by
            .event(now, actions::WORKSPACE_PAYLOAD_RETENTION_CHANGED, "workspace", ws)
            .with_detail(serde_json::json!({ "payload_retention_days": days }));
        if self.backend.set_payload_retention(ws, days, &audit).await? { Ok(()) } else { Err(StoreError::NotFound) }
    }

    pub async fn payload_retentions(&self, region: &Region) -> Result<Vec<(WorkspaceId, u32)>, StoreError> {
        self.backend.payload_retentions(region).await
    }

    pub async fn frozen_workspaces(&self) -> Result<std::collections::BTreeSet<WorkspaceId>, StoreError> {
        Ok(self.backend.frozen_workspaces().await?.into_iter().collect())
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.backend.ping().await
    }

    /// Creates a workspace in `region` (whose store is `region_store`) with a one-time owner
    /// API key. The keys are made in the region first; the workspace exists once it is recorded here.
    pub async fn create_workspace(
        &self,
        name: &str,
        region_store: &Store,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<(WorkspaceRow, ApiKeyRow, Sensitive<String>), StoreError> {
        let id = WorkspaceId::generate();
        region_store.provision_workspace(id, now).await?;
        let generated = GeneratedApiKey::generate()?;
        let owner = new_key_row(id, "owner", Scopes::admin(), &generated, now);
        let row = WorkspaceRow {
            id,
            name: name.to_string(),
            region: region_store.region().clone(),
            created_at: now,
            plan: Plan::default(),
            frozen_at: None,
            payload_retention_days: chimatic_domain::DEFAULT_PAYLOAD_RETENTION_DAYS,
            owner_key_id: Some(owner.id),
            deleting_at: None,
        };
        let audit = by.event(now, actions::WORKSPACE_CREATED, "workspace", id).with_detail(serde_json::json!({
            "region": row.region.as_str(),
            "owner_key_id": owner.id,
        }));
        self.backend.create_workspace(&row, &owner, &audit).await?;
        Ok((row, owner, generated.key))
    }

    /// A workspace; one being deleted is gone already.
    pub async fn workspace(&self, id: WorkspaceId) -> Result<WorkspaceRow, StoreError> {
        self.backend.workspace(id).await?.filter(|w| w.deleting_at.is_none()).ok_or(StoreError::NotFound)
    }

    /// Deletes a workspace and everything of it: its keys stop working at once; its region's
    /// vault keys, credentials and DEKs are destroyed before any other row (so whatever a
    /// backup still holds cannot be decrypted), then its rows go table by table in batches; the
    /// deletion is recorded in the deployment's system audit chain with what was removed. What
    /// is left is a nameless tombstone, until [`ControlStore::sweep_deletions`].
    pub async fn delete_workspace(
        &self,
        ws: WorkspaceId,
        region_store: &Store,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<DeletionReceipt, StoreError> {
        if !self.backend.start_deletion(ws, now).await? {
            return Err(StoreError::NotFound);
        }
        self.finish_deletion(ws, region_store, now, by).await
    }

    /// Finishes the deletions of `region_store`'s workspaces that were started but not finished
    /// (the node doing them stopped); returns how many.
    pub async fn resume_deletions(&self, region_store: &Store, now: Timestamp) -> Result<u64, StoreError> {
        let mut finished = 0;
        for ws in self.backend.deletions(region_store.region()).await? {
            self.finish_deletion(ws, region_store, now, &AuditContext::system()).await?;
            finished += 1;
        }
        Ok(finished)
    }

    /// Sweeps the stores of `region_store`'s workspaces erased at least [`ERASURE_SWEEP_DELAY`]
    /// ago once more, then forgets their tombstones: a request or delivery that was already past
    /// its checks when the deletion started may have written a row after the erasure. Each sweep
    /// is recorded in the system chain with what it found, and returned.
    pub async fn sweep_deletions(
        &self,
        region_store: &Store,
        now: Timestamp,
    ) -> Result<Vec<(WorkspaceId, DeletionReceipt)>, StoreError> {
        let mut swept = Vec::new();
        for ws in self.backend.erased_before(region_store.region(), now.minus(ERASURE_SWEEP_DELAY)).await? {
            let found = self.erase_everywhere(ws, region_store).await?;
            let audit = AuditContext::system()
                .event(now, actions::WORKSPACE_ERASURE_SWEPT, "workspace", ws)
                .with_detail(serde_json::to_value(&found).map_err(|_| StoreError::Corrupt("deletion receipt"))?);
            if self.backend.forget_workspace(ws, &audit).await? {
                swept.push((ws, found));
            }
        }
        Ok(swept)
    }

    async fn finish_deletion(
        &self,
        ws: WorkspaceId,
        region_store: &Store,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<DeletionReceipt, StoreError> {
        let receipt = self.erase_everywhere(ws, region_store).await?;
        let audit = by
            .event(now, actions::WORKSPACE_DELETED, "workspace", ws)
            .with_detail(serde_json::to_value(&receipt).map_err(|_| StoreError::Corrupt("deletion receipt"))?);
        self.backend.finish_deletion(ws, now, &audit).await?;
        Ok(receipt)
    }

    /// Every row of the workspace in its region's vault and data store and in this store, except
    /// its own row here; counts per table.
    async fn erase_everywhere(&self, ws: WorkspaceId, region_store: &Store) -> Result<DeletionReceipt, StoreError> {
        let mut receipt = region_store.erase_workspace(ws).await?;
        for (table, key) in CONTROL_TABLES {
            let name = table.trim_start_matches("control_");
            receipt.insert(format!("control.{name}"), erase_rows(&*self.backend, table, key, ws).await?);
        }
        Ok(receipt)
    }

    /// Resolves a presented key to its live row. Unknown, malformed and revoked keys are all `None`.
    pub async fn authenticate(&self, presented: &str, now: Timestamp) -> Result<Option<Authenticated>, StoreError> {
        if !chimatic_crypto::api_key::looks_like_api_key(presented) {
            return Ok(None);
        }
        let digest = ApiKeyDigest::of(presented);
        let Some(KeyOwner { key, region, frozen }) = self.backend.api_key_by_digest(&digest).await? else {
            return Ok(None);
        };
        if !key.digest.matches(&digest) || key.revoked_at.is_some() {
            return Ok(None);
        }
        let stale = key.last_used_at.is_none_or(|t| t.plus(LAST_USED_RESOLUTION) <= now);
        // A frozen workspace is completely still: not even `last_used_at` moves.
        if stale && !frozen {
            self.backend.touch_api_key(key.workspace_id, key.id, now).await?;
        }
        Ok(Some(Authenticated { key, region, frozen }))
    }

    pub async fn create_api_key(
        &self,
        ws: WorkspaceId,
        name: &str,
        scopes: Scopes,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<(ApiKeyRow, Sensitive<String>), StoreError> {
        let generated = GeneratedApiKey::generate()?;
        let row = new_key_row(ws, name, scopes, &generated, now);
        let audit = by
            .event(now, actions::API_KEY_CREATED, "api_key", row.id)
            .with_detail(serde_json::json!({ "scopes": row.scopes.to_storage() }));
        self.backend.insert_api_key(&row, &audit).await?;
        Ok((row, generated.key))
    }

    pub async fn list_api_keys(&self, ws: WorkspaceId) -> Result<Vec<ApiKeyRow>, StoreError> {
        self.backend.list_api_keys(ws).await
    }

    pub async fn revoke_api_key(
        &self,
        ws: WorkspaceId,
        id: ApiKeyId,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<(), StoreError> {
        let audit = by.event(now, actions::API_KEY_REVOKED, "api_key", id);
        if self.backend.revoke_api_key(ws, id, now, &audit).await? { Ok(()) } else { Err(StoreError::NotFound) }
    }

    pub async fn add_stats(&self, rows: &[(WorkspaceId, StatsRow)]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.backend.add_stats(rows).await
    }

    /// Counts per UTC day (`period` is the day), days without counts left out.
    pub async fn daily_stats(&self, ws: WorkspaceId, from_day: i64, to_day: i64) -> Result<Vec<StatsRow>, StoreError> {
        self.backend.daily_stats(ws, from_day, to_day).await
    }

    /// Counts per UTC hour (`period` is the hour), hours without counts left out.
    pub async fn hourly_stats(
        &self,
        ws: WorkspaceId,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<Vec<StatsRow>, StoreError> {
        self.backend.hourly_stats(ws, from_hour, to_hour).await
    }
}

/// What a workspace deletion removed: rows per store and table (`vault.secrets`,
/// `data.notifications`, `control.api_keys`, …).
pub type DeletionReceipt = std::collections::BTreeMap<String, u64>;

/// Rows per deletion batch: no write lock is held for long.
const ERASE_BATCH: u32 = 1000;

/// Deletes every row of `ws` in `table`, a batch at a time; returns how many.
pub(crate) async fn erase_rows(
    eraser: &dyn WorkspaceEraser,
    table: &'static str,
    key: &'static str,
    ws: WorkspaceId,
) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let n = eraser.delete_workspace_rows(table, key, ws, ERASE_BATCH).await?;
        total += n;
        if n < u64::from(ERASE_BATCH) {
            return Ok(total);
        }
    }
}

fn new_key_row(ws: WorkspaceId, name: &str, scopes: Scopes, generated: &GeneratedApiKey, now: Timestamp) -> ApiKeyRow {
    ApiKeyRow {
        id: ApiKeyId::generate(),
        workspace_id: ws,
        name: name.to_string(),
        scopes,
        digest: generated.digest,
        last4: generated.last4.clone(),
        created_at: now,
        last_used_at: None,
        revoked_at: None,
    }
}
