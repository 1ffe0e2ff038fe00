//! Where tokens live between calls.
//!
//! A [`TokenStore`] keeps one [`TokenSet`] per [`CacheKey`]. The hot path asks only for the
//! short-lived token ([`TokenStore::load`]); the refresh token is read on a miss
//! ([`TokenStore::load_refresh_token`]), so a store may keep it somewhere slower and safer.

pub mod auto;
pub mod clean;
pub mod disk;
pub mod file;
pub mod keyring;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::cli::StorageArg;
use crate::config::Config;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot use the token cache directory {path}: {source}; check its owner and permissions, or choose another with --token-cache-dir")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the token cache file {path}: {source}; check free space and permissions of --token-cache-dir")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the token cache file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("OS keyring: {0}; choose --token-cache-storage=disk where no keyring runs")]
    Keyring(String),
    #[error(
        "the token cache file {path} is damaged ({reason}); it will be replaced at the next login"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error("the token cache file {path} belongs to another user (uid {owner}); it is ignored: remove it, or fix the owner of --token-cache-dir")]
    ForeignOwner { path: PathBuf, owner: u32 },
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
}

impl TokenSet {
    /// The token kubectl gets, and its expiry: the ID token, or the access token with
    /// `--oidc-use-access-token`.
    pub fn credential(&self, use_access_token: bool) -> Option<(&str, i64)> {
        if use_access_token {
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
    pub fn new(config: &Config) -> Self {
        let mut scopes = config.extra_scopes.clone();
        scopes.sort();
        let mut params = config.auth_extra_params.clone();
        params.sort();
        // The secret only feeds the hash, so two secrets for one client never share tokens.
        let material = serde_json::json!({
            "issuer": config.issuer_url,
            "client_id": config.client_id,
            "client_secret": config.client_secret,
            "scopes": scopes,
            "auth_params": params,
            "username": config.username,
        });
        // Only a named account changes the key, so logins cached before accounts existed
        // (and kubeconfigs without --account) keep theirs: the default account.
        let material = match &config.account {
            Some(account) => serde_json::json!({"key": material, "account": account}),
            None => material,
        };
        let digest = Sha256::digest(material.to_string().as_bytes());
        CacheKey {
            hex: hex(&digest),
            issuer: config.issuer_url.clone(),
            client_id: config.client_id.clone(),
            account: config.account.clone(),
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
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A place that keeps token sets.
pub trait TokenStore {
    /// The short-lived tokens (ID and access token) without the refresh token. This is the
    /// hot path: it must not touch the network or a keyring daemon unless the mode says so.
    fn load(&self, key: &CacheKey) -> Result<Option<TokenSet>, StoreError>;
    /// The refresh token, read only when the short-lived token is no longer valid.
    fn load_refresh_token(&self, key: &CacheKey) -> Result<Option<String>, StoreError>;
    /// Replaces everything stored for `key`, refresh token included (None deletes it).
    fn save(&self, key: &CacheKey, tokens: &TokenSet) -> Result<(), StoreError>;
    /// Deletes everything stored for `key`.
    fn remove(&self, key: &CacheKey) -> Result<(), StoreError>;
}

/// Keeps nothing: `--token-cache-storage=none`.
pub struct NoStore;

impl TokenStore for NoStore {
    fn load(&self, _: &CacheKey) -> Result<Option<TokenSet>, StoreError> {
        Ok(None)
    }
    fn load_refresh_token(&self, _: &CacheKey) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
    fn save(&self, _: &CacheKey, _: &TokenSet) -> Result<(), StoreError> {
        Ok(())
    }
    fn remove(&self, _: &CacheKey) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Records which issuer and client a key belongs to (no secret), so `clean` can find the
/// keyring entries of a login even when no token file exists (keyring mode).
pub fn record_key(dir: &Path, key: &CacheKey) -> Result<(), StoreError> {
    let meta = serde_json::json!({
        "issuer": key.issuer,
        "client_id": key.client_id,
        "account": key.account,
    });
    file::write_private(
        &dir.join(format!("{}.meta.json", key.id())),
        meta.to_string().as_bytes(),
    )
}

/// Opens the store the flags ask for. Cheap: no keyring daemon is contacted here.
pub fn open(config: &Config) -> Box<dyn TokenStore> {
    open_at(&config.cache_dir, config.storage)
}

pub fn open_at(dir: &Path, storage: StorageArg) -> Box<dyn TokenStore> {
    match storage {
        StorageArg::None => Box::new(NoStore),
        StorageArg::Disk => Box::new(disk::DiskStore::new(dir.to_path_buf())),
        StorageArg::Auto => Box::new(auto::AutoStore::new(disk::DiskStore::new(
            dir.to_path_buf(),
        ))),
        StorageArg::Keyring => Box::new(keyring::KeyringStore::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(account: Option<&str>) -> Config {
        let mut config = Config::from_args(&crate::test_support::args()).unwrap();
        config.account = account.map(str::to_string);
        config
    }

    #[test]
    fn no_account_keeps_the_key_logins_were_cached_under_before_accounts() {
        // Pinned to the key the release before --account computed (checked against that
        // commit): changing it would orphan every cached login of every user.
        assert_eq!(
            CacheKey::new(&config(None)).id(),
            "c1a67aa4f93f567d171d432e0fa82662227cfb601299d64667101b92bd3680fc"
        );
    }

    #[test]
    fn each_account_has_its_own_key() {
        let default = CacheKey::new(&config(None));
        let admin = CacheKey::new(&config(Some("admin")));
        let personal = CacheKey::new(&config(Some("personal")));
        assert_ne!(default.id(), admin.id());
        assert_ne!(admin.id(), personal.id());
        assert_eq!(admin.id(), CacheKey::new(&config(Some("admin"))).id());
    }
}
