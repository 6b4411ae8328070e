//! The `integrations` table: one body for both backends (the claim's statement differs, see
//! `sql.rs`).

use chimatic_audit::AuditEvent;
use chimatic_domain::{IntegrationId, Timestamp, WorkspaceId};

use super::sql;
use crate::db::{Audited, Columns, Db, args, execute_one, fetch_all, fetch_optional, write_all};
use crate::{PostgresBackend, SqliteBackend, StoreError};

#[derive(Clone)]
pub struct IntegrationRow {
    pub id: IntegrationId,
    pub kind: String,
    pub name: String,
    /// Ciphertext of the settings.
    pub settings: Vec<u8>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_check: Option<CheckRecord>,
}

/// The result of an integration's last health check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckRecord {
    pub at: Timestamp,
    /// `None` while a check that started at `at` has not finished.
    pub healthy: Option<bool>,
    pub error_class: Option<String>,
}

/// A row of `id, kind, name, settings, created_at, updated_at, last_check_at,
/// last_check_healthy, last_check_error`.
fn integration(r: &dyn Columns) -> Result<IntegrationRow, StoreError> {
    let last_check = match r.opt_at(6)? {
        Some(at) => Some(CheckRecord { at, healthy: r.opt_int(7)?.map(|h| h != 0), error_class: r.opt_text(8)? }),
        None => None,
    };
    Ok(IntegrationRow {
        id: r.parsed(0, "integration id")?,
        kind: r.text(1)?,
        name: r.text(2)?,
        settings: r.blob(3)?,
        created_at: r.at(4)?,
        updated_at: r.at(5)?,
        last_check,
    })
}

#[async_trait::async_trait]
pub trait IntegrationRows: Db {
    async fn insert_integration(
        &self,
        ws: WorkspaceId,
        row: &IntegrationRow,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let args = args![ws, row.id, &row.kind, &row.name, &row.settings, row.created_at, row.updated_at];
        self.execute(&sql::INSERT, args, Audited::data(ws, audit)).await.map(|_| ())
    }

    async fn integration(&self, ws: WorkspaceId, id: IntegrationId) -> Result<Option<IntegrationRow>, StoreError> {
        fetch_optional(self, &sql::BY_ID, args![ws, id], integration).await
    }

    async fn list_integrations(&self, ws: WorkspaceId) -> Result<Vec<IntegrationRow>, StoreError> {
        fetch_all(self, &sql::LIST, args![ws], integration).await
    }

    /// Replaces name, settings and `updated_at`; `false` if there is no such integration.
    async fn update_integration(
        &self,
        ws: WorkspaceId,
        row: &IntegrationRow,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let args = args![ws, row.id, &row.name, &row.settings, row.updated_at];
        execute_one(self, &sql::UPDATE, args, Audited::data(ws, audit)).await
    }

    async fn delete_integration(
        &self,
        ws: WorkspaceId,
        id: IntegrationId,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        execute_one(self, &sql::DELETE, args![ws, id], Audited::data(ws, audit)).await
    }

    /// Records a finished health check; `false` if there is no such integration.
    async fn record_integration_check(
        &self,
        ws: WorkspaceId,
        id: IntegrationId,
        at: Timestamp,
        healthy: bool,
        error_class: Option<&str>,
    ) -> Result<bool, StoreError> {
        let args = args![ws, id, at, i64::from(healthy), error_class];
        execute_one(self, &sql::RECORD_CHECK, args, None).await
    }

    /// Claims up to `limit` integrations (of every workspace) whose last check started before
    /// `due_before`, by marking their check as started at `now`: several nodes never check the
    /// same integration at once. Kinds without a provider endpoint (`webhook`) are skipped.
    async fn claim_integration_checks(
        &self,
        due_before: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<(WorkspaceId, IntegrationId)>, StoreError> {
        write_all(self, &sql::CLAIM_CHECKS, args![due_before, now, limit], |r| {
            Ok((r.parsed(0, "workspace id")?, r.parsed(1, "integration id")?))
        })
        .await
    }

    /// The workspace an integration belongs to (discovery for inbound provider webhooks).
    async fn integration_workspace(&self, id: IntegrationId) -> Result<Option<WorkspaceId>, StoreError> {
        fetch_optional(self, &sql::WORKSPACE_OF, args![id], |r| r.parsed(0, "workspace id")).await
    }
}

impl IntegrationRows for SqliteBackend {}
impl IntegrationRows for PostgresBackend {}
