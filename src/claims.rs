//! The identity in a cached ID token, for people: `setup` and `whoami` show it. The token was
//! verified when it was cached; this only reads its claims.

use serde::Deserialize;

// Like every derived struct, this also parses from a JSON array of its fields (found by
// fuzzing). Harmless: claims are read only from tokens the plugin verified (or passes along
// unverified for display), and the array form can say nothing the object form cannot.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Identity {
    #[serde(default)]
    pub iss: String,
    #[serde(default)]
    pub sub: String,
    #[serde(default, deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    pub azp: Option<String>,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub preferred_username: Option<String>,
    pub groups: Option<Vec<String>>,
    #[serde(default)]
    pub exp: i64,
    pub iat: Option<i64>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

impl Identity {
    pub fn from_id_token(token: &str) -> Option<Self> {
        crate::jwt::peek_claims(token)
    }

    /// The claim the API server should take the username from: `email` when the provider
    /// vouches for it (kube-apiserver refuses unverified emails), else `sub`.
    pub fn suggested_username_claim(&self) -> &'static str {
        if self.email.is_some() && self.email_verified == Some(true) {
            "email"
        } else {
            "sub"
        }
    }

    /// Who this is, for people: the email, else the subject.
    pub fn who(self) -> String {
        self.email.unwrap_or(self.sub)
    }

    /// Lifetime of the token in seconds, when it says when it was issued.
    pub fn lifetime(&self) -> Option<i64> {
        self.iat.map(|iat| self.exp.saturating_sub(iat))
    }
}

/// "in 4m 10s" or "3m ago", relative to `now`.
pub fn relative(when: i64, now: i64) -> String {
    let delta = when.saturating_sub(now);
    let span = human(delta.unsigned_abs());
    if delta >= 0 {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

/// "1h 5m", "4m 10s", "12s".
pub fn human(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s}s"),
        _ => format!("{h}h {m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn relative_times_saturate() {
        assert!(relative(i64::MAX, i64::MIN).starts_with("in "));
        assert!(relative(i64::MIN, i64::MAX).ends_with(" ago"));
    }

    fn token(claims: &str) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", b64("{}"), b64(claims))
    }

    #[test]
    fn reads_audience_as_string_or_list_and_suggests_claims() {
        let id = Identity::from_id_token(&token(
            r#"{"iss":"i","sub":"s","aud":"k","exp":10,"iat":4,"email":"a@b","email_verified":true}"#,
        ))
        .unwrap();
        assert_eq!(id.aud, ["k"]);
        assert_eq!(id.suggested_username_claim(), "email");
        assert_eq!(id.lifetime(), Some(6));
        let id = Identity::from_id_token(&token(
            r#"{"iss":"i","sub":"s","aud":["k","x"],"exp":10,"email":"a@b","email_verified":false}"#,
        ))
        .unwrap();
        assert_eq!(id.aud, ["k", "x"]);
        assert_eq!(id.suggested_username_claim(), "sub");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(relative(70, 0), "in 1m 10s");
        assert_eq!(relative(0, 5), "5s ago");
        assert_eq!(human(3 * 3600 + 120), "3h 2m");
    }
}
