//! The loopback listener that receives the authorization response (RFC 8252 §7.3).
//!
//! It binds 127.0.0.1 (or the address given), serves only the plugin's own user (see
//! [`peer`]), accepts only a callback on the redirect path whose `state` matches, answers every
//! other request without ending the login, and gives up at the deadline. Pages never echo the
//! code or the state. Connections are served by [`server`], bounded in size, time and number
//! against other local processes.
//!
//! The browser is never given a URL worth stealing: its command line, which every local
//! account can read in `/proc`, holds only a one-time start URL of this listener
//! ([`Listener::start_url`]), which sends the browser on to the real destination (the
//! authorization request with its state, nonce and PKCE challenge; the end-session request
//! with the ID token) once.

mod peer;
mod server;
pub mod tls;

// The request head parser, public for its fuzz target (fuzz/checks/listener.rs).
pub use server::{parse_head, Head, Refusal};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum LoopbackError {
    #[error("cannot listen on {addresses} for the login redirect ({detail}); free the port or choose another with --listen-address{see}", see = crate::troubleshooting::see("the-login-listener-cannot-start"))]
    Bind { addresses: String, detail: String },
    #[error("no browser login completed within {0:?}; finish the login in the browser sooner, or raise --authentication-timeout-sec")]
    Timeout(Duration),
    #[error("the provider answered the login with {error}{description}; check the client's settings at the provider (Keycloak: Valid redirect URIs, Standard flow)")]
    Provider { error: String, description: String },
    #[error("the login response came from issuer {got:?}, not {expected:?} (RFC 9207 mix-up protection); check --oidc-issuer-url")]
    IssuerMismatch { got: String, expected: String },
    #[error("the login was interrupted (Ctrl-C)")]
    Interrupted,
    #[error("cannot use --local-server-cert/--local-server-key: {0}")]
    Tls(String),
    /// The start URL's one-time key came twice: whoever came first was sent on to the
    /// provider, with what the request carries (the login's state, or logout's ID token).
    #[error("the sign-in URL was opened twice, so another program on this computer may have taken the login's place; the login was stopped. Run the command again and open the URL once (if you did not open it twice yourself, a program of your own account read it from the browser's command line)")]
    StartReused,
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

/// The path the browser is sent to first for a sign-in; see [`Listener::start_url`].
pub const LOGIN_START_PATH: &str = "/login";
/// The path the browser is sent to first for a sign-out.
pub const LOGOUT_START_PATH: &str = "/logout";
/// The path the browser is sent to first for the device grant's verification page; see
/// [`Listener::wait_for_start`].
pub const DEVICE_START_PATH: &str = "/device";
/// The query parameter of a start URL that carries its one-time key.
const START_KEY_PARAM: &str = "k";

pub struct Listener {
    server: server::Server,
    addr: SocketAddr,
    start: Option<Start>,
    /// Login redirects ignored for a state of another login, reported once at the end.
    strays: usize,
}

/// A start URL's one-time key and where it leads.
struct Start {
    path: &'static str,
    key: String,
    target: String,
    used: bool,
}

/// What the page after a valid callback says, once the code has been redeemed.
pub enum Landing {
    /// Who signed in, e.g. "Signed in as alice@example.com (account admin)".
    SignedIn(String),
    /// The code was not accepted; the terminal has the details.
    Failed,
}

/// How often a bound port 0 is tried again when its twin on the other loopback address is
/// taken (another port is drawn each time).
const ANY_PORT_TRIES: usize = 8;

impl Listener {
    /// Binds the first address of `addresses` that is free; HTTPS when `tls` names a
    /// certificate and key. `hostname` is the name the browser will be sent to: for
    /// `localhost`, which resolves to both 127.0.0.1 and ::1, the same port on the other
    /// loopback address is bound too, and an address whose twin another program holds is
    /// skipped, since a browser that picked that side would hand it the code or the key.
    pub fn bind(
        addresses: &[String],
        tls: Option<&(PathBuf, PathBuf)>,
        hostname: &str,
    ) -> Result<Self, LoopbackError> {
        let config = tls
            .map(|(cert, key)| tls::server_config(cert, key))
            .transpose()?;
        let mut failures = Vec::new();
        for address in addresses {
            let any_port = address.ends_with(":0");
            let mut failure = String::new();
            for _ in 0..if any_port { ANY_PORT_TRIES } else { 1 } {
                match Self::bind_one(address, config.clone(), hostname) {
                    Ok(listener) => return Ok(listener),
                    Err(e) => failure = e,
                }
            }
            failures.push(format!("{address}: {failure}"));
        }
        Err(LoopbackError::Bind {
            addresses: addresses.join(", "),
            detail: failures.join("; "),
        })
    }

    fn bind_one(
        address: &str,
        config: Option<std::sync::Arc<rustls::ServerConfig>>,
        hostname: &str,
    ) -> Result<Self, String> {
        let mut server = server::Server::bind(address, config).map_err(|e| e.to_string())?;
        let addr = server.addr();
        crate::debug!(1, "listening for the login redirect on {addr}");
        if !addr.ip().is_loopback() {
            crate::warn!("{}", exposed_warning(addr));
        }
        if resolves_to_both_loopbacks(hostname) {
            if let Some(twin) = loopback_twin(addr) {
                match server.also_listen(twin) {
                    Ok(()) => crate::debug!(1, "also listening on {twin}"),
                    // No such address on this machine (IPv6 off): `localhost` cannot lead there.
                    Err(e) if address_unavailable(&e) => {
                        crate::debug!(1, "not listening on {twin} ({e}); {} only", addr.ip())
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                        return Err(format!(
                            "{twin} is held by another program, and a browser may take `localhost` there"
                        ))
                    }
                    Err(e) => return Err(format!("cannot also listen on {twin}: {e}")),
                }
            }
        }
        Ok(Listener {
            server,
            addr,
            start: None,
            strays: 0,
        })
    }

    /// The URL to give the browser instead of `target`: `SCHEME://HOSTNAME:PORT{path}?k=KEY`,
    /// whose first request is redirected to `target`. Other local accounts can read the
    /// browser's command line, so it must hold nothing they could use: the key, spent by the
    /// browser, opens nothing for another account (whose connections are refused anyway where
    /// [`peer`] can tell) and, used twice, ends the wait with [`LoopbackError::StartReused`].
    pub fn start_url(&mut self, hostname: &str, path: &'static str, target: String) -> String {
        let key = openidconnect::CsrfToken::new_random().secret().clone();
        // A hostname no URL can carry (the flags allow any text) falls back to the address.
        let mut url = url::Url::parse(&self.url(hostname))
            .or_else(|_| {
                let scheme = if self.server.is_https() {
                    "https"
                } else {
                    "http"
                };
                url::Url::parse(&format!("{scheme}://{}", self.addr))
            })
            .expect("a socket address makes a URL");
        url.set_path(path);
        url.query_pairs_mut().append_pair(START_KEY_PARAM, &key);
        self.start = Some(Start {
            path,
            key,
            target,
            used: false,
        });
        url.to_string()
    }

    /// This listener's address as the browser reaches it, `SCHEME://HOSTNAME:PORT`: the
    /// default redirect URI of a login, and the post-logout redirect URI.
    pub fn url(&self, hostname: &str) -> String {
        let scheme = if self.server.is_https() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{hostname}:{}", self.port())
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Serves requests until a valid callback arrives or `deadline` passes. The callback's
    /// code goes to `redeem` while the browser waits, so the page it then shows can say who
    /// signed in; returns what `redeem` returned.
    pub fn wait_for_login<T>(
        mut self,
        expected: &Callback,
        deadline: Instant,
        timeout: Duration,
        mut redeem: impl FnMut(&str) -> (T, Landing),
    ) -> Result<T, LoopbackError> {
        let mut strays = 0;
        let result = self.serve(deadline, timeout, |url| {
            let (reply, outcome) = decide(url, expected, &mut strays);
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
        });
        self.strays = strays;
        self.report();
        result
    }

    /// Sends the browser on to the provider's end-session URL (which carries the ID token as
    /// `id_token_hint`, so it never appears on a command line) through the start URL made by
    /// [`Listener::start_url`], and waits for the provider to send it back to `/` with
    /// `state`. Returns once the browser is back.
    pub fn wait_for_logout(
        mut self,
        state: &str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), LoopbackError> {
        let result = self.serve(deadline, timeout, |url: &str| {
            let (path, query) = url.split_once('?').unwrap_or((url, ""));
            let params = Params::parse(query);
            if path == "/" && params.get("state") == Some(state) {
                let page = page("Signed out", "You are signed out at the provider; the next kubectl login will ask who you are. You can close this tab.");
                return (Reply::Page(200, page), Some(Ok(())));
            }
            let page = page("Not found", "This is the kubectl oidc-login listener; it only awaits the sign-out.");
            (Reply::Page(404, page), None)
        });
        self.report();
        result
    }

    /// Serves only the start URL made by [`Listener::start_url`], until the browser has been
    /// sent on once or `deadline` passes: for the device grant, whose answer comes from
    /// polling, not back here. Its verification URL carries the user code, which must stay
    /// off the browser's command line as a login's state does: another account holding it
    /// could approve the device login as itself.
    pub fn wait_for_start(mut self, deadline: Instant) {
        const SLICE: Duration = Duration::from_millis(25);
        let mut not_found = |_: &str| {
            let page = page(
                "Not found",
                "This is the kubectl oidc-login listener; it only sends the browser on to the device sign-in.",
            );
            (Reply::Page(404, page), None::<Result<(), LoopbackError>>)
        };
        while !crate::interrupt::requested() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break;
            }
            let Some(request) = self.server.next(remaining.min(SLICE)) else {
                continue;
            };
            let (reply, _) = self.answer(request.host.as_deref(), &request.target, &mut not_found);
            let sent_on = self.start.as_ref().is_some_and(|start| start.used);
            request.answer(reply, sent_on);
            if sent_on {
                break;
            }
        }
        self.report();
    }

    /// One line each for what was refused or ignored on the way, when the wait ends.
    fn report(&self) {
        let (users, unnamed) = self.server.refused();
        if users == 1 {
            crate::warn!("refused 1 connection from another user to the login listener");
        } else if users > 1 {
            crate::warn!("refused {users} connections from other users to the login listener");
        }
        // Not "another user": a connection nobody could vouch for may have been the user's own
        // browser behind a relay (the first refusal said what to do, at once).
        if unnamed == 1 {
            crate::warn!("refused 1 connection to the login listener whose other end no process here holds (see the first refusal above)");
        } else if unnamed > 1 {
            crate::warn!("refused {unnamed} connections to the login listener whose other ends no process here holds (see the first refusal above)");
        }
        if self.strays == 1 {
            crate::warn!("ignored a login redirect whose state does not match this login (a stale tab or a forged request)");
        } else if self.strays > 1 {
            crate::warn!(
                "ignored {} login redirects whose state does not match this login (stale tabs or forged requests)",
                self.strays
            );
        }
    }

    /// Answers requests with `decide` until it returns an outcome or `deadline` passes.
    fn serve<T>(
        &mut self,
        deadline: Instant,
        timeout: Duration,
        mut decide: impl FnMut(&str) -> (Reply, Option<Result<T, LoopbackError>>),
    ) -> Result<T, LoopbackError> {
        // Waits come in short slices, so Ctrl-C is noticed (see crate::interrupt); connections
        // are accepted meanwhile on threads of their own.
        const SLICE: Duration = Duration::from_millis(25);
        loop {
            if crate::interrupt::requested() {
                return Err(LoopbackError::Interrupted);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(LoopbackError::Timeout(timeout));
            }
            let Some(request) = self.server.next(remaining.min(SLICE)) else {
                continue;
            };
            let (reply, outcome) =
                self.answer(request.host.as_deref(), &request.target, &mut decide);
            // The last page is written before the wait ends (and the process with it).
            request.answer(reply, outcome.is_some());
            if let Some(outcome) = outcome {
                return outcome;
            }
        }
    }

    /// The answer to one request: every request must name the loopback host, whatever it is
    /// for; then the start URL is served here, and `decide` looks at any other target.
    fn answer<T>(
        &mut self,
        host: Option<&str>,
        url: &str,
        decide: &mut impl FnMut(&str) -> (Reply, Option<Result<T, LoopbackError>>),
    ) -> (Reply, Option<Result<T, LoopbackError>>) {
        if !self.host_allowed(host) {
            // A page on another origin resolving its name to 127.0.0.1 (DNS rebinding).
            let page = page(
                "Wrong host",
                "This listener only answers on the loopback address.",
            );
            return (Reply::Page(421, page), None);
        }
        if let Some(start) = &mut self.start {
            let (path, query) = url.split_once('?').unwrap_or((url, ""));
            if path == start.path
                && Params::parse(query).get(START_KEY_PARAM) == Some(start.key.as_str())
            {
                if !start.used {
                    start.used = true;
                    return (Reply::Redirect(start.target.clone()), None);
                }
                // Two requests with the key: one of them was not the browser, and nothing
                // tells which came first.
                let page = page("Link already used", "This link was opened before, perhaps by another program on this computer. Return to the terminal for details.");
                return (
                    Reply::Page(410, page),
                    Some(Err(LoopbackError::StartReused)),
                );
            }
        }
        decide(url)
    }

    fn host_allowed(&self, host: Option<&str>) -> bool {
        host_allowed(host, self.addr)
    }
}

/// Whether a `--listen-address` value names a loopback address (`127.0.0.1:8000`,
/// `[::1]:8000`, `localhost:8000`): for `doctor`, before anything binds.
pub fn is_loopback_listen_address(address: &str) -> bool {
    match address.parse::<SocketAddr>() {
        Ok(addr) => addr.ip().is_loopback(),
        Err(_) => address
            .rsplit_once(':')
            .is_some_and(|(host, _)| resolves_to_both_loopbacks(host)),
    }
}

/// The warning said once, when the listener binds, for a listen address that is not a loopback
/// one: who can reach it, and what still protects the login (SECURITY.md, "The login listener
/// on other networks").
fn exposed_warning(addr: SocketAddr) -> String {
    format!("the login listener is on {addr} (--listen-address or KUBECTL_OIDC_LOGIN_LISTEN_ADDRESS), not a loopback address: whoever can reach that address can connect to it, other machines and containers included. Connections from this machine's own network namespace are still refused unless they are this account's or root's; one from outside it (a published container port's forwarder, another host) is served though nobody can tell whose it is, and then only the login's one-time start key, state, PKCE and nonce protect it. On a machine shared with other accounts, prefer an SSH tunnel to a loopback address, or --grant-type=authcode-keyboard or device-code (docs/networks.md)")
}

/// Whether a request's Host names the listener bound at `addr`: a loopback name and its port.
pub fn host_allowed(host: Option<&str>, addr: SocketAddr) -> bool {
    let Some(host) = host.map(str::to_ascii_lowercase) else {
        return false;
    };
    let (name, port) = split_host(&host);
    let port_ok = match port {
        // Digits only: u16's parser also takes "+8000" (found by fuzzing), RFC 3986 does not.
        Some(port) => {
            port.bytes().all(|b| b.is_ascii_digit())
                && port.parse::<u16>().ok() == Some(addr.port())
        }
        None => addr.port() == 80,
    };
    port_ok
        && (matches!(name, "localhost" | "127.0.0.1" | "[::1]") || name == addr.ip().to_string())
}

/// The answer to one login request (its target, once its Host passed), and `Some`
/// outcome when it ends the login. Public for its fuzz target.
pub fn decide(
    url: &str,
    expected: &Callback,
    strays: &mut usize,
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
        // Counted, and said once when the login ends: a flood of them must not scroll the
        // URL to open out of sight.
        *strays += 1;
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

/// Whether browsers resolve `hostname` to both 127.0.0.1 and ::1: `localhost`, and its
/// subdomains, which Chromium and Firefox treat alike (RFC 6761 §6.3).
fn resolves_to_both_loopbacks(hostname: &str) -> bool {
    let name = hostname.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// The same port on the other loopback address, which `localhost` may resolve to as well.
fn loopback_twin(addr: SocketAddr) -> Option<SocketAddr> {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_loopback() || ip.is_unspecified() => {
            Some(SocketAddr::from((Ipv6Addr::LOCALHOST, addr.port())))
        }
        IpAddr::V6(ip) if ip.is_loopback() => {
            Some(SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port())))
        }
        _ => None,
    }
}

/// The machine has no such address (no ::1 with IPv6 off), rather than someone holding it.
fn address_unavailable(error: &std::io::Error) -> bool {
    #[cfg(unix)]
    const EAFNOSUPPORT: i32 = libc::EAFNOSUPPORT;
    #[cfg(windows)]
    const EAFNOSUPPORT: i32 = 10047; // WSAEAFNOSUPPORT
    #[cfg(not(any(unix, windows)))]
    const EAFNOSUPPORT: i32 = -1;
    error.kind() == std::io::ErrorKind::AddrNotAvailable
        || error.raw_os_error() == Some(EAFNOSUPPORT)
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
    fn loopback_listen_addresses_are_told_from_the_others() {
        for address in [
            "127.0.0.1:8000",
            "[::1]:8000",
            "localhost:8000",
            "127.0.0.2:0",
        ] {
            assert!(is_loopback_listen_address(address), "{address}");
        }
        for address in ["0.0.0.0:8000", "[::]:8000", "10.0.0.2:8000", "myhost:8000"] {
            assert!(!is_loopback_listen_address(address), "{address}");
        }
    }

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
            let mut listener = Listener::bind(&["127.0.0.1:0".to_string()], None, "localhost").unwrap();
            let host = host.map(|h| h.replace("PORT", &listener.port().to_string()));
            let expected = Callback {
                state: "s3cret",
                issuer: "https://idp.example",
                issuer_required: false,
                path: "/".into(),
                after_url: None,
            };
            let mut strays = 0;
            let (_, outcome) = listener.answer(host.as_deref(), &target, &mut |url: &str| decide(url, &expected, &mut strays));
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
    fn a_start_url_redirects_once_and_its_second_use_ends_the_wait() {
        let mut listener = Listener::bind(&["127.0.0.1:0".to_string()], None, "localhost").unwrap();
        let target = "https://idp.example/auth?state=s3cret&nonce=n".to_string();
        let start = listener.start_url("localhost", LOGIN_START_PATH, target.clone());
        assert!(!start.contains("s3cret"), "{start}");
        let start = url::Url::parse(&start).unwrap();
        assert_eq!(start.host_str(), Some("localhost"));
        assert_eq!(start.port(), Some(listener.port()));
        let host = format!("localhost:{}", listener.port());
        let request = format!("{}?{}", start.path(), start.query().unwrap());
        let mut decided = 0;
        let mut decide = |_: &str| -> (Reply, Option<Result<(), LoopbackError>>) {
            decided += 1;
            (Reply::Page(404, String::new()), None)
        };
        // A wrong key, or the right key on another Host, is not the start page.
        let (reply, outcome) = listener.answer(Some(&host), "/login?k=guess", &mut decide);
        assert!(matches!(reply, Reply::Page(404, _)) && outcome.is_none());
        let (reply, _) = listener.answer(Some("evil.example"), &request, &mut decide);
        assert!(matches!(reply, Reply::Page(421, _)));
        let (reply, outcome) = listener.answer(Some(&host), &request, &mut decide);
        assert!(matches!(&reply, Reply::Redirect(to) if *to == target));
        assert!(outcome.is_none());
        let (reply, outcome) = listener.answer(Some(&host), &request, &mut decide);
        assert!(matches!(reply, Reply::Page(410, _)));
        assert!(matches!(outcome, Some(Err(LoopbackError::StartReused))));
        assert_eq!(decided, 1);
    }

    #[test]
    fn binds_the_next_address_when_the_first_is_taken() {
        let first = Listener::bind(&["127.0.0.1:0".to_string()], None, "127.0.0.1").unwrap();
        let taken = format!("127.0.0.1:{}", first.port());
        let second = Listener::bind(
            &[taken.clone(), "127.0.0.1:0".to_string()],
            None,
            "127.0.0.1",
        )
        .unwrap();
        assert_ne!(second.port(), first.port());
        let err = Listener::bind(&[taken], None, "127.0.0.1").err().unwrap();
        assert!(err.to_string().contains("--listen-address"), "{err}");
    }

    #[test]
    fn a_localhost_listener_skips_a_port_whose_ipv6_twin_is_taken() {
        let Ok(squatter) = std::net::TcpListener::bind("[::1]:0") else {
            eprintln!("not run here: no IPv6 loopback address on this machine");
            return;
        };
        let port = squatter.local_addr().unwrap().port();
        let half = format!("127.0.0.1:{port}");
        let err = Listener::bind(std::slice::from_ref(&half), None, "localhost")
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains(&format!("[::1]:{port} is held by another program")),
            "{err}"
        );
        // A name that resolves to 127.0.0.1 only does not care.
        Listener::bind(std::slice::from_ref(&half), None, "127.0.0.1").unwrap();
        let next = Listener::bind(&[half, "127.0.0.1:0".into()], None, "localhost").unwrap();
        assert_ne!(next.port(), port);
        assert!(std::net::TcpListener::bind(("::1", next.port())).is_err());
    }
}
