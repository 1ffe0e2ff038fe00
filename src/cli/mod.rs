//! The command-line surface: kubelogin-compatible flags, parsed with clap.
//!
//! Everything here is syntax: it imports no command and no building block. Meaning (defaults
//! that depend on the environment, `~` expansion, KEY=VALUE pairs) is decided in
//! the settings module, which turns these types into plain settings.

use std::ffi::OsString;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

pub mod complete;
pub mod env;
pub mod pflag;

const ABOUT: &str = "kubectl credential plugin for OpenID Connect (Keycloak, Dex, ...).

Put `get-token` in the exec section of a kubeconfig user; kubectl runs it before every call.
A valid cached ID token is printed at once; an expired one is refreshed silently with the
refresh token; otherwise the browser opens for a login (authorization code flow with PKCE).";

#[derive(Debug, Parser)]
#[command(
    name = "kubectl-oidc_login",
    bin_name = "kubectl oidc-login",
    version,
    about = ABOUT,
    propagate_version = true,
    // kubelogin (pflag) lets a repeated single-value flag override the earlier one; kubeconfigs
    // assembled by scripts rely on it.
    args_override_self = true
)]
pub struct Cli {
    /// Log verbosity on stderr (0: warnings only; 1: steps; 2+: HTTP requests). Tokens,
    /// codes and secrets are never logged.
    #[arg(
        short = 'v',
        long = "v",
        global = true,
        value_name = "N",
        default_value_t = 0
    )]
    pub verbosity: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print an ExecCredential for kubectl (the command a kubeconfig's exec entry runs).
    GetToken(Box<GetTokenArgs>),
    /// Log in once and print what the cluster and kubeconfig need (apiserver flags, RBAC,
    /// the exec entry), with diagnostics of the provider's settings.
    Setup(Box<SetupArgs>),
    /// Revoke the refresh token at the provider and delete the cached login.
    Logout(Box<LogoutArgs>),
    /// Show the cached identity (claims and expiry) without refreshing.
    Whoami(Box<WhoamiArgs>),
    /// Sign in again in the browser (prompt=login), replacing the cached login of this
    /// account only: to switch user.
    Login(Box<GetTokenArgs>),
    /// List every cached login (issuer, client, account, identity, expiry); also `whoami --all`.
    Accounts(AccountsArgs),
    /// Delete cached tokens from every store (disk and keyring).
    Clean(CleanArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completion(CompletionArgs),
    /// Check the whole chain for a kubeconfig context (exec entry, cache, keyring, provider,
    /// clock, cached login, API server), one line each with the fix; exit 1 on a failure.
    Doctor(DoctorArgs),
    /// Print the version.
    Version,
    /// `setup` without an issuer: the guide to setting up the provider, cluster and kubeconfig.
    #[command(name = "__setup-guide", hide = true)]
    SetupGuide,
    /// Print the man page (roff).
    #[command(hide = true)]
    Man,
    /// Completion candidates for kubectl's plugin completion (Cobra's protocol); see
    /// `kubectl_complete-oidc_login`.
    #[command(name = "__complete", hide = true)]
    Complete {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        words: Vec<String>,
    },
}

#[derive(Debug, Clone, Args)]
pub struct SetupArgs {
    #[command(flatten)]
    pub token: GetTokenArgs,

    /// Group to bind in the printed ClusterRoleBinding (default: one of your groups, preferring
    /// one whose name mentions admin)
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,

    /// ClusterRole to bind the group to
    #[arg(long, value_name = "ROLE", default_value = "cluster-admin")]
    pub cluster_role: String,

    /// Claim the API server should use as the username (default: email when verified, else sub)
    #[arg(long, value_name = "CLAIM")]
    pub username_claim: Option<String>,

    /// Prefix the API server adds to group names (--oidc-groups-prefix)
    #[arg(long, value_name = "PREFIX", default_value = "oidc:")]
    pub groups_prefix: String,

    /// Write the user (and with --context, a context) into the kubeconfig with `kubectl config`
    #[arg(long)]
    pub write_kubeconfig: bool,

    /// Name of the kubeconfig user to write
    #[arg(long, value_name = "NAME", default_value = "oidc")]
    pub user: String,

    /// Name of a kubeconfig context to write, pairing the user with --cluster
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Cluster of the context to write (default: the current context's cluster)
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,

    /// Also print a kubeconfig user for this account (repeatable; see --account); each signs
    /// in on its first use
    #[arg(long, value_name = "NAME")]
    pub extra_account: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct LogoutArgs {
    #[command(flatten)]
    pub token: GetTokenArgs,

    /// Keep the provider's browser session: by default logout also ends it (RP-initiated
    /// logout) when the provider offers that and a browser can open, so the next login asks
    /// who you are
    #[arg(long)]
    pub keep_session: bool,
}

#[derive(Debug, Clone, Args)]
pub struct WhoamiArgs {
    #[command(flatten)]
    pub token: GetTokenArgs,

    /// Also show what the API server sees, through `kubectl auth whoami`
    #[arg(long)]
    pub cluster: bool,

    /// kubeconfig context for --cluster
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Output format: text for people, or json/yaml for scripts (schema in the README,
    /// "Several accounts"; never a token)
    #[arg(short = 'o', long, value_enum, default_value_t = OutputArg::Text)]
    pub output: OutputArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputArg {
    Text,
    Json,
    Yaml,
}

#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// kubeconfig context to check (default: the current context)
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StorageArg {
    /// Refresh token in the OS keyring when one answers, else on disk; ID token on disk.
    Auto,
    /// Everything in 0600 files under --token-cache-dir (kubelogin's default).
    Disk,
    /// Everything in the OS keyring.
    Keyring,
    /// Cache nothing: every call logs in (or uses --force-refresh semantics).
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PkceArg {
    Auto,
    No,
    #[value(name = "S256")]
    S256,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GrantArg {
    Auto,
    Authcode,
    AuthcodeKeyboard,
    Password,
    DeviceCode,
    ClientCredentials,
}

/// The flags of int128/kubelogin's `get-token`, with the same names, meanings and defaults.
#[derive(Debug, Clone, Args)]
pub struct GetTokenArgs {
    /// Issuer URL of the provider, e.g. https://keycloak.example.com/realms/REALM
    #[arg(long, value_name = "URL")]
    pub oidc_issuer_url: String,

    /// Client ID registered at the provider
    #[arg(long, value_name = "ID")]
    pub oidc_client_id: String,

    /// Name of one of several logins at the same provider and client (e.g. personal, admin):
    /// each account keeps its own tokens, and the provider gets it as login_hint
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,

    /// Client secret (confidential clients only; public clients with PKCE need none). On the
    /// command line any local account can read it: prefer --oidc-client-secret-file or
    /// $KUBECTL_OIDC_LOGIN_OIDC_CLIENT_SECRET
    #[arg(long, value_name = "SECRET")]
    pub oidc_client_secret: Option<String>,

    /// File holding the client secret (owner-only, mode 600: refused otherwise, as ssh
    /// refuses a private key); a trailing newline is ignored
    #[arg(long, value_name = "FILE")]
    pub oidc_client_secret_file: Option<String>,

    /// Redirect URL sent to the provider instead of http://localhost:PORT
    #[arg(long, value_name = "URL")]
    pub oidc_redirect_url: Option<String>,

    /// Host name of the default redirect URL (deprecated in kubelogin: use --oidc-redirect-url)
    #[arg(long, value_name = "HOST", hide = true)]
    pub oidc_redirect_url_hostname: Option<String>,

    /// Redirect URL of the authcode-keyboard grant (kubelogin v1.28-v1.34; deprecated there:
    /// use --oidc-redirect-url)
    #[arg(long, value_name = "URL", hide = true)]
    pub oidc_redirect_url_authcode_keyboard: Option<String>,

    /// Scopes to request besides `openid` (repeatable; comma-separated as CSV, or
    /// space-separated)
    #[arg(long, value_name = "SCOPE")]
    pub oidc_extra_scope: Vec<String>,

    /// Print the access token instead of the ID token
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = pflag::parse_bool, action = ArgAction::Set)]
    pub oidc_use_access_token: bool,

    /// Extra HTTP header on requests to the provider, as KEY=VALUE (repeatable, or
    /// K1=V1,K2=V2)
    #[arg(long, value_name = "KEY=VALUE")]
    pub oidc_request_header: Vec<String>,

    /// Extra parameter on the authorization request, as KEY=VALUE (repeatable, or
    /// K1=V1,K2=V2)
    #[arg(long, value_name = "KEY=VALUE")]
    pub oidc_auth_request_extra_params: Vec<String>,

    /// PKCE method
    #[arg(long, value_enum, default_value_t = PkceArg::Auto)]
    pub oidc_pkce_method: PkceArg,

    /// Force PKCE S256 (deprecated in kubelogin: use --oidc-pkce-method)
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = pflag::parse_bool, action = ArgAction::Set)]
    pub oidc_use_pkce: bool,

    /// Ignore the cached ID token and refresh (or log in) now
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = pflag::parse_bool, action = ArgAction::Set)]
    pub force_refresh: bool,

    /// Directory of the token cache [default: ~/.kube/cache/oidc-login, or
    /// $KUBECACHEDIR/oidc-login when KUBECACHEDIR is set]
    #[arg(long, value_name = "DIR")]
    pub token_cache_dir: Option<String>,

    /// Where tokens are kept
    #[arg(long, value_enum, default_value_t = StorageArg::Auto)]
    pub token_cache_storage: StorageArg,

    /// PEM file of CA certificates to trust for the provider (repeatable)
    #[arg(long, value_name = "FILE")]
    pub certificate_authority: Vec<String>,

    /// Base64 PEM of CA certificates to trust for the provider (repeatable)
    #[arg(long, value_name = "BASE64")]
    pub certificate_authority_data: Vec<String>,

    /// Do not verify the provider's TLS certificate (insecure)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = pflag::parse_bool, action = ArgAction::Set)]
    pub insecure_skip_tls_verify: bool,

    /// Allow one TLS renegotiation (accepted for kubelogin; rustls never renegotiates)
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = pflag::parse_bool, action = ArgAction::Set)]
    pub tls_renegotiation_once: bool,

    /// Allow repeated TLS renegotiation (accepted for kubelogin; rustls never renegotiates)
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = pflag::parse_bool, action = ArgAction::Set)]
    pub tls_renegotiation_freely: bool,

    /// Authorization grant
    #[arg(long, value_enum, default_value_t = GrantArg::Auto)]
    pub grant_type: GrantArg,

    /// Address of the loopback listener for the redirect; tried in order (repeatable, or
    /// comma-separated)
    #[arg(long, value_name = "ADDR", default_values_t = ["127.0.0.1:8000".to_string(), "127.0.0.1:18000".to_string()])]
    pub listen_address: Vec<String>,

    /// Ports of the loopback listener (deprecated in kubelogin: use --listen-address)
    #[arg(long, value_name = "PORT", hide = true)]
    pub listen_port: Vec<String>,

    /// Do not open the browser; print the URL instead
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = pflag::parse_bool, action = ArgAction::Set)]
    pub skip_open_browser: bool,

    /// Command that opens the browser; it gets the URL as its only argument
    #[arg(long, value_name = "CMD")]
    pub browser_command: Option<String>,

    /// How long to wait for the browser login, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 180)]
    pub authentication_timeout_sec: u64,

    /// Certificate of an HTTPS loopback listener
    #[arg(long, value_name = "FILE")]
    pub local_server_cert: Option<String>,

    /// Key of an HTTPS loopback listener
    #[arg(long, value_name = "FILE")]
    pub local_server_key: Option<String>,

    /// Where to send the browser after a successful login, instead of our success page
    #[arg(long, value_name = "URL")]
    pub open_url_after_authentication: Option<String>,

    /// Username for the password grant
    #[arg(long, value_name = "NAME")]
    pub username: Option<String>,

    /// Password for the password grant (prompted when omitted). On the command line any
    /// local account can read it: prefer --password-file or $KUBECTL_OIDC_LOGIN_PASSWORD
    #[arg(long, value_name = "PASSWORD")]
    pub password: Option<String>,

    /// File holding the password for the password grant (owner-only, mode 600); a trailing
    /// newline is ignored
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<String>,

    /// Client ID of the cluster (its API server's audience) to get a token for, by exchanging
    /// the login of --oidc-client-id at the provider (RFC 8693 token exchange): one browser
    /// login serves every cluster. get-token takes one (or none: with provideClusterInfo, the
    /// cluster's kubeconfig extension client.authentication.k8s.io/exec names its audience);
    /// setup takes one per cluster
    #[arg(long, value_name = "CLIENT_ID")]
    pub token_exchange_audience: Vec<String>,

    /// The RFC 8693 scope of that token exchange, space-separated (Keycloak: the optional
    /// client scope of --oidc-client-id holding the cluster's Audience mapper). A cluster's
    /// kubeconfig extension client.authentication.k8s.io/exec may name both instead. get-token
    /// takes one; setup takes one for all clusters or one per --token-exchange-audience, in order
    #[arg(long, value_name = "SCOPE")]
    pub token_exchange_scope: Vec<String>,
    /// The long names of the flags above whose values came from the environment (see
    /// [`env`]), not from the command line.
    #[arg(skip)]
    pub from_environment: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct AccountsArgs {
    /// Directory of the token cache [default: ~/.kube/cache/oidc-login, or
    /// $KUBECACHEDIR/oidc-login when KUBECACHEDIR is set]
    #[arg(long, value_name = "DIR")]
    pub token_cache_dir: Option<String>,

    /// Where tokens are kept (as in the kubeconfig's get-token flags)
    #[arg(long, value_enum, default_value_t = StorageArg::Auto)]
    pub token_cache_storage: StorageArg,

    /// Output format: text for people, or json/yaml for scripts (schema in the README,
    /// "Several accounts"; never a token)
    #[arg(short = 'o', long, value_enum, default_value_t = OutputArg::Text)]
    pub output: OutputArg,
}

#[derive(Debug, Clone, Args)]
pub struct CleanArgs {
    /// Directory of the token cache [default: ~/.kube/cache/oidc-login, or
    /// $KUBECACHEDIR/oidc-login when KUBECACHEDIR is set]
    #[arg(long, value_name = "DIR")]
    pub token_cache_dir: Option<String>,

    /// Accepted as kubelogin's clean takes it; every store is cleaned whatever it says
    #[arg(long, value_enum, value_name = "STORAGE")]
    pub token_cache_storage: Option<StorageArg>,

    /// Only remove entries of this issuer
    #[arg(long, value_name = "URL")]
    pub oidc_issuer_url: Option<String>,

    /// Only remove entries of this client
    #[arg(long, value_name = "ID")]
    pub oidc_client_id: Option<String>,

    /// Only remove entries of this account (see get-token --account)
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
}

/// klog's global flags (klog v2.140 `InitFlags`, which kubelogin adds to every command), by
/// their real underscore names. Old kubeconfigs may carry them; they mean nothing here, so
/// they are dropped before clap sees them. Each entry says whether the flag takes a value
/// when written as `--flag value` (Go's bool flags never do). The hyphenated spellings were
/// accepted by earlier releases of this plugin, so they stay.
const KLOG_FLAGS: &[(&str, bool)] = &[
    ("add_dir_header", false),
    ("alsologtostderr", false),
    ("legacy_stderr_threshold_behavior", false),
    ("logtostderr", false),
    ("one_output", false),
    ("skip_headers", false),
    ("skip_log_headers", false),
    ("alsologtostderrthreshold", true),
    ("log_backtrace_at", true),
    ("log_dir", true),
    ("log_file", true),
    ("log_file_max_size", true),
    ("stderrthreshold", true),
    ("vmodule", true),
    ("add-dir-header", false),
    ("one-output", false),
    ("skip-headers", false),
    ("skip-log-headers", false),
    ("log-backtrace-at", true),
    ("log-dir", true),
    ("log-file", true),
    ("log-file-max-size", true),
];

/// Removes klog-style global flags (see [`KLOG_FLAGS`]) from the argument list.
pub fn strip_klog_flags(args: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len());
    let mut iter = args.into_iter();
    while let Some(arg) = iter.next() {
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        let Some(flag) = text.strip_prefix("--") else {
            out.push(arg);
            continue;
        };
        let (name, has_inline_value) = match flag.split_once('=') {
            Some((name, _)) => (name, true),
            None => (flag, false),
        };
        match KLOG_FLAGS.iter().find(|(known, _)| *known == name) {
            Some((_, takes_value)) => {
                if *takes_value && !has_inline_value {
                    iter.next();
                }
            }
            None => out.push(arg),
        }
    }
    out
}

/// `get-token` alone, for the hot path: clap builds every argument of every subcommand it is
/// given, and setup, logout, whoami and login each repeat get-token's forty flags. Same
/// struct, same settings; anything it rejects (help, a typo) goes to the full parser, whose
/// messages users know.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-oidc_login",
    bin_name = "kubectl oidc-login get-token",
    args_override_self = true
)]
struct GetTokenOnly {
    #[arg(short = 'v', long = "v", value_name = "N", default_value_t = 0)]
    verbosity: u8,

    #[command(flatten)]
    args: GetTokenArgs,
}

pub fn parse(mut args: Vec<OsString>) -> Result<Cli, clap::Error> {
    // `whoami --all` lists every login, so it needs none of whoami's login flags: it is the
    // `accounts` command under the name users look for.
    if args.get(1).is_some_and(|a| a == "whoami") && args.iter().any(|a| a == "--all") {
        args[1] = "accounts".into();
        args.retain(|a| a != "--all");
    }
    // kubelogin's `setup` without flags prints the guide; with them it runs the setup.
    if args.get(1).is_some_and(|a| a == "setup")
        && !args[2..].iter().any(|a| {
            let a = a.to_string_lossy();
            a.starts_with("--oidc-issuer-url") || a == "-h" || a == "--help"
        })
    {
        args[1] = "__setup-guide".into();
    }
    if args.get(1).is_some_and(|a| a == "get-token") {
        use clap::{CommandFactory, FromArgMatches};
        let only: Vec<OsString> = args[..1].iter().chain(&args[2..]).cloned().collect();
        let mut command = env::read_environment(GetTokenOnly::command());
        if let Ok(mut matches) = command.try_get_matches_from_mut(only) {
            // Before the values are taken out of the matches, which forgets their sources.
            let from_environment = env::from_environment(&command, &matches);
            if let Ok(mut parsed) = GetTokenOnly::from_arg_matches_mut(&mut matches) {
                parsed.args.from_environment = from_environment;
                return Ok(Cli {
                    verbosity: parsed.verbosity,
                    command: Command::GetToken(Box::new(parsed.args)),
                });
            }
        }
    }
    parse_full(args)
}

/// The full parser alone (tests compare it with the get-token fast path).
pub fn parse_full(args: Vec<OsString>) -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let mut command = env::read_environment(Cli::command());
    let matches = command
        .try_get_matches_from_mut(args.clone())
        .map_err(|e| env::name_the_variable(e, &args))?;
    let mut cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut command))?;
    if let Some((name, sub_matches)) = matches.subcommand() {
        let sub = command.find_subcommand(name);
        if let (Some(sub), Some(token)) = (sub, cli.command.get_token_args_mut()) {
            token.from_environment = env::from_environment(sub, sub_matches);
        }
    }
    Ok(cli)
}

impl Command {
    /// The get-token flags of a command that takes them.
    fn get_token_args_mut(&mut self) -> Option<&mut GetTokenArgs> {
        match self {
            Command::GetToken(args) | Command::Login(args) => Some(args),
            Command::Setup(args) => Some(&mut args.token),
            Command::Logout(args) => Some(&mut args.token),
            Command::Whoami(args) => Some(&mut args.token),
            _ => None,
        }
    }
}

/// The completion script for `shell`, for the binary run by its file name ("kubectl
/// oidc-login" has a space, which no shell function name can hold).
pub fn completion_script(shell: clap_complete::Shell) -> Vec<u8> {
    use clap::CommandFactory;
    let mut script = Vec::new();
    clap_complete::generate(
        shell,
        &mut Cli::command()
            .bin_name("kubectl-oidc_login")
            .display_name("kubectl-oidc_login"),
        "kubectl-oidc_login",
        &mut script,
    );
    if shell != clap_complete::Shell::Bash {
        return script;
    }
    // clap_complete 4.6 names the subcommand cases of a hyphenated binary inconsistently
    // ("kubectl__subcmd__oidc_login" against the "kubectl__oidc_login" it dispatches on), so
    // nothing past the first word would complete.
    String::from_utf8_lossy(&script)
        .replace("kubectl__subcmd__oidc_login", "kubectl__oidc_login")
        .into_bytes()
}

/// The man page (roff).
pub fn man_page() -> std::io::Result<Vec<u8>> {
    use clap::CommandFactory;
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    Ok(page)
}

/// Prints the candidates for kubectl's plugin completion of `words` (Cobra's protocol).
pub fn print_completions(words: &[String]) -> std::io::Result<()> {
    use clap::CommandFactory;
    complete::print(&Cli::command(), words)
}

impl GetTokenArgs {
    /// The get-token arguments that reproduce these settings in a kubeconfig exec entry:
    /// every flag that differs from its default.
    /// Left out on purpose: `--password` (a password in a kubeconfig is in every copy of it;
    /// setup says to use --password-file or the environment) and `--force-refresh` (a one-off:
    /// in an exec entry it would skip the cache on every kubectl call).
    pub fn to_exec_args(&self) -> Vec<String> {
        // The defaults alone, without the environment's values.
        let defaults =
            GetTokenOnly::try_parse_from(["k", "--oidc-issuer-url=x", "--oidc-client-id=x"])
                .expect("defaults parse")
                .args;
        let mut out = vec![
            "get-token".to_string(),
            format!("--oidc-issuer-url={}", self.oidc_issuer_url),
            format!("--oidc-client-id={}", self.oidc_client_id),
        ];
        let mut opt = |name: &str, value: &Option<String>| {
            if let Some(v) = value {
                out.push(format!("--{name}={v}"));
            }
        };
        opt("account", &self.account);
        opt("oidc-client-secret", &self.oidc_client_secret);
        opt("oidc-client-secret-file", &self.oidc_client_secret_file);
        opt("password-file", &self.password_file);
        opt("oidc-redirect-url", &self.oidc_redirect_url);
        opt("local-server-cert", &self.local_server_cert);
        opt("local-server-key", &self.local_server_key);
        opt("browser-command", &self.browser_command);
        opt(
            "open-url-after-authentication",
            &self.open_url_after_authentication,
        );
        opt("username", &self.username);
        opt(
            "oidc-redirect-url-hostname",
            &self.oidc_redirect_url_hostname,
        );
        opt(
            "oidc-redirect-url-authcode-keyboard",
            &self.oidc_redirect_url_authcode_keyboard,
        );
        let lists: [(&str, &Vec<String>); 8] = [
            ("listen-port", &self.listen_port),
            ("oidc-extra-scope", &self.oidc_extra_scope),
            ("oidc-request-header", &self.oidc_request_header),
            (
                "oidc-auth-request-extra-params",
                &self.oidc_auth_request_extra_params,
            ),
            ("certificate-authority", &self.certificate_authority),
            (
                "certificate-authority-data",
                &self.certificate_authority_data,
            ),
            ("token-exchange-audience", &self.token_exchange_audience),
            ("token-exchange-scope", &self.token_exchange_scope),
        ];
        for (name, values) in lists {
            out.extend(values.iter().map(|v| format!("--{name}={v}")));
        }
        if self.listen_address != defaults.listen_address {
            out.extend(
                self.listen_address
                    .iter()
                    .map(|v| format!("--listen-address={v}")),
            );
        }
        if let Some(dir) = &self.token_cache_dir {
            out.push(format!("--token-cache-dir={dir}"));
        }
        if self.token_cache_storage != defaults.token_cache_storage {
            let value = self.token_cache_storage.to_possible_value().expect("named");
            out.push(format!("--token-cache-storage={}", value.get_name()));
        }
        if self.grant_type != defaults.grant_type {
            let value = self.grant_type.to_possible_value().expect("named");
            out.push(format!("--grant-type={}", value.get_name()));
        }
        if self.oidc_pkce_method != defaults.oidc_pkce_method {
            let value = self.oidc_pkce_method.to_possible_value().expect("named");
            out.push(format!("--oidc-pkce-method={}", value.get_name()));
        }
        if self.authentication_timeout_sec != defaults.authentication_timeout_sec {
            out.push(format!(
                "--authentication-timeout-sec={}",
                self.authentication_timeout_sec
            ));
        }
        for (flag, on) in [
            ("--oidc-use-access-token", self.oidc_use_access_token),
            ("--insecure-skip-tls-verify", self.insecure_skip_tls_verify),
            ("--skip-open-browser", self.skip_open_browser),
            ("--oidc-use-pkce", self.oidc_use_pkce),
            ("--tls-renegotiation-once", self.tls_renegotiation_once),
            ("--tls-renegotiation-freely", self.tls_renegotiation_freely),
        ] {
            if on {
                out.push(flag.to_string());
            }
        }
        // What the environment gave stays the environment's: the kubeconfig then reads it
        // where kubectl runs (and a secret never lands in the file). The issuer and client
        // are written whatever gave them: a kubeconfig names its login.
        out.retain(|arg| {
            let name = arg
                .strip_prefix("--")
                .map(|a| a.split('=').next().unwrap_or(a));
            !name.is_some_and(|name| {
                !matches!(name, "oidc-issuer-url" | "oidc-client-id")
                    && self.from_environment.iter().any(|f| f == name)
            })
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every get-token flag clap knows, each set away from its default, survives
    /// `to_exec_args` and a parse back (setup writes these args into kubeconfigs): a flag
    /// added later is covered without naming it here.
    #[test]
    fn to_exec_args_round_trips_every_flag() {
        use clap::CommandFactory;
        const LEFT_OUT: [&str; 2] = ["password", "force-refresh"];
        let command = GetTokenOnly::command();
        let mut args = vec!["k".to_string()];
        let mut covered = Vec::new();
        for (n, arg) in command.get_arguments().enumerate() {
            let Some(long) = arg.get_long() else { continue };
            if long == "v" || long == "help" || LEFT_OUT.contains(&long) {
                continue;
            }
            let defaults: Vec<_> = arg.get_default_values().iter().collect();
            let possible = arg.get_possible_values();
            let value = if defaults.len() == 1 && defaults[0] == "false" {
                "true".to_string()
            } else if let Some(other) = possible.iter().rev().find(|p| {
                !defaults
                    .iter()
                    .any(|d| p.matches(&d.to_string_lossy(), false))
            }) {
                other.get_name().to_string()
            } else {
                // A number suits both the numeric flags and the free-text ones.
                (n + 1).to_string()
            };
            args.push(format!("--{long}={value}"));
            covered.push(long.to_string());
        }
        let first = GetTokenOnly::try_parse_from(&args).unwrap().args;
        let written = first.to_exec_args();
        assert_eq!(written[0], "get-token");
        let again = GetTokenOnly::try_parse_from(
            std::iter::once("k".to_string()).chain(written[1..].iter().cloned()),
        )
        .unwrap_or_else(|e| panic!("{written:?} does not parse back: {e}"))
        .args;
        assert_eq!(format!("{first:?}"), format!("{again:?}"), "{written:?}");
        for flag in covered {
            assert!(
                written.iter().any(|a| a.starts_with(&format!("--{flag}"))),
                "--{flag} was lost: {written:?}"
            );
        }
    }

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn klog_flags_are_dropped_with_their_values() {
        let args = os(&[
            "kubectl-oidc_login",
            "get-token",
            "--logtostderr",
            "--log-dir",
            "/tmp",
            "--vmodule=x=2",
            "--oidc-issuer-url=https://a",
        ]);
        assert_eq!(
            strip_klog_flags(args),
            os(&[
                "kubectl-oidc_login",
                "get-token",
                "--oidc-issuer-url=https://a"
            ])
        );
    }

    #[test]
    fn extra_scopes_accept_repeats_and_commas() {
        let cli = parse(os(&[
            "k",
            "get-token",
            "--oidc-issuer-url=https://a",
            "--oidc-client-id=c",
            "--oidc-extra-scope=email,profile",
            "--oidc-extra-scope",
            "groups",
            "-v",
            "1",
        ]))
        .unwrap();
        let Command::GetToken(args) = cli.command else {
            panic!("expected get-token");
        };
        // clap keeps each value whole; pflag's CSV reading splits them.
        assert_eq!(args.oidc_extra_scope, ["email,profile", "groups"]);
        assert_eq!(
            pflag::string_slice(&args.oidc_extra_scope).unwrap(),
            ["email", "profile", "groups"]
        );
        assert_eq!(cli.verbosity, 1);
        assert_eq!(args.listen_address, ["127.0.0.1:8000", "127.0.0.1:18000"]);
        assert_eq!(args.authentication_timeout_sec, 180);
    }
}
