//! Sign-in through an OpenID Connect provider: flows between the redirect and the callback
//! (state kept as a digest, bound to the browser's pre-session, used once), and the provider
//! accounts linked to users.

use chimatic_domain::{Timestamp, UserId};

use super::sql;
use crate::db::{Db, Step, args, fetch_optional, write_all};
use crate::{ControlStore, PostgresBackend, SqliteBackend, StoreError};

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
}
