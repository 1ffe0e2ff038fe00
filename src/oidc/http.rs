//! The HTTP client handed to openidconnect: timeouts, no redirects (the crate's SSRF advice),
//! bounded response bodies, extra CA certificates, extra headers, and debug lines that name
//! method, host and path only.

use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use openidconnect::{HttpRequest, HttpResponse, SyncHttpClient};
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
    inner: reqwest::blocking::Client,
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
        let mut builder = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TOTAL_TIMEOUT)
            .user_agent(concat!("kubectl-oidc-login/", env!("CARGO_PKG_VERSION")));
        for path in &config.ca_files {
            let pem = std::fs::read(path)
                .map_err(|e| HttpError::Ca(path.display().to_string(), e.to_string()))?;
            builder = add_pem_bundle(builder, &pem, &path.display().to_string())?;
        }
        for data in &config.ca_data {
            use base64::Engine;
            let pem = base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|e| HttpError::Ca("--certificate-authority-data".into(), e.to_string()))?;
            builder = add_pem_bundle(builder, &pem, "--certificate-authority-data")?;
        }
        if config.insecure_skip_tls_verify {
            crate::warn!("--insecure-skip-tls-verify: the provider's TLS certificate is not verified; anyone on the network path can impersonate it");
            builder = builder.danger_accept_invalid_certs(true);
        }
        let inner = builder
            .build()
            .map_err(|e| HttpError::Build(e.to_string()))?;
        Ok(HttpClient {
            inner,
            headers: config.request_headers.clone(),
            last_date: Mutex::new(None),
            last_status: Mutex::new(None),
            client_auth: Mutex::new(None),
        })
    }
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

fn add_pem_bundle(
    builder: reqwest::blocking::ClientBuilder,
    pem: &[u8],
    origin: &str,
) -> Result<reqwest::blocking::ClientBuilder, HttpError> {
    let certs = reqwest::Certificate::from_pem_bundle(pem)
        .map_err(|e| HttpError::Ca(origin.to_string(), e.to_string()))?;
    if certs.is_empty() {
        return Err(HttpError::Ca(
            origin.to_string(),
            "no PEM certificate found".into(),
        ));
    }
    Ok(certs
        .into_iter()
        .fold(builder, |b, cert| b.add_root_certificate(cert)))
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
        let mut builder = self
            .inner
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
