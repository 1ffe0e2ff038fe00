//! The types the flows, the stores and the settings share: one login's tokens ([`TokenSet`]),
//! the key they are cached under ([`CacheKey`]) and where they are kept ([`Storage`]). They
//! live here, below all of them, so no building block reaches into a neighbour for them.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Offset;
use crate::times::{LATEST, MAX_CLOCK_OFFSET};

/// Where tokens are kept (`--token-cache-storage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// Refresh token in the OS keyring when one answers, else on disk; ID token on disk.
    Auto,
    /// Everything in 0600 files in the cache directory (kubelogin's default).
    Disk,
    /// Everything in the OS keyring.
    Keyring,
    /// Nothing is kept: every call signs in.
    None,
}

impl Storage {
    /// The flag value that selects this mode.
    pub fn name(self) -> &'static str {
        match self {
            Storage::Auto => "auto",
            Storage::Disk => "disk",
            Storage::Keyring => "keyring",
            Storage::None => "none",
        }
    }
}

/// How the client proved its secret at the token endpoint (RFC 6749 §2.3.1): HTTP Basic
/// (`client_secret_basic`, tried first, as Go's oauth2 package does for kubelogin) or the
/// secret in the request body (`client_secret_post`, which some clients at Auth0, Zitadel or
/// Authelia are limited to). Kept with the login, so a refresh never spends a request
/// finding it out again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    ClientSecretBasic,
    ClientSecretPost,
}

/// The tokens of one login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSet {
    pub id_token: String,
    /// `exp` of the ID token, Unix seconds.
    pub id_token_expiry: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_expiry: Option<i64>,
    /// Not serialised with the rest: stores keep it apart (see [`TokenStore`]).
    #[serde(skip)]
    pub refresh_token: Option<String>,
    /// The provider's clock minus this machine's, seconds, measured at the token response
    /// (see [`crate::clock`]); the expiries above are in the provider's clock.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub clock_offset: i64,
    /// The client authentication the provider accepted for this login; None for a public
    /// client, or a login cached before it was recorded (found out again at its refresh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<ClientAuth>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl TokenSet {
    /// Why the times of a token set read from a store cannot be right (a file edited, or
    /// damaged, or written by something else), or `None`. Such a set is a damaged entry.
    pub fn insane_times(&self) -> Option<String> {
        let range = 0..=LATEST;
        let max_offset = MAX_CLOCK_OFFSET;
        if !range.contains(&self.id_token_expiry) {
            return Some(format!(
                "id_token_expiry {} is out of range",
                self.id_token_expiry
            ));
        }
        if let Some(at) = self.access_token_expiry.filter(|at| !range.contains(at)) {
            return Some(format!("access_token_expiry {at} is out of range"));
        }
        if !(-max_offset..=max_offset).contains(&self.clock_offset) {
            return Some(format!(
                "clock_offset {} is out of range",
                self.clock_offset
            ));
        }
        None
    }

    /// The clock these tokens' expiries are judged by.
    pub fn clock(&self) -> Offset {
        Offset(self.clock_offset)
    }

    /// The token kubectl gets, and its expiry (in the provider's clock): the ID token, or the
    /// access token with `--oidc-use-access-token` or when the login brought no ID token (the
    /// client credentials grant at a provider that issues none).
    pub fn credential(&self, use_access_token: bool) -> Option<(&str, i64)> {
        if use_access_token || self.id_token.is_empty() {
            Some((self.access_token.as_deref()?, self.access_token_expiry?))
        } else {
            Some((&self.id_token, self.id_token_expiry))
        }
    }
}

/// Identifies one login: the same provider, client and request give the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    hex: String,
    pub issuer: String,
    pub client_id: String,
    pub account: Option<String>,
}

impl CacheKey {
    /// The key of one login. Everything that changes which tokens the provider issues feeds
    /// the hash; the client secret only feeds the hash, so two secrets for one client never
    /// share tokens.
    pub fn new(
        issuer: &str,
        client_id: &str,
        client_secret: Option<&str>,
        extra_scopes: &[String],
        auth_params: &[(String, String)],
        username: Option<&str>,
        account: Option<&str>,
    ) -> Self {
        let mut scopes = extra_scopes.to_vec();
        scopes.sort();
        let mut params = auth_params.to_vec();
        params.sort();
        let material = serde_json::json!({
            "issuer": issuer,
            "client_id": client_id,
            "client_secret": client_secret,
            "scopes": scopes,
            "auth_params": params,
            "username": username,
        });
        // Only a named account changes the key, so logins cached before accounts existed
        // (and kubeconfigs without --account) keep theirs: the default account.
        let material = match account {
            Some(account) => serde_json::json!({"key": material, "account": account}),
            None => material,
        };
        let digest = Sha256::digest(material.to_string().as_bytes());
        CacheKey {
            hex: hex(&digest),
            issuer: issuer.to_string(),
            client_id: client_id.to_string(),
            account: account.map(str::to_string),
        }
    }

    /// The key of a login recorded in the cache directory (see [`record_key`]).
    pub fn recorded(
        id: String,
        issuer: String,
        client_id: String,
        account: Option<String>,
    ) -> Self {
        CacheKey {
            hex: id,
            issuer,
            client_id,
            account,
        }
    }

    /// A file-name-safe identifier of the key.
    pub fn id(&self) -> &str {
        &self.hex
    }

    /// The key of a token obtained by exchanging this login's access token for one whose
    /// audience is `audience` (RFC 8693), asked with `scope` if any: one key per audience and
    /// scope, so a token minted for one cluster is never handed to another. The id starts
    /// with this login's id and a `-`, so removing a login can find the tokens derived from
    /// it. Without a scope, the key is the one tokens were cached under before scopes.
    pub fn for_exchange(&self, audience: &str, scope: Option<&str>) -> CacheKey {
        let material = match scope {
            None => serde_json::json!({ "token_exchange_audience": audience }),
            Some(scope) => serde_json::json!({
                "token_exchange_audience": audience,
                "token_exchange_scope": scope,
            }),
        };
        let digest = Sha256::digest(material.to_string().as_bytes());
        CacheKey {
            hex: format!("{}-{}", self.hex, hex(&digest[..16])),
            issuer: self.issuer.clone(),
            client_id: audience.to_string(),
            account: self.account.clone(),
        }
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_times_out_of_range_are_named() {
        let good = TokenSet {
            id_token: "id".into(),
            id_token_expiry: 1_800_000_000,
            access_token: None,
            access_token_expiry: Some(1_800_000_000),
            refresh_token: None,
            clock_offset: -30,
            client_auth: None,
        };
        assert_eq!(good.insane_times(), None);
        let bad = |f: fn(&mut TokenSet)| {
            let mut t = good.clone();
            f(&mut t);
            t.insane_times().unwrap()
        };
        assert!(bad(|t| t.id_token_expiry = i64::MIN).contains("id_token_expiry"));
        assert!(bad(|t| t.access_token_expiry = Some(LATEST + 1)).contains("access_token_expiry"));
        assert!(bad(|t| t.clock_offset = i64::MAX).contains("clock_offset"));
    }

    /// The key of issuer `https://i`, client `c` and every other flag at its default.
    fn key(account: Option<&str>) -> CacheKey {
        CacheKey::new("https://i", "c", None, &[], &[], None, account)
    }

    #[test]
    fn no_account_keeps_the_key_logins_were_cached_under_before_accounts() {
        // Pinned to the key the release before --account computed (checked against that
        // commit): changing it would orphan every cached login of every user.
        assert_eq!(
            key(None).id(),
            "c1a67aa4f93f567d171d432e0fa82662227cfb601299d64667101b92bd3680fc"
        );
    }

    #[test]
    fn each_account_has_its_own_key() {
        let default = key(None);
        let admin = key(Some("admin"));
        let personal = key(Some("personal"));
        assert_ne!(default.id(), admin.id());
        assert_ne!(admin.id(), personal.id());
        assert_eq!(admin.id(), key(Some("admin")).id());
    }

    #[test]
    fn each_audience_has_its_own_key_derived_from_its_login() {
        let login = key(None);
        let dev = login.for_exchange("dev", None);
        let prod = login.for_exchange("prod", None);
        assert_ne!(dev.id(), prod.id());
        assert_ne!(dev.id(), login.id());
        assert_eq!(dev.id(), login.for_exchange("dev", None).id());
        assert!(dev.id().starts_with(&format!("{}-", login.id())));
        // Pinned to the key of the release before scopes: a cluster's cached token is kept.
        assert_eq!(
            dev.id(),
            format!("{}-8764d487f8941606ec3911885937e271", login.id())
        );
        // A scope is its own token, still derived from the login.
        let scoped = login.for_exchange("dev", Some("aud-dev"));
        assert_ne!(scoped.id(), dev.id());
        assert!(scoped.id().starts_with(&format!("{}-", login.id())));
        // Another login (another account) never shares an audience's key.
        assert_ne!(key(Some("admin")).for_exchange("dev", None).id(), dev.id());
    }
}
