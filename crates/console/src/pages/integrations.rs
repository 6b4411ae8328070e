//! Integrations: masked settings, health and "check now"; connecting a Slack workspace or a
//! Google account over OAuth (the flow bound to this console session); deleting, which for a
//! connection first revokes its token at the provider. Each page calls the `/v1` handlers.

use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chimatic_api::routes::connections::{self, NewConnection, session_binding};
use chimatic_api::routes::integrations;
use chimatic_domain::{OAuthProvider, Scope};
use serde::Deserialize;

use super::resources::{Action, DetailPage};
use super::views::{Table, json, table};
use super::{Frame, frame, page};
use crate::Console;
use crate::auth::ProviderCallback;
use crate::error::PageError;
use crate::member::{Change, Member, NoFields};

/// Where providers send the browser back; it must be on each provider's redirect allowlist.
pub const CALLBACK_PATH: &str = "/console/integrations/connect/callback";

pub struct Connectable {
    pub id: &'static str,
    pub title: &'static str,
    /// Google: the sender address is asked for.
    pub asks_sender: bool,
}

#[derive(Template)]
#[template(path = "integrations.html")]
struct ListPage {
    frame: Frame,
    table: Table,
    connectable: Vec<Connectable>,
}

#[derive(Template)]
#[template(path = "connect.html")]
struct ContinuePage {
    frame: Frame,
    provider: &'static str,
    url: String,
}

pub async fn list(State(console): State<Console>, member: Member) -> Result<Html<String>, PageError> {
    let Json(list) = integrations::list(member.tenant(&console)?).await?;
    let columns = [
        ("Id", "/id"),
        ("Name", "/name"),
        ("Kind", "/kind"),
        ("Connected through", "/connected_through"),
        ("Settings", "/settings_masked"),
        ("Credentials set", "/credentials_set"),
        ("Healthy", "/last_check/healthy"),
        ("Checked", "/last_check/at"),
    ];
    let table = table(&json(&list)["data"], &columns, Some("/console/integrations/"));
    let connectable = match member.role().scopes().allows(Scope::IntegrationsWrite) {
        true => console
            .app
            .connections
            .configured()
            .map(|p| Connectable { id: p.as_str(), title: p.title(), asks_sender: p == OAuthProvider::Google })
            .collect(),
        false => Vec::new(),
    };
    page(ListPage { frame: frame(&console, &member).await?, table, connectable })
}

async fn detail(
    console: &Console,
    member: &Member,
    id: String,
    notice: Option<String>,
) -> Result<Html<String>, PageError> {
    let Json(found) = integrations::get(member.tenant(console)?, Path(id.clone())).await?;
    let view = json(&found);
    let mut detail = DetailPage::new(frame(console, member).await?, format!("Integration {id}"), &view);
    if member.role().scopes().allows(Scope::IntegrationsWrite) {
        let check = Action { path: format!("/console/integrations/{id}/check"), label: "Check now", confirm: None };
        detail.actions.push(check);
        let (label, question) = match view["connected_through"].is_null() {
            true => ("Delete", "Delete this integration? Workflow steps that use it stop delivering."),
            false => (
                "Disconnect and delete",
                "Disconnect this account? Its token is revoked at the provider and workflow steps that use it \
                 stop delivering.",
            ),
        };
        let path = format!("/console/integrations/{id}/delete");
        detail.actions.push(Action { path, label, confirm: Some(question) });
    }
    detail.notice = notice;
    page(detail)
}

pub async fn show(
    State(console): State<Console>,
    member: Member,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    detail(&console, &member, id, None).await
}

/// A health check that sends no user data, recorded and shown.
pub async fn check(
    State(console): State<Console>,
    Path(id): Path<String>,
    change: Change<NoFields>,
) -> Result<Html<String>, PageError> {
    let member = change.member;
    let Json(result) =
        integrations::check(State(console.app.clone()), member.tenant(&console)?, Path(id.clone())).await?;
    let view = json(&result);
    let notice = match view["healthy"].as_bool() {
        Some(true) => "Checked: healthy.".to_string(),
        _ => format!("Checked: unhealthy ({}).", view["error_class"].as_str().unwrap_or("unknown")),
    };
    detail(&console, &member, id, Some(notice)).await
}

/// Deletes the integration; a connection's token is revoked at the provider first.
pub async fn delete(
    State(console): State<Console>,
    Path(id): Path<String>,
    change: Change<NoFields>,
) -> Result<Response, PageError> {
    integrations::delete(State(console.app.clone()), change.member.tenant(&console)?, Path(id)).await?;
    Ok(Redirect::to("/console/integrations").into_response())
}

#[derive(Deserialize)]
pub struct ConnectForm {
    provider: String,
    name: String,
    #[serde(default)]
    send_as: String,
}

/// Starts a connection; the provider's page is one link away. Not a redirect: the browser
/// holds a form's redirect to another origin to the page's `form-action 'self'`.
pub async fn connect(State(console): State<Console>, change: Change<ConnectForm>) -> Result<Html<String>, PageError> {
    let Change { member, form } = change;
    let provider = connections::parse_provider(&form.provider)?;
    let redirect_uri = format!("{}{CALLBACK_PATH}", console.config.public_origin);
    let send_as = Some(form.send_as.as_str()).filter(|s| !s.trim().is_empty());
    let new = NewConnection { provider, name: &form.name, redirect_uri: &redirect_uri, send_as };
    let tenant = member.tenant(&console)?;
    let (url, _) = connections::begin(&console.app, &tenant, session_binding(&member.digest), new).await?;
    page(ContinuePage { frame: frame(&console, &member).await?, provider: provider.title(), url: url.to_string() })
}

/// The provider sends the browser back here; only the session that started the flow can
/// finish it.
pub async fn callback(
    State(console): State<Console>,
    member: Member,
    Query(back): Query<ProviderCallback>,
) -> Result<Response, PageError> {
    let tenant = member.tenant(&console)?;
    // A refusal at the provider still uses up the flow: its state is taken with an empty code.
    let code = if back.error.is_empty() { back.code.as_str() } else { "" };
    let binding = session_binding(&member.digest);
    let made = connections::complete(&console.app, &tenant, binding, None, &back.state, code).await?;
    Ok(Redirect::to(&format!("/console/integrations/{}", made.id)).into_response())
}
