//! RFC 8693 token exchange: the login client's access token in, a token for one cluster's
//! audience out, in one request to the token endpoint. The oauth2 crate models no
//! token-exchange grant, so the form is posted through the same [`HttpClient`] as every other
//! request, and the answer is read with the crate's own types (`StandardTokenResponse`,
//! `StandardErrorResponse`) and verified with its ID token verifier (signature by the
//! provider's JWKS, `iss`, `aud`, `exp`, `iat`): an exchanged access token from Keycloak is a
//! JWT with those claims.

use std::str::FromStr;

use base64::Engine;
use openidconnect::core::{CoreErrorResponseType, CoreIdToken, CoreIdTokenVerifier, CoreTokenType};
use openidconnect::http::{header, Method, Request, StatusCode};
use openidconnect::{
    ClaimsVerificationError, ClientId, ExtraTokenFields, Nonce, OAuth2TokenResponse,
    SignatureVerificationError, StandardErrorResponse, StandardTokenResponse, SyncHttpClient,
};
use serde::{Deserialize, Serialize};

use super::http::HttpClient;
use super::provider::Provider;
use super::{measure_clock, verify, OidcError};
use crate::config::Config;
use crate::tokens::{ClientAuth, TokenSet};

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// RFC 8693 §2.2.1: the type of the token issued.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct ExchangeFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    issued_token_type: Option<String>,
}

impl ExtraTokenFields for ExchangeFields {}

type ExchangeResponse = StandardTokenResponse<ExchangeFields, CoreTokenType>;
type ErrorResponse = StandardErrorResponse<CoreErrorResponseType>;

/// Why the provider refused an exchange, sorted by what fixes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The subject token no longer stands for a live session (Keycloak: `invalid_request`
    /// "Invalid token" after a logout, an idle or disabled session): a new login fixes it.
    SessionEnded,
    /// A setting at the provider: no login can fix it, only its administrators.
    Setting,
}

/// A refused exchange: what the provider said and what fixes it.
#[derive(Debug, thiserror::Error)]
#[error("{issuer} refused to exchange the login of client {client} for a token for audience {audience} ({reason}); fix: {fix}")]
pub struct Refused {
    pub issuer: String,
    pub client: String,
    pub audience: String,
    pub refusal: Refusal,
    pub reason: String,
    pub fix: String,
}

/// Whether the provider's metadata says it offers no token exchange. A provider that
/// publishes no grant list may still offer it; its token endpoint then answers.
pub fn not_offered(provider: &Provider) -> bool {
    provider
        .metadata
        .grant_types_supported()
        .is_some_and(|grants| !grants.iter().any(|g| g.as_ref() == GRANT_TYPE))
}

/// The error for a provider whose metadata lists no token exchange.
pub fn not_offered_error(config: &Config) -> OidcError {
    OidcError::Exchange(Box::new(Refused {
        issuer: config.issuer_url.clone(),
        client: config.client_id.clone(),
        audience: config.token_exchange_audience.clone().unwrap_or_default(),
        refusal: Refusal::Setting,
        reason: format!("its discovery document lists no {GRANT_TYPE} grant"),
        fix: "the provider must offer RFC 8693 token exchange (Keycloak 26.2 or later has standard token exchange); until then, give this cluster's kubeconfig user its own --oidc-client-id instead of --token-exchange-audience".into(),
    }))
}

/// Exchanges `access_token` (the login client's, still valid) for a token whose audience is
/// `audience`, verifies it, and returns it as the credential of a [`TokenSet`] (access token
/// only: no ID token, no refresh token; the next one is exchanged again).
pub fn exchange(
    access_token: &str,
    client_auth: Option<ClientAuth>,
    audience: &str,
    provider: &mut Provider,
    config: &Config,
    http: &HttpClient,
) -> Result<TokenSet, OidcError> {
    crate::debug!(
        1,
        "exchanging the login's access token for audience {audience}"
    );
    let token_url = provider
        .metadata
        .token_endpoint()
        .ok_or(OidcError::NoTokenEndpoint)?
        .url()
        .clone();
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", GRANT_TYPE)
        .append_pair("subject_token", access_token)
        .append_pair("subject_token_type", ACCESS_TOKEN_TYPE)
        .append_pair("requested_token_type", ACCESS_TOKEN_TYPE)
        .append_pair("audience", audience);
    // RFC 8693 §2.1: Keycloak grants an audience whose mapper sits in an optional client
    // scope only when that scope is asked for.
    let scope = config.token_exchange_scope.as_deref();
    if let Some(scope) = scope {
        form.append_pair("scope", scope);
    }
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(token_url.as_str())
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json");
    // Client authentication as the crate does it for the other grants: HTTP Basic with both
    // parts form-encoded (RFC 6749 §2.3.1), the secret in the body for a client the login
    // found to accept only client_secret_post (see `send_authenticated`), or only client_id in
    // the body for a public client.
    match &config.client_secret {
        Some(secret) if client_auth == Some(ClientAuth::ClientSecretPost) => {
            form.append_pair("client_id", &config.client_id)
                .append_pair("client_secret", secret);
        }
        Some(secret) => {
            let encode =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", encode(&config.client_id), encode(secret));
            let basic = base64::engine::general_purpose::STANDARD.encode(pair);
            request = request.header(header::AUTHORIZATION, format!("Basic {basic}"));
        }
        None => {
            form.append_pair("client_id", &config.client_id);
        }
    }
    let request = request
        .body(form.finish().into_bytes())
        .map_err(|e| OidcError::TokenResponse(e.to_string()))?;
    let response = http.call(request)?;
    let token = read_answer(response.status(), response.body(), audience, config)?;
    let clock = measure_clock(http, None);
    let expiry = verify_exchanged(&token, audience, provider, config, http, clock)?;
    Ok(TokenSet {
        id_token: String::new(),
        id_token_expiry: 0,
        access_token: Some(token),
        access_token_expiry: Some(expiry),
        refresh_token: None,
        clock_offset: clock.0,
        // Never refreshed: the next one is exchanged again with the login's style.
        client_auth: None,
    })
}

/// The exchanged token in the token endpoint's answer (not verified yet), or why there is none.
pub fn read_answer(
    status: StatusCode,
    body: &[u8],
    audience: &str,
    config: &Config,
) -> Result<String, OidcError> {
    if status != StatusCode::OK {
        return Err(refused(status, body, audience, config));
    }
    let parsed: ExchangeResponse = serde_json::from_slice(body)
        .map_err(|e| OidcError::TokenResponse(format!("token exchange response: {e}")))?;
    if let Some(issued) = &parsed.extra_fields().issued_token_type {
        if issued != ACCESS_TOKEN_TYPE {
            return Err(OidcError::TokenResponse(format!(
                "the provider issued a {issued} for audience {audience}, not the access token asked for"
            )));
        }
    }
    Ok(parsed.access_token().secret().clone())
}

/// The error for a refused exchange: what the provider said and what fixes it.
fn refused(status: StatusCode, body: &[u8], audience: &str, config: &Config) -> OidcError {
    let Ok(answer) = serde_json::from_slice::<ErrorResponse>(body) else {
        return OidcError::TokenResponse(format!(
            "the token endpoint answered the token exchange with HTTP {} and no OAuth error",
            status.as_u16()
        ));
    };
    let error = answer.error().as_ref().to_string();
    let description = answer.error_description().cloned().unwrap_or_default();
    let (refusal, fix) = classify(
        &error,
        &description,
        &config.client_id,
        audience,
        config.token_exchange_scope.as_deref(),
    );
    OidcError::Exchange(Box::new(Refused {
        issuer: config.issuer_url.clone(),
        client: config.client_id.clone(),
        audience: audience.to_string(),
        refusal,
        reason: if description.is_empty() {
            error
        } else {
            format!("{error}: {description}")
        },
        fix,
    }))
}

/// Sorts a refusal (by Keycloak's words, which are the only ones known) into "log in again"
/// and "an administrator must change a setting", naming the setting (and, where the
/// kubeconfig can fix it, the flag or cluster extension). `scope` is the exchange's scope.
pub fn classify(
    error: &str,
    description: &str,
    client: &str,
    audience: &str,
    scope: Option<&str>,
) -> (Refusal, String) {
    let d = description.to_lowercase();
    let setting = |fix: String| (Refusal::Setting, fix);
    if d.contains("public client") {
        return setting(format!("Keycloak exchanges tokens only for confidential clients: the administrator turns on Client authentication for {client} (Clients → {client} → Settings → Capability config → Client authentication On), and its credential goes into the kubeconfig with --oidc-client-secret"));
    }
    if d.contains("standard token exchange is not enabled")
        || d.contains("not enabled for the requested client")
    {
        return setting(format!("the administrator turns on Standard Token Exchange for {client} (Clients → {client} → Settings → Capability config → Standard Token Exchange On; attribute standard.token.exchange.enabled)"));
    }
    let mapper = format!("Configure a new mapper → Audience, Included Client Audience {audience}, Add to access token On");
    if d.contains("requested audience not available") {
        return setting(match scope {
            None => format!("the administrator adds an Audience mapper for {audience} to {client} (Clients → {client} → Client scopes → {client}-dedicated → {mapper}); or, when that mapper sits in an optional client scope of {client}, name the scope with --token-exchange-scope=SCOPE on the kubeconfig user (or scope: SCOPE beside audience: {audience} in the cluster's extension client.authentication.k8s.io/exec)"),
            Some(scope) => format!("neither {client} nor the client scope {scope:?} it was asked with has an Audience mapper for {audience}: the administrator adds one to that scope (Client scopes → {scope} → Mappers → {mapper}), or the kubeconfig names the scope that has it (--token-exchange-scope, or scope: in the cluster's extension client.authentication.k8s.io/exec)"),
        });
    }
    if d.contains("client disabled") {
        return setting(format!(
            "the administrator enables the client {audience} (Clients → {audience} → Enabled)"
        ));
    }
    if d.contains("audience") && (d.contains("not found") || d.contains("invalid")) {
        return setting(format!("check --token-exchange-audience={audience}: it must be the client ID of the cluster's client at the provider"));
    }
    match error {
        // Keycloak answers a subject token whose session ended with invalid_request "Invalid
        // token"; other providers say invalid_grant.
        "invalid_request" if d.contains("invalid token") => (
            Refusal::SessionEnded,
            "the login's session ended; sign in again".into(),
        ),
        "invalid_grant" => (
            Refusal::SessionEnded,
            "the login's session ended; sign in again".into(),
        ),
        "unsupported_grant_type" => setting("the provider must offer RFC 8693 token exchange (Keycloak 26.2 or later has standard token exchange); until then, give this cluster's kubeconfig user its own --oidc-client-id instead of --token-exchange-audience".into()),
        "invalid_client" | "unauthorized_client" => setting(format!("check --oidc-client-id={client} and --oidc-client-secret: the exchange authenticates as the login client")),
        "invalid_scope" => setting(match scope {
            Some(scope) => format!("{client} has no client scope {scope:?} to ask for: the administrator adds it to {client} as an optional client scope (Clients → {client} → Client scopes → Add client scope → {scope} → Add: Optional), or correct --token-exchange-scope on the kubeconfig user (or scope: in the cluster's extension client.authentication.k8s.io/exec)"),
            None => format!("check the scopes of {client} at the provider"),
        }),
        _ => setting("see the provider's log for the refused token exchange".into()),
    }
}

/// Verifies the exchanged token with the crate's verifier: signature by the provider's keys
/// (fetched again once if the key id is unknown), `iss`, `aud` containing `audience` and no
/// other audience (another cluster would accept it too), `exp` and `iat` by the provider's
/// clock. Returns `exp`.
fn verify_exchanged(
    token: &str,
    audience: &str,
    provider: &mut Provider,
    config: &Config,
    http: &HttpClient,
    clock: crate::clock::Offset,
) -> Result<i64, OidcError> {
    let bad = |why: String| OidcError::Exchanged {
        audience: audience.to_string(),
        why,
    };
    let jwt = CoreIdToken::from_str(token).map_err(|e| {
        bad(format!(
            "it is not a JWT with iss, aud, sub, exp and iat ({e}); kube-apiserver accepts only such tokens"
        ))
    })?;
    let once = |provider: &Provider| {
        let verifier = CoreIdTokenVerifier::new_public_client(
            ClientId::new(audience.to_string()),
            provider.metadata.issuer().clone(),
            provider.jwks.clone(),
        )
        // Signed by the provider's own keys: never HMAC, never none.
        .set_allowed_algs(verify::allowed_algs(provider, false))
        .set_time_fn(move || chrono::Utc::now() + chrono::Duration::seconds(clock.0))
        .set_issue_time_verifier_fn(move |iat| {
            let ahead = iat.timestamp() - clock.now();
            if ahead > verify::MAX_IAT_SKEW_SECS {
                Err(format!("it is issued {ahead}s in the future"))
            } else {
                Ok(())
            }
        });
        jwt.claims(&verifier, |_: Option<&Nonce>| Ok(()))
            .map(|claims| crate::times::sane_time(claims.expiration().timestamp()))
    };
    let result = match once(provider) {
        Err(ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey,
        )) => {
            provider.refetch_jwks(http)?;
            once(provider)
        }
        other => other,
    };
    result.map_err(|e| match e {
        ClaimsVerificationError::InvalidAudience(why) => bad(format!(
            "its audience is wrong ({why}); a token for more or other audiences than {audience} would be accepted by other clusters, so it is refused (Keycloak: the exchange must name one audience; check the audience mappers of {})",
            config.client_id
        )),
        other => bad(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keycloak_refusals_name_the_setting_or_ask_for_a_login() {
        let (r, fix) = classify(
            "invalid_client",
            "Public client is not allowed to exchange token",
            "kubectl",
            "dev",
            None,
        );
        assert_eq!(r, Refusal::Setting);
        assert!(fix.contains("Client authentication"), "{fix}");
        let (r, fix) = classify(
            "invalid_request",
            "Requested audience not available: dev",
            "kubectl",
            "dev",
            None,
        );
        assert_eq!(r, Refusal::Setting);
        assert!(fix.contains("Audience mapper for dev"), "{fix}");
        // The mapper may sit in an optional client scope: the fix names the flag that asks
        // for it, and once a scope was asked for, the scope that lacks the mapper.
        assert!(fix.contains("--token-exchange-scope=SCOPE"), "{fix}");
        let (_, fix) = classify(
            "invalid_request",
            "Requested audience not available: dev",
            "kubectl",
            "dev",
            Some("aud-prod"),
        );
        assert!(fix.contains("Client scopes → aud-prod → Mappers"), "{fix}");
        let (r, fix) = classify(
            "invalid_scope",
            "Invalid scopes: aud-nope",
            "kubectl",
            "dev",
            Some("aud-nope"),
        );
        assert_eq!(r, Refusal::Setting);
        assert!(fix.contains("no client scope \"aud-nope\""), "{fix}");
        let (r, fix) = classify(
            "invalid_request",
            "Standard token exchange is not enabled for the requested client",
            "kubectl",
            "dev",
            None,
        );
        assert_eq!(r, Refusal::Setting);
        assert!(fix.contains("standard.token.exchange.enabled"), "{fix}");
        assert_eq!(
            classify("invalid_request", "Invalid token", "kubectl", "dev", None).0,
            Refusal::SessionEnded
        );
        assert_eq!(
            classify("unsupported_grant_type", "", "kubectl", "dev", None).0,
            Refusal::Setting
        );
    }
}
