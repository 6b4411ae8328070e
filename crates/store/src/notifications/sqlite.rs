//! The hot paths on SQLite: one writer, so each batch is one `IMMEDIATE` transaction on the
//! blocking pool, with cached statements run row by row (in-process, a statement per row costs
//! less than building a multi-row one).

use std::time::Duration;

use chimatic_audit::Stream;
use chimatic_domain::{EventId, Timestamp, WorkspaceId};
use rusqlite::{OptionalExtension, Transaction, params_from_iter};

use super::rows::*;
use super::sql;
use crate::audit::sqlite as audit;
use crate::db::fairness::WorkspaceWalk;
use crate::db::sqlite::{lock, run};
use crate::db::{Arg, Sql, args};
use crate::{SqliteBackend, StoreError};

/// Inserts a notification (and queues it); `Conflict` if its channel was deactivated since it
/// was checked: the group commit then retries each row alone, so only that one fails.
fn insert(tx: &Transaction<'_>, ws: WorkspaceId, row: &NewNotificationRow) -> Result<(), StoreError> {
    for (statement, args) in insert_notification(ws, row) {
        if run(tx, statement, args)? == 0 {
            return Err(StoreError::Conflict(crate::channels::CHANNEL_DEACTIVATED));
        }
    }
    Ok(())
}

/// Claims an idempotency key for `holder` unless a live claim holds it; that claim's holder.
fn claim_key(
    tx: &Transaction<'_>,
    ws: WorkspaceId,
    digest: &[u8; 32],
    holder: &str,
    now: Timestamp,
    window: Duration,
) -> Result<Option<String>, StoreError> {
    let [claim, holder_of] = claim_idempotency(ws, digest, holder, now, window);
    let claimed: Option<String> = tx
        .prepare_cached(sql::CLAIM_IDEMPOTENCY.sqlite())?
        .query_row(params_from_iter(claim.iter()), |r| r.get(0))
        .optional()?;
    if claimed.is_some() {
        return Ok(None);
    }
    let existing = tx
        .prepare_cached(sql::IDEMPOTENCY_HOLDER.sqlite())?
        .query_row(params_from_iter(holder_of.iter()), |r| r.get(0))?;
    Ok(Some(existing))
}

/// Claims up to `limit` due jobs fairly: first an equal share for each workspace with queued
/// work (visiting them round-robin from `cursor`, so a tenant with a huge backlog cannot starve
/// the others), then whatever capacity is left in due order, so one busy tenant alone still
/// gets the whole pool. Workspaces are enumerated by skip-scan over the
/// `(workspace_id, due_at)` index: a seek per workspace, never a scan of the backlog.
fn fair_claim(
    tx: &Transaction<'_>,
    cursor: &str,
    now: Timestamp,
    lease_until: Timestamp,
    limit: u32,
    token: &str,
) -> Result<(Vec<ClaimedJob>, String), StoreError> {
    let mut next_ws = tx.prepare_cached(sql::NEXT_QUEUED_WORKSPACE.sqlite())?;
    let mut walk = WorkspaceWalk::after(cursor);
    while let Some(at) = walk.next_query() {
        let next = next_ws.query_row([at], |r| r.get::<_, Option<String>>(0))?;
        walk.answer(next);
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let share = walk.share(limit);
    let take = |statement: &'static Sql, args: Vec<Arg>| -> Result<Vec<ClaimedJob>, StoreError> {
        let mut stmt = tx.prepare_cached(statement.sqlite())?;
        let mut rows = stmt.query(params_from_iter(args.iter()))?;
        let mut taken = Vec::new();
        while let Some(row) = rows.next()? {
            taken.push(claimed(row, token)?);
        }
        Ok(taken)
    };
    let mut jobs = Vec::new();
    let mut last_served = cursor.to_string();
    for ws in &walk.found {
        if jobs.len() >= limit {
            break;
        }
        jobs.extend(take(&sql::CLAIM_IN_WORKSPACE, args![lease_until, token, ws.as_str(), now, share])?);
        last_served.clone_from(ws);
    }
    if jobs.len() < limit {
        let rest = i64::try_from(limit - jobs.len()).unwrap_or(i64::MAX);
        jobs.extend(take(&sql::CLAIM_ANY, args![lease_until, token, now, rest])?);
    }
    Ok((jobs, last_served))
}

/// Records one attempt and moves its job on; `false` when the notification is gone (a subscriber
/// or workspace erased while the delivery was on the wire): no attempt is recorded, and the queue
/// row left for it, if any, is removed.
fn complete_attempt(tx: &Transaction<'_>, job: &ClaimedJob, done: &CompletedAttempt) -> Result<bool, StoreError> {
    let (move_sql, move_args) = move_job(job, done.outcome);
    let moved = run(tx, move_sql, move_args)? == 1;
    let (count_sql, count_args) = count_attempt(job, done, moved);
    if run(tx, count_sql, count_args)? == 0 {
        run(tx, &sql::DEQUEUE_GONE, args![job.notification_id])?;
        return Ok(false);
    }
    run(tx, &sql::INSERT_ATTEMPT, insert_attempt(job, done))?;
    Ok(true)
}

#[async_trait::async_trait]
impl NotificationRows for SqliteBackend {
    async fn insert_notifications(
        &self,
        rows: &[(WorkspaceId, NewNotificationRow)],
        idempotency_window: Duration,
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        let rows = rows.to_vec();
        self.write(move |tx| {
            let mut outcomes = Vec::with_capacity(rows.len());
            for (ws, row) in &rows {
                if let Some(digest) = &row.idempotency_digest
                    && let Some(existing) =
                        claim_key(tx, *ws, digest, &row.id.to_string(), row.created_at, idempotency_window)?
                {
                    outcomes.push(InsertOutcome::Existing(crate::backend::parse(&existing, "notification id")?));
                    continue;
                }
                insert(tx, *ws, row)?;
                outcomes.push(InsertOutcome::Created);
            }
            Ok(outcomes)
        })
        .await
    }

    async fn insert_event(
        &self,
        ws: WorkspaceId,
        event: &NewEvent,
        idempotency_window: Duration,
    ) -> Result<Option<EventId>, StoreError> {
        let event = event.clone();
        self.write(move |tx| {
            if let Some(digest) = &event.idempotency_digest
                && let Some(existing) =
                    claim_key(tx, ws, digest, &event.id.to_string(), event.created_at, idempotency_window)?
            {
                return Ok(Some(crate::backend::parse(&existing, "event id")?));
            }
            for row in &event.rows {
                insert(tx, ws, row)?;
            }
            for fanout in &event.fanouts {
                run(tx, &sql::INSERT_FANOUT, insert_fanout(ws, fanout))?;
            }
            Ok(None)
        })
        .await
    }

    async fn delivery_rows(&self, job: &ClaimedJob) -> Result<DeliveryRows, StoreError> {
        let (ws, id) = (job.workspace_id, job.notification_id);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(sql::DELIVERY.sqlite())?;
            let mut rows = stmt.query(params_from_iter(args![ws, id].iter()))?;
            let Some(row) = rows.next()? else { return Ok(None) };
            let payload: Vec<u8> = row.get(0)?;
            let target = route_at(row, 1)?.target()?;
            let channel = match &target {
                Target::Channel(channel_id) => {
                    let mut stmt = c.prepare_cached(crate::channels::sql::ACTIVE_BY_ID.sqlite())?;
                    let mut rows = stmt.query(params_from_iter(args![ws, *channel_id].iter()))?;
                    // A deactivated or deleted channel is out of use: nothing is delivered to it.
                    let Some(row) = rows.next()? else { return Ok(None) };
                    Some(crate::channels::channel_row(row, 0)?)
                }
                Target::Subscriber(_) => None,
            };
            Ok(Some((payload, target, channel)))
        })
    }

    async fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let cursor = lock(&self.inner.claim_cursor).clone();
        let (jobs, next_cursor) =
            self.write(move |tx| fair_claim(tx, &cursor, now, lease_until, limit, &token)).await?;
        *lock(&self.inner.claim_cursor) = next_cursor;
        Ok(jobs)
    }

    async fn remove_payloads(
        &self,
        ws: WorkspaceId,
        before: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<Option<u64>, StoreError> {
        // SQLite has one writer at a time, across processes too: the batch is exclusive already.
        self.write(move |tx| {
            let n = run(tx, &sql::REMOVE_PAYLOADS, args![ws, before, now, limit])?;
            run(tx, &sql::DELETE_DONE_FANOUTS, args![ws, before])?;
            Ok(Some(n))
        })
        .await
    }

    async fn complete_attempts(&self, done: &[(ClaimedJob, CompletedAttempt)]) -> Result<Vec<bool>, StoreError> {
        let done = done.to_vec();
        self.write(move |tx| {
            let mut recorded = Vec::with_capacity(done.len());
            for (job, attempt) in &done {
                recorded.push(complete_attempt(tx, job, attempt)?);
            }
            let events: Vec<_> = done
                .iter()
                .zip(&recorded)
                .filter(|(_, r)| **r)
                .map(|((job, a), _)| (job.workspace_id, &a.audit))
                .collect();
            audit::append(tx, Stream::Data, &events)?;
            Ok(recorded)
        })
        .await
    }

    async fn claim_fanout(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<(WorkspaceId, FanoutRow)>, StoreError> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let lease = token.clone();
        self.write(move |tx| {
            let mut stmt = tx.prepare_cached(sql::CLAIM_FANOUT.sqlite())?;
            let mut rows = stmt.query(params_from_iter(args![now, lease_until, lease].iter()))?;
            rows.next()?.map(|row| claimed_fanout(row, token)).transpose()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;
    use crate::db::sqlite::{DATA, connect, migrate};

    /// A workspace id made of one repeated hex digit, so ids sort as the digits do.
    fn ws(digit: char) -> String {
        format!("ws_{}", digit.to_string().repeat(32))
    }

    fn queue(tx: &Transaction<'_>, digit: char, n: usize, due: i64) {
        for i in 0..n {
            tx.execute(
                "INSERT INTO delivery_queue (notification_id, workspace_id, due_at) VALUES (?1, ?2, ?3)",
                rusqlite::params![format!("msg_{}{i:031x}", digit), ws(digit), due + i as i64],
            )
            .unwrap();
        }
    }

    fn claim(conn: &mut Connection, cursor: &str, limit: u32) -> (Vec<String>, String) {
        let tx = conn.transaction().unwrap();
        let (jobs, next) = fair_claim(&tx, cursor, Timestamp(1_000), Timestamp(9_999), limit, "t").unwrap();
        tx.commit().unwrap();
        (jobs.into_iter().map(|j| j.workspace_id.to_string()).collect(), next)
    }

    #[test]
    fn claims_share_capacity_across_workspaces_then_fill_from_the_busiest() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = connect(&dir.path().join("q.db")).unwrap();
        migrate(&mut conn, &DATA).unwrap();
        let tx = conn.transaction().unwrap();
        queue(&tx, 'a', 50, 0); // a backlog that is due first
        queue(&tx, 'b', 2, 500);
        queue(&tx, 'c', 1, 900);
        queue(&tx, 'd', 3, 5_000); // not due yet
        tx.commit().unwrap();

        let (got, cursor) = claim(&mut conn, "", 6);
        let count = |d: char| got.iter().filter(|g| **g == ws(d)).count();
        assert_eq!((count('a'), count('b'), count('c'), count('d')), (4, 1, 1, 0), "{got:?}");
        assert_eq!(cursor, ws('d'));

        // The next claim starts after the cursor and wraps round; capacity left over goes to the backlog.
        let (got, _) = claim(&mut conn, &cursor, 8);
        let count = |d: char| got.iter().filter(|g| **g == ws(d)).count();
        assert_eq!((count('a'), count('b'), count('c'), count('d')), (7, 1, 0, 0), "{got:?}");
    }
}
