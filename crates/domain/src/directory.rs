//! A workspace's directory: where its subscribers can be reached, and the provider integrations
//! that reach them. Values here are validated; storing and masking them is up to the callers.

use serde::{Deserialize, Serialize};

use crate::{EmailAddress, PhoneNumber, WebhookUrl, mask_tail};

/// One way to reach a subscriber.
#[derive(Clone, Debug)]
pub enum ChannelAddress {
    Email(EmailAddress),
    Sms(PhoneNumber),
    /// A Slack incoming-webhook URL.
    SlackWebhook(WebhookUrl),
    /// A Slack channel id, reached through the workspace's Slack bot integration.
    SlackChannel(String),
    Webhook(WebhookUrl),
    /// The subscriber's in-app inbox.
    Inapp,
}

impl ChannelAddress {
    /// The channel type as the API names it.
    pub fn kind(&self) -> ChannelKind {
        match self {
            ChannelAddress::Email(_) => ChannelKind::Email,
            ChannelAddress::Sms(_) => ChannelKind::Sms,
            ChannelAddress::SlackWebhook(_) | ChannelAddress::SlackChannel(_) => ChannelKind::Slack,
            ChannelAddress::Webhook(_) => ChannelKind::Webhook,
            ChannelAddress::Inapp => ChannelKind::Inapp,
        }
    }

    /// What reads may show: a prefix or suffix, never the whole address.
    pub fn masked(&self) -> String {
        match self {
            ChannelAddress::Email(a) => a.masked(),
            ChannelAddress::Sms(p) => p.masked(),
            ChannelAddress::SlackWebhook(u) | ChannelAddress::Webhook(u) => u.masked(),
            ChannelAddress::SlackChannel(c) => format!("#{}", mask_tail(c, 3)),
            ChannelAddress::Inapp => "inbox".into(),
        }
    }

    /// The stored (encrypted) form.
    pub fn to_stored(&self) -> StoredAddress {
        let (kind, value) = match self {
            ChannelAddress::Email(a) => ("email", a.expose().to_string()),
            ChannelAddress::Sms(p) => ("sms", p.expose().to_string()),
            ChannelAddress::SlackWebhook(u) => ("slack_webhook", u.expose().to_string()),
            ChannelAddress::SlackChannel(c) => ("slack_channel", c.clone()),
            ChannelAddress::Webhook(u) => ("webhook", u.expose().to_string()),
            ChannelAddress::Inapp => ("inapp", String::new()),
        };
        StoredAddress { kind: kind.into(), value }
    }

    /// Back from the stored form. Stored values were validated on the way in; re-parsing them
    /// with private destinations allowed cannot widen what was accepted.
    pub fn from_stored(stored: &StoredAddress) -> Option<Self> {
        Some(match stored.kind.as_str() {
            "email" => ChannelAddress::Email(EmailAddress::parse(&stored.value).ok()?),
            "sms" => ChannelAddress::Sms(PhoneNumber::parse(&stored.value).ok()?),
            "slack_webhook" => ChannelAddress::SlackWebhook(WebhookUrl::parse(&stored.value, true).ok()?),
            "slack_channel" => ChannelAddress::SlackChannel(stored.value.clone()),
            "webhook" => ChannelAddress::Webhook(WebhookUrl::parse(&stored.value, true).ok()?),
            "inapp" => ChannelAddress::Inapp,
            _ => return None,
        })
    }
}

/// Whether a Slack channel id looks like one (`C…`, `G…` or `D…` and upper-case letters and digits).
pub fn is_slack_channel_id(id: &str) -> bool {
    (9..=21).contains(&id.len())
        && id.starts_with(['C', 'G', 'D'])
        && id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

#[derive(Serialize, Deserialize)]
pub struct StoredAddress {
    pub kind: String,
    pub value: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Email,
    Sms,
    Slack,
    Webhook,
    Inapp,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Email => "email",
            ChannelKind::Sms => "sms",
            ChannelKind::Slack => "slack",
            ChannelKind::Webhook => "webhook",
            ChannelKind::Inapp => "inapp",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Email, Self::Sms, Self::Slack, Self::Webhook, Self::Inapp].into_iter().find(|k| k.as_str() == text)
    }
}

/// The kinds of provider integration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IntegrationKind {
    Smtp,
    /// Email through the Gmail API with a Google account connected over OAuth.
    Gmail,
    Slack,
    Sms,
    Webhook,
}

impl IntegrationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationKind::Smtp => "smtp",
            IntegrationKind::Gmail => "gmail",
            IntegrationKind::Slack => "slack",
            IntegrationKind::Sms => "sms",
            IntegrationKind::Webhook => "webhook",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Smtp, Self::Gmail, Self::Slack, Self::Sms, Self::Webhook].into_iter().find(|k| k.as_str() == text)
    }

    /// The credentials an integration of this kind keeps in the vault, by name.
    pub fn credential_fields(self) -> &'static [&'static str] {
        match self {
            IntegrationKind::Smtp => &["username", "password"],
            IntegrationKind::Gmail => &["access_token", "refresh_token"],
            IntegrationKind::Slack => &["bot_token"],
            IntegrationKind::Sms => &["auth_token"],
            IntegrationKind::Webhook => &["signing_secret"],
        }
    }

    /// The channel this kind of integration delivers to.
    pub fn channel(self) -> ChannelKind {
        match self {
            IntegrationKind::Smtp | IntegrationKind::Gmail => ChannelKind::Email,
            IntegrationKind::Slack => ChannelKind::Slack,
            IntegrationKind::Sms => ChannelKind::Sms,
            IntegrationKind::Webhook => ChannelKind::Webhook,
        }
    }
}

/// The providers an integration can be connected to over OAuth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OAuthProvider {
    Slack,
    Google,
}

impl std::str::FromStr for OAuthProvider {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, ()> {
        Self::parse(text).ok_or(())
    }
}

impl OAuthProvider {
    pub const ALL: [OAuthProvider; 2] = [OAuthProvider::Slack, OAuthProvider::Google];

    pub fn as_str(self) -> &'static str {
        match self {
            OAuthProvider::Slack => "slack",
            OAuthProvider::Google => "google",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// Shown on buttons and pages.
    pub fn title(self) -> &'static str {
        match self {
            OAuthProvider::Slack => "Slack",
            OAuthProvider::Google => "Google",
        }
    }

    /// The kind of integration a connection makes.
    pub fn integration_kind(self) -> IntegrationKind {
        match self {
            OAuthProvider::Slack => IntegrationKind::Slack,
            OAuthProvider::Google => IntegrationKind::Gmail,
        }
    }
}

/// What an OAuth connection keeps beside its access token (in the vault, with it).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OAuthGrant {
    pub provider: OAuthProvider,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When the access token expires (ms since the epoch), if the provider said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<i64>,
    /// The scopes the provider granted.
    pub scope: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (usually port 587); refused if the server does
    /// not offer it.
    Starttls,
    /// TLS from the first byte (usually port 465).
    Implicit,
}

/// An integration's settings that are not secret (they live in the notification store,
/// encrypted). Credentials are separate and live only in the vault.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum IntegrationSettings {
    Smtp {
        host: String,
        port: u16,
        security: SmtpSecurity,
        from: String,
    },
    /// `api_base` defaults to Slack's (`https://slack.com/api`); set it for a Slack-compatible
    /// service.
    Slack {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_base: Option<String>,
        /// Its bot token came from connecting Slack over OAuth (set by the connection only).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        connected: bool,
    },
    /// Set by the connection: the sender (an address of the connected account) and, for a
    /// stand-in service, the API base (default `https://gmail.googleapis.com`).
    Gmail {
        from: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_base: Option<String>,
    },
    Sms {
        base_url: String,
        account_id: String,
        from: String,
    },
    Webhook {},
}

impl IntegrationSettings {
    /// The provider it was connected to over OAuth, if it was.
    pub fn connected_through(&self) -> Option<OAuthProvider> {
        match self {
            IntegrationSettings::Slack { connected: true, .. } => Some(OAuthProvider::Slack),
            IntegrationSettings::Gmail { .. } => Some(OAuthProvider::Google),
            _ => None,
        }
    }

    pub fn kind(&self) -> IntegrationKind {
        match self {
            IntegrationSettings::Smtp { .. } => IntegrationKind::Smtp,
            IntegrationSettings::Slack { .. } => IntegrationKind::Slack,
            IntegrationSettings::Gmail { .. } => IntegrationKind::Gmail,
            IntegrationSettings::Sms { .. } => IntegrationKind::Sms,
            IntegrationSettings::Webhook {} => IntegrationKind::Webhook,
        }
    }
}

/// An integration's credentials: stored only in the credential vault, never returned.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum IntegrationCredentials {
    Smtp {
        username: String,
        password: String,
        /// The `whsec_…` secret the email provider signs its event webhooks (bounces,
        /// complaints) with, per Standard Webhooks; without it `/v1/inbound/{id}` refuses them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inbound_signing_secret: Option<String>,
    },
    /// A bot token entered by hand, or one from a Slack connection (`grant`).
    Slack {
        bot_token: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grant: Option<OAuthGrant>,
    },
    /// Only from a Google connection.
    Gmail {
        access_token: String,
        grant: OAuthGrant,
    },
    Sms {
        auth_token: String,
    },
    Webhook {
        signing_secret: String,
    },
}

impl std::fmt::Debug for IntegrationCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IntegrationCredentials([redacted])")
    }
}

impl IntegrationCredentials {
    /// The OAuth connection these credentials came from, if any.
    pub fn grant(&self) -> Option<&OAuthGrant> {
        match self {
            IntegrationCredentials::Slack { grant, .. } => grant.as_ref(),
            IntegrationCredentials::Gmail { grant, .. } => Some(grant),
            _ => None,
        }
    }

    /// The bearer token of a connection.
    pub fn access_token(&self) -> Option<&str> {
        match self {
            IntegrationCredentials::Slack { bot_token, grant: Some(_) } => Some(bot_token),
            IntegrationCredentials::Gmail { access_token, .. } => Some(access_token),
            _ => None,
        }
    }

    pub fn kind(&self) -> IntegrationKind {
        match self {
            IntegrationCredentials::Smtp { .. } => IntegrationKind::Smtp,
            IntegrationCredentials::Slack { .. } => IntegrationKind::Slack,
            IntegrationCredentials::Gmail { .. } => IntegrationKind::Gmail,
            IntegrationCredentials::Sms { .. } => IntegrationKind::Sms,
            IntegrationCredentials::Webhook { .. } => IntegrationKind::Webhook,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_through_their_stored_form_and_mask() {
        let cases = [
            ChannelAddress::Email(EmailAddress::parse("alice@example.com").unwrap()),
            ChannelAddress::Sms(PhoneNumber::parse("+14155550123").unwrap()),
            ChannelAddress::SlackChannel("C0123456789".into()),
            ChannelAddress::Webhook(WebhookUrl::parse("https://hooks.example.com/x", false).unwrap()),
            ChannelAddress::Inapp,
        ];
        for a in cases {
            let back = ChannelAddress::from_stored(&a.to_stored()).unwrap();
            assert_eq!(back.kind(), a.kind());
            assert_eq!(back.masked(), a.masked());
        }
        assert_eq!(ChannelAddress::SlackChannel("C0123456789".into()).masked(), "#…789");
        assert!(ChannelAddress::from_stored(&StoredAddress { kind: "fax".into(), value: String::new() }).is_none());
    }

    #[test]
    fn slack_channel_ids_have_their_shape() {
        assert!(is_slack_channel_id("C0123456789"));
        assert!(!is_slack_channel_id("general"));
        assert!(!is_slack_channel_id("C01"));
        assert!(!is_slack_channel_id("c0123456789"));
    }

    #[test]
    fn credentials_never_debug_print() {
        let c = IntegrationCredentials::Smtp {
            username: "u".into(),
            password: "hunter2-secret".into(),
            inbound_signing_secret: Some("whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=".into()),
        };
        let printed = format!("{c:?}");
        assert!(!printed.contains("hunter2") && !printed.contains("whsec_"));
    }
}
