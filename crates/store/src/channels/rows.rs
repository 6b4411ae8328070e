//! The `channels` table: one body for both backends, except deactivation and the purge batch,
//! whose locking differs on purpose (see `sql.rs`).

use chimatic_audit::{AuditEvent, Stream};
use chimatic_domain::{ChannelId, Timestamp, WorkspaceId};
use rusqlite::OptionalExtension;

use super::sql;
use crate::backend::with_count;
use crate::db::postgres::query;
use crate::db::sqlite::run;
use crate::db::{Arg, Audited, Columns, Db, Sql, Step, args, execute_one, fetch_all, fetch_optional};
use crate::{PostgresBackend, SqliteBackend, StoreError};

#[derive(Clone)]
pub struct ChannelRow {
    pub id: ChannelId,
    pub kind: String,
    /// Ciphertext of the destination (URL and TLS policy).
    pub destination: Vec<u8>,
    pub created_at: Timestamp,
    /// Set while the channel is deactivated; it is purged at `purge_at` unless reactivated.
    pub deactivated_at: Option<Timestamp>,
    pub purge_at: Option<Timestamp>,
}

/// A row of `id, kind, destination, created_at, deactivated_at, purge_at` (from `offset`).
pub(crate) fn channel_row(r: &dyn Columns, offset: usize) -> Result<ChannelRow, StoreError> {
    Ok(ChannelRow {
        id: r.parsed(offset, "channel id")?,
        kind: r.text(offset + 1)?,
        destination: r.blob(offset + 2)?,
        created_at: r.at(offset + 3)?,
        deactivated_at: r.opt_at(offset + 4)?,
        purge_at: r.opt_at(offset + 5)?,
    })
}

fn channel(r: &dyn Columns) -> Result<ChannelRow, StoreError> {
    channel_row(r, 0)
}

#[async_trait::async_trait]
pub trait ChannelRows: Db {
    async fn insert_channel(&self, ws: WorkspaceId, row: &ChannelRow, audit: &AuditEvent) -> Result<(), StoreError> {
        let args = args![ws, row.id, &row.kind, &row.destination, row.created_at];
        self.transaction(vec![Step::new(&sql::INSERT, args)], Audited::data(ws, audit)).await.map(|_| ())
    }

    /// Deactivates an active channel and takes its queued notifications out of the queue
    /// (`cancelled`), with the audit entry (its detail gains the count). `None`: no active channel
    /// with that id.
    async fn deactivate_channel(
        &self,
        ws: WorkspaceId,
        id: ChannelId,
        now: Timestamp,
        purge_at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<Option<u64>, StoreError>;

    /// Reactivates a deactivated channel whose window has not ended at `now` and whose purge has
    /// not started; `false`: none.
    async fn reactivate_channel(
        &self,
        ws: WorkspaceId,
        id: ChannelId,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        execute_one(self, &sql::REACTIVATE, args![ws, id, now], Audited::data(ws, audit)).await
    }

    /// Marks a deactivated channel whose purge time has come as being purged, which ends its
    /// reactivation for good; `false`: it is not due (reactivated meanwhile, or gone).
    async fn start_channel_purge(&self, ws: WorkspaceId, id: ChannelId, now: Timestamp) -> Result<bool, StoreError> {
        execute_one(self, &sql::START_PURGE, args![ws, id, now], None).await
    }

    /// Deactivated channels whose purge time has come, oldest first.
    async fn channels_to_purge(&self, now: Timestamp, limit: u32) -> Result<Vec<(WorkspaceId, ChannelId)>, StoreError> {
        fetch_all(self, &sql::TO_PURGE, args![now, limit], |r| {
            Ok((r.parsed(0, "workspace id")?, r.parsed(1, "channel id")?))
        })
        .await
    }

    /// Removes up to `limit` notifications of a channel due for purge, with their attempts, queue
    /// rows and idempotency claims; returns (notifications, attempts) removed. `None`: the
    /// channel is not due (reactivated meanwhile) or another node holds the job (PostgreSQL).
    async fn purge_channel_batch(
        &self,
        ws: WorkspaceId,
        id: ChannelId,
        now: Timestamp,
        limit: u32,
    ) -> Result<Option<(u64, u64)>, StoreError>;

    /// Deletes a channel due for purge once none of its notifications is left, with the audit
    /// entry; `false` if it is not (any more) due or still has notifications.
    async fn delete_purged_channel(
        &self,
        ws: WorkspaceId,
        id: ChannelId,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        execute_one(self, &sql::DELETE_PURGED, args![ws, id, now], Audited::data(ws, audit)).await
    }

    async fn channel(&self, ws: WorkspaceId, id: ChannelId) -> Result<Option<ChannelRow>, StoreError> {
        fetch_optional(self, &sql::BY_ID, args![ws, id], channel).await
    }

    async fn list_channels(
        &self,
        ws: WorkspaceId,
        after: Option<ChannelId>,
        limit: u32,
    ) -> Result<Vec<ChannelRow>, StoreError> {
        let after = after.map(|a| a.to_string()).unwrap_or_default();
        fetch_all(self, &sql::LIST, args![ws, after, limit], channel).await
    }
}

/// The purge batch's deletes, in order, with the statements' parameters: attempts, idempotency
/// claims, queue rows, notifications. Returns (notifications, attempts).
fn purge_steps(ws: WorkspaceId, ids: Vec<String>) -> [(&'static Sql, Vec<Arg>); 4] {
    let ids = Arg::TextList(ids);
    [
        (&sql::PURGE_ATTEMPTS, args![ws, ids.clone()]),
        (&sql::PURGE_IDEMPOTENCY, args![ws, ids.clone()]),
        (&sql::PURGE_QUEUE, vec![ids.clone()]),
        (&sql::PURGE_NOTIFICATIONS, args![ws, ids]),
    ]
}

#[async_trait::async_trait]
impl ChannelRows for SqliteBackend {
    async fn deactivate_channel(
        &self,
        ws: WorkspaceId,
        id: ChannelId,
        now: Timestamp,
        purge_at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<Option<u64>, StoreError> {
        let audit = audit.clone();
        self.write(move |tx| {
            if run(tx, &sql::DEACTIVATE, args![ws, id, now, purge_at])? == 0 {
                return Ok(None);
            }
            let cancelled = run(tx, &sql::CANCEL_QUEUED, args![ws, id, now])?;
            run(tx, &sql::DEQUEUE_CANCELLED, args![ws, id])?;
            crate::audit::sqlite::append_one(tx, Stream::Data, ws, &with_count(audit, "cancelled", cancelled))?;
            Ok(Some(cancelled))
        })
        .await
    }

    async fn purge_channel_batch(
        &self,
        ws: WorkspaceId,
        id: ChannelId,
        now: Timestamp,
        limit: u32,
    ) -> Result<Option<(u64, u64)>, StoreError> {
        // SQLite has one writer at a time, across processes too: the batch is exclusive already.
        self.write(move |tx| {
            let due: Option<Option<i64>> = tx
                .prepare_cached(sql::PURGE_DUE.sqlite())?
                .query_row(rusqlite::params_from_iter(args![ws, id].iter()), |r| r.get(0))
                .optional()?;
            if due.flatten().is_none_or(|t| t > now.0) {
                return Ok(None);
            }
            let ids = {
                let mut stmt = tx.prepare_cached(sql::PURGE_IDS.sqlite())?;
                let rows = stmt.query_map(rusqlite::params_from_iter(args![ws, id, limit].iter()), |r| r.get(0))?;
                rows.collect::<Result<Vec<String>, _>>()?
            };
            let mut changed = [0u64; 4];
            for (n, (statement, args)) in changed.iter_mut().zip(purge_steps(ws, ids)) {
                *n = run(tx, statement, args)?;
            }
            Ok(Some((changed[3], changed[0])))
        })
        .await
    }
}

#[async_trait::async_trait]
impl ChannelRows for PostgresBackend {
    async fn deactivate_channel(
        &self,
        ws: WorkspaceId,
        id: ChannelId,
        now: Timestamp,
        purge_at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<Option<u64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        if query(&sql::DEACTIVATE, args![ws, id, now, purge_at]).execute(&mut *tx).await?.rows_affected() == 0 {
            return Ok(None);
        }
        let queued: Vec<String> = sqlx::query_scalar(sql::LOCK_QUEUED.postgres())
            .bind(ws.to_string())
            .bind(id.to_string())
            .fetch_all(&mut *tx)
            .await?;
        let queued = Arg::TextList(queued);
        query(&sql::DEQUEUE, vec![queued.clone()]).execute(&mut *tx).await?;
        let cancelled = query(&sql::CANCEL, args![ws, queued, now]).execute(&mut *tx).await?.rows_affected();
        crate::audit::postgres::append_one(
            &mut tx,
            Stream::Data,
            ws,
            &with_count(audit.clone(), "cancelled", cancelled),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(cancelled))
    }

    async fn purge_channel_batch(
        &self,
        ws: WorkspaceId,
        id: ChannelId,
        now: Timestamp,
        limit: u32,
    ) -> Result<Option<(u64, u64)>, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !crate::db::postgres::try_job_lock(&mut tx, "channel_purge").await? {
            return Ok(None);
        }
        let due: Option<Option<i64>> = sqlx::query_scalar(sql::PURGE_DUE.postgres())
            .bind(ws.to_string())
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        if due.flatten().is_none_or(|t| t > now.0) {
            return Ok(None);
        }
        let ids: Vec<String> = sqlx::query_scalar(sql::PURGE_IDS.postgres())
            .bind(ws.to_string())
            .bind(id.to_string())
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        let mut changed = [0u64; 4];
        for (n, (statement, args)) in changed.iter_mut().zip(purge_steps(ws, ids)) {
            *n = query(statement, args).execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(Some((changed[3], changed[0])))
    }
}
