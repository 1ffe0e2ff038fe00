//! What the plugin learns about the provider: its discovery document, and the copy of it
//! (with the signing keys) cached beside the tokens.

use std::sync::OnceLock;

use kubectl_oidc_login::oidc::provider::{check_endpoints, read_cache, Metadata};
use openidconnect::url::{Host, Url};
use serde_json::Value;

const ISSUER: &str = "https://op.example/realms/r";
/// The time the cache is read at: fixed, so a seed stays fresh however old it gets.
const NOW: i64 = 1_800_000_000;

/// A provider cache file: what loads is this issuer's and passes the endpoint check.
pub fn cache(data: &[u8]) {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"));
    let path = dir.path().join("provider.json");
    std::fs::write(&path, data).unwrap();
    let Some(provider) = read_cache(&path, ISSUER, NOW) else {
        return;
    };
    assert!(provider.from_cache);
    assert_eq!(provider.metadata.issuer().as_str(), ISSUER);
    endpoints_checked(&provider.metadata);
}

/// A discovery document: the endpoints that pass the check are as protected as the issuer.
pub fn discovery(data: &[u8]) {
    let Ok(metadata) = serde_json::from_slice::<Metadata>(data) else {
        return;
    };
    endpoints_checked(&metadata);
}

/// When `check_endpoints` passes `metadata`, every endpoint it names is https, or http on a
/// loopback host under an http loopback issuer. The endpoints are read from the metadata's
/// own serde form: serde_json skips unknown fields less strictly than it parses a `Value`
/// (a lone surrogate escape in one, found by fuzzing), so the raw input may not re-parse.
fn endpoints_checked(metadata: &Metadata) {
    let raw = serde_json::to_value(metadata).expect("metadata serialises");
    let Ok(()) = check_endpoints(metadata) else {
        return;
    };
    let issuer = metadata.issuer().url();
    let plain_ok = issuer.scheme() == "http" && loopback(issuer);
    assert!(issuer.scheme() == "https" || plain_ok, "issuer {issuer}");
    for field in [
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
        "revocation_endpoint",
        "end_session_endpoint",
        "device_authorization_endpoint",
    ] {
        let Some(value) = raw.get(field).and_then(Value::as_str) else {
            continue;
        };
        let url = Url::parse(value).unwrap_or_else(|e| panic!("{field} {value:?} passed: {e}"));
        let ok = url.scheme() == "https" || (url.scheme() == "http" && plain_ok && loopback(&url));
        assert!(ok, "{field} {url} passed under issuer {issuer}");
    }
}

fn loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        None => false,
    }
}
