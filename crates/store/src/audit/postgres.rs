//! The audit trail on PostgreSQL. Appends run inside the transaction of the action they record
//! and lock their chains' rows (in workspace order, so two nodes never deadlock on them); the
//! locks are taken last, so they are held only until the commit.

use std::collections::BTreeMap;
use std::sync::Arc;

use chimatic_audit::{AuditEvent, ChainTip, GENESIS, HeadSigner, Stream};
use chimatic_domain::{Timestamp, WorkspaceId};
use sqlx::{PgConnection, Postgres, Row, Transaction};

use super::rows::*;
use super::sql;
use crate::db::postgres::{query, try_job_lock};
use crate::db::{args, arrays_of};
use crate::{PostgresBackend, StoreError};

/// Appends `events` to their workspaces' chains within `tx`.
pub(crate) async fn append(
    tx: &mut Transaction<'_, Postgres>,
    stream: Stream,
    events: &[(WorkspaceId, &AuditEvent)],
) -> Result<(), StoreError> {
    let statements = sql::of(stream);
    // A BTreeMap: chains are locked in workspace order.
    let mut tips: BTreeMap<WorkspaceId, ChainTip> = events.iter().map(|(ws, _)| (*ws, ChainTip::default())).collect();
    for (ws, tip) in tips.iter_mut() {
        query(statements.create_chain, args![*ws, GENESIS.as_slice()]).execute(&mut **tx).await?;
        let r = query(statements.lock_tip, args![*ws]).fetch_one(&mut **tx).await?;
        *tip = ChainTip { next_seq: seq_of(r.try_get(0)?)?, head_hash: hash_at(&r, 1)? };
    }
    let mut entries = Vec::with_capacity(events.len());
    for (ws, event) in events {
        if let Some(tip) = tips.get_mut(ws) {
            entries.push(tip.append(*ws, stream, (*event).clone()));
        }
    }
    match entries.as_slice() {
        [] => {}
        [one] => {
            query(statements.insert_entry, entry_args(one)).execute(&mut **tx).await?;
        }
        many => {
            let columns = arrays_of(many.iter().map(entry_args)).ok_or(StoreError::Corrupt("audit entry shape"))?;
            query(statements.insert_entries, columns).execute(&mut **tx).await?;
        }
    }
    for (ws, tip) in tips {
        let args = args![ws, seq_col(tip.next_seq), tip.head_hash.as_slice()];
        query(statements.move_tip, args).execute(&mut **tx).await?;
    }
    Ok(())
}

pub(crate) async fn append_one(
    tx: &mut Transaction<'_, Postgres>,
    stream: Stream,
    ws: WorkspaceId,
    event: &AuditEvent,
) -> Result<(), StoreError> {
    append(tx, stream, &[(ws, event)]).await
}

/// Signs the chain's head, locking its row first.
async fn sign_chain(
    tx: &mut PgConnection,
    ws: WorkspaceId,
    stream: Stream,
    signer: &HeadSigner,
    now: Timestamp,
) -> Result<(), StoreError> {
    let Some(r) = query(sql::of(stream).lock_chain, args![ws]).fetch_optional(&mut *tx).await? else {
        return Ok(());
    };
    for (statement, args) in signed_head(stream, ws, &chain(&r)?, signer, now) {
        query(statement, args).execute(&mut *tx).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl AuditBackend for PostgresBackend {
    async fn append_audit(&self, stream: Stream, events: &[(WorkspaceId, AuditEvent)]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        append(&mut tx, stream, &events.iter().map(|(ws, e)| (*ws, e)).collect::<Vec<_>>()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn sign_audit_heads(
        &self,
        stream: Stream,
        signer: Arc<HeadSigner>,
        now: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let stale = query(sql::of(stream).unsigned, args![limit]).fetch_all(&mut *tx).await?;
        for r in &stale {
            let ws: String = r.try_get(0)?;
            sign_chain(&mut tx, crate::backend::parse(&ws, "workspace id")?, stream, &signer, now).await?;
        }
        tx.commit().await?;
        Ok(stale.len() as u64)
    }

    async fn prune_audit(
        &self,
        ws: WorkspaceId,
        stream: Stream,
        before: Timestamp,
        limit: u32,
        signer: Arc<HeadSigner>,
        now: Timestamp,
    ) -> Result<Option<u64>, StoreError> {
        let statements = sql::of(stream);
        let mut tx = self.pool.begin().await?;
        if !try_job_lock(&mut tx, "audit-retention").await? {
            return Ok(None);
        }
        if query(statements.lock_chain, args![ws]).fetch_optional(&mut *tx).await?.is_none() {
            return Ok(Some(0));
        }
        let oldest = query(statements.oldest, args![ws, limit]).fetch_all(&mut *tx).await?;
        let mut expired = Vec::new();
        for r in &oldest {
            let (seq, at, hash): (i64, i64, Vec<u8>) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
            if at >= before.0 {
                break;
            }
            expired.push((seq, hash));
        }
        let Some((last_seq, last_hash)) = expired.last() else { return Ok(Some(0)) };
        query(statements.prune_entries, args![ws, *last_seq]).execute(&mut *tx).await?;
        query(statements.prune_heads, args![ws, *last_seq]).execute(&mut *tx).await?;
        query(statements.move_anchor, args![ws, *last_seq, last_hash.as_slice()]).execute(&mut *tx).await?;
        sign_chain(&mut tx, ws, stream, &signer, now).await?;
        tx.commit().await?;
        Ok(Some(expired.len() as u64))
    }
}
