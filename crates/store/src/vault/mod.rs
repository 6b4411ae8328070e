//! The credential vault's secrets: webhook signing secrets, integration credentials,
//! subscriber keys and workspace KMS settings, each sealed under the workspace's vault DEK by
//! the aggregate that owns it. One body for both backends.

pub(crate) mod sql;

use chimatic_domain::{Timestamp, WorkspaceId};

use crate::db::{Arg, Db, args, execute_one, fetch_all, fetch_optional};
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

    /// The secrets of one kind of these owners, as `(owner_id, secret)`; missing ones are left out.
    async fn secrets(
        &self,
        ws: WorkspaceId,
        owner_ids: Vec<String>,
        kind: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let owners = Arg::TextList(owner_ids);
        fetch_all(self, &sql::GET_MANY, args![ws, kind, owners], |r| Ok((r.text(0)?, r.blob(1)?))).await
    }

    async fn delete_secret(&self, ws: WorkspaceId, owner_id: &str, kind: &str) -> Result<bool, StoreError> {
        execute_one(self, &sql::DELETE, args![ws, owner_id, kind], None).await
    }
}

impl SecretRows for SqliteBackend {}
impl SecretRows for PostgresBackend {}
