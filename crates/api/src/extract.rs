//! Typed extractors: the authenticated caller (and its workspace) and JSON bodies whose errors
//! never echo input values (a payload may carry personal data).

use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use std::sync::Arc;

use chimatic_audit::{Actor, AuditContext, Origin};
use chimatic_domain::{ApiKeyId, Region, Scope, Scopes, WorkspaceId};
use chimatic_store::Store;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use crate::{ApiError, AppState};

/// The caller behind a valid, unrevoked API key. Every handler that touches tenant data takes
/// one, so the workspace id always comes from the key, never from the request.
pub struct Caller {
    pub workspace_id: WorkspaceId,
    pub key_id: ApiKeyId,
    pub scopes: Scopes,
    /// Where the workspace's data lives.
    pub region: Region,
    /// Who and from where, for the audit log.
    pub audit: AuditContext,
}

/// The token of an `Authorization: Bearer …` header. RFC 9110 §11.1: the scheme is
/// case-insensitive.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let (scheme, token) = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The peer address and user agent of a request.
pub fn request_origin(parts: &Parts) -> Origin {
    let ip = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    let agent = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    Origin::new(ip, agent)
}

impl Caller {
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.allows(scope) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                format!("this API key lacks the `{scope}` scope"),
            ))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts).ok_or_else(ApiError::unauthorized)?;
        let found = state.control.authenticate(token, state.clock.now()).await?.ok_or_else(ApiError::unauthorized)?;
        let row = found.key;
        if found.frozen {
            return Err(ApiError::frozen());
        }
        if let Some(limiter) = &state.rate_limiter
            && let Err(not_until) = limiter.check_key(&row.workspace_id)
        {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
            metrics::counter!("chimatic_rate_limited_total").increment(1);
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "this workspace is over its request rate limit; retry after the time in `Retry-After`",
            )
            .retry_after(wait));
        }
        let audit = AuditContext { actor: Actor::api_key(row.id, row.name.clone()), origin: request_origin(parts) };
        Ok(Caller { workspace_id: row.workspace_id, key_id: row.id, scopes: row.scopes, region: found.region, audit })
    }
}

/// The deployment operator, authenticated by the operator token (`CHIMATIC_OPERATOR_TOKEN`).
pub struct Operator {
    pub audit: AuditContext,
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let refused = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the operator token is required: `Authorization: Bearer …`",
            )
        };
        let presented = bearer_token(parts).ok_or_else(refused)?;
        let credential = state.operator.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "operator_disabled",
                "operator endpoints are disabled: start the server with CHIMATIC_OPERATOR_TOKEN or \
                 CHIMATIC_OPERATOR_TOKEN_FILE",
            )
        })?;
        if !credential.matches(presented) {
            return Err(refused());
        }
        Ok(Operator { audit: AuditContext { actor: Actor::operator(), origin: request_origin(parts) } })
    }
}

/// A caller of the data-plane API, with its workspace's region store. A node that does not
/// serve that region answers 421, so data never crosses into a region it does not belong to.
pub struct Tenant {
    pub caller: Caller,
    pub store: Arc<Store>,
    pub delivery_waker: Arc<Notify>,
}

impl std::ops::Deref for Tenant {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.caller
    }
}

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let plane = state.regions.get(&caller.region).ok_or_else(|| {
            ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                "region_not_served",
                format!(
                    "this node does not serve the workspace's region `{}`; send the request to a node of that region",
                    caller.region
                ),
            )
        })?;
        Ok(Tenant { store: plane.store.clone(), delivery_waker: plane.delivery_waker.clone(), caller })
    }
}

/// Refuses requests for a frozen workspace (callers without an API key: inbox tokens, inbound
/// provider webhooks).
pub async fn ensure_not_frozen(state: &AppState, ws: WorkspaceId) -> Result<(), ApiError> {
    match state.control.workspace(ws).await {
        Ok(w) if w.frozen_at.is_some() => Err(ApiError::frozen()),
        Ok(_) => Ok(()),
        Err(chimatic_store::StoreError::NotFound) => Err(ApiError::not_found()),
        Err(e) => Err(e.into()),
    }
}

/// A JSON body. Rejections are `application/problem+json` naming the field path and what was
/// expected, but never the offending value.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                let m = m.trim();
                m.eq_ignore_ascii_case("application/json") || (m.starts_with("application/") && m.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the request body must be JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("the request body exceeds the limit of {} bytes", state.limits.max_body_bytes),
                )
            } else {
                ApiError::bad_request("invalid_body", "the request body could not be read")
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let malformed = |line: usize, column: usize| {
        ApiError::bad_request(
            "malformed_json",
            format!("the request body is not valid JSON (line {line}, column {column})"),
        )
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(value) => {
            de.end().map_err(|e| malformed(e.line(), e.column()))?;
            Ok(value)
        }
        Err(e) => {
            // Whether a body is JSON must not depend on its fields (serde_json reports some type
            // errors as syntax errors), so syntax is judged on its own, on this cold path only.
            if let Err(syntax) = serde_json::from_slice::<serde_json::Value>(bytes) {
                return Err(malformed(syntax.line(), syntax.column()));
            }
            let message = e.inner().to_string();
            let what = describe_data_error(&message);
            let path = schema_path(&e, message.starts_with("unknown field"));
            Err(ApiError::unprocessable(
                "invalid_body",
                if path.is_empty() { what } else { format!("`{path}`: {what}") },
            ))
        }
    }
}

/// The field path of a deserialization error. Segments name our schema's fields, except the
/// last segment of an unknown field, which is the caller's own key and is dropped.
fn schema_path(e: &serde_path_to_error::Error<serde_json::Error>, unknown_field: bool) -> String {
    use serde_path_to_error::Segment;
    let mut segments: Vec<&Segment> = e.path().iter().collect();
    if unknown_field {
        segments.pop();
    }
    let mut path = String::new();
    for segment in segments {
        match segment {
            Segment::Seq { index } => path.push_str(&format!("[{index}]")),
            Segment::Map { key: name } | Segment::Enum { variant: name } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(name);
            }
            Segment::Unknown => path.push_str(".?"),
        }
    }
    path
}

/// Keeps serde's description of what was *expected* and drops what was *found*, which may be
/// user data: `invalid type: string "…", expected u32` becomes `invalid type, expected u32`.
fn describe_data_error(message: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or(message);
    let kind =
        ["invalid type", "invalid value", "invalid length", "unknown variant", "unknown field", "duplicate field"]
            .into_iter()
            .find(|k| message.starts_with(k));
    match kind {
        Some(kind) => match message.split_once(", expected ") {
            Some((_, expected)) => format!("{kind}, expected {expected}"),
            None => kind.to_string(),
        },
        // The rest (`missing field `x``, our own id and scope errors) name only our schema.
        None => message.to_string(),
    }
}

/// Parses a path id; a malformed id is a 400 that does not echo the input.
pub fn parse_id<T: FromStr<Err = chimatic_domain::IdError>>(text: &str) -> Result<T, ApiError> {
    text.parse().map_err(|e: chimatic_domain::IdError| ApiError::bad_request("invalid_id", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_errors_never_echo_values() {
        assert_eq!(
            describe_data_error("invalid type: string \"canary-123\", expected u32 at line 1 column 9"),
            "invalid type, expected u32"
        );
        assert_eq!(
            describe_data_error("unknown field `canary-123`, expected one of `name`, `scopes`"),
            "unknown field, expected one of `name`, `scopes`"
        );
        assert_eq!(
            describe_data_error("unknown variant `canary`, expected `webhook`"),
            "unknown variant, expected `webhook`"
        );
        assert_eq!(describe_data_error("missing field `url`"), "missing field `url`");
    }
}
