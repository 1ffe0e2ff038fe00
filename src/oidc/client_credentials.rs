//! `--grant-type client-credentials`: a robot (a CI pipeline) authenticates as the client
//! itself with its secret. No user, no ID token: kubectl gets the access token, and when it
//! expires we simply ask again (no refresh token in this grant).

use openidconnect::{OAuth2TokenResponse, Scope};

use super::http::HttpClient;
use super::provider::Provider;
use super::{client, token_error, OidcError};
use crate::config::Config;
use crate::tokens::TokenSet;

pub fn login(
    provider: &Provider,
    config: &Config,
    http: &HttpClient,
) -> Result<TokenSet, OidcError> {
    if config.client_secret.is_none() {
        return Err(OidcError::Grant(
            "--grant-type=client-credentials needs --oidc-client-secret (the robot's credential)"
                .into(),
        ));
    }
    let client = client(provider, config);
    let mut request = client
        .exchange_client_credentials()
        .map_err(|_| OidcError::NoTokenEndpoint)?;
    for scope in &config.extra_scopes {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    for (name, value) in &config.auth_extra_params {
        request = request.add_extra_param(name.clone(), value.clone());
    }
    let response = request.request(http).map_err(token_error)?;
    let access_token = response.access_token().secret().clone();
    let clock = super::measure_clock(http, None);
    let expiry = crate::jwt::peek_expiry(&access_token)
        .or_else(|| {
            response
                .expires_in()
                .map(|d| clock.now() + d.as_secs() as i64)
        })
        .ok_or(OidcError::NoAccessTokenExpiry)?;
    Ok(TokenSet {
        id_token: String::new(),
        id_token_expiry: 0,
        access_token: Some(access_token),
        access_token_expiry: Some(expiry),
        refresh_token: None,
        clock_offset: clock.0,
    })
}
