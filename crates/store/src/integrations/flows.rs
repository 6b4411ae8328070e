//! Flows that connect a provider account over OAuth, between the redirect to the provider and
//! its callback: kept in the control store, the state as a digest, bound to the console
//! session or API key that started the flow, used once.

use chimatic_domain::{OAuthProvider, Timestamp, WorkspaceId};

use super::sql;
use crate::db::{Db, Step, args, write_all};
use crate::{ControlStore, PostgresBackend, SqliteBackend, StoreError};

/// What a flow keeps for its callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectFlowRow {
    pub provider: OAuthProvider,
    /// A digest of the console session or API key that started it.
    pub bound_to: [u8; 32],
    pub redirect_uri: String,
    pub pkce_verifier: String,
    /// The integration's name.
    pub name: String,
    /// Gmail: the sender address.
    pub send_as: Option<String>,
    pub expires_at: Timestamp,
}

#[async_trait::async_trait]
pub trait ConnectFlowRows: Db {
    /// Records a flow; abandoned flows past their time go in the same transaction.
    async fn put_connect_flow(
        &self,
        ws: WorkspaceId,
        state_digest: &[u8; 32],
        row: &ConnectFlowRow,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let insert = args![
            ws,
            state_digest,
            &row.bound_to,
            row.provider.as_str(),
            &row.redirect_uri,
            &row.pkce_verifier,
            &row.name,
            row.send_as.as_deref(),
            row.expires_at
        ];
        let steps =
            vec![Step::new(&sql::FORGET_CONNECT_FLOWS, args![now]), Step::new(&sql::INSERT_CONNECT_FLOW, insert)];
        self.transaction(steps, None).await.map(|_| ())
    }

    async fn take_connect_flow(
        &self,
        ws: WorkspaceId,
        state_digest: &[u8; 32],
        bound_to: &[u8; 32],
        now: Timestamp,
    ) -> Result<Option<ConnectFlowRow>, StoreError> {
        let args = args![ws, state_digest, bound_to, now];
        let taken = write_all(self, &sql::TAKE_CONNECT_FLOW, args, |r| {
            Ok(ConnectFlowRow {
                provider: r.parsed(0, "provider")?,
                bound_to: r.digest(1, "binding")?,
                redirect_uri: r.text(2)?,
                pkce_verifier: r.text(3)?,
                name: r.text(4)?,
                send_as: r.opt_text(5)?,
                expires_at: r.at(6)?,
            })
        })
        .await?;
        Ok(taken.into_iter().next())
    }
}

impl ConnectFlowRows for SqliteBackend {}
impl ConnectFlowRows for PostgresBackend {}

impl ControlStore {
    pub async fn put_connect_flow(
        &self,
        ws: WorkspaceId,
        state_digest: &[u8; 32],
        row: &ConnectFlowRow,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.backend.put_connect_flow(ws, state_digest, row, now).await
    }

    /// The flow behind a callback's state, once: only in its workspace, for the session or key
    /// that started it, before it expires. A state that does not fit leaves the flow to its
    /// owner.
    pub async fn take_connect_flow(
        &self,
        ws: WorkspaceId,
        state_digest: &[u8; 32],
        bound_to: &[u8; 32],
        now: Timestamp,
    ) -> Result<Option<ConnectFlowRow>, StoreError> {
        self.backend.take_connect_flow(ws, state_digest, bound_to, now).await
    }
}
