//! Sign-in throttling, pure: after a few failures each further attempt waits twice as long as
//! the last, up to a temporary lockout, per account and (with more room, since many people may
//! share an address) per client address. A quiet day forgets the failures.

use std::time::Duration;

use chimatic_domain::Timestamp;
use chimatic_store::FailureRow;

#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Failures allowed before waiting starts.
    pub free: u32,
    /// The longest wait: a temporary lockout.
    pub lockout: Duration,
    /// Failures older than this are forgotten.
    pub window: Duration,
}

pub const ACCOUNT: Policy =
    Policy { free: 4, lockout: Duration::from_secs(15 * 60), window: Duration::from_secs(24 * 3600) };
pub const CLIENT: Policy =
    Policy { free: 20, lockout: Duration::from_secs(15 * 60), window: Duration::from_secs(24 * 3600) };

impl Policy {
    /// Whether an attempt must be refused without checking the password.
    pub fn locked(&self, row: &FailureRow, now: Timestamp) -> bool {
        now < row.locked_until
    }

    /// The record after one more failure at `now`.
    pub fn failed(&self, row: &FailureRow, now: Timestamp) -> FailureRow {
        let failures = if row.last_at.plus(self.window) <= now { 1 } else { row.failures.saturating_add(1) };
        let over = failures.saturating_sub(self.free);
        let wait = if over == 0 { Duration::ZERO } else { Duration::from_secs(1u64 << over.min(20)).min(self.lockout) };
        FailureRow { failures, last_at: now, locked_until: now.plus(wait) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_after_the_free_failures_up_to_the_lockout() {
        let now = Timestamp(1_000_000);
        let mut row = FailureRow::NONE;
        let mut waits = Vec::new();
        for _ in 0..16 {
            row = ACCOUNT.failed(&row, now);
            waits.push((row.locked_until.0 - now.0) / 1000);
        }
        assert_eq!(&waits[..8], &[0, 0, 0, 0, 2, 4, 8, 16]);
        assert_eq!(*waits.last().unwrap(), 15 * 60, "capped at the lockout");
        assert!(ACCOUNT.locked(&row, now));
        assert!(!ACCOUNT.locked(&row, now.plus(ACCOUNT.lockout)));
    }

    #[test]
    fn a_quiet_day_forgets_the_failures() {
        let t0 = Timestamp(0);
        let mut row = FailureRow::NONE;
        for _ in 0..10 {
            row = ACCOUNT.failed(&row, t0);
        }
        let later = ACCOUNT.failed(&row, t0.plus(ACCOUNT.window));
        assert_eq!((later.failures, later.locked_until), (1, t0.plus(ACCOUNT.window)));
    }

    #[test]
    fn a_shared_address_gets_more_room_than_an_account() {
        let now = Timestamp(0);
        let mut row = FailureRow::NONE;
        for _ in 0..20 {
            row = CLIENT.failed(&row, now);
        }
        assert!(!CLIENT.locked(&row, now));
    }
}
