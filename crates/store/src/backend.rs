//! The backend traits: ciphertext rows in, ciphertext rows out. Every tenant-owned operation
//! takes the workspace id, so a backend cannot be asked for a row without its tenant.

use chimatic_domain::{Plan, Region, WorkspaceId};

use chimatic_audit::AuditEvent;

use crate::StoreError;

/// Parses a value read back from a backend; a failure means the stored data is corrupt.
pub(crate) fn parse<T: std::str::FromStr>(text: &str, what: &'static str) -> Result<T, StoreError> {
    text.parse().map_err(|_| StoreError::Corrupt(what))
}

pub(crate) fn stored_plan(name: &str, audit_retention_days: Option<i64>) -> Result<Plan, StoreError> {
    let days = audit_retention_days.map(|d| u32::try_from(d).map_err(|_| StoreError::Corrupt("plan"))).transpose()?;
    Plan::new(name, days).map_err(|_| StoreError::Corrupt("plan"))
}

pub(crate) fn u32_of(v: i64, what: &'static str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(what))
}

/// `event` with `key: n` added to its JSON detail (a count known only inside the transaction).
pub(crate) fn with_count(mut event: AuditEvent, key: &str, n: u64) -> AuditEvent {
    let mut detail: serde_json::Value = serde_json::from_str(&event.detail).unwrap_or_else(|_| serde_json::json!({}));
    if let Some(map) = detail.as_object_mut() {
        map.insert(key.to_string(), n.into());
    }
    event.detail = detail.to_string();
    event
}

/// Removes a deleted workspace's rows, table by table, a batch at a time.
#[async_trait::async_trait]
pub trait WorkspaceEraser: Send + Sync + 'static {
    /// Deletes up to `limit` rows of `table` (one of the `*_TABLES` lists below, never input)
    /// whose `workspace_id` is `ws`; `key` names the table's primary key columns.
    async fn delete_workspace_rows(
        &self,
        table: &'static str,
        key: &'static str,
        ws: WorkspaceId,
        limit: u32,
    ) -> Result<u64, StoreError>;
}

/// A workspace's tables in a region's data store with their keys, children before parents. The
/// DEKs go first, on their own: once they are gone every ciphertext of the workspace is noise.
pub(crate) const DATA_KEY_TABLE: (&str, &str) = ("data_keys", "workspace_id, version");
pub(crate) const DATA_TABLES: &[(&str, &str)] = &[
    // Queue rows, then notifications, then attempts: a delivery finishing during the deletion
    // either committed its attempt before the notifications went (and the attempt goes next) or
    // finds no notification and records nothing.
    ("delivery_queue", "notification_id"),
    ("notifications", "id"),
    ("attempts", "id"),
    ("idempotency_keys", "workspace_id, key_digest"),
    ("fanouts", "id"),
    ("topic_subscribers", "workspace_id, topic_id, subscriber_id"),
    ("topics", "id"),
    ("subscriber_channels", "id"),
    ("subscribers", "id"),
    ("integrations", "id"),
    ("workflows", "id"),
    ("suppressions", "id"),
    ("inbound_events", "id"),
    ("channels", "id"),
    ("audit_heads", "workspace_id, seq, signed_at"),
    ("audit_log", "workspace_id, seq"),
    ("audit_chains", "workspace_id"),
];
/// The vault: the workspace's DEKs first, then its credentials.
pub(crate) const VAULT_TABLES: &[(&str, &str)] =
    &[("vault_keys", "workspace_id, version"), ("secrets", "workspace_id, owner_id, kind")];
/// The control store, before the workspace's own row.
pub(crate) const CONTROL_TABLES: &[(&str, &str)] = &[
    ("console_sessions", "digest"),
    ("sign_in_challenges", "digest"),
    ("password_resets", "token_digest"),
    ("invitations", "id"),
    ("sso_domains", "domain, workspace_id"),
    ("connect_flows", "state_digest"),
    ("memberships", "workspace_id, user_id"),
    ("api_keys", "id"),
    ("delivery_stats", "workspace_id, hour"),
    ("control_audit_heads", "workspace_id, seq, signed_at"),
    ("control_audit_log", "workspace_id, seq"),
    ("control_audit_chains", "workspace_id"),
];

/// The statement behind [`WorkspaceEraser::delete_workspace_rows`]; `$1` is the workspace, `$2`
/// the batch size (SQLite reads `$n` as a numbered parameter too).
pub(crate) fn delete_rows_sql(table: &str, key: &str) -> String {
    format!("DELETE FROM {table} WHERE ({key}) IN (SELECT {key} FROM {table} WHERE workspace_id = $1 LIMIT $2)")
}

#[async_trait::async_trait]
pub trait DataBackend:
    crate::notifications::NotificationRows
    + crate::keys::DataKeyRows
    + crate::channels::ChannelRows
    + crate::subscribers::SubscriberRows
    + crate::feedback::FeedbackRows
    + crate::audit::AuditBackend
    + WorkspaceEraser
    + crate::workflows::WorkflowRows
    + crate::topics::TopicRows
    + crate::integrations::IntegrationRows
{
    async fn ping(&self) -> Result<(), StoreError>;

    /// Records `region` as this database's region on first use; refuses a database that
    /// already belongs to another region.
    async fn bind_region(&self, region: &Region) -> Result<(), StoreError>;
}

#[async_trait::async_trait]
pub trait VaultBackend: WorkspaceEraser + crate::keys::VaultKeyRows + crate::vault::SecretRows {
    async fn ping(&self) -> Result<(), StoreError>;
    async fn bind_region(&self, region: &Region) -> Result<(), StoreError>;
}

/// The control plane's store: workspaces, API key metadata and delivery analytics. Nothing in
/// it is notification content, an address or a credential.
#[async_trait::async_trait]
pub trait ControlBackend:
    crate::audit::AuditBackend
    + WorkspaceEraser
    + crate::workspaces::ControlRows
    + crate::users::UserRows
    + crate::users::InvitationRows
    + crate::users::SecondFactorRows
    + crate::users::IdentityRows
    + crate::integrations::ConnectFlowRows
{
    async fn ping(&self) -> Result<(), StoreError>;
}
