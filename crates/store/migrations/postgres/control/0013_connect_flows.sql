-- Connecting a provider account over OAuth. A flow lives from the redirect to the provider
-- until its callback (at most 10 minutes, used once): its state is kept as a digest, bound to
-- the console session or API key that started it; the PKCE verifier and what the integration
-- will be (name, sender) wait here for the callback.
CREATE TABLE connect_flows (
    state_digest  BYTEA PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id),
    bound_to      BYTEA NOT NULL,
    provider      TEXT NOT NULL,
    redirect_uri  TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    name          TEXT NOT NULL,
    send_as       TEXT,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX connect_flows_by_expiry ON connect_flows (expires_at);
CREATE INDEX connect_flows_by_workspace ON connect_flows (workspace_id);
