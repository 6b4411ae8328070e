use crate::db::sql::statements;

statements! {
    INSERT = "INSERT INTO workflows (id, workspace_id, key, definition, created_at, updated_at) \
              VALUES (?2, ?1, ?3, ?4, ?5, ?6) ON CONFLICT (workspace_id, key) DO NOTHING";
    BY_ID = "SELECT id, key, definition, created_at, updated_at FROM workflows WHERE workspace_id = ?1 AND id = ?2";
    BY_KEY = "SELECT id, key, definition, created_at, updated_at FROM workflows WHERE workspace_id = ?1 AND key = ?2";
    LIST = "SELECT id, key, definition, created_at, updated_at FROM workflows WHERE workspace_id = ?1 ORDER BY key";
    UPDATE = "UPDATE workflows SET definition = ?3, updated_at = ?4 WHERE workspace_id = ?1 AND id = ?2";
    DELETE = "DELETE FROM workflows WHERE workspace_id = ?1 AND id = ?2";
}
