//! TLS for the broker's ports (`brokerServicePortTls`, `webServicePortTls`) with rustls: the
//! server configuration built from Pulsar's keys, rebuilt when the certificate, key or trust
//! files change (checked every `tlsCertRefreshCheckDurationSec`), and the handshake of each
//! accepted connection with the client certificate's common name as its TLS identity.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// A TLS protocol version as Pulsar's `tlsProtocols` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsProtocol {
    Tls12,
    Tls13,
}

impl TlsProtocol {
    /// `TLSv1.2` / `TLSv1.3` (Java's names); older versions are not offered by rustls.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "TLSv1.2" => Some(TlsProtocol::Tls12),
            "TLSv1.3" => Some(TlsProtocol::Tls13),
            _ => None,
        }
    }
}

/// The TLS settings of the broker's ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// `tlsCertificateFilePath`: the server's certificate chain (PEM).
    pub certificate_file: PathBuf,
    /// `tlsKeyFilePath`: its private key (PEM, PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// `tlsTrustCertsFilePath`: CAs whose client certificates are trusted (PEM); without it
    /// clients are not asked for certificates.
    pub trust_certs_file: Option<PathBuf>,
    /// `tlsRequireTrustedClientCertOnConnect`: a handshake without a trusted client
    /// certificate fails.
    pub require_trusted_client_cert: bool,
    /// `tlsProtocols` (empty: TLS 1.2 and 1.3).
    pub protocols: Vec<TlsProtocol>,
    /// `tlsCiphers`, IANA names such as `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256` (empty: rustls's
    /// defaults).
    pub ciphers: Vec<String>,
    /// `tlsCertRefreshCheckDurationSec`: how often the files are checked for changes (0: never).
    pub refresh_interval: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {source}")]
    Unreadable {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} {path} holds no usable PEM {expected}")]
    NoPem {
        what: &'static str,
        path: String,
        expected: &'static str,
    },
    #[error(
        "tlsCiphers names {0:?}, which this broker does not offer (IANA names, such as TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)"
    )]
    UnknownCipher(String),
    #[error("tlsCiphers leaves no cipher suite for the protocols of tlsProtocols")]
    NoCipherForProtocols,
    #[error("the TLS configuration is unusable: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("the client certificate verifier cannot be built from tlsTrustCertsFilePath: {0}")]
    Verifier(String),
}

/// The server side of TLS on one or more ports: the configuration in force (swapped when the
/// files change) and how to accept a connection with it.
pub struct TlsServer {
    settings: TlsSettings,
    alpn: Vec<Vec<u8>>,
    current: RwLock<Loaded>,
}

struct Loaded {
    config: Arc<rustls::ServerConfig>,
    stamps: Vec<Option<SystemTime>>,
}

/// An accepted TLS connection and what its handshake proved.
pub struct Accepted {
    pub stream: TlsStream<TcpStream>,
    /// The common name of the client's certificate, once the trust store verified it.
    pub client_common_name: Option<String>,
}

impl TlsServer {
    /// Loads the files now (an unusable setting stops start-up). `alpn` lists the application
    /// protocols offered (`http/1.1` on the web port, none on the binary one).
    pub fn load(settings: TlsSettings, alpn: &[&str]) -> Result<Arc<TlsServer>, TlsError> {
        let alpn: Vec<Vec<u8>> = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        let loaded = build(&settings, &alpn)?;
        Ok(Arc::new(TlsServer {
            settings,
            alpn,
            current: RwLock::new(loaded),
        }))
    }

    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    fn config(&self) -> Arc<rustls::ServerConfig> {
        match self.current.read() {
            Ok(l) => Arc::clone(&l.config),
            Err(poisoned) => Arc::clone(&poisoned.into_inner().config),
        }
    }

    /// Rebuilds the configuration if a file changed since it was loaded; returns whether it
    /// did. A change that does not load (a half-written file, say) keeps the old configuration
    /// and is retried at the next check.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let stamps = stamps(&self.settings);
        let unchanged = match self.current.read() {
            Ok(l) => l.stamps == stamps,
            Err(p) => p.into_inner().stamps == stamps,
        };
        if unchanged {
            return Ok(false);
        }
        let loaded = build(&self.settings, &self.alpn)?;
        match self.current.write() {
            Ok(mut l) => *l = loaded,
            Err(p) => *p.into_inner() = loaded,
        }
        Ok(true)
    }

    /// Checks the files every `refresh_interval` until `stop` resolves.
    pub async fn watch_files(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        if self.settings.refresh_interval.is_zero() {
            return;
        }
        let mut stop = std::pin::pin!(stop);
        let mut tick = tokio::time::interval(self.settings.refresh_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = &mut stop => return,
            }
            match self.reload_if_changed() {
                Ok(true) => tracing::info!(
                    certificate = %self.settings.certificate_file.display(),
                    "TLS certificate files changed: new connections use them"
                ),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "TLS files changed but do not load; keeping the previous ones")
                }
            }
        }
    }

    /// The TLS handshake of an accepted connection, within `deadline`.
    pub async fn accept(&self, tcp: TcpStream, deadline: Duration) -> std::io::Result<Accepted> {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.config());
        let stream = tokio::time::timeout(deadline, acceptor.accept(tcp))
            .await
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no TLS handshake within the deadline",
                )
            })??;
        let client_common_name = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| common_name(leaf.as_ref()));
        Ok(Accepted {
            stream,
            client_common_name,
        })
    }
}

/// The subject common name of a DER certificate.
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

fn stamps(s: &TlsSettings) -> Vec<Option<SystemTime>> {
    let mut files = vec![&s.certificate_file, &s.key_file];
    files.extend(s.trust_certs_file.as_ref());
    files
        .into_iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Unreadable {
        what,
        path: path.display().to_string(),
        source,
    })
}

fn build(s: &TlsSettings, alpn: &[Vec<u8>]) -> Result<Loaded, TlsError> {
    // Stamps first: a file replaced while we read it is seen as changed at the next check.
    let stamps = stamps(s);
    let no_pem = |what, path: &Path, expected| TlsError::NoPem {
        what,
        path: path.display().to_string(),
        expected,
    };
    let cert_pem = read("tlsCertificateFilePath", &s.certificate_file)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(no_pem(
            "tlsCertificateFilePath",
            &s.certificate_file,
            "certificate",
        ));
    }
    let key_pem = read("tlsKeyFilePath", &s.key_file)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| no_pem("tlsKeyFilePath", &s.key_file, "private key"))?;

    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if !s.ciphers.is_empty() {
        let mut chosen = Vec::new();
        for name in &s.ciphers {
            // TLS 1.3 suites: Java's name (TLS_AES_128_GCM_SHA256) or rustls's (TLS13_…).
            let tls13 = name
                .strip_prefix("TLS_")
                .map(|rest| format!("TLS13_{rest}"));
            let suite = provider
                .cipher_suites
                .iter()
                .find(|c| {
                    let n = c.suite().as_str();
                    n == Some(name.as_str()) || (tls13.is_some() && n == tls13.as_deref())
                })
                .ok_or_else(|| TlsError::UnknownCipher(name.clone()))?;
            chosen.push(*suite);
        }
        provider.cipher_suites = chosen;
    }
    let provider = Arc::new(provider);
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = if s.protocols.is_empty() {
        rustls::DEFAULT_VERSIONS.to_vec()
    } else {
        s.protocols
            .iter()
            .map(|p| match p {
                TlsProtocol::Tls12 => &rustls::version::TLS12,
                TlsProtocol::Tls13 => &rustls::version::TLS13,
            })
            .collect()
    };
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| match e {
            rustls::Error::General(_) => TlsError::NoCipherForProtocols,
            other => TlsError::Rustls(other),
        })?;
    let builder = match &s.trust_certs_file {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let pem = read("tlsTrustCertsFilePath", path)?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok) {
                roots.add(cert)?;
            }
            if roots.is_empty() {
                return Err(no_pem("tlsTrustCertsFilePath", path, "certificate"));
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
            let verifier = if s.require_trusted_client_cert {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| TlsError::Verifier(e.to_string()))?,
            )
        }
    };
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = alpn.to_vec();
    Ok(Loaded {
        config: Arc::new(config),
        stamps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;
    use testkit::pki::TestPki;

    fn settings(pki: &TestPki, trust: bool, require: bool) -> TlsSettings {
        TlsSettings {
            certificate_file: pki.server_cert.clone(),
            key_file: pki.server_key.clone(),
            trust_certs_file: trust.then(|| pki.ca_file.clone()),
            require_trusted_client_cert: require,
            protocols: vec![],
            ciphers: vec![],
            refresh_interval: Duration::from_secs(1),
        }
    }

    /// Connects a rustls client (trusting the test CA, with `client` as its certificate) and
    /// returns what the server's handshake proved.
    async fn handshake(
        server: &TlsServer,
        pki: &TestPki,
        client: Option<(PathBuf, PathBuf)>,
    ) -> std::io::Result<Option<String>> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&pki.ca_file).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = match client {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    CertificateDer::pem_file_iter(&cert)
                        .unwrap()
                        .map(Result::unwrap)
                        .collect(),
                    PrivateKeyDer::from_pem_file(&key).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let client = tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await?;
            let mut s = connector
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await?;
            use tokio::io::AsyncWriteExt;
            s.write_all(b"x").await?;
            s.flush().await?;
            Ok::<_, std::io::Error>(s)
        });
        let (tcp, _) = listener.accept().await?;
        let accepted = server.accept(tcp, Duration::from_secs(10)).await;
        let _ = client.await;
        accepted.map(|a| a.client_common_name)
    }

    #[tokio::test]
    async fn a_trusted_client_certificate_names_its_common_name() {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::generate(dir.path());
        let server = TlsServer::load(settings(&pki, true, false), &[]).unwrap();
        let cn = handshake(&server, &pki, Some(pki.client("alice")))
            .await
            .unwrap();
        assert_eq!(cn.as_deref(), Some("alice"));
        // Without a certificate the handshake succeeds, with no TLS identity.
        assert_eq!(handshake(&server, &pki, None).await.unwrap(), None);
        // Unless tlsRequireTrustedClientCertOnConnect.
        let strict = TlsServer::load(settings(&pki, true, true), &[]).unwrap();
        assert!(handshake(&strict, &pki, None).await.is_err());
        // A certificate from another CA is refused.
        let other = TestPki::generate(&dir.path().join("other"));
        assert!(
            handshake(&server, &pki, Some(other.client("mallory")))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn changed_files_are_loaded_and_bad_ones_keep_the_old_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::generate(dir.path());
        let server = TlsServer::load(settings(&pki, false, false), &[]).unwrap();
        assert!(!server.reload_if_changed().unwrap());
        std::thread::sleep(Duration::from_millis(20));
        let (cert, key) = pki.server_for("renewed", &["localhost"]);
        std::fs::copy(&cert, &pki.server_cert).unwrap();
        std::fs::copy(&key, &pki.server_key).unwrap();
        assert!(server.reload_if_changed().unwrap());
        assert_eq!(handshake(&server, &pki, None).await.unwrap(), None);
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&pki.server_key, b"garbage").unwrap();
        assert!(matches!(
            server.reload_if_changed(),
            Err(TlsError::NoPem { .. })
        ));
        // The previous configuration still serves.
        assert!(handshake(&server, &pki, None).await.is_ok());
    }

    #[test]
    fn unknown_ciphers_and_missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::generate(dir.path());
        let mut s = settings(&pki, false, false);
        s.ciphers = vec!["TLS_RSA_WITH_RC4_128_MD5".into()];
        let e = TlsServer::load(s, &[]).err().unwrap();
        assert!(e.to_string().contains("TLS_RSA_WITH_RC4_128_MD5"), "{e}");
        let mut s = settings(&pki, false, false);
        s.ciphers = vec!["TLS_AES_128_GCM_SHA256".into()];
        s.protocols = vec![TlsProtocol::Tls12];
        assert!(matches!(
            TlsServer::load(s, &[]).err().unwrap(),
            TlsError::NoCipherForProtocols
        ));
        let mut s = settings(&pki, false, false);
        s.certificate_file = dir.path().join("absent.pem");
        let e = TlsServer::load(s, &[]).err().unwrap();
        assert!(e.to_string().contains("absent.pem"), "{e}");
    }
}
