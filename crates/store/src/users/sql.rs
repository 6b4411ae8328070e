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

    INSERT_SESSION = "INSERT INTO console_sessions (digest, user_id, workspace_id, created_at, last_seen_at) \
                      VALUES (?1, ?2, ?3, ?4, ?4)";
    // The role is read with the session, so a role change or removal counts on the next request.
    #[unscoped = "authentication: the session's digest discovers its workspace"]
    SESSION = "SELECT s.user_id, s.workspace_id, m.role, u.email_masked, s.created_at, s.last_seen_at, \
               w.region, w.frozen_at IS NOT NULL FROM console_sessions s \
               JOIN memberships m ON m.workspace_id = s.workspace_id AND m.user_id = s.user_id \
               JOIN users u ON u.id = s.user_id \
               JOIN workspaces w ON w.id = s.workspace_id \
               WHERE s.digest = ?1 AND w.deleting_at IS NULL";
    #[unscoped = "the session's digest is its key"]
    TOUCH_SESSION = "UPDATE console_sessions SET last_seen_at = ?2 WHERE digest = ?1";
    #[unscoped = "the session's digest is its key"]
    END_SESSION = "DELETE FROM console_sessions WHERE digest = ?1";
    #[unscoped = "signing out everywhere ends every session of the person"]
    END_SESSIONS_OF = "DELETE FROM console_sessions WHERE user_id = ?1";

    FAILURES = "SELECT failures, last_at, locked_until FROM sign_in_failures WHERE subject = ?1";
    SET_FAILURES = "INSERT INTO sign_in_failures (subject, failures, last_at, locked_until) VALUES (?1, ?2, ?3, ?4) \
                    ON CONFLICT (subject) DO UPDATE SET failures = excluded.failures, last_at = excluded.last_at, \
                    locked_until = excluded.locked_until";
    CLEAR_FAILURES = "DELETE FROM sign_in_failures WHERE subject = ?1";
}
