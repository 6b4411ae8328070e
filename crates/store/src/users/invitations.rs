//! Invitations to a workspace and password reset links: single-use random tokens of which only
//! a digest is kept. Accepting or using one is a conditional update, so it works once.

use chimatic_audit::{AuditContext, AuditEvent, actions};
use chimatic_domain::{InvitationId, Role, Timestamp, UserId, WorkspaceId};
use serde_json::json;

use super::rows::insert_user;
use super::{UserRow, sql};
use crate::db::{Audited, Columns, Db, Step, args, fetch_all, fetch_optional};
use crate::{ControlStore, PostgresBackend, SqliteBackend, StoreError};

#[derive(Clone, Debug)]
pub struct InvitationRow {
    pub id: InvitationId,
    pub workspace_id: WorkspaceId,
    pub email_digest: [u8; 32],
    pub email_masked: String,
    pub role: Role,
    /// The inviting member's masked email.
    pub invited_by: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub accepted_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

impl InvitationRow {
    pub fn pending(&self, now: Timestamp) -> bool {
        self.accepted_at.is_none() && self.revoked_at.is_none() && now < self.expires_at
    }
}

fn invitation(r: &dyn Columns) -> Result<InvitationRow, StoreError> {
    Ok(InvitationRow {
        id: r.parsed(0, "invitation id")?,
        workspace_id: r.parsed(1, "workspace id")?,
        email_digest: r.digest(2, "email digest")?,
        email_masked: r.text(3)?,
        role: r.parsed(4, "role")?,
        invited_by: r.text(5)?,
        created_at: r.at(6)?,
        expires_at: r.at(7)?,
        accepted_at: r.opt_at(8)?,
        revoked_at: r.opt_at(9)?,
    })
}

/// An issued password reset link.
#[derive(Clone, Copy, Debug)]
pub struct PasswordResetRow {
    pub user_id: UserId,
    pub workspace_id: WorkspaceId,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

/// Who accepts an invitation: a new user, or an existing one who is signed in.
pub enum Joining<'a> {
    NewUser(&'a UserRow),
    Existing(UserId),
}

#[async_trait::async_trait]
pub trait InvitationRows: Db {
    async fn insert_invitation(
        &self,
        row: &InvitationRow,
        token_digest: &[u8; 32],
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let args = args![
            row.id.to_string(),
            row.workspace_id,
            token_digest,
            &row.email_digest,
            &row.email_masked,
            row.role,
            &row.invited_by,
            row.created_at,
            row.expires_at
        ];
        let steps = vec![Step::new(&sql::INSERT_INVITATION, args)];
        self.transaction(steps, Audited::control(row.workspace_id, audit)).await.map(|_| ())
    }

    async fn invitations(&self, ws: WorkspaceId) -> Result<Vec<InvitationRow>, StoreError> {
        fetch_all(self, &sql::INVITATIONS, args![ws], invitation).await
    }

    async fn invitation_by_token(&self, digest: &[u8; 32]) -> Result<Option<InvitationRow>, StoreError> {
        fetch_optional(self, &sql::INVITATION_BY_TOKEN, args![digest], invitation).await
    }

    async fn pending_invitation_for(
        &self,
        email_digest: &[u8; 32],
        now: Timestamp,
    ) -> Result<Option<InvitationRow>, StoreError> {
        fetch_optional(self, &sql::PENDING_INVITATION_FOR, args![email_digest, now], invitation).await
    }

    async fn revoke_invitation(
        &self,
        ws: WorkspaceId,
        id: InvitationId,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let steps = vec![Step::required(&sql::REVOKE_INVITATION, args![ws, id.to_string(), now])];
        Ok(self.transaction(steps, Audited::control(ws, audit)).await?.first() == Some(&1))
    }

    /// Marks the invitation accepted and adds the membership (creating the user first when
    /// new); `false`, with nothing changed, when it was no longer pending.
    async fn accept_invitation(
        &self,
        row: &InvitationRow,
        joining: &Joining<'_>,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let ws = row.workspace_id;
        let mut steps = vec![Step::required(&sql::ACCEPT_INVITATION, args![ws, row.id.to_string(), now])];
        let user = match joining {
            Joining::NewUser(user) => {
                steps.push(insert_user(user));
                user.id
            }
            Joining::Existing(id) => *id,
        };
        steps.push(Step::new(&sql::INSERT_MEMBERSHIP, args![ws, user, row.role, now]));
        Ok(self.transaction(steps, Audited::control(ws, audit)).await?.first() == Some(&1))
    }

    async fn insert_password_reset(
        &self,
        token_digest: &[u8; 32],
        reset: &PasswordResetRow,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let args = args![token_digest, reset.user_id, reset.workspace_id, now, reset.expires_at];
        let steps = vec![Step::new(&sql::INSERT_PASSWORD_RESET, args)];
        self.transaction(steps, Audited::control(reset.workspace_id, audit)).await.map(|_| ())
    }

    async fn password_reset(&self, token_digest: &[u8; 32]) -> Result<Option<PasswordResetRow>, StoreError> {
        fetch_optional(self, &sql::PASSWORD_RESET, args![token_digest], |r| {
            Ok(PasswordResetRow {
                user_id: r.parsed(0, "user id")?,
                workspace_id: r.parsed(1, "workspace id")?,
                expires_at: r.at(2)?,
                used_at: r.opt_at(3)?,
            })
        })
        .await
    }

    /// Uses the reset once: the new password hash, every session of the user ended.
    async fn use_password_reset(
        &self,
        token_digest: &[u8; 32],
        reset: &PasswordResetRow,
        hash: &str,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let steps = vec![
            Step::required(&sql::USE_PASSWORD_RESET, args![token_digest, now]),
            Step::required(&sql::SET_PASSWORD, args![reset.user_id, hash, now]),
            Step::new(&sql::END_SESSIONS_OF, args![reset.user_id]),
            Step::new(&sql::END_RESETS_OF, args![reset.user_id, now]),
        ];
        let changed = self.transaction(steps, Audited::control(reset.workspace_id, audit)).await?;
        Ok(changed.get(1) == Some(&1))
    }
}

impl InvitationRows for SqliteBackend {}
impl InvitationRows for PostgresBackend {}

impl ControlStore {
    /// Records an invitation (whose token only the inviter sees, once).
    pub async fn create_invitation(
        &self,
        row: &InvitationRow,
        token_digest: &[u8; 32],
        by: &AuditContext,
    ) -> Result<(), StoreError> {
        let detail = json!({"role": row.role.as_str(), "email": row.email_masked, "expires_at": row.expires_at.0});
        let audit = by.event(row.created_at, actions::MEMBER_INVITED, "invitation", row.id).with_detail(detail);
        self.backend.insert_invitation(row, token_digest, &audit).await
    }

    /// The workspace's latest invitations, newest first.
    pub async fn invitations(&self, ws: WorkspaceId) -> Result<Vec<InvitationRow>, StoreError> {
        self.backend.invitations(ws).await
    }

    pub async fn invitation_by_token(&self, digest: &[u8; 32]) -> Result<Option<InvitationRow>, StoreError> {
        self.backend.invitation_by_token(digest).await
    }

    /// The newest invitation still open for this address, in any workspace.
    pub async fn pending_invitation_for(
        &self,
        email_digest: &[u8; 32],
        now: Timestamp,
    ) -> Result<Option<InvitationRow>, StoreError> {
        self.backend.pending_invitation_for(email_digest, now).await
    }

    /// Revokes a pending invitation; not found if it is not pending (or not this workspace's).
    pub async fn revoke_invitation(
        &self,
        ws: WorkspaceId,
        id: InvitationId,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<(), StoreError> {
        let audit = by.event(now, actions::INVITATION_REVOKED, "invitation", id);
        if self.backend.revoke_invitation(ws, id, now, &audit).await? { Ok(()) } else { Err(StoreError::NotFound) }
    }

    /// Accepts a pending invitation once; a conflict if it was accepted, revoked or expired
    /// meanwhile, or the user is a member already.
    pub async fn accept_invitation(
        &self,
        row: &InvitationRow,
        joining: Joining<'_>,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<UserId, StoreError> {
        let (user, new) = match &joining {
            Joining::NewUser(u) => (u.id, true),
            Joining::Existing(id) => (*id, false),
        };
        if !new && self.backend.memberships_of(user).await?.iter().any(|m| m.workspace_id == row.workspace_id) {
            return Err(StoreError::Conflict("already a member of this workspace"));
        }
        if let Joining::NewUser(u) = &joining
            && self.backend.user_by_email(&u.email_digest).await?.is_some()
        {
            return Err(StoreError::Conflict("a user with this email exists"));
        }
        let detail = json!({"role": row.role.as_str(), "invitation": row.id.to_string(), "new_user": new});
        let audit = by.event(now, actions::MEMBER_JOINED, "user", user).with_detail(detail);
        if self.backend.accept_invitation(row, &joining, now, &audit).await? {
            Ok(user)
        } else {
            Err(StoreError::Conflict("the invitation is no longer valid"))
        }
    }

    pub async fn create_password_reset(
        &self,
        token_digest: &[u8; 32],
        reset: &PasswordResetRow,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<(), StoreError> {
        let audit = by
            .event(now, actions::PASSWORD_RESET_ISSUED, "user", reset.user_id)
            .with_detail(json!({"expires_at": reset.expires_at.0}));
        self.backend.insert_password_reset(token_digest, reset, now, &audit).await
    }

    pub async fn password_reset(&self, token_digest: &[u8; 32]) -> Result<Option<PasswordResetRow>, StoreError> {
        self.backend.password_reset(token_digest).await
    }

    /// Sets the new password through a reset link, once; a conflict if the link was used or
    /// expired meanwhile.
    pub async fn use_password_reset(
        &self,
        token_digest: &[u8; 32],
        reset: &PasswordResetRow,
        hash: &str,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<(), StoreError> {
        let audit = by.event(now, actions::PASSWORD_RESET, "user", reset.user_id);
        if self.backend.use_password_reset(token_digest, reset, hash, now, &audit).await? {
            Ok(())
        } else {
            Err(StoreError::Conflict("the reset link is no longer valid"))
        }
    }
}
