//! One sign-in for many clusters (RFC 8693 token exchange at the real Keycloak): three real
//! kube-apiservers, each accepting only its own audience, one browser login for all three;
//! expiry, an LDAP group change and an ended Keycloak session; and the refusals a login cannot
//! fix, each named with the Keycloak setting the administrator must change.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use super::{new_requests, set_ldap_cache_lifespan, KcWorld, TOKEN};
use crate::common::keycloak::{keycloak, not_built_here};
use crate::common::{KubeApiServer, OidcConfig, Run, PLUGIN};

const LOGIN_CLIENT: &str = "kubectl";
const SECRET: &str = "kubectl-exchange-secret";
const AUDIENCES: [&str; 3] = ["cluster-a", "cluster-b", "cluster-c"];
const ADMINS: &str = "oidc:KubernetesAdministrators";

/// An Audience mapper that puts `audience` into the access tokens of the client it is on.
fn audience_mapper(audience: &str) -> Value {
    json!({
        "name": format!("audience {audience}"),
        "protocol": "openid-connect",
        "protocolMapper": "oidc-audience-mapper",
        "config": {
            "included.client.audience": audience,
            "access.token.claim": "true",
            "id.token.claim": "false",
            "introspection.token.claim": "true",
        },
    })
}

/// Adds to the world's realm a login client `id` set up as the README says (confidential,
/// standard token exchange on, an Audience mapper per cluster) with `changes` merged in, and
/// a bare client per audience (the clusters' clients need nothing).
fn add_clients(world: &KcWorld, id: &str, mapped: &[&str], changes: Value) {
    let kc = world.kc;
    let mut client = json!({
        "clientId": id,
        "publicClient": false,
        "clientAuthenticatorType": "client-secret",
        "secret": SECRET,
        "standardFlowEnabled": true,
        "directAccessGrantsEnabled": false,
        "redirectUris": [format!("http://localhost:{}", world.port)],
        "attributes": {
            "pkce.code.challenge.method": "S256",
            "standard.token.exchange.enabled": "true",
        },
        "defaultClientScopes": ["basic", "profile", "email", "groups"],
        "protocolMappers": mapped.iter().map(|a| audience_mapper(a)).collect::<Vec<_>>(),
    });
    for (k, v) in changes.as_object().unwrap() {
        client[k] = v.clone();
    }
    kc.admin("POST", &format!("/{}/clients", world.realm), Some(&client));
}

fn add_cluster_clients(world: &KcWorld, audiences: &[&str]) {
    for audience in audiences {
        world.kc.admin(
            "POST",
            &format!("/{}/clients", world.realm),
            Some(&json!({
                "clientId": audience,
                "publicClient": false,
                "standardFlowEnabled": false,
                "directAccessGrantsEnabled": false,
            })),
        );
    }
}

/// get-token's flags for a cluster whose token is exchanged from `client`'s login.
fn exchange_args(
    world: &KcWorld,
    client: &str,
    secret: Option<&str>,
    audience: &str,
) -> Vec<String> {
    let mut args = world.args(&[]);
    args.retain(|a| !a.starts_with("--oidc-client-id"));
    args.push(format!("--oidc-client-id={client}"));
    if let Some(secret) = secret {
        args.push(format!("--oidc-client-secret={secret}"));
    }
    args.push(format!("--token-exchange-audience={audience}"));
    args
}

/// Three real kube-apiservers, started side by side, each accepting the realm's tokens for
/// its own audience only (examples/authentication-config.yaml with the audience replaced).
fn start_clusters(world: &KcWorld) -> Option<Vec<KubeApiServer>> {
    let issuer = world.issuer();
    let started: Vec<Option<KubeApiServer>> = std::thread::scope(|s| {
        let handles: Vec<_> = AUDIENCES
            .iter()
            .map(|audience| {
                let dir = world.path(audience);
                std::fs::create_dir_all(&dir).unwrap();
                let issuer = issuer.clone();
                let ca = world.kc.ca.clone();
                s.spawn(move || {
                    KubeApiServer::start_for(
                        &dir,
                        &issuer,
                        &ca,
                        OidcConfig::AuthenticationConfiguration,
                        Some(audience),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    started.into_iter().collect()
}

/// The token the plugin hands kubectl for `args` (a cache hit when one is cached).
fn token_of(world: &KcWorld, args: &[String]) -> String {
    let run = world.plugin(args, "alice");
    run.assert_ok();
    run.json()["status"]["token"].as_str().unwrap().to_string()
}

fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// The HTTP status of `GET /api` at `api` with `token` as the bearer token.
fn status_at(api: &KubeApiServer, token: &str) -> u16 {
    reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(api.ca_pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
        .get(format!("{}/api", api.url))
        .bearer_auth(token)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

/// Waits until every token in `tokens` is within the plugin's 10 s margin of its expiry, so
/// the next call for each exchanges again: time passing is the event.
fn wait_until_all_due(tokens: &[String]) {
    let last = tokens
        .iter()
        .map(|t| claims(t)["exp"].as_i64().unwrap())
        .max()
        .unwrap();
    let due = last - 10 + 1;
    let now = chrono::Utc::now().timestamp();
    assert!(due - now < 60, "the tokens live too long for this test");
    if due > now {
        std::thread::sleep(Duration::from_secs((due - now) as u64));
    }
}

/// The plugin's requests among `requests`: the API servers fetch the realm's discovery
/// document and keys themselves, and the plugin keeps both in its provider cache.
fn plugin_requests(requests: Vec<String>) -> Vec<String> {
    requests
        .into_iter()
        .filter(|r| {
            r != "GET /protocol/openid-connect/certs"
                && r != "GET /.well-known/openid-configuration"
        })
        .collect()
}

fn count(requests: &[String], what: &str) -> usize {
    requests.iter().filter(|r| *r == what).count()
}

fn error_lines(run: &Run) -> Vec<String> {
    run.stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .map(str::to_string)
        .collect()
}

#[test]
fn one_browser_login_signs_in_to_three_clusters_by_token_exchange() {
    let kc = match keycloak() {
        Ok(kc) => kc,
        Err(why) => return not_built_here(&why),
    };
    // Tokens live 30 s (the plugin renews 10 s early): expiry comes within the test.
    let world = KcWorld::new(kc, "t-exchange", json!({"accessTokenLifespan": 30}));
    set_ldap_cache_lifespan(kc, &world.realm, 1000);
    add_cluster_clients(&world, &AUDIENCES);
    add_clients(&world, LOGIN_CLIENT, &AUDIENCES, json!({}));
    let Some(apis) = start_clusters(&world) else {
        return;
    };
    let args: Vec<Vec<String>> = AUDIENCES
        .iter()
        .map(|a| exchange_args(&world, LOGIN_CLIENT, Some(SECRET), a))
        .collect();
    let kubeconfigs: Vec<PathBuf> = apis
        .iter()
        .zip(&args)
        .zip(AUDIENCES)
        .map(|((api, args), a)| {
            api.exec_kubeconfig(&world.path(&format!("{a}.kubeconfig")), PLUGIN, args)
        })
        .collect();

    // One browser login, then each cluster's token by one exchange.
    let mut first = Vec::new();
    for kubeconfig in &kubeconfigs {
        let before = world.requests();
        let (user, groups) = world.whoami(kubeconfig, "alice");
        assert_eq!(user, "alice@example.com");
        assert!(groups.contains(&ADMINS.to_string()), "{groups:?}");
        first.push(plugin_requests(new_requests(&before, &world.requests())));
    }
    eprintln!("requests per cluster, first use: {first:?}");
    assert_eq!(
        world.logins(1).len(),
        1,
        "one browser login for three clusters"
    );
    // The first cluster: the login (its code for tokens) and the exchange.
    assert_eq!(count(&first[0], TOKEN), 2, "{:?}", first[0]);
    assert_eq!(first[1], vec![TOKEN.to_string()]);
    assert_eq!(first[2], vec![TOKEN.to_string()]);

    // Three tokens, each for its own audience only, accepted only by its own cluster.
    let before = world.requests();
    let tokens: Vec<String> = args.iter().map(|a| token_of(&world, a)).collect();
    assert!(plugin_requests(new_requests(&before, &world.requests())).is_empty());
    for (token, audience) in tokens.iter().zip(AUDIENCES) {
        let c = claims(token);
        assert_eq!(c["aud"], json!(audience), "{c}");
        assert_eq!(c["azp"], json!(LOGIN_CLIENT), "{c}");
        assert_eq!(c["iss"], json!(world.issuer()), "{c}");
    }
    let mut matrix = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        for (j, api) in apis.iter().enumerate() {
            let status = status_at(api, token);
            matrix.push(format!("{}→{}: {status}", AUDIENCES[i], AUDIENCES[j]));
            assert_eq!(
                status,
                if i == j { 200 } else { 401 },
                "token for {} at cluster {}",
                AUDIENCES[i],
                AUDIENCES[j]
            );
        }
    }
    eprintln!("each token at each cluster (GET /api): {matrix:?}");

    // Removed from a group in LDAP; when the tokens expire, each cluster's next exchange
    // shows it: the first renews the login's access token (a refresh) and exchanges, the
    // others exchange only. No browser.
    world
        .ldap
        .remove_from_group("alice", "KubernetesAdministrators");
    wait_until_all_due(&tokens);
    let mut renewed = Vec::new();
    for kubeconfig in &kubeconfigs {
        let before = world.requests();
        let (_, groups) = world.whoami(kubeconfig, "alice");
        assert!(!groups.contains(&ADMINS.to_string()), "{groups:?}");
        assert!(
            groups.contains(&"oidc:developers".to_string()),
            "{groups:?}"
        );
        renewed.push(plugin_requests(new_requests(&before, &world.requests())));
    }
    eprintln!("requests per cluster after expiry: {renewed:?}");
    assert_eq!(renewed[0], vec![TOKEN.to_string(); 2], "refresh + exchange");
    assert_eq!(renewed[1], vec![TOKEN.to_string()], "the exchange alone");
    assert_eq!(renewed[2], vec![TOKEN.to_string()], "the exchange alone");
    assert_eq!(world.logins(1).len(), 1, "no browser at expiry");

    // The Keycloak session ends while the login's access token has not expired: the first
    // exchange is refused ("Invalid token"), the refresh too, so one browser login; then the
    // other clusters exchange the new login. --force-refresh asks each for a new token now.
    let user_id = kc.user_id(&world.realm, "alice");
    kc.admin(
        "POST",
        &format!("/{}/users/{user_id}/logout", world.realm),
        None,
    );
    assert!(kc.sessions(&world.realm, "alice").is_empty());
    let mut after_logout = Vec::new();
    for args in &args {
        let mut forced = args.clone();
        forced.push("--force-refresh".into());
        let before = world.requests();
        let run = world.plugin(&forced, "alice");
        assert!(run.ok(), "{}", run.stderr);
        after_logout.push(plugin_requests(new_requests(&before, &world.requests())));
        if after_logout.len() == 1 {
            assert!(
                run.stderr.contains("Invalid token") && run.stderr.contains("signing in again"),
                "{}",
                run.stderr
            );
        }
    }
    eprintln!("requests per cluster after the session ended: {after_logout:?}");
    assert_eq!(
        world.logins(2).len(),
        2,
        "one more browser login, not three"
    );
    // Refused exchange, refused refresh, the new login's code, the exchange.
    assert_eq!(count(&after_logout[0], TOKEN), 4, "{:?}", after_logout[0]);
    assert_eq!(after_logout[1], vec![TOKEN.to_string()]);
    assert_eq!(after_logout[2], vec![TOKEN.to_string()]);
    for kubeconfig in &kubeconfigs {
        let before = world.requests();
        assert_eq!(world.whoami(kubeconfig, "alice").0, "alice@example.com");
        assert!(plugin_requests(new_requests(&before, &world.requests())).is_empty());
    }
    assert_eq!(world.logins(2).len(), 2);
}

#[test]
fn token_exchange_refusals_name_the_keycloak_setting_and_open_no_browser_loop() {
    let kc = match keycloak() {
        Ok(kc) => kc,
        Err(why) => return not_built_here(&why),
    };
    let world = KcWorld::new(kc, "t-exchange-refused", json!({}));
    add_cluster_clients(&world, &["cluster-a", "cluster-d"]);
    add_clients(&world, LOGIN_CLIENT, &["cluster-a"], json!({}));
    add_clients(
        &world,
        "kubectl-public",
        &["cluster-a"],
        json!({"publicClient": true, "secret": null}),
    );
    add_clients(
        &world,
        "kubectl-no-exchange",
        &["cluster-a"],
        json!({"attributes": {"pkce.code.challenge.method": "S256"}}),
    );

    let cases = [
        // (client, secret, audience, Keycloak's words, the setting named)
        (
            LOGIN_CLIENT,
            Some(SECRET),
            "cluster-d",
            "Requested audience not available",
            "Audience mapper for cluster-d",
        ),
        (
            "kubectl-public",
            None,
            "cluster-a",
            "Public client is not allowed to exchange token",
            "Client authentication On",
        ),
        (
            "kubectl-no-exchange",
            Some(SECRET),
            "cluster-a",
            "token exchange",
            "Standard Token Exchange On",
        ),
    ];
    let mut logins = 0;
    for (client, secret, audience, words, setting) in cases {
        let args = exchange_args(&world, client, secret, audience);
        // The first call signs in (this client has no login yet) and is refused; the second
        // is refused with the cached login: one request, no browser.
        for attempt in 0..2 {
            let before = world.requests();
            let run = world.plugin(&args, "alice");
            let after = new_requests(&before, &world.requests());
            eprintln!("$ get-token --oidc-client-id={client} --token-exchange-audience={audience} (attempt {attempt})\n{}requests: {after:?}", run.stderr);
            run.assert_failed();
            let errors = error_lines(&run);
            assert_eq!(errors.len(), 1, "{}", run.stderr);
            assert!(errors[0].contains(words), "{}", errors[0]);
            assert!(errors[0].contains(setting), "{}", errors[0]);
            assert!(errors[0].contains(client), "{}", errors[0]);
            if attempt == 0 {
                logins += 1;
            } else {
                assert_eq!(after, vec![TOKEN.to_string()]);
            }
            assert_eq!(world.logins(logins).len(), logins, "one login per client");
        }
    }

    // setup for two clusters at once: the one set up works, the other is named with the
    // missing mapper; setup fails, and prints the working cluster's kubeconfig user.
    let mut args = super::with_command(
        exchange_args(&world, LOGIN_CLIENT, Some(SECRET), "cluster-a"),
        "setup",
    );
    args.push("--token-exchange-audience=cluster-d".into());
    let run = world.plugin(&args, "alice");
    let out = format!("{}{}", run.stdout, run.stderr);
    eprintln!("$ setup ... --token-exchange-audience=cluster-a --token-exchange-audience=cluster-d\n{out}");
    run.assert_failed();
    assert!(
        out.contains("token exchange for audience cluster-a: a token whose aud is cluster-a"),
        "{out}"
    );
    assert!(out.contains("Requested audience not available"), "{out}");
    assert!(out.contains("Audience mapper for cluster-d"), "{out}");
    assert!(out.contains("set-credentials oidc-cluster-a"), "{out}");
    assert!(
        out.contains("--exec-arg=--token-exchange-audience=cluster-a"),
        "{out}"
    );
    assert!(!out.contains("set-credentials oidc-cluster-d"), "{out}");
    assert!(
        out.contains("    - \"cluster-a\"\n"),
        "the cluster's AuthenticationConfiguration: {out}"
    );
}
