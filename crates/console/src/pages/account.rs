//! The member's own account: their password (changing it takes the current one, ends their
//! other sessions and gives this one a new identifier), their second factor, and signing out
//! everywhere.

use askama::Template;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::sign_in::verify;
use super::two_factor::recovery_left_label;
use super::{Frame, frame, page};
use crate::Console;
use crate::auth::password;
use crate::error::PageError;
use crate::member::{Change, Member};

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    frame: Frame,
    two_factor_since: Option<String>,
    recovery_left: String,
    two_factor_required: bool,
    notice: Option<&'a str>,
    problem: Option<String>,
}

async fn render(
    console: &Console,
    member: &Member,
    status: StatusCode,
    notice: Option<&str>,
    problem: Option<String>,
) -> Result<Response, PageError> {
    let control = &console.app.control;
    let user = member.session.user_id;
    let factor = control.second_factor(user).await?;
    let html = page(AccountPage {
        frame: frame(console, member).await?,
        two_factor_since: factor.map(|f| f.enrolled_at.to_rfc3339()),
        recovery_left: recovery_left_label(control.recovery_codes_left(user).await?),
        two_factor_required: control.two_factor_required(member.session.workspace_id).await?,
        notice,
        problem,
    })?;
    Ok((status, html).into_response())
}

pub async fn show(State(console): State<Console>, member: Member) -> Result<Response, PageError> {
    render(&console, &member, StatusCode::OK, None, None).await
}

#[derive(Deserialize)]
pub struct NewPassword {
    current: String,
    new: String,
    confirm: String,
}

pub async fn change_password(
    State(console): State<Console>,
    change: Change<NewPassword>,
) -> Result<Response, PageError> {
    let Change { mut member, form } = change;
    let control = &console.app.control;
    let user = control.user(member.session.user_id).await?;
    let refuse = |problem: String| render(&console, &member, StatusCode::UNPROCESSABLE_ENTITY, None, Some(problem));
    if !verify(&form.current, Some(&user)).await? {
        return refuse("your current password is not right; nothing was changed".into()).await;
    }
    if form.new != form.confirm {
        return refuse("the new passwords differ; nothing was changed".into()).await;
    }
    if let Err(e) = password::check(&form.new, user.local_part_len, &user.local_part_digest) {
        return refuse(format!("{e}; nothing was changed")).await;
    }
    let hash = password::hash_blocking(Zeroizing::new(form.new)).await.map_err(PageError::internal)?;
    let now = console.app.clock.now();
    let ws = member.session.workspace_id;
    control.set_password(user.id, &hash, Some(&member.digest), now, ws, &member.audit).await?;
    let cookie = member.rotate(&console).await?;
    let mut resp =
        render(&console, &member, StatusCode::OK, Some("Password changed. Your other sessions have ended."), None)
            .await?;
    resp.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(resp)
}
