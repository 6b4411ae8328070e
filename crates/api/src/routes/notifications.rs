use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use chimatic_delivery::intake;
use chimatic_domain::{
    ChannelId, ChannelKind, EventId, NotificationId, NotificationStatus, Scope, Sensitive, SubscriberChannelId,
    SubscriberId,
};
use chimatic_store::records::ChannelUse;
use chimatic_store::records::Enqueued;
use chimatic_store::{CHANNEL_DEACTIVATED, NewNotification, Target};
use serde::{Deserialize, Serialize};

use crate::auth::Tenant;
use crate::body::{ApiJson, check_idempotency_key};
use crate::error::ItemError;
use crate::mask::mask_json;
use crate::params::parse_id;
use crate::{ApiError, AppState, ErrorCode};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"channel_id": "ch_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "payload": {"order": 42, "status": "shipped"}, "idempotency_key": "order-42-shipped"}))]
pub struct CreateNotification {
    pub channel_id: ChannelId,
    /// Any JSON value; delivered byte for byte as the webhook body. Stored encrypted.
    #[schema(value_type = serde_json::Value)]
    pub payload: Sensitive<Box<serde_json::value::RawValue>>,
    /// Re-sending with the same key within 24 hours returns the original notification.
    #[schema(value_type = Option<String>, min_length = 1, max_length = 255)]
    pub idempotency_key: Option<Sensitive<String>>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "msg_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "status": "queued"}))]
pub struct NotificationAccepted {
    pub id: NotificationId,
    pub status: NotificationStatus,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AttemptView {
    /// 1-based attempt number.
    pub attempt: u32,
    pub started_at: String,
    pub succeeded: bool,
    /// HTTP status returned by the receiver, if it answered.
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    /// One of `http_status`, `timeout`, `connect`, `tls` (handshake refused: protocol version,
    /// untrusted certificate or pin mismatch), `forbidden_destination`, `response_body`,
    /// `request`, `integrity_error`; absent on success.
    pub error_class: Option<String>,
    /// For a message to a subscriber: the integration that made the attempt (the step's
    /// fallback integration once the primary one kept failing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<chimatic_domain::IntegrationId>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "msg_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "type": "webhook", "channel_id": "ch_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "subscriber_id": null, "subscriber_channel_id": null, "event_id": null, "status": "delivered", "payload_masked": {"order": "…", "status": "…"}, "attempt_count": 2, "created_at": "2024-11-03T06:41:14.931Z", "updated_at": "2024-11-03T06:41:16.102Z",
    "next_attempt_at": null, "attempts": [{"attempt": 1, "started_at": "2024-11-03T06:41:14.960Z", "succeeded": false, "status_code": 503, "latency_ms": 120, "error_class": "http_status"}, {"attempt": 2, "started_at": "2024-11-03T06:41:16.017Z", "succeeded": true, "status_code": 200, "latency_ms": 85, "error_class": null}]}))]
pub struct NotificationView {
    pub id: NotificationId,
    /// `webhook` for a direct webhook to a channel; for a message to a subscriber, its channel type.
    #[serde(rename = "type")]
    pub kind: ChannelKind,
    /// The channel of a direct webhook.
    pub channel_id: Option<ChannelId>,
    /// For a message to a subscriber: the subscriber, its channel and the event that made it.
    pub subscriber_id: Option<SubscriberId>,
    pub subscriber_channel_id: Option<SubscriberChannelId>,
    pub event_id: Option<EventId>,
    pub status: NotificationStatus,
    /// The payload's shape with values masked (string prefixes only); for a message, its
    /// rendered content (`subject`, `text`, `html`, `title`). `null` once the content is removed
    /// by the workspace's payload retention (default 30 days); the rest stays.
    #[schema(value_type = Option<Object>)]
    pub payload_masked: Option<serde_json::Value>,
    pub attempt_count: u32,
    pub created_at: String,
    pub updated_at: String,
    /// When the next attempt is due, while queued.
    pub next_attempt_at: Option<String>,
    pub attempts: Vec<AttemptView>,
}

/// Queue a notification (scope `notifications:write`). Answered only once it is durable.
#[utoipa::path(post, path = "/v1/notifications", tag = "notifications", security(("bearer" = ["notifications:write"])), request_body = CreateNotification,
    responses(
        (status = 202, body = NotificationAccepted,
         headers(("idempotent-replayed" = String, description = "`true` when an earlier notification with the same idempotency key is returned")))),
    extensions(("x-codes" = json!([crate::ErrorCode::Conflict, crate::ErrorCode::InvalidIdempotencyKey, crate::ErrorCode::NotFound, crate::ErrorCode::PayloadTooLarge]))))]
pub async fn create(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiJson(req): ApiJson<CreateNotification>,
) -> Result<(StatusCode, HeaderMap, Json<NotificationAccepted>), ApiError> {
    tenant.require(Scope::NotificationsWrite)?;
    let item = prepare(req, &state)?;
    let outcome = tenant.store.enqueue(tenant.workspace_id, item, state.clock.now()).await?;
    let mut headers = HeaderMap::new();
    let status = match outcome {
        Enqueued::Created(_) => {
            intake::accepted(&state.stats, &tenant.delivery_waker, tenant.workspace_id, state.clock.now(), 1);
            NotificationStatus::Queued
        }
        Enqueued::Existing(id) => {
            headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
            tenant.store.notification(tenant.workspace_id, id).await?.status
        }
    };
    Ok((StatusCode::ACCEPTED, headers, Json(NotificationAccepted { id: outcome.id(), status })))
}

/// Checks one notification request and turns it into what the store takes.
fn prepare(req: CreateNotification, state: &AppState) -> Result<NewNotification, ApiError> {
    check_idempotency_key(req.idempotency_key.as_ref())?;
    // The raw bytes as sent: no re-serialization, and the receiver gets exactly what was accepted.
    let body = req.payload.into_inner().get().as_bytes().to_vec();
    if body.len() > state.limits.max_payload_bytes {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("`payload` exceeds the limit of {} bytes", state.limits.max_payload_bytes),
        ));
    }
    Ok(NewNotification {
        channel_id: req.channel_id,
        payload: Sensitive::new(body),
        idempotency_key: req.idempotency_key,
    })
}

pub const MAX_BATCH: usize = 1000;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"items": [{"channel_id": "ch_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "payload": {"order": 42}}, {"channel_id": "ch_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "payload": {"order": 43}}]}))]
pub struct CreateNotificationBatch {
    /// 1 to 1000 notifications.
    #[schema(min_items = 1, max_items = 1000)]
    pub items: Vec<CreateNotification>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BatchItemAccepted {
    pub id: NotificationId,
    pub status: NotificationStatus,
    /// `true` when an earlier notification with the same idempotency key is returned.
    pub idempotent_replayed: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"data": [{"id": "msg_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "status": "queued", "idempotent_replayed": false}, {"id": "msg_0192f0c1a2b37c4d8e9f0a1b2c3d4e60", "status": "queued", "idempotent_replayed": false}]}))]
pub struct BatchAccepted {
    /// One entry per item, in request order.
    pub data: Vec<BatchItemAccepted>,
}

/// Queue up to 1000 notifications at once (scope `notifications:write`). All-or-nothing: every
/// item is validated first; if any is invalid the answer is 422 with an `errors` entry per bad
/// item and nothing is stored. Otherwise all items are committed in one transaction before 202.
#[utoipa::path(post, path = "/v1/notifications/batch", tag = "notifications", security(("bearer" = ["notifications:write"])), request_body = CreateNotificationBatch,
    responses((status = 202, body = BatchAccepted)),
    extensions(("x-codes" = json!([crate::ErrorCode::InvalidBatch, crate::ErrorCode::InvalidBatchItems, crate::ErrorCode::InvalidIdempotencyKey, crate::ErrorCode::PayloadTooLarge]))))]
pub async fn create_batch(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiJson(req): ApiJson<CreateNotificationBatch>,
) -> Result<(StatusCode, Json<BatchAccepted>), ApiError> {
    tenant.require(Scope::NotificationsWrite)?;
    if req.items.is_empty() || req.items.len() > MAX_BATCH {
        return Err(ApiError::new(
            ErrorCode::InvalidBatch,
            format!("`items` must hold 1 to {MAX_BATCH} notifications"),
        ));
    }
    let ws = tenant.workspace_id;
    let mut known: Vec<ChannelId> = Vec::new();
    let mut errors = Vec::new();
    let mut items = Vec::with_capacity(req.items.len());
    for (index, item) in req.items.into_iter().enumerate() {
        if !known.contains(&item.channel_id) {
            match tenant.store.channel_use(ws, item.channel_id).await? {
                ChannelUse::Active => known.push(item.channel_id),
                ChannelUse::Missing => {
                    errors.push(ItemError {
                        index,
                        code: ErrorCode::NotFound,
                        detail: "no such channel in this workspace".into(),
                    });
                    continue;
                }
                ChannelUse::Deactivated => {
                    errors.push(ItemError {
                        index,
                        code: ErrorCode::ChannelDeactivated,
                        detail: CHANNEL_DEACTIVATED.into(),
                    });
                    continue;
                }
            }
        }
        match prepare(item, &state) {
            Ok(ready) => items.push(ready),
            Err(e) => errors.push(ItemError { index, code: e.code, detail: e.detail }),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidBatchItems,
            format!("{} of the items are invalid; nothing was stored", errors.len()),
        )
        .with_item_errors(errors));
    }
    let outcomes = tenant.store.enqueue_batch(ws, items, state.clock.now()).await?;
    let created = outcomes.iter().filter(|o| matches!(o, Enqueued::Created(_))).count();
    intake::accepted(&state.stats, &tenant.delivery_waker, ws, state.clock.now(), created as u64);
    let mut data = Vec::with_capacity(outcomes.len());
    for o in outcomes {
        let (status, replayed) = match o {
            Enqueued::Created(_) => (NotificationStatus::Queued, false),
            Enqueued::Existing(id) => (tenant.store.notification(ws, id).await?.status, true),
        };
        data.push(BatchItemAccepted { id: o.id(), status, idempotent_replayed: replayed });
    }
    Ok((StatusCode::ACCEPTED, Json(BatchAccepted { data })))
}

/// Get a notification with every attempt (scope `notifications:read`). The payload is masked.
#[utoipa::path(get, path = "/v1/notifications/{id}", tag = "notifications", security(("bearer" = ["notifications:read"])),
    params(("id" = chimatic_domain::NotificationId, Path, description = "Notification id (`msg_…`)")),
    responses((status = 200, body = NotificationView)))]
pub async fn get(tenant: Tenant, Path(id): Path<String>) -> Result<Json<NotificationView>, ApiError> {
    tenant.require(Scope::NotificationsRead)?;
    let id: NotificationId = parse_id(&id)?;
    let n = tenant.store.notification(tenant.workspace_id, id).await?;
    let attempts = tenant.store.attempts(tenant.workspace_id, id).await?;
    let payload = match &n.payload {
        Some(p) => Some(serde_json::from_slice::<serde_json::Value>(p.expose()).map_err(ApiError::internal)?),
        None => None,
    };
    Ok(Json(NotificationView {
        id: n.id,
        kind: match &n.target {
            Target::Channel(_) => ChannelKind::Webhook,
            Target::Subscriber(r) => r.kind,
        },
        channel_id: match &n.target {
            Target::Channel(c) => Some(*c),
            Target::Subscriber(_) => None,
        },
        subscriber_id: match &n.target {
            Target::Subscriber(r) => Some(r.subscriber_id),
            Target::Channel(_) => None,
        },
        subscriber_channel_id: match &n.target {
            Target::Subscriber(r) => Some(r.subscriber_channel_id),
            Target::Channel(_) => None,
        },
        event_id: match &n.target {
            Target::Subscriber(r) => Some(r.event_id),
            Target::Channel(_) => None,
        },
        status: n.status,
        payload_masked: payload.as_ref().map(mask_json),
        attempt_count: n.attempt_count,
        created_at: n.created_at.to_rfc3339(),
        updated_at: n.updated_at.to_rfc3339(),
        next_attempt_at: n.next_attempt_at.map(|t| t.to_rfc3339()),
        attempts: attempts
            .into_iter()
            .zip(1u32..)
            .map(|(a, attempt)| AttemptView {
                attempt,
                started_at: a.started_at.to_rfc3339(),
                succeeded: a.succeeded,
                status_code: a.detail.status_code,
                latency_ms: a.detail.latency_ms,
                error_class: a.detail.error_class,
                integration_id: a.detail.integration_id,
            })
            .collect(),
    }))
}

/// Re-queue a failed notification (scope `notifications:write`); it gets a fresh retry schedule.
#[utoipa::path(post, path = "/v1/notifications/{id}/replay", tag = "notifications", security(("bearer" = ["notifications:write"])),
    params(("id" = chimatic_domain::NotificationId, Path, description = "Notification id (`msg_…`)")),
    responses((status = 202, body = NotificationAccepted)),
    extensions(("x-codes" = json!([crate::ErrorCode::Conflict]))))]
pub async fn replay(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<NotificationAccepted>), ApiError> {
    tenant.require(Scope::NotificationsWrite)?;
    let id: NotificationId = parse_id(&id)?;
    tenant.store.replay(tenant.workspace_id, id, state.clock.now(), &tenant.audit).await?;
    tenant.delivery_waker.notify_one();
    Ok((StatusCode::ACCEPTED, Json(NotificationAccepted { id, status: NotificationStatus::Queued })))
}
