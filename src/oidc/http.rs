//! The HTTP client handed to openidconnect: timeouts, no redirects (the crate's SSRF advice),
//! bounded response bodies, extra CA certificates, extra headers, and debug lines that name
//! method, host and path only.
//!
//! Its trust is loaded here once, from the CA flags and the system store as this run sees it
//! (`SSL_CERT_FILE`, `SSL_CERT_DIR`, the platform's store), and summed up in
//! [`HttpClient::trust_id`], so what a run caches from the network is keyed by everything that
//! decided to trust it. A loopback address is never reached through a proxy, as with Go's
//! net/http (and so kubelogin and kubectl): `HTTP_PROXY` would otherwise receive a local
//! provider's codes and tokens in clear.

use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use openidconnect::{HttpRequest, HttpResponse, SyncHttpClient};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::config::Config;
use crate::tokens::ClientAuth;

/// Discovery documents, JWKS and token responses are a few KiB; anything past this is not one.
const MAX_BODY: u64 = 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const TOTAL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Error)]
pub enum HttpError {
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
    #[error("cannot read CA certificates from {0}: {1}")]
    Ca(String, String),
    #[error("request to {host} failed: {detail}{hint}")]
    Transport {
        host: String,
        detail: String,
        hint: &'static str,
    },
    #[error("the provider at {host} answered HTTP {status}, a server error; try again later, or ask its administrators")]
    ServerError { host: String, status: u16 },
    #[error("the response from {host} is larger than {MAX_BODY} bytes; is --oidc-issuer-url pointing at the provider?")]
    TooLarge { host: String },
}

pub struct HttpClient {
    /// Through the proxies the environment names.
    inner: reqwest::blocking::Client,
    /// Never through a proxy, for loopback addresses; built at the first such request.
    direct: Mutex<Option<reqwest::blocking::Client>>,
    roots: Vec<reqwest::Certificate>,
    insecure: bool,
    /// SHA-256 of the trust anchors loaded (see [`HttpClient::trust_id`]).
    trust: [u8; 32],
    headers: Vec<(String, String)>,
    /// The last response's `Date` header and this machine's time when it arrived, both Unix
    /// seconds: what the provider's clock said, for [`crate::clock`].
    last_date: Mutex<Option<(i64, i64)>>,
    /// The last response's HTTP status: a 401 tells a refused client authentication from
    /// other refusals, whatever the body says.
    last_status: Mutex<Option<u16>>,
    /// The client authentication the provider accepted in this process, so the requests
    /// after the first (the device grant's polls, a refresh after a login) do not probe.
    client_auth: Mutex<Option<ClientAuth>>,
}

impl HttpClient {
    pub fn new(config: &Config) -> Result<Self, HttpError> {
        let mut anchors: Vec<CertificateDer<'static>> = Vec::new();
        for path in &config.ca_files {
            // Named on the command line: a FIFO put in its place must not hang the plugin.
            let pem = crate::named_file::read(path, crate::named_file::Kind::Public)
                .map_err(|e| HttpError::Ca(path.display().to_string(), e.to_string()))?;
            anchors.extend(pem_bundle(&pem, &path.display().to_string())?);
        }
        for data in &config.ca_data {
            use base64::Engine;
            let pem = base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|e| HttpError::Ca("--certificate-authority-data".into(), e.to_string()))?;
            anchors.extend(pem_bundle(&pem, "--certificate-authority-data")?);
        }
        anchors.extend(system_anchors());
        let mut roots = Vec::with_capacity(anchors.len());
        for der in &anchors {
            roots.push(
                reqwest::Certificate::from_der(der).map_err(|e| HttpError::Build(e.to_string()))?,
            );
        }
        if config.insecure_skip_tls_verify {
            crate::warn!(
                "{}: the provider's TLS certificate is not verified; anyone on the network path can impersonate it",
                config.source_of("insecure-skip-tls-verify")
            );
        }
        let inner = build(&roots, config.insecure_skip_tls_verify, true)?;
        Ok(HttpClient {
            inner,
            direct: Mutex::new(None),
            roots,
            insecure: config.insecure_skip_tls_verify,
            trust: trust_digest(&anchors),
            headers: config.request_headers.clone(),
            last_date: Mutex::new(None),
            last_status: Mutex::new(None),
            client_auth: Mutex::new(None),
        })
    }

    /// What this run trusts, as one value: SHA-256 over the sorted SHA-256s of every trust
    /// anchor loaded, from the CA flags and the system store alike. Two runs that trust the
    /// same certificates share it, whatever the flag, variable or file that named them; a run
    /// whose `SSL_CERT_FILE` adds or replaces one gets another.
    pub fn trust_id(&self) -> &[u8; 32] {
        &self.trust
    }

    /// The client for `host`: without any proxy for a loopback address.
    fn client_for(&self, host: &str) -> Result<reqwest::blocking::Client, HttpError> {
        if !is_loopback_host(host) {
            return Ok(self.inner.clone());
        }
        let mut direct = self.direct.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = &*direct {
            return Ok(client.clone());
        }
        let client = build(&self.roots, self.insecure, false)?;
        *direct = Some(client.clone());
        Ok(client)
    }
}

/// A reqwest client trusting exactly `roots` (reqwest's own copy of the system store is off:
/// the roots given already hold the one this run loaded and hashed).
fn build(
    roots: &[reqwest::Certificate],
    insecure: bool,
    proxies: bool,
) -> Result<reqwest::blocking::Client, HttpError> {
    let mut builder = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(TOTAL_TIMEOUT)
        .user_agent(concat!("kubectl-oidc-login/", env!("CARGO_PKG_VERSION")))
        .tls_built_in_root_certs(false);
    for root in roots {
        builder = builder.add_root_certificate(root.clone());
    }
    if insecure {
        builder = builder.danger_accept_invalid_certs(true);
    }
    if !proxies {
        builder = builder.no_proxy();
    }
    builder.build().map_err(|e| HttpError::Build(e.to_string()))
}

/// The system's trust anchors as this run sees them: `SSL_CERT_FILE` and `SSL_CERT_DIR` when
/// set, else the platform's store; those rustls cannot parse are left out, as reqwest does
/// (system stores hold a few ancient ones), so the set hashed is the set trusted.
fn system_anchors() -> Vec<CertificateDer<'static>> {
    let loaded = rustls_native_certs::load_native_certs();
    for error in &loaded.errors {
        crate::debug!(1, "system CA certificates: {error}");
    }
    loaded
        .certs
        .into_iter()
        .filter(|der| rustls::RootCertStore::empty().add(der.clone()).is_ok())
        .collect()
}

fn trust_digest(anchors: &[CertificateDer<'_>]) -> [u8; 32] {
    let mut each: Vec<[u8; 32]> = anchors
        .iter()
        .map(|der| Sha256::digest(der.as_ref()).into())
        .collect();
    each.sort_unstable();
    each.dedup();
    let mut digest = Sha256::new();
    for d in &each {
        digest.update(d);
    }
    digest.finalize().into()
}

/// Whether `host` (a URL's host: a name, an IPv4 address or a bracketed IPv6 one) is this
/// machine: 127.0.0.0/8, ::1 (also IPv4-mapped) or `localhost`, the addresses Go never
/// proxies.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match bare.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(std::net::IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    }
}

/// [`is_loopback_host`] of a URL.
pub fn is_loopback(url: &url::Url) -> bool {
    url.host_str().is_some_and(is_loopback_host)
}

impl HttpClient {
    /// The time the server at `url` says it is (its `Date` header), Unix seconds; None when
    /// it sends none. For comparing this machine's clock with the provider's. Goes through
    /// [`SyncHttpClient::call`], so the headers, size limit and error wording are the same as
    /// for every other request to the provider.
    pub fn server_time(&self, url: &str) -> Result<Option<i64>, HttpError> {
        let request = openidconnect::http::Request::get(url)
            .body(Vec::new())
            .map_err(|e| HttpError::Build(e.to_string()))?;
        let response = self.call(request)?;
        Ok(date_header(response.headers()))
    }

    /// The last response's `Date` and this machine's time when it arrived.
    pub fn last_date(&self) -> Option<(i64, i64)> {
        *self.last_date.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The last response's HTTP status.
    pub fn last_status(&self) -> Option<u16> {
        *self.last_status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The client authentication the provider accepted in this process, if any yet.
    pub fn client_auth(&self) -> Option<ClientAuth> {
        *self.client_auth.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_client_auth(&self, auth: ClientAuth) {
        *self.client_auth.lock().unwrap_or_else(|e| e.into_inner()) = Some(auth);
    }
}

fn date_header(headers: &openidconnect::http::HeaderMap) -> Option<i64> {
    headers
        .get(openidconnect::http::header::DATE)
        .and_then(|d| d.to_str().ok())
        .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
        .map(|d| d.timestamp())
}

fn pem_bundle(pem: &[u8], origin: &str) -> Result<Vec<CertificateDer<'static>>, HttpError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| HttpError::Ca(origin.to_string(), e.to_string()))?;
    if certs.is_empty() {
        return Err(HttpError::Ca(
            origin.to_string(),
            "no PEM certificate found".into(),
        ));
    }
    Ok(certs)
}

fn describe(err: &reqwest::Error) -> (String, &'static str) {
    let mut chain = String::new();
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = source {
        if !chain.is_empty() {
            chain.push_str(": ");
        }
        chain.push_str(&e.to_string());
        source = e.source();
    }
    let lower = chain.to_lowercase();
    let hint = if lower.contains("certificate") || lower.contains("unknownissuer") {
        "; if the provider uses a private CA, pass it with --certificate-authority"
    } else if err.is_timeout() {
        "; the provider did not answer in time, check the network or proxy settings"
    } else if err.is_connect() {
        "; check --oidc-issuer-url and that the provider is reachable"
    } else {
        ""
    };
    (chain, hint)
}

impl SyncHttpClient for HttpClient {
    type Error = HttpError;

    fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let (parts, body) = request.into_parts();
        let host = parts
            .uri
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default();
        crate::debug!(
            2,
            "HTTP {} {}://{}{}",
            parts.method,
            parts.uri.scheme_str().unwrap_or("?"),
            host,
            parts.uri.path()
        );
        let client = self.client_for(parts.uri.host().unwrap_or_default())?;
        let mut builder = client
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body);
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let response = builder.send().map_err(|e| {
            let (detail, hint) = describe(&e.without_url());
            HttpError::Transport {
                host: host.clone(),
                detail,
                hint,
            }
        })?;
        let status = response.status();
        crate::debug!(2, "HTTP {} from {}", status.as_u16(), host);
        *self.last_status.lock().unwrap_or_else(|e| e.into_inner()) = Some(status.as_u16());
        // A server error carries no OAuth error to read; say what happened at which host.
        if status.is_server_error() {
            return Err(HttpError::ServerError {
                host,
                status: status.as_u16(),
            });
        }
        let headers = response.headers().clone();
        if let Some(date) = date_header(&headers) {
            *self.last_date.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((date, crate::jwt::now()));
        }
        let mut body = Vec::new();
        response
            .take(MAX_BODY + 1)
            .read_to_end(&mut body)
            .map_err(|e| HttpError::Transport {
                host: host.clone(),
                detail: e.to_string(),
                hint: "",
            })?;
        if body.len() as u64 > MAX_BODY {
            return Err(HttpError::TooLarge { host });
        }
        let mut out = http_response(status, body);
        *out.headers_mut() = headers;
        Ok(out)
    }
}

fn http_response(status: reqwest::StatusCode, body: Vec<u8>) -> HttpResponse {
    let mut response = openidconnect::http::Response::new(body);
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_what_go_never_proxies() {
        for host in [
            "127.0.0.1",
            "127.1.2.3",
            "[::1]",
            "::1",
            "localhost",
            "LocalHost",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "192.0.2.2",
            "[::2]",
            "localhost.example.com",
            "mylocalhost",
            "10.0.0.1",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn the_trust_id_is_the_set_of_anchors_whatever_their_order() {
        let a = CertificateDer::from(vec![1u8, 2, 3]);
        let b = CertificateDer::from(vec![4u8, 5, 6]);
        let ab = trust_digest(&[a.clone(), b.clone()]);
        assert_eq!(ab, trust_digest(&[b.clone(), a.clone(), a.clone()]));
        assert_ne!(ab, trust_digest(std::slice::from_ref(&a)));
        assert_ne!(trust_digest(&[]), trust_digest(&[b]));
    }
}
