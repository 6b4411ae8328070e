//! Background jobs of a data-plane node. Each job works in small batches; on PostgreSQL each
//! batch runs under the job's advisory lock, so with many nodes exactly one works on it at a time.

use std::sync::Arc;
use std::time::Duration;

use chimatic_domain::Clock;
use chimatic_store::Store;
use tokio::sync::watch;

/// How often the jobs run.
const INTERVAL: Duration = Duration::from_secs(600);
/// Rows per batch: small enough that no write lock is held for long.
const BATCH: u32 = 1000;

/// Runs the jobs for one region's store until shutdown.
pub async fn run(store: Arc<Store>, clock: Arc<dyn Clock>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        match store.purge_expired_idempotency_keys(clock.now(), BATCH).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(region = %store.region(), removed = n, "expired idempotency keys purged"),
            Err(e) => tracing::warn!(region = %store.region(), error = %e, "purging idempotency keys failed"),
        }
    }
}
