//! Rows of `users`, `memberships`, `console_sessions` and `sign_in_failures`, one body for both
//! backends.

use chimatic_audit::AuditEvent;
use chimatic_domain::{Region, Role, Timestamp, UserId, WorkspaceId};

use super::sql;
use crate::db::{Audited, Columns, Db, Step, args, execute_one, fetch_all, fetch_optional};
use crate::{PostgresBackend, SqliteBackend, StoreError};

/// A console user. Their email address is not stored: see the `users` migration.
#[derive(Clone, Debug)]
pub struct UserRow {
    pub id: UserId,
    pub email_digest: [u8; 32],
    pub email_masked: String,
    /// Length in characters of the email's local part, and a digest of it (lower-cased).
    pub local_part_len: u32,
    pub local_part_digest: [u8; 32],
    /// An argon2id PHC string.
    pub password_hash: String,
    pub created_at: Timestamp,
    pub password_changed_at: Timestamp,
}

/// A workspace a user may open, with their role in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MembershipRow {
    pub workspace_id: WorkspaceId,
    pub role: Role,
    pub workspace_name: String,
}

/// A member of a workspace, as the members page lists them.
#[derive(Clone, Debug)]
pub struct MemberRow {
    pub user_id: UserId,
    pub email_masked: String,
    pub role: Role,
    pub since: Timestamp,
}

/// A live console session with the member's current role.
#[derive(Clone, Debug)]
pub struct SessionRow {
    pub user_id: UserId,
    pub workspace_id: WorkspaceId,
    pub role: Role,
    pub email_masked: String,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub region: Region,
    pub frozen: bool,
    /// The workspace requires a second factor and the user has none yet: only enrolment is open.
    pub must_enrol: bool,
}

/// Failed sign-ins of one subject (an account or a client address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureRow {
    pub failures: u32,
    pub last_at: Timestamp,
    pub locked_until: Timestamp,
}

/// A row of `id, email_digest, email_masked, local_part_len, local_part_digest, password_hash,
/// created_at, password_changed_at`.
fn user(r: &dyn Columns) -> Result<UserRow, StoreError> {
    Ok(UserRow {
        id: r.parsed(0, "user id")?,
        email_digest: r.digest(1, "email digest")?,
        email_masked: r.text(2)?,
        local_part_len: r.u32(3, "local part length")?,
        local_part_digest: r.digest(4, "local part digest")?,
        password_hash: r.text(5)?,
        created_at: r.at(6)?,
        password_changed_at: r.at(7)?,
    })
}

fn membership(r: &dyn Columns) -> Result<MembershipRow, StoreError> {
    Ok(MembershipRow {
        workspace_id: r.parsed(0, "workspace id")?,
        role: r.parsed(1, "role")?,
        workspace_name: r.text(2)?,
    })
}

fn member(r: &dyn Columns) -> Result<MemberRow, StoreError> {
    Ok(MemberRow {
        user_id: r.parsed(0, "user id")?,
        email_masked: r.text(1)?,
        role: r.parsed(2, "role")?,
        since: r.at(3)?,
    })
}

fn session(r: &dyn Columns) -> Result<SessionRow, StoreError> {
    Ok(SessionRow {
        user_id: r.parsed(0, "user id")?,
        workspace_id: r.parsed(1, "workspace id")?,
        role: r.parsed(2, "role")?,
        email_masked: r.text(3)?,
        created_at: r.at(4)?,
        last_seen_at: r.at(5)?,
        region: r.parsed(6, "region")?,
        frozen: r.flag(7)?,
        must_enrol: r.flag(8)?,
    })
}

pub(super) fn insert_user(row: &UserRow) -> Step {
    Step::new(
        &sql::INSERT_USER,
        args![
            row.id,
            &row.email_digest,
            &row.email_masked,
            row.local_part_len,
            &row.local_part_digest,
            &row.password_hash,
            row.created_at
        ],
    )
}

#[async_trait::async_trait]
pub trait UserRows: Db {
    /// Creates a user with their first membership, audited in that workspace's chain.
    async fn create_user(
        &self,
        row: &UserRow,
        ws: WorkspaceId,
        role: Role,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let steps = vec![insert_user(row), Step::new(&sql::INSERT_MEMBERSHIP, args![ws, row.id, role, row.created_at])];
        self.transaction(steps, Audited::control(ws, audit)).await.map(|_| ())
    }

    async fn user_by_email(&self, digest: &[u8; 32]) -> Result<Option<UserRow>, StoreError> {
        fetch_optional(self, &sql::USER_BY_EMAIL, args![digest], user).await
    }

    async fn user(&self, id: UserId) -> Result<Option<UserRow>, StoreError> {
        fetch_optional(self, &sql::USER_BY_ID, args![id], user).await
    }

    /// Sets a new password hash and ends every session of the user but `keep`, and their
    /// unused reset links, in one transaction, audited in `ws`'s chain.
    async fn set_password(
        &self,
        id: UserId,
        hash: &str,
        keep: Option<&[u8; 32]>,
        now: Timestamp,
        ws: WorkspaceId,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let end = match keep {
            Some(digest) => Step::new(&sql::END_OTHER_SESSIONS_OF, args![id, digest]),
            None => Step::new(&sql::END_SESSIONS_OF, args![id]),
        };
        let steps = vec![
            Step::required(&sql::SET_PASSWORD, args![id, hash, now]),
            end,
            Step::new(&sql::END_RESETS_OF, args![id, now]),
        ];
        Ok(self.transaction(steps, Audited::control(ws, audit)).await?.first() == Some(&1))
    }

    async fn memberships_of(&self, user: UserId) -> Result<Vec<MembershipRow>, StoreError> {
        fetch_all(self, &sql::MEMBERSHIPS_OF, args![user], membership).await
    }

    async fn members(&self, ws: WorkspaceId) -> Result<Vec<MemberRow>, StoreError> {
        fetch_all(self, &sql::MEMBERS, args![ws], member).await
    }

    async fn add_membership(
        &self,
        ws: WorkspaceId,
        user: UserId,
        role: Role,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let steps = vec![Step::new(&sql::INSERT_MEMBERSHIP, args![ws, user, role, now])];
        self.transaction(steps, Audited::control(ws, audit)).await.map(|_| ())
    }

    /// Changes a member's role and ends their sessions in the workspace (they sign in again
    /// with the new role); `false` if they are not a member.
    async fn set_role(
        &self,
        ws: WorkspaceId,
        user: UserId,
        role: Role,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let steps = vec![
            Step::required(&sql::SET_ROLE, args![ws, user, role]),
            Step::new(&sql::END_MEMBER_SESSIONS, args![ws, user]),
        ];
        Ok(self.transaction(steps, Audited::control(ws, audit)).await?.first() == Some(&1))
    }

    /// Removes a member and ends their sessions in the workspace at once; `false` if they were
    /// not a member.
    async fn remove_member(&self, ws: WorkspaceId, user: UserId, audit: &AuditEvent) -> Result<bool, StoreError> {
        let steps = vec![
            Step::required(&sql::REMOVE_MEMBER, args![ws, user]),
            Step::new(&sql::END_MEMBER_SESSIONS, args![ws, user]),
        ];
        Ok(self.transaction(steps, Audited::control(ws, audit)).await?.first() == Some(&1))
    }

    /// Starts a session (`digest` of its identifier), audited as the sign-in in `ws`'s chain.
    async fn start_session(
        &self,
        digest: &[u8; 32],
        user: UserId,
        ws: WorkspaceId,
        now: Timestamp,
        provider: Option<&str>,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let steps = vec![Step::new(&sql::INSERT_SESSION, args![digest, user, ws, now, provider])];
        self.transaction(steps, Audited::control(ws, audit)).await.map(|_| ())
    }

    async fn session(&self, digest: &[u8; 32]) -> Result<Option<SessionRow>, StoreError> {
        fetch_optional(self, &sql::SESSION, args![digest], session).await
    }

    async fn rotate_session(&self, old: &[u8; 32], new: &[u8; 32]) -> Result<bool, StoreError> {
        Ok(self.execute(&sql::ROTATE_SESSION, args![old, new], None).await? == 1)
    }

    async fn switch_session(
        &self,
        old: &[u8; 32],
        new: &[u8; 32],
        to: WorkspaceId,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        execute_one(self, &sql::SWITCH_SESSION, args![old, new, to, now], Audited::control(to, audit)).await
    }

    /// Records a single-use form's nonce; `false` if it was used before. Uses older than
    /// `forget_before` go in the same transaction.
    async fn use_form(&self, digest: &[u8; 32], now: Timestamp, forget_before: Timestamp) -> Result<bool, StoreError> {
        let steps = vec![
            Step::new(&sql::FORGET_FORM_USES, args![forget_before]),
            Step::new(&sql::USE_FORM, args![digest, now]),
        ];
        Ok(self.transaction(steps, None).await?.get(1) == Some(&1))
    }

    async fn touch_session(&self, digest: &[u8; 32], now: Timestamp) -> Result<(), StoreError> {
        self.execute(&sql::TOUCH_SESSION, args![digest, now], None).await.map(|_| ())
    }

    /// Ends one session (with `audit` when it was live) or, with `everywhere`, every session
    /// of its user.
    async fn end_session(
        &self,
        digest: &[u8; 32],
        everywhere: Option<UserId>,
        audit: Option<(WorkspaceId, &AuditEvent)>,
    ) -> Result<bool, StoreError> {
        let step = match everywhere {
            Some(user) => Step::new(&sql::END_SESSIONS_OF, args![user]),
            None => Step::new(&sql::END_SESSION, args![digest]),
        };
        let audited = audit.and_then(|(ws, event)| Audited::control(ws, event));
        Ok(self.transaction(vec![step], audited).await?.first().is_some_and(|n| *n > 0))
    }

    async fn sign_in_failures(&self, subject: &[u8; 32]) -> Result<FailureRow, StoreError> {
        let found = fetch_optional(self, &sql::FAILURES, args![subject], |r| {
            Ok(FailureRow { failures: r.u32(0, "failures")?, last_at: r.at(1)?, locked_until: r.at(2)? })
        })
        .await?;
        Ok(found.unwrap_or(FailureRow::NONE))
    }

    async fn set_sign_in_failures(&self, subject: &[u8; 32], row: FailureRow) -> Result<(), StoreError> {
        let args = args![subject, row.failures, row.last_at, row.locked_until];
        self.execute(&sql::SET_FAILURES, args, None).await.map(|_| ())
    }

    async fn clear_sign_in_failures(&self, subject: &[u8; 32]) -> Result<(), StoreError> {
        self.execute(&sql::CLEAR_FAILURES, args![subject], None).await.map(|_| ())
    }
}

impl FailureRow {
    pub const NONE: FailureRow = FailureRow { failures: 0, last_at: Timestamp(0), locked_until: Timestamp(0) };
}

impl UserRows for SqliteBackend {}
impl UserRows for PostgresBackend {}
