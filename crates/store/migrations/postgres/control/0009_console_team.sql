-- Invitations to a workspace: a single-use random token of which only a SHA-256 digest is kept,
-- for an email address kept (like a user's) only as a digest and a masked form.
CREATE TABLE invitations (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    token_digest BYTEA NOT NULL UNIQUE,
    email_digest BYTEA NOT NULL,
    email_masked TEXT NOT NULL,
    role         TEXT NOT NULL,
    invited_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    accepted_at  BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX invitations_by_workspace ON invitations (workspace_id, created_at);

-- Password reset links an owner or admin issues for a member: single use, kept as a digest,
-- recorded in the issuing workspace's chain.
CREATE TABLE password_resets (
    token_digest BYTEA PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id),
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT
);
CREATE INDEX password_resets_by_workspace ON password_resets (workspace_id);

-- TOTP second factors. The shared secret is a credential: it is sealed in the primary region's
-- credential vault, not here. What is here is whether the user has one and the last time step
-- a code was accepted for, so a code is accepted once.
CREATE TABLE second_factors (
    user_id     TEXT PRIMARY KEY REFERENCES users(id),
    enrolled_at BIGINT NOT NULL,
    last_step   BIGINT NOT NULL
);

-- Recovery codes: 80 random bits each, kept as SHA-256 digests, each usable once.
CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users(id),
    digest  BYTEA NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (user_id, digest)
);

-- A password that was right for an account with a second factor: the browser holding the
-- pre-session (by digest) may finish signing in with a code until it expires.
CREATE TABLE sign_in_challenges (
    digest       BYTEA PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id),
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    expires_at   BIGINT NOT NULL
);

-- Owners can require every member to have a second factor.
ALTER TABLE workspaces ADD COLUMN two_factor_required_at BIGINT;
