//! The HTTP API: axum router, typed extractors for the caller (one auth guard) and the input,
//! thin handlers, one error-to-problem+json mapping with typed codes, and the OpenAPI document
//! generated from the handlers.

pub mod auth;
pub mod body;
mod code;
mod contract;
mod error;
mod mask;
pub mod params;
pub mod routes;
mod state;

pub use code::ErrorCode;
pub use error::ApiError;
pub use mask::mask_json;
pub use routes::audit::{AuditPage, AuditQuery, audit_page, export_audit};
pub use routes::router;
pub use state::{
    AppState, Limits, MIN_OPERATOR_TOKEN_CHARS, OperatorCredential, Planes, RegionPlane, WorkspaceRateLimiter,
};
