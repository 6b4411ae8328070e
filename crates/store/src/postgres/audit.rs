//! The audit trail on PostgreSQL. Appends run inside the transaction of the action they record
//! and lock their chains' rows (in workspace order, so two nodes never deadlock on them); the
//! locks are taken last, so they are held only until the commit.

use std::collections::BTreeMap;
use std::sync::Arc;

use chimatic_audit::{
    Actor, ActorKind, AuditEntry, AuditEvent, ChainTip, GENESIS, HeadSigner, Origin, Outcome, SignedHead, Stream,
};
use chimatic_domain::{Timestamp, WorkspaceId};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row, Transaction};

use super::{PostgresBackend, try_job_lock};
use crate::StoreError;
use crate::backend::audit_sql;
use crate::backend::*;
use crate::sqlite::audit::{hash_of, seq_col, seq_of};

/// Appends `events` to their workspaces' chains within `tx`.
pub(crate) async fn append(
    tx: &mut Transaction<'_, Postgres>,
    stream: Stream,
    events: &[(WorkspaceId, &AuditEvent)],
) -> Result<(), StoreError> {
    let mut tips: BTreeMap<WorkspaceId, ChainTip> = events.iter().map(|(ws, _)| (*ws, ChainTip::default())).collect();
    for (ws, tip) in tips.iter_mut() {
        *tip = lock_tip(tx, stream, *ws).await?;
    }
    let mut entries = Vec::with_capacity(events.len());
    for (ws, event) in events {
        if let Some(tip) = tips.get_mut(ws) {
            entries.push(tip.append(*ws, stream, (*event).clone()));
        }
    }
    for e in &entries {
        insert_entry(tx, e).await?;
    }
    for (ws, tip) in tips {
        sqlx::query(sqlx::AssertSqlSafe(audit_sql(
            stream,
            "UPDATE audit_chains SET next_seq = $2, head_hash = $3 WHERE workspace_id = $1",
        )))
        .bind(ws.to_string())
        .bind(seq_col(tip.next_seq))
        .bind(tip.head_hash.as_slice())
        .execute(&mut **tx)
        .await?;
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

async fn lock_tip(tx: &mut Transaction<'_, Postgres>, stream: Stream, ws: WorkspaceId) -> Result<ChainTip, StoreError> {
    let id = ws.to_string();
    sqlx::query(sqlx::AssertSqlSafe(audit_sql(
        stream,
        "INSERT INTO audit_chains (workspace_id, next_seq, head_hash, anchor_seq, anchor_hash, signed_seq) \
         VALUES ($1, 1, $2, 0, $2, 0) ON CONFLICT DO NOTHING",
    )))
    .bind(&id)
    .bind(GENESIS.as_slice())
    .execute(&mut **tx)
    .await?;
    let (next, hash): (i64, Vec<u8>) = sqlx::query_as(sqlx::AssertSqlSafe(audit_sql(
        stream,
        "SELECT next_seq, head_hash FROM audit_chains WHERE workspace_id = $1 FOR UPDATE",
    )))
    .bind(&id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(ChainTip { next_seq: seq_of(next)?, head_hash: hash_of(&hash)? })
}

async fn insert_entry(tx: &mut Transaction<'_, Postgres>, e: &AuditEntry) -> Result<(), StoreError> {
    let (ev, stream) = (&e.event, e.stream);
    sqlx::query(sqlx::AssertSqlSafe(audit_sql(
        stream,
        "INSERT INTO audit_log (workspace_id, seq, at, actor_kind, actor_id, actor_name, ip, user_agent, action, \
           target_kind, target_id, outcome, detail, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )))
    .bind(e.workspace_id.to_string())
    .bind(seq_col(e.seq))
    .bind(ev.at.0)
    .bind(ev.actor.kind.as_str())
    .bind(&ev.actor.id)
    .bind(&ev.actor.name)
    .bind(&ev.origin.ip)
    .bind(&ev.origin.user_agent)
    .bind(&ev.action)
    .bind(&ev.target.kind)
    .bind(&ev.target.id)
    .bind(ev.outcome.as_str())
    .bind(&ev.detail)
    .bind(e.prev_hash.as_slice())
    .bind(e.hash.as_slice())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

const ENTRY_COLUMNS: &str = "workspace_id, seq, at, actor_kind, actor_id, actor_name, ip, user_agent, action, \
     target_kind, target_id, outcome, detail, prev_hash, hash";

fn to_entry(stream: Stream, r: &PgRow) -> Result<AuditEntry, StoreError> {
    let ws: String = r.try_get(0)?;
    let actor_kind: String = r.try_get(3)?;
    let outcome: String = r.try_get(11)?;
    let prev: Vec<u8> = r.try_get(13)?;
    let hash: Vec<u8> = r.try_get(14)?;
    Ok(AuditEntry {
        workspace_id: parse(&ws, "workspace id")?,
        stream,
        seq: seq_of(r.try_get(1)?)?,
        event: AuditEvent {
            at: Timestamp(r.try_get(2)?),
            actor: Actor {
                kind: ActorKind::parse(&actor_kind).ok_or(StoreError::Corrupt("audit actor kind"))?,
                id: r.try_get(4)?,
                name: r.try_get(5)?,
            },
            origin: Origin { ip: r.try_get(6)?, user_agent: r.try_get(7)? },
            action: r.try_get(8)?,
            target: chimatic_audit::Target { kind: r.try_get(9)?, id: r.try_get(10)? },
            outcome: Outcome::parse(&outcome).ok_or(StoreError::Corrupt("audit outcome"))?,
            detail: r.try_get(12)?,
        },
        prev_hash: hash_of(&prev)?,
        hash: hash_of(&hash)?,
    })
}

fn to_head(stream: Stream, r: &PgRow) -> Result<SignedHead, StoreError> {
    let ws: String = r.try_get(0)?;
    let anchor_hash: Vec<u8> = r.try_get(4)?;
    let hash: Vec<u8> = r.try_get(5)?;
    let public_key: Vec<u8> = r.try_get(6)?;
    Ok(SignedHead {
        workspace_id: parse(&ws, "workspace id")?,
        stream,
        seq: seq_of(r.try_get(1)?)?,
        signed_at: Timestamp(r.try_get(2)?),
        anchor_seq: seq_of(r.try_get(3)?)?,
        anchor_hash: hash_of(&anchor_hash)?,
        hash: hash_of(&hash)?,
        public_key: public_key.try_into().map_err(|_| StoreError::Corrupt("audit head key"))?,
        signature: r.try_get(7)?,
    })
}

async fn chain_row<'e>(
    exec: impl sqlx::Executor<'e, Database = Postgres>,
    stream: Stream,
    ws: &str,
    lock: bool,
) -> Result<Option<ChainRow>, StoreError> {
    let sql = if lock {
        sqlx::AssertSqlSafe(audit_sql(
            stream,
            "SELECT next_seq, head_hash, anchor_seq, anchor_hash FROM audit_chains WHERE workspace_id = $1 FOR UPDATE",
        ))
    } else {
        sqlx::AssertSqlSafe(audit_sql(
            stream,
            "SELECT next_seq, head_hash, anchor_seq, anchor_hash FROM audit_chains WHERE workspace_id = $1",
        ))
    };
    let raw: Option<(i64, Vec<u8>, i64, Vec<u8>)> = sqlx::query_as(sql).bind(ws).fetch_optional(exec).await?;
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

/// Signs the chain's head; the chain row must already be locked by `tx`.
async fn sign_chain(
    tx: &mut Transaction<'_, Postgres>,
    ws: WorkspaceId,
    stream: Stream,
    signer: &HeadSigner,
    now: Timestamp,
) -> Result<(), StoreError> {
    let Some(c) = chain_row(&mut **tx, stream, &ws.to_string(), true).await? else { return Ok(()) };
    let h = signer.sign(ws, stream, c.anchor_seq, c.anchor_hash, c.next_seq - 1, c.head_hash, now);
    sqlx::query(sqlx::AssertSqlSafe(audit_sql(
        stream,
        "INSERT INTO audit_heads (workspace_id, seq, signed_at, anchor_seq, anchor_hash, hash, public_key, signature) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (workspace_id, seq, signed_at) DO UPDATE SET anchor_seq = excluded.anchor_seq, \
           anchor_hash = excluded.anchor_hash, hash = excluded.hash, public_key = excluded.public_key, \
           signature = excluded.signature",
    )))
    .bind(ws.to_string())
    .bind(seq_col(h.seq))
    .bind(h.signed_at.0)
    .bind(seq_col(h.anchor_seq))
    .bind(h.anchor_hash.as_slice())
    .bind(h.hash.as_slice())
    .bind(h.public_key.as_slice())
    .bind(&h.signature)
    .execute(&mut **tx)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(audit_sql(
        stream,
        "UPDATE audit_chains SET signed_seq = $2 WHERE workspace_id = $1",
    )))
    .bind(ws.to_string())
    .bind(seq_col(h.seq))
    .execute(&mut **tx)
    .await?;
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

    async fn audit_page(
        &self,
        ws: WorkspaceId,
        stream: Stream,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let (before_at, before_seq) = filter.before.map(|(t, s)| (t.0, seq_col(s))).unwrap_or((i64::MAX, i64::MAX));
        let rows = sqlx::query(sqlx::AssertSqlSafe(audit_sql(
            stream,
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM audit_log WHERE workspace_id = $1 \
               AND (at < $2 OR (at = $2 AND seq < $3)) AND at >= $4 AND at < $5 \
               AND ($6::TEXT IS NULL OR action = $6) AND ($7::TEXT IS NULL OR actor_id = $7) \
             ORDER BY at DESC, seq DESC LIMIT $8"
            ),
        )))
        .bind(ws.to_string())
        .bind(before_at)
        .bind(before_seq)
        .bind(filter.from.map_or(i64::MIN, |t| t.0))
        .bind(filter.to.map_or(i64::MAX, |t| t.0))
        .bind(&filter.action)
        .bind(&filter.actor_id)
        .bind(i64::from(filter.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| to_entry(stream, r)).collect()
    }

    async fn audit_entries(
        &self,
        ws: WorkspaceId,
        stream: Stream,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(audit_sql(
            stream,
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM audit_log WHERE workspace_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
            ),
        )))
        .bind(ws.to_string())
        .bind(seq_col(after_seq))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| to_entry(stream, r)).collect()
    }

    async fn audit_chain(&self, ws: WorkspaceId, stream: Stream) -> Result<Option<ChainRow>, StoreError> {
        chain_row(&self.pool, stream, &ws.to_string(), false).await
    }

    async fn audit_heads(&self, ws: WorkspaceId, stream: Stream) -> Result<Vec<SignedHead>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(audit_sql(
            stream,
            "SELECT workspace_id, seq, signed_at, anchor_seq, anchor_hash, hash, public_key, signature \
             FROM audit_heads WHERE workspace_id = $1 ORDER BY seq, signed_at",
        )))
        .bind(ws.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| to_head(stream, r)).collect()
    }

    async fn audit_chains(&self, stream: Stream) -> Result<Vec<WorkspaceId>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(audit_sql(
            stream,
            "SELECT workspace_id FROM audit_chains ORDER BY workspace_id",
        )))
        .fetch_all(&self.pool)
        .await?;
        ids.iter().map(|id| parse(id, "workspace id")).collect()
    }

    async fn sign_audit_heads(
        &self,
        stream: Stream,
        signer: Arc<HeadSigner>,
        now: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Chains being appended to right now are skipped and signed next time.
        let stale: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(audit_sql(
            stream,
            "SELECT workspace_id FROM audit_chains WHERE signed_seq < next_seq - 1 \
             ORDER BY workspace_id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        for ws in &stale {
            sign_chain(&mut tx, parse(ws, "workspace id")?, stream, &signer, now).await?;
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
        let mut tx = self.pool.begin().await?;
        if !try_job_lock(&mut tx, "audit-retention").await? {
            return Ok(None);
        }
        let id = ws.to_string();
        if chain_row(&mut *tx, stream, &id, true).await?.is_none() {
            return Ok(Some(0));
        }
        let oldest: Vec<(i64, i64, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe(audit_sql(
            stream,
            "SELECT seq, at, hash FROM audit_log WHERE workspace_id = $1 ORDER BY seq LIMIT $2",
        )))
        .bind(&id)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let expired: Vec<_> = oldest.iter().take_while(|(_, at, _)| *at < before.0).collect();
        let Some((last_seq, _, last_hash)) = expired.last() else { return Ok(Some(0)) };
        sqlx::query(sqlx::AssertSqlSafe(audit_sql(
            stream,
            "DELETE FROM audit_log WHERE workspace_id = $1 AND seq <= $2",
        )))
        .bind(&id)
        .bind(last_seq)
        .execute(&mut *tx)
        .await?;
        sqlx::query(sqlx::AssertSqlSafe(audit_sql(
            stream,
            "DELETE FROM audit_heads WHERE workspace_id = $1 AND seq <= $2",
        )))
        .bind(&id)
        .bind(last_seq)
        .execute(&mut *tx)
        .await?;
        sqlx::query(sqlx::AssertSqlSafe(audit_sql(
            stream,
            "UPDATE audit_chains SET anchor_seq = $2, anchor_hash = $3 WHERE workspace_id = $1",
        )))
        .bind(&id)
        .bind(last_seq)
        .bind(last_hash)
        .execute(&mut *tx)
        .await?;
        sign_chain(&mut tx, ws, stream, &signer, now).await?;
        tx.commit().await?;
        Ok(Some(expired.len() as u64))
    }
}
