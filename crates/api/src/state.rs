use std::sync::Arc;

use chimatic_delivery::DestinationPolicy;
use chimatic_domain::Clock;
use chimatic_store::Store;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Notify;

/// Documented request limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest accepted request body; larger bodies get 413.
    pub max_body_bytes: usize,
    /// Largest notification payload once serialized.
    pub max_payload_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_body_bytes: 1024 * 1024, max_payload_bytes: 256 * 1024 }
    }
}

/// Requests per second per workspace, so one tenant's volume cannot crowd out another's.
pub type WorkspaceRateLimiter = governor::DefaultKeyedRateLimiter<chimatic_domain::WorkspaceId>;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub clock: Arc<dyn Clock>,
    pub destinations: DestinationPolicy,
    /// Wakes the dispatcher after a notification is queued.
    pub delivery_waker: Arc<Notify>,
    pub metrics: Option<PrometheusHandle>,
    pub limits: Limits,
    /// `None` disables rate limiting.
    pub rate_limiter: Option<Arc<WorkspaceRateLimiter>>,
}
