//! The silent refresh: one request to the token endpoint with the cached metadata.

use openidconnect::{RefreshToken, TokenResponse};

use super::http::HttpClient;
use super::provider::Provider;
use super::{
    configuration, measure_clock, require_token_endpoint, send_authenticated, token_error,
    token_set, verify, OidcError,
};
use crate::config::Config;
use crate::tokens::TokenSet;

/// Refreshes the login `previous` (when one is cached): the refreshed ID token must name the
/// same user, and the client authentication style it found is used again (see
/// [`send_authenticated`]).
pub fn refresh(
    refresh_token: &str,
    previous: Option<&TokenSet>,
    provider: &mut Provider,
    config: &Config,
    http: &HttpClient,
) -> Result<TokenSet, OidcError> {
    crate::debug!(1, "refreshing the ID token");
    require_token_endpoint(provider)?;
    let secret = RefreshToken::new(refresh_token.to_string());
    let remembered = previous.and_then(|t| t.client_auth);
    let (response, client_auth) =
        send_authenticated(provider, config, http, remembered, |client| {
            client
                .exchange_refresh_token(&secret)
                .map_err(configuration)?
                .request(http)
        })
        .map_err(token_error)?;
    let id_token = response.id_token().ok_or(OidcError::NoIdToken)?;
    let clock = measure_clock(http, Some(&id_token.to_string()));
    let previous_id_token = previous.map(|t| t.id_token.as_str());
    let expiry =
        verify::verify_refreshed(id_token, provider, config, http, clock, previous_id_token)?;
    Ok(token_set(
        &response,
        expiry,
        Some(refresh_token),
        clock,
        client_auth,
    ))
}
