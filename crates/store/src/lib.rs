//! Storage for Chimatic.
//!
//! Two planes. The control plane's [`ControlStore`] holds workspaces (and their regions), API key
//! metadata and delivery analytics. Each region's [`Store`] holds that region's notification
//! data and credential vault, and owns encryption, DEKs and the tenant scoping of every call.
//! Below both, backends ([`ControlBackend`], [`DataBackend`], [`VaultBackend`]) move rows in and
//! out of SQLite or PostgreSQL and know SQL; they never see plaintext.

mod audit;
mod backend;
mod cache;
mod channels;
mod db;
mod error;
mod feedback;
mod integrations;
mod keys;
mod notifications;
pub mod records;
mod stats;
mod store;
mod subscribers;
mod topics;
mod users;
mod vault;
mod workflows;
mod workspaces;

pub use audit::{AuditBackend, AuditFilter, AuditLog, ChainRow};
pub use backend::{ControlBackend, DataBackend, VaultBackend};
pub use channels::{CHANNEL_DEACTIVATED, ChannelRow, ChannelRows};
pub use db::postgres::PostgresBackend;
pub use db::sqlite::{SqliteBackend, SqliteFiles};
pub use error::StoreError;
pub use feedback::{FeedbackRows, InboundEvent, InboundEventRow, NewInbound, Suppression, SuppressionRow};
pub use integrations::{
    CheckRecord, ConnectFlowRow, ConnectFlowRows, IntegrationChange, IntegrationRow, IntegrationRows,
};
pub use keys::{DEK_CACHE_TTL, DataKeyRows, KekSet, Keyring, VaultKeyRows, WorkspaceKms, WrappedKeyRow};
pub use notifications::{
    AttemptRow, ClaimedJob, CompletedAttempt, Failover, FanoutProgress, FanoutRow, HELD, InsertOutcome, MessageRoute,
    Messages, NewEvent, NewNotification, NewNotificationRow, NotificationQuery, NotificationRow, NotificationRows,
    Prefetched, QueueDepth, QueueOutcome, Target,
};
pub use stats::{DeliveryEvent, DeliveryStats, day_of, hour_of, start_of_day, start_of_hour};
pub use store::Store;
pub use subscribers::{
    Audience, ErasureCounts, Recipient, SubscriberChannelRow, SubscriberGrant, SubscriberRow, SubscriberRows,
    subscriber_token_workspace,
};
pub use topics::{TopicRow, TopicRows};
pub use users::{
    ChallengeRow, FailureRow, IdentityRows, InvitationRow, InvitationRows, Joining, MemberRow, MembershipRow,
    PasswordResetRow, SecondFactorRow, SecondFactorRows, SessionRow, SsoFlowRow, SsoPolicy, UserRow, UserRows,
    UserSecret,
};
pub use vault::SecretRows;
pub use workflows::{WorkflowRow, WorkflowRows};
pub use workspaces::{
    ApiKeyRow, Authenticated, ControlRows, ControlStore, DeletionReceipt, ERASURE_SWEEP_DELAY, StatsRow, WorkspaceRow,
};
