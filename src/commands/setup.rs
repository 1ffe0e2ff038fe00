//! `setup`: one guided run from a provider's settings to a working kubeconfig. It checks the
//! provider, logs in (always in the browser: the point is to see the provider work), and
//! prints the claims, the kube-apiserver flags or AuthenticationConfiguration, a
//! ClusterRoleBinding, and the kubeconfig exec entry; with --write-kubeconfig it writes the
//! user (and a context) through `kubectl config`, leaving merging and locking to kubectl.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::Command;

use crate::claims::{human, relative, Identity};
use crate::config::Config;
use crate::context_plan::{self, Plan, PlanError, Request};
use crate::diagnose::{self, Finding, Level};
use crate::error::Error;
use crate::exec_credential::{ClusterConfig, ExecInfo, CLUSTER_EXTENSION, V1};
use crate::kuberc::{self, Verdict};
use crate::oidc::http::HttpClient;
use crate::oidc::provider::Provider;
use crate::oidc::OidcError;
use crate::signin::{self, obtain, Mode, SignInError};
use crate::store;

/// What `setup` prints without an issuer, as kubelogin's does: the way through.
pub const GUIDE: &str = "\
Set up kubectl oidc-login in four steps:

1. At the OpenID Connect provider, register a public client for Kubernetes.
   Keycloak: Clients > Create client, ID `kubernetes`, Standard flow on, Client
   authentication off, Valid redirect URIs `http://localhost:8000` and
   `http://localhost:18000`, PKCE method S256; add a `groups` client scope with a
   Group Membership mapper (Full group path off) to put groups in the ID token.

2. Log in once and let setup check the whole chain:

     kubectl oidc-login setup --oidc-issuer-url=ISSUER_URL --oidc-client-id=CLIENT_ID

   It opens the browser, verifies the ID token, diagnoses the provider's settings and
   prints what steps 3 and 4 need, filled in with your issuer, claims and groups.

3. Configure the API server (--oidc-issuer-url, --oidc-client-id,
   --oidc-username-claim, --oidc-groups-claim, or an AuthenticationConfiguration) and
   bind your group to a role with a ClusterRoleBinding.

4. Add the exec entry to your kubeconfig: setup --write-kubeconfig writes it with
   `kubectl config`, and with --context=NAME a context; for a cluster your kubeconfig
   lacks, add --server=URL --server-certificate-authority=FILE (the API server's). Then:

     kubectl --context=NAME auth whoami

Examples for Keycloak, the API server, RBAC and kind are in the project's examples/.
";

/// What `setup` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub config: Config,
    /// What the exec entries carry of the secrets and leave to the environment.
    pub notes: Vec<Finding>,
    /// The get-token arguments of the printed exec entry (every flag given, none defaulted).
    pub exec_args: Vec<String>,
    /// Extra accounts: the name and the get-token arguments of each one's exec entry.
    pub extra_accounts: Vec<(String, Vec<String>)>,
    /// Clusters signed in to by token exchange (--token-exchange-audience): each one's
    /// audience and scope. They share the one kubeconfig user; each cluster's kubeconfig
    /// entry names its own audience and scope (its extension client.authentication.k8s.io/exec).
    pub clusters: Vec<(String, Option<String>)>,
    pub group: Option<String>,
    pub cluster_role: String,
    pub username_claim: Option<String>,
    pub groups_prefix: String,
    pub write_kubeconfig: bool,
    /// kubectl's --kubeconfig: the file to write instead of $KUBECONFIG or ~/.kube/config.
    pub kubeconfig: Option<PathBuf>,
    pub user: String,
    pub context: Option<String>,
    pub cluster: Option<String>,
    /// The API server's URL and CA file, for a cluster the kubeconfig does not have yet.
    pub server: Option<String>,
    pub server_ca: Option<PathBuf>,
    /// Make the context the current one even when the kubeconfig has one.
    pub use_context: bool,
}

pub fn run(args: &Options) -> Result<(), Error> {
    // Before anything else runs: every kubectl below, and the kubeconfig module, then read the
    // one file kubectl's --kubeconfig would.
    if let Some(file) = &args.kubeconfig {
        std::env::set_var("KUBECONFIG", file);
    }
    // What will be written is decided before the login: a cluster that is missing is named
    // now, not after a browser login, and nothing is written that kubectl cannot use.
    let plan = match (&args.context, args.write_kubeconfig) {
        (Some(context), true) => Some(plan_context(args, context)?),
        (None, true) => {
            crate::kubeconfig::view().map_err(|e| Error::Setup(e.to_string()))?;
            None
        }
        _ => None,
    };
    let config = &args.config;
    if args.write_kubeconfig {
        // Before the login: a kubeconfig another account can steer is refused, not signed
        // into first.
        crate::kubeconfig::check_writable().map_err(|e| Error::Setup(e.to_string()))?;
    }
    let mut findings = diagnose::issuer_shape(&config.issuer_url);
    let http = HttpClient::new(config).map_err(OidcError::from)?;
    let provider = match Provider::discover(config, &http) {
        Ok(provider) => provider,
        Err(e) => {
            findings.push(diagnose::discovery_failure(&config.issuer_url, &e));
            return fail(&findings);
        }
    };
    diagnose::confirmed_by_discovery(&mut findings, provider.metadata.issuer().as_str());
    findings.extend(diagnose::provider_metadata(&provider));
    findings.extend(diagnose::authorization_preflight(&provider, config, &http));
    if findings.iter().any(|f| f.level == Level::Error) {
        return fail(&findings);
    }

    eprintln!("Signing in to check the whole chain (a fresh browser login)...");
    let exec = ExecInfo {
        api_version: V1,
        interactive: std::io::stdin().is_terminal(),
        cluster: None,
    };
    let store = store::open(&config.cache_dir, config.storage);
    let key = config.cache_key();
    let tokens = obtain(config, &exec, &*store, &key, Mode::FreshLogin)?;
    let id = Identity::from_id_token(&tokens.id_token)
        .ok_or_else(|| Error::Setup("the ID token's claims cannot be read".into()))?;
    let username_claim = args
        .username_claim
        .clone()
        .unwrap_or_else(|| id.suggested_username_claim().to_string());
    findings.extend(diagnose::identity(&id, &username_claim));
    // Without a refresh token every expiry is a browser login; when the provider lists
    // offline_access the entries printed and written ask for it.
    let add_offline_access = tokens.refresh_token.is_none()
        && config.grant != crate::config::GrantType::ClientCredentials
        && diagnose::offline_access_would_help(&provider, config);
    if tokens.refresh_token.is_none() && config.grant != crate::config::GrantType::ClientCredentials
    {
        let mut finding = diagnose::no_refresh_token(Some(&provider), config);
        if add_offline_access {
            finding.what += "; the kubeconfig entries below ask for offline_access";
        }
        findings.push(finding);
    }
    let with_offline_access = |exec_args: &[String]| {
        let mut exec_args = exec_args.to_vec();
        if add_offline_access {
            exec_args.push(format!("--oidc-extra-scope={}", diagnose::OFFLINE_ACCESS));
        }
        exec_args
    };

    let exchanged = check_exchanges(args, &exec, &mut findings);
    findings.extend(args.notes.iter().cloned());
    if let Some(finding) = kuberc_finding(args.write_kubeconfig) {
        findings.push(finding);
    }

    let exec_args = &with_offline_access(&args.exec_args);
    // One kubeconfig user per extra account: same flags, its own --account. The clusters by
    // token exchange share the main user, which asks kubectl for each cluster's extension.
    let extra_users: Vec<(String, Vec<String>)> = args
        .extra_accounts
        .iter()
        .map(|(account, exec_args)| {
            (
                format!("{}-{account}", args.user),
                with_offline_access(exec_args),
            )
        })
        .collect();
    let cluster_info = !args.clusters.is_empty();
    let report = Report {
        issuer: provider.metadata.issuer().as_str(),
        client_id: &config.client_id,
        id: &id,
        username_claim: &username_claim,
        groups_prefix: &args.groups_prefix,
        group: chosen_group(args.group.as_deref(), &id),
        cluster_role: &args.cluster_role,
        user: &args.user,
        exec_args,
        extra_users: &extra_users,
        clusters: &exchanged,
        findings: &findings,
        provider_now: tokens.clock().now(),
    };
    print!("{}", crate::log::printable_lines(&report.render()));
    if args.write_kubeconfig {
        write_kubeconfig(args, plan.as_ref(), exec_args, cluster_info)?;
        for (user, exec_args) in &extra_users {
            kubectl(
                &credentials_command(user, exec_args, Runs::Binary(&this_binary()?), false)[1..],
            )?;
            eprintln!("Wrote user {user:?} to the kubeconfig.");
        }
        for (audience, scope) in &exchanged {
            write_cluster(
                args.kubeconfig.as_deref(),
                &args.user,
                audience,
                scope.as_deref(),
            )?;
        }
    }
    let refused = args.clusters.len() - exchanged.len();
    if refused > 0 {
        // The findings above name each refusal and its fix; the error only counts them.
        return Err(Error::Setup(format!(
            "{refused} of {} clusters got no token: the token exchange findings above name the provider setting to fix",
            args.clusters.len(),
        )));
    }
    Ok(())
}

/// The plan for the context to write. On a terminal, a cluster the kubeconfig lacks is asked
/// for (the API server's URL and CA file, as --server and --server-certificate-authority
/// take them); elsewhere it is refused in one line that names those flags.
fn plan_context(args: &Options, context: &str) -> Result<Plan, Error> {
    let mut request = Request {
        context: context.to_string(),
        cluster: args.cluster.clone(),
        server: args.server.clone(),
        server_ca: args.server_ca.clone(),
        use_context: args.use_context,
    };
    let missing = match context_plan::plan(&request) {
        Ok(plan) => return Ok(plan),
        Err(e @ (PlanError::NoCluster { .. } | PlanError::MissingCluster { .. }))
            if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() =>
        {
            e
        }
        Err(e) => return Err(Error::Setup(e.to_string())),
    };
    eprintln!("The kubeconfig has no cluster for context {context:?}; setup can add it (an empty answer stops).");
    let server = ask("The API server's URL (https://…): ")?;
    if server.is_empty() {
        return Err(Error::Setup(missing.to_string()));
    }
    let ca =
        ask("The API server's CA file (PEM; empty when its certificate is publicly trusted): ")?;
    request.server = Some(server);
    request.server_ca = (!ca.is_empty()).then(|| home_path(&ca));
    context_plan::plan(&request).map_err(|e| Error::Setup(e.to_string()))
}

/// One answer typed on the terminal, without its newline.
fn ask(prompt: &str) -> Result<String, Error> {
    eprint!("{prompt}");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| Error::Setup(format!("cannot read the answer from the terminal: {e}")))?;
    Ok(line.trim().to_string())
}

/// A typed path, with a leading `~/` read as the home directory as a shell would.
fn home_path(typed: &str) -> PathBuf {
    match (typed.strip_prefix("~/"), dirs::home_dir()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(typed),
    }
}

/// Exchanges the fresh login for each cluster's audience, as get-token will: one finding per
/// cluster, naming the provider's setting when it refuses. Returns the clusters that work,
/// with their exec arguments.
fn check_exchanges(
    args: &Options,
    exec: &ExecInfo,
    findings: &mut Vec<Finding>,
) -> Vec<(String, Option<String>)> {
    let mut working = Vec::new();
    for (audience, scope) in &args.clusters {
        let mut config = args.config.clone();
        config.token_exchange_audience = Some(audience.clone());
        config.token_exchange_scope = scope.clone();
        let store = signin::credential_store(&config);
        match signin::exchanged(&config, exec, &*store, &config.credential_key()) {
            Ok(tokens) => {
                let left = tokens
                    .credential(true)
                    .map(|(_, exp)| exp - tokens.clock().now())
                    .unwrap_or(0);
                findings.push(Finding::ok(format!(
                    "token exchange for audience {audience}: a token whose aud is {audience} (verified), valid {}",
                    human(left.max(0) as u64)
                )));
                working.push((audience.clone(), scope.clone()));
            }
            Err(SignInError::Oidc(OidcError::Exchange(refused))) => {
                findings.push(Finding::error(
                    format!(
                        "token exchange for audience {audience} refused ({})",
                        refused.reason
                    ),
                    refused.fix,
                ));
            }
            Err(e) => {
                findings.push(Finding::error(
                    format!("token exchange for audience {audience} failed: {e}"),
                    "see the error",
                ));
            }
        }
    }
    working
}

/// Prints the findings and fails; the final error points at them rather than printing the
/// first one a second time.
fn fail(findings: &[Finding]) -> Result<(), Error> {
    eprint!(
        "{}",
        crate::log::printable_lines(&render_findings(findings))
    );
    let errors = findings.iter().filter(|f| f.level == Level::Error).count();
    Err(Error::Setup(format!(
        "setup stopped before signing in: {} above; fix {} and run setup again",
        if errors == 1 {
            "one error".to_string()
        } else {
            format!("{errors} errors")
        },
        if errors == 1 { "it" } else { "them" }
    )))
}

/// The group to bind: the one asked for, else one that sounds like administrators, else the
/// first.
fn chosen_group(asked: Option<&str>, id: &Identity) -> Option<String> {
    if let Some(group) = asked {
        return Some(group.to_string());
    }
    let groups = id.groups.as_ref()?;
    groups
        .iter()
        .find(|g| g.to_lowercase().contains("admin"))
        .or_else(|| groups.first())
        .cloned()
}

struct Report<'a> {
    issuer: &'a str,
    client_id: &'a str,
    id: &'a Identity,
    username_claim: &'a str,
    groups_prefix: &'a str,
    group: Option<String>,
    cluster_role: &'a str,
    user: &'a str,
    exec_args: &'a [String],
    /// Kubeconfig users of further accounts (--extra-account), with their exec arguments.
    extra_users: &'a [(String, Vec<String>)],
    /// The clusters by token exchange that work: audience and scope.
    clusters: &'a [(String, Option<String>)],
    findings: &'a [Finding],
    /// The provider's time, which the ID token's times are in.
    provider_now: i64,
}

/// A YAML scalar: JSON strings are valid YAML and quote everything that needs it.
fn y(value: &str) -> String {
    serde_json::to_string(value).expect("strings serialise")
}

/// A word for a POSIX shell, quoted only when it needs to be.
fn shell_word(word: &str) -> String {
    let plain = word
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_=./:@,+%".contains(&b));
    if plain && !word.is_empty() {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

impl Report<'_> {
    fn render(&self) -> String {
        let id = self.id;
        let mut out = String::new();
        let now = self.provider_now;
        out += "## 1. Your ID token\n\n";
        out += &format!(
            "  iss:      {}\n  sub:      {}\n  aud:      {}\n",
            id.iss,
            id.sub,
            id.aud.join(", ")
        );
        if let Some(email) = &id.email {
            let verified = match id.email_verified {
                Some(true) => "verified",
                _ => "NOT verified",
            };
            out += &format!("  email:    {email} ({verified})\n");
        }
        if let Some(name) = &id.preferred_username {
            out += &format!("  preferred_username: {name}\n");
        }
        match &id.groups {
            Some(groups) => out += &format!("  groups:   {}\n", groups.join(", ")),
            None => out += "  groups:   (no groups claim)\n",
        }
        out += &format!(
            "  exp:      {} ({})",
            crate::exec_credential::rfc3339(id.exp),
            relative(id.exp, now)
        );
        if let Some(lifetime) = id.lifetime() {
            out += &format!(", lifetime {}", human(lifetime.max(0) as u64));
        }
        out += "\n\n";
        let groups_claim = if id.groups.is_some() {
            "groups"
        } else {
            "groups (add it, see diagnostics)"
        };
        out += &format!(
            "Use `{}` as the username claim and `{groups_claim}` as the groups claim.\n\n",
            self.username_claim
        );

        out += "## 2. kube-apiserver\n\n";
        out += &format!(
            "  --oidc-issuer-url={}\n  --oidc-client-id={}\n  --oidc-username-claim={}\n",
            self.issuer, self.client_id, self.username_claim
        );
        let username_prefix = if self.username_claim == "email" {
            ""
        } else {
            "oidc:"
        };
        if !username_prefix.is_empty() {
            out += &format!("  --oidc-username-prefix={username_prefix}\n");
        }
        out += &format!(
            "  --oidc-groups-claim=groups\n  --oidc-groups-prefix={}\n\n",
            self.groups_prefix
        );
        out += "or, with --authentication-config=FILE (Kubernetes 1.30+), this FILE:\n\n";
        out += &self.authentication_config(self.client_id, username_prefix);
        for (audience, _) in self.clusters {
            out += &format!("and on the API server of the cluster with audience {audience} (its kubeconfig user gets a token for it by token exchange; with flags: --oidc-client-id={audience}, the rest as above):\n\n");
            out += &self.authentication_config(audience, username_prefix);
        }

        out += "## 3. RBAC\n\n";
        match &self.group {
            Some(group) => {
                let subject = format!("{}{group}", self.groups_prefix);
                let name: String = format!("oidc-{}-{}", group, self.cluster_role)
                    .to_lowercase()
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                            c
                        } else {
                            '-'
                        }
                    })
                    .collect();
                out += &format!(
                    "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: {}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: {}\nsubjects:\n- apiGroup: rbac.authorization.k8s.io\n  kind: Group\n  name: {}\n\n",
                    y(&name),
                    y(self.cluster_role),
                    y(&subject)
                );
            }
            None => {
                let user = match self.username_claim {
                    "email" => id.email.clone().unwrap_or_default(),
                    _ => format!("oidc:{}", id.sub),
                };
                out += &format!(
                    "No group to bind; bind the user instead:\n\n  kubectl create clusterrolebinding oidc-user --clusterrole={} --user={}\n\n",
                    shell_word(self.cluster_role),
                    shell_word(&user)
                );
            }
        }

        out += "## 4. kubeconfig\n\n";
        let cluster_info = !self.clusters.is_empty();
        let users = std::iter::once((self.user, self.exec_args, cluster_info)).chain(
            self.extra_users
                .iter()
                .map(|(u, a)| (u.as_str(), a.as_slice(), false)),
        );
        for (user, exec_args, cluster_info) in users {
            let words: Vec<String> =
                credentials_command(user, exec_args, Runs::KubectlPlugin, cluster_info)
                    .iter()
                    .map(|w| shell_word(w))
                    .collect();
            // `kubectl config set-credentials USER` on the first line, one flag a line after it.
            out += &format!(
                "  {} \\\n    {}\n\n",
                words[..4].join(" "),
                words[4..].join(" \\\n    ")
            );
        }

        if cluster_info {
            out += &self.clusters_yaml();
        }

        out += "## 5. Diagnostics\n\n";
        out += &render_findings(self.findings);
        out
    }
}

impl Report<'_> {
    /// Each cluster's part of the one-user kubeconfig: the extension naming its audience
    /// (kubectl passes it to the user's exec entry, which says provideClusterInfo) and a
    /// context. `kubectl config` cannot write extensions; --write-kubeconfig does.
    fn clusters_yaml(&self) -> String {
        let mut out = format!("User {:?} serves every cluster below: each cluster's entry names its audience in its extension {CLUSTER_EXTENSION} (add it under the cluster's existing server and CA; setup --write-kubeconfig does, for clusters named as their audience):\n\n", self.user);
        out += "clusters:\n";
        for (audience, scope) in self.clusters {
            out += &format!(
                "- name: {}\n  cluster:\n    server: …\n    extensions:\n    - name: {CLUSTER_EXTENSION}\n      extension:\n        audience: {}\n",
                y(audience),
                y(audience)
            );
            if let Some(scope) = scope {
                out += &format!("        scope: {}\n", y(scope));
            }
        }
        out += "contexts:\n";
        for (audience, _) in self.clusters {
            out += &format!(
                "- name: {}\n  context:\n    cluster: {}\n    user: {}\n",
                y(&context_name(self.user, audience)),
                y(audience),
                y(self.user)
            );
        }
        out += "\n";
        out
    }

    /// The AuthenticationConfiguration of an API server that accepts tokens for `audience`.
    fn authentication_config(&self, audience: &str, username_prefix: &str) -> String {
        format!(
            "apiVersion: apiserver.config.k8s.io/v1beta1\nkind: AuthenticationConfiguration\njwt:\n- issuer:\n    url: {}\n    audiences:\n    - {}\n  claimMappings:\n    username:\n      claim: {}\n      prefix: {}\n    groups:\n      claim: groups\n      prefix: {}\n\n",
            y(self.issuer),
            y(audience),
            y(self.username_claim),
            y(username_prefix),
            y(self.groups_prefix)
        )
    }
}

fn render_findings(findings: &[Finding]) -> String {
    diagnose::render(findings)
}

/// When kubectl's kuberc sets a credential plugin policy: whether it lets kubectl run the
/// exec entry setup writes (this binary) or prints (`kubectl oidc-login`), and the allowlist
/// entry to add when it does not.
fn kuberc_finding(write_kubeconfig: bool) -> Option<Finding> {
    let policy = kuberc::policy()?;
    let command = match write_kubeconfig {
        true => this_binary().ok()?,
        false => "kubectl".to_string(),
    };
    Some(match policy.verdict(&command) {
        Verdict::Allowed => Finding::ok(format!(
            "kubectl's kuberc sets credentialPluginPolicy {} and allows {command}, which the exec entry runs",
            policy.kind
        )),
        Verdict::Refused { entry } => Finding::warning(
            format!(
                "kubectl's kuberc sets credentialPluginPolicy {}: kubectl will refuse the exec entry, which runs {command}",
                policy.kind
            ),
            kuberc::entry_to_add(&entry),
        ),
        Verdict::DenyAll => Finding::warning(
            format!("kubectl's kuberc sets credentialPluginPolicy {}: kubectl runs no credential plugin", policy.kind),
            format!("set credentialPluginPolicy: Allowlist and {}", kuberc::entry_to_add(&command)),
        ),
    })
}

/// Which program a written exec entry runs.
#[derive(Clone, Copy)]
enum Runs<'a> {
    /// `kubectl oidc-login ...`: portable, for the printed entry a team shares; needs kubectl
    /// and the plugin on the PATH of whatever runs it.
    KubectlPlugin,
    /// This binary by absolute path, for the kubeconfig setup writes on this machine: apps
    /// started from a desktop (Lens, IDEs) get a PATH without ~/.local/bin or ~/.cargo/bin.
    Binary(&'a str),
}

/// The context setup writes for `user` at the cluster with `audience`.
fn context_name(user: &str, audience: &str) -> String {
    format!("{user}@{audience}")
}

/// `kubectl config set-credentials` with the exec entry for `exec_args`; with `cluster_info`
/// kubectl hands the plugin each cluster's extension (its audience).
fn credentials_command(
    user: &str,
    exec_args: &[String],
    runs: Runs,
    cluster_info: bool,
) -> Vec<String> {
    let mut cmd = vec![
        "kubectl".to_string(),
        "config".into(),
        "set-credentials".into(),
        user.to_string(),
        format!("--exec-api-version={V1}"),
    ];
    match runs {
        Runs::KubectlPlugin => {
            cmd.push("--exec-command=kubectl".into());
            cmd.push("--exec-arg=oidc-login".into());
        }
        Runs::Binary(path) => cmd.push(format!("--exec-command={path}")),
    }
    cmd.extend(exec_args.iter().map(|a| format!("--exec-arg={a}")));
    cmd.push("--exec-interactive-mode=IfAvailable".into());
    if cluster_info {
        cmd.push("--exec-provide-cluster-info=true".into());
    }
    cmd
}

/// The absolute path of this plugin binary, for exec entries that must not depend on PATH.
fn this_binary() -> Result<String, Error> {
    std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map(|p| p.display().to_string())
        .map_err(|e| {
            Error::Setup(format!(
                "cannot find this program's own path ({e}) to write into the kubeconfig"
            ))
        })
}

fn kubectl(args: &[String]) -> Result<String, Error> {
    let out = Command::new("kubectl").args(args).output().map_err(|e| {
        Error::Setup(format!(
            "cannot run kubectl ({e}); install it or drop --write-kubeconfig"
        ))
    })?;
    if !out.status.success() {
        return Err(Error::Setup(format!(
            "`kubectl {}` failed: {}",
            args.first().map(String::as_str).unwrap_or(""),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The cluster named `audience` names its audience (and scope) for the plugin, and a context
/// joins it to the one user.
fn write_cluster(
    kubeconfig: Option<&std::path::Path>,
    user: &str,
    audience: &str,
    scope: Option<&str>,
) -> Result<(), Error> {
    let config = ClusterConfig {
        audience: Some(audience.to_string()),
        scope: scope.map(str::to_string),
    };
    let file = crate::kubeconfig::set_cluster_config(audience, &config)
        .map_err(|e| Error::Setup(e.to_string()))?;
    let context = context_name(user, audience);
    kubectl(&[
        "config".into(),
        "set-context".into(),
        context.clone(),
        format!("--cluster={audience}"),
        format!("--user={user}"),
    ])?;
    eprintln!(
        "Wrote the audience {audience:?}{} into cluster {audience:?} in {}, and context {context:?}; try: {}",
        scope.map(|s| format!(" (scope {s:?})")).unwrap_or_default(),
        file.display(),
        try_command(kubeconfig, &context)
    );
    Ok(())
}

/// The command that shows the context works, as the user can paste it: with the kubeconfig
/// file when setup was given one (--kubeconfig).
fn try_command(kubeconfig: Option<&std::path::Path>, context: &str) -> String {
    let mut words = vec!["kubectl".to_string()];
    if let Some(file) = kubeconfig {
        words.push("--kubeconfig".into());
        words.push(shell_word(&file.display().to_string()));
    }
    words.extend([
        "--context".into(),
        shell_word(context),
        "auth".into(),
        "whoami".into(),
    ]);
    words.join(" ")
}

fn write_kubeconfig(
    args: &Options,
    plan: Option<&Plan>,
    exec_args: &[String],
    cluster_info: bool,
) -> Result<(), Error> {
    let cmd = credentials_command(
        &args.user,
        exec_args,
        Runs::Binary(&this_binary()?),
        cluster_info,
    );
    kubectl(&cmd[1..])?;
    let Some(plan) = plan else {
        eprintln!(
            "Wrote user {:?} to the kubeconfig; no context uses it yet: run setup again with --context=NAME, or `kubectl config set-context NAME --cluster=CLUSTER --user={}`",
            args.user,
            shell_word(&args.user)
        );
        return Ok(());
    };
    plan.write(&args.user)
        .map_err(|e| Error::Setup(e.to_string()))?;
    let cluster = match &plan.server {
        Some((server, _)) => format!("cluster {:?} at {server}", plan.cluster),
        None => format!("cluster {:?}", plan.cluster),
    };
    let current = if plan.make_current {
        ", now the current context"
    } else {
        ""
    };
    eprintln!(
        "Wrote context {:?} ({cluster}, user {:?}){current}; try: {}",
        plan.context,
        args.user,
        try_command(args.kubeconfig.as_deref(), &plan.context)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(
            shell_word("--exec-arg=--oidc-issuer-url=https://k/realms/r"),
            "--exec-arg=--oidc-issuer-url=https://k/realms/r"
        );
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }

    #[test]
    fn prefers_an_admin_group() {
        let id = Identity {
            groups: Some(vec!["developers".into(), "KubernetesAdministrators".into()]),
            ..Default::default()
        };
        assert_eq!(
            chosen_group(None, &id).as_deref(),
            Some("KubernetesAdministrators")
        );
        assert_eq!(chosen_group(Some("ops"), &id).as_deref(), Some("ops"));
    }
}
