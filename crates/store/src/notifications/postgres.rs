//! The hot paths on PostgreSQL: claims take rows with `FOR UPDATE SKIP LOCKED`, so nodes never
//! wait on each other's jobs, and background jobs run under their advisory lock.

use std::time::Duration;

use chimatic_audit::Stream;
use chimatic_domain::{EventId, NotificationId, Timestamp, WorkspaceId};
use sqlx::{PgConnection, Row};

use super::rows::*;
use super::sql;
use crate::audit::postgres as audit;
use crate::db::fairness::WorkspaceWalk;
use crate::db::postgres::{query, try_job_lock};
use crate::db::{Arg, Columns, Sql, args};
use crate::{ChannelRow, PostgresBackend, StoreError};

/// Runs one statement in `tx`; the rows it changed.
async fn run(tx: &mut PgConnection, statement: &'static Sql, args: Vec<Arg>) -> Result<u64, StoreError> {
    Ok(query(statement, args).execute(tx).await?.rows_affected())
}

async fn insert(tx: &mut PgConnection, ws: WorkspaceId, row: &NewNotificationRow) -> Result<(), StoreError> {
    for (statement, args) in insert_notification(ws, row) {
        run(tx, statement, args).await?;
    }
    Ok(())
}

/// Claims an idempotency key for `holder` unless a live claim holds it; that claim's holder.
async fn claim_key(
    tx: &mut PgConnection,
    ws: WorkspaceId,
    digest: &[u8; 32],
    holder: &str,
    now: Timestamp,
    window: Duration,
) -> Result<Option<String>, StoreError> {
    let [claim, holder_of] = claim_idempotency(ws, digest, holder, now, window);
    if query(&sql::CLAIM_IDEMPOTENCY, claim).fetch_optional(&mut *tx).await?.is_some() {
        return Ok(None);
    }
    let existing = query(&sql::IDEMPOTENCY_HOLDER, holder_of).fetch_one(&mut *tx).await?;
    Ok(Some(existing.try_get(0)?))
}

/// Records one attempt and moves its job on; `false` when the notification is gone (a subscriber
/// or workspace erased while the delivery was on the wire): no attempt is recorded, and the queue
/// row left for it, if any, is removed. The queue row is locked before the notification, in the
/// order the erasures take them, so the two cannot deadlock.
async fn complete_attempt(
    tx: &mut PgConnection,
    job: &ClaimedJob,
    done: &CompletedAttempt,
) -> Result<bool, StoreError> {
    let (move_sql, move_args) = move_job(job, done.outcome);
    let moved = run(tx, move_sql, move_args).await? == 1;
    let (count_sql, count_args) = count_attempt(job, done, moved);
    if run(tx, count_sql, count_args).await? == 0 {
        run(tx, &sql::DEQUEUE_GONE, args![job.notification_id]).await?;
        return Ok(false);
    }
    run(tx, &sql::INSERT_ATTEMPT, insert_attempt(job, done)).await?;
    Ok(true)
}

#[async_trait::async_trait]
impl NotificationRows for PostgresBackend {
    async fn insert_notifications(
        &self,
        rows: &[(WorkspaceId, NewNotificationRow)],
        idempotency_window: Duration,
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut outcomes = Vec::with_capacity(rows.len());
        for (ws, row) in rows {
            if let Some(digest) = &row.idempotency_digest
                && let Some(existing) =
                    claim_key(&mut tx, *ws, digest, &row.id.to_string(), row.created_at, idempotency_window).await?
            {
                outcomes.push(InsertOutcome::Existing(crate::backend::parse(&existing, "notification id")?));
                continue;
            }
            insert(&mut tx, *ws, row).await?;
            outcomes.push(InsertOutcome::Created);
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn insert_event(
        &self,
        ws: WorkspaceId,
        event: &NewEvent,
        idempotency_window: Duration,
    ) -> Result<Option<EventId>, StoreError> {
        let mut tx = self.pool.begin().await?;
        if let Some(digest) = &event.idempotency_digest
            && let Some(existing) =
                claim_key(&mut tx, ws, digest, &event.id.to_string(), event.created_at, idempotency_window).await?
        {
            return Ok(Some(crate::backend::parse(&existing, "event id")?));
        }
        for row in &event.rows {
            insert(&mut tx, ws, row).await?;
        }
        for fanout in &event.fanouts {
            run(&mut tx, &sql::INSERT_FANOUT, insert_fanout(ws, fanout)).await?;
        }
        tx.commit().await?;
        Ok(None)
    }

    async fn delivery_rows(
        &self,
        ws: WorkspaceId,
        id: NotificationId,
    ) -> Result<Option<(Vec<u8>, Target, Option<ChannelRow>)>, StoreError> {
        let Some(r) = query(&sql::DELIVERY, args![ws, id]).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let row: &dyn Columns = &r;
        let target = route_at(row, 1)?.target()?;
        let channel = match target {
            // A deactivated or deleted channel is out of use: nothing is delivered to it.
            Target::Channel(_) if row.opt_text(9)?.is_none() => return Ok(None),
            // After the payload and the route columns.
            Target::Channel(_) => Some(crate::channels::channel_row(row, 9)?),
            Target::Subscriber(_) => None,
        };
        Ok(Some((row.blob(0)?, target, channel)))
    }

    /// The same fair claim as the SQLite backend (an equal share per workspace, round-robin, then
    /// fill in due order), with `SKIP LOCKED` so concurrent nodes take disjoint jobs.
    async fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let cursor = self.claim_cursor.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let mut tx = self.pool.begin().await?;
        let mut walk = WorkspaceWalk::after(&cursor);
        while let Some(at) = walk.next_query() {
            let next = query(&sql::NEXT_QUEUED_WORKSPACE, args![at]).fetch_one(&mut *tx).await?;
            walk.answer(next.try_get(0)?);
        }
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let share = walk.share(limit);
        let mut jobs = Vec::new();
        let mut last_served = cursor.clone();
        for ws in &walk.found {
            if jobs.len() >= limit {
                break;
            }
            let args = args![lease_until, &token, ws.as_str(), now, share];
            for r in query(&sql::CLAIM_IN_WORKSPACE, args).fetch_all(&mut *tx).await? {
                jobs.push(claimed(&r, &token)?);
            }
            last_served.clone_from(ws);
        }
        if jobs.len() < limit {
            let rest = i64::try_from(limit - jobs.len()).unwrap_or(i64::MAX);
            for r in query(&sql::CLAIM_ANY, args![lease_until, &token, now, rest]).fetch_all(&mut *tx).await? {
                jobs.push(claimed(&r, &token)?);
            }
        }
        tx.commit().await?;
        *self.claim_cursor.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = last_served;
        Ok(jobs)
    }

    async fn remove_payloads(
        &self,
        ws: WorkspaceId,
        before: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<Option<u64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !try_job_lock(&mut tx, "payload_retention").await? {
            return Ok(None);
        }
        let n = run(&mut tx, &sql::REMOVE_PAYLOADS, args![ws, before, now, limit]).await?;
        run(&mut tx, &sql::DELETE_DONE_FANOUTS, args![ws, before]).await?;
        tx.commit().await?;
        Ok(Some(n))
    }

    async fn complete_attempts(&self, done: &[(ClaimedJob, CompletedAttempt)]) -> Result<Vec<bool>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut recorded = Vec::with_capacity(done.len());
        for (job, attempt) in done {
            recorded.push(complete_attempt(&mut tx, job, attempt).await?);
        }
        let events: Vec<_> =
            done.iter().zip(&recorded).filter(|(_, r)| **r).map(|((job, a), _)| (job.workspace_id, &a.audit)).collect();
        audit::append(&mut tx, Stream::Data, &events).await?;
        tx.commit().await?;
        Ok(recorded)
    }

    async fn claim_fanout(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<(WorkspaceId, FanoutRow)>, StoreError> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let row = query(&sql::CLAIM_FANOUT, args![now, lease_until, &token]).fetch_optional(&self.pool).await?;
        row.map(|r| claimed_fanout(&r, token)).transpose()
    }
}
