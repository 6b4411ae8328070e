//! Notifications: accepted one by one or in batches (group-committed, so durable when the
//! call returns), events that become messages to subscribers and fan-outs to topics, the
//! delivery queue with its leases, attempts and the in-app inbox. Content is sealed under the
//! workspace DEK (webhooks) or the subscriber's own key (messages).

mod events;
pub use events::Messages;
mod postgres;
mod rows;
pub(crate) mod sql;
mod sqlite;

pub use rows::{
    AttemptRow, ClaimedJob, CompletedAttempt, Failover, FanoutProgress, FanoutRow, HELD, InsertOutcome, MessageRoute,
    NewEvent, NewNotificationRow, NotificationQuery, NotificationRow, NotificationRows, Prefetched, QueueDepth,
    QueueOutcome, Target,
};

use std::time::Duration;

use chimatic_audit::{AuditContext, actions};
use chimatic_crypto::Aad;
use chimatic_domain::{ChannelId, NotificationId, NotificationStatus, Sensitive, Timestamp, WorkspaceId};

use crate::StoreError;
use crate::keys::KeyDomain;
use crate::records::{Attempt, AttemptDetail, Delivery, Enqueued, Notification};

use crate::Store;
use crate::store::IDEMPOTENCY_WINDOW;

/// One notification of a batch, before encryption.
pub struct NewNotification {
    pub channel_id: ChannelId,
    pub payload: Sensitive<Vec<u8>>,
    pub idempotency_key: Option<Sensitive<String>>,
}

impl Store {
    async fn seal_notification(
        &self,
        ws: WorkspaceId,
        item: NewNotification,
        now: Timestamp,
    ) -> Result<NewNotificationRow, StoreError> {
        let id = NotificationId::generate();
        let id_text = id.to_string();
        let dek = self.write_key(KeyDomain::Data, ws).await?;
        let aad = Aad { workspace: ws, table: "notifications", column: "payload", row: &id_text };
        let sealed = dek.encrypt(&aad, item.payload.expose())?;
        // Keyed, so a copy of the database does not let anyone test guesses (emails, order ids).
        let index = match &item.idempotency_key {
            Some(_) => Some(self.index_key(ws).await?),
            None => None,
        };
        let idempotency_digest =
            item.idempotency_key.zip(index).map(|(k, index)| index.blind_index(b"idempotency", k.expose().as_bytes()));
        Ok(NewNotificationRow {
            id,
            target: Target::Channel(item.channel_id),
            status: NotificationStatus::Queued,
            payload: sealed,
            idempotency_digest,
            created_at: now,
        })
    }

    /// Encrypts and durably queues a notification; returns once it is committed. With an
    /// idempotency key used in the last 24 h, returns the original instead.
    pub async fn enqueue(
        &self,
        ws: WorkspaceId,
        item: NewNotification,
        now: Timestamp,
    ) -> Result<Enqueued, StoreError> {
        let channel = item.channel_id;
        self.require_active_channel(ws, channel).await?;
        let row = self.seal_notification(ws, item, now).await?;
        let id = row.id;
        Ok(match self.accepted.submit((ws, row)).await {
            Ok(InsertOutcome::Created) => Enqueued::Created(id),
            Ok(InsertOutcome::Existing(original)) => Enqueued::Existing(original),
            Err(StoreError::Conflict(crate::CHANNEL_DEACTIVATED)) => {
                self.recheck_channel(ws, channel).await?;
                return Err(StoreError::Conflict(crate::CHANNEL_DEACTIVATED));
            }
            Err(e) => return Err(e),
        })
    }

    /// Queues many notifications in one transaction: all are durable, or none is.
    /// Fails with `NotFound` if any channel is not in this workspace (callers that want to say
    /// which item is wrong check with [`Store::channel_exists`] first).
    pub async fn enqueue_batch(
        &self,
        ws: WorkspaceId,
        items: Vec<NewNotification>,
        now: Timestamp,
    ) -> Result<Vec<Enqueued>, StoreError> {
        let mut channels: Vec<ChannelId> = items.iter().map(|i| i.channel_id).collect();
        channels.sort();
        channels.dedup();
        for channel in &channels {
            self.require_active_channel(ws, *channel).await?;
        }
        let mut rows = Vec::with_capacity(items.len());
        for item in items {
            rows.push((ws, self.seal_notification(ws, item, now).await?));
        }
        let outcomes = match self.data.insert_notifications(&rows, IDEMPOTENCY_WINDOW).await {
            Ok(outcomes) => outcomes,
            Err(StoreError::Conflict(crate::CHANNEL_DEACTIVATED)) => {
                // The first channel found inactive on a fresh read answers for the batch.
                for channel in channels {
                    self.recheck_channel(ws, channel).await?;
                }
                return Err(StoreError::Conflict(crate::CHANNEL_DEACTIVATED));
            }
            Err(e) => return Err(e),
        };
        Ok(rows
            .iter()
            .zip(outcomes)
            .map(|((_, row), o)| match o {
                InsertOutcome::Created => Enqueued::Created(row.id),
                InsertOutcome::Existing(original) => Enqueued::Existing(original),
            })
            .collect())
    }

    /// Everything a delivery needs, decrypted: the payload and channel of a direct webhook, or
    /// the rendered content and address of a message to a subscriber.
    pub async fn delivery(&self, job: &ClaimedJob) -> Result<Delivery, StoreError> {
        let (ws, id) = (job.workspace_id, job.notification_id);
        let (sealed, target, channel) = self.data.delivery_rows(job).await?.ok_or(StoreError::NotFound)?;
        match (target, channel) {
            (Target::Channel(_), Some(channel)) => {
                let payload = self.open_payload(ws, id, &Target::Channel(channel.id), &sealed).await?;
                Ok(Delivery::Webhook { payload, channel: self.open_channel(ws, channel).await? })
            }
            (Target::Subscriber(route), _) => {
                let (content, channel) = self.open_message(ws, id, &route, &sealed).await?;
                Ok(Delivery::Message { route, content, channel: Box::new(channel) })
            }
            (Target::Channel(_), None) => Err(StoreError::NotFound),
        }
    }

    /// A notification's payload: under the workspace DEK for a direct webhook, under the
    /// subscriber's own key for a message (so erasing the subscriber makes it unreadable).
    async fn open_payload(
        &self,
        ws: WorkspaceId,
        id: NotificationId,
        target: &Target,
        sealed: &[u8],
    ) -> Result<Sensitive<Vec<u8>>, StoreError> {
        let id_text = id.to_string();
        let aad = Aad { workspace: ws, table: "notifications", column: "payload", row: &id_text };
        let plain = match target {
            Target::Channel(_) => self.open(KeyDomain::Data, aad, sealed).await?,
            Target::Subscriber(route) => {
                let key = self.subscriber_key_of(ws, route.subscriber_id).await?;
                key.decrypt(&aad, sealed)?.to_vec()
            }
        };
        Ok(Sensitive::new(plain))
    }

    pub async fn notification(&self, ws: WorkspaceId, id: NotificationId) -> Result<Notification, StoreError> {
        let row = self.data.notification(ws, id).await?.ok_or(StoreError::NotFound)?;
        self.open_notification(ws, row).await
    }

    pub(crate) async fn open_notification(
        &self,
        ws: WorkspaceId,
        row: NotificationRow,
    ) -> Result<Notification, StoreError> {
        // Removed by retention: nothing to decrypt. (An emptied payload without that mark is
        // tampering and fails its integrity check.)
        let payload = match &row.payload {
            Some(sealed) => Some(self.open_payload(ws, row.id, &row.target, sealed).await?),
            None => None,
        };
        Ok(notification_of(row, payload))
    }

    /// The workspace's newest notifications without their content (none is decrypted).
    pub async fn recent_notifications(
        &self,
        ws: WorkspaceId,
        query: &NotificationQuery,
    ) -> Result<Vec<Notification>, StoreError> {
        let rows = self.data.recent_notifications(ws, query).await?;
        Ok(rows.into_iter().map(|row| notification_of(row, None)).collect())
    }

    pub async fn queue_depth(&self, ws: WorkspaceId, now: Timestamp) -> Result<QueueDepth, StoreError> {
        self.data.queue_depth(ws, now).await
    }

    pub async fn attempts(&self, ws: WorkspaceId, id: NotificationId) -> Result<Vec<Attempt>, StoreError> {
        let rows = self.data.attempts(ws, id).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let plain = self
                .open(
                    KeyDomain::Data,
                    Aad { workspace: ws, table: "attempts", column: "detail", row: &r.id },
                    &r.detail,
                )
                .await?;
            let detail = serde_json::from_slice(&plain).map_err(|_| StoreError::Corrupt("attempt detail"))?;
            out.push(Attempt { started_at: r.started_at, succeeded: r.succeeded, detail });
        }
        Ok(out)
    }

    /// Queues a failed notification again (audited with the queueing).
    pub async fn replay(
        &self,
        ws: WorkspaceId,
        id: NotificationId,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<(), StoreError> {
        if self.data.notification(ws, id).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        let audit = by.event(now, actions::NOTIFICATION_REPLAYED, "notification", id);
        if self.data.replay(ws, id, now, &audit).await? {
            Ok(())
        } else {
            Err(StoreError::Conflict("only a failed notification whose content is still kept can be replayed"))
        }
    }

    pub async fn claim_due(&self, now: Timestamp, lease: Duration, limit: u32) -> Result<Vec<ClaimedJob>, StoreError> {
        self.data.claim_due(now, now.plus(lease), limit).await
    }

    pub async fn release_claims(&self, jobs: &[ClaimedJob], now: Timestamp) -> Result<(), StoreError> {
        self.data.release_claims(jobs, now).await
    }

    /// Holds claimed deliveries of a frozen workspace: back in the queue, never due, attempt
    /// counts untouched, until [`Store::resume_held`] sees the workspace unfrozen.
    pub async fn hold_claims(&self, jobs: &[ClaimedJob]) -> Result<(), StoreError> {
        if jobs.is_empty() {
            return Ok(());
        }
        self.data.release_claims(jobs, crate::HELD).await
    }

    /// Makes held deliveries of workspaces no longer frozen due now; returns how many.
    pub async fn resume_held(
        &self,
        frozen: &std::collections::BTreeSet<WorkspaceId>,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut resumed = 0;
        for ws in self.data.held_workspaces().await? {
            if !frozen.contains(&ws) {
                resumed += self.data.release_held(ws, now).await?;
            }
        }
        Ok(resumed)
    }

    /// Records a delivery attempt with its audit entry and moves the job on. `false`: the
    /// notification was erased while it was being delivered, and nothing was recorded.
    pub async fn complete_attempt(
        &self,
        job: &ClaimedJob,
        started_at: Timestamp,
        succeeded: bool,
        detail: &AttemptDetail,
        outcome: QueueOutcome,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let id = uuid::Uuid::now_v7().simple().to_string();
        let ws = job.workspace_id;
        let plain = serde_json::to_vec(detail).map_err(|_| StoreError::Corrupt("attempt detail"))?;
        let aad = Aad { workspace: ws, table: "attempts", column: "detail", row: &id };
        let sealed = match self.seal(KeyDomain::Data, aad, &plain).await {
            Ok(sealed) => sealed,
            // No DEK: the workspace was deleted while this was being delivered.
            Err(StoreError::NotFound) => return Ok(false),
            Err(e) => return Err(e),
        };
        let attempt = AttemptRow { id, started_at, succeeded, detail: sealed };
        let mut audit = AuditContext::system()
            .event(now, actions::DELIVERY_ATTEMPTED, "notification", job.notification_id)
            .with_detail(serde_json::json!({
                "status_code": detail.status_code,
                "error_class": detail.error_class,
                "integration_id": detail.integration_id,
                "latency_ms": detail.latency_ms,
            }));
        if !succeeded {
            audit = audit.failed();
        }
        self.attempts.submit((job.clone(), CompletedAttempt { attempt, outcome, now, audit })).await
    }
}

/// A notification as read: leased means delivering, and a due time only while it waits.
fn notification_of(row: NotificationRow, payload: Option<Sensitive<Vec<u8>>>) -> Notification {
    let status = if row.leased { chimatic_domain::NotificationStatus::Delivering } else { row.status };
    Notification {
        id: row.id,
        target: row.target,
        payload,
        status,
        attempt_count: row.attempt_count,
        created_at: row.created_at,
        updated_at: row.updated_at,
        next_attempt_at: row.queued_due_at.filter(|t| !row.leased && *t != crate::HELD),
        read_at: row.read_at,
        archived_at: row.archived_at,
    }
}
