//! A member's role in a workspace. Roles map onto the API's scopes, so the console and the API
//! share one permission check; the two owner-only powers (deleting the workspace, changing
//! owners) are checked on the role itself.

use std::fmt;
use std::str::FromStr;

use crate::scope::{Scope, Scopes};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads everything the console shows; changes nothing.
    Viewer,
    /// Manages channels, subscribers, workflows, integrations and notifications; not members,
    /// keys or settings.
    Developer,
    /// Everything but deleting the workspace or changing owners.
    Admin,
    /// Everything.
    Owner,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown role; valid roles are: owner, admin, developer, viewer")]
pub struct RoleError;

const READS: [Scope; 6] = [
    Scope::ChannelsRead,
    Scope::NotificationsRead,
    Scope::SubscribersRead,
    Scope::IntegrationsRead,
    Scope::WorkflowsRead,
    Scope::AuditRead,
];

const WRITES: [Scope; 5] = [
    Scope::ChannelsWrite,
    Scope::NotificationsWrite,
    Scope::SubscribersWrite,
    Scope::IntegrationsWrite,
    Scope::WorkflowsWrite,
];

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Developer, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Viewer => "viewer",
        }
    }

    /// What the role may do through the API's permission check.
    pub fn scopes(self) -> Scopes {
        let scopes = match self {
            Role::Owner | Role::Admin => vec![Scope::Admin],
            Role::Developer => READS.iter().chain(WRITES.iter()).copied().collect(),
            Role::Viewer => READS.to_vec(),
        };
        Scopes::new(scopes).unwrap_or_else(Scopes::admin)
    }

    /// Members, API keys and settings.
    pub fn manages_workspace(self) -> bool {
        self >= Role::Admin
    }

    /// Whether a member with this role may give `role` to someone or take it away: only owners
    /// touch owners.
    pub fn may_assign(self, role: Role) -> bool {
        self.manages_workspace() && (role != Role::Owner || self == Role::Owner)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = RoleError;
    fn from_str(s: &str) -> Result<Self, RoleError> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or(RoleError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_viewer_reads_and_writes_nothing() {
        let s = Role::Viewer.scopes();
        assert!(READS.iter().all(|r| s.allows(*r)));
        assert!(WRITES.iter().all(|w| !s.allows(*w)));
        assert!(!s.allows(Scope::Admin));
    }

    #[test]
    fn a_developer_manages_the_directory_but_not_the_workspace() {
        let s = Role::Developer.scopes();
        assert!(READS.iter().chain(WRITES.iter()).all(|x| s.allows(*x)));
        assert!(!s.allows(Scope::Admin));
        assert!(!Role::Developer.manages_workspace());
    }

    #[test]
    fn only_owners_assign_the_owner_role() {
        assert!(Role::Admin.scopes().allows(Scope::Admin));
        assert!(Role::Admin.may_assign(Role::Admin));
        assert!(!Role::Admin.may_assign(Role::Owner));
        assert!(Role::Owner.may_assign(Role::Owner));
        assert!(!Role::Developer.may_assign(Role::Viewer));
    }

    #[test]
    fn roles_round_trip_and_unknown_ones_are_refused() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert_eq!("root".parse::<Role>(), Err(RoleError));
    }
}
