//! The audit log: both of the workspace's chains newest first (filtered by action and actor),
//! exports in JSON Lines and CSV through the API's own export (recorded in the log), and a
//! verification of the chains on request.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{Html, Response};
use chimatic_api::{AuditQuery, audit_page, export_audit};
use chimatic_audit::verify_chain;
use chimatic_domain::Scope;
use serde::Deserialize;

use super::{Frame, frame, page, region};
use crate::Console;
use crate::error::PageError;
use crate::member::{Change, Member, NoFields};

pub struct EntryView {
    pub at: String,
    pub stream: &'static str,
    pub seq: u64,
    pub actor: String,
    pub ip: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub detail: String,
}

#[derive(Deserialize, Default)]
pub struct Filters {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    cursor: String,
}

pub struct Verification {
    pub stream: &'static str,
    pub ok: bool,
    pub text: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditLogPage {
    frame: Frame,
    entries: Vec<EntryView>,
    action: String,
    actor: String,
    next: Option<String>,
    verification: Vec<Verification>,
}

async fn render(
    console: &Console,
    member: &Member,
    f: Filters,
    verification: Vec<Verification>,
) -> Result<Html<String>, PageError> {
    let store = region(console, member)?.store;
    let some = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
    let query = AuditQuery {
        from: None,
        to: None,
        action: some(&f.action),
        actor: some(&f.actor),
        limit: Some(100),
        cursor: some(&f.cursor),
    };
    let found = audit_page(&console.app, &store, member.session.workspace_id, query).await?;
    let entries = found
        .data
        .iter()
        .map(|e| EntryView {
            at: e.at.clone(),
            stream: e.stream.as_str(),
            seq: e.seq,
            actor: format!("{} {} ({})", e.actor.kind.as_str(), e.actor.name, e.actor.id),
            ip: e.ip.clone(),
            action: e.action.clone(),
            target: format!("{} {}", e.target.kind, e.target.id),
            outcome: format!("{:?}", e.outcome).to_lowercase(),
            detail: if e.detail.is_null() { String::new() } else { e.detail.to_string() },
        })
        .collect();
    page(AuditLogPage {
        frame: frame(console, member).await?,
        entries,
        action: f.action,
        actor: f.actor,
        next: found.next_cursor,
        verification,
    })
}

pub async fn list(
    State(console): State<Console>,
    member: Member,
    Query(f): Query<Filters>,
) -> Result<Html<String>, PageError> {
    member.require(Scope::AuditRead)?;
    render(&console, &member, f, Vec::new()).await
}

#[derive(Deserialize)]
pub struct ExportForm {
    format: String,
}

/// A download, recorded in the log as exported by the member. A form post (not a link), since
/// an export changes the log.
pub async fn export(State(console): State<Console>, change: Change<ExportForm>) -> Result<Response, PageError> {
    let Change { member, form } = change;
    member.require(Scope::AuditRead)?;
    let store = region(&console, &member)?.store;
    let ws = member.session.workspace_id;
    Ok(export_audit(&console.app, &store, ws, &member.audit, Some(form.format.as_str())).await?)
}

/// Walks both chains, checking every link and each signed head against the keys this
/// deployment's KEK protects.
pub async fn verify(State(console): State<Console>, change: Change<NoFields>) -> Result<Html<String>, PageError> {
    let member = change.member;
    member.require(Scope::AuditRead)?;
    let store = region(&console, &member)?.store;
    let ws = member.session.workspace_id;
    let trusted: Vec<[u8; 32]> = store.audit_head_public_key().await?.into_iter().collect();
    let mut verification = Vec::new();
    for log in [console.app.control.audit(), store.audit()] {
        let record = log.chain_record(ws).await?;
        let (ok, text) = match verify_chain(&record, Some(&trusted)) {
            Ok(v) => (
                true,
                format!(
                    "intact: {} entries through #{}; signed through #{}",
                    v.entries,
                    v.last_seq,
                    v.signed_through.map_or_else(|| "—".into(), |s| s.to_string())
                ),
            ),
            Err(broken) => (false, format!("BROKEN: {broken}")),
        };
        verification.push(Verification { stream: log.stream().as_str(), ok, text });
    }
    render(&console, &member, Filters::default(), verification).await
}
