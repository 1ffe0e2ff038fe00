//! A provider whose access tokens name the user differently (issue 42): Microsoft Entra ID's
//! `sub` is pairwise (one value per user and application), so the access token for the
//! cluster's API app names the user by another `sub` than the login's ID token; `oid` and
//! `tid` stay the same. With --oidc-use-access-token, a check on `sub` alone refused every
//! refresh. Entra cannot run here: these tests use a STAND-IN (tests/suite/common/entra.rs,
//! tests/support/entra-standin.mjs) that issues tokens as Entra's documents describe, under
//! Entra's issuer name, through the real kubectl and the HTTPS API server stand-in.
#![cfg(target_os = "linux")]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common::entra::{EntraStandIn, HOST, RESOURCE};
use crate::common::{
    headless, jwt_claims, run_with_timeout, support_dir, user_info, write_kubeconfig, ApiServer,
    Run, PLUGIN,
};

const TTL: u64 = 15;

struct Site {
    dir: tempfile::TempDir,
    entra: EntraStandIn,
    api: ApiServer,
    kubeconfig: PathBuf,
}

impl Site {
    /// The stand-in (with `envs`), an API server trusting its v1.0 access tokens for the API
    /// app, and a kubeconfig whose user signs in as the providers page says for Entra.
    fn new(envs: &[(&str, String)]) -> Option<Self> {
        eprintln!(
            "pairwise: a STAND-IN for Microsoft Entra ID (npm oidc-provider under Entra's issuer name); Entra itself cannot run here"
        );
        let dir = tempfile::tempdir().unwrap();
        let entra = EntraStandIn::start(dir.path(), TTL, envs)?;
        let api = ApiServer::start_with(
            dir.path(),
            &entra.access_issuer,
            RESOURCE,
            &[
                ("OIDC_JWKS_URL", entra.jwks.clone()),
                ("NODE_EXTRA_CA_CERTS", entra.ca.display().to_string()),
                ("OIDC_USERNAME_CLAIM", "upn".into()),
            ],
        );
        let args: Vec<String> = vec![
            "get-token".into(),
            format!("--oidc-issuer-url={}", entra.issuer),
            "--oidc-client-id=kubernetes".into(),
            "--oidc-use-access-token".into(),
            "--oidc-extra-scope=profile".into(),
            format!("--certificate-authority={}", entra.ca.display()),
            format!("--token-cache-dir={}", dir.path().join("cache").display()),
            "--token-cache-storage=disk".into(),
            "--listen-address=127.0.0.1:0".into(),
            format!(
                "--browser-command={}",
                support_dir().join("login.mjs").display()
            ),
        ];
        let kubeconfig = write_kubeconfig(
            &dir.path().join("kubeconfig"),
            &api,
            "client.authentication.k8s.io/v1",
            PLUGIN,
            &args,
        );
        Some(Site {
            dir,
            entra,
            api,
            kubeconfig,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn kubectl(&self, args: &[&str]) -> Run {
        let mut command: Command = self.entra.command(&crate::common::kubectl_path_absolute());
        headless(&mut command)
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .args(args)
            .env("HOME", self.path("home"))
            .env("KUBECACHEDIR", self.path("kubecache"))
            .env("LOGIN_LOG", self.path("login.log"))
            .env("LOGIN_PROVIDER_HOSTS", HOST)
            // The scripted browser trusts the stand-in's CA, as a laptop trusts Entra's.
            .env("NODE_EXTRA_CA_CERTS", &self.entra.ca);
        run_with_timeout(command, Duration::from_secs(120))
    }

    /// Browser runs started so far (the browser writes this line before anything else; its
    /// report comes after the plugin may have exited).
    fn logins(&self) -> usize {
        std::fs::read_to_string(self.path("login.log.started"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    /// The bearer tokens the API server stand-in was sent.
    fn api_tokens(&self) -> Vec<String> {
        let client = reqwest::blocking::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.api.ca_pem.as_bytes()).unwrap(),
            )
            .build()
            .unwrap();
        let body = client
            .get(format!("{}/__test/tokens", self.api.url))
            .send()
            .unwrap()
            .text()
            .unwrap();
        serde_json::from_str(&body).unwrap()
    }

    /// The cached token set (disk storage: one `*.token.json`).
    fn cached(&self) -> Value {
        let path = std::fs::read_dir(self.path("cache"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(".token.json"))
            .expect("a cached token");
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    /// Waits until the cached access token is within the plugin's refresh margin: the next
    /// kubectl call refreshes. Time passing is the event; nothing is timed.
    fn wait_for_refresh_due(&self) {
        let expiry = self.cached()["access_token_expiry"].as_i64().unwrap();
        let wait =
            expiry - kubectl_oidc_login::signin::MIN_VALIDITY_SECS - kubectl_oidc_login::jwt::now()
                + 1;
        if wait > 0 {
            std::thread::sleep(Duration::from_secs(wait as u64));
        }
    }
}

fn whoami(run: &Run) -> String {
    run.assert_ok();
    user_info(run).0
}

/// Before the fix the second call failed with "names another user (sub `…`) than the login it
/// renews (sub `…`) in its access token": every refresh locked the user out.
#[test]
fn entra_pairwise_subjects_a_refresh_keeps_the_user_signed_in() {
    let Some(site) = Site::new(&[]) else {
        return;
    };
    let first = site.kubectl(&["auth", "whoami", "-o", "json"]);
    assert_eq!(whoami(&first), "alice@example.com", "{}", first.stderr);
    assert_eq!(site.logins(), 1);

    // The stand-in is pairwise for real: one user, two `sub`s, one `oid`.
    let cached = site.cached();
    let id = jwt_claims(cached["id_token"].as_str().unwrap());
    let access = jwt_claims(cached["access_token"].as_str().unwrap());
    assert_ne!(id["sub"], access["sub"], "{id} {access}");
    assert_eq!(id["oid"], access["oid"]);
    assert!(id["oid"].is_string(), "{id}");
    assert_eq!(access["iss"], site.entra.access_issuer.as_str());
    assert_eq!(id["iss"], site.entra.issuer.as_str());

    site.wait_for_refresh_due();
    let second = site.kubectl(&["auth", "whoami", "-o", "json"]);
    assert_eq!(whoami(&second), "alice@example.com", "{}", second.stderr);
    // A refresh, not a refusal followed by a new login in the browser.
    assert!(
        !second.stderr.contains("names another user"),
        "{}",
        second.stderr
    );
    assert_eq!(site.logins(), 1, "{}", second.stderr);
    let refreshed = site.cached();
    assert_ne!(refreshed["access_token"], cached["access_token"]);
    assert_eq!(
        jwt_claims(refreshed["access_token"].as_str().unwrap())["oid"],
        access["oid"]
    );
}

/// The check still holds at Entra: a refresh that answers with another user's access token
/// (another `oid` in the same tenant, and another `sub`) is refused and the cached login
/// removed; nothing of bob's reaches kubectl or the cache.
#[test]
fn entra_a_refreshed_access_token_naming_another_oid_is_refused() {
    let Some(site) = Site::new(&[("ENTRA_REFRESH_ACCESS_FOR", "bob".into())]) else {
        return;
    };
    let first = site.kubectl(&["auth", "whoami", "-o", "json"]);
    assert_eq!(whoami(&first), "alice@example.com", "{}", first.stderr);
    let alice_oid = jwt_claims(site.cached()["access_token"].as_str().unwrap())["oid"]
        .as_str()
        .unwrap()
        .to_string();

    site.wait_for_refresh_due();
    let run = site.kubectl(&["auth", "whoami", "-o", "json"]);
    // kubectl runs the plugin again after the refused refresh; with the login removed, that
    // run signs alice in afresh. Whatever kubectl shows, it is never bob.
    if run.ok() {
        assert_eq!(whoami(&run), "alice@example.com");
    }
    assert!(
        run.stderr
            .contains("names another user (oid `7d2e9b40-1c3a-4f58-b6e2-9a0c5d1f3e22` in tenant")
            && run
                .stderr
                .contains(&format!("than the login it renews (oid `{alice_oid}`")),
        "{}",
        run.stderr
    );
    // bob's token never reached the API server...
    for token in site.api_tokens() {
        assert_ne!(
            jwt_claims(&token)["upn"],
            "bob@example.com",
            "bob's token was sent"
        );
    }
    // ...nor the cache.
    let cache: Vec<String> = std::fs::read_dir(site.path("cache"))
        .map(|d| {
            d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    for text in &cache {
        assert!(!text.contains("bob@example.com"), "bob's token was cached");
    }
}
