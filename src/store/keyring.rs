//! The OS keyring (Secret Service on Linux, Keychain on macOS, Credential Manager on Windows),
//! through the `keyring` crate, with every call bounded in time.
//!
//! A missing bus or daemon fails in milliseconds, but a secrets daemon that is alive and not
//! answering makes a call block forever; kubectl must never hang on that. So each call runs on
//! a worker thread and is abandoned after [`CALL_TIMEOUT`].

use std::sync::mpsc;
use std::time::Duration;

use thiserror::Error;

use super::{StoreError, TokenStore};
use crate::tokens::{CacheKey, ClientAuth, TokenSet};

/// Service name of every entry; `secret-tool search service kubectl-oidc-login` lists them.
pub const SERVICE: &str = "kubectl-oidc-login";
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Error, Clone)]
pub enum KeyringError {
    #[error("no OS keyring answers ({0})")]
    Unavailable(String),
    #[error("the OS keyring refused the operation: {0}")]
    Failed(String),
}

/// The entry names of one cache key.
pub fn refresh_entry(key: &CacheKey) -> String {
    format!("{}/refresh_token", key.id())
}
fn id_token_entry(key: &CacheKey) -> String {
    format!("{}/id_token", key.id())
}
fn access_token_entry(key: &CacheKey) -> String {
    format!("{}/access_token", key.id())
}
fn all_entries(key_id: &str) -> [String; 3] {
    ["refresh_token", "id_token", "access_token"].map(|kind| format!("{key_id}/{kind}"))
}

#[derive(Clone, Copy, Default)]
pub struct Keyring;

impl Keyring {
    pub fn get(&self, entry: &str) -> Result<Option<String>, KeyringError> {
        let entry = entry.to_string();
        bounded(
            move || match keyring::Entry::new(SERVICE, &entry)?.get_password() {
                Ok(secret) => Ok(Some(secret)),
                Err(keyring::Error::NoEntry) => Ok(None),
                Err(e) => Err(e),
            },
        )
    }

    pub fn set(&self, entry: &str, secret: &str) -> Result<(), KeyringError> {
        let (entry, secret) = (entry.to_string(), secret.to_string());
        bounded(move || keyring::Entry::new(SERVICE, &entry)?.set_password(&secret))
    }

    /// Deletes `entry`; `Ok(false)` when there was none.
    pub fn delete(&self, entry: &str) -> Result<bool, KeyringError> {
        let entry = entry.to_string();
        bounded(
            move || match keyring::Entry::new(SERVICE, &entry)?.delete_credential() {
                Ok(()) => Ok(true),
                Err(keyring::Error::NoEntry) => Ok(false),
                Err(e) => Err(e),
            },
        )
    }
}

impl Keyring {
    /// Every item of another program's `service`, as (user name, secret): the entries
    /// int128/kubelogin left. Only stores that can search by attribute list anything (the
    /// Secret Service does); elsewhere the list is empty.
    pub fn items_of(&self, service: &str) -> Result<Vec<(String, String)>, KeyringError> {
        let service = service.to_string();
        bounded(move || {
            if let Err(e) = keyring::Entry::store_status() {
                return Err(keyring::Error::NoStorageAccess(Box::new(
                    std::io::Error::other(e.to_string()),
                )));
            }
            let spec = std::collections::HashMap::from([("service", service.as_str())]);
            let found = match keyring_core::Entry::search(&spec) {
                Ok(found) => found,
                Err(keyring::Error::NotSupportedByStore(_) | keyring::Error::Invalid(..)) => {
                    Vec::new()
                }
                Err(e) => return Err(e),
            };
            let mut items = Vec::new();
            for entry in found {
                let user = entry
                    .get_attributes()?
                    .remove("username")
                    .unwrap_or_default();
                match entry.get_password() {
                    Ok(secret) => items.push((user, secret)),
                    Err(keyring::Error::NoEntry) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(items)
        })
    }

    /// Deletes another program's item `user` of `service`; `Ok(false)` when there was none.
    pub fn delete_of(&self, service: &str, user: &str) -> Result<bool, KeyringError> {
        let (service, user) = (service.to_string(), user.to_string());
        bounded(
            move || match keyring::Entry::new(&service, &user)?.delete_credential() {
                Ok(()) => Ok(true),
                Err(keyring::Error::NoEntry) => Ok(false),
                Err(e) => Err(e),
            },
        )
    }
}

/// Runs a keyring call on a worker thread, giving up after [`CALL_TIMEOUT`]. An abandoned
/// worker stays blocked until the process exits, which happens right after.
fn bounded<T: Send + 'static>(
    call: impl FnOnce() -> keyring::Result<T> + Send + 'static,
) -> Result<T, KeyringError> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(call());
    });
    match rx.recv_timeout(CALL_TIMEOUT) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(classify(e)),
        Err(_) => Err(KeyringError::Unavailable(format!(
            "no answer within {CALL_TIMEOUT:?}"
        ))),
    }
}

fn classify(err: keyring::Error) -> KeyringError {
    use keyring::Error as E;
    match err {
        E::NoDefaultStore | E::PlatformFailure(_) | E::NoStorageAccess(_) => {
            KeyringError::Unavailable(one_line(&err))
        }
        other => KeyringError::Failed(one_line(&other)),
    }
}

fn one_line(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text.replace('\n', " ")
}

impl From<KeyringError> for StoreError {
    fn from(e: KeyringError) -> Self {
        StoreError::Keyring(e.to_string())
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Expiring {
    token: String,
    expiry: i64,
    /// The provider's clock minus this machine's (see crate::clock); absent when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    clock_offset: i64,
    /// On the ID token's entry: the login's client authentication (see TokenSet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_auth: Option<ClientAuth>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// `--token-cache-storage=keyring`: every token in the keyring, one entry each (Windows'
/// Credential Manager holds about 2.5 KB per entry, so they are never combined).
pub struct KeyringStore {
    keyring: Keyring,
}

impl KeyringStore {
    pub fn new() -> Self {
        KeyringStore { keyring: Keyring }
    }

    fn get_expiring(&self, entry: &str) -> Result<Option<Expiring>, StoreError> {
        match self.keyring.get(entry)? {
            Some(json) => serde_json::from_str(&json)
                .map(Some)
                .map_err(|e| StoreError::Keyring(format!("entry {entry} is damaged: {e}"))),
            None => Ok(None),
        }
    }

    fn set_expiring(
        &self,
        entry: &str,
        token: &str,
        expiry: i64,
        clock_offset: i64,
        client_auth: Option<ClientAuth>,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(&Expiring {
            token: token.to_string(),
            expiry,
            clock_offset,
            client_auth,
        })
        .expect("entry serialises");
        Ok(self.keyring.set(entry, &json)?)
    }
}

impl Default for KeyringStore {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenStore for KeyringStore {
    fn load(&self, key: &CacheKey) -> Result<Option<TokenSet>, StoreError> {
        let Some(id) = self.get_expiring(&id_token_entry(key))? else {
            return Ok(None);
        };
        let access = self.get_expiring(&access_token_entry(key))?;
        let tokens = TokenSet {
            id_token: id.token,
            id_token_expiry: id.expiry,
            access_token_expiry: access.as_ref().map(|a| a.expiry),
            access_token: access.map(|a| a.token),
            refresh_token: None,
            clock_offset: id.clock_offset,
            client_auth: id.client_auth,
        };
        if let Some(reason) = tokens.insane_times() {
            return Err(StoreError::Keyring(format!(
                "entry {} is damaged: {reason}",
                id_token_entry(key)
            )));
        }
        Ok(Some(tokens))
    }

    fn load_refresh_token(&self, key: &CacheKey) -> Result<Option<String>, StoreError> {
        Ok(self.keyring.get(&refresh_entry(key))?)
    }

    fn save(&self, key: &CacheKey, tokens: &TokenSet) -> Result<(), StoreError> {
        match &tokens.refresh_token {
            Some(refresh) => self.keyring.set(&refresh_entry(key), refresh)?,
            None => {
                self.keyring.delete(&refresh_entry(key))?;
            }
        }
        if let (Some(token), Some(expiry)) = (&tokens.access_token, tokens.access_token_expiry) {
            self.set_expiring(
                &access_token_entry(key),
                token,
                expiry,
                tokens.clock_offset,
                None,
            )?;
        }
        self.set_expiring(
            &id_token_entry(key),
            &tokens.id_token,
            tokens.id_token_expiry,
            tokens.clock_offset,
            tokens.client_auth,
        )
    }

    fn remove(&self, key: &CacheKey) -> Result<(), StoreError> {
        remove_all(&self.keyring, key.id())?;
        Ok(())
    }
}

/// Deletes every keyring entry of the key with id `key_id`; returns how many there were.
pub fn remove_all(keyring: &Keyring, key_id: &str) -> Result<usize, KeyringError> {
    let mut removed = 0;
    for entry in all_entries(key_id) {
        if keyring.delete(&entry)? {
            removed += 1;
        }
    }
    Ok(removed)
}
