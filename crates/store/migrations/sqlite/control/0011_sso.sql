-- Sign-in through an OpenID Connect provider. A flow lives from the redirect to the provider
-- until its callback (at most 10 minutes, used once): its state is kept as a digest, bound to
-- the browser's pre-session; the nonce and the PKCE verifier wait here for the callback.
CREATE TABLE sso_flows (
    state_digest       BLOB PRIMARY KEY,
    pre_session_digest BLOB NOT NULL,
    nonce              TEXT NOT NULL,
    pkce_verifier      TEXT NOT NULL,
    expires_at         INTEGER NOT NULL
);
CREATE INDEX sso_flows_by_expiry ON sso_flows (expires_at);

-- A provider's account (issuer and subject) linked to a user at its first sign-in.
CREATE TABLE user_identities (
    issuer     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX user_identities_by_user ON user_identities (user_id);

-- A second-factor challenge after a provider's sign-in names the provider, for the audit log.
ALTER TABLE sign_in_challenges ADD COLUMN provider TEXT;
-- A person signing in through a provider for the first time may have a pending invitation.
CREATE INDEX invitations_by_email ON invitations (email_digest);
