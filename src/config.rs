//! Settings of one login: plain values, resolved from the flags by the settings layer (`~`
//! expanded, lists normalised, KEY=VALUE pairs split). Every building block reads these and
//! none knows the command line they came from.

use std::path::PathBuf;
use std::time::Duration;

use crate::tokens::{CacheKey, Storage};

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
}

impl Config {
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
            Some(audience) => login.for_audience(audience),
            None => login,
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
        }
    }
}
