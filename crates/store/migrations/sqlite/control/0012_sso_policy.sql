-- An owner's single sign-on policy. Email domains whose people, signing in through the
-- identity provider for the first time, become members with the owner's chosen role:
CREATE TABLE sso_domains (
    domain       TEXT NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    role         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (domain, workspace_id)
);
CREATE INDEX sso_domains_by_workspace ON sso_domains (workspace_id);
-- Whether members must sign in through the provider (an owner with a second factor may still
-- use a password: the way back in when the provider is down).
ALTER TABLE workspaces ADD COLUMN sso_required_at INTEGER;
-- The identity provider a session came through; NULL: a password.
ALTER TABLE console_sessions ADD COLUMN provider TEXT;

-- Console forms that make a secret shown once (an API key) carry a single-use nonce: a form
-- sent twice (a reload) makes one secret, not two. Kept a day, as digests.
CREATE TABLE console_form_uses (
    digest  BLOB PRIMARY KEY,
    used_at INTEGER NOT NULL
);
CREATE INDEX console_form_uses_by_age ON console_form_uses (used_at);
