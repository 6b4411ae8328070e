-- The directory on PostgreSQL: see migrations/sqlite/data/0002_directory.sql.
-- A workspace's directory: its subscribers (the customer's end users), the channels that reach
-- them, and its provider integrations. Personal data is encrypted under each subscriber's own
-- key, which is stored wrapped by the workspace DEK: destroying it makes the subscriber's data
-- unreadable everywhere, backups included.
CREATE TABLE subscribers (
    id             TEXT PRIMARY KEY,
    workspace_id   TEXT NOT NULL,
    -- Keyed digest (HMAC, key derived from the workspace DEK) of the customer's id for the
    -- subscriber, for lookups; the id itself may be personal data (an email address).
    external_key   BYTEA NOT NULL,
    external_id    BYTEA NOT NULL,
    subscriber_key BYTEA NOT NULL,
    attributes     BYTEA NOT NULL,
    -- Opt-outs by channel type and workflow category, under the subscriber key; NULL: none.
    preferences    BYTEA,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    UNIQUE (workspace_id, external_key)
);
CREATE INDEX subscribers_by_workspace ON subscribers (workspace_id, id);

CREATE TABLE subscriber_channels (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL,
    subscriber_id TEXT NOT NULL REFERENCES subscribers(id),
    kind          TEXT NOT NULL,
    -- The address (email, phone number, URL, Slack channel), under the subscriber key.
    address       BYTEA NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX subscriber_channels_by_subscriber ON subscriber_channels (workspace_id, subscriber_id, id);

-- Provider integrations. Only settings that are not secret are here (encrypted); credentials
-- are in the credential vault, keyed by the integration id.
CREATE TABLE integrations (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    settings     BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    -- The last health check: when it started, whether it passed, and a fixed error class.
    last_check_at      BIGINT,
    last_check_healthy BIGINT,
    last_check_error   TEXT
);
CREATE INDEX integrations_by_workspace ON integrations (workspace_id, id);
CREATE INDEX integrations_by_last_check ON integrations (last_check_at);
