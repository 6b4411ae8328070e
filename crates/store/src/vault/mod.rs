//! The credential vault's secrets: webhook signing secrets, integration credentials,
//! subscriber keys and workspace KMS settings, each sealed under the workspace's vault DEK by
//! the aggregate that owns it. One body for both backends.

pub(crate) mod sql;

use chimatic_domain::{Timestamp, WorkspaceId};

use crate::db::{Db, args, execute_one, fetch_optional};
use crate::{PostgresBackend, SqliteBackend, StoreError};

#[async_trait::async_trait]
pub trait SecretRows: Db {
    /// Stores a secret, replacing any previous one of the same owner and kind.
    async fn put_secret(
        &self,
        ws: WorkspaceId,
        owner_id: &str,
        kind: &str,
        secret: &[u8],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.execute(&sql::PUT, args![ws, owner_id, kind, secret, now], None).await.map(|_| ())
    }

    async fn secret(&self, ws: WorkspaceId, owner_id: &str, kind: &str) -> Result<Option<Vec<u8>>, StoreError> {
        fetch_optional(self, &sql::GET, args![ws, owner_id, kind], |r| r.blob(0)).await
    }

    async fn delete_secret(&self, ws: WorkspaceId, owner_id: &str, kind: &str) -> Result<bool, StoreError> {
        execute_one(self, &sql::DELETE, args![ws, owner_id, kind], None).await
    }
}

impl SecretRows for SqliteBackend {}
impl SecretRows for PostgresBackend {}
