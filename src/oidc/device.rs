//! The device authorization grant (RFC 8628): for SSH sessions and containers, where no browser
//! can reach a loopback listener. The user opens a URL anywhere and types a short code; we poll
//! the token endpoint as the provider says (`interval`, `slow_down`), with openidconnect.

use openidconnect::core::CoreDeviceAuthorizationResponse;
use openidconnect::{
    DeviceAuthorizationUrl, DeviceCodeErrorResponse, DeviceCodeErrorResponseType,
    RequestTokenError, Scope, TokenResponse,
};

use super::http::HttpClient;
use super::provider::Provider;
use super::{
    configuration, error_with_description, measure_clock, require_token_endpoint,
    send_authenticated, token_error, token_set, verify, OidcError,
};
use crate::config::Config;
use crate::tokens::TokenSet;

/// Whether the provider offers the grant (announces a device authorization endpoint).
pub fn supported(provider: &Provider) -> bool {
    provider
        .metadata
        .additional_metadata()
        .device_authorization_endpoint
        .is_some()
}

pub fn login(
    provider: &mut Provider,
    config: &Config,
    http: &HttpClient,
) -> Result<TokenSet, OidcError> {
    let endpoint = provider
        .metadata
        .additional_metadata()
        .device_authorization_endpoint
        .clone()
        .ok_or_else(|| OidcError::Device(
            "the provider announces no device_authorization_endpoint; enable the grant for the client (Keycloak: Clients → CLIENT → OAuth 2.0 Device Authorization Grant) or use --grant-type=authcode".into(),
        ))?;
    let endpoint = DeviceAuthorizationUrl::new(endpoint)
        .map_err(|e| OidcError::Device(format!("bad device_authorization_endpoint: {e}")))?;
    // Keycloak applies the client's PKCE setting to this grant too: a client with S256
    // enforced refuses a device request without a challenge ("Missing parameter:
    // code_challenge_method"). Providers that do not know PKCE here ignore the parameters;
    // --oidc-pkce-method=no leaves them out, as for the browser login.
    let pkce = (config.pkce != crate::config::Pkce::Disabled)
        .then(openidconnect::PkceCodeChallenge::new_random_sha256);
    let (details, _): (CoreDeviceAuthorizationResponse, _) =
        send_authenticated(provider, config, http, None, |client| {
            let client = client.set_device_authorization_url(endpoint.clone());
            let mut request = client.exchange_device_code();
            for scope in &config.extra_scopes {
                request = request.add_scope(Scope::new(scope.clone()));
            }
            for (name, value) in &config.auth_extra_params {
                request = request.add_extra_param(name.clone(), value.clone());
            }
            if let Some((challenge, _)) = &pkce {
                request = request
                    .add_extra_param("code_challenge", challenge.as_str().to_string())
                    .add_extra_param(
                        "code_challenge_method",
                        challenge.method().as_str().to_string(),
                    );
            }
            request.request(http)
        })
        .map_err(|e| match token_error(e) {
            OidcError::TokenEndpoint {
                error, description, ..
            } => OidcError::Device(format!(
                "the provider refused to start a device login: {}; enable the grant for this client (Keycloak: Clients → CLIENT → OAuth 2.0 Device Authorization Grant)",
                error_with_description(&error, &description)
            )),
            other => other,
        })?;

    eprintln!(
        "To sign in, open {} and enter the code {}",
        crate::log::printable(details.verification_uri().as_str()),
        crate::log::printable(details.user_code().secret())
    );
    if let Some(complete) = details.verification_uri_complete() {
        // The code is already in this URL: one click where a browser can open.
        if crate::browser::can_open(config) {
            crate::browser::launch(complete.secret(), config);
        }
    }

    // Poll until the provider's own deadline or ours, whichever comes first.
    let timeout = details.expires_in().min(config.auth_timeout);
    crate::debug!(
        1,
        "polling the token endpoint every {}s for up to {}s",
        details.interval().as_secs(),
        timeout.as_secs()
    );
    require_token_endpoint(provider)?;
    // The device authorization request settled the client authentication (kept by `http`).
    let (response, client_auth) = send_authenticated(provider, config, http, None, |client| {
        let client = client.set_device_authorization_url(endpoint.clone());
        let mut poll = client
            .exchange_device_access_token(&details)
            .map_err(configuration)?;
        if let Some((_, verifier)) = &pkce {
            poll = poll.add_extra_param("code_verifier", verifier.secret().to_string());
        }
        poll.request(http, std::thread::sleep, Some(timeout))
    })
    .map_err(|e| OidcError::Device(describe(e)))?;
    let id_token = response.id_token().ok_or(OidcError::NoIdToken)?;
    // No nonce in this grant: the device code itself binds the response to this request.
    let clock = measure_clock(http, Some(&id_token.to_string()));
    let expiry = verify::verify(id_token, provider, config, http, None, clock)?;
    Ok(token_set(&response, expiry, None, clock, client_auth))
}

type DeviceError = RequestTokenError<super::http::HttpError, DeviceCodeErrorResponse>;

fn describe(err: DeviceError) -> String {
    match err {
        RequestTokenError::ServerResponse(resp) => {
            let text = match resp.error() {
                DeviceCodeErrorResponseType::AccessDenied => {
                    "the sign-in was refused at the provider (access_denied); run the command again to retry".to_string()
                }
                // Also what openidconnect reports when our own timeout passes while polling.
                DeviceCodeErrorResponseType::ExpiredToken => {
                    "no sign-in before the code expired (expired_token, or --authentication-timeout-sec passed); run the command again for a new code".to_string()
                }
                other => {
                    let hint = match other.as_ref() {
                        "unauthorized_client" | "invalid_client" => "; enable the device grant for this client (Keycloak: Clients → CLIENT → OAuth 2.0 Device Authorization Grant)",
                        _ => "",
                    };
                    format!(
                        "the provider refused: {}{}{hint}",
                        other.as_ref(),
                        resp.error_description()
                            .map(|d| format!(" ({d})"))
                            .unwrap_or_default()
                    )
                }
            };
            text
        }
        RequestTokenError::Request(e) => e.to_string(),
        RequestTokenError::Parse(e, _) => format!("the provider's answer is not valid: {e}"),
        RequestTokenError::Other(msg) => msg,
    }
}
