//! The two key tables (`data_keys` in the notification store, `vault_keys` in the vault) share
//! a shape, so each statement is written once per table.

use crate::db::sql::statements;

statements! {
    DATA_INSERT = "INSERT INTO data_keys (workspace_id, version, kek_id, wrapped, created_at) \
                   VALUES (?1, ?2, ?3, ?4, ?5)";
    DATA_VERSION = "SELECT version, kek_id, wrapped FROM data_keys WHERE workspace_id = ?1 AND version = ?2";
    DATA_LATEST = "SELECT version, kek_id, wrapped FROM data_keys WHERE workspace_id = ?1 \
                   ORDER BY version DESC LIMIT 1";
    // A DEK under a workspace's own KMS key stays there: rotating the platform KEK leaves it.
    #[unscoped = "KEK rotation: re-wraps the DEKs of every workspace"]
    DATA_NOT_WRAPPED_BY = "SELECT workspace_id, version, kek_id, wrapped FROM data_keys \
                           WHERE kek_id <> ?1 AND kek_id NOT LIKE 'aws-kms:%' LIMIT ?2";
    DATA_REWRAP = "UPDATE data_keys SET kek_id = ?4, wrapped = ?5 \
                   WHERE workspace_id = ?1 AND version = ?2 AND kek_id = ?3";
    #[unscoped = "key status: counts over every workspace, no tenant data"]
    DATA_PER_KEK = "SELECT kek_id, COUNT(*) FROM data_keys GROUP BY kek_id ORDER BY kek_id";

    VAULT_INSERT = "INSERT INTO vault_keys (workspace_id, version, kek_id, wrapped, created_at) \
                    VALUES (?1, ?2, ?3, ?4, ?5)";
    VAULT_VERSION = "SELECT version, kek_id, wrapped FROM vault_keys WHERE workspace_id = ?1 AND version = ?2";
    VAULT_LATEST = "SELECT version, kek_id, wrapped FROM vault_keys WHERE workspace_id = ?1 \
                    ORDER BY version DESC LIMIT 1";
    #[unscoped = "KEK rotation: re-wraps the DEKs of every workspace"]
    VAULT_NOT_WRAPPED_BY = "SELECT workspace_id, version, kek_id, wrapped FROM vault_keys WHERE kek_id <> ?1 LIMIT ?2";
    VAULT_REWRAP = "UPDATE vault_keys SET kek_id = ?4, wrapped = ?5 \
                    WHERE workspace_id = ?1 AND version = ?2 AND kek_id = ?3";
    #[unscoped = "key status: counts over every workspace, no tenant data"]
    VAULT_PER_KEK = "SELECT kek_id, COUNT(*) FROM vault_keys GROUP BY kek_id ORDER BY kek_id";

    KEK_FIRST_USE = "INSERT INTO kek_versions (kek_id, first_used_at) VALUES (?1, ?2) ON CONFLICT (kek_id) DO NOTHING";
    KEK_FIRST_USED = "SELECT first_used_at FROM kek_versions WHERE kek_id = ?1";
}
