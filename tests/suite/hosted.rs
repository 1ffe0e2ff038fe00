//! Hosted OpenID Providers that cannot run here (Microsoft Entra ID, Google, Okta, Auth0, AWS
//! Cognito, GitLab; Dex, whose module the Go proxy here does not serve): each one's documented
//! quirk, shown by the real npm provider (tests/support/provider.mjs) configured with an OP_*
//! switch to behave that way, through the real kubectl and the HTTPS API stand-in. One test per
//! provider, citing the provider's own documentation. What docs/providers.md calls
//! "shown by configuration".

use crate::common::{user_info, ApiServer, Provider, World};

const TOKEN: &str = "/protocol/openid-connect/token";

/// A world whose provider is configured by `envs` and whose API server by `api_envs`
/// (tests/support/apiserver.mjs: OIDC_GROUPS_CLAIM, ...).
fn world(envs: &[(&str, String)], api_envs: &[(&str, String)]) -> World {
    let dir = tempfile::tempdir().unwrap();
    let provider = Provider::start_with(dir.path(), envs);
    let api = ApiServer::start_with(
        dir.path(),
        &provider.issuer,
        "kubernetes,kubernetes-device,kubernetes-password",
        api_envs,
    );
    World {
        dir,
        provider,
        api,
        provider_ca: None,
    }
}

fn env(pairs: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

/// Token requests since the last reset (the realm may not be `test`).
fn token_requests(world: &World) -> u64 {
    let path = url::Url::parse(&world.provider.issuer)
        .unwrap()
        .path()
        .to_string();
    world.provider.counts()[format!("{path}{TOKEN}")]
        .as_u64()
        .unwrap_or(0)
}

fn get(world: &World, kubeconfig: &std::path::Path) -> crate::common::Run {
    let run = world.kubectl(kubeconfig, &["get", "--raw", "/api"], &[]);
    run.assert_ok();
    run
}

/// One refresh at the next expiry: exactly one request, the token request, and no browser.
fn assert_one_request_refresh(world: &World, kubeconfig: &std::path::Path, logins: usize) {
    world.wait_for_cached_token_to_expire();
    world.provider.reset_counts();
    get(world, kubeconfig);
    assert_eq!(token_requests(world), 1, "{}", world.provider.counts());
    assert_eq!(
        world.provider.realm_requests(),
        1,
        "{}",
        world.provider.counts()
    );
    assert_eq!(world.wait_for_logins(logins).len(), logins);
}

fn cached_refresh_token(world: &World) -> Option<String> {
    std::fs::read_dir(world.cache_dir())
        .unwrap()
        .any(|e| {
            e.unwrap()
                .path()
                .to_string_lossy()
                .ends_with(".refresh.json")
        })
        .then(|| world.cached_refresh_token())
}

/// Microsoft Entra ID: the issuer is per tenant, `https://login.microsoftonline.com/{tenant}/v2.0`
/// (https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc); its discovery
/// does not announce PKCE (no code_challenge_methods_supported; kubelogin issue 440) though it
/// supports S256 (https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow);
/// a refresh token comes only with the `offline_access` scope
/// (https://learn.microsoft.com/en-us/entra/identity-platform/scopes-oidc#offline_access).
#[test]
fn entra_id_tenant_issuer_unannounced_pkce_and_offline_access() {
    let world = world(
        &env(&[
            ("OP_REALM", "9188040d-6c67-4c5b-b112-36a304b66dad/v2.0"),
            ("OP_PKCE_UNANNOUNCED", "1"),
            ("OP_REFRESH_TOKEN_FOR", "offline_access"),
            ("OP_ID_TOKEN_TTL", "15"),
        ]),
        &[],
    );
    assert!(world
        .provider
        .issuer
        .ends_with("/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0"));

    // Without offline_access: a login, but no refresh token, so the expiry is a browser login.
    let plain = world.default_kubeconfig(&[]);
    get(&world, &plain);
    let logins = world.wait_for_logins(1);
    // PKCE S256 though discovery does not announce it (the safer choice; see docs/kubelogin.md).
    assert_eq!(logins[0]["auth_params"]["code_challenge_method"], "S256");
    assert_eq!(cached_refresh_token(&world), None);
    world.wait_for_cached_token_to_expire();
    world.provider.reset_counts();
    get(&world, &plain);
    assert_eq!(world.wait_for_logins(2).len(), 2);
    std::fs::remove_dir_all(world.cache_dir()).unwrap();

    // With --oidc-extra-scope=offline_access: a refresh token, and expiry is one request.
    let offline = world.default_kubeconfig(&["--oidc-extra-scope=offline_access"]);
    get(&world, &offline);
    assert_eq!(world.wait_for_logins(3).len(), 3);
    assert!(cached_refresh_token(&world).is_some());
    assert_one_request_refresh(&world, &offline, 3);
}

/// Google: a refresh token only for an authorization request with `access_type=offline`
/// (https://developers.google.com/identity/openid-connect/openid-connect#access-type-param),
/// which the plugin sends by default as kubelogin does; a refresh answers without a new refresh
/// token, the old one staying valid
/// (https://developers.google.com/identity/protocols/oauth2/native-app#offline).
#[test]
fn google_access_type_offline_and_refresh_without_a_new_refresh_token() {
    let world = world(
        &env(&[
            ("OP_REFRESH_TOKEN_FOR", "access_type_offline"),
            ("OP_REFRESH_KEEPS_TOKEN", "1"),
            ("OP_ID_TOKEN_TTL", "15"),
        ]),
        &[],
    );
    let kubeconfig = world.default_kubeconfig(&[]);
    get(&world, &kubeconfig);
    let logins = world.wait_for_logins(1);
    assert_eq!(logins[0]["auth_params"]["access_type"], "offline");
    let refresh_token = cached_refresh_token(&world).expect("a refresh token");

    // Two refreshes, each one request; the refresh token the plugin keeps is the first one.
    assert_one_request_refresh(&world, &kubeconfig, 1);
    assert_eq!(cached_refresh_token(&world).unwrap(), refresh_token);
    assert_one_request_refresh(&world, &kubeconfig, 1);
    assert_eq!(cached_refresh_token(&world).unwrap(), refresh_token);

    // A kubeconfig that says access_type=online gets no refresh token: its own value wins.
    std::fs::remove_dir_all(world.cache_dir()).unwrap();
    let online = world.default_kubeconfig(&["--oidc-auth-request-extra-params=access_type=online"]);
    get(&world, &online);
    assert_eq!(
        world.wait_for_logins(2)[1]["auth_params"]["access_type"],
        "online"
    );
    assert_eq!(cached_refresh_token(&world), None);
}

/// Okta: refresh-token rotation, and a rotated token presented again revokes the family
/// (https://developer.okta.com/docs/guides/refresh-tokens/main/#refresh-token-reuse-detection).
/// Many kubectl calls at once on an expired token must therefore present it once; a replay by
/// someone else ends the login, and the plugin signs in again.
#[test]
fn okta_rotation_with_reuse_detection() {
    let world = world(&env(&[("OP_ID_TOKEN_TTL", "15")]), &[]);
    let kubeconfig = world.default_kubeconfig(&[]);
    get(&world, &kubeconfig);
    let first = world.cached_refresh_token();
    world.wait_for_cached_token_to_expire();
    world.provider.reset_counts();
    let runs: Vec<crate::common::Run> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| scope.spawn(|| world.kubectl(&kubeconfig, &["get", "--raw", "/api"], &[])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for run in &runs {
        run.assert_ok();
    }
    assert_eq!(token_requests(&world), 1, "{}", world.provider.counts());
    let rotated = world.cached_refresh_token();
    assert_ne!(rotated, first);

    // The first token, replayed: refused, and the family (the plugin's token too) is revoked.
    assert_eq!(world.provider.refresh_status(&first), 400);
    assert_eq!(world.provider.refresh_status(&rotated), 400);
    world.wait_for_cached_token_to_expire();
    let run = get(&world, &kubeconfig);
    assert!(run.stderr.contains("signing in again"), "{}", run.stderr);
    assert_eq!(world.wait_for_logins(2).len(), 2);
}

/// Auth0: the API an access token is for is named by an `audience` parameter on the
/// authorization request (https://auth0.com/docs/secure/tokens/access-tokens/get-access-tokens),
/// which a kubeconfig passes with --oidc-auth-request-extra-params; refresh tokens rotate with
/// reuse detection (https://auth0.com/docs/secure/tokens/refresh-tokens/refresh-token-rotation).
#[test]
fn auth0_audience_parameter_and_rotation() {
    let world = world(&env(&[("OP_ID_TOKEN_TTL", "15")]), &[]);
    let kubeconfig = world.default_kubeconfig(&[
        "--oidc-auth-request-extra-params=audience=https://kubernetes.example.com",
    ]);
    let run = world.kubectl(&kubeconfig, &["auth", "whoami", "-o", "json"], &[]);
    run.assert_ok();
    assert_eq!(user_info(&run).0, "alice@example.com");
    assert_eq!(
        world.wait_for_logins(1)[0]["auth_params"]["audience"],
        "https://kubernetes.example.com"
    );
    let first = world.cached_refresh_token();
    assert_one_request_refresh(&world, &kubeconfig, 1);
    let rotated = world.cached_refresh_token();
    assert_ne!(rotated, first);
    // Reuse of the rotated-out token is detected: the whole family is gone.
    assert_eq!(world.provider.refresh_status(&first), 400);
    assert_eq!(world.provider.refresh_status(&rotated), 400);
}

/// AWS Cognito: the groups are in the ID token as `cognito:groups`
/// (https://docs.aws.amazon.com/cognito/latest/developerguide/cognito-user-pools-user-groups.html),
/// which the API server maps with --oidc-groups-claim=cognito:groups; a refresh answers
/// without a new refresh token
/// (https://docs.aws.amazon.com/cognito/latest/developerguide/token-endpoint.html).
#[test]
fn aws_cognito_groups_claim_and_refresh_without_a_new_refresh_token() {
    let world = world(
        &env(&[
            ("OP_GROUPS_CLAIM", "cognito:groups"),
            ("OP_REFRESH_KEEPS_TOKEN", "1"),
            ("OP_ID_TOKEN_TTL", "15"),
        ]),
        &env(&[("OIDC_GROUPS_CLAIM", "cognito:groups")]),
    );
    let kubeconfig = world.default_kubeconfig(&[]);
    let run = world.kubectl(&kubeconfig, &["auth", "whoami", "-o", "json"], &[]);
    run.assert_ok();
    let (user, groups) = user_info(&run);
    assert_eq!(user, "alice@example.com");
    assert!(
        groups.contains(&"oidc:KubernetesAdministrators".to_string()),
        "{groups:?}"
    );
    let refresh_token = world.cached_refresh_token();
    assert_one_request_refresh(&world, &kubeconfig, 1);
    assert_eq!(world.cached_refresh_token(), refresh_token);
    assert_one_request_refresh(&world, &kubeconfig, 1);
}

/// GitLab: of the group claims only `groups_direct` is in the ID token (`groups` is in the
/// userinfo answer only), https://docs.gitlab.com/integration/openid_connect_provider/ — the
/// API server, which sees only the ID token, maps --oidc-groups-claim=groups_direct.
#[test]
fn gitlab_groups_direct_claim() {
    let world = world(
        &env(&[
            ("OP_GROUPS_CLAIM", "groups_direct"),
            ("OP_ID_TOKEN_TTL", "15"),
        ]),
        &env(&[("OIDC_GROUPS_CLAIM", "groups_direct")]),
    );
    let kubeconfig = world.default_kubeconfig(&[]);
    let run = world.kubectl(&kubeconfig, &["auth", "whoami", "-o", "json"], &[]);
    run.assert_ok();
    let (_, groups) = user_info(&run);
    assert!(
        groups.contains(&"oidc:developers".to_string()),
        "{groups:?}"
    );
    assert_one_request_refresh(&world, &kubeconfig, 1);
}

/// Dex: a refresh token only with `offline_access`, and the `groups` claim only with the
/// `groups` scope (https://dexidp.io/docs/configuration/custom-scopes-claims-clients/): a
/// kubeconfig for Dex says --oidc-extra-scope=offline_access,groups.
#[test]
fn dex_offline_access_and_groups_scopes() {
    let world = world(
        &env(&[
            ("OP_REFRESH_TOKEN_FOR", "offline_access"),
            ("OP_GROUPS_SCOPE", "1"),
            ("OP_ID_TOKEN_TTL", "15"),
        ]),
        &[],
    );
    // Without the scopes: signed in, but no groups reach the API server and no refresh token.
    let bare = world.default_kubeconfig(&[]);
    let run = world.kubectl(&bare, &["auth", "whoami", "-o", "json"], &[]);
    run.assert_ok();
    assert_eq!(user_info(&run).1, vec!["system:authenticated".to_string()]);
    assert_eq!(cached_refresh_token(&world), None);
    std::fs::remove_dir_all(world.cache_dir()).unwrap();

    let scoped = world.default_kubeconfig(&["--oidc-extra-scope=offline_access,groups"]);
    let run = world.kubectl(&scoped, &["auth", "whoami", "-o", "json"], &[]);
    run.assert_ok();
    let (_, groups) = user_info(&run);
    assert!(
        groups.contains(&"oidc:KubernetesAdministrators".to_string()),
        "{groups:?}"
    );
    assert!(cached_refresh_token(&world).is_some());
    assert_one_request_refresh(&world, &scoped, 2);
}
