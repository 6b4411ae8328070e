//! Decrypted records handed to the API and the delivery workers. Sensitive fields stay wrapped.

use chimatic_domain::{ChannelId, NotificationId, NotificationStatus, OutboundTls, Sensitive, Timestamp, WebhookUrl};
use serde::{Deserialize, Serialize};

pub struct Channel {
    pub id: ChannelId,
    pub kind: String,
    pub url: WebhookUrl,
    /// TLS 1.3 only and no pins unless the channel says otherwise.
    pub tls: OutboundTls,
    pub created_at: Timestamp,
}

pub struct Notification {
    pub id: NotificationId,
    pub channel_id: ChannelId,
    pub payload: Sensitive<Vec<u8>>,
    pub status: NotificationStatus,
    pub attempt_count: u32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub next_attempt_at: Option<Timestamp>,
}

/// What happened in one delivery attempt; stored encrypted as delivery metadata.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AttemptDetail {
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    pub error_class: Option<String>,
}

pub struct Attempt {
    pub started_at: Timestamp,
    pub succeeded: bool,
    pub detail: AttemptDetail,
}

pub enum Enqueued {
    Created(NotificationId),
    Existing(NotificationId),
}

impl Enqueued {
    pub fn id(&self) -> NotificationId {
        match self {
            Enqueued::Created(id) | Enqueued::Existing(id) => *id,
        }
    }
}
