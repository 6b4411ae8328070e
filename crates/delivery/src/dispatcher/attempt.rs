//! One delivery attempt: load and decrypt what the job needs, send it through its provider,
//! decide the retry, and record the attempt.

use std::sync::Arc;

use chimatic_crypto::{CryptoError, SigningSecret, WebhookSignature};
use chimatic_domain::{
    ChannelAddress, IntegrationCredentials, IntegrationId, IntegrationSettings, OutboundTls, RenderedMessage,
    Timestamp, WebhookUrl, WorkspaceId,
};
use chimatic_providers::MessageMeta;
use chimatic_store::records::{AttemptDetail, Delivery, EndpointSigning, SubscriberChannel};
use chimatic_store::{ClaimedJob, DeliveryEvent, QueueOutcome, StoreError};

use super::{Dispatcher, KEY_UNAVAILABLE_PAUSE};

impl Dispatcher {
    pub(super) async fn deliver(&self, job: ClaimedJob) {
        let ws = job.workspace_id;
        // Claimed before its workspace was frozen: held now, not sent.
        if self.is_frozen(&ws) {
            self.hold(std::slice::from_ref(&job)).await;
            return;
        }
        let id_text = job.notification_id.to_string();
        let started_at = self.clock.now();
        let timestamp = started_at.as_secs();
        let loaded = self.load(ws, &job).await;
        let prepared = match loaded {
            Ok(v) => v,
            Err(StoreError::Crypto(CryptoError::Integrity)) => {
                // Tampered data must never be sent; this is final, not retryable.
                tracing::error!(notification = %id_text, "stored data failed its integrity check; not delivering");
                self.give_up(&job, "integrity_error").await;
                return;
            }
            Err(StoreError::NotFound) => {
                // The subscriber's channel or the integration was removed: nothing to send to.
                tracing::warn!(notification = %id_text, "the destination of a notification no longer exists");
                self.give_up(&job, "destination_removed").await;
                return;
            }
            Err(StoreError::Crypto(CryptoError::KeyUnavailable)) => {
                // The key provider is down or refused the workspace's key: pause, not fail. The
                // job goes back to the queue without an attempt and is tried again later.
                tracing::warn!(notification = %id_text, "the key provider is unavailable; delivery paused");
                let due = self.clock.now().plus(KEY_UNAVAILABLE_PAUSE);
                if let Err(e) = self.store.release_claims(std::slice::from_ref(&job), due).await {
                    tracing::warn!(error = %e, "handing back a paused delivery failed; it is retried when its lease ends");
                }
                return;
            }
            Err(e) => {
                // Left leased: it becomes due again when the lease runs out.
                tracing::warn!(notification = %id_text, error = %e, "loading a notification for delivery failed");
                return;
            }
        };
        let via = prepared.integration_id();
        let outcome = match prepared {
            Prepared::Disabled => {
                // Disabled through the portal: nothing is sent; a replay after enabling sends it.
                self.give_up(&job, "endpoint_disabled").await;
                return;
            }
            Prepared::Webhook { body, url, tls, signing } => {
                let signature = signing.sign(&id_text, started_at, &body);
                self.providers.webhooks().send(url.expose(), &tls, &id_text, timestamp, &signature, body).await
            }
            Prepared::Message { content, address, integration, integration_id } => {
                let meta = MessageMeta { id: &id_text, timestamp_secs: timestamp };
                match (integration, integration_id) {
                    (Some((settings, credentials)), Some(id)) => {
                        let via = (&settings, credentials);
                        let (store, providers) = (&self.store, &self.providers);
                        self.connections
                            .send(providers, store, (ws, id), &meta, &address, &content, via, started_at)
                            .await
                    }
                    _ => self.providers.send_message(&meta, &address, &content, None).await,
                }
            }
        };

        let attempts_made = job.round_attempts + 1;
        let now = self.clock.now();
        let next = if outcome.succeeded() {
            QueueOutcome::Delivered
        } else {
            let random = chimatic_crypto::random::u32().unwrap_or(0);
            match self.config.schedule.jittered_delay_after(attempts_made, random) {
                Some(delay) => QueueOutcome::RetryAt(now.plus(delay)),
                None => QueueOutcome::Failed,
            }
        };
        let final_failure = matches!(next, QueueOutcome::Failed);
        self.stats.record(ws, now, DeliveryEvent::Attempted { delivered: outcome.succeeded(), final_failure }, 1);
        let label = if outcome.succeeded() { "success" } else { "failure" };
        metrics::counter!("chimatic_delivery_attempts_total", "outcome" => label).increment(1);
        metrics::histogram!("chimatic_delivery_latency_seconds").record(outcome.latency.as_secs_f64());
        tracing::debug!(
            notification = %id_text,
            status_code = outcome.status_code,
            latency_ms = outcome.latency.as_millis() as u64,
            error_class = outcome.error_class,
            "delivery attempt"
        );
        let detail = AttemptDetail {
            status_code: outcome.status_code,
            latency_ms: u64::try_from(outcome.latency.as_millis()).unwrap_or(u64::MAX),
            error_class: outcome.error_class.map(str::to_string),
            integration_id: via,
        };
        match self.store.complete_attempt(&job, started_at, outcome.succeeded(), &detail, next, now).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(notification = %id_text, "the notification was erased during its delivery; no attempt recorded")
            }
            Err(e) => {
                tracing::warn!(notification = %id_text, error = %e, "recording an attempt failed; the lease will expire and it is retried")
            }
        }
    }

    /// Decrypts what the delivery needs: payload, channel and signing secret of a direct webhook,
    /// or content, address and integration of a message to a subscriber.
    async fn load(&self, ws: WorkspaceId, job: &ClaimedJob) -> Result<Prepared, StoreError> {
        Ok(match self.store.delivery(job).await? {
            Delivery::Webhook { payload, channel } => {
                let secret = self.store.signing_secret(ws, channel.id).await?;
                Prepared::Webhook {
                    body: payload.into_inner(),
                    url: channel.url,
                    tls: channel.tls,
                    signing: Signing::Channel(secret),
                }
            }
            Delivery::Message { route, content, channel } => match *channel {
                SubscriberChannel { disabled_at: Some(_), .. } => Prepared::Disabled,
                // A portal endpoint signs with its own secrets, not the integration's.
                SubscriberChannel { address: ChannelAddress::Webhook(url), signing: Some(signing), .. } => {
                    Prepared::Webhook {
                        body: chimatic_providers::webhook_body(&content),
                        url,
                        tls: OutboundTls::default(),
                        signing: Signing::Endpoint(signing),
                    }
                }
                SubscriberChannel { address, .. } => {
                    // After `failover_after` failed attempts of this round, the fallback
                    // integration takes over; the attempt records which one was used.
                    let integration_id = route.integration_for_attempt(job.round_attempts);
                    if integration_id != route.integration_id {
                        tracing::info!(notification = %job.notification_id, "the primary integration kept failing; using the fallback");
                    }
                    let integration = match integration_id {
                        Some(id) => Some((
                            self.store.integration(ws, id).await?.settings,
                            self.store.integration_credentials(ws, id).await?,
                        )),
                        None => None,
                    };
                    Prepared::Message { content, address, integration, integration_id }
                }
            },
        })
    }

    /// Records a final failure that no retry can fix.
    async fn give_up(&self, job: &ClaimedJob, class: &str) {
        let detail =
            AttemptDetail { status_code: None, latency_ms: 0, error_class: Some(class.into()), integration_id: None };
        let now = self.clock.now();
        self.stats.record(job.workspace_id, now, DeliveryEvent::Attempted { delivered: false, final_failure: true }, 1);
        if let Err(e) = self.store.complete_attempt(job, now, false, &detail, QueueOutcome::Failed, now).await {
            tracing::warn!(notification = %job.notification_id, error = %e, "recording an attempt failed");
        }
    }
}

enum Prepared {
    /// A direct webhook to a channel, or a message to a portal endpoint.
    Webhook { body: Vec<u8>, url: WebhookUrl, tls: OutboundTls, signing: Signing },
    Message {
        content: RenderedMessage,
        address: ChannelAddress,
        integration: Option<(IntegrationSettings, IntegrationCredentials)>,
        integration_id: Option<IntegrationId>,
    },
    /// To a webhook endpoint its subscriber disabled.
    Disabled,
}

enum Signing {
    Channel(Arc<SigningSecret>),
    Endpoint(EndpointSigning),
}

impl Signing {
    /// A channel's one signature; an endpoint's current one, followed during a rotation's
    /// overlap by the previous secret's.
    fn sign(&self, id: &str, at: Timestamp, body: &[u8]) -> WebhookSignature {
        let secs = at.as_secs();
        match self {
            Signing::Channel(secret) => secret.sign(id, secs, body),
            Signing::Endpoint(e) => {
                let current = e.current.sign(id, secs, body);
                match e.overlapping(at) {
                    Some((previous, _)) => current.and(previous.sign(id, secs, body)),
                    None => current,
                }
            }
        }
    }
}

impl Prepared {
    fn integration_id(&self) -> Option<IntegrationId> {
        match self {
            Prepared::Webhook { .. } | Prepared::Disabled => None,
            Prepared::Message { integration_id, .. } => *integration_id,
        }
    }
}
