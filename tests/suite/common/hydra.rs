//! A real Ory Hydra (the pinned release scripts/providers builds), started per test with an
//! in-memory database on free loopback ports, with the test's own login-and-consent app and a
//! counting reverse proxy in front of its public port (tests/support/hydra-app.mjs). The issuer
//! is the proxy's address, so every request the plugin sends is counted there, and each token
//! request is recorded (grant type, client authentication, a hash of the refresh token).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{free_port, run_with_timeout, start_node, Daemon};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The binary scripts/providers builds for `name` (`hydra`, `zitadel`): `ID-VERSION`, the
/// version being `module`'s requirement in tests/peers/DIR/go.mod. The script runs first: it
/// returns at once when the binary is current, waits for a build test.sh started in the
/// background, or builds it. Err is the `not built here: ...` line to report.
pub fn built_provider(name: &str, id: &str, dir: &str, module: &str) -> Result<PathBuf, String> {
    let go_mod = std::fs::read_to_string(repo().join(format!("tests/peers/{dir}/go.mod"))).unwrap();
    let version = go_mod
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{module} ")))
        .map(|v| v.split_whitespace().next().unwrap().to_string())
        .unwrap_or_else(|| panic!("{module} in tests/peers/{dir}/go.mod"));
    let mut command = Command::new(repo().join("scripts/providers"));
    command.arg(name).stdin(Stdio::null());
    // A cold build on two shared cores takes minutes.
    let run = run_with_timeout(command, Duration::from_secs(1500));
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| dirs::home_dir().unwrap().join(".cache"))
        .join("kubectl-oidc-login/providers");
    let full = format!("{id}-{version}");
    let binary = cache.join(&full);
    if binary.is_file() {
        return Ok(binary);
    }
    Err(
        std::fs::read_to_string(cache.join(format!("{full}.not-built")))
            .map(|l| l.trim().to_string())
            .unwrap_or_else(|_| {
                format!(
                    "not built here: {full} (scripts/providers: {})",
                    run.stderr.trim()
                )
            }),
    )
}

pub struct Hydra {
    _app: Daemon,
    hydra: Daemon,
    /// The issuer: the counting proxy in front of Hydra's public port.
    pub issuer: String,
    /// Hydra's own public port (not counted), for the test's direct requests.
    pub public: String,
    pub admin: String,
    /// The login-and-consent app.
    pub app: String,
    pub log: PathBuf,
    http: reqwest::blocking::Client,
}

impl Hydra {
    /// The issuer as Hydra's discovery document names it (the form its tokens' `iss` has).
    pub fn discovered_issuer(&self) -> String {
        let doc: Value = serde_json::from_str(
            &self
                .http
                .get(format!("{}/.well-known/openid-configuration", self.issuer))
                .send()
                .unwrap()
                .text()
                .unwrap(),
        )
        .unwrap();
        doc["issuer"].as_str().unwrap().to_string()
    }
}

impl Hydra {
    /// Starts Hydra in `dir` with ID and access tokens living `ttl_secs`; None (after the
    /// `not built here` line) when scripts/providers could not build it.
    pub fn start(dir: &Path, ttl_secs: u64) -> Option<Self> {
        Self::start_tls(dir, ttl_secs, None)
    }

    /// [`Self::start`] with the issuer (the counting proxy) serving HTTPS with `tls`: (CA
    /// certificate, certificate, key), as from [`super::test_certificate`].
    pub fn start_tls(
        dir: &Path,
        ttl_secs: u64,
        tls: Option<&(PathBuf, PathBuf, PathBuf)>,
    ) -> Option<Self> {
        let binary = match built_provider("hydra", "hydra", "hydra", "github.com/ory/hydra/v2") {
            Ok(b) => b,
            Err(why) => {
                super::not_built_here(&why);
                return None;
            }
        };
        let (public_port, admin_port, app_port, proxy_port) =
            (free_port(), free_port(), free_port(), free_port());
        let public = format!("http://127.0.0.1:{public_port}");
        let admin = format!("http://127.0.0.1:{admin_port}");
        let mut envs = vec![
            ("HYDRA_ADMIN", admin.clone()),
            ("HYDRA_PUBLIC", public.clone()),
            ("APP_PORT", app_port.to_string()),
            ("PROXY_PORT", proxy_port.to_string()),
        ];
        if let Some((_, cert, key)) = tls {
            envs.push(("PROXY_TLS_CERT", cert.display().to_string()));
            envs.push(("PROXY_TLS_KEY", key.display().to_string()));
        }
        let (app, ready) = start_node("hydra-app.mjs", &[], &envs, &dir.join("hydra-app.log"));
        let issuer = ready["proxy"].as_str().unwrap().to_string();
        let app_url = ready["app"].as_str().unwrap().to_string();
        let log = dir.join("hydra.log");
        let child = Command::new(binary)
            .args(["serve", "all", "--dev"])
            .env("DSN", "memory")
            .env("URLS_SELF_ISSUER", &issuer)
            .env("URLS_SELF_PUBLIC", &issuer)
            .env("URLS_LOGIN", format!("{app_url}/login"))
            .env("URLS_CONSENT", format!("{app_url}/consent"))
            .env("SERVE_PUBLIC_HOST", "127.0.0.1")
            .env("SERVE_PUBLIC_PORT", public_port.to_string())
            .env("SERVE_ADMIN_HOST", "127.0.0.1")
            .env("SERVE_ADMIN_PORT", admin_port.to_string())
            .env("TTL_ID_TOKEN", format!("{ttl_secs}s"))
            .env("TTL_ACCESS_TOKEN", format!("{ttl_secs}s"))
            .env("SECRETS_SYSTEM", "a-test-system-secret-of-32-characters")
            // As a hardened deployment sets it: public clients must use PKCE.
            .env("OAUTH2_PKCE_ENFORCED_FOR_PUBLIC_CLIENTS", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::OpenOptions::new().append(true).open(&log).unwrap(),
            ))
            .spawn()
            .expect("hydra runs");
        let hydra = Hydra {
            _app: app,
            hydra: Daemon::from_child(child),
            issuer,
            public,
            admin,
            app: app_url,
            log,
            http: match tls {
                Some((ca, _, _)) => reqwest::blocking::Client::builder()
                    .add_root_certificate(
                        reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap(),
                    )
                    .build()
                    .unwrap(),
                None => reqwest::blocking::Client::new(),
            },
        };
        let start = Instant::now();
        loop {
            // The admin API itself, not /health/ready, which Hydra's public port (or another
            // Hydra's, should the port be taken) answers too.
            let ready = hydra
                .http
                .get(format!("{}/admin/clients", hydra.admin))
                .send()
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ready {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "hydra did not get ready: {}",
                hydra.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(hydra)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Registers an OAuth 2.0 client through the admin API (`client`: Hydra's client JSON).
    pub fn create_client(&self, client: Value) {
        let res = self
            .http
            .post(format!("{}/admin/clients", self.admin))
            .header("content-type", "application/json")
            .body(client.to_string())
            .send()
            .unwrap();
        let status = res.status();
        assert!(status.is_success(), "{status}: {}", res.text().unwrap());
    }

    /// A native client `client_id` for the loopback `redirect_uris`, authenticating with
    /// `method` (`none`, `client_secret_basic`, `client_secret_post`) and, unless none, the
    /// secret `SECRET-OF-<client_id>`.
    pub fn create_login_client(&self, client_id: &str, method: &str, redirect_uris: &[String]) {
        let mut client = json!({
            "client_id": client_id,
            "token_endpoint_auth_method": method,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "scope": "openid offline_access offline email profile",
            "redirect_uris": redirect_uris,
        });
        if method != "none" {
            client["client_secret"] = json!(Self::secret_of(client_id));
        }
        self.create_client(client);
    }

    pub fn secret_of(client_id: &str) -> String {
        format!("SECRET-OF-{client_id}")
    }

    fn test(&self, path: &str) -> Value {
        let body = self
            .http
            .get(format!("{}/__test/{path}", self.issuer))
            .send()
            .unwrap()
            .text()
            .unwrap();
        serde_json::from_str(&body).unwrap()
    }

    /// Requests per path through the proxy since the last reset.
    pub fn counts(&self) -> Value {
        self.test("counts")
    }

    /// All requests that reached Hydra through the proxy since the last reset.
    pub fn requests(&self) -> u64 {
        self.counts()
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum()
    }

    pub fn count(&self, path: &str) -> u64 {
        self.counts()[path].as_u64().unwrap_or(0)
    }

    /// The token requests since the last reset, in order: grant_type, client_auth,
    /// refresh_token_sha256, status, error, issued_refresh_token.
    pub fn token_requests(&self) -> Vec<Value> {
        self.test("token-requests").as_array().unwrap().clone()
    }

    pub fn reset_counts(&self) {
        self.http
            .post(format!("{}/__test/reset", self.issuer))
            .send()
            .unwrap();
    }

    /// Revokes a refresh token of the public client `client_id` (RFC 7009), straight at Hydra.
    pub fn revoke(&self, refresh_token: &str, client_id: &str) {
        let status = self
            .http
            .post(format!("{}/oauth2/revoke", self.public))
            .form(&[("token", refresh_token), ("client_id", client_id)])
            .send()
            .unwrap()
            .status();
        assert!(status.is_success(), "revocation answered {status}");
    }

    /// Presents a refresh token of the public client `client_id` straight to Hydra, as a thief
    /// replaying a stolen (or an already rotated) one would: the answer's status and body.
    pub fn present_refresh_token(&self, refresh_token: &str, client_id: &str) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}/oauth2/token", self.public))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", client_id),
            ])
            .send()
            .unwrap();
        let status = res.status().as_u16();
        (
            status,
            serde_json::from_str(&res.text().unwrap()).unwrap_or(Value::Null),
        )
    }

    /// Hydra goes down.
    pub fn stop(&mut self) {
        self.hydra.stop();
    }
}
