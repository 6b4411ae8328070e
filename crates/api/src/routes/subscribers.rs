use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chimatic_domain::{
    ChannelAddress, ChannelKind, EmailAddress, PhoneNumber, Scope, Sensitive, SubscriberChannelId, SubscriberId,
    WebhookUrl, directory::is_slack_channel_id, mask_tail,
};
use chimatic_store::records::{Subscriber, SubscriberChannel};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::auth::Tenant;
use crate::body::ApiJson;
use crate::mask::mask_json;
use crate::params::{ApiQuery, QueryParams, parse_id};
use crate::{ApiError, AppState, ErrorCode};

const MAX_EXTERNAL_ID_LEN: usize = 255;
const MAX_ATTRIBUTES_BYTES: usize = 64 * 1024;
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"external_id": "user-1842", "attributes": {"name": "Ann", "locale": "en"}}))]
pub struct IdentifySubscriber {
    /// Your id for this user (1 to 255 characters). It may be personal data: it is stored
    /// encrypted and looked up by a keyed digest.
    #[schema(value_type = chimatic_domain::patterns::ExternalId)]
    pub external_id: Sensitive<String>,
    /// A JSON object of attributes (up to 64 KiB), e.g. name and locale; replaces the stored ones.
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Sensitive<Box<RawValue>>>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"attributes": {"name": "Ann", "locale": "de"}}))]
pub struct UpdateSubscriber {
    /// A JSON object of attributes (up to 64 KiB); replaces the stored ones.
    #[schema(value_type = Object)]
    pub attributes: Sensitive<Box<RawValue>>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "sub_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "external_id_masked": "…842", "attributes_masked": {"locale": "…", "name": "…"}, "created_at": "2024-11-03T06:41:14.931Z", "updated_at": "2024-11-03T06:41:14.931Z"}))]
pub struct SubscriberView {
    pub id: SubscriberId,
    /// The last characters of your id only.
    pub external_id_masked: String,
    /// Attribute names with masked values.
    #[schema(value_type = Object)]
    pub attributes_masked: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"data": [{"id": "sub_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "external_id_masked": "…842", "attributes_masked": {"locale": "…", "name": "…"}, "created_at": "2024-11-03T06:41:14.931Z", "updated_at": "2024-11-03T06:41:14.931Z"}], "next_cursor": null}))]
pub struct SubscriberList {
    pub data: Vec<SubscriberView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_cursor: Option<SubscriberId>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Return subscribers after this id.
    #[param(value_type = Option<chimatic_domain::SubscriberId>)]
    pub after: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

impl QueryParams for ListParams {
    fn expected() -> String {
        "query parameters are `after` (a subscriber id) and `limit` (1 to 200)".into()
    }
}

fn view(s: &Subscriber) -> Result<SubscriberView, ApiError> {
    let attributes: serde_json::Value = serde_json::from_slice(s.attributes.expose()).map_err(ApiError::internal)?;
    Ok(SubscriberView {
        id: s.id,
        external_id_masked: mask_tail(s.external_id.expose(), 3),
        attributes_masked: mask_json(&attributes),
        created_at: s.created_at.to_rfc3339(),
        updated_at: s.updated_at.to_rfc3339(),
    })
}

fn attributes_bytes(raw: Sensitive<Box<RawValue>>) -> Result<Sensitive<Vec<u8>>, ApiError> {
    let text = raw.expose().get();
    if !text.trim_start().starts_with('{') {
        return Err(ApiError::new(ErrorCode::InvalidAttributes, "`attributes` must be a JSON object"));
    }
    if text.len() > MAX_ATTRIBUTES_BYTES {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("`attributes` exceeds the limit of {MAX_ATTRIBUTES_BYTES} bytes"),
        ));
    }
    Ok(Sensitive::new(text.as_bytes().to_vec()))
}

/// Create a subscriber, or update the one with this `external_id` (scope `subscribers:write`):
/// 201 when created, 200 when it existed.
#[utoipa::path(post, path = "/v1/subscribers", tag = "subscribers", security(("bearer" = ["subscribers:write"])), request_body = IdentifySubscriber,
    responses((status = 201, body = SubscriberView), (status = 200, body = SubscriberView)),
    extensions(("x-codes" = json!([crate::ErrorCode::InvalidAttributes, crate::ErrorCode::InvalidExternalId, crate::ErrorCode::PayloadTooLarge]))))]
pub async fn identify(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiJson(req): ApiJson<IdentifySubscriber>,
) -> Result<(StatusCode, Json<SubscriberView>), ApiError> {
    tenant.require(Scope::SubscribersWrite)?;
    let len = req.external_id.expose().chars().count();
    if len == 0 || len > MAX_EXTERNAL_ID_LEN {
        return Err(ApiError::new(ErrorCode::InvalidExternalId, "`external_id` must be 1 to 255 characters"));
    }
    let attributes = req.attributes.map(attributes_bytes).transpose()?;
    let (subscriber, created) =
        tenant.store.identify_subscriber(tenant.workspace_id, &req.external_id, attributes, state.clock.now()).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(view(&subscriber)?)))
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"subscriber_id": "sub_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "erased_at": "2024-11-21T15:30:00.412Z", "key_destroyed": true, "channels": 2, "messages": 14, "attempts": 15, "topic_memberships": 1}))]
pub struct ErasureReceipt {
    pub subscriber_id: SubscriberId,
    pub erased_at: String,
    /// The subscriber's own key was destroyed first: whatever of its data is left anywhere
    /// (backups, copies) can no longer be decrypted.
    pub key_destroyed: bool,
    pub channels: u64,
    /// Messages (in-app inbox included) deleted with their queue entries.
    pub messages: u64,
    pub attempts: u64,
    pub topic_memberships: u64,
}

/// Erase a subscriber (GDPR; scope `subscribers:write`): destroys its key, then deletes its
/// channels, messages, attempts, inbox and topic memberships, permanently. Other subscribers are
/// untouched. Suppression-list entries for its addresses stay (keyed digests kept to honour
/// the suppression; the address itself is encrypted under the workspace key).
#[utoipa::path(delete, path = "/v1/subscribers/{id}", tag = "subscribers", security(("bearer" = ["subscribers:write"])),
    params(("id" = chimatic_domain::SubscriberId, Path, description = "Subscriber id (`sub_…`)")),
    responses((status = 200, body = ErasureReceipt)))]
pub async fn erase(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<ErasureReceipt>, ApiError> {
    tenant.require(Scope::SubscribersWrite)?;
    let id: SubscriberId = parse_id(&id)?;
    let counts = tenant.store.erase_subscriber(tenant.workspace_id, id, state.clock.now(), &tenant.audit).await?;
    tracing::info!(workspace = %tenant.workspace_id, subscriber = %id, "subscriber erased");
    Ok(Json(ErasureReceipt {
        subscriber_id: id,
        erased_at: state.clock.now().to_rfc3339(),
        key_destroyed: true,
        channels: counts.channels,
        messages: counts.messages,
        attempts: counts.attempts,
        topic_memberships: counts.topics,
    }))
}

/// Get a subscriber (scope `subscribers:read`), masked.
#[utoipa::path(get, path = "/v1/subscribers/{id}", tag = "subscribers", security(("bearer" = ["subscribers:read"])),
    params(("id" = chimatic_domain::SubscriberId, Path, description = "Subscriber id (`sub_…`)")),
    responses((status = 200, body = SubscriberView)))]
pub async fn get(tenant: Tenant, Path(id): Path<String>) -> Result<Json<SubscriberView>, ApiError> {
    tenant.require(Scope::SubscribersRead)?;
    let id: SubscriberId = parse_id(&id)?;
    Ok(Json(view(&tenant.store.subscriber(tenant.workspace_id, id).await?)?))
}

/// Replace a subscriber's attributes (scope `subscribers:write`).
#[utoipa::path(patch, path = "/v1/subscribers/{id}", tag = "subscribers", security(("bearer" = ["subscribers:write"])), request_body = UpdateSubscriber,
    params(("id" = chimatic_domain::SubscriberId, Path, description = "Subscriber id (`sub_…`)")),
    responses((status = 200, body = SubscriberView)),
    extensions(("x-codes" = json!([crate::ErrorCode::ForbiddenDestination, crate::ErrorCode::InvalidAddress, crate::ErrorCode::InvalidAttributes, crate::ErrorCode::InvalidExternalId, crate::ErrorCode::InvalidPreferences, crate::ErrorCode::InvalidTtl, crate::ErrorCode::InvalidUrl, crate::ErrorCode::PayloadTooLarge]))))]
pub async fn update(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateSubscriber>,
) -> Result<Json<SubscriberView>, ApiError> {
    tenant.require(Scope::SubscribersWrite)?;
    let id: SubscriberId = parse_id(&id)?;
    let attributes = attributes_bytes(req.attributes)?;
    let s = tenant.store.update_subscriber_attributes(tenant.workspace_id, id, attributes, state.clock.now()).await?;
    Ok(Json(view(&s)?))
}

/// List subscribers (scope `subscribers:read`), masked, cursor-paginated.
#[utoipa::path(get, path = "/v1/subscribers", tag = "subscribers", security(("bearer" = ["subscribers:read"])), params(ListParams),
    responses((status = 200, body = SubscriberList)))]
pub async fn list(tenant: Tenant, ApiQuery(params): ApiQuery<ListParams>) -> Result<Json<SubscriberList>, ApiError> {
    tenant.require(Scope::SubscribersRead)?;
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ListParams::invalid());
    }
    let after = params.after.as_deref().map(parse_id::<SubscriberId>).transpose()?;
    let subscribers = tenant.store.list_subscribers(tenant.workspace_id, after, limit).await?;
    let next_cursor = if subscribers.len() == limit as usize { subscribers.last().map(|s| s.id) } else { None };
    let data = subscribers.iter().map(view).collect::<Result<Vec<_>, _>>()?;
    Ok(Json(SubscriberList { data, next_cursor }))
}

/// A way to reach a subscriber. Exactly the fields of its `type`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
#[schema(example = json!({"type": "email", "address": "ann@example.com"}))]
pub enum CreateSubscriberChannel {
    Email {
        #[schema(value_type = String, example = "alice@example.com")]
        address: Sensitive<String>,
    },
    Sms {
        /// E.164, e.g. `+14155550123`.
        #[schema(value_type = String, example = "+14155550123")]
        phone: Sensitive<String>,
    },
    /// Either an incoming-webhook URL, or a channel id reached through the workspace's Slack
    /// bot integration.
    Slack {
        #[schema(value_type = Option<String>)]
        webhook_url: Option<Sensitive<String>>,
        channel_id: Option<String>,
    },
    Webhook {
        #[schema(value_type = String)]
        url: Sensitive<String>,
    },
    Inapp {},
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "sch_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "type": "email", "address_masked": "a…@…", "created_at": "2024-11-03T06:41:14.931Z"}))]
pub struct SubscriberChannelView {
    pub id: SubscriberChannelId,
    #[serde(rename = "type")]
    pub kind: ChannelKind,
    /// A prefix or suffix only, e.g. `ali…@…` or `+…0123`.
    pub address_masked: String,
    pub created_at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"data": [{"id": "sch_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "type": "email", "address_masked": "a…@…", "created_at": "2024-11-03T06:41:14.931Z"}, {"id": "sch_0192f0c1a2b37c4d8e9f0a1b2c3d4e60", "type": "sms", "address_masked": "+…0123",
    "created_at": "2024-11-03T06:41:14.931Z"}, {"id": "sch_0192f0c1a2b37c4d8e9f0a1b2c3d4e61", "type": "inapp", "address_masked": "inbox", "created_at": "2024-11-03T06:41:14.931Z"}]}))]
pub struct SubscriberChannelList {
    pub data: Vec<SubscriberChannelView>,
}

impl From<&SubscriberChannel> for SubscriberChannelView {
    fn from(c: &SubscriberChannel) -> Self {
        Self {
            id: c.id,
            kind: c.address.kind(),
            address_masked: c.address.masked(),
            created_at: c.created_at.to_rfc3339(),
        }
    }
}

async fn address_of(req: CreateSubscriberChannel, state: &AppState) -> Result<ChannelAddress, ApiError> {
    let url = |text: &str, field: &str| {
        WebhookUrl::parse(text, state.destinations.allow_private)
            .map_err(|e| ApiError::new(ErrorCode::InvalidUrl, format!("`{field}`: {e}")))
    };
    let address = match req {
        CreateSubscriberChannel::Email { address } => ChannelAddress::Email(
            EmailAddress::parse(address.expose())
                .map_err(|e| ApiError::new(ErrorCode::InvalidAddress, format!("`address`: {e}")))?,
        ),
        CreateSubscriberChannel::Sms { phone } => ChannelAddress::Sms(
            PhoneNumber::parse(phone.expose())
                .map_err(|e| ApiError::new(ErrorCode::InvalidAddress, format!("`phone`: {e}")))?,
        ),
        CreateSubscriberChannel::Slack { webhook_url: Some(u), channel_id: None } => {
            ChannelAddress::SlackWebhook(url(u.expose(), "webhook_url")?)
        }
        CreateSubscriberChannel::Slack { webhook_url: None, channel_id: Some(c) } if is_slack_channel_id(&c) => {
            ChannelAddress::SlackChannel(c)
        }
        CreateSubscriberChannel::Slack { .. } => {
            return Err(ApiError::new(
                ErrorCode::InvalidAddress,
                "a slack channel needs exactly one of `webhook_url` or `channel_id` (e.g. `C0123456789`)",
            ));
        }
        CreateSubscriberChannel::Webhook { url: u } => ChannelAddress::Webhook(url(u.expose(), "url")?),
        CreateSubscriberChannel::Inapp {} => ChannelAddress::Inapp,
    };
    if let ChannelAddress::Webhook(u) | ChannelAddress::SlackWebhook(u) = &address {
        state
            .destinations
            .check(u.expose())
            .await
            .map_err(|e| ApiError::new(ErrorCode::ForbiddenDestination, e.to_string()))?;
    }
    Ok(address)
}

/// Add a channel to a subscriber (scope `subscribers:write`): `email`, `sms`, `slack`,
/// `webhook` or `inapp`. The address is validated, stored encrypted under the subscriber's key
/// and only ever shown masked.
#[utoipa::path(post, path = "/v1/subscribers/{id}/channels", tag = "subscribers", security(("bearer" = ["subscribers:write"])), request_body = CreateSubscriberChannel,
    params(("id" = chimatic_domain::SubscriberId, Path, description = "Subscriber id (`sub_…`)")),
    responses((status = 201, body = SubscriberChannelView)),
    extensions(("x-codes" = json!([crate::ErrorCode::ForbiddenDestination, crate::ErrorCode::InvalidAddress, crate::ErrorCode::InvalidUrl]))))]
pub async fn add_channel(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CreateSubscriberChannel>,
) -> Result<(StatusCode, Json<SubscriberChannelView>), ApiError> {
    tenant.require(Scope::SubscribersWrite)?;
    let id: SubscriberId = parse_id(&id)?;
    let address = address_of(req, &state).await?;
    let channel =
        tenant.store.add_subscriber_channel(tenant.workspace_id, id, address, state.clock.now(), &tenant.audit).await?;
    Ok((StatusCode::CREATED, Json(SubscriberChannelView::from(&channel))))
}

/// A subscriber's channels (scope `subscribers:read`), masked.
#[utoipa::path(get, path = "/v1/subscribers/{id}/channels", tag = "subscribers", security(("bearer" = ["subscribers:read"])),
    params(("id" = chimatic_domain::SubscriberId, Path, description = "Subscriber id (`sub_…`)")),
    responses((status = 200, body = SubscriberChannelList)))]
pub async fn list_channels(tenant: Tenant, Path(id): Path<String>) -> Result<Json<SubscriberChannelList>, ApiError> {
    tenant.require(Scope::SubscribersRead)?;
    let id: SubscriberId = parse_id(&id)?;
    let channels = tenant.store.subscriber_channels(tenant.workspace_id, id).await?;
    Ok(Json(SubscriberChannelList { data: channels.iter().map(SubscriberChannelView::from).collect() }))
}

/// Remove a subscriber's channel (scope `subscribers:write`).
#[utoipa::path(delete, path = "/v1/subscribers/{id}/channels/{channel_id}", tag = "subscribers", security(("bearer" = ["subscribers:write"])),
    params(("id" = chimatic_domain::SubscriberId, Path, description = "Subscriber id (`sub_…`)"),
           ("channel_id" = chimatic_domain::SubscriberChannelId, Path, description = "Subscriber channel id (`sch_…`)")),
    responses((status = 204)))]
pub async fn remove_channel(
    State(state): State<AppState>,
    tenant: Tenant,
    Path((id, channel_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    tenant.require(Scope::SubscribersWrite)?;
    let id: SubscriberId = parse_id(&id)?;
    let channel_id: SubscriberChannelId = parse_id(&channel_id)?;
    tenant
        .store
        .remove_subscriber_channel(tenant.workspace_id, id, channel_id, state.clock.now(), &tenant.audit)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InboxParams {
    /// Return messages older than this notification id (the previous page's `next_cursor`).
    #[param(value_type = Option<chimatic_domain::NotificationId>)]
    pub before: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Include archived messages (default false).
    pub archived: Option<bool>,
    /// On `/v1/inbox` only: the subscriber token, for clients that cannot send headers.
    #[allow(dead_code)] // read from the query by `SubscriberSession`; declared so it is documented and accepted
    pub token: Option<String>,
}

impl QueryParams for InboxParams {
    fn expected() -> String {
        "query parameters are `before` (a notification id), `limit` (1 to 200) and `archived` (true or false)".into()
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "msg_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "title": "Shipped", "text": "Order 42 is on its way", "read_at": "2024-11-03T06:45:02.310Z", "archived_at": null, "created_at": "2024-11-03T06:41:14.931Z"}))]
pub struct InboxMessage {
    pub id: chimatic_domain::NotificationId,
    pub title: Option<String>,
    pub text: String,
    pub read_at: Option<String>,
    pub archived_at: Option<String>,
    pub created_at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"data": [{"id": "msg_0192f0c1a2b37c4d8e9f0a1b2c3d4e60", "title": "Shipped", "text": "Order 43 is on its way", "read_at": null, "archived_at": null, "created_at": "2024-11-03T07:02:51.730Z"}, {"id": "msg_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f",
    "title": "Shipped", "text": "Order 42 is on its way", "read_at": "2024-11-03T06:45:02.310Z", "archived_at": null, "created_at": "2024-11-03T06:41:14.931Z"}], "unread_count": 1, "next_cursor": null}))]
pub struct Inbox {
    /// Newest first.
    pub data: Vec<InboxMessage>,
    /// Messages neither read nor archived.
    pub unread_count: u64,
    pub next_cursor: Option<chimatic_domain::NotificationId>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"read": true}))]
pub struct MarkInboxMessage {
    pub read: Option<bool>,
    pub archived: Option<bool>,
}

pub(crate) fn inbox_message(n: &chimatic_store::records::Notification) -> Result<InboxMessage, ApiError> {
    // A message whose content retention removed is no longer in the inbox.
    let content = n.payload.as_ref().ok_or_else(ApiError::not_found)?;
    let content: chimatic_domain::RenderedMessage =
        serde_json::from_slice(content.expose()).map_err(ApiError::internal)?;
    Ok(InboxMessage {
        id: n.id,
        title: content.title,
        text: content.text,
        read_at: n.read_at.map(|t| t.to_rfc3339()),
        archived_at: n.archived_at.map(|t| t.to_rfc3339()),
        created_at: n.created_at.to_rfc3339(),
    })
}

/// A subscriber's in-app inbox (scope `subscribers:read`): newest first, cursor-paginated,
/// with the unread count.
#[utoipa::path(get, path = "/v1/subscribers/{id}/inbox", tag = "subscribers", security(("bearer" = ["subscribers:read"])), params(
        ("id" = chimatic_domain::SubscriberId, Path, description = "Subscriber id (`sub_…`)"), InboxParams),
    responses((status = 200, body = Inbox)))]
pub async fn inbox(
    tenant: Tenant,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<InboxParams>,
) -> Result<Json<Inbox>, ApiError> {
    tenant.require(Scope::SubscribersRead)?;
    let id: SubscriberId = parse_id(&id)?;
    inbox_page(&tenant.store, tenant.workspace_id, id, params).await
}

/// One page of an inbox, for the API (by key) and for browsers (by subscriber token).
pub(crate) async fn inbox_page(
    store: &chimatic_store::Store,
    ws: chimatic_domain::WorkspaceId,
    id: SubscriberId,
    params: InboxParams,
) -> Result<Json<Inbox>, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(InboxParams::invalid());
    }
    let before = params.before.as_deref().map(parse_id::<chimatic_domain::NotificationId>).transpose()?;
    let (messages, unread_count) = store.inbox(ws, id, before, limit, params.archived.unwrap_or(false)).await?;
    let next_cursor = if messages.len() == limit as usize { messages.last().map(|m| m.id) } else { None };
    let data = messages.iter().map(inbox_message).collect::<Result<Vec<_>, _>>()?;
    Ok(Json(Inbox { data, unread_count, next_cursor }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"ttl_seconds": 3600, "scopes": ["inbox", "portal"]}))]
pub struct IssueToken {
    /// How long the token is valid, 60 to 86400 seconds (default 3600).
    #[serde(default, deserialize_with = "chimatic_domain::whole_number::optional_u32")]
    #[schema(minimum = 60, maximum = 86400)]
    pub ttl_seconds: Option<u32>,
    /// What it opens: `inbox` (`/v1/inbox…`) and/or `portal` (`/v1/portal/…`, the subscriber's
    /// webhook endpoints). Default `["inbox"]`.
    #[schema(min_items = 1)]
    pub scopes: Option<Vec<chimatic_domain::SubscriberScope>>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"token": "sbt_eyJ3Ijoid3NfMDE5MmYwYzFhMmIzN2M0ZDhlOWYwYTFiMmMzZDRlNWYiLCJzIjoic3ViXzAxOTJmMGMxYTJiMzdjNGQ4ZTlmMGExYjJjM2Q0ZTVmIiwiZSI6MTczMDYxOTY3NDkzMSwiayI6WyJpbmJveCIsInBvcnRhbCJdfQ.EXAMPLE-mac-not-a-real-signature-0000000000", "scopes": ["inbox", "portal"], "expires_at": "2024-11-03T07:41:14.931Z"}))]
#[schema(example = json!({"token": "sbt_eyJ3Ijoid3NfMDE5MmYwYzFhMmIzN2M0ZDhlOWYwYTFiMmMzZDRlNWYiLCJzIjoic3ViXzAxOTJmMGMxYTJiMzdjNGQ4ZTlmMGExYjJjM2Q0ZTVmIiwiZSI6MTczMDYxOTY3NDkzMSwiayI6WyJpbmJveCIsInBvcnRhbCJdfQ.EXAMPLE-mac-not-a-real-signature-0000000000", "scopes": ["inbox", "portal"], "expires_at": "2024-11-03T07:41:14.931Z"}))]
pub struct SubscriberToken {
    /// `sbt_…`: lets a browser use this subscriber's inbox and/or webhook portal, nothing else.
    pub token: String,
    pub scopes: Vec<chimatic_domain::SubscriberScope>,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// Issue a short-lived token for one subscriber (scope `subscribers:write`), for your front end:
/// with `inbox` it reads `/v1/inbox` and `/v1/inbox/stream`, with `portal` it manages the
/// subscriber's webhook endpoints (`/v1/portal/…`), without your API key.
#[utoipa::path(post, path = "/v1/subscribers/{id}/token", tag = "subscribers", security(("bearer" = ["subscribers:write"])), request_body = IssueToken,
    params(("id" = chimatic_domain::SubscriberId, Path, description = "Subscriber id (`sub_…`)")),
    responses((status = 201, body = SubscriberToken)),
    extensions(("x-codes" = json!([crate::ErrorCode::InvalidScopes, crate::ErrorCode::InvalidTtl]))))]
pub async fn issue_token(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<IssueToken>,
) -> Result<(StatusCode, Json<SubscriberToken>), ApiError> {
    tenant.require(Scope::SubscribersWrite)?;
    let id: SubscriberId = parse_id(&id)?;
    let ttl = req.ttl_seconds.unwrap_or(3600);
    if !(60..=86_400).contains(&ttl) {
        return Err(ApiError::new(ErrorCode::InvalidTtl, "`ttl_seconds` must be 60 to 86400"));
    }
    let mut scopes = req.scopes.unwrap_or_else(|| vec![chimatic_domain::SubscriberScope::Inbox]);
    if scopes.is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidScopes, "`scopes` needs at least one of `inbox` or `portal`"));
    }
    scopes.sort();
    scopes.dedup();
    let expires_at = state.clock.now().plus(std::time::Duration::from_secs(u64::from(ttl)));
    let token = tenant.store.issue_subscriber_token(tenant.workspace_id, id, &scopes, expires_at).await?;
    let body = SubscriberToken { token: token.into_inner(), scopes, expires_at: expires_at.to_rfc3339() };
    Ok((StatusCode::CREATED, Json(body)))
}

/// Mark an inbox message read or unread, archived or not (scope `subscribers:write`).
#[utoipa::path(patch, path = "/v1/subscribers/{id}/inbox/{message_id}", tag = "subscribers", security(("bearer" = ["subscribers:write"])), request_body = MarkInboxMessage,
    params(("id" = chimatic_domain::SubscriberId, Path, description = "Subscriber id (`sub_…`)"),
           ("message_id" = chimatic_domain::NotificationId, Path, description = "Notification id (`msg_…`)")),
    responses((status = 200, body = InboxMessage)))]
pub async fn mark_inbox(
    State(state): State<AppState>,
    tenant: Tenant,
    Path((id, message_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<MarkInboxMessage>,
) -> Result<Json<InboxMessage>, ApiError> {
    tenant.require(Scope::SubscribersWrite)?;
    let id: SubscriberId = parse_id(&id)?;
    let message_id: chimatic_domain::NotificationId = parse_id(&message_id)?;
    let n =
        tenant.store.mark_inbox(tenant.workspace_id, id, message_id, req.read, req.archived, state.clock.now()).await?;
    Ok(Json(inbox_message(&n)?))
}

/// A subscriber's opt-outs (scope `subscribers:read`).
#[utoipa::path(get, path = "/v1/subscribers/{id}/preferences", tag = "subscribers", security(("bearer" = ["subscribers:read"])),
    params(("id" = chimatic_domain::SubscriberId, Path, description = "Subscriber id (`sub_…`)")),
    responses((status = 200, body = chimatic_domain::Preferences)))]
pub async fn preferences(
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<chimatic_domain::Preferences>, ApiError> {
    tenant.require(Scope::SubscribersRead)?;
    let id: SubscriberId = parse_id(&id)?;
    Ok(Json(tenant.store.subscriber(tenant.workspace_id, id).await?.preferences))
}

/// Replace a subscriber's opt-outs (scope `subscribers:write`): per channel type
/// (`{"channels": {"sms": false}}`) and per workflow category (`{"categories": {"marketing":
/// false}}`). Messages they rule out are recorded as `skipped` and never sent.
#[utoipa::path(put, path = "/v1/subscribers/{id}/preferences", tag = "subscribers", security(("bearer" = ["subscribers:write"])), request_body = chimatic_domain::Preferences,
    params(("id" = chimatic_domain::SubscriberId, Path, description = "Subscriber id (`sub_…`)")),
    responses((status = 200, body = chimatic_domain::Preferences)),
    extensions(("x-codes" = json!([crate::ErrorCode::InvalidPreferences]))))]
pub async fn set_preferences(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<chimatic_domain::Preferences>,
) -> Result<Json<chimatic_domain::Preferences>, ApiError> {
    tenant.require(Scope::SubscribersWrite)?;
    let id: SubscriberId = parse_id(&id)?;
    checked_preferences(&req)?;
    let s = tenant.store.set_subscriber_preferences(tenant.workspace_id, id, &req, state.clock.now()).await?;
    Ok(Json(s.preferences))
}

/// Up to 100 category names of 1 to 64 of `a-z 0-9 . _ -`.
pub(crate) fn checked_preferences(preferences: &chimatic_domain::Preferences) -> Result<(), ApiError> {
    let names_ok = preferences.categories.keys().all(|c| chimatic_domain::is_event_name(c) && c.len() <= 64);
    if preferences.categories.len() > 100 || !names_ok {
        return Err(ApiError::new(
            ErrorCode::InvalidPreferences,
            "`categories` takes up to 100 names of 1 to 64 of `a-z 0-9 . _ -`",
        ));
    }
    Ok(())
}
