//! The kubelogin table: exec entries spelled as kubelogin users write them (its README, docs/,
//! issues; pflag's and klog's syntax), each with what the provider must then see. Shared by
//! tests/suite/kubelogin_dropin.rs (our plugin through kubectl) and tests/suite/peers.rs (the same rows
//! through the real kubelogin, side by side with ours).

/// What a row's flags must make the plugin send.
pub struct Row {
    /// Flags after the issuer and client (which each row writes its own way when it says so).
    pub args: &'static [&'static str],
    /// The `scope` parameter.
    pub scope: &'static str,
    /// Authorization parameters besides the standard ones.
    pub extra_params: &'static [(&'static str, &'static str)],
    /// `x-*` headers on the token request.
    pub headers: &'static [(&'static str, &'static str)],
    /// The redirect URI's host.
    pub redirect_host: &'static str,
}

pub const fn row(args: &'static [&'static str]) -> Row {
    Row {
        args,
        scope: "openid",
        extra_params: &[],
        headers: &[],
        redirect_host: "localhost",
    }
}

/// The rows: booleans written pflag's ways, string slices as CSV, string arrays, string maps,
/// deprecated and renamed flags, klog's flags, separate values.
pub fn rows() -> Vec<Row> {
    vec![
        // Booleans: `--f`, `--f=true|false|1|0|t|f`.
        row(&["--skip-open-browser=false"]),
        row(&["--skip-open-browser=0"]),
        row(&["--force-refresh=true"]),
        row(&["--force-refresh=1"]),
        row(&["--insecure-skip-tls-verify=false"]),
        row(&["--oidc-use-access-token=false"]),
        row(&["--oidc-use-access-token=F"]),
        row(&["--tls-renegotiation-once"]),
        row(&["--tls-renegotiation-freely=true"]),
        row(&["--oidc-use-pkce"]),
        row(&["--oidc-use-pkce=false", "--oidc-pkce-method=S256"]),
        // stringSlice: one CSV record per value, repeats append.
        Row {
            scope: "openid email profile",
            ..row(&["--oidc-extra-scope=email,profile"])
        },
        Row {
            scope: "openid email groups",
            ..row(&["--oidc-extra-scope=email", "--oidc-extra-scope=groups"])
        },
        Row {
            scope: "openid email profile",
            ..row(&["--oidc-extra-scope=email,\"profile\""])
        },
        Row {
            scope: "openid email groups",
            ..row(&["--oidc-extra-scope", "email,groups"])
        },
        Row {
            scope: "openid email profile",
            ..row(&["--oidc-extra-scope=email profile"])
        },
        row(&["--listen-address=127.0.0.1:0,127.0.0.1:0"]),
        row(&["--listen-address", "127.0.0.1:0"]),
        // intSlice, deprecated: split on commas.
        row(&["--listen-port=0"]),
        row(&["--listen-port=0,0"]),
        // stringToString: `k1=v1,k2=v2` in one value, repeats merge, one pair keeps commas.
        Row {
            extra_params: &[("ui_locales", "en"), ("login_hint", "alice")],
            ..row(&["--oidc-auth-request-extra-params=ui_locales=en,login_hint=alice"])
        },
        Row {
            extra_params: &[("ui_locales", "en"), ("login_hint", "alice")],
            ..row(&[
                "--oidc-auth-request-extra-params=ui_locales=en",
                "--oidc-auth-request-extra-params=login_hint=alice",
            ])
        },
        Row {
            extra_params: &[("x_tags", "a,b")],
            ..row(&["--oidc-auth-request-extra-params=x_tags=a,b"])
        },
        Row {
            extra_params: &[("x_q", "1")],
            ..row(&["--oidc-auth-request-extra-params=\"x_q=1\""])
        },
        Row {
            extra_params: &[("ui_locales", "de"), ("x_a", "2")],
            ..row(&[
                "--oidc-auth-request-extra-params=ui_locales=en,x_a=1",
                "--oidc-auth-request-extra-params=ui_locales=de,x_a=2",
            ])
        },
        Row {
            headers: &[("x-tenant", "team-a"), ("x-team", "b")],
            ..row(&["--oidc-request-header=X-Tenant=team-a,X-Team=b"])
        },
        Row {
            headers: &[("x-tenant", "team-a")],
            ..row(&["--oidc-request-header", "X-Tenant=team-a"])
        },
        Row {
            headers: &[("x-tags", "a,b")],
            ..row(&["--oidc-request-header=X-Tags=a,b"])
        },
        // Deprecated and renamed flags.
        row(&["--oidc-redirect-url-hostname=localhost"]),
        Row {
            redirect_host: "127.0.0.1",
            ..row(&["--oidc-redirect-url-hostname=127.0.0.1"])
        },
        row(&["--oidc-pkce-method=auto", "--grant-type=authcode"]),
        row(&["--grant-type=auto", "--authentication-timeout-sec=60"]),
        row(&["--token-cache-storage=disk"]),
        row(&["--token-cache-storage=none"]),
        // klog's global flags, underscore names, `=value` or a separate value.
        row(&["--logtostderr=true", "--alsologtostderr"]),
        row(&["--v=1"]),
        row(&["-v1"]),
        row(&["-v", "0"]),
        row(&[
            "--log_dir",
            "/tmp",
            "--log_file_max_size=10",
            "--skip_headers",
        ]),
        row(&[
            "--vmodule=x=2",
            "--stderrthreshold",
            "2",
            "--one_output",
            "--add_dir_header=false",
            "--skip_log_headers",
            "--log_backtrace_at=file.go:1",
            "--legacy_stderr_threshold_behavior=false",
            "--alsologtostderrthreshold=INFO",
            "--log_file=/tmp/kubelogin.log",
        ]),
    ]
}

/// The authorization parameters every request carries; the rest are a row's extras.
pub const STANDARD: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "code_challenge_method",
    // Sent on every request by kubelogin and by us (Google's refresh-token switch); checked
    // on its own.
    "access_type",
];

pub fn is_deprecated(arg: &str) -> bool {
    [
        "--oidc-use-pkce",
        "--listen-port",
        "--oidc-redirect-url-hostname",
    ]
    .iter()
    .any(|d| arg == *d || arg.starts_with(&format!("{d}=")))
        && arg != "--oidc-use-pkce=false"
}

pub fn url_host(url: &str) -> String {
    url.split("://")
        .nth(1)
        .and_then(|rest| rest.split([':', '/']).next())
        .unwrap_or("")
        .to_string()
}

/// A grant row: a client of the test realm, flags, and the provider's settings, run once
/// (a login, or the grant's token request) and, with `refresh`, once more with
/// `--force-refresh`. tests/suite/peers.rs compares every request in which the client
/// authenticates (endpoint, grant, client authentication style, parameter names, scopes,
/// status), the PKCE method of the authorization request and the audience of the token
/// kubectl gets, between the real kubelogin and ours.
pub struct GrantRow {
    pub name: &'static str,
    /// Settings of tests/support/provider.mjs.
    pub provider: &'static [(&'static str, &'static str)],
    pub client_id: &'static str,
    pub client_secret: Option<&'static str>,
    pub args: &'static [&'static str],
    pub refresh: bool,
    /// The fields in which ours differs on purpose, each in README "Migrating".
    pub intended: &'static [&'static str],
}

pub fn grant_rows() -> Vec<GrantRow> {
    vec![
        // A client limited to client_secret_post (Auth0, Zitadel, Authelia allow it): HTTP
        // Basic gets 401, the secret in the body works. kubelogin finds that out again in every
        // process, so its refresh starts with a 401; ours keeps the style with the login.
        GrantRow {
            name: "client_secret_post client: login, then refresh",
            provider: &[],
            client_id: "kubernetes-post",
            client_secret: Some("post-secret"),
            args: &[],
            refresh: true,
            intended: &["refresh_requests"],
        },
        // Discovery lists only client_secret_post: ours follows it from the first request.
        GrantRow {
            name: "discovery lists only client_secret_post",
            provider: &[("OP_DISCOVERY_POST_ONLY", "1")],
            client_id: "kubernetes-post",
            client_secret: Some("post-secret"),
            args: &[],
            refresh: false,
            intended: &["login_requests"],
        },
        // Client credentials: scope openid plus the extra scopes, and the ID token the
        // provider returns (Keycloak does) handed to kubectl.
        GrantRow {
            name: "client credentials",
            provider: &[],
            client_id: "robot",
            client_secret: Some("robot-secret"),
            args: &[
                "--grant-type=client-credentials",
                "--oidc-extra-scope=email",
            ],
            refresh: false,
            intended: &[],
        },
        GrantRow {
            name: "client credentials with --oidc-use-access-token",
            provider: &[],
            client_id: "robot",
            client_secret: Some("robot-secret"),
            args: &[
                "--grant-type=client-credentials",
                "--oidc-use-access-token",
                "--oidc-extra-scope=email",
            ],
            refresh: false,
            intended: &[],
        },
        // kubelogin's client credentials grant always sends HTTP Basic (clientcredentials
        // with AuthStyleInHeader), so a client_secret_post robot fails there and works here.
        GrantRow {
            name: "client credentials of a client_secret_post client",
            provider: &[],
            client_id: "kubernetes-post",
            client_secret: Some("post-secret"),
            args: &["--grant-type=client-credentials"],
            refresh: false,
            intended: &["accepted"],
        },
        // The password grant: --oidc-auth-request-extra-params stay out of its token request.
        GrantRow {
            name: "password grant with --oidc-auth-request-extra-params",
            provider: &[],
            client_id: "kubernetes-password",
            client_secret: None,
            args: &[
                "--grant-type=password",
                "--username=alice",
                "--password=secret",
                "--oidc-auth-request-extra-params=ui_locales=en,kc_idp_hint=ldap",
            ],
            refresh: true,
            intended: &[],
        },
        // The device grant: ours sends --oidc-auth-request-extra-params (Auth0 wants its
        // `audience` there) and a PKCE challenge (Keycloak enforces a client's PKCE setting on
        // this grant too) with the device authorization request; kubelogin sends neither.
        GrantRow {
            name: "device grant with --oidc-auth-request-extra-params",
            provider: &[],
            client_id: "kubernetes-device",
            client_secret: None,
            args: &[
                "--grant-type=device-code",
                "--oidc-auth-request-extra-params=ui_locales=en",
            ],
            refresh: false,
            intended: &["login_requests"],
        },
        // A provider whose discovery announces no PKCE (Entra ID): kubelogin sends none, ours
        // S256 (RFC 9700), so its code exchange carries the verifier.
        GrantRow {
            name: "provider that does not announce PKCE",
            provider: &[("OP_PKCE_UNANNOUNCED", "1"), ("OP_PKCE_REQUIRED", "0")],
            client_id: "kubernetes",
            client_secret: None,
            args: &[],
            refresh: false,
            intended: &["pkce", "login_requests"],
        },
    ]
}
