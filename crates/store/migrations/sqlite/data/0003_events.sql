-- Workflows: what an event becomes, keyed by the event name. The definition (steps, templates)
-- is encrypted under the workspace DEK.
CREATE TABLE workflows (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    key          TEXT NOT NULL,
    definition   BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (workspace_id, key)
);

-- Messages to subscribers (an event rendered for one subscriber and channel) share the
-- notifications table, queue and attempts with direct webhook notifications. Their content is
-- encrypted under the subscriber's key.
ALTER TABLE notifications ADD COLUMN kind TEXT NOT NULL DEFAULT 'webhook';
ALTER TABLE notifications ADD COLUMN event_id TEXT;
ALTER TABLE notifications ADD COLUMN subscriber_id TEXT;
ALTER TABLE notifications ADD COLUMN subscriber_channel_id TEXT;
ALTER TABLE notifications ADD COLUMN integration_id TEXT;
-- In-app messages: read and archived in the subscriber's inbox.
ALTER TABLE notifications ADD COLUMN read_at INTEGER;
ALTER TABLE notifications ADD COLUMN archived_at INTEGER;
CREATE INDEX notifications_inbox ON notifications (workspace_id, subscriber_id, kind, id);
