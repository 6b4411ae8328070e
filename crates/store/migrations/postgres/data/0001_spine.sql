-- The notification store on PostgreSQL: the same tables as the SQLite schema (see
-- migrations/sqlite/data/0001_spine.sql for what each holds), with PostgreSQL types.
CREATE TABLE data_keys (
    workspace_id TEXT NOT NULL,
    version      BIGINT NOT NULL,
    kek_id       TEXT NOT NULL,
    wrapped      BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, version)
);

CREATE TABLE channels (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    kind         TEXT NOT NULL,
    -- The URL and its outbound TLS policy, encrypted together so neither can be swapped alone.
    destination  BYTEA NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX channels_by_workspace ON channels (workspace_id, id);

CREATE TABLE notifications (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL,
    channel_id    TEXT REFERENCES channels(id),
    payload       BYTEA NOT NULL,
    status        TEXT NOT NULL,
    attempt_count BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE idempotency_keys (
    workspace_id    TEXT NOT NULL,
    key_digest      BYTEA NOT NULL,
    notification_id TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, key_digest)
);
-- The purge job removes claims older than the 24-hour window, oldest first.
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

CREATE TABLE delivery_queue (
    notification_id TEXT PRIMARY KEY,
    workspace_id    TEXT NOT NULL,
    due_at          BIGINT NOT NULL,
    lease_token     TEXT,
    round_attempts  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX delivery_queue_by_due ON delivery_queue (due_at);
CREATE INDEX delivery_queue_by_workspace ON delivery_queue (workspace_id, due_at);

CREATE TABLE attempts (
    id              TEXT PRIMARY KEY,
    notification_id TEXT NOT NULL,
    workspace_id    TEXT NOT NULL,
    started_at      BIGINT NOT NULL,
    succeeded       BOOLEAN NOT NULL,
    detail          BYTEA NOT NULL
);
CREATE INDEX attempts_by_notification ON attempts (workspace_id, notification_id, started_at);

-- The region this database serves, recorded on first start, so that pointing one region's URL at
-- another region's database is refused instead of mixing their data.
CREATE TABLE store_region (
    only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
    region   TEXT NOT NULL
);
