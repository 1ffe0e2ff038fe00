//! The silent refresh: one request to the token endpoint with the cached metadata.

use openidconnect::{RefreshToken, TokenResponse};

use super::http::HttpClient;
use super::provider::Provider;
use super::{client, measure_clock, token_error, token_set, verify, OidcError};
use crate::config::Config;
use crate::tokens::TokenSet;

/// Refreshes the login whose current ID token is `previous_id_token` (when one is cached: the
/// refreshed token must name the same user).
pub fn refresh(
    refresh_token: &str,
    previous_id_token: Option<&str>,
    provider: &mut Provider,
    config: &Config,
    http: &HttpClient,
) -> Result<TokenSet, OidcError> {
    crate::debug!(1, "refreshing the ID token");
    let client = client(provider, config);
    let secret = RefreshToken::new(refresh_token.to_string());
    let response = client
        .exchange_refresh_token(&secret)
        .map_err(|_| OidcError::NoTokenEndpoint)?
        .request(http)
        .map_err(token_error)?;
    let id_token = response.id_token().ok_or(OidcError::NoIdToken)?;
    let clock = measure_clock(http, Some(&id_token.to_string()));
    let expiry =
        verify::verify_refreshed(id_token, provider, config, http, clock, previous_id_token)?;
    Ok(token_set(&response, expiry, Some(refresh_token), clock))
}
