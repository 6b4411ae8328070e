//! Signing in and out. A failed sign-in says only that the email or password is not right,
//! after the same argon2id work whether or not the account exists; failures are throttled per
//! account and per client address, and every outcome is audited.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chimatic_api::auth::request_origin;
use chimatic_audit::{Actor, AuditContext, actions, system_workspace};
use chimatic_crypto::digest::sha256;
use chimatic_domain::{EmailAddress, Timestamp};
use chimatic_store::UserRow;
use serde::Deserialize;

use super::page;
use crate::Console;
use crate::auth::password::{self, email_digest};
use crate::auth::session;
use crate::auth::throttle::{ACCOUNT, CLIENT};
use crate::error::PageError;
use crate::member::{Change, cookie_value, pre_session_cookie, same_origin, session_cookie, set_cookie};

/// A pre-session lasts as long as a sign-in form may sit open.
const PRE_SESSION_SECS: u64 = 3600;

const WRONG: &str = "The email or password is not right.";
const THROTTLED: &str = "Too many failed attempts. Wait a few minutes, then try again.";

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage<'a> {
    csrf: String,
    problem: Option<&'a str>,
}

/// The sign-in form, with a pre-session cookie for its CSRF token.
pub async fn form(State(console): State<Console>, parts: Parts) -> Result<Response, PageError> {
    let (identifier, fresh) = match cookie_value(&parts, pre_session_cookie(&console.config)) {
        Some(id) if session::well_formed(&id) => (id, false),
        _ => (session::new_identifier().map_err(PageError::internal)?, true),
    };
    sign_in_page(&console, &identifier, fresh, StatusCode::OK, None)
}

fn sign_in_page(
    console: &Console,
    identifier: &str,
    set: bool,
    status: StatusCode,
    problem: Option<&str>,
) -> Result<Response, PageError> {
    let html = page(SignInPage { csrf: session::csrf_token(identifier), problem })?;
    let mut resp = (status, html).into_response();
    if set {
        let cookie =
            set_cookie(&console.config, pre_session_cookie(&console.config), identifier, Some(PRE_SESSION_SECS));
        resp.headers_mut().append(header::SET_COOKIE, header_value(&cookie)?);
    }
    Ok(resp)
}

fn header_value(text: &str) -> Result<HeaderValue, PageError> {
    HeaderValue::from_str(text).map_err(PageError::internal)
}

#[derive(Deserialize)]
pub struct SignInForm {
    csrf: String,
    email: String,
    password: String,
}

/// Subjects of the throttle: the account (by the email's digest, whether or not it exists) and
/// the client address.
fn subjects(email: &[u8; 32], parts: &Parts) -> ([u8; 32], [u8; 32]) {
    let ip = request_origin(parts).ip;
    (sha256("chimatic.sign-in-account", email), sha256("chimatic.sign-in-client", ip.as_bytes()))
}

pub async fn submit(
    State(console): State<Console>,
    parts: Parts,
    Form(form): Form<SignInForm>,
) -> Result<Response, PageError> {
    let pre = cookie_value(&parts, pre_session_cookie(&console.config)).filter(|id| session::well_formed(id));
    let Some(pre) = pre.filter(|id| same_origin(&parts, &console.config) && session::csrf_matches(id, &form.csrf))
    else {
        return Err(PageError::forged());
    };
    let control = &console.app.control;
    let now = console.app.clock.now();
    let email = EmailAddress::parse(form.email.trim()).ok();
    let digest = email.as_ref().map(email_digest).unwrap_or([0; 32]);
    let masked = email.as_ref().map(EmailAddress::masked).unwrap_or_default();
    let (account, client) = subjects(&digest, &parts);
    let (account_row, client_row) =
        (control.sign_in_failures(&account).await?, control.sign_in_failures(&client).await?);
    let user = match &email {
        Some(_) => control.user_by_email(&digest).await?,
        None => None,
    };
    let origin = request_origin(&parts);
    let by = AuditContext {
        actor: Actor::user(user.as_ref().map_or("unknown".to_string(), |u| u.id.to_string()), masked),
        origin,
    };
    let chain = match &user {
        Some(u) => control.memberships_of(u.id).await?.first().map(|m| m.workspace_id),
        None => None,
    };
    let target = user.as_ref().map_or("unknown".to_string(), |u| u.id.to_string());
    if ACCOUNT.locked(&account_row, now) || CLIENT.locked(&client_row, now) {
        let event = by.event(now, actions::SIGN_IN_LOCKED, "user", &target).failed();
        control.audit().record(chain.unwrap_or_else(system_workspace), event).await?;
        return sign_in_page(&console, &pre, false, StatusCode::TOO_MANY_REQUESTS, Some(THROTTLED));
    }
    let verified = verify(&form.password, user.as_ref()).await?;
    let admitted = match (verified, &user, chain) {
        (true, Some(u), Some(ws)) => Some((u, ws)),
        _ => None,
    };
    let Some((user, ws)) = admitted else {
        control.set_sign_in_failures(&account, ACCOUNT.failed(&account_row, now)).await?;
        control.set_sign_in_failures(&client, CLIENT.failed(&client_row, now)).await?;
        let event = by.event(now, actions::SIGN_IN_FAILED, "user", &target).failed();
        control.audit().record(chain.unwrap_or_else(system_workspace), event).await?;
        return sign_in_page(&console, &pre, false, StatusCode::UNAUTHORIZED, Some(WRONG));
    };
    control.clear_sign_in_failures(&account).await?;
    start_session(&console, user, ws, now, &by).await
}

/// Checks the password against the user's hash, or does the same work against nothing.
async fn verify(password: &str, user: Option<&UserRow>) -> Result<bool, PageError> {
    if password.len() > password::MAX_BYTES {
        return Ok(false);
    }
    let password = password.to_string();
    let hash = user.map(|u| u.password_hash.clone());
    tokio::task::spawn_blocking(move || match hash {
        Some(h) => password::verify(&password, &h),
        None => {
            password::verify_nothing(&password);
            false
        }
    })
    .await
    .map_err(PageError::internal)
}

/// A new session with a new identifier (never the pre-session's), and the pre-session gone.
async fn start_session(
    console: &Console,
    user: &UserRow,
    ws: chimatic_domain::WorkspaceId,
    now: Timestamp,
    by: &AuditContext,
) -> Result<Response, PageError> {
    let identifier = session::new_identifier().map_err(PageError::internal)?;
    console.app.control.start_session(&session::digest(&identifier), user.id, ws, now, by).await?;
    let config = &console.config;
    let mut headers = HeaderMap::new();
    headers.append(header::SET_COOKIE, header_value(&set_cookie(config, session_cookie(config), &identifier, None))?);
    headers.append(header::SET_COOKIE, header_value(&set_cookie(config, pre_session_cookie(config), "", Some(0)))?);
    Ok((headers, Redirect::to("/console/")).into_response())
}

#[derive(Deserialize)]
pub struct NoFields {}

pub async fn sign_out(State(console): State<Console>, change: Change<NoFields>) -> Result<Response, PageError> {
    end(&console, change, false).await
}

pub async fn sign_out_everywhere(
    State(console): State<Console>,
    change: Change<NoFields>,
) -> Result<Response, PageError> {
    end(&console, change, true).await
}

async fn end(console: &Console, change: Change<NoFields>, everywhere: bool) -> Result<Response, PageError> {
    let m = change.member;
    let now = console.app.clock.now();
    console.app.control.end_session(&m.digest, Some(&m.session), everywhere, now, &m.audit).await?;
    let config = &console.config;
    let gone = set_cookie(config, session_cookie(config), "", Some(0));
    Ok(([(header::SET_COOKIE, header_value(&gone)?)], Redirect::to("/console/sign-in")).into_response())
}
