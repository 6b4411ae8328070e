//! The `workflows` table: the same statements on both backends.

use chimatic_domain::{Timestamp, WorkflowId, WorkspaceId};

use super::sql;
use crate::db::{Columns, Db, args, execute_one, fetch_all, fetch_optional};
use crate::{PostgresBackend, SqliteBackend, StoreError};

#[derive(Clone)]
pub struct WorkflowRow {
    pub id: WorkflowId,
    pub key: String,
    /// Ciphertext of the definition.
    pub definition: Vec<u8>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A row of `id, key, definition, created_at, updated_at`.
fn workflow(r: &dyn Columns) -> Result<WorkflowRow, StoreError> {
    Ok(WorkflowRow {
        id: r.parsed(0, "workflow id")?,
        key: r.text(1)?,
        definition: r.blob(2)?,
        created_at: r.at(3)?,
        updated_at: r.at(4)?,
    })
}

#[async_trait::async_trait]
pub trait WorkflowRows: Db {
    /// `false` if the workspace has a workflow for that key already.
    async fn insert_workflow(&self, ws: WorkspaceId, row: &WorkflowRow) -> Result<bool, StoreError> {
        let args = args![ws, row.id, &row.key, &row.definition, row.created_at, row.updated_at];
        execute_one(self, &sql::INSERT, args, None).await
    }

    async fn workflow(&self, ws: WorkspaceId, id: WorkflowId) -> Result<Option<WorkflowRow>, StoreError> {
        fetch_optional(self, &sql::BY_ID, args![ws, id], workflow).await
    }

    async fn workflow_by_key(&self, ws: WorkspaceId, key: &str) -> Result<Option<WorkflowRow>, StoreError> {
        fetch_optional(self, &sql::BY_KEY, args![ws, key], workflow).await
    }

    async fn list_workflows(&self, ws: WorkspaceId) -> Result<Vec<WorkflowRow>, StoreError> {
        fetch_all(self, &sql::LIST, args![ws], workflow).await
    }

    /// Replaces the definition (the key stays).
    async fn update_workflow(&self, ws: WorkspaceId, row: &WorkflowRow) -> Result<bool, StoreError> {
        execute_one(self, &sql::UPDATE, args![ws, row.id, &row.definition, row.updated_at], None).await
    }

    async fn delete_workflow(&self, ws: WorkspaceId, id: WorkflowId) -> Result<bool, StoreError> {
        execute_one(self, &sql::DELETE, args![ws, id], None).await
    }
}

impl WorkflowRows for SqliteBackend {}
impl WorkflowRows for PostgresBackend {}
