//! Plans, and what they decide: how long a workspace's audit log is kept.

use std::time::Duration;

const DAY: u64 = 24 * 3600;

/// Enterprise retention bounds, in days.
pub const ENTERPRISE_RETENTION_DAYS: std::ops::RangeInclusive<u32> = 1..=3650;

/// How long a finished notification's content is kept unless the workspace says otherwise;
/// its delivery metadata stays.
pub const DEFAULT_PAYLOAD_RETENTION_DAYS: u32 = 30;
/// The payload retention a workspace may choose.
pub const PAYLOAD_RETENTION_DAYS: std::ops::RangeInclusive<u32> = 1..=3650;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Plan {
    #[default]
    Free,
    Pro,
    Scale,
    Enterprise {
        audit_retention_days: u32,
    },
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("unknown plan; valid plans are: free, pro, scale, enterprise")]
    Unknown,
    #[error("`audit_retention_days` (1 to 3650) is required for the enterprise plan and only allowed for it")]
    Retention,
}

impl Plan {
    /// `audit_retention_days` is set for enterprise and only for it.
    pub fn new(name: &str, audit_retention_days: Option<u32>) -> Result<Self, PlanError> {
        let plan = match (name, audit_retention_days) {
            ("free", None) => Plan::Free,
            ("pro", None) => Plan::Pro,
            ("scale", None) => Plan::Scale,
            ("enterprise", Some(days)) if ENTERPRISE_RETENTION_DAYS.contains(&days) => {
                Plan::Enterprise { audit_retention_days: days }
            }
            ("free" | "pro" | "scale" | "enterprise", _) => return Err(PlanError::Retention),
            _ => return Err(PlanError::Unknown),
        };
        Ok(plan)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Pro => "pro",
            Plan::Scale => "scale",
            Plan::Enterprise { .. } => "enterprise",
        }
    }

    pub fn audit_retention_days(&self) -> u32 {
        match self {
            Plan::Free => 7,
            Plan::Pro => 30,
            Plan::Scale => 90,
            Plan::Enterprise { audit_retention_days } => *audit_retention_days,
        }
    }

    pub fn audit_retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.audit_retention_days()) * DAY)
    }

    /// The configured enterprise retention, as stored.
    pub fn custom_retention_days(&self) -> Option<u32> {
        match self {
            Plan::Enterprise { audit_retention_days } => Some(*audit_retention_days),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_keep_the_audit_log_for_their_days_and_enterprise_needs_its_own() {
        let days = |n: &str, d| Plan::new(n, d).map(|p| p.audit_retention_days());
        assert_eq!(days("free", None), Ok(7));
        assert_eq!(days("pro", None), Ok(30));
        assert_eq!(days("scale", None), Ok(90));
        assert_eq!(days("enterprise", Some(400)), Ok(400));
        assert_eq!(days("enterprise", None), Err(PlanError::Retention));
        assert_eq!(days("enterprise", Some(0)), Err(PlanError::Retention));
        assert_eq!(days("pro", Some(30)), Err(PlanError::Retention));
        assert_eq!(days("gold", None), Err(PlanError::Unknown));
    }
}
