//! The dispatcher: claims due jobs under a lease, delivers them with bounded concurrency, and
//! records each attempt. A crash at any point leaves the job leased; when the lease runs out
//! it is due again, so every accepted notification is delivered at least once.

mod attempt;
mod schedule;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chimatic_domain::{Clock, RetrySchedule, WorkspaceId};
use chimatic_providers::ProviderClient;
use chimatic_store::{ClaimedJob, ControlStore, DeliveryStats, Store};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::time::Instant;

use crate::Connections;

use schedule::Schedule;

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
    /// Refreshes the tokens of integrations connected over OAuth.
    connections: Arc<Connections>,
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
        connections: Arc<Connections>,
        clock: Arc<dyn Clock>,
        config: DispatcherConfig,
    ) -> Self {
        Self {
            store,
            control,
            frozen: Default::default(),
            stats,
            providers,
            connections,
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
        let mut schedule = Schedule::new(concurrency, self.config.poll_interval);
        // Each finished delivery reports its workspace here, so the schedule frees its worker.
        let (finished_tx, mut finished) = mpsc::unbounded_channel();
        loop {
            if *shutdown.borrow() {
                break;
            }
            while let Ok(ws) = finished.try_recv() {
                schedule.finished(ws);
            }
            let now = Instant::now();
            let stale = schedule.take_stale(now);
            if !stale.is_empty() {
                self.defer(stale).await;
            }
            let freezes_read = match schedule.claim_size() {
                Some(want) => self.claim(want, &mut schedule).await,
                None => false,
            };
            // Only a fresh read of the freezes may release held deliveries.
            if schedule.resume_due(now) && (freezes_read || self.refresh_frozen().await) {
                self.resume_unfrozen().await;
            }
            let Some(job) = schedule.next(now) else {
                let waiting_for_a_slot = schedule.waiting_for_a_slot();
                tokio::select! {
                    Some(ws) = finished.recv(), if waiting_for_a_slot => schedule.finished(ws),
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(self.config.poll_interval) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            };
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = shutdown.changed() => { schedule.put_back(job); break }
            };
            let ws = job.workspace_id;
            schedule.started(ws);
            let (this, finished_tx) = (self.clone(), finished_tx.clone());
            tokio::spawn(async move {
                this.deliver(job).await;
                drop(permit);
                let _ = finished_tx.send(ws);
            });
        }
        self.hand_back(schedule.unstarted()).await;
        // Wait for in-flight deliveries; whatever does not finish is redelivered after its lease.
        let all = u32::try_from(concurrency).unwrap_or(u32::MAX);
        if tokio::time::timeout(self.config.shutdown_grace, permits.acquire_many(all)).await.is_err() {
            tracing::warn!("shutdown grace period ended with deliveries in flight; they will be retried");
        }
    }

    /// Claims up to `want` due deliveries into the schedule, holding those of frozen workspaces;
    /// returns whether the freezes could be read first.
    async fn claim(&self, want: u32, schedule: &mut Schedule) -> bool {
        let freezes_read = self.refresh_frozen().await;
        match self.store.claim_due(self.clock.now(), self.config.lease, want).await {
            Ok(jobs) => {
                let (held, jobs): (Vec<_>, Vec<_>) = jobs.into_iter().partition(|j| self.is_frozen(&j.workspace_id));
                self.hold(&held).await;
                schedule.claimed(jobs);
            }
            Err(e) => tracing::warn!(error = %e, "claiming due deliveries failed"),
        }
        freezes_read
    }

    /// Jobs claimed but not started go back to the queue now rather than when their lease ends.
    async fn hand_back(&self, jobs: Vec<ClaimedJob>) {
        if jobs.is_empty() {
            return;
        }
        if let Err(e) = self.store.release_claims(&jobs, self.clock.now()).await {
            tracing::warn!(error = %e, "releasing unstarted deliveries failed; they are retried when their lease ends");
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

    /// Hands parked jobs back to the queue, due after one poll interval, instead of holding
    /// them (and their leases) here while their tenant's receivers hang.
    async fn defer(&self, jobs: Vec<ClaimedJob>) {
        let due = self.clock.now().plus(self.config.poll_interval);
        if let Err(e) = self.store.release_claims(&jobs, due).await {
            tracing::warn!(error = %e, "handing back deferred deliveries failed; they are retried when their lease ends");
        }
    }
}
