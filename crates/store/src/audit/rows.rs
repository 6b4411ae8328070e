//! The audit tables (`audit_log`, `audit_chains`, `audit_heads`, and the control store's
//! `control_` twins): one mapper per row type and one body for the reads; appending, signing
//! and retention lock differently per backend (`sqlite.rs`, `postgres.rs`).

use std::sync::Arc;

use chimatic_audit::{Actor, ActorKind, AuditEntry, AuditEvent, Hash, HeadSigner, Origin, Outcome, SignedHead, Stream};
use chimatic_domain::{Timestamp, WorkspaceId};

use super::sql;
use crate::StoreError;
use crate::db::{Arg, Columns, Db, args, fetch_all, fetch_optional};

/// Where a chain stands, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainRow {
    pub next_seq: u64,
    pub head_hash: chimatic_audit::Hash,
    pub anchor_seq: u64,
    pub anchor_hash: chimatic_audit::Hash,
}

/// Filters of an audit page, newest first. `before` is an exclusive position `(at, seq)`: rows
/// strictly older, or as old with a smaller sequence number.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub action: Option<String>,
    pub actor_id: Option<String>,
    pub before: Option<(Timestamp, u64)>,
    pub limit: u32,
}

pub(crate) fn seq_col(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

pub(crate) fn seq_of(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt("audit sequence number"))
}

pub(crate) fn hash_at(r: &dyn Columns, i: usize) -> Result<Hash, StoreError> {
    r.digest(i, "audit hash")
}

/// A row of `workspace_id, seq, at, actor_kind, actor_id, actor_name, ip, user_agent, action,
/// target_kind, target_id, outcome, detail, prev_hash, hash`; the stream is the store's own.
fn entry(stream: Stream, r: &dyn Columns) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        workspace_id: r.parsed(0, "workspace id")?,
        stream,
        seq: seq_of(r.int(1)?)?,
        event: AuditEvent {
            at: r.at(2)?,
            actor: Actor {
                kind: ActorKind::parse(&r.text(3)?).ok_or(StoreError::Corrupt("audit actor kind"))?,
                id: r.text(4)?,
                name: r.text(5)?,
            },
            origin: Origin { ip: r.text(6)?, user_agent: r.text(7)? },
            action: r.text(8)?,
            target: chimatic_audit::Target { kind: r.text(9)?, id: r.text(10)? },
            outcome: Outcome::parse(&r.text(11)?).ok_or(StoreError::Corrupt("audit outcome"))?,
            detail: r.text(12)?,
        },
        prev_hash: hash_at(r, 13)?,
        hash: hash_at(r, 14)?,
    })
}

/// A row of `workspace_id, seq, signed_at, anchor_seq, anchor_hash, hash, public_key, signature`.
fn head(stream: Stream, r: &dyn Columns) -> Result<SignedHead, StoreError> {
    Ok(SignedHead {
        workspace_id: r.parsed(0, "workspace id")?,
        stream,
        seq: seq_of(r.int(1)?)?,
        signed_at: r.at(2)?,
        anchor_seq: seq_of(r.int(3)?)?,
        anchor_hash: hash_at(r, 4)?,
        hash: hash_at(r, 5)?,
        public_key: r.digest(6, "audit head key")?,
        signature: r.blob(7)?,
    })
}

/// A row of `next_seq, head_hash, anchor_seq, anchor_hash`.
pub(crate) fn chain(r: &dyn Columns) -> Result<ChainRow, StoreError> {
    Ok(ChainRow {
        next_seq: seq_of(r.int(0)?)?,
        head_hash: hash_at(r, 1)?,
        anchor_seq: seq_of(r.int(2)?)?,
        anchor_hash: hash_at(r, 3)?,
    })
}

pub(crate) fn entry_args(e: &AuditEntry) -> Vec<Arg> {
    let ev = &e.event;
    args![
        e.workspace_id,
        seq_col(e.seq),
        ev.at,
        ev.actor.kind.as_str(),
        &ev.actor.id,
        &ev.actor.name,
        &ev.origin.ip,
        &ev.origin.user_agent,
        &ev.action,
        &ev.target.kind,
        &ev.target.id,
        ev.outcome.as_str(),
        &ev.detail,
        e.prev_hash.as_slice(),
        e.hash.as_slice()
    ]
}

/// The signed head of `chain` and the statements that store it: the head, then the chain's
/// signed position.
pub(crate) fn signed_head(
    stream: Stream,
    ws: WorkspaceId,
    c: &ChainRow,
    signer: &HeadSigner,
    now: Timestamp,
) -> [(&'static crate::db::Sql, Vec<Arg>); 2] {
    let h = signer.sign(ws, stream, c.anchor_seq, c.anchor_hash, c.next_seq - 1, c.head_hash, now);
    let statements = sql::of(stream);
    let head = args![
        ws,
        seq_col(h.seq),
        h.signed_at,
        seq_col(h.anchor_seq),
        h.anchor_hash.as_slice(),
        h.hash.as_slice(),
        h.public_key.as_slice(),
        h.signature
    ];
    [(statements.insert_head, head), (statements.mark_signed, args![ws, seq_col(h.seq)])]
}

/// The audit trail of a store (control or data). Audited actions append in their own
/// transaction through the backend's other methods; this is the rest: reads, standalone
/// entries, head signing and retention.
#[async_trait::async_trait]
pub trait AuditBackend: Db {
    /// Entries for actions that write nothing else (exports, rotations).
    async fn append_audit(&self, stream: Stream, events: &[(WorkspaceId, AuditEvent)]) -> Result<(), StoreError>;

    async fn audit_page(
        &self,
        ws: WorkspaceId,
        stream: Stream,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let (before_at, before_seq) = filter.before.map(|(t, s)| (t.0, seq_col(s))).unwrap_or((i64::MAX, i64::MAX));
        let args = args![
            ws,
            before_at,
            before_seq,
            filter.from.map_or(i64::MIN, |t| t.0),
            filter.to.map_or(i64::MAX, |t| t.0),
            filter.action.as_deref(),
            filter.actor_id.as_deref(),
            filter.limit
        ];
        let mut out = Vec::new();
        self.each_row(sql::of(stream).page, args, &mut |r| {
            out.push(entry(stream, r)?);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Entries after `after_seq`, ascending (export and verification read a chain in pages).
    async fn audit_entries(
        &self,
        ws: WorkspaceId,
        stream: Stream,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut out = Vec::new();
        self.each_row(sql::of(stream).entries_after, args![ws, seq_col(after_seq), limit], &mut |r| {
            out.push(entry(stream, r)?);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    async fn audit_chain(&self, ws: WorkspaceId, stream: Stream) -> Result<Option<ChainRow>, StoreError> {
        fetch_optional(self, sql::of(stream).chain, args![ws], chain).await
    }

    async fn audit_heads(&self, ws: WorkspaceId, stream: Stream) -> Result<Vec<SignedHead>, StoreError> {
        let mut out = Vec::new();
        self.each_row(sql::of(stream).heads, args![ws], &mut |r| {
            out.push(head(stream, r)?);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Every workspace with a chain in this store.
    async fn audit_chains(&self, stream: Stream) -> Result<Vec<WorkspaceId>, StoreError> {
        fetch_all(self, sql::of(stream).chains, args![], |r| r.parsed(0, "workspace id")).await
    }

    /// Signs the heads of up to `limit` chains that grew since their last signature; returns how many.
    async fn sign_audit_heads(
        &self,
        stream: Stream,
        signer: Arc<HeadSigner>,
        now: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError>;

    /// Removes up to `limit` of the chain's oldest entries older than `before`, moves the anchor
    /// past them and signs the new head, in one transaction. `None` if another node holds the job.
    async fn prune_audit(
        &self,
        ws: WorkspaceId,
        stream: Stream,
        before: Timestamp,
        limit: u32,
        signer: Arc<HeadSigner>,
        now: Timestamp,
    ) -> Result<Option<u64>, StoreError>;
}
