use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chimatic_api::{AppState, Limits, RegionPlane, WorkspaceRateLimiter};
use chimatic_delivery::{Dispatcher, DispatcherConfig, FanoutWorker, Jobs};
use chimatic_domain::{Clock, Region, RetrySchedule, SystemClock};
use chimatic_providers::{DestinationPolicy, ProviderClient};
use chimatic_store::{ControlStore, DeliveryStats};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{LogFormat, ServeArgs};
use crate::keys::log_kek;
use crate::stores::{RegionConfig, Topology, open_control, open_region};

/// How often delivery analytics gathered on this node are written to the control store.
const STATS_FLUSH_INTERVAL: Duration = Duration::from_secs(2);
/// How long in-flight work (requests, deliveries, background tasks) gets to finish on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let (state, dispatchers) = assemble(&args).await?;
    let (stop, stopped) = watch::channel(false);
    let workers = Workers::spawn(&args, &state, dispatchers, stopped);
    // Installed before the server announces itself, so a SIGTERM right after start is graceful.
    let shutdown = shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let planes = args.role.planes();
    let mut router = chimatic_api::router(state.clone(), planes);
    if planes.control {
        // The console's people and sessions live on the control plane.
        router = router.merge(chimatic_console::router(state, args.console(listener.local_addr()?)?));
    }
    serve_http(&args, listener, router, shutdown).await?;
    tracing::info!("shutting down: finishing in-flight deliveries");
    workers.stop(stop).await;
    tracing::info!("stopped");
    Ok(())
}

/// Opens the stores and builds what the HTTP API and the workers share; nothing runs yet.
async fn assemble(args: &ServeArgs) -> anyhow::Result<(AppState, Vec<Arc<Dispatcher>>)> {
    let topology = args.store.topology()?;
    let control = open_control(&topology.control).await?;
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let destinations = DestinationPolicy { allow_private: args.allow_private_destinations };
    if destinations.allow_private {
        tracing::warn!("private destinations and plain http are allowed (development mode)");
    }
    let providers = ProviderClient::new(destinations, args.delivery_timeout(), args.outbound_ca_file.as_deref())?;
    let stats = Arc::new(DeliveryStats::default());
    let oauth_http = chimatic_oauth::HttpClient::new(args.delivery_timeout())?;
    let connections = Arc::new(chimatic_delivery::Connections::new(args.connect.apps(&oauth_http)?));
    let (regions, dispatchers) =
        open_regions(args, &topology, &control, &stats, (&providers, &connections), &clock).await?;
    let state = AppState {
        providers,
        connections,
        templates: Arc::new(chimatic_templates::Renderer::new()),
        fanout_waker: Arc::new(tokio::sync::Notify::new()),
        inbox_origins: inbox_origins(&args.inbox_origins)?,
        control,
        regions: Arc::new(regions),
        stats,
        clock,
        destinations,
        metrics: Some(metrics),
        limits: Limits::default(),
        rate_limiter: std::num::NonZeroU32::new(args.rate_limit_per_workspace)
            .map(|rate| Arc::new(WorkspaceRateLimiter::keyed(governor::Quota::per_second(rate)))),
        operator: args.operator()?,
        channel_retention: args.channel_retention,
    };
    Ok((state, dispatchers))
}

/// Opens each region this node serves, with its dispatcher. Only a node that serves data holds
/// key material, so the KEK is loaded (and checked against `--production`) only then.
async fn open_regions(
    args: &ServeArgs,
    topology: &Topology,
    control: &Arc<ControlStore>,
    stats: &Arc<DeliveryStats>,
    (providers, connections): (&ProviderClient, &Arc<chimatic_delivery::Connections>),
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<(BTreeMap<Region, RegionPlane>, Vec<Arc<Dispatcher>>)> {
    let served = served_regions(args, topology)?;
    let mut regions = BTreeMap::new();
    let mut dispatchers = Vec::new();
    if served.is_empty() {
        return Ok((regions, dispatchers));
    }
    let schedule = match &args.retry_schedule {
        Some(text) => RetrySchedule::parse(text).context("CHIMATIC_RETRY_SCHEDULE")?,
        None => RetrySchedule::default(),
    };
    let (kek, origin) = args.store.kek().await?;
    anyhow::ensure!(
        !(args.production && origin.is_development()),
        "--production: refusing to start with a development key-encryption key; use an HSM \
         (CHIMATIC_KEK_PROVIDER=pkcs11) or inject CHIMATIC_KEK_FILE (see `chimatic doctor`)"
    );
    log_kek(&kek, &origin);
    for config in served {
        let store = open_region(config, &kek, &args.store.kek).await?;
        let dispatcher = Arc::new(Dispatcher::new(
            store.clone(),
            control.clone(),
            stats.clone(),
            providers.clone(),
            connections.clone(),
            clock.clone(),
            DispatcherConfig {
                concurrency: args.delivery_concurrency,
                lease: args.delivery_timeout() * 2 + Duration::from_secs(15),
                poll_interval: Duration::from_millis(250),
                schedule: schedule.clone(),
                shutdown_grace: SHUTDOWN_GRACE,
            },
        ));
        regions.insert(config.region.clone(), RegionPlane { store, delivery_waker: dispatcher.waker() });
        dispatchers.push(dispatcher);
    }
    let names: Vec<&str> = regions.keys().map(|r| r.as_str()).collect();
    tracing::info!(regions = names.join(","), "serving region data");
    Ok((regions, dispatchers))
}

/// The node's background tasks: per region a dispatcher, a fan-out worker and the jobs; the KEK
/// follower, the delivery-analytics flusher and the rate limiter's clean-up.
struct Workers {
    dispatchers: Vec<JoinHandle<()>>,
    others: Vec<JoinHandle<()>>,
    stats: Arc<DeliveryStats>,
    control: Arc<ControlStore>,
}

impl Workers {
    fn spawn(
        args: &ServeArgs,
        state: &AppState,
        dispatchers: Vec<Arc<Dispatcher>>,
        stop: watch::Receiver<bool>,
    ) -> Self {
        let mut others = Vec::new();
        for (region, plane) in state.regions.iter() {
            let jobs = Jobs {
                store: plane.store.clone(),
                control: state.control.clone(),
                primary: region == &args.store.primary_region,
                purge_interval: args.purge_interval,
                clock: state.clock.clone(),
                health: state.providers.clone(),
                connections: state.connections.clone(),
                health_check_interval: Duration::from_secs(args.health_check_interval_secs.max(1)),
                audit_sign_interval: Duration::from_secs(args.audit_sign_interval_secs.max(1)),
            };
            others.push(tokio::spawn(jobs.run(stop.clone())));
            let fanout = FanoutWorker {
                store: plane.store.clone(),
                control: state.control.clone(),
                clock: state.clock.clone(),
                templates: state.templates.clone(),
                stats: state.stats.clone(),
                wake: state.fanout_waker.clone(),
                delivery_waker: plane.delivery_waker.clone(),
            };
            others.push(tokio::spawn(fanout.run(stop.clone())));
        }
        if !state.regions.is_empty() {
            let stores: Vec<Arc<chimatic_store::Store>> = state.regions.values().map(|p| p.store.clone()).collect();
            others.push(tokio::spawn(crate::keys::follow_rotations(
                args.store.clone(),
                stores,
                Duration::from_secs(args.kek_refresh_secs.max(1)),
                Some(args.kek_rotation_interval).filter(|d| !d.is_zero()),
                state.clock.clone(),
                stop.clone(),
            )));
        }
        if let Some(limiter) = state.rate_limiter.clone() {
            others.push(tokio::spawn(forget_idle_workspaces(limiter, stop.clone())));
        }
        others.push(tokio::spawn(flush_stats(state.stats.clone(), state.control.clone(), stop.clone())));
        let dispatchers = dispatchers.into_iter().map(|d| tokio::spawn(d.run(stop.clone()))).collect();
        Self { dispatchers, others, stats: state.stats.clone(), control: state.control.clone() }
    }

    /// Stops every task and waits for it (the dispatchers get their own grace period for
    /// in-flight deliveries), then writes the delivery analytics gathered here a last time.
    async fn stop(self, stop: watch::Sender<bool>) {
        let _ = stop.send(true);
        for task in self.dispatchers {
            let _ = task.await;
        }
        let others = async {
            for task in self.others {
                let _ = task.await;
            }
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, others).await.is_err() {
            tracing::warn!("a background task did not stop within the grace period; leaving it");
        }
        if let Err(e) = self.stats.flush(&self.control).await {
            tracing::warn!(error = %e, "writing delivery analytics on shutdown failed");
        }
    }
}

/// Serves the API until `shutdown`: over TLS 1.3 with a reloadable certificate when one is
/// configured, plain HTTP otherwise.
async fn serve_http(
    args: &ServeArgs,
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::ReloadingCert::load(cert, key)?),
        _ => None,
    };
    match tls {
        Some(cert) => {
            let config = crate::tls::server_config(cert.clone())?;
            spawn_certificate_reloader(cert)?;
            // Browsers that reached us over TLS stay on TLS.
            let router = router.layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
                axum::http::header::STRICT_TRANSPORT_SECURITY,
                axum::http::HeaderValue::from_static("max-age=63072000; includeSubDomains"),
            ));
            tracing::info!("listening on https://{} (TLS 1.3 only)", listener.local_addr()?);
            crate::tls::serve(listener, router, config, shutdown, SHUTDOWN_GRACE).await?;
        }
        None => {
            tracing::info!("listening on http://{}", listener.local_addr()?);
            let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
            axum::serve(listener, service).with_graceful_shutdown(shutdown).await?;
        }
    }
    Ok(())
}

/// Forgets idle workspaces' rate-limit buckets every minute, so the limiter's memory stays bounded.
async fn forget_idle_workspaces(limiter: Arc<WorkspaceRateLimiter>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        limiter.retain_recent();
        limiter.shrink_to_fit();
    }
}

/// `--inbox-origins` as header values: each must be an exact origin (`scheme://host[:port]`).
fn inbox_origins(origins: &[String]) -> anyhow::Result<Vec<axum::http::HeaderValue>> {
    origins
        .iter()
        .filter(|o| !o.trim().is_empty())
        .map(|o| {
            let o = o.trim();
            let parsed = url::Url::parse(o).with_context(|| format!("--inbox-origins: {o} is not an origin"))?;
            anyhow::ensure!(
                parsed.origin().ascii_serialization() == o,
                "--inbox-origins: {o} is not an exact origin (scheme://host[:port], no path)"
            );
            axum::http::HeaderValue::from_str(o).with_context(|| format!("--inbox-origins: {o}"))
        })
        .collect()
}

/// The regions this node delivers for: `--serve-regions`, or every configured region; none on
/// a control-plane node.
fn served_regions<'t>(args: &ServeArgs, topology: &'t Topology) -> anyhow::Result<Vec<&'t RegionConfig>> {
    if !args.role.planes().data {
        return Ok(Vec::new());
    }
    if args.serve_regions.is_empty() {
        return Ok(topology.regions.iter().collect());
    }
    args.serve_regions.iter().map(|name| topology.region(name)).collect()
}

/// Adds the delivery counts gathered here to the control store every few seconds; the last
/// flush is [`Workers::stop`]'s, after the dispatchers have stopped.
async fn flush_stats(stats: Arc<DeliveryStats>, control: Arc<ControlStore>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(STATS_FLUSH_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = stats.flush(&control).await {
            tracing::warn!(error = %e, "writing delivery analytics failed; kept for the next flush");
        }
    }
}

/// Reloads the certificate and key from disk on SIGHUP; a bad file keeps the old certificate.
fn spawn_certificate_reloader(cert: Arc<crate::tls::ReloadingCert>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match cert.reload() {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(e) => tracing::error!(error = %e, "TLS certificate reload failed; keeping the current one"),
            }
        }
    });
    Ok(())
}

fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
