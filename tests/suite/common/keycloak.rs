//! A real Keycloak (the pinned release scripts/keycloak fetched and built), started once per
//! test binary on free loopback ports over HTTPS with a certificate of a CA the harness makes,
//! with the example realms imported by Keycloak's own `--import-realm`, and a real OpenLDAP
//! behind the LDAP realm. Tests get their own realm copies through the admin REST API (so one
//! test's realm settings never leak into another running at the same time), and count the
//! requests that reached Keycloak in its HTTP access log.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::ldap::{self, Ldap};
use super::test_certificate;

pub const ADMIN_USER: &str = "test-admin";
pub const ADMIN_PASSWORD: &str = "test-admin-password";
/// How long Keycloak may take to be ready: a warm `start --optimized` takes 30–60 s on two
/// shared cores; a cold machine more.
const READY_LIMIT: Duration = Duration::from_secs(300);

pub struct Keycloak {
    /// https://127.0.0.1:PORT
    pub base: String,
    pub port: u16,
    /// The CA of Keycloak's certificate: what users pass with --certificate-authority.
    pub ca: PathBuf,
    pub log: PathBuf,
    /// The directory the realm `platform-ldap` (imported at start) federates.
    pub ldap_url: String,
    pub version: String,
    /// Seconds from spawn to ready.
    pub start_secs: f64,
    pgid: i32,
    http: reqwest::blocking::Client,
    sentinel: AtomicU64,
    // Held so the watchdog's stdin stays open while this process lives.
    _watchdog: Mutex<ChildStdin>,
}

static KEYCLOAK: OnceLock<Result<Keycloak, String>> = OnceLock::new();
static PGID: AtomicU64 = AtomicU64::new(0);
static RUN_DIR: OnceLock<PathBuf> = OnceLock::new();

/// The process-wide Keycloak, started at the first call; Err says why this machine has none.
pub fn keycloak() -> Result<&'static Keycloak, String> {
    KEYCLOAK.get_or_init(start).as_ref().map_err(Clone::clone)
}

/// The shared Keycloak in a test, or the test says it could not run here and returns.
macro_rules! keycloak_or_skip {
    () => {
        match $crate::common::keycloak::keycloak() {
            Ok(kc) => kc,
            Err(why) => {
                $crate::common::keycloak::not_built_here(&why);
                return;
            }
        }
    };
}
pub(crate) use keycloak_or_skip;

extern "C" fn stop_at_exit() {
    let pgid = PGID.load(Ordering::SeqCst) as i32;
    if pgid > 0 {
        // The JVM and the slapd of the imported realm are in one process group of their own:
        // dev-mem holds nothing worth a graceful stop.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    if let Some(dir) = RUN_DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn keycloak_home() -> Result<PathBuf, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/keycloak");
    let mut command = Command::new(&script);
    command.stdin(Stdio::null());
    let run = super::run_with_timeout(command, Duration::from_secs(900));
    if run.ok() {
        return Ok(PathBuf::from(run.stdout.trim()));
    }
    let reason = run
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("not built here: keycloak ("))
        .map(|r| r.trim_end_matches(')').to_string())
        .unwrap_or_else(|| format!("scripts/keycloak failed: {}", run.stderr.trim()));
    Err(reason)
}

fn start() -> Result<Keycloak, String> {
    if let Some(why) = ldap::unavailable() {
        return Err(why);
    }
    let home = keycloak_home()?;
    let version = home
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("keycloak-"))
        .unwrap_or("?")
        .to_string();
    let run_dir = tempfile::Builder::new()
        .prefix("keycloak-run-")
        .tempdir()
        .map_err(|e| e.to_string())?
        .keep();
    RUN_DIR.set(run_dir.clone()).unwrap();
    unsafe {
        libc::atexit(stop_at_exit);
    }

    // A home of our own that links to the built distribution: data/ (the realms to import,
    // logs) is per run, so two test runs on one machine never share it. kc.sh finds its home
    // from its own path, so it is copied, not linked.
    let kc_home = run_dir.join("keycloak");
    std::fs::create_dir_all(kc_home.join("bin")).unwrap();
    std::fs::create_dir_all(kc_home.join("data/import")).unwrap();
    std::fs::copy(home.join("bin/kc.sh"), kc_home.join("bin/kc.sh")).map_err(|e| e.to_string())?;
    for part in ["lib", "providers", "themes", "conf"] {
        std::os::unix::fs::symlink(home.join(part), kc_home.join(part)).unwrap();
    }
    // --import-realm takes REALM-realm.json files only (Keycloak refuses other names), so the
    // examples are copied under their realm's name, content unchanged.
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for (file, realm) in [
        ("keycloak-realm.json", "platform"),
        ("keycloak-realm-ldap.json", "platform-ldap"),
    ] {
        std::fs::copy(
            examples.join(file),
            kc_home.join(format!("data/import/{realm}-realm.json")),
        )
        .unwrap();
    }

    let (ca, cert, key) = test_certificate(&run_dir, "keycloak");
    let port = ldap::free_port();
    let management_port = ldap::free_port();
    let log = run_dir.join("keycloak.log");
    let log_file = std::fs::File::create(&log).unwrap();

    // The directory behind the imported LDAP realm, in Keycloak's process group.
    let ldap = Ldap::start_detached(&run_dir);
    let pgid = ldap.pid as i32;
    PGID.store(pgid as u64, Ordering::SeqCst);

    use std::os::unix::process::CommandExt;
    let started = Instant::now();
    let mut child: Child = Command::new(kc_home.join("bin/kc.sh"))
        .args([
            "start",
            "--optimized",
            "--import-realm",
            "--http-enabled=false",
            "--http-host=127.0.0.1",
            &format!("--https-port={port}"),
            &format!("--https-certificate-file={}", cert.display()),
            &format!("--https-certificate-key-file={}", key.display()),
            "--hostname-strict=false",
            &format!("--http-management-port={management_port}"),
            "--cache=local",
            // One line per request, which the tests count. Keycloak's %U keeps the query
            // string, so the logout endpoint (whose query carries an id_token_hint) is left
            // out: no token lands in the log.
            "--http-access-log-enabled=true",
            "--http-access-log-pattern=ACCESS \"%m %U\" %s",
            "--http-access-log-exclude=/realms/[^/]+/protocol/openid-connect/logout.*",
        ])
        .env("KC_BOOTSTRAP_ADMIN_USERNAME", ADMIN_USER)
        .env("KC_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("JAVA_OPTS_KC_HEAP", "-Xms64m -Xmx512m")
        // Placeholders of examples/keycloak-realm-ldap.json, resolved by Keycloak's import.
        .env("LDAP_URL", &ldap.url)
        .env("LDAP_BIND_CREDENTIAL", ldap::BIND_PASSWORD)
        .process_group(pgid)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log_file.try_clone().unwrap()))
        .stderr(Stdio::from(log_file))
        .spawn()
        .map_err(|e| format!("kc.sh does not start: {e}"))?;

    // Kills the group when this process ends in a way atexit does not see (a signal, a
    // SIGKILL from a timeout): its stdin is a pipe only this process holds open.
    let mut watchdog = Command::new("sh")
        .arg("-c")
        .arg(format!("read _ignored; kill -KILL -- -{pgid} 2>/dev/null"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let watchdog_stdin = watchdog.stdin.take().unwrap();
    std::mem::forget(watchdog);
    let ldap_url = ldap.url.clone();
    std::mem::forget(ldap);

    let http = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let ready = format!("https://127.0.0.1:{management_port}/health/ready");
    loop {
        if let Ok(resp) = http.get(&ready).send() {
            if resp.status().is_success() {
                break;
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "Keycloak {version} exited ({status}) before it was ready: {}",
                tail(&log, 5)
            ));
        }
        if started.elapsed() > READY_LIMIT {
            return Err(format!(
                "Keycloak {version} was not ready within {READY_LIMIT:?}: {}",
                tail(&log, 5)
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::mem::forget(child);
    let start_secs = started.elapsed().as_secs_f64();
    eprintln!(
        "Keycloak {version} ready in {start_secs:.1} s (log: {})",
        log.display()
    );
    Ok(Keycloak {
        base: format!("https://127.0.0.1:{port}"),
        port,
        ca,
        log,
        ldap_url,
        version,
        start_secs,
        pgid,
        http,
        sentinel: AtomicU64::new(0),
        _watchdog: Mutex::new(watchdog_stdin),
    })
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.contains("SRHCK")).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

impl Keycloak {
    pub fn issuer(&self, realm: &str) -> String {
        format!("{}/realms/{realm}", self.base)
    }

    pub fn http(&self) -> &reqwest::blocking::Client {
        &self.http
    }

    fn admin_token(&self) -> String {
        let resp: Value = self
            .http
            .post(format!(
                "{}/realms/master/protocol/openid-connect/token",
                self.base
            ))
            .form(&[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", ADMIN_USER),
                ("password", ADMIN_PASSWORD),
            ])
            .send()
            .and_then(|r| r.text())
            .map(|t| serde_json::from_str(&t).unwrap_or(Value::Null))
            .unwrap();
        resp["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no admin token: {resp}"))
            .to_string()
    }

    /// One call of the admin REST API (path below /admin/realms); the JSON answer, if any.
    pub fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let url = format!("{}/admin/realms{path}", self.base);
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(self.admin_token());
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let resp = request.send().unwrap();
        let status = resp.status();
        let text = resp.text().unwrap();
        assert!(
            status.is_success(),
            "{method} {url} answered {status}: {text}"
        );
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// A new realm `name` from an example file, with `overrides` merged in at the top level,
    /// through the admin API (the same import Keycloak runs for --import-realm). The LDAP
    /// placeholders are replaced here, as Keycloak's start-up import would replace them.
    pub fn create_realm(
        &self,
        example: &str,
        name: &str,
        ldap_url: Option<&str>,
        overrides: Value,
    ) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(example);
        let mut text = std::fs::read_to_string(path).unwrap();
        if let Some(url) = ldap_url {
            text = text
                .replace("${LDAP_URL:ldap://ldap.example.com:389}", url)
                .replace("${LDAP_BIND_CREDENTIAL:change-me}", ldap::BIND_PASSWORD);
        }
        let mut realm: Value = serde_json::from_str(&text).unwrap();
        realm["realm"] = json!(name);
        for (k, v) in overrides.as_object().unwrap() {
            realm[k] = v.clone();
        }
        self.admin("POST", "", Some(&realm));
    }

    pub fn update_realm(&self, realm: &str, settings: Value) {
        self.admin("PUT", &format!("/{realm}"), Some(&settings));
    }

    /// The id of user `username` in `realm` (an LDAP user is imported at its first login).
    pub fn user_id(&self, realm: &str, username: &str) -> String {
        let users = self.admin(
            "GET",
            &format!("/{realm}/users?username={username}&exact=true"),
            None,
        );
        users[0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no user {username} in {realm}: {users}"))
            .to_string()
    }

    pub fn set_user_enabled(&self, realm: &str, username: &str, enabled: bool) {
        let id = self.user_id(realm, username);
        self.admin(
            "PUT",
            &format!("/{realm}/users/{id}"),
            Some(&json!({"enabled": enabled})),
        );
    }

    /// The client `client_id` of `realm` (its representation).
    pub fn client(&self, realm: &str, client_id: &str) -> Value {
        self.admin(
            "GET",
            &format!("/{realm}/clients?clientId={client_id}"),
            None,
        )[0]
        .clone()
    }

    /// Merges `changes` into client `client_id` (attributes merged key by key).
    pub fn update_client(&self, realm: &str, client_id: &str, changes: Value) {
        let mut client = self.client(realm, client_id);
        for (k, v) in changes.as_object().unwrap() {
            if k == "attributes" {
                for (ak, av) in v.as_object().unwrap() {
                    client["attributes"][ak] = av.clone();
                }
            } else {
                client[k] = v.clone();
            }
        }
        let id = client["id"].as_str().unwrap().to_string();
        self.admin("PUT", &format!("/{realm}/clients/{id}"), Some(&client));
    }

    /// The active user sessions of `username` in `realm`.
    pub fn sessions(&self, realm: &str, username: &str) -> Vec<Value> {
        let id = self.user_id(realm, username);
        self.admin("GET", &format!("/{realm}/users/{id}/sessions"), None)
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Every request Keycloak served for `realm` so far, as "METHOD /path" (path below the
    /// realm). A marker request is sent and awaited in the access log first, so every request
    /// made before this call has been logged.
    pub fn requests(&self, realm: &str) -> Vec<String> {
        let n = self.sentinel.fetch_add(1, Ordering::SeqCst);
        let marker = format!("/realms/{realm}/log-marker-{}-{n}", std::process::id());
        let _ = self.http.get(format!("{}{marker}", self.base)).send();
        let prefix = format!("/realms/{realm}/");
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if text.contains(&marker) {
                return text
                    .lines()
                    .filter_map(|l| l.split_once("ACCESS \"").map(|(_, rest)| rest))
                    .filter_map(|rest| rest.split_once('"').map(|(req, _)| req))
                    .filter_map(|req| req.split_once(' '))
                    .filter(|(_, path)| path.starts_with(&prefix) && !path.contains("log-marker-"))
                    .map(|(method, path)| {
                        let path = path.split('?').next().unwrap();
                        format!("{method} /{}", &path[prefix.len()..])
                    })
                    .collect();
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the access log never showed {marker}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Resident memory of the JVM, in MB (for the measurements the issue asks for).
    pub fn rss_mb(&self) -> Option<u64> {
        let out = Command::new("ps")
            .args(["-o", "rss=,comm=", "-g", &self.pgid.to_string()])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("java"))
            .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
            .max()
            .map(|kb| kb / 1024)
    }
}

/// Says this test could not run here (see [`super::not_built_here`]).
pub fn not_built_here(why: &str) {
    super::not_built_here(&format!("not built here: keycloak ({why})"));
}
