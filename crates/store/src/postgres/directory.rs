//! The directory's tables on PostgreSQL: subscribers, their channels, provider integrations.

use chimatic_domain::{IntegrationId, SubscriberChannelId, SubscriberId, Timestamp, WorkflowId, WorkspaceId};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PostgresBackend;
use crate::StoreError;
use crate::backend::*;

const SUBSCRIBER_COLUMNS: &str =
    "id, external_key, external_id, subscriber_key, attributes, created_at, updated_at, preferences";

fn subscriber_row(r: &PgRow) -> Result<SubscriberRow, StoreError> {
    let external_key: Vec<u8> = r.try_get("external_key")?;
    Ok(SubscriberRow {
        id: parse(r.try_get("id")?, "subscriber id")?,
        external_key: external_key.try_into().map_err(|_| StoreError::Corrupt("subscriber external key"))?,
        external_id: r.try_get("external_id")?,
        subscriber_key: r.try_get("subscriber_key")?,
        attributes: r.try_get("attributes")?,
        preferences: r.try_get("preferences")?,
        created_at: Timestamp(r.try_get("created_at")?),
        updated_at: Timestamp(r.try_get("updated_at")?),
    })
}

fn channel_row(r: &PgRow) -> Result<SubscriberChannelRow, StoreError> {
    Ok(SubscriberChannelRow {
        id: parse(r.try_get("id")?, "subscriber channel id")?,
        subscriber_id: parse(r.try_get("subscriber_id")?, "subscriber id")?,
        kind: r.try_get("kind")?,
        address: r.try_get("address")?,
        created_at: Timestamp(r.try_get("created_at")?),
    })
}

const INTEGRATION_COLUMNS: &str =
    "id, kind, name, settings, created_at, updated_at, last_check_at, last_check_healthy, last_check_error";

fn integration_row(r: &PgRow) -> Result<IntegrationRow, StoreError> {
    let check_at: Option<i64> = r.try_get("last_check_at")?;
    let healthy: Option<i64> = r.try_get("last_check_healthy")?;
    Ok(IntegrationRow {
        id: parse(r.try_get("id")?, "integration id")?,
        kind: r.try_get("kind")?,
        name: r.try_get("name")?,
        settings: r.try_get("settings")?,
        created_at: Timestamp(r.try_get("created_at")?),
        updated_at: Timestamp(r.try_get("updated_at")?),
        last_check: match check_at {
            Some(at) => Some(CheckRecord {
                at: Timestamp(at),
                healthy: healthy.map(|h| h != 0),
                error_class: r.try_get("last_check_error")?,
            }),
            None => None,
        },
    })
}

fn workflow_row(r: &PgRow) -> Result<WorkflowRow, StoreError> {
    Ok(WorkflowRow {
        id: parse(r.try_get("id")?, "workflow id")?,
        key: r.try_get("key")?,
        definition: r.try_get("definition")?,
        created_at: Timestamp(r.try_get("created_at")?),
        updated_at: Timestamp(r.try_get("updated_at")?),
    })
}

#[async_trait::async_trait]
impl DirectoryBackend for PostgresBackend {
    async fn insert_subscriber(&self, ws: WorkspaceId, row: &SubscriberRow) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "INSERT INTO subscribers (id, workspace_id, external_key, external_id, subscriber_key, attributes, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (workspace_id, external_key) DO NOTHING",
        )
        .bind(row.id.to_string())
        .bind(ws.to_string())
        .bind(row.external_key.as_slice())
        .bind(&row.external_id)
        .bind(&row.subscriber_key)
        .bind(&row.attributes)
        .bind(row.created_at.0)
        .bind(row.updated_at.0)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn subscriber(&self, ws: WorkspaceId, id: SubscriberId) -> Result<Option<SubscriberRow>, StoreError> {
        let sql = format!("SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE workspace_id = $1 AND id = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ws.to_string())
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(subscriber_row).transpose()
    }

    async fn subscriber_by_external_key(
        &self,
        ws: WorkspaceId,
        key: &[u8; 32],
    ) -> Result<Option<SubscriberRow>, StoreError> {
        let sql = format!("SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE workspace_id = $1 AND external_key = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ws.to_string())
            .bind(key.as_slice())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(subscriber_row).transpose()
    }

    async fn update_subscriber_attributes(
        &self,
        ws: WorkspaceId,
        id: SubscriberId,
        attributes: &[u8],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let n =
            sqlx::query("UPDATE subscribers SET attributes = $3, updated_at = $4 WHERE workspace_id = $1 AND id = $2")
                .bind(ws.to_string())
                .bind(id.to_string())
                .bind(attributes)
                .bind(now.0)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(n == 1)
    }

    async fn update_subscriber_preferences(
        &self,
        ws: WorkspaceId,
        id: SubscriberId,
        preferences: &[u8],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let n =
            sqlx::query("UPDATE subscribers SET preferences = $3, updated_at = $4 WHERE workspace_id = $1 AND id = $2")
                .bind(ws.to_string())
                .bind(id.to_string())
                .bind(preferences)
                .bind(now.0)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(n == 1)
    }

    async fn list_subscribers(
        &self,
        ws: WorkspaceId,
        after: Option<SubscriberId>,
        limit: u32,
    ) -> Result<Vec<SubscriberRow>, StoreError> {
        let sql = format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ws.to_string())
            .bind(after.map(|a| a.to_string()).unwrap_or_default())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(subscriber_row).collect()
    }

    async fn insert_subscriber_channel(&self, ws: WorkspaceId, row: &SubscriberChannelRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO subscriber_channels (id, workspace_id, subscriber_id, kind, address, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(row.id.to_string())
        .bind(ws.to_string())
        .bind(row.subscriber_id.to_string())
        .bind(&row.kind)
        .bind(&row.address)
        .bind(row.created_at.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn subscriber_channels(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
    ) -> Result<Vec<SubscriberChannelRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, subscriber_id, kind, address, created_at FROM subscriber_channels \
             WHERE workspace_id = $1 AND subscriber_id = $2 ORDER BY id",
        )
        .bind(ws.to_string())
        .bind(subscriber.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(channel_row).collect()
    }

    async fn delete_subscriber_channel(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        id: SubscriberChannelId,
    ) -> Result<bool, StoreError> {
        let n =
            sqlx::query("DELETE FROM subscriber_channels WHERE workspace_id = $1 AND subscriber_id = $2 AND id = $3")
                .bind(ws.to_string())
                .bind(subscriber.to_string())
                .bind(id.to_string())
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(n == 1)
    }

    async fn insert_integration(&self, ws: WorkspaceId, row: &IntegrationRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO integrations (id, workspace_id, kind, name, settings, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(row.id.to_string())
        .bind(ws.to_string())
        .bind(&row.kind)
        .bind(&row.name)
        .bind(&row.settings)
        .bind(row.created_at.0)
        .bind(row.updated_at.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn integration(&self, ws: WorkspaceId, id: IntegrationId) -> Result<Option<IntegrationRow>, StoreError> {
        let sql = format!("SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE workspace_id = $1 AND id = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ws.to_string())
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(integration_row).transpose()
    }

    async fn list_integrations(&self, ws: WorkspaceId) -> Result<Vec<IntegrationRow>, StoreError> {
        let sql = format!("SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE workspace_id = $1 ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ws.to_string()).fetch_all(&self.pool).await?;
        rows.iter().map(integration_row).collect()
    }

    async fn update_integration(&self, ws: WorkspaceId, row: &IntegrationRow) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE integrations SET name = $3, settings = $4, updated_at = $5 WHERE workspace_id = $1 AND id = $2",
        )
        .bind(ws.to_string())
        .bind(row.id.to_string())
        .bind(&row.name)
        .bind(&row.settings)
        .bind(row.updated_at.0)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn delete_integration(&self, ws: WorkspaceId, id: IntegrationId) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM integrations WHERE workspace_id = $1 AND id = $2")
            .bind(ws.to_string())
            .bind(id.to_string())
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    async fn record_integration_check(
        &self,
        ws: WorkspaceId,
        id: IntegrationId,
        at: Timestamp,
        healthy: bool,
        error_class: Option<&str>,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE integrations SET last_check_at = $3, last_check_healthy = $4, last_check_error = $5 \
             WHERE workspace_id = $1 AND id = $2",
        )
        .bind(ws.to_string())
        .bind(id.to_string())
        .bind(at.0)
        .bind(i64::from(healthy))
        .bind(error_class)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn claim_integration_checks(
        &self,
        due_before: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<(WorkspaceId, IntegrationId)>, StoreError> {
        let rows = sqlx::query(
            "UPDATE integrations SET last_check_at = $2, last_check_healthy = NULL, last_check_error = NULL \
             WHERE id IN (SELECT id FROM integrations WHERE kind <> 'webhook' \
               AND (last_check_at IS NULL OR last_check_at < $1) ORDER BY last_check_at NULLS FIRST LIMIT $3 \
               FOR UPDATE SKIP LOCKED) \
             RETURNING workspace_id, id",
        )
        .bind(due_before.0)
        .bind(now.0)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((parse(r.try_get("workspace_id")?, "workspace id")?, parse(r.try_get("id")?, "integration id")?))
            })
            .collect()
    }

    async fn insert_workflow(&self, ws: WorkspaceId, row: &WorkflowRow) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "INSERT INTO workflows (id, workspace_id, key, definition, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (workspace_id, key) DO NOTHING",
        )
        .bind(row.id.to_string())
        .bind(ws.to_string())
        .bind(&row.key)
        .bind(&row.definition)
        .bind(row.created_at.0)
        .bind(row.updated_at.0)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn workflow(&self, ws: WorkspaceId, id: WorkflowId) -> Result<Option<WorkflowRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, key, definition, created_at, updated_at FROM workflows WHERE workspace_id = $1 AND id = $2",
        )
        .bind(ws.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(workflow_row).transpose()
    }

    async fn workflow_by_key(&self, ws: WorkspaceId, key: &str) -> Result<Option<WorkflowRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, key, definition, created_at, updated_at FROM workflows WHERE workspace_id = $1 AND key = $2",
        )
        .bind(ws.to_string())
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(workflow_row).transpose()
    }

    async fn list_workflows(&self, ws: WorkspaceId) -> Result<Vec<WorkflowRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, key, definition, created_at, updated_at FROM workflows WHERE workspace_id = $1 ORDER BY key",
        )
        .bind(ws.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(workflow_row).collect()
    }

    async fn update_workflow(&self, ws: WorkspaceId, row: &WorkflowRow) -> Result<bool, StoreError> {
        let n =
            sqlx::query("UPDATE workflows SET definition = $3, updated_at = $4 WHERE workspace_id = $1 AND id = $2")
                .bind(ws.to_string())
                .bind(row.id.to_string())
                .bind(&row.definition)
                .bind(row.updated_at.0)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(n == 1)
    }

    async fn delete_workflow(&self, ws: WorkspaceId, id: WorkflowId) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM workflows WHERE workspace_id = $1 AND id = $2")
            .bind(ws.to_string())
            .bind(id.to_string())
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }
}
