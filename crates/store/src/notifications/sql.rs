//! Notifications, their delivery queue and attempts, events' idempotency claims and topic
//! fan-outs. A notification row is read as `id, payload, status, attempt_count, created_at,
//! updated_at, read_at, archived_at`, then the eight route columns (`channel_id, kind,
//! event_id, subscriber_id, subscriber_channel_id, integration_id, fallback_integration_id,
//! failover_after`), then the queue's `due_at, lease_token`.

use crate::db::sql::statements;

/// What both PostgreSQL claims return for the jobs they claimed (`c`): the job's three columns,
/// then sql::DELIVERY's (payload, route, and the channel if it is still active).
macro_rules! claimed_with_delivery {
    () => {
        "SELECT c.notification_id, c.workspace_id, c.round_attempts, n.payload, n.channel_id, \
         n.kind, n.event_id, n.subscriber_id, n.subscriber_channel_id, n.integration_id, \
         n.fallback_integration_id, n.failover_after, \
         ch.id, ch.kind, ch.destination, ch.created_at, ch.deactivated_at, ch.purge_at \
         FROM c LEFT JOIN notifications n ON n.id = c.notification_id \
         AND n.workspace_id = c.workspace_id LEFT JOIN channels ch ON ch.id = n.channel_id \
         AND ch.workspace_id = n.workspace_id AND ch.deactivated_at IS NULL"
    };
}

statements! {
    // A direct webhook's channel must still be active when the row is written (not only when
    // the request was checked): a deactivation that committed first wins.
    INSERT = "INSERT INTO notifications (id, workspace_id, channel_id, payload, status, attempt_count, created_at, \
              updated_at, kind, event_id, subscriber_id, subscriber_channel_id, integration_id, \
              fallback_integration_id, failover_after) \
              SELECT ?1, ?2, ?3, ?4, ?11, 0, ?5, ?5, ?6, ?7, ?8, ?9, ?10, ?12, ?13 \
              WHERE CAST(?3 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM channels WHERE workspace_id = ?2 AND id = ?3 \
              AND deactivated_at IS NULL)";
    ENQUEUE = "INSERT INTO delivery_queue (notification_id, workspace_id, due_at) VALUES (?1, ?2, ?3)";
    // A group commit's notifications and their queue entries in one round trip: INSERT's
    // parameters as arrays. A row whose channel is no longer active in its workspace is left
    // out (the caller compares the ids returned), so a deactivation that committed first wins.
    #[unscoped = "a multi-row insert: every row carries its own workspace_id, and the channel must be in it"]
    INSERT_MANY = postgres "WITH r AS (SELECT * FROM UNNEST(?1::text[], ?2::text[], ?3::text[], ?4::bytea[], \
                            ?5::bigint[], ?6::text[], ?7::text[], ?8::text[], ?9::text[], ?10::text[], ?11::text[], \
                            ?12::text[], ?13::bigint[]) AS r(id, workspace_id, channel_id, payload, created_at, kind, \
                            event_id, subscriber_id, subscriber_channel_id, integration_id, status, \
                            fallback_integration_id, failover_after)), \
                            inserted AS (INSERT INTO notifications (id, workspace_id, channel_id, payload, status, \
                            attempt_count, created_at, updated_at, kind, event_id, subscriber_id, \
                            subscriber_channel_id, integration_id, fallback_integration_id, failover_after) \
                            SELECT id, workspace_id, channel_id, payload, status, 0, created_at, created_at, kind, \
                            event_id, subscriber_id, subscriber_channel_id, integration_id, fallback_integration_id, \
                            failover_after FROM r WHERE r.channel_id IS NULL OR EXISTS (SELECT 1 FROM channels c \
                            WHERE c.workspace_id = r.workspace_id AND c.id = r.channel_id AND c.deactivated_at IS NULL) \
                            RETURNING id, workspace_id, status, created_at), \
                            queued AS (INSERT INTO delivery_queue (notification_id, workspace_id, due_at) \
                            SELECT id, workspace_id, created_at FROM inserted WHERE status = 'queued') \
                            SELECT id FROM inserted";
    // Takes the key unless a claim younger than the window holds it.
    CLAIM_IDEMPOTENCY = "INSERT INTO idempotency_keys (workspace_id, key_digest, notification_id, created_at) \
                         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (workspace_id, key_digest) DO UPDATE \
                         SET notification_id = excluded.notification_id, created_at = excluded.created_at \
                         WHERE idempotency_keys.created_at < ?5 RETURNING notification_id";
    IDEMPOTENCY_HOLDER = "SELECT notification_id FROM idempotency_keys WHERE workspace_id = ?1 AND key_digest = ?2";
    #[unscoped = "retention job: purges expired idempotency claims of every workspace"]
    PURGE_IDEMPOTENCY = sqlite "DELETE FROM idempotency_keys WHERE (workspace_id, key_digest) IN ( \
                                SELECT workspace_id, key_digest FROM idempotency_keys WHERE created_at < ?1 \
                                ORDER BY created_at LIMIT ?2)",
                        postgres "DELETE FROM idempotency_keys WHERE (workspace_id, key_digest) IN ( \
                                SELECT workspace_id, key_digest FROM idempotency_keys WHERE created_at < ?1 \
                                ORDER BY created_at LIMIT ?2 FOR UPDATE SKIP LOCKED)";

    BY_ID = "SELECT n.id, CASE WHEN n.payload_removed_at IS NULL THEN n.payload END, n.status, n.attempt_count, \
             n.created_at, n.updated_at, n.read_at, n.archived_at, n.channel_id, n.kind, n.event_id, n.subscriber_id, \
             n.subscriber_channel_id, n.integration_id, n.fallback_integration_id, n.failover_after, \
             q.due_at, q.lease_token \
             FROM notifications n LEFT JOIN delivery_queue q ON q.notification_id = n.id \
             WHERE n.workspace_id = ?1 AND n.id = ?2";
    ATTEMPTS = "SELECT id, started_at, succeeded, detail FROM attempts \
                WHERE workspace_id = ?1 AND notification_id = ?2 ORDER BY started_at, id";
    // What a delivery reads: SQLite looks the channel up by itself (in-process point lookups
    // cost less than a join, which it plans poorly without statistics: ~20% less throughput
    // measured); PostgreSQL joins the active channel in the same round trip.
    DELIVERY = sqlite "SELECT n.payload, n.channel_id, n.kind, n.event_id, n.subscriber_id, n.subscriber_channel_id, \
                       n.integration_id, n.fallback_integration_id, n.failover_after \
                       FROM notifications n WHERE n.workspace_id = ?1 AND n.id = ?2",
               postgres "SELECT n.payload, n.channel_id, n.kind, n.event_id, n.subscriber_id, n.subscriber_channel_id, \
                       n.integration_id, n.fallback_integration_id, n.failover_after, \
                       c.id, c.kind, c.destination, c.created_at, c.deactivated_at, c.purge_at \
                       FROM notifications n LEFT JOIN channels c ON c.id = n.channel_id \
                       AND c.workspace_id = n.workspace_id AND c.deactivated_at IS NULL \
                       WHERE n.workspace_id = ?1 AND n.id = ?2";

    // The console's list: newest first, within the payload retention window (the partial index
    // `notifications_with_payload` serves it, so listing adds no index to the write path).
    RECENT = "SELECT n.id, n.payload, n.status, n.attempt_count, \
              n.created_at, n.updated_at, n.read_at, n.archived_at, n.channel_id, n.kind, n.event_id, n.subscriber_id, \
              n.subscriber_channel_id, n.integration_id, n.fallback_integration_id, n.failover_after, \
              q.due_at, q.lease_token \
              FROM notifications n LEFT JOIN delivery_queue q ON q.notification_id = n.id \
              WHERE n.workspace_id = ?1 AND n.payload_removed_at IS NULL AND n.created_at >= ?2 \
              AND (n.created_at < ?3 OR (n.created_at = ?3 AND n.id < ?4)) \
              AND (?5 = '' OR n.status = ?5) AND (?6 = '' OR n.kind = ?6) \
              AND (?8 = '' OR n.channel_id = ?8 OR n.subscriber_channel_id = ?8 OR n.integration_id = ?8) \
              ORDER BY n.created_at DESC, n.id DESC LIMIT ?7";
    // The workspace's queue at ?2: all rows, those due (waiting for a worker, or with a lease
    // that ran out), those leased to a worker now, and the oldest due time.
    QUEUE_DEPTH = "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN due_at <= ?2 THEN 1 ELSE 0 END), 0) AS BIGINT), \
                   CAST(COALESCE(SUM(CASE WHEN due_at > ?2 AND lease_token IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT), \
                   MIN(CASE WHEN due_at <= ?2 THEN due_at END) FROM delivery_queue WHERE workspace_id = ?1";
    INBOX = "SELECT n.id, CASE WHEN n.payload_removed_at IS NULL THEN n.payload END, n.status, n.attempt_count, \
             n.created_at, n.updated_at, n.read_at, n.archived_at, n.channel_id, n.kind, n.event_id, n.subscriber_id, \
             n.subscriber_channel_id, n.integration_id, n.fallback_integration_id, n.failover_after, \
             CAST(NULL AS BIGINT), CAST(NULL AS TEXT) FROM notifications n \
             WHERE n.workspace_id = ?1 AND n.subscriber_id = ?2 AND n.kind = 'inapp' AND n.status <> 'skipped' \
             AND n.payload_removed_at IS NULL AND n.id < ?3 AND (?4 OR n.archived_at IS NULL) \
             ORDER BY n.id DESC LIMIT ?5";
    // A portal endpoint's deliveries, newest first (the inbox's index serves it too).
    ENDPOINT_DELIVERIES = "SELECT n.id, CASE WHEN 1 = 0 THEN n.payload END, n.status, n.attempt_count, \
                           n.created_at, n.updated_at, n.read_at, n.archived_at, n.channel_id, n.kind, n.event_id, \
                           n.subscriber_id, n.subscriber_channel_id, n.integration_id, n.fallback_integration_id, \
                           n.failover_after, q.due_at, q.lease_token \
                           FROM notifications n LEFT JOIN delivery_queue q ON q.notification_id = n.id \
                           WHERE n.workspace_id = ?1 AND n.subscriber_id = ?2 AND n.kind = 'webhook' \
                           AND n.subscriber_channel_id = ?3 AND n.status <> 'skipped' AND n.id < ?4 \
                           ORDER BY n.id DESC LIMIT ?5";
    INBOX_UNREAD = "SELECT COUNT(*) FROM notifications WHERE workspace_id = ?1 AND subscriber_id = ?2 \
                    AND kind = 'inapp' AND status <> 'skipped' AND payload_removed_at IS NULL AND read_at IS NULL \
                    AND archived_at IS NULL";
    MARK_INBOX = "UPDATE notifications SET read_at = CASE WHEN ?4 THEN ?5 ELSE read_at END, \
                  archived_at = CASE WHEN ?6 THEN ?7 ELSE archived_at END \
                  WHERE workspace_id = ?1 AND subscriber_id = ?2 AND id = ?3 AND kind = 'inapp'";
    // The unread count's rows (INBOX_UNREAD), read now.
    MARK_INBOX_READ = "UPDATE notifications SET read_at = ?3 WHERE workspace_id = ?1 AND subscriber_id = ?2 \
                       AND kind = 'inapp' AND status <> 'skipped' AND payload_removed_at IS NULL AND read_at IS NULL \
                       AND archived_at IS NULL";
    REPLAY = "UPDATE notifications SET status = 'queued', updated_at = ?3 \
              WHERE workspace_id = ?1 AND id = ?2 AND status = 'failed' AND payload_removed_at IS NULL";

    // The fair claim: workspaces with queued work by skip-scan, then a share of each, then the
    // rest in due order. Nodes claiming at once take different rows on PostgreSQL.
    #[unscoped = "the fair claim enumerates the workspaces that have queued work"]
    NEXT_QUEUED_WORKSPACE = "SELECT MIN(workspace_id) FROM delivery_queue WHERE workspace_id > ?1";
    CLAIM_IN_WORKSPACE = sqlite "UPDATE delivery_queue SET due_at = ?1, lease_token = ?2 WHERE notification_id IN ( \
                                 SELECT notification_id FROM delivery_queue WHERE workspace_id = ?3 AND due_at <= ?4 \
                                 ORDER BY due_at LIMIT ?5) RETURNING notification_id, workspace_id, round_attempts",
                         postgres concat!("WITH c AS (UPDATE delivery_queue SET due_at = ?1, lease_token = ?2 \
                                 WHERE notification_id IN (SELECT notification_id FROM delivery_queue \
                                 WHERE workspace_id = ?3 AND due_at <= ?4 ORDER BY due_at LIMIT ?5 FOR UPDATE SKIP LOCKED) \
                                 RETURNING notification_id, workspace_id, round_attempts) ", claimed_with_delivery!());
    // The same claim across workspaces. On PostgreSQL both claims return what the delivery
    // reads (sql::DELIVERY's columns), so a job costs no read of its own.
    #[unscoped = "the fair claim's second pass fills leftover capacity from every workspace"]
    CLAIM_ANY = sqlite "UPDATE delivery_queue SET due_at = ?1, lease_token = ?2 WHERE notification_id IN ( \
                        SELECT notification_id FROM delivery_queue WHERE due_at <= ?3 ORDER BY due_at LIMIT ?4) \
                        RETURNING notification_id, workspace_id, round_attempts",
                postgres concat!("WITH c AS (UPDATE delivery_queue SET due_at = ?1, lease_token = ?2 \
                        WHERE notification_id IN (SELECT notification_id FROM delivery_queue WHERE due_at <= ?3 \
                        ORDER BY due_at LIMIT ?4 FOR UPDATE SKIP LOCKED) \
                        RETURNING notification_id, workspace_id, round_attempts) ", claimed_with_delivery!());
    #[unscoped = "the lease token names one claimed job"]
    RELEASE_CLAIM = "UPDATE delivery_queue SET due_at = ?1, lease_token = NULL \
                     WHERE notification_id = ?2 AND lease_token = ?3";
    #[unscoped = "deliveries held while a workspace is frozen are found across workspaces"]
    HELD_WORKSPACES = "SELECT DISTINCT workspace_id FROM delivery_queue WHERE due_at = ?1";
    RELEASE_HELD = "UPDATE delivery_queue SET due_at = ?3 WHERE workspace_id = ?1 AND due_at = ?2";

    // Completing an attempt. Only the holder of the current lease moves the job on; the queue
    // row is touched before the notification, in the order the erasures take them.
    #[unscoped = "the lease token names one claimed job"]
    RETRY_LATER = "UPDATE delivery_queue SET due_at = ?1, lease_token = NULL, round_attempts = round_attempts + 1 \
                   WHERE notification_id = ?2 AND lease_token = ?3";
    #[unscoped = "the lease token names one claimed job"]
    DEQUEUE_LEASED = "DELETE FROM delivery_queue WHERE notification_id = ?1 AND lease_token = ?2";
    COUNT_ATTEMPT_AND_MOVE = "UPDATE notifications SET attempt_count = attempt_count + 1, status = ?3, \
                              updated_at = ?4 WHERE workspace_id = ?1 AND id = ?2";
    COUNT_ATTEMPT = "UPDATE notifications SET attempt_count = attempt_count + 1, updated_at = ?3 \
                     WHERE workspace_id = ?1 AND id = ?2";
    #[unscoped = "removes the queue row of a notification that is gone"]
    DEQUEUE_GONE = "DELETE FROM delivery_queue WHERE notification_id = ?1";
    // A batch of completions in two round trips: first the jobs move on (lease holders only),
    // then the attempts are counted (with the status of those that moved) and recorded for the
    // notifications that still exist. The same order of locks as one by one.
    #[unscoped = "the lease tokens name the claimed jobs"]
    MOVE_JOBS = postgres "WITH d AS (SELECT * FROM UNNEST(?1::text[], ?2::text[], ?3::bigint[]) \
                          AS d(notification_id, lease_token, retry_at)), \
                          retried AS (UPDATE delivery_queue q SET due_at = d.retry_at, lease_token = NULL, \
                          round_attempts = q.round_attempts + 1 FROM d WHERE q.notification_id = d.notification_id \
                          AND q.lease_token = d.lease_token AND d.retry_at IS NOT NULL RETURNING q.notification_id), \
                          dequeued AS (DELETE FROM delivery_queue q USING d WHERE q.notification_id = d.notification_id \
                          AND q.lease_token = d.lease_token AND d.retry_at IS NULL RETURNING q.notification_id) \
                          SELECT notification_id FROM retried UNION ALL SELECT notification_id FROM dequeued";
    #[unscoped = "a multi-row update and insert: every row carries its own workspace_id"]
    RECORD_ATTEMPTS = postgres "WITH d AS (SELECT * FROM UNNEST(?1::text[], ?2::text[], ?3::text[], ?4::bigint[], \
                                ?5::text[], ?6::bigint[], ?7::boolean[], ?8::bytea[]) AS d(workspace_id, \
                                notification_id, status, now, attempt_id, started_at, succeeded, detail)), \
                                counted AS (UPDATE notifications n SET attempt_count = n.attempt_count + 1, \
                                status = COALESCE(d.status, n.status), updated_at = d.now FROM d \
                                WHERE n.workspace_id = d.workspace_id AND n.id = d.notification_id RETURNING n.id), \
                                recorded AS (INSERT INTO attempts (id, notification_id, workspace_id, started_at, \
                                succeeded, detail) SELECT d.attempt_id, d.notification_id, d.workspace_id, d.started_at, \
                                d.succeeded, d.detail FROM d JOIN counted c ON c.id = d.notification_id) \
                                SELECT id FROM counted";
    INSERT_ATTEMPT = "INSERT INTO attempts (id, notification_id, workspace_id, started_at, succeeded, detail) \
                      VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

    // Payload retention. PostgreSQL nodes take different rows.
    REMOVE_PAYLOADS = sqlite "UPDATE notifications SET payload = X'', payload_removed_at = ?3 WHERE id IN ( \
                              SELECT id FROM notifications WHERE workspace_id = ?1 AND created_at < ?2 \
                              AND payload_removed_at IS NULL \
                              AND status IN ('delivered', 'failed', 'skipped', 'suppressed', 'cancelled') LIMIT ?4)",
                      postgres "UPDATE notifications SET payload = ''::bytea, payload_removed_at = ?3 WHERE id IN ( \
                              SELECT id FROM notifications WHERE workspace_id = ?1 AND created_at < ?2 \
                              AND payload_removed_at IS NULL \
                              AND status IN ('delivered', 'failed', 'skipped', 'suppressed', 'cancelled') \
                              LIMIT ?4 FOR UPDATE SKIP LOCKED)";
    DELETE_DONE_FANOUTS = "DELETE FROM fanouts WHERE workspace_id = ?1 AND done_at IS NOT NULL AND done_at < ?2";

    INSERT_FANOUT = "INSERT INTO fanouts (id, workspace_id, event_id, topic_id, workflow_id, data, cursor, due_at, \
                     created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)";
    #[unscoped = "the fan-out worker claims due fan-outs of every workspace"]
    CLAIM_FANOUT = sqlite "UPDATE fanouts SET due_at = ?2, lease_token = ?3 WHERE id = ( \
                           SELECT id FROM fanouts WHERE done_at IS NULL AND due_at <= ?1 ORDER BY due_at LIMIT 1) \
                           RETURNING workspace_id, id, event_id, topic_id, workflow_id, data, cursor, created_at",
                   postgres "UPDATE fanouts SET due_at = ?2, lease_token = ?3 WHERE id = ( \
                           SELECT id FROM fanouts WHERE done_at IS NULL AND due_at <= ?1 ORDER BY due_at LIMIT 1 \
                           FOR UPDATE SKIP LOCKED) \
                           RETURNING workspace_id, id, event_id, topic_id, workflow_id, data, cursor, created_at";
    ADVANCE_FANOUT = "UPDATE fanouts SET cursor = ?3, done_at = ?4, due_at = ?5 \
                      WHERE workspace_id = ?1 AND id = ?2 AND lease_token = ?6 AND done_at IS NULL";
}
