use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chimatic_domain::{ApiKeyId, Scope, Scopes};
use chimatic_store::ApiKeyRow;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::body::ApiJson;
use crate::params::{checked_name, parse_id};
use crate::{ApiError, AppState, ErrorCode};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "billing-service", "scopes": ["notifications:write"]}))]
pub struct CreateApiKey {
    /// A label for the key, e.g. the service that uses it.
    #[schema(value_type = chimatic_domain::patterns::Label)]
    pub name: String,
    #[schema(min_items = 1)]
    pub scopes: Vec<Scope>,
}

/// An API key as listed: never the key, never its hash.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    pub id: ApiKeyId,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// The last four characters, for identification.
    pub last4: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "key_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "name": "billing-service", "scopes": ["notifications:write"], "last4": "Xa4Q", "created_at": "2024-11-03T06:41:14.931Z", "last_used_at": null, "revoked_at": null, "key": "chm_EXAMPLE-key-not-a-real-one-000000000000Xa4Q"}))]
pub struct ApiKeyCreated {
    #[serde(flatten)]
    pub view: ApiKeyView,
    /// The key itself. Shown once: only its SHA-256 digest is stored.
    pub key: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"data": [{"id": "key_0192f0c1a2b37c4d8e9f0a1b2c3d4e60", "name": "owner", "scopes": ["admin"], "last4": "k2Zp", "created_at": "2024-11-03T06:40:02.117Z", "last_used_at": "2024-11-03T06:41:14.902Z", "revoked_at": null},
    {"id": "key_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "name": "billing-service", "scopes": ["notifications:write"], "last4": "Xa4Q", "created_at": "2024-11-03T06:41:14.931Z", "last_used_at": null, "revoked_at": null}]}))]
pub struct ApiKeyList {
    pub data: Vec<ApiKeyView>,
}

impl From<&ApiKeyRow> for ApiKeyView {
    fn from(r: &ApiKeyRow) -> Self {
        Self {
            id: r.id,
            name: r.name.clone(),
            scopes: r.scopes.as_slice().to_vec(),
            last4: r.last4.clone(),
            created_at: r.created_at.to_rfc3339(),
            last_used_at: r.last_used_at.map(|t| t.to_rfc3339()),
            revoked_at: r.revoked_at.map(|t| t.to_rfc3339()),
        }
    }
}

/// An API key's name, trimmed: 1 to 100 printable characters.
/// Create an API key (scope `admin`). The key is in this response only.
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", security(("bearer" = ["admin"])), request_body = CreateApiKey,
    responses((status = 201, body = ApiKeyCreated)),
    extensions(("x-codes" = json!([crate::ErrorCode::InvalidName, crate::ErrorCode::InvalidScopes]))))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateApiKey>,
) -> Result<(StatusCode, Json<ApiKeyCreated>), ApiError> {
    caller.require(Scope::Admin)?;
    let name = checked_name(&req.name)?;
    let scopes = Scopes::new(req.scopes)
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidScopes, "`scopes` must name at least one scope"))?;
    let (row, key) =
        state.control.create_api_key(caller.workspace_id, name, scopes, state.clock.now(), &caller.audit).await?;
    tracing::info!(workspace = %caller.workspace_id, api_key = %row.id, by = %caller.by, "API key created");
    Ok((StatusCode::CREATED, Json(ApiKeyCreated { view: ApiKeyView::from(&row), key: key.into_inner() })))
}

/// List this workspace's API keys (scope `admin`).
#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys", security(("bearer" = ["admin"])),
    responses((status = 200, body = ApiKeyList)))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<ApiKeyList>, ApiError> {
    caller.require(Scope::Admin)?;
    let rows = state.control.list_api_keys(caller.workspace_id).await?;
    Ok(Json(ApiKeyList { data: rows.iter().map(ApiKeyView::from).collect() }))
}

/// Revoke an API key (scope `admin`). Effective on the very next request.
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys", security(("bearer" = ["admin"])),
    params(("id" = chimatic_domain::ApiKeyId, Path, description = "API key id (`key_…`)")),
    responses((status = 204)))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Admin)?;
    let id: ApiKeyId = parse_id(&id)?;
    state.control.revoke_api_key(caller.workspace_id, id, state.clock.now(), &caller.audit).await?;
    tracing::info!(workspace = %caller.workspace_id, api_key = %id, by = %caller.by, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}
