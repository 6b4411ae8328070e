//! Sign-in through an OpenID Connect provider: flows between the redirect and the callback
//! (state kept as a digest, bound to the browser's pre-session, used once), and the provider
//! accounts linked to users.

use chimatic_audit::{AuditContext, AuditEvent, actions};
use chimatic_domain::{Role, Timestamp, UserId, WorkspaceId};
use serde_json::json;

use super::sql;
use crate::db::{Audited, Db, Step, args, fetch_all, fetch_optional, write_all};
use crate::{ControlStore, PostgresBackend, SqliteBackend, StoreError};

/// An owner's single sign-on policy for their workspace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SsoPolicy {
    /// Email domains (lower-case) whose people the provider may add, with their role.
    pub domains: Vec<(String, Role)>,
    /// Members sign in through the provider (an owner with a second factor may still use a
    /// password).
    pub required: bool,
}

/// What a flow keeps for its callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsoFlowRow {
    pub pre_session_digest: [u8; 32],
    pub nonce: String,
    pub pkce_verifier: String,
    pub expires_at: Timestamp,
}

#[async_trait::async_trait]
pub trait IdentityRows: Db {
    /// Records a flow; abandoned flows past their time go in the same transaction.
    async fn put_sso_flow(&self, state_digest: &[u8; 32], row: &SsoFlowRow, now: Timestamp) -> Result<(), StoreError> {
        let steps = vec![
            Step::new(&sql::FORGET_SSO_FLOWS, args![now]),
            Step::new(
                &sql::INSERT_SSO_FLOW,
                args![state_digest, &row.pre_session_digest, &row.nonce, &row.pkce_verifier, row.expires_at],
            ),
        ];
        self.transaction(steps, None).await.map(|_| ())
    }

    async fn take_sso_flow(
        &self,
        state_digest: &[u8; 32],
        pre_session_digest: &[u8; 32],
        now: Timestamp,
    ) -> Result<Option<SsoFlowRow>, StoreError> {
        let args = args![state_digest, pre_session_digest, now];
        let taken = write_all(self, &sql::TAKE_SSO_FLOW, args, |r| {
            Ok(SsoFlowRow {
                pre_session_digest: r.digest(0, "pre-session digest")?,
                nonce: r.text(1)?,
                pkce_verifier: r.text(2)?,
                expires_at: r.at(3)?,
            })
        })
        .await?;
        Ok(taken.into_iter().next())
    }

    async fn user_by_identity(&self, issuer: &str, subject: &str) -> Result<Option<UserId>, StoreError> {
        fetch_optional(self, &sql::USER_BY_IDENTITY, args![issuer, subject], |r| r.parsed(0, "user id")).await
    }

    async fn link_identity(&self, issuer: &str, subject: &str, user: UserId, now: Timestamp) -> Result<(), StoreError> {
        self.execute(&sql::LINK_IDENTITY, args![issuer, subject, user, now], None).await.map(|_| ())
    }

    async fn sso_policy(&self, ws: WorkspaceId) -> Result<SsoPolicy, StoreError> {
        let domains = fetch_all(self, &sql::SSO_DOMAINS, args![ws], |r| Ok((r.text(0)?, r.parsed(1, "role")?))).await?;
        let required = fetch_optional(self, &sql::SSO_REQUIRED, args![ws], |r| r.flag(0)).await?.unwrap_or(false);
        Ok(SsoPolicy { domains, required })
    }

    async fn set_sso_policy(
        &self,
        ws: WorkspaceId,
        policy: &SsoPolicy,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut steps = vec![
            Step::required(&sql::SET_SSO_REQUIRED, args![ws, policy.required.then_some(now)]),
            Step::new(&sql::CLEAR_SSO_DOMAINS, args![ws]),
        ];
        for (domain, role) in &policy.domains {
            steps.push(Step::new(&sql::INSERT_SSO_DOMAIN, args![domain, ws, role.as_str(), now]));
        }
        self.transaction(steps, Audited::control(ws, audit)).await.map(|_| ())
    }

    async fn sso_domain_workspace(&self, domain: &str) -> Result<Option<(WorkspaceId, Role)>, StoreError> {
        fetch_optional(self, &sql::SSO_DOMAIN_WORKSPACE, args![domain], |r| {
            Ok((r.parsed(0, "workspace id")?, r.parsed(1, "role")?))
        })
        .await
    }
}

impl IdentityRows for SqliteBackend {}
impl IdentityRows for PostgresBackend {}

impl ControlStore {
    pub async fn put_sso_flow(
        &self,
        state_digest: &[u8; 32],
        row: &SsoFlowRow,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.backend.put_sso_flow(state_digest, row, now).await
    }

    /// The flow behind a callback's state, once: only for the browser that started it, only
    /// before it expires; it is gone afterwards either way for that browser.
    pub async fn take_sso_flow(
        &self,
        state_digest: &[u8; 32],
        pre_session_digest: &[u8; 32],
        now: Timestamp,
    ) -> Result<Option<SsoFlowRow>, StoreError> {
        self.backend.take_sso_flow(state_digest, pre_session_digest, now).await
    }

    pub async fn user_by_identity(&self, issuer: &str, subject: &str) -> Result<Option<UserId>, StoreError> {
        self.backend.user_by_identity(issuer, subject).await
    }

    pub async fn link_identity(
        &self,
        issuer: &str,
        subject: &str,
        user: UserId,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.backend.link_identity(issuer, subject, user, now).await
    }

    pub async fn sso_policy(&self, ws: WorkspaceId) -> Result<SsoPolicy, StoreError> {
        self.backend.sso_policy(ws).await
    }

    /// Replaces the workspace's policy. Requiring sign-on ends its members' password sessions at
    /// once (the session query leaves them out), an owner's with a second factor excepted.
    pub async fn set_sso_policy(
        &self,
        ws: WorkspaceId,
        policy: &SsoPolicy,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<(), StoreError> {
        let domains: Vec<serde_json::Value> =
            policy.domains.iter().map(|(d, r)| json!({"domain": d, "role": r.as_str()})).collect();
        let detail = json!({"domains": domains, "required": policy.required});
        let audit = by.event(now, actions::SSO_POLICY_CHANGED, "workspace", ws).with_detail(detail);
        self.backend.set_sso_policy(ws, policy, now, &audit).await
    }

    /// The workspace (the first to allow it) that admits people of this email domain, with
    /// their role.
    pub async fn sso_domain_workspace(&self, domain: &str) -> Result<Option<(WorkspaceId, Role)>, StoreError> {
        self.backend.sso_domain_workspace(domain).await
    }
}
