//! Outbound webhook POSTs: TLS 1.3 only unless a destination's policy allows TLS 1.2, optional
//! SPKI pins, no redirects, SSRF-guarded resolver, pooled keep-alive connections, bounded
//! response reads.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chimatic_crypto::WebhookSignature;
use chimatic_domain::OutboundTls;
use rustls_pki_types::CertificateDer;

use crate::DestinationPolicy;
use crate::tls::{TlsContext, TrustError};

/// Response bodies are read (so connections can be reused) but never stored beyond this.
const MAX_RESPONSE_READ: usize = 64 * 1024;

/// Clients kept for non-default TLS policies. Each holds its own connection pool, so the bound
/// caps idle connections and memory when many destinations carry distinct policies.
const MAX_POLICY_CLIENTS: usize = 32;

#[derive(Clone)]
pub struct WebhookSender {
    /// For the default policy (TLS 1.3, no pins): reqwest's own rustls setup, as before.
    default_client: reqwest::Client,
    policy_clients: Arc<PolicyClients>,
    policy: DestinationPolicy,
}

/// The result of one attempt. `error_class` is a fixed vocabulary, never a message that could
/// carry a URL or a response body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendOutcome {
    pub status_code: Option<u16>,
    pub latency: Duration,
    pub error_class: Option<&'static str>,
}

impl SendOutcome {
    pub fn succeeded(&self) -> bool {
        self.error_class.is_none()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SenderBuildError {
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error("cannot configure TLS: {0}")]
    Tls(#[from] rustls::Error),
}

impl WebhookSender {
    /// `extra_roots` names a PEM file of CA certificates trusted in addition to the system's
    /// (a private CA), for every destination.
    pub fn new(
        policy: DestinationPolicy,
        timeout: Duration,
        extra_roots: Option<&Path>,
    ) -> Result<Self, SenderBuildError> {
        let extra = extra_roots.map(crate::tls::read_pem_roots).transpose()?.unwrap_or_default();
        Self::with_roots(policy, timeout, &extra)
    }

    /// As [`WebhookSender::new`], with the extra roots already read.
    pub(crate) fn with_roots(
        policy: DestinationPolicy,
        timeout: Duration,
        extra: &[CertificateDer<'static>],
    ) -> Result<Self, SenderBuildError> {
        let extra_for_reqwest =
            extra.iter().map(|der| reqwest::Certificate::from_der(der)).collect::<Result<Vec<_>, _>>()?;
        let default_client = client_builder(policy, timeout)
            .tls_version_min(reqwest::tls::Version::TLS_1_3)
            .tls_certs_merge(extra_for_reqwest)
            .build()?;
        let policy_clients = Arc::new(PolicyClients {
            tls: TlsContext::new(extra)?,
            policy,
            timeout,
            clients: Mutex::new(VecDeque::with_capacity(MAX_POLICY_CLIENTS)),
        });
        Ok(Self { default_client, policy_clients, policy })
    }

    /// The client for the default policy (TLS 1.3, no pins): provider API calls use it too.
    pub(crate) fn default_client(&self) -> &reqwest::Client {
        &self.default_client
    }

    pub async fn send(
        &self,
        url: &url::Url,
        tls: &OutboundTls,
        msg_id: &str,
        timestamp_secs: i64,
        signature: &WebhookSignature,
        body: Vec<u8>,
    ) -> SendOutcome {
        let started = Instant::now();
        let fail = |class, code: Option<u16>| SendOutcome {
            status_code: code,
            latency: started.elapsed(),
            error_class: Some(class),
        };
        // IP-literal hosts never reach the resolver, so they are checked here.
        let literal = match url.host() {
            Some(url::Host::Ipv4(v4)) => Some(std::net::IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(std::net::IpAddr::V6(v6)),
            _ => None,
        };
        if literal.is_some_and(|ip| !self.policy.permits(ip)) {
            return fail("forbidden_destination", None);
        }
        let client = if tls.is_default() {
            self.default_client.clone()
        } else {
            match self.policy_clients.get(tls) {
                Ok(client) => client,
                Err(e) => {
                    // Policies are checked when parsed, so this is a bug or a resource problem,
                    // not something the destination did.
                    tracing::error!(error = %e, "building an HTTP client for a TLS policy failed");
                    return fail("request", None);
                }
            }
        };
        let result = client
            .post(url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", msg_id)
            .header("webhook-timestamp", timestamp_secs.to_string())
            .header("webhook-signature", &signature.0)
            .body(body)
            .send()
            .await;
        let mut response = match result {
            Ok(r) => r,
            Err(e) => return fail(classify(&e), None),
        };
        let code = response.status().as_u16();
        let mut read = 0usize;
        while read < MAX_RESPONSE_READ {
            match response.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                Ok(None) => break,
                // The receiver answered 2xx; a broken body afterwards does not undo that.
                Err(_) if response.status().is_success() => break,
                Err(e) => return fail(classify(&e), Some(code)),
            }
        }
        if response.status().is_success() {
            SendOutcome { status_code: Some(code), latency: started.elapsed(), error_class: None }
        } else {
            fail("http_status", Some(code))
        }
    }
}

/// Settings every client shares, whatever its TLS policy.
pub(crate) fn client_builder(policy: DestinationPolicy, timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("Chimatic/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(policy.resolver())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(64)
        .no_proxy()
}

/// Clients for non-default TLS policies, built on first use and kept, least recently used
/// evicted first. A linear scan is fine at this size and needs no hashing of pins.
struct PolicyClients {
    tls: TlsContext,
    policy: DestinationPolicy,
    timeout: Duration,
    clients: Mutex<VecDeque<(OutboundTls, reqwest::Client)>>,
}

impl PolicyClients {
    fn get(&self, tls: &OutboundTls) -> Result<reqwest::Client, SenderBuildError> {
        if let Some(client) = self.lookup(tls) {
            return Ok(client);
        }
        // Built outside the lock; two first uses at once may both build, and one copy is kept.
        let config = self.tls.client_config(tls)?;
        let client = client_builder(self.policy, self.timeout).tls_backend_preconfigured(config).build()?;
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if !clients.iter().any(|(key, _)| key == tls) {
            if clients.len() >= MAX_POLICY_CLIENTS {
                clients.pop_front();
            }
            clients.push_back((tls.clone(), client.clone()));
        }
        Ok(client)
    }

    fn lookup(&self, tls: &OutboundTls) -> Option<reqwest::Client> {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        let at = clients.iter().position(|(key, _)| key == tls)?;
        let entry = clients.remove(at)?;
        let client = entry.1.clone();
        clients.push_back(entry);
        Some(client)
    }
}

/// A provider's JSON answer, read up to [`MAX_RESPONSE_READ`] bytes; `None` if it is longer or
/// the body breaks off.
pub(crate) async fn read_small_body(mut response: reqwest::Response) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.ok()? {
        if body.len() + chunk.len() > MAX_RESPONSE_READ {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

pub(crate) fn classify(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if is_forbidden(e) {
        "forbidden_destination"
    } else if is_tls(e) {
        "tls"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "response_body"
    } else {
        "request"
    }
}

fn is_forbidden(e: &reqwest::Error) -> bool {
    caused_by::<crate::DestinationError>(e)
}

/// A handshake rustls refused: protocol version, untrusted chain, pin mismatch, or an alert
/// from the receiver.
fn is_tls(e: &reqwest::Error) -> bool {
    caused_by::<rustls::Error>(e)
}

pub(crate) fn caused_by<T: std::error::Error + 'static>(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if err.is::<T>() {
            return true;
        }
        // `io::Error::source()` skips the error it wraps, and reqwest's connector nests one
        // `io::Error` in another around the rustls error, so step into wrapped errors directly.
        next = match err.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref) {
            Some(inner) => Some(inner),
            None => err.source(),
        };
    }
    false
}

#[cfg(test)]
mod tests {
    use chimatic_domain::SpkiPin;

    use super::*;

    #[test]
    fn policy_clients_are_reused_and_the_least_recently_used_is_evicted() {
        let sender =
            WebhookSender::new(DestinationPolicy { allow_private: true }, Duration::from_secs(1), None).unwrap();
        let policy = |n: u8| OutboundTls::new(false, vec![SpkiPin::from_sha256([n; 32])]).unwrap();
        let clients = &sender.policy_clients;
        for n in 0..40 {
            clients.get(&policy(n)).unwrap();
            clients.get(&policy(0)).unwrap();
        }
        let cached = clients.clients.lock().unwrap();
        assert_eq!(cached.len(), MAX_POLICY_CLIENTS);
        assert!(cached.iter().any(|(key, _)| *key == policy(0)), "a policy in use stays");
        assert!(!cached.iter().any(|(key, _)| *key == policy(1)), "the least recently used goes");
        assert_eq!(cached.iter().filter(|(key, _)| *key == policy(0)).count(), 1);
    }
}
