//! The audit trail on SQLite. Appends run inside the transaction of the action they record
//! (the single writer connection serialises chains).

use std::collections::BTreeMap;
use std::sync::Arc;

use chimatic_audit::{
    Actor, ActorKind, AuditEntry, AuditEvent, ChainTip, GENESIS, Hash, HeadSigner, Origin, Outcome, SignedHead, Stream,
};
use chimatic_domain::{Timestamp, WorkspaceId};
use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::SqliteBackend;
use crate::StoreError;
use crate::backend::audit_sql;
use crate::backend::*;

/// Appends `events` to their workspaces' chains within `tx`.
pub(crate) fn append(
    tx: &Transaction<'_>,
    stream: Stream,
    events: &[(WorkspaceId, &AuditEvent)],
) -> Result<(), StoreError> {
    let mut tips: BTreeMap<WorkspaceId, ChainTip> = BTreeMap::new();
    for (ws, _) in events {
        if !tips.contains_key(ws) {
            tips.insert(*ws, tip(tx, stream, *ws)?);
        }
    }
    for (ws, event) in events {
        let Some(tip) = tips.get_mut(ws) else { continue };
        let entry = tip.append(*ws, stream, (*event).clone());
        insert_entry(tx, &entry)?;
    }
    for (ws, tip) in tips {
        tx.prepare_cached(&audit_sql(
            stream,
            "INSERT INTO audit_chains (workspace_id, next_seq, head_hash, anchor_seq, anchor_hash, signed_seq) \
             VALUES (?1, ?2, ?3, 0, ?4, 0) \
             ON CONFLICT (workspace_id) DO UPDATE SET next_seq = excluded.next_seq, head_hash = excluded.head_hash",
        ))?
        .execute(params![
            ws.to_string(),
            seq_col(tip.next_seq),
            tip.head_hash.as_slice(),
            GENESIS.as_slice()
        ])?;
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

/// After a statement that changed `changed` rows: when that is exactly one, appends `event` to
/// `ws`'s chain in the same transaction (an audited change of one row). Whether it was one.
pub(crate) fn audit_one_change(
    tx: &Transaction<'_>,
    changed: usize,
    stream: Stream,
    ws: WorkspaceId,
    event: &AuditEvent,
) -> Result<bool, StoreError> {
    if changed == 1 {
        append_one(tx, stream, ws, event)?;
    }
    Ok(changed == 1)
}

fn tip(tx: &Transaction<'_>, stream: Stream, ws: WorkspaceId) -> Result<ChainTip, StoreError> {
    let row: Option<(i64, Vec<u8>)> = tx
        .prepare_cached(&audit_sql(stream, "SELECT next_seq, head_hash FROM audit_chains WHERE workspace_id = ?1"))?
        .query_row([ws.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match row {
        None => Ok(ChainTip::default()),
        Some((next, hash)) => Ok(ChainTip { next_seq: seq_of(next)?, head_hash: hash_of(&hash)? }),
    }
}

fn insert_entry(tx: &Transaction<'_>, e: &AuditEntry) -> Result<(), StoreError> {
    let (ev, stream) = (&e.event, e.stream);
    tx.prepare_cached(&audit_sql(
        stream,
        "INSERT INTO audit_log (workspace_id, seq, at, actor_kind, actor_id, actor_name, ip, user_agent, action, \
           target_kind, target_id, outcome, detail, prev_hash, hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    ))?
    .execute(params![
        e.workspace_id.to_string(),
        seq_col(e.seq),
        ev.at.0,
        ev.actor.kind.as_str(),
        ev.actor.id,
        ev.actor.name,
        ev.origin.ip,
        ev.origin.user_agent,
        ev.action,
        ev.target.kind,
        ev.target.id,
        ev.outcome.as_str(),
        ev.detail,
        e.prev_hash.as_slice(),
        e.hash.as_slice(),
    ])?;
    Ok(())
}

pub(crate) fn seq_col(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

pub(crate) fn seq_of(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt("audit sequence number"))
}

pub(crate) fn hash_of(bytes: &[u8]) -> Result<Hash, StoreError> {
    bytes.try_into().map_err(|_| StoreError::Corrupt("audit hash"))
}

const ENTRY_COLUMNS: &str = "workspace_id, seq, at, actor_kind, actor_id, actor_name, ip, user_agent, action, \
     target_kind, target_id, outcome, detail, prev_hash, hash";

type RawEntry = (
    String,
    i64,
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Vec<u8>,
    Vec<u8>,
);

fn raw_entry(r: &Row<'_>) -> rusqlite::Result<RawEntry> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
        r.get(13)?,
        r.get(14)?,
    ))
}

/// A stored entry; the stream is the store's own.
pub(crate) fn to_entry(stream: Stream, raw: RawEntry) -> Result<AuditEntry, StoreError> {
    let (
        ws,
        seq,
        at,
        actor_kind,
        actor_id,
        actor_name,
        ip,
        user_agent,
        action,
        target_kind,
        target_id,
        outcome,
        detail,
        prev,
        hash,
    ) = raw;
    Ok(AuditEntry {
        workspace_id: parse(&ws, "workspace id")?,
        stream,
        seq: seq_of(seq)?,
        event: AuditEvent {
            at: Timestamp(at),
            actor: Actor {
                kind: ActorKind::parse(&actor_kind).ok_or(StoreError::Corrupt("audit actor kind"))?,
                id: actor_id,
                name: actor_name,
            },
            origin: Origin { ip, user_agent },
            action,
            target: chimatic_audit::Target { kind: target_kind, id: target_id },
            outcome: Outcome::parse(&outcome).ok_or(StoreError::Corrupt("audit outcome"))?,
            detail,
        },
        prev_hash: hash_of(&prev)?,
        hash: hash_of(&hash)?,
    })
}

type RawHead = (String, i64, i64, i64, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);

fn to_head(stream: Stream, raw: RawHead) -> Result<SignedHead, StoreError> {
    let (ws, seq, signed_at, anchor_seq, anchor_hash, hash, public_key, signature) = raw;
    Ok(SignedHead {
        workspace_id: parse(&ws, "workspace id")?,
        stream,
        anchor_seq: seq_of(anchor_seq)?,
        anchor_hash: hash_of(&anchor_hash)?,
        seq: seq_of(seq)?,
        hash: hash_of(&hash)?,
        signed_at: Timestamp(signed_at),
        public_key: public_key.try_into().map_err(|_| StoreError::Corrupt("audit head key"))?,
        signature,
    })
}

fn chain_row(tx: &rusqlite::Connection, stream: Stream, ws: &str) -> Result<Option<ChainRow>, StoreError> {
    let raw: Option<(i64, Vec<u8>, i64, Vec<u8>)> = tx
        .prepare_cached(&audit_sql(
            stream,
            "SELECT next_seq, head_hash, anchor_seq, anchor_hash FROM audit_chains WHERE workspace_id = ?1",
        ))?
        .query_row([ws], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    raw.map(|(next, head, anchor, anchor_hash)| {
        Ok(ChainRow {
            next_seq: seq_of(next)?,
            head_hash: hash_of(&head)?,
            anchor_seq: seq_of(anchor)?,
            anchor_hash: hash_of(&anchor_hash)?,
        })
    })
    .transpose()
}

fn insert_head(tx: &Transaction<'_>, h: &SignedHead) -> Result<(), StoreError> {
    let stream = h.stream;
    tx.prepare_cached(&audit_sql(
        stream,
        "INSERT INTO audit_heads (workspace_id, seq, signed_at, anchor_seq, anchor_hash, hash, public_key, signature) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         ON CONFLICT (workspace_id, seq, signed_at) DO UPDATE SET anchor_seq = excluded.anchor_seq, \
           anchor_hash = excluded.anchor_hash, hash = excluded.hash, public_key = excluded.public_key, \
           signature = excluded.signature",
    ))?
    .execute(params![
        h.workspace_id.to_string(),
        seq_col(h.seq),
        h.signed_at.0,
        seq_col(h.anchor_seq),
        h.anchor_hash.as_slice(),
        h.hash.as_slice(),
        h.public_key.as_slice(),
        h.signature
    ])?;
    tx.prepare_cached(&audit_sql(stream, "UPDATE audit_chains SET signed_seq = ?2 WHERE workspace_id = ?1"))?
        .execute(params![h.workspace_id.to_string(), seq_col(h.seq)])?;
    Ok(())
}

fn sign_chain(
    tx: &Transaction<'_>,
    ws: WorkspaceId,
    stream: Stream,
    signer: &HeadSigner,
    now: Timestamp,
) -> Result<(), StoreError> {
    if let Some(c) = chain_row(tx, stream, &ws.to_string())? {
        let head = signer.sign(ws, stream, c.anchor_seq, c.anchor_hash, c.next_seq - 1, c.head_hash, now);
        insert_head(tx, &head)?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl AuditBackend for SqliteBackend {
    async fn append_audit(&self, stream: Stream, events: &[(WorkspaceId, AuditEvent)]) -> Result<(), StoreError> {
        let events = events.to_vec();
        self.write(move |tx| append(tx, stream, &events.iter().map(|(ws, e)| (*ws, e)).collect::<Vec<_>>())).await
    }

    async fn audit_page(
        &self,
        ws: WorkspaceId,
        stream: Stream,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let (before_at, before_seq) = filter.before.map(|(t, s)| (t.0, seq_col(s))).unwrap_or((i64::MAX, i64::MAX));
        let raws = self.read(|c| {
            let mut stmt = c.prepare_cached(&audit_sql(
                stream,
                &format!(
                    "SELECT {ENTRY_COLUMNS} FROM audit_log WHERE workspace_id = ?1 \
                   AND (at < ?2 OR (at = ?2 AND seq < ?3)) AND at >= ?4 AND at < ?5 \
                   AND (?6 IS NULL OR action = ?6) AND (?7 IS NULL OR actor_id = ?7) \
                 ORDER BY at DESC, seq DESC LIMIT ?8"
                ),
            ))?;
            let rows = stmt.query_map(
                params![
                    ws.to_string(),
                    before_at,
                    before_seq,
                    filter.from.map_or(i64::MIN, |t| t.0),
                    filter.to.map_or(i64::MAX, |t| t.0),
                    filter.action,
                    filter.actor_id,
                    filter.limit
                ],
                raw_entry,
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        raws.into_iter().map(|r| to_entry(stream, r)).collect()
    }

    async fn audit_entries(
        &self,
        ws: WorkspaceId,
        stream: Stream,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let raws = self.read(|c| {
            let mut stmt = c.prepare_cached(&audit_sql(
                stream,
                &format!(
                    "SELECT {ENTRY_COLUMNS} FROM audit_log WHERE workspace_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
                ),
            ))?;
            let rows = stmt.query_map(params![ws.to_string(), seq_col(after_seq), limit], raw_entry)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        raws.into_iter().map(|r| to_entry(stream, r)).collect()
    }

    async fn audit_chain(&self, ws: WorkspaceId, stream: Stream) -> Result<Option<ChainRow>, StoreError> {
        self.read(|c| chain_row(c, stream, &ws.to_string()))
    }

    async fn audit_heads(&self, ws: WorkspaceId, stream: Stream) -> Result<Vec<SignedHead>, StoreError> {
        let raws: Vec<RawHead> = self.read(|c| {
            let mut stmt = c.prepare_cached(&audit_sql(
                stream,
                "SELECT workspace_id, seq, signed_at, anchor_seq, anchor_hash, hash, public_key, signature \
                 FROM audit_heads WHERE workspace_id = ?1 ORDER BY seq, signed_at",
            ))?;
            let rows = stmt.query_map([ws.to_string()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        raws.into_iter().map(|r| to_head(stream, r)).collect()
    }

    async fn audit_chains(&self, stream: Stream) -> Result<Vec<WorkspaceId>, StoreError> {
        let ids: Vec<String> = self.read(|c| {
            let mut stmt =
                c.prepare_cached(&audit_sql(stream, "SELECT workspace_id FROM audit_chains ORDER BY workspace_id"))?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        ids.iter().map(|id| parse(id, "workspace id")).collect()
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
                .prepare_cached(&audit_sql(
                    stream,
                    "SELECT workspace_id FROM audit_chains WHERE signed_seq < next_seq - 1 LIMIT ?1",
                ))?
                .query_map([limit], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for ws in &stale {
                sign_chain(tx, parse(ws, "workspace id")?, stream, &signer, now)?;
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
        self.write(move |tx| {
            let id = ws.to_string();
            // Only a prefix goes: entries are removed from the old end, up to the first one
            // that is still within retention.
            let oldest: Vec<(i64, i64, Vec<u8>)> = tx
                .prepare_cached(&audit_sql(
                    stream,
                    "SELECT seq, at, hash FROM audit_log WHERE workspace_id = ?1 ORDER BY seq LIMIT ?2",
                ))?
                .query_map(params![id, limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            let expired: Vec<_> = oldest.iter().take_while(|(_, at, _)| *at < before.0).collect();
            let Some((last_seq, _, last_hash)) = expired.last() else { return Ok(Some(0)) };
            tx.prepare_cached(&audit_sql(stream, "DELETE FROM audit_log WHERE workspace_id = ?1 AND seq <= ?2"))?
                .execute(params![id, last_seq])?;
            tx.prepare_cached(&audit_sql(stream, "DELETE FROM audit_heads WHERE workspace_id = ?1 AND seq <= ?2"))?
                .execute(params![id, last_seq])?;
            tx.prepare_cached(&audit_sql(
                stream,
                "UPDATE audit_chains SET anchor_seq = ?2, anchor_hash = ?3 WHERE workspace_id = ?1",
            ))?
            .execute(params![id, last_seq, last_hash])?;
            sign_chain(tx, ws, stream, &signer, now)?;
            Ok(Some(expired.len() as u64))
        })
        .await
    }
}
