//! Following a link: accepting an invitation (a new person types the invited email and chooses
//! a password; someone with an account signs in first and accepts), or setting a new password
//! through a reset link. Links work once, expire, and are refused the same way whether unknown,
//! used, revoked or expired.

use askama::Template;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use chimatic_api::auth::request_origin;
use chimatic_audit::{Actor, AuditContext};
use chimatic_crypto::digest::constant_time_eq;
use chimatic_domain::{EmailAddress, Role};
use chimatic_store::{InvitationRow, Joining, PasswordResetRow};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::page;
use super::sign_in::start_session;
use crate::Console;
use crate::auth::link::{self, LinkKind};
use crate::auth::password::{self, EmailIdentity};
use crate::error::PageError;
use crate::member::{Change, Member, PreChange, PreSession};

const NOT_VALID: &str = "This link is not valid: it was used, revoked or has expired. Ask for a new one.";

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

fn gone() -> PageError {
    PageError::Shown { status: StatusCode::GONE, message: NOT_VALID.into() }
}

/// What the join page offers.
pub enum Offer {
    /// No account with the invited email: type it and choose a password.
    NewAccount,
    /// An account exists and is signed in: accept.
    Accept,
    /// An account exists: sign in as it first.
    SignInFirst,
}

#[derive(Template)]
#[template(path = "join.html")]
struct JoinPage<'a> {
    csrf: String,
    token: &'a str,
    workspace_name: String,
    email_masked: &'a str,
    role: Role,
    offer: Offer,
    problem: Option<String>,
}

async fn pending_invitation(console: &Console, token: &str) -> Result<InvitationRow, PageError> {
    let digest = link::digest(LinkKind::Invitation, token).ok_or_else(gone)?;
    let now = console.app.clock.now();
    console.app.control.invitation_by_token(&digest).await?.filter(|i| i.pending(now)).ok_or_else(gone)
}

/// The signed-in member, if the request has a live session.
async fn signed_in(parts: &mut Parts, console: &Console) -> Option<Member> {
    Member::from_request_parts(parts, console).await.ok()
}

async fn join_page(
    console: &Console,
    mut parts: Parts,
    pre: &PreSession,
    token: &str,
    status: StatusCode,
    problem: Option<String>,
) -> Result<Response, PageError> {
    let invitation = pending_invitation(console, token).await?;
    let control = &console.app.control;
    let existing = control.user_by_email(&invitation.email_digest).await?;
    let member = signed_in(&mut parts, console).await;
    let (offer, csrf) = match (&existing, &member) {
        (None, _) => (Offer::NewAccount, pre.csrf()),
        (Some(u), Some(m)) if m.session.user_id == u.id => (Offer::Accept, m.csrf()),
        (Some(_), _) => (Offer::SignInFirst, pre.csrf()),
    };
    let html = page(JoinPage {
        csrf,
        token,
        workspace_name: control.workspace(invitation.workspace_id).await?.name,
        email_masked: &invitation.email_masked,
        role: invitation.role,
        offer,
        problem,
    })?;
    pre.attach(&console.config, (status, html).into_response())
}

pub async fn show(
    State(console): State<Console>,
    pre: PreSession,
    Query(q): Query<TokenQuery>,
    parts: Parts,
) -> Result<Response, PageError> {
    join_page(&console, parts, &pre, &q.token, StatusCode::OK, None).await
}

#[derive(Deserialize)]
pub struct NewAccount {
    token: String,
    email: String,
    password: String,
    confirm: String,
}

/// A new person joins: the email they type must be the invited one (its digest), the password
/// must meet the standard; the account, the membership and the first session are made at once.
pub async fn create_account(
    State(console): State<Console>,
    change: PreChange<NewAccount>,
) -> Result<Response, PageError> {
    let PreChange { pre, form, parts } = change;
    let invitation = pending_invitation(&console, &form.token).await?;
    let retry = |problem: &str| {
        let problem = Some(format!("{problem}; nothing was changed"));
        join_page(&console, parts.clone(), &pre, &form.token, StatusCode::UNPROCESSABLE_ENTITY, problem)
    };
    let Ok(email) = EmailAddress::parse(form.email.trim()) else {
        return retry("enter the email address the invitation is for").await;
    };
    let identity = EmailIdentity::of(&email);
    if !constant_time_eq(&identity.digest, &invitation.email_digest) {
        return retry("this invitation is for another email address").await;
    }
    if form.password != form.confirm {
        return retry("the passwords differ").await;
    }
    if let Err(e) = password::check(&form.password, identity.local_part_len, &identity.local_part_digest) {
        return retry(&e.to_string()).await;
    }
    let now = console.app.clock.now();
    let hash = password::hash_blocking(Zeroizing::new(form.password)).await.map_err(PageError::internal)?;
    let user = identity.user(hash, now);
    let by = AuditContext { actor: Actor::user(user.id, user.email_masked.clone()), origin: request_origin(&parts) };
    console.app.control.accept_invitation(&invitation, Joining::NewUser(&user), now, &by).await?;
    start_session(&console, user.id, invitation.workspace_id, now, &by, None).await
}

#[derive(Deserialize)]
pub struct Accept {
    token: String,
}

/// Someone with an account, signed in as the invited email, joins; their session moves to the
/// new workspace (a new identifier).
pub async fn accept(State(console): State<Console>, change: Change<Accept>) -> Result<Response, PageError> {
    let Change { member, form } = change;
    let invitation = pending_invitation(&console, &form.token).await?;
    let user = console.app.control.user(member.session.user_id).await?;
    if !constant_time_eq(&user.email_digest, &invitation.email_digest) {
        return Err(PageError::bad_request("this invitation is for another email address"));
    }
    let now = console.app.clock.now();
    console.app.control.accept_invitation(&invitation, Joining::Existing(user.id), now, &member.audit).await?;
    console.app.control.end_session(&member.digest, None, false, now, &member.audit).await?;
    start_session(&console, user.id, invitation.workspace_id, now, &member.audit, None).await
}

#[derive(Template)]
#[template(path = "reset_password.html")]
struct ResetPage<'a> {
    csrf: String,
    token: &'a str,
    email_masked: String,
    problem: Option<String>,
}

async fn live_reset(console: &Console, token: &str) -> Result<([u8; 32], PasswordResetRow), PageError> {
    let digest = link::digest(LinkKind::PasswordReset, token).ok_or_else(gone)?;
    let now = console.app.clock.now();
    let reset = console.app.control.password_reset(&digest).await?;
    let reset = reset.filter(|r| r.used_at.is_none() && now < r.expires_at).ok_or_else(gone)?;
    Ok((digest, reset))
}

async fn reset_page(
    console: &Console,
    pre: &PreSession,
    token: &str,
    status: StatusCode,
    problem: Option<String>,
) -> Result<Response, PageError> {
    let (_, reset) = live_reset(console, token).await?;
    let user = console.app.control.user(reset.user_id).await?;
    let html = page(ResetPage { csrf: pre.csrf(), token, email_masked: user.email_masked, problem })?;
    pre.attach(&console.config, (status, html).into_response())
}

pub async fn reset_form(
    State(console): State<Console>,
    pre: PreSession,
    Query(q): Query<TokenQuery>,
) -> Result<Response, PageError> {
    reset_page(&console, &pre, &q.token, StatusCode::OK, None).await
}

#[derive(Deserialize)]
pub struct NewPassword {
    token: String,
    password: String,
    confirm: String,
}

/// Sets the new password once; every session of the person ends, and they sign in with it.
pub async fn reset(State(console): State<Console>, change: PreChange<NewPassword>) -> Result<Response, PageError> {
    let PreChange { pre, form, parts } = change;
    let (digest, reset) = live_reset(&console, &form.token).await?;
    let user = console.app.control.user(reset.user_id).await?;
    let retry = |problem: String| {
        reset_page(
            &console,
            &pre,
            &form.token,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(format!("{problem}; nothing was changed")),
        )
    };
    if form.password != form.confirm {
        return retry("the passwords differ".into()).await;
    }
    if let Err(e) = password::check(&form.password, user.local_part_len, &user.local_part_digest) {
        return retry(e.to_string()).await;
    }
    let hash = password::hash_blocking(Zeroizing::new(form.password)).await.map_err(PageError::internal)?;
    let now = console.app.clock.now();
    let by = AuditContext { actor: Actor::user(user.id, user.email_masked.clone()), origin: request_origin(&parts) };
    console.app.control.use_password_reset(&digest, &reset, &hash, now, &by).await?;
    Ok(Redirect::to("/console/sign-in").into_response())
}
