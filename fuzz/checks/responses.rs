//! What the provider's endpoints answer: token responses (every grant and the refresh) and
//! their errors, the device authorization response, the token exchange's answer. Each goes
//! through the crates' own request and parsing code (openidconnect, oauth2) with an HTTP
//! client that answers with the input, then through the plugin's handling of the result.

use std::sync::OnceLock;
use std::time::Duration;

use kubectl_oidc_login::cli::{self, Command};
use kubectl_oidc_login::clock::Offset;
use kubectl_oidc_login::config::Config;
use kubectl_oidc_login::oidc::device::{with_interval_capped, MAX_INTERVAL};
use kubectl_oidc_login::oidc::exchange::read_answer;
use kubectl_oidc_login::oidc::http::HttpError;
use kubectl_oidc_login::oidc::{token_error, token_set, OidcError};
use kubectl_oidc_login::times::MAX_CLOCK_OFFSET;
use kubectl_oidc_login::{jwt, settings};
use openidconnect::core::{CoreClient, CoreDeviceAuthorizationResponse};
use openidconnect::http::{header, Response, StatusCode};
use openidconnect::{
    AuthUrl, ClientId, DeviceAuthorizationUrl, HttpRequest, HttpResponse, IssuerUrl, JsonWebKeySet,
    OAuth2TokenResponse, RefreshToken, TokenUrl,
};

const STATUSES: [u16; 6] = [200, 400, 401, 403, 500, 302];

/// The input's first byte picks the HTTP status, the rest is the JSON body.
fn answer(data: &[u8]) -> Option<(StatusCode, Vec<u8>)> {
    let (pick, body) = data.split_first()?;
    let status = StatusCode::from_u16(STATUSES[*pick as usize % STATUSES.len()]).unwrap();
    Some((status, body.to_vec()))
}

fn respond(
    status: StatusCode,
    body: Vec<u8>,
) -> impl Fn(HttpRequest) -> Result<HttpResponse, HttpError> {
    move |_request| {
        Ok(Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .unwrap())
    }
}

fn client() -> CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
> {
    CoreClient::new(
        ClientId::new("kubectl".into()),
        IssuerUrl::new("https://op.example".into()).unwrap(),
        JsonWebKeySet::new(Vec::new()),
    )
    .set_auth_uri(AuthUrl::new("https://op.example/auth".into()).unwrap())
    .set_token_uri(TokenUrl::new("https://op.example/token".into()).unwrap())
}

/// A token endpoint's answer to a refresh (the same parsing as every grant's): a success
/// becomes a token set with sane times that keeps the old refresh token when no new one
/// came; a failure becomes one printable message.
pub fn token(data: &[u8]) {
    let Some((status, body)) = answer(data) else {
        return;
    };
    let old = RefreshToken::new("the-previous-refresh-token".into());
    let result = client()
        .exchange_refresh_token(&old)
        .request(&respond(status, body));
    let response = match result {
        Ok(response) => response,
        Err(err) => {
            super::assert_printable(&token_error(err).to_string());
            return;
        }
    };
    for offset in [0, MAX_CLOCK_OFFSET, -MAX_CLOCK_OFFSET] {
        let id_token_expiry = response
            .extra_fields()
            .id_token()
            .and_then(|t| jwt::peek_expiry(&t.to_string()))
            .unwrap_or(0);
        let tokens = token_set(
            &response,
            id_token_expiry,
            Some(old.secret()),
            Offset(offset),
            None,
        );
        assert_eq!(tokens.insane_times(), None, "{tokens:?}");
        assert_eq!(
            tokens.access_token.as_deref(),
            Some(response.access_token().secret().as_str())
        );
        let expected_refresh = response.refresh_token().unwrap_or(&old).secret();
        assert_eq!(
            tokens.refresh_token.as_deref(),
            Some(expected_refresh.as_str())
        );
        // What a store writes of it reads back the same.
        let json = serde_json::to_string(&tokens).unwrap();
        let mut again: kubectl_oidc_login::tokens::TokenSet = serde_json::from_str(&json).unwrap();
        again.refresh_token = tokens.refresh_token.clone();
        assert_eq!(again, tokens);
    }
}

/// A device authorization response: the polling interval is capped, nothing else changes.
pub fn device(data: &[u8]) {
    let Some((status, body)) = answer(data) else {
        return;
    };
    let client = client().set_device_authorization_url(
        DeviceAuthorizationUrl::new("https://op.example/device".into()).unwrap(),
    );
    let result: Result<CoreDeviceAuthorizationResponse, _> = client
        .exchange_device_code()
        .request(&respond(status, body));
    let details = match result {
        Ok(details) => details,
        Err(err) => {
            super::assert_printable(&token_error(err).to_string());
            return;
        }
    };
    let asked = details.interval();
    let mut before = serde_json::to_value(&details).unwrap();
    let capped = with_interval_capped(details);
    assert!(capped.interval() <= MAX_INTERVAL, "{:?}", capped.interval());
    assert_eq!(capped.interval(), asked.min(MAX_INTERVAL));
    // oauth2 adds 5 s at each slow_down: far from overflowing now.
    let _ = capped.interval() + Duration::from_secs(5 * 10_000);
    let mut after = serde_json::to_value(&capped).unwrap();
    before["interval"] = 0.into();
    after["interval"] = 0.into();
    assert_eq!(before, after);
}

/// The plugin's settings for the exchange target: a login client and an exchange scope.
fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let cli = cli::parse(
            [
                "kubectl-oidc_login",
                "get-token",
                "--oidc-issuer-url=https://op.example",
                "--oidc-client-id=kubectl",
                "--oidc-client-secret=s3cret",
                "--token-exchange-audience=cluster-a",
                "--token-exchange-scope=aud-a",
            ]
            .map(Into::into)
            .to_vec(),
        )
        .expect("the flags parse");
        let Command::GetToken(args) = cli.command else {
            unreachable!("get-token")
        };
        settings::config(&args).expect("a config")
    })
}

/// The token endpoint's answer to an exchange: a token only from a 200 naming it as the
/// access token asked for; a refusal names the audience and one fix.
pub fn exchange(data: &[u8]) {
    let Some((status, body)) = answer(data) else {
        return;
    };
    match read_answer(status, &body, "cluster-a", config()) {
        Ok(token) => {
            assert_eq!(status, StatusCode::OK);
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(json["access_token"].as_str(), Some(token.as_str()));
            if let Some(issued) = json.get("issued_token_type").filter(|v| !v.is_null()) {
                assert_eq!(issued, "urn:ietf:params:oauth:token-type:access_token");
            }
        }
        Err(err) => {
            if let OidcError::Exchange(refused) = &err {
                assert_eq!(refused.audience, "cluster-a");
                assert!(!refused.fix.is_empty());
            }
            let message = err.to_string();
            super::assert_printable(&message);
            assert!(!message.contains("s3cret"), "{message}");
        }
    }
}
