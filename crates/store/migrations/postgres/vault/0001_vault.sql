-- The credential vault on PostgreSQL: its own database, reached with its own role.
CREATE TABLE vault_keys (
    workspace_id TEXT NOT NULL,
    version      BIGINT NOT NULL,
    kek_id       TEXT NOT NULL,
    wrapped      BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, version)
);

CREATE TABLE secrets (
    workspace_id TEXT NOT NULL,
    owner_id     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    secret       BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, owner_id, kind)
);

-- See the data schema: the region this vault serves.
CREATE TABLE store_region (
    only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
    region   TEXT NOT NULL
);
