//! Reading claims of a JWT *without* verifying it.
//!
//! Only for tokens this plugin verified before caching them (to read `exp`), and for tokens
//! it merely passes along (an access token's `exp`). Verification is openidconnect's job, in
//! the oidc module's `verify`.

use base64::Engine;
use serde::de::DeserializeOwned;

/// Decodes the payload (claims) of a compact JWS. `None` when `token` is not one.
pub fn peek_claims<T: DeserializeOwned>(token: &str) -> Option<T> {
    peek_part(token, 1)
}

/// Decodes the header of a compact JWS (alg, kid), to explain a failed verification.
pub fn peek_header<T: DeserializeOwned>(token: &str) -> Option<T> {
    peek_part(token, 0)
}

fn peek_part<T: DeserializeOwned>(token: &str, index: usize) -> Option<T> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[index].trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[derive(serde::Deserialize)]
struct Exp {
    exp: i64,
}

/// The `exp` claim of a JWT, when it is one and has it, within the times a token set can
/// hold (see [`crate::times`]): a provider's absurd `exp` must not overflow later.
pub fn peek_expiry(token: &str) -> Option<i64> {
    peek_claims::<Exp>(token).map(|c| crate::times::sane_time(c.exp))
}

/// Current time in Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(json: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn reads_exp_from_a_compact_jws() {
        let token = format!("{}.{}.sig", encode("{}"), encode(r#"{"exp":1700000000}"#));
        assert_eq!(peek_expiry(&token), Some(1_700_000_000));
    }

    #[test]
    fn rejects_what_is_not_a_jws() {
        assert_eq!(peek_expiry("opaque-token"), None);
        assert_eq!(peek_expiry("a.b.c.d"), None);
        assert_eq!(peek_expiry(&format!("x.{}.y", encode("[]"))), None);
    }
}
