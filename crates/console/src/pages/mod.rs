//! The console's pages. Handlers are thin: a member (or a change), a store call, a template.

pub mod account;
pub mod api_keys;
pub mod audit;
pub mod integrations;
pub mod join;
pub mod members;
pub mod notifications;
pub mod overview;
pub mod resources;
pub mod settings;
pub mod sign_in;
pub mod sso;
pub mod sso_policy;
pub mod two_factor;
pub mod views;
pub mod workspaces;

use askama::Template;
use axum::http::StatusCode;
use axum::response::Html;
use chimatic_domain::Role;

use crate::Console;
use crate::error::PageError;
use crate::member::Member;

/// What every signed-in page shows around its content.
pub struct Frame {
    pub workspace_id: String,
    pub workspace_name: String,
    pub email_masked: String,
    pub role: Role,
    pub csrf: String,
    /// Members, keys and settings are shown.
    pub manages: bool,
    /// The person's other workspaces (id, name), to switch to.
    pub others: Vec<(String, String)>,
}

pub async fn frame(console: &Console, member: &Member) -> Result<Frame, PageError> {
    let control = &console.app.control;
    let workspace = control.workspace(member.session.workspace_id).await?;
    let others = control
        .memberships_of(member.session.user_id)
        .await?
        .into_iter()
        .filter(|m| m.workspace_id != member.session.workspace_id)
        .map(|m| (m.workspace_id.to_string(), m.workspace_name))
        .collect();
    Ok(Frame {
        workspace_id: workspace.id.to_string(),
        workspace_name: workspace.name,
        email_masked: member.session.email_masked.clone(),
        role: member.role(),
        csrf: member.csrf(),
        manages: member.role().manages_workspace(),
        others,
    })
}

pub fn page(template: impl Template) -> Result<Html<String>, PageError> {
    Ok(Html(template.render()?))
}

pub async fn not_found() -> PageError {
    PageError::Shown { status: StatusCode::NOT_FOUND, message: "there is no such console page".into() }
}

/// The member's workspace's data plane, if this node serves its region.
pub fn region(console: &Console, member: &Member) -> Result<chimatic_api::RegionPlane, PageError> {
    console
        .app
        .regions
        .get(&member.session.region)
        .cloned()
        .ok_or_else(|| PageError::unavailable("this workspace's data lives in a region this node does not serve"))
}
