//! A throw-away certificate authority for TLS tests: a CA, a server certificate for
//! `localhost` / `127.0.0.1`, and client certificates with a chosen common name, all as PEM
//! files in a directory (the form `tlsCertificateFilePath` and the clients take).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

pub struct TestPki {
    dir: PathBuf,
    ca: CertifiedIssuer<'static, KeyPair>,
    /// `ca.cert.pem`: what clients trust (and the broker, for client certificates).
    pub ca_file: PathBuf,
    /// `server.cert.pem` / `server.key-pk8.pem`, valid for `localhost` and `127.0.0.1`.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl TestPki {
    /// A new CA and server certificate in `dir`.
    pub fn generate(dir: &Path) -> TestPki {
        std::fs::create_dir_all(dir).expect("pki directory");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "tierlog test CA");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key"))
            .expect("CA certificate");
        let ca_file = dir.join("ca.cert.pem");
        std::fs::write(&ca_file, ca.pem()).expect("write CA");
        let mut pki = TestPki {
            dir: dir.to_path_buf(),
            ca,
            ca_file,
            server_cert: PathBuf::new(),
            server_key: PathBuf::new(),
        };
        let (cert, key) = pki.issue(
            "server",
            "localhost",
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        pki.server_cert = cert;
        pki.server_key = key;
        pki
    }

    /// A client certificate whose common name is `cn` (the TLS provider's role):
    /// (`<cn>.cert.pem`, `<cn>.key-pk8.pem`).
    pub fn client(&self, cn: &str) -> (PathBuf, PathBuf) {
        self.issue(cn, cn, &[], ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// A server certificate for other names (to test host-name validation).
    pub fn server_for(&self, file: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        self.issue(file, names[0], names, ExtendedKeyUsagePurpose::ServerAuth)
    }

    fn issue(
        &self,
        file: &str,
        cn: &str,
        names: &[&str],
        usage: ExtendedKeyUsagePurpose,
    ) -> (PathBuf, PathBuf) {
        let sans: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).expect("certificate params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.ca).expect("sign");
        let cert_file = self.dir.join(format!("{file}.cert.pem"));
        let key_file = self.dir.join(format!("{file}.key-pk8.pem"));
        std::fs::write(&cert_file, cert.pem()).expect("write certificate");
        let pem = key.serialize_pem();
        // The key's base64 lines, for the audit: a key printed anywhere shows at least one.
        for line in pem
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        {
            crate::audit::secret(line);
        }
        std::fs::write(&key_file, pem).expect("write key");
        (cert_file, key_file)
    }
}
