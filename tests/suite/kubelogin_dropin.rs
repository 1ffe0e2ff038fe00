//! Drop-in for kubelogin kubeconfigs, end to end: exec entries spelled as kubelogin users
//! write them (its README, docs/, issues; pflag's and klog's syntax), each run by the real
//! kubectl against the test provider. Each row states what the provider must then have seen:
//! the authorization request's parameters and the extra headers, exactly.

use std::collections::BTreeMap;

use crate::common::kubelogin_table::{is_deprecated, rows, url_host, STANDARD};
use crate::common::{support_dir, World};

#[test]
fn kubelogin_exec_entries_work_through_kubectl_and_send_what_they_ask_for() {
    let world = World::new(300);
    let token_path = "/realms/test/protocol/openid-connect/token";
    let rows = rows();
    assert!(rows.len() >= 30, "{} rows", rows.len());
    let mut failures = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let mut args = vec![
            "get-token".to_string(),
            format!("--oidc-issuer-url={}", world.provider.issuer),
            "--oidc-client-id=kubernetes".to_string(),
            format!(
                "--token-cache-dir={}",
                world.path(&format!("cache-{i}")).display()
            ),
            format!(
                "--browser-command={}",
                support_dir().join("login.mjs").display()
            ),
        ];
        if !row.args.iter().any(|a| a.starts_with("--listen")) {
            args.push("--listen-address=127.0.0.1:0".into());
        }
        args.extend(row.args.iter().map(|a| a.to_string()));
        // One row puts a klog flag before the subcommand, as `kubectl oidc-login --v=1
        // get-token` would.
        if i == 0 {
            args.insert(0, "--log_dir=/tmp".into());
        }
        let kubeconfig = world.kubeconfig(
            &format!("kubeconfig-{i}"),
            "client.authentication.k8s.io/v1",
            crate::common::PLUGIN,
            &args,
        );
        let logins_before = world.logins().len();
        let run = world.kubectl(&kubeconfig, &["auth", "whoami", "-o", "json"], &[]);
        if !run.ok() {
            failures.push(format!("{:?}: kubectl failed: {}", row.args, run.stderr));
            continue;
        }
        let logins = world.wait_for_logins(logins_before + 1);
        let Some(login) = logins.get(logins_before) else {
            failures.push(format!("{:?}: no browser login", row.args));
            continue;
        };
        let params: BTreeMap<String, String> =
            serde_json::from_value(login["auth_params"].clone()).unwrap();
        let extras: BTreeMap<String, String> = params
            .iter()
            .filter(|(k, _)| !STANDARD.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let want_extras: BTreeMap<String, String> = row
            .extra_params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if extras != want_extras {
            failures.push(format!("{:?}: extra params {extras:?}", row.args));
        }
        if params.get("scope").map(String::as_str) != Some(row.scope) {
            failures.push(format!("{:?}: scope {:?}", row.args, params.get("scope")));
        }
        if params.get("access_type").map(String::as_str) != Some("offline") {
            failures.push(format!("{:?}: access_type {params:?}", row.args));
        }
        if params.get("code_challenge_method").map(String::as_str) != Some("S256") {
            failures.push(format!("{:?}: PKCE {params:?}", row.args));
        }
        let redirect = url_host(params.get("redirect_uri").map(String::as_str).unwrap_or(""));
        if redirect != row.redirect_host {
            failures.push(format!("{:?}: redirect host {redirect}", row.args));
        }
        let seen: BTreeMap<String, String> = world.provider.headers()[token_path]
            .as_object()
            .map(|h| {
                h.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let want_headers: BTreeMap<String, String> = row
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if seen != want_headers {
            failures.push(format!("{:?}: headers {seen:?}", row.args));
        }
        if run.stderr.contains("Flag --") != row.args.iter().any(|a| is_deprecated(a)) {
            failures.push(format!(
                "{:?}: deprecation notice: {}",
                row.args, run.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A login cached by kubelogin: its file format (`{"id_token","refresh_token"}` JSON in a
/// file named by a 64-hex-digit hash, mode 0600), with real tokens from the test provider.
fn kubelogin_cache_file(world: &World, dir: &std::path::Path, name: &str) {
    let entry = world.kubelogin_entry(name, &[]);
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, entry.to_string()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

const HASH_A: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";
const HASH_B: &str = "f9e8d7c6b5a40392817f6e5d4c3b2a10f9e8d7c6b5a40392817f6e5d4c3b2a10";

#[test]
fn a_kubelogin_login_is_imported_without_a_browser_then_refreshed_once() {
    let world = World::new(20);
    let cache = world.cache_dir();
    kubelogin_cache_file(&world, &cache, HASH_A);
    let logins_before = world.wait_for_logins(1).len();
    world.provider.reset_counts();

    // kubelogin's default storage was disk; the refresh token goes where ours says.
    let kubeconfig = world.default_kubeconfig(&["--token-cache-storage=disk"]);
    let run = world.kubectl(&kubeconfig, &["auth", "whoami", "-o", "json"], &[]);
    run.assert_ok();
    assert!(
        run.stderr.contains("Imported the login kubelogin cached"),
        "{}",
        run.stderr
    );
    assert_eq!(world.logins().len(), logins_before, "no browser login");
    // The API server stand-in fetches the provider's keys itself; the plugin made no token
    // request: the ID token was still valid.
    assert_eq!(world.provider.count("/protocol/openid-connect/token"), 0);

    // Once kubelogin's ID token has expired: one refresh, still no browser.
    world.wait_for_cached_token_to_expire();
    world.provider.reset_counts();
    let run = world.kubectl(&kubeconfig, &["auth", "whoami", "-o", "json"], &[]);
    run.assert_ok();
    assert_eq!(world.provider.count("/protocol/openid-connect/token"), 1);
    assert_eq!(
        world.logins().len(),
        logins_before,
        "still no browser login"
    );
    assert!(
        !run.stderr.contains("Imported"),
        "imported once: {}",
        run.stderr
    );
}

#[test]
fn an_expired_kubelogin_login_is_refreshed_at_once() {
    let world = World::new(12);
    let cache = world.cache_dir();
    kubelogin_cache_file(&world, &cache, HASH_A);
    let logins_before = world.wait_for_logins(1).len();
    std::thread::sleep(std::time::Duration::from_secs(3));
    world.provider.reset_counts();
    let kubeconfig = world.default_kubeconfig(&["--token-cache-storage=disk"]);
    let run = world.kubectl(&kubeconfig, &["auth", "whoami", "-o", "json"], &[]);
    run.assert_ok();
    assert!(run.stderr.contains("Imported"), "{}", run.stderr);
    assert_eq!(world.provider.count("/protocol/openid-connect/token"), 1);
    assert_eq!(world.logins().len(), logins_before, "no browser login");
}

#[test]
fn two_matching_kubelogin_logins_are_not_imported() {
    let world = World::new(300);
    let cache = world.cache_dir();
    kubelogin_cache_file(&world, &cache, HASH_A);
    kubelogin_cache_file(&world, &cache, HASH_B);
    let logins_before = world.wait_for_logins(2).len();
    let kubeconfig = world.default_kubeconfig(&["--token-cache-storage=disk"]);
    let run = world.kubectl(&kubeconfig, &["auth", "whoami", "-o", "json"], &[]);
    run.assert_ok();
    assert!(run.stderr.contains("importing none"), "{}", run.stderr);
    assert_eq!(
        world.wait_for_logins(logins_before + 1).len(),
        logins_before + 1
    );
}

#[test]
fn clean_removes_kubelogins_files_too() {
    let world = World::new(300);
    let cache = world.cache_dir();
    kubelogin_cache_file(&world, &cache, HASH_A);
    std::fs::write(cache.join(format!("{HASH_A}.lock")), "").unwrap();
    // A login of this plugin beside it.
    world.plugin(&world.get_token_args(), &[]).assert_ok();
    let run = world.plugin(
        &[
            "clean".into(),
            format!("--token-cache-dir={}", cache.display()),
            "--token-cache-storage=disk".into(),
        ],
        &[],
    );
    run.assert_ok();
    assert!(
        run.stderr
            .contains("Removed kubelogin's cached logins: 1 file(s)"),
        "{}",
        run.stderr
    );
    let left: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn version_setup_guide_and_kubecachedir() {
    let world = World::new(300);
    let run = world.plugin(&["version".into()], &[]);
    run.assert_ok();
    assert!(
        run.stdout.starts_with("kubectl-oidc_login version "),
        "{}",
        run.stdout
    );
    let run = world.plugin(&["setup".into()], &[]);
    run.assert_ok();
    assert!(
        run.stdout
            .contains("kubectl oidc-login setup --oidc-issuer-url="),
        "{}",
        run.stdout
    );

    // Without --token-cache-dir, KUBECACHEDIR decides (the world sets it for every process).
    let mut args = world.get_token_args();
    args.retain(|a| !a.starts_with("--token-cache-dir"));
    args.push("--token-cache-storage=disk".into());
    world.plugin(&args, &[]).assert_ok();
    let dir = world.path("kubecache").join("oidc-login");
    assert!(
        std::fs::read_dir(&dir).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".token.json")),
        "a token file in {}",
        dir.display()
    );
    let run = world.plugin(&["accounts".into()], &[]);
    run.assert_ok();
    assert!(run.stdout.contains("client kubernetes"), "{}", run.stdout);
    let help = world.plugin(&["get-token".into(), "--help".into()], &[]);
    assert!(help.stdout.contains("KUBECACHEDIR"), "{}", help.stdout);
    // Run by hand, the plugin answers as kubelogin does: v1beta1.
    let run = world.plugin(&args, &[]);
    run.assert_ok();
    assert_eq!(
        run.json()["apiVersion"],
        "client.authentication.k8s.io/v1beta1"
    );
}

#[test]
fn without_stdin_but_with_a_terminal_on_stderr_the_url_is_printed_and_awaited() {
    // `kubectl apply -f - < x.yaml`: kubectl says interactive=false (stdin is taken), but the
    // person at the terminal reads stderr. `script` gives the plugin that terminal.
    let world = World::new(300);
    let mut args = world.get_token_args();
    args.retain(|a| !a.starts_with("--browser-command"));
    args.push("--skip-open-browser".into());
    args.push("--authentication-timeout-sec=2".into());
    let line = std::iter::once(crate::common::PLUGIN.to_string())
        .chain(args)
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut command = std::process::Command::new("script");
    command.args(["-qec", &line, "/dev/null"]);
    let exec_info = r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}"#;
    let run = world.run(command, &[("KUBERNETES_EXEC_INFO", exec_info)]);
    let shown = format!("{}{}", run.stdout, run.stderr);
    assert!(shown.contains("Sign in to continue"), "{shown}");
    assert!(
        shown.contains("no browser login completed within"),
        "it waited for the login: {shown}"
    );
    assert!(!shown.contains("no person can see it"), "{shown}");

    // Without the terminal, nobody sees the URL: refused at once.
    let mut args = world.get_token_args();
    args.retain(|a| !a.starts_with("--browser-command"));
    args.push("--skip-open-browser".into());
    let run = world.plugin(&args, &[("KUBERNETES_EXEC_INFO", exec_info)]);
    run.assert_failed();
    assert!(
        run.stderr.contains("no person can see it"),
        "{}",
        run.stderr
    );
}

/// The requests in which the client authenticated at `endpoint`, as (auth style, grant type,
/// status): what the provider saw of the client authentication.
fn client_auth_seen(world: &World, endpoint: &str) -> Vec<(String, String, u64)> {
    world
        .provider
        .client_requests()
        .iter()
        .filter(|r| r["endpoint"] == endpoint)
        .map(|r| {
            (
                r["auth"].as_str().unwrap_or("").to_string(),
                r["grant_type"].as_str().unwrap_or("").to_string(),
                r["status"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn seen(auth: &str, grant: &str, status: u64) -> (String, String, u64) {
    (auth.to_string(), grant.to_string(), status)
}

/// get-token arguments for the realm's client limited to client_secret_post.
fn post_client_args(world: &World) -> Vec<String> {
    let mut args = world.get_token_args();
    args.retain(|a| !a.starts_with("--oidc-client-id"));
    args.push("--oidc-client-id=kubernetes-post".into());
    args.push("--oidc-client-secret=post-secret".into());
    if let Some(ca) = &world.provider_ca {
        args.push(format!("--certificate-authority={}", ca.display()));
    }
    args
}

#[test]
fn a_client_limited_to_client_secret_post_signs_in_refreshes_and_revokes() {
    // Auth0, Zitadel and Authelia let an admin limit a client to client_secret_post while
    // their discovery lists both methods; HTTP Basic then gets 401 invalid_client. HTTPS, so
    // logout's revocation (RFC 7009 wants TLS) is sent too.
    let world = World::with_https_provider(300);
    let args = post_client_args(&world);
    let kubeconfig = world.kubeconfig(
        "kubeconfig",
        "client.authentication.k8s.io/v1",
        crate::common::PLUGIN,
        &args,
    );
    world
        .kubectl(&kubeconfig, &["auth", "whoami", "-o", "json"], &[])
        .assert_ok();
    // As kubelogin (Go's oauth2): HTTP Basic first, then the secret in the body.
    assert_eq!(
        client_auth_seen(&world, "/token"),
        [
            seen("basic", "", 401),
            seen("post", "authorization_code", 200)
        ]
    );

    // The style is kept with the login: a refresh in a new process is one request, no 401.
    world.provider.reset_counts();
    let mut refresh = args.clone();
    refresh.push("--force-refresh".into());
    world.plugin(&refresh, &[]).assert_ok();
    assert_eq!(
        client_auth_seen(&world, "/token"),
        [seen("post", "refresh_token", 200)]
    );

    // And logout revokes the refresh token the same way.
    world.provider.reset_counts();
    let mut logout = args.clone();
    logout[0] = "logout".into();
    logout.push("--keep-session".into());
    let run = world.plugin(&logout, &[]);
    run.assert_ok();
    assert!(
        run.stderr.contains("Revoked the refresh token"),
        "{}",
        run.stderr
    );
    assert_eq!(client_auth_seen(&world, "/revoke"), [seen("post", "", 200)]);
}

#[test]
fn a_provider_whose_discovery_lists_only_client_secret_post_gets_it_at_once() {
    let world = World::with_provider(&[("OP_DISCOVERY_POST_ONLY", "1".into())]);
    world.plugin(&post_client_args(&world), &[]).assert_ok();
    assert_eq!(
        client_auth_seen(&world, "/token"),
        [seen("post", "authorization_code", 200)]
    );
}

/// The claims of the token in an ExecCredential.
fn credential_claims(run: &crate::common::Run) -> serde_json::Value {
    crate::common::jwt_claims(run.json()["status"]["token"].as_str().unwrap())
}

fn scopes_seen(world: &World) -> Vec<std::collections::BTreeSet<String>> {
    world
        .provider
        .client_requests()
        .iter()
        .filter(|r| r["endpoint"] == "/token")
        .map(|r| {
            r["scope"]
                .as_str()
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_string)
                .collect()
        })
        .collect()
}

#[test]
fn client_credentials_ask_for_openid_and_hand_kubectl_the_id_token() {
    let world = World::new(300);
    let mut args = world.grant_args("robot", "client-credentials");
    args.push("--oidc-client-secret=robot-secret".into());
    args.push("--oidc-extra-scope=email".into());
    let want: std::collections::BTreeSet<String> =
        ["openid", "email"].iter().map(|s| s.to_string()).collect();

    // As kubelogin: scope=openid plus the extra scopes, and the ID token the provider returns
    // for it (Keycloak does), whose audience is the client itself.
    let run = world.plugin(&args, &[]);
    run.assert_ok();
    assert_eq!(scopes_seen(&world), std::slice::from_ref(&want));
    let claims = credential_claims(&run);
    assert_eq!(claims["aud"], "robot", "the ID token: {claims}");
    // The API server takes it (its audiences include the robot client).
    let kubeconfig = world.kubeconfig(
        "kubeconfig",
        "client.authentication.k8s.io/v1",
        crate::common::PLUGIN,
        &args,
    );
    let whoami = world.kubectl(&kubeconfig, &["auth", "whoami", "-o", "json"], &[]);
    whoami.assert_ok();
    assert_eq!(
        whoami.json()["status"]["userInfo"]["username"],
        "robot:robot"
    );

    // --oidc-use-access-token: the same scopes, and the access token (audience kubernetes).
    world.provider.reset_counts();
    let mut access = args.clone();
    access.push("--oidc-use-access-token".into());
    access.push("--force-refresh".into());
    let run = world.plugin(&access, &[]);
    run.assert_ok();
    assert_eq!(scopes_seen(&world), [want]);
    let claims = credential_claims(&run);
    assert_eq!(claims["aud"], "kubernetes", "the access token: {claims}");
}

#[test]
fn the_password_grant_leaves_out_the_authorization_request_extra_params() {
    let world = World::new(300);
    let mut args = world.grant_args("kubernetes-password", "password");
    args.push("--username=alice".into());
    args.push("--password=secret".into());
    args.push("--oidc-auth-request-extra-params=ui_locales=en,kc_idp_hint=ldap".into());
    world.plugin(&args, &[]).assert_ok();
    let requests = world.provider.client_requests();
    let params: Vec<&str> = requests[0]["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(
        params,
        ["client_id", "grant_type", "password", "scope", "username"],
        "kubelogin sends those parameters with authorization requests only"
    );
}

#[test]
fn a_provider_that_does_not_announce_pkce_still_gets_s256() {
    // Deliberately unlike kubelogin (which sends no challenge then, e.g. to Entra ID): RFC
    // 9700 recommends PKCE everywhere, and providers ignore parameters they do not know.
    let world = World::with_provider(&[("OP_PKCE_UNANNOUNCED", "1".into())]);
    world.plugin(&world.get_token_args(), &[]).assert_ok();
    let login = &world.wait_for_logins(1)[0];
    assert_eq!(login["auth_params"]["code_challenge_method"], "S256");
    let requests = world.provider.client_requests();
    assert!(
        requests[0]["params"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "code_verifier"),
        "{requests:?}"
    );
}

#[test]
fn a_disabled_account_is_named_without_nested_parentheses() {
    // Keycloak refuses a disabled user's refresh with `invalid_grant` "User disabled".
    let world = World::with_provider(&[("OP_REFRESH_ERROR", "User disabled".into())]);
    world.plugin(&world.get_token_args(), &[]).assert_ok();
    let mut args = world.get_token_args();
    args.push("--force-refresh".into());
    let run = world.plugin(&args, &[]);
    run.assert_failed();
    assert!(
        run.stderr
            .contains("disabled the account alice@example.com (invalid_grant: User disabled); "),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("))"), "{}", run.stderr);
}

#[test]
fn a_remembered_client_authentication_the_provider_now_refuses_is_found_again() {
    // A login cached with HTTP Basic (by an earlier release, or before an admin limited the
    // client to client_secret_post): its refresh is refused once, then the body works and is
    // kept, so the refresh after it is one request again.
    let world = World::new(300);
    let mut args = post_client_args(&world);
    args.push("--token-cache-storage=disk".into());
    world.plugin(&args, &[]).assert_ok();
    let (path, text) = world
        .cache_files()
        .into_iter()
        .find(|(p, _)| p.to_string_lossy().ends_with(".token.json"))
        .expect("a token file");
    assert!(
        text.contains(r#""client_auth":"client_secret_post""#),
        "{text}"
    );
    std::fs::write(
        &path,
        text.replace(
            r#""client_auth":"client_secret_post""#,
            r#""client_auth":"client_secret_basic""#,
        ),
    )
    .unwrap();
    let mut refresh = args.clone();
    refresh.push("--force-refresh".into());
    world.provider.reset_counts();
    world.plugin(&refresh, &[]).assert_ok();
    assert_eq!(
        client_auth_seen(&world, "/token"),
        [seen("basic", "", 401), seen("post", "refresh_token", 200)]
    );
    world.provider.reset_counts();
    world.plugin(&refresh, &[]).assert_ok();
    assert_eq!(
        client_auth_seen(&world, "/token"),
        [seen("post", "refresh_token", 200)]
    );
}
