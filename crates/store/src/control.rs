//! [`ControlStore`]: the control plane's interface — workspaces (and so their regions), API key
//! metadata and delivery analytics. It never holds notification content, addresses or
//! credentials; those are in the workspace's region [`Store`].

use std::sync::Arc;
use std::time::Duration;

use chimatic_audit::{AuditContext, Stream, actions};
use chimatic_crypto::{ApiKeyDigest, GeneratedApiKey};
use chimatic_domain::{ApiKeyId, Plan, Region, Scopes, Sensitive, Timestamp, WorkspaceId};

use crate::backend::KeyOwner;
use crate::{ApiKeyRow, AuditLog, ControlBackend, StatsRow, Store, StoreError, WorkspaceRow};

/// `last_used_at` is written at most this often per key, so authentication is not a write.
const LAST_USED_RESOLUTION: Duration = Duration::from_secs(60);

pub struct ControlStore {
    backend: Arc<dyn ControlBackend>,
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
        };
        let audit = by.event(now, actions::WORKSPACE_CREATED, "workspace", id).with_detail(serde_json::json!({
            "region": row.region.as_str(),
            "owner_key_id": owner.id,
        }));
        self.backend.create_workspace(&row, &owner, &audit).await?;
        Ok((row, owner, generated.key))
    }

    pub async fn workspace(&self, id: WorkspaceId) -> Result<WorkspaceRow, StoreError> {
        self.backend.workspace(id).await?.ok_or(StoreError::NotFound)
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

    pub async fn stats(&self, ws: WorkspaceId, from_day: i64, to_day: i64) -> Result<Vec<StatsRow>, StoreError> {
        self.backend.stats(ws, from_day, to_day).await
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
