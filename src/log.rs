//! Human-facing messages on stderr. stdout belongs to the ExecCredential alone.
//!
//! Nothing in this module redacts: callers never hand it a secret. URLs that may carry a
//! code or state go through [`redact_url`] first.
//!
//! Every line for humans passes through [`printable`]: text from the network (a provider's
//! `error_description`, claims, a device code's URL) may carry terminal control sequences
//! that would clear the screen, retitle the window or fake a prompt (the class of kubectl's
//! CVE-2021-25743), so control characters are shown escaped, never sent raw.

use std::sync::atomic::{AtomicU8, Ordering};

static VERBOSITY: AtomicU8 = AtomicU8::new(0);

pub fn set_verbosity(level: u8) {
    VERBOSITY.store(level, Ordering::Relaxed);
}

pub fn enabled(level: u8) -> bool {
    VERBOSITY.load(Ordering::Relaxed) >= level
}

/// A debug line, shown from `-v LEVEL` up.
#[macro_export]
macro_rules! debug {
    ($level:expr, $($arg:tt)*) => {
        if $crate::log::enabled($level) {
            eprintln!("oidc-login: {}", $crate::log::printable(&format!($($arg)*)));
        }
    };
}

/// A warning, always shown.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => {
        eprintln!("warning: {}", $crate::log::printable(&format!($($arg)*)));
    };
}

/// Whether `c` must never reach a terminal (or a YAML parser) raw: control characters (C0,
/// DEL, C1), the Unicode bidirectional marks and overrides that reorder what a terminal
/// shows, the line and paragraph separators (line breaks to YAML 1.1), the byte order mark
/// and the two BMP noncharacters (both outside YAML's printable set).
pub fn is_hostile(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}')
}

/// `text` with every hostile character (see [`is_hostile`]) escaped as `\u{..}`, `\n`, `\r`
/// or `\t`: for one line on a terminal.
pub fn printable(text: &str) -> String {
    escape_controls(text, false)
}

/// Like [`printable`], for text of several lines: line feeds stay.
pub fn printable_lines(text: &str) -> String {
    escape_controls(text, true)
}

fn escape_controls(text: &str, keep_newlines: bool) -> String {
    let hostile = |c: char| is_hostile(c) && !(keep_newlines && c == '\n');
    if !text.chars().any(hostile) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hostile(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Query parameters whose values are secrets or single-use credentials.
const SECRET_PARAMS: &[&str] = &[
    "code",
    "state",
    "nonce",
    "code_verifier",
    "id_token_hint",
    "token",
    "refresh_token",
    "access_token",
    "id_token",
    "client_secret",
    "password",
];

/// Returns `url` with the values of secret query parameters replaced by `REDACTED`.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "<unparsable URL>".to_string();
    };
    if parsed.query().is_none() {
        return parsed.to_string();
    }
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| {
            let v = if SECRET_PARAMS.contains(&k.as_ref()) {
                "REDACTED".to_string()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_escaped() {
        let hostile =
            "denied\u{1b}]0;pwned\u{7}\u{1b}[2J\rre-enter your password:\u{9b}31m\u{202e}";
        let shown = printable(hostile);
        assert!(!shown.chars().any(|c| c.is_control()), "{shown:?}");
        assert_eq!(
            shown,
            "denied\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\rre-enter your password:\\u{9b}31m\\u{202e}"
        );
        assert_eq!(printable_lines("a\nb\u{1b}"), "a\nb\\u{1b}");
        assert_eq!(printable("plain, ünïcode"), "plain, ünïcode");
    }

    #[test]
    fn redacts_code_and_state_but_keeps_the_rest() {
        let out = redact_url("http://localhost:8000/?code=abc&state=def&iss=https%3A%2F%2Fi");
        assert!(!out.contains("abc") && !out.contains("def"), "{out}");
        assert!(out.contains("iss=https"), "{out}");
    }
}
