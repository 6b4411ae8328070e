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
use crate::db::{Arg, Columns, Sql, args, arrays_of};
use crate::{PostgresBackend, StoreError};

/// Runs one statement in `tx`; the rows it changed.
async fn run(tx: &mut PgConnection, statement: &'static Sql, args: Vec<Arg>) -> Result<u64, StoreError> {
    Ok(query(statement, args).execute(tx).await?.rows_affected())
}

/// Inserts notifications and queues the `queued` ones, all in one statement. Fails with
/// `Conflict` if a row's channel was deactivated since it was checked: the group commit then
/// retries each row alone, so only that one fails.
async fn insert_many<'r>(
    tx: &mut PgConnection,
    rows: impl IntoIterator<Item = (WorkspaceId, &'r NewNotificationRow)>,
) -> Result<(), StoreError> {
    let args: Vec<Vec<Arg>> = rows.into_iter().map(|(ws, row)| notification_args(ws, row)).collect();
    if args.is_empty() {
        return Ok(());
    }
    let expected = args.len();
    let columns = arrays_of(args).ok_or(StoreError::Corrupt("notification row shape"))?;
    let inserted = query(&sql::INSERT_MANY, columns).fetch_all(tx).await?.len();
    if inserted != expected {
        return Err(StoreError::Conflict(crate::channels::CHANNEL_DEACTIVATED));
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

/// The ids a statement returns (its first column).
async fn returned_ids(
    tx: &mut PgConnection,
    statement: &'static Sql,
    args: Vec<Arg>,
) -> Result<std::collections::HashSet<String>, StoreError> {
    let rows = query(statement, args).fetch_all(tx).await?;
    Ok(rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?)
}

/// [`complete_attempt`] for a batch of distinct notifications, in two statements (and one more
/// only if some notification is gone).
async fn complete_batch(
    tx: &mut PgConnection,
    done: &[(ClaimedJob, CompletedAttempt)],
) -> Result<Vec<bool>, StoreError> {
    let shape = || StoreError::Corrupt("attempt row shape");
    let moves = arrays_of(done.iter().map(|(job, a)| move_job_row(job, a.outcome))).ok_or_else(shape)?;
    let moved = returned_ids(tx, &sql::MOVE_JOBS, moves).await?;
    let records =
        done.iter().map(|(job, a)| record_attempt_row(job, a, moved.contains(&job.notification_id.to_string())));
    let counted = returned_ids(tx, &sql::RECORD_ATTEMPTS, arrays_of(records).ok_or_else(shape)?).await?;
    let mut recorded = Vec::with_capacity(done.len());
    for (job, _) in done {
        let kept = counted.contains(&job.notification_id.to_string());
        if !kept {
            run(tx, &sql::DEQUEUE_GONE, args![job.notification_id]).await?;
        }
        recorded.push(kept);
    }
    Ok(recorded)
}

/// The delivery columns from `at` on (sql::DELIVERY's, also returned by the claims): payload,
/// the eight route columns, then the channel's six. A missing notification reads as NULLs.
fn delivery_at(row: &dyn Columns, at: usize) -> Result<DeliveryRows, StoreError> {
    let Some(payload) = row.opt_blob(at)? else { return Ok(None) };
    let target = route_at(row, at + 1)?.target()?;
    let channel = match target {
        // A deactivated or deleted channel is out of use: nothing is delivered to it.
        Target::Channel(_) if row.opt_text(at + 9)?.is_none() => return Ok(None),
        Target::Channel(_) => Some(crate::channels::channel_row(row, at + 9)?),
        Target::Subscriber(_) => None,
    };
    Ok(Some((payload, target, channel)))
}

/// A job claimed with its delivery rows (the claim statements' columns: the job's three, then
/// [`delivery_at`]'s).
fn claimed_with_rows(r: &sqlx::postgres::PgRow, token: &str) -> Result<ClaimedJob, StoreError> {
    let mut job = claimed(r, token)?;
    job.prefetched = Prefetched(Some(std::sync::Arc::new(delivery_at(r, 3)?)));
    Ok(job)
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
        let mut fresh = Vec::with_capacity(rows.len());
        for (ws, row) in rows {
            if let Some(digest) = &row.idempotency_digest
                && let Some(existing) =
                    claim_key(&mut tx, *ws, digest, &row.id.to_string(), row.created_at, idempotency_window).await?
            {
                outcomes.push(InsertOutcome::Existing(crate::backend::parse(&existing, "notification id")?));
                continue;
            }
            fresh.push((*ws, row));
            outcomes.push(InsertOutcome::Created);
        }
        insert_many(&mut tx, fresh).await?;
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
        insert_many(&mut tx, event.rows.iter().map(|row| (ws, row))).await?;
        for fanout in &event.fanouts {
            run(&mut tx, &sql::INSERT_FANOUT, insert_fanout(ws, fanout)).await?;
        }
        tx.commit().await?;
        Ok(None)
    }

    /// The batch's messages in one statement next to the cursor's move (see the trait).
    async fn fanout_batch(
        &self,
        ws: WorkspaceId,
        fanout: &FanoutRow,
        rows: &[NewNotificationRow],
        progress: &FanoutProgress,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        if run(&mut tx, &sql::ADVANCE_FANOUT, advance_fanout(ws, fanout, progress)).await? != 1 {
            return Ok(false);
        }
        insert_many(&mut tx, rows.iter().map(|row| (ws, row))).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn delivery_rows(&self, job: &ClaimedJob) -> Result<DeliveryRows, StoreError> {
        if let Some(rows) = &job.prefetched.0 {
            return Ok((**rows).clone());
        }
        let args = args![job.workspace_id, job.notification_id];
        match query(&sql::DELIVERY, args).fetch_optional(&self.pool).await? {
            Some(r) => delivery_at(&r, 0),
            None => Ok(None),
        }
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
                jobs.push(claimed_with_rows(&r, &token)?);
            }
            last_served.clone_from(ws);
        }
        if jobs.len() < limit {
            let rest = i64::try_from(limit - jobs.len()).unwrap_or(i64::MAX);
            for r in query(&sql::CLAIM_ANY, args![lease_until, &token, now, rest]).fetch_all(&mut *tx).await? {
                jobs.push(claimed_with_rows(&r, &token)?);
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
        let mut ids: Vec<NotificationId> = done.iter().map(|(job, _)| job.notification_id).collect();
        ids.sort();
        ids.dedup();
        let recorded = if ids.len() == done.len() {
            complete_batch(&mut tx, done).await?
        } else {
            // Two attempts of one notification (a lease ran out and another worker took it):
            // one by one, so each counts and only the lease holder moves it.
            let mut recorded = Vec::with_capacity(done.len());
            for (job, attempt) in done {
                recorded.push(complete_attempt(&mut tx, job, attempt).await?);
            }
            recorded
        };
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
