//! The silent refresh: one request to the token endpoint with the cached metadata.
//!
//! OpenID Connect Core 12.2 lets a provider leave the ID token out of a refresh answer. With
//! --oidc-use-access-token that is no loss: kubectl gets the refreshed access token. Otherwise
//! the refresh asks once more with `openid` in its `scope` (some providers, Entra ID's v2
//! endpoint among them, return the ID token only then), and the provider's cached metadata
//! remembers to ask so from then on; a provider that still sends none gets a login, with
//! [`OidcError::NoIdTokenOnRefresh`] saying why.

use openidconnect::core::CoreTokenResponse;
use openidconnect::{OAuth2TokenResponse, RefreshToken, Scope, TokenResponse};

use super::http::HttpClient;
use super::provider::Provider;
use super::verify::Who;
use super::{
    configuration, measure_clock, require_token_endpoint, send_authenticated, token_error,
    token_set, verify, OidcError,
};
use crate::config::Config;
use crate::tokens::{ClientAuth, TokenSet};

/// Refreshes the login `previous` (when one is cached): the refreshed ID token (and, for
/// --oidc-use-access-token, a JWT access token) must name the same user, and the client
/// authentication style it found is used again (see [`send_authenticated`]).
pub fn refresh(
    refresh_token: &str,
    previous: Option<&TokenSet>,
    provider: &mut Provider,
    config: &Config,
    http: &HttpClient,
) -> Result<TokenSet, OidcError> {
    crate::debug!(1, "refreshing the ID token");
    require_token_endpoint(provider)?;
    let remembered = previous.and_then(|t| t.client_auth);
    let asks_openid = provider.refresh_asks_openid(&config.client_id);
    let (mut response, mut client_auth) = request(
        refresh_token,
        asks_openid,
        remembered,
        provider,
        config,
        http,
    )?;
    // The refresh token the answer replaces: the one presented, unless a retry spent another.
    let mut presented = refresh_token.to_string();
    if response.id_token().is_none() && !asks_openid && !config.use_access_token {
        crate::debug!(
            1,
            "the refresh brought no ID token; asking again with `openid` in its scope"
        );
        provider.remember_refresh_asks_openid(&config.client_id);
        // Providers that rotate sent a new refresh token, and the old one is spent.
        if let Some(rotated) = response.refresh_token() {
            presented = rotated.secret().clone();
        }
        (response, client_auth) = request(&presented, true, client_auth, provider, config, http)?;
    }
    let login = previous.and_then(Who::of_login);
    let tokens = match response.id_token() {
        Some(id_token) => {
            let clock = measure_clock(http, Some(&id_token.to_string()));
            let previous_id_token = previous.map(|t| t.id_token.as_str());
            let expiry = verify::verify_refreshed(
                id_token,
                provider,
                config,
                http,
                clock,
                previous_id_token,
            )?;
            token_set(&response, expiry, Some(&presented), clock, client_auth)
        }
        None if config.use_access_token => {
            crate::debug!(
                1,
                "the refresh brought no ID token; kubectl gets the refreshed access token"
            );
            let clock = measure_clock(http, None);
            let mut tokens = token_set(&response, 0, Some(&presented), clock, client_auth);
            // The login's ID token stays, expired as it is: it says who the login is, for the
            // next refresh's check and for whoami.
            if let Some(previous) = previous {
                tokens.id_token = previous.id_token.clone();
                tokens.id_token_expiry = previous.id_token_expiry;
            }
            tokens
        }
        None => {
            return Err(OidcError::NoIdTokenOnRefresh {
                issuer: config.issuer_url.clone(),
            })
        }
    };
    if config.use_access_token {
        // Verified just above (or cached from a verified login): the user the access token
        // must name.
        let login = Who::of(&tokens.id_token)
            .filter(|w| w.sub.is_some())
            .or(login);
        verify::access_token_of_login(&tokens, login.as_ref())?;
    }
    Ok(tokens)
}

/// One refresh request; with `ask_openid`, `scope` repeats the login's scopes (openid and the
/// extra ones: a refresh may ask for no more than the login was granted, RFC 6749 §6).
fn request(
    refresh_token: &str,
    ask_openid: bool,
    known: Option<ClientAuth>,
    provider: &Provider,
    config: &Config,
    http: &HttpClient,
) -> Result<(CoreTokenResponse, Option<ClientAuth>), OidcError> {
    let secret = RefreshToken::new(refresh_token.to_string());
    send_authenticated(provider, config, http, known, |client| {
        let mut request = client
            .exchange_refresh_token(&secret)
            .map_err(configuration)?;
        if ask_openid {
            for scope in config.scopes() {
                request = request.add_scope(Scope::new(scope));
            }
        }
        request.request(http)
    })
    .map_err(token_error)
}
