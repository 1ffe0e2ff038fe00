//! Where tokens live between calls.
//!
//! A [`TokenStore`] keeps one [`TokenSet`] per [`CacheKey`]. The hot path asks only for the
//! short-lived token ([`TokenStore::load`]); the refresh token is read on a miss
//! ([`TokenStore::load_refresh_token`]), so a store may keep it somewhere slower and safer.

pub mod auto;
pub mod clean;
pub mod disk;
pub mod keyring;
pub mod kubelogin;

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::private_file::FileError;
use crate::tokens::{CacheKey, Storage, TokenSet};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("OS keyring: {0}; choose --token-cache-storage=disk where no keyring runs{see}", see = crate::troubleshooting::see("no-os-keyring"))]
    Keyring(String),
    #[error(
        "the token cache file {path} is damaged ({reason}); it will be replaced at the next login"
    )]
    Corrupt { path: PathBuf, reason: String },
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
    Ok(crate::private_file::CacheDir::create(dir)?.write(
        &format!("{}.meta.json", key.id()),
        meta.to_string().as_bytes(),
    )?)
}

/// Opens the store of `storage` over `dir`. Cheap: no keyring daemon is contacted here.
pub fn open(dir: &Path, storage: Storage) -> Box<dyn TokenStore> {
    match storage {
        Storage::None => Box::new(NoStore),
        Storage::Disk => Box::new(disk::DiskStore::new(dir.to_path_buf())),
        Storage::Auto => Box::new(auto::AutoStore::new(disk::DiskStore::new(
            dir.to_path_buf(),
        ))),
        Storage::Keyring => Box::new(keyring::KeyringStore::new()),
    }
}
