//! The single sign-on chain on the real server: Keycloak (the release scripts/keycloak pins,
//! over HTTPS with a private CA passed by --certificate-authority) federating a real OpenLDAP,
//! the real kubectl, headless Chromium on Keycloak's own pages, and the API server stand-in
//! verifying every token against Keycloak's keys. Each test gets its own realm made from
//! examples/keycloak-realm-ldap.json (and its own slapd), so realm settings one test changes
//! never reach another. When Keycloak cannot be had here, each test says
//! "not built here: keycloak (...)" and asserts nothing; test.sh lists those lines.
#![cfg(unix)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::keycloak::{keycloak, not_built_here, Keycloak};
use common::ldap::{self, Ldap};
use common::{run_with_timeout, support_dir, ApiServer, Run, PLUGIN};

macro_rules! keycloak_or_skip {
    () => {
        match keycloak() {
            Ok(kc) => kc,
            Err(why) => {
                not_built_here(&why);
                return;
            }
        }
    };
}

const TOKEN: &str = "POST /protocol/openid-connect/token";

/// One test's world: a realm of its own at the shared Keycloak, the directory it federates,
/// an API server trusting the realm, a HOME and a browser profile.
struct KcWorld {
    kc: &'static Keycloak,
    dir: tempfile::TempDir,
    realm: String,
    ldap: Ldap,
    api: ApiServer,
    /// The loopback listener's port, registered for this realm's client.
    port: u16,
}

impl KcWorld {
    /// A realm `realm` from the LDAP example, with `overrides` (realm settings) merged in.
    fn new(kc: &'static Keycloak, realm: &str, overrides: Value) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ldap = Ldap::start(dir.path());
        kc.create_realm("keycloak-realm-ldap.json", realm, Some(&ldap.url), overrides);
        // Keycloak 26 matches redirect URIs exactly, port included (a registered
        // http://127.0.0.1:8000 does not admit port 41234), so tests running side by side
        // each register their own port, as an admin would add one.
        let port = ldap::free_port();
        let mut uris = kc.client(realm, "kubernetes")["redirectUris"].clone();
        uris.as_array_mut()
            .unwrap()
            .push(json!(format!("http://localhost:{port}")));
        kc.update_client(realm, "kubernetes", json!({"redirectUris": uris}));
        let api = ApiServer::start(dir.path(), &kc.issuer(realm), Some(&kc.ca));
        KcWorld {
            kc,
            dir,
            realm: realm.to_string(),
            ldap,
            api,
            port,
        }
    }

    fn issuer(&self) -> String {
        self.kc.issuer(&self.realm)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cache_dir(&self) -> PathBuf {
        self.path("cache")
    }

    /// get-token's flags for this realm's `kubernetes` client, then `extra`.
    fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut args = vec![
            "get-token".to_string(),
            format!("--oidc-issuer-url={}", self.issuer()),
            "--oidc-client-id=kubernetes".into(),
            format!("--certificate-authority={}", self.kc.ca.display()),
            format!("--token-cache-dir={}", self.cache_dir().display()),
            "--token-cache-storage=disk".into(),
            format!("--listen-address=127.0.0.1:{}", self.port),
            // A browser run that goes wrong ends the test in a minute, with the plugin's words.
            "--authentication-timeout-sec=60".into(),
            format!(
                "--browser-command={}",
                support_dir().join("chromium-keycloak.mjs").display()
            ),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// A kubeconfig named `name` whose user runs the plugin with `args`.
    fn kubeconfig(&self, name: &str, args: &[String]) -> PathBuf {
        use base64::Engine;
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.api.ca_pem);
        let config = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "test", "cluster": {"server": self.api.url, "certificate-authority-data": ca}}],
            "users": [{"name": "oidc", "user": {"exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": PLUGIN,
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

    fn login_log(&self) -> PathBuf {
        self.path("login.log")
    }

    /// The environment of every process: its own HOME, and the browser acting as `user`
    /// (whose LDAP password it types) with one cookie jar kept between runs.
    fn prepare(&self, command: &mut Command, user: &str, extra_env: &[(&str, &str)]) {
        command.env_remove("KUBERNETES_EXEC_INFO");
        command.env_remove("DISPLAY");
        command.env_remove("WAYLAND_DISPLAY");
        command.env_remove("BROWSER");
        command.env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");
        command.env("HOME", self.path("home"));
        command.env("KUBECACHEDIR", self.path("kubecache"));
        command.env("LOGIN_LOG", self.login_log());
        command.env("KC_ORIGIN", &self.kc.base);
        command.env("KC_USER", user);
        command.env("KC_PASSWORD", ldap::password_of(user));
        command.env("KC_BROWSER_STATE", self.path("browser-state.json"));
        for (k, v) in extra_env {
            command.env(k, v);
        }
    }

    fn kubectl(&self, kubeconfig: &PathBuf, args: &[&str], user: &str) -> Run {
        self.kubectl_env(kubeconfig, args, user, &[])
    }

    fn kubectl_env(
        &self,
        kubeconfig: &PathBuf,
        args: &[&str],
        user: &str,
        extra_env: &[(&str, &str)],
    ) -> Run {
        let mut command = Command::new(common::kubectl_path());
        command
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .args(args);
        self.prepare(&mut command, user, extra_env);
        run_with_timeout(command, Duration::from_secs(180))
    }

    fn plugin(&self, args: &[String], user: &str) -> Run {
        let mut command = Command::new(PLUGIN);
        command.args(args);
        self.prepare(&mut command, user, &[]);
        run_with_timeout(command, Duration::from_secs(180))
    }

    /// `kubectl auth whoami` as the API server sees it: (username, groups).
    fn whoami(&self, kubeconfig: &PathBuf, user: &str) -> (String, Vec<String>) {
        let run = self.kubectl(kubeconfig, &["auth", "whoami", "-o", "json"], user);
        assert!(
            run.ok(),
            "whoami failed: {}\nbrowser: {:?}",
            run.stderr,
            std::fs::read_to_string(self.login_log()).unwrap_or_default()
        );
        let info = &run.json()["status"]["userInfo"];
        let groups = info["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_str().unwrap().to_string())
            .collect();
        (info["username"].as_str().unwrap().to_string(), groups)
    }

    /// The browser's runs so far; waits (up to 30 s) for `n`, since the browser reports after
    /// its screenshot, when the plugin may have finished.
    fn logins(&self, n: usize) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let logins: Vec<Value> = std::fs::read_to_string(self.login_log())
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            if logins.len() >= n || start.elapsed() > Duration::from_secs(30) {
                return logins;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Requests that reached this test's realm so far ("METHOD /path below the realm").
    fn requests(&self) -> Vec<String> {
        self.kc.requests(&self.realm)
    }

    /// The cached files of the only login (or of the login whose file name has `account`).
    fn cached(&self, suffix: &str) -> Value {
        let path = std::fs::read_dir(self.cache_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .unwrap_or_else(|| panic!("no *{suffix} in the cache"));
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn cached_refresh_token(&self) -> String {
        self.cached(".refresh.json")["refresh_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn cached_id_token_expiry(&self) -> i64 {
        self.cached(".token.json")["id_token_expiry"]
            .as_i64()
            .unwrap()
    }

    /// Waits until the cached ID token is within the plugin's 10 s margin of its expiry, so
    /// the next call refreshes: time passing is the event, so this waits on the clock.
    fn wait_until_refresh_due(&self) {
        let due = self.cached_id_token_expiry() - 10 + 1;
        let now = chrono::Utc::now().timestamp();
        assert!(due - now < 60, "the token lives too long for this test");
        if due > now {
            std::thread::sleep(Duration::from_secs((due - now) as u64));
        }
    }

    /// Exchanges `refresh_token` at Keycloak directly: the HTTP status says whether it lives.
    fn refresh_status(&self, refresh_token: &str) -> u16 {
        self.kc
            .http()
            .post(format!("{}/protocol/openid-connect/token", self.issuer()))
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

fn new_requests(before: &[String], after: &[String]) -> Vec<String> {
    after[before.len()..].to_vec()
}

/// Case 1: first login (PKCE S256, `iss` in the authorization response), a cache hit with no
/// request to Keycloak, then silent refreshes with one request each.
fn login_hit_and_refresh(kc: &'static Keycloak, realm: &str, rotation: bool) {
    // ID tokens of 20 s: the cache hit has 10 s of validity to happen in, and the refresh
    // comes 10 s later.
    let world = KcWorld::new(
        kc,
        realm,
        json!({"accessTokenLifespan": 20, "revokeRefreshToken": rotation, "refreshTokenMaxReuse": 0}),
    );
    let kubeconfig = world.kubeconfig("kubeconfig", &world.args(&[]));
    let (username, groups) = world.whoami(&kubeconfig, "alice");
    assert_eq!(username, "alice@example.com");
    assert!(
        groups.contains(&"oidc:KubernetesAdministrators".to_string())
            && groups.contains(&"oidc:developers".to_string()),
        "{groups:?}"
    );
    let login = &world.logins(1)[0];
    assert_eq!(login["error"], Value::Null, "{login}");
    assert_eq!(login["steps"][0], "login-form", "{login}");
    assert_eq!(login["start_query"]["code_challenge_method"], "S256", "{login}");
    assert!(
        login["final_query_keys"]
            .as_array()
            .unwrap()
            .contains(&json!("iss")),
        "Keycloak sends iss (RFC 9207) in the authorization response: {login}"
    );
    assert!(
        login["text"].as_str().unwrap().contains("Signed in as alice@example.com"),
        "{login}"
    );
    let discovery: Value = kc
        .http()
        .get(format!("{}/.well-known/openid-configuration", world.issuer()))
        .send()
        .and_then(|r| r.text())
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    assert_eq!(
        discovery["authorization_response_iss_parameter_supported"],
        true
    );

    // A cache hit: nothing reaches Keycloak.
    let before = world.requests();
    world
        .kubectl(&kubeconfig, &["get", "--raw", "/api"], "alice")
        .assert_ok();
    let hit = new_requests(&before, &world.requests());
    assert!(hit.is_empty(), "a cache hit reached Keycloak: {hit:?}");

    // The token nears its expiry: one refresh request, and the newest refresh token stored.
    let first_refresh_token = world.cached_refresh_token();
    world.wait_until_refresh_due();
    let before = world.requests();
    world
        .kubectl(&kubeconfig, &["get", "--raw", "/api"], "alice")
        .assert_ok();
    assert_eq!(
        new_requests(&before, &world.requests()),
        vec![TOKEN.to_string()]
    );
    let second_refresh_token = world.cached_refresh_token();
    assert_ne!(second_refresh_token, first_refresh_token);

    // A second refresh works from the stored (newest) refresh token.
    world.wait_until_refresh_due();
    let before = world.requests();
    world
        .kubectl(&kubeconfig, &["get", "--raw", "/api"], "alice")
        .assert_ok();
    assert_eq!(
        new_requests(&before, &world.requests()),
        vec![TOKEN.to_string()]
    );
    let third_refresh_token = world.cached_refresh_token();
    assert_ne!(third_refresh_token, second_refresh_token);
    assert_eq!(world.logins(1).len(), 1, "no second browser login");

    // What rotation means at Keycloak: with it, a used refresh token is dead; without it,
    // an older one still works.
    let reused = world.refresh_status(&first_refresh_token);
    if rotation {
        assert_eq!(reused, 400, "Keycloak accepted a rotated-away refresh token");
    } else {
        assert_eq!(reused, 200);
    }
}

#[test]
fn first_login_cache_hit_and_refresh_without_rotation() {
    let kc = keycloak_or_skip!();
    login_hit_and_refresh(kc, "t-refresh-plain", false);
}

#[test]
fn first_login_cache_hit_and_refresh_with_rotation() {
    let kc = keycloak_or_skip!();
    login_hit_and_refresh(kc, "t-refresh-rotating", true);
}
