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
pub mod pairwise;
pub mod password;
pub mod provider;
pub mod refresh;
pub mod revoke;
pub mod verify;

use openidconnect::core::{
    CoreClient, CoreClientAuthMethod, CoreErrorResponseType, CoreTokenResponse,
};
use openidconnect::{
    AuthType, ClientId, ClientSecret, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    ErrorResponseType, OAuth2TokenResponse, RequestTokenError, StandardErrorResponse,
    TokenResponse,
};
use thiserror::Error;

use crate::clock::Offset;
use crate::config::Config;
use crate::tokens::{ClientAuth, TokenSet};
use http::{HttpClient, HttpError};
use provider::Provider;

#[derive(Debug, Error)]
pub enum OidcError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("discovery of {0} failed: {1}; check --oidc-issuer-url (Keycloak: https://HOST/realms/REALM, exactly as the ID token's iss, no trailing slash)")]
    Discovery(String, String),
    #[error("the provider refused the token request: {error}{}{hint}", parenthesised(.description))]
    TokenEndpoint {
        error: String,
        /// The provider's `error_description`, as it sent it (empty when none).
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
    #[error("the ID token is not valid at the provider's time: {0}; if the provider's clock is wrong, its administrators must fix it (NTP), and if this machine's is, fix it with `sudo timedatectl set-ntp true` (WSL: `sudo hwclock -s`){see}", see = crate::troubleshooting::see("the-clock-is-off"))]
    Clock(String),
    /// An endpoint that would receive a code, a token or a secret without TLS.
    #[error("refusing the provider's {what} {url}: it is not https, so codes, tokens and secrets sent there could be read on the network; {fix}")]
    InsecureEndpoint {
        what: &'static str,
        url: String,
        fix: &'static str,
    },
    /// A refresh answered with an ID token (or, for --oidc-use-access-token, an access token)
    /// for another user or issuer than the login's.
    /// `before` and `after` name each user as the check compared them (`sub `…``, or `oid`
    /// and tenant at a provider with pairwise subjects); `advice` is what to do about it.
    #[error("the provider's refresh answer names another user ({after}) than the login it renews ({before}) in its {what}; the answer is refused and the cached login removed: sign in again, and {advice}")]
    IdentityChanged {
        before: String,
        after: String,
        what: &'static str,
        advice: &'static str,
    },
    /// A refresh answered without an ID token (OpenID Connect Core 12.2 allows it), also when
    /// asked for `openid` in its scope, while kubectl is to get the ID token.
    #[error("{issuer} answered the refresh without an ID token (OpenID Connect Core 12.2 allows that), also when asked for `openid` in the refresh's scope, so the login cannot be renewed without a browser; signing in again. To stop this at every expiry: add --oidc-use-access-token to this kubeconfig's get-token flags (kubectl then gets the refreshed access token, which the API server must accept), or have the provider return id_token on refresh{see}", see = crate::troubleshooting::see("the-refresh-brings-no-id-token"))]
    NoIdTokenOnRefresh { issuer: String },
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

/// " (text)", or nothing for an empty text: an OAuth error's description after its code.
fn parenthesised(description: &str) -> String {
    if description.is_empty() {
        String::new()
    } else {
        format!(" ({description})")
    }
}

/// An OAuth error code with its description, "invalid_grant: User disabled", for messages
/// that put it in parentheses of their own.
pub fn error_with_description(error: &str, description: &str) -> String {
    if description.is_empty() {
        error.to_string()
    } else {
        format!("{error}: {description}")
    }
}

pub type TokenError = RequestTokenError<HttpError, StandardErrorResponse<CoreErrorResponseType>>;

/// Sends a request in which the client authenticates (every grant's token request, the
/// refresh, the device authorization request, the revocation): `send` gets a client set to one
/// style. A public client has no secret and no style. A confidential one uses, in order, the
/// style `known` from the cached login, the one that worked earlier in this process, the only
/// one the provider's discovery lists; else HTTP Basic first and, when the provider refuses
/// the client (HTTP 401 or `invalid_client`), the secret in the body once more, as Go's oauth2
/// package does for kubelogin. A remembered style that is refused (the client was changed at
/// the provider) gets the other one once. Returns the style that worked, for the login to keep.
pub(crate) fn send_authenticated<R, T>(
    provider: &Provider,
    config: &Config,
    http: &HttpClient,
    known: Option<ClientAuth>,
    mut send: impl FnMut(Client) -> Result<R, RequestTokenError<HttpError, StandardErrorResponse<T>>>,
) -> Result<(R, Option<ClientAuth>), RequestTokenError<HttpError, StandardErrorResponse<T>>>
where
    T: ErrorResponseType + AsRef<str> + std::fmt::Display,
{
    if config.client_secret.is_none() {
        return send(client(provider, config)).map(|r| (r, None));
    }
    let remembered = known.or_else(|| http.client_auth());
    let announced = only_post_announced(provider);
    let first = remembered
        .or(announced)
        .unwrap_or(ClientAuth::ClientSecretBasic);
    // The discovery document's word is final; a probe or a memory may be retried.
    let may_retry = remembered.is_some() || announced.is_none();
    let result = match send(styled_client(provider, config, first)) {
        Ok(r) => Ok((r, first)),
        Err(e) if may_retry && client_refused(&e, http) => {
            let second = match first {
                ClientAuth::ClientSecretBasic => ClientAuth::ClientSecretPost,
                ClientAuth::ClientSecretPost => ClientAuth::ClientSecretBasic,
            };
            crate::debug!(
                1,
                "the provider refused the client authentication {first:?}; trying {second:?}"
            );
            send(styled_client(provider, config, second)).map(|r| (r, second))
        }
        Err(e) => Err(e),
    };
    let (r, style) = result?;
    http.set_client_auth(style);
    Ok((r, Some(style)))
}

/// Refuses early when the metadata names no token endpoint, so the requests below can treat
/// the crate's "no token URL" as impossible.
pub(crate) fn require_token_endpoint(provider: &Provider) -> Result<(), OidcError> {
    match provider.metadata.token_endpoint() {
        Some(_) => Ok(()),
        None => Err(OidcError::NoTokenEndpoint),
    }
}

/// The crate's configuration errors (no token URL, an http revocation URL) as a request
/// error, inside [`send_authenticated`]'s closures.
pub(crate) fn configuration<E: openidconnect::ErrorResponse>(
    err: openidconnect::ConfigurationError,
) -> RequestTokenError<HttpError, E> {
    RequestTokenError::Other(err.to_string())
}

fn styled_client(provider: &Provider, config: &Config, auth: ClientAuth) -> Client {
    client(provider, config).set_auth_type(match auth {
        ClientAuth::ClientSecretBasic => AuthType::BasicAuth,
        ClientAuth::ClientSecretPost => AuthType::RequestBody,
    })
}

/// `client_secret_post` when the discovery document lists it and not `client_secret_basic`.
fn only_post_announced(provider: &Provider) -> Option<ClientAuth> {
    let methods = provider.metadata.token_endpoint_auth_methods_supported()?;
    let has = |m: &CoreClientAuthMethod| methods.contains(m);
    (has(&CoreClientAuthMethod::ClientSecretPost) && !has(&CoreClientAuthMethod::ClientSecretBasic))
        .then_some(ClientAuth::ClientSecretPost)
}

/// Whether the provider refused the client itself (so another authentication style may
/// work), not the grant.
fn client_refused<T: ErrorResponseType + AsRef<str> + std::fmt::Display>(
    err: &RequestTokenError<HttpError, StandardErrorResponse<T>>,
    http: &HttpClient,
) -> bool {
    match err {
        RequestTokenError::ServerResponse(resp) => {
            http.last_status() == Some(401) || resp.error().as_ref() == "invalid_client"
        }
        RequestTokenError::Parse(..) | RequestTokenError::Other(_) => {
            http.last_status() == Some(401)
        }
        RequestTokenError::Request(_) => false,
    }
}

pub fn token_error(err: TokenError) -> OidcError {
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
                description: resp.error_description().cloned().unwrap_or_default(),
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
/// at that response, and `client_auth` the style the provider accepted for it.
pub fn token_set(
    response: &CoreTokenResponse,
    id_token_expiry: i64,
    previous_refresh_token: Option<&str>,
    clock: Offset,
    client_auth: Option<ClientAuth>,
) -> TokenSet {
    let access_token = response.access_token().secret().clone();
    let access_token_expiry = crate::jwt::peek_expiry(&access_token).or_else(|| {
        response.expires_in().map(|d| {
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            crate::times::sane_time(clock.now().saturating_add(secs))
        })
    });
    TokenSet {
        id_token: response
            .id_token()
            .map(|t| t.to_string())
            .unwrap_or_default(),
        id_token_expiry: crate::times::sane_time(id_token_expiry),
        access_token: Some(access_token),
        access_token_expiry,
        // Providers that do not rotate omit refresh_token on refresh: keep the one we had.
        refresh_token: response
            .refresh_token()
            .map(|t| t.secret().clone())
            .or_else(|| previous_refresh_token.map(str::to_string)),
        clock_offset: clock.0,
        client_auth,
    }
}
