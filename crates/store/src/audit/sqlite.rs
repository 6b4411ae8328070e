//! The audit trail on SQLite. Appends run inside the transaction of the action they record
//! (the single writer connection serialises chains).

use std::collections::BTreeMap;
use std::sync::Arc;

use chimatic_audit::{AuditEvent, ChainTip, GENESIS, HeadSigner, Stream};
use chimatic_domain::{Timestamp, WorkspaceId};
use rusqlite::{Transaction, params_from_iter};

use super::rows::*;
use super::sql;
use crate::db::args;
use crate::db::sqlite::run;
use crate::{SqliteBackend, StoreError};

/// Appends `events` to their workspaces' chains within `tx`.
pub(crate) fn append(
    tx: &Transaction<'_>,
    stream: Stream,
    events: &[(WorkspaceId, &AuditEvent)],
) -> Result<(), StoreError> {
    let statements = sql::of(stream);
    let mut tips: BTreeMap<WorkspaceId, ChainTip> = BTreeMap::new();
    for (ws, _) in events {
        if !tips.contains_key(ws) {
            let mut stmt = tx.prepare_cached(statements.tip.sqlite())?;
            let mut rows = stmt.query(params_from_iter(args![*ws].iter()))?;
            let tip = match rows.next()? {
                None => ChainTip::default(),
                Some(r) => ChainTip { next_seq: seq_of(r.get(0)?)?, head_hash: hash_at(r, 1)? },
            };
            tips.insert(*ws, tip);
        }
    }
    for (ws, event) in events {
        let Some(tip) = tips.get_mut(ws) else { continue };
        let entry = tip.append(*ws, stream, (*event).clone());
        run(tx, statements.insert_entry, entry_args(&entry))?;
    }
    for (ws, tip) in tips {
        let args = args![ws, seq_col(tip.next_seq), tip.head_hash.as_slice(), GENESIS.as_slice()];
        run(tx, statements.move_tip, args)?;
    }
    Ok(())
}

pub(crate) fn append_one(
    tx: &Transaction<'_>,
    stream: Stream,
    ws: WorkspaceId,
    event: &AuditEvent,
) -> Result<(), StoreError> {
    append(tx, stream, &[(ws, event)])
}

fn sign_chain(
    tx: &Transaction<'_>,
    ws: WorkspaceId,
    stream: Stream,
    signer: &HeadSigner,
    now: Timestamp,
) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(sql::of(stream).chain.sqlite())?;
    let found = stmt.query(params_from_iter(args![ws].iter()))?.next()?.map(|r| chain(r)).transpose()?;
    if let Some(c) = found {
        for (statement, args) in signed_head(stream, ws, &c, signer, now) {
            run(tx, statement, args)?;
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl AuditBackend for SqliteBackend {
    async fn append_audit(&self, stream: Stream, events: &[(WorkspaceId, AuditEvent)]) -> Result<(), StoreError> {
        let events = events.to_vec();
        self.write(move |tx| append(tx, stream, &events.iter().map(|(ws, e)| (*ws, e)).collect::<Vec<_>>())).await
    }

    async fn sign_audit_heads(
        &self,
        stream: Stream,
        signer: Arc<HeadSigner>,
        now: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.write(move |tx| {
            let stale: Vec<String> = tx
                .prepare_cached(sql::of(stream).unsigned.sqlite())?
                .query_map([limit], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for ws in &stale {
                sign_chain(tx, crate::backend::parse(ws, "workspace id")?, stream, &signer, now)?;
            }
            Ok(stale.len() as u64)
        })
        .await
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
        // SQLite has one writer at a time, across processes too: the batch is exclusive already.
        self.write(move |tx| {
            let statements = sql::of(stream);
            let oldest: Vec<(i64, i64, Vec<u8>)> = tx
                .prepare_cached(statements.oldest.sqlite())?
                .query_map(params_from_iter(args![ws, limit].iter()), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            let expired: Vec<_> = oldest.iter().take_while(|(_, at, _)| *at < before.0).collect();
            let Some((last_seq, _, last_hash)) = expired.last() else { return Ok(Some(0)) };
            run(tx, statements.prune_entries, args![ws, *last_seq])?;
            run(tx, statements.prune_heads, args![ws, *last_seq])?;
            run(tx, statements.move_anchor, args![ws, *last_seq, last_hash.as_slice()])?;
            sign_chain(tx, ws, stream, &signer, now)?;
            Ok(Some(expired.len() as u64))
        })
        .await
    }
}

/// After a statement that changed `changed` rows: when that is exactly one, appends `event` to
/// `ws`'s chain in the same transaction (an audited change of one row). Whether it was one.
pub(crate) fn audit_one_change(
    tx: &Transaction<'_>,
    changed: u64,
    stream: Stream,
    ws: WorkspaceId,
    event: &AuditEvent,
) -> Result<bool, StoreError> {
    if changed == 1 {
        append_one(tx, stream, ws, event)?;
    }
    Ok(changed == 1)
}
