//! The loopback listener: the one surface every local account can reach.

use std::net::SocketAddr;

use kubectl_oidc_login::loopback::{decide, host_allowed, parse_head, Callback, Reply};

use super::{fields, text};

/// A request head: what parses is a GET whose target and Host hold no line break, and reads
/// back the same when written out again.
pub fn head(data: &[u8]) {
    let Ok(head) = parse_head(data) else { return };
    let text = std::str::from_utf8(data).expect("a parsed head is UTF-8");
    assert!(text.starts_with("GET "), "{text:?} parsed as a GET");
    assert!(!head.target.is_empty());
    for part in std::iter::once(&head.target).chain(head.host.as_ref()) {
        assert!(
            !part.contains(['\r', '\n']),
            "a line break in a parsed field: {part:?}"
        );
    }
    assert!(!head.target.contains(' '), "{:?}", head.target);
    let mut again = format!("GET {} HTTP/1.1", head.target);
    if let Some(host) = &head.host {
        again.push_str(&format!("\r\nHost: {host}"));
    }
    assert_eq!(parse_head(again.as_bytes()), Ok(head));
}

/// A callback target and Host: the login ends with a code only for this login's state, path
/// and issuer, on a Host naming the listener; no page echoes the code or the state.
pub fn callback(data: &[u8]) {
    const STATE: &str = "st4te-of-this-login";
    const ISSUER: &str = "https://op.example/realms/r";
    let parts = fields(data, 3);
    let (target, host, flags) = (text(parts[0]), text(parts[1]), parts[2]);
    let issuer_required = flags.first().is_some_and(|b| b & 1 == 1);
    let addr: SocketAddr = "127.0.0.1:8000".parse().unwrap();

    if host_allowed(Some(&host), addr) {
        let host = host.to_ascii_lowercase();
        assert!(
            ["localhost:8000", "127.0.0.1:8000", "[::1]:8000"].contains(&host.as_str()),
            "Host {host:?} was allowed"
        );
    }

    let expected = Callback {
        state: STATE,
        issuer: ISSUER,
        issuer_required,
        path: "/callback".into(),
        after_url: None,
    };
    let mut strays = 0;
    let (reply, outcome) = decide(&target, &expected, &mut strays);
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let param = |name: &str| {
        openidconnect::url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if outcome.is_some() {
        // Only a response to this login may end it, with a code or an error.
        assert_eq!(path, "/callback");
        assert_eq!(param("state").as_deref(), Some(STATE), "{target:?}");
        assert_eq!(strays, 0);
    }
    if let Some(Ok(code)) = &outcome {
        assert_eq!(param("code").as_deref(), Some(code.as_str()));
        match param("iss") {
            Some(iss) => assert_eq!(iss, ISSUER),
            None => assert!(!issuer_required, "no iss, yet accepted: {target:?}"),
        }
        assert!(param("error").is_none());
    }
    if let Some(Err(err)) = &outcome {
        super::assert_printable(&err.to_string());
    }
    if let Reply::Page(_, page) = &reply {
        // The login's code and state never reach a page (but for the provider's own error
        // text, which the page shows); short or non-alphanumeric values could be template text.
        let said = [param("error"), param("error_description")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>();
        for secret in [param("code"), Some(STATE.to_string())]
            .into_iter()
            .flatten()
        {
            let distinctive = secret.len() >= 16
                && secret
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-');
            if distinctive && !said.iter().any(|text| text.contains(&secret)) {
                assert!(!page.contains(&secret), "the page echoes {secret:?}");
            }
        }
        // What the provider said reaches the page only escaped: the message holds no markup.
        if let (Some(open), Some(close)) = (page.find("<p>"), page.rfind("</p>")) {
            let message = &page[open + 3..close];
            assert!(
                !message.contains(['<', '>', '"']),
                "markup in the message: {message:?}"
            );
        }
    }
}
