//! The fan-out worker of one region: sends events to topics' members in batches. Each batch
//! loads one page of members (never the whole topic), renders their messages and queues them
//! with the job's new cursor in one transaction, so a crash or a lost lease resumes after the
//! last committed batch and no member is sent the event twice.

use std::sync::Arc;
use std::time::Duration;

use chimatic_api::fanout::{Recipient, plan};
use chimatic_domain::{Clock, NotificationStatus, SubscriberId};
use chimatic_store::{ControlStore, DeliveryEvent, DeliveryStats, FanoutProgress, FanoutRow, Store, StoreError};
use chimatic_templates::Renderer;
use tokio::sync::{Notify, watch};

/// Members per batch: bounds memory and transaction size whatever the topic's size.
const BATCH: u32 = 500;
/// A claimed fan-out is another node's to take over if this one is silent this long.
const LEASE: Duration = Duration::from_secs(60);

pub struct FanoutWorker {
    pub store: Arc<Store>,
    /// Freezes: a frozen workspace's fan-outs wait (their lease is renewed by each claim).
    pub control: Arc<ControlStore>,
    pub clock: Arc<dyn Clock>,
    pub templates: Arc<Renderer>,
    pub stats: Arc<DeliveryStats>,
    pub wake: Arc<Notify>,
    pub delivery_waker: Arc<Notify>,
}

impl FanoutWorker {
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            loop {
                match self.store.claim_fanout(self.clock.now(), LEASE).await {
                    Ok(Some((ws, row, _))) if self.frozen(ws).await => {
                        tracing::info!(fanout = %row.id, "fan-out of a frozen workspace waits");
                    }
                    Ok(Some((ws, row, data))) => {
                        if let Err(e) = self.fan_out(ws, &row, data.expose()).await {
                            tracing::warn!(fanout = %row.id, error = %e, "a fan-out batch failed; it resumes when its lease ends");
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming a fan-out failed");
                        break;
                    }
                }
                if *stop.borrow() {
                    return;
                }
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Whether the workspace is frozen; if that cannot be read, it is taken as frozen (the
    /// fan-out waits for its lease and is tried again).
    async fn frozen(&self, ws: chimatic_domain::WorkspaceId) -> bool {
        self.control.frozen_workspaces().await.map(|f| f.contains(&ws)).unwrap_or(true)
    }

    fn progress(&self, cursor: &str, done: bool) -> FanoutProgress {
        let now = self.clock.now();
        FanoutProgress { cursor: cursor.to_string(), done, now, lease_until: now.plus(LEASE) }
    }

    async fn fan_out(&self, ws: chimatic_domain::WorkspaceId, row: &FanoutRow, data: &[u8]) -> Result<(), StoreError> {
        let workflow = match self.store.workflow(ws, row.workflow_id).await {
            Ok(w) => Some(w),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e),
        };
        let data: serde_json::Value = serde_json::from_slice(data).map_err(|_| StoreError::Corrupt("event data"))?;
        let mut cursor = row.cursor.clone();
        loop {
            let after: Option<SubscriberId> = if cursor.is_empty() {
                None
            } else {
                Some(cursor.parse().map_err(|_| StoreError::Corrupt("fan-out cursor"))?)
            };
            let members = self.store.topic_subscribers(ws, row.topic_id, after, BATCH).await?;
            let done = members.len() < BATCH as usize;
            let next_cursor = members.last().map(|m| m.to_string()).unwrap_or_else(|| cursor.clone());
            let mut recipients = Vec::with_capacity(members.len());
            for (index, member) in members.into_iter().enumerate() {
                // A member erased since it joined is simply not there any more.
                let subscriber = match self.store.subscriber(ws, member).await {
                    Ok(s) => s,
                    Err(StoreError::NotFound) => continue,
                    Err(e) => return Err(e),
                };
                let channels = self.store.subscriber_channels(ws, member).await?;
                recipients.push(Recipient { index, subscriber, channels });
            }
            let suppressed = self
                .store
                .suppressed_channels(ws, &recipients.iter().flat_map(|r| &r.channels).collect::<Vec<_>>())
                .await?;
            let messages = match &workflow {
                Some(workflow) => match plan(workflow, &recipients, &suppressed, &data, &self.templates) {
                    Ok((messages, _)) => messages,
                    Err((step, e)) => {
                        tracing::warn!(fanout = %row.id, step, error = %e, "a workflow step failed to render; the fan-out stops");
                        let progress = self.progress(&cursor, true);
                        self.store.fanout_batch(ws, row, Vec::new(), &progress).await?;
                        return Ok(());
                    }
                },
                None => Vec::new(),
            };
            let sendable = messages.iter().filter(|m| m.status == NotificationStatus::Queued).count() as u64;
            let done = done || workflow.is_none();
            let progress = self.progress(&next_cursor, done);
            let now = progress.now;
            if !self.store.fanout_batch(ws, row, messages, &progress).await? {
                tracing::info!(fanout = %row.id, "a fan-out's lease was taken over; leaving it to the new holder");
                return Ok(());
            }
            if sendable > 0 {
                metrics::counter!("chimatic_notifications_accepted_total").increment(sendable);
                self.stats.record(ws, now, DeliveryEvent::Accepted, sendable);
                self.delivery_waker.notify_one();
            }
            if done {
                return Ok(());
            }
            cursor = next_cursor;
        }
    }
}
