//! The real Go peers scripts/peers installs (int128/kubelogin, helm, kube-apiserver), found in
//! its cache outside the clone, and a harness for the real kube-apiserver: started on loopback
//! with a serving certificate of a test CA, RBAC, an embedded etcd, the OIDC settings of
//! `examples/` pointed at the test provider, and `examples/cluster-role-binding.yaml` applied.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{kubectl_path, run_with_timeout, test_certificate, Daemon, Run};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where scripts/peers puts the binaries (the same rule as the script).
pub fn peer_cache() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| dirs::home_dir().unwrap().join(".cache"));
    base.join("kubectl-oidc-login/peers")
}

/// The peer versions of tests/peers/versions (the script sources the same file), plus
/// KUBE_APISERVER from the k8s.io/kubernetes requirement of our kube-apiserver module.
pub fn peer_versions() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(repo().join("tests/peers/versions")).unwrap();
    let mut versions: BTreeMap<String, String> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let go_mod = std::fs::read_to_string(repo().join("tests/peers/kube-apiserver/go.mod")).unwrap();
    let kubernetes = go_mod
        .lines()
        .find_map(|l| l.trim().strip_prefix("k8s.io/kubernetes "))
        .expect("k8s.io/kubernetes in tests/peers/kube-apiserver/go.mod");
    versions.insert("KUBE_APISERVER".into(), kubernetes.trim().to_string());
    versions
}

/// The version of peer `key` (KUBELOGIN, KUBELOGIN_OLD, HELM3, HELM4, KUBE_APISERVER).
pub fn peer_version(key: &str) -> String {
    peer_versions()
        .remove(key)
        .unwrap_or_else(|| panic!("{key} in tests/peers/versions"))
}

/// The binary `NAME-VERSION` from the peer cache; or None, after printing the line
/// `not built here: NAME-VERSION (why)` that scripts/peers left (or that it never ran). The
/// caller then returns: this machine cannot run that peer, and the summary says so.
pub fn peer(name: &str, version: &str) -> Option<PathBuf> {
    let id = format!("{name}-{version}");
    wait_for_peer(&id);
    let path = peer_cache().join(&id);
    if path.is_file() {
        return Some(path);
    }
    let why = std::fs::read_to_string(peer_cache().join(format!("{id}.not-built")))
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|_| format!("not built here: {id} (scripts/peers has not run)"));
    super::not_built_here(&why);
    None
}

/// Waits until scripts/peers has built peer `id` or given up on it, or is not running. test.sh
/// runs it in the background beside the tests; it builds one peer after another (kube-apiserver,
/// which the Keycloak tests need, first), moves each binary into place whole, removes a stale
/// one before rebuilding it, and holds its cache's lock exclusively until it is done.
fn wait_for_peer(id: &str) {
    let cache = peer_cache();
    let _ = std::fs::create_dir_all(&cache);
    let Ok(lock) = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(cache.join(".lock"))
    else {
        return;
    };
    let not_built = cache.join(format!("{id}.not-built"));
    while !cache.join(id).is_file() && !not_built.is_file() {
        match lock.try_lock_shared() {
            Err(std::fs::TryLockError::WouldBlock) => {
                std::thread::sleep(Duration::from_millis(500))
            }
            // Not running (or no locks here): what is in the cache is all there is.
            _ => return,
        }
    }
}

use super::free_port;

/// How the API server learns about the OpenID Provider: the examples, one or the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OidcConfig {
    /// `--oidc-*` flags from examples/kube-apiserver-flags.txt.
    Flags,
    /// `--authentication-config=` examples/authentication-config.yaml.
    AuthenticationConfiguration,
}

/// The real kube-apiserver, with an etcd in the same process; killed when dropped.
pub struct KubeApiServer {
    daemon: Daemon,
    pub url: String,
    pub ca_pem: String,
    /// A kubeconfig for the harness: a static token of a `system:masters` member.
    pub admin_kubeconfig: PathBuf,
    /// The audit log (JSON lines, Metadata level for ConfigMaps and Secrets).
    pub audit_log: PathBuf,
    pub log: PathBuf,
    pub startup: Duration,
}

const EXAMPLE_ISSUER: &str = "https://keycloak.example.com/realms/platform";

impl KubeApiServer {
    /// Starts kube-apiserver in `dir` (its own subdirectory: etcd data, certificates, logs),
    /// trusting ID tokens of `issuer`, whose TLS certificate is signed by `issuer_ca`. None
    /// (after the `not built here` line) when scripts/peers could not build it.
    pub fn start(dir: &Path, issuer: &str, issuer_ca: &Path, oidc: OidcConfig) -> Option<Self> {
        Self::start_for(dir, issuer, issuer_ca, oidc, None)
    }

    /// [`Self::start`] with the examples' audience (`kubernetes`) replaced by `audience`: one
    /// cluster of several that each accept only tokens for their own client ID.
    pub fn start_for(
        dir: &Path,
        issuer: &str,
        issuer_ca: &Path,
        oidc: OidcConfig,
        audience: Option<&str>,
    ) -> Option<Self> {
        // The OIDC settings exactly as the examples say, the issuer (and its CA, which the
        // examples leave to the reader: a public Keycloak needs none) replaced by the test's.
        match oidc {
            OidcConfig::Flags => {
                let text =
                    std::fs::read_to_string(repo().join("examples/kube-apiserver-flags.txt"))
                        .unwrap();
                assert!(text.contains(EXAMPLE_ISSUER), "{text}");
                let mut args: Vec<String> = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| l.starts_with("--"))
                    .map(|l| l.replace(EXAMPLE_ISSUER, issuer))
                    .map(|l| match audience {
                        Some(a) if l == "--oidc-client-id=kubernetes" => {
                            format!("--oidc-client-id={a}")
                        }
                        _ => l,
                    })
                    .collect();
                args.push(format!("--oidc-ca-file={}", issuer_ca.display()));
                Self::launch(dir, |_| args, true)
            }
            OidcConfig::AuthenticationConfiguration => {
                let text =
                    std::fs::read_to_string(repo().join("examples/authentication-config.yaml"))
                        .unwrap();
                let mut config = point_issuer(&text, EXAMPLE_ISSUER, issuer, issuer_ca);
                if let Some(audience) = audience {
                    let example = "    audiences:\n    - kubernetes\n";
                    assert!(config.contains(example), "{config}");
                    config =
                        config.replace(example, &format!("    audiences:\n    - {audience}\n"));
                }
                Self::start_with_authentication_config(dir, &config)
            }
        }
    }

    /// Starts kube-apiserver in `dir` with the structured authentication `config` (YAML; an
    /// example made the test's with [`point_issuer`]). None (after the `not built here` line)
    /// when scripts/peers could not build it.
    pub fn start_with_authentication_config(dir: &Path, config: &str) -> Option<Self> {
        Self::launch(
            dir,
            |dir| {
                let path = dir.join("authentication-config.yaml");
                std::fs::write(&path, config).unwrap();
                vec![format!("--authentication-config={}", path.display())]
            },
            true,
        )
    }

    /// Starts kube-apiserver in `dir` with `--authentication-config=FILE` as an administrator
    /// wrote it (tests/suite/quickstart.rs), and no RBAC of the examples: the administrator
    /// binds roles themselves. None (after the `not built here` line) without the peer.
    pub fn start_as_written(dir: &Path, file: &Path) -> Option<Self> {
        Self::launch(
            dir,
            |_| vec![format!("--authentication-config={}", file.display())],
            false,
        )
    }

    /// Starts kube-apiserver in its own subdirectory of `dir`, with the harness's settings and
    /// the authentication flags `oidc_args` returns (given that subdirectory), and
    /// examples/cluster-role-binding.yaml applied when `example_rbac` says so.
    fn launch(
        dir: &Path,
        oidc_args: impl FnOnce(&Path) -> Vec<String>,
        example_rbac: bool,
    ) -> Option<Self> {
        let binary = peer("kube-apiserver", &peer_version("KUBE_APISERVER"))?;
        let dir = dir.join("kube-apiserver");
        std::fs::create_dir_all(&dir).unwrap();
        let (ca, cert, key) = test_certificate(&dir, "kube-apiserver");
        let openssl = |args: &[&str]| {
            let status = Command::new("openssl")
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "openssl {args:?}");
        };
        // Service-account token keys, made for this run (the API server refuses to start
        // without an issuer and keys).
        let sa_key = dir.join("service-account.key");
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            sa_key.to_str().unwrap(),
        ]);
        // The harness's own credential: a random static token of a system:masters member.
        let admin_token = format!("{:032x}", rand_u128());
        let tokens = dir.join("tokens.csv");
        std::fs::write(
            &tokens,
            format!("{admin_token},harness-admin,harness-admin,system:masters\n"),
        )
        .unwrap();
        let audit_policy = dir.join("audit-policy.yaml");
        std::fs::write(
            &audit_policy,
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n\
             - level: Metadata\n  resources:\n  - group: \"\"\n    resources: [configmaps, secrets]\n\
             - level: None\n",
        )
        .unwrap();
        let audit_log = dir.join("audit.log");

        let port = free_port();
        let (etcd_client, etcd_peer) = (free_port(), free_port());
        let mut args: Vec<String> = vec![
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={port}"),
            format!("--tls-cert-file={}", cert.display()),
            format!("--tls-private-key-file={}", key.display()),
            format!("--cert-dir={}", dir.join("certs").display()),
            format!("--etcd-servers=http://127.0.0.1:{etcd_client}"),
            "--authorization-mode=RBAC".into(),
            format!("--token-auth-file={}", tokens.display()),
            "--service-account-issuer=https://kubernetes.default.svc".into(),
            format!("--service-account-key-file={}", sa_key.display()),
            format!("--service-account-signing-key-file={}", sa_key.display()),
            "--service-cluster-ip-range=10.96.0.0/24".into(),
            format!("--audit-policy-file={}", audit_policy.display()),
            format!("--audit-log-path={}", audit_log.display()),
            // Written as each request completes, so the test reads it at once.
            "--audit-log-mode=blocking".into(),
            "--profiling=false".into(),
        ];
        args.extend(oidc_args(&dir));
        let log = dir.join("kube-apiserver.log");
        let child = Command::new(&binary)
            .args(&args)
            .env("EMBEDDED_ETCD_DIR", dir.join("etcd"))
            .env(
                "EMBEDDED_ETCD_CLIENT_URL",
                format!("http://127.0.0.1:{etcd_client}"),
            )
            .env(
                "EMBEDDED_ETCD_PEER_URL",
                format!("http://127.0.0.1:{etcd_peer}"),
            )
            // Kubernetes' ClusterRole aggregation controller, run in the same process (see
            // tests/peers/kube-apiserver/main.go): `view` gets its rules from it.
            .env("CLUSTERROLE_AGGREGATION_TOKEN", &admin_token)
            .env(
                "CLUSTERROLE_AGGREGATION_SERVER",
                format!("https://127.0.0.1:{port}"),
            )
            .env("CLUSTERROLE_AGGREGATION_CA_FILE", &ca)
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::OpenOptions::new().append(true).open(&log).unwrap(),
            ))
            .spawn()
            .expect("kube-apiserver starts");
        let started = Instant::now();
        let mut server = KubeApiServer {
            daemon: Daemon { child },
            url: format!("https://127.0.0.1:{port}"),
            ca_pem: std::fs::read_to_string(&ca).unwrap(),
            admin_kubeconfig: dir.join("admin.kubeconfig"),
            audit_log,
            log,
            startup: Duration::ZERO,
        };
        server.wait_ready(&admin_token, Duration::from_secs(120));
        server.startup = started.elapsed();
        let config = kubeconfig_json(
            &server.url,
            &server.ca_pem,
            serde_json::json!({ "token": admin_token }),
        );
        std::fs::write(&server.admin_kubeconfig, config.to_string()).unwrap();
        if example_rbac {
            server
                .admin(&[
                    "apply",
                    "-f",
                    repo()
                        .join("examples/cluster-role-binding.yaml")
                        .to_str()
                        .unwrap(),
                ])
                .assert_ok();
        }
        server.wait_for_aggregated_role("view", Duration::from_secs(30));
        Some(server)
    }

    /// Waits (bounded) until the aggregation controller has given ClusterRole `name` rules.
    fn wait_for_aggregated_role(&self, name: &str, limit: Duration) {
        let start = Instant::now();
        loop {
            let run = self.admin(&["get", "clusterrole", name, "-o", "json"]);
            let rules = run
                .ok()
                .then(|| serde_json::from_str::<serde_json::Value>(&run.stdout).ok())
                .flatten()
                .and_then(|r| r["rules"].as_array().map(Vec::len))
                .unwrap_or(0);
            if rules > 0 {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "ClusterRole {name} still has no rules after {limit:?}:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Polls /readyz (bounded); a process that exits first fails the test with its log.
    fn wait_ready(&mut self, token: &str, limit: Duration) {
        let client = reqwest::blocking::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).unwrap())
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = self.daemon.child.try_wait().unwrap() {
                panic!(
                    "kube-apiserver exited ({status}) before it was ready:\n{}",
                    self.log_tail()
                );
            }
            let ready = client
                .get(format!("{}/readyz", self.url))
                .bearer_auth(token)
                .send()
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "kube-apiserver not ready within {limit:?}:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// kubectl as the harness's admin.
    pub fn admin(&self, args: &[&str]) -> Run {
        let mut command = Command::new(kubectl_path());
        command
            .arg(format!("--kubeconfig={}", self.admin_kubeconfig.display()))
            .args(args);
        run_with_timeout(command, Duration::from_secs(60))
    }

    /// The process's resident set now and at its peak, in KiB (from /proc).
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.daemon.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// The audit events (JSON lines) so far.
    pub fn audit_events(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.audit_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// A kubeconfig for this API server whose user runs `command args` (exec v1).
    pub fn exec_kubeconfig(&self, path: &Path, command: &str, args: &[String]) -> PathBuf {
        let config = kubeconfig_json(
            &self.url,
            &self.ca_pem,
            serde_json::json!({"exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": command,
                "args": args,
                "interactiveMode": "IfAvailable",
                "provideClusterInfo": false,
            }}),
        );
        std::fs::write(path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        path.to_path_buf()
    }
}

/// An AuthenticationConfiguration example (`text`) with its issuer `example_url` replaced by
/// `issuer`, and that issuer's CA (`issuer_ca`, PEM), which examples leave to the reader (a
/// public provider needs none), set beside it.
pub fn point_issuer(text: &str, example_url: &str, issuer: &str, issuer_ca: &Path) -> String {
    let url_line = format!("    url: {example_url}\n");
    assert!(text.contains(&url_line), "no {url_line:?} in {text}");
    let pem = std::fs::read_to_string(issuer_ca).unwrap();
    let indented: String = pem.lines().map(|l| format!("      {l}\n")).collect();
    text.replace(
        &url_line,
        &format!("    url: {issuer}\n    certificateAuthority: |\n{indented}"),
    )
}

fn kubeconfig_json(server: &str, ca_pem: &str, user: serde_json::Value) -> serde_json::Value {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "real", "cluster": {"server": server, "certificate-authority-data": ca}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "real", "context": {"cluster": "real", "user": "u"}}],
        "current-context": "real",
    })
}

/// 128 random bits from the kernel, for the harness's admin token.
fn rand_u128() -> u128 {
    let mut bytes = [0u8; 16];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    u128::from_le_bytes(bytes)
}
