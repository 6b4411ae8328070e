//! A console user's TOTP secret is a credential, so it is not kept on the control plane: it is
//! sealed in the primary region's credential vault under the deployment's own vault DEK (that
//! of the system workspace, made on first use), bound to the user's id.

use chimatic_crypto::Aad;
use chimatic_domain::{Sensitive, Timestamp, UserId, WorkspaceId};

use crate::keys::KeyDomain;
use crate::{Store, StoreError};

/// The deployment's own rows in a region (never a tenant's): the audit chain's system workspace.
fn deployment() -> WorkspaceId {
    chimatic_audit::system_workspace()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserSecret {
    /// Generated at enrolment, until the user confirms it with a first code.
    PendingTotp,
    Totp,
}

impl UserSecret {
    fn kind(self) -> &'static str {
        match self {
            UserSecret::PendingTotp => "console_totp_pending",
            UserSecret::Totp => "console_totp",
        }
    }
}

impl Store {
    async fn ensure_deployment_vault_key(&self, now: Timestamp) -> Result<(), StoreError> {
        if self.vault.vault_key(deployment(), None).await?.is_some() {
            return Ok(());
        }
        let (row, dek) = self.keyring.new_dek(KeyDomain::Vault, deployment(), 1).await?;
        if self.vault.insert_vault_key(deployment(), row, now).await.is_ok() {
            self.keyring.remember(KeyDomain::Vault, deployment(), dek, true);
        }
        // Another node may have made it first: either way there is one now.
        self.vault.vault_key(deployment(), None).await?.map(|_| ()).ok_or(StoreError::NotFound)
    }

    fn user_secret_aad(user: &str) -> Aad<'_> {
        Aad { workspace: deployment(), table: "secrets", column: "secret", row: user }
    }

    pub async fn put_user_secret(
        &self,
        user: UserId,
        kind: UserSecret,
        secret: &Sensitive<Vec<u8>>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.ensure_deployment_vault_key(now).await?;
        let id = user.to_string();
        let sealed = self.seal(KeyDomain::Vault, Self::user_secret_aad(&id), secret.expose()).await?;
        self.vault.put_secret(deployment(), &id, kind.kind(), &sealed, now).await
    }

    pub async fn user_secret(&self, user: UserId, kind: UserSecret) -> Result<Option<Sensitive<Vec<u8>>>, StoreError> {
        let id = user.to_string();
        let Some(sealed) = self.vault.secret(deployment(), &id, kind.kind()).await? else {
            return Ok(None);
        };
        Ok(Some(Sensitive::new(self.open(KeyDomain::Vault, Self::user_secret_aad(&id), &sealed).await?)))
    }

    pub async fn delete_user_secret(&self, user: UserId, kind: UserSecret) -> Result<bool, StoreError> {
        self.vault.delete_secret(deployment(), &user.to_string(), kind.kind()).await
    }
}
