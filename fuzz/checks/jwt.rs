//! Claims read from tokens without verification: `exp` for the cache, the identity for
//! people (whoami, accounts, setup), the subject compared across refreshes.

use base64::Engine;
use kubectl_oidc_login::claims::{relative, Identity};
use kubectl_oidc_login::login_report::{self, Format};
use kubectl_oidc_login::oidc::verify::Who;
use kubectl_oidc_login::times::LATEST;
use kubectl_oidc_login::tokens::{CacheKey, Storage, TokenSet};

use super::text;

/// The first byte says whether the rest is a whole token (odd) or the claims of one (even),
/// so the mutations reach both the JWS framing and the JSON inside.
pub fn claims(data: &[u8]) {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let token = if mode & 1 == 1 {
        text(rest)
    } else {
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        format!("{}.{}.c2ln", b64(br#"{"alg":"RS256"}"#), b64(rest))
    };

    let expiry = kubectl_oidc_login::jwt::peek_expiry(&token);
    if let Some(exp) = expiry {
        assert!((0..=LATEST).contains(&exp), "exp {exp} escaped the clamp");
    }

    if let Some(identity) = Identity::from_id_token(&token) {
        let _ = identity.suggested_username_claim();
        let _ = identity.lifetime();
        for now in [0, 1_700_000_000, LATEST, i64::MIN, i64::MAX] {
            let _ = relative(identity.exp, now);
        }
        let _ = identity.who();
    }

    if let Some(who) = Who::of(&token) {
        let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        let others = [
            Who {
                iss: Some("https://op.example".into()),
                sub: Some("alice".into()),
                oid: None,
                tid: None,
            },
            // An Entra ID login, where `oid` and the tenant decide (pairwise `sub`).
            Who {
                iss: Some(format!("https://login.microsoftonline.com/{tenant}/v2.0")),
                sub: Some("pairwise".into()),
                oid: Some("alice-oid".into()),
                tid: Some(tenant.into()),
            },
        ];
        for other in &others {
            assert_eq!(who.differs(other), other.differs(&who));
        }
        assert!(!who.differs(&who));
    }

    // What whoami -o json|yaml prints of a login holding this token everywhere: no token.
    // The same login holding a token without claims is the baseline: text found in both is
    // the report's own (a field name, a time), not the token.
    let key = CacheKey::new("https://op.example", "kubectl", None, &[], &[], None, None);
    let dir = std::path::Path::new("/nonexistent-cache-dir");
    let report_of = |token: &str, format: Format| {
        let tokens = TokenSet {
            id_token: token.to_string(),
            id_token_expiry: expiry.unwrap_or(0),
            access_token: Some(token.to_string()),
            access_token_expiry: expiry,
            refresh_token: Some(token.to_string()),
            clock_offset: 0,
            client_auth: None,
        };
        let report = login_report::login(&key, Some(&tokens), Some(token), Storage::Disk, dir);
        login_report::render(&report, format)
    };
    for format in [Format::Json, Format::Yaml] {
        let out = report_of(&token, format);
        if !report_of("no.claims.here", format).contains(&token) {
            assert!(!out.contains(&token), "the report holds the token");
        }
        // Whatever the claims hold, no terminal control or character YAML forbids is raw.
        assert!(
            !out.chars()
                .any(|c| c != '\n' && kubectl_oidc_login::log::is_hostile(c)),
            "-o {format:?} holds a hostile character raw: {out:?}"
        );
        if matches!(format, Format::Json) {
            serde_json::from_str::<serde_json::Value>(&out).expect("-o json is JSON");
        }
    }
}
