//! Test harness: a [`World`] per test, with its own temporary directory and ports, and one
//! file per real part it drives: the OpenID Provider (`provider`), the HTTPS API server
//! stand-in (`apiserver`), kubectl and kubeconfigs (`kubectl`), the scripted browser
//! (`browser`), the Secret Service keyring with the token cache (`keyring`), and the real
//! Keycloak with OpenLDAP behind it (`keycloak`, `ldap`). Here: the
//! world itself, the processes it starts, and how a run's outcome is read.
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

/// Waits while ./test.sh builds the other platforms' binaries beside the tests (or returns at
/// once when no ./test.sh is building them) and returns cargo's target directory, which holds
/// them. test.sh holds an exclusive lock on `target/tmp/platforms.lock` until the binaries are
/// built and packaged into `target/dist-test`.
pub fn wait_for_platform_builds() -> PathBuf {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let _ = std::fs::create_dir_all(target.join("tmp"));
    if let Ok(lock) = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(target.join("tmp/platforms.lock"))
    {
        let _ = lock.lock_shared();
    }
    target
}

/// Says a test could not run on this machine (`line` is "not built here: WHAT (WHY)"): on the
/// terminal, past the test harness's capture (a passing test's output is never shown), and in
/// the run's summary file, which test.sh prints at the end. Never a silent pass.
pub fn not_built_here(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
    let summary = Path::new(env!("CARGO_TARGET_TMPDIR")).join("not-built-here.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(summary)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// A port that is free now, for a server started next or a redirect URI registered ahead.
/// Taken below Linux's ephemeral range (32768 and up), where every outgoing connection and
/// every `127.0.0.1:0` listener of the tests running beside this one draws its port, so the
/// port cannot be handed to one of them before its owner binds it.
/// Never the same port twice in one test binary: a port handed out stays unbound until its
/// server starts, seconds later on a loaded machine, and a test beside it (or the next call of
/// the same test) could otherwise draw it again.
pub fn free_port() -> u16 {
    use std::collections::BTreeSet;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::Mutex;
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        // A fresh random seed per call (std's RandomState), no dependency needed.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        let port = 20_000 + (hasher.finish() % 12_000) as u16;
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if !handed_out.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.insert(port);
            return port;
        }
    }
}

/// A child process killed when the test ends, whatever the outcome.
pub struct Daemon {
    child: Child,
}

impl Daemon {
    /// Owns a process started by a harness (killed when the test ends).
    pub fn from_child(child: Child) -> Self {
        Daemon { child }
    }

    /// Ends the process now (a server going down in the middle of a test).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
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

mod apiserver;
mod browser;
// The stand-in for Microsoft Entra ID (tests/suite/pairwise.rs), under unshare(1): Linux only.
#[cfg(target_os = "linux")]
pub mod entra;
// The real Ory Hydra and zitadel/oidc's example provider (tests/suite/providers.rs).
pub mod hydra;
// The real Keycloak and OpenLDAP (tests/suite/keycloak.rs): Linux processes in a group of their own.
#[cfg(unix)]
pub mod keycloak;
mod keyring;
mod kubectl;
pub mod kubelogin_table;
#[cfg(unix)]
pub mod ldap;
mod peers;
mod provider;
pub mod zitadel;

// Each test binary uses some of these.
#[allow(unused_imports)]
pub use apiserver::{test_certificate, test_certificate_for, ApiServer};
#[allow(unused_imports)]
pub use keyring::SecretService;
#[allow(unused_imports)]
pub use kubectl::{kubectl_path, kubectl_path_absolute, user_info, write_kubeconfig};
#[allow(unused_imports)]
pub use peers::{peer, peer_version, point_issuer, KubeApiServer, OidcConfig};
pub use provider::Provider;

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

    pub fn run(&self, mut command: Command, extra_env: &[(&str, &str)]) -> Run {
        self.prepare(&mut command, extra_env);
        run_with_timeout(command, Duration::from_secs(120))
    }

    /// Gives `command` this world's environment (and `extra_env`), for tests that drive a
    /// process themselves.
    pub fn prepare(&self, command: &mut Command, extra_env: &[(&str, &str)]) {
        headless(command);
        for (k, v) in self.env() {
            command.env(k, v);
        }
        for (k, v) in extra_env {
            command.env(k, v);
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
pub fn run_with_timeout(command: Command, limit: Duration) -> Run {
    run_with_input(command, None, limit)
}

/// [`run_with_timeout`] with `input` (when given) as the command's standard input, which is
/// then closed, as a person types and presses Ctrl-D.
pub fn run_with_input(mut command: Command, input: Option<&[u8]>, limit: Duration) -> Run {
    let stdin = match input {
        Some(_) => Stdio::piped(),
        None => Stdio::null(),
    };
    let mut child = command
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("command starts");
    if let (Some(input), Some(mut pipe)) = (input, child.stdin.take()) {
        use std::io::Write;
        // A command that ends without reading it fails on its own terms, not here.
        let _ = pipe.write_all(input);
    }
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let err = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let Some(status) = wait_at_most(&mut child, limit) else {
        panic!("{command:?} hung for more than {limit:?}");
    };
    Run {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Waits for `child` to end, at most `limit`: `None` when it outlived that, and it was killed
/// and reaped.
pub fn wait_at_most(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn output_of(command: &mut Command) -> Output {
    command.output().expect("command runs")
}

/// Takes from `command` what this machine's session would lend it: kubectl's exec info, a
/// display and a browser to open; and no keyring unless a test starts one (the
/// headless-server case).
pub fn headless(command: &mut Command) -> &mut Command {
    command
        .env_remove("KUBERNETES_EXEC_INFO")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("BROWSER")
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
}

/// The claims of the JWT `token` (its payload, unverified: the tests read what a provider
/// issued).
pub fn jwt_claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// What `command` printed and how it exited, after reading `input` on its stdin.
pub fn output_with_stdin(command: &mut Command, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?} does not run: {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// The npm `yaml` package's reading of `text` (tests/support/yaml-to-json.mjs): on success, its
/// documents as one JSON array on stdout; on failure, the parser's error on stderr.
pub fn yaml_to_json(text: &str) -> Output {
    output_with_stdin(
        Command::new("node")
            .arg(support_dir().join("yaml-to-json.mjs"))
            .current_dir(support_dir()),
        text.as_bytes(),
    )
}

/// Parses YAML documents with the npm `yaml` package; returns them as JSON values.
pub fn parse_yaml(text: &str) -> Vec<Value> {
    let out = yaml_to_json(text);
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
