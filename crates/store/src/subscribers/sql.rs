use crate::db::sql::statements;

statements! {
    INSERT = "INSERT INTO subscribers (id, workspace_id, external_key, external_id, subscriber_key, attributes, \
              created_at, updated_at) VALUES (?2, ?1, ?3, ?4, ?5, ?6, ?7, ?8) \
              ON CONFLICT (workspace_id, external_key) DO NOTHING";
    BY_ID = "SELECT id, external_key, external_id, subscriber_key, attributes, created_at, updated_at, preferences \
             FROM subscribers WHERE workspace_id = ?1 AND id = ?2";
    BY_EXTERNAL_KEY = "SELECT id, external_key, external_id, subscriber_key, attributes, created_at, updated_at, \
                       preferences FROM subscribers WHERE workspace_id = ?1 AND external_key = ?2";
    // A list binds as a JSON array on SQLite (json_each) and an array on PostgreSQL (ANY).
    BY_IDS = sqlite "SELECT id, external_key, external_id, subscriber_key, attributes, created_at, updated_at, \
                     preferences FROM subscribers WHERE workspace_id = ?1 AND id IN (SELECT value FROM json_each(?2))",
             postgres "SELECT id, external_key, external_id, subscriber_key, attributes, created_at, updated_at, \
                     preferences FROM subscribers WHERE workspace_id = ?1 AND id = ANY(?2)";
    LIST = "SELECT id, external_key, external_id, subscriber_key, attributes, created_at, updated_at, preferences \
            FROM subscribers WHERE workspace_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
    SET_ATTRIBUTES = "UPDATE subscribers SET attributes = ?3, updated_at = ?4 WHERE workspace_id = ?1 AND id = ?2";
    SET_PREFERENCES = "UPDATE subscribers SET preferences = ?3, updated_at = ?4 WHERE workspace_id = ?1 AND id = ?2";
    DELETE = "DELETE FROM subscribers WHERE workspace_id = ?1 AND id = ?2";

    INSERT_CHANNEL = "INSERT INTO subscriber_channels (id, workspace_id, subscriber_id, kind, address, created_at, \
                      signing_secrets) VALUES (?2, ?1, ?3, ?4, ?5, ?6, ?7)";
    CHANNELS = "SELECT id, subscriber_id, kind, address, created_at, signing_secrets, disabled_at \
                FROM subscriber_channels WHERE workspace_id = ?1 AND subscriber_id = ?2 ORDER BY id";
    CHANNELS_OF = sqlite "SELECT id, subscriber_id, kind, address, created_at, signing_secrets, disabled_at \
                          FROM subscriber_channels WHERE workspace_id = ?1 \
                          AND subscriber_id IN (SELECT value FROM json_each(?2)) ORDER BY subscriber_id, id",
                  postgres "SELECT id, subscriber_id, kind, address, created_at, signing_secrets, disabled_at \
                          FROM subscriber_channels WHERE workspace_id = ?1 AND subscriber_id = ANY(?2) \
                          ORDER BY subscriber_id, id";
    // A rotation replaces the secrets it read (?5), so of two at once one fails rather than
    // one of the new secrets being lost.
    SET_SIGNING = "UPDATE subscriber_channels SET signing_secrets = ?4 \
                   WHERE workspace_id = ?1 AND subscriber_id = ?2 AND id = ?3 AND signing_secrets = ?5";
    SET_DISABLED = "UPDATE subscriber_channels SET disabled_at = ?4 \
                    WHERE workspace_id = ?1 AND subscriber_id = ?2 AND id = ?3 AND kind = 'webhook'";
    DELETE_CHANNEL = "DELETE FROM subscriber_channels WHERE workspace_id = ?1 AND subscriber_id = ?2 AND id = ?3";

    // Erasure. SQLite's single writer lets it delete attempts first, by subquery; PostgreSQL
    // deletes in the order a finishing delivery locks rows (queue, message, attempts), so the
    // two wait for each other instead of deadlocking, and takes the erased ids back for the
    // attempts so that one committed meanwhile is deleted too.
    ERASE_ATTEMPTS = sqlite "DELETE FROM attempts WHERE workspace_id = ?1 AND notification_id IN \
                             (SELECT id FROM notifications WHERE workspace_id = ?1 AND subscriber_id = ?2)";
    ERASE_ATTEMPTS_OF = postgres "DELETE FROM attempts WHERE workspace_id = ?1 AND notification_id = ANY(?2)";
    ERASE_QUEUE = "DELETE FROM delivery_queue WHERE notification_id IN \
                   (SELECT id FROM notifications WHERE workspace_id = ?1 AND subscriber_id = ?2)";
    ERASE_MESSAGES = sqlite "DELETE FROM notifications WHERE workspace_id = ?1 AND subscriber_id = ?2",
                     postgres "DELETE FROM notifications WHERE workspace_id = ?1 AND subscriber_id = ?2 RETURNING id";
    ERASE_CHANNELS = "DELETE FROM subscriber_channels WHERE workspace_id = ?1 AND subscriber_id = ?2";
    ERASE_MEMBERSHIPS = "DELETE FROM topic_subscribers WHERE workspace_id = ?1 AND subscriber_id = ?2";
}
