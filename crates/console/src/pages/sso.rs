//! Signing in through an OpenID Connect provider. The flow's state (256 random bits, kept as a
//! digest) is bound to the browser's pre-session and used once within 10 minutes; the code is
//! exchanged with its PKCE verifier and the ID token validated (signature, `iss`, `aud`, `exp`,
//! `iat`, `nonce`, a verified email) by `chimatic-oauth`. A verified email signs in only to an
//! existing user (linked on first use), to a pending invitation, or as a new member of a
//! workspace whose owner allowed the email's domain; an account with a second factor still
//! gives its code.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use chimatic_api::auth::request_origin;
use chimatic_audit::{Actor, AuditContext, actions, system_workspace};
use chimatic_crypto::digest::sha256;
use chimatic_domain::{EmailAddress, UserId, WorkspaceId};
use chimatic_oauth::{FlowSecrets, OidcProvider, VerifiedIdentity};
use chimatic_store::{Joining, SsoFlowRow};
use serde::Deserialize;
use serde_json::json;

use super::sign_in::{SignInPage, challenge, shown, start_session};
use crate::Console;
use crate::auth::ProviderCallback;
use crate::auth::password::{EmailIdentity, email_digest};
use crate::auth::session;
use crate::error::PageError;
use crate::member::PreSession;

/// How long the provider's page may take.
const FLOW_LIFETIME: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// A password hash no password matches: people who came through a provider have none until
/// they set one with a reset link.
const NO_PASSWORD: &str = "!sso";

const NOT_COMPLETED: &str = "That sign-in could not be completed (it expired, was used already, or was started in \
                             another browser). Start again.";
const REFUSED: &str = "The identity provider did not sign you in.";
const NO_ACCOUNT: &str = "There is no Chimatic account or pending invitation for that identity.";

fn state_digest(state: &str) -> [u8; 32] {
    sha256("chimatic.console-oidc-state", state.as_bytes())
}

fn provider(console: &Console) -> Result<&OidcProvider, PageError> {
    console.config.oidc.as_ref().ok_or_else(|| PageError::Shown {
        status: StatusCode::NOT_FOUND,
        message: "sign-in through an identity provider is not configured".into(),
    })
}

#[derive(Deserialize)]
pub struct Start {
    #[serde(default)]
    csrf: String,
}

/// Starts a flow from the sign-in page: to the provider, with state, nonce and PKCE challenge.
/// A link with the pre-session's CSRF token, not a form: browsers hold a form's redirect to
/// the provider's origin to the page's `form-action 'self'`.
pub async fn start(
    State(console): State<Console>,
    pre: PreSession,
    Query(start): Query<Start>,
) -> Result<Response, PageError> {
    let provider = provider(&console)?;
    if pre.fresh || !session::csrf_matches(&pre.identifier, &start.csrf) {
        return Err(PageError::forged());
    }
    let fresh = || session::new_identifier().map_err(PageError::internal);
    let (state, nonce, pkce_verifier) = (fresh()?, fresh()?, fresh()?);
    let secrets = FlowSecrets { state: &state, nonce: &nonce, pkce_verifier: &pkce_verifier };
    let url = match provider.authorization_url(&secrets).await {
        Ok(url) => url,
        Err(e) => {
            tracing::warn!(error = %e, "OpenID Connect sign-in could not start");
            let page = SignInPage::new(&console, pre.csrf(), Some(REFUSED));
            return shown(StatusCode::BAD_GATEWAY, page);
        }
    };
    let now = console.app.clock.now();
    let row =
        SsoFlowRow { pre_session_digest: pre.digest(), nonce, pkce_verifier, expires_at: now.plus(FLOW_LIFETIME) };
    console.app.control.put_sso_flow(&state_digest(&state), &row, now).await?;
    Ok(Redirect::to(url.as_str()).into_response())
}

/// The provider sends the browser back here with a code (or an error) and the state.
pub async fn callback(
    State(console): State<Console>,
    pre: PreSession,
    Query(back): Query<ProviderCallback>,
    parts: Parts,
) -> Result<Response, PageError> {
    let provider = provider(&console)?;
    let now = console.app.clock.now();
    let refused = |status, problem| {
        let page = SignInPage::new(&console, pre.csrf(), Some(problem));
        pre.attach(&console.config, shown(status, page)?)
    };
    // The state is taken first, whatever came with it: a flow is used once.
    let flow = match pre.fresh || back.state.is_empty() {
        true => None,
        false => console.app.control.take_sso_flow(&state_digest(&back.state), &pre.digest(), now).await?,
    };
    let Some(flow) = flow else {
        tracing::warn!("OpenID Connect callback with an unknown, used, expired or other browser's state");
        return refused(StatusCode::BAD_REQUEST, NOT_COMPLETED);
    };
    if !back.error.is_empty() || back.code.is_empty() {
        return refused(StatusCode::UNAUTHORIZED, REFUSED);
    }
    let secrets = FlowSecrets { state: &back.state, nonce: &flow.nonce, pkce_verifier: &flow.pkce_verifier };
    let identity = match provider.finish(&back.code, &secrets, now.0.div_euclid(1000)).await {
        Ok(identity) => identity,
        Err(e) => {
            tracing::warn!(error = %e, "OpenID Connect sign-in refused");
            let by = AuditContext { actor: Actor::user("unknown", String::new()), origin: request_origin(&parts) };
            record_failure(&console, &by, system_workspace(), provider, e.to_string()).await?;
            return refused(StatusCode::UNAUTHORIZED, REFUSED);
        }
    };
    let Some((user, ws, by)) = account(&console, provider, &identity, &parts).await? else {
        return refused(StatusCode::FORBIDDEN, NO_ACCOUNT);
    };
    if console.app.control.second_factor(user).await?.is_some() {
        return challenge(&console, &pre, user, ws, now, Some(provider.name.clone())).await;
    }
    start_session(&console, user, ws, now, &by, Some(&provider.name)).await
}

async fn record_failure(
    console: &Console,
    by: &AuditContext,
    chain: WorkspaceId,
    provider: &OidcProvider,
    reason: String,
) -> Result<(), PageError> {
    let now = console.app.clock.now();
    let detail = json!({"factor": "oidc", "provider": provider.name, "reason": reason});
    let event = by.event(now, actions::SIGN_IN_FAILED, "user", "unknown").with_detail(detail).failed();
    console.app.control.audit().record(chain, event).await?;
    Ok(())
}

/// The user behind a verified identity and the workspace to open: linked before, found by the
/// verified email (and linked now), or made from a pending invitation for that email.
async fn account(
    console: &Console,
    provider: &OidcProvider,
    identity: &VerifiedIdentity,
    parts: &Parts,
) -> Result<Option<(UserId, WorkspaceId, AuditContext)>, PageError> {
    let control = &console.app.control;
    let now = console.app.clock.now();
    let Ok(email) = EmailAddress::parse(identity.email.expose()) else { return Ok(None) };
    let digest = email_digest(&email);
    let origin = request_origin(parts);
    let linked = control.user_by_identity(&identity.issuer, &identity.subject).await?;
    let user = match linked {
        Some(id) => Some(control.user(id).await?),
        None => control.user_by_email(&digest).await?,
    };
    if let Some(user) = user {
        let by = AuditContext { actor: Actor::user(user.id, user.email_masked.clone()), origin };
        let Some(ws) = control.memberships_of(user.id).await?.first().map(|m| m.workspace_id) else {
            return Ok(None);
        };
        if linked.is_none() {
            control.link_identity(&identity.issuer, &identity.subject, user.id, now).await?;
        }
        return Ok(Some((user.id, ws, by)));
    }
    let row = EmailIdentity::of(&email).user(NO_PASSWORD.into(), now);
    let by = AuditContext { actor: Actor::user(row.id, row.email_masked.clone()), origin };
    let ws = if let Some(invitation) = control.pending_invitation_for(&digest, now).await? {
        control.accept_invitation(&invitation, Joining::NewUser(&row), now, &by).await?;
        invitation.workspace_id
    } else if let Some((ws, role)) = control.sso_domain_workspace(&domain_of(&email)).await? {
        control.create_user(&row, ws, role, &by).await?;
        ws
    } else {
        let by = AuditContext { actor: Actor::user("unknown", EmailAddress::masked(&email)), origin: by.origin };
        record_failure(console, &by, system_workspace(), provider, "no account, invitation or allowed domain".into())
            .await?;
        return Ok(None);
    };
    control.link_identity(&identity.issuer, &identity.subject, row.id, now).await?;
    Ok(Some((row.id, ws, by)))
}

fn domain_of(email: &EmailAddress) -> String {
    email.expose().rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default()
}
