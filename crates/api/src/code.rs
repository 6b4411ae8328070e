//! The machine `code` of every problem response. Clients branch on these strings, so each is
//! written exactly once, here, next to its variant; renaming a variant never changes the wire.

use serde::Serialize;

macro_rules! error_codes {
    ($($variant:ident = $wire:literal => $status:literal,)*) => {
        /// A problem response's stable machine-readable `code`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
        pub enum ErrorCode {
            $(#[serde(rename = $wire)] $variant,)*
        }

        impl ErrorCode {
            /// Every code, for the tests that keep the wire strings unique.
            #[cfg(test)]
            const ALL: &[ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $wire,)*
                }
            }

            /// The code with this wire name.
            pub fn parse(wire: &str) -> Option<Self> {
                match wire {
                    $($wire => Some(ErrorCode::$variant),)*
                    _ => None,
                }
            }

            /// The HTTP status a problem with this code has (the one the OpenAPI document lists
            /// it under).
            pub const fn status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)*
                }
            }
        }
    };
}

error_codes! {
    BodyTooLarge = "body_too_large" => 413,
    ChannelDeactivated = "channel_deactivated" => 409,
    ConfirmationMismatch = "confirmation_mismatch" => 422,
    Conflict = "conflict" => 409,
    ForbiddenDestination = "forbidden_destination" => 422,
    InsufficientScope = "insufficient_scope" => 403,
    IntegrityError = "integrity_error" => 500,
    Internal = "internal" => 500,
    InvalidAddress = "invalid_address" => 422,
    InvalidAttributes = "invalid_attributes" => 422,
    InvalidBatch = "invalid_batch" => 422,
    InvalidBatchItems = "invalid_batch_items" => 422,
    InvalidBody = "invalid_body" => 422,
    InvalidCursor = "invalid_cursor" => 400,
    InvalidEvent = "invalid_event" => 422,
    InvalidExternalId = "invalid_external_id" => 422,
    InvalidId = "invalid_id" => 400,
    InvalidIdempotencyKey = "invalid_idempotency_key" => 422,
    InvalidIntegration = "invalid_integration" => 422,
    InvalidKms = "invalid_kms" => 422,
    InvalidLimit = "invalid_limit" => 400,
    InvalidMembers = "invalid_members" => 422,
    InvalidName = "invalid_name" => 422,
    InvalidPreferences = "invalid_preferences" => 422,
    InvalidQuery = "invalid_query" => 400,
    InvalidRequest = "invalid_request" => 422,
    InvalidScopes = "invalid_scopes" => 422,
    InvalidSignature = "invalid_signature" => 401,
    InvalidTemplate = "invalid_template" => 422,
    InvalidTlsPolicy = "invalid_tls_policy" => 422,
    InvalidTopic = "invalid_topic" => 422,
    InvalidTtl = "invalid_ttl" => 422,
    InvalidUrl = "invalid_url" => 422,
    InvalidWorkflow = "invalid_workflow" => 422,
    KeyUnavailable = "key_unavailable" => 503,
    KmsUnavailable = "kms_unavailable" => 503,
    MalformedJson = "malformed_json" => 400,
    MethodNotAllowed = "method_not_allowed" => 405,
    NotCheckable = "not_checkable" => 422,
    NotFound = "not_found" => 404,
    NotReady = "not_ready" => 503,
    OAuthRefused = "oauth_refused" => 400,
    OAuthStateInvalid = "oauth_state_invalid" => 400,
    NothingToSend = "nothing_to_send" => 422,
    OperatorDisabled = "operator_disabled" => 403,
    OwnerOnly = "owner_only" => 403,
    PayloadTooLarge = "payload_too_large" => 413,
    ProviderNotConfigured = "provider_not_configured" => 404,
    ProviderUnavailable = "provider_unavailable" => 502,
    RateLimited = "rate_limited" => 429,
    RedirectUriNotAllowed = "redirect_uri_not_allowed" => 422,
    RegionNotServed = "region_not_served" => 421,
    RenderFailed = "render_failed" => 422,
    StaleWebhook = "stale_webhook" => 401,
    Unauthorized = "unauthorized" => 401,
    Unavailable = "unavailable" => 503,
    UnknownEvent = "unknown_event" => 422,
    UnknownTopic = "unknown_topic" => 422,
    UnreadableBody = "unreadable_body" => 400,
    UnsupportedMediaType = "unsupported_media_type" => 415,
    WorkspaceFrozen = "workspace_frozen" => 423,
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_strings_are_unique_snake_case_and_what_serde_sends() {
        let mut seen = std::collections::BTreeSet::new();
        for code in ErrorCode::ALL {
            let wire = code.as_str();
            assert!(seen.insert(wire), "`{wire}` is used by two codes");
            assert!(wire.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "`{wire}` is not snake_case");
            assert_eq!(serde_json::to_value(code).unwrap(), serde_json::json!(wire));
            assert_eq!(code.to_string(), wire);
        }
    }
}
