//! The overview: what the workspace accepted, delivered and failed per hour (the last day) and
//! per day (the last two weeks) as charts drawn on the server (SVG, no script), the delivery
//! queue's depth and age, and the integrations whose last health check failed.

use askama::Template;
use axum::extract::State;
use axum::response::Html;
use chimatic_domain::Timestamp;
use chimatic_store::{QueueDepth, StatsRow, day_of, hour_of, start_of_day, start_of_hour};

use super::{Frame, frame, page, region};
use crate::Console;
use crate::error::PageError;
use crate::member::Member;

const DAYS: i64 = 14;
const HOURS: i64 = 24;
const SERIES: [&str; 3] = ["accepted", "delivered", "failed"];

pub struct Bar {
    pub class: &'static str,
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    pub label: String,
}

pub struct Tick {
    pub x: u32,
    pub label: String,
}

pub struct Chart {
    pub width: u32,
    pub height: u32,
    pub peak: u64,
    pub bars: Vec<Bar>,
    pub ticks: Vec<Tick>,
}

pub struct FailingIntegration {
    pub id: String,
    pub name: String,
    pub kind: &'static str,
    pub error: String,
    pub checked: String,
}

pub struct Queue {
    pub queued: u64,
    pub due: u64,
    pub in_flight: u64,
    /// How long the oldest due notification has waited, or "—" when none is due.
    pub oldest_due_age: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    frame: Frame,
    hourly: Chart,
    daily: Chart,
    days: i64,
    /// The sums over the days shown (`period` unused).
    totals: StatsRow,
    queue: Queue,
    failing: Vec<FailingIntegration>,
}

pub async fn show(State(console): State<Console>, member: Member) -> Result<Html<String>, PageError> {
    let frame = frame(&console, &member).await?;
    let ws = member.session.workspace_id;
    let now = console.app.clock.now();
    let (today, this_hour) = (day_of(now), hour_of(now));
    let days = console.app.control.daily_stats(ws, today - DAYS + 1, today).await?;
    let hours = console.app.control.hourly_stats(ws, this_hour - HOURS + 1, this_hour).await?;
    let mut totals = StatsRow::default();
    for r in &days {
        totals.accepted += r.accepted;
        totals.delivered += r.delivered;
        totals.failed += r.failed;
        totals.attempts += r.attempts;
    }
    let region = region(&console, &member)?;
    let queue = queue(region.store.queue_depth(ws, now).await?, now);
    let failing = region
        .store
        .list_integrations(ws)
        .await?
        .into_iter()
        .filter_map(|i| {
            let check = i.last_check.filter(|c| c.healthy == Some(false))?;
            Some(FailingIntegration {
                id: i.id.to_string(),
                name: i.name,
                kind: i.kind.as_str(),
                error: check.error_class.unwrap_or_else(|| "unhealthy".into()),
                checked: check.at.to_rfc3339(),
            })
        })
        .collect();
    page(OverviewPage {
        frame,
        hourly: chart(&hours, this_hour - HOURS + 1, HOURS, hour_label),
        daily: chart(&days, today - DAYS + 1, DAYS, day_label),
        days: DAYS,
        totals,
        queue,
        failing,
    })
}

fn queue(depth: QueueDepth, now: Timestamp) -> Queue {
    let oldest_due_age = depth.oldest_due.map_or_else(|| "—".into(), |due| age(now.0.saturating_sub(due.0)));
    Queue { queued: depth.queued, due: depth.due, in_flight: depth.in_flight, oldest_due_age }
}

/// A wait in the largest whole unit that fits.
fn age(ms: i64) -> String {
    match ms.max(0) / 1000 {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

/// The tick (every few slots) and the full name of an hour.
fn hour_label(hour: i64) -> (Option<String>, String) {
    let at = start_of_hour(hour).to_rfc3339();
    let tick = (hour % 3 == 0).then(|| at.get(11..16).unwrap_or_default().to_string());
    (tick, format!("{}Z", at.get(..16).unwrap_or_default().replace('T', " ")))
}

fn day_label(day: i64) -> (Option<String>, String) {
    let at = start_of_day(day).to_rfc3339();
    (Some(at.get(5..10).unwrap_or_default().to_string()), at.get(..10).unwrap_or_default().to_string())
}

/// Three bars a period (accepted, delivered, failed) for `count` periods from `first`, scaled to
/// the busiest; periods without counts are gaps.
fn chart(rows: &[StatsRow], first: i64, count: i64, label: fn(i64) -> (Option<String>, String)) -> Chart {
    let (width, height, plot) = (720u32, 240u32, 220u32);
    let slot = width / count as u32;
    let bar = (slot - 4) / SERIES.len() as u32;
    let peak = rows.iter().map(|r| r.accepted.max(r.delivered).max(r.failed)).max().unwrap_or(0);
    let scale = |n: u64| (n * u64::from(plot - 10)).checked_div(peak).map_or(0, |h| u32::try_from(h).unwrap_or(plot));
    let mut bars = Vec::new();
    let mut ticks = Vec::new();
    for i in 0..count {
        let period = first + i;
        let x = i as u32 * slot;
        let (tick, name) = label(period);
        if let Some(label) = tick {
            ticks.push(Tick { x: x + 2, label });
        }
        let Some(r) = rows.iter().find(|r| r.period == period) else { continue };
        for (j, (class, n)) in SERIES.into_iter().zip([r.accepted, r.delivered, r.failed]).enumerate() {
            let h = scale(n);
            bars.push(Bar {
                class,
                x: x + 2 + j as u32 * bar,
                y: plot - h,
                width: bar.saturating_sub(1).max(1),
                height: h,
                label: format!("{name} {class}: {n}"),
            });
        }
    }
    Chart { width, height, peak, bars, ticks }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_scaled_to_the_busiest_period() {
        let today = 20_000;
        let rows = [
            StatsRow { period: today, accepted: 10, attempts: 12, delivered: 8, failed: 2 },
            StatsRow { period: today - 1, accepted: 5, attempts: 4, delivered: 4, failed: 0 },
        ];
        let c = chart(&rows, today - DAYS + 1, DAYS, day_label);
        assert_eq!(c.peak, 10);
        assert_eq!(c.bars.len(), 6);
        let tallest = c.bars.iter().map(|b| b.height).max().unwrap();
        let accepted_today = c.bars.iter().find(|b| b.label.ends_with("accepted: 10")).unwrap();
        assert_eq!(accepted_today.height, tallest);
        let half = c.bars.iter().find(|b| b.label.ends_with("accepted: 5")).unwrap();
        assert_eq!(half.height * 2, tallest);
        assert!(c.bars.iter().all(|b| b.x + b.width <= c.width), "every bar inside the chart");
        assert_eq!(c.ticks.len(), DAYS as usize);
        assert!(chart(&[], today, DAYS, day_label).bars.is_empty());
    }

    #[test]
    fn hours_are_named_in_utc_and_ticked_every_three() {
        // 2026-11-24T00:00Z is hour 20_781 * 24.
        let midnight = 20_781 * 24;
        assert_eq!(hour_label(midnight), (Some("00:00".into()), "2026-11-24 00:00Z".into()));
        assert_eq!(hour_label(midnight + 1).0, None);
        let rows = [StatsRow { period: midnight + 5, accepted: 1, attempts: 1, delivered: 1, failed: 0 }];
        let c = chart(&rows, midnight, HOURS, hour_label);
        assert_eq!(c.ticks.len(), 8);
        assert!(c.bars.iter().any(|b| b.label == "2026-11-24 05:00Z delivered: 1"));
    }

    #[test]
    fn the_queue_age_is_that_of_the_oldest_due_notification() {
        let now = Timestamp(10_000_000);
        let depth = QueueDepth { queued: 5, due: 2, in_flight: 1, oldest_due: Some(Timestamp(now.0 - 185_000)) };
        let q = queue(depth, now);
        assert_eq!((q.queued, q.due, q.in_flight, q.oldest_due_age.as_str()), (5, 2, 1, "3 min"));
        assert_eq!(queue(QueueDepth::default(), now).oldest_due_age, "—");
        assert_eq!((age(59_999), age(7_200_000), age(200_000_000)), ("59 s".into(), "2 h".into(), "2 d".into()));
    }
}
