//! Workspaces that bring their own key (BYOK): a customer-managed key in an AWS KMS-compatible
//! service wraps the workspace's notification-data DEKs. Its settings and credentials live in the
//! workspace's vault (under the deployment's KEK, so they stay readable while the customer's key
//! is revoked). Revoking the key makes the workspace's data unreadable (`KeyUnavailable`) once
//! cached DEKs expire; restoring it brings everything back.

use std::sync::Arc;

use chimatic_crypto::kek::WrapContext;
use chimatic_crypto::{Aad, CryptoError, Dek, KekProvider};
use chimatic_domain::{Timestamp, WorkspaceId};
use chimatic_keys::{AwsKmsConfig, AwsKmsKek};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::Store;
use crate::keys::KeyDomain;
use crate::{StoreError, WrappedKeyRow};

const KMS_KIND: &str = "workspace_kms";
/// The `kek_id` prefix of DEKs wrapped by a workspace's own AWS KMS key.
const AWS_KMS_PREFIX: &str = "aws-kms:";

/// Where a workspace's own key is and how to reach it.
#[derive(Clone, Serialize, Deserialize)]
pub struct WorkspaceKms {
    /// `https://kms.<region>.amazonaws.com` or a compatible service.
    pub endpoint: String,
    pub region: String,
    /// Key id or ARN.
    pub key_id: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<String>,
}

impl std::fmt::Debug for WorkspaceKms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WorkspaceKms({}, [redacted])", self.key_id)
    }
}

fn kek_of_config(config: &WorkspaceKms) -> Result<Arc<dyn KekProvider>, StoreError> {
    let endpoint = config.endpoint.parse().map_err(|_| StoreError::Invalid("the KMS endpoint is not a URL"))?;
    let mut settings = AwsKmsConfig::new(
        endpoint,
        &config.region,
        &config.key_id,
        &config.access_key_id,
        SecretString::from(config.secret_access_key.as_str()),
    );
    settings.session_token = config.session_token.as_deref().map(SecretString::from);
    let kek = AwsKmsKek::new(settings).map_err(|_| StoreError::Invalid("the KMS endpoint is not a usable URL"))?;
    Ok(Arc::new(kek))
}

impl Store {
    /// Whether the workspace brought its own key (its KMS settings are in the vault).
    pub async fn has_own_key(&self, ws: WorkspaceId) -> Result<bool, StoreError> {
        Ok(self.vault.secret(ws, &ws.to_string(), KMS_KIND).await?.is_some())
    }

    fn kms_aad(ws: WorkspaceId, ws_text: &str) -> Aad<'_> {
        Aad { workspace: ws, table: "secrets", column: "secret", row: ws_text }
    }

    /// Learns whether the workspace has its own key (once per node, then cached).
    pub(crate) async fn load_workspace_kek(&self, ws: WorkspaceId) -> Result<(), StoreError> {
        if self.keyring.workspace_kek(ws).is_some() {
            return Ok(());
        }
        let ws_text = ws.to_string();
        let kek = match self.vault.secret(ws, &ws_text, KMS_KIND).await? {
            Some(sealed) => {
                // The vault's DEKs are always under the deployment's KEK: unwrapped directly.
                let version = chimatic_crypto::aead::ciphertext_dek_version(&sealed)?;
                let row = self.vault.vault_key(ws, Some(version)).await?.ok_or(StoreError::Corrupt("vault DEK"))?;
                let dek = self.keyring.unwrap(KeyDomain::Vault, ws, &row).await?;
                let plain = dek.decrypt(&Self::kms_aad(ws, &ws_text), &sealed)?;
                let config: WorkspaceKms =
                    serde_json::from_slice(&plain).map_err(|_| StoreError::Corrupt("workspace KMS settings"))?;
                Some(kek_of_config(&config)?)
            }
            None => None,
        };
        self.keyring.set_workspace_kek(ws, kek);
        Ok(())
    }

    /// Unwraps a stored DEK with whichever KEK wrapped it. A DEK under a workspace key this node
    /// does not know yet (switched on another node) makes it look the key up again.
    pub(crate) async fn unwrap_row(
        &self,
        domain: KeyDomain,
        ws: WorkspaceId,
        row: &WrappedKeyRow,
    ) -> Result<Arc<Dek>, StoreError> {
        if domain == KeyDomain::Data {
            self.load_workspace_kek(ws).await?;
        }
        match self.keyring.unwrap(domain, ws, row).await {
            Err(CryptoError::Unwrap) if domain == KeyDomain::Data && row.kek_id.starts_with(AWS_KMS_PREFIX) => {
                self.keyring.forget_workspace_kek(ws);
                self.load_workspace_kek(ws).await?;
                Ok(self.keyring.unwrap(domain, ws, row).await?)
            }
            other => Ok(other?),
        }
    }

    /// Switches the workspace to its own KMS key, online: the key is tried first (a wrap and an
    /// unwrap; refused with `Invalid` if either fails), then every notification-data DEK version
    /// is re-wrapped under it. Returns the key's `kek_id`.
    pub async fn use_workspace_kms(
        &self,
        ws: WorkspaceId,
        config: WorkspaceKms,
        now: Timestamp,
        by: &chimatic_audit::AuditContext,
    ) -> Result<String, StoreError> {
        let kek = kek_of_config(&config)?;
        let ws_text = ws.to_string();
        let refused = || {
            StoreError::Invalid(
                "the KMS key could not be used with these settings: check the endpoint, region, key id and credentials",
            )
        };
        let probe = Dek::generate_material()?;
        let ctx = WrapContext { store: "data", workspace: &ws_text, dek_version: 0 };
        let wrapped = kek.wrap(&probe, &ctx).await.map_err(|_| refused())?;
        let back = kek.unwrap(&wrapped, &ctx).await.map_err(|_| refused())?;
        if back.as_ref() != probe.as_ref() {
            return Err(refused());
        }
        self.load_workspace_kek(ws).await?;
        let previous = self.keyring.workspace_kek(ws).flatten();
        let plain = serde_json::to_vec(&config).map_err(|_| StoreError::Corrupt("workspace KMS settings"))?;
        let sealed = self.seal(KeyDomain::Vault, Self::kms_aad(ws, &ws_text), &plain).await?;
        self.vault.put_secret(ws, &ws_text, KMS_KIND, &sealed, now).await?;
        self.keyring.set_workspace_kek(ws, Some(kek.clone()));
        let latest = self.data.data_key(ws, None).await?.ok_or(StoreError::NotFound)?.version;
        for version in 1..=latest {
            let row = self.data.data_key(ws, Some(version)).await?.ok_or(StoreError::Corrupt("missing DEK version"))?;
            if row.kek_id == kek.kek_id() {
                continue;
            }
            let moved = self.keyring.rewrap_to(KeyDomain::Data, ws, &row, previous.as_ref(), &kek).await?;
            if !self.data.rewrap_data_key(ws, &row.kek_id, &moved).await? {
                return Err(StoreError::Conflict("the workspace's keys changed concurrently; retry"));
            }
        }
        // Cached before the switch, the DEKs would outlive a revocation of the new key.
        self.keyring.evict(ws);
        // After the switch (it spans the vault and the data store, so no one transaction holds
        // both); a failure here is reported, and the switch is idempotent to retry.
        let event = by
            .event(now, chimatic_audit::actions::WORKSPACE_KMS_CHANGED, "workspace", ws)
            .with_detail(serde_json::json!({ "kek_id": kek.kek_id() }));
        self.audit.record(ws, event).await?;
        Ok(kek.kek_id().to_string())
    }
}
