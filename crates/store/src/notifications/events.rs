//! Events: messages to subscribers sealed under each subscriber's key, topic fan-outs done in
//! batches, and the in-app inbox.

use chimatic_crypto::{Aad, Dek};
use chimatic_domain::{
    EventId, FanoutId, NotificationId, RenderedMessage, Sensitive, SubscriberChannelId, SubscriberId, Timestamp,
    TopicId, WorkflowId, WorkspaceId,
};

use crate::{Audience, Store};

use crate::keys::KeyDomain;
use crate::records::{Notification, PlannedMessage, SubscriberChannel};
use crate::{FanoutProgress, FanoutRow, MessageRoute, NewEvent, NewNotificationRow, StoreError, Target};

/// Planned messages and the audience they were planned for, whose keys seal them.
pub struct Messages<'a> {
    pub audience: &'a Audience,
    pub planned: Vec<PlannedMessage>,
}

impl Store {
    pub(crate) async fn subscriber_key_of(&self, ws: WorkspaceId, subscriber: SubscriberId) -> Result<Dek, StoreError> {
        let row = self.data.subscriber(ws, subscriber).await?.ok_or(StoreError::NotFound)?;
        self.subscriber_key(ws, &row).await
    }

    /// A message's rendered content and the channel it goes to, both under the subscriber's key.
    pub(crate) async fn open_message(
        &self,
        ws: WorkspaceId,
        id: NotificationId,
        route: &MessageRoute,
        sealed: &[u8],
    ) -> Result<(RenderedMessage, SubscriberChannel), StoreError> {
        let key = self.subscriber_key_of(ws, route.subscriber_id).await?;
        let id_text = id.to_string();
        let plain =
            key.decrypt(&Aad { workspace: ws, table: "notifications", column: "payload", row: &id_text }, sealed)?;
        let content: RenderedMessage =
            serde_json::from_slice(&plain).map_err(|_| StoreError::Corrupt("message content"))?;
        let channels = self.data.subscriber_channels(ws, route.subscriber_id).await?;
        let row = channels.iter().find(|c| c.id == route.subscriber_channel_id).ok_or(StoreError::NotFound)?;
        Ok((content, Self::open_subscriber_channel(ws, &key, row)?))
    }

    /// Encrypts messages, each under its subscriber's key (from the audience they were planned
    /// for), into rows for one event.
    fn seal_messages(
        ws: WorkspaceId,
        event_id: EventId,
        messages: Messages<'_>,
        now: Timestamp,
    ) -> Result<Vec<NewNotificationRow>, StoreError> {
        let mut rows = Vec::with_capacity(messages.planned.len());
        for m in messages.planned {
            let key = messages.audience.key(m.subscriber_id)?;
            let id = NotificationId::generate();
            let id_text = id.to_string();
            let plain = serde_json::to_vec(&m.content).map_err(|_| StoreError::Corrupt("message content"))?;
            let sealed =
                key.encrypt(&Aad { workspace: ws, table: "notifications", column: "payload", row: &id_text }, &plain)?;
            rows.push(NewNotificationRow {
                id,
                target: Target::Subscriber(MessageRoute {
                    event_id,
                    kind: m.kind,
                    subscriber_id: m.subscriber_id,
                    subscriber_channel_id: m.subscriber_channel_id,
                    integration_id: m.integration_id,
                    failover: m.failover,
                }),
                status: m.status,
                payload: sealed,
                idempotency_digest: None,
                created_at: now,
            });
        }
        Ok(rows)
    }

    /// Queues an event in one transaction: its messages to direct recipients (each encrypted
    /// under its subscriber's key) and a fan-out job per topic (the event's data under the workspace DEK). With an idempotency key used in
    /// the last 24 h, queues nothing and returns the original event's id.
    pub async fn enqueue_event(
        &self,
        ws: WorkspaceId,
        event_id: EventId,
        idempotency_key: Option<&Sensitive<String>>,
        messages: Messages<'_>,
        topics: Vec<(TopicId, WorkflowId, Sensitive<Vec<u8>>)>,
        now: Timestamp,
    ) -> Result<(Option<EventId>, Vec<NotificationId>), StoreError> {
        let dek = self.write_key(KeyDomain::Data, ws).await?;
        let index = self.index_key(ws).await?;
        let digest = idempotency_key.map(|k| index.blind_index(b"event-idempotency", k.expose().as_bytes()));
        let rows = Self::seal_messages(ws, event_id, messages, now)?;
        let mut fanouts = Vec::with_capacity(topics.len());
        for (topic_id, workflow_id, data) in topics {
            let id = FanoutId::generate();
            let id_text = id.to_string();
            let sealed =
                dek.encrypt(&Aad { workspace: ws, table: "fanouts", column: "data", row: &id_text }, data.expose())?;
            fanouts.push(FanoutRow {
                id,
                event_id,
                topic_id,
                workflow_id,
                data: sealed,
                cursor: String::new(),
                lease_token: None,
                created_at: now,
            });
        }
        let ids: Vec<NotificationId> = rows.iter().map(|r| r.id).collect();
        let event = NewEvent { id: event_id, idempotency_digest: digest, rows, fanouts, created_at: now };
        let existing = self.data.insert_event(ws, &event, crate::store::IDEMPOTENCY_WINDOW).await?;
        let ids = if existing.is_some() { Vec::new() } else { ids };
        Ok((existing, ids))
    }

    /// Claims one unfinished fan-out under a lease, with its event data decrypted.
    pub async fn claim_fanout(
        &self,
        now: Timestamp,
        lease: std::time::Duration,
    ) -> Result<Option<(WorkspaceId, FanoutRow, Sensitive<Vec<u8>>)>, StoreError> {
        let Some((ws, row)) = self.data.claim_fanout(now, now.plus(lease)).await? else { return Ok(None) };
        let id_text = row.id.to_string();
        let data = self
            .open(KeyDomain::Data, Aad { workspace: ws, table: "fanouts", column: "data", row: &id_text }, &row.data)
            .await?;
        Ok(Some((ws, row, Sensitive::new(data))))
    }

    /// Queues one batch of a fan-out, moves its cursor and extends its lease (`progress`);
    /// `false` if the lease was lost (another node took the job over).
    pub async fn fanout_batch(
        &self,
        ws: WorkspaceId,
        fanout: &FanoutRow,
        messages: Messages<'_>,
        progress: &FanoutProgress,
    ) -> Result<bool, StoreError> {
        let rows = Self::seal_messages(ws, fanout.event_id, messages, progress.now)?;
        self.data.fanout_batch(ws, fanout, &rows, progress).await
    }

    /// A webhook endpoint's deliveries, newest first, without their content (nothing is
    /// decrypted): status, attempts and times.
    pub async fn endpoint_deliveries(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        endpoint: SubscriberChannelId,
        before: Option<NotificationId>,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        let rows = self.data.endpoint_deliveries(ws, subscriber, endpoint, before, limit).await?;
        Ok(rows.into_iter().map(|row| super::notification_of(row, None)).collect())
    }

    /// A subscriber's in-app messages, newest first, and how many are unread.
    pub async fn inbox(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        before: Option<NotificationId>,
        limit: u32,
        archived: bool,
    ) -> Result<(Vec<Notification>, u64), StoreError> {
        if self.data.subscriber(ws, subscriber).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        let rows = self.data.inbox(ws, subscriber, before, limit, archived).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.open_notification(ws, row).await?);
        }
        Ok((out, self.data.inbox_unread(ws, subscriber).await?))
    }

    /// Marks an in-app message read or unread, archived or not (each only if given).
    pub async fn mark_inbox(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        id: NotificationId,
        read: Option<bool>,
        archived: Option<bool>,
        now: Timestamp,
    ) -> Result<Notification, StoreError> {
        let stamp = |flag: Option<bool>| flag.map(|on| on.then_some(now));
        if !self.data.mark_inbox(ws, subscriber, id, stamp(read), stamp(archived)).await? {
            return Err(StoreError::NotFound);
        }
        self.notification(ws, id).await
    }

    /// Marks every unread message of the subscriber's inbox read; how many.
    pub async fn mark_inbox_read(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.data.mark_inbox_read(ws, subscriber, now).await
    }
}
