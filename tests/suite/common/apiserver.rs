//! The HTTPS stand-in for kube-apiserver (tests/support/apiserver.mjs), which verifies every
//! token it is sent, and the test CA its certificate (and an HTTPS provider's) comes from.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{start_node, Daemon};

pub struct ApiServer {
    _daemon: Daemon,
    pub url: String,
    pub ca_pem: String,
}

/// A certificate for 127.0.0.1 signed by a CA made for the test: returns (CA certificate,
/// server certificate, server key), all PEM files in `dir` named after `name`.
pub fn test_certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    test_certificate_for(dir, name, &[])
}

/// [`test_certificate`] valid for the addresses (or host names) `also` besides 127.0.0.1 and
/// localhost.
pub fn test_certificate_for(dir: &Path, name: &str, also: &[&str]) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = dir.join(format!("{name}-ca.key"));
    let ca = dir.join(format!("{name}-ca.crt"));
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    let cert = dir.join(format!("{name}.crt"));
    let ext = dir.join(format!("{name}.ext"));
    let extra: String = also
        .iter()
        .map(|a| match a.parse::<std::net::IpAddr>() {
            Ok(_) => format!(",IP:{a}"),
            Err(_) => format!(",DNS:{a}"),
        })
        .collect();
    std::fs::write(
        &ext,
        format!("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost{extra}\n"),
    )
    .unwrap();
    let openssl = |args: Vec<String>| {
        let status = Command::new("openssl")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(status.success(), "openssl {args:?}");
    };
    let p = |p: &PathBuf| p.display().to_string();
    openssl(vec![
        "req".into(),
        "-x509".into(),
        "-newkey".into(),
        "rsa:2048".into(),
        "-nodes".into(),
        "-days".into(),
        "1".into(),
        "-subj".into(),
        format!("/CN={name} test CA"),
        "-keyout".into(),
        p(&ca_key),
        "-out".into(),
        p(&ca),
    ]);
    openssl(vec![
        "req".into(),
        "-newkey".into(),
        "rsa:2048".into(),
        "-nodes".into(),
        "-subj".into(),
        "/CN=127.0.0.1".into(),
        "-keyout".into(),
        p(&key),
        "-out".into(),
        p(&csr),
    ]);
    openssl(vec![
        "x509".into(),
        "-req".into(),
        "-in".into(),
        p(&csr),
        "-CA".into(),
        p(&ca),
        "-CAkey".into(),
        p(&ca_key),
        "-CAcreateserial".into(),
        "-days".into(),
        "1".into(),
        "-extfile".into(),
        p(&ext),
        "-out".into(),
        p(&cert),
    ]);
    (ca, cert, key)
}

impl ApiServer {
    /// Starts the HTTPS stand-in for kube-apiserver, trusting tokens of `issuer` (whose TLS
    /// certificate, if any, is `issuer_ca`).
    pub fn start(dir: &Path, issuer: &str, issuer_ca: Option<&Path>) -> Self {
        let (ca, cert, key) = test_certificate(dir, "apiserver");
        let envs: Vec<(&str, String)> = issuer_ca
            .map(|ca| vec![("NODE_EXTRA_CA_CERTS", ca.display().to_string())])
            .unwrap_or_default();
        let (daemon, ready) = start_node(
            "apiserver.mjs",
            &[
                cert.to_str().unwrap(),
                key.to_str().unwrap(),
                issuer,
                // The clients of the test realm (tests/support/provider.mjs), one per grant;
                // a robot's ID token (client credentials) is for the robot itself.
                "kubernetes,kubernetes-device,kubernetes-password,kubernetes-post,robot",
            ],
            &envs,
            &dir.join("apiserver.log"),
        );
        ApiServer {
            _daemon: daemon,
            url: format!("https://127.0.0.1:{}", ready["port"]),
            ca_pem: std::fs::read_to_string(ca).unwrap(),
        }
    }

    /// [`ApiServer::start`] listening on `host`, an address of this machine other than
    /// 127.0.0.1 (one a test's network namespace can reach), with a certificate for it.
    pub fn start_on(dir: &Path, issuer: &str, issuer_ca: Option<&Path>, host: &str) -> Self {
        let (ca, cert, key) = test_certificate_for(dir, "apiserver", &[host]);
        let mut envs = vec![("API_HOST", host.to_string())];
        if let Some(issuer_ca) = issuer_ca {
            envs.push(("NODE_EXTRA_CA_CERTS", issuer_ca.display().to_string()));
        }
        let (daemon, ready) = start_node(
            "apiserver.mjs",
            &[
                cert.to_str().unwrap(),
                key.to_str().unwrap(),
                issuer,
                "kubernetes",
            ],
            &envs,
            &dir.join("apiserver.log"),
        );
        ApiServer {
            _daemon: daemon,
            url: format!("https://{host}:{}", ready["port"]),
            ca_pem: std::fs::read_to_string(ca).unwrap(),
        }
    }

    /// Starts the stand-in for another provider: `audiences` (comma-separated client IDs) and
    /// its settings in `envs` (OIDC_JWKS_URL, OIDC_USERNAME_CLAIM, OIDC_GROUPS_CLAIM, see
    /// apiserver.mjs).
    pub fn start_with(dir: &Path, issuer: &str, audiences: &str, envs: &[(&str, String)]) -> Self {
        let (ca, cert, key) = test_certificate(dir, "apiserver");
        let (daemon, ready) = start_node(
            "apiserver.mjs",
            &[
                cert.to_str().unwrap(),
                key.to_str().unwrap(),
                issuer,
                audiences,
            ],
            envs,
            &dir.join("apiserver.log"),
        );
        ApiServer {
            _daemon: daemon,
            url: format!("https://127.0.0.1:{}", ready["port"]),
            ca_pem: std::fs::read_to_string(ca).unwrap(),
        }
    }
}
