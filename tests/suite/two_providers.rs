//! A cluster that trusts two providers (issue 42): one real kube-apiserver (scripts/peers)
//! loaded with examples/authentication-config-two-providers.yaml, trusting the real Keycloak
//! (scripts/keycloak) and the real Ory Hydra (scripts/providers) at once, each with its own
//! claim mappings and prefixes, and examples/cluster-role-binding-two-providers.yaml for RBAC.
//! One kubeconfig has a user per provider; the real kubectl signs in through each (headless
//! Chromium on Keycloak's pages, the scripted browser on Hydra's login app). A token of one
//! provider is refused where only the other's group is bound. Each real part that cannot be
//! had here says `not built here` and the test asserts nothing.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::hydra::Hydra;
use crate::common::keycloak::{keycloak, not_built_here, Keycloak};
use crate::common::{
    free_port, headless, parse_yaml, point_issuer, run_with_timeout, support_dir, test_certificate,
    user_info, KubeApiServer, Run, PLUGIN,
};

const CONFIG: &str = "authentication-config-two-providers.yaml";
const RBAC: &str = "cluster-role-binding-two-providers.yaml";
/// The issuers the example is written for; the test puts the real ones in their place.
const EXAMPLE_KEYCLOAK: &str = "https://keycloak.example.com/realms/platform";
const EXAMPLE_HYDRA: &str = "https://hydra.partner.example.com";
const PASSWORD: &str = "two-providers-password";

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// A Keycloak user of the test's realm, with a password and no first-login actions.
fn realm_user(name: &str, groups: &[&str]) -> Value {
    json!({
        "username": name,
        "email": format!("{name}@example.com"),
        "emailVerified": true,
        "enabled": true,
        "firstName": name,
        "lastName": "Example",
        "credentials": [{"type": "password", "value": PASSWORD, "temporary": false}],
        "groups": groups,
    })
}

struct Cluster {
    dir: tempfile::TempDir,
    kc: &'static Keycloak,
    hydra_ca: PathBuf,
    kubeconfig: PathBuf,
    _hydra: Hydra,
    api: KubeApiServer,
}

impl Cluster {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// kubectl with the kubeconfig's context `context`; `keycloak_user` is whom the Chromium
    /// browser signs in as at Keycloak (Hydra's scripted browser signs in as alice).
    fn kubectl(&self, context: &str, keycloak_user: &str, args: &[&str]) -> Run {
        let mut command = Command::new(crate::common::kubectl_path());
        headless(&mut command)
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .arg(format!("--context={context}"))
            .args(args)
            .env("HOME", self.path("home"))
            .env("KUBECACHEDIR", self.path("kubecache"))
            .env("LOGIN_LOG", self.path("login.log"))
            .env("KC_ORIGIN", &self.kc.base)
            .env("KC_USER", keycloak_user)
            .env("KC_PASSWORD", PASSWORD)
            // Hydra's issuer serves the test CA's certificate; the scripted browser trusts it.
            .env("NODE_EXTRA_CA_CERTS", &self.hydra_ca);
        run_with_timeout(command, Duration::from_secs(180))
    }

    /// The browser runs so far, waiting (up to 30 s) for `n`: a browser reports after the
    /// plugin it served may have exited.
    fn logins(&self, n: usize) -> usize {
        let start = std::time::Instant::now();
        loop {
            let count = std::fs::read_to_string(self.path("login.log"))
                .unwrap_or_default()
                .lines()
                .count();
            if count >= n || start.elapsed() > Duration::from_secs(30) {
                return count;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn whoami(&self, context: &str, keycloak_user: &str) -> (String, Vec<String>) {
        let run = self.kubectl(context, keycloak_user, &["auth", "whoami", "-o", "json"]);
        assert!(
            run.ok(),
            "whoami as {context} failed: {}\nbrowser: {}\nkube-apiserver: {}",
            run.stderr,
            std::fs::read_to_string(self.path("login.log")).unwrap_or_default(),
            self.api.log_tail()
        );
        user_info(&run)
    }
}

/// Keycloak (a realm of the test's own), Hydra over HTTPS, the real kube-apiserver with the
/// example configuration and RBAC, and the kubeconfig with one user per provider.
fn cluster() -> Option<Cluster> {
    let kc = match keycloak() {
        Ok(kc) => kc,
        Err(why) => {
            not_built_here(&why);
            return None;
        }
    };
    let dir = tempfile::tempdir().unwrap();

    // Keycloak: the example realm with two users: alice administers, bob develops.
    let realm = format!("two-providers-{}", std::process::id());
    kc.create_realm(
        "keycloak-realm.json",
        &realm,
        None,
        json!({"users": [
            realm_user("alice", &["/KubernetesAdministrators", "/developers"]),
            realm_user("bob", &["/developers"]),
        ]}),
    );
    let kc_port = free_port();
    let mut uris = kc.client(&realm, "kubernetes")["redirectUris"].clone();
    uris.as_array_mut()
        .unwrap()
        .push(json!(format!("http://localhost:{kc_port}")));
    kc.update_client(&realm, "kubernetes", json!({"redirectUris": uris}));
    let kc_issuer = kc.issuer(&realm);

    // Hydra behind HTTPS (kube-apiserver trusts https issuers only), with the public client
    // `kubernetes` for a loopback port of the test's.
    let hydra_tls = test_certificate(dir.path(), "hydra");
    let hydra = Hydra::start_tls(dir.path(), 300, Some(&hydra_tls))?;
    let hydra_port = free_port();
    hydra.create_login_client(
        "kubernetes",
        "none",
        &[format!("http://localhost:{hydra_port}")],
    );
    let hydra_issuer = hydra.discovered_issuer();
    let hydra_ca = hydra_tls.0.clone();

    // The example, each issuer (and its CA) replaced by the test's, loaded as it is.
    let text = std::fs::read_to_string(example(CONFIG)).unwrap();
    let config = point_issuer(&text, EXAMPLE_KEYCLOAK, &kc_issuer, &kc.ca);
    let config = point_issuer(&config, EXAMPLE_HYDRA, &hydra_issuer, &hydra_ca);
    let api = KubeApiServer::start_with_authentication_config(dir.path(), &config)?;
    api.admin(&["apply", "-f", example(RBAC).to_str().unwrap()])
        .assert_ok();

    // One kubeconfig, one user per provider, one shared token cache.
    let cache = dir.path().join("cache");
    let common = |issuer: &str, ca: &Path, port: u16, browser: &str| -> Vec<String> {
        vec![
            "get-token".into(),
            format!("--oidc-issuer-url={issuer}"),
            "--oidc-client-id=kubernetes".into(),
            format!("--certificate-authority={}", ca.display()),
            format!("--token-cache-dir={}", cache.display()),
            "--token-cache-storage=disk".into(),
            format!("--listen-address=127.0.0.1:{port}"),
            "--authentication-timeout-sec=60".into(),
            format!(
                "--browser-command={}",
                support_dir().join(browser).display()
            ),
        ]
    };
    let mut hydra_args = common(&hydra_issuer, &hydra_ca, hydra_port, "login.mjs");
    hydra_args.push("--oidc-extra-scope=offline_access".into());
    let exec = |args: Vec<String>, env: Value| {
        json!({"exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": PLUGIN,
            "args": args,
            "env": env,
            "interactiveMode": "IfAvailable",
            "provideClusterInfo": false,
        }})
    };
    let provider_hosts = [&hydra.issuer, &hydra.app]
        .map(|u| u.split("://").nth(1).unwrap().to_string())
        .join(",");
    use base64::Engine;
    let kubeconfig = dir.path().join("kubeconfig");
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "shared", "cluster": {
            "server": api.url,
            "certificate-authority-data": base64::engine::general_purpose::STANDARD.encode(&api.ca_pem),
        }}],
        "users": [
            {"name": "keycloak", "user": exec(
                common(&kc_issuer, &kc.ca, kc_port, "chromium-keycloak.mjs"), json!([]))},
            // The scripted browser signs in at Hydra's pages (the proxy) and at the login app.
            {"name": "hydra", "user": exec(hydra_args, json!([{
                "name": "LOGIN_PROVIDER_HOSTS",
                "value": provider_hosts,
            }]))},
        ],
        "contexts": [
            {"name": "keycloak", "context": {"cluster": "shared", "user": "keycloak"}},
            {"name": "hydra", "context": {"cluster": "shared", "user": "hydra"}},
        ],
        "current-context": "keycloak",
    });
    std::fs::write(&kubeconfig, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    Some(Cluster {
        dir,
        kc,
        hydra_ca,
        kubeconfig,
        _hydra: hydra,
        api,
    })
}

fn forbidden(run: &Run, user: &str) {
    run.assert_failed();
    assert!(
        run.stderr.to_lowercase().contains("forbidden")
            && run.stderr.contains(&format!("User \"{user}\"")),
        "{}",
        run.stderr
    );
}

#[test]
fn one_api_server_trusts_keycloak_and_hydra_each_with_its_own_mappings_and_rbac() {
    let Some(cluster) = cluster() else {
        return;
    };

    // Keycloak's alice: her email with Keycloak's prefix, Keycloak's groups; cluster-admin.
    let (user, groups) = cluster.whoami("keycloak", "alice");
    assert_eq!(user, "keycloak:alice@example.com");
    for g in ["keycloak:KubernetesAdministrators", "keycloak:developers"] {
        assert!(groups.contains(&g.to_string()), "{g} in {groups:?}");
    }
    cluster
        .kubectl("keycloak", "alice", &["get", "secrets", "-A"])
        .assert_ok();

    // Hydra's alice: her `sub` by the CEL expression, Hydra's groups with Hydra's prefix.
    let (user, groups) = cluster.whoami("hydra", "alice");
    assert_eq!(user, "hydra:alice");
    for g in ["hydra:KubernetesAdministrators", "hydra:developers"] {
        assert!(groups.contains(&g.to_string()), "{g} in {groups:?}");
    }
    assert!(
        !groups.iter().any(|g| g.starts_with("keycloak:")),
        "{groups:?}"
    );
    // hydra:developers may read...
    cluster
        .kubectl("hydra", "alice", &["get", "pods", "-A"])
        .assert_ok();
    // ...but only Keycloak's KubernetesAdministrators are bound to cluster-admin: Hydra's
    // group of the same name grants nothing.
    forbidden(
        &cluster.kubectl("hydra", "alice", &["get", "secrets", "-A"]),
        "hydra:alice",
    );
    forbidden(
        &cluster.kubectl(
            "hydra",
            "alice",
            &["create", "configmap", "partner", "--from-literal=a=b"],
        ),
        "hydra:alice",
    );

    // And the other way: Keycloak's developers are not bound where Hydra's are. bob (only a
    // developer at Keycloak) signs in afresh through the same kubeconfig user.
    std::fs::remove_dir_all(cluster.path("cache")).unwrap();
    let (user, groups) = cluster.whoami("keycloak", "bob");
    assert_eq!(user, "keycloak:bob@example.com");
    assert!(
        groups.contains(&"keycloak:developers".to_string()),
        "{groups:?}"
    );
    forbidden(
        &cluster.kubectl("keycloak", "bob", &["get", "pods", "-A"]),
        "keycloak:bob@example.com",
    );

    // Two browser logins at Keycloak and one at Hydra: every other call was a cache hit.
    assert_eq!(cluster.logins(3), 3);
}

/// The example's RBAC names only groups the example's mappings can produce: each subject
/// carries one provider's prefix, and each provider's prefix is bound somewhere.
#[test]
fn the_two_provider_rbac_example_binds_only_prefixed_groups_of_the_config() {
    let config = parse_yaml(&std::fs::read_to_string(example(CONFIG)).unwrap()).remove(0);
    let jwt = config["jwt"].as_array().unwrap();
    assert_eq!(jwt.len(), 2);
    let keycloak_prefix = jwt[0]["claimMappings"]["groups"]["prefix"]
        .as_str()
        .unwrap();
    let hydra_groups = jwt[1]["claimMappings"]["groups"]["expression"]
        .as_str()
        .unwrap();
    let hydra_prefix = hydra_groups
        .split('\'')
        .nth(1)
        .expect("a quoted prefix in Hydra's groups expression");
    assert_ne!(keycloak_prefix, hydra_prefix);
    let subjects: Vec<String> = parse_yaml(&std::fs::read_to_string(example(RBAC)).unwrap())
        .iter()
        .flat_map(|b| b["subjects"].as_array().unwrap().clone())
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    for prefix in [keycloak_prefix, hydra_prefix] {
        assert!(subjects.iter().any(|s| s.starts_with(prefix)), "{prefix}");
    }
    for subject in &subjects {
        assert!(
            subject.starts_with(keycloak_prefix) || subject.starts_with(hydra_prefix),
            "{subject} carries no provider's prefix"
        );
    }
}
