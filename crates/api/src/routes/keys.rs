//! The workspace's data keys, for its administrators.

use axum::Json;
use axum::extract::State;
use chimatic_domain::Scope;
use serde::Serialize;

use crate::extract::Tenant;
use crate::{ApiError, AppState};

#[derive(Serialize, utoipa::ToSchema)]
pub struct DekRotated {
    /// The DEK version new notification data is encrypted under.
    pub data_version: u32,
    /// The DEK version new credentials and signing secrets are encrypted under.
    pub vault_version: u32,
}

/// Rotate the workspace's data encryption keys (scope `admin`): new writes use a new DEK version
/// at once on this node and within a minute on the others; data written before stays readable
/// under the version it names. Lookups by keyed digest (external ids, idempotency keys) keep
/// working.
#[utoipa::path(post, path = "/v1/workspace/rotate-dek", tag = "workspace",
    responses((status = 200, body = DekRotated), (status = "4XX", body = crate::error::Problem)))]
pub async fn rotate_dek(State(state): State<AppState>, tenant: Tenant) -> Result<Json<DekRotated>, ApiError> {
    tenant.require(Scope::Admin)?;
    let (data_version, vault_version) = tenant.store.rotate_dek(tenant.workspace_id, state.clock.now()).await?;
    tracing::info!(workspace = %tenant.workspace_id, data_version, vault_version, "data encryption keys rotated");
    Ok(Json(DekRotated { data_version, vault_version }))
}
