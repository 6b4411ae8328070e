//! The backend traits: ciphertext rows in, ciphertext rows out. Every tenant-owned operation
//! takes the workspace id, so a backend cannot be asked for a row without its tenant.

use chimatic_domain::{
    ChannelId, ChannelKind, EventId, FanoutId, IntegrationId, NotificationId, NotificationStatus, Plan, Region,
    SubscriberChannelId, SubscriberId, Timestamp, TopicId, WorkflowId, WorkspaceId,
};

use std::sync::Arc;

use chimatic_audit::{AuditEntry, AuditEvent, HeadSigner, SignedHead, Stream};

use crate::StoreError;

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
}

impl ClaimedJob {
    pub(crate) fn from_stored(nid: &str, ws: &str, round_attempts: i64, token: &str) -> Result<Self, StoreError> {
        Ok(Self {
            notification_id: parse(nid, "notification id")?,
            workspace_id: parse(ws, "workspace id")?,
            round_attempts: u32_of(round_attempts, "round attempts")?,
            lease_token: token.to_string(),
        })
    }
}

/// Parses a value read back from a backend; a failure means the stored data is corrupt.
pub(crate) fn parse<T: std::str::FromStr>(text: &str, what: &'static str) -> Result<T, StoreError> {
    text.parse().map_err(|_| StoreError::Corrupt(what))
}

pub(crate) fn stored_plan(name: &str, audit_retention_days: Option<i64>) -> Result<Plan, StoreError> {
    let days = audit_retention_days.map(|d| u32::try_from(d).map_err(|_| StoreError::Corrupt("plan"))).transpose()?;
    Plan::new(name, days).map_err(|_| StoreError::Corrupt("plan"))
}

pub(crate) fn u32_of(v: i64, what: &'static str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(what))
}

/// `event` with `key: n` added to its JSON detail (a count known only inside the transaction).
pub(crate) fn with_count(mut event: AuditEvent, key: &str, n: u64) -> AuditEvent {
    let mut detail: serde_json::Value = serde_json::from_str(&event.detail).unwrap_or_else(|_| serde_json::json!({}));
    if let Some(map) = detail.as_object_mut() {
        map.insert(key.to_string(), n.into());
    }
    event.detail = detail.to_string();
    event
}

/// Removes a deleted workspace's rows, table by table, a batch at a time.
#[async_trait::async_trait]
pub trait WorkspaceEraser: Send + Sync + 'static {
    /// Deletes up to `limit` rows of `table` (one of the `*_TABLES` lists below, never input)
    /// whose `workspace_id` is `ws`; `key` names the table's primary key columns.
    async fn delete_workspace_rows(
        &self,
        table: &'static str,
        key: &'static str,
        ws: WorkspaceId,
        limit: u32,
    ) -> Result<u64, StoreError>;
}

/// A workspace's tables in a region's data store with their keys, children before parents. The
/// DEKs go first, on their own: once they are gone every ciphertext of the workspace is noise.
pub(crate) const DATA_KEY_TABLE: (&str, &str) = ("data_keys", "workspace_id, version");
pub(crate) const DATA_TABLES: &[(&str, &str)] = &[
    // Queue rows, then notifications, then attempts: a delivery finishing during the deletion
    // either committed its attempt before the notifications went (and the attempt goes next) or
    // finds no notification and records nothing.
    ("delivery_queue", "notification_id"),
    ("notifications", "id"),
    ("attempts", "id"),
    ("idempotency_keys", "workspace_id, key_digest"),
    ("fanouts", "id"),
    ("topic_subscribers", "workspace_id, topic_id, subscriber_id"),
    ("topics", "id"),
    ("subscriber_channels", "id"),
    ("subscribers", "id"),
    ("integrations", "id"),
    ("workflows", "id"),
    ("suppressions", "id"),
    ("inbound_events", "id"),
    ("channels", "id"),
    ("audit_heads", "workspace_id, seq, signed_at"),
    ("audit_log", "workspace_id, seq"),
    ("audit_chains", "workspace_id"),
];
/// The vault: the workspace's DEKs first, then its credentials.
pub(crate) const VAULT_TABLES: &[(&str, &str)] =
    &[("vault_keys", "workspace_id, version"), ("secrets", "workspace_id, owner_id, kind")];
/// The control store, before the workspace's own row.
pub(crate) const CONTROL_TABLES: &[(&str, &str)] = &[
    ("api_keys", "id"),
    ("delivery_stats", "workspace_id, day"),
    ("control_audit_heads", "workspace_id, seq, signed_at"),
    ("control_audit_log", "workspace_id, seq"),
    ("control_audit_chains", "workspace_id"),
];

/// The statement behind [`WorkspaceEraser::delete_workspace_rows`]; `$1` is the workspace, `$2`
/// the batch size (SQLite reads `$n` as a numbered parameter too).
pub(crate) fn delete_rows_sql(table: &str, key: &str) -> String {
    format!("DELETE FROM {table} WHERE ({key}) IN (SELECT {key} FROM {table} WHERE workspace_id = $1 LIMIT $2)")
}

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

/// Topic fan-outs: claimed under a lease and done in batches.
#[async_trait::async_trait]
pub trait DirectoryBackend: Send + Sync + 'static {
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
    ) -> Result<bool, StoreError>;
}

#[async_trait::async_trait]
pub trait DataBackend:
    DirectoryBackend
    + crate::keys::DataKeyRows
    + crate::channels::ChannelRows
    + crate::subscribers::SubscriberRows
    + crate::feedback::FeedbackRows
    + AuditBackend
    + WorkspaceEraser
    + crate::workflows::WorkflowRows
    + crate::topics::TopicRows
    + crate::integrations::IntegrationRows
{
    async fn ping(&self) -> Result<(), StoreError>;

    /// Records `region` as this database's region on first use; refuses a database that
    /// already belongs to another region.
    async fn bind_region(&self, region: &Region) -> Result<(), StoreError>;
    /// Inserts notifications and their queue entries in one transaction: durable when it returns.
    /// An idempotency digest claimed less than `idempotency_window` before a row's `created_at`
    /// yields [`InsertOutcome::Existing`] for that row instead.
    async fn insert_notifications(
        &self,
        rows: &[(WorkspaceId, NewNotificationRow)],
        idempotency_window: std::time::Duration,
    ) -> Result<Vec<InsertOutcome>, StoreError>;
    async fn notification(&self, ws: WorkspaceId, id: NotificationId) -> Result<Option<NotificationRow>, StoreError>;
    async fn attempts(&self, ws: WorkspaceId, id: NotificationId) -> Result<Vec<AttemptRow>, StoreError>;
    /// What a delivery needs in one read: the payload ciphertext and, for a direct webhook,
    /// the channel's row.
    async fn delivery_rows(
        &self,
        ws: WorkspaceId,
        id: NotificationId,
    ) -> Result<Option<(Vec<u8>, Target, Option<crate::ChannelRow>)>, StoreError>;
    /// Inserts an event's messages and their queue entries in one transaction, unless the
    /// event's idempotency digest was claimed within the window: then nothing is inserted and
    /// the original event's id is returned.
    async fn insert_event(
        &self,
        ws: WorkspaceId,
        event: &NewEvent,
        idempotency_window: std::time::Duration,
    ) -> Result<Option<EventId>, StoreError>;
    /// A subscriber's in-app messages, newest first, before `before`; archived ones only if asked.
    async fn inbox(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        before: Option<NotificationId>,
        limit: u32,
        archived: bool,
    ) -> Result<Vec<NotificationRow>, StoreError>;
    async fn inbox_unread(&self, ws: WorkspaceId, subscriber: SubscriberId) -> Result<u64, StoreError>;
    /// Sets or clears read and archived marks of one in-app message; `false` if there is no such
    /// message in that subscriber's inbox.
    async fn mark_inbox(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        id: NotificationId,
        read_at: Option<Option<Timestamp>>,
        archived_at: Option<Option<Timestamp>>,
    ) -> Result<bool, StoreError>;
    /// Deletes up to `limit` idempotency claims created before `before`. `None` when another node
    /// is running this job right now (it holds the job's lock), so each batch runs on one node.
    async fn purge_idempotency_keys(&self, before: Timestamp, limit: u32) -> Result<Option<u64>, StoreError>;
    /// Re-queues a failed notification; `false` when it is not in the failed state.
    async fn replay(&self, ws: WorkspaceId, id: NotificationId, now: Timestamp) -> Result<bool, StoreError>;

    async fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedJob>, StoreError>;
    /// Gives claimed-but-unstarted jobs back, due at `now`, if their lease is still ours.
    async fn release_claims(&self, jobs: &[ClaimedJob], now: Timestamp) -> Result<(), StoreError>;
    /// Empties the payload of up to `limit` finished notifications of `ws` created before
    /// `before` (their metadata and attempts stay), and drops its finished fan-outs' event data
    /// from before then. `None`: another node holds the job (PostgreSQL).
    async fn remove_payloads(
        &self,
        ws: WorkspaceId,
        before: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<Option<u64>, StoreError>;
    /// Workspaces with deliveries held (due at [`HELD`]) while they were frozen.
    async fn held_workspaces(&self) -> Result<Vec<WorkspaceId>, StoreError>;
    /// Makes a workspace's held deliveries due at `now`; returns how many.
    async fn release_held(&self, ws: WorkspaceId, now: Timestamp) -> Result<u64, StoreError>;
    /// Records attempts and moves their jobs on, all in one transaction; per attempt, whether it
    /// was recorded (not when its notification was erased meanwhile).
    async fn complete_attempts(&self, done: &[(ClaimedJob, CompletedAttempt)]) -> Result<Vec<bool>, StoreError>;
}

#[async_trait::async_trait]
pub trait VaultBackend: WorkspaceEraser + crate::keys::VaultKeyRows + crate::vault::SecretRows {
    async fn ping(&self) -> Result<(), StoreError>;
    async fn bind_region(&self, region: &Region) -> Result<(), StoreError>;
}

/// Audit SQL for a stream's tables. The control store's are prefixed `control_`, so a control
/// store sharing a PostgreSQL database with a region's data keeps its own chains.
pub(crate) fn audit_sql(stream: Stream, template: &str) -> String {
    match stream {
        Stream::Control => template.replace("audit_", "control_audit_"),
        Stream::Data => template.to_string(),
    }
}

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

/// The audit trail of a store (control or data). Audited actions append in their own
/// transaction through the backend's other methods; this is the rest: reads, standalone
/// entries, head signing and retention.
#[async_trait::async_trait]
pub trait AuditBackend: Send + Sync + 'static {
    /// Entries for actions that write nothing else (exports, rotations).
    async fn append_audit(&self, stream: Stream, events: &[(WorkspaceId, AuditEvent)]) -> Result<(), StoreError>;
    async fn audit_page(
        &self,
        ws: WorkspaceId,
        stream: Stream,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditEntry>, StoreError>;
    /// Entries after `after_seq`, ascending (export and verification read a chain in pages).
    async fn audit_entries(
        &self,
        ws: WorkspaceId,
        stream: Stream,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError>;
    async fn audit_chain(&self, ws: WorkspaceId, stream: Stream) -> Result<Option<ChainRow>, StoreError>;
    async fn audit_heads(&self, ws: WorkspaceId, stream: Stream) -> Result<Vec<SignedHead>, StoreError>;
    /// Every workspace with a chain in this store.
    async fn audit_chains(&self, stream: Stream) -> Result<Vec<WorkspaceId>, StoreError>;
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

/// The control plane's store: workspaces, API key metadata and delivery analytics. Nothing in
/// it is notification content, an address or a credential.
#[async_trait::async_trait]
pub trait ControlBackend: AuditBackend + WorkspaceEraser + crate::workspaces::ControlRows {
    async fn ping(&self) -> Result<(), StoreError>;
}

/// The route columns of `notifications n`, in [`RouteColumns`] order (`kind` as `route_kind`,
/// which joined tables also have).
macro_rules! route_columns {
    () => {
        "n.channel_id, n.kind AS route_kind, n.event_id, n.subscriber_id, n.subscriber_channel_id, n.integration_id, \
         n.fallback_integration_id, n.failover_after"
    };
}
pub(crate) use route_columns;

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
