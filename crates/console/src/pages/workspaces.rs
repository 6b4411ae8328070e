//! Switching workspaces: a person who belongs to several moves their session to another one
//! (a new identifier, the same timeouts), recorded there as a sign-in.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use chimatic_domain::WorkspaceId;
use chimatic_store::StoreError;
use serde::Deserialize;

use crate::Console;
use crate::auth::session;
use crate::error::PageError;
use crate::member::{Change, header_value, session_cookie, set_cookie};

#[derive(Deserialize)]
pub struct SwitchForm {
    workspace: String,
}

pub async fn switch(State(console): State<Console>, change: Change<SwitchForm>) -> Result<Response, PageError> {
    let Change { member, form } = change;
    let to: WorkspaceId = form.workspace.parse().map_err(|_| PageError::bad_request("choose a workspace"))?;
    if to == member.session.workspace_id {
        return Ok(Redirect::to("/console/").into_response());
    }
    let identifier = session::new_identifier().map_err(PageError::internal)?;
    let now = console.app.clock.now();
    let moved = console
        .app
        .control
        .switch_session(&member.digest, &session::digest(&identifier), &member.session, to, now, &member.audit)
        .await;
    match moved {
        Ok(()) => {}
        Err(StoreError::NotFound) => {
            return Err(PageError::Shown {
                status: axum::http::StatusCode::FORBIDDEN,
                message: "you are not a member of that workspace".into(),
            });
        }
        Err(e) => return Err(e.into()),
    }
    let config = &console.config;
    let cookie = set_cookie(config, session_cookie(config), &identifier, None);
    Ok(([(header::SET_COOKIE, header_value(&cookie)?)], Redirect::to("/console/")).into_response())
}
