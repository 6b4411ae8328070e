//! API keys: the list shows the last four characters only; a new key is shown once, on the
//! response to its creation; revoking is effective on the key's next request.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chimatic_api::params::checked_name;
use chimatic_crypto::digest::sha256;
use chimatic_domain::{ApiKeyId, Scope, Scopes};
use chimatic_store::ApiKeyRow;
use serde::Deserialize;

use super::{Frame, frame, page};
use crate::Console;
use crate::auth::session;
use crate::error::PageError;
use crate::member::{Change, Member};

pub struct KeyView {
    pub id: String,
    pub name: String,
    pub last4: String,
    pub scopes: String,
    pub created: String,
    pub last_used: String,
    pub status: &'static str,
    pub live: bool,
}

impl From<&ApiKeyRow> for KeyView {
    fn from(k: &ApiKeyRow) -> Self {
        KeyView {
            id: k.id.to_string(),
            name: k.name.clone(),
            last4: k.last4.clone(),
            scopes: k.scopes.to_storage(),
            created: k.created_at.to_rfc3339(),
            last_used: k.last_used_at.map_or_else(|| "never".to_string(), |t| t.to_rfc3339()),
            status: if k.revoked_at.is_some() { "revoked" } else { "active" },
            live: k.revoked_at.is_none(),
        }
    }
}

pub struct Created {
    pub name: String,
    pub key: String,
}

#[derive(Template)]
#[template(path = "api_keys.html")]
struct KeysPage {
    frame: Frame,
    keys: Vec<KeyView>,
    created: Option<Created>,
    /// The create form's single-use nonce: sent twice (a reload), it makes one key.
    once: String,
    problem: Option<&'static str>,
}

const SENT_TWICE: &str = "This form was sent already: the key it made was shown then, once. Create another if you \
                          need one.";

async fn render(
    console: &Console,
    member: &Member,
    created: Option<Created>,
    problem: Option<&'static str>,
) -> Result<Html<String>, PageError> {
    let frame = frame(console, member).await?;
    let keys = console.app.control.list_api_keys(member.session.workspace_id).await?;
    let once = session::new_identifier().map_err(PageError::internal)?;
    page(KeysPage { frame, keys: keys.iter().map(KeyView::from).collect(), created, once, problem })
}

pub async fn list(State(console): State<Console>, member: Member) -> Result<Html<String>, PageError> {
    member.require(Scope::Admin)?;
    render(&console, &member, None, None).await
}

#[derive(Deserialize)]
pub struct CreateKey {
    name: String,
    access: String,
    once: String,
}

fn access_scopes(access: &str) -> Option<Scopes> {
    let scopes = match access {
        "admin" => vec![Scope::Admin],
        "send" => vec![Scope::NotificationsWrite, Scope::NotificationsRead],
        "read" => chimatic_domain::Role::Viewer.scopes().as_slice().to_vec(),
        _ => return None,
    };
    Scopes::new(scopes)
}

pub async fn create(State(console): State<Console>, change: Change<CreateKey>) -> Result<Response, PageError> {
    let Change { member, form } = change;
    member.require(Scope::Admin)?;
    let name = checked_name(&form.name)?;
    let scopes = access_scopes(&form.access).ok_or_else(|| PageError::bad_request("choose an access level"))?;
    if !session::well_formed(&form.once) {
        return Err(PageError::bad_request("reload the page and create the key again"));
    }
    let now = console.app.clock.now();
    let mut bound = member.digest.to_vec();
    bound.extend_from_slice(form.once.as_bytes());
    if !console.app.control.use_form(&sha256("chimatic.console-form", &bound), now).await? {
        let page = render(&console, &member, None, Some(SENT_TWICE)).await?;
        return Ok((StatusCode::CONFLICT, page).into_response());
    }
    let (row, key) =
        console.app.control.create_api_key(member.session.workspace_id, name, scopes, now, &member.audit).await?;
    let created = Created { name: row.name, key: key.into_inner() };
    Ok(render(&console, &member, Some(created), None).await?.into_response())
}

#[derive(Deserialize)]
pub struct RevokeKey {
    id: String,
}

pub async fn revoke(State(console): State<Console>, change: Change<RevokeKey>) -> Result<Redirect, PageError> {
    let Change { member, form } = change;
    member.require(Scope::Admin)?;
    let id: ApiKeyId = form.id.parse().map_err(|_| PageError::bad_request("no such API key"))?;
    let now = console.app.clock.now();
    console.app.control.revoke_api_key(member.session.workspace_id, id, now, &member.audit).await?;
    Ok(Redirect::to("/console/api-keys"))
}
