-- The audit trail of this store: one hash chain per workspace (see crates/audit). Entries hold
-- ids, never values, and are kept in plaintext so the chain can be verified without keys.
-- The control store has the same tables, prefixed `control_`.
CREATE TABLE audit_log (
    workspace_id TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    actor_kind   TEXT NOT NULL,
    actor_id     TEXT NOT NULL,
    actor_name   TEXT NOT NULL,
    ip           TEXT NOT NULL,
    user_agent   TEXT NOT NULL,
    action       TEXT NOT NULL,
    target_kind  TEXT NOT NULL,
    target_id    TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    detail       TEXT NOT NULL,
    prev_hash    BYTEA NOT NULL,
    hash         BYTEA NOT NULL,
    PRIMARY KEY (workspace_id, seq)
);
CREATE INDEX audit_log_by_time ON audit_log (workspace_id, at);

-- Where each chain stands. Appenders lock the row, so a chain is extended by one writer at a
-- time; the anchor is the last entry removed by retention.
CREATE TABLE audit_chains (
    workspace_id TEXT PRIMARY KEY,
    next_seq     BIGINT NOT NULL,
    head_hash    BYTEA NOT NULL,
    anchor_seq   BIGINT NOT NULL,
    anchor_hash  BYTEA NOT NULL,
    signed_seq   BIGINT NOT NULL
);

-- Signed chain heads (Ed25519 over anchor and head).
CREATE TABLE audit_heads (
    workspace_id TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    signed_at    BIGINT NOT NULL,
    anchor_seq   BIGINT NOT NULL,
    anchor_hash  BYTEA NOT NULL,
    hash         BYTEA NOT NULL,
    public_key   BYTEA NOT NULL,
    signature    BYTEA NOT NULL,
    PRIMARY KEY (workspace_id, seq, signed_at)
);
