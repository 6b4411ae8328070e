//! Connecting provider accounts over OAuth (Slack, Google): the authorization code flow with
//! PKCE S256 and a 256-bit `state`, bound to the API key (here) or console session (the
//! console's pages) that started it, used once within 10 minutes; redirect URIs only from the
//! deployment's allowlist, matched exactly. Tokens go only to the credential vault.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chimatic_crypto::digest::sha256;
use chimatic_delivery::connected_credentials;
use chimatic_domain::{EmailAddress, IntegrationId, IntegrationSettings, OAuthProvider, Scope, Timestamp};
use chimatic_oauth::{ConnectApp, ConnectError, Revoked};
use chimatic_store::ConnectFlowRow;
use chimatic_store::records::Integration;
use serde::{Deserialize, Serialize};

use super::integrations::{IntegrationView, view};
use crate::auth::{CallerId, Tenant};
use crate::body::ApiJson;
use crate::params::checked_name;
use crate::{ApiError, AppState, ErrorCode};

/// How long the provider's consent page may take.
pub const FLOW_LIFETIME: std::time::Duration = std::time::Duration::from_secs(10 * 60);

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Team Slack", "redirect_uri": "https://ops.example.com/oauth/callback"}))]
pub struct StartConnection {
    /// The integration's name.
    #[schema(value_type = chimatic_domain::patterns::Label)]
    pub name: String,
    /// Where the provider sends the browser back with `code` and `state`: one of this
    /// deployment's allowed redirect URIs for the provider, exactly. Hand both to
    /// `POST /v1/integrations/oauth/{provider}/finish` with the same API key.
    #[schema(min_length = 1, max_length = 2048)]
    pub redirect_uri: String,
    /// Google: the address mail is sent from (the connected account's, or one of its aliases).
    pub send_as: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"authorization_url": "https://slack.com/oauth/v2/authorize?response_type=code&client_id=1234567890.0987654321&state=ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&redirect_uri=https%3A%2F%2Fops.example.com%2Foauth%2Fcallback&scope=chat%3Awrite", "expires_at": "2024-11-03T06:51:14.931Z"}))]
#[schema(example = json!({"authorization_url": "https://slack.com/oauth/v2/authorize?response_type=code&client_id=1234567890.0987654321&state=ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&redirect_uri=https%3A%2F%2Fops.example.com%2Foauth%2Fcallback&scope=chat%3Awrite", "expires_at": "2024-11-03T06:51:14.931Z"}))]
pub struct ConnectionStarted {
    /// Open this in the browser of the person who connects the account.
    pub authorization_url: String,
    /// The flow must be finished before this (RFC 3339).
    pub expires_at: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"state": "4f2a…", "code": "the code the provider sent"}))]
pub struct FinishConnection {
    /// The `state` the provider sent back.
    #[schema(min_length = 1, max_length = 512)]
    pub state: String,
    /// The `code` the provider sent back.
    #[schema(min_length = 1, max_length = 4096)]
    pub code: String,
}

/// What a connection will make, as asked at its start.
pub struct NewConnection<'a> {
    pub provider: OAuthProvider,
    pub name: &'a str,
    pub redirect_uri: &'a str,
    pub send_as: Option<&'a str>,
}

/// A flow's binding to the API key or console session that started it.
pub fn key_binding(caller: &CallerId) -> [u8; 32] {
    sha256("chimatic.connect-flow.caller", caller.to_string().as_bytes())
}

pub fn session_binding(session_digest: &[u8; 32]) -> [u8; 32] {
    sha256("chimatic.connect-flow.session", session_digest)
}

fn state_digest(state: &str) -> [u8; 32] {
    sha256("chimatic.connect-flow.state", state.as_bytes())
}

fn random_token() -> Result<String, ApiError> {
    let bytes = chimatic_crypto::random::bytes::<32>().map_err(ApiError::internal)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub fn parse_provider(text: &str) -> Result<OAuthProvider, ApiError> {
    OAuthProvider::parse(text).ok_or_else(ApiError::not_found)
}

fn app(state: &AppState, provider: OAuthProvider) -> Result<&ConnectApp, ApiError> {
    state.connections.app(provider).ok_or_else(|| {
        ApiError::new(
            ErrorCode::ProviderNotConfigured,
            format!(
                "this deployment has no OAuth app for {} (CHIMATIC_OAUTH_{}_…)",
                provider.title(),
                provider.as_str().to_uppercase()
            ),
        )
    })
}

/// Checks a connection's start and records its flow; the provider's authorization URL.
pub async fn begin(
    state: &AppState,
    tenant: &Tenant,
    bound_to: [u8; 32],
    new: NewConnection<'_>,
) -> Result<(url::Url, Timestamp), ApiError> {
    tenant.require(Scope::IntegrationsWrite)?;
    let app = app(state, new.provider)?;
    let name = checked_name(new.name)?;
    if !app.allows_redirect(new.redirect_uri) {
        return Err(ApiError::new(
            ErrorCode::RedirectUriNotAllowed,
            format!(
                "`redirect_uri` is not one of this deployment's redirect URIs for {} (matched exactly)",
                new.provider.title()
            ),
        ));
    }
    let send_as = match (new.provider, new.send_as.map(str::trim)) {
        (OAuthProvider::Google, Some(address)) => Some(
            EmailAddress::parse(address)
                .map_err(|e| ApiError::new(ErrorCode::InvalidAddress, format!("`send_as`: {e}")))?
                .expose()
                .to_string(),
        ),
        (OAuthProvider::Google, None) => {
            return Err(ApiError::new(ErrorCode::InvalidAddress, "`send_as` is required for Google"));
        }
        (OAuthProvider::Slack, Some(_)) => {
            return Err(ApiError::new(ErrorCode::InvalidRequest, "`send_as` is only for Google"));
        }
        (OAuthProvider::Slack, None) => None,
    };
    let (flow_state, pkce_verifier) = (random_token()?, random_token()?);
    let url = app.authorization_url(&flow_state, &pkce_verifier, new.redirect_uri).map_err(ApiError::internal)?;
    let now = state.clock.now();
    let expires_at = now.plus(FLOW_LIFETIME);
    let row = ConnectFlowRow {
        provider: new.provider,
        bound_to,
        redirect_uri: new.redirect_uri.to_string(),
        pkce_verifier,
        name: name.to_string(),
        send_as,
        expires_at,
    };
    state.control.put_connect_flow(tenant.workspace_id, &state_digest(&flow_state), &row, now).await?;
    tracing::info!(workspace = %tenant.workspace_id, provider = new.provider.as_str(), "OAuth connection started");
    Ok((url, expires_at))
}

/// Takes the callback's flow (once, only for its binding; for `expected`'s provider when
/// given), exchanges the code with the flow's PKCE verifier and makes the integration. Nothing
/// is stored unless all of it succeeds.
pub async fn complete(
    state: &AppState,
    tenant: &Tenant,
    bound_to: [u8; 32],
    expected: Option<OAuthProvider>,
    flow_state: &str,
    code: &str,
) -> Result<Integration, ApiError> {
    tenant.require(Scope::IntegrationsWrite)?;
    let now = state.clock.now();
    let flow = match flow_state.is_empty() {
        true => None,
        false => {
            let digest = state_digest(flow_state);
            state.control.take_connect_flow(tenant.workspace_id, &digest, &bound_to, now).await?
        }
    };
    let flow = flow.filter(|f| expected.is_none_or(|p| p == f.provider));
    let Some(flow) = flow else {
        tracing::warn!(workspace = %tenant.workspace_id, "OAuth callback with an unknown, used, expired or foreign state");
        return Err(ApiError::new(
            ErrorCode::OAuthStateInvalid,
            "that connection could not be completed: its state is unknown, used, expired, or was started by \
             another session or key; start again",
        ));
    };
    let provider = flow.provider;
    let app = app(state, provider)?;
    if code.is_empty() {
        return Err(refused("the provider sent no authorization code"));
    }
    let tokens = app.exchange(code, &flow.pkce_verifier, &flow.redirect_uri).await.map_err(|e| match e {
        ConnectError::Refused(_) => refused("the provider refused the authorization code"),
        ConnectError::Unavailable => unavailable(provider),
        ConnectError::Misconfigured(why) => ApiError::internal(why),
    })?;
    let api_base = (!app.api_base_is_default()).then(|| app.api_base().to_string());
    let settings = match provider {
        OAuthProvider::Slack => IntegrationSettings::Slack { api_base, connected: true },
        OAuthProvider::Google => IntegrationSettings::Gmail { from: flow.send_as.unwrap_or_default(), api_base },
    };
    let credentials = connected_credentials(provider, tokens, None, now);
    let integration = tenant
        .store
        .create_integration(tenant.workspace_id, &flow.name, settings, &credentials, now, &tenant.audit)
        .await?;
    tracing::info!(workspace = %tenant.workspace_id, integration = %integration.id, provider = provider.as_str(), "OAuth connection made");
    Ok(integration)
}

fn refused(detail: &str) -> ApiError {
    ApiError::new(ErrorCode::OAuthRefused, detail)
}

fn unavailable(provider: OAuthProvider) -> ApiError {
    ApiError::new(ErrorCode::ProviderUnavailable, format!("{} could not be reached; try again", provider.title()))
}

/// Revokes a connected integration's token at its provider and records it; the caller then
/// deletes the integration. If the provider cannot be reached, nothing changes.
pub async fn disconnect(
    state: &AppState,
    tenant: &Tenant,
    id: IntegrationId,
    provider: OAuthProvider,
) -> Result<(), ApiError> {
    let credentials = match tenant.store.integration_credentials(tenant.workspace_id, id).await {
        Ok(c) => c,
        // Nothing left to revoke.
        Err(chimatic_store::StoreError::NotFound) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let Some(revoked) = state.connections.revoke(&credentials).await else { return Ok(()) };
    let revoked = revoked.map_err(|e| ApiError::new(ErrorCode::ProviderUnavailable, e.to_string()))?;
    let already = revoked == Revoked::Already;
    let now = state.clock.now();
    tenant.store.record_token_revoked(tenant.workspace_id, id, provider, already, now, &tenant.audit).await?;
    tracing::info!(workspace = %tenant.workspace_id, integration = %id, provider = provider.as_str(), already, "connection token revoked");
    Ok(())
}

/// Start connecting a provider account (scope `integrations:write`), for set-ups without the
/// console: returns the provider's authorization URL (PKCE S256, minimal scopes: Slack
/// `chat:write`, Google `gmail.send`). The flow is bound to this API key and lasts 10 minutes.
#[utoipa::path(post, path = "/v1/integrations/oauth/{provider}/start", tag = "integrations", security(("bearer" = ["integrations:write"])),
    request_body = StartConnection,
    params(("provider" = String, Path, description = "`slack` or `google`")),
    responses((status = 201, body = ConnectionStarted)),
    extensions(("x-codes" = json!([crate::ErrorCode::InvalidAddress, crate::ErrorCode::InvalidRequest, crate::ErrorCode::ProviderNotConfigured, crate::ErrorCode::RedirectUriNotAllowed]))))]
pub async fn oauth_start(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(provider): Path<String>,
    ApiJson(req): ApiJson<StartConnection>,
) -> Result<(StatusCode, Json<ConnectionStarted>), ApiError> {
    let provider = parse_provider(&provider)?;
    let new =
        NewConnection { provider, name: &req.name, redirect_uri: &req.redirect_uri, send_as: req.send_as.as_deref() };
    let (url, expires_at) = begin(&state, &tenant, key_binding(&tenant.by), new).await?;
    let started = ConnectionStarted { authorization_url: url.to_string(), expires_at: expires_at.to_rfc3339() };
    Ok((StatusCode::CREATED, Json(started)))
}

/// Finish connecting (scope `integrations:write`) with the `state` and `code` the provider sent
/// to the redirect URI, from the API key that started it: the integration is made, its tokens
/// in the vault. A state that is unknown, used, expired or another key's is refused.
#[utoipa::path(post, path = "/v1/integrations/oauth/{provider}/finish", tag = "integrations", security(("bearer" = ["integrations:write"])),
    request_body = FinishConnection,
    params(("provider" = String, Path, description = "`slack` or `google`")),
    responses((status = 201, body = IntegrationView)),
    extensions(("x-codes" = json!([crate::ErrorCode::OAuthRefused, crate::ErrorCode::OAuthStateInvalid, crate::ErrorCode::ProviderNotConfigured, crate::ErrorCode::ProviderUnavailable]))))]
pub async fn oauth_finish(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(provider): Path<String>,
    ApiJson(req): ApiJson<FinishConnection>,
) -> Result<(StatusCode, Json<IntegrationView>), ApiError> {
    let provider = parse_provider(&provider)?;
    let binding = key_binding(&tenant.by);
    let integration = complete(&state, &tenant, binding, Some(provider), &req.state, &req.code).await?;
    Ok((StatusCode::CREATED, Json(view(&integration))))
}
