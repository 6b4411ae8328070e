//! Domain types shared by every Chimatic crate. Nothing here performs I/O.

pub mod address;
pub mod clock;
pub mod directory;
pub mod ids;
pub mod outbound_tls;
pub mod patterns;
pub mod plan;
pub mod region;
pub mod retry;
pub mod role;
pub mod scope;
pub mod sensitive;
pub mod status;
pub mod webhook_url;
pub mod whole_number;
pub mod workflow;

pub use address::{AddressError, EmailAddress, PhoneNumber, mask_tail};
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use directory::{
    ChannelAddress, ChannelKind, IntegrationCredentials, IntegrationKind, IntegrationSettings, OAuthGrant,
    OAuthProvider, SmtpSecurity, StoredAddress,
};
pub use ids::{
    ApiKeyId, ChannelId, EventId, FanoutId, IdError, InboundEventId, IntegrationId, InvitationId, NotificationId,
    SubscriberChannelId, SubscriberId, SuppressionId, TopicId, UserId, WorkflowId, WorkspaceId,
};
pub use outbound_tls::{MAX_SPKI_PINS, OutboundTls, OutboundTlsError, SpkiPin, SpkiPinError};
pub use plan::{DEFAULT_PAYLOAD_RETENTION_DAYS, PAYLOAD_RETENTION_DAYS, Plan, PlanError};
pub use region::{Region, RegionError};
pub use retry::{RetrySchedule, RetryScheduleError, parse_duration};
pub use role::{Role, RoleError};
pub use scope::{Scope, ScopeError, Scopes, SubscriberScope};
pub use sensitive::Sensitive;
pub use status::NotificationStatus;
pub use webhook_url::{WebhookUrl, WebhookUrlError};
pub use workflow::{
    DEFAULT_FAILOVER_AFTER, Preferences, RenderedMessage, WorkflowDefinition, WorkflowStep, is_event_name,
};
