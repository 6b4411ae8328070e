//! Typed, prefixed identifiers (`ws_…`, `key_…`, `ch_…`, `msg_…`). Parsing rejects anything else,
//! so a bad id in a path is a clear 4xx before any query runs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid {kind} id: expected `{prefix}` followed by 32 hex characters")]
pub struct IdError {
    pub kind: &'static str,
    pub prefix: &'static str,
}

macro_rules! prefixed_id {
    ($name:ident, $prefix:literal, $kind:literal) => {
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new id; UUIDv7 so that inserts land near each other in every index.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn from_uuid(u: Uuid) -> Self {
                Self(u)
            }

            pub fn uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $prefix, self.0.simple())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                let err = IdError { kind: $kind, prefix: $prefix };
                let rest = s.strip_prefix($prefix).ok_or(err.clone())?;
                if rest.len() != 32 || !rest.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(err);
                }
                Uuid::parse_str(rest).map(Self).map_err(|_| err)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some(concat!("^", $prefix, "[0-9a-f]{32}$")))
                    .examples([concat!($prefix, "0192f0c1a2b37c4d8e9f0a1b2c3d4e5f")])
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

prefixed_id!(WorkspaceId, "ws_", "workspace");
prefixed_id!(ApiKeyId, "key_", "API key");
prefixed_id!(ChannelId, "ch_", "channel");
prefixed_id!(NotificationId, "msg_", "notification");
prefixed_id!(SubscriberId, "sub_", "subscriber");
prefixed_id!(SubscriberChannelId, "sch_", "subscriber channel");
prefixed_id!(IntegrationId, "int_", "integration");
prefixed_id!(WorkflowId, "wf_", "workflow");
prefixed_id!(EventId, "evt_", "event");
prefixed_id!(TopicId, "top_", "topic");
prefixed_id!(FanoutId, "fan_", "fan-out");
prefixed_id!(SuppressionId, "sup_", "suppression");
prefixed_id!(InboundEventId, "inb_", "inbound event");
prefixed_id!(UserId, "usr_", "user");
prefixed_id!(InvitationId, "inv_", "invitation");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_their_text_form() {
        let id = ChannelId::generate();
        let text = id.to_string();
        assert!(text.starts_with("ch_"));
        assert_eq!(text.len(), 3 + 32);
        assert_eq!(text.parse::<ChannelId>(), Ok(id));
    }

    #[test]
    fn ids_with_the_wrong_prefix_or_shape_are_rejected() {
        let ws = WorkspaceId::generate().to_string();
        assert!(ws.parse::<ChannelId>().is_err(), "a workspace id is not a channel id");
        assert!("ch_".parse::<ChannelId>().is_err());
        assert!("ch_zz000000000000000000000000000000".parse::<ChannelId>().is_err());
        assert!("ch_0192f0c1-a2b3-7c4d-8e9f-0a1b2c3d4e5f".parse::<ChannelId>().is_err());
        let too_long = format!("{}0", ChannelId::generate());
        assert!(too_long.parse::<ChannelId>().is_err());
    }

    #[test]
    fn ids_serialize_as_strings() {
        let id = NotificationId::generate();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        let back: NotificationId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<NotificationId>("\"msg_nope\"").is_err());
    }
}
