-- The credential vault: its own database file and its own DEKs. It holds no notification data.
CREATE TABLE vault_keys (
    workspace_id TEXT NOT NULL,
    version      INTEGER NOT NULL,
    kek_id       TEXT NOT NULL,
    wrapped      BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, version)
);

CREATE TABLE secrets (
    workspace_id TEXT NOT NULL,
    owner_id     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    secret       BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, owner_id, kind)
);

-- See the data schema: the region this vault serves.
CREATE TABLE store_region (
    only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
    region   TEXT NOT NULL
);
