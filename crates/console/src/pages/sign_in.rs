//! Signing in and out. A failed sign-in says only that the email or password is not right,
//! after the same argon2id work whether or not the account exists; failures are throttled per
//! account and per client address, and every outcome is audited. An account with a second
//! factor signs in in two steps: the password opens a short challenge bound to the browser's
//! pre-session, and a TOTP or recovery code finishes it.

use askama::Template;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chimatic_api::auth::request_origin;
use chimatic_audit::{Actor, AuditContext, actions, system_workspace};
use chimatic_crypto::digest::sha256;
use chimatic_domain::{EmailAddress, Role, Timestamp, UserId, WorkspaceId};
use chimatic_store::{ChallengeRow, UserRow};
use serde::Deserialize;
use serde_json::json;

use super::{page, two_factor};
use crate::Console;
use crate::auth::password::{self, email_digest};
use crate::auth::session;
use crate::auth::throttle::{ACCOUNT, CLIENT};
use crate::error::PageError;
use crate::member::{
    Change, NoFields, PreChange, PreSession, header_value, pre_session_cookie, session_cookie, set_cookie,
};

/// How long after the password the second factor may be given.
const CHALLENGE_LIFETIME: std::time::Duration = std::time::Duration::from_secs(5 * 60);

const WRONG: &str = "The email or password is not right.";
const WRONG_CODE: &str = "That code is not right, or was used already.";
const SSO_REQUIRED: &str = "This workspace signs in through its identity provider: use the button below.";
const THROTTLED: &str = "Too many failed attempts. Wait a few minutes, then try again.";

#[derive(Template)]
#[template(path = "sign_in.html")]
pub struct SignInPage<'a> {
    csrf: String,
    problem: Option<&'a str>,
    /// The identity provider's name, when one is configured.
    provider: Option<&'a str>,
}

impl<'a> SignInPage<'a> {
    pub fn new(console: &'a Console, csrf: String, problem: Option<&'a str>) -> Self {
        Self { csrf, problem, provider: console.config.oidc.as_ref().map(|p| p.name.as_str()) }
    }
}

#[derive(Template)]
#[template(path = "sign_in_code.html")]
struct CodePage<'a> {
    csrf: String,
    problem: Option<&'a str>,
}

/// The sign-in form, with a pre-session cookie for its CSRF token.
pub async fn form(State(console): State<Console>, pre: PreSession) -> Result<Response, PageError> {
    let html = page(SignInPage::new(&console, pre.csrf(), None))?;
    pre.attach(&console.config, html.into_response())
}

pub fn shown(status: StatusCode, template: impl Template) -> Result<Response, PageError> {
    Ok((status, page(template)?).into_response())
}

#[derive(Deserialize)]
pub struct SignInForm {
    email: String,
    password: String,
}

/// Throttle subjects: the account (by the email's digest, whether or not it exists) and the
/// client address.
fn subjects(email: &[u8; 32], parts: &Parts) -> ([u8; 32], [u8; 32]) {
    let ip = request_origin(parts).ip;
    (sha256("chimatic.sign-in-account", email), sha256("chimatic.sign-in-client", ip.as_bytes()))
}

/// A sign-in attempt's subjects and how to audit it.
struct Attempt {
    account: [u8; 32],
    client: [u8; 32],
    by: AuditContext,
    target: String,
    chain: WorkspaceId,
}

impl Attempt {
    async fn locked(&self, console: &Console, now: Timestamp) -> Result<bool, PageError> {
        let control = &console.app.control;
        let (a, c) = (control.sign_in_failures(&self.account).await?, control.sign_in_failures(&self.client).await?);
        if ACCOUNT.locked(&a, now) || CLIENT.locked(&c, now) {
            let event = self.by.event(now, actions::SIGN_IN_LOCKED, "user", &self.target).failed();
            control.audit().record(self.chain, event).await?;
            return Ok(true);
        }
        Ok(false)
    }

    async fn failed(&self, console: &Console, now: Timestamp, factor: &str) -> Result<(), PageError> {
        let control = &console.app.control;
        let (a, c) = (control.sign_in_failures(&self.account).await?, control.sign_in_failures(&self.client).await?);
        control.set_sign_in_failures(&self.account, ACCOUNT.failed(&a, now)).await?;
        control.set_sign_in_failures(&self.client, CLIENT.failed(&c, now)).await?;
        let event = self
            .by
            .event(now, actions::SIGN_IN_FAILED, "user", &self.target)
            .with_detail(json!({"factor": factor}))
            .failed();
        control.audit().record(self.chain, event).await?;
        Ok(())
    }
}

pub async fn submit(State(console): State<Console>, change: PreChange<SignInForm>) -> Result<Response, PageError> {
    let PreChange { pre, form, parts } = change;
    let control = &console.app.control;
    let now = console.app.clock.now();
    let email = EmailAddress::parse(form.email.trim()).ok();
    let digest = email.as_ref().map(email_digest).unwrap_or([0; 32]);
    let user = match &email {
        Some(_) => control.user_by_email(&digest).await?,
        None => None,
    };
    let membership = match &user {
        Some(u) => control.memberships_of(u.id).await?.into_iter().next(),
        None => None,
    };
    let chain = membership.as_ref().map(|m| m.workspace_id);
    let (account, client) = subjects(&digest, &parts);
    let masked = email.as_ref().map(EmailAddress::masked).unwrap_or_default();
    let target = user.as_ref().map_or("unknown".to_string(), |u| u.id.to_string());
    let by = AuditContext { actor: Actor::user(target.clone(), masked), origin: request_origin(&parts) };
    let attempt = Attempt { account, client, by, target, chain: chain.unwrap_or_else(system_workspace) };
    let csrf = pre.csrf();
    if attempt.locked(&console, now).await? {
        return shown(StatusCode::TOO_MANY_REQUESTS, SignInPage::new(&console, csrf, Some(THROTTLED)));
    }
    let verified = verify(&form.password, user.as_ref()).await?;
    let (Some(user), Some(ws), true) = (&user, chain, verified) else {
        attempt.failed(&console, now, "password").await?;
        return shown(StatusCode::UNAUTHORIZED, SignInPage::new(&console, csrf, Some(WRONG)));
    };
    let second_factor = control.second_factor(user.id).await?.is_some();
    // Single sign-on required: only an owner with a second factor may still use a password.
    let owner = membership.as_ref().is_some_and(|m| m.role == Role::Owner);
    if !(owner && second_factor) && control.sso_policy(ws).await?.required {
        attempt.failed(&console, now, "sso_required").await?;
        return shown(StatusCode::FORBIDDEN, SignInPage::new(&console, csrf, Some(SSO_REQUIRED)));
    }
    if second_factor {
        return challenge(&console, &pre, user.id, ws, now, None).await;
    }
    control.clear_sign_in_failures(&account).await?;
    start_session(&console, user.id, ws, now, &attempt.by, None).await
}

#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
}

/// The second step: a TOTP code (accepted once) or a recovery code (used up).
pub async fn submit_code(State(console): State<Console>, change: PreChange<CodeForm>) -> Result<Response, PageError> {
    let PreChange { pre, form, parts } = change;
    let control = &console.app.control;
    let now = console.app.clock.now();
    let challenge = control.challenge(&pre.digest()).await?.filter(|c| now < c.expires_at);
    let Some(challenge) = challenge else {
        return Ok(Redirect::to("/console/sign-in").into_response());
    };
    let user = control.user(challenge.user_id).await?;
    let (account, client) = subjects(&user.email_digest, &parts);
    let by = AuditContext { actor: Actor::user(user.id, user.email_masked.clone()), origin: request_origin(&parts) };
    let ws = challenge.workspace_id;
    let attempt = Attempt { account, client, by, target: user.id.to_string(), chain: ws };
    let csrf = pre.csrf();
    if attempt.locked(&console, now).await? {
        control.end_challenge(&pre.digest()).await?;
        return shown(StatusCode::TOO_MANY_REQUESTS, SignInPage::new(&console, csrf, Some(THROTTLED)));
    }
    let (accepted, factor) = two_factor::verify(&console, &user, &form.code, ws, now, &attempt.by).await?;
    if !accepted {
        attempt.failed(&console, now, factor).await?;
        return shown(StatusCode::UNAUTHORIZED, CodePage { csrf, problem: Some(WRONG_CODE) });
    }
    control.end_challenge(&pre.digest()).await?;
    control.clear_sign_in_failures(&account).await?;
    start_session(&console, user.id, ws, now, &attempt.by, challenge.provider.as_deref()).await
}

/// The first step was right and the account has a second factor: a short challenge bound to
/// this browser's pre-session, and the code form.
pub async fn challenge(
    console: &Console,
    pre: &PreSession,
    user: UserId,
    ws: WorkspaceId,
    now: Timestamp,
    provider: Option<String>,
) -> Result<Response, PageError> {
    let row = ChallengeRow { user_id: user, workspace_id: ws, expires_at: now.plus(CHALLENGE_LIFETIME), provider };
    console.app.control.put_challenge(&pre.digest(), row).await?;
    shown(StatusCode::OK, CodePage { csrf: pre.csrf(), problem: None })
}

/// Checks the password against the user's hash, or does the same work against nothing.
pub async fn verify(password: &str, user: Option<&UserRow>) -> Result<bool, PageError> {
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

/// A new session with a new identifier (never the pre-session's), and the pre-session gone;
/// `provider` names the identity provider the person came through (`None`: a password).
pub async fn start_session(
    console: &Console,
    user: UserId,
    ws: WorkspaceId,
    now: Timestamp,
    by: &AuditContext,
    provider: Option<&str>,
) -> Result<Response, PageError> {
    let identifier = session::new_identifier().map_err(PageError::internal)?;
    console.app.control.start_session(&session::digest(&identifier), user, ws, now, by, provider).await?;
    let config = &console.config;
    let mut headers = HeaderMap::new();
    headers.append(header::SET_COOKIE, header_value(&set_cookie(config, session_cookie(config), &identifier, None))?);
    headers.append(header::SET_COOKIE, header_value(&set_cookie(config, pre_session_cookie(config), "", Some(0)))?);
    Ok((headers, Redirect::to("/console/")).into_response())
}

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
