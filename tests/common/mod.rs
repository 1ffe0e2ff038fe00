//! Test harness: a real OpenID Provider (npm oidc-provider), an HTTPS API server stand-in, the
//! real kubectl, and the scripted browser, each in its own temporary directory and ports.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-oidc_login");

pub fn support_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support")
}

fn require_node_modules() {
    assert!(
        support_dir().join("node_modules/oidc-provider").exists(),
        "tests/support/node_modules is missing: run ./test.sh (it runs `npm ci` there)"
    );
}

/// A child process killed when the test ends, whatever the outcome.
pub struct Daemon {
    child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `node SCRIPT ARGS` and returns it with the JSON line it prints when ready.
fn start_node(script: &str, args: &[&str], envs: &[(&str, String)], log: &Path) -> (Daemon, Value) {
    require_node_modules();
    let mut command = Command::new("node");
    command
        .arg(support_dir().join(script))
        .args(args)
        .current_dir(support_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(log).unwrap()));
    for (k, v) in envs {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("node runs");
    let stdout = child.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    // Keep draining stdout into the log: a closed pipe would kill node with EPIPE the next
    // time anything in it prints (oidc-provider does, on some flows).
    let mut log_file = std::fs::OpenOptions::new().append(true).open(log).unwrap();
    std::thread::spawn(move || std::io::copy(&mut reader, &mut log_file));
    let ready: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
        panic!(
            "{script} did not start ({e}): {}",
            std::fs::read_to_string(log).unwrap_or_default()
        )
    });
    (Daemon { child }, ready)
}

pub struct Provider {
    _daemon: Daemon,
    pub issuer: String,
    pub port: u16,
}

impl Provider {
    /// Starts a provider whose ID and access tokens live `ttl_secs`.
    pub fn start(dir: &Path, ttl_secs: u64) -> Self {
        Self::start_with(dir, &[("OP_ID_TOKEN_TTL", ttl_secs.to_string())])
    }

    pub fn start_with(dir: &Path, envs: &[(&str, String)]) -> Self {
        let (daemon, ready) = start_node("provider.mjs", &[], envs, &dir.join("provider.log"));
        Provider {
            _daemon: daemon,
            issuer: ready["issuer"].as_str().unwrap().to_string(),
            port: ready["port"].as_u64().unwrap() as u16,
        }
    }

    fn test_url(&self, path: &str) -> String {
        let scheme = self.issuer.split("://").next().unwrap();
        format!("{scheme}://127.0.0.1:{}/__test/{path}", self.port)
    }

    /// An HTTP client for the test hooks; the provider's certificate is the test's own.
    fn http(&self) -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap()
    }

    /// Requests per path since the last reset, e.g. "/realms/test/protocol/openid-connect/token".
    pub fn counts(&self) -> Value {
        let body = self
            .http()
            .get(self.test_url("counts"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        serde_json::from_str(&body).unwrap()
    }

    /// The `x-*` request headers last seen per path.
    pub fn headers(&self) -> Value {
        let body = self
            .http()
            .get(self.test_url("headers"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        serde_json::from_str(&body).unwrap()
    }

    /// How many requests reached `endpoint` (a path below the realm).
    pub fn count(&self, endpoint: &str) -> u64 {
        self.counts()[format!("/realms/test{endpoint}")]
            .as_u64()
            .unwrap_or(0)
    }

    /// Total requests to the realm (test hooks excluded).
    pub fn realm_requests(&self) -> u64 {
        self.counts()
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.starts_with("/realms/"))
            .map(|(_, v)| v.as_u64().unwrap())
            .sum()
    }

    pub fn reset_counts(&self) {
        self.http().post(self.test_url("reset")).send().unwrap();
    }

    /// Revokes a refresh token at the provider (RFC 7009), as an admin or logout would.
    pub fn revoke(&self, refresh_token: &str) {
        let status = self
            .http()
            .post(format!("{}/protocol/openid-connect/revoke", self.issuer))
            .form(&[
                ("token", refresh_token),
                ("token_type_hint", "refresh_token"),
                ("client_id", "kubernetes"),
            ])
            .send()
            .unwrap()
            .status();
        assert!(status.is_success(), "revocation answered {status}");
    }

    /// Exchanges a refresh token directly, to check at the provider whether it is still alive.
    pub fn refresh_status(&self, refresh_token: &str) -> u16 {
        self.http()
            .post(format!("{}/protocol/openid-connect/token", self.issuer))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", "kubernetes"),
            ])
            .send()
            .unwrap()
            .status()
            .as_u16()
    }
}

pub struct ApiServer {
    _daemon: Daemon,
    pub url: String,
    pub ca_pem: String,
}

/// A certificate for 127.0.0.1 signed by a CA made for the test: returns (CA certificate,
/// server certificate, server key), all PEM files in `dir` named after `name`.
pub fn test_certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = dir.join(format!("{name}-ca.key"));
    let ca = dir.join(format!("{name}-ca.crt"));
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    let cert = dir.join(format!("{name}.crt"));
    let ext = dir.join(format!("{name}.ext"));
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
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
                // The clients of the test realm (tests/support/provider.mjs), one per grant.
                "kubernetes,kubernetes-device,kubernetes-password",
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
}

/// One test's world: a HOME, a cache dir, a provider, an API server and a kubeconfig.
pub struct World {
    pub dir: tempfile::TempDir,
    pub provider: Provider,
    pub api: ApiServer,
    /// The provider's CA certificate when it serves HTTPS.
    pub provider_ca: Option<PathBuf>,
}

impl World {
    pub fn new(ttl_secs: u64) -> Self {
        Self::with_provider(&[("OP_ID_TOKEN_TTL", ttl_secs.to_string())])
    }

    /// A world whose provider is configured by `envs` (see tests/support/provider.mjs).
    pub fn with_provider(envs: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let provider = Provider::start_with(dir.path(), envs);
        let api = ApiServer::start(dir.path(), &provider.issuer, None);
        World {
            dir,
            provider,
            api,
            provider_ca: None,
        }
    }

    /// A world whose provider serves HTTPS with a certificate of a CA made for the test, like
    /// a company Keycloak behind a private CA. get_token_args() does not pass the CA.
    pub fn with_https_provider(ttl_secs: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = test_certificate(dir.path(), "provider");
        let provider = Provider::start_with(
            dir.path(),
            &[
                ("OP_ID_TOKEN_TTL", ttl_secs.to_string()),
                ("OP_TLS_CERT", cert.display().to_string()),
                ("OP_TLS_KEY", key.display().to_string()),
            ],
        );
        let api = ApiServer::start(dir.path(), &provider.issuer, Some(&ca));
        World {
            dir,
            provider,
            api,
            provider_ca: Some(ca),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.path("cache")
    }

    pub fn login_log(&self) -> PathBuf {
        self.path("login.log")
    }

    /// The runs of the scripted browser so far, one JSON object each.
    pub fn logins(&self) -> Vec<Value> {
        std::fs::read_to_string(self.login_log())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits (up to 30 s) until the browser has finished `n` runs: it reports after the plugin
    /// may already have exited, since it takes its screenshot and closes after the redirect.
    pub fn wait_for_logins(&self, n: usize) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let logins = self.logins();
            if logins.len() >= n || start.elapsed() > Duration::from_secs(30) {
                return logins;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// get-token arguments for this world, before any extra ones.
    pub fn get_token_args(&self) -> Vec<String> {
        vec![
            "get-token".into(),
            format!("--oidc-issuer-url={}", self.provider.issuer),
            "--oidc-client-id=kubernetes".into(),
            format!("--token-cache-dir={}", self.cache_dir().display()),
            "--listen-address=127.0.0.1:0".into(),
            format!(
                "--browser-command={}",
                support_dir().join("login.mjs").display()
            ),
        ]
    }

    /// get-token arguments for the realm's `client` with `--grant-type=GRANT` (the test realm
    /// has one client per grant, see tests/support/provider.mjs).
    pub fn grant_args(&self, client: &str, grant: &str) -> Vec<String> {
        let mut args = self.get_token_args();
        args.retain(|a| !a.starts_with("--oidc-client-id"));
        args.push(format!("--oidc-client-id={client}"));
        args.push(format!("--grant-type={grant}"));
        args
    }

    /// Writes a kubeconfig whose user runs `command args` (exec apiVersion `api_version`).
    pub fn kubeconfig(
        &self,
        name: &str,
        api_version: &str,
        command: &str,
        args: &[String],
    ) -> PathBuf {
        use base64::Engine;
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.api.ca_pem);
        let config = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "test", "cluster": {"server": self.api.url, "certificate-authority-data": ca}}],
            "users": [{"name": "oidc", "user": {"exec": {
                "apiVersion": api_version,
                "command": command,
                "args": args,
                "interactiveMode": "IfAvailable",
                "provideClusterInfo": false,
            }}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "oidc"}}],
            "current-context": "test",
        });
        let path = self.path(name);
        std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        path
    }

    /// The usual kubeconfig: v1, the built plugin by absolute path, plus `extra` flags.
    pub fn default_kubeconfig(&self, extra: &[&str]) -> PathBuf {
        let mut args = self.get_token_args();
        args.extend(extra.iter().map(|s| s.to_string()));
        self.kubeconfig(
            "kubeconfig",
            "client.authentication.k8s.io/v1",
            PLUGIN,
            &args,
        )
    }

    /// Environment for every process of this world: its own HOME and the browser's log.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("HOME".into(), self.path("home").display().to_string()),
            ("LOGIN_LOG".into(), self.login_log().display().to_string()),
            (
                "KUBECACHEDIR".into(),
                self.path("kubecache").display().to_string(),
            ),
        ];
        // The scripted browser must trust the provider's private CA, as a company laptop does.
        if let Some(ca) = &self.provider_ca {
            env.push(("NODE_EXTRA_CA_CERTS".into(), ca.display().to_string()));
        }
        env
    }

    /// Runs the real kubectl against this world.
    pub fn kubectl(&self, kubeconfig: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Run {
        let mut command = Command::new(kubectl_path());
        command
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .args(args);
        self.run(command, extra_env)
    }

    /// PATH with the built plugin first, so `kubectl oidc-login` finds it.
    pub fn path_with_plugin(&self) -> String {
        let bin_dir = Path::new(PLUGIN).parent().unwrap();
        format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// Runs the plugin directly, as a user would by hand (no KUBERNETES_EXEC_INFO unless given).
    pub fn plugin(&self, args: &[String], extra_env: &[(&str, &str)]) -> Run {
        let mut command = Command::new(PLUGIN);
        command.args(args);
        self.run(command, extra_env)
    }

    pub fn run(&self, mut command: Command, extra_env: &[(&str, &str)]) -> Run {
        self.prepare(&mut command, extra_env);
        run_with_timeout(command, Duration::from_secs(120))
    }

    /// Gives `command` this world's environment (and `extra_env`), for tests that drive a
    /// process themselves.
    pub fn prepare(&self, command: &mut Command, extra_env: &[(&str, &str)]) {
        command.env_remove("KUBERNETES_EXEC_INFO");
        command.env_remove("DISPLAY");
        command.env_remove("WAYLAND_DISPLAY");
        command.env_remove("BROWSER");
        // No keyring unless a test starts one: the headless-server case.
        command.env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");
        for (k, v) in self.env() {
            command.env(k, v);
        }
        for (k, v) in extra_env {
            command.env(k, v);
        }
    }

    /// The cached refresh token of the only login in the cache dir (disk storage).
    pub fn cached_refresh_token(&self) -> String {
        let entry = std::fs::read_dir(self.cache_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(".refresh.json"))
            .expect("a refresh token file");
        let json: Value = serde_json::from_slice(&std::fs::read(entry).unwrap()).unwrap();
        json["refresh_token"].as_str().unwrap().to_string()
    }

    /// The cached token file of the only login in the cache dir.
    pub fn token_file(&self) -> PathBuf {
        std::fs::read_dir(self.cache_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(".token.json"))
            .expect("a token file")
    }

    /// Waits until the cached ID token is within the plugin's refresh margin.
    pub fn wait_for_cached_token_to_expire(&self) {
        let json: Value =
            serde_json::from_slice(&std::fs::read(self.token_file()).unwrap()).unwrap();
        let expiry = json["id_token_expiry"].as_i64().unwrap();
        let margin = kubectl_oidc_login::get_token::MIN_VALIDITY_SECS;
        let now = kubectl_oidc_login::jwt::now();
        let wait = expiry - margin - now + 1;
        if wait > 0 {
            std::thread::sleep(Duration::from_secs(wait as u64));
        }
    }
}

pub struct Run {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.status.success()
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert!(
            self.ok(),
            "failed ({}):\nstdout: {}\nstderr: {}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn assert_failed(&self) -> &Self {
        assert!(
            !self.ok(),
            "unexpectedly succeeded:\nstdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs `command` with no stdin, killing it if it outlives `limit` (a hang is a failure).
pub fn run_with_timeout(mut command: Command, limit: Duration) -> Run {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("command starts");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let err = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("{command:?} hung for more than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

pub fn kubectl_path() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into())
}

pub fn output_of(command: &mut Command) -> Output {
    command.output().expect("command runs")
}

/// A private D-Bus session with an unlocked gnome-keyring (a real Secret Service), its keyrings
/// in a throwaway XDG_DATA_HOME (a keyring made with another password would stay locked).
pub struct SecretService {
    _bus: Daemon,
    _keyring: Daemon,
    pub address: String,
    pub data_home: PathBuf,
}

impl SecretService {
    pub fn start(dir: &Path) -> Self {
        // A session bus without service activation: otherwise a client call that comes before
        // our daemon has claimed org.freedesktop.secrets activates a second, locked
        // gnome-keyring, and every write then fails for want of a GUI prompt.
        let bus_config = dir.join("dbus-session.conf");
        std::fs::write(
            &bus_config,
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
        )
        .unwrap();
        let mut bus = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", bus_config.display()))
            .args(["--nofork", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon runs (./test.sh installs it)");
        let mut address = String::new();
        BufReader::new(bus.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        let address = address.trim().to_string();
        let data_home = dir.join("xdg-data");
        std::fs::create_dir_all(&data_home).unwrap();
        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("XDG_DATA_HOME", &data_home)
            .env("HOME", dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnome-keyring-daemon runs (./test.sh installs it)");
        {
            use std::io::Write;
            let mut stdin = keyring.stdin.take().unwrap();
            stdin.write_all(b"test-keyring-password").unwrap();
        }
        let service = SecretService {
            _bus: Daemon { child: bus },
            _keyring: Daemon { child: keyring },
            address,
            data_home,
        };
        // Ready once a write succeeds: the login collection is created asynchronously after
        // --unlock, and a write before that fails with "result not returned from SS API".
        let start = Instant::now();
        while !service.store_probe() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "gnome-keyring did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        service
    }

    fn store_probe(&self) -> bool {
        use std::io::Write;
        let Ok(mut child) = Command::new("secret-tool")
            .args([
                "store",
                "--label=probe",
                "service",
                "test-probe",
                "username",
                "probe",
            ])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env("XDG_DATA_HOME", &self.data_home)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        else {
            return false;
        };
        let _ = child.stdin.take().unwrap().write_all(b"probe");
        child.wait().is_ok_and(|s| s.success())
    }

    fn lookup_raw(&self, username: &str) -> Option<Output> {
        let out = Command::new("secret-tool")
            .args([
                "lookup",
                "service",
                "kubectl-oidc-login",
                "username",
                username,
            ])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env("XDG_DATA_HOME", &self.data_home)
            .output()
            .ok()?;
        // Exit 1 with nothing on stdout or stderr is "no such item"; errors print to stderr.
        if !out.stderr.is_empty() {
            eprintln!("secret-tool: {}", String::from_utf8_lossy(&out.stderr));
            return None;
        }
        Some(out)
    }

    /// The secret stored under `username` for our service, read with secret-tool.
    pub fn lookup(&self, username: &str) -> Option<String> {
        let out = self.lookup_raw(username)?;
        let secret = String::from_utf8(out.stdout).unwrap();
        (!secret.is_empty()).then_some(secret)
    }

    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DBUS_SESSION_BUS_ADDRESS", self.address.clone()),
            ("XDG_DATA_HOME", self.data_home.display().to_string()),
        ]
    }
}

impl World {
    /// The id of the only login in the cache dir.
    pub fn key_id(&self) -> String {
        std::fs::read_dir(self.cache_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .find_map(|n| n.strip_suffix(".meta.json").map(str::to_string))
            .expect("a login in the cache dir")
    }

    /// Every file under the cache dir, with its content.
    pub fn cache_files(&self) -> Vec<(PathBuf, String)> {
        std::fs::read_dir(self.cache_dir())
            .map(|d| {
                d.map(|e| {
                    let p = e.unwrap().path();
                    let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap_or_default())
                        .into_owned();
                    (p, text)
                })
                .collect()
            })
            .unwrap_or_default()
    }
}

/// Parses YAML documents with the npm `yaml` package; returns them as JSON values.
pub fn parse_yaml(text: &str) -> Vec<Value> {
    use std::io::Write;
    let mut child = Command::new("node")
        .arg(support_dir().join("yaml-to-json.mjs"))
        .current_dir(support_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "not YAML: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

/// The text between `start` and `end` markers of setup's report.
pub fn section<'a>(report: &'a str, start: &str, end: &str) -> &'a str {
    let from = report
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in {report}"))
        + start.len();
    let to = from + report[from..].find(end).unwrap();
    &report[from..to]
}
