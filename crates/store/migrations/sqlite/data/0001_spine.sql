-- The notification store. Every tenant-owned row carries workspace_id and every query filters on it.
-- Columns holding notification data, addresses or attempt details are AES-256-GCM ciphertext.
CREATE TABLE data_keys (
    workspace_id TEXT NOT NULL,
    version      INTEGER NOT NULL,
    kek_id       TEXT NOT NULL,
    wrapped      BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, version)
);

CREATE TABLE channels (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    kind         TEXT NOT NULL,
    -- The URL and its outbound TLS policy, encrypted together so neither can be swapped alone.
    destination  BLOB NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX channels_by_workspace ON channels (workspace_id, id);

CREATE TABLE notifications (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL,
    channel_id    TEXT REFERENCES channels(id),
    payload       BLOB NOT NULL,
    status        TEXT NOT NULL,
    attempt_count INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- A keyed digest (HMAC, key derived from the workspace DEK) of the caller's idempotency key;
-- the key itself may carry personal data, and a plain hash of a guessable key could be reversed.
CREATE TABLE idempotency_keys (
    workspace_id    TEXT NOT NULL,
    key_digest      BLOB NOT NULL,
    notification_id TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, key_digest)
) WITHOUT ROWID;
-- The purge job removes claims older than the 24-hour window, oldest first.
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

-- Only pending work lives here, so the queue stays small however much history is stored.
-- A claim moves due_at to the end of the lease: a worker that dies leaves a job that simply
-- becomes due again when its lease runs out.
CREATE TABLE delivery_queue (
    notification_id TEXT PRIMARY KEY,
    workspace_id    TEXT NOT NULL,
    due_at          INTEGER NOT NULL,
    lease_token     TEXT,
    round_attempts  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX delivery_queue_by_due ON delivery_queue (due_at);
-- Fair claiming visits workspaces in turn: a seek per workspace, and its earliest due jobs.
CREATE INDEX delivery_queue_by_workspace ON delivery_queue (workspace_id, due_at);

CREATE TABLE attempts (
    id              TEXT PRIMARY KEY,
    notification_id TEXT NOT NULL,
    workspace_id    TEXT NOT NULL,
    started_at      INTEGER NOT NULL,
    succeeded       INTEGER NOT NULL,
    detail          BLOB NOT NULL
);
CREATE INDEX attempts_by_notification ON attempts (workspace_id, notification_id, started_at);

-- The region this database serves, recorded on first start, so that pointing one region's URL at
-- another region's database is refused instead of mixing their data.
CREATE TABLE store_region (
    only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
    region   TEXT NOT NULL
);
