//! Delivering a rendered message to a subscriber through an integration: email over SMTP
//! (multipart text and HTML), SMS through a Twilio-compatible API, Slack (incoming webhook or
//! `chat.postMessage`), and signed webhooks. In-app messages need no call: storing them is
//! delivering them.

use std::time::Instant;

use chimatic_crypto::SigningSecret;
use chimatic_domain::{
    ChannelAddress, IntegrationCredentials, IntegrationSettings, OutboundTls, RenderedMessage, Sensitive, SmtpSecurity,
};
use lettre::AsyncTransport;
use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use serde_json::json;

use crate::health::{GMAIL_API, SLACK_API, classify_smtp, http_outcome};
use crate::webhook::{classify, read_small_body};
use crate::{ProviderClient, SendOutcome};

/// Identifies the message to the provider and the receiver (the notification id, stable across
/// retries) and when this attempt was made.
pub struct MessageMeta<'a> {
    pub id: &'a str,
    pub timestamp_secs: i64,
}

/// The operator's own SMTP relay, for the deployment's mail to people (console invitations):
/// not a tenant's integration, so no destination policy applies to it.
#[derive(Clone, Debug)]
pub struct SmtpRelay {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub from: String,
    /// Username and password, when the relay asks for AUTH.
    pub credentials: Option<(String, Sensitive<String>)>,
}

impl SmtpRelay {
    /// Whether its sender address is one (checked at start-up rather than at the first send).
    pub fn sender_is_valid(&self) -> bool {
        self.from.parse::<Mailbox>().is_ok()
    }
}

/// What a message to a webhook endpoint carries: its rendered content as JSON.
pub fn webhook_body(content: &RenderedMessage) -> Vec<u8> {
    serde_json::to_vec(content).unwrap_or_default()
}

/// A message with a text part (and an HTML alternative when rendered).
fn email(from: &str, to: &str, content: &RenderedMessage) -> Result<lettre::Message, &'static str> {
    let mailbox = |text: &str| text.parse::<Mailbox>().map_err(|_| "misconfigured");
    let builder = lettre::Message::builder()
        .from(mailbox(from)?)
        .to(mailbox(to)?)
        .subject(content.subject.clone().unwrap_or_default());
    let text = SinglePart::builder().header(ContentType::TEXT_PLAIN).body(content.text.clone());
    match &content.html {
        Some(html) => builder.multipart(
            MultiPart::alternative()
                .singlepart(text)
                .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html.clone())),
        ),
        None => builder.singlepart(text),
    }
    .map_err(|_| "misconfigured")
}

impl ProviderClient {
    /// Sends one email through the operator's relay; the error is a fixed class.
    pub async fn send_through_relay(
        &self,
        relay: &SmtpRelay,
        to: &str,
        content: &RenderedMessage,
    ) -> Result<(), &'static str> {
        let message = email(&relay.from, to, content)?;
        let credentials = relay.credentials.as_ref().map(|(u, p)| (u.as_str(), p.expose().as_str()));
        let transport = self.unchecked_smtp_transport(&relay.host, relay.port, relay.security, credentials)?;
        transport.send(message).await.map(|_| ()).map_err(|e| classify_smtp(&e))
    }

    /// Sends one message. `integration` is required for every channel but in-app; a channel and
    /// integration that do not fit together fail as `misconfigured`.
    pub async fn send_message(
        &self,
        meta: &MessageMeta<'_>,
        address: &ChannelAddress,
        content: &RenderedMessage,
        integration: Option<(&IntegrationSettings, &IntegrationCredentials)>,
    ) -> SendOutcome {
        let started = Instant::now();
        let result = match (address, integration) {
            (ChannelAddress::Inapp, _) => Ok(None),
            (ChannelAddress::Email(to), Some((settings, credentials))) => {
                self.send_email(to.expose(), content, settings, credentials).await
            }
            (
                ChannelAddress::Sms(to),
                Some((
                    IntegrationSettings::Sms { base_url, account_id, from },
                    IntegrationCredentials::Sms { auth_token },
                )),
            ) => {
                let url = format!("{}/2010-04-01/Accounts/{account_id}/Messages.json", base_url.trim_end_matches('/'));
                let form = [("To", to.expose()), ("From", from.as_str()), ("Body", content.text.as_str())];
                self.http_result(self.http.post(url).basic_auth(account_id, Some(auth_token)).form(&form)).await
            }
            (ChannelAddress::SlackWebhook(url), Some((IntegrationSettings::Slack { .. }, _))) => {
                self.http_result(self.http.post(url.expose().clone()).json(&json!({"text": content.text}))).await
            }
            (
                ChannelAddress::SlackChannel(channel),
                Some((IntegrationSettings::Slack { api_base, .. }, IntegrationCredentials::Slack { bot_token, .. })),
            ) => {
                let url =
                    format!("{}/chat.postMessage", api_base.as_deref().unwrap_or(SLACK_API).trim_end_matches('/'));
                let body = json!({"channel": channel, "text": content.text});
                self.slack_result(self.http.post(url).bearer_auth(bot_token).json(&body)).await
            }
            (
                ChannelAddress::Webhook(url),
                Some((IntegrationSettings::Webhook {}, IntegrationCredentials::Webhook { signing_secret })),
            ) => {
                let Ok(secret) = SigningSecret::parse(signing_secret) else {
                    return failed(started, "misconfigured", None);
                };
                let body = webhook_body(content);
                let signature = secret.sign(meta.id, meta.timestamp_secs, &body);
                return self
                    .webhooks
                    .send(url.expose(), &OutboundTls::default(), meta.id, meta.timestamp_secs, &signature, body)
                    .await;
            }
            _ => Err(("misconfigured", None)),
        };
        match result {
            Ok(code) => SendOutcome { status_code: code, latency: started.elapsed(), error_class: None },
            Err((class, code)) => failed(started, class, code),
        }
    }

    async fn send_email(
        &self,
        to: &str,
        content: &RenderedMessage,
        settings: &IntegrationSettings,
        credentials: &IntegrationCredentials,
    ) -> Result<Option<u16>, (&'static str, Option<u16>)> {
        if let (IntegrationSettings::Gmail { from, api_base }, IntegrationCredentials::Gmail { access_token, .. }) =
            (settings, credentials)
        {
            return self.send_gmail(from, api_base.as_deref(), access_token, to, content).await;
        }
        let (
            IntegrationSettings::Smtp { host, port, security, from },
            IntegrationCredentials::Smtp { username, password, .. },
        ) = (settings, credentials)
        else {
            return Err(("misconfigured", None));
        };
        let message = email(from, to, content).map_err(|class| (class, None))?;
        let transport = self
            .pooled_smtp_transport(host, *port, *security, username, password)
            .await
            .map_err(|class| (class, None))?;
        match transport.send(message).await {
            Ok(response) => Ok(Some(u16::from(response.code()))),
            Err(e) => Err((classify_smtp(&e), e.status().map(u16::from))),
        }
    }

    /// Gmail API `users.messages.send`: the whole RFC 5322 message, base64url, as the
    /// connected account.
    async fn send_gmail(
        &self,
        from: &str,
        api_base: Option<&str>,
        access_token: &str,
        to: &str,
        content: &RenderedMessage,
    ) -> Result<Option<u16>, (&'static str, Option<u16>)> {
        use base64::Engine;
        let message = email(from, to, content).map_err(|class| (class, None))?;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(message.formatted());
        let base = api_base.unwrap_or(GMAIL_API).trim_end_matches('/');
        let url = format!("{base}/gmail/v1/users/me/messages/send");
        self.http_result(self.http.post(url).bearer_auth(access_token).json(&json!({ "raw": raw }))).await
    }

    async fn http_result(&self, request: reqwest::RequestBuilder) -> Result<Option<u16>, (&'static str, Option<u16>)> {
        let response = request.send().await.map_err(|e| (classify(&e), None))?;
        let code = response.status().as_u16();
        http_outcome(response.status()).map(|()| Some(code)).map_err(|class| (class, Some(code)))
    }

    /// Slack's Web API answers 200 with `{"ok": false}` on failure.
    async fn slack_result(&self, request: reqwest::RequestBuilder) -> Result<Option<u16>, (&'static str, Option<u16>)> {
        let response = request.send().await.map_err(|e| (classify(&e), None))?;
        let code = response.status().as_u16();
        http_outcome(response.status()).map_err(|class| (class, Some(code)))?;
        let bytes = read_small_body(response).await.ok_or(("response_body", Some(code)))?;
        let body: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| ("response_body", Some(code)))?;
        match (body["ok"].as_bool(), body["error"].as_str()) {
            (Some(true), _) => Ok(Some(code)),
            // A token that expired or was revoked: a connection refreshes it and tries once more.
            (_, Some("invalid_auth" | "not_authed" | "token_expired" | "token_revoked")) => {
                Err(("auth_rejected", Some(code)))
            }
            _ => Err(("provider_rejected", Some(code))),
        }
    }
}

fn failed(started: Instant, class: &'static str, code: Option<u16>) -> SendOutcome {
    SendOutcome { status_code: code, latency: started.elapsed(), error_class: Some(class) }
}
