//! The loopback listener that receives the authorization response (RFC 8252 §7.3).
//!
//! It binds 127.0.0.1 (or the address given), accepts only a callback on the redirect path
//! whose `state` matches, answers every other request without ending the login, and gives up
//! at the deadline. Pages never echo the code or the state.

pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use thiserror::Error;
use tiny_http::{Header, Request, Response, Server};

#[derive(Debug, Error)]
pub enum LoopbackError {
    #[error("cannot listen on {addresses} for the login redirect ({detail}); free the port or choose another with --listen-address")]
    Bind { addresses: String, detail: String },
    #[error("no browser login completed within {0:?}; finish the login in the browser sooner, or raise --authentication-timeout-sec")]
    Timeout(Duration),
    #[error("the provider answered the login with {error}{description}; check the client's settings at the provider (Keycloak: Valid redirect URIs, Standard flow)")]
    Provider { error: String, description: String },
    #[error("the login response came from issuer {got:?}, not {expected:?} (RFC 9207 mix-up protection); check --oidc-issuer-url")]
    IssuerMismatch { got: String, expected: String },
    #[error("the login listener stopped: {0}")]
    Io(String),
    #[error("the login was interrupted (Ctrl-C)")]
    Interrupted,
    #[error("cannot use --local-server-cert/--local-server-key: {0}")]
    Tls(String),
}

/// What a valid callback must carry.
pub struct Callback<'a> {
    pub state: &'a str,
    pub issuer: &'a str,
    /// The provider announced RFC 9207 support, so `iss` must be present.
    pub issuer_required: bool,
    pub path: String,
    /// Where to send the browser after success instead of our page.
    pub after_url: Option<&'a str>,
}

/// The path the browser is sent to first for a sign-out; see [`Listener::wait_for_logout`].
pub const LOGOUT_START_PATH: &str = "/logout";

pub struct Listener {
    transport: Transport,
    addr: SocketAddr,
    /// The same port on [::1], for browsers that resolve `localhost` to IPv6 first.
    ipv6: Option<Server>,
}

/// What the page after a valid callback says, once the code has been redeemed.
pub enum Landing {
    /// Who signed in, e.g. "Signed in as alice@example.com (account admin)".
    SignedIn(String),
    /// The code was not accepted; the terminal has the details.
    Failed,
}

enum Transport {
    Http(Server),
    /// `--local-server-cert/--local-server-key`: HTTPS on the loopback address.
    Https(tls::TlsServer),
}

impl Listener {
    /// Binds the first address of `addresses` that is free; HTTPS when `tls` names a
    /// certificate and key.
    pub fn bind(
        addresses: &[String],
        tls: Option<&(PathBuf, PathBuf)>,
    ) -> Result<Self, LoopbackError> {
        let config = tls
            .map(|(cert, key)| tls::server_config(cert, key))
            .transpose()?;
        let mut failures = Vec::new();
        for address in addresses {
            let bound = match &config {
                None => Server::http(address.as_str())
                    .map_err(|e| e.to_string())
                    .and_then(|server| match server.server_addr().to_ip() {
                        Some(addr) => Ok((Transport::Http(server), addr)),
                        None => Err("not an IP address".to_string()),
                    }),
                Some(config) => tls::TlsServer::bind(address, config.clone())
                    .map(|server| {
                        let addr = server.addr();
                        (Transport::Https(server), addr)
                    })
                    .map_err(|e| e.to_string()),
            };
            match bound {
                Ok((transport, addr)) => {
                    crate::debug!(1, "listening for the login redirect on {addr}");
                    return Ok(Listener {
                        transport,
                        addr,
                        ipv6: None,
                    });
                }
                Err(e) => failures.push(format!("{address}: {e}")),
            }
        }
        Err(LoopbackError::Bind {
            addresses: addresses.join(", "),
            detail: failures.join("; "),
        })
    }

    /// This listener's address as the browser reaches it, `SCHEME://HOSTNAME:PORT`: the
    /// default redirect URI of a login, and the post-logout redirect URI.
    pub fn url(&self, hostname: &str) -> String {
        let scheme = match self.transport {
            Transport::Http(_) => "http",
            Transport::Https(_) => "https",
        };
        format!("{scheme}://{hostname}:{}", self.port())
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Also listens on [::1] at the same port, when this listener is on 127.0.0.1 (HTTP or
    /// HTTPS): the redirect URI says `localhost`, which some browsers resolve to ::1 first.
    /// Where ::1 cannot be bound (IPv6 off), IPv4 alone goes on.
    pub fn also_on_ipv6_loopback(&mut self) {
        if self.addr.ip() != std::net::Ipv4Addr::LOCALHOST {
            return;
        }
        let v6 = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, self.port()));
        let bound = match &mut self.transport {
            Transport::Http(_) => Server::http(v6).map(|server| self.ipv6 = Some(server)),
            Transport::Https(server) => server.also_listen(v6).map_err(Into::into),
        };
        match bound {
            Ok(()) => crate::debug!(1, "also listening on [::1]:{}", self.port()),
            Err(e) => crate::debug!(1, "not listening on [::1]:{} ({e}); IPv4 only", self.port()),
        }
    }

    /// Serves requests until a valid callback arrives or `deadline` passes. The callback's
    /// code goes to `redeem` while the browser waits, so the page it then shows can say who
    /// signed in; returns what `redeem` returned.
    pub fn wait_for_login<T>(
        self,
        expected: &Callback,
        deadline: Instant,
        timeout: Duration,
        mut redeem: impl FnMut(&str) -> (T, Landing),
    ) -> Result<T, LoopbackError> {
        self.serve(deadline, timeout, |url| {
            let (reply, outcome) = self.decide(url, expected);
            match outcome {
                Some(Ok(code)) => {
                    let (value, landing) = redeem(&code);
                    let reply = match (landing, expected.after_url) {
                        (Landing::SignedIn(_), Some(after)) => Reply::Redirect(after.to_string()),
                        (Landing::SignedIn(who), None) => Reply::Page(200, page("Signed in", &format!("{who}. You can close this tab and return to the terminal."))),
                        (Landing::Failed, _) => Reply::Page(200, page("Sign-in failed", "The provider's answer was not accepted. Return to the terminal for details.")),
                    };
                    (reply, Some(Ok(value)))
                }
                Some(Err(e)) => (reply, Some(Err(e))),
                None => (reply, None),
            }
        })?
    }

    /// Sends the browser on to the provider's end-session URL (which carries the ID token as
    /// `id_token_hint`, so it never appears on a command line) and waits for the provider to
    /// send it back to `/` with `state`. Returns once the browser is back.
    pub fn wait_for_logout(
        self,
        end_session_url: &str,
        state: &str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), LoopbackError> {
        self.serve(deadline, timeout, |url: &str| {
            let (path, query) = url.split_once('?').unwrap_or((url, ""));
            if path == LOGOUT_START_PATH {
                return (Reply::Redirect(end_session_url.to_string()), None);
            }
            if path == "/" && Params::parse(query).get("state") == Some(state) {
                let page = page("Signed out", "You are signed out at the provider; the next kubectl login will ask who you are. You can close this tab.");
                return (Reply::Page(200, page), Some(()));
            }
            let page = page("Not found", "This is the kubectl oidc-login listener; it only awaits the sign-out.");
            (Reply::Page(404, page), None)
        })
    }

    /// Answers requests with `decide` until it returns an outcome or `deadline` passes.
    fn serve<T>(
        &self,
        deadline: Instant,
        timeout: Duration,
        mut decide: impl FnMut(&str) -> (Reply, Option<T>),
    ) -> Result<T, LoopbackError> {
        // Waits come in short slices, so Ctrl-C is noticed (see crate::interrupt) and, with a
        // second socket on [::1], each socket is watched in turn.
        const SLICE: Duration = Duration::from_millis(25);
        const TICK: Duration = Duration::from_millis(200);
        let mut turn = 0usize;
        loop {
            if crate::interrupt::requested() {
                return Err(LoopbackError::Interrupted);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(LoopbackError::Timeout(timeout));
            }
            let outcome = match &self.transport {
                Transport::Http(server) => {
                    let (server, wait) = match &self.ipv6 {
                        None => (server, remaining.min(TICK)),
                        Some(v6) => {
                            turn += 1;
                            (
                                if turn.is_multiple_of(2) { v6 } else { server },
                                remaining.min(SLICE),
                            )
                        }
                    };
                    match server.recv_timeout(wait) {
                        Ok(Some(request)) => {
                            let host = request
                                .headers()
                                .iter()
                                .find(|h| h.field.equiv("Host"))
                                .map(|h| h.value.as_str().to_string());
                            let (reply, outcome) =
                                self.answer(host.as_deref(), request.url(), &mut decide);
                            respond(request, reply);
                            outcome
                        }
                        Ok(None) => None,
                        Err(e) => return Err(LoopbackError::Io(e.to_string())),
                    }
                }
                Transport::Https(server) => {
                    match server.serve_one(remaining.min(TICK), |host, url| {
                        self.answer(host, url, &mut decide)
                    }) {
                        Ok(outcome) => outcome.flatten(),
                        Err(e) => return Err(LoopbackError::Io(e.to_string())),
                    }
                }
            };
            if let Some(outcome) = outcome {
                return Ok(outcome);
            }
        }
    }

    /// The answer to one request: every request must name the loopback host, whatever it is
    /// for; then `decide` looks at its target.
    fn answer<T>(
        &self,
        host: Option<&str>,
        url: &str,
        decide: &mut impl FnMut(&str) -> (Reply, Option<T>),
    ) -> (Reply, Option<T>) {
        if !self.host_allowed(host) {
            // A page on another origin resolving its name to 127.0.0.1 (DNS rebinding).
            let page = page(
                "Wrong host",
                "This listener only answers on the loopback address.",
            );
            return (Reply::Page(421, page), None);
        }
        decide(url)
    }

    /// The answer to one login request (its target, once its Host passed), and `Some`
    /// outcome when it ends the login.
    fn decide(
        &self,
        url: &str,
        expected: &Callback,
    ) -> (Reply, Option<Result<String, LoopbackError>>) {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        if path != expected.path || query.is_empty() {
            let page = page(
                "Not found",
                "This is the kubectl oidc-login listener; it only awaits the login redirect.",
            );
            return (Reply::Page(404, page), None);
        }
        let params = Params::parse(query);
        if params.get("state") != Some(expected.state) {
            crate::warn!("ignored a login redirect whose state does not match this login (a stale tab or a forged request)");
            return (Reply::Page(400, page("Sign-in not accepted", "This response does not belong to the login in progress. Start the login again from the terminal.")), None);
        }
        match params.get("iss") {
            Some(iss) if iss != expected.issuer => {
                let err = LoopbackError::IssuerMismatch {
                    got: iss.to_string(),
                    expected: expected.issuer.to_string(),
                };
                return (Reply::Page(400, page("Sign-in failed", "The response came from an unexpected issuer. Return to the terminal for details.")), Some(Err(err)));
            }
            None if expected.issuer_required && params.get("code").is_some() => {
                let err = LoopbackError::IssuerMismatch {
                    got: String::new(),
                    expected: expected.issuer.to_string(),
                };
                return (Reply::Page(400, page("Sign-in failed", "The response lacks the issuer the provider promised. Return to the terminal for details.")), Some(Err(err)));
            }
            _ => {}
        }
        if let Some(error) = params.get("error") {
            let description = params.get("error_description").unwrap_or("");
            let text = if description.is_empty() {
                error.to_string()
            } else {
                format!("{error}: {description}")
            };
            let page = page(
                "Sign-in failed",
                &format!("The provider said: {text}. Return to the terminal for details."),
            );
            let err = LoopbackError::Provider {
                error: error.to_string(),
                description: if description.is_empty() {
                    String::new()
                } else {
                    format!(" ({description})")
                },
            };
            return (Reply::Page(200, page), Some(Err(err)));
        }
        let Some(code) = params.get("code") else {
            return (Reply::Page(400, page("Sign-in not accepted", "The response carries no authorization code. Start the login again from the terminal.")), None);
        };
        // The page comes from wait_for_login, once the code is redeemed.
        (Reply::Page(200, String::new()), Some(Ok(code.to_string())))
    }

    fn host_allowed(&self, host: Option<&str>) -> bool {
        let Some(host) = host.map(str::to_ascii_lowercase) else {
            return false;
        };
        let (name, port) = split_host(&host);
        let port_ok = match port {
            Some(port) => port.parse::<u16>().ok() == Some(self.port()),
            None => self.port() == 80,
        };
        port_ok
            && (matches!(name, "localhost" | "127.0.0.1" | "[::1]")
                || name == self.addr.ip().to_string())
    }
}

/// Splits a Host header into name and port, keeping IPv6 brackets on the name.
fn split_host(host: &str) -> (&str, Option<&str>) {
    if host.starts_with('[') {
        match host.find(']') {
            Some(end) => (&host[..=end], host[end + 1..].strip_prefix(':')),
            None => (host, None),
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    }
}
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str) -> Self {
        Params(
            url::form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the listener sends back to the browser.
pub enum Reply {
    Page(u16, String),
    Redirect(String),
}

fn respond(request: Request, reply: Reply) {
    let response = match reply {
        Reply::Page(status, html) => {
            let header = Header::from_bytes("Content-Type", "text/html; charset=utf-8")
                .expect("static header is valid");
            Response::from_string(html)
                .with_status_code(status)
                .with_header(header)
        }
        Reply::Redirect(location) => {
            let mut response = Response::from_string("").with_status_code(302);
            if let Ok(header) = Header::from_bytes("Location", location.as_bytes()) {
                response.add_header(header);
            }
            response
        }
    };
    // The browser may have gone away; the login outcome does not depend on it.
    let _ = request.respond(response);
}

fn page(title: &str, message: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} - kubectl oidc-login</title>\
<meta name=\"viewport\" content=\"width=device-width\"><style>body{{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}}h1{{font-size:1.5em}}</style></head>\
<body><h1>{title}</h1><p>{}</p></body></html>",
        escape(message)
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_provider_text() {
        let html = page("Sign-in failed", "<script>x</script>");
        assert!(!html.contains("<script>x"));
        assert!(html.contains("&lt;script&gt;"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Whatever arrives (any Host header, any target), the login ends with a code only for
        /// a loopback Host and this login's state, and nothing panics.
        #[test]
        fn only_a_loopback_callback_with_this_state_yields_a_code(
            host in proptest::option::of(proptest::prop_oneof![
                proptest::strategy::Just("localhost:PORT".to_string()),
                proptest::strategy::Just("127.0.0.1:PORT".to_string()),
                proptest::strategy::Just("evil.example:PORT".to_string()),
                ".{0,20}",
            ]),
            target in proptest::prop_oneof![
                "/\\?(code=[a-z]{0,6}&)?(state=(s3cret|other)&)?(iss=[a-z:/.]{0,20}&)?(error=[a-z_]{0,10})?",
                ".{0,40}",
            ],
        ) {
            let listener = Listener::bind(&["127.0.0.1:0".to_string()], None).unwrap();
            let host = host.map(|h| h.replace("PORT", &listener.port().to_string()));
            let expected = Callback {
                state: "s3cret",
                issuer: "https://idp.example",
                issuer_required: false,
                path: "/".into(),
                after_url: None,
            };
            let (_, outcome) = listener.answer(host.as_deref(), &target, &mut |url: &str| listener.decide(url, &expected));
            if let Some(Ok(code)) = outcome {
                let host = host.unwrap();
                proptest::prop_assert!(host.starts_with("localhost:") || host.starts_with("127.0.0.1:"));
                proptest::prop_assert!(target.contains("state=s3cret&") || target.ends_with("state=s3cret"));
                let param = format!("code={}", code);
                proptest::prop_assert!(target.contains(&param));
            }
        }
    }

    #[test]
    fn binds_the_next_address_when_the_first_is_taken() {
        let first = Listener::bind(&["127.0.0.1:0".to_string()], None).unwrap();
        let taken = format!("127.0.0.1:{}", first.port());
        let second = Listener::bind(&[taken.clone(), "127.0.0.1:0".to_string()], None).unwrap();
        assert_ne!(second.port(), first.port());
        let err = Listener::bind(&[taken], None).err().unwrap();
        assert!(err.to_string().contains("--listen-address"), "{err}");
    }
}
