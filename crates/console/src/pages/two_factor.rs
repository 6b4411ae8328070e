//! Second factors from the member's side: enrolling a TOTP app (QR code drawn here, the manual
//! key, a first code to confirm), ten recovery codes shown once, disabling with a fresh code,
//! and checking a code at sign-in. The shared secret lives in the primary region's vault.

use askama::Template;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use chimatic_audit::AuditContext;
use chimatic_domain::{Timestamp, WorkspaceId};
use chimatic_store::{Store, UserRow, UserSecret};
use serde::Deserialize;

use super::{Frame, frame, page};
use crate::Console;
use crate::auth::two_factor::{self, looks_like_recovery_code, recovery_digest};
use crate::error::PageError;
use crate::member::{Change, Member};

/// The store whose vault holds second-factor secrets: the primary region's.
fn vault(console: &Console) -> Result<&Store, PageError> {
    console.app.regions.get(&console.config.secrets_region).map(|plane| plane.store.as_ref()).ok_or_else(|| {
        PageError::unavailable(
            "two-factor authentication needs the primary region's credential vault, which this node does not serve",
        )
    })
}

/// Checks a code for the user: a recovery code is used up, a TOTP code's time step is
/// accepted once. Returns whether it was right and which kind it was.
pub async fn verify(
    console: &Console,
    user: &UserRow,
    code: &str,
    ws: WorkspaceId,
    now: Timestamp,
    by: &AuditContext,
) -> Result<(bool, &'static str), PageError> {
    let control = &console.app.control;
    if looks_like_recovery_code(code) {
        let used = control.use_recovery_code(user.id, &recovery_digest(code), ws, now, by).await?;
        return Ok((used, "recovery_code"));
    }
    let Some(secret) = vault(console)?.user_secret(user.id, UserSecret::Totp).await? else {
        return Ok((false, "totp"));
    };
    let totp = two_factor::totp(&secret, &user.email_masked).map_err(PageError::internal)?;
    let accepted = match two_factor::check(&totp, code, now) {
        Some(step) => control.accept_step(user.id, step).await?,
        None => false,
    };
    Ok((accepted, "totp"))
}

#[derive(Template)]
#[template(path = "two_factor_enrol.html")]
struct EnrolPage<'a> {
    frame: Frame,
    qr_svg: String,
    manual_key: String,
    required: bool,
    problem: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "two_factor_codes.html")]
struct CodesPage {
    frame: Frame,
    codes: Vec<String>,
}

/// A fresh secret, kept pending until a first code confirms it, shown as a QR code and a key.
pub async fn enrol_form(State(console): State<Console>, member: Member) -> Result<Response, PageError> {
    enrol_page(&console, &member, None).await
}

async fn enrol_page(console: &Console, member: &Member, problem: Option<&str>) -> Result<Response, PageError> {
    let control = &console.app.control;
    let user = member.session.user_id;
    if control.second_factor(user).await?.is_some() {
        return Ok(Redirect::to("/console/account").into_response());
    }
    let secret = two_factor::new_secret().map_err(PageError::internal)?;
    let now = console.app.clock.now();
    vault(console)?.put_user_secret(user, UserSecret::PendingTotp, &secret, now).await?;
    let totp = two_factor::totp(&secret, &member.session.email_masked).map_err(PageError::internal)?;
    let html = page(EnrolPage {
        frame: frame(console, member).await?,
        qr_svg: two_factor::qr_svg(&totp).map_err(PageError::internal)?,
        manual_key: two_factor::manual_key(&secret),
        required: member.session.must_enrol,
        problem,
    })?;
    let status =
        if problem.is_some() { axum::http::StatusCode::UNPROCESSABLE_ENTITY } else { axum::http::StatusCode::OK };
    Ok((status, html).into_response())
}

#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
}

/// Confirms the pending secret with a code from the app: the factor is on, the recovery codes
/// are shown once, and the session gets a new identifier.
pub async fn enrol(State(console): State<Console>, change: Change<CodeForm>) -> Result<Response, PageError> {
    let Change { mut member, form } = change;
    let control = &console.app.control;
    let user = member.session.user_id;
    let store = vault(&console)?;
    let Some(secret) = store.user_secret(user, UserSecret::PendingTotp).await? else {
        return Ok(Redirect::to("/console/account/two-factor").into_response());
    };
    let now = console.app.clock.now();
    let totp = two_factor::totp(&secret, &member.session.email_masked).map_err(PageError::internal)?;
    let Some(step) = two_factor::check(&totp, &form.code, now) else {
        return enrol_page(&console, &member, Some("That code is not right: scan the new QR code and try again."))
            .await;
    };
    let codes = two_factor::new_recovery_codes().map_err(PageError::internal)?;
    let digests: Vec<[u8; 32]> = codes.iter().map(|c| recovery_digest(c)).collect();
    store.put_user_secret(user, UserSecret::Totp, &secret, now).await?;
    store.delete_user_secret(user, UserSecret::PendingTotp).await?;
    control.enrol_second_factor(user, step, &digests, member.session.workspace_id, now, &member.audit).await?;
    let cookie = member.rotate(&console).await?;
    member.session.must_enrol = false;
    let html = page(CodesPage { frame: frame(&console, &member).await?, codes })?;
    Ok(([(header::SET_COOKIE, cookie)], html).into_response())
}

/// Turning the factor off takes a fresh code (or a recovery code), and is refused while the
/// workspace requires one.
pub async fn disable(State(console): State<Console>, change: Change<CodeForm>) -> Result<Response, PageError> {
    let Change { member, form } = change;
    let control = &console.app.control;
    let ws = member.session.workspace_id;
    if control.two_factor_required(ws).await? {
        return Err(PageError::bad_request("this workspace requires a second factor for every member"));
    }
    let user = control.user(member.session.user_id).await?;
    let now = console.app.clock.now();
    let (accepted, _) = verify(&console, &user, &form.code, ws, now, &member.audit).await?;
    if !accepted {
        return Err(PageError::bad_request("that code is not right, or was used already; nothing was changed"));
    }
    control.remove_second_factor(user.id, ws, now, &member.audit).await?;
    vault(&console)?.delete_user_secret(user.id, UserSecret::Totp).await?;
    Ok(Redirect::to("/console/account").into_response())
}

pub fn recovery_left_label(n: u32) -> String {
    match n {
        1 => "1 recovery code left".into(),
        n => format!("{n} recovery codes left"),
    }
}
