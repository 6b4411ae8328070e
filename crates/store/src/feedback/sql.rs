use crate::db::sql::statements;

statements! {
    INSERT_SUPPRESSION = "INSERT INTO suppressions (id, workspace_id, kind, address_key, address, reason, \
                          integration_id, created_at) VALUES (?2, ?1, ?3, ?4, ?5, ?6, ?7, ?8) \
                          ON CONFLICT (workspace_id, address_key) DO NOTHING";
    // SQLite asks once per key (in-process point reads are cheaper than an IN list per batch);
    // PostgreSQL asks for the whole batch in one round trip.
    IS_SUPPRESSED = sqlite "SELECT 1 FROM suppressions WHERE workspace_id = ?1 AND address_key = ?2";
    SUPPRESSED_KEYS = postgres "SELECT address_key FROM suppressions WHERE workspace_id = ?1 AND address_key = ANY(?2)";
    LIST_SUPPRESSIONS = "SELECT id, kind, address_key, address, reason, integration_id, created_at FROM suppressions \
                         WHERE workspace_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
    DELETE_SUPPRESSION = "DELETE FROM suppressions WHERE workspace_id = ?1 AND id = ?2";
    INSERT_INBOUND = "INSERT INTO inbound_events (id, workspace_id, integration_id, provider_event_key, kind, outcome, \
                      detail, received_at) VALUES (?2, ?1, ?3, ?4, ?5, ?6, ?7, ?8) \
                      ON CONFLICT (workspace_id, integration_id, provider_event_key) DO NOTHING";
    LIST_INBOUND = "SELECT id, integration_id, provider_event_key, kind, outcome, detail, received_at \
                    FROM inbound_events WHERE workspace_id = ?1 AND integration_id = ?2 AND id < ?3 \
                    ORDER BY id DESC LIMIT ?4";
    // Nodes purging at once take different rows on PostgreSQL; SQLite's writer is exclusive.
    #[unscoped = "retention job: purges old inbound webhooks of every workspace"]
    PURGE_INBOUND = sqlite "DELETE FROM inbound_events WHERE id IN (SELECT id FROM inbound_events \
                            WHERE received_at < ?1 ORDER BY received_at LIMIT ?2)",
                    postgres "DELETE FROM inbound_events WHERE id IN (SELECT id FROM inbound_events \
                            WHERE received_at < ?1 ORDER BY received_at LIMIT ?2 FOR UPDATE SKIP LOCKED)";
}
