//! Token revocation (RFC 7009), for `logout`: the refresh token dies at the provider, with
//! the client authenticated as at the login.

use openidconnect::core::CoreRevocableToken;
use openidconnect::{RefreshToken, RequestTokenError, RevocationUrl};

use super::http::HttpClient;
use super::provider::Provider;
use super::{send_authenticated, OidcError};
use crate::config::Config;
use crate::tokens::ClientAuth;

/// Revokes `refresh_token`; `Ok(false)` when the provider has no revocation endpoint.
pub fn revoke(
    config: &Config,
    refresh_token: &str,
    client_auth: Option<ClientAuth>,
) -> Result<bool, OidcError> {
    let http = HttpClient::new(config)?;
    let provider = Provider::load(config, &http)?;
    let Some(endpoint) = provider
        .metadata
        .additional_metadata()
        .revocation_endpoint
        .clone()
    else {
        return Ok(false);
    };
    let url = RevocationUrl::new(endpoint).map_err(|e| OidcError::Revocation(e.to_string()))?;
    // RFC 7009 §2 demands TLS, and the oauth2 crate will not send a token otherwise.
    if url.url().scheme() != "https" {
        return Err(OidcError::Revocation(
            "the provider's revocation endpoint is plain http, and RFC 7009 allows only https"
                .into(),
        ));
    }
    send_authenticated(&provider, config, &http, client_auth, |client| {
        let token = CoreRevocableToken::RefreshToken(RefreshToken::new(refresh_token.to_string()));
        client
            .set_revocation_url(url.clone())
            .revoke_token(token)
            .map_err(super::configuration)?
            .request(&http)
    })
    .map_err(|e| match e {
        RequestTokenError::ServerResponse(r) => {
            OidcError::Revocation(format!("the provider answered {}", r.error().as_ref()))
        }
        other => OidcError::Revocation(other.to_string()),
    })?;
    Ok(true)
}
