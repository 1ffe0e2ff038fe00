//! `--grant-type client-credentials`: a robot (a CI pipeline) authenticates as the client
//! itself with its secret. No user and no refresh token: when the token expires we simply ask
//! again. As kubelogin does, the request asks for `openid` (plus the extra scopes) and kubectl
//! gets the ID token when the provider returns one (Keycloak does: its audience is the client,
//! as an API server with `--oidc-client-id` expects), else the access token;
//! `--oidc-use-access-token` always hands the access token.

use openidconnect::{OAuth2TokenResponse, Scope, TokenResponse};

use super::http::HttpClient;
use super::provider::Provider;
use super::{
    configuration, require_token_endpoint, send_authenticated, token_error, verify, OidcError,
};
use crate::config::Config;
use crate::tokens::TokenSet;

pub fn login(
    provider: &mut Provider,
    config: &Config,
    http: &HttpClient,
) -> Result<TokenSet, OidcError> {
    if config.client_secret.is_none() {
        return Err(OidcError::Grant(
            "--grant-type=client-credentials needs --oidc-client-secret (the robot's credential)"
                .into(),
        ));
    }
    require_token_endpoint(provider)?;
    let (response, client_auth) = send_authenticated(provider, config, http, None, |client| {
        let mut request = client
            .exchange_client_credentials()
            .map_err(configuration)?
            .add_scope(Scope::new("openid".into()));
        for scope in &config.extra_scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        for (name, value) in &config.auth_extra_params {
            request = request.add_extra_param(name.clone(), value.clone());
        }
        request.request(http)
    })
    .map_err(token_error)?;
    let access_token = response.access_token().secret().clone();
    let id_token = response
        .id_token()
        .filter(|_| !config.use_access_token)
        .cloned();
    let clock = super::measure_clock(http, id_token.as_ref().map(|t| t.to_string()).as_deref());
    let access_token_expiry = crate::jwt::peek_expiry(&access_token).or_else(|| {
        response
            .expires_in()
            .map(|d| clock.now() + d.as_secs() as i64)
    });
    let (id_token, id_token_expiry) = match id_token {
        // Verified as any ID token (no nonce: nothing was sent to bind one to).
        Some(token) => {
            let expiry = verify::verify(&token, provider, config, http, None, clock)?;
            (token.to_string(), expiry)
        }
        None => {
            if access_token_expiry.is_none() {
                return Err(OidcError::NoAccessTokenExpiry);
            }
            (String::new(), 0)
        }
    };
    Ok(TokenSet {
        id_token,
        id_token_expiry,
        access_token: Some(access_token),
        access_token_expiry,
        refresh_token: None,
        clock_offset: clock.0,
        client_auth,
    })
}
