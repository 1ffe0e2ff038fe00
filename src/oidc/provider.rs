//! Provider metadata and signing keys, discovered once and cached beside the tokens, so a
//! refresh is one request to the token endpoint rather than three (kubelogin repeats
//! discovery and the JWKS fetch every time).
//!
//! The cache is trusted only as far as the run that wrote it: it is keyed by the issuer *and*
//! the TLS trust it was fetched with (every trust anchor the run loaded: the CA flags, and
//! the system store as `SSL_CERT_FILE`, `SSL_CERT_DIR` or the platform gave it, see
//! [`HttpClient::trust_id`]), and a run that does not verify TLS (`--insecure-skip-tls-verify`)
//! neither writes nor reads it. Otherwise one run through a man in the middle could plant
//! endpoints that a later run trusting other CAs would send the authorization code, the PKCE
//! verifier and the client secret to.

use std::path::PathBuf;

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, DiscoveryError, IssuerUrl, JsonWebKeySet, ProviderMetadata,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::http::{is_loopback, HttpClient, HttpError};
use super::OidcError;
use crate::config::Config;
use crate::jwt::now;
use crate::private_file::{read_optional, write_private};

/// Metadata older than this is discovered again, so a provider that moves its endpoints is
/// followed within a week even if no request fails.
const MAX_AGE_SECS: i64 = 7 * 24 * 3600;
/// 3: the file name includes every trust anchor of the run; files of version 2 (keyed by the
/// CA flags alone, whatever SSL_CERT_FILE said) and 1 (by issuer alone) are never read.
const FORMAT_VERSION: u32 = 3;

/// Discovery fields outside OIDC Discovery 1.0 that this plugin reads.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ExtraMetadata {
    /// RFC 8414: which PKCE methods the provider accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// RFC 7009 token revocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// OIDC RP-initiated logout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<String>,
    /// RFC 8628 device authorization grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_endpoint: Option<String>,
    /// RFC 9207: the provider adds `iss` to authorization responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_response_iss_parameter_supported: Option<bool>,
}

impl AdditionalProviderMetadata for ExtraMetadata {}

pub type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

#[derive(Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    issuer: String,
    fetched_at: i64,
    metadata: Metadata,
    jwks: CoreJsonWebKeySet,
    /// Clients whose refresh the provider answered without an ID token: their refreshes ask
    /// for `openid` in `scope` at once (see [`Provider::refresh_asks_openid`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    refresh_scope_clients: Vec<String>,
}

pub struct Provider {
    pub metadata: Metadata,
    pub jwks: CoreJsonWebKeySet,
    fetched_at: i64,
    refresh_scope_clients: Vec<String>,
    cache_path: Option<PathBuf>,
    /// Whether this came from the cache (and may be stale) rather than from the network.
    pub from_cache: bool,
}

impl Provider {
    /// The cached metadata when there is a fresh copy, else discovery (two requests).
    pub fn load(config: &Config, http: &HttpClient) -> Result<Self, OidcError> {
        let cache_path = cache_path(config, http);
        if let Some(path) = &cache_path {
            if let Some(provider) = read_cache(path, &config.issuer_url, now()) {
                crate::debug!(1, "using cached provider metadata");
                check_endpoints(&provider.metadata)?;
                return Ok(provider);
            }
        }
        Self::discover(config, http)
    }

    /// Fetches the discovery document and the JWKS, and caches both.
    pub fn discover(config: &Config, http: &HttpClient) -> Result<Self, OidcError> {
        crate::debug!(1, "discovering {}", config.issuer_url);
        let issuer = IssuerUrl::new(config.issuer_url.clone())
            .map_err(|e| OidcError::Discovery(config.issuer_url.clone(), e.to_string()))?;
        let metadata = Metadata::discover(&issuer, http)
            .map_err(|e| discovery_error(&config.issuer_url, e))?;
        check_endpoints(&metadata)?;
        let provider = Provider {
            jwks: metadata.jwks().clone(),
            metadata,
            fetched_at: now(),
            refresh_scope_clients: Vec::new(),
            cache_path: cache_path(config, http),
            from_cache: false,
        };
        provider.save();
        Ok(provider)
    }

    /// Fetches the JWKS again (a key was rotated) and caches it.
    pub fn refetch_jwks(&mut self, http: &HttpClient) -> Result<(), OidcError> {
        crate::debug!(
            1,
            "the signing key is unknown; fetching the provider's keys again"
        );
        self.jwks = JsonWebKeySet::fetch(self.metadata.jwks_uri(), http)
            .map_err(|e| discovery_error(self.metadata.issuer().as_str(), e))?;
        self.fetched_at = now();
        self.save();
        Ok(())
    }

    /// Whether a refresh for `client` asks for `openid` again in its `scope`: the provider
    /// answered one of its plain refreshes without an ID token before. OpenID Connect Core 12.2
    /// lets it; some providers (Entra ID's v2 endpoint) return one only when asked so.
    pub fn refresh_asks_openid(&self, client: &str) -> bool {
        self.refresh_scope_clients.iter().any(|c| c == client)
    }

    /// Remembers with the cached metadata that `client`'s refreshes ask for `openid`.
    pub fn remember_refresh_asks_openid(&mut self, client: &str) {
        if !self.refresh_asks_openid(client) {
            self.refresh_scope_clients.push(client.to_string());
            self.save();
        }
    }

    fn save(&self) {
        let Some(path) = &self.cache_path else {
            return;
        };
        let file = CacheFile {
            version: FORMAT_VERSION,
            issuer: self.metadata.issuer().to_string(),
            fetched_at: self.fetched_at,
            metadata: self.metadata.clone(),
            jwks: self.jwks.clone(),
            refresh_scope_clients: self.refresh_scope_clients.clone(),
        };
        let json = serde_json::to_vec(&file).expect("provider cache serialises");
        // Losing this cache only costs a discovery next time: warn, do not fail the login.
        if let Err(e) = write_private(path, &json) {
            crate::warn!("{e}");
        }
    }
}

fn cache_path(config: &Config, http: &HttpClient) -> Option<PathBuf> {
    if config.storage == crate::tokens::Storage::None || config.insecure_skip_tls_verify {
        return None;
    }
    let mut digest = Sha256::new();
    digest.update(config.issuer_url.as_bytes());
    // What this run trusts: metadata fetched under other trust anchors is another file.
    digest.update(b"\0trust\0");
    digest.update(http.trust_id());
    Some(config.cache_dir.join(format!(
        "provider-{}.json",
        crate::tokens::hex(&digest.finalize()[..16])
    )))
}

/// Every endpoint that receives anything from this plugin (the browser's authorization
/// request, the code and PKCE verifier, refresh tokens, client secrets, the ID token hint)
/// must be as protected as the issuer: https for an https issuer. Plain http is accepted only
/// for an http issuer on a loopback address (a provider on this machine, as in development).
pub fn check_endpoints(metadata: &Metadata) -> Result<(), OidcError> {
    let issuer = metadata.issuer().url();
    let issuer_ok_plain = issuer.scheme() == "http" && is_loopback(issuer);
    if issuer.scheme() != "https" && !issuer_ok_plain {
        return Err(OidcError::InsecureEndpoint {
            what: "issuer",
            url: crate::log::redact_url(issuer.as_str()),
            fix: "serve the provider over https (kube-apiserver accepts only https issuers); plain http is accepted only on a loopback address",
        });
    }
    let extra = metadata.additional_metadata();
    let endpoints = [
        (
            "authorization endpoint",
            Some(metadata.authorization_endpoint().url().clone()),
        ),
        (
            "token endpoint",
            metadata.token_endpoint().map(|u| u.url().clone()),
        ),
        ("keys (jwks_uri)", Some(metadata.jwks_uri().url().clone())),
        (
            "userinfo endpoint",
            metadata.userinfo_endpoint().map(|u| u.url().clone()),
        ),
        ("revocation endpoint", parse(&extra.revocation_endpoint)),
        ("end-session endpoint", parse(&extra.end_session_endpoint)),
        (
            "device authorization endpoint",
            parse(&extra.device_authorization_endpoint),
        ),
    ];
    for (what, url) in endpoints {
        let Some(url) = url else { continue };
        let ok = match url.scheme() {
            "https" => true,
            "http" => issuer_ok_plain && is_loopback(&url),
            _ => false,
        };
        if !ok {
            return Err(OidcError::InsecureEndpoint {
                what,
                url: crate::log::redact_url(url.as_str()),
                fix: "the provider's discovery document must name https endpoints for an https issuer; its administrators must fix the URL it advertises (Keycloak: KC_HOSTNAME with https, and KC_PROXY_HEADERS behind a proxy)",
            });
        }
    }
    Ok(())
}

fn parse(url: &Option<String>) -> Option<url::Url> {
    url.as_deref().map(|u| {
        // An endpoint that does not even parse is refused like an insecure one.
        url::Url::parse(u).unwrap_or_else(|_| url::Url::parse("invalid:").expect("static URL"))
    })
}

/// The cached provider of `issuer` in the file at `path`, when it is that issuer's, of this
/// format and fresh at `now`.
pub fn read_cache(path: &std::path::Path, issuer: &str, now: i64) -> Option<Provider> {
    let bytes = read_optional(path).ok()??;
    let file: CacheFile = match serde_json::from_slice(&bytes) {
        Ok(file) => file,
        Err(e) => {
            crate::debug!(1, "ignoring the provider cache {}: {e}", path.display());
            return None;
        }
    };
    // The metadata must be the issuer's own too: discovery checks that, a file may say
    // anything. A copy fetched "in the future" (a clock set back, or a damaged file) is as
    // stale as an old one.
    if file.version != FORMAT_VERSION
        || file.issuer != issuer
        || file.metadata.issuer().as_str() != issuer
        || !(0..=MAX_AGE_SECS).contains(&now.saturating_sub(file.fetched_at))
    {
        return None;
    }
    Some(Provider {
        metadata: file.metadata,
        jwks: file.jwks,
        fetched_at: file.fetched_at,
        refresh_scope_clients: file.refresh_scope_clients,
        cache_path: Some(path.to_path_buf()),
        from_cache: true,
    })
}

fn discovery_error(issuer: &str, err: DiscoveryError<HttpError>) -> OidcError {
    let detail = match err {
        DiscoveryError::Request(e) => return OidcError::Http(e),
        DiscoveryError::Response(status, _, _) => format!(
            "HTTP {} from {issuer}/.well-known/openid-configuration",
            status.as_u16()
        ),
        DiscoveryError::Parse(e) => {
            format!("the discovery document is not valid JSON metadata ({e})")
        }
        DiscoveryError::Validation(msg) => msg,
        other => other.to_string(),
    };
    OidcError::Discovery(issuer.to_string(), detail)
}
