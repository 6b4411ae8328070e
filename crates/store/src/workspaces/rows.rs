//! The control plane's tables: `workspaces`, `api_keys`, `delivery_stats`. One body for both
//! backends.

use chimatic_audit::{AuditEvent, system_workspace};
use chimatic_crypto::ApiKeyDigest;
use chimatic_domain::{ApiKeyId, Plan, Region, Scopes, Timestamp, WorkspaceId};

use super::sql;
use crate::backend::stored_plan;
use crate::db::{Arg, Audited, Columns, Db, Step, args, execute_one, fetch_all, fetch_optional};
use crate::{PostgresBackend, SqliteBackend, StoreError};

#[derive(Clone)]
pub struct ApiKeyRow {
    pub id: ApiKeyId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub scopes: Scopes,
    pub digest: ApiKeyDigest,
    pub last4: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

#[derive(Clone)]
pub struct WorkspaceRow {
    pub id: WorkspaceId,
    pub name: String,
    pub region: Region,
    pub created_at: Timestamp,
    pub plan: Plan,
    /// Set while the workspace is frozen (incident isolation).
    pub frozen_at: Option<Timestamp>,
    /// The key created with the workspace: the only one that may delete it.
    pub owner_key_id: Option<ApiKeyId>,
    /// Set once its deletion has started.
    pub deleting_at: Option<Timestamp>,
    /// Days a finished notification's content is kept.
    pub payload_retention_days: u32,
}

/// The live key behind a presented digest, with what the request needs of its workspace.
pub struct KeyOwner {
    pub key: ApiKeyRow,
    pub region: Region,
    pub frozen: bool,
}

/// Delivery counts of one workspace in one period: a UTC hour (hours since the Unix epoch) as
/// counted and stored, or a UTC day (days since the epoch) when summed by day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsRow {
    pub period: i64,
    pub accepted: u64,
    pub attempts: u64,
    pub delivered: u64,
    pub failed: u64,
}

/// A row of `id, workspace_id, name, scopes, digest, last4, created_at, last_used_at, revoked_at`.
fn api_key(r: &dyn Columns) -> Result<ApiKeyRow, StoreError> {
    Ok(ApiKeyRow {
        id: r.parsed(0, "api key id")?,
        workspace_id: r.parsed(1, "workspace id")?,
        name: r.text(2)?,
        scopes: Scopes::from_storage(&r.text(3)?).map_err(|_| StoreError::Corrupt("scopes"))?,
        digest: ApiKeyDigest::from_slice(&r.blob(4)?).ok_or(StoreError::Corrupt("api key digest"))?,
        last4: r.text(5)?,
        created_at: r.at(6)?,
        last_used_at: r.opt_at(7)?,
        revoked_at: r.opt_at(8)?,
    })
}

fn insert_api_key(row: &ApiKeyRow) -> Step {
    let args = args![
        row.id,
        row.workspace_id,
        &row.name,
        row.scopes.to_storage(),
        row.digest.0.as_slice(),
        &row.last4,
        row.created_at
    ];
    Step::new(&sql::INSERT_API_KEY, args)
}

fn stored_count(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn workspace_id(r: &dyn Columns) -> Result<WorkspaceId, StoreError> {
    r.parsed(0, "workspace id")
}

#[async_trait::async_trait]
pub trait ControlRows: Db {
    async fn create_workspace(
        &self,
        row: &WorkspaceRow,
        owner_key: &ApiKeyRow,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let workspace = args![
            row.id,
            &row.name,
            row.region.as_str(),
            row.created_at,
            row.plan.name(),
            row.plan.custom_retention_days().map(i64::from),
            owner_key.id
        ];
        let steps = vec![Step::new(&sql::INSERT, workspace), insert_api_key(owner_key)];
        self.transaction(steps, Audited::control(row.id, audit)).await.map(|_| ())
    }

    /// Sets the plan (and, for enterprise, the audit retention); `false` if there is no such workspace.
    async fn set_plan(&self, ws: WorkspaceId, plan: &Plan, audit: &AuditEvent) -> Result<bool, StoreError> {
        let args = args![ws, plan.name(), plan.custom_retention_days().map(i64::from)];
        execute_one(self, &sql::SET_PLAN, args, Audited::control(ws, audit)).await
    }

    async fn workspace(&self, id: WorkspaceId) -> Result<Option<WorkspaceRow>, StoreError> {
        fetch_optional(self, &sql::BY_ID, args![id], |r| {
            Ok(WorkspaceRow {
                id: r.parsed(0, "workspace id")?,
                name: r.text(1)?,
                region: r.parsed(2, "region")?,
                created_at: r.at(3)?,
                plan: stored_plan(&r.text(4)?, r.opt_int(5)?)?,
                frozen_at: r.opt_at(6)?,
                payload_retention_days: r.u32(7, "payload retention")?,
                owner_key_id: r.opt_parsed(8, "owner key id")?,
                deleting_at: r.opt_at(9)?,
            })
        })
        .await
    }

    /// Freezes (`Some(at)`) or unfreezes (`None`) a workspace; the audit entry is written only
    /// when the state changes. `None`: no such workspace; `Some(changed)`.
    async fn set_frozen(
        &self,
        ws: WorkspaceId,
        at: Option<Timestamp>,
        audit: &AuditEvent,
    ) -> Result<Option<bool>, StoreError> {
        if execute_one(self, &sql::SET_FROZEN, args![ws, at], Audited::control(ws, audit)).await? {
            return Ok(Some(true));
        }
        Ok(fetch_optional(self, &sql::EXISTS, args![ws], |_| Ok(())).await?.map(|()| false))
    }

    /// Workspaces frozen or being deleted: nothing of theirs is delivered or purged.
    async fn frozen_workspaces(&self) -> Result<Vec<WorkspaceId>, StoreError> {
        fetch_all(self, &sql::FROZEN, args![], workspace_id).await
    }

    /// Marks a workspace as being deleted (its keys stop working); `false`: no such workspace
    /// (or only its tombstone).
    async fn start_deletion(&self, ws: WorkspaceId, now: Timestamp) -> Result<bool, StoreError> {
        execute_one(self, &sql::START_DELETION, args![ws, now], None).await
    }

    /// Workspaces of a region whose deletion has started and whose rows are not yet erased.
    async fn deletions(&self, region: &Region) -> Result<Vec<WorkspaceId>, StoreError> {
        fetch_all(self, &sql::DELETIONS, args![region.as_str()], workspace_id).await
    }

    /// Turns the workspace's row into a tombstone erased at `now` (its name goes; its other rows
    /// are gone) and records `audit` in the deployment's system chain, in one transaction;
    /// `false`: nothing to finish.
    async fn finish_deletion(&self, ws: WorkspaceId, now: Timestamp, audit: &AuditEvent) -> Result<bool, StoreError> {
        execute_one(self, &sql::FINISH_DELETION, args![ws, now], Audited::control(system_workspace(), audit)).await
    }

    /// Tombstones of a region erased at or before `cutoff`.
    async fn erased_before(&self, region: &Region, cutoff: Timestamp) -> Result<Vec<WorkspaceId>, StoreError> {
        fetch_all(self, &sql::ERASED_BEFORE, args![region.as_str(), cutoff], workspace_id).await
    }

    /// Deletes a tombstone and records `audit` in the system chain, in one transaction; `false`:
    /// no such tombstone (another node swept it).
    async fn forget_workspace(&self, ws: WorkspaceId, audit: &AuditEvent) -> Result<bool, StoreError> {
        execute_one(self, &sql::FORGET, args![ws], Audited::control(system_workspace(), audit)).await
    }

    async fn set_payload_retention(&self, ws: WorkspaceId, days: u32, audit: &AuditEvent) -> Result<bool, StoreError> {
        execute_one(self, &sql::SET_PAYLOAD_RETENTION, args![ws, days], Audited::control(ws, audit)).await
    }

    /// Each workspace of a region with its payload retention in days.
    async fn payload_retentions(&self, region: &Region) -> Result<Vec<(WorkspaceId, u32)>, StoreError> {
        fetch_all(self, &sql::PAYLOAD_RETENTIONS, args![region.as_str()], |r| {
            Ok((r.parsed(0, "workspace id")?, r.u32(1, "payload retention")?))
        })
        .await
    }

    async fn insert_api_key(&self, row: &ApiKeyRow, audit: &AuditEvent) -> Result<(), StoreError> {
        self.transaction(vec![insert_api_key(row)], Audited::control(row.workspace_id, audit)).await.map(|_| ())
    }

    /// Authentication: the one lookup that is not scoped, because it discovers the workspace
    /// (and so its region).
    async fn api_key_by_digest(&self, digest: &ApiKeyDigest) -> Result<Option<KeyOwner>, StoreError> {
        fetch_optional(self, &sql::API_KEY_BY_DIGEST, args![digest.0.as_slice()], |r| {
            Ok(KeyOwner { key: api_key(r)?, region: r.parsed(9, "region")?, frozen: r.flag(10)? })
        })
        .await
    }

    async fn list_api_keys(&self, ws: WorkspaceId) -> Result<Vec<ApiKeyRow>, StoreError> {
        fetch_all(self, &sql::LIST_API_KEYS, args![ws], api_key).await
    }

    async fn revoke_api_key(
        &self,
        ws: WorkspaceId,
        id: ApiKeyId,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        execute_one(self, &sql::REVOKE_API_KEY, args![ws, id, now], Audited::control(ws, audit)).await
    }

    async fn touch_api_key(&self, ws: WorkspaceId, id: ApiKeyId, now: Timestamp) -> Result<(), StoreError> {
        self.execute(&sql::TOUCH_API_KEY, args![ws, id, now], None).await.map(|_| ())
    }

    /// Adds the counts to the stored ones (one transaction for all rows); counts of a workspace
    /// being deleted are dropped.
    async fn add_stats(&self, rows: &[(WorkspaceId, StatsRow)]) -> Result<(), StoreError> {
        let steps = rows
            .iter()
            .map(|(ws, s)| {
                let counts = [s.accepted, s.attempts, s.delivered, s.failed].map(|c| Arg::Int(stored_count(c)));
                let mut args = args![*ws, s.period];
                args.extend(counts);
                Step::new(&sql::ADD_STATS, args)
            })
            .collect();
        self.transaction(steps, None).await.map(|_| ())
    }

    /// Days `from_day..=to_day` that have counts, oldest first.
    async fn daily_stats(&self, ws: WorkspaceId, from_day: i64, to_day: i64) -> Result<Vec<StatsRow>, StoreError> {
        fetch_all(self, &sql::DAILY_STATS, args![ws, from_day, to_day], stats_row).await
    }

    /// Hours `from_hour..=to_hour` that have counts, oldest first.
    async fn hourly_stats(&self, ws: WorkspaceId, from_hour: i64, to_hour: i64) -> Result<Vec<StatsRow>, StoreError> {
        fetch_all(self, &sql::HOURLY_STATS, args![ws, from_hour, to_hour], stats_row).await
    }
}

/// A row of `period, accepted, attempts, delivered, failed`.
fn stats_row(r: &dyn Columns) -> Result<StatsRow, StoreError> {
    Ok(StatsRow {
        period: r.int(0)?,
        accepted: r.count(1)?,
        attempts: r.count(2)?,
        delivered: r.count(3)?,
        failed: r.count(4)?,
    })
}

impl ControlRows for SqliteBackend {}
impl ControlRows for PostgresBackend {}
