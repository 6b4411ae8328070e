//! The control plane's statements. `workspaces` is keyed by `id` (it is the tenant), so its
//! statements filter by `id`; the tenant guard checks the tables that carry `workspace_id`.

use crate::db::sql::statements;

statements! {
    INSERT = "INSERT INTO workspaces (id, name, region, created_at, plan, audit_retention_days, owner_key_id) \
              VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
    BY_ID = "SELECT id, name, region, created_at, plan, audit_retention_days, frozen_at, payload_retention_days, \
             owner_key_id, deleting_at FROM workspaces WHERE id = ?1";
    SET_PLAN = "UPDATE workspaces SET plan = ?2, audit_retention_days = ?3 WHERE id = ?1";
    // Changes only a workspace whose frozen state differs from the one asked for.
    SET_FROZEN = "UPDATE workspaces SET frozen_at = ?2 WHERE id = ?1 AND (frozen_at IS NULL) <> (CAST(?2 AS BIGINT) IS NULL)";
    EXISTS = "SELECT 1 FROM workspaces WHERE id = ?1";
    SET_PAYLOAD_RETENTION = "UPDATE workspaces SET payload_retention_days = ?2 WHERE id = ?1";
    PAYLOAD_RETENTIONS = "SELECT id, payload_retention_days FROM workspaces WHERE region = ?1";
    START_DELETION = "UPDATE workspaces SET deleting_at = COALESCE(deleting_at, ?2) WHERE id = ?1 AND erased_at IS NULL";
    DELETIONS = "SELECT id FROM workspaces WHERE region = ?1 AND deleting_at IS NOT NULL AND erased_at IS NULL";
    FINISH_DELETION = "UPDATE workspaces SET erased_at = ?2, name = '' \
                       WHERE id = ?1 AND deleting_at IS NOT NULL AND erased_at IS NULL";
    ERASED_BEFORE = "SELECT id FROM workspaces WHERE region = ?1 AND erased_at <= ?2";
    FORGET = "DELETE FROM workspaces WHERE id = ?1 AND erased_at IS NOT NULL";
    FROZEN = "SELECT id FROM workspaces WHERE frozen_at IS NOT NULL OR deleting_at IS NOT NULL";

    INSERT_API_KEY = "INSERT INTO api_keys (id, workspace_id, name, scopes, digest, last4, created_at) \
                      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
    #[unscoped = "authentication: the key's digest discovers its workspace (and so its region)"]
    API_KEY_BY_DIGEST = "SELECT k.id, k.workspace_id, k.name, k.scopes, k.digest, k.last4, k.created_at, \
                         k.last_used_at, k.revoked_at, w.region, w.frozen_at IS NOT NULL \
                         FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id \
                         WHERE k.digest = ?1 AND w.deleting_at IS NULL";
    LIST_API_KEYS = "SELECT id, workspace_id, name, scopes, digest, last4, created_at, last_used_at, revoked_at \
                     FROM api_keys WHERE workspace_id = ?1 ORDER BY id";
    REVOKE_API_KEY = "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?3) WHERE workspace_id = ?1 AND id = ?2";
    TOUCH_API_KEY = "UPDATE api_keys SET last_used_at = ?3 WHERE workspace_id = ?1 AND id = ?2";

    #[unscoped = "inserts the named workspace's own row; its SELECT only checks the workspace is not being deleted"]
    ADD_STATS = "INSERT INTO delivery_stats AS d (workspace_id, hour, accepted, attempts, delivered, failed) \
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6 \
                 WHERE EXISTS (SELECT 1 FROM workspaces WHERE id = ?1 AND deleting_at IS NULL) \
                 ON CONFLICT (workspace_id, hour) DO UPDATE SET \
                 accepted = d.accepted + excluded.accepted, attempts = d.attempts + excluded.attempts, \
                 delivered = d.delivered + excluded.delivered, failed = d.failed + excluded.failed";
    // Sums of the hours of days ?2..=?3 (PostgreSQL's SUM of BIGINT is NUMERIC, hence the casts).
    DAILY_STATS = "SELECT hour / 24, CAST(SUM(accepted) AS BIGINT), CAST(SUM(attempts) AS BIGINT), \
                   CAST(SUM(delivered) AS BIGINT), CAST(SUM(failed) AS BIGINT) FROM delivery_stats \
                   WHERE workspace_id = ?1 AND hour BETWEEN ?2 * 24 AND ?3 * 24 + 23 GROUP BY hour / 24 ORDER BY 1";
    HOURLY_STATS = "SELECT hour, accepted, attempts, delivered, failed FROM delivery_stats \
                    WHERE workspace_id = ?1 AND hour BETWEEN ?2 AND ?3 ORDER BY hour";
}
