//! Envelope encryption: each workspace's DEKs (one set for the notification store, one for the
//! vault) wrapped by the deployment's KEK or the workspace's own KMS key, the in-memory keyring
//! that caches them, rotation of both, and sealing and opening of every encrypted column.

mod byok;
mod keyring;
mod rows;
pub(crate) mod sql;

pub use byok::WorkspaceKms;
pub(crate) use keyring::KeyDomain;
pub use keyring::{DEK_CACHE_TTL, KekSet, Keyring};
pub use rows::{DataKeyRows, VaultKeyRows, WrappedKeyRow};

use std::sync::Arc;

use chimatic_audit::{AuditContext, actions};
use chimatic_crypto::{Aad, Dek, aead::ciphertext_dek_version};
use chimatic_domain::{Timestamp, WorkspaceId};

use crate::{Store, StoreError};

impl Store {
    /// The id of the current KEK, which wraps new DEKs.
    pub fn kek_id(&self) -> String {
        self.keyring.kek_id()
    }

    /// Makes `keks` this store's KEKs (a rotation was discovered): new DEKs are wrapped by its
    /// current KEK at once, and [`Store::rewrap_keys`] moves the others over.
    pub fn set_keks(&self, keks: crate::KekSet) {
        self.keyring.set_keks(keks);
    }

    /// Re-wraps up to `batch` DEKs of each key table under the current KEK (after a rotation);
    /// returns how many moved. Safe on several nodes at once: each row changes only if it is
    /// still wrapped as read. Reads work throughout, since each row records its KEK.
    pub async fn rewrap_keys(&self, batch: u32) -> Result<u64, StoreError> {
        let current = self.keyring.kek_id();
        let mut moved = 0;
        for (ws, row) in self.data.data_keys_not_wrapped_by(&current, batch).await? {
            // A workspace's own key is never swapped for the deployment's.
            self.load_workspace_kek(ws).await?;
            if let Some(new) = self.keyring.rewrapped(KeyDomain::Data, ws, &row).await?
                && self.data.rewrap_data_key(ws, &row.kek_id, &new).await?
            {
                moved += 1;
            }
        }
        for (ws, row) in self.vault.vault_keys_not_wrapped_by(&current, batch).await? {
            if let Some(new) = self.keyring.rewrapped(KeyDomain::Vault, ws, &row).await?
                && self.vault.rewrap_vault_key(ws, &row.kek_id, &new).await?
            {
                moved += 1;
            }
        }
        Ok(moved)
    }

    /// Since when the current KEK has been current (as first recorded in this region's vault).
    pub async fn kek_current_since(&self, now: Timestamp) -> Result<Timestamp, StoreError> {
        self.vault.kek_first_used(&self.keyring.kek_id(), now).await
    }

    /// How many DEKs of the notification store and of the vault each KEK wraps.
    pub async fn keys_per_kek(&self) -> Result<(Vec<(String, u64)>, Vec<(String, u64)>), StoreError> {
        Ok((self.data.data_keys_per_kek().await?, self.vault.vault_keys_per_kek().await?))
    }

    pub(crate) async fn write_key(&self, domain: KeyDomain, ws: WorkspaceId) -> Result<Arc<Dek>, StoreError> {
        if let Some(d) = self.keyring.cached_current(domain, ws) {
            return Ok(d);
        }
        let row = match domain {
            KeyDomain::Data => self.data.data_key(ws, None).await?,
            KeyDomain::Vault => self.vault.vault_key(ws, None).await?,
        }
        .ok_or(StoreError::NotFound)?;
        let dek = self.unwrap_row(domain, ws, &row).await?;
        self.keyring.remember(domain, ws, dek.clone(), true);
        Ok(dek)
    }

    async fn read_key(&self, domain: KeyDomain, ws: WorkspaceId, ciphertext: &[u8]) -> Result<Arc<Dek>, StoreError> {
        self.key_version(domain, ws, ciphertext_dek_version(ciphertext)?).await
    }

    async fn key_version(&self, domain: KeyDomain, ws: WorkspaceId, version: u32) -> Result<Arc<Dek>, StoreError> {
        if let Some(d) = self.keyring.cached_version(domain, ws, version) {
            return Ok(d);
        }
        let row = match domain {
            KeyDomain::Data => self.data.data_key(ws, Some(version)).await?,
            KeyDomain::Vault => self.vault.vault_key(ws, Some(version)).await?,
        }
        .ok_or(StoreError::Crypto(chimatic_crypto::CryptoError::Integrity))?;
        let dek = self.unwrap_row(domain, ws, &row).await?;
        self.keyring.remember(domain, ws, dek.clone(), false);
        Ok(dek)
    }

    /// The key of the workspace's keyed digests (external ids, idempotency keys, suppressed
    /// addresses, provider event ids, subscriber-token MACs): derived from its first DEK, so
    /// lookups keep matching across DEK rotations.
    pub(crate) async fn index_key(&self, ws: WorkspaceId) -> Result<Arc<Dek>, StoreError> {
        self.key_version(KeyDomain::Data, ws, 1).await
    }

    /// Makes a new DEK version current for the workspace's notification data and its vault:
    /// new writes use it (on every node within a minute), data written before stays readable
    /// under the version its ciphertext names. Returns the new data and vault versions.
    pub async fn rotate_dek(
        &self,
        ws: WorkspaceId,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<(u32, u32), StoreError> {
        self.load_workspace_kek(ws).await?;
        let data_now = self.data.data_key(ws, None).await?.ok_or(StoreError::NotFound)?.version;
        let (row, dek) = self.keyring.new_dek(KeyDomain::Data, ws, data_now + 1).await?;
        let audit = by
            .event(now, actions::DEK_ROTATED, "workspace", ws)
            .with_detail(serde_json::json!({ "data_dek_version": data_now + 1 }));
        self.data
            .insert_data_key(ws, row, now, Some(&audit))
            .await
            .map_err(|_| StoreError::Conflict("the DEK was rotated concurrently"))?;
        self.keyring.remember(KeyDomain::Data, ws, dek, true);
        let vault_now = self.vault.vault_key(ws, None).await?.ok_or(StoreError::NotFound)?.version;
        let (row, dek) = self.keyring.new_dek(KeyDomain::Vault, ws, vault_now + 1).await?;
        self.vault
            .insert_vault_key(ws, row, now)
            .await
            .map_err(|_| StoreError::Conflict("the DEK was rotated concurrently"))?;
        self.keyring.remember(KeyDomain::Vault, ws, dek, true);
        Ok((data_now + 1, vault_now + 1))
    }

    pub(crate) async fn seal(&self, domain: KeyDomain, aad: Aad<'_>, plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let dek = self.write_key(domain, aad.workspace).await?;
        Ok(dek.encrypt(&aad, plaintext)?)
    }

    pub(crate) async fn open(&self, domain: KeyDomain, aad: Aad<'_>, ciphertext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let dek = self.read_key(domain, aad.workspace, ciphertext).await?;
        let plain = dek.decrypt(&aad, ciphertext)?;
        Ok(plain.to_vec())
    }

    /// Creates a workspace's keys in this region: its data DEK and its vault DEK. The control
    /// plane records the workspace only after this succeeds, so a workspace never exists
    /// without its keys.
    pub async fn provision_workspace(&self, ws: WorkspaceId, now: Timestamp) -> Result<(), StoreError> {
        let (vault_row, vault_dek) = self.keyring.new_dek(KeyDomain::Vault, ws, 1).await?;
        self.vault.insert_vault_key(ws, vault_row, now).await?;
        let (data_row, data_dek) = self.keyring.new_dek(KeyDomain::Data, ws, 1).await?;
        self.data.insert_data_key(ws, data_row, now, None).await?;
        self.keyring.remember(KeyDomain::Vault, ws, vault_dek, true);
        self.keyring.remember(KeyDomain::Data, ws, data_dek, true);
        Ok(())
    }
}
