//! The single sign-on chain on the real server: Keycloak (the release scripts/keycloak pins,
//! over HTTPS with a private CA passed by --certificate-authority) federating a real OpenLDAP,
//! the real kubectl, headless Chromium on Keycloak's own pages, and the API server stand-in
//! verifying every token against Keycloak's keys. Each test gets its own realm made from
//! examples/keycloak-realm-ldap.json (and its own slapd), so realm settings one test changes
//! never reach another. When Keycloak cannot be had here, each test says
//! "not built here: keycloak (...)" and asserts nothing; test.sh lists those lines.
#![cfg(unix)]

// One sign-in for many clusters by token exchange (tests/suite/keycloak/exchange.rs), on this
// binary's Keycloak.
#[path = "keycloak/exchange.rs"]
mod exchange;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::keycloak::{keycloak_or_skip, Keycloak};
use crate::common::ldap::{self, Ldap};
use crate::common::{run_with_timeout, support_dir, ApiServer, Run, PLUGIN};

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
        kc.create_realm(
            "keycloak-realm-ldap.json",
            realm,
            Some(&ldap.url),
            overrides,
        );
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
        crate::common::write_kubeconfig(
            &self.path(name),
            &self.api,
            "client.authentication.k8s.io/v1",
            PLUGIN,
            args,
        )
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

    fn kubectl(&self, kubeconfig: &std::path::Path, args: &[&str], user: &str) -> Run {
        self.kubectl_env(kubeconfig, args, user, &[])
    }

    fn kubectl_env(
        &self,
        kubeconfig: &std::path::Path,
        args: &[&str],
        user: &str,
        extra_env: &[(&str, &str)],
    ) -> Run {
        let mut command = Command::new(crate::common::kubectl_path());
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
    fn whoami(&self, kubeconfig: &std::path::Path, user: &str) -> (String, Vec<String>) {
        let run = self.kubectl(kubeconfig, &["auth", "whoami", "-o", "json"], user);
        assert!(
            run.ok(),
            "whoami failed: {}\nbrowser: {:?}\nAPI server: {}",
            run.stderr,
            std::fs::read_to_string(self.login_log()).unwrap_or_default(),
            std::fs::read_to_string(self.dir.path().join("apiserver.log")).unwrap_or_default()
        );
        crate::common::user_info(&run)
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
    assert_eq!(
        login["start_query"]["code_challenge_method"], "S256",
        "{login}"
    );
    assert!(
        login["final_query_keys"]
            .as_array()
            .unwrap()
            .contains(&json!("iss")),
        "Keycloak sends iss (RFC 9207) in the authorization response: {login}"
    );
    assert!(
        login["text"]
            .as_str()
            .unwrap()
            .contains("Signed in as alice@example.com"),
        "{login}"
    );
    let discovery: Value = kc
        .http()
        .get(format!(
            "{}/.well-known/openid-configuration",
            world.issuer()
        ))
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
        assert_eq!(
            reused, 400,
            "Keycloak accepted a rotated-away refresh token"
        );
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

/// The same flags under another subcommand (login, logout, setup share get-token's).
fn with_command(mut args: Vec<String>, command: &str) -> Vec<String> {
    args[0] = command.to_string();
    args
}

fn count(requests: &[String], what: &str) -> usize {
    requests.iter().filter(|r| r.as_str() == what).count()
}

/// The example realm exactly as Keycloak's --import-realm made it, federating the directory
/// started with Keycloak: a login on the registered default port (8000, else 18000) gets the
/// LDAP groups into the token.
#[test]
fn the_imported_ldap_example_realm_signs_in_an_ldap_user_with_groups() {
    let kc = keycloak_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let api = ApiServer::start(dir.path(), &kc.issuer("platform-ldap"), Some(&kc.ca));
    let world = KcWorld {
        kc,
        ldap: Ldap::start(dir.path()),
        dir,
        realm: "platform-ldap".into(),
        api,
        port: 8000,
    };
    let mut args = world.args(&[]);
    args.retain(|a| !a.starts_with("--listen-address"));
    let kubeconfig = world.kubeconfig("kubeconfig", &args);
    let (username, groups) = world.whoami(&kubeconfig, "carol");
    assert_eq!(username, "carol@example.com");
    assert!(
        groups.contains(&"oidc:developers".to_string()),
        "{groups:?}"
    );
    assert!(!groups.contains(&"oidc:KubernetesAdministrators".to_string()));
}

/// The other example, examples/keycloak-realm.json as imported: its local user must set a new
/// password at the first login (the example's password is temporary), then is signed in.
#[test]
fn the_imported_plain_example_realm_signs_in_its_user_after_a_password_change() {
    let kc = keycloak_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let api = ApiServer::start(dir.path(), &kc.issuer("platform"), Some(&kc.ca));
    let world = KcWorld {
        kc,
        ldap: Ldap::start(dir.path()),
        dir,
        realm: "platform".into(),
        api,
        port: 8000,
    };
    let mut args = world.args(&[]);
    args.retain(|a| !a.starts_with("--listen-address"));
    let kubeconfig = world.kubeconfig("kubeconfig", &args);
    let run = world.kubectl_env(
        &kubeconfig,
        &["auth", "whoami", "-o", "json"],
        "alice",
        &[
            ("KC_PASSWORD", "change-me"),
            ("KC_NEW_PASSWORD", "a-new-password-1"),
        ],
    );
    assert!(run.ok(), "{}\n{:?}", run.stderr, world.logins(1));
    let info = &run.json()["status"]["userInfo"];
    assert_eq!(info["username"], "alice@example.com");
    assert!(
        info["groups"]
            .as_array()
            .unwrap()
            .contains(&json!("oidc:KubernetesAdministrators")),
        "{info}"
    );
    let login = &world.logins(1)[0];
    assert_eq!(login["steps"][0], "login-form", "{login}");
    assert_eq!(login["steps"][1], "new-password", "{login}");
}

/// Case 2: the Keycloak session ends (SSO Session Idle passes): the next call tries the
/// refresh once, then falls back to one browser login, which shows the form again.
#[test]
fn an_ended_keycloak_session_falls_back_to_one_browser_login() {
    let kc = keycloak_or_skip!();
    let world = KcWorld::new(
        kc,
        "t-session-idle",
        json!({"accessTokenLifespan": 15, "ssoSessionIdleTimeout": 15}),
    );
    let kubeconfig = world.kubeconfig("kubeconfig", &world.args(&[]));
    world.whoami(&kubeconfig, "alice");
    // Past the idle timeout: the refresh token (whose expiry is the idle timeout) is dead.
    let expiry = world.cached_id_token_expiry();
    let now = chrono::Utc::now().timestamp();
    std::thread::sleep(Duration::from_secs((expiry - now + 2).max(0) as u64));
    let before = world.requests();
    let run = world.kubectl(&kubeconfig, &["auth", "whoami", "-o", "json"], "alice");
    assert!(run.ok(), "{}", run.stderr);
    assert_eq!(
        run.stderr
            .matches("no longer accepts the cached login")
            .count(),
        1,
        "{}",
        run.stderr
    );
    let logins = world.logins(2);
    assert_eq!(logins.len(), 2, "{logins:?}");
    assert_eq!(logins[1]["steps"][0], "login-form", "{logins:?}");
    let after = new_requests(&before, &world.requests());
    // The refused refresh and the code exchange: no loop.
    assert_eq!(count(&after, TOKEN), 2, "{after:?}");
}

/// Case 3: `logout` revokes the refresh token and ends the Keycloak session (end-session with
/// id_token_hint, back to the registered loopback redirect), so the next login shows the form.
#[test]
fn logout_ends_the_keycloak_session_so_the_next_login_shows_the_form() {
    let kc = keycloak_or_skip!();
    let world = KcWorld::new(kc, "t-logout", json!({}));
    let kubeconfig = world.kubeconfig("kubeconfig", &world.args(&[]));
    world.whoami(&kubeconfig, "alice");
    // While the session lives, a new login (the local cache gone) passes without the form.
    std::fs::remove_dir_all(world.cache_dir()).unwrap();
    world.whoami(&kubeconfig, "alice");
    let logins = world.logins(2);
    assert_eq!(logins[1]["error"], Value::Null, "{logins:?}");
    assert!(
        !logins[1]["steps"]
            .as_array()
            .unwrap()
            .contains(&json!("login-form")),
        "{logins:?}"
    );
    assert!(!kc.sessions(&world.realm, "alice").is_empty());

    let run = world.plugin(&with_command(world.args(&[]), "logout"), "alice");
    eprintln!("$ logout\n{}", run.stderr);
    assert!(run.ok(), "{}", run.stderr);
    assert!(
        run.stderr.contains("Signed out at the provider"),
        "{}",
        run.stderr
    );
    let logout = &world.logins(3)[2];
    assert_eq!(logout["error"], Value::Null, "{logout}");
    assert!(
        kc.sessions(&world.realm, "alice").is_empty(),
        "session left"
    );

    world.whoami(&kubeconfig, "alice");
    let login = &world.logins(4)[3];
    assert_eq!(login["steps"][0], "login-form", "{login}");
}

/// Case 4: the device authorization grant, its verification page driven in Chromium.
#[test]
fn the_device_grant_signs_in_through_keycloaks_verification_page() {
    let kc = keycloak_or_skip!();
    let world = KcWorld::new(kc, "t-device", json!({}));
    kc.update_client(
        &world.realm,
        "kubernetes",
        json!({"attributes": {"oauth2.device.authorization.grant.enabled": "true"}}),
    );
    let kubeconfig = world.kubeconfig("kubeconfig", &world.args(&["--grant-type=device-code"]));
    let run = world.kubectl(&kubeconfig, &["auth", "whoami", "-o", "json"], "bob");
    assert!(run.ok(), "{}\n{:?}", run.stderr, world.logins(1));
    assert_eq!(
        run.json()["status"]["userInfo"]["username"],
        "bob@example.com"
    );
    assert!(run.stderr.contains("enter the code"), "{}", run.stderr);
    let login = &world.logins(1)[0];
    assert!(
        login["start_path"].as_str().unwrap().ends_with("/device"),
        "{login}"
    );
    assert!(
        login["steps"]
            .as_array()
            .unwrap()
            .contains(&json!("login-form")),
        "{login}"
    );
    let requests = world.requests();
    assert_eq!(
        count(&requests, "POST /protocol/openid-connect/auth/device"),
        1,
        "{requests:?}"
    );
}

fn set_ldap_cache_lifespan(kc: &Keycloak, realm: &str, millis: u64) {
    let providers = kc.admin(
        "GET",
        &format!("/{realm}/components?type=org.keycloak.storage.UserStorageProvider"),
        None,
    );
    let mut ldap = providers[0].clone();
    ldap["config"]["cachePolicy"] = json!(["MAX_LIFESPAN"]);
    ldap["config"]["maxLifespan"] = json!([millis.to_string()]);
    let id = ldap["id"].as_str().unwrap().to_string();
    kc.admin("PUT", &format!("/{realm}/components/{id}"), Some(&ldap));
}

/// Case 5: the promise end to end: removed from KubernetesAdministrators in LDAP, the user's
/// next refreshed token lacks the group, so the API server sees the change within one ID
/// token lifetime (with the federation's cache lifespan shortened to a second here).
#[test]
fn an_ldap_user_removed_from_a_group_loses_it_at_the_next_refresh() {
    let kc = keycloak_or_skip!();
    let world = KcWorld::new(kc, "t-ldap-group", json!({"accessTokenLifespan": 20}));
    set_ldap_cache_lifespan(kc, &world.realm, 1000);
    let kubeconfig = world.kubeconfig("kubeconfig", &world.args(&[]));
    let (_, groups) = world.whoami(&kubeconfig, "alice");
    assert!(groups.contains(&"oidc:KubernetesAdministrators".to_string()));

    world
        .ldap
        .remove_from_group("alice", "KubernetesAdministrators");
    assert!(!world
        .ldap
        .members("KubernetesAdministrators")
        .iter()
        .any(|m| m.starts_with("uid=alice,")));
    // Until the ID token expires, the API server still sees the old groups (the token says so).
    let (_, groups) = world.whoami(&kubeconfig, "alice");
    assert!(groups.contains(&"oidc:KubernetesAdministrators".to_string()));

    world.wait_until_refresh_due();
    let before = world.requests();
    let (_, groups) = world.whoami(&kubeconfig, "alice");
    assert_eq!(
        groups,
        vec![
            "oidc:developers".to_string(),
            "system:authenticated".to_string()
        ]
    );
    assert_eq!(
        new_requests(&before, &world.requests()),
        vec![TOKEN.to_string()]
    );
}

/// Case 5: a user disabled in Keycloak gets one clear error naming the account and what to do,
/// and nothing retries.
#[test]
fn a_user_disabled_in_keycloak_gets_one_clear_error_and_no_retries() {
    let kc = keycloak_or_skip!();
    let world = KcWorld::new(kc, "t-disabled", json!({"accessTokenLifespan": 20}));
    let kubeconfig = world.kubeconfig("kubeconfig", &world.args(&[]));
    world.whoami(&kubeconfig, "bob");
    kc.set_user_enabled(&world.realm, "bob", false);
    world.wait_until_refresh_due();
    let before = world.requests();
    let run = world.kubectl(&kubeconfig, &["get", "--raw", "/api"], "bob");
    run.assert_failed();
    let after = new_requests(&before, &world.requests());
    eprintln!("stderr: {}\nrequests: {after:?}", run.stderr);
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert!(!errors.is_empty(), "{}", run.stderr);
    assert!(
        errors
            .iter()
            .all(|e| e.contains("disabled") && e.contains("administrator")),
        "{}",
        run.stderr
    );
    assert!(count(&after, TOKEN) <= 2, "{after:?}");
    assert_eq!(
        world.logins(1).len(),
        1,
        "no browser for a disabled account"
    );
}

/// Case 6: two accounts at one Keycloak: login_hint and prompt=login make the second account's
/// login show the form despite the first's session; each sees its own groups.
#[test]
fn two_accounts_at_one_keycloak_each_see_their_own_groups() {
    let kc = keycloak_or_skip!();
    let world = KcWorld::new(kc, "t-accounts", json!({}));
    let alice = world.kubeconfig("alice", &world.args(&["--account=alice"]));
    let bob = world.kubeconfig("bob", &world.args(&["--account=bob"]));
    let (user, groups) = world.whoami(&alice, "alice");
    assert_eq!(user, "alice@example.com");
    assert!(groups.contains(&"oidc:KubernetesAdministrators".to_string()));
    let (user, groups) = world.whoami(&bob, "bob");
    assert_eq!(user, "bob@example.com");
    assert_eq!(
        groups,
        vec![
            "oidc:developers".to_string(),
            "system:authenticated".to_string()
        ]
    );
    let logins = world.logins(2);
    assert_eq!(logins[1]["start_query"]["login_hint"], "bob", "{logins:?}");
    assert_eq!(logins[1]["start_query"]["prompt"], "login", "{logins:?}");
    // Keycloak ignores login_hint while alice's session lives and asks for her password again;
    // bob presses "Restart login" and gets the form.
    assert_eq!(logins[1]["steps"][0], "re-authenticate", "{logins:?}");
    assert_eq!(logins[1]["steps"][1], "login-form", "{logins:?}");
    let before = world.requests();
    assert_eq!(world.whoami(&alice, "alice").0, "alice@example.com");
    assert!(new_requests(&before, &world.requests()).is_empty());
}

/// Case 7: `setup` against real misconfigured clients names each fault with the Keycloak
/// setting that fixes it.
#[test]
fn setup_names_the_keycloak_setting_for_each_misconfigured_client() {
    let kc = keycloak_or_skip!();
    let world = KcWorld::new(kc, "t-setup", json!({}));
    let redirect = format!("http://localhost:{}", world.port);
    let base = json!({
        "publicClient": true, "standardFlowEnabled": true, "directAccessGrantsEnabled": false,
        "redirectUris": [redirect], "attributes": {"pkce.code.challenge.method": "S256"},
        "defaultClientScopes": ["basic", "profile", "email", "groups"],
    });
    let client = |id: &str, changes: Value| {
        let mut c = base.clone();
        c["clientId"] = json!(id);
        for (k, v) in changes.as_object().unwrap() {
            c[k] = v.clone();
        }
        kc.admin("POST", &format!("/{}/clients", world.realm), Some(&c));
    };
    client("no-pkce", json!({"attributes": {}}));
    client(
        "no-redirect",
        json!({"redirectUris": ["https://app.example.com/callback"]}),
    );
    client(
        "no-groups",
        json!({"defaultClientScopes": ["basic", "profile", "email"]}),
    );
    client(
        "confidential",
        json!({"publicClient": false, "clientAuthenticatorType": "client-secret", "secret": "s3cret"}),
    );
    let cases = [
        (
            "no-pkce",
            "PKCE is not enforced",
            "Proof Key for Code Exchange",
        ),
        (
            "no-redirect",
            "is not allowed for client",
            "Valid redirect URIs",
        ),
        ("no-groups", "no groups claim", "Group Membership"),
        (
            "confidential",
            "Invalid client credentials",
            "--oidc-client-secret",
        ),
    ];
    for (id, finding, setting) in cases {
        let mut args = with_command(world.args(&[]), "setup");
        args.retain(|a| !a.starts_with("--oidc-client-id"));
        args.push(format!("--oidc-client-id={id}"));
        let run = world.plugin(&args, "alice");
        let out = format!("{}{}", run.stdout, run.stderr);
        eprintln!("$ setup --oidc-client-id={id}\n{out}");
        assert!(out.contains(finding), "{id}: no {finding:?} in\n{out}");
        assert!(out.contains(setting), "{id}: no {setting:?} in\n{out}");
    }
}

/// Case 7: `doctor` finds nothing wrong with the healthy chain.
#[test]
fn doctor_is_all_ok_on_the_healthy_chain() {
    let kc = keycloak_or_skip!();
    let world = KcWorld::new(kc, "t-doctor", json!({}));
    let kubeconfig = world.kubeconfig("kubeconfig", &world.args(&[]));
    world.whoami(&kubeconfig, "alice");
    let mut command = Command::new(PLUGIN);
    command.arg("doctor");
    world.prepare(
        &mut command,
        "alice",
        &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
    );
    let run = run_with_timeout(command, Duration::from_secs(120));
    let out = format!("{}{}", run.stdout, run.stderr);
    eprintln!("$ doctor\n{out}");
    assert!(run.ok(), "{out}");
    let findings: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("          "))
        .collect();
    assert!(findings.len() >= 5, "{out}");
    assert!(
        findings.iter().all(|l| l.trim_start().starts_with("ok")),
        "{out}"
    );
}

/// An unreachable Keycloak at login: one error naming the host, non-zero exit.
#[test]
fn an_unreachable_keycloak_at_login_is_named() {
    let kc = keycloak_or_skip!();
    let port = ldap::free_port();
    let world = KcWorld::new(kc, "t-unreachable", json!({}));
    let mut args = world.args(&[]);
    args.retain(|a| !a.starts_with("--oidc-issuer-url"));
    args.push(format!(
        "--oidc-issuer-url=https://127.0.0.1:{port}/realms/t-unreachable"
    ));
    let run = world.plugin(&args, "alice");
    run.assert_failed();
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    assert!(
        errors[0].contains(&format!("127.0.0.1:{port}")),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
    assert!(world.logins(0).is_empty());
}

/// A realm renamed under a cached login: the error names the issuer and what to check.
#[test]
fn a_renamed_realm_is_named_in_the_error() {
    let kc = keycloak_or_skip!();
    let world = KcWorld::new(kc, "t-rename", json!({"accessTokenLifespan": 20}));
    let kubeconfig = world.kubeconfig("kubeconfig", &world.args(&[]));
    world.whoami(&kubeconfig, "alice");
    kc.update_realm("t-rename", json!({"realm": "t-renamed"}));
    world.wait_until_refresh_due();
    let run = world.plugin(&world.args(&[]), "alice");
    run.assert_failed();
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    eprintln!("{}", run.stderr);
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    assert!(errors[0].contains(&world.issuer()), "{}", run.stderr);
    assert!(errors[0].contains("--oidc-issuer-url"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
}
