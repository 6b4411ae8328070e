use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chimatic_delivery::intake::{self, PlanError};
use chimatic_domain::{EventId, NotificationId, Scope, Sensitive};
use chimatic_store::Messages;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::auth::Tenant;
use crate::body::{ApiJson, check_idempotency_key};
use crate::{ApiError, AppState, ErrorCode};

/// Recipients per event request.
pub const MAX_RECIPIENTS: usize = 100;
const MAX_DATA_BYTES: usize = 256 * 1024;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "order.shipped", "to": ["user-1842"], "data": {"order": 42}, "idempotency_key": "order-42-shipped"}))]
pub struct SendEvent {
    /// The event name; the workflow with this key decides what is sent.
    #[schema(value_type = chimatic_domain::patterns::EventName)]
    pub name: String,
    /// 1 to 100 recipients: subscribers by your `external_id`, or topics as `{"topic": "key"}`
    /// (a topic's members are reached by a background fan-out, however many there are).
    #[schema(min_items = 1, max_items = 100)]
    pub to: Vec<To>,
    /// The event's data (`data` in templates), a JSON object up to 256 KiB.
    #[schema(value_type = Option<Object>)]
    pub data: Option<Sensitive<Box<RawValue>>>,
    /// Makes re-sends safe: within 24 hours the same key returns the original event, and nothing
    /// is sent again.
    #[schema(value_type = Option<String>, min_length = 1, max_length = 255)]
    pub idempotency_key: Option<Sensitive<String>>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum To {
    /// An `external_id`.
    #[schema(value_type = chimatic_domain::patterns::ExternalId)]
    Subscriber(Sensitive<String>),
    Topic(TopicRef),
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicRef {
    #[schema(value_type = chimatic_domain::patterns::EventName)]
    pub topic: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SkippedRecipient {
    /// Position in `to`.
    pub index: usize,
    /// The workflow step, when one step had nothing to go to.
    pub step: Option<usize>,
    /// `unknown_subscriber`, `no_channel`, `opted_out` (recorded as a `skipped` notification), or
    /// `suppressed` (the address is on the suppression list; recorded as `suppressed`).
    pub reason: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"event_id": "evt_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "notifications": ["msg_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f"], "skipped": [{"index": 1, "step": null, "reason": "unknown_subscriber"}], "fanouts": ["project.42.watchers"], "idempotent_replayed": false}))]
pub struct EventAccepted {
    pub event_id: EventId,
    /// One queued notification per message (see `GET /v1/notifications/{id}`); empty when the
    /// idempotency key returned an earlier event.
    pub notifications: Vec<NotificationId>,
    pub skipped: Vec<SkippedRecipient>,
    /// Topics whose members will get the event through a background fan-out.
    pub fanouts: Vec<String>,
    /// `true` when an earlier event with the same idempotency key is returned.
    pub idempotent_replayed: bool,
}

/// Send an event (scope `notifications:write`): its workflow is rendered for each recipient
/// and one notification is queued per step and matching subscriber channel, all in one
/// transaction, before `202`.
#[utoipa::path(post, path = "/v1/events", tag = "events", security(("bearer" = ["notifications:write"])), request_body = SendEvent,
    responses((status = 202, body = EventAccepted), (status = 200, body = EventAccepted)),
    extensions(("x-codes" = json!([crate::ErrorCode::InvalidEvent, crate::ErrorCode::InvalidIdempotencyKey, crate::ErrorCode::NothingToSend, crate::ErrorCode::PayloadTooLarge, crate::ErrorCode::RenderFailed, crate::ErrorCode::UnknownEvent, crate::ErrorCode::UnknownTopic]))))]
pub async fn send(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiJson(req): ApiJson<SendEvent>,
) -> Result<(StatusCode, Json<EventAccepted>), ApiError> {
    tenant.require(Scope::NotificationsWrite)?;
    if req.to.is_empty() || req.to.len() > MAX_RECIPIENTS {
        return Err(ApiError::new(
            ErrorCode::InvalidEvent,
            format!("`to` must hold 1 to {MAX_RECIPIENTS} subscriber ids"),
        ));
    }
    check_idempotency_key(req.idempotency_key.as_ref())?;
    let data: serde_json::Value = match &req.data {
        Some(raw) => {
            let text = raw.expose().get();
            if text.len() > MAX_DATA_BYTES {
                return Err(ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("`data` exceeds the limit of {MAX_DATA_BYTES} bytes"),
                ));
            }
            let value: serde_json::Value = serde_json::from_str(text).map_err(ApiError::internal)?;
            if !value.is_object() {
                return Err(ApiError::new(ErrorCode::InvalidEvent, "`data` must be a JSON object"));
            }
            value
        }
        None => serde_json::json!({}),
    };
    let ws = tenant.workspace_id;
    let workflow = tenant
        .store
        .workflow_for_event(ws, &req.name)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownEvent, "no workflow handles this event name"))?;

    let mut subscribers = Vec::with_capacity(req.to.len());
    let mut skipped = Vec::new();
    let mut topics = Vec::new();
    let mut fanouts = Vec::new();
    for (index, to) in req.to.iter().enumerate() {
        match to {
            To::Subscriber(external_id) => match tenant.store.subscriber_id_by_external_id(ws, external_id).await? {
                Some(id) => subscribers.push((index, id)),
                None => skipped.push(SkippedRecipient { index, step: None, reason: "unknown_subscriber" }),
            },
            To::Topic(TopicRef { topic }) => {
                let found = tenant.store.topic_by_key(ws, topic).await?.ok_or_else(|| {
                    ApiError::new(ErrorCode::UnknownTopic, format!("`to[{index}]` names no topic of this workspace"))
                })?;
                if !fanouts.contains(&found.key) {
                    // The data as sent, for the fan-out worker to render later.
                    let sent = req.data.as_ref().map_or(&b"{}"[..], |raw| raw.expose().get().as_bytes());
                    topics.push((found.id, workflow.id, Sensitive::new(sent.to_vec())));
                    fanouts.push(found.key);
                }
            }
        }
    }
    let planned = intake::plan_for(&tenant.store, ws, &workflow, &subscribers, &data, &state.templates).await.map_err(
        |e| match e {
            PlanError::Store(e) => e.into(),
            PlanError::Render { step, error } => {
                ApiError::new(ErrorCode::RenderFailed, format!("`steps[{step}]` of the workflow: {error}"))
            }
        },
    )?;
    let sendable = planned.sendable();
    skipped.extend(planned.skips.into_iter().map(|s| SkippedRecipient {
        index: s.index,
        step: s.step,
        reason: s.reason,
    }));
    skipped.sort_by_key(|s| (s.index, s.step));

    if planned.messages.is_empty() && topics.is_empty() {
        return Err(ApiError::new(
            ErrorCode::NothingToSend,
            "no recipient has a channel for any step of this workflow",
        ));
    }
    let now = state.clock.now();
    let event_id = EventId::generate();
    let messages = Messages { audience: &planned.audience, planned: planned.messages };
    let (existing, notifications) =
        tenant.store.enqueue_event(ws, event_id, req.idempotency_key.as_ref(), messages, topics, now).await?;
    if let Some(original) = existing {
        let body = EventAccepted {
            event_id: original,
            notifications: Vec::new(),
            skipped,
            fanouts: Vec::new(),
            idempotent_replayed: true,
        };
        return Ok((StatusCode::OK, Json(body)));
    }
    intake::accepted(&state.stats, &tenant.delivery_waker, ws, now, sendable);
    if !fanouts.is_empty() {
        state.fanout_waker.notify_one();
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(EventAccepted { event_id, notifications, skipped, fanouts, idempotent_replayed: false }),
    ))
}
