//! The webhook portal: your customer's own user (a subscriber) manages their webhook endpoints
//! from your front end, authorised by a subscriber token with the `portal` scope (from
//! `POST /v1/subscribers/{id}/token`), never by the API key. An endpoint is one of the
//! subscriber's `webhook` channels: events whose workflow has a webhook step reach it.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chimatic_domain::{NotificationId, NotificationStatus, SubscriberChannelId, WebhookUrl};
use chimatic_store::Target;
use chimatic_store::records::SubscriberChannel;
use serde::{Deserialize, Serialize};

use super::notifications::NotificationAccepted;
use crate::auth::{PortalScope, SubscriberSession};
use crate::body::ApiJson;
use crate::params::{ApiQuery, QueryParams, parse_id};
use crate::{ApiError, AppState, ErrorCode};

type Portal = SubscriberSession<PortalScope>;

const DEFAULT_OVERLAP_SECS: u32 = 86_400;
const MAX_OVERLAP_SECS: u32 = 7 * 86_400;
const DEFAULT_PAGE: u32 = 20;
const MAX_PAGE: u32 = 100;

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EndpointStatus {
    Active,
    /// Nothing is sent to it; deliveries still queued fail at their turn as `endpoint_disabled`.
    Disabled,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SignedWith {
    /// Its own secret, shown once when added or rotated.
    Endpoint,
    /// The workspace's webhook integration secret (an endpoint added through the API); it
    /// cannot be rotated here.
    Workspace,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "sch_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "url_masked": "https://hoo…", "status": "active", "disabled_at": null, "signed_with": "endpoint", "secret_rotated_at": null, "previous_secret_expires_at": null, "created_at": "2024-11-03T06:41:14.931Z"}))]
pub struct Endpoint {
    pub id: SubscriberChannelId,
    /// Scheme and a host prefix only, e.g. `https://hoo…`; the full URL is never returned.
    pub url_masked: String,
    pub status: EndpointStatus,
    #[schema(format = DateTime)]
    pub disabled_at: Option<String>,
    pub signed_with: SignedWith,
    #[schema(format = DateTime)]
    pub secret_rotated_at: Option<String>,
    /// Until then deliveries carry a second signature, by the secret the last rotation replaced.
    #[schema(format = DateTime)]
    pub previous_secret_expires_at: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "sch_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "url_masked": "https://hoo…", "status": "active", "disabled_at": null, "signed_with": "endpoint", "secret_rotated_at": null,
    "previous_secret_expires_at": null, "created_at": "2024-11-03T06:41:14.931Z", "signing_secret": "whsec_ZXhhbXBsZS1vbmx5LW5vdC1hLXJlYWwtc2VjcmV0ISE="}))]
pub struct EndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// Standard Webhooks signing secret (`whsec_…`). Shown once.
    pub signing_secret: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"data": [{"id": "sch_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "url_masked": "https://hoo…", "status": "active", "disabled_at": null, "signed_with": "endpoint",
    "secret_rotated_at": "2024-11-04T08:00:00.000Z", "previous_secret_expires_at": "2024-11-05T08:00:00.000Z", "created_at": "2024-11-03T06:41:14.931Z"}]}))]
pub struct EndpointList {
    pub data: Vec<Endpoint>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://hooks.example.com/chimatic"}))]
pub struct CreateEndpoint {
    /// `https` (plain `http` only in development mode), resolving to a public address unless
    /// the server allows private destinations.
    #[schema(max_length = 2048)]
    pub url: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"overlap_seconds": 86400}))]
pub struct RotateSecret {
    /// How long the replaced secret keeps signing (as a second signature), 0 to 604800 seconds
    /// (default 86400).
    #[serde(default, deserialize_with = "chimatic_domain::whole_number::optional_u32")]
    #[schema(minimum = 0, maximum = 604800)]
    pub overlap_seconds: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryAttempt {
    /// 1-based attempt number.
    pub attempt: u32,
    #[schema(format = DateTime)]
    pub started_at: String,
    pub succeeded: bool,
    /// HTTP status the endpoint answered, if it did.
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    /// Why it failed (e.g. `http_status`, `timeout`, `connect`, `tls`, `endpoint_disabled`).
    pub error_class: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EndpointDelivery {
    pub id: NotificationId,
    pub status: NotificationStatus,
    pub attempt_count: u32,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// When the next attempt is due, while queued.
    #[schema(format = DateTime)]
    pub next_attempt_at: Option<String>,
    pub attempts: Vec<DeliveryAttempt>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"data": [{"id": "msg_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "status": "delivered", "attempt_count": 2, "created_at": "2024-11-03T06:41:14.931Z", "updated_at": "2024-11-03T06:41:16.102Z", "next_attempt_at": null, "attempts": [{"attempt": 1, "started_at": "2024-11-03T06:41:14.960Z",
    "succeeded": false, "status_code": 503, "latency_ms": 120, "error_class": "http_status"}, {"attempt": 2, "started_at": "2024-11-03T06:41:16.017Z", "succeeded": true, "status_code": 200, "latency_ms": 85, "error_class": null}]}], "next_cursor": null}))]
pub struct DeliveryList {
    /// Newest first.
    pub data: Vec<EndpointDelivery>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_cursor: Option<NotificationId>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryParams {
    /// Return deliveries older than this one (the previous page's `next_cursor`).
    #[param(value_type = Option<chimatic_domain::NotificationId>)]
    pub before: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

impl QueryParams for DeliveryParams {
    fn expected() -> String {
        "query parameters are `before` (a notification id) and `limit` (1 to 100)".into()
    }
}

fn endpoint_view(c: &SubscriberChannel, now: chimatic_domain::Timestamp) -> Endpoint {
    Endpoint {
        id: c.id,
        url_masked: c.address.masked(),
        status: if c.disabled_at.is_some() { EndpointStatus::Disabled } else { EndpointStatus::Active },
        disabled_at: c.disabled_at.map(|t| t.to_rfc3339()),
        signed_with: if c.signing.is_some() { SignedWith::Endpoint } else { SignedWith::Workspace },
        secret_rotated_at: c.signing.as_ref().and_then(|s| s.rotated_at).map(|t| t.to_rfc3339()),
        previous_secret_expires_at: c
            .signing
            .as_ref()
            .and_then(|s| s.overlapping(now))
            .map(|(_, until)| until.to_rfc3339()),
        created_at: c.created_at.to_rfc3339(),
    }
}

/// The subscriber's webhook endpoints (subscriber token, `portal` scope), URLs masked.
#[utoipa::path(get, path = "/v1/portal/endpoints", tag = "portal", security(("subscriber" = ["portal"])),
    responses((status = 200, body = EndpointList)))]
pub async fn list(State(state): State<AppState>, session: Portal) -> Result<Json<EndpointList>, ApiError> {
    let endpoints = session.store.subscriber_endpoints(session.workspace_id, session.subscriber_id).await?;
    let now = state.clock.now();
    Ok(Json(EndpointList { data: endpoints.iter().map(|c| endpoint_view(c, now)).collect() }))
}

/// Add a webhook endpoint (subscriber token, `portal` scope). The URL passes the same checks as
/// any destination (scheme, and no private or loopback address unless the server allows them);
/// the endpoint gets its own signing secret, shown once. Audited.
#[utoipa::path(post, path = "/v1/portal/endpoints", tag = "portal", security(("subscriber" = ["portal"])),
    request_body = CreateEndpoint,
    responses((status = 201, body = EndpointWithSecret)),
    extensions(("x-codes" = json!([crate::ErrorCode::ForbiddenDestination, crate::ErrorCode::InvalidUrl]))))]
pub async fn create(
    State(state): State<AppState>,
    session: Portal,
    ApiJson(req): ApiJson<CreateEndpoint>,
) -> Result<(StatusCode, Json<EndpointWithSecret>), ApiError> {
    let url = WebhookUrl::parse(&req.url, state.destinations.allow_private)
        .map_err(|e| ApiError::new(ErrorCode::InvalidUrl, format!("`url`: {e}")))?;
    state
        .destinations
        .check(url.expose())
        .await
        .map_err(|e| ApiError::new(ErrorCode::ForbiddenDestination, e.to_string()))?;
    let now = state.clock.now();
    let (channel, secret) = session
        .store
        .add_subscriber_endpoint(session.workspace_id, session.subscriber_id, url, now, &session.audit)
        .await?;
    tracing::info!(workspace = %session.workspace_id, endpoint = %channel.id, "portal endpoint added");
    let body = EndpointWithSecret { endpoint: endpoint_view(&channel, now), signing_secret: secret.into_inner() };
    Ok((StatusCode::CREATED, Json(body)))
}

/// Remove one of the subscriber's webhook endpoints (subscriber token, `portal` scope). Audited.
#[utoipa::path(delete, path = "/v1/portal/endpoints/{id}", tag = "portal", security(("subscriber" = ["portal"])),
    params(("id" = chimatic_domain::SubscriberChannelId, Path, description = "Endpoint id (`sch_…`)")),
    responses((status = 204)))]
pub async fn delete(
    State(state): State<AppState>,
    session: Portal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: SubscriberChannelId = parse_id(&id)?;
    let (ws, sub) = (session.workspace_id, session.subscriber_id);
    // Only a webhook endpoint: the portal does not reach the subscriber's other channels.
    session.store.subscriber_endpoint(ws, sub, id).await?;
    session.store.remove_subscriber_channel(ws, sub, id, state.clock.now(), &session.audit).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Give an endpoint a new signing secret, shown once (subscriber token, `portal` scope). The
/// replaced secret keeps signing each delivery, as a second signature in `webhook-signature`,
/// for `overlap_seconds`, so the receiver can switch without refusing a message. Audited.
#[utoipa::path(post, path = "/v1/portal/endpoints/{id}/rotate-secret", tag = "portal", security(("subscriber" = ["portal"])),
    request_body = RotateSecret,
    params(("id" = chimatic_domain::SubscriberChannelId, Path, description = "Endpoint id (`sch_…`)")),
    responses((status = 200, body = EndpointWithSecret)),
    extensions(("x-codes" = json!([crate::ErrorCode::Conflict, crate::ErrorCode::InvalidRequest]))))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    session: Portal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RotateSecret>,
) -> Result<Json<EndpointWithSecret>, ApiError> {
    let id: SubscriberChannelId = parse_id(&id)?;
    let overlap = req.overlap_seconds.unwrap_or(DEFAULT_OVERLAP_SECS);
    if overlap > MAX_OVERLAP_SECS {
        return Err(ApiError::new(ErrorCode::InvalidRequest, "`overlap_seconds` must be 0 to 604800"));
    }
    let now = state.clock.now();
    let overlap = Duration::from_secs(u64::from(overlap));
    let (channel, secret) = session
        .store
        .rotate_endpoint_secret(session.workspace_id, session.subscriber_id, id, overlap, now, &session.audit)
        .await?;
    let body = EndpointWithSecret { endpoint: endpoint_view(&channel, now), signing_secret: secret.into_inner() };
    Ok(Json(body))
}

async fn set_enabled(state: &AppState, session: &Portal, id: &str, enabled: bool) -> Result<Json<Endpoint>, ApiError> {
    let id: SubscriberChannelId = parse_id(id)?;
    let now = state.clock.now();
    let (ws, sub) = (session.workspace_id, session.subscriber_id);
    let channel = session.store.set_endpoint_enabled(ws, sub, id, enabled, now, &session.audit).await?;
    Ok(Json(endpoint_view(&channel, now)))
}

/// Disable an endpoint (subscriber token, `portal` scope): from the answer on, nothing is sent
/// to it; new events leave it out and deliveries still queued fail at their turn as
/// `endpoint_disabled` without a request (replay them after enabling). Audited.
#[utoipa::path(post, path = "/v1/portal/endpoints/{id}/disable", tag = "portal", security(("subscriber" = ["portal"])),
    params(("id" = chimatic_domain::SubscriberChannelId, Path, description = "Endpoint id (`sch_…`)")),
    responses((status = 200, body = Endpoint)))]
pub async fn disable(
    State(state): State<AppState>,
    session: Portal,
    Path(id): Path<String>,
) -> Result<Json<Endpoint>, ApiError> {
    set_enabled(&state, &session, &id, false).await
}

/// Enable a disabled endpoint again (subscriber token, `portal` scope). Audited.
#[utoipa::path(post, path = "/v1/portal/endpoints/{id}/enable", tag = "portal", security(("subscriber" = ["portal"])),
    params(("id" = chimatic_domain::SubscriberChannelId, Path, description = "Endpoint id (`sch_…`)")),
    responses((status = 200, body = Endpoint)))]
pub async fn enable(
    State(state): State<AppState>,
    session: Portal,
    Path(id): Path<String>,
) -> Result<Json<Endpoint>, ApiError> {
    set_enabled(&state, &session, &id, true).await
}

/// An endpoint's recent deliveries with every attempt, newest first (subscriber token, `portal`
/// scope). Content is not shown.
#[utoipa::path(get, path = "/v1/portal/endpoints/{id}/deliveries", tag = "portal", security(("subscriber" = ["portal"])),
    params(("id" = chimatic_domain::SubscriberChannelId, Path, description = "Endpoint id (`sch_…`)"), DeliveryParams),
    responses((status = 200, body = DeliveryList)),
    extensions(("x-codes" = json!([crate::ErrorCode::InvalidQuery]))))]
pub async fn deliveries(
    session: Portal,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<DeliveryParams>,
) -> Result<Json<DeliveryList>, ApiError> {
    let id: SubscriberChannelId = parse_id(&id)?;
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(DeliveryParams::invalid());
    }
    let before = params.before.as_deref().map(parse_id::<NotificationId>).transpose()?;
    let (ws, sub) = (session.workspace_id, session.subscriber_id);
    session.store.subscriber_endpoint(ws, sub, id).await?;
    let found = session.store.endpoint_deliveries(ws, sub, id, before, limit).await?;
    let mut data = Vec::with_capacity(found.len());
    for n in &found {
        let attempts = session.store.attempts(ws, n.id).await?;
        data.push(EndpointDelivery {
            id: n.id,
            status: n.status,
            attempt_count: n.attempt_count,
            created_at: n.created_at.to_rfc3339(),
            updated_at: n.updated_at.to_rfc3339(),
            next_attempt_at: n.next_attempt_at.map(|t| t.to_rfc3339()),
            attempts: attempts
                .into_iter()
                .zip(1u32..)
                .map(|(a, attempt)| DeliveryAttempt {
                    attempt,
                    started_at: a.started_at.to_rfc3339(),
                    succeeded: a.succeeded,
                    status_code: a.detail.status_code,
                    latency_ms: a.detail.latency_ms,
                    error_class: a.detail.error_class,
                })
                .collect(),
        });
    }
    let next_cursor = (data.len() == limit as usize).then(|| data.last().map(|d| d.id)).flatten();
    Ok(Json(DeliveryList { data, next_cursor }))
}

/// Send a failed delivery again (subscriber token, `portal` scope), with a fresh retry schedule.
/// Only a failed delivery of an enabled endpoint whose content is still kept. Audited.
#[utoipa::path(post, path = "/v1/portal/endpoints/{id}/deliveries/{message_id}/replay", tag = "portal", security(("subscriber" = ["portal"])),
    params(("id" = chimatic_domain::SubscriberChannelId, Path, description = "Endpoint id (`sch_…`)"),
           ("message_id" = chimatic_domain::NotificationId, Path, description = "Delivery id (`msg_…`)")),
    responses((status = 202, body = NotificationAccepted)),
    extensions(("x-codes" = json!([crate::ErrorCode::Conflict]))))]
pub async fn replay(
    State(state): State<AppState>,
    session: Portal,
    Path((id, message_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<NotificationAccepted>), ApiError> {
    let id: SubscriberChannelId = parse_id(&id)?;
    let message_id: NotificationId = parse_id(&message_id)?;
    let (ws, sub) = (session.workspace_id, session.subscriber_id);
    let endpoint = session.store.subscriber_endpoint(ws, sub, id).await?;
    let n = session.store.notification(ws, message_id).await?;
    let ours = matches!(&n.target, Target::Subscriber(r) if r.subscriber_id == sub && r.subscriber_channel_id == id);
    if !ours {
        return Err(ApiError::not_found());
    }
    if endpoint.disabled_at.is_some() {
        return Err(ApiError::new(ErrorCode::Conflict, "the endpoint is disabled: enable it before replaying"));
    }
    session.store.replay(ws, message_id, state.clock.now(), &session.audit).await?;
    session.delivery_waker.notify_one();
    Ok((StatusCode::ACCEPTED, Json(NotificationAccepted { id: message_id, status: NotificationStatus::Queued })))
}
