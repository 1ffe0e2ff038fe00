//! The browser login: authorization code flow with PKCE, state and nonce (RFC 6749, RFC 7636,
//! RFC 8252 loopback redirect, RFC 9207 `iss` check), URLs built by openidconnect.

use std::time::Instant;

use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{
    AuthorizationCode, CsrfToken, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
};

use super::http::HttpClient;
use super::provider::Provider;
use super::{
    client, configuration, measure_clock, require_token_endpoint, send_authenticated, token_error,
    token_set, verify, OidcError,
};
use crate::config::{Config, Pkce};
use crate::loopback::{Callback, Landing, Listener, LOGIN_START_PATH};
use crate::tokens::TokenSet;

pub fn login(
    provider: &mut Provider,
    config: &Config,
    http: &HttpClient,
) -> Result<TokenSet, OidcError> {
    // The name the browser is sent to: a `localhost` one makes the listener hold both
    // loopback addresses, or skip a port whose other half someone else holds.
    let hostname = match &config.redirect_url {
        Some(url) => url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default(),
        None => config.redirect_hostname.clone(),
    };
    let mut listener = Listener::bind(
        &config.listen_addresses,
        config.local_server_tls.as_ref(),
        &hostname,
    )?;
    let redirect_uri = match &config.redirect_url {
        Some(url) => url.clone(),
        // No trailing slash: providers compare redirect URIs as strings, and this is the form
        // kubelogin sends and Keycloak clients register.
        None => listener.url(&config.redirect_hostname),
    };
    let request = AuthRequest::new(provider, config, redirect_uri)?;

    // The browser's command line is readable by every local account: it gets a one-time start
    // URL of the listener, which sends it on to the authorization request, so no state, nonce
    // or PKCE challenge is on it. The terminal, the user's own, shows the authorization URL
    // itself: it works in any browser, and opening it as well as the browser does not spend
    // the key twice.
    let start = listener.start_url(&hostname, LOGIN_START_PATH, request.url.to_string());
    crate::browser::open(request.url.as_str(), &start, config);
    let deadline = Instant::now() + config.auth_timeout;
    let state = request.state.secret().clone();
    let path = url::Url::parse(&request.redirect_uri)
        .map(|u| u.path().to_string())
        .unwrap_or_else(|_| "/".into());
    let issuer = provider.metadata.issuer().as_str().to_string();
    let expected = Callback {
        state: &state,
        issuer: &issuer,
        issuer_required: issuer_required(provider),
        path,
        after_url: config.open_url_after_authentication.as_deref(),
    };
    // The code is redeemed while the browser waits, so its page can say who signed in.
    let mut request = Some(request);
    listener.wait_for_login(&expected, deadline, config.auth_timeout, |code| {
        let Some(request) = request.take() else {
            return (
                Err(OidcError::Grant("a second code for one login".into())),
                Landing::Failed,
            );
        };
        let result = request.exchange(provider, config, http, code.to_string());
        let landing = match &result {
            Ok(tokens) => Landing::SignedIn(signed_in_as(tokens, config.account.as_deref())),
            Err(_) => Landing::Failed,
        };
        (result, landing)
    })?
}

/// "Signed in as alice@example.com (account admin)": the identity the verified ID token
/// names, for the landing page and the terminal. Several accounts and a provider session
/// shared by the browser make "who" worth saying.
pub fn signed_in_as(tokens: &TokenSet, account: Option<&str>) -> String {
    let who = crate::claims::Identity::from_id_token(&tokens.id_token)
        .map(crate::claims::Identity::who)
        .filter(|who| !who.is_empty());
    match (who, account) {
        (Some(who), Some(account)) => format!("Signed in as {who} (account {account})"),
        (Some(who), None) => format!("Signed in as {who}"),
        (None, Some(account)) => format!("Signed in (account {account})"),
        (None, None) => "Signed in".to_string(),
    }
}

/// Whether the provider promises RFC 9207's `iss` on every authorization response.
pub fn issuer_required(provider: &Provider) -> bool {
    provider
        .metadata
        .additional_metadata()
        .authorization_response_iss_parameter_supported
        == Some(true)
}

/// One authorization request: its URL and the secrets needed to redeem its code.
pub struct AuthRequest {
    pub url: url::Url,
    pub state: CsrfToken,
    pub redirect_uri: String,
    nonce: Nonce,
    verifier: Option<PkceCodeVerifier>,
}

impl AuthRequest {
    /// Builds the authorization URL for `redirect_uri`, with state, nonce, PKCE (unless
    /// disabled), the extra scopes and the extra parameters.
    pub fn new(
        provider: &Provider,
        config: &Config,
        redirect_uri: String,
    ) -> Result<Self, OidcError> {
        let redirect = RedirectUrl::new(redirect_uri.clone()).map_err(|e| {
            OidcError::TokenResponse(format!(
                "--oidc-redirect-url {redirect_uri:?} is not a URL: {e}"
            ))
        })?;
        let client = client(provider, config).set_redirect_uri(redirect);
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in &config.extra_scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        // As int128/kubelogin does on every authorization request (golang.org/x/oauth2's
        // AccessTypeOffline; seen by tests/suite/peers.rs): Google issues a refresh token only with
        // access_type=offline, and other providers ignore a parameter they do not know (OpenID
        // Connect Core 3.1.2.1). A kubeconfig's own access_type wins.
        if !config
            .auth_extra_params
            .iter()
            .any(|(k, _)| k == "access_type")
        {
            request = request.add_extra_param("access_type", "offline");
        }
        for (name, value) in &config.auth_extra_params {
            request = request.add_extra_param(name.clone(), value.clone());
        }
        // A named account is a deliberate identity: tell the provider whom to expect, and
        // make it ask (prompt=login) rather than silently reuse whoever its session cookie
        // belongs to, which would give two accounts the same user. The flags may override both.
        if let Some(account) = &config.account {
            let given = |name: &str| config.auth_extra_params.iter().any(|(k, _)| k == name);
            if !given("login_hint") {
                request = request.add_extra_param("login_hint", account.clone());
            }
            if !given("prompt") {
                request = request.add_extra_param("prompt", "login");
            }
        }
        let verifier = if use_pkce(provider, config) {
            let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
            request = request.set_pkce_challenge(challenge);
            Some(verifier)
        } else {
            None
        };
        let (url, state, nonce) = request.url();
        Ok(AuthRequest {
            url,
            state,
            redirect_uri,
            nonce,
            verifier,
        })
    }

    /// Redeems `code` at the token endpoint and verifies the ID token against this request's
    /// nonce.
    pub fn exchange(
        self,
        provider: &mut Provider,
        config: &Config,
        http: &HttpClient,
        code: String,
    ) -> Result<TokenSet, OidcError> {
        crate::debug!(1, "exchanging the authorization code");
        let redirect = RedirectUrl::new(self.redirect_uri)
            .map_err(|e| OidcError::TokenResponse(format!("the redirect URL is not a URL: {e}")))?;
        require_token_endpoint(provider)?;
        let (response, client_auth) = send_authenticated(provider, config, http, None, |client| {
            let client = client.set_redirect_uri(redirect.clone());
            let mut exchange = client
                .exchange_code(AuthorizationCode::new(code.clone()))
                .map_err(configuration)?;
            if let Some(verifier) = &self.verifier {
                // The verifier is spent by each attempt; a refused client authentication
                // leaves the code unredeemed, so the retry sends the same pair.
                exchange =
                    exchange.set_pkce_verifier(PkceCodeVerifier::new(verifier.secret().clone()));
            }
            exchange.request(http)
        })
        .map_err(token_error)?;
        let id_token = response.id_token().ok_or(OidcError::NoIdToken)?;
        let clock = measure_clock(http, Some(&id_token.to_string()));
        let expiry = verify::verify(id_token, provider, config, http, Some(&self.nonce), clock)?;
        Ok(token_set(&response, expiry, None, clock, client_auth))
    }
}

fn use_pkce(provider: &Provider, config: &Config) -> bool {
    match config.pkce {
        Pkce::S256 => true,
        Pkce::Disabled => false,
        // RFC 9700 wants PKCE everywhere; skip it only when the provider says it cannot.
        Pkce::Auto => provider
            .metadata
            .additional_metadata()
            .code_challenge_methods_supported
            .as_ref()
            .is_none_or(|methods| methods.iter().any(|m| m == "S256")),
    }
}
