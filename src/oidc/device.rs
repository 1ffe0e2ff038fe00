//! The device authorization grant (RFC 8628): for SSH sessions and containers, where no browser
//! can reach a loopback listener. The user opens a URL anywhere and types a short code; we poll
//! the token endpoint as the provider says (`interval`, `slow_down`), with openidconnect.

use std::time::{Duration, Instant};

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
use crate::loopback::{Listener, DEVICE_START_PATH};
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
    if crate::browser::can_open(config) {
        open_verification_page(&details, config);
    }

    // Poll until the provider's own deadline or ours, whichever comes first.
    let timeout = details.expires_in().min(config.auth_timeout);
    let details = with_interval_capped(details);
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
        // oauth2 checks its deadline only between polls: a sleep as long as the provider asks
        // would hold the cache lock (and every other kubectl call) far past the timeout.
        let deadline = Instant::now() + timeout + DEADLINE_SLACK;
        let sleep = |wanted: Duration| {
            std::thread::sleep(wanted.min(deadline.saturating_duration_since(Instant::now())))
        };
        poll.request(http, sleep, Some(timeout))
    })
    .map_err(|e| OidcError::Device(describe(e)))?;
    let id_token = response.id_token().ok_or(OidcError::NoIdToken)?;
    // No nonce in this grant: the device code itself binds the response to this request.
    let clock = measure_clock(http, Some(&id_token.to_string()));
    let expiry = verify::verify(id_token, provider, config, http, None, clock)?;
    Ok(token_set(&response, expiry, None, clock, client_auth))
}

/// Opens the provider's verification page. With the user code already in it (one click),
/// the browser gets a one-time start URL of a loopback listener instead: every local account
/// can read a browser's command line, and one that held the code could approve the device
/// login as itself before the user, who would then work as that account. Without a listener,
/// the page without the code; the user types the code the terminal shows.
fn open_verification_page(details: &CoreDeviceAuthorizationResponse, config: &Config) {
    let plain = details.verification_uri().as_str();
    let Some(complete) = details.verification_uri_complete() else {
        crate::browser::launch(plain, config);
        return;
    };
    let mut listener = match Listener::bind(&["127.0.0.1:0".to_string()], None, "127.0.0.1") {
        Ok(listener) => listener,
        Err(e) => {
            crate::debug!(1, "no listener for the device sign-in's start page ({e})");
            crate::browser::launch(plain, config);
            return;
        }
    };
    let start = listener.start_url(
        "127.0.0.1",
        DEVICE_START_PATH,
        complete.secret().to_string(),
    );
    let deadline = Instant::now() + details.expires_in().min(config.auth_timeout);
    // The polling below blocks this thread; the process ends with the login either way.
    std::thread::spawn(move || listener.wait_for_start(deadline));
    crate::browser::launch(&start, config);
}

/// RFC 8628's default interval is 5 s. oauth2 adds 5 s to the interval at each `slow_down`
/// without checking, so a provider's `"interval": 18446744073709551615` aborted the plugin,
/// and anything longer than the login's timeout only delays the timeout's error.
pub const MAX_INTERVAL: Duration = Duration::from_secs(60);

/// Past the deadline oauth2 computes for itself, so its check after the last sleep fires.
const DEADLINE_SLACK: Duration = Duration::from_millis(50);

/// The device authorization response with its `interval` at most [`MAX_INTERVAL`].
pub fn with_interval_capped(
    details: CoreDeviceAuthorizationResponse,
) -> CoreDeviceAuthorizationResponse {
    if details.interval() <= MAX_INTERVAL {
        return details;
    }
    crate::debug!(
        1,
        "the provider asks to poll every {}s; polling every {}s",
        details.interval().as_secs(),
        MAX_INTERVAL.as_secs()
    );
    // The response's fields are private to oauth2; its serde form is the one way to set one.
    serde_json::to_value(&details)
        .ok()
        .and_then(|mut json| {
            json["interval"] = MAX_INTERVAL.as_secs().into();
            serde_json::from_value(json).ok()
        })
        .unwrap_or(details)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn details(interval: &str) -> CoreDeviceAuthorizationResponse {
        serde_json::from_str(&format!(
            r#"{{"device_code":"d","user_code":"u","verification_uri":"https://op.example/device","expires_in":600,"interval":{interval}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn a_hostile_interval_is_capped_and_an_ordinary_one_kept() {
        assert_eq!(
            with_interval_capped(details("18446744073709551615")).interval(),
            MAX_INTERVAL
        );
        assert_eq!(
            with_interval_capped(details("5")).interval(),
            Duration::from_secs(5)
        );
    }
}
