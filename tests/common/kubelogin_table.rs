//! The kubelogin table: exec entries spelled as kubelogin users write them (its README, docs/,
//! issues; pflag's and klog's syntax), each with what the provider must then see. Shared by
//! tests/kubelogin_dropin.rs (our plugin through kubectl) and tests/peers.rs (the same rows
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
