//! OpenID Connect flows on top of the openidconnect crate: discovery ([`provider`]), ID token
//! verification ([`verify`]), the silent refresh ([`refresh`]), and the grants that sign a
//! user in, chosen by [`grant`]: the browser login ([`authcode`]), its pasted-code variant
//! ([`keyboard`]), the device grant ([`device`]), the password grant ([`password`]) and a
//! robot's client credentials ([`client_credentials`]); and the token exchange ([`exchange`])
//! that turns one login into a token for each cluster's audience.

pub mod authcode;
pub mod client_credentials;
pub mod device;
pub mod exchange;
pub mod grant;
pub mod http;
pub mod keyboard;
pub mod password;
pub mod provider;
pub mod refresh;
pub mod verify;

use openidconnect::core::{CoreClient, CoreErrorResponseType, CoreTokenResponse};
use openidconnect::{
    ClientId, ClientSecret, EndpointMaybeSet, EndpointNotSet, EndpointSet, OAuth2TokenResponse,
    RequestTokenError, StandardErrorResponse, TokenResponse,
};
use thiserror::Error;

use crate::clock::Offset;
use crate::config::Config;
use crate::tokens::TokenSet;
use http::{HttpClient, HttpError};
use provider::Provider;

#[derive(Debug, Error)]
pub enum OidcError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("discovery of {0} failed: {1}; check --oidc-issuer-url (Keycloak: https://HOST/realms/REALM, exactly as the ID token's iss, no trailing slash)")]
    Discovery(String, String),
    #[error("the provider refused the token request: {error}{description}{hint}")]
    TokenEndpoint {
        error: String,
        description: String,
        hint: &'static str,
    },
    #[error("the provider's token response is not valid: {0}")]
    TokenResponse(String),
    #[error("the provider returned no ID token; request the `openid` scope for client and check the provider returns id_token")]
    NoIdToken,
    #[error("the provider returned no access token expiry, which --oidc-use-access-token needs")]
    NoAccessTokenExpiry,
    #[error("the ID token failed verification: {0}")]
    IdToken(String),
    /// A fresh token refused for a time reason even by the provider's own clock: the
    /// provider's clock and its tokens disagree, or the token is old.
    #[error("the ID token is not valid at the provider's time: {0}; if the provider's clock is wrong, its administrators must fix it (NTP), and if this machine's is, fix it with `sudo timedatectl set-ntp true` (WSL: `sudo hwclock -s`)")]
    Clock(String),
    #[error("the provider's metadata has no token endpoint; check --oidc-issuer-url")]
    NoTokenEndpoint,
    #[error("revocation failed: {0}")]
    Revocation(String),
    #[error("device login failed: {0}")]
    Device(String),
    #[error("{0}")]
    Grant(String),
    /// The browser login's loopback listener failed (bind, timeout, provider error).
    #[error(transparent)]
    Loopback(#[from] crate::loopback::LoopbackError),
    /// The chosen grant needs a terminal or a browser this process does not have.
    #[error("{0}")]
    NotInteractive(String),
    /// The provider refused to exchange the login for a token for a cluster's audience.
    #[error(transparent)]
    Exchange(Box<exchange::Refused>),
    /// The exchanged token is not one to hand to the cluster.
    #[error("the token exchanged for audience {audience} failed verification: {why}")]
    Exchanged { audience: String, why: String },
}

impl OidcError {
    /// Whether the refresh token is dead (expired session, revoked, rotated away) so a fresh
    /// login is the way out.
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, OidcError::TokenEndpoint { error, .. } if error == "invalid_grant")
    }

    /// Whether the user walked away from a browser login: it timed out, was refused at the
    /// provider (a closed consent), or was interrupted.
    pub fn is_abandoned_login(&self) -> bool {
        use crate::loopback::LoopbackError as L;
        match self {
            OidcError::Loopback(L::Timeout(_) | L::Interrupted) => true,
            OidcError::Loopback(L::Provider { error, .. }) => error == "access_denied",
            // Another browser login would get the same refused token: no login loop.
            OidcError::Clock(_) => true,
            _ => false,
        }
    }
}

pub type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Shows `prompt` on stderr and reads one line (at most `limit` bytes) from stdin: the
/// terminal, for the grants that ask the user something.
pub(crate) fn read_answer(prompt: &str, limit: u64) -> std::io::Result<String> {
    use std::io::{BufRead, Read, Write};
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().take(limit).read_line(&mut line)?;
    Ok(line)
}

pub fn client(provider: &Provider, config: &Config) -> Client {
    CoreClient::from_provider_metadata(
        provider.metadata.clone(),
        ClientId::new(config.client_id.clone()),
        config.client_secret.clone().map(ClientSecret::new),
    )
}

type TokenError = RequestTokenError<HttpError, StandardErrorResponse<CoreErrorResponseType>>;

pub(crate) fn token_error(err: TokenError) -> OidcError {
    match err {
        RequestTokenError::ServerResponse(resp) => {
            let error = resp.error().as_ref().to_string();
            let described = resp
                .error_description()
                .is_some_and(|d| d.to_lowercase().contains("client credentials"));
            let hint = match error.as_str() {
                "invalid_grant" => "; the login expired or was revoked, log in again",
                // Keycloak 26 answers a confidential client that sent no secret with
                // unauthorized_client ("Invalid client or Invalid client credentials").
                "invalid_client" | "unauthorized_client" if error == "invalid_client" || described => "; check --oidc-client-id and --oidc-client-secret (Keycloak: Client authentication off for a public client)",
                "unauthorized_client" => "; enable the grant for this client at the provider (Keycloak: Standard flow)",
                "invalid_scope" => "; check --oidc-extra-scope against the client's scopes",
                _ => "",
            };
            OidcError::TokenEndpoint {
                error,
                description: resp
                    .error_description()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default(),
                hint,
            }
        }
        RequestTokenError::Request(e) => OidcError::Http(e),
        RequestTokenError::Parse(e, _) => OidcError::TokenResponse(e.to_string()),
        RequestTokenError::Other(msg) => OidcError::TokenResponse(msg),
    }
}

/// The offset between the provider's clock and this machine's, from the token response that
/// just arrived through `http` (its `Date` header) or, failing that, from its ID token's `iat`.
pub(crate) fn measure_clock(http: &HttpClient, id_token: Option<&str>) -> Offset {
    #[derive(serde::Deserialize)]
    struct Iat {
        iat: i64,
    }
    let iat = id_token
        .and_then(crate::jwt::peek_claims::<Iat>)
        .map(|c| c.iat);
    let (date, local) = match http.last_date() {
        Some((date, local)) => (Some(date), local),
        None => (None, crate::jwt::now()),
    };
    let offset = Offset::measure(date, iat, local);
    crate::debug!(
        1,
        "the provider's clock is {}s ahead of this machine's",
        offset.0
    );
    offset
}

/// Builds the token set from a verified token response; `clock` is the provider's, measured
/// at that response.
pub(crate) fn token_set(
    response: &CoreTokenResponse,
    id_token_expiry: i64,
    previous_refresh_token: Option<&str>,
    clock: Offset,
) -> TokenSet {
    let access_token = response.access_token().secret().clone();
    let access_token_expiry = crate::jwt::peek_expiry(&access_token).or_else(|| {
        response
            .expires_in()
            .map(|d| clock.now() + d.as_secs() as i64)
    });
    TokenSet {
        id_token: response
            .id_token()
            .map(|t| t.to_string())
            .unwrap_or_default(),
        id_token_expiry,
        access_token: Some(access_token),
        access_token_expiry,
        // Providers that do not rotate omit refresh_token on refresh: keep the one we had.
        refresh_token: response
            .refresh_token()
            .map(|t| t.secret().clone())
            .or_else(|| previous_refresh_token.map(str::to_string)),
        clock_offset: clock.0,
    }
}
