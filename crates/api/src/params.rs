//! Path and query parameters: the one query-string extractor, and ids parsed so a malformed one
//! is a 400 that never echoes the input.

use std::str::FromStr;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::{ApiError, ErrorCode};

/// The parameters of an endpoint's query string.
pub trait QueryParams: DeserializeOwned {
    /// Names the parameters and their ranges, for the 400 that answers a bad query string. It
    /// describes the schema only: a query string can carry a subscriber token.
    fn expected() -> String;

    /// That 400 (`invalid_query`), also for a value that parses but is out of range.
    fn invalid() -> ApiError {
        ApiError::new(ErrorCode::InvalidQuery, Self::expected())
    }
}

/// A query string. Every endpoint that takes one uses this, so a bad one is always
/// `application/problem+json` (axum's own rejection is `text/plain`).
pub struct ApiQuery<T>(pub T);

impl<T: QueryParams, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        // The rejection's text quotes serde's error, which can echo the input: it is dropped.
        let Query(params) = Query::<T>::try_from_uri(&parts.uri).map_err(|_| T::invalid())?;
        Ok(ApiQuery(params))
    }
}

/// Parses a path or query id; a malformed id is a 400 that does not echo the input.
pub fn parse_id<T: FromStr<Err = chimatic_domain::IdError>>(text: &str) -> Result<T, ApiError> {
    text.parse().map_err(|e: chimatic_domain::IdError| ApiError::new(ErrorCode::InvalidId, e.to_string()))
}

/// A name people give a key or an integration (a [`chimatic_domain::patterns::Label`]), without
/// its surrounding white space.
pub fn checked_name(name: &str) -> Result<&str, ApiError> {
    if !chimatic_domain::patterns::is_label(name) {
        return Err(ApiError::new(
            ErrorCode::InvalidName,
            "`name` must be 1 to 100 characters, none a control character, not only white space",
        ));
    }
    Ok(name.trim())
}
