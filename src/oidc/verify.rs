//! ID token verification, by openidconnect: signature with the provider's key (by kid), iss,
//! aud, azp, exp, and the nonce of a fresh login. Only the algorithms the provider announces
//! are accepted, never `none`, and HMAC only for confidential clients.

use openidconnect::core::{CoreIdToken, CoreIdTokenVerifier, CoreJwsSigningAlgorithm};
use openidconnect::{
    ClaimsVerificationError, ClientId, ClientSecret, Nonce, SignatureVerificationError,
};

use super::http::HttpClient;
use super::pairwise;
use super::provider::Provider;
use super::OidcError;
use crate::clock::Offset;
use crate::config::Config;
use crate::tokens::TokenSet;

/// How far in the future `iat` may be before the token is refused (clock skew allowance).
pub(crate) const MAX_IAT_SKEW_SECS: i64 = 300;

/// Verifies `id_token` and returns its `exp`. `nonce` is the one sent in the authorization
/// request; `None` for a refreshed token, which carries no fresh nonce. `exp` and `iat` are
/// judged by the provider's clock (`clock`, measured at the token response), so a machine
/// whose clock is off neither refuses good tokens nor accepts expired ones.
pub fn verify(
    id_token: &CoreIdToken,
    provider: &mut Provider,
    config: &Config,
    http: &HttpClient,
    nonce: Option<&Nonce>,
    clock: Offset,
) -> Result<i64, OidcError> {
    let result = match verify_once(id_token, provider, config, nonce, clock) {
        Err(ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey,
        )) => {
            // The provider rotated its keys since we cached them: fetch once and retry.
            provider.refetch_jwks(http)?;
            verify_once(id_token, provider, config, nonce, clock)
        }
        other => other,
    };
    result.map_err(|err| describe(err, id_token, provider, config))
}

/// Verifies the ID token of a refresh like [`verify`], and that it names the same user at the
/// same issuer as the login it renews (OIDC Core 12.2): a refresh must never change who is
/// signed in. `previous` is the ID token the refresh replaces, when one is cached.
pub fn verify_refreshed(
    id_token: &CoreIdToken,
    provider: &mut Provider,
    config: &Config,
    http: &HttpClient,
    clock: Offset,
    previous: Option<&str>,
) -> Result<i64, OidcError> {
    let expiry = verify(id_token, provider, config, http, None, clock)?;
    #[derive(serde::Deserialize, PartialEq)]
    struct Who {
        iss: String,
        sub: String,
    }
    let Some(before) = previous.and_then(crate::jwt::peek_claims::<Who>) else {
        crate::debug!(1, "no earlier ID token to compare the refreshed one with");
        return Ok(expiry);
    };
    // Verified just above, so reading its claims is reading verified claims.
    let after = crate::jwt::peek_claims::<Who>(&id_token.to_string());
    if after.as_ref() != Some(&before) {
        return Err(OidcError::IdentityChanged {
            before: format!("sub `{}`", before.sub),
            after: format!("sub `{}`", after.map(|w| w.sub).unwrap_or_default()),
            what: "ID token",
            advice: REPORT,
        });
    }
    Ok(expiry)
}

/// What to do about a token that names another user: nothing the user can fix.
const REPORT: &str = "report this to the provider's administrators";

/// Who a token names: its `iss` and `sub`, read from a token verified before or from a JWT
/// access token that is passed along; and, for a provider whose `sub` differs per application
/// (see [`super::pairwise`]), the `oid` and `tid` that stay the same.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Who {
    #[serde(default)]
    pub iss: Option<String>,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub oid: Option<String>,
    #[serde(default)]
    pub tid: Option<String>,
}

impl Who {
    /// The claims of `token` when it is a JWT.
    pub fn of(token: &str) -> Option<Who> {
        crate::jwt::peek_claims(token)
    }

    /// Who a login is: its ID token's (verified when it was stored), else its access token's,
    /// for a login that brought no ID token.
    pub fn of_login(tokens: &TokenSet) -> Option<Who> {
        Some(tokens.id_token.as_str())
            .filter(|t| !t.is_empty())
            .or(tokens.access_token.as_deref())
            .and_then(Who::of)
            .filter(|w| w.sub.is_some())
    }

    /// Whether `other` names someone else than `self`: another `sub`, or another `iss`, where
    /// both tokens carry the claim; at a provider known to issue pairwise subjects (Entra ID),
    /// another `oid` or tenant, whatever `sub` and the issuer's token version say.
    pub fn differs(&self, other: &Who) -> bool {
        let differ =
            |a: &Option<String>, b: &Option<String>| matches!((a, b), (Some(a), Some(b)) if a != b);
        let strictly = differ(&self.sub, &other.sub) || differ(&self.iss, &other.iss);
        strictly && !pairwise::same_user(&self.pairwise_claims(), &other.pairwise_claims())
    }

    fn pairwise_claims(&self) -> pairwise::Claims<'_> {
        pairwise::Claims {
            iss: self.iss.as_deref(),
            oid: self.oid.as_deref(),
            tid: self.tid.as_deref(),
        }
    }

    /// How the check names this user in an error: `sub`, or at a provider with pairwise
    /// subjects the `oid` and tenant it compares.
    fn describe(&self) -> String {
        let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
        if pairwise::is_pairwise_issuer(self.iss.as_deref()) {
            format!(
                "oid `{}` in tenant `{}`, sub `{}`",
                or_none(&self.oid),
                or_none(&self.tid),
                or_none(&self.sub)
            )
        } else {
            format!("sub `{}`", self.sub.clone().unwrap_or_default())
        }
    }

    /// What to do when `other` differs from this login: at a provider with pairwise subjects
    /// whose tokens lack `oid`, ask for it (Entra sends `oid` only with the `profile` scope);
    /// otherwise it is the provider's fault.
    fn advice(&self, other: &Who) -> &'static str {
        if pairwise::is_pairwise_issuer(self.iss.as_deref())
            && (self.oid.is_none() || other.oid.is_none())
        {
            "this provider (Microsoft Entra ID) names one user by another `sub` in each application's tokens: add --oidc-extra-scope=profile to the get-token flags, so that its tokens carry `oid`, the identifier that stays the same"
        } else {
            REPORT
        }
    }
}

/// For --oidc-use-access-token: the access token of a refresh answer, when it is a JWT, must
/// name the login's user (`login`), as its ID token must. An opaque access token says nothing
/// to compare; the provider vouches for it.
pub fn access_token_of_login(tokens: &TokenSet, login: Option<&Who>) -> Result<(), OidcError> {
    let (Some(login), Some(access)) = (login, tokens.access_token.as_deref().and_then(Who::of))
    else {
        return Ok(());
    };
    if login.differs(&access) {
        return Err(OidcError::IdentityChanged {
            before: login.describe(),
            after: if access.sub.is_none() {
                format!("iss `{}`", access.iss.clone().unwrap_or_default())
            } else {
                access.describe()
            },
            what: "access token",
            advice: login.advice(&access),
        });
    }
    Ok(())
}

/// An exchanged token (`tokens`, verified by the exchange) must name the user of the login it
/// was exchanged from (`login`): a provider that answers with another user's token would
/// have kubectl act as someone else.
pub fn exchanged_for_login(
    tokens: &TokenSet,
    login: Option<&Who>,
    audience: &str,
) -> Result<(), OidcError> {
    let exchanged = tokens.access_token.as_deref().and_then(Who::of);
    match (login, exchanged) {
        (Some(login), Some(exchanged)) if login.differs(&exchanged) => Err(OidcError::Exchanged {
            audience: audience.to_string(),
            why: format!(
                "it names another user ({}, iss `{}`) than the login it was exchanged from ({}, iss `{}`), so it is refused and not cached; {}",
                exchanged.describe(),
                exchanged.iss.clone().unwrap_or_default(),
                login.describe(),
                login.iss.clone().unwrap_or_default(),
                login.advice(&exchanged),
            ),
        }),
        (None, _) => {
            crate::debug!(1, "the login names no user to compare the exchanged token with");
            Ok(())
        }
        _ => Ok(()),
    }
}

#[derive(serde::Deserialize)]
struct Header {
    alg: Option<String>,
    kid: Option<String>,
}

fn verify_once(
    id_token: &CoreIdToken,
    provider: &Provider,
    config: &Config,
    nonce: Option<&Nonce>,
    clock: Offset,
) -> Result<i64, ClaimsVerificationError> {
    let client_id = ClientId::new(config.client_id.clone());
    let issuer = provider.metadata.issuer().clone();
    let jwks = provider.jwks.clone();
    let verifier = match &config.client_secret {
        Some(secret) => CoreIdTokenVerifier::new_confidential_client(
            client_id,
            ClientSecret::new(secret.clone()),
            issuer,
            jwks,
        ),
        None => CoreIdTokenVerifier::new_public_client(client_id, issuer, jwks),
    };
    let verifier = verifier
        .set_allowed_algs(allowed_algs(provider, config.client_secret.is_some()))
        .set_time_fn(move || chrono::Utc::now() + chrono::Duration::seconds(clock.0))
        .set_issue_time_verifier_fn(move |iat| {
            let ahead = iat.timestamp() - clock.now();
            if ahead > MAX_IAT_SKEW_SECS {
                Err(format!("it is issued {}s in the future", ahead))
            } else {
                Ok(())
            }
        });
    let claims = match nonce {
        Some(nonce) => id_token.claims(&verifier, nonce)?,
        None => id_token.claims(&verifier, |_: Option<&Nonce>| Ok(()))?,
    };
    // OIDC Core 3.1.3.7 (7): when `azp` is present it must be this client. openidconnect
    // checks `azp` only as part of its audience rules, so a token whose `aud` includes us but
    // which was authorized for another client would pass without this.
    if let Some(azp) = claims.authorized_party() {
        if azp.as_str() != config.client_id {
            return Err(ClaimsVerificationError::InvalidAudience(format!(
                "the token's authorized party (azp) is `{}`, not this client `{}`",
                azp.as_str(),
                config.client_id
            )));
        }
    }
    Ok(claims.expiration().timestamp())
}

pub(crate) fn allowed_algs(
    provider: &Provider,
    confidential: bool,
) -> Vec<CoreJwsSigningAlgorithm> {
    provider
        .metadata
        .id_token_signing_alg_values_supported()
        .iter()
        .filter(|alg| match alg {
            CoreJwsSigningAlgorithm::None => false,
            CoreJwsSigningAlgorithm::HmacSha256
            | CoreJwsSigningAlgorithm::HmacSha384
            | CoreJwsSigningAlgorithm::HmacSha512 => confidential,
            _ => true,
        })
        .cloned()
        .collect()
}

fn describe(
    err: ClaimsVerificationError,
    id_token: &CoreIdToken,
    provider: &Provider,
    config: &Config,
) -> OidcError {
    use ClaimsVerificationError as E;
    let text = match &err {
        // Judged by the provider's clock already: say so once, with no second hint.
        E::Expired(why) => return OidcError::Clock(why.clone()),
        E::InvalidAudience(_) => format!("{err}; the token is not for --oidc-client-id"),
        E::InvalidIssuer(_) => {
            format!("{err}; --oidc-issuer-url must equal the provider's issuer exactly")
        }
        E::InvalidNonce(_) => format!("{err}; the token does not belong to this login"),
        E::SignatureVerification(SignatureVerificationError::NoMatchingKey) => {
            format!("{err}; the provider's keys do not include the token's key id")
        }
        E::SignatureVerification(inner) => {
            signature_failure(inner, id_token, provider, config.client_secret.is_some())
        }
        _ => err.to_string(),
    };
    OidcError::IdToken(text)
}

/// Why a signature was refused, in terms of the token's header: the attacks (alg none, HMAC
/// keyed with the public key, an algorithm the provider never uses, another key) each named.
fn signature_failure(
    inner: &SignatureVerificationError,
    id_token: &CoreIdToken,
    provider: &Provider,
    confidential: bool,
) -> String {
    let header: Option<Header> = crate::jwt::peek_header(&id_token.to_string());
    let alg = header
        .as_ref()
        .and_then(|h| h.alg.clone())
        .unwrap_or_default();
    let kid = header
        .and_then(|h| h.kid)
        .unwrap_or_else(|| "(none)".into());
    let allowed: Vec<String> = allowed_algs(provider, confidential)
        .iter()
        .filter_map(|a| serde_json::to_value(a).ok())
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let reason = if alg.eq_ignore_ascii_case("none") {
        "the token is unsigned (alg none), which is never accepted".to_string()
    } else if alg.starts_with("HS") && !confidential {
        format!("the token is HMAC-signed ({alg}), which a public client without a secret never accepts")
    } else if !allowed.contains(&alg) {
        format!(
            "the token's algorithm {alg} is not one the provider announces for ID tokens ({})",
            allowed.join(", ")
        )
    } else {
        format!("the signature does not match the provider's key {kid}")
    };
    format!("signature verification failed: {reason} ({inner})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        use base64::Engine;
        let e = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", e(r#"{"alg":"RS256"}"#), e(claims))
    }

    fn with_access(access: &str) -> TokenSet {
        TokenSet {
            id_token: String::new(),
            id_token_expiry: 0,
            access_token: Some(access.to_string()),
            access_token_expiry: Some(1),
            refresh_token: None,
            clock_offset: 0,
            client_auth: None,
        }
    }

    #[test]
    fn an_access_token_for_another_user_or_issuer_is_refused() {
        let alice = Who::of(&jwt(r#"{"iss":"https://idp","sub":"alice"}"#)).unwrap();
        let check = |claims: &str| access_token_of_login(&with_access(&jwt(claims)), Some(&alice));
        assert!(check(r#"{"iss":"https://idp","sub":"alice"}"#).is_ok());
        assert!(check(r#"{"sub":"alice"}"#).is_ok(), "no iss: sub decides");
        assert!(matches!(
            check(r#"{"iss":"https://idp","sub":"mallory"}"#),
            Err(OidcError::IdentityChanged {
                what: "access token",
                ..
            })
        ));
        assert!(check(r#"{"iss":"https://evil","sub":"alice"}"#).is_err());
        // An opaque access token names nobody; the provider vouches for it.
        assert!(access_token_of_login(&with_access("opaque"), Some(&alice)).is_ok());
    }

    /// Entra ID: the ID token (v2.0, for the login's client) and the access token (v1.0, for
    /// the cluster's API app) name one user by two `sub`s; `oid` and the tenant decide.
    #[test]
    fn at_entra_the_oid_and_tenant_decide_and_sub_may_differ() {
        let tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        let login = Who::of(&jwt(&format!(
            r#"{{"iss":"https://login.microsoftonline.com/{tid}/v2.0","sub":"pairwise-for-client","oid":"alice-oid","tid":"{tid}"}}"#
        )))
        .unwrap();
        let access = |sub: &str, oid: &str| {
            with_access(&jwt(&format!(
                r#"{{"iss":"https://sts.windows.net/{tid}/","sub":"{sub}","oid":"{oid}","tid":"{tid}"}}"#
            )))
        };
        assert!(
            access_token_of_login(&access("pairwise-for-api", "alice-oid"), Some(&login)).is_ok()
        );
        let err = access_token_of_login(&access("pairwise-for-api", "bob-oid"), Some(&login))
            .unwrap_err()
            .to_string();
        assert!(err.contains("oid `bob-oid`"), "{err}");
        assert!(
            err.contains("report this to the provider's administrators"),
            "{err}"
        );

        // A login without `oid` (no `profile` scope): refused, with what to add.
        let bare = Who::of(&jwt(&format!(
            r#"{{"iss":"https://login.microsoftonline.com/{tid}/v2.0","sub":"pairwise-for-client","tid":"{tid}"}}"#
        )))
        .unwrap();
        let err = access_token_of_login(&access("pairwise-for-api", "alice-oid"), Some(&bare))
            .unwrap_err()
            .to_string();
        assert!(err.contains("--oidc-extra-scope=profile"), "{err}");

        // Elsewhere `oid` and `tid` mean nothing: sub decides as before.
        let keycloak = Who::of(&jwt(
            r#"{"iss":"https://idp","sub":"alice","oid":"x","tid":"y"}"#,
        ))
        .unwrap();
        let other = with_access(&jwt(
            r#"{"iss":"https://idp","sub":"mallory","oid":"x","tid":"y"}"#,
        ));
        assert!(access_token_of_login(&other, Some(&keycloak)).is_err());
    }

    #[test]
    fn an_exchanged_token_must_name_the_login_it_came_from() {
        let alice = Who::of(&jwt(r#"{"iss":"https://idp","sub":"alice"}"#)).unwrap();
        let mallory = with_access(&jwt(r#"{"iss":"https://idp","sub":"mallory"}"#));
        let err = exchanged_for_login(&mallory, Some(&alice), "dev").unwrap_err();
        assert!(err.to_string().contains("sub `mallory`"), "{err}");
        let same = with_access(&jwt(r#"{"iss":"https://idp","sub":"alice"}"#));
        assert!(exchanged_for_login(&same, Some(&alice), "dev").is_ok());
    }
}
