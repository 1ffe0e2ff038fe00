//! Flags → plain settings: the one place that gives the command line its meaning. `~` is
//! expanded, lists are normalised, KEY=VALUE pairs are split, and each command gets the
//! options struct it declares. Nothing here touches the network or the cache.

use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use crate::cli::pflag::{int_slice, string_slice, string_to_string};
use crate::cli::{
    AccountsArgs, CleanArgs, DoctorArgs, GetTokenArgs, GrantArg, KubectlArgs, LogoutArgs,
    OutputArg, PkceArg, SetupArgs, StorageArg, WhoamiArgs,
};
use crate::commands::{accounts, clean, doctor, logout, setup, whoami};
use crate::config::{Config, GrantType, Pkce};
use crate::diagnose::Finding;
use crate::kubeconfig::Target;
use crate::login_report::Format;
use crate::tokens::Storage;

#[derive(Debug, Error)]
pub enum SettingsError {
    #[error("{flag}: {reason}")]
    BadValue { flag: &'static str, reason: String },
    #[error("{flag} expects KEY=VALUE, got {value:?}")]
    NotKeyValue { flag: &'static str, value: String },
    #[error("cannot find the home directory to expand `~` in {0:?}; give an absolute path")]
    NoHome(String),
    #[error("--oidc-issuer-url {0:?} is not a valid URL: {1}")]
    BadIssuer(String, String),
    #[error("--local-server-cert and --local-server-key must be given together")]
    HalfLocalServerTls,
    #[error("--token-exchange-audience is given {0} times; a kubeconfig user gets a token for one cluster, so give one (setup takes several and writes one user per cluster)")]
    ManyAudiences(usize),
    #[error("--token-exchange-audience is empty; give the cluster's client ID (its API server's audience)")]
    EmptyAudience,
    #[error("--token-exchange-scope is given {0} times; get-token takes one value (several scopes go in it space-separated)")]
    ManyScopes(usize),
    #[error("--token-exchange-scope is empty; give the client scope that holds the cluster's Audience mapper, or drop the flag")]
    EmptyScope,
    #[error("--token-exchange-scope is given {scopes} times for {audiences} --token-exchange-audience; give one for every cluster, or one per audience in the same order")]
    ScopesPerAudience { scopes: usize, audiences: usize },
    #[error("--token-exchange-scope needs --token-exchange-audience: setup exchanges the login for each audience with that scope")]
    ScopeWithoutAudience,
    #[error("{flag} and {flag}-file are both given; keep one of them")]
    TwoSecrets { flag: &'static str },
    #[error("{flag}: {source}")]
    SecretFile {
        flag: &'static str,
        source: crate::secret_file::SecretFileError,
    },
    /// An error of a flag whose value came from the environment: the variable is named.
    #[error("{variable} (the environment's value of {flag}): {source}")]
    FromEnvironment {
        variable: String,
        flag: String,
        source: Box<SettingsError>,
    },
}

impl SettingsError {
    /// The flag the error is about, when it is about one.
    fn flag(&self) -> Option<&str> {
        match self {
            SettingsError::BadValue { flag, .. }
            | SettingsError::NotKeyValue { flag, .. }
            | SettingsError::SecretFile { flag, .. } => Some(flag),
            SettingsError::BadIssuer(..) => Some("--oidc-issuer-url"),
            SettingsError::ManyAudiences(_) | SettingsError::EmptyAudience => {
                Some("--token-exchange-audience")
            }
            SettingsError::ManyScopes(_) | SettingsError::EmptyScope => {
                Some("--token-exchange-scope")
            }
            _ => None,
        }
    }

    /// This error, naming the environment variable its flag's value came from.
    fn naming_the_variable(self, args: &GetTokenArgs) -> SettingsError {
        let Some(flag) = self.flag().map(|f| f.trim_start_matches("--").to_string()) else {
            return self;
        };
        if !args.from_environment.contains(&flag) {
            return self;
        }
        // A secret's value stays out of the message even when it is malformed.
        let this = match self {
            SettingsError::NotKeyValue { flag: name, .. }
                if crate::cli::env::SECRET_FLAGS.contains(&flag.as_str()) =>
            {
                SettingsError::NotKeyValue {
                    flag: name,
                    value: "(value not shown)".into(),
                }
            }
            other => other,
        };
        SettingsError::FromEnvironment {
            variable: crate::cli::env::variable(&flag),
            flag: format!("--{flag}"),
            source: Box::new(this),
        }
    }
}

/// Says at `-v 1` which flags the environment gave, never a secret's value.
fn log_sources(args: &GetTokenArgs) {
    if !crate::log::enabled(1) {
        return;
    }
    for line in environment_sources(args) {
        crate::debug!(1, "{line}");
    }
}

/// One line per flag the environment gave: the flag, the variable, and the value unless it
/// is a secret.
pub fn environment_sources(args: &GetTokenArgs) -> Vec<String> {
    args.from_environment
        .iter()
        .map(|flag| {
            let variable = crate::cli::env::variable(flag);
            let value = std::env::var(&variable).unwrap_or_default();
            if crate::cli::env::SECRET_FLAGS.contains(&flag.as_str()) {
                format!("--{flag} from ${variable} (a secret: value not shown)")
            } else {
                format!("--{flag} from ${variable}={value:?}")
            }
        })
        .collect()
}

/// The settings of one login (get-token, login, and the login part of every other command).
pub fn config(args: &GetTokenArgs) -> Result<Config, SettingsError> {
    log_sources(args);
    config_of(args).map_err(|e| e.naming_the_variable(args))
}

fn config_of(args: &GetTokenArgs) -> Result<Config, SettingsError> {
    let audiences = audiences(args)?;
    if audiences.len() > 1 {
        return Err(SettingsError::ManyAudiences(audiences.len()));
    }
    let scopes = scopes(args)?;
    if scopes.len() > 1 {
        return Err(SettingsError::ManyScopes(scopes.len()));
    }
    let mut config = login_config(args)?;
    config.token_exchange_audience = audiences.into_iter().next();
    config.token_exchange_scope = scopes.into_iter().next();
    Ok(config)
}

/// Each --token-exchange-scope value as one space-delimited scope list.
fn scopes(args: &GetTokenArgs) -> Result<Vec<String>, SettingsError> {
    args.token_exchange_scope
        .iter()
        .map(|value| {
            crate::exec_credential::normalize_scope(std::iter::once(value.as_str()))
                .ok_or(SettingsError::EmptyScope)
        })
        .collect()
}

/// The audiences of --token-exchange-audience, deduplicated in the order given.
fn audiences(args: &GetTokenArgs) -> Result<Vec<String>, SettingsError> {
    let mut out: Vec<String> = Vec::new();
    for audience in &args.token_exchange_audience {
        let audience = audience.trim();
        if audience.is_empty() {
            return Err(SettingsError::EmptyAudience);
        }
        if !out.iter().any(|a| a == audience) {
            out.push(audience.to_string());
        }
    }
    Ok(out)
}

/// The settings of the login itself, without --token-exchange-audience.
fn login_config(args: &GetTokenArgs) -> Result<Config, SettingsError> {
    login_config_of(args).map_err(|e| e.naming_the_variable(args))
}

fn login_config_of(args: &GetTokenArgs) -> Result<Config, SettingsError> {
    deprecation_notices(args);
    let mut extra_scopes: Vec<String> = Vec::new();
    // Scopes are space-delimited on the wire (RFC 6749 §3.3); guides write
    // --oidc-extra-scope="email offline_access" as often as comma lists.
    let scopes = pflag_value("--oidc-extra-scope", string_slice(&args.oidc_extra_scope))?;
    for scope in scopes.iter().flat_map(|s| s.split_whitespace()) {
        if scope != "openid" && !extra_scopes.iter().any(|s| s == scope) {
            extra_scopes.push(scope.to_string());
        }
    }
    let ports = pflag_value("--listen-port", int_slice(&args.listen_port))?;
    let listen_addresses = if ports.is_empty() {
        pflag_value("--listen-address", string_slice(&args.listen_address))?
    } else {
        // kubelogin's deprecated --listen-port wins over --listen-address.
        ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect()
    };
    let local_server_tls = match (&args.local_server_cert, &args.local_server_key) {
        (Some(cert), Some(key)) => Some((expand_home(cert)?, expand_home(key)?)),
        (None, None) => None,
        _ => return Err(SettingsError::HalfLocalServerTls),
    };
    url::Url::parse(&args.oidc_issuer_url)
        .map_err(|e| SettingsError::BadIssuer(args.oidc_issuer_url.clone(), e.to_string()))?;
    Ok(Config {
        issuer_url: args.oidc_issuer_url.clone(),
        client_id: args.oidc_client_id.clone(),
        client_secret: secret(
            args,
            "--oidc-client-secret",
            &args.oidc_client_secret,
            &args.oidc_client_secret_file,
        )?
        .filter(|s| !s.is_empty()),
        account: args.account.clone().filter(|a| !a.is_empty()),
        redirect_url: args
            .oidc_redirect_url
            .clone()
            .or_else(|| args.oidc_redirect_url_authcode_keyboard.clone()),
        redirect_hostname: args
            .oidc_redirect_url_hostname
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into()),
        extra_scopes,
        // A robot's credential is its ID token when the provider issues one for the client
        // credentials grant (as kubelogin hands it), else its access token.
        use_access_token: args.oidc_use_access_token,
        request_headers: key_values("--oidc-request-header", &args.oidc_request_header)?,
        auth_extra_params: key_values(
            "--oidc-auth-request-extra-params",
            &args.oidc_auth_request_extra_params,
        )?,
        // kubelogin: the deprecated --oidc-use-pkce forces S256 whatever the method says.
        pkce: match args.oidc_pkce_method {
            _ if args.oidc_use_pkce => Pkce::S256,
            PkceArg::Auto => Pkce::Auto,
            PkceArg::No => Pkce::Disabled,
            PkceArg::S256 => Pkce::S256,
        },
        force_refresh: args.force_refresh,
        cache_dir: cache_dir(args.token_cache_dir.as_deref())?,
        storage: storage(args.token_cache_storage),
        ca_files: args
            .certificate_authority
            .iter()
            .map(|p| expand_home(p))
            .collect::<Result<_, _>>()?,
        ca_data: args.certificate_authority_data.clone(),
        insecure_skip_tls_verify: args.insecure_skip_tls_verify,
        grant: match args.grant_type {
            GrantArg::Auto => GrantType::Auto,
            GrantArg::Authcode => GrantType::Authcode,
            GrantArg::AuthcodeKeyboard => GrantType::AuthcodeKeyboard,
            GrantArg::Password => GrantType::Password,
            GrantArg::DeviceCode => GrantType::DeviceCode,
            GrantArg::ClientCredentials => GrantType::ClientCredentials,
        },
        listen_addresses,
        skip_open_browser: args.skip_open_browser,
        browser_command: args.browser_command.clone().filter(|c| !c.is_empty()),
        auth_timeout: Duration::from_secs(args.authentication_timeout_sec.max(1)),
        local_server_tls,
        open_url_after_authentication: args.open_url_after_authentication.clone(),
        username: args.username.clone(),
        password: secret(args, "--password", &args.password, &args.password_file)?,
        token_exchange_audience: None,
        token_exchange_scope: None,
        from_environment: args
            .from_environment
            .iter()
            .map(|flag| (flag.clone(), crate::cli::env::variable(flag)))
            .collect(),
    })
}

/// A secret given as `flag`, as `flag`-file, or not at all. Given both ways, the command
/// line's wins over the environment's; both on the command line (or both in the environment)
/// is a mistake to correct, not a guess to make.
fn secret(
    args: &GetTokenArgs,
    flag: &'static str,
    value: &Option<String>,
    file: &Option<String>,
) -> Result<Option<String>, SettingsError> {
    let from_env = |name: &str| {
        args.from_environment
            .iter()
            .any(|f| f == name.trim_start_matches("--"))
    };
    let file_flag = format!("{flag}-file");
    let use_file = match (value, file) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(_), Some(_)) => match (from_env(flag), from_env(&file_flag)) {
            (true, false) => true,
            (false, true) => false,
            _ => return Err(SettingsError::TwoSecrets { flag }),
        },
    };
    if !use_file {
        return Ok(value.clone());
    }
    let path = expand_home(file.as_deref().unwrap_or_default())?;
    let flag: &'static str = if flag == "--password" {
        "--password-file"
    } else {
        "--oidc-client-secret-file"
    };
    crate::secret_file::read(&path)
        .map(Some)
        .map_err(|source| SettingsError::SecretFile { flag, source })
}

pub fn storage(arg: StorageArg) -> Storage {
    match arg {
        StorageArg::Auto => Storage::Auto,
        StorageArg::Disk => Storage::Disk,
        StorageArg::Keyring => Storage::Keyring,
        StorageArg::None => Storage::None,
    }
}

pub fn setup(args: &SetupArgs) -> Result<setup::Options, SettingsError> {
    let audiences = audiences(&args.token)?;
    let scopes = scopes(&args.token)?;
    // One scope for every cluster, or one each in the order of the audiences.
    let scope_of = |i: usize| match scopes.len() {
        0 => Ok(None),
        1 => Ok(Some(scopes[0].clone())),
        n if n == audiences.len() => Ok(Some(scopes[i].clone())),
        n => Err(SettingsError::ScopesPerAudience {
            scopes: n,
            audiences: audiences.len(),
        }),
    };
    if audiences.is_empty() && !scopes.is_empty() {
        return Err(SettingsError::ScopeWithoutAudience);
    }
    // One kubeconfig user for every cluster: the login's flags; each cluster names its
    // audience (and scope) in its own kubeconfig entry.
    let clusters = audiences
        .iter()
        .enumerate()
        .map(|(i, audience)| Ok((audience.clone(), scope_of(i)?)))
        .collect::<Result<_, SettingsError>>()?;
    let mut login = args.token.clone();
    login.token_exchange_audience.clear();
    login.token_exchange_scope.clear();
    Ok(setup::Options {
        notes: setup_notes(&args.token),
        config: login_config(&args.token)?,
        clusters,
        exec_args: login.to_exec_args(),
        extra_accounts: args
            .extra_account
            .iter()
            .map(|account| {
                let mut token = login.clone();
                token.account = Some(account.clone());
                (account.clone(), token.to_exec_args())
            })
            .collect(),
        group: args.group.clone(),
        cluster_role: args.cluster_role.clone(),
        username_claim: args.username_claim.clone(),
        groups_prefix: args.groups_prefix.clone(),
        write_kubeconfig: args.write_kubeconfig,
        kubeconfig: args.kubeconfig.as_deref().map(expand_home).transpose()?,
        user: args.user.clone(),
        context: args.context.clone(),
        cluster: args.cluster.clone(),
        server: args.server.clone(),
        server_ca: args
            .server_certificate_authority
            .as_deref()
            .map(expand_home)
            .transpose()?,
        use_context: args.use_context,
    })
}

/// What setup's exec entries carry of the secrets, and what they leave to the environment
/// (see `to_exec_args`): one finding each, so the report says which form it wrote.
fn setup_notes(args: &GetTokenArgs) -> Vec<Finding> {
    let from_env = |flag: &str| args.from_environment.iter().any(|f| f == flag);
    let mut notes = Vec::new();
    for (flag, value, file, what) in [
        (
            "oidc-client-secret",
            &args.oidc_client_secret,
            &args.oidc_client_secret_file,
            "client secret",
        ),
        ("password", &args.password, &args.password_file, "password"),
    ] {
        let variable = crate::cli::env::variable(flag);
        let file_flag = format!("{flag}-file");
        if file.is_some() && !from_env(&file_flag) {
            notes.push(Finding::ok(format!(
                "the {what} is read from a file: the exec entry names the file (--{file_flag}), never the {what}"
            )));
        } else if (value.is_some() && from_env(flag)) || (file.is_some() && from_env(&file_flag)) {
            let given = if file.is_some() {
                crate::cli::env::variable(&file_flag)
            } else {
                variable.clone()
            };
            notes.push(Finding::ok(format!(
                "the {what} comes from ${given}: the exec entry does not carry it; set it wherever kubectl runs (kubectl passes its environment to the plugin)"
            )));
        } else if value.is_some() && flag == "oidc-client-secret" {
            notes.push(Finding::warning(
                format!("the {what} is written into the exec entry's args (--{flag}): every copy of the kubeconfig carries it, and any local account can read it from the plugin's command line"),
                format!("give it as --{file_flag}=FILE (mode 600) or in ${variable} instead, and run setup again"),
            ));
        } else if value.is_some() {
            notes.push(Finding::ok(format!(
                "the {what} is not written into the exec entry (kubectl asks for it); to give it without a prompt, use --{file_flag}=FILE (mode 600) or ${variable}"
            )));
        }
    }
    for flag in &args.from_environment {
        if matches!(
            flag.as_str(),
            "oidc-issuer-url"
                | "oidc-client-id"
                | "oidc-client-secret"
                | "password"
                | "oidc-client-secret-file"
                | "password-file"
                | "v"
        ) {
            continue;
        }
        notes.push(Finding::ok(format!(
            "--{flag} is left to ${} (not written into the exec entry)",
            crate::cli::env::variable(flag)
        )));
    }
    notes
}

pub fn doctor(args: &DoctorArgs) -> Result<doctor::Options, SettingsError> {
    Ok(doctor::Options {
        target: target(&args.kubectl)?,
        parse_get_token,
    })
}

/// kubectl's own flags, as kubectl reads them (`~` expanded, as everywhere here).
fn target(args: &KubectlArgs) -> Result<Target, SettingsError> {
    Ok(Target {
        kubeconfig: args.kubeconfig.as_deref().map(expand_home).transpose()?,
        context: args.context.clone(),
        cluster: args.cluster.clone(),
        user: args.user.clone(),
    })
}

/// get-token's arguments (as a kubeconfig's exec entry has them, after `oidc-login`) read as
/// this plugin reads them, with a line for each flag the environment gave, or why it would
/// refuse them.
fn parse_get_token(args: &[String]) -> Result<(Config, Vec<String>), String> {
    let argv: Vec<std::ffi::OsString> = std::iter::once("kubectl-oidc_login")
        .chain(args.iter().map(String::as_str))
        .map(Into::into)
        .collect();
    let parsed = crate::cli::parse(crate::cli::strip_klog_flags(argv)).map_err(|e| {
        let text = e.to_string();
        let first = text
            .lines()
            .next()
            .unwrap_or("")
            .trim_start_matches("error: ");
        first.to_string()
    })?;
    match parsed.command {
        crate::cli::Command::GetToken(args) => config(&args)
            .map(|config| (config, environment_sources(&args)))
            .map_err(|e| e.to_string()),
        _ => Err("the exec entry does not run `get-token`".into()),
    }
}

pub fn logout(args: &LogoutArgs) -> Result<logout::Options, SettingsError> {
    Ok(logout::Options {
        config: config(&args.token)?,
        keep_session: args.keep_session,
    })
}

pub fn whoami(args: &WhoamiArgs) -> Result<whoami::Options, SettingsError> {
    Ok(whoami::Options {
        config: config(&args.token)?,
        api_server: args.api_server || !target(&args.kubectl)?.is_empty(),
        target: target(&args.kubectl)?,
        format: format(args.output),
    })
}

pub fn accounts(args: &AccountsArgs) -> Result<accounts::Options, SettingsError> {
    Ok(accounts::Options {
        cache_dir: cache_dir(args.token_cache_dir.as_deref())?,
        storage: storage(args.token_cache_storage),
        format: format(args.output),
    })
}

fn format(arg: OutputArg) -> Format {
    match arg {
        OutputArg::Text => Format::Text,
        OutputArg::Json => Format::Json,
        OutputArg::Yaml => Format::Yaml,
    }
}

pub fn clean(args: &CleanArgs) -> Result<clean::Options, SettingsError> {
    Ok(clean::Options {
        cache_dir: cache_dir(args.token_cache_dir.as_deref())?,
        issuer: args.oidc_issuer_url.clone(),
        client_id: args.oidc_client_id.clone(),
        account: args.account.clone(),
    })
}

/// A stringToString flag's pairs, as pflag reads them; an empty key is refused (no header or
/// parameter can have one).
fn key_values(
    flag: &'static str,
    items: &[String],
) -> Result<Vec<(String, String)>, SettingsError> {
    let pairs =
        string_to_string(items).map_err(|value| SettingsError::NotKeyValue { flag, value })?;
    match pairs.iter().find(|(k, _)| k.trim().is_empty()) {
        Some((k, v)) => Err(SettingsError::NotKeyValue {
            flag,
            value: format!("{k}={v}"),
        }),
        None => Ok(pairs),
    }
}

fn pflag_value<T>(flag: &'static str, value: Result<T, String>) -> Result<T, SettingsError> {
    value.map_err(|reason| SettingsError::BadValue { flag, reason })
}

/// One line on stderr for each flag kubelogin itself marks deprecated (as pflag prints it),
/// and at `-v 1` for the TLS renegotiation flags this plugin accepts and cannot honour.
fn deprecation_notices(args: &GetTokenArgs) {
    let deprecated = [
        (
            args.oidc_use_pkce,
            "--oidc-use-pkce",
            "--oidc-pkce-method=S256",
        ),
        (
            !args.listen_port.is_empty(),
            "--listen-port",
            "--listen-address=127.0.0.1:PORT",
        ),
        (
            args.oidc_redirect_url_hostname.is_some(),
            "--oidc-redirect-url-hostname",
            "--oidc-redirect-url=http://HOST:PORT",
        ),
        (
            args.oidc_redirect_url_authcode_keyboard.is_some(),
            "--oidc-redirect-url-authcode-keyboard",
            "--oidc-redirect-url",
        ),
    ];
    for (given, flag, instead) in deprecated {
        if given {
            eprintln!("Flag {flag} has been deprecated, use {instead} instead.");
        }
    }
    if args.tls_renegotiation_once || args.tls_renegotiation_freely {
        crate::debug!(
            1,
            "--tls-renegotiation-* ignored: TLS renegotiation is never needed with TLS 1.3 and rustls does not offer it"
        );
    }
}

/// The token cache directory: the flag, else `$KUBECACHEDIR/oidc-login` when KUBECACHEDIR
/// is set (kubelogin v1.28.1+), else `~/.kube/cache/oidc-login`.
pub fn cache_dir(flag: Option<&str>) -> Result<PathBuf, SettingsError> {
    match flag {
        Some(dir) => expand_home(dir),
        None => match std::env::var_os("KUBECACHEDIR") {
            Some(base) => Ok(PathBuf::from(base).join("oidc-login")),
            None => expand_home("~/.kube/cache/oidc-login"),
        },
    }
}

/// Expands a leading `~` or `~/` to the home directory, as kubelogin does.
pub fn expand_home(path: &str) -> Result<PathBuf, SettingsError> {
    let rest = match path.strip_prefix('~') {
        Some("") => "",
        Some(rest) if rest.starts_with('/') => &rest[1..],
        _ => return Ok(PathBuf::from(path)),
    };
    let home = dirs::home_dir().ok_or_else(|| SettingsError::NoHome(path.to_string()))?;
    Ok(if rest.is_empty() {
        home
    } else {
        Path::new(&home).join(rest)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_only_a_leading_tilde() {
        let home = dirs::home_dir().unwrap();
        assert_eq!(expand_home("~/x/y").unwrap(), home.join("x/y"));
        assert_eq!(expand_home("~").unwrap(), home);
        assert_eq!(expand_home("/a/~/b").unwrap(), PathBuf::from("/a/~/b"));
        assert_eq!(expand_home("~user/x").unwrap(), PathBuf::from("~user/x"));
    }

    fn parsed(args: &[&str]) -> crate::cli::Command {
        let argv = ["k"]
            .iter()
            .chain(args)
            .map(std::ffi::OsString::from)
            .collect();
        crate::cli::parse(argv).unwrap().command
    }

    #[test]
    fn get_token_takes_one_exchange_audience_and_setup_one_user_per_audience() {
        let base = [
            "--oidc-issuer-url=https://k/realms/r",
            "--oidc-client-id=login",
        ];
        let crate::cli::Command::GetToken(one) = parsed(
            &[
                &["get-token"][..],
                &base,
                &["--token-exchange-audience=dev"],
            ]
            .concat(),
        ) else {
            panic!("get-token")
        };
        let one = config(&one).unwrap();
        assert_eq!(one.token_exchange_audience.as_deref(), Some("dev"));
        // The login's key is the login client's, whatever the audience; the credential's is
        // the audience's own.
        assert_eq!(
            one.cache_key(),
            login_config(&one_args()).unwrap().cache_key()
        );
        assert_ne!(one.credential_key().id(), one.cache_key().id());

        let two = [
            &["get-token"][..],
            &base,
            &[
                "--token-exchange-audience=dev",
                "--token-exchange-audience=prod",
            ],
        ]
        .concat();
        let crate::cli::Command::GetToken(two) = parsed(&two) else {
            panic!("get-token")
        };
        assert!(matches!(config(&two), Err(SettingsError::ManyAudiences(2))));

        let crate::cli::Command::Setup(args) = parsed(
            &[
                &["setup"][..],
                &base,
                &[
                    "--token-exchange-audience=dev,prod",
                    "--token-exchange-audience=qa",
                ],
            ]
            .concat(),
        ) else {
            panic!("setup")
        };
        let options = setup(&args).unwrap();
        let audiences: Vec<&str> = options.clusters.iter().map(|(a, _)| a.as_str()).collect();
        // One value is one audience: client IDs may hold commas.
        assert_eq!(audiences, ["dev,prod", "qa"]);
        // One user for all of them: no audience in its flags.
        assert!(!options
            .exec_args
            .iter()
            .any(|a| a.starts_with("--token-exchange-")));
    }

    #[test]
    fn setup_takes_one_scope_for_all_clusters_or_one_each() {
        let setup_with = |extra: &[&str]| {
            let argv = [
                &[
                    "setup",
                    "--oidc-issuer-url=https://k/realms/r",
                    "--oidc-client-id=login",
                ][..],
                extra,
            ]
            .concat();
            let crate::cli::Command::Setup(args) = parsed(&argv) else {
                panic!("setup")
            };
            setup(&args).map(|o| o.clusters)
        };
        let s = |v: &str| Some(v.to_string());
        let each = setup_with(&[
            "--token-exchange-audience=dev",
            "--token-exchange-audience=prod",
            "--token-exchange-scope=aud-dev",
            "--token-exchange-scope=openid  aud-prod",
        ])
        .unwrap();
        assert_eq!(
            each,
            [
                ("dev".into(), s("aud-dev")),
                ("prod".into(), s("openid aud-prod"))
            ]
        );
        let all = setup_with(&[
            "--token-exchange-audience=dev",
            "--token-exchange-audience=prod",
            "--token-exchange-scope=aud-clusters",
        ])
        .unwrap();
        assert_eq!(all[1], ("prod".into(), s("aud-clusters")));
        assert!(matches!(
            setup_with(&[
                "--token-exchange-audience=a",
                "--token-exchange-audience=b",
                "--token-exchange-audience=c",
                "--token-exchange-scope=x",
                "--token-exchange-scope=y",
            ]),
            Err(SettingsError::ScopesPerAudience {
                scopes: 2,
                audiences: 3
            })
        ));
        assert!(matches!(
            setup_with(&["--token-exchange-scope=x"]),
            Err(SettingsError::ScopeWithoutAudience)
        ));
        assert!(matches!(
            setup_with(&["--token-exchange-audience=a", "--token-exchange-scope= "]),
            Err(SettingsError::EmptyScope)
        ));
    }

    fn one_args() -> GetTokenArgs {
        let crate::cli::Command::GetToken(args) = parsed(&[
            "get-token",
            "--oidc-issuer-url=https://k/realms/r",
            "--oidc-client-id=login",
        ]) else {
            panic!("get-token")
        };
        *args
    }

    #[test]
    fn doctor_and_the_command_line_know_one_prefix() {
        assert_eq!(crate::config::ENV_PREFIX, crate::cli::env::PREFIX);
    }

    #[test]
    fn key_values_split_on_the_first_equals_sign() {
        let kv = key_values("--x", &["a=b=c".to_string()]).unwrap();
        assert_eq!(kv, [("a".to_string(), "b=c".to_string())]);
        assert!(key_values("--x", &["novalue".to_string()]).is_err());
        assert!(key_values("--x", &["=v".to_string()]).is_err());
    }
}
