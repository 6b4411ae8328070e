//! Intake: what an event becomes for its recipients, and what every accepted notification sets
//! going, written once for the API's requests and the topics' fan-outs.

mod plan;

use chimatic_domain::{NotificationStatus, SubscriberId, Timestamp, WorkspaceId};
use chimatic_store::records::{PlannedMessage, Workflow};
use chimatic_store::{Audience, DeliveryEvent, DeliveryStats, Store, StoreError};
use chimatic_templates::{Renderer, TemplateError};
use serde_json::Value;
use tokio::sync::Notify;

pub use plan::{Skip, plan};

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("step {step} failed to render: {error}")]
    Render { step: usize, error: TemplateError },
}

/// An event's messages for its recipients and what was skipped, with the audience they were
/// planned for (which seals them).
#[derive(Default)]
pub struct Planned {
    pub messages: Vec<PlannedMessage>,
    pub skips: Vec<Skip>,
    pub audience: Audience,
}

impl Planned {
    /// Messages that will be delivered (not skipped, not suppressed).
    pub fn sendable(&self) -> u64 {
        self.messages.iter().filter(|m| m.status == NotificationStatus::Queued).count() as u64
    }
}

/// Loads the subscribers (each with its position in the request, for reporting skips), their
/// channels and which of them are suppressed, in a few reads whatever their number, and plans
/// the workflow for them.
pub async fn plan_for(
    store: &Store,
    ws: WorkspaceId,
    workflow: &Workflow,
    subscribers: &[(usize, SubscriberId)],
    data: &Value,
    renderer: &Renderer,
) -> Result<Planned, PlanError> {
    let mut audience = store.audience(ws, subscribers).await?;
    for recipient in &mut audience.recipients {
        // An endpoint its subscriber disabled is left out, as if it were not there.
        recipient.channels.retain(|c| c.disabled_at.is_none());
    }
    let channels: Vec<_> = audience.recipients.iter().flat_map(|r| &r.channels).collect();
    let suppressed = store.suppressed_channels(ws, &channels).await?;
    let (messages, skips) = plan(workflow, &audience.recipients, &suppressed, data, renderer)
        .map_err(|(step, error)| PlanError::Render { step, error })?;
    Ok(Planned { messages, skips, audience })
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
