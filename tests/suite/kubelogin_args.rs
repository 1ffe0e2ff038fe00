//! kubeconfigs written for int128/kubelogin must keep working: real-world `args:` lists (from
//! kubelogin's README and docs and common Keycloak, Dex, Azure and Google guides) parse into
//! the settings kubelogin would use. Each case states those settings.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use kubectl_oidc_login::cli::{self, Command};
use kubectl_oidc_login::config::{Config, GrantType, Pkce};
use kubectl_oidc_login::settings;
use kubectl_oidc_login::tokens::Storage;

fn config(args: &[&str]) -> Config {
    let argv: Vec<OsString> = std::iter::once("kubectl-oidc_login")
        .chain(args.iter().copied())
        .map(OsString::from)
        .collect();
    let parsed = cli::parse(cli::strip_klog_flags(argv))
        .unwrap_or_else(|e| panic!("{args:?} does not parse: {e}"));
    match parsed.command {
        Command::GetToken(args) => settings::config(&args).unwrap(),
        other => panic!("not get-token: {other:?}"),
    }
}

fn home() -> PathBuf {
    dirs::home_dir().unwrap()
}

const ISSUER: &str = "--oidc-issuer-url=https://keycloak.example.com/realms/example";
const CLIENT: &str = "--oidc-client-id=kubernetes";

#[test]
fn readme_minimal_entry_uses_every_default() {
    let c = config(&["get-token", ISSUER, CLIENT]);
    assert_eq!(c.issuer_url, "https://keycloak.example.com/realms/example");
    assert_eq!(c.client_id, "kubernetes");
    assert_eq!(c.client_secret, None);
    assert!(c.extra_scopes.is_empty());
    assert_eq!(c.scopes(), ["openid"]);
    assert_eq!(c.cache_dir, home().join(".kube/cache/oidc-login"));
    assert_eq!(c.listen_addresses, ["127.0.0.1:8000", "127.0.0.1:18000"]);
    assert_eq!(c.redirect_hostname, "localhost");
    assert_eq!(c.auth_timeout, Duration::from_secs(180));
    assert_eq!(c.grant, GrantType::Auto);
    assert_eq!(c.pkce, Pkce::Auto);
    assert!(!c.use_access_token && !c.force_refresh && !c.skip_open_browser);
    // Ours: the refresh token goes to the OS keyring when one answers (docs/kubelogin.md explains).
    assert_eq!(c.storage, Storage::Auto);
}

#[test]
fn google_with_client_secret_and_offline_access_params() {
    let c = config(&[
        "get-token",
        "--oidc-issuer-url=https://accounts.google.com",
        "--oidc-client-id=123.apps.googleusercontent.com",
        "--oidc-client-secret=GOCSPX-secret",
        "--oidc-auth-request-extra-params=access_type=offline",
        "--oidc-auth-request-extra-params=prompt=consent",
    ]);
    assert_eq!(c.client_secret.as_deref(), Some("GOCSPX-secret"));
    assert_eq!(
        c.auth_extra_params,
        [
            ("access_type".to_string(), "offline".to_string()),
            ("prompt".to_string(), "consent".to_string())
        ]
    );
}

#[test]
fn keycloak_groups_scope_repeated_flags() {
    let c = config(&[
        "get-token",
        ISSUER,
        CLIENT,
        "--oidc-extra-scope=email",
        "--oidc-extra-scope=profile",
        "--oidc-extra-scope=groups",
    ]);
    assert_eq!(c.scopes(), ["openid", "email", "profile", "groups"]);
}

#[test]
fn dex_comma_separated_scopes() {
    let c = config(&[
        "get-token",
        "--oidc-issuer-url=https://dex.example.com",
        "--oidc-client-id=kubelogin",
        "--oidc-client-secret=ZXhhbXBsZS1hcHAtc2VjcmV0",
        "--oidc-extra-scope=email,groups,offline_access",
    ]);
    assert_eq!(c.extra_scopes, ["email", "groups", "offline_access"]);
}

#[test]
fn azure_ad_space_separated_scopes_and_openid_listed_again() {
    let c = config(&[
        "get-token",
        "--oidc-issuer-url=https://login.microsoftonline.com/TENANT/v2.0",
        "--oidc-client-id=00000000-0000-0000-0000-000000000000",
        "--oidc-extra-scope=email offline_access profile openid",
    ]);
    assert_eq!(
        c.scopes(),
        ["openid", "email", "offline_access", "profile"],
        "openid once, first"
    );
}

#[test]
fn password_grant_with_credentials() {
    let c = config(&[
        "get-token",
        ISSUER,
        CLIENT,
        "--grant-type=password",
        "--username=alice",
        "--password=secret",
    ]);
    assert_eq!(c.grant, GrantType::Password);
    assert_eq!(c.username.as_deref(), Some("alice"));
    assert_eq!(c.password.as_deref(), Some("secret"));
}

#[test]
fn device_code_grant() {
    let c = config(&["get-token", ISSUER, CLIENT, "--grant-type=device-code"]);
    assert_eq!(c.grant, GrantType::DeviceCode);
}

#[test]
fn authcode_keyboard_with_custom_redirect() {
    let c = config(&[
        "get-token",
        ISSUER,
        CLIENT,
        "--grant-type=authcode-keyboard",
        "--oidc-redirect-url=urn:ietf:wg:oauth:2.0:oob",
    ]);
    assert_eq!(c.grant, GrantType::AuthcodeKeyboard);
    assert_eq!(c.redirect_url.as_deref(), Some("urn:ietf:wg:oauth:2.0:oob"));
}

#[test]
fn client_credentials_for_a_robot_hands_the_id_token_unless_asked_for_the_access_token() {
    let c = config(&[
        "get-token",
        ISSUER,
        "--oidc-client-id=ci",
        "--oidc-client-secret=s3cret",
        "--grant-type=client-credentials",
    ]);
    assert_eq!(c.grant, GrantType::ClientCredentials);
    // As kubelogin: the ID token when the provider returns one (the grant falls back to the
    // access token when it does not).
    assert!(!c.use_access_token);
}

#[test]
fn custom_listen_addresses_and_deprecated_listen_port() {
    let c = config(&[
        "get-token",
        ISSUER,
        CLIENT,
        "--listen-address=127.0.0.1:12345",
        "--listen-address=127.0.0.1:23456",
    ]);
    assert_eq!(c.listen_addresses, ["127.0.0.1:12345", "127.0.0.1:23456"]);
    let c = config(&["get-token", ISSUER, CLIENT, "--listen-port=12345"]);
    assert_eq!(c.listen_addresses, ["127.0.0.1:12345"]);
}

#[test]
fn headless_machine_skips_the_browser_or_names_one() {
    let c = config(&["get-token", ISSUER, CLIENT, "--skip-open-browser"]);
    assert!(c.skip_open_browser);
    let c = config(&["get-token", ISSUER, CLIENT, "--browser-command=firefox"]);
    assert_eq!(c.browser_command.as_deref(), Some("firefox"));
}

#[test]
fn private_ca_file_data_and_insecure() {
    let c = config(&[
        "get-token",
        ISSUER,
        CLIENT,
        "--certificate-authority=~/ca.crt",
        "--certificate-authority=/etc/ssl/extra.pem",
        "--certificate-authority-data=LS0tLS1CRUdJTg==",
    ]);
    assert_eq!(
        c.ca_files,
        [home().join("ca.crt"), PathBuf::from("/etc/ssl/extra.pem")]
    );
    assert_eq!(c.ca_data, ["LS0tLS1CRUdJTg=="]);
    let c = config(&["get-token", ISSUER, CLIENT, "--insecure-skip-tls-verify"]);
    assert!(c.insecure_skip_tls_verify);
}

#[test]
fn cache_dir_with_tilde_and_storage_modes() {
    let c = config(&[
        "get-token",
        ISSUER,
        CLIENT,
        "--token-cache-dir=~/.kube/cache/oidc-login-work",
        "--token-cache-storage=keyring",
    ]);
    assert_eq!(c.cache_dir, home().join(".kube/cache/oidc-login-work"));
    assert_eq!(c.storage, Storage::Keyring);
    for (flag, storage) in [
        ("disk", Storage::Disk),
        ("none", Storage::None),
        ("keyring", Storage::Keyring),
    ] {
        let arg = format!("--token-cache-storage={flag}");
        assert_eq!(
            config(&["get-token", ISSUER, CLIENT, &arg]).storage,
            storage
        );
    }
}

#[test]
fn access_token_pkce_and_timeouts() {
    let c = config(&[
        "get-token",
        ISSUER,
        CLIENT,
        "--oidc-use-access-token",
        "--oidc-pkce-method=S256",
        "--authentication-timeout-sec=60",
        "--force-refresh",
    ]);
    assert!(c.use_access_token && c.force_refresh);
    assert_eq!(c.pkce, Pkce::S256);
    assert_eq!(c.auth_timeout, Duration::from_secs(60));
    assert_eq!(
        config(&["get-token", ISSUER, CLIENT, "--oidc-pkce-method=no"]).pkce,
        Pkce::Disabled
    );
}

#[test]
fn request_headers_redirect_hostname_and_after_login_url() {
    let c = config(&[
        "get-token",
        ISSUER,
        CLIENT,
        "--oidc-request-header=X-Tenant=team-a",
        "--oidc-redirect-url-hostname=127.0.0.1",
        "--open-url-after-authentication=https://wiki.example.com/kubernetes",
    ]);
    assert_eq!(
        c.request_headers,
        [("X-Tenant".to_string(), "team-a".to_string())]
    );
    assert_eq!(c.redirect_hostname, "127.0.0.1");
    assert_eq!(
        c.open_url_after_authentication.as_deref(),
        Some("https://wiki.example.com/kubernetes")
    );
}

#[test]
fn klog_flags_and_space_separated_values_of_old_kubeconfigs() {
    // kubelogin is a Go program: `-v1`, `--v=1`, `--logtostderr` and values after a space.
    let c = config(&[
        "get-token",
        "--oidc-issuer-url",
        "https://keycloak.example.com/realms/example",
        "--oidc-client-id",
        "kubernetes",
        "--logtostderr",
        "--log-dir",
        "/tmp/logs",
        "-v1",
    ]);
    assert_eq!(c.client_id, "kubernetes");
    assert_eq!(c.issuer_url, "https://keycloak.example.com/realms/example");
    let c = config(&["get-token", ISSUER, CLIENT, "--v=2"]);
    assert_eq!(c.client_id, "kubernetes");
}

#[test]
fn a_repeated_flag_overrides_the_earlier_one_as_in_pflag() {
    let c = config(&[
        "get-token",
        ISSUER,
        "--oidc-client-id=first",
        "--oidc-client-id=second",
    ]);
    assert_eq!(c.client_id, "second");
    // Repeatable flags still accumulate.
    let c = config(&[
        "get-token",
        ISSUER,
        CLIENT,
        "--oidc-extra-scope=a",
        "--oidc-extra-scope=b",
    ]);
    assert_eq!(c.extra_scopes, ["a", "b"]);
}
