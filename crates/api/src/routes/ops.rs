use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Serialize;

use crate::{ApiError, AppState, ErrorCode};

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub struct Health {
    pub status: &'static str,
}

/// Liveness: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()), responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the control store and every region store this node serves answer.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses((status = 200, body = Health)),
    extensions(("x-codes" = json!([crate::ErrorCode::NotReady]))))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    let not_ready = |e: chimatic_store::StoreError| {
        tracing::warn!(error = %e, "readiness check failed");
        ApiError::new(ErrorCode::NotReady, "a store is not reachable")
    };
    state.control.ping().await.map_err(not_ready)?;
    for plane in state.regions.values() {
        plane.store.ping().await.map_err(not_ready)?;
    }
    Ok(Json(Health { status: "ready" }))
}

/// Prometheus metrics (text exposition format). Labels never carry sensitive values.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let body = state.metrics.as_ref().map(|h| h.render()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "operations", security(()),
    responses((status = 200, content_type = "application/json", body = Object,
        example = json!({"openapi": "3.1.0", "info": {"title": "Chimatic API", "license": {"name": "MIT"}, "version": "0.1.0"}, "paths": {"/healthz": {"get": {"operationId": "operations_healthz"}}}}))))]
pub async fn openapi_json(Extension(doc): Extension<Arc<utoipa::openapi::OpenApi>>) -> impl IntoResponse {
    Json(doc.as_ref().clone())
}
