//! Operator endpoints (`/v1/admin/…`), authenticated by the operator token, not an API key.

use axum::Json;
use axum::extract::{Path, State};
use chimatic_domain::WorkspaceId;
use serde::Serialize;

use crate::auth::Operator;
use crate::params::parse_id;
use crate::{ApiError, AppState};

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"workspace_id": "ws_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "frozen": true, "frozen_at": "2024-11-05T09:12:03.481Z", "changed": true}))]
pub struct FreezeState {
    pub workspace_id: WorkspaceId,
    pub frozen: bool,
    /// Since when, while frozen.
    pub frozen_at: Option<String>,
    /// Whether this request changed the state (`false`: it already was so; nothing recorded).
    pub changed: bool,
}

async fn state_of(state: &AppState, ws: WorkspaceId, changed: bool) -> Result<Json<FreezeState>, ApiError> {
    let w = state.control.workspace(ws).await?;
    Ok(Json(FreezeState {
        workspace_id: ws,
        frozen: w.frozen_at.is_some(),
        frozen_at: w.frozen_at.map(|t| t.to_rfc3339()),
        changed,
    }))
}

/// Freeze a workspace (operator token): at once, every API request for it (API keys, inbox
/// tokens, inbound provider webhooks) gets 423 and its deliveries are held; everything queued
/// stays queued. Audited in the workspace's log.
#[utoipa::path(post, path = "/v1/admin/workspaces/{id}/freeze", tag = "admin", security(("operator" = [])),
    params(("id" = chimatic_domain::WorkspaceId, Path, description = "Workspace id (`ws_…`)")),
    responses((status = 200, body = FreezeState)))]
pub async fn freeze(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<FreezeState>, ApiError> {
    let ws: WorkspaceId = parse_id(&id)?;
    let changed = state.control.freeze(ws, state.clock.now(), &operator.audit).await?;
    tracing::warn!(workspace = %ws, changed, "workspace frozen by the operator");
    state_of(&state, ws, changed).await
}

/// Unfreeze a workspace (operator token): requests are served again and held deliveries resume.
#[utoipa::path(post, path = "/v1/admin/workspaces/{id}/unfreeze", tag = "admin", security(("operator" = [])),
    params(("id" = chimatic_domain::WorkspaceId, Path, description = "Workspace id (`ws_…`)")),
    responses((status = 200, body = FreezeState)))]
pub async fn unfreeze(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<FreezeState>, ApiError> {
    let ws: WorkspaceId = parse_id(&id)?;
    let changed = state.control.unfreeze(ws, state.clock.now(), &operator.audit).await?;
    tracing::warn!(workspace = %ws, changed, "workspace unfrozen by the operator");
    state_of(&state, ws, changed).await
}
