//! API key scopes. `admin` implies every other scope.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Scope {
    #[serde(rename = "admin")]
    Admin,
    #[serde(rename = "channels:read")]
    ChannelsRead,
    #[serde(rename = "channels:write")]
    ChannelsWrite,
    #[serde(rename = "notifications:read")]
    NotificationsRead,
    #[serde(rename = "notifications:write")]
    NotificationsWrite,
    #[serde(rename = "subscribers:read")]
    SubscribersRead,
    #[serde(rename = "subscribers:write")]
    SubscribersWrite,
    #[serde(rename = "integrations:read")]
    IntegrationsRead,
    #[serde(rename = "integrations:write")]
    IntegrationsWrite,
    #[serde(rename = "workflows:read")]
    WorkflowsRead,
    #[serde(rename = "workflows:write")]
    WorkflowsWrite,
    #[serde(rename = "audit:read")]
    AuditRead,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "unknown scope; valid scopes are: admin, channels:read, channels:write, notifications:read, notifications:write, \
     subscribers:read, subscribers:write, integrations:read, integrations:write, workflows:read, workflows:write, \
     audit:read"
)]
pub struct ScopeError;

impl Scope {
    pub const ALL: [Scope; 12] = [
        Scope::Admin,
        Scope::ChannelsRead,
        Scope::ChannelsWrite,
        Scope::NotificationsRead,
        Scope::NotificationsWrite,
        Scope::SubscribersRead,
        Scope::SubscribersWrite,
        Scope::IntegrationsRead,
        Scope::IntegrationsWrite,
        Scope::WorkflowsRead,
        Scope::WorkflowsWrite,
        Scope::AuditRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::ChannelsRead => "channels:read",
            Scope::ChannelsWrite => "channels:write",
            Scope::NotificationsRead => "notifications:read",
            Scope::NotificationsWrite => "notifications:write",
            Scope::SubscribersRead => "subscribers:read",
            Scope::SubscribersWrite => "subscribers:write",
            Scope::IntegrationsRead => "integrations:read",
            Scope::IntegrationsWrite => "integrations:write",
            Scope::WorkflowsRead => "workflows:read",
            Scope::WorkflowsWrite => "workflows:write",
            Scope::AuditRead => "audit:read",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, ScopeError> {
        Scope::ALL.into_iter().find(|sc| sc.as_str() == s).ok_or(ScopeError)
    }
}

/// A non-empty, de-duplicated, sorted set of scopes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    pub fn new(mut scopes: Vec<Scope>) -> Option<Self> {
        scopes.sort();
        scopes.dedup();
        (!scopes.is_empty()).then_some(Self(scopes))
    }

    pub fn admin() -> Self {
        Self(vec![Scope::Admin])
    }

    pub fn allows(&self, required: Scope) -> bool {
        self.0.iter().any(|s| *s == required || *s == Scope::Admin)
    }

    pub fn as_slice(&self) -> &[Scope] {
        &self.0
    }

    /// Space-separated text form used in storage.
    pub fn to_storage(&self) -> String {
        self.0.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
    }

    pub fn from_storage(text: &str) -> Result<Self, ScopeError> {
        let v = text.split_whitespace().map(str::parse).collect::<Result<Vec<_>, _>>()?;
        Self::new(v).ok_or(ScopeError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_implies_everything_and_others_only_themselves() {
        let admin = Scopes::admin();
        assert!(Scope::ALL.iter().all(|s| admin.allows(*s)));
        let w = Scopes::new(vec![Scope::NotificationsWrite]).unwrap();
        assert!(w.allows(Scope::NotificationsWrite));
        assert!(!w.allows(Scope::NotificationsRead));
        assert!(!w.allows(Scope::Admin));
    }

    #[test]
    fn storage_round_trip_dedups_and_rejects_unknown() {
        let s = Scopes::new(vec![Scope::AuditRead, Scope::ChannelsWrite, Scope::AuditRead]).unwrap();
        assert_eq!(s.to_storage(), "channels:write audit:read");
        assert_eq!(Scopes::from_storage(&s.to_storage()).unwrap(), s);
        assert!(Scopes::from_storage("admin root").is_err());
        assert!(Scopes::from_storage("").is_err());
        assert!(Scopes::new(vec![]).is_none());
    }
}

/// What a subscriber token opens: its subscriber's in-app inbox and preferences (`inbox`), or
/// the webhook portal, where the subscriber manages their own webhook endpoints (`portal`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SubscriberScope {
    Inbox,
    Portal,
}

impl SubscriberScope {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriberScope::Inbox => "inbox",
            SubscriberScope::Portal => "portal",
        }
    }
}
