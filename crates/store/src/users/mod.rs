//! The console's people on the control plane: users (a person, across workspaces), memberships
//! (a role in one workspace), console sessions and sign-in throttling. Every change a person
//! makes to access is audited in the workspace's control chain, in the same transaction.

use chimatic_audit::{AuditContext, actions};
use chimatic_domain::{Role, Timestamp, UserId, WorkspaceId};
use serde_json::json;

mod identities;
mod invitations;
mod rows;
mod second_factor;
mod secrets;
pub(crate) mod sql;

pub use identities::{IdentityRows, SsoFlowRow, SsoPolicy};
pub use invitations::{InvitationRow, InvitationRows, Joining, PasswordResetRow};
pub use rows::{FailureRow, MemberRow, MembershipRow, SessionRow, UserRow, UserRows};
pub use second_factor::{ChallengeRow, SecondFactorRow, SecondFactorRows};
pub use secrets::UserSecret;

use crate::{ControlStore, StoreError};

impl ControlStore {
    /// Creates a user who is a member of `ws` with `role`; a conflict if the email is taken.
    pub async fn create_user(
        &self,
        row: &UserRow,
        ws: WorkspaceId,
        role: Role,
        by: &AuditContext,
    ) -> Result<(), StoreError> {
        self.workspace(ws).await?;
        if self.backend.user_by_email(&row.email_digest).await?.is_some() {
            return Err(StoreError::Conflict("a user with this email exists"));
        }
        let audit =
            by.event(row.created_at, actions::USER_CREATED, "user", row.id).with_detail(json!({"role": role.as_str()}));
        self.backend.create_user(row, ws, role, &audit).await
    }

    pub async fn user_by_email(&self, digest: &[u8; 32]) -> Result<Option<UserRow>, StoreError> {
        self.backend.user_by_email(digest).await
    }

    pub async fn user(&self, id: UserId) -> Result<UserRow, StoreError> {
        self.backend.user(id).await?.ok_or(StoreError::NotFound)
    }

    /// The workspaces a user may open (not being deleted), oldest membership first.
    pub async fn memberships_of(&self, user: UserId) -> Result<Vec<MembershipRow>, StoreError> {
        self.backend.memberships_of(user).await
    }

    pub async fn members(&self, ws: WorkspaceId) -> Result<Vec<MemberRow>, StoreError> {
        self.backend.members(ws).await
    }

    /// Sets a new password hash and ends every session of the user but `keep` (the one that
    /// changed it), and their unused reset links.
    pub async fn set_password(
        &self,
        user: UserId,
        hash: &str,
        keep: Option<&[u8; 32]>,
        now: Timestamp,
        ws: WorkspaceId,
        by: &AuditContext,
    ) -> Result<(), StoreError> {
        let audit = by.event(now, actions::PASSWORD_CHANGED, "user", user);
        if self.backend.set_password(user, hash, keep, now, ws, &audit).await? {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    /// Gives a live session a new identifier (at a privilege change); `false` if it ended.
    pub async fn rotate_session(&self, old: &[u8; 32], new: &[u8; 32]) -> Result<bool, StoreError> {
        self.backend.rotate_session(old, new).await
    }

    /// Moves a session to another workspace of its person under a new identifier (its timeouts
    /// run on), recorded there as a sign-in; `NotFound` unless the person is a member there.
    pub async fn switch_session(
        &self,
        old: &[u8; 32],
        new: &[u8; 32],
        from: &SessionRow,
        to: WorkspaceId,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<(), StoreError> {
        let audit = by
            .event(now, actions::SIGN_IN, "user", from.user_id)
            .with_detail(json!({"switched_from": from.workspace_id.to_string()}));
        if self.backend.switch_session(old, new, to, now, &audit).await? { Ok(()) } else { Err(StoreError::NotFound) }
    }

    /// Changes a member's role; their sessions in the workspace end at once.
    pub async fn set_role(
        &self,
        ws: WorkspaceId,
        user: UserId,
        role: Role,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<(), StoreError> {
        let audit =
            by.event(now, actions::MEMBER_ROLE_CHANGED, "user", user).with_detail(json!({"role": role.as_str()}));
        if self.backend.set_role(ws, user, role, &audit).await? { Ok(()) } else { Err(StoreError::NotFound) }
    }

    /// Removes a member; their sessions in the workspace end at once.
    pub async fn remove_member(
        &self,
        ws: WorkspaceId,
        user: UserId,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<(), StoreError> {
        let audit = by.event(now, actions::MEMBER_REMOVED, "user", user);
        if self.backend.remove_member(ws, user, &audit).await? { Ok(()) } else { Err(StoreError::NotFound) }
    }

    /// Starts a console session for a member of `ws`, audited as their sign-in: with a
    /// password, or through the named identity provider.
    pub async fn start_session(
        &self,
        digest: &[u8; 32],
        user: UserId,
        ws: WorkspaceId,
        now: Timestamp,
        by: &AuditContext,
        provider: Option<&str>,
    ) -> Result<(), StoreError> {
        let detail = match provider {
            Some(p) => json!({"method": "oidc", "provider": p}),
            None => json!({"method": "password"}),
        };
        let audit = by.event(now, actions::SIGN_IN, "user", user).with_detail(detail);
        self.backend.start_session(digest, user, ws, now, provider, &audit).await
    }

    /// The live session behind `digest`, with the member's current role; `None` if it ended,
    /// the membership is gone, the workspace is being deleted, or the workspace requires single
    /// sign-on and the session came with a password (an owner with a second factor excepted). Timeouts are the caller's.
    pub async fn session(&self, digest: &[u8; 32]) -> Result<Option<SessionRow>, StoreError> {
        self.backend.session(digest).await
    }

    pub async fn touch_session(&self, digest: &[u8; 32], now: Timestamp) -> Result<(), StoreError> {
        self.backend.touch_session(digest, now).await
    }

    /// Ends one session (a sign-out, audited when `session` is given) or, with `everywhere`,
    /// every session of its user.
    pub async fn end_session(
        &self,
        digest: &[u8; 32],
        session: Option<&SessionRow>,
        everywhere: bool,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<bool, StoreError> {
        let action = if everywhere { actions::SIGN_OUT_EVERYWHERE } else { actions::SIGN_OUT };
        let audit = session.map(|s| (s.workspace_id, by.event(now, action, "user", s.user_id)));
        let user = session.filter(|_| everywhere).map(|s| s.user_id);
        self.backend.end_session(digest, user, audit.as_ref().map(|(ws, e)| (*ws, e))).await
    }

    /// Uses a single-use form's nonce once: `false` when the form was sent before (within a day).
    pub async fn use_form(&self, digest: &[u8; 32], now: Timestamp) -> Result<bool, StoreError> {
        self.backend.use_form(digest, now, now.minus(std::time::Duration::from_secs(24 * 3600))).await
    }

    pub async fn sign_in_failures(&self, subject: &[u8; 32]) -> Result<FailureRow, StoreError> {
        self.backend.sign_in_failures(subject).await
    }

    pub async fn set_sign_in_failures(&self, subject: &[u8; 32], row: FailureRow) -> Result<(), StoreError> {
        self.backend.set_sign_in_failures(subject, row).await
    }

    pub async fn clear_sign_in_failures(&self, subject: &[u8; 32]) -> Result<(), StoreError> {
        self.backend.clear_sign_in_failures(subject).await
    }
}
