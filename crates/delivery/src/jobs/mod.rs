//! Background jobs of a data-plane node, for one region's store. Each job works in small
//! batches and is safe with many nodes: the purges (deleted workspaces' last sweep, deactivated
//! channels past their window, idempotency keys past 24 h, inbound provider webhooks past 30
//! days, audit entries past their plan's retention) run each batch under the job's advisory
//! lock (PostgreSQL) and skip frozen workspaces; integration checks are claimed row by row, so no
//! integration is checked by two nodes at once. Time comes from the injected clock.

mod audit;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chimatic_domain::{Clock, Region, Timestamp, WorkspaceId};
use chimatic_providers::ProviderClient;
use chimatic_store::{ControlStore, Store, StoreError};
use tokio::sync::watch;

pub use audit::sign_heads;

/// Rows per purge batch: small enough that no write lock is held for long.
const PURGE_BATCH: u32 = 1000;
/// Inbound provider webhooks are kept this long.
const INBOUND_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// Batches one purge run may take, so a backlog is cleared over a few runs without one run
/// holding the job for long.
const MAX_PURGE_BATCHES: u32 = 100;
/// Integrations claimed for checking at a time.
const CHECK_BATCH: u32 = 20;

pub struct Jobs {
    pub store: Arc<Store>,
    /// Workspaces' plans (audit retention); its audit chains are kept by the primary region's nodes.
    pub control: Arc<ControlStore>,
    pub primary: bool,
    /// How often the purges run.
    pub purge_interval: Duration,
    pub clock: Arc<dyn Clock>,
    pub health: ProviderClient,
    pub connections: Arc<crate::Connections>,
    /// How often each integration is checked.
    pub health_check_interval: Duration,
    /// How often grown audit chains get a signed head.
    pub audit_sign_interval: Duration,
}

impl Jobs {
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let tick_every =
            self.health_check_interval.min(self.purge_interval).clamp(Duration::from_secs(1), Duration::from_secs(60));
        let mut tick = tokio::time::interval(tick_every);
        let mut last_purge: Option<Timestamp> = None;
        let mut last_signature: Option<Timestamp> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            let now = self.clock.now();
            // Frozen workspaces are left alone by the purges and the integration checks; if the
            // freezes cannot be read, both wait for the next tick.
            let frozen = match self.control.frozen_workspaces().await {
                Ok(f) => Some(f),
                Err(e) => {
                    tracing::warn!(region = %self.store.region(), error = %e, "reading frozen workspaces failed; purges and checks wait");
                    None
                }
            };
            if last_purge.is_none_or(|t| t.plus(self.purge_interval) <= now) {
                if let Some(frozen) = &frozen {
                    self.purge(now, frozen).await;
                }
                last_purge = Some(now);
            }
            if last_signature.is_none_or(|t| t.plus(self.audit_sign_interval) <= now) {
                let control = self.primary.then_some(&*self.control);
                match audit::sign_heads(&self.store, control, now).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(region = %self.store.region(), chains = n, "audit chain heads signed"),
                    Err(e) => {
                        tracing::warn!(region = %self.store.region(), error = %e, "signing audit chain heads failed")
                    }
                }
                last_signature = Some(now);
            }
            self.rewrap_keys().await;
            if let Some(frozen) = &frozen {
                self.check_integrations(frozen).await;
            }
        }
    }

    /// `frozen`: workspaces whose data is left exactly as it is (evidence in an incident).
    async fn purge(&self, now: Timestamp, frozen: &BTreeSet<WorkspaceId>) {
        let region = self.store.region();
        let resumed = self.control.resume_deletions(&self.store, now).await;
        report(region, resumed, "interrupted workspace deletions finished", "finishing workspace deletions failed");
        match self.control.sweep_deletions(&self.store, now).await {
            Ok(swept) => {
                for (ws, found) in swept {
                    let rows: u64 = found.values().sum();
                    if rows > 0 {
                        tracing::warn!(region = %region, workspace = %ws, rows, "rows written after a workspace's deletion erased by its last sweep");
                    } else {
                        tracing::info!(region = %region, workspace = %ws, "deleted workspace swept a last time");
                    }
                }
            }
            Err(e) => tracing::warn!(region = %region, error = %e, "sweeping deleted workspaces failed"),
        }
        let purged = drain(|| self.store.purge_deactivated_channels(now, frozen, PURGE_BATCH)).await;
        report(region, purged, "deactivated channels past their window purged", "purging deactivated channels failed");
        let removed = match self.control.payload_retentions(region).await {
            Ok(retentions) => self.store.remove_expired_payloads(now, &retentions, frozen, PURGE_BATCH).await,
            Err(e) => Err(e),
        };
        report(
            region,
            removed,
            "notification content past its retention removed",
            "removing notification content failed",
        );
        let removed = drain(|| self.store.purge_expired_idempotency_keys(now, PURGE_BATCH)).await;
        report(region, removed, "expired idempotency keys purged", "purging idempotency keys failed");
        let removed = drain(|| self.store.purge_inbound_events(now, INBOUND_RETENTION, PURGE_BATCH)).await;
        report(region, removed, "inbound webhooks past 30 days purged", "purging inbound webhooks failed");
        let pruned = audit::prune(&self.store, &self.control, self.primary, now).await;
        report(region, pruned, "audit entries past their plan's retention pruned", "pruning the audit log failed");
    }

    /// After a KEK rotation, moves DEKs to the current KEK, a batch at a time.
    async fn rewrap_keys(&self) {
        match drain(|| self.store.rewrap_keys(PURGE_BATCH)).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(region = %self.store.region(), rewrapped = n, kek = self.store.kek_id(), "DEKs re-wrapped under the current KEK")
            }
            Err(e) => tracing::warn!(region = %self.store.region(), error = %e, "re-wrapping DEKs failed"),
        }
    }

    /// Checks every integration whose last check is older than the interval.
    /// A `frozen` workspace's integrations are not called (their claim still moves on).
    async fn check_integrations(&self, frozen: &BTreeSet<WorkspaceId>) {
        loop {
            let now = self.clock.now();
            let claimed = match self.store.claim_integration_checks(now, self.health_check_interval, CHECK_BATCH).await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming integrations to check failed");
                    return;
                }
            };
            if claimed.is_empty() {
                return;
            }
            for (ws, id) in claimed.into_iter().filter(|(ws, _)| !frozen.contains(ws)) {
                let loaded = async {
                    let integration = self.store.integration(ws, id).await?;
                    let credentials = self.store.integration_credentials(ws, id).await?;
                    Ok::<_, StoreError>((integration, credentials))
                }
                .await;
                let (integration, credentials) = match loaded {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(workspace = %ws, integration = %id, error = %e, "loading an integration to check failed");
                        continue;
                    }
                };
                let (settings, health) = (&integration.settings, &self.health);
                let checked = self.connections.check(health, &self.store, (ws, id), settings, credentials, now).await;
                let Some(outcome) = checked else { continue };
                let done = self.clock.now();
                if !outcome.healthy {
                    tracing::warn!(workspace = %ws, integration = %id, error_class = outcome.error_class, "integration check failed");
                }
                if let Err(e) =
                    self.store.record_integration_check(ws, id, done, outcome.healthy, outcome.error_class).await
                {
                    tracing::warn!(workspace = %ws, integration = %id, error = %e, "recording an integration check failed");
                }
            }
        }
    }
}

/// Logs what a job did: `done` with the row count when it changed anything, `failed` with the
/// error when it could not run (it runs again on the next tick).
fn report(region: &Region, result: Result<u64, StoreError>, done: &str, failed: &str) {
    match result {
        Ok(0) => {}
        Ok(rows) => tracing::info!(region = %region, rows, "{done}"),
        Err(e) => tracing::warn!(region = %region, error = %e, "{failed}"),
    }
}

/// Runs a purge batch after batch while batches come back full (a backlog), up to
/// [`MAX_PURGE_BATCHES`]; returns how many rows went.
async fn drain<F, Fut>(batch: F) -> Result<u64, StoreError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<u64, StoreError>>,
{
    let mut total = 0;
    for _ in 0..MAX_PURGE_BATCHES {
        let n = batch().await?;
        total += n;
        if n < u64::from(PURGE_BATCH) {
            break;
        }
        // Other work on the store goes between batches.
        tokio::task::yield_now().await;
    }
    Ok(total)
}
