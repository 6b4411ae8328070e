//! The console's people: users, their memberships, sessions and sign-in failures. `users` and
//! `sign_in_failures` are not a workspace's: a person may belong to several workspaces.

use crate::db::sql::statements;

statements! {
    INSERT_USER = "INSERT INTO users (id, email_digest, email_masked, local_part_len, local_part_digest, \
                   password_hash, created_at, password_changed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)";
    USER_BY_EMAIL = "SELECT id, email_digest, email_masked, local_part_len, local_part_digest, password_hash, created_at, \
                     password_changed_at FROM users WHERE email_digest = ?1";
    USER_BY_ID = "SELECT id, email_digest, email_masked, local_part_len, local_part_digest, password_hash, created_at, \
                  password_changed_at FROM users WHERE id = ?1";
    SET_PASSWORD = "UPDATE users SET password_hash = ?2, password_changed_at = ?3 WHERE id = ?1";

    INSERT_MEMBERSHIP = "INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES (?1, ?2, ?3, ?4)";
    #[unscoped = "the workspaces a signed-in person may open"]
    MEMBERSHIPS_OF = "SELECT m.workspace_id, m.role, w.name FROM memberships m \
                      JOIN workspaces w ON w.id = m.workspace_id \
                      WHERE m.user_id = ?1 AND w.deleting_at IS NULL ORDER BY m.created_at, m.workspace_id";
    MEMBERS = "SELECT m.user_id, u.email_masked, m.role, m.created_at FROM memberships m \
               JOIN users u ON u.id = m.user_id WHERE m.workspace_id = ?1 ORDER BY m.created_at, m.user_id";

    SET_ROLE = "UPDATE memberships SET role = ?3 WHERE workspace_id = ?1 AND user_id = ?2";
    REMOVE_MEMBER = "DELETE FROM memberships WHERE workspace_id = ?1 AND user_id = ?2";
    END_MEMBER_SESSIONS = "DELETE FROM console_sessions WHERE workspace_id = ?1 AND user_id = ?2";

    INSERT_SESSION = "INSERT INTO console_sessions (digest, user_id, workspace_id, created_at, last_seen_at, provider) \
                      VALUES (?1, ?2, ?3, ?4, ?4, ?5)";
    // The role is read with the session, so a role change or removal counts on the next request.
    #[unscoped = "authentication: the session's digest discovers its workspace"]
    SESSION = "SELECT s.user_id, s.workspace_id, m.role, u.email_masked, s.created_at, s.last_seen_at, \
               w.region, w.frozen_at IS NOT NULL, w.two_factor_required_at IS NOT NULL \
               AND NOT EXISTS (SELECT 1 FROM second_factors f WHERE f.user_id = s.user_id) \
               FROM console_sessions s \
               JOIN memberships m ON m.workspace_id = s.workspace_id AND m.user_id = s.user_id \
               JOIN users u ON u.id = s.user_id \
               JOIN workspaces w ON w.id = s.workspace_id \
               WHERE s.digest = ?1 AND w.deleting_at IS NULL \
               AND (w.sso_required_at IS NULL OR s.provider IS NOT NULL OR (m.role = 'owner' \
               AND EXISTS (SELECT 1 FROM second_factors g WHERE g.user_id = s.user_id)))";
    #[unscoped = "the session's digest is its key"]
    TOUCH_SESSION = "UPDATE console_sessions SET last_seen_at = ?2 WHERE digest = ?1";
    #[unscoped = "the session's digest is its key"]
    END_SESSION = "DELETE FROM console_sessions WHERE digest = ?1";
    #[unscoped = "signing out everywhere ends every session of the person"]
    END_SESSIONS_OF = "DELETE FROM console_sessions WHERE user_id = ?1";
    #[unscoped = "a changed password ends every other session of the person"]
    END_OTHER_SESSIONS_OF = "DELETE FROM console_sessions WHERE user_id = ?1 AND digest <> ?2";
    // A new identifier for the same session (privilege change): its timeouts run on.
    #[unscoped = "the session's digest is its key"]
    ROTATE_SESSION = "UPDATE console_sessions SET digest = ?2 WHERE digest = ?1";
    // The same session moved to another workspace of its person, under a new identifier; its
    // absolute timeout runs on from the sign-in. Only where the person is a member.
    SWITCH_SESSION = "UPDATE console_sessions SET digest = ?2, workspace_id = ?3, last_seen_at = ?4 WHERE digest = ?1 \
                      AND EXISTS (SELECT 1 FROM memberships m JOIN workspaces w ON w.id = m.workspace_id \
                      WHERE m.workspace_id = ?3 AND m.user_id = console_sessions.user_id AND w.deleting_at IS NULL \
                      AND (w.sso_required_at IS NULL OR console_sessions.provider IS NOT NULL OR (m.role = 'owner' \
                      AND EXISTS (SELECT 1 FROM second_factors g WHERE g.user_id = m.user_id))))";

    FORGET_FORM_USES = "DELETE FROM console_form_uses WHERE used_at < ?1";
    USE_FORM = "INSERT INTO console_form_uses (digest, used_at) VALUES (?1, ?2) ON CONFLICT (digest) DO NOTHING";

    FAILURES = "SELECT failures, last_at, locked_until FROM sign_in_failures WHERE subject = ?1";
    SET_FAILURES = "INSERT INTO sign_in_failures (subject, failures, last_at, locked_until) VALUES (?1, ?2, ?3, ?4) \
                    ON CONFLICT (subject) DO UPDATE SET failures = excluded.failures, last_at = excluded.last_at, \
                    locked_until = excluded.locked_until";
    CLEAR_FAILURES = "DELETE FROM sign_in_failures WHERE subject = ?1";

    INSERT_INVITATION = "INSERT INTO invitations (id, workspace_id, token_digest, email_digest, email_masked, role, \
                         invited_by, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
    INVITATIONS = "SELECT id, workspace_id, email_digest, email_masked, role, invited_by, created_at, expires_at, \
                   accepted_at, revoked_at FROM invitations WHERE workspace_id = ?1 ORDER BY created_at DESC, id LIMIT 200";
    #[unscoped = "the invitation's token digest discovers its workspace"]
    INVITATION_BY_TOKEN = "SELECT i.id, i.workspace_id, i.email_digest, i.email_masked, i.role, i.invited_by, \
                           i.created_at, i.expires_at, i.accepted_at, i.revoked_at FROM invitations i \
                           JOIN workspaces w ON w.id = i.workspace_id \
                           WHERE i.token_digest = ?1 AND w.deleting_at IS NULL";
    #[unscoped = "the invited address's digest discovers the workspace"]
    PENDING_INVITATION_FOR = "SELECT i.id, i.workspace_id, i.email_digest, i.email_masked, i.role, i.invited_by, \
                              i.created_at, i.expires_at, i.accepted_at, i.revoked_at FROM invitations i \
                              JOIN workspaces w ON w.id = i.workspace_id \
                              WHERE i.email_digest = ?1 AND i.accepted_at IS NULL AND i.revoked_at IS NULL \
                              AND i.expires_at > ?2 AND w.deleting_at IS NULL ORDER BY i.created_at DESC LIMIT 1";
    REVOKE_INVITATION = "UPDATE invitations SET revoked_at = ?3 WHERE workspace_id = ?1 AND id = ?2 \
                         AND accepted_at IS NULL AND revoked_at IS NULL";
    // Single use: the first acceptance of a live invitation changes its row, any other none.
    ACCEPT_INVITATION = "UPDATE invitations SET accepted_at = ?3 WHERE workspace_id = ?1 AND id = ?2 \
                         AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?3";

    INSERT_PASSWORD_RESET = "INSERT INTO password_resets (token_digest, user_id, workspace_id, created_at, expires_at) \
                             VALUES (?1, ?2, ?3, ?4, ?5)";
    #[unscoped = "the reset's token digest discovers its workspace"]
    PASSWORD_RESET = "SELECT user_id, workspace_id, expires_at, used_at FROM password_resets WHERE token_digest = ?1";
    #[unscoped = "the reset's token digest is its key"]
    USE_PASSWORD_RESET = "UPDATE password_resets SET used_at = ?2 WHERE token_digest = ?1 AND used_at IS NULL \
                          AND expires_at > ?2";
    // A reset used (or a password changed) makes the user's other links useless.
    #[unscoped = "a person's reset links, whichever workspace issued them"]
    END_RESETS_OF = "UPDATE password_resets SET used_at = ?2 WHERE user_id = ?1 AND used_at IS NULL";

    SECOND_FACTOR = "SELECT enrolled_at, last_step FROM second_factors WHERE user_id = ?1";
    ENROL_SECOND_FACTOR = "INSERT INTO second_factors (user_id, enrolled_at, last_step) VALUES (?1, ?2, ?3) \
                           ON CONFLICT (user_id) DO UPDATE SET enrolled_at = excluded.enrolled_at, \
                           last_step = excluded.last_step";
    // A code is accepted once: only a later time step than the last accepted one moves it.
    ACCEPT_STEP = "UPDATE second_factors SET last_step = ?2 WHERE user_id = ?1 AND last_step < ?2";
    DELETE_SECOND_FACTOR = "DELETE FROM second_factors WHERE user_id = ?1";
    INSERT_RECOVERY_CODE = "INSERT INTO recovery_codes (user_id, digest) VALUES (?1, ?2)";
    USE_RECOVERY_CODE = "UPDATE recovery_codes SET used_at = ?3 WHERE user_id = ?1 AND digest = ?2 AND used_at IS NULL";
    RECOVERY_CODES_LEFT = "SELECT COUNT(*) FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL";
    DELETE_RECOVERY_CODES = "DELETE FROM recovery_codes WHERE user_id = ?1";

    INSERT_CHALLENGE = "INSERT INTO sign_in_challenges (digest, user_id, workspace_id, expires_at, provider) \
                        VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (digest) DO UPDATE SET user_id = excluded.user_id, \
                        workspace_id = excluded.workspace_id, expires_at = excluded.expires_at, \
                        provider = excluded.provider";
    #[unscoped = "the pre-session's digest is its key"]
    CHALLENGE = "SELECT user_id, workspace_id, expires_at, provider FROM sign_in_challenges WHERE digest = ?1";
    #[unscoped = "the pre-session's digest is its key"]
    END_CHALLENGE = "DELETE FROM sign_in_challenges WHERE digest = ?1";

    INSERT_SSO_FLOW = "INSERT INTO sso_flows (state_digest, pre_session_digest, nonce, pkce_verifier, expires_at) \
                       VALUES (?1, ?2, ?3, ?4, ?5)";
    FORGET_SSO_FLOWS = "DELETE FROM sso_flows WHERE expires_at <= ?1";
    // Used once: taken (deleted) by the browser that started it, before it expires.
    TAKE_SSO_FLOW = "DELETE FROM sso_flows WHERE state_digest = ?1 AND pre_session_digest = ?2 AND expires_at > ?3 \
                     RETURNING pre_session_digest, nonce, pkce_verifier, expires_at";
    USER_BY_IDENTITY = "SELECT user_id FROM user_identities WHERE issuer = ?1 AND subject = ?2";
    LINK_IDENTITY = "INSERT INTO user_identities (issuer, subject, user_id, created_at) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (issuer, subject) DO NOTHING";

    SSO_REQUIRED = "SELECT sso_required_at IS NOT NULL FROM workspaces WHERE id = ?1";
    SET_SSO_REQUIRED = "UPDATE workspaces SET sso_required_at = ?2 WHERE id = ?1";
    SSO_DOMAINS = "SELECT domain, role FROM sso_domains WHERE workspace_id = ?1 ORDER BY domain";
    CLEAR_SSO_DOMAINS = "DELETE FROM sso_domains WHERE workspace_id = ?1";
    INSERT_SSO_DOMAIN = "INSERT INTO sso_domains (domain, workspace_id, role, created_at) VALUES (?1, ?2, ?3, ?4)";
    #[unscoped = "the email's domain discovers the workspace that admits it"]
    SSO_DOMAIN_WORKSPACE = "SELECT d.workspace_id, d.role FROM sso_domains d JOIN workspaces w ON w.id = d.workspace_id \
                            WHERE d.domain = ?1 AND w.deleting_at IS NULL ORDER BY d.created_at, d.workspace_id LIMIT 1";

    TWO_FACTOR_REQUIRED = "SELECT two_factor_required_at IS NOT NULL FROM workspaces WHERE id = ?1";
    SET_TWO_FACTOR_REQUIRED = "UPDATE workspaces SET two_factor_required_at = ?2 WHERE id = ?1";
}
