//! The HTTP API: axum router, typed extractors for the caller and the body, thin handlers, one
//! error-to-problem+json mapping, and the OpenAPI document generated from the handlers.

mod error;
mod extract;
pub mod fanout;
mod mask;
mod routes;
mod state;

pub use error::ApiError;
pub use routes::router;
pub use state::{
    AppState, Limits, MIN_OPERATOR_TOKEN_CHARS, OperatorCredential, Planes, RegionPlane, WorkspaceRateLimiter,
};
