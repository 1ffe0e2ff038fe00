//! `logout`: revoke the refresh token at the provider (RFC 7009), end the provider's browser
//! session (OIDC RP-initiated logout) unless --keep-session, then delete the login locally. The local clean happens
//! even when the provider cannot be reached; that failure is reported and the exit is non-zero,
//! because the refresh token may then still be valid at the provider.

use std::str::FromStr;
use std::time::Instant;

use openidconnect::core::CoreIdToken;
use openidconnect::{ClientId, CsrfToken, EndSessionUrl, LogoutRequest, PostLogoutRedirectUrl};

use crate::config::Config;
use crate::error::Error;
use crate::loopback::{Listener, LoopbackError, LOGOUT_START_PATH};
use crate::oidc::http::HttpClient;
use crate::oidc::provider::Provider;
use crate::oidc::revoke::revoke;
use crate::store::{self, clean};

/// What `logout` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub config: Config,
    /// Leave the provider's browser session alone (`--keep-session`).
    pub keep_session: bool,
}

pub fn run(args: &Options) -> Result<(), Error> {
    let config = &args.config;
    let store = store::open(&config.cache_dir, config.storage);
    let key = config.cache_key();
    let refresh_token = store.load_refresh_token(&key).unwrap_or_else(|e| {
        crate::warn!("{e}");
        None
    });

    let mut failure = None;
    let mut raced = None;
    if let Some(refresh_token) = &refresh_token {
        // The client authentication the login found, so a client_secret_post client is not
        // refused first.
        let client_auth = store.load(&key).ok().flatten().and_then(|t| t.client_auth);
        match revoke(config, refresh_token, client_auth) {
            Ok(true) => eprintln!("Revoked the refresh token at {}.", config.issuer_url),
            Ok(false) => eprintln!(
                "{} announces no revocation endpoint: the refresh token stays valid there until it expires.",
                config.issuer_url
            ),
            // Reported once, as the final error, after the local clean.
            Err(e) => failure = Some(e),
        }
    }
    if !args.keep_session {
        // The ID token goes as id_token_hint, so read it before the local clean.
        let id_token = store
            .load(&key)
            .ok()
            .flatten()
            .map(|t| t.id_token)
            .filter(|t| !t.is_empty());
        match end_session(config, id_token.as_deref()) {
            Ok(()) => {}
            Err(SessionError::Raced) => raced = Some(raced_message(id_token.as_deref())),
            Err(SessionError::Failed(e)) => {
                crate::warn!("could not end the provider's browser session: {e}");
            }
        }
    }

    let report = clean::remove_login(&config.cache_dir, key.id())?;
    if refresh_token.is_none() && report.files == 0 && report.keyring_entries == 0 {
        eprintln!(
            "No login was cached for {} and client {}.",
            config.issuer_url, config.client_id
        );
    } else {
        eprintln!(
            "Removed the cached login ({} file(s), {} keyring entr{}).",
            report.files,
            report.keyring_entries,
            if report.keyring_entries == 1 {
                "y"
            } else {
                "ies"
            }
        );
    }
    let failure = failure.map(|e| format!(
        "logged out locally, but the provider did not revoke the refresh token ({e}); revoke the session at the provider (Keycloak: Users → USER → Sessions → Sign out)"
    ));
    match (raced, failure) {
        (Some(raced), failure) => {
            if let Some(failure) = failure {
                crate::warn!("{failure}");
            }
            Err(Error::Setup(raced))
        }
        (None, Some(failure)) => Err(Error::Setup(failure)),
        (None, None) => Ok(()),
    }
}

/// Why the provider's browser session was not ended.
enum SessionError {
    Failed(String),
    /// The sign-out start URL was used twice; see [`Listener::wait_for_logout`].
    Raced,
}

impl<E: std::fmt::Display> From<E> for SessionError {
    fn from(e: E) -> Self {
        SessionError::Failed(e.to_string())
    }
}

/// The error of a sign-out whose start URL was used twice: the ID token cannot be revoked, so
/// say until when it is exposed and how to send it nowhere next time.
fn raced_message(id_token: Option<&str>) -> String {
    let until = id_token
        .and_then(crate::claims::Identity::from_id_token)
        .and_then(|identity| chrono::DateTime::from_timestamp(identity.exp, 0))
        .map(|exp| {
            format!(
                "until it expires at {}",
                exp.format("%Y-%m-%d %H:%M:%S UTC")
            )
        })
        .unwrap_or_else(|| "until it expires".into());
    format!(
        "the sign-out URL was opened twice, so another local process may have received the ID token, which stays valid {until} (an ID token cannot be revoked); if you did not open that URL twice yourself, another user on this machine can read your browser's command line: until that is dealt with, log out with --keep-session, which sends the ID token nowhere"
    )
}

/// Ends the provider's browser session (OIDC RP-initiated logout). The browser goes first to
/// our loopback listener, which redirects it to the end-session URL carrying `id_token_hint`:
/// the ID token never appears on the browser's command line, where other local users could
/// read it. The provider then sends the browser back to the listener with our `state`.
fn end_session(config: &Config, id_token: Option<&str>) -> Result<(), SessionError> {
    let http = HttpClient::new(config)?;
    let provider = Provider::load(config, &http)?;
    let Some(endpoint) = provider
        .metadata
        .additional_metadata()
        .end_session_endpoint
        .clone()
    else {
        eprintln!(
            "The provider announces no end_session_endpoint; its browser session stays signed in."
        );
        return Ok(());
    };
    if !crate::browser::can_open(config) {
        eprintln!("No browser can open here, so the provider's browser session stays signed in; run logout where a browser can open to end it.");
        return Ok(());
    }
    let endpoint = EndSessionUrl::new(endpoint)?;
    let mut listener = Listener::bind(
        &config.listen_addresses,
        config.local_server_tls.as_ref(),
        &config.redirect_hostname,
    )?;
    let back = PostLogoutRedirectUrl::new(listener.url(&config.redirect_hostname))?;
    let state = CsrfToken::new_random();
    let mut request = LogoutRequest::from(endpoint)
        .set_client_id(ClientId::new(config.client_id.clone()))
        .set_post_logout_redirect_uri(back)
        .set_state(state.clone());
    let hint = id_token.and_then(|t| CoreIdToken::from_str(t).ok());
    if let Some(hint) = &hint {
        request = request.set_id_token_hint(hint);
    }
    let url = request.http_get_url();
    // The browser's command line, where the start URL goes, is readable by every local user:
    // it carries only a one-time key (see Listener::start_url), never the ID token.
    let start = listener.start_url(
        &config.redirect_hostname,
        LOGOUT_START_PATH,
        url.to_string(),
    );
    eprintln!("Signing out at the provider in the browser; if none opens, visit {start}");
    crate::browser::launch(&start, config);
    let deadline = Instant::now() + config.auth_timeout;
    match listener.wait_for_logout(state.secret(), deadline, config.auth_timeout) {
        Ok(()) => {}
        Err(LoopbackError::StartReused) => return Err(SessionError::Raced),
        Err(e) => return Err(e.into()),
    }
    eprintln!("Signed out at the provider.");
    Ok(())
}
