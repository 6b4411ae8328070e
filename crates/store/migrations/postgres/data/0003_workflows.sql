-- Workflows: what an event becomes, keyed by the event name. The definition (steps, templates)
-- is encrypted under the workspace DEK.
CREATE TABLE workflows (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    key          TEXT NOT NULL,
    definition   BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (workspace_id, key)
);
