//! Decrypted records handed to the API and the delivery workers. Sensitive fields stay wrapped.

use chimatic_domain::{
    ChannelAddress, ChannelId, IntegrationId, IntegrationKind, IntegrationSettings, NotificationId, NotificationStatus,
    OutboundTls, RenderedMessage, Sensitive, SubscriberChannelId, SubscriberId, Timestamp, WebhookUrl,
};
use serde::{Deserialize, Serialize};

pub struct Channel {
    pub id: ChannelId,
    pub kind: String,
    pub url: WebhookUrl,
    /// TLS 1.3 only and no pins unless the channel says otherwise.
    pub tls: OutboundTls,
    pub created_at: Timestamp,
}

/// A channel as the API shows it: an active one with its (decrypted) destination, or a
/// deactivated one, whose destination is not decrypted at all.
pub enum ChannelEntry {
    Active(Channel),
    Deactivated(DeactivatedChannel),
}

pub struct DeactivatedChannel {
    pub id: ChannelId,
    pub kind: String,
    pub created_at: Timestamp,
    pub deactivated_at: Timestamp,
    /// When the background purger deletes it for good, unless reactivated before.
    pub purge_at: Timestamp,
}

/// Whether a channel can take notifications.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelUse {
    Active,
    Deactivated,
    Missing,
}

pub struct Notification {
    pub id: NotificationId,
    pub target: crate::Target,
    /// For a direct webhook the JSON payload; for a message to a subscriber its rendered content
    /// (a [`RenderedMessage`] as JSON). `None` once removed by the workspace's payload retention.
    pub payload: Option<Sensitive<Vec<u8>>>,
    /// In-app messages only: when read and archived in the inbox.
    pub read_at: Option<Timestamp>,
    pub archived_at: Option<Timestamp>,
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
    /// The integration that made the attempt (a message's fallback one after failover).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<IntegrationId>,
}

pub struct Attempt {
    pub started_at: Timestamp,
    pub succeeded: bool,
    pub detail: AttemptDetail,
}

/// What the dispatcher sends.
pub enum Delivery {
    Webhook { payload: Sensitive<Vec<u8>>, channel: Channel },
    Message { route: crate::MessageRoute, content: RenderedMessage, channel: Box<SubscriberChannel> },
}

/// One rendered message of an event, before encryption.
pub struct PlannedMessage {
    pub subscriber_id: SubscriberId,
    pub subscriber_channel_id: SubscriberChannelId,
    pub kind: chimatic_domain::ChannelKind,
    pub integration_id: Option<IntegrationId>,
    pub failover: Option<crate::Failover>,
    pub content: RenderedMessage,
    /// `queued`; or `skipped` (the subscriber opted out) or `suppressed` (the address is on the
    /// workspace's suppression list): recorded, never sent.
    pub status: chimatic_domain::NotificationStatus,
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

/// A subscriber: the customer's end user, known to the customer by `external_id`.
pub struct Subscriber {
    pub id: SubscriberId,
    pub external_id: Sensitive<String>,
    /// A JSON object.
    pub attributes: Sensitive<Vec<u8>>,
    pub preferences: chimatic_domain::Preferences,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub struct SubscriberChannel {
    pub id: SubscriberChannelId,
    pub subscriber_id: SubscriberId,
    pub address: ChannelAddress,
    pub created_at: Timestamp,
    /// A webhook endpoint's own signing secrets (endpoints added through the portal); without
    /// them its messages are signed with the workspace's webhook integration secret.
    pub signing: Option<EndpointSigning>,
    /// Since when nothing is sent to it (portal endpoints).
    pub disabled_at: Option<Timestamp>,
}

/// A webhook endpoint's signing secrets: the current one, and after a rotation the one it
/// replaced, which still signs every delivery (as a second signature) until its overlap ends,
/// so the receiver can switch secrets without refusing a single message.
pub struct EndpointSigning {
    pub current: chimatic_crypto::SigningSecret,
    pub rotated_at: Option<Timestamp>,
    pub previous: Option<(chimatic_crypto::SigningSecret, Timestamp)>,
}

impl EndpointSigning {
    pub fn new(current: chimatic_crypto::SigningSecret) -> Self {
        Self { current, rotated_at: None, previous: None }
    }

    /// The previous secret, while it still signs at `now`, and until when.
    pub fn overlapping(&self, now: Timestamp) -> Option<(&chimatic_crypto::SigningSecret, Timestamp)> {
        self.previous.as_ref().filter(|(_, until)| *until > now).map(|(secret, until)| (secret, *until))
    }
}

/// A provider integration as the notification store knows it: no credentials.
pub struct Integration {
    pub id: IntegrationId,
    pub kind: IntegrationKind,
    pub name: String,
    pub settings: IntegrationSettings,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_check: Option<crate::CheckRecord>,
}

pub struct Workflow {
    pub id: chimatic_domain::WorkflowId,
    /// The event name it handles.
    pub key: String,
    pub definition: chimatic_domain::WorkflowDefinition,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}
