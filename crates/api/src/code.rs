//! The machine `code` of every problem response. Clients branch on these strings, so each is
//! written exactly once, here, next to its variant; renaming a variant never changes the wire.

use serde::Serialize;

macro_rules! error_codes {
    ($($variant:ident = $wire:literal,)*) => {
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
        }
    };
}

error_codes! {
    BodyTooLarge = "body_too_large",
    ChannelDeactivated = "channel_deactivated",
    ConfirmationMismatch = "confirmation_mismatch",
    Conflict = "conflict",
    ForbiddenDestination = "forbidden_destination",
    InsufficientScope = "insufficient_scope",
    IntegrityError = "integrity_error",
    Internal = "internal",
    InvalidAddress = "invalid_address",
    InvalidAttributes = "invalid_attributes",
    InvalidBatch = "invalid_batch",
    InvalidBatchItems = "invalid_batch_items",
    InvalidBody = "invalid_body",
    InvalidCursor = "invalid_cursor",
    InvalidEvent = "invalid_event",
    InvalidExternalId = "invalid_external_id",
    InvalidId = "invalid_id",
    InvalidIdempotencyKey = "invalid_idempotency_key",
    InvalidIntegration = "invalid_integration",
    InvalidKms = "invalid_kms",
    InvalidLimit = "invalid_limit",
    InvalidMembers = "invalid_members",
    InvalidName = "invalid_name",
    InvalidPreferences = "invalid_preferences",
    InvalidQuery = "invalid_query",
    InvalidRequest = "invalid_request",
    InvalidScopes = "invalid_scopes",
    InvalidSignature = "invalid_signature",
    InvalidTemplate = "invalid_template",
    InvalidTlsPolicy = "invalid_tls_policy",
    InvalidTopic = "invalid_topic",
    InvalidTtl = "invalid_ttl",
    InvalidUrl = "invalid_url",
    InvalidWorkflow = "invalid_workflow",
    KeyUnavailable = "key_unavailable",
    KmsUnavailable = "kms_unavailable",
    MalformedJson = "malformed_json",
    MethodNotAllowed = "method_not_allowed",
    NotCheckable = "not_checkable",
    NotFound = "not_found",
    NotReady = "not_ready",
    OAuthRefused = "oauth_refused",
    OAuthStateInvalid = "oauth_state_invalid",
    NothingToSend = "nothing_to_send",
    OperatorDisabled = "operator_disabled",
    OwnerOnly = "owner_only",
    PayloadTooLarge = "payload_too_large",
    ProviderNotConfigured = "provider_not_configured",
    ProviderUnavailable = "provider_unavailable",
    RateLimited = "rate_limited",
    RedirectUriNotAllowed = "redirect_uri_not_allowed",
    RegionNotServed = "region_not_served",
    RenderFailed = "render_failed",
    StaleWebhook = "stale_webhook",
    Unauthorized = "unauthorized",
    Unavailable = "unavailable",
    UnknownEvent = "unknown_event",
    UnknownTopic = "unknown_topic",
    UnsupportedMediaType = "unsupported_media_type",
    WorkspaceFrozen = "workspace_frozen",
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
