//! Request bodies: JSON whose rejections never echo input values (a payload may carry personal
//! data).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use chimatic_domain::Sensitive;
use serde::de::DeserializeOwned;

use crate::{ApiError, AppState, ErrorCode};

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
                ErrorCode::UnsupportedMediaType,
                "the request body must be JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    ErrorCode::BodyTooLarge,
                    format!("the request body exceeds the limit of {} bytes", state.limits.max_body_bytes),
                )
            } else {
                ApiError::new(ErrorCode::UnreadableBody, "the request body could not be read")
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Longest idempotency key, in characters.
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// An idempotency key, when given, is 1 to 255 bytes.
pub fn check_idempotency_key(key: Option<&Sensitive<String>>) -> Result<(), ApiError> {
    match key {
        Some(k) if !(1..=MAX_IDEMPOTENCY_KEY_LEN).contains(&k.expose().chars().count()) => Err(ApiError::new(
            ErrorCode::InvalidIdempotencyKey,
            format!("`idempotency_key` must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters"),
        )),
        _ => Ok(()),
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let malformed = |line: usize, column: usize| {
        ApiError::new(
            ErrorCode::MalformedJson,
            format!("the request body is not valid JSON (line {line}, column {column})"),
        )
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(value) => {
            de.end().map_err(|e| malformed(e.line(), e.column()))?;
            // Every request body is an object; serde would also fill a struct from an array, by
            // position.
            if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
                return Err(ApiError::new(ErrorCode::InvalidBody, "the request body must be a JSON object"));
            }
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
            Err(ApiError::new(ErrorCode::InvalidBody, if path.is_empty() { what } else { format!("`{path}`: {what}") }))
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
