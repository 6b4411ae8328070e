use serde::{Deserialize, Serialize};

/// Lifecycle of a notification: `queued` → `delivering` → `delivered` | back to `queued` for a
/// retry | `failed` once the schedule is exhausted. A failed notification can be replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotificationStatus {
    Queued,
    Delivering,
    Delivered,
    Failed,
}

impl NotificationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Delivering => "delivering",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Queued, Self::Delivering, Self::Delivered, Self::Failed].into_iter().find(|v| v.as_str() == s)
    }
}
