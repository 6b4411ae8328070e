//! Delivery analytics: counts per workspace per UTC hour, gathered in memory on the data plane
//! and added to the control plane's store in one write every few seconds, so counting costs no
//! write per notification. Counts since the last flush are lost if a node is killed; the
//! notifications themselves are not, so these are analytics, not a ledger.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use chimatic_domain::{Timestamp, WorkspaceId};

use crate::{ControlStore, StatsRow, StoreError};

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// Days since the Unix epoch (UTC) of a timestamp.
pub fn day_of(t: Timestamp) -> i64 {
    t.0.div_euclid(DAY_MS)
}

/// The first instant of a day.
pub fn start_of_day(day: i64) -> Timestamp {
    Timestamp(day.saturating_mul(DAY_MS))
}

/// Hours since the Unix epoch of a timestamp.
pub fn hour_of(t: Timestamp) -> i64 {
    t.0.div_euclid(HOUR_MS)
}

/// The first instant of an hour.
pub fn start_of_hour(hour: i64) -> Timestamp {
    Timestamp(hour.saturating_mul(HOUR_MS))
}

#[derive(Clone, Copy, Debug)]
pub enum DeliveryEvent {
    Accepted,
    Attempted { delivered: bool, final_failure: bool },
}

#[derive(Default)]
pub struct DeliveryStats {
    pending: Mutex<HashMap<(WorkspaceId, i64), StatsRow>>,
}

impl DeliveryStats {
    pub fn record(&self, ws: WorkspaceId, at: Timestamp, event: DeliveryEvent, n: u64) {
        let hour = hour_of(at);
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let row = pending.entry((ws, hour)).or_insert(StatsRow { period: hour, ..StatsRow::default() });
        match event {
            DeliveryEvent::Accepted => row.accepted += n,
            DeliveryEvent::Attempted { delivered, final_failure } => {
                row.attempts += n;
                if delivered {
                    row.delivered += n;
                }
                if final_failure {
                    row.failed += n;
                }
            }
        }
    }

    /// Adds what was counted since the last flush to the control store. On failure the counts
    /// are kept for the next flush.
    pub async fn flush(&self, control: &ControlStore) -> Result<(), StoreError> {
        let taken: Vec<(WorkspaceId, StatsRow)> = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            pending.drain().map(|((ws, _), row)| (ws, row)).collect()
        };
        if let Err(e) = control.add_stats(&taken).await {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            for (ws, row) in taken {
                let kept =
                    pending.entry((ws, row.period)).or_insert(StatsRow { period: row.period, ..StatsRow::default() });
                kept.accepted += row.accepted;
                kept.attempts += row.attempts;
                kept.delivered += row.delivered;
                kept.failed += row.failed;
            }
            return Err(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_calendar_days() {
        // 2026-11-24T00:00:00Z and one millisecond before it.
        let midnight = Timestamp(1_795_478_400_000);
        assert_eq!(day_of(midnight), 20_781);
        assert_eq!(day_of(Timestamp(midnight.0 - 1)), 20_780);
        assert_eq!(start_of_day(20_781), midnight);
    }

    #[test]
    fn hours_are_utc_hours_and_a_day_has_twenty_four() {
        let midnight = Timestamp(1_795_478_400_000);
        assert_eq!(hour_of(midnight), day_of(midnight) * 24);
        assert_eq!(hour_of(Timestamp(midnight.0 - 1)), day_of(midnight) * 24 - 1);
        assert_eq!(start_of_hour(hour_of(midnight) + 1), Timestamp(midnight.0 + HOUR_MS));
    }

    #[test]
    fn events_are_counted_per_workspace_and_hour() {
        let stats = DeliveryStats::default();
        let (a, b) = (WorkspaceId::generate(), WorkspaceId::generate());
        let t = Timestamp(1_795_478_400_000);
        stats.record(a, t, DeliveryEvent::Accepted, 3);
        stats.record(a, t, DeliveryEvent::Attempted { delivered: true, final_failure: false }, 1);
        stats.record(a, t, DeliveryEvent::Attempted { delivered: false, final_failure: true }, 1);
        stats.record(a, Timestamp(t.0 + HOUR_MS - 1), DeliveryEvent::Accepted, 1);
        stats.record(a, Timestamp(t.0 + HOUR_MS), DeliveryEvent::Accepted, 5);
        stats.record(b, Timestamp(t.0 + DAY_MS), DeliveryEvent::Accepted, 1);
        let pending = stats.pending.lock().unwrap();
        let row_a = pending[&(a, hour_of(t))];
        assert_eq!((row_a.accepted, row_a.attempts, row_a.delivered, row_a.failed), (4, 2, 1, 1));
        assert_eq!(pending[&(a, hour_of(t) + 1)].accepted, 5);
        assert_eq!(pending[&(b, hour_of(t) + 24)].accepted, 1);
        assert_eq!(pending.len(), 3);
    }
}
