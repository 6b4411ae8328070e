//! Intake: what an event becomes for its recipients, and what every accepted notification sets
//! going, written once for the API's requests and the topics' fan-outs.

mod plan;

use chimatic_domain::{NotificationStatus, Timestamp, WorkspaceId};
use chimatic_store::records::{PlannedMessage, Subscriber, Workflow};
use chimatic_store::{DeliveryEvent, DeliveryStats, Store, StoreError};
use chimatic_templates::{Renderer, TemplateError};
use serde_json::Value;
use tokio::sync::Notify;

pub use plan::{Recipient, Skip, plan};

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("step {step} failed to render: {error}")]
    Render { step: usize, error: TemplateError },
}

/// An event's messages for its recipients and what was skipped.
#[derive(Default)]
pub struct Planned {
    pub messages: Vec<PlannedMessage>,
    pub skips: Vec<Skip>,
}

impl Planned {
    /// Messages that will be delivered (not skipped, not suppressed).
    pub fn sendable(&self) -> u64 {
        self.messages.iter().filter(|m| m.status == NotificationStatus::Queued).count() as u64
    }
}

/// Loads each subscriber's channels and which of them are suppressed, and plans the workflow
/// for them. `subscribers` carry their position in the request, for reporting skips.
pub async fn plan_for(
    store: &Store,
    ws: WorkspaceId,
    workflow: &Workflow,
    subscribers: Vec<(usize, Subscriber)>,
    data: &Value,
    renderer: &Renderer,
) -> Result<Planned, PlanError> {
    let mut recipients = Vec::with_capacity(subscribers.len());
    for (index, subscriber) in subscribers {
        let mut channels = store.subscriber_channels(ws, subscriber.id).await?;
        // An endpoint its subscriber disabled is left out, as if it were not there.
        channels.retain(|c| c.disabled_at.is_none());
        recipients.push(Recipient { index, subscriber, channels });
    }
    let suppressed =
        store.suppressed_channels(ws, &recipients.iter().flat_map(|r| &r.channels).collect::<Vec<_>>()).await?;
    let (messages, skips) = plan(workflow, &recipients, &suppressed, data, renderer)
        .map_err(|(step, error)| PlanError::Render { step, error })?;
    Ok(Planned { messages, skips })
}

/// Counts `count` accepted notifications (the metric and the workspace's analytics) and wakes
/// the region's dispatcher to deliver them.
pub fn accepted(stats: &DeliveryStats, dispatcher: &Notify, ws: WorkspaceId, now: Timestamp, count: u64) {
    if count == 0 {
        return;
    }
    metrics::counter!("chimatic_notifications_accepted_total").increment(count);
    stats.record(ws, now, DeliveryEvent::Accepted, count);
    dispatcher.notify_one();
}
