//! Retry policy: a schedule of delays between attempts, with jitter.

use std::time::Duration;

/// Delays before each retry; the first attempt is always immediate.
/// The default follows Svix: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h
/// (eight attempts in all).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RetryScheduleError {
    #[error("retry schedule entry {0} is not a duration like `500ms`, `5s`, `5m` or `2h`")]
    BadEntry(usize),
    #[error("retry schedule has more than {0} entries")]
    TooLong(usize),
}

const MAX_RETRIES: usize = 50;
/// Jitter spreads retries of a burst over ±10% of each delay, so a recovering receiver is not
/// hit by every retry at the same instant.
const JITTER_PERMILLE: u64 = 100;

impl Default for RetrySchedule {
    fn default() -> Self {
        let s = |n| Duration::from_secs(n);
        Self { delays: vec![s(5), s(300), s(1800), s(7200), s(18000), s(36000), s(36000)] }
    }
}

impl RetrySchedule {
    pub fn new(delays: Vec<Duration>) -> Self {
        Self { delays }
    }

    /// Parses `1s,2s,4s` (units: `ms`, `s`, `m`, `h`). An empty string means no retries.
    pub fn parse(text: &str) -> Result<Self, RetryScheduleError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Self { delays: Vec::new() });
        }
        let delays = text
            .split(',')
            .enumerate()
            .map(|(i, part)| parse_duration(part.trim()).ok_or(RetryScheduleError::BadEntry(i + 1)))
            .collect::<Result<Vec<_>, _>>()?;
        if delays.len() > MAX_RETRIES {
            return Err(RetryScheduleError::TooLong(MAX_RETRIES));
        }
        Ok(Self { delays })
    }

    /// Total attempts including the first.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len() + 1).unwrap_or(u32::MAX)
    }

    /// The base delay before the next attempt once `attempts_made` attempts have failed,
    /// or `None` when the schedule is exhausted and the notification has failed.
    pub fn delay_after(&self, attempts_made: u32) -> Option<Duration> {
        let idx = usize::try_from(attempts_made).ok()?.checked_sub(1)?;
        self.delays.get(idx).copied()
    }

    /// Like [`delay_after`](Self::delay_after) with jitter of ±10%, drawn from `random`.
    pub fn jittered_delay_after(&self, attempts_made: u32, random: u32) -> Option<Duration> {
        self.delay_after(attempts_made).map(|d| jitter(d, random))
    }

    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }
}

fn jitter(base: Duration, random: u32) -> Duration {
    let base_ms = u64::try_from(base.as_millis()).unwrap_or(u64::MAX);
    let span = base_ms.saturating_mul(JITTER_PERMILLE) / 1000;
    if span == 0 {
        return base;
    }
    let offset = u64::from(random) % (2 * span + 1);
    Duration::from_millis(base_ms.saturating_sub(span).saturating_add(offset))
}

/// `500ms`, `5s`, `5m`, `2h` or `90d`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let ms = match unit {
        "ms" => n,
        "s" => n.checked_mul(1000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        "d" => n.checked_mul(86_400_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_is_svix_with_eight_attempts() {
        let s = RetrySchedule::default();
        assert_eq!(s.max_attempts(), 8);
        assert_eq!(s.delay_after(1), Some(Duration::from_secs(5)));
        assert_eq!(s.delay_after(2), Some(Duration::from_secs(300)));
        assert_eq!(s.delay_after(7), Some(Duration::from_secs(36000)));
        assert_eq!(s.delay_after(8), None);
        assert_eq!(s.delay_after(0), None);
    }

    #[test]
    fn parses_overrides_and_rejects_garbage() {
        let s = RetrySchedule::parse("1s, 2s,4s").unwrap();
        assert_eq!(s.delays(), [1, 2, 4].map(Duration::from_secs));
        assert_eq!(s.max_attempts(), 4);
        assert_eq!(
            RetrySchedule::parse("250ms,1m,2h").unwrap().delays(),
            [Duration::from_millis(250), Duration::from_secs(60), Duration::from_secs(7200)]
        );
        assert_eq!(RetrySchedule::parse("").unwrap().max_attempts(), 1);
        assert_eq!(RetrySchedule::parse("1s,x"), Err(RetryScheduleError::BadEntry(2)));
        assert_eq!(RetrySchedule::parse("5"), Err(RetryScheduleError::BadEntry(1)));
        assert_eq!(RetrySchedule::parse("5w"), Err(RetryScheduleError::BadEntry(1)));
        assert_eq!(parse_duration("90d"), Some(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_duration("d"), None);
    }

    #[test]
    fn jitter_stays_within_ten_percent_and_varies() {
        let s = RetrySchedule::parse("10s").unwrap();
        let mut seen = std::collections::HashSet::new();
        for r in [0u32, 1, 999, 1000, 2000, u32::MAX, 123_456_789] {
            let d = s.jittered_delay_after(1, r).unwrap();
            assert!(d >= Duration::from_secs(9) && d <= Duration::from_secs(11), "{d:?}");
            seen.insert(d);
        }
        assert!(seen.len() > 3, "jitter must spread delays");
        assert_eq!(s.jittered_delay_after(2, 7), None);
    }
}
