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

-- Messages to subscribers (an event rendered for one subscriber and channel) share the
-- notifications table, queue and attempts with direct webhook notifications. Their content is
-- encrypted under the subscriber's key.
ALTER TABLE notifications ADD COLUMN kind TEXT NOT NULL DEFAULT 'webhook';
ALTER TABLE notifications ADD COLUMN event_id TEXT;
ALTER TABLE notifications ADD COLUMN subscriber_id TEXT;
ALTER TABLE notifications ADD COLUMN subscriber_channel_id TEXT;
ALTER TABLE notifications ADD COLUMN integration_id TEXT;
-- In-app messages: read and archived in the subscriber's inbox.
ALTER TABLE notifications ADD COLUMN read_at BIGINT;
ALTER TABLE notifications ADD COLUMN archived_at BIGINT;
CREATE INDEX notifications_inbox ON notifications (workspace_id, subscriber_id, kind, id);

-- Topics: named groups of subscribers an event can be sent to. Membership is a plain id list;
-- fan-out pages through it by subscriber id, so a topic of any size is never loaded at once.
CREATE TABLE topics (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    key          TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (workspace_id, key)
);
CREATE TABLE topic_subscribers (
    workspace_id  TEXT NOT NULL,
    topic_id      TEXT NOT NULL REFERENCES topics(id) ON DELETE CASCADE,
    subscriber_id TEXT NOT NULL REFERENCES subscribers(id),
    added_at      BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, topic_id, subscriber_id)
);

-- An event sent to a topic, fanned out in batches by a background job: each batch queues its
-- messages and moves the cursor in one transaction, so a crash resumes where it stopped.
CREATE TABLE fanouts (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    topic_id     TEXT NOT NULL,
    workflow_id  TEXT NOT NULL,
    -- The event's data, under the workspace DEK.
    data         BYTEA NOT NULL,
    cursor       TEXT NOT NULL DEFAULT '',
    due_at       BIGINT NOT NULL,
    lease_token  TEXT,
    done_at      BIGINT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX fanouts_due ON fanouts (due_at) WHERE done_at IS NULL;
