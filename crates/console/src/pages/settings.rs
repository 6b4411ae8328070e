//! Workspace settings: plan and retentions, where its keys are, whether it is frozen or requires
//! a second factor — and, for owners, deleting it, which takes its name typed out.

use askama::Template;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chimatic_domain::Role;
use serde::Deserialize;

use super::{Frame, frame, page, region};
use crate::Console;
use crate::error::PageError;
use crate::member::{Change, Member, header_value, session_cookie, set_cookie};

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    frame: Frame,
    id: String,
    name: String,
    region: String,
    plan: String,
    audit_retention_days: u32,
    payload_retention_days: u32,
    created: String,
    frozen_since: Option<String>,
    kek_id: String,
    own_key: bool,
    two_factor_required: bool,
    can_delete: bool,
}

pub async fn show(State(console): State<Console>, member: Member) -> Result<Html<String>, PageError> {
    member.require_manager()?;
    let ws = member.session.workspace_id;
    let w = console.app.control.workspace(ws).await?;
    let store = region(&console, &member)?.store;
    page(SettingsPage {
        frame: frame(&console, &member).await?,
        id: w.id.to_string(),
        name: w.name,
        region: w.region.to_string(),
        plan: w.plan.name().to_string(),
        audit_retention_days: w.plan.audit_retention_days(),
        payload_retention_days: w.payload_retention_days,
        created: w.created_at.to_rfc3339(),
        frozen_since: w.frozen_at.map(|t| t.to_rfc3339()),
        kek_id: store.kek_id(),
        own_key: store.has_own_key(ws).await?,
        two_factor_required: console.app.control.two_factor_required(ws).await?,
        can_delete: member.role() == Role::Owner,
    })
}

#[derive(Deserialize)]
pub struct Confirm {
    confirm: String,
}

/// Deletes the workspace: its keys are destroyed first, then every row in every store; the
/// receipt is in the deployment's audit log. Owners only, with the name typed exactly.
pub async fn delete(State(console): State<Console>, change: Change<Confirm>) -> Result<Response, PageError> {
    let Change { member, form } = change;
    if member.role() != Role::Owner {
        return Err(PageError::forbidden());
    }
    let ws = member.session.workspace_id;
    let w = console.app.control.workspace(ws).await?;
    if form.confirm != w.name {
        return Err(PageError::bad_request("type the workspace's name exactly to delete it; nothing was changed"));
    }
    let store = region(&console, &member)?.store;
    console.app.control.delete_workspace(ws, &store, console.app.clock.now(), &member.audit).await?;
    tracing::warn!(workspace = %ws, by = %member.session.user_id, "workspace deleted from the console");
    let config = &console.config;
    let gone = set_cookie(config, session_cookie(config), "", Some(0));
    Ok(([(header::SET_COOKIE, header_value(&gone)?)], Redirect::to("/console/sign-in")).into_response())
}
