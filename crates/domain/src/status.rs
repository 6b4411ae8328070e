use serde::{Deserialize, Serialize};

/// Lifecycle of a notification: `queued` → `delivering` → `delivered` | back to `queued` for a
/// retry | `failed` once the schedule is exhausted. A failed notification can be replayed.
/// `skipped`: a message the subscriber opted out of, recorded but never sent.
/// `suppressed`: a message to an address on the workspace's suppression list (it bounced hard or
/// its owner complained), recorded but never sent.
/// `cancelled`: was queued when its channel was deactivated; taken out of the queue, never sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotificationStatus {
    Queued,
    Delivering,
    Delivered,
    Failed,
    Skipped,
    Suppressed,
    Cancelled,
}

impl NotificationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Delivering => "delivering",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Suppressed => "suppressed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Delivering,
            Self::Delivered,
            Self::Failed,
            Self::Skipped,
            Self::Suppressed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}
