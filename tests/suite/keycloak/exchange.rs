//! One sign-in for many clusters (RFC 8693 token exchange at the real Keycloak): three real
//! kube-apiservers, each accepting only its own audience, one browser login for all three;
//! expiry, an LDAP group change and an ended Keycloak session; and the refusals a login cannot
//! fix, each named with the Keycloak setting the administrator must change.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use super::with_command;
use super::{new_requests, set_ldap_cache_lifespan, KcWorld, TOKEN};
use crate::common::keycloak::keycloak_or_skip;
use crate::common::{jwt_claims, run_with_timeout, KubeApiServer, OidcConfig, Run, PLUGIN};

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

/// Adds to the world's realm a login client `id` set up as docs/many-clusters.md says (confidential,
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
        .map(|t| jwt_claims(t)["exp"].as_i64().unwrap())
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

/// The requests `action` made the plugin send Keycloak (as [`plugin_requests`] counts
/// them), beside what `action` returned.
fn plugin_requests_during<T>(world: &KcWorld, action: impl FnOnce() -> T) -> (T, Vec<String>) {
    let before = world.requests();
    let out = action();
    (
        out,
        plugin_requests(new_requests(&before, &world.requests())),
    )
}

/// One browser login for three clusters: the first cluster's requests are the login's (its
/// code for tokens) and its exchange, each other cluster's one exchange.
#[track_caller]
fn assert_one_login_then_one_exchange_each(world: &KcWorld, first: &[Vec<String>]) {
    assert_eq!(
        world.logins(1).len(),
        1,
        "one browser login for three clusters"
    );
    assert_eq!(count(&first[0], TOKEN), 2, "{:?}", first[0]);
    assert_eq!(first[1], vec![TOKEN.to_string()]);
    assert_eq!(first[2], vec![TOKEN.to_string()]);
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
    let kc = keycloak_or_skip!();
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
        let ((user, groups), asked) =
            plugin_requests_during(&world, || world.whoami(kubeconfig, "alice"));
        assert_eq!(user, "alice@example.com");
        assert!(groups.contains(&ADMINS.to_string()), "{groups:?}");
        first.push(asked);
    }
    eprintln!("requests per cluster, first use: {first:?}");
    assert_one_login_then_one_exchange_each(&world, &first);

    // Three tokens, each for its own audience only, accepted only by its own cluster.
    let (tokens, asked) = plugin_requests_during(&world, || {
        args.iter()
            .map(|a| token_of(&world, a))
            .collect::<Vec<String>>()
    });
    assert!(asked.is_empty());
    for (token, audience) in tokens.iter().zip(AUDIENCES) {
        let c = jwt_claims(token);
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
        let ((_, groups), asked) =
            plugin_requests_during(&world, || world.whoami(kubeconfig, "alice"));
        assert!(!groups.contains(&ADMINS.to_string()), "{groups:?}");
        assert!(
            groups.contains(&"oidc:developers".to_string()),
            "{groups:?}"
        );
        renewed.push(asked);
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
        let (run, asked) = plugin_requests_during(&world, || world.plugin(&forced, "alice"));
        assert!(run.ok(), "{}", run.stderr);
        after_logout.push(asked);
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
        let ((user, _), asked) =
            plugin_requests_during(&world, || world.whoami(kubeconfig, "alice"));
        assert_eq!(user, "alice@example.com");
        assert!(asked.is_empty());
    }
    assert_eq!(world.logins(2).len(), 2);
}

#[test]
fn token_exchange_refusals_name_the_keycloak_setting_and_open_no_browser_loop() {
    let kc = keycloak_or_skip!();
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
    let mut args = with_command(
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
    // One kubeconfig user for the clusters, which name their audiences themselves: only the
    // working cluster's.
    assert!(out.contains("set-credentials oidc \\"), "{out}");
    assert!(out.contains("--exec-provide-cluster-info=true"), "{out}");
    assert!(
        !out.contains("--exec-arg=--token-exchange-audience"),
        "{out}"
    );
    assert!(out.contains("        audience: \"cluster-a\"\n"), "{out}");
    assert!(!out.contains("audience: \"cluster-d\""), "{out}");
    assert!(
        out.contains("    - \"cluster-a\"\n"),
        "the cluster's AuthenticationConfiguration: {out}"
    );
}

/// The optional client scope `aud-AUDIENCE` holding `audience`'s Audience mapper (docs/many-clusters.md's
/// recipe): the login client lists it as optional, so only an exchange that asks for it gets
/// the audience, and the login's own tokens carry none.
fn add_audience_scope(world: &KcWorld, audience: &str) -> String {
    let name = format!("aud-{audience}");
    world.kc.admin(
        "POST",
        &format!("/{}/client-scopes", world.realm),
        Some(&json!({
            "name": name,
            "protocol": "openid-connect",
            "attributes": {
                "include.in.token.scope": "true",
                "display.on.consent.screen": "false",
            },
            "protocolMappers": [audience_mapper(audience)],
        })),
    );
    name
}

/// A kubeconfig as a team with many clusters writes it: one user running the plugin with
/// `args` (the login's flags only) that asks kubectl for each cluster's settings
/// (provideClusterInfo), and each cluster (name, server, CA) naming its audience and scope in
/// its extension client.authentication.k8s.io/exec (none: no extension); a context per
/// cluster, named as it. `more_users` are extra (user, args) entries; `contexts` extra
/// (context, cluster, user).
fn one_user_kubeconfig(
    path: &std::path::Path,
    args: &[String],
    clusters: &[(&str, &str, &str, Option<Value>)],
    more_users: &[(&str, Vec<String>)],
    contexts: &[(&str, &str, &str)],
) -> PathBuf {
    use base64::Engine;
    let exec = |args: &[String]| {
        json!({"exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": PLUGIN,
            "args": args,
            "interactiveMode": "IfAvailable",
            "provideClusterInfo": true,
        }})
    };
    let mut users = vec![json!({"name": "oidc", "user": exec(args)})];
    users.extend(
        more_users
            .iter()
            .map(|(name, args)| json!({"name": name, "user": exec(args)})),
    );
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": clusters.iter().map(|(name, url, ca, extension)| {
            let mut cluster = json!({
                "server": url,
                "certificate-authority-data": base64::engine::general_purpose::STANDARD.encode(ca),
            });
            if let Some(extension) = extension {
                cluster["extensions"] = json!([{
                    "name": "client.authentication.k8s.io/exec",
                    "extension": extension,
                }]);
            }
            json!({"name": name, "cluster": cluster})
        }).collect::<Vec<_>>(),
        "users": users,
        "contexts": clusters.iter().map(|(name, ..)| json!({"name": name, "context": {"cluster": name, "user": "oidc"}}))
            .chain(contexts.iter().map(|(name, cluster, user)| json!({"name": name, "context": {"cluster": cluster, "user": user}})))
            .collect::<Vec<_>>(),
        "current-context": clusters[0].0,
    });
    std::fs::write(path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    path.to_path_buf()
}

/// get-token's flags of the login client alone: no audience, no scope.
fn login_args(world: &KcWorld) -> Vec<String> {
    let mut args = world.args(&[]);
    args.retain(|a| !a.starts_with("--oidc-client-id"));
    args.push(format!("--oidc-client-id={LOGIN_CLIENT}"));
    args.push(format!("--oidc-client-secret={SECRET}"));
    args
}

/// The cached login of the login client itself (the file whose name is the login's key alone;
/// each cluster's token is in a file named by the login's key, a `-` and the cluster's).
fn cached_login(world: &KcWorld) -> Value {
    let path = std::fs::read_dir(world.cache_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            name.ends_with(".token.json") && !name.contains('-')
        })
        .expect("the login's cached tokens");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// `kubectl --context=CONTEXT ARGS` with `kubeconfig`.
fn kubectl_at(world: &KcWorld, kubeconfig: &std::path::Path, context: &str, args: &[&str]) -> Run {
    let mut all = vec!["--context", context];
    all.extend_from_slice(args);
    world.kubectl(kubeconfig, &all, "alice")
}

/// The proof: one kubeconfig user for three real clusters, each naming its audience
/// and its optional client scope in its own kubeconfig entry. One browser login, then one
/// exchange per cluster; each cluster's token is accepted by its own API server alone, and the
/// login's own tokens by none (the Audience mappers sit in optional client scopes); helm
/// works through the same user. Then `setup --write-kubeconfig` writes that form itself into
/// a kubeconfig that holds only the clusters, and `doctor` reads it.
#[test]
fn one_kubeconfig_user_serves_three_clusters_through_their_extensions() {
    let kc = keycloak_or_skip!();
    let world = KcWorld::new(kc, "t-one-user", json!({}));
    add_cluster_clients(&world, &AUDIENCES);
    let scopes: Vec<String> = AUDIENCES
        .iter()
        .map(|a| add_audience_scope(&world, a))
        .collect();
    add_clients(
        &world,
        LOGIN_CLIENT,
        &[],
        json!({"optionalClientScopes": scopes}),
    );
    let Some(apis) = start_clusters(&world) else {
        return;
    };
    let cluster_entries: Vec<(&str, &str, &str, Option<Value>)> = AUDIENCES
        .iter()
        .zip(&apis)
        .zip(&scopes)
        .map(|((a, api), scope)| {
            (
                *a,
                api.url.as_str(),
                api.ca_pem.as_str(),
                Some(json!({"audience": a, "scope": scope})),
            )
        })
        .collect();
    let kubeconfig = one_user_kubeconfig(
        &world.path("kubeconfig"),
        &login_args(&world),
        &cluster_entries,
        &[],
        &[],
    );

    // One browser login, then one exchange per cluster, all through the one user.
    let mut first = Vec::new();
    for audience in AUDIENCES {
        let (run, asked) = plugin_requests_during(&world, || {
            kubectl_at(
                &world,
                &kubeconfig,
                audience,
                &["auth", "whoami", "-o", "json"],
            )
        });
        assert!(run.ok(), "{audience}: {}", run.stderr);
        let (user, groups) = crate::common::user_info(&run);
        assert_eq!(user, "alice@example.com");
        assert!(groups.contains(&ADMINS.to_string()), "{groups:?}");
        first.push(asked);
    }
    eprintln!("requests per cluster, first use through one user: {first:?}");
    assert_one_login_then_one_exchange_each(&world, &first);

    // Each cluster's token (a cache hit now, through kubectl's own exec info), for its own
    // audience only; the login's access and ID tokens name no cluster.
    let mut tokens = Vec::new();
    for audience in AUDIENCES {
        let (run, asked) = plugin_requests_during(&world, || {
            kubectl_at(
                &world,
                &kubeconfig,
                audience,
                &["get", "--raw", "/api", "-v=0"],
            )
        });
        assert!(run.ok(), "{}", run.stderr);
        assert!(asked.is_empty());
    }
    let cache = std::fs::read_dir(world.cache_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".token.json"))
        .filter_map(|p| serde_json::from_slice::<Value>(&std::fs::read(p).unwrap()).ok())
        .filter_map(|t| t["access_token"].as_str().map(str::to_string))
        .collect::<Vec<_>>();
    for audience in AUDIENCES {
        let token = cache
            .iter()
            .find(|t| jwt_claims(t)["aud"] == json!(audience))
            .unwrap_or_else(|| panic!("no cached token for {audience}"))
            .clone();
        let c = jwt_claims(&token);
        assert_eq!(c["azp"], json!(LOGIN_CLIENT), "{c}");
        tokens.push(token);
    }
    let login = cached_login(&world);
    let login_access = login["access_token"].as_str().unwrap().to_string();
    let login_id = login["id_token"].as_str().unwrap().to_string();
    let login_aud = jwt_claims(&login_access)["aud"].clone();
    eprintln!(
        "the login's own access token: aud {login_aud}, scope {}",
        jwt_claims(&login_access)["scope"]
    );
    for audience in AUDIENCES {
        assert!(!login_aud.to_string().contains(audience), "{login_aud}");
    }
    let mut matrix = Vec::new();
    for (j, api) in apis.iter().enumerate() {
        for (i, token) in tokens.iter().enumerate() {
            let status = status_at(api, token);
            matrix.push(format!("{}→{}: {status}", AUDIENCES[i], AUDIENCES[j]));
            assert_eq!(status, if i == j { 200 } else { 401 }, "{matrix:?}");
        }
        for (what, token) in [("login access", &login_access), ("login ID", &login_id)] {
            let status = status_at(api, token);
            matrix.push(format!("{what}→{}: {status}", AUDIENCES[j]));
            assert_eq!(status, 401, "{matrix:?}");
        }
    }
    eprintln!("each token at each cluster (GET /api): {matrix:?}");

    // helm, through the same user, at the second cluster: the API server's audit log says
    // alice installed the chart.
    if let Some(helm) = crate::common::peer("helm", &crate::common::peer_version("HELM3")) {
        let release = "one-user";
        let helm_run = |args: &[&str]| {
            let mut command = Command::new(&helm);
            command
                .arg(format!("--kubeconfig={}", kubeconfig.display()))
                .args(["--kube-context", AUDIENCES[1], "--namespace", "default"])
                .args(args);
            world.prepare(&mut command, "alice", &[]);
            run_with_timeout(command, Duration::from_secs(180))
        };
        let chart = crate::common::support_dir().join("chart");
        helm_run(&["install", release, chart.to_str().unwrap()]).assert_ok();
        helm_run(&["uninstall", release]).assert_ok();
        let events = apis[1].audit_events();
        let created = events
            .iter()
            .find(|e| {
                e["verb"] == "create"
                    && e["objectRef"]["resource"] == "configmaps"
                    && e["objectRef"]["name"] == release
                    && e["stage"] == "ResponseComplete"
            })
            .unwrap_or_else(|| panic!("no audit event of helm's ConfigMap"));
        assert_eq!(
            created["user"]["username"], "alice@example.com",
            "{created}"
        );
        assert!(
            created["userAgent"]
                .as_str()
                .unwrap_or("")
                .starts_with("Helm/"),
            "{created}"
        );
        assert!(world.logins(1).len() == 1, "helm opened no browser");
        eprintln!(
            "helm at {}: {} by {}",
            AUDIENCES[1], created["verb"], created["user"]["username"]
        );
    }

    // setup writes the same form into a kubeconfig that holds only the three clusters, as an
    // installer leaves it: one user, each cluster's extension, a context each.
    let written = world.path("written.kubeconfig");
    let bare: Vec<(&str, &str, &str, Option<Value>)> = cluster_entries
        .iter()
        .map(|(name, url, ca, _)| (*name, *url, *ca, None))
        .collect();
    one_user_kubeconfig(&written, &[], &bare, &[], &[]);
    let mut setup = with_command(login_args(&world), "setup");
    setup.push("--write-kubeconfig".into());
    for (audience, scope) in AUDIENCES.iter().zip(&scopes) {
        setup.push(format!("--token-exchange-audience={audience}"));
        setup.push(format!("--token-exchange-scope={scope}"));
    }
    let mut command = Command::new(PLUGIN);
    command.args(&setup);
    world.prepare(
        &mut command,
        "alice",
        &[("KUBECONFIG", written.to_str().unwrap())],
    );
    let run = run_with_timeout(command, Duration::from_secs(300));
    let out = format!("{}{}", run.stdout, run.stderr);
    eprintln!(
        "$ setup --write-kubeconfig --token-exchange-audience=… --token-exchange-scope=…\n{out}"
    );
    assert!(run.ok(), "{out}");
    let view = world.kubectl(
        &written,
        &["config", "view", "--raw", "-o", "json"],
        "alice",
    );
    view.assert_ok();
    let view = view.json();
    let exec_users: Vec<&Value> = view["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| !u["user"]["exec"].is_null())
        .collect();
    assert_eq!(exec_users.len(), 1, "one user for every cluster: {view}");
    assert_eq!(
        exec_users[0]["user"]["exec"]["provideClusterInfo"], true,
        "{view}"
    );
    let user_args = exec_users[0]["user"]["exec"]["args"].to_string();
    assert!(!user_args.contains("--token-exchange-"), "{user_args}");
    for (audience, scope) in AUDIENCES.iter().zip(&scopes) {
        let cluster = view["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == *audience)
            .unwrap();
        assert_eq!(
            cluster["cluster"]["extensions"],
            json!([{"name": "client.authentication.k8s.io/exec", "extension": {"audience": audience, "scope": scope}}]),
            "{cluster}"
        );
        let context = format!("oidc@{audience}");
        let (run, asked) = plugin_requests_during(&world, || {
            kubectl_at(
                &world,
                &written,
                &context,
                &["auth", "whoami", "-o", "json"],
            )
        });
        assert!(run.ok(), "{context}: {}", run.stderr);
        assert_eq!(crate::common::user_info(&run).0, "alice@example.com");
        // setup exchanged for each cluster already: a cache hit.
        assert!(asked.is_empty());
    }
    assert!(
        !std::fs::read_to_string(&written)
            .unwrap()
            .trim_start()
            .starts_with('{'),
        "the kubeconfig stays YAML"
    );

    // doctor, on one cluster's context of the written kubeconfig, names that cluster's
    // audience and scope from its extension, and the API server's view.
    let mut command = Command::new(PLUGIN);
    command.args(["doctor", &format!("--context=oidc@{}", AUDIENCES[2])]);
    world.prepare(
        &mut command,
        "alice",
        &[("KUBECONFIG", written.to_str().unwrap())],
    );
    let run = run_with_timeout(command, Duration::from_secs(120));
    let out = format!("{}{}", run.stdout, run.stderr);
    eprintln!("$ doctor --context=oidc@{}\n{out}", AUDIENCES[2]);
    assert!(run.ok(), "{out}");
    assert!(
        out.contains(&format!("audience {} (scope {})", AUDIENCES[2], scopes[2])),
        "{out}"
    );
    assert!(out.contains("alice@example.com"), "{out}");
}

/// What cannot work is named in one line, with what to change, and opens no browser loop: an
/// audience whose mapper sits in an optional scope nobody asked for, an audience whose mapper
/// is in neither the client nor the scope asked for, a scope the client does not have, and a
/// user flag that disagrees with the cluster's extension.
#[test]
fn cluster_settings_that_cannot_work_are_named_in_one_line_without_a_browser_loop() {
    let kc = keycloak_or_skip!();
    let world = KcWorld::new(kc, "t-one-user-refused", json!({}));
    add_cluster_clients(&world, &["cluster-a", "cluster-d"]);
    let scope = add_audience_scope(&world, "cluster-a");
    add_clients(
        &world,
        LOGIN_CLIENT,
        &[],
        json!({"optionalClientScopes": [scope]}),
    );
    let api = (world.api.url.as_str(), world.api.ca_pem.as_str());
    let clusters = [
        (
            "no-scope",
            api.0,
            api.1,
            Some(json!({"audience": "cluster-a"})),
        ),
        (
            "wrong-scope",
            api.0,
            api.1,
            Some(json!({"audience": "cluster-d", "scope": scope})),
        ),
        (
            "unknown-scope",
            api.0,
            api.1,
            Some(json!({"audience": "cluster-a", "scope": "aud-nope"})),
        ),
    ];
    let mut pinned = login_args(&world);
    pinned.push("--token-exchange-audience=cluster-d".into());
    let kubeconfig = one_user_kubeconfig(
        &world.path("kubeconfig"),
        &login_args(&world),
        &clusters,
        &[("pinned", pinned)],
        &[("disagree", "no-scope", "pinned")],
    );
    let cases = [
        // (context, what the line must say)
        (
            "no-scope",
            vec![
                "Requested audience not available",
                "--token-exchange-scope=SCOPE",
                "scope: SCOPE beside audience: cluster-a",
            ],
        ),
        (
            "wrong-scope",
            vec![
                "Requested audience not available",
                "Client scopes → aud-cluster-a → Mappers",
                "Included Client Audience cluster-d",
            ],
        ),
        (
            "unknown-scope",
            vec![
                "no client scope \"aud-nope\"",
                "Add client scope → aud-nope",
            ],
        ),
        (
            "disagree",
            vec![
                "--token-exchange-audience=\"cluster-d\"",
                "audience: \"cluster-a\"",
                "remove the flag",
            ],
        ),
    ];
    for (context, words) in cases {
        for attempt in 0..2 {
            let (run, after) = plugin_requests_during(&world, || {
                kubectl_at(&world, &kubeconfig, context, &["get", "--raw", "/api"])
            });
            eprintln!("$ kubectl --context={context} get --raw /api (attempt {attempt})\n{}requests: {after:?}", run.stderr);
            run.assert_failed();
            // The plugin's lines; kubectl adds its own about the failed exec.
            let errors: Vec<String> = error_lines(&run)
                .into_iter()
                .filter(|l| !l.contains("getting credentials"))
                .collect();
            assert!(!errors.is_empty(), "{}", run.stderr);
            assert!(
                errors.iter().all(|e| e == &errors[0]),
                "one line, the same each time kubectl asks: {errors:?}"
            );
            for word in &words {
                assert!(errors[0].contains(word), "{word:?} not in {}", errors[0]);
            }
            if context == "disagree" {
                assert!(after.is_empty(), "decided before any request: {after:?}");
            } else {
                // The token endpoint only (the first attempt also shows the one browser
                // login's pages); kubectl runs the plugin twice on a failure.
                assert!(
                    after
                        .iter()
                        .filter(|r| !r.starts_with("GET /protocol/openid-connect/auth")
                            && !r.contains("/login-actions/"))
                        .all(|r| r == TOKEN),
                    "{after:?}"
                );
            }
        }
        assert_eq!(world.logins(1).len(), 1, "one browser login in all");
    }
}
