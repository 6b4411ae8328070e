//! The key tables: wrapped DEKs (one table per store, the same shape) and when each KEK was
//! first used. One body for both backends.

use chimatic_audit::AuditEvent;
use chimatic_domain::{Timestamp, WorkspaceId};

use super::sql;
use crate::db::{Audited, Columns, Db, Sql, Step, args, execute_one, fetch_all, fetch_optional};
use crate::{PostgresBackend, SqliteBackend, StoreError};

#[derive(Clone)]
pub struct WrappedKeyRow {
    pub version: u32,
    pub kek_id: String,
    pub wrapped: Vec<u8>,
}

/// One key table's statements.
struct KeyTable {
    insert: &'static Sql,
    version: &'static Sql,
    latest: &'static Sql,
    not_wrapped_by: &'static Sql,
    rewrap: &'static Sql,
    per_kek: &'static Sql,
}

static DATA_KEYS: KeyTable = KeyTable {
    insert: &sql::DATA_INSERT,
    version: &sql::DATA_VERSION,
    latest: &sql::DATA_LATEST,
    not_wrapped_by: &sql::DATA_NOT_WRAPPED_BY,
    rewrap: &sql::DATA_REWRAP,
    per_kek: &sql::DATA_PER_KEK,
};

static VAULT_KEYS: KeyTable = KeyTable {
    insert: &sql::VAULT_INSERT,
    version: &sql::VAULT_VERSION,
    latest: &sql::VAULT_LATEST,
    not_wrapped_by: &sql::VAULT_NOT_WRAPPED_BY,
    rewrap: &sql::VAULT_REWRAP,
    per_kek: &sql::VAULT_PER_KEK,
};

/// A row of `version, kek_id, wrapped` (from `offset`).
fn wrapped_key_at(r: &dyn Columns, offset: usize) -> Result<WrappedKeyRow, StoreError> {
    Ok(WrappedKeyRow {
        version: r.u32(offset, "key version")?,
        kek_id: r.text(offset + 1)?,
        wrapped: r.blob(offset + 2)?,
    })
}

fn wrapped_key(r: &dyn Columns) -> Result<WrappedKeyRow, StoreError> {
    wrapped_key_at(r, 0)
}

async fn key<D: Db + ?Sized>(
    db: &D,
    table: &KeyTable,
    ws: WorkspaceId,
    version: Option<u32>,
) -> Result<Option<WrappedKeyRow>, StoreError> {
    match version {
        Some(v) => fetch_optional(db, table.version, args![ws, v], wrapped_key).await,
        None => fetch_optional(db, table.latest, args![ws], wrapped_key).await,
    }
}

async fn not_wrapped_by<D: Db + ?Sized>(
    db: &D,
    table: &KeyTable,
    kek_id: &str,
    limit: u32,
) -> Result<Vec<(WorkspaceId, WrappedKeyRow)>, StoreError> {
    fetch_all(db, table.not_wrapped_by, args![kek_id, limit], |r| {
        Ok((r.parsed(0, "workspace id")?, wrapped_key_at(r, 1)?))
    })
    .await
}

async fn rewrap<D: Db + ?Sized>(
    db: &D,
    table: &KeyTable,
    ws: WorkspaceId,
    old_kek_id: &str,
    key: &WrappedKeyRow,
) -> Result<bool, StoreError> {
    let args = args![ws, key.version, old_kek_id, &key.kek_id, &key.wrapped];
    execute_one(db, table.rewrap, args, None).await
}

async fn per_kek<D: Db + ?Sized>(db: &D, table: &KeyTable) -> Result<Vec<(String, u64)>, StoreError> {
    fetch_all(db, table.per_kek, args![], |r| Ok((r.text(0)?, r.count(1)?))).await
}

/// The notification store's DEKs.
#[async_trait::async_trait]
pub trait DataKeyRows: Db {
    /// Inserts a DEK version, with `audit` (when given) in the same transaction.
    async fn insert_data_key(
        &self,
        ws: WorkspaceId,
        key: WrappedKeyRow,
        now: Timestamp,
        audit: Option<&AuditEvent>,
    ) -> Result<(), StoreError> {
        let args = args![ws, key.version, key.kek_id, key.wrapped, now];
        let audit = audit.and_then(|event| Audited::data(ws, event));
        self.transaction(vec![Step::new(DATA_KEYS.insert, args)], audit).await.map(|_| ())
    }

    /// A DEK version, or the latest.
    async fn data_key(&self, ws: WorkspaceId, version: Option<u32>) -> Result<Option<WrappedKeyRow>, StoreError> {
        key(self, &DATA_KEYS, ws, version).await
    }

    /// Up to `limit` DEKs (of any workspace) that `kek_id` did not wrap: to re-wrap after a rotation.
    async fn data_keys_not_wrapped_by(
        &self,
        kek_id: &str,
        limit: u32,
    ) -> Result<Vec<(WorkspaceId, WrappedKeyRow)>, StoreError> {
        not_wrapped_by(self, &DATA_KEYS, kek_id, limit).await
    }

    /// Replaces a DEK's wrapping if `old_kek_id` still wraps it; `false` if another node did first.
    async fn rewrap_data_key(
        &self,
        ws: WorkspaceId,
        old_kek_id: &str,
        key: &WrappedKeyRow,
    ) -> Result<bool, StoreError> {
        rewrap(self, &DATA_KEYS, ws, old_kek_id, key).await
    }

    /// How many DEKs each KEK wraps.
    async fn data_keys_per_kek(&self) -> Result<Vec<(String, u64)>, StoreError> {
        per_kek(self, &DATA_KEYS).await
    }
}

/// The vault's DEKs, and the KEK versions it has seen.
#[async_trait::async_trait]
pub trait VaultKeyRows: Db {
    async fn insert_vault_key(&self, ws: WorkspaceId, key: WrappedKeyRow, now: Timestamp) -> Result<(), StoreError> {
        let args = args![ws, key.version, key.kek_id, key.wrapped, now];
        self.execute(VAULT_KEYS.insert, args, None).await.map(|_| ())
    }

    async fn vault_key(&self, ws: WorkspaceId, version: Option<u32>) -> Result<Option<WrappedKeyRow>, StoreError> {
        key(self, &VAULT_KEYS, ws, version).await
    }

    async fn vault_keys_not_wrapped_by(
        &self,
        kek_id: &str,
        limit: u32,
    ) -> Result<Vec<(WorkspaceId, WrappedKeyRow)>, StoreError> {
        not_wrapped_by(self, &VAULT_KEYS, kek_id, limit).await
    }

    async fn rewrap_vault_key(
        &self,
        ws: WorkspaceId,
        old_kek_id: &str,
        key: &WrappedKeyRow,
    ) -> Result<bool, StoreError> {
        rewrap(self, &VAULT_KEYS, ws, old_kek_id, key).await
    }

    async fn vault_keys_per_kek(&self) -> Result<Vec<(String, u64)>, StoreError> {
        per_kek(self, &VAULT_KEYS).await
    }

    /// When `kek_id` was first used here (recording `now` if this is the first time). The
    /// record never changes once written, so the read needs no transaction with the write.
    async fn kek_first_used(&self, kek_id: &str, now: Timestamp) -> Result<Timestamp, StoreError> {
        self.execute(&sql::KEK_FIRST_USE, args![kek_id, now], None).await?;
        fetch_optional(self, &sql::KEK_FIRST_USED, args![kek_id], |r| r.at(0))
            .await?
            .ok_or(StoreError::Corrupt("kek version"))
    }
}

impl DataKeyRows for SqliteBackend {}
impl DataKeyRows for PostgresBackend {}
impl VaultKeyRows for SqliteBackend {}
impl VaultKeyRows for PostgresBackend {}
