//! The workspace's data keys, for its administrators.

use axum::Json;
use axum::extract::State;
use chimatic_domain::{Scope, Sensitive};
use chimatic_store::WorkspaceKms;
use serde::{Deserialize, Serialize};

use crate::auth::Tenant;
use crate::body::ApiJson;
use crate::{ApiError, AppState, ErrorCode};

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"data_version": 2, "vault_version": 2}))]
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
#[utoipa::path(post, path = "/v1/workspace/rotate-dek", tag = "workspace", security(("bearer" = ["admin"])),
    responses((status = 200, body = DekRotated)))]
pub async fn rotate_dek(State(state): State<AppState>, tenant: Tenant) -> Result<Json<DekRotated>, ApiError> {
    tenant.require(Scope::Admin)?;
    let (data_version, vault_version) =
        tenant.store.rotate_dek(tenant.workspace_id, state.clock.now(), &tenant.audit).await?;
    tracing::info!(workspace = %tenant.workspace_id, data_version, vault_version, "data encryption keys rotated");
    Ok(Json(DekRotated { data_version, vault_version }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"endpoint": "https://kms.eu-west-1.amazonaws.com", "region": "eu-west-1", "key_id": "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", "access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}))]
pub struct UseWorkspaceKms {
    /// `https://kms.<region>.amazonaws.com`, or a KMS-compatible service.
    pub endpoint: String,
    pub region: String,
    /// The key's id or ARN.
    pub key_id: String,
    pub access_key_id: String,
    /// Stored only in the workspace's credential vault, never returned.
    #[schema(value_type = String)]
    pub secret_access_key: Sensitive<String>,
    #[schema(value_type = Option<String>)]
    pub session_token: Option<Sensitive<String>>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"kek_id": "aws-kms:arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}))]
pub struct WorkspaceKmsInUse {
    /// `aws-kms:<key id>`: the key that now wraps the workspace's notification-data keys.
    pub kek_id: String,
}

/// Bring your own key (scope `admin`): the workspace's notification data keys are re-wrapped,
/// online, under the customer's AWS KMS (or compatible) key, which is tried first. Revoking or
/// disabling that key makes the workspace's data unreadable (`503 kms_unavailable`) and pauses
/// its deliveries, within `CHIMATIC_BYOK_CACHE_SECS`; restoring it resumes everything.
#[utoipa::path(put, path = "/v1/workspace/kms", tag = "workspace", security(("bearer" = ["admin"])), request_body = UseWorkspaceKms,
    responses((status = 200, body = WorkspaceKmsInUse)),
    extensions(("x-codes" = json!([crate::ErrorCode::ForbiddenDestination, crate::ErrorCode::InvalidKms, crate::ErrorCode::KmsUnavailable]))))]
pub async fn use_kms(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiJson(req): ApiJson<UseWorkspaceKms>,
) -> Result<Json<WorkspaceKmsInUse>, ApiError> {
    tenant.require(Scope::Admin)?;
    let invalid = |detail: &str| ApiError::new(ErrorCode::InvalidKms, detail.to_string());
    let endpoint: url::Url = req.endpoint.parse().map_err(|_| invalid("`endpoint` must be a URL"))?;
    if endpoint.scheme() != "https" && !state.destinations.allow_private {
        return Err(invalid("`endpoint` must be https"));
    }
    state
        .destinations
        .check(&endpoint)
        .await
        .map_err(|e| ApiError::new(ErrorCode::ForbiddenDestination, e.to_string()))?;
    for (field, value) in [("region", &req.region), ("key_id", &req.key_id), ("access_key_id", &req.access_key_id)] {
        if value.is_empty() || value.len() > 2048 {
            return Err(invalid(&format!("`{field}` must be 1 to 2048 characters")));
        }
    }
    let config = WorkspaceKms {
        endpoint: endpoint.to_string(),
        region: req.region,
        key_id: req.key_id,
        access_key_id: req.access_key_id,
        secret_access_key: req.secret_access_key.into_inner(),
        session_token: req.session_token.map(Sensitive::into_inner),
    };
    let kek_id = tenant.store.use_workspace_kms(tenant.workspace_id, config, state.clock.now(), &tenant.audit).await?;
    tracing::info!(workspace = %tenant.workspace_id, kek = kek_id, "the workspace now uses its own KMS key");
    Ok(Json(WorkspaceKmsInUse { kek_id }))
}
