use std::sync::Arc;

use std::collections::BTreeMap;

use chimatic_domain::{Clock, Region};
use chimatic_providers::{DestinationPolicy, ProviderClient};
use chimatic_store::{ControlStore, DeliveryStats, Store};
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

/// Which planes a node serves (`chimatic serve --role`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Planes {
    /// Workspace configuration, API keys, analytics.
    pub control: bool,
    /// Channels, notifications, delivery.
    pub data: bool,
}

/// A region this node serves: its store, and the dispatcher that delivers from it.
#[derive(Clone)]
pub struct RegionPlane {
    pub store: Arc<Store>,
    /// Wakes the region's dispatcher after a notification is queued.
    pub delivery_waker: Arc<Notify>,
}

#[derive(Clone)]
pub struct AppState {
    pub control: Arc<ControlStore>,
    /// The regions whose data this node serves (none on a control-plane node).
    pub regions: Arc<BTreeMap<Region, RegionPlane>>,
    /// Delivery analytics gathered here, flushed to the control store.
    pub stats: Arc<DeliveryStats>,
    pub clock: Arc<dyn Clock>,
    pub destinations: DestinationPolicy,
    /// Calls to providers: health checks (`POST /v1/integrations/{id}/check`).
    pub providers: ProviderClient,
    /// The deployment's OAuth apps (Slack, Google) and connection token refreshes.
    pub connections: Arc<chimatic_delivery::Connections>,
    /// Workflow templates.
    pub templates: Arc<chimatic_templates::Renderer>,
    /// Wakes the fan-out workers after an event to a topic is queued.
    pub fanout_waker: Arc<Notify>,
    /// Browser origins allowed to call the inbox endpoints (CORS); empty: none.
    pub inbox_origins: Vec<axum::http::HeaderValue>,
    pub metrics: Option<PrometheusHandle>,
    pub limits: Limits,
    /// `None` disables rate limiting.
    pub rate_limiter: Option<Arc<WorkspaceRateLimiter>>,
    /// How long a deactivated channel can be reactivated before it is purged.
    pub channel_retention: std::time::Duration,
    /// The operator's credential for `/v1/admin/…`; `None`: those endpoints are disabled.
    pub operator: Option<OperatorCredential>,
}

/// The deployment operator's bearer token for `/v1/admin/…` (freezing workspaces). Only its
/// SHA-256 is held, and it is compared in constant time.
#[derive(Clone)]
pub struct OperatorCredential(chimatic_crypto::ApiKeyDigest);

/// Shorter operator tokens are refused: the token guards every workspace at once.
pub const MIN_OPERATOR_TOKEN_CHARS: usize = 32;

impl OperatorCredential {
    pub fn new(token: &str) -> Result<Self, String> {
        let token = token.trim();
        if token.chars().count() < MIN_OPERATOR_TOKEN_CHARS {
            return Err(format!(
                "the operator token must be at least {MIN_OPERATOR_TOKEN_CHARS} characters (e.g. `openssl rand -hex 32`)"
            ));
        }
        Ok(Self(chimatic_crypto::ApiKeyDigest::of(token)))
    }

    pub fn matches(&self, presented: &str) -> bool {
        self.0.matches(&chimatic_crypto::ApiKeyDigest::of(presented))
    }
}
