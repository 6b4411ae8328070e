//! Second factors on the control plane: whether a user has a TOTP factor and the last time
//! step a code was accepted for (the shared secret itself is sealed in the primary region's
//! vault), recovery-code digests, sign-in challenges between the password and the code, and
//! a workspace's requirement that every member has a second factor.

use chimatic_audit::{AuditContext, AuditEvent, actions};
use chimatic_domain::{Timestamp, UserId, WorkspaceId};
use serde_json::json;

use super::sql;
use crate::db::{Audited, Db, Step, args, fetch_optional};
use crate::{ControlStore, PostgresBackend, SqliteBackend, StoreError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecondFactorRow {
    pub enrolled_at: Timestamp,
    /// The TOTP time step of the last accepted code.
    pub last_step: i64,
}

/// A password that was right, waiting for the second factor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeRow {
    pub user_id: UserId,
    pub workspace_id: WorkspaceId,
    pub expires_at: Timestamp,
    /// The identity provider the first step went through; `None`: a password.
    pub provider: Option<String>,
}

#[async_trait::async_trait]
pub trait SecondFactorRows: Db {
    async fn second_factor(&self, user: UserId) -> Result<Option<SecondFactorRow>, StoreError> {
        fetch_optional(self, &sql::SECOND_FACTOR, args![user], |r| {
            Ok(SecondFactorRow { enrolled_at: r.at(0)?, last_step: r.int(1)? })
        })
        .await
    }

    /// Records the factor (replacing any earlier one) with fresh recovery codes.
    async fn enrol_second_factor(
        &self,
        user: UserId,
        now: Timestamp,
        step: i64,
        recovery: &[[u8; 32]],
        audit: (WorkspaceId, &AuditEvent),
    ) -> Result<(), StoreError> {
        let mut steps = vec![
            Step::new(&sql::ENROL_SECOND_FACTOR, args![user, now, step]),
            Step::new(&sql::DELETE_RECOVERY_CODES, args![user]),
        ];
        steps.extend(recovery.iter().map(|d| Step::new(&sql::INSERT_RECOVERY_CODE, args![user, d])));
        self.transaction(steps, Audited::control(audit.0, audit.1)).await.map(|_| ())
    }

    async fn accept_step(&self, user: UserId, step: i64) -> Result<bool, StoreError> {
        Ok(self.execute(&sql::ACCEPT_STEP, args![user, step], None).await? == 1)
    }

    async fn use_recovery_code(
        &self,
        user: UserId,
        digest: &[u8; 32],
        now: Timestamp,
        audit: (WorkspaceId, &AuditEvent),
    ) -> Result<bool, StoreError> {
        let steps = vec![Step::required(&sql::USE_RECOVERY_CODE, args![user, digest, now])];
        Ok(self.transaction(steps, Audited::control(audit.0, audit.1)).await?.first() == Some(&1))
    }

    async fn recovery_codes_left(&self, user: UserId) -> Result<u32, StoreError> {
        let n = fetch_optional(self, &sql::RECOVERY_CODES_LEFT, args![user], |r| r.u32(0, "count")).await?;
        Ok(n.unwrap_or(0))
    }

    async fn remove_second_factor(&self, user: UserId, audit: (WorkspaceId, &AuditEvent)) -> Result<bool, StoreError> {
        let steps = vec![
            Step::required(&sql::DELETE_SECOND_FACTOR, args![user]),
            Step::new(&sql::DELETE_RECOVERY_CODES, args![user]),
        ];
        Ok(self.transaction(steps, Audited::control(audit.0, audit.1)).await?.first() == Some(&1))
    }

    async fn put_challenge(&self, digest: &[u8; 32], row: ChallengeRow) -> Result<(), StoreError> {
        let args = args![digest, row.user_id, row.workspace_id, row.expires_at, row.provider.as_deref()];
        self.execute(&sql::INSERT_CHALLENGE, args, None).await.map(|_| ())
    }

    async fn challenge(&self, digest: &[u8; 32]) -> Result<Option<ChallengeRow>, StoreError> {
        fetch_optional(self, &sql::CHALLENGE, args![digest], |r| {
            Ok(ChallengeRow {
                user_id: r.parsed(0, "user id")?,
                workspace_id: r.parsed(1, "workspace id")?,
                expires_at: r.at(2)?,
                provider: r.opt_text(3)?,
            })
        })
        .await
    }

    async fn end_challenge(&self, digest: &[u8; 32]) -> Result<(), StoreError> {
        self.execute(&sql::END_CHALLENGE, args![digest], None).await.map(|_| ())
    }

    async fn two_factor_required(&self, ws: WorkspaceId) -> Result<bool, StoreError> {
        Ok(fetch_optional(self, &sql::TWO_FACTOR_REQUIRED, args![ws], |r| r.flag(0)).await?.unwrap_or(false))
    }

    async fn set_two_factor_required(
        &self,
        ws: WorkspaceId,
        since: Option<Timestamp>,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let steps = vec![Step::required(&sql::SET_TWO_FACTOR_REQUIRED, args![ws, since])];
        self.transaction(steps, Audited::control(ws, audit)).await.map(|_| ())
    }
}

impl SecondFactorRows for SqliteBackend {}
impl SecondFactorRows for PostgresBackend {}

impl ControlStore {
    pub async fn second_factor(&self, user: UserId) -> Result<Option<SecondFactorRow>, StoreError> {
        self.backend.second_factor(user).await
    }

    /// Records a confirmed TOTP factor whose first code was for `step`, with the digests of
    /// fresh recovery codes; audited in `ws`'s chain.
    pub async fn enrol_second_factor(
        &self,
        user: UserId,
        step: i64,
        recovery: &[[u8; 32]],
        ws: WorkspaceId,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<(), StoreError> {
        let audit = by.event(now, actions::TWO_FACTOR_ENROLLED, "user", user);
        self.backend.enrol_second_factor(user, now, step, recovery, (ws, &audit)).await
    }

    /// Accepts a TOTP code's time step once: `false` for a step at or before the last one
    /// accepted (a replay).
    pub async fn accept_step(&self, user: UserId, step: i64) -> Result<bool, StoreError> {
        self.backend.accept_step(user, step).await
    }

    /// Uses a recovery code once (by digest); `false` if it is unknown or used.
    pub async fn use_recovery_code(
        &self,
        user: UserId,
        digest: &[u8; 32],
        ws: WorkspaceId,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<bool, StoreError> {
        let audit = by.event(now, actions::RECOVERY_CODE_USED, "user", user);
        self.backend.use_recovery_code(user, digest, now, (ws, &audit)).await
    }

    pub async fn recovery_codes_left(&self, user: UserId) -> Result<u32, StoreError> {
        self.backend.recovery_codes_left(user).await
    }

    pub async fn remove_second_factor(
        &self,
        user: UserId,
        ws: WorkspaceId,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<(), StoreError> {
        let audit = by.event(now, actions::TWO_FACTOR_DISABLED, "user", user);
        if self.backend.remove_second_factor(user, (ws, &audit)).await? { Ok(()) } else { Err(StoreError::NotFound) }
    }

    pub async fn put_challenge(&self, digest: &[u8; 32], row: ChallengeRow) -> Result<(), StoreError> {
        self.backend.put_challenge(digest, row).await
    }

    pub async fn challenge(&self, digest: &[u8; 32]) -> Result<Option<ChallengeRow>, StoreError> {
        self.backend.challenge(digest).await
    }

    pub async fn end_challenge(&self, digest: &[u8; 32]) -> Result<(), StoreError> {
        self.backend.end_challenge(digest).await
    }

    pub async fn two_factor_required(&self, ws: WorkspaceId) -> Result<bool, StoreError> {
        self.backend.two_factor_required(ws).await
    }

    pub async fn set_two_factor_required(
        &self,
        ws: WorkspaceId,
        required: bool,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<(), StoreError> {
        let audit = by
            .event(now, actions::TWO_FACTOR_REQUIREMENT_CHANGED, "workspace", ws)
            .with_detail(json!({"required": required}));
        self.backend.set_two_factor_required(ws, required.then_some(now), &audit).await
    }
}
