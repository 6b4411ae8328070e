use std::os::unix::fs::DirBuilderExt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chimatic_api::{AppState, Limits, WorkspaceRateLimiter};
use chimatic_crypto::{KekSource, LocalKek};
use chimatic_delivery::{DestinationPolicy, Dispatcher, DispatcherConfig, WebhookSender};
use chimatic_domain::{Clock, RetrySchedule, SystemClock};
use chimatic_store::{Keyring, PostgresBackend, SqliteBackend, SqliteFiles, Store};
use tokio::sync::watch;
use zeroize::Zeroizing;

use crate::config::{LogFormat, ServeArgs, StoreArgs};

/// Opens the embedded store in the data directory with the injected (or development) KEK.
pub async fn open_store(args: &StoreArgs) -> anyhow::Result<(Arc<Store>, KekSource)> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&args.data_dir)
        .with_context(|| format!("cannot create data directory {}", args.data_dir.display()))?;
    let env_kek = std::env::var("CHIMATIC_KEK").ok().map(Zeroizing::new);
    let (kek, source) =
        LocalKek::resolve(env_kek.as_deref().map(String::as_str), args.kek_file.as_deref(), &args.data_dir)?;
    let keyring = Keyring::new(Arc::new(kek), Arc::new(SystemClock));
    let store = match (&args.database_url, &args.vault_database_url) {
        (Some(data_url), Some(vault_url)) => {
            anyhow::ensure!(
                data_url != vault_url,
                "the credential vault needs its own database, not the notification store's"
            );
            let (data, vault) = PostgresBackend::open(data_url, vault_url).await?;
            Store::new(Arc::new(data), Arc::new(vault), keyring)
        }
        _ => {
            let (data, vault) = SqliteBackend::open(&SqliteFiles::in_dir(&args.data_dir)).await?;
            Store::new(Arc::new(data), Arc::new(vault), keyring)
        }
    };
    Ok((Arc::new(store), source))
}

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
    let schedule = match &args.retry_schedule {
        Some(text) => RetrySchedule::parse(text).context("CHIMATIC_RETRY_SCHEDULE")?,
        None => RetrySchedule::default(),
    };
    let (store, kek_source) = open_store(&args.store).await?;
    match &kek_source {
        KekSource::Generated(path) => tracing::warn!(
            "generated a development key-encryption key at {} (mode 0600); in production inject CHIMATIC_KEK_FILE or CHIMATIC_KEK",
            path.display()
        ),
        KekSource::DataDir(path) => {
            tracing::warn!("using the development key-encryption key at {}", path.display())
        }
        KekSource::File(_) | KekSource::Environment => {}
    }
    tracing::info!(kek = store.kek_id(), "key encryption key loaded");

    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let destinations = DestinationPolicy { allow_private: args.allow_private_destinations };
    if destinations.allow_private {
        tracing::warn!("private destinations and plain http are allowed (development mode)");
    }
    let sender = WebhookSender::new(destinations, args.delivery_timeout(), None)?;
    let dispatcher = Arc::new(Dispatcher::new(
        store.clone(),
        sender,
        clock.clone(),
        DispatcherConfig {
            concurrency: args.delivery_concurrency,
            lease: args.delivery_timeout() * 2 + Duration::from_secs(15),
            poll_interval: Duration::from_millis(250),
            schedule,
            shutdown_grace: Duration::from_secs(10),
        },
    ));
    let rate_limiter = std::num::NonZeroU32::new(args.rate_limit_per_workspace)
        .map(|rate| Arc::new(WorkspaceRateLimiter::keyed(governor::Quota::per_second(rate))));
    if let Some(limiter) = rate_limiter.clone() {
        // Forget idle workspaces' buckets so the limiter's memory stays bounded.
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        });
    }
    let state = AppState {
        store: store.clone(),
        clock,
        destinations,
        delivery_waker: dispatcher.waker(),
        metrics: Some(metrics),
        limits: Limits::default(),
        rate_limiter,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let delivery = tokio::spawn(dispatcher.run(stop_rx));

    // Installed before the server announces itself, so a SIGTERM right after start is graceful.
    let shutdown = shutdown_signal()?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::ReloadingCert::load(cert, key)?),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let router = chimatic_api::router(state);
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
            crate::tls::serve(listener, router, config, shutdown, Duration::from_secs(10)).await?;
        }
        None => {
            tracing::info!("listening on http://{}", listener.local_addr()?);
            axum::serve(listener, router).with_graceful_shutdown(shutdown).await?;
        }
    }

    tracing::info!("shutting down: finishing in-flight deliveries");
    let _ = stop_tx.send(true);
    let _ = delivery.await;
    tracing::info!("stopped");
    Ok(())
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
