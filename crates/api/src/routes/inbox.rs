//! The in-app inbox for browsers: authorised by a short-lived subscriber token (from
//! `POST /v1/subscribers/{id}/token`), never by the API key. The token travels in
//! `Authorization: Bearer sbt_…`, or in `?token=` for `EventSource`, which cannot set headers.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use chimatic_domain::{NotificationId, Preferences};

use super::subscribers::{Inbox, InboxMessage, InboxParams, MarkInboxMessage, inbox_message};
use crate::auth::SubscriberSession;
use crate::body::ApiJson;
use crate::params::{ApiQuery, parse_id};
use crate::{ApiError, AppState};

/// How often the stream looks for new messages.
const POLL: Duration = Duration::from_secs(1);

/// The subscriber's inbox (subscriber token), newest first, with the unread count.
#[utoipa::path(get, path = "/v1/inbox", tag = "inbox", params(InboxParams), security(("subscriber" = ["inbox"])),
    responses((status = 200, body = Inbox)))]
pub async fn list(
    session: SubscriberSession,
    ApiQuery(params): ApiQuery<InboxParams>,
) -> Result<Json<Inbox>, ApiError> {
    super::subscribers::inbox_page(&session.store, session.workspace_id, session.subscriber_id, params).await
}

/// Mark one of the subscriber's messages read or archived (subscriber token).
#[utoipa::path(patch, path = "/v1/inbox/{message_id}", tag = "inbox", request_body = MarkInboxMessage,
    params(("message_id" = chimatic_domain::NotificationId, Path, description = "Notification id (`msg_…`)")), security(("subscriber" = ["inbox"])),
    responses((status = 200, body = InboxMessage)))]
pub async fn mark(
    State(state): State<AppState>,
    session: SubscriberSession,
    Path(message_id): Path<String>,
    ApiJson(req): ApiJson<MarkInboxMessage>,
) -> Result<Json<InboxMessage>, ApiError> {
    let id: NotificationId = parse_id(&message_id)?;
    let n = session
        .store
        .mark_inbox(session.workspace_id, session.subscriber_id, id, req.read, req.archived, state.clock.now())
        .await?;
    Ok(Json(inbox_message(&n)?))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(example = json!({"marked": 3}))]
pub struct InboxRead {
    /// How many messages were unread.
    pub marked: u64,
}

/// Mark every unread message of the subscriber's inbox read (subscriber token).
#[utoipa::path(post, path = "/v1/inbox/read-all", tag = "inbox", security(("subscriber" = ["inbox"])),
    responses((status = 200, body = InboxRead)))]
pub async fn read_all(State(state): State<AppState>, session: SubscriberSession) -> Result<Json<InboxRead>, ApiError> {
    let marked = session.store.mark_inbox_read(session.workspace_id, session.subscriber_id, state.clock.now()).await?;
    Ok(Json(InboxRead { marked }))
}

/// The subscriber's own opt-outs (subscriber token), for a preferences page in your front end.
#[utoipa::path(get, path = "/v1/inbox/preferences", tag = "inbox", security(("subscriber" = ["inbox"])),
    responses((status = 200, body = chimatic_domain::Preferences)))]
pub async fn preferences(session: SubscriberSession) -> Result<Json<Preferences>, ApiError> {
    Ok(Json(session.store.subscriber(session.workspace_id, session.subscriber_id).await?.preferences))
}

/// Replace the subscriber's own opt-outs (subscriber token): per channel type and per workflow
/// category. Messages they rule out are recorded as `skipped` and never sent.
#[utoipa::path(put, path = "/v1/inbox/preferences", tag = "inbox", security(("subscriber" = ["inbox"])),
    request_body = chimatic_domain::Preferences,
    responses((status = 200, body = chimatic_domain::Preferences)),
    extensions(("x-codes" = json!([crate::ErrorCode::InvalidPreferences]))))]
pub async fn set_preferences(
    State(state): State<AppState>,
    session: SubscriberSession,
    ApiJson(req): ApiJson<Preferences>,
) -> Result<Json<Preferences>, ApiError> {
    super::subscribers::checked_preferences(&req)?;
    let (ws, id, now) = (session.workspace_id, session.subscriber_id, state.clock.now());
    Ok(Json(session.store.set_subscriber_preferences(ws, id, &req, now).await?.preferences))
}

/// New inbox messages as Server-Sent Events (subscriber token, `?token=` allowed): an `unread`
/// event with the count on connect, then a `message` event per new message and an `unread`
/// event after each batch.
#[utoipa::path(get, path = "/v1/inbox/stream", tag = "inbox", security(("subscriber" = ["inbox"])),
    responses((status = 200, content_type = "text/event-stream", body = String)))]
pub async fn stream(
    session: SubscriberSession,
) -> Result<Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let (first, unread) = session.store.inbox(session.workspace_id, session.subscriber_id, None, 1, false).await?;
    let newest = first.first().map(|n| n.id);
    let initial = vec![Event::default().event("unread").data(unread.to_string())];
    let state = (session, newest, initial);
    let events = futures_util::stream::unfold(state, |(session, mut newest, mut pending)| async move {
        loop {
            if !pending.is_empty() {
                let event = pending.remove(0);
                return Some((Ok(event), (session, newest, pending)));
            }
            tokio::time::sleep(POLL).await;
            // A freeze ends the stream; the client's reconnect then gets 423.
            if session.control.workspace(session.workspace_id).await.is_ok_and(|w| w.frozen_at.is_some()) {
                return None;
            }
            let Ok((page, unread)) =
                session.store.inbox(session.workspace_id, session.subscriber_id, None, 50, false).await
            else {
                continue;
            };
            // Ids are time-ordered (UUIDv7), so "newer than the last one sent" is a comparison.
            let fresh: Vec<_> = page.iter().filter(|n| newest.is_none_or(|known| n.id > known)).collect();
            if fresh.is_empty() {
                continue;
            }
            newest = fresh.first().map(|n| n.id);
            for n in fresh.iter().rev() {
                if let Ok(m) = inbox_message(n)
                    && let Ok(event) = Event::default().event("message").json_data(&m)
                {
                    pending.push(event);
                }
            }
            pending.push(Event::default().event("unread").data(unread.to_string()));
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
