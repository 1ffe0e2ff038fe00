//! The `get-token` use case: cached token → refresh → browser login → store → ExecCredential.

use std::time::Duration;

use crate::config::Config;
use crate::cooldown;
use crate::error::Error;
use crate::exec_credential::{self, ExecInfo};
use crate::jwt::now;
use crate::lock::KeyLock;
use crate::oidc::grant::Grant;
use crate::oidc::{self, http::HttpClient, provider::Provider, OidcError};
use crate::store::{self, kubelogin, CacheKey, Storage, TokenSet, TokenStore};

/// A cached token is used only while it stays valid at least this long, so it does not expire
/// on its way to the API server.
pub const MIN_VALIDITY_SECS: i64 = 10;

/// Set (by `doctor`) for kubectl runs that must not sign in.
pub const NO_LOGIN_ENV: &str = "KUBECTL_OIDC_LOGIN_NO_LOGIN";

/// How long to wait beyond the authentication timeout for another process's login.
const LOCK_GRACE: Duration = Duration::from_secs(30);

pub fn run(config: &Config) -> Result<(), Error> {
    let exec = ExecInfo::from_env()?;
    let store = store::open(&config.cache_dir, config.storage);
    let key = config.cache_key();

    // The hot path: one file read, no lock, no TLS, no keyring.
    if !config.force_refresh {
        if let Some((token, expiry)) = usable(load(&*store, &key).as_ref(), config) {
            crate::debug!(1, "using the cached token");
            return output(&exec, &token, expiry);
        }
    }
    // Some kubectl builds (the Google Cloud SDK's dispatcher) run the exec plugin for every
    // command, `kubectl config view` included; `doctor` reads the kubeconfig that way and sets
    // this so reading it never starts a refresh or a browser login.
    if std::env::var_os(NO_LOGIN_ENV).is_some() {
        return Err(Error::Setup(format!(
            "no usable cached token, and {NO_LOGIN_ENV} forbids signing in"
        )));
    }
    let tokens = obtain(config, &exec, &*store, &key, Mode::Normal)?;
    let (token, expiry) = tokens
        .credential(config.use_access_token)
        .ok_or(OidcError::NoAccessTokenExpiry)?;
    output(&exec, token, expiry)
}

/// How [`obtain`] may get tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A token another process just stored, else a refresh, else a browser login.
    Normal,
    /// Always a browser login (`setup`, `login`): the user wants to see the provider.
    FreshLogin,
}

/// Refreshes or logs in while holding the key's lock, and stores the result.
pub fn obtain(
    config: &Config,
    exec: &ExecInfo,
    store: &dyn TokenStore,
    key: &CacheKey,
    mode: Mode,
) -> Result<TokenSet, Error> {
    let _lock = match config.storage {
        Storage::None => None,
        _ => {
            let (lock, waited) =
                KeyLock::acquire(&config.cache_dir, key, config.auth_timeout + LOCK_GRACE)?;
            // Whoever held the lock may have just stored fresh tokens: use them.
            if mode == Mode::Normal && (waited || !config.force_refresh) {
                if let Some(tokens) = load(store, key) {
                    if usable(Some(&tokens), config).is_some() {
                        crate::debug!(1, "another process refreshed the token meanwhile");
                        return Ok(tokens);
                    }
                }
            }
            Some(lock)
        }
    };

    let mut refresh_token = match mode {
        Mode::Normal => store.load_refresh_token(key).unwrap_or_else(|e| {
            crate::warn!("{e}");
            None
        }),
        Mode::FreshLogin => None,
    };
    if mode == Mode::Normal && refresh_token.is_none() {
        if let Some(imported) = import_from_kubelogin(config, store, key) {
            if usable(Some(&imported), config).is_some() {
                return Ok(imported);
            }
            refresh_token = imported.refresh_token;
        }
    }

    let http = HttpClient::new(config).map_err(OidcError::from)?;
    let mut provider = Provider::load(config, &http)?;
    if let Some(refresh_token) = refresh_token {
        match refresh_with_retry(&refresh_token, &mut provider, config, &http) {
            Ok(tokens) => return Ok(save(store, key, tokens)),
            // Keycloak refuses a disabled user's refresh with `invalid_grant (User disabled)`,
            // and its login page then refuses the same user without ever returning to the
            // loopback listener: a browser login could only end in a timeout, so stop here.
            Err(OidcError::TokenEndpoint {
                error, description, ..
            }) if error == "invalid_grant" && description.to_lowercase().contains("disabled") => {
                let who = load(store, key)
                    .and_then(|t| crate::claims::Identity::from_id_token(&t.id_token))
                    .map(crate::claims::Identity::who)
                    .filter(|w| !w.is_empty())
                    .or_else(|| config.account.clone())
                    .unwrap_or_else(|| "this account".into());
                return Err(Error::Setup(format!(
                    "{} disabled the account {who} (invalid_grant{description}); a new login would be refused too: ask its administrators to enable it (Keycloak: Users → USER → Enabled)",
                    config.issuer_url
                )));
            }
            Err(e) if e.is_invalid_grant() => {
                crate::warn!(
                    "the provider no longer accepts the cached login ({e}); signing in again"
                );
                if let Err(e) = store.remove(key) {
                    crate::warn!("{e}");
                }
            }
            Err(e) => return Err(e.into()),
        }
    }

    let grant = oidc::grant::choose(config, &provider);
    oidc::grant::check_possible(grant, config, exec)?;
    let browser = matches!(grant, Grant::Authcode | Grant::Device);
    let remembers = config.storage != Storage::None;
    if browser && remembers && mode == Mode::Normal && cooldown::is_background() {
        if let Some(age) = cooldown::active(&config.cache_dir, key.id(), now()) {
            return Err(Error::Cooldown(format!(
                "a browser login for {} was abandoned {age}s ago, so callers without a terminal (IDEs, Lens, k9s) open no new one for {}s; run `kubectl oidc-login login` with this kubeconfig's get-token flags (or any kubectl command) in a terminal",
                config.issuer_url,
                cooldown::COOLDOWN_SECS - age
            )));
        }
    }
    // Only the loopback wait polls for Ctrl-C; elsewhere it ends the process as usual.
    if grant == Grant::Authcode {
        crate::interrupt::watch();
    }
    let tokens = match oidc::grant::login(grant, &mut provider, config, &http) {
        Ok(tokens) => tokens,
        Err(e) => {
            if remembers && e.is_abandoned_login() {
                cooldown::record(&config.cache_dir, key.id(), now());
            }
            return Err(e.into());
        }
    };
    if remembers {
        cooldown::clear(&config.cache_dir, key.id());
    }
    eprintln!(
        "{}.",
        oidc::authcode::signed_in_as(&tokens, config.account.as_deref())
    );
    record(config, key);
    Ok(save(store, key, tokens))
}

/// Refreshes; when the cached metadata may be stale and the failure is not a dead refresh
/// token, discovers again and retries once.
fn refresh_with_retry(
    refresh_token: &str,
    provider: &mut Provider,
    config: &Config,
    http: &HttpClient,
) -> Result<TokenSet, OidcError> {
    match oidc::refresh::refresh(refresh_token, provider, config, http) {
        Err(e)
            if provider.from_cache && !e.is_invalid_grant() && !matches!(e, OidcError::Http(_)) =>
        {
            crate::debug!(
                1,
                "refresh failed with cached metadata ({e}); discovering again"
            );
            *provider = Provider::discover(config, http)?;
            oidc::refresh::refresh(refresh_token, provider, config, http)
        }
        other => other,
    }
}

/// A user who replaces kubelogin keeps working without a browser: on a miss, the one login
/// kubelogin cached for this issuer and client is copied into this plugin's store (the
/// refresh token where the storage mode says). kubelogin's copy stays for kubelogin.
fn import_from_kubelogin(
    config: &Config,
    store: &dyn TokenStore,
    key: &CacheKey,
) -> Option<TokenSet> {
    // kubelogin has no accounts, and with no cache there is nowhere to import to.
    if config.account.is_some() || config.storage == Storage::None {
        return None;
    }
    let with_keyring = matches!(config.storage, Storage::Auto | Storage::Keyring);
    let (entry, count) = kubelogin::find_one(
        &config.cache_dir,
        with_keyring,
        &config.issuer_url,
        &config.client_id,
    );
    if count > 1 {
        crate::warn!(
            "kubelogin cached {count} logins for {} and client {}; importing none of them",
            config.issuer_url,
            config.client_id
        );
    }
    let entry = entry?;
    let Some(expiry) = crate::jwt::peek_expiry(&entry.id_token) else {
        crate::debug!(1, "kubelogin's {} has no readable ID token", entry.origin);
        return None;
    };
    eprintln!(
        "Imported the login kubelogin cached in its {} (kubelogin's copy is left; `kubectl oidc-login clean` removes it).",
        entry.origin
    );
    let tokens = TokenSet {
        id_token: entry.id_token,
        id_token_expiry: expiry,
        access_token: None,
        access_token_expiry: None,
        refresh_token: entry.refresh_token,
    };
    record(config, key);
    Some(save(store, key, tokens))
}

fn load(store: &dyn TokenStore, key: &CacheKey) -> Option<TokenSet> {
    store.load(key).unwrap_or_else(|e| {
        crate::warn!("{e}");
        None
    })
}

/// The credential of `tokens` if it stays valid long enough.
fn usable(tokens: Option<&TokenSet>, config: &Config) -> Option<(String, i64)> {
    let (token, expiry) = tokens?.credential(config.use_access_token)?;
    (!token.is_empty() && expiry - now() > MIN_VALIDITY_SECS).then(|| (token.to_string(), expiry))
}

fn save(store: &dyn TokenStore, key: &CacheKey, tokens: TokenSet) -> TokenSet {
    // Not caching costs a login later, but the token in hand is good: warn and go on.
    if let Err(e) = store.save(key, &tokens) {
        crate::warn!("{e}");
    }
    tokens
}

fn record(config: &Config, key: &CacheKey) {
    if config.storage != Storage::None {
        if let Err(e) = store::record_key(&config.cache_dir, key) {
            crate::debug!(1, "{e}");
        }
    }
}

fn output(exec: &ExecInfo, token: &str, expiry: i64) -> Result<(), Error> {
    exec_credential::write(exec, token, expiry).map_err(Error::Output)
}
