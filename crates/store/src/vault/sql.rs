use crate::db::sql::statements;

statements! {
    PUT = "INSERT INTO secrets (workspace_id, owner_id, kind, secret, created_at) VALUES (?1, ?2, ?3, ?4, ?5) \
           ON CONFLICT (workspace_id, owner_id, kind) DO UPDATE SET secret = excluded.secret, \
           created_at = excluded.created_at";
    GET = "SELECT secret FROM secrets WHERE workspace_id = ?1 AND owner_id = ?2 AND kind = ?3";
    GET_MANY = sqlite "SELECT owner_id, secret FROM secrets WHERE workspace_id = ?1 AND kind = ?2 \
                       AND owner_id IN (SELECT value FROM json_each(?3))",
               postgres "SELECT owner_id, secret FROM secrets WHERE workspace_id = ?1 AND kind = ?2 \
                       AND owner_id = ANY(?3)";
    DELETE = "DELETE FROM secrets WHERE workspace_id = ?1 AND owner_id = ?2 AND kind = ?3";
}
