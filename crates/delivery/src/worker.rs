//! The dispatcher: claims due jobs under a lease, delivers them with bounded concurrency, and
//! records each attempt. A crash at any point leaves the job leased; when the lease runs out
//! it is due again, so every accepted notification is delivered at least once.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chimatic_crypto::CryptoError;
use chimatic_domain::{Clock, RetrySchedule, WorkspaceId};
use chimatic_store::records::{AttemptDetail, Delivery};
use chimatic_store::{ClaimedJob, ControlStore, DeliveryEvent, DeliveryStats, QueueOutcome, Store, StoreError};
use tokio::sync::{Notify, Semaphore, watch};

use chimatic_providers::{MessageMeta, ProviderClient};

/// How long deliveries wait while the key provider is unavailable before they are tried again.
const KEY_UNAVAILABLE_PAUSE: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct DispatcherConfig {
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// How long a claimed job is reserved; must exceed the request timeout.
    pub lease: Duration,
    /// How often to look for due retries when nothing wakes the dispatcher.
    pub poll_interval: Duration,
    pub schedule: RetrySchedule,
    /// In-flight deliveries get this long to finish on shutdown; the rest are left to their leases.
    pub shutdown_grace: Duration,
}

/// Delivers from one region's store.
pub struct Dispatcher {
    store: Arc<Store>,
    /// Where freezes are recorded: a frozen workspace's deliveries are held, not attempted.
    control: Arc<ControlStore>,
    /// The frozen workspaces as last read, refreshed before every claim.
    frozen: std::sync::RwLock<BTreeSet<WorkspaceId>>,
    stats: Arc<DeliveryStats>,
    providers: ProviderClient,
    clock: Arc<dyn Clock>,
    config: DispatcherConfig,
    wake: Arc<Notify>,
}

impl Dispatcher {
    pub fn new(
        store: Arc<Store>,
        control: Arc<ControlStore>,
        stats: Arc<DeliveryStats>,
        providers: ProviderClient,
        clock: Arc<dyn Clock>,
        config: DispatcherConfig,
    ) -> Self {
        Self {
            store,
            control,
            frozen: Default::default(),
            stats,
            providers,
            clock,
            config,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Notified by the API after a notification is queued, so delivery starts without polling delay.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let concurrency = self.config.concurrency.max(1);
        let permits = Arc::new(Semaphore::new(concurrency));
        // Claimed jobs waiting for a free worker. Claiming a worker-pool's worth at a time keeps
        // claim transactions (each a commit) rare; the buffer is bounded by 2 × concurrency.
        let mut buffer: VecDeque<ClaimedJob> = VecDeque::with_capacity(2 * concurrency);
        // No workspace holds more than this many workers, so a tenant whose receivers are slow
        // or dead cannot occupy them all: an eighth (at least one) always stays free for others.
        let per_workspace = concurrency.saturating_sub((concurrency / 8).max(1)).max(1);
        let busy: Arc<std::sync::Mutex<HashMap<WorkspaceId, usize>>> = Arc::default();
        let slot_freed = Arc::new(Notify::new());
        // Jobs of workspaces at their share wait here for one of their own workers to finish.
        // If they wait longer than a poll interval (the tenant's receivers are slow or hang),
        // they go back to the queue, so claiming goes on and other tenants' jobs reach the free
        // workers.
        let mut parked: VecDeque<(ClaimedJob, tokio::time::Instant)> = VecDeque::new();
        let mut last_resume: Option<tokio::time::Instant> = None;
        loop {
            if *shutdown.borrow() {
                break;
            }
            if parked.front().is_some_and(|(_, since)| since.elapsed() >= self.config.poll_interval) {
                let (stale, fresh): (Vec<_>, Vec<_>) =
                    parked.drain(..).partition(|(_, since)| since.elapsed() >= self.config.poll_interval);
                parked.extend(fresh);
                self.defer(stale.into_iter().map(|(job, _)| job).collect()).await;
            }
            let mut freezes_read = false;
            if buffer.len() + parked.len() <= concurrency / 2 {
                freezes_read = self.refresh_frozen().await;
                let want = u32::try_from(2 * concurrency - buffer.len()).unwrap_or(u32::MAX);
                match self.store.claim_due(self.clock.now(), self.config.lease, want).await {
                    Ok(jobs) => {
                        let (held, jobs): (Vec<_>, Vec<_>) =
                            jobs.into_iter().partition(|j| self.is_frozen(&j.workspace_id));
                        self.hold(&held).await;
                        buffer.extend(jobs);
                    }
                    Err(e) => tracing::warn!(error = %e, "claiming due deliveries failed"),
                }
            }
            // Only a fresh read of the freezes may release held deliveries.
            if last_resume.is_none_or(|t| t.elapsed() >= self.config.poll_interval) {
                last_resume = Some(tokio::time::Instant::now());
                if freezes_read || self.refresh_frozen().await {
                    self.resume_unfrozen().await;
                }
            }
            // A parked job whose workspace has a free worker again goes first.
            let has_room = |ws: &WorkspaceId| lock(&busy).get(ws).copied().unwrap_or(0) < per_workspace;
            let next = match parked.iter().position(|(j, _)| has_room(&j.workspace_id)) {
                Some(i) => parked.remove(i).map(|(job, _)| job),
                None => buffer.pop_front(),
            };
            let Some(job) = next else {
                let waiting_for_a_slot = !parked.is_empty();
                tokio::select! {
                    _ = slot_freed.notified(), if waiting_for_a_slot => {}
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(self.config.poll_interval) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            };
            let ws = job.workspace_id;
            if !has_room(&ws) {
                parked.push_back((job, tokio::time::Instant::now()));
                continue;
            }
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = shutdown.changed() => { buffer.push_front(job); break }
            };
            *lock(&busy).entry(ws).or_default() += 1;
            let (this, busy, slot_freed) = (self.clone(), busy.clone(), slot_freed.clone());
            tokio::spawn(async move {
                this.deliver(job).await;
                {
                    let mut busy = lock(&busy);
                    if let Some(n) = busy.get_mut(&ws) {
                        *n -= 1;
                        if *n == 0 {
                            busy.remove(&ws);
                        }
                    }
                }
                drop(permit);
                slot_freed.notify_one();
            });
        }
        // Jobs claimed but not started go back to the queue now rather than when their lease ends.
        buffer.extend(parked.into_iter().map(|(job, _)| job));
        if !buffer.is_empty() {
            let jobs: Vec<ClaimedJob> = buffer.into_iter().collect();
            if let Err(e) = self.store.release_claims(&jobs, self.clock.now()).await {
                tracing::warn!(error = %e, "releasing unstarted deliveries failed; they are retried when their lease ends");
            }
        }
        // Wait for in-flight deliveries; whatever does not finish is redelivered after its lease.
        let all = u32::try_from(concurrency).unwrap_or(u32::MAX);
        if tokio::time::timeout(self.config.shutdown_grace, permits.acquire_many(all)).await.is_err() {
            tracing::warn!("shutdown grace period ended with deliveries in flight; they will be retried");
        }
    }

    /// Reads which workspaces are frozen; returns whether it could. If the control store cannot
    /// be read, the last known set stays in force.
    async fn refresh_frozen(&self) -> bool {
        match self.control.frozen_workspaces().await {
            Ok(set) => {
                *self.frozen.write().unwrap_or_else(std::sync::PoisonError::into_inner) = set;
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading frozen workspaces failed; keeping the last known set");
                false
            }
        }
    }

    fn is_frozen(&self, ws: &WorkspaceId) -> bool {
        self.frozen.read().unwrap_or_else(std::sync::PoisonError::into_inner).contains(ws)
    }

    async fn hold(&self, jobs: &[ClaimedJob]) {
        if jobs.is_empty() {
            return;
        }
        tracing::info!(held = jobs.len(), "deliveries of a frozen workspace held");
        if let Err(e) = self.store.hold_claims(jobs).await {
            tracing::warn!(error = %e, "holding deliveries of a frozen workspace failed; they stay leased until their lease ends");
        }
    }

    /// Releases the held deliveries of workspaces that were unfrozen (by any node), as of the
    /// freezes just read.
    async fn resume_unfrozen(&self) {
        let frozen = self.frozen.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        match self.store.resume_held(&frozen, self.clock.now()).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(resumed = n, "held deliveries of an unfrozen workspace resumed");
                self.wake.notify_one();
            }
            Err(e) => tracing::warn!(error = %e, "resuming held deliveries failed"),
        }
    }

    async fn deliver(&self, job: ClaimedJob) {
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
            Prepared::Webhook { payload, channel, secret } => {
                let body = payload.into_inner();
                let signature = secret.sign(&id_text, timestamp, &body);
                self.providers
                    .webhooks()
                    .send(channel.url.expose(), &channel.tls, &id_text, timestamp, &signature, body)
                    .await
            }
            Prepared::Message { content, address, integration, .. } => {
                let meta = MessageMeta { id: &id_text, timestamp_secs: timestamp };
                let integration = integration.as_ref().map(|(s, c)| (s, c));
                self.providers.send_message(&meta, &address, &content, integration).await
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

    /// Hands parked jobs back to the queue, due after one poll interval, instead of holding
    /// them (and their leases) here while their tenant's receivers hang.
    async fn defer(&self, jobs: Vec<ClaimedJob>) {
        let due = self.clock.now().plus(self.config.poll_interval);
        if let Err(e) = self.store.release_claims(&jobs, due).await {
            tracing::warn!(error = %e, "handing back deferred deliveries failed; they are retried when their lease ends");
        }
    }

    /// Decrypts what the delivery needs: payload, channel and signing secret of a direct webhook,
    /// or content, address and integration of a message to a subscriber.
    async fn load(&self, ws: chimatic_domain::WorkspaceId, job: &ClaimedJob) -> Result<Prepared, StoreError> {
        Ok(match self.store.delivery(ws, job.notification_id).await? {
            Delivery::Webhook { payload, channel } => {
                let secret = self.store.signing_secret(ws, channel.id).await?;
                Prepared::Webhook { payload, channel, secret }
            }
            Delivery::Message { route, content, address } => {
                // After `failover_after` failed attempts of this round, the fallback integration
                // takes over; the attempt records which one was used.
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
    Webhook {
        payload: chimatic_domain::Sensitive<Vec<u8>>,
        channel: chimatic_store::records::Channel,
        secret: chimatic_crypto::SigningSecret,
    },
    Message {
        content: chimatic_domain::RenderedMessage,
        address: chimatic_domain::ChannelAddress,
        integration: Option<(chimatic_domain::IntegrationSettings, chimatic_domain::IntegrationCredentials)>,
        integration_id: Option<chimatic_domain::IntegrationId>,
    },
}

impl Prepared {
    fn integration_id(&self) -> Option<chimatic_domain::IntegrationId> {
        match self {
            Prepared::Webhook { .. } => None,
            Prepared::Message { integration_id, .. } => *integration_id,
        }
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
