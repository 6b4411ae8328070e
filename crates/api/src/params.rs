//! Ids from the path or the query string, parsed so a malformed one is a 400 that never echoes
//! the input.

use std::str::FromStr;

use crate::{ApiError, ErrorCode};

/// Parses a path id; a malformed id is a 400 that does not echo the input.
pub fn parse_id<T: FromStr<Err = chimatic_domain::IdError>>(text: &str) -> Result<T, ApiError> {
    text.parse().map_err(|e: chimatic_domain::IdError| ApiError::bad_request(ErrorCode::InvalidId, e.to_string()))
}
