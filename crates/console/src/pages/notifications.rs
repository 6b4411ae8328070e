//! Notifications: the newest first (within the payload retention window, filtered by status,
//! type and age), and one notification with its masked content and every attempt on a
//! timeline; a failed one can be replayed. Content is shown as the API shows it: masked.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{Html, Redirect};
use chimatic_api::mask_json;
use chimatic_domain::{ChannelKind, NotificationId, NotificationStatus, Scope, Timestamp};
use chimatic_store::records::Notification;
use chimatic_store::{NotificationQuery, Target};
use serde::Deserialize;

use super::{Frame, frame, page, region};
use crate::Console;
use crate::error::PageError;
use crate::member::{Change, Member, NoFields};

const PAGE: u32 = 50;
const STATUSES: [&str; 6] = ["queued", "delivering", "delivered", "failed", "skipped", "suppressed"];
const KINDS: [&str; 5] = ["webhook", "email", "sms", "slack", "inapp"];
const AGES: [u32; 4] = [1, 7, 30, 90];

pub struct Row {
    pub id: String,
    pub kind: &'static str,
    pub status: &'static str,
    pub attempts: u32,
    pub created: String,
    pub target: String,
}

fn kind_of(target: &Target) -> ChannelKind {
    match target {
        Target::Channel(_) => ChannelKind::Webhook,
        Target::Subscriber(r) => r.kind,
    }
}

fn target_of(target: &Target) -> String {
    match target {
        Target::Channel(c) => c.to_string(),
        Target::Subscriber(r) => r.subscriber_id.to_string(),
    }
}

impl From<&Notification> for Row {
    fn from(n: &Notification) -> Self {
        Row {
            id: n.id.to_string(),
            kind: kind_of(&n.target).as_str(),
            status: n.status.as_str(),
            attempts: n.attempt_count,
            created: n.created_at.to_rfc3339(),
            target: target_of(&n.target),
        }
    }
}

#[derive(Deserialize, Default)]
pub struct Filters {
    #[serde(default)]
    status: String,
    #[serde(default, rename = "type")]
    kind: String,
    days: Option<u32>,
    /// A channel, subscriber channel or integration id.
    #[serde(default)]
    to: String,
    /// `created_at_ms.id` of the last row of the previous page.
    #[serde(default)]
    before: String,
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct ListPage {
    frame: Frame,
    rows: Vec<Row>,
    status: String,
    kind: String,
    days: u32,
    to: String,
    statuses: [&'static str; 6],
    kinds: [&'static str; 5],
    ages: [u32; 4],
    next: Option<String>,
}

fn cursor(text: &str) -> Option<(Timestamp, NotificationId)> {
    let (at, id) = text.split_once('.')?;
    Some((Timestamp(at.parse().ok()?), id.parse().ok()?))
}

pub async fn list(
    State(console): State<Console>,
    member: Member,
    Query(f): Query<Filters>,
) -> Result<Html<String>, PageError> {
    member.require(Scope::NotificationsRead)?;
    let status = (!f.status.is_empty())
        .then(|| NotificationStatus::parse(&f.status).ok_or_else(|| PageError::bad_request("unknown status")))
        .transpose()?;
    let kind = (!f.kind.is_empty())
        .then(|| ChannelKind::parse(&f.kind).ok_or_else(|| PageError::bad_request("unknown type")))
        .transpose()?;
    let days = f.days.filter(|d| AGES.contains(d)).unwrap_or(7);
    // Ids are short ASCII words; anything else matches nothing and would only be echoed back.
    let is_id = |t: &str| t.len() <= 64 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let via = (!f.to.is_empty())
        .then(|| {
            is_id(&f.to).then(|| f.to.clone()).ok_or_else(|| PageError::bad_request("not a channel or integration id"))
        })
        .transpose()?;
    let before = (!f.before.is_empty())
        .then(|| cursor(&f.before).ok_or_else(|| PageError::bad_request("not a page of this list")))
        .transpose()?;
    let now = console.app.clock.now();
    let since = Timestamp(now.0 - i64::from(days) * 86_400_000);
    let query = NotificationQuery { since, before, status, kind, via, limit: PAGE };
    let found = region(&console, &member)?.store.recent_notifications(member.session.workspace_id, &query).await?;
    let next =
        (found.len() == PAGE as usize).then(|| found.last().map(|n| format!("{}.{}", n.created_at.0, n.id))).flatten();
    page(ListPage {
        frame: frame(&console, &member).await?,
        rows: found.iter().map(Row::from).collect(),
        status: f.status,
        kind: f.kind,
        days,
        to: f.to,
        statuses: STATUSES,
        kinds: KINDS,
        ages: AGES,
        next,
    })
}

pub struct Step {
    pub number: u32,
    pub at: String,
    /// Since the notification was accepted.
    pub after: String,
    pub succeeded: bool,
    pub status_code: String,
    pub latency_ms: u64,
    pub error_class: String,
    pub integration: String,
}

#[derive(Template)]
#[template(path = "notification.html")]
struct DetailPage {
    frame: Frame,
    row: Row,
    updated: String,
    next_attempt: String,
    content: String,
    steps: Vec<Step>,
    replayable: bool,
}

fn elapsed(ms: i64) -> String {
    match ms {
        ms if ms < 1000 => format!("+{ms} ms"),
        ms if ms < 120_000 => format!("+{:.1} s", ms as f64 / 1000.0),
        ms => format!("+{} min", ms / 60_000),
    }
}

fn notification_id(text: &str) -> Result<NotificationId, PageError> {
    text.parse().map_err(|_| PageError::Shown {
        status: axum::http::StatusCode::NOT_FOUND,
        message: "no such notification".into(),
    })
}

pub async fn show(
    State(console): State<Console>,
    member: Member,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    member.require(Scope::NotificationsRead)?;
    let id = notification_id(&id)?;
    let ws = member.session.workspace_id;
    let store = region(&console, &member)?.store;
    let n = store.notification(ws, id).await?;
    let attempts = store.attempts(ws, id).await?;
    let content = match &n.payload {
        Some(p) => {
            let value: serde_json::Value = serde_json::from_slice(p.expose()).map_err(PageError::internal)?;
            serde_json::to_string_pretty(&mask_json(&value)).map_err(PageError::internal)?
        }
        None => "(removed by the workspace's payload retention)".into(),
    };
    let steps = attempts
        .iter()
        .zip(1u32..)
        .map(|(a, number)| Step {
            number,
            at: a.started_at.to_rfc3339(),
            after: elapsed(a.started_at.0 - n.created_at.0),
            succeeded: a.succeeded,
            status_code: a.detail.status_code.map_or_else(|| "—".into(), |c| c.to_string()),
            latency_ms: a.detail.latency_ms,
            error_class: a.detail.error_class.clone().unwrap_or_default(),
            integration: a.detail.integration_id.map(|i| i.to_string()).unwrap_or_default(),
        })
        .collect();
    page(DetailPage {
        frame: frame(&console, &member).await?,
        row: Row::from(&n),
        updated: n.updated_at.to_rfc3339(),
        next_attempt: n.next_attempt_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        content,
        steps,
        replayable: n.status == NotificationStatus::Failed && member.role().scopes().allows(Scope::NotificationsWrite),
    })
}

/// Queues a failed notification again, with a fresh retry schedule.
pub async fn replay(
    State(console): State<Console>,
    Path(id): Path<String>,
    change: Change<NoFields>,
) -> Result<Redirect, PageError> {
    let member = change.member;
    member.require(Scope::NotificationsWrite)?;
    let id = notification_id(&id)?;
    let plane = region(&console, &member)?;
    plane.store.replay(member.session.workspace_id, id, console.app.clock.now(), &member.audit).await?;
    plane.delivery_waker.notify_one();
    Ok(Redirect::to(&format!("/console/notifications/{id}")))
}

#[derive(Deserialize)]
pub struct Find {
    #[serde(default)]
    id: String,
}

pub async fn find(member: Member, Query(q): Query<Find>) -> Result<Redirect, PageError> {
    member.require(Scope::NotificationsRead)?;
    let id = notification_id(q.id.trim())?;
    Ok(Redirect::to(&format!("/console/notifications/{id}")))
}
