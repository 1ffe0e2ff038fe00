//! Real OpenID Providers beside Keycloak and the npm one, each started by the test from a
//! pinned release (scripts/providers builds them through the Go module proxy): Ory Hydra v2.3.0
//! (OpenID Certified) and zitadel/oidc v3.52.0's example provider (the library is OpenID
//! Certified). For each: a browser login through the plugin run by the real kubectl against the
//! HTTPS API stand-in, a cache hit with no request to the provider, a refresh with exactly one
//! token request, a new browser login once the refresh token is revoked, `kubectl oidc-login
//! setup`, and the provider's own quirks. Requests are counted at the provider: a counting
//! proxy in front of Hydra, the example provider's own request log.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::hydra::Hydra;
use crate::common::zitadel::Zitadel;
use crate::common::{
    free_port, headless, run_with_timeout, support_dir, user_info, ApiServer, Run, PLUGIN,
};
use serde_json::Value;

/// One test's surroundings for a provider started by the test: HOME, caches, the API stand-in
/// trusting that provider, kubeconfigs, and the scripted browser's log.
struct Site {
    dir: tempfile::TempDir,
    api: ApiServer,
    /// The hosts the provider's pages are served from (the scripted browser signs in there).
    provider_hosts: String,
}

impl Site {
    fn new(
        dir: tempfile::TempDir,
        issuer: &str,
        audiences: &str,
        api_env: &[(&str, String)],
    ) -> Self {
        let api = ApiServer::start_with(dir.path(), issuer, audiences, api_env);
        Site {
            dir,
            api,
            provider_hosts: String::new(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cache_dir(&self) -> PathBuf {
        self.path("cache")
    }

    /// get-token arguments: `issuer`, `client_id`, this site's cache and scripted browser.
    fn args(&self, issuer: &str, client_id: &str, extra: &[String]) -> Vec<String> {
        let mut args = vec![
            "get-token".to_string(),
            format!("--oidc-issuer-url={issuer}"),
            format!("--oidc-client-id={client_id}"),
            format!("--token-cache-dir={}", self.cache_dir().display()),
            format!(
                "--browser-command={}",
                support_dir().join("login.mjs").display()
            ),
        ];
        args.extend(extra.iter().cloned());
        args
    }

    fn kubeconfig(&self, name: &str, args: &[String]) -> PathBuf {
        crate::common::write_kubeconfig(
            &self.path(name),
            &self.api,
            "client.authentication.k8s.io/v1",
            PLUGIN,
            args,
        )
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        headless(&mut command)
            .env("HOME", self.path("home"))
            .env("KUBECACHEDIR", self.path("kubecache"))
            .env("LOGIN_LOG", self.path("login.log"))
            .env("LOGIN_PROVIDER_HOSTS", &self.provider_hosts);
        command
    }

    fn kubectl(&self, kubeconfig: &Path, args: &[&str]) -> Run {
        let mut command = self.command(&crate::common::kubectl_path());
        command
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .args(args);
        run_with_timeout(command, Duration::from_secs(120))
    }

    /// `kubectl auth whoami`: (username, groups) as the API server derived them.
    fn whoami(&self, kubeconfig: &Path) -> (String, Vec<String>) {
        let run = self.kubectl(kubeconfig, &["auth", "whoami", "-o", "json"]);
        run.assert_ok();
        user_info(&run)
    }

    /// `kubectl oidc-login ARGS`, the plugin found on PATH as kubectl users run it, with
    /// KUBECONFIG `kubeconfig` (none: a file that does not exist).
    fn kubectl_plugin(&self, args: &[String], kubeconfig: Option<&Path>) -> Run {
        let mut command = self.command(&crate::common::kubectl_path());
        let bin_dir = Path::new(PLUGIN).parent().unwrap();
        command
            .arg("oidc-login")
            .args(args)
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    bin_dir.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env(
                "KUBECONFIG",
                kubeconfig.map_or_else(|| self.path("no-kubeconfig"), Path::to_path_buf),
            );
        run_with_timeout(command, Duration::from_secs(120))
    }

    /// The scripted browser's runs so far (it reports after the plugin may have exited).
    fn wait_for_logins(&self, n: usize) -> Vec<Value> {
        let start = std::time::Instant::now();
        loop {
            let logins: Vec<Value> = std::fs::read_to_string(self.path("login.log"))
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            if logins.len() >= n || start.elapsed() > Duration::from_secs(30) {
                for login in &logins {
                    assert!(login.get("error").is_none(), "the browser failed: {login}");
                }
                return logins;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn cache_file(&self, suffix: &str) -> Option<Value> {
        let path = std::fs::read_dir(self.cache_dir())
            .ok()?
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(suffix))?;
        Some(serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap())
    }

    /// The cached refresh token (disk storage), if the login has one.
    fn cached_refresh_token(&self) -> Option<String> {
        self.cache_file(".refresh.json")
            .map(|j| j["refresh_token"].as_str().unwrap().to_string())
    }

    /// Waits until the cached ID token is within the plugin's refresh margin.
    fn wait_for_cached_token_to_expire(&self) {
        let token = self.cache_file(".token.json").expect("a cached ID token");
        let expiry = token["id_token_expiry"].as_i64().unwrap();
        let wait =
            expiry - kubectl_oidc_login::signin::MIN_VALIDITY_SECS - kubectl_oidc_login::jwt::now()
                + 1;
        if wait > 0 {
            std::thread::sleep(Duration::from_secs(wait as u64));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Ory Hydra

const HYDRA_TTL: u64 = 20;
const HYDRA_CLIENTS: &str = "kubernetes,kubernetes-basic,kubernetes-post";

/// Hydra with a public client `kubernetes` registered as kubelogin's docs say (loopback
/// redirect URIs on two fixed ports, `localhost`: Hydra matches a loopback redirect on any
/// port only for IP literals), and the site around it. The get-token arguments ask for
/// `offline_access` (Hydra issues refresh tokens only for it) unless `offline` is false.
fn hydra_site(offline: bool) -> Option<(Hydra, Site, Vec<String>)> {
    let dir = tempfile::tempdir().unwrap();
    let hydra = Hydra::start(dir.path(), HYDRA_TTL)?;
    let mut site = Site::new(
        dir,
        &hydra.issuer,
        HYDRA_CLIENTS,
        &[(
            "OIDC_JWKS_URL",
            format!("{}/.well-known/jwks.json", hydra.issuer),
        )],
    );
    // The scripted browser signs in at the proxy (Hydra's pages) and at the login app.
    site.provider_hosts = [&hydra.issuer, &hydra.app]
        .map(|u| u.trim_start_matches("http://"))
        .join(",");
    let ports = [free_port(), free_port()];
    let redirects: Vec<String> = ports
        .iter()
        .map(|p| format!("http://localhost:{p}"))
        .collect();
    for (client, method) in [
        ("kubernetes", "none"),
        ("kubernetes-basic", "client_secret_basic"),
        ("kubernetes-post", "client_secret_post"),
    ] {
        hydra.create_login_client(client, method, &redirects);
    }
    let mut extra: Vec<String> = ports
        .iter()
        .map(|p| format!("--listen-address=127.0.0.1:{p}"))
        .collect();
    if offline {
        extra.push("--oidc-extra-scope=offline_access".into());
    }
    Some((hydra, site, extra))
}

fn refreshes(requests: &[Value]) -> Vec<&Value> {
    requests
        .iter()
        .filter(|r| r["grant_type"] == "refresh_token")
        .collect()
}

#[test]
fn hydra_login_cache_hit_refresh_and_a_new_login_after_revocation() {
    let Some((hydra, site, extra)) = hydra_site(true) else {
        return;
    };
    let kubeconfig = site.kubeconfig(
        "kubeconfig",
        &site.args(&hydra.issuer, "kubernetes", &extra),
    );

    // A browser login through Hydra's login and consent (the test's app), then the API server
    // verifies Hydra's ID token: the claims the consent put into session.id_token.
    let (user, groups) = site.whoami(&kubeconfig);
    assert_eq!(user, "alice@example.com");
    assert!(
        groups.contains(&"oidc:KubernetesAdministrators".to_string()),
        "{groups:?}"
    );
    let logins = site.wait_for_logins(1);
    assert_eq!(logins.len(), 1, "{logins:?}");
    assert_eq!(logins[0]["steps"], serde_json::json!(["login", "consent"]));
    assert_eq!(logins[0]["auth_params"]["code_challenge_method"], "S256");
    let code = hydra.token_requests();
    assert_eq!(code.len(), 1, "{code:?}");
    assert_eq!(code[0]["grant_type"], "authorization_code");
    assert_eq!(code[0]["issued_refresh_token"], true, "{code:?}");

    // A cache hit: nothing reaches Hydra.
    hydra.reset_counts();
    site.kubectl(&kubeconfig, &["get", "--raw", "/api"])
        .assert_ok();
    assert_eq!(hydra.requests(), 0, "{}", hydra.counts());

    // Past the ID token's lifetime: one token request, no discovery, no JWKS, no browser.
    let first_refresh_token = site.cached_refresh_token().expect("a refresh token");
    site.wait_for_cached_token_to_expire();
    hydra.reset_counts();
    site.kubectl(&kubeconfig, &["get", "--raw", "/api"])
        .assert_ok();
    assert_eq!(hydra.count("/oauth2/token"), 1, "{}", hydra.counts());
    assert_eq!(hydra.requests(), 1, "{}", hydra.counts());
    let refresh = hydra.token_requests();
    assert_eq!(refresh[0]["grant_type"], "refresh_token");
    assert_eq!(refresh[0]["status"], 200, "{refresh:?}");
    // Hydra rotates refresh tokens: the plugin keeps the new one.
    let rotated = site.cached_refresh_token().unwrap();
    assert_ne!(rotated, first_refresh_token);
    assert_eq!(site.wait_for_logins(1).len(), 1);

    // The refresh token is revoked at Hydra (an admin, a logout elsewhere): at the next expiry
    // the plugin's refresh is refused, and it signs in again in the browser.
    hydra.revoke(&rotated, "kubernetes");
    site.wait_for_cached_token_to_expire();
    let run = site.kubectl(&kubeconfig, &["get", "--raw", "/api"]);
    run.assert_ok();
    assert!(run.stderr.contains("signing in again"), "{}", run.stderr);
    assert_eq!(site.wait_for_logins(2).len(), 2);
    assert_ne!(site.cached_refresh_token().unwrap(), rotated);
}

/// Hydra issues a refresh token only when `offline_access` (or `offline`) is granted, as Dex
/// does: without --oidc-extra-scope=offline_access every expiry is a browser login.
/// https://www.ory.sh/docs/oauth2-oidc/refresh-token-grant
#[test]
fn hydra_without_offline_access_issues_no_refresh_token() {
    let Some((hydra, site, extra)) = hydra_site(false) else {
        return;
    };
    let kubeconfig = site.kubeconfig(
        "kubeconfig",
        &site.args(&hydra.issuer, "kubernetes", &extra),
    );
    site.kubectl(&kubeconfig, &["get", "--raw", "/api"])
        .assert_ok();
    let code = hydra.token_requests();
    assert_eq!(code[0]["issued_refresh_token"], false, "{code:?}");
    assert_eq!(site.cached_refresh_token(), None);

    site.wait_for_cached_token_to_expire();
    hydra.reset_counts();
    let run = site.kubectl(&kubeconfig, &["get", "--raw", "/api"]);
    run.assert_ok();
    // No refresh to try: straight to the browser, without a failed request first.
    assert_eq!(site.wait_for_logins(2).len(), 2);
    assert!(
        refreshes(&hydra.token_requests()).is_empty(),
        "{:?}",
        hydra.token_requests()
    );
}

/// Hydra rotates refresh tokens without a grace period and treats a rotated one presented
/// again as theft: it revokes the whole chain, the newest token included.
/// https://www.ory.sh/docs/hydra/guides/oauth2-token-refresh (graceful refresh token rotation)
#[test]
fn hydra_revokes_the_chain_when_a_rotated_refresh_token_comes_back_and_the_plugin_signs_in_again() {
    let Some((hydra, site, extra)) = hydra_site(true) else {
        return;
    };
    let kubeconfig = site.kubeconfig(
        "kubeconfig",
        &site.args(&hydra.issuer, "kubernetes", &extra),
    );
    site.kubectl(&kubeconfig, &["get", "--raw", "/api"])
        .assert_ok();
    let stolen = site.cached_refresh_token().unwrap();
    site.wait_for_cached_token_to_expire();
    site.kubectl(&kubeconfig, &["get", "--raw", "/api"])
        .assert_ok();
    let current = site.cached_refresh_token().unwrap();
    assert_ne!(current, stolen);

    // Someone replays the old token: refused, and the chain is revoked.
    let (status, body) = hydra.present_refresh_token(&stolen, "kubernetes");
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");

    // The plugin's own (newest) token died with the chain: its refresh is refused once, and
    // the user signs in again in the browser, with one warning line and no error.
    site.wait_for_cached_token_to_expire();
    hydra.reset_counts();
    let run = site.kubectl(&kubeconfig, &["get", "--raw", "/api"]);
    run.assert_ok();
    assert!(run.stderr.contains("signing in again"), "{}", run.stderr);
    let requests = hydra.token_requests();
    let refused = refreshes(&requests);
    assert_eq!(refused.len(), 1, "{requests:?}");
    assert_eq!(refused[0]["status"], 400, "{requests:?}");
    assert_eq!(site.wait_for_logins(2).len(), 2);
}

/// Many kubectl calls at once on an expired token (a shell loop, k9s, helm's parallel
/// requests): Hydra would revoke the whole chain if one refresh token were presented twice,
/// so exactly one refresh must reach it and every call must succeed with the rotated login.
#[test]
fn hydra_concurrent_kubectl_calls_on_an_expired_token_present_the_refresh_token_once() {
    const CALLS: usize = 8;
    let Some((hydra, site, extra)) = hydra_site(true) else {
        return;
    };
    let kubeconfig = site.kubeconfig(
        "kubeconfig",
        &site.args(&hydra.issuer, "kubernetes", &extra),
    );
    site.kubectl(&kubeconfig, &["get", "--raw", "/api"])
        .assert_ok();
    site.wait_for_cached_token_to_expire();
    hydra.reset_counts();

    let site = &site;
    let kubeconfig = &kubeconfig;
    let runs: Vec<Run> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CALLS)
            .map(|_| {
                scope.spawn(move || site.kubectl(kubeconfig, &["auth", "whoami", "-o", "json"]))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for run in &runs {
        run.assert_ok();
        assert_eq!(user_info(run).0, "alice@example.com");
    }
    let requests = hydra.token_requests();
    let presented = refreshes(&requests);
    eprintln!(
        "hydra: {CALLS} concurrent kubectl calls on an expired token sent {} refresh request(s)",
        presented.len()
    );
    assert_eq!(presented.len(), 1, "{requests:?}");
    assert_eq!(presented[0]["status"], 200, "{requests:?}");
    // Nothing else: no browser, no code exchange, no second refresh.
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(site.wait_for_logins(1).len(), 1);
    // The chain is alive: the next expiry refreshes again, with the rotated token.
    let mut hashes: Vec<&str> = requests
        .iter()
        .filter_map(|r| r["refresh_token_sha256"].as_str())
        .collect();
    site.wait_for_cached_token_to_expire();
    site.kubectl(kubeconfig, &["get", "--raw", "/api"])
        .assert_ok();
    let after = hydra.token_requests();
    let again = refreshes(&after);
    assert_eq!(again.len(), 2, "{after:?}");
    assert_eq!(again[1]["status"], 200, "{after:?}");
    hashes.push(again[1]["refresh_token_sha256"].as_str().unwrap());
    assert_ne!(
        hashes[0], hashes[1],
        "one refresh token presented twice: {after:?}"
    );
}

/// A client registered with `method` logs in and refreshes; every token request authenticates
/// the client as registered, and the refresh is one request (the style is not rediscovered
/// by a failed request each time).
fn hydra_client_authentication(client_id: &str, method: &str) {
    let Some((hydra, site, mut extra)) = hydra_site(true) else {
        return;
    };
    if method != "none" {
        extra.push(format!(
            "--oidc-client-secret={}",
            Hydra::secret_of(client_id)
        ));
    }
    let kubeconfig = site.kubeconfig("kubeconfig", &site.args(&hydra.issuer, client_id, &extra));
    let (user, _) = site.whoami(&kubeconfig);
    assert_eq!(user, "alice@example.com");
    let login = hydra.token_requests();
    let accepted: Vec<&Value> = login.iter().filter(|r| r["status"] == 200).collect();
    assert_eq!(accepted.len(), 1, "{login:?}");
    assert_eq!(accepted[0]["client_auth"], method, "{login:?}");

    site.wait_for_cached_token_to_expire();
    hydra.reset_counts();
    site.kubectl(&kubeconfig, &["get", "--raw", "/api"])
        .assert_ok();
    let refresh = hydra.token_requests();
    assert_eq!(refresh.len(), 1, "{refresh:?}");
    assert_eq!(refresh[0]["grant_type"], "refresh_token");
    assert_eq!(refresh[0]["client_auth"], method, "{refresh:?}");
    assert_eq!(refresh[0]["status"], 200, "{refresh:?}");
    assert_eq!(site.wait_for_logins(1).len(), 1);
}

#[test]
fn hydra_public_client_none() {
    hydra_client_authentication("kubernetes", "none");
}

#[test]
fn hydra_confidential_client_client_secret_basic() {
    hydra_client_authentication("kubernetes-basic", "client_secret_basic");
}

/// Hydra refuses HTTP Basic for a client registered with `client_secret_post` (401
/// invalid_client) though its discovery lists both methods; kubelogin (Go's oauth2) retries with
/// the secret in the body and remembers which style worked.
#[test]
fn hydra_confidential_client_client_secret_post() {
    hydra_client_authentication("kubernetes-post", "client_secret_post");
}

#[test]
fn hydra_setup_through_kubectl() {
    let Some((hydra, site, extra)) = hydra_site(true) else {
        return;
    };
    let mut args = site.args(&hydra.issuer, "kubernetes", &extra);
    args[0] = "setup".into();
    let run = site.kubectl_plugin(&args, None);
    run.assert_ok();
    let report = &run.stdout;
    assert!(
        report.contains("email:    alice@example.com (verified)"),
        "{report}"
    );
    assert!(
        report.contains("groups:   KubernetesAdministrators, developers"),
        "{report}"
    );
    assert!(
        report.contains(&format!("--oidc-issuer-url={}", hydra.issuer)),
        "{report}"
    );
    assert!(report.contains("--oidc-groups-claim=groups"), "{report}");
    let diagnostics = &report[report.find("## 5. Diagnostics").expect(report)..];
    assert!(!diagnostics.contains("error"), "{diagnostics}");
    assert_eq!(site.wait_for_logins(1).len(), 1);
}

// ---------------------------------------------------------------------------------------------
// zitadel/oidc's example OpenID Provider

/// The example provider with its native client accepting loopback redirects on any port, and
/// an API server that maps `sub` (the example's ID tokens carry nothing else) to the user.
fn zitadel_site() -> Option<(Zitadel, Site)> {
    let dir = tempfile::tempdir().unwrap();
    let zitadel = Zitadel::start(dir.path(), "http://localhost:8000")?;
    let mut site = Site::new(
        dir,
        &zitadel.issuer,
        "native",
        &[
            ("OIDC_JWKS_URL", format!("{}keys", zitadel.issuer)),
            ("OIDC_USERNAME_CLAIM", "sub".into()),
        ],
    );
    site.provider_hosts = format!("localhost:{}", zitadel.port);
    Some((zitadel, site))
}

fn zitadel_args(zitadel: &Zitadel, site: &Site, extra: &[&str]) -> Vec<String> {
    let mut all = vec!["--listen-address=127.0.0.1:0".to_string()];
    all.extend(extra.iter().map(|s| s.to_string()));
    site.args(&zitadel.issuer, "native", &all)
}

#[test]
fn zitadel_login_cache_hit_refresh_and_a_new_login_after_revocation() {
    let Some((zitadel, site)) = zitadel_site() else {
        return;
    };
    let args = zitadel_args(&zitadel, &site, &["--oidc-extra-scope=offline_access"]);
    let kubeconfig = site.kubeconfig("kubeconfig", &args);
    let (user, _) = site.whoami(&kubeconfig);
    assert_eq!(user, "alice");
    let logins = site.wait_for_logins(1);
    assert_eq!(logins[0]["auth_params"]["code_challenge_method"], "S256");
    let first_refresh_token = site.cached_refresh_token().expect("a refresh token");

    zitadel.reset_counts();
    site.kubectl(&kubeconfig, &["get", "--raw", "/api"])
        .assert_ok();
    assert_eq!(zitadel.requests(), Vec::<String>::new());

    // The example's ID tokens live one hour (fixed in its client type), so the refresh is
    // asked for with --force-refresh: one token request, nothing else.
    let mut forced = args.clone();
    forced.push("--force-refresh".into());
    let forced = site.kubeconfig("kubeconfig-force-refresh", &forced);
    zitadel.reset_counts();
    site.kubectl(&forced, &["get", "--raw", "/api"]).assert_ok();
    assert_eq!(zitadel.requests(), vec!["/oauth/token".to_string()]);
    // The example rotates refresh tokens too.
    let rotated = site.cached_refresh_token().unwrap();
    assert_ne!(rotated, first_refresh_token);
    assert_eq!(site.wait_for_logins(1).len(), 1);

    assert_eq!(zitadel.revoke(&rotated), 200);
    let run = site.kubectl(&forced, &["auth", "whoami", "-o", "json"]);
    run.assert_ok();
    assert_eq!(user_info(&run).0, "alice");
    assert!(run.stderr.contains("signing in again"), "{}", run.stderr);
    assert_eq!(site.wait_for_logins(2).len(), 2);
}

/// Like Hydra and Dex, the example (zitadel's op package) issues a refresh token only for the
/// `offline_access` scope: https://zitadel.com/docs/apis/openidoauth/scopes
#[test]
fn zitadel_without_offline_access_issues_no_refresh_token() {
    let Some((zitadel, site)) = zitadel_site() else {
        return;
    };
    let args = zitadel_args(&zitadel, &site, &["--force-refresh"]);
    let kubeconfig = site.kubeconfig("kubeconfig", &args);
    site.kubectl(&kubeconfig, &["get", "--raw", "/api"])
        .assert_ok();
    assert_eq!(site.cached_refresh_token(), None);
    zitadel.reset_counts();
    site.kubectl(&kubeconfig, &["get", "--raw", "/api"])
        .assert_ok();
    assert_eq!(site.wait_for_logins(2).len(), 2);
}

/// Its issuer ends with a slash (`http://localhost:PORT/`): the flag must say exactly that,
/// since the ID token's `iss` and the API server compare it as a string. Without the slash the
/// plugin stops before the browser, naming the issuer to use.
#[test]
fn zitadel_issuer_with_its_trailing_slash() {
    let Some((zitadel, site)) = zitadel_site() else {
        return;
    };
    let without = zitadel.issuer.trim_end_matches('/').to_string();
    let mut args = zitadel_args(&zitadel, &site, &[]);
    args[1] = format!("--oidc-issuer-url={without}");
    let kubeconfig = site.kubeconfig("kubeconfig", &args);
    let run = site.kubectl(&kubeconfig, &["get", "--raw", "/api"]);
    run.assert_failed();
    assert!(run.stderr.contains(&zitadel.issuer), "{}", run.stderr);
    assert_eq!(site.wait_for_logins(0).len(), 0);
}

#[test]
fn zitadel_setup_through_kubectl() {
    let Some((zitadel, site)) = zitadel_site() else {
        return;
    };
    let args = zitadel_args(&zitadel, &site, &["--oidc-extra-scope=offline_access"]);
    let mut setup = args.clone();
    setup[0] = "setup".into();
    let run = site.kubectl_plugin(&setup, None);
    run.assert_ok();
    let report = &run.stdout;
    assert!(
        report.contains(&format!("--oidc-issuer-url={}", zitadel.issuer)),
        "{report}"
    );
    // The example's ID token carries `sub` only: that is the username claim to map.
    assert!(report.contains("--oidc-username-claim=sub"), "{report}");
    let diagnostics = &report[report.find("## 5. Diagnostics").expect(report)..];
    assert!(!diagnostics.contains("error"), "{diagnostics}");
    // The trailing slash is the provider's own issuer (discovery says so): nothing to fix.
    assert!(!diagnostics.contains("ends with a slash"), "{diagnostics}");
    assert_eq!(site.wait_for_logins(1).len(), 1);

    // doctor, on the kubeconfig a user would have, agrees.
    let kubeconfig = site.kubeconfig("kubeconfig", &args);
    let run = site.kubectl_plugin(&["doctor".into()], Some(&kubeconfig));
    let text = format!("{}{}", run.stdout, run.stderr);
    assert!(text.contains("issuer matches exactly"), "{text}");
    assert!(!text.contains("ends with a slash"), "{text}");
}
