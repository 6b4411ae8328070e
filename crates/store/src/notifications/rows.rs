//! The rows of notifications, their queue, attempts and fan-outs, with one mapper per row
//! type, and the operations both backends run with one body. The hot paths (inserting,
//! claiming, completing, the delivery read) and those whose locking differs are written per
//! backend in `sqlite.rs` and `postgres.rs`, next to each other.

use std::time::Duration;

use chimatic_audit::AuditEvent;
use chimatic_domain::{
    ChannelId, ChannelKind, EventId, FanoutId, IntegrationId, NotificationId, NotificationStatus, SubscriberChannelId,
    SubscriberId, Timestamp, TopicId, WorkflowId, WorkspaceId,
};

use super::sql;
use crate::backend::{parse, u32_of};
use crate::db::{Arg, Audited, Columns, Db, Step, args, execute_one, fetch_all, fetch_optional};
use crate::{ChannelRow, StoreError};

/// Where a message to a subscriber goes: which event made it, the subscriber's channel, and the
/// integration that delivers it (none for in-app).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRoute {
    pub event_id: EventId,
    pub kind: ChannelKind,
    pub subscriber_id: SubscriberId,
    pub subscriber_channel_id: SubscriberChannelId,
    pub integration_id: Option<IntegrationId>,
    pub failover: Option<Failover>,
}

/// A message's fallback integration, used from the `after`-th failed attempt of a delivery round
/// on (its primary integration kept failing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failover {
    pub integration_id: IntegrationId,
    pub after: u32,
}

impl MessageRoute {
    /// The integration the attempt after `failed_attempts` failed ones of this round goes through.
    pub fn integration_for_attempt(&self, failed_attempts: u32) -> Option<IntegrationId> {
        match self.failover {
            Some(f) if failed_attempts >= f.after => Some(f.integration_id),
            _ => self.integration_id,
        }
    }
}

/// A notification is either a direct webhook to a workspace channel or a message to a
/// subscriber.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Channel(ChannelId),
    Subscriber(MessageRoute),
}

#[derive(Clone)]
pub struct NewNotificationRow {
    pub id: NotificationId,
    pub target: Target,
    /// `queued`, or `skipped` (opted out) / `suppressed` (address on the suppression list):
    /// recorded but never queued.
    pub status: NotificationStatus,
    pub payload: Vec<u8>,
    pub idempotency_digest: Option<[u8; 32]>,
    pub created_at: Timestamp,
}

pub enum InsertOutcome {
    Created,
    /// The idempotency key was used within its window: the original notification.
    Existing(NotificationId),
}

/// Which notifications the console lists: since a time, optionally of one status and kind,
/// before a `(created_at, id)` cursor.
#[derive(Clone, Debug)]
pub struct NotificationQuery {
    pub since: Timestamp,
    pub before: Option<(Timestamp, NotificationId)>,
    pub status: Option<NotificationStatus>,
    pub kind: Option<ChannelKind>,
    /// A channel, subscriber channel or integration id the notification went (or goes) to.
    pub via: Option<String>,
    pub limit: u32,
}

/// A workspace's delivery queue at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Every queued notification: due, leased or waiting for a later retry.
    pub queued: u64,
    /// Due and not held by a worker.
    pub due: u64,
    /// Leased to a worker now.
    pub in_flight: u64,
    /// The earliest due time among the due ones: how far behind delivery runs.
    pub oldest_due: Option<Timestamp>,
}

pub struct NotificationRow {
    pub id: NotificationId,
    pub target: Target,
    pub read_at: Option<Timestamp>,
    pub archived_at: Option<Timestamp>,
    /// `None` once removed by the workspace's payload retention.
    pub payload: Option<Vec<u8>>,
    pub status: NotificationStatus,
    pub attempt_count: u32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The time a pending notification is next due (or its lease ends), if queued.
    pub queued_due_at: Option<Timestamp>,
    pub leased: bool,
}

#[derive(Clone)]
pub struct AttemptRow {
    pub id: String,
    pub started_at: Timestamp,
    pub succeeded: bool,
    pub detail: Vec<u8>,
}

#[derive(Clone)]
pub struct ClaimedJob {
    pub notification_id: NotificationId,
    pub workspace_id: WorkspaceId,
    pub round_attempts: u32,
    pub lease_token: String,
    /// What the delivery reads, when the claim returned it in the same statement.
    pub prefetched: Prefetched,
}

/// What a delivery reads about its notification: the payload ciphertext, the target, and for a
/// direct webhook the channel's row. `None` when the notification is gone or the webhook's
/// channel is gone or deactivated.
pub(crate) type DeliveryRows = Option<(Vec<u8>, Target, Option<ChannelRow>)>;

/// A claim's read of the delivery rows (PostgreSQL claims return them in the claiming statement,
/// which saves a round trip per job); empty when the delivery reads them itself.
#[derive(Clone, Default)]
pub struct Prefetched(pub(crate) Option<std::sync::Arc<DeliveryRows>>);

/// The due time of a delivery held while its workspace is frozen: never due until released.
pub const HELD: Timestamp = Timestamp(i64::MAX);

/// What happens to a job after an attempt.
#[derive(Clone, Copy)]
pub enum QueueOutcome {
    Delivered,
    RetryAt(Timestamp),
    Failed,
}

#[derive(Clone)]
pub struct CompletedAttempt {
    pub attempt: AttemptRow,
    pub outcome: QueueOutcome,
    pub now: Timestamp,
    /// Recorded in the same transaction as the attempt.
    pub audit: AuditEvent,
}

/// An event's fan-out to a topic, done in batches.
#[derive(Clone)]
pub struct FanoutRow {
    pub id: FanoutId,
    pub event_id: EventId,
    pub topic_id: TopicId,
    pub workflow_id: WorkflowId,
    pub data: Vec<u8>,
    /// The last subscriber id done ('' before the first batch).
    pub cursor: String,
    pub lease_token: Option<String>,
    pub created_at: Timestamp,
}

/// Where a fan-out batch leaves its job.
#[derive(Clone)]
pub struct FanoutProgress {
    /// The last subscriber id done.
    pub cursor: String,
    pub done: bool,
    pub now: Timestamp,
    /// The job stays ours until then.
    pub lease_until: Timestamp,
}

/// An event to queue: its messages to direct recipients and its fan-outs to topics.
#[derive(Clone)]
pub struct NewEvent {
    pub id: EventId,
    pub idempotency_digest: Option<[u8; 32]>,
    pub rows: Vec<NewNotificationRow>,
    pub fanouts: Vec<FanoutRow>,
    pub created_at: Timestamp,
}

/// The route columns of a notifications row: to and from a [`Target`].
#[derive(Default)]
pub(crate) struct RouteColumns {
    pub channel_id: Option<String>,
    pub kind: String,
    pub event_id: Option<String>,
    pub subscriber_id: Option<String>,
    pub subscriber_channel_id: Option<String>,
    pub integration_id: Option<String>,
    pub fallback_integration_id: Option<String>,
    pub failover_after: Option<i64>,
}

impl RouteColumns {
    pub(crate) fn of(target: &Target) -> Self {
        match target {
            Target::Channel(c) => Self { channel_id: Some(c.to_string()), kind: "webhook".into(), ..Self::default() },
            Target::Subscriber(r) => Self {
                channel_id: None,
                kind: r.kind.as_str().into(),
                event_id: Some(r.event_id.to_string()),
                subscriber_id: Some(r.subscriber_id.to_string()),
                subscriber_channel_id: Some(r.subscriber_channel_id.to_string()),
                integration_id: r.integration_id.map(|i| i.to_string()),
                fallback_integration_id: r.failover.map(|f| f.integration_id.to_string()),
                failover_after: r.failover.map(|f| i64::from(f.after)),
            },
        }
    }

    pub(crate) fn target(&self) -> Result<Target, StoreError> {
        if let Some(channel) = &self.channel_id {
            return Ok(Target::Channel(parse(channel, "channel id")?));
        }
        let (Some(event), Some(subscriber), Some(channel)) =
            (&self.event_id, &self.subscriber_id, &self.subscriber_channel_id)
        else {
            return Err(StoreError::Corrupt("notification target"));
        };
        let failover = match (&self.fallback_integration_id, self.failover_after) {
            (Some(id), Some(after)) => Some(Failover {
                integration_id: parse(id, "fallback integration id")?,
                after: u32_of(after, "failover")?,
            }),
            (None, None) => None,
            _ => return Err(StoreError::Corrupt("failover")),
        };
        Ok(Target::Subscriber(MessageRoute {
            event_id: parse(event, "event id")?,
            kind: ChannelKind::parse(&self.kind).ok_or(StoreError::Corrupt("message kind"))?,
            subscriber_id: parse(subscriber, "subscriber id")?,
            subscriber_channel_id: parse(channel, "subscriber channel id")?,
            integration_id: self.integration_id.as_deref().map(|i| parse(i, "integration id")).transpose()?,
            failover,
        }))
    }
}

/// The eight route columns from `at` on (see `sql.rs`).
pub(crate) fn route_at(r: &dyn Columns, at: usize) -> Result<RouteColumns, StoreError> {
    Ok(RouteColumns {
        channel_id: r.opt_text(at)?,
        kind: r.text(at + 1)?,
        event_id: r.opt_text(at + 2)?,
        subscriber_id: r.opt_text(at + 3)?,
        subscriber_channel_id: r.opt_text(at + 4)?,
        integration_id: r.opt_text(at + 5)?,
        fallback_integration_id: r.opt_text(at + 6)?,
        failover_after: r.opt_int(at + 7)?,
    })
}

/// A notification row (see `sql.rs`), with the queue's `due_at` and `lease_token`.
fn notification(r: &dyn Columns) -> Result<NotificationRow, StoreError> {
    Ok(NotificationRow {
        id: r.parsed(0, "notification id")?,
        payload: r.opt_blob(1)?,
        status: NotificationStatus::parse(&r.text(2)?).ok_or(StoreError::Corrupt("status"))?,
        attempt_count: r.u32(3, "attempt count")?,
        created_at: r.at(4)?,
        updated_at: r.at(5)?,
        read_at: r.opt_at(6)?,
        archived_at: r.opt_at(7)?,
        target: route_at(r, 8)?.target()?,
        queued_due_at: r.opt_at(16)?,
        leased: r.opt_text(17)?.is_some(),
    })
}

fn attempt(r: &dyn Columns) -> Result<AttemptRow, StoreError> {
    Ok(AttemptRow { id: r.text(0)?, started_at: r.at(1)?, succeeded: r.flag(2)?, detail: r.blob(3)? })
}

/// `notification_id, workspace_id, round_attempts` of a claimed queue row.
pub(crate) fn claimed(r: &dyn Columns, token: &str) -> Result<ClaimedJob, StoreError> {
    Ok(ClaimedJob {
        notification_id: r.parsed(0, "notification id")?,
        workspace_id: r.parsed(1, "workspace id")?,
        round_attempts: r.u32(2, "round attempts")?,
        lease_token: token.to_string(),
        prefetched: Prefetched::default(),
    })
}

/// `workspace_id, id, event_id, topic_id, workflow_id, data, cursor, created_at` of a claimed
/// fan-out.
pub(crate) fn claimed_fanout(r: &dyn Columns, token: String) -> Result<(WorkspaceId, FanoutRow), StoreError> {
    Ok((
        r.parsed(0, "workspace id")?,
        FanoutRow {
            id: r.parsed(1, "fan-out id")?,
            event_id: r.parsed(2, "event id")?,
            topic_id: r.parsed(3, "topic id")?,
            workflow_id: r.parsed(4, "workflow id")?,
            data: r.blob(5)?,
            cursor: r.text(6)?,
            lease_token: Some(token),
            created_at: r.at(7)?,
        },
    ))
}

/// The parameters of [`sql::INSERT`] for one notification (and, as arrays, of
/// [`sql::INSERT_MANY`]).
pub(crate) fn notification_args(ws: WorkspaceId, row: &NewNotificationRow) -> Vec<Arg> {
    let route = RouteColumns::of(&row.target);
    args![
        row.id,
        ws,
        route.channel_id,
        &row.payload,
        row.created_at,
        route.kind,
        route.event_id,
        route.subscriber_id,
        route.subscriber_channel_id,
        route.integration_id,
        row.status.as_str(),
        route.fallback_integration_id,
        route.failover_after
    ]
}

/// The statements that insert one notification (and queue it if it is `queued`).
pub(crate) fn insert_notification(
    ws: WorkspaceId,
    row: &NewNotificationRow,
) -> Vec<(&'static crate::db::Sql, Vec<Arg>)> {
    let mut statements = vec![(&sql::INSERT, notification_args(ws, row))];
    if row.status == NotificationStatus::Queued {
        statements.push((&sql::ENQUEUE, args![row.id, ws, row.created_at]));
    }
    statements
}

/// The move of a fan-out's cursor and lease, if the lease is still ours.
pub(crate) fn advance_fanout(ws: WorkspaceId, fanout: &FanoutRow, progress: &FanoutProgress) -> Vec<Arg> {
    args![
        ws,
        fanout.id,
        &progress.cursor,
        progress.done.then_some(progress.now),
        progress.lease_until,
        fanout.lease_token.as_deref()
    ]
}

pub(crate) fn insert_fanout(ws: WorkspaceId, f: &FanoutRow) -> Vec<Arg> {
    args![f.id, ws, f.event_id, f.topic_id, f.workflow_id, &f.data, &f.cursor, f.created_at]
}

/// The claim of an idempotency key, and the read of its holder when the claim was refused.
pub(crate) fn claim_idempotency(
    ws: WorkspaceId,
    digest: &[u8; 32],
    holder: &str,
    now: Timestamp,
    window: Duration,
) -> [Vec<Arg>; 2] {
    [args![ws, digest, holder, now, now.minus(window)], args![ws, digest]]
}

/// The statements of one completed attempt, in order: move the job (lease holder only), count
/// the attempt (and set the status if the job moved), record it. See `complete_attempt` on each
/// backend for how a notification that is gone is handled.
pub(crate) fn status_after(outcome: QueueOutcome) -> &'static str {
    match outcome {
        QueueOutcome::Delivered => "delivered",
        QueueOutcome::RetryAt(_) => "queued",
        QueueOutcome::Failed => "failed",
    }
}

pub(crate) fn move_job(job: &ClaimedJob, outcome: QueueOutcome) -> (&'static crate::db::Sql, Vec<Arg>) {
    match outcome {
        QueueOutcome::RetryAt(at) => (&sql::RETRY_LATER, args![at, job.notification_id, &job.lease_token]),
        QueueOutcome::Delivered | QueueOutcome::Failed => {
            (&sql::DEQUEUE_LEASED, args![job.notification_id, &job.lease_token])
        }
    }
}

pub(crate) fn count_attempt(
    job: &ClaimedJob,
    done: &CompletedAttempt,
    moved: bool,
) -> (&'static crate::db::Sql, Vec<Arg>) {
    if moved {
        let args = args![job.workspace_id, job.notification_id, status_after(done.outcome), done.now];
        (&sql::COUNT_ATTEMPT_AND_MOVE, args)
    } else {
        (&sql::COUNT_ATTEMPT, args![job.workspace_id, job.notification_id, done.now])
    }
}

/// One row of [`sql::MOVE_JOBS`]: the job, its lease, and when it is due again (none: it leaves
/// the queue).
pub(crate) fn move_job_row(job: &ClaimedJob, outcome: QueueOutcome) -> Vec<Arg> {
    let retry_at = match outcome {
        QueueOutcome::RetryAt(at) => Some(at),
        QueueOutcome::Delivered | QueueOutcome::Failed => None,
    };
    args![job.notification_id, &job.lease_token, retry_at]
}

/// One row of [`sql::RECORD_ATTEMPTS`]: the new status only if the job moved (as
/// [`count_attempt`] decides one by one).
pub(crate) fn record_attempt_row(job: &ClaimedJob, done: &CompletedAttempt, moved: bool) -> Vec<Arg> {
    let a = &done.attempt;
    let status = moved.then(|| status_after(done.outcome));
    args![job.workspace_id, job.notification_id, status, done.now, &a.id, a.started_at, a.succeeded, &a.detail]
}

pub(crate) fn insert_attempt(job: &ClaimedJob, done: &CompletedAttempt) -> Vec<Arg> {
    let a = &done.attempt;
    args![&a.id, job.notification_id, job.workspace_id, a.started_at, a.succeeded, &a.detail]
}

/// Notifications, the delivery queue, events and fan-outs.
#[async_trait::async_trait]
pub trait NotificationRows: Db {
    /// Inserts notifications and their queue entries in one transaction: durable when it returns.
    /// An idempotency digest claimed less than `idempotency_window` before a row's `created_at`
    /// yields [`InsertOutcome::Existing`] for that row instead.
    async fn insert_notifications(
        &self,
        rows: &[(WorkspaceId, NewNotificationRow)],
        idempotency_window: Duration,
    ) -> Result<Vec<InsertOutcome>, StoreError>;

    /// Inserts an event's messages and their queue entries in one transaction, unless the
    /// event's idempotency digest was claimed within the window: then nothing is inserted and
    /// the original event's id is returned.
    async fn insert_event(
        &self,
        ws: WorkspaceId,
        event: &NewEvent,
        idempotency_window: Duration,
    ) -> Result<Option<EventId>, StoreError>;

    async fn notification(&self, ws: WorkspaceId, id: NotificationId) -> Result<Option<NotificationRow>, StoreError> {
        fetch_optional(self, &sql::BY_ID, args![ws, id], notification).await
    }

    async fn recent_notifications(
        &self,
        ws: WorkspaceId,
        q: &NotificationQuery,
    ) -> Result<Vec<NotificationRow>, StoreError> {
        // Ids are time-ordered and 'msg_g' sorts after every notification id.
        let (before_at, before_id) = match q.before {
            Some((at, id)) => (at, id.to_string()),
            None => (Timestamp(i64::MAX), "msg_g".to_string()),
        };
        let status = q.status.map(|s| s.as_str()).unwrap_or_default();
        let kind = q.kind.map(|k| k.as_str()).unwrap_or_default();
        let via = q.via.as_deref().unwrap_or_default();
        let args = args![ws, q.since, before_at, before_id, status, kind, q.limit, via];
        fetch_all(self, &sql::RECENT, args, notification).await
    }

    async fn queue_depth(&self, ws: WorkspaceId, now: Timestamp) -> Result<QueueDepth, StoreError> {
        let depth = fetch_optional(self, &sql::QUEUE_DEPTH, args![ws, now], |r| {
            Ok(QueueDepth { queued: r.count(0)?, due: r.count(1)?, in_flight: r.count(2)?, oldest_due: r.opt_at(3)? })
        })
        .await?;
        Ok(depth.unwrap_or_default())
    }

    async fn attempts(&self, ws: WorkspaceId, id: NotificationId) -> Result<Vec<AttemptRow>, StoreError> {
        fetch_all(self, &sql::ATTEMPTS, args![ws, id], attempt).await
    }

    /// What the delivery of `job` needs, in one read or none (what its claim returned).
    async fn delivery_rows(&self, job: &ClaimedJob) -> Result<DeliveryRows, StoreError>;

    /// A webhook endpoint's deliveries without their content, newest first, before `before`.
    async fn endpoint_deliveries(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        endpoint: SubscriberChannelId,
        before: Option<NotificationId>,
        limit: u32,
    ) -> Result<Vec<NotificationRow>, StoreError> {
        // Ids are time-ordered and 'msg_g' sorts after every notification id.
        let before = before.map(|b| b.to_string()).unwrap_or_else(|| "msg_g".into());
        fetch_all(self, &sql::ENDPOINT_DELIVERIES, args![ws, subscriber, endpoint, before, limit], notification).await
    }

    /// A subscriber's in-app messages, newest first, before `before`.
    async fn inbox(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        before: Option<NotificationId>,
        limit: u32,
        archived: bool,
    ) -> Result<Vec<NotificationRow>, StoreError> {
        // Ids are time-ordered and 'msg_g' sorts after every notification id.
        let before = before.map(|b| b.to_string()).unwrap_or_else(|| "msg_g".into());
        fetch_all(self, &sql::INBOX, args![ws, subscriber, before, archived, limit], notification).await
    }

    async fn inbox_unread(&self, ws: WorkspaceId, subscriber: SubscriberId) -> Result<u64, StoreError> {
        let unread = fetch_optional(self, &sql::INBOX_UNREAD, args![ws, subscriber], |r| r.count(0)).await?;
        Ok(unread.unwrap_or(0))
    }

    /// Sets (`Some(Some)`), clears (`Some(None)`) or keeps (`None`) read and archived; `false`
    /// if there is no such in-app message of the subscriber.
    async fn mark_inbox(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        id: NotificationId,
        read_at: Option<Option<Timestamp>>,
        archived_at: Option<Option<Timestamp>>,
    ) -> Result<bool, StoreError> {
        let args = args![
            ws,
            subscriber,
            id,
            read_at.is_some(),
            read_at.flatten(),
            archived_at.is_some(),
            archived_at.flatten()
        ];
        execute_one(self, &sql::MARK_INBOX, args, None).await
    }

    async fn mark_inbox_read(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.execute(&sql::MARK_INBOX_READ, args![ws, subscriber, now], None).await
    }

    /// Deletes up to `limit` idempotency claims made before `before`; `None` when another node
    /// holds this job's lock.
    async fn purge_idempotency_keys(&self, before: Timestamp, limit: u32) -> Result<Option<u64>, StoreError> {
        self.execute_job("idempotency_purge", &sql::PURGE_IDEMPOTENCY, args![before, limit]).await
    }

    /// Queues a failed notification again; `false` if it is not failed (or its payload is gone).
    async fn replay(
        &self,
        ws: WorkspaceId,
        id: NotificationId,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let steps =
            vec![Step::required(&sql::REPLAY, args![ws, id, now]), Step::new(&sql::ENQUEUE, args![id, ws, now])];
        Ok(self.transaction(steps, Audited::data(ws, audit)).await?[0] == 1)
    }

    /// Claims up to `limit` due jobs fairly under a lease until `lease_until`.
    async fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedJob>, StoreError>;

    /// Makes claimed jobs due at `now` again (shutdown, or a frozen workspace's jobs).
    async fn release_claims(&self, jobs: &[ClaimedJob], now: Timestamp) -> Result<(), StoreError> {
        let steps = jobs
            .iter()
            .map(|job| Step::new(&sql::RELEASE_CLAIM, args![now, job.notification_id, &job.lease_token]))
            .collect();
        self.transaction(steps, None).await.map(|_| ())
    }

    /// Empties the payloads of up to `limit` finished notifications created before `before`
    /// (and deletes finished fan-outs as old); `None` when another node holds the job.
    async fn remove_payloads(
        &self,
        ws: WorkspaceId,
        before: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<Option<u64>, StoreError>;

    /// Workspaces with deliveries held (their workspace was frozen).
    async fn held_workspaces(&self) -> Result<Vec<WorkspaceId>, StoreError> {
        fetch_all(self, &sql::HELD_WORKSPACES, args![HELD], |r| r.parsed(0, "workspace id")).await
    }

    /// Makes a workspace's held deliveries due at `now`.
    async fn release_held(&self, ws: WorkspaceId, now: Timestamp) -> Result<u64, StoreError> {
        self.execute(&sql::RELEASE_HELD, args![ws, HELD, now], None).await
    }

    /// Records attempts and moves their jobs on, with their audit entries, in one transaction;
    /// for each, whether it was recorded (`false`: the notification is gone).
    async fn complete_attempts(&self, done: &[(ClaimedJob, CompletedAttempt)]) -> Result<Vec<bool>, StoreError>;

    /// Claims one unfinished fan-out (of any workspace) under a lease.
    async fn claim_fanout(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<(WorkspaceId, FanoutRow)>, StoreError>;

    /// Queues one batch of a fan-out's messages and moves its cursor (finishing it when `done`),
    /// in one transaction, if the lease is still ours; `false` otherwise (nothing written).
    async fn fanout_batch(
        &self,
        ws: WorkspaceId,
        fanout: &FanoutRow,
        rows: &[NewNotificationRow],
        progress: &FanoutProgress,
    ) -> Result<bool, StoreError> {
        let mut steps = vec![Step::required(&sql::ADVANCE_FANOUT, advance_fanout(ws, fanout, progress))];
        for row in rows {
            steps.extend(insert_notification(ws, row).into_iter().map(|(s, a)| Step::new(s, a)));
        }
        Ok(self.transaction(steps, None).await?[0] == 1)
    }
}
