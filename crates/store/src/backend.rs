//! The backend traits: ciphertext rows in, ciphertext rows out. Every tenant-owned operation
//! takes the workspace id, so a backend cannot be asked for a row without its tenant.

use chimatic_crypto::ApiKeyDigest;
use chimatic_domain::{
    ApiKeyId, ChannelId, ChannelKind, EventId, FanoutId, IntegrationId, NotificationId, NotificationStatus, Region,
    Scopes, SubscriberChannelId, SubscriberId, Timestamp, TopicId, WorkflowId, WorkspaceId,
};

use crate::StoreError;

pub struct WrappedKeyRow {
    pub version: u32,
    pub kek_id: String,
    pub wrapped: Vec<u8>,
}

#[derive(Clone)]
pub struct ApiKeyRow {
    pub id: ApiKeyId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub scopes: Scopes,
    pub digest: ApiKeyDigest,
    pub last4: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

#[derive(Clone)]
pub struct WorkspaceRow {
    pub id: WorkspaceId,
    pub name: String,
    pub region: Region,
    pub created_at: Timestamp,
}

/// Delivery counts of one workspace on one UTC day (days since the Unix epoch).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsRow {
    pub day: i64,
    pub accepted: u64,
    pub attempts: u64,
    pub delivered: u64,
    pub failed: u64,
}

pub struct ChannelRow {
    pub id: ChannelId,
    pub kind: String,
    /// Ciphertext of the destination (URL and TLS policy).
    pub destination: Vec<u8>,
    pub created_at: Timestamp,
}

/// Where a message to a subscriber goes: which event made it, the subscriber's channel, and the
/// integration that delivers it (none for in-app).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRoute {
    pub event_id: EventId,
    pub kind: ChannelKind,
    pub subscriber_id: SubscriberId,
    pub subscriber_channel_id: SubscriberChannelId,
    pub integration_id: Option<IntegrationId>,
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
    /// Recorded as `skipped` and never queued (the subscriber opted out).
    pub skipped: bool,
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
    pub payload: Vec<u8>,
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

pub(crate) fn u32_of(v: i64, what: &'static str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(what))
}

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
}

#[derive(Clone)]
pub struct SubscriberRow {
    pub id: SubscriberId,
    pub external_key: [u8; 32],
    pub external_id: Vec<u8>,
    pub subscriber_key: Vec<u8>,
    pub attributes: Vec<u8>,
    pub preferences: Option<Vec<u8>>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Clone)]
pub struct SubscriberChannelRow {
    pub id: SubscriberChannelId,
    pub subscriber_id: SubscriberId,
    pub kind: String,
    pub address: Vec<u8>,
    pub created_at: Timestamp,
}

#[derive(Clone)]
pub struct IntegrationRow {
    pub id: IntegrationId,
    pub kind: String,
    pub name: String,
    pub settings: Vec<u8>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_check: Option<CheckRecord>,
}

#[derive(Clone)]
pub struct WorkflowRow {
    pub id: WorkflowId,
    pub key: String,
    pub definition: Vec<u8>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Clone)]
pub struct TopicRow {
    pub id: TopicId,
    pub key: String,
    pub created_at: Timestamp,
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

/// The result of an integration's last health check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckRecord {
    pub at: Timestamp,
    /// `None` while a check that started at `at` has not finished.
    pub healthy: Option<bool>,
    pub error_class: Option<String>,
}

/// A workspace's directory in a region's notification store: subscribers, their channels and
/// provider integrations (settings only; credentials are in the vault).
#[async_trait::async_trait]
pub trait DirectoryBackend: Send + Sync + 'static {
    /// `false` when the workspace already has a subscriber with this external key.
    async fn insert_subscriber(&self, ws: WorkspaceId, row: &SubscriberRow) -> Result<bool, StoreError>;
    async fn subscriber(&self, ws: WorkspaceId, id: SubscriberId) -> Result<Option<SubscriberRow>, StoreError>;
    async fn subscriber_by_external_key(
        &self,
        ws: WorkspaceId,
        key: &[u8; 32],
    ) -> Result<Option<SubscriberRow>, StoreError>;
    async fn update_subscriber_attributes(
        &self,
        ws: WorkspaceId,
        id: SubscriberId,
        attributes: &[u8],
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    async fn update_subscriber_preferences(
        &self,
        ws: WorkspaceId,
        id: SubscriberId,
        preferences: &[u8],
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    async fn list_subscribers(
        &self,
        ws: WorkspaceId,
        after: Option<SubscriberId>,
        limit: u32,
    ) -> Result<Vec<SubscriberRow>, StoreError>;

    async fn insert_subscriber_channel(&self, ws: WorkspaceId, row: &SubscriberChannelRow) -> Result<(), StoreError>;
    async fn subscriber_channels(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
    ) -> Result<Vec<SubscriberChannelRow>, StoreError>;
    async fn delete_subscriber_channel(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        id: SubscriberChannelId,
    ) -> Result<bool, StoreError>;

    async fn insert_integration(&self, ws: WorkspaceId, row: &IntegrationRow) -> Result<(), StoreError>;
    async fn integration(&self, ws: WorkspaceId, id: IntegrationId) -> Result<Option<IntegrationRow>, StoreError>;
    async fn list_integrations(&self, ws: WorkspaceId) -> Result<Vec<IntegrationRow>, StoreError>;
    /// Replaces name, settings and `updated_at`; `false` if there is no such integration.
    async fn update_integration(&self, ws: WorkspaceId, row: &IntegrationRow) -> Result<bool, StoreError>;
    async fn delete_integration(&self, ws: WorkspaceId, id: IntegrationId) -> Result<bool, StoreError>;
    /// Records a finished health check; `false` if there is no such integration.
    async fn record_integration_check(
        &self,
        ws: WorkspaceId,
        id: IntegrationId,
        at: Timestamp,
        healthy: bool,
        error_class: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// `false` when the workspace already has a topic with this key.
    async fn insert_topic(&self, ws: WorkspaceId, row: &TopicRow) -> Result<bool, StoreError>;
    async fn topic(&self, ws: WorkspaceId, id: TopicId) -> Result<Option<TopicRow>, StoreError>;
    async fn topic_by_key(&self, ws: WorkspaceId, key: &str) -> Result<Option<TopicRow>, StoreError>;
    async fn list_topics(&self, ws: WorkspaceId) -> Result<Vec<TopicRow>, StoreError>;
    /// Adds those of `subscribers` that exist in this workspace and are not members yet;
    /// returns how many were added.
    async fn add_topic_subscribers(
        &self,
        ws: WorkspaceId,
        topic: TopicId,
        subscribers: &[SubscriberId],
        now: Timestamp,
    ) -> Result<u64, StoreError>;
    async fn remove_topic_subscribers(
        &self,
        ws: WorkspaceId,
        topic: TopicId,
        subscribers: &[SubscriberId],
    ) -> Result<u64, StoreError>;
    /// Members in subscriber-id order after `after`.
    async fn topic_subscribers(
        &self,
        ws: WorkspaceId,
        topic: TopicId,
        after: &str,
        limit: u32,
    ) -> Result<Vec<SubscriberId>, StoreError>;
    async fn topic_size(&self, ws: WorkspaceId, topic: TopicId) -> Result<u64, StoreError>;
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
    /// `false` when the workspace already has a workflow with this key.
    async fn insert_workflow(&self, ws: WorkspaceId, row: &WorkflowRow) -> Result<bool, StoreError>;
    async fn workflow(&self, ws: WorkspaceId, id: WorkflowId) -> Result<Option<WorkflowRow>, StoreError>;
    async fn workflow_by_key(&self, ws: WorkspaceId, key: &str) -> Result<Option<WorkflowRow>, StoreError>;
    async fn list_workflows(&self, ws: WorkspaceId) -> Result<Vec<WorkflowRow>, StoreError>;
    /// Replaces the definition and `updated_at`; `false` if there is no such workflow.
    async fn update_workflow(&self, ws: WorkspaceId, row: &WorkflowRow) -> Result<bool, StoreError>;
    async fn delete_workflow(&self, ws: WorkspaceId, id: WorkflowId) -> Result<bool, StoreError>;
    /// Claims up to `limit` integrations (of every workspace) whose last check started before
    /// `due_before`, by marking their check as started at `now`: several nodes never check the
    /// same integration at once. Kinds without a provider endpoint (`webhook`) are skipped.
    async fn claim_integration_checks(
        &self,
        due_before: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<(WorkspaceId, IntegrationId)>, StoreError>;
}

#[async_trait::async_trait]
pub trait DataBackend: DirectoryBackend {
    async fn ping(&self) -> Result<(), StoreError>;

    /// Records `region` as this database's region on first use; refuses a database that
    /// already belongs to another region.
    async fn bind_region(&self, region: &Region) -> Result<(), StoreError>;
    async fn insert_data_key(&self, ws: WorkspaceId, key: WrappedKeyRow, now: Timestamp) -> Result<(), StoreError>;
    async fn data_key(&self, ws: WorkspaceId, version: Option<u32>) -> Result<Option<WrappedKeyRow>, StoreError>;

    async fn insert_channel(&self, ws: WorkspaceId, row: &ChannelRow) -> Result<(), StoreError>;
    async fn channel(&self, ws: WorkspaceId, id: ChannelId) -> Result<Option<ChannelRow>, StoreError>;
    async fn list_channels(
        &self,
        ws: WorkspaceId,
        after: Option<ChannelId>,
        limit: u32,
    ) -> Result<Vec<ChannelRow>, StoreError>;

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
    ) -> Result<Option<(Vec<u8>, Target, Option<ChannelRow>)>, StoreError>;
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
    /// Records attempts and moves their jobs on, all in one transaction.
    async fn complete_attempts(&self, done: &[(ClaimedJob, CompletedAttempt)]) -> Result<Vec<()>, StoreError>;
}

#[async_trait::async_trait]
pub trait VaultBackend: Send + Sync + 'static {
    async fn ping(&self) -> Result<(), StoreError>;
    async fn bind_region(&self, region: &Region) -> Result<(), StoreError>;
    async fn insert_vault_key(&self, ws: WorkspaceId, key: WrappedKeyRow, now: Timestamp) -> Result<(), StoreError>;
    async fn vault_key(&self, ws: WorkspaceId, version: Option<u32>) -> Result<Option<WrappedKeyRow>, StoreError>;
    /// Stores a secret, replacing any previous one of the same owner and kind.
    async fn put_secret(
        &self,
        ws: WorkspaceId,
        owner_id: &str,
        kind: &str,
        secret: &[u8],
        now: Timestamp,
    ) -> Result<(), StoreError>;
    async fn secret(&self, ws: WorkspaceId, owner_id: &str, kind: &str) -> Result<Option<Vec<u8>>, StoreError>;
    async fn delete_secret(&self, ws: WorkspaceId, owner_id: &str, kind: &str) -> Result<bool, StoreError>;
}

/// The control plane's store: workspaces, API key metadata and delivery analytics. Nothing in
/// it is notification content, an address or a credential.
#[async_trait::async_trait]
pub trait ControlBackend: Send + Sync + 'static {
    async fn ping(&self) -> Result<(), StoreError>;

    async fn create_workspace(&self, row: &WorkspaceRow, owner_key: &ApiKeyRow) -> Result<(), StoreError>;
    async fn workspace(&self, id: WorkspaceId) -> Result<Option<WorkspaceRow>, StoreError>;

    async fn insert_api_key(&self, row: &ApiKeyRow) -> Result<(), StoreError>;
    /// Authentication: the one lookup that is not scoped, because it discovers the workspace
    /// (and so its region).
    async fn api_key_by_digest(&self, digest: &ApiKeyDigest) -> Result<Option<(ApiKeyRow, Region)>, StoreError>;
    async fn list_api_keys(&self, ws: WorkspaceId) -> Result<Vec<ApiKeyRow>, StoreError>;
    async fn revoke_api_key(&self, ws: WorkspaceId, id: ApiKeyId, now: Timestamp) -> Result<bool, StoreError>;
    async fn touch_api_key(&self, ws: WorkspaceId, id: ApiKeyId, now: Timestamp) -> Result<(), StoreError>;

    /// Adds the counts to the stored ones (one transaction for all rows).
    async fn add_stats(&self, rows: &[(WorkspaceId, StatsRow)]) -> Result<(), StoreError>;
    /// Days `from_day..=to_day` that have counts, oldest first.
    async fn stats(&self, ws: WorkspaceId, from_day: i64, to_day: i64) -> Result<Vec<StatsRow>, StoreError>;
}

/// The route columns of a notifications row, back to a [`Target`].
pub(crate) fn target_of(
    channel_id: Option<&str>,
    kind: &str,
    event_id: Option<&str>,
    subscriber_id: Option<&str>,
    subscriber_channel_id: Option<&str>,
    integration_id: Option<&str>,
) -> Result<Target, StoreError> {
    if let Some(channel) = channel_id {
        return Ok(Target::Channel(parse(channel, "channel id")?));
    }
    let (Some(event), Some(subscriber), Some(channel)) = (event_id, subscriber_id, subscriber_channel_id) else {
        return Err(StoreError::Corrupt("notification target"));
    };
    Ok(Target::Subscriber(MessageRoute {
        event_id: parse(event, "event id")?,
        kind: ChannelKind::parse(kind).ok_or(StoreError::Corrupt("message kind"))?,
        subscriber_id: parse(subscriber, "subscriber id")?,
        subscriber_channel_id: parse(channel, "subscriber channel id")?,
        integration_id: integration_id.map(|i| parse(i, "integration id")).transpose()?,
    }))
}

/// The route columns of a [`Target`], for inserting: channel id, kind, event, subscriber,
/// subscriber channel, integration.
pub(crate) type TargetColumns =
    (Option<String>, &'static str, Option<String>, Option<String>, Option<String>, Option<String>);

pub(crate) fn columns_of(target: &Target) -> TargetColumns {
    match target {
        Target::Channel(c) => (Some(c.to_string()), "webhook", None, None, None, None),
        Target::Subscriber(r) => (
            None,
            r.kind.as_str(),
            Some(r.event_id.to_string()),
            Some(r.subscriber_id.to_string()),
            Some(r.subscriber_channel_id.to_string()),
            r.integration_id.map(|i| i.to_string()),
        ),
    }
}
