//! The audit trail. Each workspace has one append-only chain per store ("stream"): entries carry
//! their sequence number, the SHA-256 of the previous entry and their own hash over a canonical
//! encoding, so an edited, removed, reordered or inserted entry breaks the chain. Chain heads are
//! signed with Ed25519 so that cutting entries off the end is detected too. Everything here is
//! pure: the stores append and read, the CLI and API verify and export.

mod chain;
mod export;
mod head;
mod verify;

pub use chain::{AuditEntry, ChainTip, entry_hash};
pub use export::{ExportLine, ExportedAnchor, ExportedEntry, ExportedHead, from_hex, to_hex};
pub use head::{HeadSigner, SignedHead, head_message};
pub use verify::{Broken, ChainRecord, Verified, verify_chain};

use chimatic_domain::{Timestamp, WorkspaceId};
use serde::{Deserialize, Serialize};

pub type Hash = [u8; 32];

/// The `prev_hash` of a chain's first entry.
pub const GENESIS: Hash = [0; 32];

/// Longest user agent kept; the rest is cut (a header can be kilobytes).
const MAX_USER_AGENT: usize = 256;

/// The chain of deployment-level events (KEK rotation, workspace deletion), which belong to no
/// workspace.
pub fn system_workspace() -> WorkspaceId {
    WorkspaceId::from_uuid(uuid::Uuid::nil())
}

/// Which store a chain lives in. An entry is written in the same transaction as the action it
/// records, so control-plane actions (API keys, freezes) chain in the control store and
/// data-plane actions (channels, deliveries, erasures) in the workspace's region store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Control,
    Data,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Control => "control",
            Stream::Data => "data",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    ApiKey,
    User,
    Operator,
    System,
    /// A subscriber through the webhook portal (a subscriber token with the `portal` scope).
    Subscriber,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::ApiKey => "api_key",
            ActorKind::User => "user",
            ActorKind::Operator => "operator",
            ActorKind::System => "system",
            ActorKind::Subscriber => "subscriber",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [ActorKind::ApiKey, ActorKind::User, ActorKind::Operator, ActorKind::System, ActorKind::Subscriber]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Who did it: an API key (id and name), a dashboard user, the operator, or Chimatic itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: String,
    pub name: String,
}

impl Actor {
    pub fn system() -> Self {
        Self { kind: ActorKind::System, id: "system".into(), name: "chimatic".into() }
    }

    pub fn operator() -> Self {
        Self { kind: ActorKind::Operator, id: "operator".into(), name: "operator".into() }
    }

    /// A console user: their id and their masked email (never the address itself).
    pub fn user(id: impl ToString, email_masked: impl Into<String>) -> Self {
        Self { kind: ActorKind::User, id: id.to_string(), name: email_masked.into() }
    }

    pub fn api_key(id: impl ToString, name: impl Into<String>) -> Self {
        Self { kind: ActorKind::ApiKey, id: id.to_string(), name: name.into() }
    }

    /// A subscriber acting through the webhook portal.
    pub fn subscriber(id: impl ToString) -> Self {
        Self { kind: ActorKind::Subscriber, id: id.to_string(), name: "webhook portal".into() }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(Outcome::Success),
            "failure" => Some(Outcome::Failure),
            _ => None,
        }
    }
}

/// What an action touched, by id only — never a value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Target {
    pub kind: String,
    pub id: String,
}

/// Where a request came from. Empty for background work.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    pub ip: String,
    pub user_agent: String,
}

impl Origin {
    /// Keeps at most 256 characters of the user agent and drops control characters, so a
    /// header cannot forge lines in a CSV export or a terminal.
    pub fn new(ip: impl Into<String>, user_agent: &str) -> Self {
        let user_agent = user_agent.chars().filter(|c| !c.is_control()).take(MAX_USER_AGENT).collect();
        Self { ip: ip.into(), user_agent }
    }
}

/// Who is acting and from where: what every audited store call takes, so the entry is built
/// next to the write it records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditContext {
    pub actor: Actor,
    pub origin: Origin,
}

impl AuditContext {
    pub fn system() -> Self {
        Self { actor: Actor::system(), origin: Origin::default() }
    }

    pub fn event(&self, at: Timestamp, action: &str, target_kind: &str, target_id: impl ToString) -> AuditEvent {
        AuditEvent::new(at, self.actor.clone(), self.origin.clone(), action, target_kind, target_id)
    }
}

/// One recorded action, before it is placed in a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    pub at: Timestamp,
    pub actor: Actor,
    pub origin: Origin,
    pub action: String,
    pub target: Target,
    pub outcome: Outcome,
    /// A compact JSON object of non-sensitive details (ids, counts, status codes).
    pub detail: String,
}

impl AuditEvent {
    pub fn new(
        at: Timestamp,
        actor: Actor,
        origin: Origin,
        action: &str,
        target_kind: &str,
        target_id: impl ToString,
    ) -> Self {
        Self {
            at,
            actor,
            origin,
            action: action.to_string(),
            target: Target { kind: target_kind.to_string(), id: target_id.to_string() },
            outcome: Outcome::Success,
            detail: "{}".into(),
        }
    }

    pub fn failed(mut self) -> Self {
        self.outcome = Outcome::Failure;
        self
    }

    /// Details must be ids, counts and codes: the log is readable by `audit:read` keys and is
    /// kept in plaintext so it can be verified without keys.
    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail.to_string();
        self
    }
}

/// The action names recorded (the `action` filter of `GET /v1/audit` takes these).
pub mod actions {
    pub const API_KEY_CREATED: &str = "api_key.created";
    pub const API_KEY_REVOKED: &str = "api_key.revoked";
    pub const WORKSPACE_CREATED: &str = "workspace.created";
    pub const WORKSPACE_PLAN_CHANGED: &str = "workspace.plan_changed";
    pub const CHANNEL_CREATED: &str = "channel.created";
    pub const SUBSCRIBER_CHANNEL_CREATED: &str = "subscriber_channel.created";
    pub const SUBSCRIBER_CHANNEL_DELETED: &str = "subscriber_channel.deleted";
    pub const SUBSCRIBER_CHANNEL_SECRET_ROTATED: &str = "subscriber_channel.secret_rotated";
    pub const SUBSCRIBER_CHANNEL_DISABLED: &str = "subscriber_channel.disabled";
    pub const SUBSCRIBER_CHANNEL_ENABLED: &str = "subscriber_channel.enabled";
    pub const INTEGRATION_CREATED: &str = "integration.created";
    pub const INTEGRATION_UPDATED: &str = "integration.updated";
    pub const INTEGRATION_DELETED: &str = "integration.deleted";
    pub const INTEGRATION_TOKEN_REVOKED: &str = "integration.token_revoked";
    pub const DELIVERY_ATTEMPTED: &str = "notification.delivery_attempted";
    pub const SUBSCRIBER_ERASED: &str = "subscriber.erased";
    pub const WORKSPACE_KMS_CHANGED: &str = "workspace.kms_changed";
    pub const DEK_ROTATED: &str = "workspace.dek_rotated";
    pub const KEK_ROTATED: &str = "deployment.kek_rotated";
    pub const AUDIT_EXPORTED: &str = "audit.exported";
    pub const NOTIFICATION_REPLAYED: &str = "notification.replayed";
    pub const WORKSPACE_PAYLOAD_RETENTION_CHANGED: &str = "workspace.payload_retention_changed";
    pub const WORKSPACE_DELETED: &str = "workspace.deleted";
    /// The last sweep of a deleted workspace's stores, with what it still found.
    pub const WORKSPACE_ERASURE_SWEPT: &str = "workspace.erasure_swept";
    pub const WORKSPACE_FROZEN: &str = "workspace.frozen";
    pub const WORKSPACE_UNFROZEN: &str = "workspace.unfrozen";
    pub const CHANNEL_DEACTIVATED: &str = "channel.deactivated";
    pub const CHANNEL_REACTIVATED: &str = "channel.reactivated";
    pub const CHANNEL_PURGED: &str = "channel.purged";
    pub const USER_CREATED: &str = "user.created";
    pub const SIGN_IN: &str = "console.sign_in";
    pub const SIGN_IN_FAILED: &str = "console.sign_in_failed";
    pub const SIGN_IN_LOCKED: &str = "console.sign_in_locked";
    pub const SIGN_OUT: &str = "console.sign_out";
    pub const SIGN_OUT_EVERYWHERE: &str = "console.sign_out_everywhere";
    pub const PASSWORD_CHANGED: &str = "user.password_changed";
    pub const MEMBER_ROLE_CHANGED: &str = "member.role_changed";
    pub const MEMBER_REMOVED: &str = "member.removed";
    pub const MEMBER_INVITED: &str = "member.invited";
    pub const MEMBER_JOINED: &str = "member.joined";
    pub const INVITATION_REVOKED: &str = "invitation.revoked";
    pub const PASSWORD_RESET_ISSUED: &str = "user.password_reset_issued";
    pub const PASSWORD_RESET: &str = "user.password_reset";
    pub const TWO_FACTOR_ENROLLED: &str = "user.two_factor_enrolled";
    pub const TWO_FACTOR_DISABLED: &str = "user.two_factor_disabled";
    pub const RECOVERY_CODE_USED: &str = "user.recovery_code_used";
    pub const TWO_FACTOR_REQUIREMENT_CHANGED: &str = "workspace.two_factor_requirement_changed";
    pub const SSO_POLICY_CHANGED: &str = "workspace.sso_policy_changed";
}
