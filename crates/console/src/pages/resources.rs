//! Subscribers (with their channels and preferences), topics, suppressions and workflows (steps,
//! preview with sample data): each page calls the `/v1` handler for the member and renders its
//! masked view. Integrations have their own room (`integrations.rs`).

use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::Html;
use chimatic_api::params::ApiQuery;
use chimatic_api::routes::{subscribers, suppressions, topics, workflows};
use serde::Deserialize;
use serde_json::Value;

use super::views::{Table, fields, json, table};
use super::{Frame, frame, page};
use crate::Console;
use crate::error::PageError;
use crate::member::{Change, Member};

#[derive(Template)]
#[template(path = "resource_list.html")]
pub(super) struct ListPage {
    pub frame: Frame,
    pub title: &'static str,
    pub intro: &'static str,
    pub table: Table,
    pub next: Option<String>,
}

pub struct Action {
    pub path: String,
    pub label: &'static str,
    /// Asked before the form is sent (console.js), for what cannot be undone.
    pub confirm: Option<&'static str>,
}

pub struct Preview {
    pub path: String,
    pub data: String,
    pub subscriber: String,
    /// `(heading, rendered text)` per step; HTML is shown as text, never rendered.
    pub rendered: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "resource_detail.html")]
pub(super) struct DetailPage {
    pub frame: Frame,
    pub title: String,
    pub notice: Option<String>,
    pub actions: Vec<Action>,
    pub fields: Vec<(String, String)>,
    pub tables: Vec<(&'static str, Table)>,
    pub preview: Option<Preview>,
}

impl DetailPage {
    pub(super) fn new(frame: Frame, title: String, view: &Value) -> Self {
        DetailPage {
            frame,
            title,
            notice: None,
            actions: Vec::new(),
            fields: fields(view),
            tables: Vec::new(),
            preview: None,
        }
    }
}

async fn list_page(
    console: &Console,
    member: &Member,
    title: &'static str,
    intro: &'static str,
    table: Table,
    next: Option<String>,
) -> Result<Html<String>, PageError> {
    page(ListPage { frame: frame(console, member).await?, title, intro, table, next })
}

#[derive(Deserialize, Default)]
pub struct After {
    after: Option<String>,
}

pub async fn subscriber_list(
    State(console): State<Console>,
    member: Member,
    Query(q): Query<After>,
) -> Result<Html<String>, PageError> {
    let params = subscribers::ListParams { after: q.after, limit: Some(50) };
    let Json(list) = subscribers::list(member.tenant(&console)?, ApiQuery(params)).await?;
    let view = json(&list);
    let columns = [
        ("Id", "/id"),
        ("External id", "/external_id_masked"),
        ("Attributes", "/attributes_masked"),
        ("Created", "/created_at"),
    ];
    let next = view["next_cursor"].as_str().map(|c| format!("/console/subscribers?after={c}"));
    let t = table(&view["data"], &columns, Some("/console/subscribers/"));
    list_page(&console, &member, "Subscribers", "Shown masked, as the API shows them.", t, next).await
}

pub async fn subscriber(
    State(console): State<Console>,
    member: Member,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    let Json(found) = subscribers::get(member.tenant(&console)?, Path(id.clone())).await?;
    let Json(channels) = subscribers::list_channels(member.tenant(&console)?, Path(id.clone())).await?;
    let Json(preferences) = subscribers::preferences(member.tenant(&console)?, Path(id.clone())).await?;
    let mut detail = DetailPage::new(frame(&console, &member).await?, format!("Subscriber {id}"), &json(&found));
    let columns = [("Id", "/id"), ("Type", "/type"), ("Address", "/address_masked"), ("Created", "/created_at")];
    detail.tables.push(("Channels", table(&json(&channels)["data"], &columns, None)));
    let prefs: Vec<Value> =
        fields(&json(&preferences)).into_iter().map(|(k, v)| serde_json::json!({"k": k, "v": v})).collect();
    detail
        .tables
        .push(("Preferences (opt-outs)", table(&Value::Array(prefs), &[("Setting", "/k"), ("Value", "/v")], None)));
    page(detail)
}

pub async fn topic_list(State(console): State<Console>, member: Member) -> Result<Html<String>, PageError> {
    let Json(list) = topics::list(member.tenant(&console)?).await?;
    let columns = [("Key", "/key"), ("Subscribers", "/subscriber_count"), ("Created", "/created_at")];
    let t = table(&json(&list)["data"], &columns, None);
    list_page(&console, &member, "Topics", "", t, None).await
}

pub async fn suppression_list(
    State(console): State<Console>,
    member: Member,
    Query(q): Query<After>,
) -> Result<Html<String>, PageError> {
    let params = suppressions::SuppressionPage { after: q.after, limit: Some(50) };
    let Json(list) = suppressions::list(member.tenant(&console)?, ApiQuery(params)).await?;
    let view = json(&list);
    let columns = [
        ("Type", "/type"),
        ("Address", "/address_masked"),
        ("Reason", "/reason"),
        ("Integration", "/integration_id"),
        ("Since", "/created_at"),
    ];
    let next = view["next_cursor"].as_str().map(|c| format!("/console/suppressions?after={c}"));
    let t = table(&view["data"], &columns, None);
    list_page(
        &console,
        &member,
        "Suppressions",
        "Addresses nothing is sent to (bounces, complaints, opt-outs), masked.",
        t,
        next,
    )
    .await
}

pub async fn workflow_list(State(console): State<Console>, member: Member) -> Result<Html<String>, PageError> {
    let Json(list) = workflows::list(member.tenant(&console)?).await?;
    let columns = [("Id", "/id"), ("Key", "/key"), ("Category", "/category"), ("Updated", "/updated_at")];
    let t = table(&json(&list)["data"], &columns, Some("/console/workflows/"));
    list_page(&console, &member, "Workflows", "", t, None).await
}

async fn workflow_page(
    console: &Console,
    member: &Member,
    id: String,
    preview: Preview,
) -> Result<Html<String>, PageError> {
    let Json(found) = workflows::get(member.tenant(console)?, Path(id.clone())).await?;
    let mut detail = DetailPage::new(frame(console, member).await?, format!("Workflow {id}"), &json(&found));
    detail.preview = Some(preview);
    page(detail)
}

pub async fn workflow(
    State(console): State<Console>,
    member: Member,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    let preview = Preview {
        path: format!("/console/workflows/{id}/preview"),
        data: "{}".into(),
        subscriber: "{\"first_name\": \"Sam\"}".into(),
        rendered: Vec::new(),
    };
    workflow_page(&console, &member, id, preview).await
}

#[derive(Deserialize)]
pub struct PreviewForm {
    data: String,
    subscriber: String,
}

fn sample(text: &str, what: &str) -> Result<serde_json::Map<String, Value>, PageError> {
    serde_json::from_str(text).map_err(|_| PageError::bad_request(format!("the {what} is not a JSON object")))
}

/// Renders every step with the sample data; a change of nothing, but a POST for its body.
pub async fn workflow_preview(
    State(console): State<Console>,
    Path(id): Path<String>,
    change: Change<PreviewForm>,
) -> Result<Html<String>, PageError> {
    let Change { member, form } = change;
    let request = workflows::PreviewRequest {
        data: Some(sample(&form.data, "event data")?),
        subscriber: Some(sample(&form.subscriber, "subscriber")?),
    };
    let Json(out) = workflows::preview(
        axum::extract::State(console.app.clone()),
        member.tenant(&console)?,
        Path(id.clone()),
        chimatic_api::body::ApiJson(request),
    )
    .await?;
    let rendered = json(&out)["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let parts: Vec<String> = ["subject", "title", "text", "html"]
                        .iter()
                        .filter_map(|k| s[*k].as_str().map(|v| format!("{k}: {v}")))
                        .collect();
                    (format!("Step {} ({})", i + 1, s["channel"].as_str().unwrap_or("?")), parts.join("\n\n"))
                })
                .collect()
        })
        .unwrap_or_default();
    let preview = Preview {
        path: format!("/console/workflows/{id}/preview"),
        data: form.data,
        subscriber: form.subscriber,
        rendered,
    };
    workflow_page(&console, &member, id, preview).await
}
