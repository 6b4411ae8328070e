//! The workspace's suppression list: addresses it no longer sends to. Providers' hard bounces,
//! complaints and STOP replies add to it (`/v1/inbound/{integration_id}`); it can also be edited
//! here. Messages to a suppressed address are recorded as `suppressed` and never sent.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chimatic_domain::{
    ChannelAddress, ChannelKind, EmailAddress, IntegrationId, PhoneNumber, Scope, Sensitive, SuppressionId,
};
use chimatic_store::Suppression;
use serde::{Deserialize, Serialize};

use crate::auth::Tenant;
use crate::body::ApiJson;
use crate::params::{ApiQuery, QueryParams, parse_id};
use crate::{ApiError, AppState, ErrorCode};

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

/// The channel types whose addresses can be suppressed.
#[derive(Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SuppressibleKind {
    Email,
    Sms,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"type": "email", "address": "bounced@example.com"}))]
pub struct CreateSuppression {
    #[serde(rename = "type")]
    pub kind: SuppressibleKind,
    /// An email address, or an E.164 phone number for `sms`.
    #[schema(value_type = String)]
    pub address: Sensitive<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "sup_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "type": "email", "address_masked": "bou…@…", "reason": "manual", "integration_id": null, "created_at": "2024-11-03T06:41:14.931Z"}))]
pub struct SuppressionView {
    pub id: SuppressionId,
    #[serde(rename = "type")]
    pub kind: ChannelKind,
    /// A prefix or suffix only.
    pub address_masked: String,
    /// `hard_bounce`, `complaint`, `unsubscribed` (an SMS STOP reply) or `manual`.
    pub reason: String,
    /// The integration whose provider reported it.
    pub integration_id: Option<IntegrationId>,
    pub created_at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"data": [{"id": "sup_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "type": "email", "address_masked": "bou…@…", "reason": "manual", "integration_id": null, "created_at": "2024-11-03T06:41:14.931Z"}, {"id": "sup_0192f0c1a2b37c4d8e9f0a1b2c3d4e60",
    "type": "email", "address_masked": "old…@…", "reason": "hard_bounce", "integration_id": "int_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "created_at": "2024-11-03T06:41:14.931Z"}], "next_cursor": null}))]
pub struct SuppressionList {
    pub data: Vec<SuppressionView>,
    pub next_cursor: Option<SuppressionId>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SuppressionPage {
    #[param(value_type = Option<chimatic_domain::SuppressionId>)]
    pub after: Option<String>,
    /// 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

impl QueryParams for SuppressionPage {
    fn expected() -> String {
        "query parameters are `after` (a suppression id) and `limit` (1 to 1000)".into()
    }
}

fn view(s: Suppression) -> SuppressionView {
    SuppressionView {
        id: s.id,
        kind: s.address.kind(),
        address_masked: s.address.masked(),
        reason: s.reason,
        integration_id: s.integration_id,
        created_at: s.created_at.to_rfc3339(),
    }
}

/// Suppress an address by hand (scope `subscribers:write`).
#[utoipa::path(post, path = "/v1/suppressions", tag = "suppressions", security(("bearer" = ["subscribers:write"])), request_body = CreateSuppression,
    responses((status = 201, body = SuppressionView)),
    extensions(("x-codes" = json!([crate::ErrorCode::Conflict, crate::ErrorCode::InvalidAddress]))))]
pub async fn create(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiJson(req): ApiJson<CreateSuppression>,
) -> Result<(StatusCode, Json<SuppressionView>), ApiError> {
    tenant.require(Scope::SubscribersWrite)?;
    let invalid = |detail: String| ApiError::new(ErrorCode::InvalidAddress, detail);
    let address = match req.kind {
        SuppressibleKind::Email => {
            ChannelAddress::Email(EmailAddress::parse(req.address.expose()).map_err(|e| invalid(e.to_string()))?)
        }
        SuppressibleKind::Sms => {
            ChannelAddress::Sms(PhoneNumber::parse(req.address.expose()).map_err(|e| invalid(e.to_string()))?)
        }
    };
    let created = tenant.store.suppress(tenant.workspace_id, &address, "manual", state.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(view(created))))
}

/// The suppression list, masked (scope `subscribers:read`).
#[utoipa::path(get, path = "/v1/suppressions", tag = "suppressions", security(("bearer" = ["subscribers:read"])), params(SuppressionPage),
    responses((status = 200, body = SuppressionList)),
    extensions(("x-codes" = json!([crate::ErrorCode::InvalidLimit]))))]
pub async fn list(
    tenant: Tenant,
    ApiQuery(page): ApiQuery<SuppressionPage>,
) -> Result<Json<SuppressionList>, ApiError> {
    tenant.require(Scope::SubscribersRead)?;
    let after = page.after.as_deref().map(parse_id::<SuppressionId>).transpose()?;
    let limit = page.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::new(ErrorCode::InvalidLimit, format!("`limit` must be 1 to {MAX_PAGE}")));
    }
    let rows = tenant.store.list_suppressions(tenant.workspace_id, after, limit).await?;
    let next_cursor = if rows.len() == limit as usize { rows.last().map(|s| s.id) } else { None };
    Ok(Json(SuppressionList { data: rows.into_iter().map(view).collect(), next_cursor }))
}

/// Take an address off the suppression list (scope `subscribers:write`).
#[utoipa::path(delete, path = "/v1/suppressions/{id}", tag = "suppressions", security(("bearer" = ["subscribers:write"])),
    params(("id" = chimatic_domain::SuppressionId, Path, description = "`sup_…`")),
    responses((status = 204)))]
pub async fn delete(tenant: Tenant, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    tenant.require(Scope::SubscribersWrite)?;
    tenant.store.delete_suppression(tenant.workspace_id, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
