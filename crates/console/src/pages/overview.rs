//! The overview: what the workspace delivered, per day, as a chart drawn on the server (SVG,
//! no script), with the totals.

use askama::Template;
use axum::extract::State;
use axum::response::Html;
use chimatic_store::{StatsRow, day_of};

use super::{Frame, frame, page};
use crate::Console;
use crate::error::PageError;
use crate::member::Member;

const DAYS: i64 = 14;

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
    pub days: i64,
    pub width: u32,
    pub height: u32,
    pub peak: u64,
    pub bars: Vec<Bar>,
    pub ticks: Vec<Tick>,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    frame: Frame,
    chart: Chart,
    /// The sums over the days shown (`day` unused).
    totals: StatsRow,
}

pub async fn show(State(console): State<Console>, member: Member) -> Result<Html<String>, PageError> {
    let frame = frame(&console, &member).await?;
    let today = day_of(console.app.clock.now());
    let rows = console.app.control.stats(member.session.workspace_id, today - DAYS + 1, today).await?;
    let mut totals = StatsRow::default();
    for r in &rows {
        totals.accepted += r.accepted;
        totals.delivered += r.delivered;
        totals.failed += r.failed;
        totals.attempts += r.attempts;
    }
    page(OverviewPage { frame, chart: chart(&rows, today), totals })
}

/// Two bars a day (delivered, failed), scaled to the busiest day; days without counts are gaps.
fn chart(rows: &[StatsRow], today: i64) -> Chart {
    let (width, height, plot) = (700u32, 240u32, 220u32);
    let slot = width / DAYS as u32;
    let peak = rows.iter().map(|r| r.delivered.max(r.failed)).max().unwrap_or(0);
    let scale = |n: u64| (n * u64::from(plot - 10)).checked_div(peak).map_or(0, |h| u32::try_from(h).unwrap_or(plot));
    let mut bars = Vec::new();
    let mut ticks = Vec::new();
    for i in 0..DAYS {
        let day = today - DAYS + 1 + i;
        let x = i as u32 * slot;
        let date = chimatic_store::start_of_day(day).to_rfc3339();
        ticks.push(Tick { x: x + 2, label: date.get(5..10).unwrap_or_default().to_string() });
        let Some(r) = rows.iter().find(|r| r.day == day) else { continue };
        for (j, (class, n)) in [("delivered", r.delivered), ("failed", r.failed)].into_iter().enumerate() {
            let h = scale(n);
            bars.push(Bar {
                class,
                x: x + 4 + j as u32 * (slot / 2 - 4),
                y: plot - h,
                width: slot / 2 - 6,
                height: h,
                label: format!("{} {class}: {n}", date.get(..10).unwrap_or_default()),
            });
        }
    }
    Chart { days: DAYS, width, height, peak, bars, ticks }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_scaled_to_the_busiest_day() {
        let today = 20_000;
        let rows = [
            StatsRow { day: today, accepted: 10, attempts: 12, delivered: 8, failed: 2 },
            StatsRow { day: today - 1, accepted: 4, attempts: 4, delivered: 4, failed: 0 },
        ];
        let c = chart(&rows, today);
        assert_eq!(c.peak, 8);
        assert_eq!(c.bars.len(), 4);
        let tallest = c.bars.iter().map(|b| b.height).max().unwrap();
        let delivered_today = c.bars.iter().find(|b| b.label.ends_with("delivered: 8")).unwrap();
        assert_eq!(delivered_today.height, tallest);
        let half = c.bars.iter().find(|b| b.label.ends_with("delivered: 4")).unwrap();
        assert_eq!(half.height * 2, tallest);
        assert_eq!(c.ticks.len(), DAYS as usize);
        assert!(chart(&[], today).bars.is_empty());
    }
}
