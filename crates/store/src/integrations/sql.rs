use crate::db::sql::statements;

statements! {
    INSERT = "INSERT INTO integrations (id, workspace_id, kind, name, settings, created_at, updated_at) \
              VALUES (?2, ?1, ?3, ?4, ?5, ?6, ?7)";
    BY_ID = "SELECT id, kind, name, settings, created_at, updated_at, last_check_at, last_check_healthy, \
             last_check_error FROM integrations WHERE workspace_id = ?1 AND id = ?2";
    LIST = "SELECT id, kind, name, settings, created_at, updated_at, last_check_at, last_check_healthy, \
            last_check_error FROM integrations WHERE workspace_id = ?1 ORDER BY id";
    UPDATE = "UPDATE integrations SET name = ?3, settings = ?4, updated_at = ?5 WHERE workspace_id = ?1 AND id = ?2";
    DELETE = "DELETE FROM integrations WHERE workspace_id = ?1 AND id = ?2";
    RECORD_CHECK = "UPDATE integrations SET last_check_at = ?3, last_check_healthy = ?4, last_check_error = ?5 \
                    WHERE workspace_id = ?1 AND id = ?2";
    // Nodes checking at once each take different rows on PostgreSQL (SKIP LOCKED); SQLite has
    // one writer, and sorts NULL first by itself.
    #[unscoped = "background job: claims due checks of every workspace"]
    CLAIM_CHECKS = sqlite "UPDATE integrations SET last_check_at = ?2, last_check_healthy = NULL, last_check_error = NULL \
                           WHERE id IN (SELECT id FROM integrations WHERE kind <> 'webhook' \
                             AND (last_check_at IS NULL OR last_check_at < ?1) ORDER BY last_check_at LIMIT ?3) \
                           RETURNING workspace_id, id",
                   postgres "UPDATE integrations SET last_check_at = ?2, last_check_healthy = NULL, last_check_error = NULL \
                           WHERE id IN (SELECT id FROM integrations WHERE kind <> 'webhook' \
                             AND (last_check_at IS NULL OR last_check_at < ?1) ORDER BY last_check_at NULLS FIRST \
                             LIMIT ?3 FOR UPDATE SKIP LOCKED) \
                           RETURNING workspace_id, id";
    #[unscoped = "discovery: an inbound provider webhook names only the integration"]
    WORKSPACE_OF = "SELECT workspace_id FROM integrations WHERE id = ?1";

    // Connecting a provider account over OAuth: flows between the redirect and the callback.
    INSERT_CONNECT_FLOW = "INSERT INTO connect_flows (state_digest, workspace_id, bound_to, provider, redirect_uri, \
                           pkce_verifier, name, send_as, expires_at) VALUES (?2, ?1, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
    #[unscoped = "maintenance: flows abandoned in any workspace expire"]
    FORGET_CONNECT_FLOWS = "DELETE FROM connect_flows WHERE expires_at <= ?1";
    // Used once: taken (deleted) by the session or key that started it, before it expires.
    TAKE_CONNECT_FLOW = "DELETE FROM connect_flows WHERE workspace_id = ?1 AND state_digest = ?2 AND bound_to = ?3 \
                         AND expires_at > ?4 \
                         RETURNING provider, bound_to, redirect_uri, pkce_verifier, name, send_as, expires_at";
}
