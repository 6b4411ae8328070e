-- Console users: people, with a role per workspace (a membership). The email address itself is
-- not kept: a digest finds the account at sign-in, a masked form is what pages and the audit
-- log show, and a digest of its local part (with its length) lets a new password be checked
-- for containing it. Passwords are argon2id PHC strings.
CREATE TABLE users (
    id                  TEXT PRIMARY KEY,
    email_digest        BLOB NOT NULL UNIQUE,
    email_masked        TEXT NOT NULL,
    local_part_len      INTEGER NOT NULL,
    local_part_digest   BLOB NOT NULL,
    password_hash       TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    password_changed_at INTEGER NOT NULL
);

CREATE TABLE memberships (
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    user_id      TEXT NOT NULL REFERENCES users(id),
    role         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id);

-- Console sessions: only a SHA-256 digest of the 256-bit identifier is stored. A session is
-- for one workspace; the member's role is read from `memberships` on every request.
CREATE TABLE console_sessions (
    digest       BLOB PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id),
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
);
CREATE INDEX console_sessions_by_user ON console_sessions (user_id);
CREATE INDEX console_sessions_by_workspace ON console_sessions (workspace_id);

-- Failed sign-ins per account and per client address (both as digests), for backoff and
-- temporary lockout.
CREATE TABLE sign_in_failures (
    subject      BLOB PRIMARY KEY,
    failures     INTEGER NOT NULL,
    last_at      INTEGER NOT NULL,
    locked_until INTEGER NOT NULL
);
