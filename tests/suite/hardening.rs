//! What the plugin refuses, input by input: forged ID tokens from the real provider (re-signed
//! by tests/support/provider.mjs with OP_FORGE), a broken provider, hostile requests to the
//! loopback listener, damaged local state, and bad kubeconfig input. Each case asserts the
//! message, the exit code, an empty stdout (kubectl must never get a half credential) and the
//! cache left as it was.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::common::{Run, World};

/// Every cache file name and its content.
fn cache_snapshot(world: &World) -> BTreeMap<PathBuf, Vec<u8>> {
    world
        .cache_files()
        .into_iter()
        .map(|(p, _)| {
            let content = std::fs::read(&p).unwrap_or_default();
            (p, content)
        })
        .collect()
}

/// No token or refresh token was cached (provider metadata may be).
fn no_tokens_cached(world: &World) -> bool {
    world.cache_files().iter().all(|(p, _)| {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        !name.ends_with(".token.json") && !name.ends_with(".refresh.json")
    })
}

#[track_caller]
fn assert_refused(run: &Run, message: &str) {
    run.assert_failed();
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "stdout: {}", run.stdout);
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: "), "{}", run.stderr);
    assert!(
        run.stderr.contains(message),
        "expected {message:?} in: {}",
        run.stderr
    );
}

/// Logs in against a provider that forges its ID tokens with `mode`; returns the run.
fn login_with_forged_token(mode: &str) -> (World, Run) {
    let world = World::with_provider(&[("OP_FORGE", mode.to_string())]);
    let run = world.plugin(&world.get_token_args(), &[]);
    (world, run)
}

macro_rules! forged_id_token_cases {
    ($($name:ident: $mode:literal => $message:literal,)*) => {$(
        #[test]
        fn $name() {
            let (world, run) = login_with_forged_token($mode);
            assert_refused(&run, "the ID token failed verification");
            assert_refused(&run, $message);
            assert!(no_tokens_cached(&world), "{:?}", world.cache_files());
        }
    )*};
}

forged_id_token_cases! {
    id_token_from_another_issuer: "wrong_iss" => "--oidc-issuer-url must equal the provider's issuer",
    id_token_for_another_audience: "wrong_aud" => "the token is not for --oidc-client-id",
    id_token_with_two_audiences_and_no_azp: "multi_aud_no_azp" => "`someone-else` is not a trusted audience",
    id_token_authorized_for_another_party: "wrong_azp" => "`someone-else` is not a trusted audience",
    id_token_with_another_nonce: "wrong_nonce" => "the token does not belong to this login",
    id_token_with_alg_none: "alg_none" => "the token is unsigned (alg none), which is never accepted",
    id_token_hmac_signed_with_the_public_key: "hs256_public_key" => "HMAC-signed (HS256), which a public client without a secret never accepts",
    id_token_signed_by_another_key: "other_key" => "the signature does not match the provider's key test-key-1",
    id_token_with_an_unlisted_alg: "unlisted_alg" => "algorithm RS512 is not one the provider announces for ID tokens (RS256)",
}

/// Tokens refused for a time reason, by the provider's own clock (its Date header): one error
/// that says so, with the clock hint once.
macro_rules! untimely_id_token_cases {
    ($($name:ident: $mode:literal => $message:literal,)*) => {$(
        #[test]
        fn $name() {
            let (world, run) = login_with_forged_token($mode);
            assert_refused(&run, "the ID token is not valid at the provider's time");
            assert_refused(&run, $message);
            assert_eq!(run.stderr.matches("timedatectl").count(), 1, "{}", run.stderr);
            assert!(no_tokens_cached(&world), "{:?}", world.cache_files());
        }
    )*};
}

untimely_id_token_cases! {
    id_token_already_expired: "expired" => "ID token expired at",
    id_token_issued_in_the_future: "future_iat" => "s in the future",
}

#[test]
fn id_token_with_an_unknown_kid_fetches_the_keys_once_more_then_refuses() {
    let (world, run) = login_with_forged_token("unknown_kid");
    assert_refused(
        &run,
        "the provider's keys do not include the token's key id",
    );
    assert_eq!(
        world.provider.count("/protocol/openid-connect/certs"),
        2,
        "one JWKS fetch at discovery, one re-fetch for the unknown kid"
    );
    assert!(no_tokens_cached(&world));
}

macro_rules! broken_discovery_cases {
    ($($name:ident: $mode:literal => $message:literal,)*) => {$(
        #[test]
        fn $name() {
            let world = World::with_provider(&[("OP_DISCOVERY", $mode.to_string())]);
            let run = world.plugin(&world.get_token_args(), &[]);
            assert_refused(&run, $message);
            assert!(world.logins().is_empty(), "no browser for a broken provider");
            // Only the lock file (the single-flight lock, kept by design) may exist.
            assert!(
                world.cache_files().iter().all(|(p, _)| p.to_string_lossy().ends_with(".lock")),
                "{:?}",
                world.cache_files()
            );
        }
    )*};
}

broken_discovery_cases! {
    discovery_answering_500: "500" => "HTTP 500",
    discovery_answering_an_html_page: "html" => "discovery of",
    discovery_answering_truncated_json: "truncated" => "discovery of",
    discovery_answering_an_oversized_body: "huge" => "larger than 1048576 bytes",
}

#[test]
fn discovery_of_a_realm_that_does_not_exist() {
    let world = World::new(300);
    let mut args = world.get_token_args();
    args[1] = format!("--oidc-issuer-url={}-typo", world.provider.issuer);
    assert_refused(&world.plugin(&args, &[]), "HTTP 404");
}

macro_rules! token_endpoint_cases {
    ($($name:ident: $mode:literal => $message:literal,)*) => {$(
        #[test]
        fn $name() {
            let world = World::with_provider(&[("OP_TOKEN_ERROR", $mode.to_string())]);
            let run = world.plugin(&world.get_token_args(), &[]);
            assert_refused(&run, $message);
            assert!(no_tokens_cached(&world));
        }
    )*};
}

token_endpoint_cases! {
    token_endpoint_answering_500: "500" => "answered HTTP 500, a server error",
    token_endpoint_invalid_grant: "invalid_grant" => "invalid_grant (refused by the test provider); the login expired or was revoked",
    token_endpoint_invalid_client: "invalid_client" => "Client authentication off for a public client",
    token_endpoint_unauthorized_client: "unauthorized_client" => "enable the grant for this client at the provider",
}

#[test]
fn a_provider_that_accepts_and_never_answers_times_out_with_its_host_named() {
    // Accepts connections and reads nothing back: the request must time out (30 s).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in listener.incoming().take(4) {
            open.push(stream);
        }
        open
    });
    let world = World::new(300);
    let mut args = world.get_token_args();
    args[1] = format!("--oidc-issuer-url=http://127.0.0.1:{port}/realms/test");
    let run = world.plugin(&args, &[]);
    assert_refused(&run, &format!("request to 127.0.0.1:{port} failed"));
    assert_refused(&run, "the provider did not answer in time");
    drop(held);
}

#[test]
fn the_loopback_listener_survives_stray_and_hostile_requests() {
    let world = World::new(300);
    let run = world.plugin(&world.get_token_args(), &[("LOGIN_BAD_CALLBACKS", "1")]);
    run.assert_ok();
    let login = &world.wait_for_logins(1)[0];
    let bad = &login["bad"];
    assert_eq!(bad["favicon"], 404, "{bad}");
    assert_eq!(bad["no_state"], 400, "a callback without state: {bad}");
    assert_eq!(bad["rebinding"], 421, "a foreign Host header: {bad}");
    assert_ne!(bad["giant_header"], 200, "{bad}");
    // None of them ended the login: the real callback did.
    assert_eq!(login["callback_status"], 200);
    assert!(run
        .stderr
        .contains("ignored a login redirect whose state does not match"));
    assert!(!run.stderr.contains("stolen-code"));
}

#[test]
fn the_loopback_listener_binds_loopback_only_and_names_the_flag_when_ports_are_taken() {
    let world = World::new(300);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut args = world.get_token_args();
    args.retain(|a| !a.starts_with("--listen-address"));
    args.push(format!("--listen-address=127.0.0.1:{port}"));
    let run = world.plugin(&args, &[]);
    assert_refused(&run, &format!("cannot listen on 127.0.0.1:{port}"));
    assert_refused(&run, "--listen-address");
    assert!(world.logins().is_empty());
    // The next address is tried when the first is taken.
    args.push("--listen-address=127.0.0.1:0".into());
    let run = world.plugin(&args, &[]);
    run.assert_ok();
    let redirect = world.wait_for_logins(1)[0]["auth_params"]["redirect_uri"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!redirect.ends_with(&format!(":{port}")), "{redirect}");
}

/// Logs in once, damages the cached token file with `damage`, and runs again.
fn with_damaged_cache(damage: impl Fn(&std::path::Path)) -> (World, Run) {
    let world = World::new(300);
    let mut args = world.get_token_args();
    args.push("--token-cache-storage=disk".into());
    world.plugin(&args, &[]).assert_ok();
    let token_file = world
        .cache_files()
        .into_iter()
        .map(|(p, _)| p)
        .find(|p| p.to_string_lossy().ends_with(".token.json"))
        .unwrap();
    damage(&token_file);
    let run = world.plugin(&args, &[]);
    (world, run)
}

macro_rules! damaged_cache_cases {
    ($($(#[$meta:meta])* $name:ident: $damage:expr => $message:literal,)*) => {$(
        #[test]
        $(#[$meta])*
        fn $name() {
            // Recovered, not fatal: a warning names the file, the refresh token (a separate
            // file) still works, and kubectl gets a good credential.
            let (world, run) = with_damaged_cache($damage);
            run.assert_ok();
            assert!(run.stderr.contains($message), "{}", run.stderr);
            assert!(run.stderr.contains(".token.json"), "{}", run.stderr);
            assert!(run.stdout.contains("\"kind\":\"ExecCredential\""));
            assert_eq!(world.logins().len(), 1, "refreshed, no new login");
        }
    )*};
}

damaged_cache_cases! {
    cache_file_truncated: |p: &std::path::Path| {
        let text = std::fs::read(p).unwrap();
        std::fs::write(p, &text[..text.len() / 2]).unwrap();
    } => "is damaged",
    cache_file_not_json: |p: &std::path::Path| std::fs::write(p, "\u{0}\u{1}binary").unwrap() => "is damaged",
    cache_file_of_another_version: |p: &std::path::Path| {
        let mut json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        json["version"] = serde_json::json!(99);
        std::fs::write(p, json.to_string()).unwrap();
    } => "format version 99",
    cache_file_replaced_by_a_directory: |p: &std::path::Path| {
        std::fs::remove_file(p).unwrap();
        std::fs::create_dir(p).unwrap();
    } => "not a regular file",
    // File owners and modes are Unix permissions; Windows keeps the cache in the profile,
    // whose ACL is the user's.
    #[cfg(unix)]
    cache_file_owned_by_another_user: |p: &std::path::Path| {
        std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
    } => "belongs to another user (uid 65534)",
}

#[test]
#[cfg(unix)]
fn a_cache_directory_others_can_read_is_tightened() {
    let world = World::new(300);
    let dir = world.cache_dir();
    std::fs::create_dir_all(&dir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = world.plugin(&world.get_token_args(), &[]);
    run.assert_ok();
    assert!(
        run.stderr.contains("had mode 777; setting it to 700"),
        "{}",
        run.stderr
    );
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

macro_rules! bad_command_line_cases {
    ($($name:ident: [$($arg:literal),*] => $code:literal, $message:literal,)*) => {$(
        #[test]
        fn $name() {
            let world = World::new(300);
            let mut args = world.get_token_args();
            args.extend([$($arg.to_string()),*]);
            let before = cache_snapshot(&world);
            let run = world.plugin(&args, &[]);
            run.assert_failed();
            assert_eq!(run.status.code(), Some($code), "{}", run.stderr);
            assert!(run.stdout.is_empty());
            assert!(run.stderr.contains($message), "{}", run.stderr);
            assert_eq!(cache_snapshot(&world), before);
            assert!(world.logins().is_empty());
        }
    )*};
}

bad_command_line_cases! {
    kubeconfig_with_a_misspelt_flag: ["--oidc-issuer=https://x"] => 2, "unexpected argument '--oidc-issuer'",
    kubeconfig_with_an_unknown_grant: ["--grant-type=magic"] => 2, "invalid value 'magic' for '--grant-type",
    kubeconfig_with_a_header_that_is_not_key_value: ["--oidc-request-header=oops"] => 1, "--oidc-request-header expects KEY=VALUE",
    kubeconfig_with_half_a_local_server_certificate: ["--local-server-cert=/tmp/c.pem"] => 1, "must be given together",
    kubeconfig_with_an_issuer_that_is_not_a_url: ["--oidc-issuer-url=not a url"] => 1, "is not a valid URL",
}

#[test]
fn kubeconfig_without_a_client_id() {
    let world = World::new(300);
    let args = vec![
        "get-token".to_string(),
        format!("--oidc-issuer-url={}", world.provider.issuer),
    ];
    let run = world.plugin(&args, &[]);
    assert_eq!(run.status.code(), Some(2));
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr.contains("--oidc-client-id <ID>"),
        "{}",
        run.stderr
    );
}

macro_rules! bad_exec_info_cases {
    ($($name:ident: $info:literal => $message:literal,)*) => {$(
        #[test]
        fn $name() {
            let world = World::new(300);
            let run = world.plugin(&world.get_token_args(), &[("KUBERNETES_EXEC_INFO", $info)]);
            assert_refused(&run, $message);
            assert!(world.logins().is_empty());
            assert!(world.cache_files().is_empty());
        }
    )*};
}

bad_exec_info_cases! {
    exec_info_that_is_not_json: "{not json" => "KUBERNETES_EXEC_INFO",
    exec_info_of_an_unknown_api_version: r#"{"apiVersion":"client.authentication.k8s.io/v2","kind":"ExecCredential","spec":{}}"# => "client.authentication.k8s.io/v2",
}
