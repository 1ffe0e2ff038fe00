//! The sign-in step that `get-token`, `login` and `setup` share: cached token → lock →
//! kubelogin's cache → refresh → login (browser or other grant) → store. A building block
//! below the commands, with its own [`SignInError`]; a login says who signed in on stderr.

use std::time::Duration;

use thiserror::Error;

use crate::config::Config;
use crate::cooldown;
use crate::exec_credential::ExecInfo;
use crate::jwt::now;
use crate::lock::{KeyLock, LockError};
use crate::oidc::grant::Grant;
use crate::oidc::{self, http::HttpClient, provider::Provider, verify::Who, OidcError};
use crate::store::{self, kubelogin, TokenStore};
use crate::tokens::{CacheKey, Storage, TokenSet};

/// A cached token is used only while it stays valid at least this long, so it does not expire
/// on its way to the API server.
pub const MIN_VALIDITY_SECS: i64 = 10;

/// Set (by `doctor`) for kubectl runs that must not sign in.
pub const NO_LOGIN_ENV: &str = "KUBECTL_OIDC_LOGIN_NO_LOGIN";

/// How long to wait beyond the authentication timeout for another process's login.
const LOCK_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, Error)]
pub enum SignInError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Oidc(#[from] OidcError),
    #[error("a browser login for {issuer} was abandoned {age}s ago, so callers without a terminal (IDEs, Lens, k9s) open no new one for {left}s; run `kubectl oidc-login login` with this kubeconfig's get-token flags (or any kubectl command) in a terminal{see}", see = crate::troubleshooting::see("browser-tabs-keep-opening"))]
    Cooldown { issuer: String, age: i64, left: i64 },
    #[error("no usable cached token, and {NO_LOGIN_ENV} forbids signing in")]
    LoginForbidden,
    #[error("{issuer} disabled the account {who} (invalid_grant: {description}); a new login would be refused too: ask its administrators to enable it (Keycloak: Users → USER → Enabled)")]
    AccountDisabled {
        issuer: String,
        who: String,
        description: String,
    },
}

/// The cached credential (ID token, or access token with `--oidc-use-access-token`) and its
/// expiry in this machine's clock, if it stays valid long enough by the provider's clock
/// (measured at the last token response and kept with the login): the hot path, one read of
/// the store, no network.
pub fn cached(store: &dyn TokenStore, key: &CacheKey, config: &Config) -> Option<(String, i64)> {
    usable(
        load(store, key).as_ref(),
        credential_is_access_token(config),
    )
}

/// Whether kubectl gets an access token: with --oidc-use-access-token, and always for a
/// cluster whose token is exchanged (an exchange yields an access token).
pub fn credential_is_access_token(config: &Config) -> bool {
    config.use_access_token || config.token_exchange_audience.is_some()
}

/// The store of the credential kubectl gets ([`Config::credential_key`]). An exchanged token
/// has no refresh token, so in the auto mode it goes to the disk file alone (where the auto
/// mode keeps every short-lived token) and a save never touches the keyring.
pub fn credential_store(config: &Config) -> Box<dyn TokenStore> {
    let storage = match (config.storage, &config.token_exchange_audience) {
        (Storage::Auto, Some(_)) => Storage::Disk,
        (storage, _) => storage,
    };
    store::open(&config.cache_dir, storage)
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
) -> Result<TokenSet, SignInError> {
    // What is cached now: served while it has not expired if the provider cannot be
    // reached to refresh it (a refresh is attempted some seconds early, or on --force-refresh).
    let (_lock, cached) = match single_flight(
        config,
        store,
        key,
        mode == Mode::Normal,
        config.use_access_token,
    )? {
        Flight::Stored(tokens) => return Ok(tokens),
        Flight::Go { lock, cached } => (lock, cached),
    };

    let mut refresh_token = match mode {
        Mode::Normal => store.load_refresh_token(key).unwrap_or_else(|e| {
            crate::warn!("{e}");
            None
        }),
        Mode::FreshLogin => None,
    };
    // The login a refresh renews: the refreshed ID token must name the same user, and the
    // client authentication this login found is used again, so the refresh does not probe.
    let mut previous = cached.clone();
    if mode == Mode::Normal && refresh_token.is_none() {
        if let Some(imported) = import_from_kubelogin(config, store, key) {
            if usable(Some(&imported), config.use_access_token).is_some() {
                return Ok(imported);
            }
            refresh_token = imported.refresh_token.clone();
            previous = Some(imported);
        }
    }

    let http = HttpClient::new(config).map_err(OidcError::from)?;
    let mut provider = match Provider::load(config, &http) {
        Ok(provider) => provider,
        Err(e) => return serve_while_valid(cached, config.use_access_token, e),
    };
    if let Some(refresh_token) = refresh_token {
        match refresh_with_retry(
            &refresh_token,
            previous.as_ref(),
            &mut provider,
            config,
            &http,
        ) {
            Ok(tokens) => {
                clock_notice(&tokens, config);
                return Ok(save(store, key, tokens));
            }
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
                return Err(SignInError::AccountDisabled {
                    issuer: config.issuer_url.clone(),
                    who,
                    description,
                });
            }
            // OpenID Connect Core 12.2 allows it; say so, then one login (never a silent one).
            Err(e @ OidcError::NoIdTokenOnRefresh { .. }) => {
                crate::warn!("{e}");
            }
            // A hostile or broken provider: neither the answer nor the old login is kept.
            Err(e @ OidcError::IdentityChanged { .. }) => {
                if let Err(e) = store.remove(key) {
                    crate::warn!("{e}");
                }
                return Err(e.into());
            }
            Err(e) if e.is_invalid_grant() => {
                crate::warn!(
                    "the provider no longer accepts the cached login ({e}); signing in again"
                );
                if let Err(e) = store.remove(key) {
                    crate::warn!("{e}");
                }
            }
            Err(e) => return serve_while_valid(cached, config.use_access_token, e),
        }
    }

    let grant = oidc::grant::choose(config, &provider);
    oidc::grant::check_possible(grant, config, exec)?;
    let browser = matches!(grant, Grant::Authcode | Grant::Device);
    let remembers = config.storage != Storage::None;
    if browser && remembers && mode == Mode::Normal && cooldown::is_background() {
        if let Some(age) = cooldown::active(&config.cache_dir, key.id(), now()) {
            return Err(SignInError::Cooldown {
                issuer: config.issuer_url.clone(),
                age,
                left: cooldown::COOLDOWN_SECS - age,
            });
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
        // Tokens exchanged from the previous login may belong to another user (`login`
        // switches user): each cluster exchanges the new login at its next call.
        match store::clean::remove_derived(
            &config.cache_dir,
            key.id(),
            config.storage == Storage::Keyring,
        ) {
            Ok(0) => {}
            Ok(n) => crate::debug!(1, "removed {n} tokens exchanged from the previous login"),
            Err(e) => {
                crate::warn!("{e}");
            }
        }
    }
    eprintln!(
        "{}.",
        crate::log::printable(&oidc::authcode::signed_in_as(
            &tokens,
            config.account.as_deref()
        ))
    );
    clock_notice(&tokens, config);
    record(config, key);
    Ok(save(store, key, tokens))
}

/// The token for `--token-exchange-audience`, stored under `key` in `store` (see
/// [`Config::credential_key`], [`credential_store`]): the login client's access token (cached,
/// else refreshed, else one login through [`obtain`]) exchanged in one request. When the
/// provider says the login's session ended, the login is renewed once (a refresh, else one
/// browser login) and the exchange tried once more; any other refusal is an administrator's
/// setting, and its error names it.
pub fn exchanged(
    config: &Config,
    exec: &ExecInfo,
    store: &dyn TokenStore,
    key: &CacheKey,
) -> Result<TokenSet, SignInError> {
    let audience = config
        .token_exchange_audience
        .as_deref()
        .expect("exchanged() is called for --token-exchange-audience");
    let (_lock, cached) = match single_flight(config, store, key, true, true)? {
        Flight::Stored(tokens) => return Ok(tokens),
        Flight::Go { lock, cached } => (lock, cached),
    };

    // The login's own access token is the subject token; --force-refresh on a cluster's
    // entry asks for a new exchange, not a new login.
    let mut login = config.clone();
    login.token_exchange_audience = None;
    login.token_exchange_scope = None;
    login.use_access_token = true;
    login.force_refresh = false;
    let login_store = store::open(&config.cache_dir, config.storage);
    let login_key = config.cache_key();

    let http = HttpClient::new(config).map_err(OidcError::from)?;
    let mut provider = match Provider::load(config, &http) {
        Ok(provider) => provider,
        Err(e) => return serve_while_valid(cached, true, e),
    };
    // No login for a provider that cannot exchange it: the error, before any browser.
    if oidc::exchange::not_offered(&provider) {
        return Err(oidc::exchange::not_offered_error(config).into());
    }
    // The login's access token while it stays valid (no lock: nothing is written), else a
    // refresh or a login under the login's own lock.
    let tokens = match load(&*login_store, &login_key).filter(|t| usable(Some(t), true).is_some()) {
        Some(tokens) => tokens,
        None => obtain(&login, exec, &*login_store, &login_key, Mode::Normal)?,
    };
    let subject = tokens.access_token.clone().unwrap_or_default();
    // The user the exchanged token must name: the login's it was exchanged from.
    let mut login_user = Who::of_login(&tokens);
    let exchanged = match oidc::exchange::exchange(
        &subject,
        tokens.client_auth,
        audience,
        &mut provider,
        config,
        &http,
    ) {
        Err(OidcError::Exchange(refused))
            if refused.refusal == oidc::exchange::Refusal::SessionEnded =>
        {
            crate::warn!(
                "the provider no longer exchanges the login's access token ({}): its session ended; signing in again",
                refused.reason
            );
            login.force_refresh = true;
            let tokens = obtain(&login, exec, &*login_store, &login_key, Mode::Normal)?;
            login_user = Who::of_login(&tokens);
            let subject = tokens.access_token.clone().unwrap_or_default();
            oidc::exchange::exchange(
                &subject,
                tokens.client_auth,
                audience,
                &mut provider,
                config,
                &http,
            )
        }
        other => other,
    };
    let exchanged = exchanged.and_then(|tokens| {
        oidc::verify::exchanged_for_login(&tokens, login_user.as_ref(), audience).map(|()| tokens)
    });
    match exchanged {
        Ok(tokens) => Ok(save(store, key, tokens)),
        Err(e) => serve_while_valid(cached, true, e),
    }
}

/// What [`single_flight`] decided.
enum Flight {
    /// Another process stored usable tokens while this one waited for the lock.
    Stored(TokenSet),
    /// This process refreshes, logs in or exchanges: holding the key's lock (none when
    /// nothing is stored), with what is cached now (when asked to read it).
    Go {
        lock: Option<KeyLock>,
        cached: Option<TokenSet>,
    },
}

/// One process at a time per cache key (see [`crate::lock`]): takes the key's lock, reads the
/// cache when `read_cache`, and returns the cached tokens at once when whoever held the lock
/// just stored usable ones (or, without --force-refresh, whenever they are usable).
fn single_flight(
    config: &Config,
    store: &dyn TokenStore,
    key: &CacheKey,
    read_cache: bool,
    use_access_token: bool,
) -> Result<Flight, SignInError> {
    if config.storage == Storage::None {
        return Ok(Flight::Go {
            lock: None,
            cached: None,
        });
    }
    let (lock, waited) =
        KeyLock::acquire(&config.cache_dir, key, config.auth_timeout + LOCK_GRACE)?;
    let cached = if read_cache { load(store, key) } else { None };
    if waited || !config.force_refresh {
        if let Some(tokens) = cached
            .as_ref()
            .filter(|t| usable(Some(t), use_access_token).is_some())
        {
            crate::debug!(1, "another process stored fresh tokens meanwhile");
            return Ok(Flight::Stored(tokens.clone()));
        }
    }
    Ok(Flight::Go {
        lock: Some(lock),
        cached,
    })
}

/// When the provider cannot be reached (down, slow, a network error) but the cached credential
/// has not expired, that credential still serves this call, with a warning; otherwise the
/// error. Only transport and server errors: a refusal is the provider's answer.
fn serve_while_valid(
    cached: Option<TokenSet>,
    use_access_token: bool,
    error: OidcError,
) -> Result<TokenSet, SignInError> {
    if matches!(error, OidcError::Http(_)) {
        if let Some(tokens) = cached {
            if let Some((_, expiry)) = tokens.credential(use_access_token) {
                let left = expiry.saturating_sub(tokens.clock().now());
                if left > 0 {
                    crate::warn!(
                        "cannot refresh: {error}; using the cached token, valid for {left}s more"
                    );
                    return Ok(tokens);
                }
            }
        }
    }
    Err(error.into())
}

/// One line when this machine's clock is far from the provider's, at each login or refresh
/// (never on a cache hit: the hot path prints nothing).
fn clock_notice(tokens: &TokenSet, config: &Config) {
    let host = url::Url::parse(&config.issuer_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| config.issuer_url.clone());
    if let Some(line) = tokens.clock().notice(&host) {
        crate::warn!("{line}");
    }
}

/// Refreshes; when the cached metadata may be stale and the failure is not a dead refresh
/// token, discovers again and retries once. Never after the provider answered with tokens
/// that failed verification: that answer spent the refresh token (rotation), and presenting
/// it again would look like theft to providers with reuse detection.
fn refresh_with_retry(
    refresh_token: &str,
    previous: Option<&TokenSet>,
    provider: &mut Provider,
    config: &Config,
    http: &HttpClient,
) -> Result<TokenSet, OidcError> {
    match oidc::refresh::refresh(refresh_token, previous, provider, config, http) {
        Err(e)
            if provider.from_cache
                && !e.is_invalid_grant()
                && !matches!(
                    e,
                    OidcError::Http(_)
                        | OidcError::Clock(_)
                        | OidcError::IdToken(_)
                        | OidcError::NoIdToken
                        | OidcError::NoIdTokenOnRefresh { .. }
                        | OidcError::IdentityChanged { .. }
                ) =>
        {
            crate::debug!(
                1,
                "refresh failed with cached metadata ({e}); discovering again"
            );
            *provider = Provider::discover(config, http)?;
            oidc::refresh::refresh(refresh_token, previous, provider, config, http)
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
        // kubelogin kept no measure of the provider's clock; the next refresh takes one.
        clock_offset: 0,
        // Found out at the first refresh, then kept.
        client_auth: None,
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

/// The credential of `tokens` and its expiry in this machine's clock (what client-go compares
/// `expirationTimestamp` with), if it stays valid long enough by the provider's clock.
fn usable(tokens: Option<&TokenSet>, use_access_token: bool) -> Option<(String, i64)> {
    let tokens = tokens?;
    let (token, expiry) = tokens.credential(use_access_token)?;
    let clock = tokens.clock();
    (!token.is_empty() && expiry.saturating_sub(clock.now()) > MIN_VALIDITY_SECS)
        .then(|| (token.to_string(), clock.to_local(expiry)))
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
