//! `logout`: revoke the refresh token at the provider (RFC 7009), optionally end the browser
//! session (OIDC RP-initiated logout), then delete the login locally. The local clean happens
//! even when the provider cannot be reached; that failure is reported and the exit is non-zero,
//! because the refresh token may then still be valid at the provider.

use openidconnect::core::CoreRevocableToken;
use openidconnect::{ClientId, EndSessionUrl, LogoutRequest, RefreshToken, RevocationUrl};

use crate::cli::LogoutArgs;
use crate::config::Config;
use crate::error::Error;
use crate::oidc::http::HttpClient;
use crate::oidc::provider::Provider;
use crate::oidc::{client, OidcError};
use crate::store::{self, clean, CacheKey};

pub fn run(args: &LogoutArgs) -> Result<(), Error> {
    let config = Config::from_args(&args.token)?;
    let store = store::open(&config);
    let key = CacheKey::new(&config);
    let refresh_token = store.load_refresh_token(&key).unwrap_or_else(|e| {
        crate::warn!("{e}");
        None
    });

    let mut failure = None;
    if let Some(refresh_token) = &refresh_token {
        match revoke(&config, refresh_token) {
            Ok(true) => eprintln!("Revoked the refresh token at {}.", config.issuer_url),
            Ok(false) => eprintln!(
                "{} announces no revocation endpoint: the refresh token stays valid there until it expires.",
                config.issuer_url
            ),
            // Reported once, as the final error, after the local clean.
            Err(e) => failure = Some(e),
        }
    }
    if args.end_session {
        end_session(&config);
    }

    let report = clean::remove_login(&config.cache_dir, key.id())?;
    if refresh_token.is_none() && report.files == 0 && report.keyring_entries == 0 {
        eprintln!(
            "No login was cached for {} and client {}.",
            config.issuer_url, config.client_id
        );
    } else {
        eprintln!(
            "Removed the cached login ({} file(s), {} keyring entr{}).",
            report.files,
            report.keyring_entries,
            if report.keyring_entries == 1 {
                "y"
            } else {
                "ies"
            }
        );
    }
    match failure {
        Some(e) => Err(Error::Setup(format!(
            "logged out locally, but the provider did not revoke the refresh token ({e}); revoke the session at the provider (Keycloak: Users → USER → Sessions → Sign out)"
        ))),
        None => Ok(()),
    }
}

/// Revokes the refresh token; `Ok(false)` when the provider has no revocation endpoint.
fn revoke(config: &Config, refresh_token: &str) -> Result<bool, OidcError> {
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
    let token = CoreRevocableToken::RefreshToken(RefreshToken::new(refresh_token.to_string()));
    let client = client(&provider, config).set_revocation_url(url);
    let request = client.revoke_token(token).map_err(|e| match e {
        // RFC 7009 §2 demands TLS, and the oauth2 crate will not send a token otherwise.
        openidconnect::ConfigurationError::InsecureUrl(_) => OidcError::Revocation(
            "the provider's revocation endpoint is plain http, and RFC 7009 allows only https"
                .into(),
        ),
        other => OidcError::Revocation(other.to_string()),
    })?;
    request.request(&http).map_err(|e| match e {
        openidconnect::RequestTokenError::ServerResponse(r) => {
            OidcError::Revocation(format!("the provider answered {}", r.error()))
        }
        other => OidcError::Revocation(other.to_string()),
    })?;
    Ok(true)
}

/// Opens the provider's end-session page. No `id_token_hint`: the URL goes on the browser's
/// command line, where other local users can read it; `client_id` lets the provider ask the
/// user to confirm instead.
fn end_session(config: &Config) {
    let endpoint = HttpClient::new(config)
        .ok()
        .and_then(|http| Provider::load(config, &http).ok())
        .and_then(|p| {
            p.metadata
                .additional_metadata()
                .end_session_endpoint
                .clone()
        });
    let Some(url) = endpoint.and_then(|e| EndSessionUrl::new(e).ok()) else {
        eprintln!(
            "The provider announces no end_session_endpoint; its browser session stays signed in."
        );
        return;
    };
    let url = LogoutRequest::from(url)
        .set_client_id(ClientId::new(config.client_id.clone()))
        .http_get_url();
    eprintln!("Ending the browser session at the provider.");
    crate::browser::open(url.as_str(), config);
}
