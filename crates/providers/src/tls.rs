//! Outbound TLS for destinations with a non-default policy (TLS 1.2 allowed, or key pins):
//! rustls on aws-lc-rs, chain validation by webpki against the system roots plus the operator's
//! extra roots, and an SPKI pin check on top of that validation.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chimatic_domain::{OutboundTls, SpkiPin};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read trusted roots from {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("{} holds no PEM certificate", path.display())]
    Empty { path: PathBuf },
    #[error("certificate {index} in {} cannot be used as a trusted root: {source}", path.display())]
    Unusable {
        path: PathBuf,
        /// 1-based position in the file.
        index: usize,
        #[source]
        source: webpki::Error,
    },
    #[error("cannot set up certificate verification: {0}")]
    Verifier(#[from] rustls::client::VerifierBuilderError),
}

/// The handshake was refused because no pin matched the server's key (its chain was valid).
#[derive(Debug, thiserror::Error)]
#[error("certificate does not match the pinned key")]
pub struct PinMismatch;

/// Reads every certificate in a PEM file and checks each can serve as a trust anchor. An empty
/// file is an error: an operator who names a file means to trust something, and silently
/// trusting nothing extra would hide a mistake.
pub fn read_pem_roots(path: &Path) -> Result<Vec<CertificateDer<'static>>, TrustError> {
    let read_error = |source| TrustError::Read { path: path.to_owned(), source };
    let certs = CertificateDer::pem_file_iter(path).map_err(read_error)?.collect::<Result<Vec<_>, _>>();
    let certs = certs.map_err(read_error)?;
    if certs.is_empty() {
        return Err(TrustError::Empty { path: path.to_owned() });
    }
    for (i, cert) in certs.iter().enumerate() {
        webpki::anchor_from_trusted_cert(cert).map_err(|source| TrustError::Unusable {
            path: path.to_owned(),
            index: i + 1,
            source,
        })?;
    }
    Ok(certs)
}

/// What every non-default client shares: the crypto provider and one chain verifier.
pub struct TlsContext {
    provider: Arc<CryptoProvider>,
    verifier: Arc<WebPkiServerVerifier>,
}

impl TlsContext {
    /// Trusts the system's roots, as reqwest's default verifier does on Linux, plus `extra`.
    /// `extra` comes from [`read_pem_roots`], which has checked every certificate.
    pub fn new(extra: &[CertificateDer<'static>]) -> Result<Self, TrustError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(extra.iter().cloned());
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            tracing::warn!(error = %error, "loading a system CA certificate failed");
        }
        let (_, ignored) = roots.add_parsable_certificates(native.certs);
        if ignored > 0 {
            tracing::warn!(ignored, "some system CA certificates could not be parsed and are not trusted");
        }
        // No roots at all is refused here (NoRootAnchors) rather than failing every handshake.
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
        Ok(Self { provider, verifier })
    }

    pub fn client_config(&self, policy: &OutboundTls) -> Result<rustls::ClientConfig, rustls::Error> {
        let versions: &[&rustls::SupportedProtocolVersion] = if policy.allow_tls12() {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13]
        };
        let builder =
            rustls::ClientConfig::builder_with_provider(self.provider.clone()).with_protocol_versions(versions)?;
        let builder = if policy.pins().is_empty() {
            builder.with_webpki_verifier(self.verifier.clone())
        } else {
            let pinned = PinnedVerifier { chain: self.verifier.clone(), pins: policy.pins().to_vec() };
            builder.dangerous().with_custom_certificate_verifier(Arc::new(pinned))
        };
        let mut config = builder.with_no_client_auth();
        // The same offer reqwest makes for its own clients (with the http2 feature).
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// Chain validation first, then the pin: a pinned key on an untrusted or expired chain, or for
/// another host name, is still refused.
#[derive(Debug)]
struct PinnedVerifier {
    chain: Arc<WebPkiServerVerifier>,
    pins: Vec<SpkiPin>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        let cert = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cert.subject_public_key_info().as_ref());
        if self.pins.iter().any(|pin| pin.sha256().as_slice() == digest.as_ref()) {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(PinMismatch)))))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.chain.root_hint_subjects()
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, PublicKeyData};

    use super::*;

    fn ca(name: &str) -> (CertificateDer<'static>, Issuer<'static, KeyPair>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        (cert.der().clone(), Issuer::new(params, key))
    }

    fn leaf(issuer: &Issuer<'static, KeyPair>) -> (CertificateDer<'static>, SpkiPin) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_string()]).unwrap().signed_by(&key, issuer).unwrap();
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &key.subject_public_key_info());
        (cert.der().clone(), SpkiPin::from_sha256(digest.as_ref().try_into().unwrap()))
    }

    fn verify(ctx: &TlsContext, pins: Vec<SpkiPin>, cert: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        let verifier = PinnedVerifier { chain: ctx.verifier.clone(), pins };
        let name = ServerName::try_from("localhost").unwrap();
        verifier.verify_server_cert(cert, &[], &name, &[], UnixTime::now()).map(|_| ())
    }

    #[test]
    fn the_pin_is_checked_after_the_chain_and_a_mismatch_says_so() {
        let (ca_cert, issuer) = ca("trusted");
        let ctx = TlsContext::new(&[ca_cert]).unwrap();
        let (cert, pin) = leaf(&issuer);
        let (_, other_pin) = leaf(&issuer);

        verify(&ctx, vec![pin], &cert).unwrap();
        verify(&ctx, vec![other_pin, pin], &cert).unwrap();

        let err = verify(&ctx, vec![other_pin], &cert).unwrap_err();
        let rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) = &err else {
            panic!("unexpected error: {err:?}");
        };
        assert!(inner.is::<PinMismatch>());
        // rustls prints the wrapped error with Debug: the type name is what a log line shows.
        assert_eq!(err.to_string(), "invalid peer certificate: Other(OtherError(PinMismatch))");

        let (_, stranger) = ca("stranger");
        let (untrusted, untrusted_pin) = leaf(&stranger);
        assert_eq!(
            verify(&ctx, vec![untrusted_pin], &untrusted).unwrap_err(),
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        );
    }
}
