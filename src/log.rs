//! Human-facing messages on stderr. stdout belongs to the ExecCredential alone.
//!
//! Nothing in this module redacts: callers never hand it a secret. URLs that may carry a
//! code or state go through [`redact_url`] first.

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
            eprintln!("oidc-login: {}", format_args!($($arg)*));
        }
    };
}

/// A warning, always shown.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => {
        eprintln!("warning: {}", format_args!($($arg)*));
    };
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
    fn redacts_code_and_state_but_keeps_the_rest() {
        let out = redact_url("http://localhost:8000/?code=abc&state=def&iss=https%3A%2F%2Fi");
        assert!(!out.contains("abc") && !out.contains("def"), "{out}");
        assert!(out.contains("iss=https"), "{out}");
    }
}
