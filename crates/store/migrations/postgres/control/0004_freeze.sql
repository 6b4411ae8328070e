-- Incident isolation: while frozen_at is set, every read, write and delivery of the workspace
-- stops (API requests get 423; queued deliveries are held, not attempted).
ALTER TABLE workspaces ADD COLUMN frozen_at BIGINT;
CREATE INDEX workspaces_frozen ON workspaces (id) WHERE frozen_at IS NOT NULL;
