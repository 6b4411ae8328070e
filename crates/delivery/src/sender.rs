//! Outbound webhook POSTs: TLS 1.3 only, no redirects, SSRF-guarded resolver, pooled
//! keep-alive connections, bounded response reads.

use std::time::{Duration, Instant};

use chimatic_crypto::WebhookSignature;

use crate::DestinationPolicy;

/// Response bodies are read (so connections can be reused) but never stored beyond this.
const MAX_RESPONSE_READ: usize = 64 * 1024;

#[derive(Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
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
#[error("cannot build the HTTP client: {0}")]
pub struct SenderBuildError(#[from] reqwest::Error);

impl WebhookSender {
    pub fn new(policy: DestinationPolicy, timeout: Duration) -> Result<Self, SenderBuildError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("Chimatic/", env!("CARGO_PKG_VERSION")))
            .tls_version_min(reqwest::tls::Version::TLS_1_3)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(policy.resolver())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .no_proxy()
            .build()?;
        Ok(Self { client, policy })
    }

    pub async fn send(
        &self,
        url: &url::Url,
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
        let result = self
            .client
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

fn classify(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if is_forbidden(e) {
        "forbidden_destination"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "response_body"
    } else {
        "request"
    }
}

fn is_forbidden(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<crate::DestinationError>().is_some() {
            return true;
        }
        source = s.source();
    }
    false
}
