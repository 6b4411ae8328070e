//! The one place errors become HTTP responses: `application/problem+json` (RFC 9457) with a
//! stable machine `code`. Internal causes are logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chimatic_crypto::CryptoError;
use chimatic_store::StoreError;
use serde::Serialize;

use crate::ErrorCode;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub detail: String,
    /// The internal cause, for the log only.
    cause: Option<String>,
    /// Per-item problems of a batch request.
    errors: Vec<ItemError>,
    /// Sent as `Retry-After` (whole seconds, at least 1).
    retry_after: Option<std::time::Duration>,
}

/// What is wrong with one item of a batch request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ItemError {
    /// 0-based position of the item in the request.
    pub index: usize,
    #[schema(value_type = String)]
    pub code: ErrorCode,
    pub detail: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"type": "https://chimatic.dev/problems/not-found", "title": "Not Found", "status": 404, "detail": "no such resource in this workspace", "code": "not_found"}))]
pub struct Problem {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable code, e.g. `not_found`, `invalid_body`, `insufficient_scope`.
    #[schema(value_type = String)]
    pub code: ErrorCode,
    /// Per-item problems, for batch requests.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ItemError>,
}

impl ApiError {
    /// The status comes from the code ([`ErrorCode::status`]): one code, one status, as the
    /// OpenAPI document lists them.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self { status, code, detail: detail.into(), cause: None, errors: Vec::new(), retry_after: None }
    }

    pub fn retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    pub fn with_item_errors(mut self, errors: Vec<ItemError>) -> Self {
        self.errors = errors;
        self
    }

    pub fn not_found() -> Self {
        Self::new(ErrorCode::NotFound, "no such resource in this workspace")
    }

    pub fn unauthorized() -> Self {
        Self::new(ErrorCode::Unauthorized, "a valid API key is required: `Authorization: Bearer chm_…`")
    }

    /// The workspace is frozen by the operator (incident isolation): nothing is read or written.
    pub fn frozen() -> Self {
        Self::new(
            ErrorCode::WorkspaceFrozen,
            "this workspace is frozen by the operator: no reads, writes or deliveries until it is unfrozen",
        )
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::Internal, "internal error").caused_by(cause)
    }

    /// Records the internal cause for the log; it never reaches the response.
    pub fn caused_by(mut self, cause: impl std::fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::not_found(),
            StoreError::Conflict(why) => Self::new(ErrorCode::Conflict, why),
            StoreError::Invalid(why) => Self::new(ErrorCode::InvalidRequest, why),
            StoreError::Crypto(CryptoError::Integrity | CryptoError::Format) => Self::new(
                ErrorCode::IntegrityError,
                "stored data failed its integrity check: it was altered or does not belong here",
            )
            .caused_by(&e),
            StoreError::Crypto(CryptoError::Unwrap) => Self::new(
                ErrorCode::KeyUnavailable,
                "the workspace's data key cannot be unwrapped with the configured key encryption key",
            )
            .caused_by(&e),
            StoreError::Crypto(CryptoError::KeyUnavailable) => Self::new(
                ErrorCode::KmsUnavailable,
                "the key provider is unreachable or refused the workspace's key; retry when it is restored",
            )
            .caused_by(&e)
            .retry_after(std::time::Duration::from_secs(30)),
            StoreError::Unavailable => Self::new(ErrorCode::Unavailable, "the server is shutting down").caused_by(&e),
            other => Self::internal(other),
        }
    }
}

impl ApiError {
    /// Logs the internal cause, if there is one; for every surface that renders the error.
    pub fn log_cause(&self) {
        if let Some(cause) = &self.cause {
            tracing::error!(code = self.code.as_str(), cause = %cause, "request failed");
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log_cause();
        let title = self.status.canonical_reason().unwrap_or("Error").to_string();
        let body = Problem {
            kind: format!("https://chimatic.dev/problems/{}", self.code.as_str().replace('_', "-")),
            title,
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code,
            errors: self.errors,
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(wait) = self.retry_after {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
