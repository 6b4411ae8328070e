use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chimatic_crypto::SigningSecret;
use chimatic_domain::{
    EmailAddress, IntegrationCredentials, IntegrationId, IntegrationKind, IntegrationSettings, OAuthProvider,
    PhoneNumber, Scope, Sensitive, WebhookUrl, mask_tail,
};
use chimatic_store::records::Integration;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::auth::Tenant;
use crate::body::ApiJson;
use crate::params::{checked_name, parse_id};
use crate::{ApiError, AppState, ErrorCode};

const MAX_CREDENTIAL_LEN: usize = 4096;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"kind": "smtp", "name": "Transactional mail", "settings": {"host": "smtp.example.com", "port": 587, "security": "starttls", "from": "noreply@example.com"}, "credentials": {"username": "apikey", "password": "smtp-password"}}))]
pub struct CreateIntegration {
    pub kind: IntegrationKind,
    #[schema(value_type = chimatic_domain::patterns::Label)]
    pub name: String,
    /// Per kind. `smtp`: `{"host", "port", "security": "starttls"|"implicit", "from"}`;
    /// `sms` (Twilio-compatible API): `{"base_url", "account_id", "from"}` (E.164);
    /// `slack`: `{}`, or `{"api_base"}` for a Slack-compatible service; `webhook`: `{}` or absent.
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Value>,
    /// Per kind, stored only in the credential vault and never returned. `smtp`:
    /// `{"username", "password"}`, plus `"inbound_signing_secret"` (`whsec_…`) to accept the
    /// email provider's signed bounce and complaint webhooks at `/v1/inbound/{id}`; `sms`: `{"auth_token"}`; `slack`: `{"bot_token"}`;
    /// `webhook`: absent (a signing secret is generated and shown once).
    #[schema(value_type = Option<Object>)]
    pub credentials: Option<Sensitive<Value>>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Transactional mail (EU)"}))]
pub struct UpdateIntegration {
    #[schema(value_type = Option<chimatic_domain::patterns::Label>)]
    pub name: Option<String>,
    /// Replaces all settings (same shape as at creation).
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Value>,
    /// Replaces all credentials (same shape as at creation).
    #[schema(value_type = Option<Object>)]
    pub credentials: Option<Sensitive<Value>>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "int_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "kind": "smtp", "name": "Transactional mail", "settings_masked": {"from": "nor…@…", "host": "smtp.example.com", "port": 587, "security": "starttls"}, "credentials_set": ["username", "password"],
    "connected_through": null, "last_check": {"at": "2024-11-03T07:00:00.120Z", "healthy": true, "error_class": null}, "created_at": "2024-11-03T06:41:14.931Z", "updated_at": "2024-11-03T06:52:40.005Z"}))]
pub struct IntegrationView {
    pub id: IntegrationId,
    pub kind: IntegrationKind,
    pub name: String,
    /// Settings with addresses and account ids masked.
    #[schema(value_type = Object)]
    pub settings_masked: Value,
    /// Which credentials are stored (in the vault); their values are never returned.
    pub credentials_set: Vec<&'static str>,
    /// The provider it was connected to over OAuth (`/v1/integrations/oauth/…`), if it was.
    pub connected_through: Option<OAuthProvider>,
    /// The last health check, if any.
    pub last_check: Option<CheckView>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CheckView {
    /// When the check started.
    pub at: String,
    /// Null while a check is running.
    pub healthy: Option<bool>,
    /// On failure: `connect`, `timeout`, `tls`, `auth_rejected`, `smtp_rejected`, `http_status`,
    /// `forbidden_destination`, `response_body`, `request` or `misconfigured`.
    pub error_class: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"healthy": true, "error_class": null, "latency_ms": 212, "checked_at": "2024-11-03T07:00:00.120Z"}))]
pub struct CheckResult {
    pub healthy: bool,
    pub error_class: Option<String>,
    pub latency_ms: u64,
    pub checked_at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "int_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "kind": "smtp", "name": "Transactional mail", "settings_masked": {"from": "nor…@…", "host": "smtp.example.com", "port": 587, "security": "starttls"},
    "credentials_set": ["username", "password"], "connected_through": null, "last_check": null, "created_at": "2024-11-03T06:41:14.931Z", "updated_at": "2024-11-03T06:41:14.931Z", "signing_secret": null}))]
pub struct IntegrationCreated {
    #[serde(flatten)]
    pub view: IntegrationView,
    /// For `webhook` integrations: the Standard Webhooks signing secret (`whsec_…`), shown once.
    pub signing_secret: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"data": [{"id": "int_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "kind": "smtp", "name": "Transactional mail", "settings_masked": {"from": "nor…@…", "host": "smtp.example.com", "port": 587, "security": "starttls"}, "credentials_set": ["username", "password"], "connected_through": null, "last_check": null, "created_at": "2024-11-03T06:41:14.931Z",
    "updated_at": "2024-11-03T06:41:14.931Z"}, {"id": "int_0192f0c1a2b37c4d8e9f0a1b2c3d4e60", "kind": "webhook", "name": "Customer webhooks", "settings_masked": {}, "credentials_set": ["signing_secret"], "connected_through": null, "last_check": null, "created_at": "2024-11-03T06:41:14.931Z", "updated_at": "2024-11-03T06:41:14.931Z"}]}))]
pub struct IntegrationList {
    pub data: Vec<IntegrationView>,
}

pub(crate) fn view(i: &Integration) -> IntegrationView {
    let settings_masked = match &i.settings {
        IntegrationSettings::Smtp { host, port, security, from } => json!({
            "host": host,
            "port": port,
            "security": security,
            "from": EmailAddress::parse(from).map(|a| a.masked()).unwrap_or_else(|_| "…".into()),
        }),
        IntegrationSettings::Sms { base_url, account_id, from } => json!({
            "base_url": WebhookUrl::parse(base_url, true).map(|u| u.masked()).unwrap_or_else(|_| "…".into()),
            "account_id": mask_tail(account_id, 4),
            "from": PhoneNumber::parse(from).map(|p| p.masked()).unwrap_or_else(|_| "…".into()),
        }),
        IntegrationSettings::Slack { api_base, .. } => match api_base {
            Some(base) => {
                json!({"api_base": WebhookUrl::parse(base, true).map(|u| u.masked()).unwrap_or_else(|_| "…".into())})
            }
            None => json!({}),
        },
        IntegrationSettings::Gmail { from, .. } => json!({
            "from": EmailAddress::parse(from).map(|a| a.masked()).unwrap_or_else(|_| "…".into()),
        }),
        IntegrationSettings::Webhook {} => json!({}),
    };
    IntegrationView {
        id: i.id,
        kind: i.kind,
        name: i.name.clone(),
        settings_masked,
        credentials_set: i.kind.credential_fields().to_vec(),
        connected_through: i.settings.connected_through(),
        last_check: i.last_check.as_ref().map(|c| CheckView {
            at: c.at.to_rfc3339(),
            healthy: c.healthy,
            error_class: c.error_class.clone(),
        }),
        created_at: i.created_at.to_rfc3339(),
        updated_at: i.updated_at.to_rfc3339(),
    }
}

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidIntegration, detail)
}

/// Deserialises `value` as the `kind` variant of `T`; errors name the field, never the value.
fn typed<T: serde::de::DeserializeOwned>(kind: IntegrationKind, value: Value, what: &str) -> Result<T, ApiError> {
    let Value::Object(mut map) = value else { return Err(invalid(format!("`{what}` must be a JSON object"))) };
    if map.contains_key("kind") {
        return Err(invalid(format!("`{what}` has no `kind` field: the kind is given once, at the top level")));
    }
    map.insert("kind".into(), Value::String(kind.as_str().into()));
    serde_path_to_error::deserialize(Value::Object(map)).map_err(|e| {
        let path = e.path().to_string();
        let detail = if path == "." || path.is_empty() {
            format!("`{what}` does not have the fields a `{}` integration needs", kind.as_str())
        } else {
            format!("`{what}.{path}` is missing or invalid for a `{}` integration", kind.as_str())
        };
        invalid(detail)
    })
}

async fn checked_settings(
    kind: IntegrationKind,
    value: Option<Value>,
    state: &AppState,
) -> Result<IntegrationSettings, ApiError> {
    if kind == IntegrationKind::Gmail {
        return Err(connect_instead());
    }
    let settings: IntegrationSettings = typed(kind, value.unwrap_or_else(|| json!({})), "settings")?;
    if settings.connected_through().is_some() {
        return Err(connect_instead());
    }
    match &settings {
        IntegrationSettings::Smtp { host, port, from, .. } => {
            let host_ok = (1..=253).contains(&host.len())
                && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
            if !host_ok {
                return Err(invalid("`settings.host` must be a host name or IP address"));
            }
            if *port == 0 {
                return Err(invalid("`settings.port` must be 1 to 65535"));
            }
            EmailAddress::parse(from).map_err(|e| invalid(format!("`settings.from`: {e}")))?;
        }
        IntegrationSettings::Sms { base_url, account_id, from } => {
            let url = WebhookUrl::parse(base_url, state.destinations.allow_private)
                .map_err(|e| ApiError::new(ErrorCode::InvalidUrl, format!("`settings.base_url`: {e}")))?;
            state
                .destinations
                .check(url.expose())
                .await
                .map_err(|e| ApiError::new(ErrorCode::ForbiddenDestination, e.to_string()))?;
            if account_id.is_empty() || account_id.len() > 64 || !account_id.chars().all(|c| c.is_ascii_alphanumeric())
            {
                return Err(invalid("`settings.account_id` must be 1 to 64 letters and digits"));
            }
            PhoneNumber::parse(from).map_err(|e| invalid(format!("`settings.from`: {e}")))?;
        }
        IntegrationSettings::Slack { api_base: Some(base), .. } => {
            let url = WebhookUrl::parse(base, state.destinations.allow_private)
                .map_err(|e| ApiError::new(ErrorCode::InvalidUrl, format!("`settings.api_base`: {e}")))?;
            state
                .destinations
                .check(url.expose())
                .await
                .map_err(|e| ApiError::new(ErrorCode::ForbiddenDestination, e.to_string()))?;
        }
        IntegrationSettings::Slack { api_base: None, .. }
        | IntegrationSettings::Gmail { .. }
        | IntegrationSettings::Webhook {} => {}
    }
    Ok(settings)
}

fn checked_credentials(kind: IntegrationKind, value: Sensitive<Value>) -> Result<IntegrationCredentials, ApiError> {
    if kind == IntegrationKind::Webhook {
        return Err(invalid("a `webhook` integration takes no credentials: its signing secret is generated"));
    }
    let credentials: IntegrationCredentials = typed(kind, value.into_inner(), "credentials")?;
    if credentials.grant().is_some() {
        return Err(connect_instead());
    }
    let values: Vec<&String> = match &credentials {
        IntegrationCredentials::Smtp { username, password, inbound_signing_secret } => {
            if let Some(secret) = inbound_signing_secret
                && SigningSecret::parse(secret).is_err()
            {
                return Err(invalid("`inbound_signing_secret` must be a Standard Webhooks secret (`whsec_` + base64)"));
            }
            vec![username, password]
        }
        IntegrationCredentials::Slack { bot_token, .. } => vec![bot_token],
        IntegrationCredentials::Gmail { .. } => return Err(connect_instead()),
        IntegrationCredentials::Sms { auth_token } => vec![auth_token],
        IntegrationCredentials::Webhook { signing_secret } => vec![signing_secret],
    };
    if values.iter().any(|v| v.is_empty() || v.len() > MAX_CREDENTIAL_LEN) {
        return Err(invalid(format!("each credential must be 1 to {MAX_CREDENTIAL_LEN} bytes")));
    }
    Ok(credentials)
}

fn connect_instead() -> ApiError {
    invalid(
        "tokens of a connection come from connecting the account: `POST /v1/integrations/oauth/{provider}/start` \
         (a `gmail` integration is made only that way)",
    )
}

/// Configure a provider integration (scope `integrations:write`). Credentials go only to the
/// credential vault; responses show masked settings and which credentials are set.
#[utoipa::path(post, path = "/v1/integrations", tag = "integrations", security(("bearer" = ["integrations:write"])), request_body = CreateIntegration,
    responses((status = 201, body = IntegrationCreated)),
    extensions(("x-codes" = json!([crate::ErrorCode::ForbiddenDestination, crate::ErrorCode::InvalidIntegration, crate::ErrorCode::InvalidName, crate::ErrorCode::InvalidUrl, crate::ErrorCode::NotCheckable]))))]
pub async fn create(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiJson(req): ApiJson<CreateIntegration>,
) -> Result<(StatusCode, Json<IntegrationCreated>), ApiError> {
    tenant.require(Scope::IntegrationsWrite)?;
    let name = checked_name(&req.name)?;
    let settings = checked_settings(req.kind, req.settings, &state).await?;
    let (credentials, shown_once) = match (req.kind, req.credentials) {
        (IntegrationKind::Webhook, None) => {
            let secret = SigningSecret::generate().map_err(ApiError::internal)?;
            let text = secret.to_text();
            (IntegrationCredentials::Webhook { signing_secret: text.expose().clone() }, Some(text.into_inner()))
        }
        (kind, Some(value)) => (checked_credentials(kind, value)?, None),
        (_, None) => return Err(invalid("`credentials` are required for this kind of integration")),
    };
    let integration = tenant
        .store
        .create_integration(tenant.workspace_id, name, settings, &credentials, state.clock.now(), &tenant.audit)
        .await?;
    tracing::info!(workspace = %tenant.workspace_id, integration = %integration.id, kind = integration.kind.as_str(), "integration created");
    Ok((StatusCode::CREATED, Json(IntegrationCreated { view: view(&integration), signing_secret: shown_once })))
}

/// List integrations (scope `integrations:read`), masked.
#[utoipa::path(get, path = "/v1/integrations", tag = "integrations", security(("bearer" = ["integrations:read"])),
    responses((status = 200, body = IntegrationList)))]
pub async fn list(tenant: Tenant) -> Result<Json<IntegrationList>, ApiError> {
    tenant.require(Scope::IntegrationsRead)?;
    let all = tenant.store.list_integrations(tenant.workspace_id).await?;
    Ok(Json(IntegrationList { data: all.iter().map(view).collect() }))
}

/// Get an integration (scope `integrations:read`), masked; credentials are never returned.
#[utoipa::path(get, path = "/v1/integrations/{id}", tag = "integrations", security(("bearer" = ["integrations:read"])),
    params(("id" = chimatic_domain::IntegrationId, Path, description = "Integration id (`int_…`)")),
    responses((status = 200, body = IntegrationView)))]
pub async fn get(tenant: Tenant, Path(id): Path<String>) -> Result<Json<IntegrationView>, ApiError> {
    tenant.require(Scope::IntegrationsRead)?;
    let id: IntegrationId = parse_id(&id)?;
    Ok(Json(view(&tenant.store.integration(tenant.workspace_id, id).await?)))
}

/// Change an integration's name, settings or credentials (scope `integrations:write`).
#[utoipa::path(patch, path = "/v1/integrations/{id}", tag = "integrations", security(("bearer" = ["integrations:write"])), request_body = UpdateIntegration,
    params(("id" = chimatic_domain::IntegrationId, Path, description = "Integration id (`int_…`)")),
    responses((status = 200, body = IntegrationView)),
    extensions(("x-codes" = json!([crate::ErrorCode::Conflict, crate::ErrorCode::ForbiddenDestination, crate::ErrorCode::InvalidIntegration, crate::ErrorCode::InvalidName, crate::ErrorCode::InvalidUrl, crate::ErrorCode::NotCheckable]))))]
pub async fn update(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateIntegration>,
) -> Result<Json<IntegrationView>, ApiError> {
    tenant.require(Scope::IntegrationsWrite)?;
    let id: IntegrationId = parse_id(&id)?;
    let current = tenant.store.integration(tenant.workspace_id, id).await?;
    if current.settings.connected_through().is_some() && (req.settings.is_some() || req.credentials.is_some()) {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "a connected integration's settings and tokens come from its connection: delete it (which revokes \
             its token) and connect again",
        ));
    }
    let name = req.name.as_deref().map(checked_name).transpose()?;
    let settings = match req.settings {
        Some(v) => Some(checked_settings(current.kind, Some(v), &state).await?),
        None => None,
    };
    let credentials = req.credentials.map(|c| checked_credentials(current.kind, c)).transpose()?;
    let updated = tenant
        .store
        .update_integration(
            tenant.workspace_id,
            id,
            chimatic_store::IntegrationChange { name, settings, credentials: credentials.as_ref() },
            state.clock.now(),
            &tenant.audit,
        )
        .await?;
    tracing::info!(workspace = %tenant.workspace_id, integration = %id, "integration updated");
    Ok(Json(view(&updated)))
}

/// Delete an integration and its credentials (scope `integrations:write`). A connected one is
/// disconnected first: its token is revoked at the provider (Slack `auth.revoke`, Google's
/// revocation endpoint), and if the provider cannot be reached nothing is deleted (502).
#[utoipa::path(delete, path = "/v1/integrations/{id}", tag = "integrations", security(("bearer" = ["integrations:write"])),
    params(("id" = chimatic_domain::IntegrationId, Path, description = "Integration id (`int_…`)")),
    responses((status = 204)))]
pub async fn delete(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    tenant.require(Scope::IntegrationsWrite)?;
    let id: IntegrationId = parse_id(&id)?;
    let integration = tenant.store.integration(tenant.workspace_id, id).await?;
    if let Some(provider) = integration.settings.connected_through() {
        crate::routes::connections::disconnect(&state, &tenant, id, provider).await?;
    }
    tenant.store.delete_integration(tenant.workspace_id, id, state.clock.now(), &tenant.audit).await?;
    tracing::info!(workspace = %tenant.workspace_id, integration = %id, "integration deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Check that an integration works (scope `integrations:write`) without sending user data:
/// SMTP connects, negotiates TLS, authenticates and quits; SMS reads the account; Slack calls
/// `auth.test`. The result is recorded and shown in reads.
#[utoipa::path(post, path = "/v1/integrations/{id}/check", tag = "integrations", security(("bearer" = ["integrations:write"])),
    params(("id" = chimatic_domain::IntegrationId, Path, description = "Integration id (`int_…`)")),
    responses((status = 200, body = CheckResult)),
    extensions(("x-codes" = json!([crate::ErrorCode::NotCheckable]))))]
pub async fn check(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<CheckResult>, ApiError> {
    tenant.require(Scope::IntegrationsWrite)?;
    let id: IntegrationId = parse_id(&id)?;
    let integration = tenant.store.integration(tenant.workspace_id, id).await?;
    let credentials = tenant.store.integration_credentials(tenant.workspace_id, id).await?;
    let started = state.clock.now();
    let checked = state
        .connections
        .check(&state.providers, &tenant.store, (tenant.workspace_id, id), &integration.settings, credentials, started)
        .await;
    let Some(outcome) = checked else {
        return Err(ApiError::new(
            ErrorCode::NotCheckable,
            "a webhook integration has no provider endpoint to check; its receivers are checked by delivery",
        ));
    };
    let now = state.clock.now();
    tenant.store.record_integration_check(tenant.workspace_id, id, now, outcome.healthy, outcome.error_class).await?;
    tracing::info!(workspace = %tenant.workspace_id, integration = %id, healthy = outcome.healthy, error_class = outcome.error_class, "integration checked");
    Ok(Json(CheckResult {
        healthy: outcome.healthy,
        error_class: outcome.error_class.map(str::to_string),
        latency_ms: u64::try_from(outcome.latency.as_millis()).unwrap_or(u64::MAX),
        checked_at: now.to_rfc3339(),
    }))
}
