//! Workflows: an event's steps and templates, the definition encrypted under the workspace's DEK.

mod rows;
pub(crate) mod sql;

pub use rows::{WorkflowRow, WorkflowRows};

use chimatic_crypto::Aad;
use chimatic_domain::{Timestamp, WorkflowDefinition, WorkflowId, WorkspaceId};

use crate::keys::KeyDomain;
use crate::records::Workflow;
use crate::{Store, StoreError};

impl Store {
    async fn seal_definition(
        &self,
        ws: WorkspaceId,
        id: WorkflowId,
        definition: &WorkflowDefinition,
    ) -> Result<Vec<u8>, StoreError> {
        let id = id.to_string();
        let plain = serde_json::to_vec(definition).map_err(|_| StoreError::Corrupt("workflow definition"))?;
        self.seal(KeyDomain::Data, Aad { workspace: ws, table: "workflows", column: "definition", row: &id }, &plain)
            .await
    }

    async fn open_workflow(&self, ws: WorkspaceId, row: WorkflowRow) -> Result<Workflow, StoreError> {
        let id = row.id.to_string();
        let aad = Aad { workspace: ws, table: "workflows", column: "definition", row: &id };
        let plain = self.open(KeyDomain::Data, aad, &row.definition).await?;
        let definition = serde_json::from_slice(&plain).map_err(|_| StoreError::Corrupt("workflow definition"))?;
        Ok(Workflow { id: row.id, key: row.key, definition, created_at: row.created_at, updated_at: row.updated_at })
    }

    /// Creates the workflow for the event `key`; `Conflict` if the workspace has one already.
    pub async fn create_workflow(
        &self,
        ws: WorkspaceId,
        key: &str,
        definition: WorkflowDefinition,
        now: Timestamp,
    ) -> Result<Workflow, StoreError> {
        let id = WorkflowId::generate();
        let row = WorkflowRow {
            id,
            key: key.into(),
            definition: self.seal_definition(ws, id, &definition).await?,
            created_at: now,
            updated_at: now,
        };
        if !self.data.insert_workflow(ws, &row).await? {
            return Err(StoreError::Conflict("a workflow for this event already exists"));
        }
        Ok(Workflow { id, key: key.into(), definition, created_at: now, updated_at: now })
    }

    pub async fn workflow(&self, ws: WorkspaceId, id: WorkflowId) -> Result<Workflow, StoreError> {
        let row = self.data.workflow(ws, id).await?.ok_or(StoreError::NotFound)?;
        self.open_workflow(ws, row).await
    }

    pub async fn workflow_for_event(&self, ws: WorkspaceId, key: &str) -> Result<Option<Workflow>, StoreError> {
        match self.data.workflow_by_key(ws, key).await? {
            Some(row) => Ok(Some(self.open_workflow(ws, row).await?)),
            None => Ok(None),
        }
    }

    pub async fn list_workflows(&self, ws: WorkspaceId) -> Result<Vec<Workflow>, StoreError> {
        let mut out = Vec::new();
        for row in self.data.list_workflows(ws).await? {
            out.push(self.open_workflow(ws, row).await?);
        }
        Ok(out)
    }

    pub async fn replace_workflow(
        &self,
        ws: WorkspaceId,
        id: WorkflowId,
        definition: WorkflowDefinition,
        now: Timestamp,
    ) -> Result<Workflow, StoreError> {
        let current = self.data.workflow(ws, id).await?.ok_or(StoreError::NotFound)?;
        let row = WorkflowRow {
            id,
            key: current.key.clone(),
            definition: self.seal_definition(ws, id, &definition).await?,
            created_at: current.created_at,
            updated_at: now,
        };
        if !self.data.update_workflow(ws, &row).await? {
            return Err(StoreError::NotFound);
        }
        Ok(Workflow { id, key: current.key, definition, created_at: current.created_at, updated_at: now })
    }

    pub async fn delete_workflow(&self, ws: WorkspaceId, id: WorkflowId) -> Result<(), StoreError> {
        if self.data.delete_workflow(ws, id).await? { Ok(()) } else { Err(StoreError::NotFound) }
    }
}
