//! Inbound provider webhooks: delivery receipts, bounces and complaints, at
//! `/v1/inbound/{integration_id}`. There is no API key here; each request is verified with the
//! scheme of the integration's provider before anything is read from it:
//! - `smtp` integrations: Standard Webhooks (`webhook-id`/`-timestamp`/`-signature`, or the
//!   `svix-` equivalents) with the integration's `inbound_signing_secret`, within 5 minutes;
//! - `sms` integrations: Twilio's `X-Twilio-Signature` with the integration's auth token.
//!
//! A hard bounce, complaint or STOP reply puts the recipient on that workspace's suppression list.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri, header};
use chimatic_crypto::{SigningSecret, twilio_signature_valid};
use chimatic_domain::{InboundEventId, IntegrationCredentials, IntegrationId, IntegrationKind, Scope};
use chimatic_providers::inbound::{ProviderReport, email_report, twilio_report};
use chimatic_store::{InboundEvent, NewInbound, Store};
use serde::{Deserialize, Serialize};

use crate::auth::Tenant;
use crate::params::{ApiQuery, QueryParams, parse_id};
use crate::{ApiError, AppState, ErrorCode};

/// Provider events are small; anything larger is not one.
const MAX_INBOUND_BYTES: usize = 64 * 1024;
/// How far a Standard Webhooks timestamp may be from our clock.
const TOLERANCE_SECS: i64 = 5 * 60;
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"duplicate": false, "suppressed": 1}))]
pub struct InboundAccepted {
    /// `true` when this provider event was received before; it changed nothing this time.
    pub duplicate: bool,
    /// How many addresses it put on the suppression list.
    pub suppressed: usize,
}

fn unverified() -> ApiError {
    ApiError::new(ErrorCode::InvalidSignature, "the webhook's signature could not be verified")
}

/// Receive a provider webhook (no API key: verified by the provider's signature scheme).
#[utoipa::path(post, path = "/v1/inbound/{integration_id}", tag = "inbound", security(()),
    params(("integration_id" = chimatic_domain::IntegrationId, Path, description = "`int_…`")),
    request_body(content = String, description = "The provider's event: JSON (email providers, Standard Webhooks) \
        or a form (Twilio status callbacks)"),
    responses((status = 200, body = InboundAccepted)),
    extensions(("x-codes" = json!([crate::ErrorCode::InvalidEvent, crate::ErrorCode::InvalidSignature, crate::ErrorCode::NotFound, crate::ErrorCode::PayloadTooLarge, crate::ErrorCode::StaleWebhook]))))]
pub async fn receive(
    State(state): State<AppState>,
    Path(integration_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<InboundAccepted>, ApiError> {
    let id: IntegrationId = integration_id.parse().map_err(|_| ApiError::not_found())?;
    if body.len() > MAX_INBOUND_BYTES {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("inbound webhooks are limited to {MAX_INBOUND_BYTES} bytes"),
        ));
    }
    let (store, ws) = owner(&state, id).await?.ok_or_else(ApiError::not_found)?;
    let credentials = store.integration_credentials(ws, id).await?;
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or(uri.path());
    let report = match &credentials {
        IntegrationCredentials::Smtp { inbound_signing_secret: Some(secret), .. } => {
            let webhook_id = standard_webhook(&headers, &body, secret, state.clock.now().as_secs())?;
            email_report(&webhook_id, &body)
        }
        IntegrationCredentials::Sms { auth_token } => {
            let signature = header_text(&headers, "x-twilio-signature").ok_or_else(unverified)?;
            let fields: Vec<(String, String)> =
                url::form_urlencoded::parse(&body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
            // Twilio signs the URL it called. Behind a TLS-terminating proxy that is https, so
            // both schemes are tried: the scheme adds nothing to what only the token holder can sign.
            let host = header_text(&headers, header::HOST.as_str()).ok_or_else(unverified)?;
            let verified = ["https", "http"].iter().any(|scheme| {
                twilio_signature_valid(auth_token, &format!("{scheme}://{host}{path_and_query}"), &fields, signature)
            });
            if !verified {
                return Err(unverified());
            }
            twilio_report(&fields)
        }
        // An SMTP integration without an inbound secret, or a kind without provider webhooks.
        _ => return Err(unverified()),
    }
    .map_err(|e| ApiError::new(ErrorCode::InvalidEvent, e.to_string()))?;
    // Checked once the sender is verified. The provider retries a refused webhook, so nothing is
    // lost while the workspace is frozen.
    crate::auth::ensure_not_frozen(&state, ws).await?;
    record(&state, &store, ws, id, report).await
}

/// Checks a Standard Webhooks signature and timestamp; returns the webhook id.
fn standard_webhook(headers: &HeaderMap, body: &[u8], secret: &str, now_secs: i64) -> Result<String, ApiError> {
    let get =
        |name: &str| header_text(headers, &format!("webhook-{name}")).or(header_text(headers, &format!("svix-{name}")));
    let (Some(id), Some(timestamp), Some(signature)) = (get("id"), get("timestamp"), get("signature")) else {
        return Err(unverified());
    };
    let timestamp: i64 = timestamp.parse().map_err(|_| unverified())?;
    let secret = SigningSecret::parse(secret).map_err(|_| unverified())?;
    if !secret.verify(id, timestamp, body, signature) {
        return Err(unverified());
    }
    // Checked after the signature, so a replayed old webhook is told apart from a forged one.
    if (now_secs - timestamp).abs() > TOLERANCE_SECS {
        return Err(ApiError::new(
            ErrorCode::StaleWebhook,
            "the webhook's timestamp is more than 5 minutes from the server's clock",
        ));
    }
    Ok(id.to_string())
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The served region whose store holds the integration, and its workspace.
async fn owner(
    state: &AppState,
    id: IntegrationId,
) -> Result<Option<(std::sync::Arc<Store>, chimatic_domain::WorkspaceId)>, ApiError> {
    for plane in state.regions.values() {
        if let Some(ws) = plane.store.integration_workspace(id).await? {
            return Ok(Some((plane.store.clone(), ws)));
        }
    }
    Ok(None)
}

async fn record(
    state: &AppState,
    store: &Store,
    ws: chimatic_domain::WorkspaceId,
    integration_id: IntegrationId,
    report: ProviderReport,
) -> Result<Json<InboundAccepted>, ApiError> {
    let suppressing = report.suppression_reason.map_or(0, |_| report.recipients.len());
    let inbound = NewInbound {
        integration_id,
        provider_event_id: &report.event_id,
        kind: report.kind.as_str(),
        provider_status: &report.provider_status,
        code: report.code.as_deref(),
        recipients: &report.recipients,
        suppress: report.suppression_reason,
    };
    let fresh = store.record_inbound(ws, inbound, state.clock.now()).await?;
    let suppressed = if fresh { suppressing } else { 0 };
    let outcome = if !fresh {
        "duplicate"
    } else if suppressed > 0 {
        "suppressed"
    } else {
        "recorded"
    };
    metrics::counter!("chimatic_inbound_webhooks_total", "outcome" => outcome).increment(1);
    tracing::info!(workspace = %ws, integration = %integration_id, kind = report.kind.as_str(), outcome, "inbound provider webhook");
    Ok(Json(InboundAccepted { duplicate: !fresh, suppressed }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct InboundEventView {
    pub id: InboundEventId,
    /// `delivered`, `hard_bounce`, `soft_bounce`, `complaint`, `permanent_failure`, `failure` or `other`.
    pub kind: String,
    /// `suppressed` (its recipients went on the suppression list) or `recorded`.
    pub outcome: String,
    /// The provider's name for the event, e.g. `email.bounced` or `undelivered`.
    pub provider_status: String,
    /// The provider's detail code (bounce type, Twilio error code).
    pub code: Option<String>,
    pub recipients_masked: Vec<String>,
    pub received_at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"data": [{"id": "inb_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "kind": "hard_bounce", "outcome": "suppressed", "provider_status": "email.bounced", "code": "Permanent/General", "recipients_masked": ["bou…@…"], "received_at": "2024-11-03T06:41:14.931Z"}], "next_cursor": null}))]
pub struct InboundEventList {
    pub data: Vec<InboundEventView>,
    pub next_cursor: Option<InboundEventId>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InboundPage {
    /// Events received before this one (`inb_…`), for the next page.
    #[param(value_type = Option<chimatic_domain::InboundEventId>)]
    pub before: Option<String>,
    /// 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

impl QueryParams for InboundPage {
    fn expected() -> String {
        "query parameters are `before` (an inbound event id) and `limit` (1 to 500)".into()
    }
}

fn view(e: InboundEvent) -> InboundEventView {
    InboundEventView {
        id: e.id,
        kind: e.kind,
        outcome: e.outcome,
        provider_status: e.provider_status,
        code: e.code,
        recipients_masked: e.recipients.iter().map(|a| a.masked()).collect(),
        received_at: e.received_at.to_rfc3339(),
    }
}

/// An integration's inbound webhooks of the last 30 days, newest first, masked (scope
/// `integrations:read`).
#[utoipa::path(get, path = "/v1/integrations/{id}/inbound", tag = "integrations", security(("bearer" = ["integrations:read"])), params(InboundPage,
        ("id" = chimatic_domain::IntegrationId, Path, description = "`int_…`")),
    responses((status = 200, body = InboundEventList)),
    extensions(("x-codes" = json!([crate::ErrorCode::InvalidLimit]))))]
pub async fn inbound_history(
    tenant: Tenant,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<InboundPage>,
) -> Result<Json<InboundEventList>, ApiError> {
    tenant.require(Scope::IntegrationsRead)?;
    let id: IntegrationId = parse_id(&id)?;
    let before = page.before.as_deref().map(parse_id::<InboundEventId>).transpose()?;
    let limit = page.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::new(ErrorCode::InvalidLimit, format!("`limit` must be 1 to {MAX_PAGE}")));
    }
    let integration = tenant.store.integration(tenant.workspace_id, id).await?;
    if !matches!(integration.kind, IntegrationKind::Smtp | IntegrationKind::Sms) {
        return Ok(Json(InboundEventList { data: Vec::new(), next_cursor: None }));
    }
    let events = tenant.store.inbound_events(tenant.workspace_id, id, before, limit).await?;
    let next_cursor = if events.len() == limit as usize { events.last().map(|e| e.id) } else { None };
    Ok(Json(InboundEventList { data: events.into_iter().map(view).collect(), next_cursor }))
}
