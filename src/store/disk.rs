//! The disk store: `<key>.token.json` with the short-lived tokens (read by the hot path) and
//! `<key>.refresh.json` with the refresh token, both 0600 in a 0700 directory.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{StoreError, TokenStore};
use crate::private_file::CacheDir;
use crate::tokens::{CacheKey, TokenSet};

/// Bumped when the file layout changes; files of another version are a cache miss.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct TokenFile {
    version: u32,
    issuer: String,
    client_id: String,
    #[serde(flatten)]
    tokens: TokenSet,
}

#[derive(Serialize, Deserialize)]
struct RefreshFile {
    version: u32,
    refresh_token: String,
}

pub struct DiskStore {
    dir: PathBuf,
}

fn token_name(key: &CacheKey) -> String {
    format!("{}.token.json", key.id())
}

fn refresh_name(key: &CacheKey) -> String {
    format!("{}.refresh.json", key.id())
}

impl DiskStore {
    pub fn new(dir: PathBuf) -> Self {
        DiskStore { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn token_path(&self, key: &CacheKey) -> PathBuf {
        token_path(&self.dir, key)
    }

    pub fn refresh_path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(refresh_name(key))
    }

    /// The directory for reading: `None` when it does not exist yet.
    fn reading(&self) -> Result<Option<std::sync::Arc<CacheDir>>, StoreError> {
        Ok(CacheDir::open(&self.dir)?)
    }

    /// Writes only the short-lived tokens (the refresh token lives elsewhere).
    pub fn save_short_lived(&self, key: &CacheKey, tokens: &TokenSet) -> Result<(), StoreError> {
        let file = TokenFile {
            version: FORMAT_VERSION,
            issuer: key.issuer.clone(),
            client_id: key.client_id.clone(),
            tokens: tokens.clone(),
        };
        let json = serde_json::to_vec(&file).expect("token file serialises");
        Ok(CacheDir::create(&self.dir)?.write(&token_name(key), &json)?)
    }

    pub fn save_refresh_token(
        &self,
        key: &CacheKey,
        refresh: Option<&str>,
    ) -> Result<(), StoreError> {
        let name = refresh_name(key);
        match refresh {
            Some(token) => {
                let json = serde_json::to_vec(&RefreshFile {
                    version: FORMAT_VERSION,
                    refresh_token: token.to_string(),
                })
                .expect("refresh file serialises");
                Ok(CacheDir::create(&self.dir)?.write(&name, &json)?)
            }
            None => match self.reading()? {
                Some(dir) => Ok(dir.remove(&name).map(|_| ())?),
                None => Ok(()),
            },
        }
    }
}

pub fn token_path(dir: &Path, key: &CacheKey) -> PathBuf {
    dir.join(token_name(key))
}

/// Reads the token file of `key` in `dir`; the one function the hot path calls: one open
/// of the directory, one of the file, one read. The issuer and client (the audience, for an
/// exchanged token: see [`CacheKey::for_exchange`]) stored in the file must be the call's:
/// a file that names another login (copied or linked under this name) is a miss, with a
/// warning, never handed out.
pub fn load_token_file(dir: &CacheDir, key: &CacheKey) -> Result<Option<TokenSet>, StoreError> {
    let name = token_name(key);
    let Some(bytes) = dir.read(&name)? else {
        return Ok(None);
    };
    let corrupt = |reason: String| StoreError::Corrupt {
        path: dir.file_path(&name),
        reason,
    };
    let file: TokenFile = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    if file.version != FORMAT_VERSION {
        return Err(corrupt(format!(
            "format version {} where {FORMAT_VERSION} is expected",
            file.version
        )));
    }
    if let Some(reason) = file.tokens.insane_times() {
        return Err(corrupt(reason));
    }
    if file.issuer != key.issuer || file.client_id != key.client_id {
        crate::warn!(
            "the token cache file {} holds a login of another issuer or client; it is ignored (a new one replaces it)",
            dir.file_path(&name).display()
        );
        return Ok(None);
    }
    Ok(Some(file.tokens))
}

impl TokenStore for DiskStore {
    fn load(&self, key: &CacheKey) -> Result<Option<TokenSet>, StoreError> {
        match self.reading()? {
            Some(dir) => load_token_file(&dir, key),
            None => Ok(None),
        }
    }

    fn load_refresh_token(&self, key: &CacheKey) -> Result<Option<String>, StoreError> {
        let Some(dir) = self.reading()? else {
            return Ok(None);
        };
        let name = refresh_name(key);
        let Some(bytes) = dir.read(&name)? else {
            return Ok(None);
        };
        let file: RefreshFile =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                path: dir.file_path(&name),
                reason: e.to_string(),
            })?;
        Ok(Some(file.refresh_token))
    }

    fn save(&self, key: &CacheKey, tokens: &TokenSet) -> Result<(), StoreError> {
        // The refresh token first: a crash between the two writes then leaves an old ID token
        // beside a new refresh token, which still refreshes; the other order would pair a new
        // ID token with a rotated-away refresh token and force a browser login later.
        self.save_refresh_token(key, tokens.refresh_token.as_deref())?;
        self.save_short_lived(key, tokens)
    }

    fn remove(&self, key: &CacheKey) -> Result<(), StoreError> {
        if let Some(dir) = self.reading()? {
            dir.remove(&refresh_name(key))?;
            dir.remove(&token_name(key))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CacheKey {
        CacheKey::new(
            "https://issuer.example/realms/r",
            "kubernetes",
            None,
            &[],
            &[],
            None,
            None,
        )
    }

    fn tokens() -> TokenSet {
        TokenSet {
            id_token: "id".into(),
            id_token_expiry: 42,
            access_token: Some("at".into()),
            access_token_expiry: Some(43),
            refresh_token: Some("rt".into()),
            // A machine 7 minutes behind its provider: the offset is kept with the login.
            clock_offset: 420,
            // A client limited to client_secret_post: the style is kept with the login.
            client_auth: Some(crate::tokens::ClientAuth::ClientSecretPost),
        }
    }

    #[test]
    fn round_trips_and_keeps_the_refresh_token_apart() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::new(dir.path().to_path_buf());
        let key = key();
        store.save(&key, &tokens()).unwrap();
        let loaded = store.load(&key).unwrap().unwrap();
        assert_eq!(loaded.refresh_token, None);
        assert_eq!(loaded.id_token, "id");
        assert_eq!(
            store.load_refresh_token(&key).unwrap().as_deref(),
            Some("rt")
        );
        let token_file = std::fs::read_to_string(store.token_path(&key)).unwrap();
        assert!(!token_file.contains("\"rt\""), "{token_file}");
        store.remove(&key).unwrap();
        assert!(store.load(&key).unwrap().is_none());
        assert!(store.load_refresh_token(&key).unwrap().is_none());
    }

    #[test]
    fn a_damaged_file_is_reported_not_panicked_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::new(dir.path().to_path_buf());
        let key = key();
        std::fs::write(store.token_path(&key), b"{\"version\":1,\"id_tok").unwrap();
        assert!(matches!(store.load(&key), Err(StoreError::Corrupt { .. })));
        std::fs::write(
            store.token_path(&key),
            br#"{"version":9,"issuer":"","client_id":"","id_token":"","id_token_expiry":0}"#,
        )
        .unwrap();
        assert!(matches!(store.load(&key), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn a_file_of_another_login_under_this_name_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::new(dir.path().to_path_buf());
        let prod = key();
        let dev = CacheKey::new(
            "https://issuer.example/realms/r",
            "dev-cluster",
            None,
            &[],
            &[],
            None,
            None,
        );
        store.save(&prod, &tokens()).unwrap();
        std::fs::copy(store.token_path(&prod), store.token_path(&dev)).unwrap();
        assert_eq!(store.load(&dev).unwrap(), None);
        assert!(store.load(&prod).unwrap().is_some());
        // An exchanged token is checked against its audience.
        let for_dev = prod.for_exchange("dev", None);
        store
            .save_short_lived(&prod.for_exchange("prod", None), &tokens())
            .unwrap();
        std::fs::copy(
            store.token_path(&prod.for_exchange("prod", None)),
            store.token_path(&for_dev),
        )
        .unwrap();
        assert_eq!(store.load(&for_dev).unwrap(), None);
    }
}
