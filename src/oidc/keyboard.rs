//! `--grant-type authcode-keyboard`: the authorization code flow where the browser runs on
//! another machine. We print the URL; the user signs in there and pastes back the code, or
//! the whole address of the page the provider sent them to.

use super::authcode::{issuer_required, AuthRequest};
use super::http::HttpClient;
use super::provider::Provider;
use super::{read_answer, OidcError};
use crate::config::Config;
use crate::tokens::TokenSet;

/// kubelogin's default redirect for this grant: the provider shows the code on its own page.
pub const OOB_REDIRECT: &str = "urn:ietf:wg:oauth:2.0:oob";

/// Longer than any code or redirect URL; a bound on what we read from the terminal.
const MAX_INPUT: u64 = 16 * 1024;

pub fn login(
    provider: &mut Provider,
    config: &Config,
    http: &HttpClient,
) -> Result<TokenSet, OidcError> {
    let redirect = config
        .redirect_url
        .clone()
        .unwrap_or_else(|| OOB_REDIRECT.to_string());
    let request = AuthRequest::new(provider, config, redirect)?;
    let line = read_answer(
        &format!(
            "Open this URL in a browser and sign in:\n\n    {}\n\nThen paste the code, or the whole address of the page you land on: ",
            request.url
        ),
        MAX_INPUT,
    )
    .map_err(|e| OidcError::Grant(format!("cannot read the code from the terminal: {e}")))?;
    let code = parse_pasted(
        &line,
        request.state.secret(),
        provider.metadata.issuer().as_str(),
        issuer_required(provider),
    )?;
    request.exchange(provider, config, http, code)
}

/// The authorization code in what the user pasted: a bare code, or a redirect URL whose state
/// (and `iss`, RFC 9207) must match this login.
pub fn parse_pasted(
    input: &str,
    state: &str,
    issuer: &str,
    issuer_required: bool,
) -> Result<String, OidcError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(OidcError::Grant(
            "no code was entered; run the command again and paste the code the provider shows"
                .into(),
        ));
    }
    let Ok(url) = url::Url::parse(input) else {
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(OidcError::Grant(
                "that does not look like an authorization code (it has spaces); paste the code alone, or the whole address".into(),
            ));
        }
        return Ok(input.to_string());
    };
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if let Some(error) = param("error") {
        let description = param("error_description")
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        return Err(OidcError::Grant(format!(
            "the provider refused the login: {error}{description}"
        )));
    }
    if param("state").as_deref() != Some(state) {
        return Err(OidcError::Grant(
            "the pasted address belongs to another login (its state does not match); paste the address from this login's browser tab".into(),
        ));
    }
    match param("iss") {
        Some(iss) if iss != issuer => {
            return Err(OidcError::Grant(format!(
                "the pasted address comes from another provider (iss {iss}, expected {issuer})"
            )))
        }
        None if issuer_required => {
            return Err(OidcError::Grant(
                "the pasted address lacks the iss parameter the provider promises (RFC 9207)"
                    .into(),
            ))
        }
        _ => {}
    }
    param("code").filter(|c| !c.is_empty()).ok_or_else(|| {
        OidcError::Grant("the pasted address has no code parameter; paste the address the provider redirected to after the sign-in".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "https://idp.example/realms/r";

    fn parse(input: &str) -> Result<String, String> {
        parse_pasted(input, "st", ISS, false).map_err(|e| e.to_string())
    }

    #[test]
    fn takes_a_bare_code_or_the_redirect_address() {
        assert_eq!(parse("  abc.def-123 \n").unwrap(), "abc.def-123");
        assert_eq!(
            parse("http://localhost:8000/?code=c0de&state=st&iss=https%3A%2F%2Fidp.example%2Frealms%2Fr")
                .unwrap(),
            "c0de"
        );
    }

    #[test]
    fn refuses_other_logins_providers_and_errors() {
        assert!(parse("http://localhost:8000/?code=c&state=other")
            .unwrap_err()
            .contains("another login"));
        assert!(parse("http://localhost:8000/?code=c")
            .unwrap_err()
            .contains("another login"));
        assert!(
            parse("http://localhost:8000/?code=c&state=st&iss=https://evil")
                .unwrap_err()
                .contains("another provider")
        );
        assert!(
            parse_pasted("http://localhost:8000/?code=c&state=st", "st", ISS, true)
                .unwrap_err()
                .to_string()
                .contains("RFC 9207")
        );
        assert!(
            parse("http://localhost:8000/?error=access_denied&error_description=no&state=st")
                .unwrap_err()
                .contains("access_denied (no)")
        );
        assert!(parse("").unwrap_err().contains("no code"));
        assert!(parse("two words").unwrap_err().contains("spaces"));
        assert!(parse("http://localhost:8000/?state=st")
            .unwrap_err()
            .contains("no code parameter"));
    }
}
