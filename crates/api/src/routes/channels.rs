use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chimatic_domain::{ChannelId, OutboundTls, Scope, SpkiPin, WebhookUrl};
use chimatic_store::records::{Channel, ChannelEntry, DeactivatedChannel};
use serde::{Deserialize, Serialize};

use crate::auth::Tenant;
use crate::body::ApiJson;
use crate::params::{ApiQuery, QueryParams, parse_id};
use crate::{ApiError, AppState, ErrorCode};

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChannelType {
    Webhook,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"type": "webhook", "url": "https://hooks.example.com/chimatic"}))]
pub struct CreateChannel {
    #[serde(rename = "type")]
    pub kind: ChannelType,
    /// The destination. `https` is required (plain `http` only in development mode); it must
    /// resolve to a public address unless private destinations are allowed.
    #[schema(max_length = 2048)]
    pub url: String,
    /// How deliveries reach this receiver over TLS; default TLS 1.3 only, no pins.
    pub tls: Option<ChannelTls>,
}

/// A channel's outbound TLS policy. Certificates are always validated against the trusted roots;
/// pins add to that check, never replace it.
#[derive(Deserialize, Serialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ChannelTls {
    /// Also accept TLS 1.2 from this receiver, for legacy receivers only. Off by default; every
    /// channel that turns it on is logged as a warning.
    #[serde(default)]
    pub allow_tls12: bool,
    /// Up to 8 SHA-256 pins of the receiver's public key (SubjectPublicKeyInfo), each
    /// `sha256/<base64>`, e.g. from `openssl x509 -pubkey -noout | openssl pkey -pubin -outform der |
    /// openssl dgst -sha256 -binary | base64`. The receiver's certificate must match one of them.
    #[serde(default)]
    pub pins: Vec<String>,
}

impl From<&OutboundTls> for ChannelTls {
    fn from(t: &OutboundTls) -> Self {
        Self { allow_tls12: t.allow_tls12(), pins: t.pins().iter().map(ToString::to_string).collect() }
    }
}

impl ChannelTls {
    fn to_policy(&self) -> Result<OutboundTls, ApiError> {
        let invalid = |detail: String| ApiError::new(ErrorCode::InvalidTlsPolicy, detail);
        let pins = self
            .pins
            .iter()
            .enumerate()
            .map(|(i, p)| SpkiPin::parse(p).map_err(|e| invalid(format!("`tls.pins[{i}]`: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        OutboundTls::new(self.allow_tls12, pins).map_err(|e| invalid(format!("`tls.pins`: {e}")))
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "ch_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "type": "webhook", "status": "active", "url_masked": "https://hoo…", "tls": {"allow_tls12": false, "pins": []}, "created_at": "2024-11-03T06:41:14.931Z", "deactivated_at": null, "purge_at": null}))]
pub struct ChannelView {
    pub id: ChannelId,
    #[serde(rename = "type")]
    pub kind: String,
    /// `active`, or `deactivated`: nothing is sent to it and its destination is not shown.
    pub status: &'static str,
    /// Scheme and a host prefix only, e.g. `https://hoo…`; the full URL is never returned.
    /// Absent while the channel is deactivated.
    pub url_masked: Option<String>,
    /// Absent while the channel is deactivated.
    pub tls: Option<ChannelTls>,
    pub created_at: String,
    /// While deactivated: since when.
    pub deactivated_at: Option<String>,
    /// While deactivated: when it is purged for good, with its notifications, unless reactivated.
    pub purge_at: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "ch_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "type": "webhook", "status": "deactivated", "url_masked": null, "tls": null, "created_at": "2024-11-03T06:41:14.931Z",
    "deactivated_at": "2024-11-20T10:02:41.118Z", "purge_at": "2024-12-20T10:02:41.118Z", "cancelled_notifications": 3}))]
pub struct ChannelDeactivated {
    #[serde(flatten)]
    pub view: ChannelView,
    /// Queued notifications taken out of the queue (now `cancelled`).
    pub cancelled_notifications: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "ch_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "type": "webhook", "status": "active", "url_masked": "https://hoo…", "tls": {"allow_tls12": false, "pins": []},
    "created_at": "2024-11-03T06:41:14.931Z", "deactivated_at": null, "purge_at": null, "signing_secret": "whsec_ZXhhbXBsZS1vbmx5LW5vdC1hLXJlYWwtc2VjcmV0ISE="}))]
pub struct ChannelCreated {
    #[serde(flatten)]
    pub view: ChannelView,
    /// Standard Webhooks signing secret (`whsec_…`). Shown once.
    pub signing_secret: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"data": [{"id": "ch_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "type": "webhook", "status": "active", "url_masked": "https://hoo…", "tls": {"allow_tls12": false,
    "pins": []}, "created_at": "2024-11-03T06:41:14.931Z", "deactivated_at": null, "purge_at": null}], "next_cursor": null}))]
pub struct ChannelList {
    pub data: Vec<ChannelView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_cursor: Option<ChannelId>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Return channels after this id.
    #[param(value_type = Option<chimatic_domain::ChannelId>)]
    pub after: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

impl QueryParams for ListParams {
    fn expected() -> String {
        "query parameters are `after` (a channel id) and `limit` (1 to 200)".into()
    }
}

impl From<&Channel> for ChannelView {
    fn from(c: &Channel) -> Self {
        Self {
            id: c.id,
            kind: c.kind.clone(),
            status: "active",
            url_masked: Some(c.url.masked()),
            tls: Some(ChannelTls::from(&c.tls)),
            created_at: c.created_at.to_rfc3339(),
            deactivated_at: None,
            purge_at: None,
        }
    }
}

impl From<&DeactivatedChannel> for ChannelView {
    fn from(c: &DeactivatedChannel) -> Self {
        Self {
            id: c.id,
            kind: c.kind.clone(),
            status: "deactivated",
            url_masked: None,
            tls: None,
            created_at: c.created_at.to_rfc3339(),
            deactivated_at: Some(c.deactivated_at.to_rfc3339()),
            purge_at: Some(c.purge_at.to_rfc3339()),
        }
    }
}

impl From<&ChannelEntry> for ChannelView {
    fn from(c: &ChannelEntry) -> Self {
        match c {
            ChannelEntry::Active(c) => c.into(),
            ChannelEntry::Deactivated(c) => c.into(),
        }
    }
}

/// Create a webhook channel (scope `channels:write`).
#[utoipa::path(post, path = "/v1/channels", tag = "channels", security(("bearer" = ["channels:write"])), request_body = CreateChannel,
    responses((status = 201, body = ChannelCreated)),
    extensions(("x-codes" = json!([crate::ErrorCode::ForbiddenDestination, crate::ErrorCode::InvalidTlsPolicy, crate::ErrorCode::InvalidUrl]))))]
pub async fn create(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiJson(req): ApiJson<CreateChannel>,
) -> Result<(StatusCode, Json<ChannelCreated>), ApiError> {
    tenant.require(Scope::ChannelsWrite)?;
    let ChannelType::Webhook = req.kind;
    let url = WebhookUrl::parse(&req.url, state.destinations.allow_private)
        .map_err(|e| ApiError::new(ErrorCode::InvalidUrl, e.to_string()))?;
    let tls = req.tls.as_ref().map(ChannelTls::to_policy).transpose()?.unwrap_or_default();
    if !tls.is_default() && url.expose().scheme() != "https" {
        return Err(ApiError::new(ErrorCode::InvalidTlsPolicy, "a TLS policy needs an `https` URL"));
    }
    state
        .destinations
        .check(url.expose())
        .await
        .map_err(|e| ApiError::new(ErrorCode::ForbiddenDestination, e.to_string()))?;
    let (channel, secret) =
        tenant.store.create_channel(tenant.workspace_id, url, tls, state.clock.now(), &tenant.audit).await?;
    tracing::info!(workspace = %tenant.workspace_id, channel = %channel.id, "channel created");
    if channel.tls.allow_tls12() {
        tracing::warn!(workspace = %tenant.workspace_id, channel = %channel.id, "channel allows TLS 1.2 (legacy receiver override)");
    }
    let body = ChannelCreated { view: ChannelView::from(&channel), signing_secret: secret.to_text().into_inner() };
    Ok((StatusCode::CREATED, Json(body)))
}

/// Get a channel (scope `channels:read`), URL masked.
#[utoipa::path(get, path = "/v1/channels/{id}", tag = "channels", security(("bearer" = ["channels:read"])),
    params(("id" = chimatic_domain::ChannelId, Path, description = "Channel id (`ch_…`)")),
    responses((status = 200, body = ChannelView)))]
pub async fn get(tenant: Tenant, Path(id): Path<String>) -> Result<Json<ChannelView>, ApiError> {
    tenant.require(Scope::ChannelsRead)?;
    let id: ChannelId = parse_id(&id)?;
    let channel = tenant.store.channel(tenant.workspace_id, id).await?;
    Ok(Json(ChannelView::from(&channel)))
}

/// Deactivate a channel (scope `channels:write`): at once nothing more is sent to it, its queued
/// notifications are cancelled and its destination is no longer shown. It can be reactivated
/// until `purge_at` (30 days by default); then it is purged for good with its notifications and
/// attempts. Audited.
#[utoipa::path(post, path = "/v1/channels/{id}/deactivate", tag = "channels", security(("bearer" = ["channels:write"])),
    params(("id" = chimatic_domain::ChannelId, Path, description = "Channel id (`ch_…`)")),
    responses((status = 200, body = ChannelDeactivated)),
    extensions(("x-codes" = json!([crate::ErrorCode::Conflict]))))]
pub async fn deactivate(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<ChannelDeactivated>, ApiError> {
    tenant.require(Scope::ChannelsWrite)?;
    let id: ChannelId = parse_id(&id)?;
    let (channel, cancelled) = tenant
        .store
        .deactivate_channel(tenant.workspace_id, id, state.clock.now(), state.channel_retention, &tenant.audit)
        .await?;
    tracing::info!(workspace = %tenant.workspace_id, channel = %id, cancelled, "channel deactivated");
    Ok(Json(ChannelDeactivated { view: ChannelView::from(&channel), cancelled_notifications: cancelled }))
}

/// Reactivate a deactivated channel before its purge (scope `channels:write`). Notifications
/// cancelled by the deactivation stay cancelled. Audited.
#[utoipa::path(post, path = "/v1/channels/{id}/reactivate", tag = "channels", security(("bearer" = ["channels:write"])),
    params(("id" = chimatic_domain::ChannelId, Path, description = "Channel id (`ch_…`)")),
    responses((status = 200, body = ChannelView)),
    extensions(("x-codes" = json!([crate::ErrorCode::Conflict]))))]
pub async fn reactivate(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<ChannelView>, ApiError> {
    tenant.require(Scope::ChannelsWrite)?;
    let id: ChannelId = parse_id(&id)?;
    let channel = tenant.store.reactivate_channel(tenant.workspace_id, id, state.clock.now(), &tenant.audit).await?;
    tracing::info!(workspace = %tenant.workspace_id, channel = %id, "channel reactivated");
    Ok(Json(ChannelView::from(&channel)))
}

/// List channels (scope `channels:read`), URLs masked, cursor-paginated.
#[utoipa::path(get, path = "/v1/channels", tag = "channels", security(("bearer" = ["channels:read"])), params(ListParams),
    responses((status = 200, body = ChannelList)),
    extensions(("x-codes" = json!([crate::ErrorCode::InvalidQuery]))))]
pub async fn list(tenant: Tenant, ApiQuery(params): ApiQuery<ListParams>) -> Result<Json<ChannelList>, ApiError> {
    tenant.require(Scope::ChannelsRead)?;
    let after = params.after.as_deref().map(parse_id::<ChannelId>).transpose()?;
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::new(ErrorCode::InvalidQuery, "`limit` must be between 1 and 200"));
    }
    let channels = tenant.store.list_channels(tenant.workspace_id, after, limit).await?;
    let data: Vec<ChannelView> = channels.iter().map(ChannelView::from).collect();
    let next_cursor = (data.len() == limit as usize).then(|| data.last().map(|c| c.id)).flatten();
    Ok(Json(ChannelList { data, next_cursor }))
}
