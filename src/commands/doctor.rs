//! `doctor`: reads the kubeconfig user of a context and checks the whole chain, one line
//! each with the fix: the exec entry (which binary, its version, its flags), the cache
//! directory, the keyring, the provider (discovery and keys through the configured CA and
//! proxy), this machine's clock against the provider's, the cached login, and what the API
//! server makes of the token. Exit 1 when any check fails. It never prints a token.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::claims::{relative, Identity};
use crate::clock::{human, Offset};
use crate::config::Config;
use crate::diagnose::{self, Finding, Level};
use crate::error::Error;
use crate::exec_credential::{rfc3339, CLUSTER_EXTENSION};
use crate::jwt::now;
use crate::kubeconfig::Target;
use crate::kuberc::{self, Verdict};
use crate::oidc::http::HttpClient;
use crate::oidc::provider::Provider;
use crate::store::{self, keyring::Keyring};
use crate::tokens::Storage;

/// An exec entry's settings, and one line per flag the environment gave.
pub type ParsedEntry = (Config, Vec<String>);

/// What `doctor` was asked for.
pub struct Options {
    /// kubectl's flags choosing the context (default: the current one), read as kubectl does.
    pub target: Target,
    /// Reads get-token arguments as this plugin would (the settings layer's parser), or says
    /// why it would reject them.
    /// Also says which flags the environment gave (one line each, never a secret's value).
    pub parse_get_token: fn(&[String]) -> Result<ParsedEntry, String>,
}

pub fn run(opts: &Options) -> Result<(), Error> {
    let mut findings = Vec::new();
    let config = check_exec_entry(opts, &mut findings);
    if let Some(config) = &config {
        check_listen_addresses(config, &mut findings);
        check_cache_dir(config, &mut findings);
        check_keyring(config, &mut findings);
        let provider = check_provider(config, &mut findings);
        check_cached_login(config, provider.as_ref(), &mut findings);
        check_api_server(opts, &mut findings);
    }
    print!("{}", diagnose::render(&findings));
    let errors = findings.iter().filter(|f| f.level == Level::Error).count();
    if errors > 0 {
        return Err(Error::Setup(format!(
            "{errors} check(s) failed; see the fixes above"
        )));
    }
    Ok(())
}

fn kubectl(target: &Target, args: &[&str]) -> Result<String, String> {
    let mut command = Command::new("kubectl");
    if args.first() == Some(&"config") {
        // Reading the kubeconfig must not sign in (some kubectl builds run the exec plugin
        // for every command); the API server check below may.
        command.env(crate::signin::NO_LOGIN_ENV, "1");
    }
    let out = command
        .args(target.kubectl_args())
        .args(args)
        .output()
        .map_err(|e| format!("cannot run kubectl ({e})"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("(no message)");
        return Err(first.trim().to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The exec entry of the context's user: which binary it runs and whether its flags parse.
fn check_exec_entry(opts: &Options, findings: &mut Vec<Finding>) -> Option<Config> {
    let view = match kubectl(
        &opts.target,
        &["config", "view", "--minify", "--raw", "-o", "json"],
    ) {
        Ok(view) => view,
        Err(e) => {
            findings.push(Finding::error(
                format!("cannot read the kubeconfig: {e}"),
                "check --kubeconfig (or KUBECONFIG) and --context; `kubectl config get-contexts` lists the contexts",
            ));
            return None;
        }
    };
    let view: serde_json::Value = serde_json::from_str(&view).unwrap_or_default();
    let user = &view["users"][0];
    let name = user["name"].as_str().unwrap_or("?");
    let exec = &user["user"]["exec"];
    let Some(command) = exec["command"].as_str() else {
        findings.push(Finding::error(
            format!("kubeconfig user {name:?} has no exec entry"),
            "run `kubectl oidc-login setup --oidc-issuer-url=... --oidc-client-id=... --write-kubeconfig`",
        ));
        return None;
    };
    let args: Vec<String> = exec["args"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let via_kubectl =
        file_name(command) == "kubectl" && args.first().is_some_and(|a| a == "oidc-login");
    let (program, plugin_args) = if via_kubectl {
        ("kubectl-oidc_login".to_string(), args[1..].to_vec())
    } else {
        (command.to_string(), args.clone())
    };
    check_binary(name, &program, findings);
    check_kuberc(command, findings);
    set_exec_environment(exec);
    match (opts.parse_get_token)(&plugin_args) {
        Ok((config, from_environment)) => {
            findings.push(Finding::ok(format!(
                "its flags parse: issuer {}, client {}, storage {}",
                config.issuer_url,
                config.client_id,
                config.storage.name()
            )));
            for line in from_environment {
                findings.push(Finding::ok(format!("from the environment: {line}")));
            }
            let provides = exec["provideClusterInfo"].as_bool().unwrap_or(false);
            check_cluster_config(&view["clusters"][0], name, provides, config, findings)
        }
        Err(e) => {
            findings.push(Finding::error(
                format!("this plugin rejects the exec entry's arguments: {e}"),
                "correct the args of the kubeconfig user (`kubectl oidc-login get-token --help` lists the flags)",
            ));
            None
        }
    }
}

/// The context's cluster as get-token sees it: the audience and scope of its extension
/// (which kubectl passes only with provideClusterInfo), merged with the user's flags as
/// get-token merges them. Returns the settings get-token runs with at this cluster.
fn check_cluster_config(
    cluster: &serde_json::Value,
    user: &str,
    provides: bool,
    config: Config,
    findings: &mut Vec<Finding>,
) -> Option<Config> {
    let name = cluster["name"].as_str().unwrap_or("?");
    let extension = match crate::kubeconfig::cluster_config(&cluster["cluster"]) {
        Ok(extension) => extension,
        Err(e) => {
            findings.push(Finding::error(
                format!("cluster {name:?}: its extension {CLUSTER_EXTENSION} cannot be read ({e})"),
                "write it as {audience: CLUSTER_CLIENT_ID, scope: CLIENT_SCOPE} (scope optional)",
            ));
            return None;
        }
    };
    let extension = match (extension, provides) {
        (Some(extension), true) => extension,
        (Some(_), false) => {
            findings.push(Finding::error(
                format!("cluster {name:?} names its audience in its extension {CLUSTER_EXTENSION}, but user {user:?} does not ask kubectl for it (provideClusterInfo), so this context gets the login's own token"),
                format!("kubectl config set-credentials {user} --exec-provide-cluster-info=true"),
            ));
            return Some(config);
        }
        (None, _) => return Some(config),
    };
    match config.for_cluster(Some(&extension)) {
        Ok(resolved) => {
            let resolved = resolved.into_owned();
            if let Some(audience) = &resolved.token_exchange_audience {
                let scope = resolved
                    .token_exchange_scope
                    .as_deref()
                    .map(|s| format!(" (scope {s})"))
                    .unwrap_or_default();
                findings.push(Finding::ok(format!(
                    "cluster {name:?} names audience {audience}{scope} in its extension {CLUSTER_EXTENSION}: this context gets a token for it by token exchange"
                )));
            }
            Some(resolved)
        }
        Err(e) => {
            let line = e.to_string();
            let (what, fix) = line.split_once("; ").unwrap_or((&line, ""));
            findings.push(Finding::error(format!("cluster {name:?}: {what}"), fix));
            None
        }
    }
}

/// Whether kubectl's credential plugin policy (kuberc) lets it run the exec entry's command.
fn check_kuberc(command: &str, findings: &mut Vec<Finding>) {
    let Some(policy) = kuberc::policy() else {
        return;
    };
    match policy.verdict(command) {
        Verdict::Allowed => findings.push(Finding::ok(format!(
            "kubectl's kuberc sets credentialPluginPolicy {} and its allowlist names {command}",
            policy.kind
        ))),
        Verdict::Refused { entry } => findings.push(Finding::error(
            format!(
                "kubectl's kuberc sets credentialPluginPolicy {} and no allowlist entry names {command}: kubectl will refuse to run the plugin",
                policy.kind
            ),
            format!(
                "{}{}",
                kuberc::entry_to_add(&entry),
                crate::troubleshooting::see("kubectl-refuses-to-run-the-plugin")
            ),
        )),
        Verdict::DenyAll => findings.push(Finding::error(
            format!(
                "kubectl's kuberc sets credentialPluginPolicy {}: kubectl runs no credential plugin",
                policy.kind
            ),
            format!(
                "set credentialPluginPolicy: Allowlist in your kuberc and {}{}",
                kuberc::entry_to_add(command),
                crate::troubleshooting::see("kubectl-refuses-to-run-the-plugin")
            ),
        )),
    }
}

/// The exec entry's `env` list, as kubectl hands it to the plugin over its own environment:
/// the plugin's variables among it then count for the checks below as they do for kubectl.
fn set_exec_environment(exec: &serde_json::Value) {
    for pair in exec["env"].as_array().into_iter().flatten() {
        if let (Some(name), Some(value)) = (pair["name"].as_str(), pair["value"].as_str()) {
            if name.starts_with(crate::config::ENV_PREFIX) {
                // doctor runs no thread yet: nothing else reads the environment meanwhile.
                std::env::set_var(name, value);
            }
        }
    }
}

fn file_name(path: &str) -> &str {
    Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(path)
}

/// Whether `program` (a path, or a name looked up on PATH) is this binary, at this version.
fn check_binary(user: &str, program: &str, findings: &mut Vec<Finding>) {
    let found = if program.contains(std::path::MAIN_SEPARATOR) {
        Some(PathBuf::from(program)).filter(|p| p.is_file())
    } else {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(program))
                .find(|p| p.is_file())
        })
    };
    let Some(found) = found else {
        findings.push(Finding::error(
            format!("kubeconfig user {user:?} runs {program}, which is not found"),
            format!(
                "install the plugin on PATH (./install.sh), or let `setup --write-kubeconfig` write its absolute path (apps started from a desktop have a shorter PATH){}",
                crate::troubleshooting::see("executable-not-found-in-lens-or-an-ide")
            ),
        ));
        return;
    };
    let me = std::env::current_exe().and_then(|p| p.canonicalize()).ok();
    let same = found
        .canonicalize()
        .ok()
        .is_some_and(|p| Some(&p) == me.as_ref());
    let ours = format!("kubectl-oidc_login {}", env!("CARGO_PKG_VERSION"));
    if same {
        findings.push(Finding::ok(format!(
            "kubeconfig user {user:?} runs this plugin ({}, {ours})",
            found.display()
        )));
        return;
    }
    let version = Command::new(&found)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if version == ours {
        findings.push(Finding::ok(format!(
            "kubeconfig user {user:?} runs {} ({ours})",
            found.display()
        )));
    } else {
        findings.push(Finding::warning(
            format!(
                "kubeconfig user {user:?} runs {}, which says {:?}, not this plugin ({ours})",
                found.display(),
                version.lines().next().unwrap_or("")
            ),
            "point the exec entry at this plugin, or remove the other copy from PATH (`kubectl plugin list` shows which one kubectl runs)",
        ));
    }
}

/// A listen address other than a loopback one: reachable by whoever can reach it, with
/// connections from outside this network namespace served unvouched (SECURITY.md, "The login
/// listener on other networks"). The login says so too, once, when it binds.
fn check_listen_addresses(config: &Config, findings: &mut Vec<Finding>) {
    let exposed: Vec<&str> = config
        .listen_addresses
        .iter()
        .map(String::as_str)
        .filter(|a| !crate::loopback::is_loopback_listen_address(a))
        .collect();
    if exposed.is_empty() {
        return;
    }
    findings.push(Finding::warning(
        format!(
            "the login listener will be on {}, not a loopback address: whoever can reach it can connect, and a connection from outside this network namespace is served without knowing whose it is (only the one-time start key, state, PKCE and nonce protect the login then)",
            exposed.join(", ")
        ),
        "right for a container with a published port (docs/networks.md); on a machine shared with other accounts use an SSH tunnel to a loopback address, or --grant-type=device-code or authcode-keyboard",
    ));
}

fn check_cache_dir(config: &Config, findings: &mut Vec<Finding>) {
    if config.storage == Storage::None {
        findings.push(Finding::ok(
            "token cache: none (--token-cache-storage=none)",
        ));
        return;
    }
    let dir = &config.cache_dir;
    let meta = match std::fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            findings.push(Finding::ok(format!(
                "cache directory {} does not exist yet (the first login creates it, mode 700)",
                dir.display()
            )));
            return;
        }
        Err(e) => {
            findings.push(Finding::error(
                format!("cannot read the cache directory {}: {e}", dir.display()),
                "fix its permissions, or choose another with --token-cache-dir",
            ));
            return;
        }
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            findings.push(Finding::error(
                format!(
                    "cache directory {} belongs to uid {}, not you (uid {me})",
                    dir.display(),
                    meta.uid()
                ),
                format!("sudo chown -R {me} {}", dir.display()),
            ));
            return;
        }
        let mode = meta.mode() & 0o777;
        if mode & 0o077 != 0 {
            findings.push(Finding::warning(
                format!(
                    "cache directory {} has mode {mode:o}: others can list your logins",
                    dir.display()
                ),
                format!("chmod 700 {}", dir.display()),
            ));
            return;
        }
    }
    let _ = meta;
    findings.push(Finding::ok(format!(
        "cache directory {} is yours and private",
        dir.display()
    )));
}

fn check_keyring(config: &Config, findings: &mut Vec<Finding>) {
    if !matches!(config.storage, Storage::Auto | Storage::Keyring) {
        findings.push(Finding::ok(format!(
            "OS keyring: not used (--token-cache-storage={})",
            config.storage.name()
        )));
        return;
    }
    let start = Instant::now();
    match Keyring.get("doctor/probe") {
        Ok(_) => findings.push(Finding::ok(format!(
            "OS keyring answers ({} ms for one read)",
            start.elapsed().as_millis()
        ))),
        Err(e) if config.storage == Storage::Auto => findings.push(Finding::warning(
            format!("{e}: the refresh token is kept in a 0600 file instead"),
            format!(
                "start the Secret Service (gnome-keyring, KeePassXC) in your session, or choose --token-cache-storage=disk to say so{}",
                crate::troubleshooting::see("no-os-keyring")
            ),
        )),
        Err(e) => findings.push(Finding::error(
            format!("{e}, and --token-cache-storage=keyring needs one"),
            "start the Secret Service (gnome-keyring, KeePassXC) in your session, or choose --token-cache-storage=auto",
        )),
    }
}

/// The provider's discovery, keys and clock; returns the provider when discovery worked.
fn check_provider(config: &Config, findings: &mut Vec<Finding>) -> Option<Provider> {
    findings.extend(diagnose::issuer_shape(&config.issuer_url));
    let http = match HttpClient::new(config) {
        Ok(http) => http,
        Err(e) => {
            findings.push(Finding::error(
                e.to_string(),
                "fix --certificate-authority / --certificate-authority-data",
            ));
            return None;
        }
    };
    let provider = match Provider::discover(config, &http) {
        Ok(provider) => {
            diagnose::confirmed_by_discovery(findings, provider.metadata.issuer().as_str());
            findings.push(Finding::ok(format!(
                "provider {} answers: discovery and {} signing key(s), issuer matches exactly",
                provider.metadata.issuer().as_str(),
                provider.jwks.keys().len()
            )));
            provider
        }
        Err(e) => {
            findings.push(diagnose::discovery_failure(&config.issuer_url, &e));
            return None;
        }
    };
    let url = format!(
        "{}/.well-known/openid-configuration",
        config.issuer_url.trim_end_matches('/')
    );
    match http.server_time(&url) {
        Ok(Some(theirs)) => {
            // The measurement a login or refresh takes, and the same words.
            let offset = Offset::measure(Some(theirs), None, now());
            let host = url::Url::parse(&url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_default();
            match offset.notice(&host) {
                Some(line) => {
                    let (what, fix) = line.split_once("; ").unwrap_or((&line, ""));
                    findings.push(Finding::warning(what.to_string(), fix.to_string()));
                }
                None => findings.push(Finding::ok(format!(
                    "this machine's clock agrees with the provider's (within {})",
                    human(offset.0.abs())
                ))),
            }
        }
        Ok(None) => findings.push(Finding::ok(
            "the provider sends no Date header; the clock cannot be compared",
        )),
        Err(e) => findings.push(Finding::warning(
            e.to_string(),
            "check the network path to the provider",
        )),
    }
    Some(provider)
}

fn check_cached_login(config: &Config, provider: Option<&Provider>, findings: &mut Vec<Finding>) {
    if config.storage == Storage::None {
        return;
    }
    let store = store::open(&config.cache_dir, config.storage);
    let key = config.cache_key();
    let tokens = store.load(&key).ok().flatten();
    let refresh = store.load_refresh_token(&key).ok().flatten().is_some();
    let where_ = format!(
        "storage {} in {}",
        config.storage.name(),
        config.cache_dir.display()
    );
    let Some(tokens) = tokens else {
        findings.push(Finding::warning(
            format!("no login is cached ({where_})"),
            "run any kubectl command in a terminal to sign in",
        ));
        return;
    };
    let who = Identity::from_id_token(&tokens.id_token)
        .map(Identity::who)
        .unwrap_or_else(|| "(unreadable ID token)".into());
    // Token times are the provider's clock, measured at the last token response.
    let now = tokens.clock().now();
    let expiry = format!(
        "ID token expires {} ({})",
        rfc3339(tokens.id_token_expiry),
        relative(tokens.id_token_expiry, now)
    );
    let refresh_text = if refresh {
        "refresh token cached"
    } else {
        "no refresh token"
    };
    if tokens.id_token_expiry <= now && !refresh {
        findings.push(Finding::warning(
            format!("cached login of {who}: {expiry}, {refresh_text} ({where_})"),
            "the next kubectl call needs a browser login: run one in a terminal",
        ));
    } else {
        findings.push(Finding::ok(format!(
            "cached login of {who}: {expiry}, {refresh_text} ({where_})"
        )));
    }
    // A robot (client credentials) never has one; for a person it is a login per expiry.
    if !refresh && config.grant != crate::config::GrantType::ClientCredentials {
        findings.push(diagnose::no_refresh_token(provider, config));
    }
}

fn check_api_server(opts: &Options, findings: &mut Vec<Finding>) {
    match kubectl(&opts.target, &["auth", "whoami", "-o", "json"]) {
        Ok(out) => {
            let review: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
            let info = &review["status"]["userInfo"];
            let groups: Vec<&str> = info["groups"]
                .as_array()
                .map(|g| g.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            findings.push(Finding::ok(format!(
                "the API server sees user {} with groups {}",
                info["username"].as_str().unwrap_or("?"),
                groups.join(", ")
            )));
        }
        Err(e) => findings.push(Finding::error(
            format!("the API server refused the token (kubectl auth whoami: {e})"),
            format!(
                "compare the API server's --oidc-issuer-url, --oidc-client-id and claim flags (or AuthenticationConfiguration) with the login above; `kubectl oidc-login setup` prints them{}",
                crate::troubleshooting::see("the-api-server-refuses-the-token")
            ),
        )),
    }
}
