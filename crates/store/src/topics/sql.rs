use crate::db::sql::statements;

statements! {
    INSERT = "INSERT INTO topics (id, workspace_id, key, created_at) VALUES (?2, ?1, ?3, ?4) \
              ON CONFLICT (workspace_id, key) DO NOTHING";
    BY_ID = "SELECT id, key, created_at FROM topics WHERE workspace_id = ?1 AND id = ?2";
    BY_KEY = "SELECT id, key, created_at FROM topics WHERE workspace_id = ?1 AND key = ?2";
    LIST = "SELECT id, key, created_at FROM topics WHERE workspace_id = ?1 ORDER BY key";
    // Only this workspace's subscribers can join: the SELECT is the tenant check. A list is a
    // JSON array on SQLite (json_each) and an array on PostgreSQL (ANY).
    ADD_MEMBERS = sqlite "INSERT INTO topic_subscribers (workspace_id, topic_id, subscriber_id, added_at) \
                          SELECT ?1, ?2, id, ?4 FROM subscribers \
                          WHERE workspace_id = ?1 AND id IN (SELECT value FROM json_each(?3)) ON CONFLICT DO NOTHING",
                  postgres "INSERT INTO topic_subscribers (workspace_id, topic_id, subscriber_id, added_at) \
                          SELECT ?1, ?2, id, ?4 FROM subscribers \
                          WHERE workspace_id = ?1 AND id = ANY(?3) ON CONFLICT DO NOTHING";
    REMOVE_MEMBERS = sqlite "DELETE FROM topic_subscribers WHERE workspace_id = ?1 AND topic_id = ?2 \
                             AND subscriber_id IN (SELECT value FROM json_each(?3))",
                     postgres "DELETE FROM topic_subscribers WHERE workspace_id = ?1 AND topic_id = ?2 \
                             AND subscriber_id = ANY(?3)";
    MEMBERS = "SELECT subscriber_id FROM topic_subscribers WHERE workspace_id = ?1 AND topic_id = ?2 \
               AND subscriber_id > ?3 ORDER BY subscriber_id LIMIT ?4";
    SIZE = "SELECT COUNT(*) FROM topic_subscribers WHERE workspace_id = ?1 AND topic_id = ?2";
}
