//! The silent refresh: one request to the token endpoint with the cached metadata.

use openidconnect::{RefreshToken, TokenResponse};

use super::http::HttpClient;
use super::provider::Provider;
use super::{
    configuration, measure_clock, require_token_endpoint, send_authenticated, token_error,
    token_set, verify, OidcError,
};
use crate::config::Config;
use crate::tokens::{ClientAuth, TokenSet};

/// Refreshes with `refresh_token`; `client_auth` is the style the login found (see
/// [`send_authenticated`]).
pub fn refresh(
    refresh_token: &str,
    client_auth: Option<ClientAuth>,
    provider: &mut Provider,
    config: &Config,
    http: &HttpClient,
) -> Result<TokenSet, OidcError> {
    crate::debug!(1, "refreshing the ID token");
    require_token_endpoint(provider)?;
    let secret = RefreshToken::new(refresh_token.to_string());
    let (response, client_auth) =
        send_authenticated(provider, config, http, client_auth, |client| {
            client
                .exchange_refresh_token(&secret)
                .map_err(configuration)?
                .request(http)
        })
        .map_err(token_error)?;
    let id_token = response.id_token().ok_or(OidcError::NoIdToken)?;
    let clock = measure_clock(http, Some(&id_token.to_string()));
    let expiry = verify::verify(id_token, provider, config, http, None, clock)?;
    Ok(token_set(
        &response,
        expiry,
        Some(refresh_token),
        clock,
        client_auth,
    ))
}
