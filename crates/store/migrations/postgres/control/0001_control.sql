-- The control plane: workspace configuration, API key metadata and delivery analytics.
-- It holds no notification content, no addresses and no credentials: those live in the
-- workspace's region (its data store and vault).
CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    region      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Only a SHA-256 digest of each key is stored; the key is shown once.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    name         TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    digest       BYTEA NOT NULL UNIQUE,
    last4        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX api_keys_by_workspace ON api_keys (workspace_id, id);

-- Delivery analytics: counts per workspace per UTC day, added to by data-plane nodes.
CREATE TABLE delivery_stats (
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    day          BIGINT NOT NULL,
    accepted     BIGINT NOT NULL DEFAULT 0,
    attempts     BIGINT NOT NULL DEFAULT 0,
    delivered    BIGINT NOT NULL DEFAULT 0,
    failed       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, day)
);
