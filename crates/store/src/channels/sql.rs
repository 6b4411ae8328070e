use crate::db::sql::statements;

statements! {
    INSERT = "INSERT INTO channels (id, workspace_id, kind, destination, created_at) VALUES (?2, ?1, ?3, ?4, ?5)";
    BY_ID = "SELECT id, kind, destination, created_at, deactivated_at, purge_at FROM channels \
             WHERE workspace_id = ?1 AND id = ?2";
    // SQLite reads a delivery's channel by itself; PostgreSQL joins it to the notification.
    ACTIVE_BY_ID = sqlite "SELECT id, kind, destination, created_at, deactivated_at, purge_at FROM channels \
                           WHERE workspace_id = ?1 AND id = ?2 AND deactivated_at IS NULL";
    LIST = "SELECT id, kind, destination, created_at, deactivated_at, purge_at FROM channels \
            WHERE workspace_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
    DEACTIVATE = "UPDATE channels SET deactivated_at = ?3, purge_at = ?4 \
                  WHERE workspace_id = ?1 AND id = ?2 AND deactivated_at IS NULL";
    // Taking queued notifications out: SQLite's single writer can cancel then dequeue; on
    // PostgreSQL the queue rows are locked first, as a claim would, so no worker takes one
    // meanwhile.
    CANCEL_QUEUED = sqlite "UPDATE notifications SET status = 'cancelled', updated_at = ?3 \
                            WHERE workspace_id = ?1 AND channel_id = ?2 \
                              AND id IN (SELECT notification_id FROM delivery_queue WHERE workspace_id = ?1)";
    DEQUEUE_CANCELLED = sqlite "DELETE FROM delivery_queue WHERE workspace_id = ?1 AND notification_id IN ( \
                                SELECT id FROM notifications WHERE workspace_id = ?1 AND channel_id = ?2 \
                                AND status = 'cancelled')";
    LOCK_QUEUED = postgres "SELECT q.notification_id FROM delivery_queue q JOIN notifications n \
                            ON n.id = q.notification_id WHERE q.workspace_id = ?1 AND n.channel_id = ?2 \
                            FOR UPDATE OF q";
    #[unscoped = "the ids are the workspace's, locked by LOCK_QUEUED in the same transaction"]
    DEQUEUE = postgres "DELETE FROM delivery_queue WHERE notification_id = ANY(?1)";
    CANCEL = postgres "UPDATE notifications SET status = 'cancelled', updated_at = ?3 \
                       WHERE workspace_id = ?1 AND id = ANY(?2)";
    REACTIVATE = "UPDATE channels SET deactivated_at = NULL, purge_at = NULL \
                  WHERE workspace_id = ?1 AND id = ?2 AND deactivated_at IS NOT NULL AND purge_at > ?3 \
                  AND purge_started_at IS NULL";
    START_PURGE = "UPDATE channels SET purge_started_at = COALESCE(purge_started_at, ?3) \
                   WHERE workspace_id = ?1 AND id = ?2 AND deactivated_at IS NOT NULL AND purge_at <= ?3";
    #[unscoped = "purge job: finds due channels of every workspace"]
    TO_PURGE = "SELECT workspace_id, id FROM channels WHERE purge_at <= ?1 ORDER BY purge_at LIMIT ?2";
    // PostgreSQL locks the channel row, so a reactivation waits for the batch or wins before it.
    PURGE_DUE = sqlite "SELECT purge_at FROM channels WHERE workspace_id = ?1 AND id = ?2",
                postgres "SELECT purge_at FROM channels WHERE workspace_id = ?1 AND id = ?2 FOR UPDATE";
    PURGE_IDS = "SELECT id FROM notifications WHERE workspace_id = ?1 AND channel_id = ?2 LIMIT ?3";
    // The batch's ids, bound as one list (json_each on SQLite, ANY on PostgreSQL).
    PURGE_ATTEMPTS = sqlite "DELETE FROM attempts WHERE workspace_id = ?1 \
                             AND notification_id IN (SELECT value FROM json_each(?2))",
                     postgres "DELETE FROM attempts WHERE workspace_id = ?1 AND notification_id = ANY(?2)";
    PURGE_IDEMPOTENCY = sqlite "DELETE FROM idempotency_keys WHERE workspace_id = ?1 \
                                AND notification_id IN (SELECT value FROM json_each(?2))",
                        postgres "DELETE FROM idempotency_keys WHERE workspace_id = ?1 AND notification_id = ANY(?2)";
    #[unscoped = "the ids are the workspace's, read by PURGE_IDS in the same transaction"]
    PURGE_QUEUE = sqlite "DELETE FROM delivery_queue WHERE notification_id IN (SELECT value FROM json_each(?1))",
                  postgres "DELETE FROM delivery_queue WHERE notification_id = ANY(?1)";
    PURGE_NOTIFICATIONS = sqlite "DELETE FROM notifications WHERE workspace_id = ?1 \
                                  AND id IN (SELECT value FROM json_each(?2))",
                          postgres "DELETE FROM notifications WHERE workspace_id = ?1 AND id = ANY(?2)";
    DELETE_PURGED = "DELETE FROM channels WHERE workspace_id = ?1 AND id = ?2 AND purge_at <= ?3 \
                     AND NOT EXISTS (SELECT 1 FROM notifications WHERE channel_id = ?2)";
}
