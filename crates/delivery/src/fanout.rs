//! The fan-out worker of one region: sends events to topics' members in batches. Each batch
//! loads one page of members (never the whole topic), renders their messages and queues them
//! with the job's new cursor in one transaction, so a crash or a lost lease resumes after the
//! last committed batch and no member is sent the event twice.

use std::sync::Arc;
use std::time::Duration;

use chimatic_domain::{Clock, SubscriberId, WorkspaceId};
use chimatic_store::records::Workflow;
use chimatic_store::{ControlStore, DeliveryStats, FanoutProgress, FanoutRow, Messages, Store, StoreError};
use chimatic_templates::Renderer;
use tokio::sync::{Notify, watch};

use crate::intake::{self, PlanError, Planned};

/// Members per batch: bounds memory and transaction size whatever the topic's size.
const BATCH: u32 = 1000;
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
    async fn frozen(&self, ws: WorkspaceId) -> bool {
        self.control.frozen_workspaces().await.map(|f| f.contains(&ws)).unwrap_or(true)
    }

    fn progress(&self, cursor: &str, done: bool) -> FanoutProgress {
        let now = self.clock.now();
        FanoutProgress { cursor: cursor.to_string(), done, now, lease_until: now.plus(LEASE) }
    }

    /// Pages through the topic. While one batch is being written, the next is read and
    /// planned, so the store's writer and the planning use both halves of the time; batches
    /// are still written in order, each with its cursor, so a crash resumes after the last one.
    async fn fan_out(&self, ws: WorkspaceId, row: &FanoutRow, data: &[u8]) -> Result<(), StoreError> {
        let workflow = match self.store.workflow(ws, row.workflow_id).await {
            Ok(w) => w,
            // The workflow was deleted: nothing is sent, and the fan-out is finished.
            Err(StoreError::NotFound) => {
                let nothing = Messages { audience: &Default::default(), planned: Vec::new() };
                self.store.fanout_batch(ws, row, nothing, &self.progress(&row.cursor, true)).await?;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let data: serde_json::Value = serde_json::from_slice(data).map_err(|_| StoreError::Corrupt("event data"))?;
        let mut batch = self.next_batch(ws, row, &workflow, &data, &row.cursor).await?;
        loop {
            let Batch { planned, cursor, done } = batch;
            let sendable = planned.sendable();
            let progress = self.progress(&cursor, done);
            let write = self.store.fanout_batch(
                ws,
                row,
                Messages { audience: &planned.audience, planned: planned.messages },
                &progress,
            );
            let (written, next) = if done {
                (write.await, None)
            } else {
                let (written, next) = tokio::join!(write, self.next_batch(ws, row, &workflow, &data, &cursor));
                (written, Some(next))
            };
            if !written? {
                tracing::info!(fanout = %row.id, "a fan-out's lease was taken over; leaving it to the new holder");
                return Ok(());
            }
            intake::accepted(&self.stats, &self.delivery_waker, ws, progress.now, sendable);
            match next {
                None => return Ok(()),
                Some(next) => batch = next?,
            }
        }
    }

    /// The page of members after `cursor`, planned. A step that fails to render ends the
    /// fan-out there: an empty, final batch.
    async fn next_batch(
        &self,
        ws: WorkspaceId,
        row: &FanoutRow,
        workflow: &Workflow,
        data: &serde_json::Value,
        cursor: &str,
    ) -> Result<Batch, StoreError> {
        let after: Option<SubscriberId> = if cursor.is_empty() {
            None
        } else {
            Some(cursor.parse().map_err(|_| StoreError::Corrupt("fan-out cursor"))?)
        };
        let members = self.store.topic_subscribers(ws, row.topic_id, after, BATCH).await?;
        let done = members.len() < BATCH as usize;
        let next_cursor = members.last().map(|m| m.to_string()).unwrap_or_else(|| cursor.to_string());
        let members: Vec<(usize, SubscriberId)> = members.into_iter().enumerate().collect();
        match intake::plan_for(&self.store, ws, workflow, &members, data, &self.templates).await {
            Ok(planned) => Ok(Batch { planned, cursor: next_cursor, done }),
            Err(PlanError::Store(e)) => Err(e),
            Err(PlanError::Render { step, error }) => {
                tracing::warn!(fanout = %row.id, step, error = %error, "a workflow step failed to render; the fan-out stops");
                Ok(Batch { planned: Planned::default(), cursor: cursor.to_string(), done: true })
            }
        }
    }
}

/// One page of a fan-out, planned: its messages, the cursor after it, and whether it is the last.
struct Batch {
    planned: Planned,
    cursor: String,
    done: bool,
}
