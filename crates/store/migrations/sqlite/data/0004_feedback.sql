-- Delivery feedback: provider failover, the per-workspace suppression list, and the history of
-- inbound provider webhooks (delivery receipts, bounces, complaints).

-- A message's fallback integration takes over after `failover_after` failed attempts of a
-- delivery round through its primary one.
ALTER TABLE notifications ADD COLUMN fallback_integration_id TEXT;
ALTER TABLE notifications ADD COLUMN failover_after INTEGER;

-- Addresses a workspace no longer sends to. Found by a keyed digest (HMAC, key derived from the
-- workspace DEK) of kind and normalised address; the address itself is kept only encrypted, to
-- show masked.
CREATE TABLE suppressions (
    id             TEXT PRIMARY KEY,
    workspace_id   TEXT NOT NULL,
    kind           TEXT NOT NULL,
    address_key    BLOB NOT NULL,
    address        BLOB NOT NULL,
    reason         TEXT NOT NULL,
    integration_id TEXT,
    created_at     INTEGER NOT NULL,
    UNIQUE (workspace_id, address_key)
);
CREATE INDEX suppressions_by_workspace ON suppressions (workspace_id, id);

-- Verified inbound provider webhooks, kept 30 days. `provider_event_key` is a keyed digest of the
-- provider's event id: a redelivered webhook is recognised and not applied twice.
CREATE TABLE inbound_events (
    id                 TEXT PRIMARY KEY,
    workspace_id       TEXT NOT NULL,
    integration_id     TEXT NOT NULL,
    provider_event_key BLOB NOT NULL,
    kind               TEXT NOT NULL,
    outcome            TEXT NOT NULL,
    -- Recipient and provider codes, under the workspace DEK.
    detail             BLOB NOT NULL,
    received_at        INTEGER NOT NULL,
    UNIQUE (workspace_id, integration_id, provider_event_key)
);
CREATE INDEX inbound_events_by_integration ON inbound_events (workspace_id, integration_id, id);
CREATE INDEX inbound_events_by_age ON inbound_events (received_at);
