//! The client side of TLS (`pulsar+ssl://`): the CAs to trust, whether to check the broker's
//! host name (off by default, as Pulsar's clients), an optional client certificate (TLS
//! authentication), or no verification at all (`tlsAllowInsecureConnection`).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::ClientError;

/// How to connect with TLS.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// PEM file of the CAs to trust (`tlsTrustCertsFilePath`); without it, none is trusted
    /// unless `allow_insecure`.
    pub trust_certs_file: Option<PathBuf>,
    /// Accept any server certificate (`tlsAllowInsecureConnection`).
    pub allow_insecure: bool,
    /// Check that the certificate names the host dialled (`tlsEnableHostnameVerification`).
    pub hostname_verification: bool,
    /// A client certificate and its key (PEM), for TLS authentication.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

fn tls_error(what: String) -> ClientError {
    ClientError::Tls(what)
}

impl TlsOptions {
    pub(crate) fn connector(&self) -> Result<tokio_rustls::TlsConnector, ClientError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(e.to_string()))?;
        let verifier: Arc<dyn ServerCertVerifier> = if self.allow_insecure {
            Arc::new(AnyCertificate(Arc::clone(&provider)))
        } else {
            let mut roots = rustls::RootCertStore::empty();
            if let Some(path) = &self.trust_certs_file {
                let certs = CertificateDer::pem_file_iter(path).map_err(|e| {
                    tls_error(format!(
                        "reading the trusted certificates {}: {e}",
                        path.display()
                    ))
                })?;
                for c in certs.flatten() {
                    roots
                        .add(c)
                        .map_err(|e| tls_error(format!("{}: {e}", path.display())))?;
                }
            }
            if roots.is_empty() {
                return Err(tls_error(
                    "no trusted certificate: give tlsTrustCertsFilePath (--tls-trust-cert-path)"
                        .into(),
                ));
            }
            let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| tls_error(e.to_string()))?;
            Arc::new(NameCheck {
                inner: webpki,
                check_name: self.hostname_verification,
            })
        };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match &self.client_cert {
            Some((cert, key)) => {
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                    .map_err(|e| tls_error(format!("reading {}: {e}", cert.display())))?
                    .flatten()
                    .collect();
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| tls_error(format!("reading {}: {e}", key.display())))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| tls_error(e.to_string()))?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
    }
}

/// The WebPKI verifier, with the host-name mismatch forgiven when names are not checked.
#[derive(Debug)]
struct NameCheck {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    check_name: bool,
}

impl ServerCertVerifier for NameCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `tlsAllowInsecureConnection`: any certificate is accepted (handshake signatures are still
/// checked, by the crypto provider).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
