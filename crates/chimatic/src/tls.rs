//! Inbound TLS: rustls, TLS 1.3 only, HTTP/2 and HTTP/1.1 by ALPN, and a certificate that is
//! reloaded from its files on SIGHUP without dropping connections or restarting.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The server certificate, swapped in place on reload; new handshakes see the new one.
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReloadingCert({})", self.cert_path.display())
    }
}

fn load(cert_path: &Path, key_path: &Path) -> anyhow::Result<Arc<CertifiedKey>> {
    let certs = CertificateDer::pem_file_iter(cert_path)
        .with_context(|| format!("reading certificate {}", cert_path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing certificate {}", cert_path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "no certificate in {}", cert_path.display());
    // The error names the file, never its contents.
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|_| anyhow::anyhow!("cannot read a private key from {}", key_path.display()))?;
    let signing = rustls::crypto::aws_lc_rs::default_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|_| anyhow::anyhow!("unsupported private key in {}", key_path.display()))?;
    Ok(Arc::new(CertifiedKey::new(certs, signing)))
}

impl ReloadingCert {
    pub fn load(cert_path: &Path, key_path: &Path) -> anyhow::Result<Arc<Self>> {
        let current = RwLock::new(load(cert_path, key_path)?);
        Ok(Arc::new(Self { cert_path: cert_path.into(), key_path: key_path.into(), current }))
    }

    /// Re-reads both files; on any error the old certificate stays in use.
    pub fn reload(&self) -> anyhow::Result<()> {
        let fresh = load(&self.cert_path, &self.key_path)?;
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
        Ok(())
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }
}

pub fn server_config(cert: Arc<ReloadingCert>) -> anyhow::Result<Arc<ServerConfig>> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `router` over TLS until `shutdown` resolves, then lets open connections finish
/// (up to `grace`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    config: Arc<ServerConfig>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> anyhow::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let (acceptor, builder, watcher) = (acceptor.clone(), builder.clone(), graceful.watcher());
        // The peer address, for the audit log, as `into_make_service_with_connect_info` gives it.
        let service = TowerToHyperService::new(router.clone().layer(axum::Extension(axum::extract::ConnectInfo(peer))));
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                // Failed handshakes (old TLS versions, scanners) are routine; no detail is logged.
                Ok(Err(_)) | Err(_) => {
                    metrics::counter!("chimatic_tls_handshake_failures_total").increment(1);
                    return;
                }
            };
            let conn = builder.serve_connection(TokioIo::new(tls), service).into_owned();
            let _ = watcher.watch(conn).await;
        });
    }
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after the shutdown grace period");
    }
    Ok(())
}
