//! Provider health checks: prove an integration works — reachable, TLS, credentials accepted —
//! without sending any user data. SMTP: connect, TLS (STARTTLS or implicit), AUTH, NOOP, QUIT.
//! SMS (Twilio-compatible): an authenticated read of the account. Slack: `auth.test`. Gmail:
//! the connection's token refresh (see `chimatic_delivery::Connections`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chimatic_domain::{IntegrationCredentials, IntegrationSettings, SmtpSecurity};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParametersBuilder, TlsVersion};
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use rustls_pki_types::CertificateDer;

use crate::webhook::{caused_by, classify, read_small_body};
use crate::{DestinationPolicy, SenderBuildError, WebhookSender};

pub(crate) const SLACK_API: &str = "https://slack.com/api";
pub(crate) const GMAIL_API: &str = "https://gmail.googleapis.com";

/// What a check found. `error_class` is a fixed vocabulary, never a server's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckOutcome {
    pub healthy: bool,
    pub error_class: Option<&'static str>,
    pub latency: Duration,
}

/// Calls to providers on behalf of integrations: health checks and message delivery.
#[derive(Clone)]
pub struct ProviderClient {
    pub(crate) http: reqwest::Client,
    pub(crate) webhooks: WebhookSender,
    pub(crate) policy: DestinationPolicy,
    extra_roots: Vec<CertificateDer<'static>>,
    timeout: Duration,
    smtp_pools: SmtpPools,
}

/// Sending transports, one per SMTP configuration, each with its own pool of authenticated TLS
/// connections: a burst of email reuses a few sessions instead of a TCP and TLS handshake and
/// an AUTH per message. Keyed by a digest of host, port, security and credentials, so changed
/// settings or a rotated password get a new pool.
#[derive(Clone, Default)]
struct SmtpPools(Arc<Mutex<HashMap<[u8; 32], AsyncSmtpTransport<Tokio1Executor>>>>);

/// Distinct SMTP configurations kept at once; beyond it the pools start over.
const MAX_SMTP_POOLS: usize = 256;

impl SmtpPools {
    fn key(host: &str, port: u16, security: SmtpSecurity, username: &str, password: &str) -> [u8; 32] {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for part in [host, &port.to_string(), &format!("{security:?}"), username, password] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part.as_bytes());
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(ctx.finish().as_ref());
        key
    }

    fn get(&self, key: &[u8; 32]) -> Option<AsyncSmtpTransport<Tokio1Executor>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get(key).cloned()
    }

    fn put(&self, key: [u8; 32], transport: AsyncSmtpTransport<Tokio1Executor>) {
        let mut pools = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if pools.len() >= MAX_SMTP_POOLS {
            pools.clear();
        }
        pools.insert(key, transport);
    }
}

impl ProviderClient {
    /// `extra_roots`: as for [`crate::WebhookSender::new`], trusted for every provider.
    pub fn new(
        policy: DestinationPolicy,
        timeout: Duration,
        extra_roots: Option<&Path>,
    ) -> Result<Self, SenderBuildError> {
        let extra_roots = extra_roots.map(crate::tls::read_pem_roots).transpose()?.unwrap_or_default();
        let webhooks = WebhookSender::with_roots(policy, timeout, &extra_roots)?;
        // Provider APIs get the same guarded TLS 1.3 client (and connection pool) as webhooks.
        let http = webhooks.default_client().clone();
        Ok(Self { http, webhooks, policy, extra_roots, timeout, smtp_pools: SmtpPools::default() })
    }

    /// The signed-webhook sender (direct webhooks and webhook messages).
    pub fn webhooks(&self) -> &WebhookSender {
        &self.webhooks
    }

    /// `None` when the kind has nothing to check (a `webhook` integration has no provider
    /// endpoint of its own).
    pub async fn check(
        &self,
        settings: &IntegrationSettings,
        credentials: &IntegrationCredentials,
    ) -> Option<CheckOutcome> {
        let started = Instant::now();
        let result = match (settings, credentials) {
            (
                IntegrationSettings::Smtp { host, port, security, .. },
                IntegrationCredentials::Smtp { username, password, .. },
            ) => self.check_smtp(host, *port, *security, username, password).await,
            (IntegrationSettings::Sms { base_url, account_id, .. }, IntegrationCredentials::Sms { auth_token }) => {
                self.check_sms(base_url, account_id, auth_token).await
            }
            (IntegrationSettings::Slack { api_base, .. }, IntegrationCredentials::Slack { bot_token, .. }) => {
                self.check_slack(api_base.as_deref().unwrap_or(SLACK_API), bot_token).await
            }
            // With `gmail.send` alone Google offers nothing to read; the grant is proved by the
            // token refresh that comes before every check of a connection.
            (IntegrationSettings::Gmail { .. }, IntegrationCredentials::Gmail { .. }) => Ok(()),
            (IntegrationSettings::Webhook {}, _) => return None,
            _ => Err("misconfigured"),
        };
        Some(CheckOutcome { healthy: result.is_ok(), error_class: result.err(), latency: started.elapsed() })
    }

    async fn check_smtp(
        &self,
        host: &str,
        port: u16,
        security: SmtpSecurity,
        username: &str,
        password: &str,
    ) -> Result<(), &'static str> {
        let transport = self.smtp_transport(host, port, security, username, password).await?;
        match transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err("smtp_noop_failed"),
            Err(e) => Err(classify_smtp(&e)),
        }
    }

    /// The sending transport for this SMTP configuration, with its connection pool.
    pub(crate) async fn pooled_smtp_transport(
        &self,
        host: &str,
        port: u16,
        security: SmtpSecurity,
        username: &str,
        password: &str,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, &'static str> {
        let key = SmtpPools::key(host, port, security, username, password);
        if let Some(transport) = self.smtp_pools.get(&key) {
            return Ok(transport);
        }
        let transport = self.smtp_transport(host, port, security, username, password).await?;
        self.smtp_pools.put(key, transport.clone());
        Ok(transport)
    }

    /// An SMTP transport to a checked destination: TLS 1.3 only (STARTTLS required, or
    /// implicit), the operator's extra roots trusted, bounded in time.
    pub(crate) async fn smtp_transport(
        &self,
        host: &str,
        port: u16,
        security: SmtpSecurity,
        username: &str,
        password: &str,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, &'static str> {
        // lettre resolves the host itself, so the destination is checked first.
        let url = url::Url::parse(&format!("smtp://{host}:{port}")).map_err(|_| "misconfigured")?;
        self.policy.check(&url).await.map_err(|_| "forbidden_destination")?;
        self.unchecked_smtp_transport(host, port, security, Some((username, password)))
    }

    /// An SMTP transport to a destination that is not a tenant's (the operator's own relay):
    /// the same TLS rules, no destination policy, credentials only when given.
    pub(crate) fn unchecked_smtp_transport(
        &self,
        host: &str,
        port: u16,
        security: SmtpSecurity,
        credentials: Option<(&str, &str)>,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, &'static str> {
        let mut tls = TlsParametersBuilder::new(host.to_string()).set_min_tls_version(TlsVersion::Tlsv13);
        for der in &self.extra_roots {
            tls = tls.add_root_certificate(Certificate::from_der(der.to_vec()).map_err(|_| "misconfigured")?);
        }
        let tls = tls.build_rustls().map_err(|_| "misconfigured")?;
        let tls = match security {
            SmtpSecurity::Starttls => Tls::Required(tls),
            SmtpSecurity::Implicit => Tls::Wrapper(tls),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(tls)
            .timeout(Some(self.timeout));
        if let Some((username, password)) = credentials {
            builder = builder.credentials(Credentials::new(username.to_string(), password.to_string()));
        }
        Ok(builder.build())
    }

    async fn check_sms(&self, base_url: &str, account_id: &str, auth_token: &str) -> Result<(), &'static str> {
        let base = base_url.trim_end_matches('/');
        let url = format!("{base}/2010-04-01/Accounts/{account_id}.json");
        let response =
            self.http.get(url).basic_auth(account_id, Some(auth_token)).send().await.map_err(|e| classify(&e))?;
        http_outcome(response.status())
    }

    async fn check_slack(&self, api_base: &str, bot_token: &str) -> Result<(), &'static str> {
        let url = format!("{}/auth.test", api_base.trim_end_matches('/'));
        let response = self.http.post(url).bearer_auth(bot_token).send().await.map_err(|e| classify(&e))?;
        http_outcome(response.status())?;
        // Slack answers 200 with `{"ok": false, "error": "invalid_auth"}` for a bad token.
        let bytes = read_small_body(response).await.ok_or("response_body")?;
        let body: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| "response_body")?;
        if body["ok"] == true { Ok(()) } else { Err("auth_rejected") }
    }
}

pub(crate) fn http_outcome(status: reqwest::StatusCode) -> Result<(), &'static str> {
    match status.as_u16() {
        200..=299 => Ok(()),
        401 | 403 => Err("auth_rejected"),
        _ => Err("http_status"),
    }
}

pub(crate) fn classify_smtp(e: &lettre::transport::smtp::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_tls() || caused_by::<rustls::Error>(e) || ends_mid_handshake(e) {
        "tls"
    } else if e.status().is_some_and(|c| c.to_string().starts_with("53")) {
        // 530/534/535: authentication required, mechanism too weak, credentials invalid.
        "auth_rejected"
    } else if e.is_permanent() || e.is_transient() {
        "smtp_rejected"
    } else {
        "connect"
    }
}

/// A server that refuses our TLS versions may just close the connection instead of sending an
/// alert; tokio-rustls reports that as an unexpected EOF, which in SMTP only happens during the
/// TLS handshake (a plaintext server that hangs up gives a response error instead).
fn ends_mid_handshake(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::UnexpectedEof {
                return true;
            }
            next = io.get_ref().map(|inner| inner as &(dyn std::error::Error + 'static));
        } else {
            next = err.source();
        }
    }
    false
}
