//! A redirect URL (or code) pasted by the user with --oidc-redirect-url-authcode-keyboard.

use kubectl_oidc_login::oidc::keyboard::parse_pasted;

use super::text;

/// A pasted response yields a code only when it is this login's (state, issuer); a bare code
/// is one token without spaces.
pub fn response(data: &[u8]) {
    const STATE: &str = "the-state";
    const ISSUER: &str = "https://op.example";
    let (required, input) = match data.split_first() {
        Some((flag, rest)) => (flag & 1 == 1, text(rest)),
        None => (false, String::new()),
    };
    match parse_pasted(&input, STATE, ISSUER, required) {
        Ok(code) => {
            assert!(!code.is_empty());
            if let Ok(url) = openidconnect::url::Url::parse(input.trim()) {
                let param = |name: &str| {
                    url.query_pairs()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.into_owned())
                };
                assert_eq!(param("state").as_deref(), Some(STATE), "{input:?}");
                assert_eq!(param("code").as_deref(), Some(code.as_str()));
                match param("iss") {
                    Some(iss) => assert_eq!(iss, ISSUER),
                    None => assert!(!required),
                }
            } else {
                assert_eq!(code, input.trim());
                assert!(
                    !code.chars().any(|c| c.is_whitespace() || c.is_control()),
                    "{code:?}"
                );
            }
        }
        Err(err) => super::assert_printable(&err.to_string()),
    }
}
