//! Provider integrations: settings encrypted in the data store, credentials only in the vault,
//! and the health checks that send no user data.

mod flows;
mod rows;
pub(crate) mod sql;

pub use flows::{ConnectFlowRow, ConnectFlowRows};
pub use rows::{CheckRecord, IntegrationRow, IntegrationRows};

use chimatic_audit::{AuditContext, actions};
use chimatic_crypto::Aad;
use chimatic_domain::{
    IntegrationCredentials, IntegrationId, IntegrationKind, IntegrationSettings, Sensitive, Timestamp, WorkspaceId,
};

use crate::keys::KeyDomain;
use crate::records::Integration;
use crate::{Store, StoreError};

const CREDENTIALS_KIND: &str = "integration_credentials";

/// What `update_integration` changes; `None` keeps the current value.
pub struct IntegrationChange<'a> {
    pub name: Option<&'a str>,
    pub settings: Option<IntegrationSettings>,
    pub credentials: Option<&'a IntegrationCredentials>,
}

impl Store {
    async fn seal_settings(
        &self,
        ws: WorkspaceId,
        id: IntegrationId,
        settings: &IntegrationSettings,
    ) -> Result<Vec<u8>, StoreError> {
        let id = id.to_string();
        let plain = serde_json::to_vec(settings).map_err(|_| StoreError::Corrupt("integration settings"))?;
        self.seal(KeyDomain::Data, Aad { workspace: ws, table: "integrations", column: "settings", row: &id }, &plain)
            .await
    }

    async fn put_credentials(
        &self,
        ws: WorkspaceId,
        id: IntegrationId,
        credentials: &IntegrationCredentials,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let id = id.to_string();
        let plain = Sensitive::new(
            serde_json::to_vec(credentials).map_err(|_| StoreError::Corrupt("integration credentials"))?,
        );
        let sealed = self
            .seal(KeyDomain::Vault, Aad { workspace: ws, table: "secrets", column: "secret", row: &id }, plain.expose())
            .await?;
        self.vault.put_secret(ws, &id, CREDENTIALS_KIND, &sealed, now).await
    }

    async fn open_integration(&self, ws: WorkspaceId, row: IntegrationRow) -> Result<Integration, StoreError> {
        let id = row.id.to_string();
        let plain = self
            .open(
                KeyDomain::Data,
                Aad { workspace: ws, table: "integrations", column: "settings", row: &id },
                &row.settings,
            )
            .await?;
        let settings: IntegrationSettings =
            serde_json::from_slice(&plain).map_err(|_| StoreError::Corrupt("integration settings"))?;
        let kind = IntegrationKind::parse(&row.kind).ok_or(StoreError::Corrupt("integration kind"))?;
        if settings.kind() != kind {
            return Err(StoreError::Corrupt("integration kind"));
        }
        Ok(Integration {
            id: row.id,
            kind,
            name: row.name,
            settings,
            created_at: row.created_at,
            updated_at: row.updated_at,
            last_check: row.last_check,
        })
    }

    /// Creates an integration: credentials to the vault first (so no integration exists without
    /// them), then its settings to the notification store.
    pub async fn create_integration(
        &self,
        ws: WorkspaceId,
        name: &str,
        settings: IntegrationSettings,
        credentials: &IntegrationCredentials,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<Integration, StoreError> {
        if settings.kind() != credentials.kind() {
            return Err(StoreError::Conflict("settings and credentials are for different kinds of integration"));
        }
        let id = IntegrationId::generate();
        self.put_credentials(ws, id, credentials, now).await?;
        let row = IntegrationRow {
            id,
            kind: settings.kind().as_str().into(),
            name: name.into(),
            settings: self.seal_settings(ws, id, &settings).await?,
            created_at: now,
            updated_at: now,
            last_check: None,
        };
        let audit = by.event(now, actions::INTEGRATION_CREATED, "integration", id).with_detail(serde_json::json!({
            "kind": row.kind,
            "connected_through": credentials.grant().map(|g| g.provider.as_str()),
        }));
        self.data.insert_integration(ws, &row, &audit).await?;
        Ok(Integration {
            id,
            kind: settings.kind(),
            name: name.into(),
            settings,
            created_at: now,
            updated_at: now,
            last_check: None,
        })
    }

    pub async fn integration(&self, ws: WorkspaceId, id: IntegrationId) -> Result<Integration, StoreError> {
        let row = self.data.integration(ws, id).await?.ok_or(StoreError::NotFound)?;
        self.open_integration(ws, row).await
    }

    pub async fn list_integrations(&self, ws: WorkspaceId) -> Result<Vec<Integration>, StoreError> {
        let mut out = Vec::new();
        for row in self.data.list_integrations(ws).await? {
            out.push(self.open_integration(ws, row).await?);
        }
        Ok(out)
    }

    /// Changes an integration's name, settings and credentials (each only if given). Its kind
    /// cannot change.
    pub async fn update_integration(
        &self,
        ws: WorkspaceId,
        id: IntegrationId,
        change: IntegrationChange<'_>,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<Integration, StoreError> {
        let IntegrationChange { name, settings, credentials } = change;
        let current = self.integration(ws, id).await?;
        let audit = by.event(now, actions::INTEGRATION_UPDATED, "integration", id).with_detail(serde_json::json!({
            "name_changed": name.is_some(),
            "settings_changed": settings.is_some(),
            "credentials_changed": credentials.is_some(),
        }));
        let kind_changes = settings.as_ref().is_some_and(|s| s.kind() != current.kind)
            || credentials.is_some_and(|c| c.kind() != current.kind);
        if kind_changes {
            return Err(StoreError::Conflict("an integration's kind cannot change; create a new one"));
        }
        if let Some(credentials) = credentials {
            self.put_credentials(ws, id, credentials, now).await?;
        }
        let name = name.map(str::to_string).unwrap_or(current.name);
        let settings = settings.unwrap_or(current.settings);
        let row = IntegrationRow {
            id,
            kind: current.kind.as_str().into(),
            name: name.clone(),
            settings: self.seal_settings(ws, id, &settings).await?,
            created_at: current.created_at,
            updated_at: now,
            last_check: current.last_check.clone(),
        };
        if !self.data.update_integration(ws, &row, &audit).await? {
            return Err(StoreError::NotFound);
        }
        Ok(Integration {
            id,
            kind: current.kind,
            name,
            settings,
            created_at: current.created_at,
            updated_at: now,
            last_check: current.last_check,
        })
    }

    /// Deletes an integration and then its credentials from the vault.
    pub async fn delete_integration(
        &self,
        ws: WorkspaceId,
        id: IntegrationId,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<(), StoreError> {
        let audit = by.event(now, actions::INTEGRATION_DELETED, "integration", id);
        if !self.data.delete_integration(ws, id, &audit).await? {
            return Err(StoreError::NotFound);
        }
        self.vault.delete_secret(ws, &id.to_string(), CREDENTIALS_KIND).await?;
        Ok(())
    }

    /// Replaces a connection's tokens after a refresh: not a change anyone made, so not audited.
    pub async fn refreshed_credentials(
        &self,
        ws: WorkspaceId,
        id: IntegrationId,
        credentials: &IntegrationCredentials,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if credentials.grant().is_none() {
            return Err(StoreError::Conflict("only a connection's tokens are refreshed"));
        }
        self.integration(ws, id).await?;
        self.put_credentials(ws, id, credentials, now).await
    }

    /// Records that a connection's token was revoked at its provider (`already`: the provider
    /// no longer knew it), before the integration is deleted.
    pub async fn record_token_revoked(
        &self,
        ws: WorkspaceId,
        id: IntegrationId,
        provider: chimatic_domain::OAuthProvider,
        already: bool,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<(), StoreError> {
        let event = by
            .event(now, actions::INTEGRATION_TOKEN_REVOKED, "integration", id)
            .with_detail(serde_json::json!({ "provider": provider.as_str(), "already_invalid": already }));
        self.audit().record(ws, event).await
    }

    /// An integration's credentials, for the provider that uses them. Never for API responses.
    pub async fn integration_credentials(
        &self,
        ws: WorkspaceId,
        id: IntegrationId,
    ) -> Result<IntegrationCredentials, StoreError> {
        let id_text = id.to_string();
        let sealed = self.vault.secret(ws, &id_text, CREDENTIALS_KIND).await?.ok_or(StoreError::NotFound)?;
        let plain = self
            .open(KeyDomain::Vault, Aad { workspace: ws, table: "secrets", column: "secret", row: &id_text }, &sealed)
            .await?;
        let plain = Sensitive::new(plain);
        serde_json::from_slice(plain.expose()).map_err(|_| StoreError::Corrupt("integration credentials"))
    }

    /// Records the result of a health check that finished at `at`.
    pub async fn record_integration_check(
        &self,
        ws: WorkspaceId,
        id: IntegrationId,
        at: Timestamp,
        healthy: bool,
        error_class: Option<&str>,
    ) -> Result<(), StoreError> {
        if self.data.record_integration_check(ws, id, at, healthy, error_class).await? {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    /// Integrations whose last check started more than `interval` ago, claimed for checking now
    /// (see [`crate::DirectoryBackend::claim_integration_checks`]).
    pub async fn claim_integration_checks(
        &self,
        now: Timestamp,
        interval: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<(WorkspaceId, IntegrationId)>, StoreError> {
        self.data.claim_integration_checks(now.minus(interval), now, limit).await
    }

    /// The workspace an integration belongs to, for an inbound webhook that names only the
    /// integration. The caller must verify the webhook with that integration's credentials.
    pub async fn integration_workspace(&self, id: IntegrationId) -> Result<Option<WorkspaceId>, StoreError> {
        self.data.integration_workspace(id).await
    }
}
