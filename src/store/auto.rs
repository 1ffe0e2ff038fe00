//! `--token-cache-storage=auto`, the default: the refresh token (long-lived, the one worth
//! stealing) in the OS keyring, the short-lived ID and access tokens in a 0600 file so the hot
//! path never waits for D-Bus. With no keyring (headless server, container, CI) the refresh
//! token goes to a 0600 file too, with a one-line warning.

use super::disk::DiskStore;
use super::keyring::{refresh_entry, Keyring};
use super::{StoreError, TokenStore};
use crate::tokens::{CacheKey, TokenSet};

pub struct AutoStore {
    disk: DiskStore,
    keyring: Keyring,
}

impl AutoStore {
    pub fn new(disk: DiskStore) -> Self {
        AutoStore {
            disk,
            keyring: Keyring,
        }
    }
}

impl TokenStore for AutoStore {
    fn load(&self, key: &CacheKey) -> Result<Option<TokenSet>, StoreError> {
        self.disk.load(key)
    }

    fn load_refresh_token(&self, key: &CacheKey) -> Result<Option<String>, StoreError> {
        match self.keyring.get(&refresh_entry(key)) {
            Ok(Some(token)) => Ok(Some(token)),
            // Nothing in the keyring: a login made in disk mode, or while the keyring was away.
            Ok(None) => self.disk.load_refresh_token(key),
            Err(e) => {
                crate::debug!(1, "{e}; reading the refresh token from disk");
                self.disk.load_refresh_token(key)
            }
        }
    }

    fn save(&self, key: &CacheKey, tokens: &TokenSet) -> Result<(), StoreError> {
        let refresh = tokens.refresh_token.as_deref();
        let in_keyring = match refresh {
            Some(token) => self.keyring.set(&refresh_entry(key), token),
            None => self.keyring.delete(&refresh_entry(key)).map(|_| ()),
        };
        match in_keyring {
            Ok(()) => {
                // The keyring has it: no copy may stay on disk.
                self.disk.save_refresh_token(key, None)?;
            }
            Err(e) => {
                crate::warn!(
                    "{e}; keeping the refresh token in a 0600 file in {} instead (--token-cache-storage=disk silences this)",
                    self.disk.dir().display()
                );
                self.disk.save_refresh_token(key, refresh)?;
            }
        }
        self.disk.save_short_lived(key, tokens)
    }

    fn remove(&self, key: &CacheKey) -> Result<(), StoreError> {
        if let Err(e) = super::keyring::remove_all(&self.keyring, key.id()) {
            crate::debug!(1, "{e}");
        }
        self.disk.remove(key)
    }
}
