//! Settings of one login: plain values, resolved from the flags by the settings layer (`~`
//! expanded, lists normalised, KEY=VALUE pairs split). Every building block reads these and
//! none knows the command line they came from.

use std::path::PathBuf;
use std::time::Duration;

use std::borrow::Cow;

use thiserror::Error;

use crate::exec_credential::{ClusterConfig, CLUSTER_EXTENSION};
use crate::tokens::{CacheKey, Storage};

/// Why the kubeconfig user's flags and the cluster's extension give no one answer. kubectl
/// reads both from one kubeconfig, so a silent choice would hide a mistake in it.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ClusterConfigError {
    #[error("the kubeconfig user says --token-exchange-{what}={flag:?} but this cluster's extension {CLUSTER_EXTENSION} says {what}: {cluster:?}; remove the flag from the user's exec args (one user then serves every cluster, each naming its own {what}) or make the two agree")]
    Disagree {
        what: &'static str,
        flag: String,
        cluster: String,
    },
    #[error("a token exchange scope ({scope:?}) is given but no audience, so there is nothing to exchange for; add audience: CLUSTER_CLIENT_ID to this cluster's extension {CLUSTER_EXTENSION} (or --token-exchange-audience to the user), or drop the scope")]
    ScopeWithoutAudience { scope: String },
}
/// The prefix of the environment variables that give get-token's flags (the command line's
/// rule lives in the cli layer, which imports nothing below it; a settings test keeps the two
/// equal). `doctor` uses it to pick the plugin's variables out of an exec entry's `env`.
pub const ENV_PREFIX: &str = "KUBECTL_OIDC_LOGIN_";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pkce {
    /// S256 unless the provider's metadata says it does not support it.
    Auto,
    Disabled,
    S256,
}

/// The grant the flags ask for; `Auto` is resolved against the provider by
/// the oidc module's grant choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    Auto,
    Authcode,
    AuthcodeKeyboard,
    Password,
    DeviceCode,
    ClientCredentials,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub issuer_url: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// One of several logins at this provider and client (`--account`).
    pub account: Option<String>,
    pub redirect_url: Option<String>,
    pub redirect_hostname: String,
    /// Scopes besides `openid`, deduplicated, in the order given.
    pub extra_scopes: Vec<String>,
    pub use_access_token: bool,
    pub request_headers: Vec<(String, String)>,
    pub auth_extra_params: Vec<(String, String)>,
    pub pkce: Pkce,
    pub force_refresh: bool,
    pub cache_dir: PathBuf,
    pub storage: Storage,
    pub ca_files: Vec<PathBuf>,
    pub ca_data: Vec<String>,
    pub insecure_skip_tls_verify: bool,
    pub grant: GrantType,
    pub listen_addresses: Vec<String>,
    pub skip_open_browser: bool,
    pub browser_command: Option<String>,
    pub auth_timeout: Duration,
    pub local_server_tls: Option<(PathBuf, PathBuf)>,
    pub open_url_after_authentication: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// `--token-exchange-audience`: kubectl gets a token for this audience (a cluster's client
    /// ID), exchanged (RFC 8693) for the login client's access token, instead of the login's
    /// own ID token.
    pub token_exchange_audience: Option<String>,
    /// `--token-exchange-scope`: the RFC 8693 `scope` of that exchange, space-delimited (for
    /// Keycloak, the optional client scope holding the audience's mapper).
    pub token_exchange_scope: Option<String>,
    /// The flags (long names) whose values the environment gave, each with its variable, so a
    /// warning about a weakened setting can name where the setting came from.
    pub from_environment: Vec<(String, String)>,
}

impl Config {
    /// Where the value of `flag` (a long name) came from, for a message: the variable when the
    /// environment gave it (a kubeconfig's exec `env`, a shell profile), else the flag (the
    /// kubeconfig's exec args, or the command line).
    pub fn source_of(&self, flag: &str) -> String {
        match self.from_environment.iter().find(|(f, _)| f == flag) {
            Some((_, variable)) => format!("${variable} (the environment's --{flag})"),
            None => format!("--{flag}"),
        }
    }

    /// All scopes of the authorization request: `openid` first, then the extra ones.
    pub fn scopes(&self) -> Vec<String> {
        std::iter::once("openid".to_string())
            .chain(self.extra_scopes.iter().cloned())
            .collect()
    }

    /// The cache key of this login: the same provider, client and request give the same key.
    pub fn cache_key(&self) -> CacheKey {
        CacheKey::new(
            &self.issuer_url,
            &self.client_id,
            self.client_secret.as_deref(),
            &self.extra_scopes,
            &self.auth_extra_params,
            self.username.as_deref(),
            self.account.as_deref(),
        )
    }

    /// The cache key of the credential kubectl gets: the login's, or with
    /// `--token-exchange-audience` the exchanged token's, derived from the login's.
    pub fn credential_key(&self) -> CacheKey {
        let login = self.cache_key();
        match &self.token_exchange_audience {
            Some(audience) => login.for_exchange(audience, self.token_exchange_scope.as_deref()),
            None => login,
        }
    }

    /// These settings for the cluster kubectl calls for: the audience and scope of its
    /// extension ([`CLUSTER_EXTENSION`]) where the flags name none. A flag and the extension
    /// that both name one must agree; a cluster without the extension gets what the flags say
    /// (without an audience: the login's own token). Borrowed when nothing changes, so the
    /// hot path copies nothing.
    pub fn for_cluster(
        &self,
        cluster: Option<&ClusterConfig>,
    ) -> Result<Cow<'_, Config>, ClusterConfigError> {
        let empty = ClusterConfig::default();
        let cluster = cluster.unwrap_or(&empty);
        let pick = |what: &'static str,
                    flag: &Option<String>,
                    theirs: &Option<String>|
         -> Result<Option<String>, ClusterConfigError> {
            match (flag, theirs) {
                (Some(flag), Some(theirs)) if flag != theirs => Err(ClusterConfigError::Disagree {
                    what,
                    flag: flag.clone(),
                    cluster: theirs.clone(),
                }),
                (None, Some(theirs)) => Ok(Some(theirs.clone())),
                _ => Ok(None),
            }
        };
        let audience = pick("audience", &self.token_exchange_audience, &cluster.audience)?;
        let scope = pick("scope", &self.token_exchange_scope, &cluster.scope)?;
        let resolved = match (audience, scope) {
            (None, None) => Cow::Borrowed(self),
            (audience, scope) => {
                let mut config = self.clone();
                config.token_exchange_audience = audience.or(config.token_exchange_audience);
                config.token_exchange_scope = scope.or(config.token_exchange_scope);
                Cow::Owned(config)
            }
        };
        match (
            &resolved.token_exchange_audience,
            &resolved.token_exchange_scope,
        ) {
            (None, Some(scope)) => Err(ClusterConfigError::ScopeWithoutAudience {
                scope: scope.clone(),
            }),
            _ => Ok(resolved),
        }
    }

    /// A login with every flag at its default, for unit tests of the building blocks.
    #[cfg(test)]
    pub fn example(issuer_url: &str, client_id: &str) -> Config {
        Config {
            issuer_url: issuer_url.into(),
            client_id: client_id.into(),
            client_secret: None,
            account: None,
            redirect_url: None,
            redirect_hostname: "localhost".into(),
            extra_scopes: Vec::new(),
            use_access_token: false,
            request_headers: Vec::new(),
            auth_extra_params: Vec::new(),
            pkce: Pkce::Auto,
            force_refresh: false,
            cache_dir: std::env::temp_dir(),
            storage: Storage::Auto,
            ca_files: Vec::new(),
            ca_data: Vec::new(),
            insecure_skip_tls_verify: false,
            grant: GrantType::Auto,
            listen_addresses: vec!["127.0.0.1:8000".into(), "127.0.0.1:18000".into()],
            skip_open_browser: false,
            browser_command: None,
            auth_timeout: Duration::from_secs(180),
            local_server_tls: None,
            open_url_after_authentication: None,
            username: None,
            password: None,
            token_exchange_audience: None,
            token_exchange_scope: None,
            from_environment: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(audience: Option<&str>, scope: Option<&str>) -> ClusterConfig {
        ClusterConfig {
            audience: audience.map(Into::into),
            scope: scope.map(Into::into),
        }
    }

    fn with_flags(audience: Option<&str>, scope: Option<&str>) -> Config {
        let mut config = Config::example("https://k/realms/r", "kubectl");
        config.token_exchange_audience = audience.map(Into::into);
        config.token_exchange_scope = scope.map(Into::into);
        config
    }

    fn resolved(
        flags: (Option<&str>, Option<&str>),
        theirs: Option<ClusterConfig>,
    ) -> Result<(Option<String>, Option<String>), ClusterConfigError> {
        let config = with_flags(flags.0, flags.1);
        let out = config.for_cluster(theirs.as_ref())?;
        Ok((
            out.token_exchange_audience.clone(),
            out.token_exchange_scope.clone(),
        ))
    }

    #[test]
    fn the_cluster_names_its_audience_and_a_flag_may_only_agree() {
        let s = |v: &str| Some(v.to_string());
        // One user for every cluster: each cluster's own audience and scope.
        assert_eq!(
            resolved((None, None), Some(cluster(Some("dev"), Some("aud-dev")))),
            Ok((s("dev"), s("aud-dev")))
        );
        // A cluster without the extension: the flags, or the login's own token.
        assert_eq!(resolved((None, None), None), Ok((None, None)));
        assert_eq!(resolved((Some("dev"), None), None), Ok((s("dev"), None)));
        // The same answer twice is no conflict; a scope for every cluster on the user is
        // combined with each cluster's audience.
        assert_eq!(
            resolved((Some("dev"), None), Some(cluster(Some("dev"), None))),
            Ok((s("dev"), None))
        );
        assert_eq!(
            resolved((None, Some("openid")), Some(cluster(Some("dev"), None))),
            Ok((s("dev"), s("openid")))
        );
        // Two answers: an error naming both, never a silent choice.
        let e = resolved((Some("prod"), None), Some(cluster(Some("dev"), None))).unwrap_err();
        assert!(matches!(
            e,
            ClusterConfigError::Disagree {
                what: "audience",
                ..
            }
        ));
        let line = e.to_string();
        assert!(
            line.contains("--token-exchange-audience=\"prod\""),
            "{line}"
        );
        assert!(line.contains("audience: \"dev\""), "{line}");
        let e = resolved(
            (None, Some("aud-prod")),
            Some(cluster(Some("dev"), Some("aud-dev"))),
        )
        .unwrap_err();
        assert!(matches!(
            e,
            ClusterConfigError::Disagree { what: "scope", .. }
        ));
        // A scope with nothing to exchange for.
        assert!(matches!(
            resolved((None, None), Some(cluster(None, Some("aud-dev")))),
            Err(ClusterConfigError::ScopeWithoutAudience { .. })
        ));
        assert!(matches!(
            resolved((None, Some("aud-dev")), None),
            Err(ClusterConfigError::ScopeWithoutAudience { .. })
        ));
    }

    #[test]
    fn nothing_is_copied_when_the_cluster_changes_nothing() {
        let config = with_flags(Some("dev"), None);
        assert!(matches!(config.for_cluster(None), Ok(Cow::Borrowed(_))));
        assert!(matches!(
            config.for_cluster(Some(&cluster(Some("dev"), None))),
            Ok(Cow::Borrowed(_))
        ));
    }

    #[test]
    fn each_scope_of_an_audience_has_its_own_token() {
        let plain = with_flags(Some("dev"), None).credential_key();
        let scoped = with_flags(Some("dev"), Some("aud-dev")).credential_key();
        assert_ne!(plain.id(), scoped.id());
        // Without a scope, the key cached before scopes existed.
        let login = with_flags(None, None).cache_key();
        assert_eq!(plain.id(), login.for_exchange("dev", None).id());
    }
}
