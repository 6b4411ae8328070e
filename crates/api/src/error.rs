//! The one place errors become HTTP responses: `application/problem+json` (RFC 9457) with a
//! stable machine `code`. Internal causes are logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chimatic_crypto::CryptoError;
use chimatic_store::StoreError;
use serde::Serialize;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// The internal cause, for the log only.
    cause: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable code, e.g. `not_found`, `invalid_body`, `insufficient_scope`.
    pub code: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self { status, code, detail: detail.into(), cause: None }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn unprocessable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource in this workspace")
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API key is required: `Authorization: Bearer chm_…`",
        )
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            detail: "internal error".into(),
            cause: Some(cause.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::not_found(),
            StoreError::Conflict(why) => Self::new(StatusCode::CONFLICT, "conflict", why),
            StoreError::Crypto(CryptoError::Integrity | CryptoError::Format) => Self {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "integrity_error",
                detail: "stored data failed its integrity check: it was altered or does not belong here".into(),
                cause: Some(e.to_string()),
            },
            StoreError::Crypto(CryptoError::Unwrap) => Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "key_unavailable",
                detail: "the workspace's data key cannot be unwrapped with the configured key encryption key".into(),
                cause: Some(e.to_string()),
            },
            other => Self::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(cause) = &self.cause {
            tracing::error!(code = self.code, cause = %cause, "request failed");
        }
        let title = self.status.canonical_reason().unwrap_or("Error").to_string();
        let body = Problem {
            kind: format!("https://chimatic.dev/problems/{}", self.code.replace('_', "-")),
            title,
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code.to_string(),
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
