//! int128/kubelogin's token cache, so a user who replaces kubelogin keeps their login and
//! `clean` leaves no refresh token of kubelogin's behind.
//!
//! kubelogin keeps `{"id_token","refresh_token"}` JSON in a file of the cache directory named
//! by the SHA-256 of a Go-gob-encoded key (no suffix), or in the OS keyring under service
//! `kubelogin`, item `kubelogin/tokencache/<hash>`. Reproducing the gob hash would tie this
//! plugin to Go's encoding of kubelogin's internal struct, so entries are matched by what
//! their ID token says instead: its `iss` and `aud`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::keyring::Keyring;
use super::StoreError;
use crate::claims::Identity;
use crate::private_file::CacheDir;

/// kubelogin's keyring service name.
pub const SERVICE: &str = "kubelogin";
const ITEM_PREFIX: &str = "kubelogin/tokencache/";

/// Where a kubelogin entry was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    Keyring(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File(path) => write!(f, "file {}", path.display()),
            Origin::Keyring(item) => write!(f, "keyring item {SERVICE}/{item}"),
        }
    }
}

/// One login kubelogin cached.
#[derive(Debug, Clone)]
pub struct Entry {
    pub origin: Origin,
    pub id_token: String,
    pub refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    id_token: String,
    #[serde(default)]
    refresh_token: String,
}

impl Entry {
    fn parse(origin: Origin, bytes: &[u8]) -> Option<Entry> {
        let raw: Raw = serde_json::from_slice(bytes).ok()?;
        Some(Entry {
            origin,
            id_token: raw.id_token,
            refresh_token: Some(raw.refresh_token).filter(|t| !t.is_empty()),
        })
    }

    /// Whether this entry is a login of `client_id` at `issuer`, by its ID token's claims;
    /// `None` matches any (and with both `None`, even an entry whose token cannot be read).
    pub fn matches(&self, issuer: Option<&str>, client_id: Option<&str>) -> bool {
        if issuer.is_none() && client_id.is_none() {
            return true;
        }
        Identity::from_id_token(&self.id_token).is_some_and(|id| {
            issuer.is_none_or(|i| i == id.iss)
                && client_id.is_none_or(|c| id.aud.iter().any(|a| a == c))
        })
    }
}

/// A kubelogin cache file name: 64 hex digits and nothing else.
fn is_cache_file_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// kubelogin's cache files in `dir`. Files that are not kubelogin's JSON, or that belong to
/// another user, are passed over.
pub fn files(dir: &Path) -> Vec<Entry> {
    let dir = match CacheDir::open(dir) {
        Ok(Some(dir)) => dir,
        Ok(None) => return Vec::new(),
        Err(err) => {
            crate::debug!(1, "kubelogin cache: {err}");
            return Vec::new();
        }
    };
    let Ok(names) = dir.names() else {
        return Vec::new();
    };
    let mut found: Vec<Entry> = names
        .iter()
        .filter(|name| is_cache_file_name(name))
        .filter_map(|name| {
            let bytes = match dir.read(name) {
                Ok(Some(bytes)) => bytes,
                Ok(None) => return None,
                Err(err) => {
                    crate::debug!(1, "kubelogin cache: {err}");
                    return None;
                }
            };
            Entry::parse(Origin::File(dir.file_path(name)), &bytes)
        })
        .collect();
    found.sort_by_key(|e| e.origin.to_string());
    found
}

/// kubelogin's entries in the OS keyring; none when no keyring answers.
pub fn keyring_items(keyring: &Keyring) -> Vec<Entry> {
    match keyring.items_of(SERVICE) {
        Ok(items) => items
            .into_iter()
            .filter(|(user, _)| user.starts_with(ITEM_PREFIX))
            .filter_map(|(user, secret)| Entry::parse(Origin::Keyring(user), secret.as_bytes()))
            .collect(),
        Err(e) => {
            crate::debug!(1, "kubelogin's keyring entries: {e}");
            Vec::new()
        }
    }
}

/// The only kubelogin login of `client_id` at `issuer`, in `dir` or (when `with_keyring`)
/// the keyring. Two or more are ambiguous (kubelogin keys them by more than issuer and
/// client, e.g. scopes), so none is taken; the count says so.
pub fn find_one(
    dir: &Path,
    with_keyring: bool,
    issuer: &str,
    client_id: &str,
) -> (Option<Entry>, usize) {
    let mut matching: Vec<Entry> = files(dir)
        .into_iter()
        .filter(|e| e.matches(Some(issuer), Some(client_id)))
        .collect();
    if with_keyring {
        matching.extend(
            keyring_items(&Keyring)
                .into_iter()
                .filter(|e| e.matches(Some(issuer), Some(client_id))),
        );
    }
    let count = matching.len();
    let one = (count == 1).then(|| matching.remove(0));
    (one, count)
}

/// What [`remove`] removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Removed {
    pub files: usize,
    pub keyring_entries: usize,
}

/// Removes kubelogin's logins that `wanted` picks, from `dir` (the cache file and its
/// `.lock`) and from the keyring: with a filter that takes everything, what kubelogin's own
/// `clean` removes.
pub fn remove(dir: &Path, wanted: &dyn Fn(&Entry) -> bool) -> Result<Removed, StoreError> {
    Ok(Removed {
        files: remove_files(dir, wanted)?,
        keyring_entries: remove_keyring_items(wanted),
    })
}

fn remove_files(dir: &Path, wanted: &dyn Fn(&Entry) -> bool) -> Result<usize, StoreError> {
    let entries: Vec<Entry> = files(dir).into_iter().filter(|e| wanted(e)).collect();
    let Some(dir) = CacheDir::open(dir)?.filter(|_| !entries.is_empty()) else {
        return Ok(0);
    };
    let mut removed = 0;
    for entry in &entries {
        let Origin::File(path) = &entry.origin else {
            continue;
        };
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if dir.remove(name)? {
            removed += 1;
        }
        // The lock file holds no secret, but is kubelogin's too.
        dir.remove(&format!("{name}.lock"))?;
    }
    Ok(removed)
}

fn remove_keyring_items(wanted: &dyn Fn(&Entry) -> bool) -> usize {
    let keyring = Keyring;
    let mut removed = 0;
    for item in keyring_items(&keyring).iter().filter(|e| wanted(e)) {
        if let Origin::Keyring(user) = &item.origin {
            match keyring.delete_of(SERVICE, user) {
                Ok(true) => removed += 1,
                Ok(false) => {}
                Err(e) => crate::debug!(1, "kubelogin's keyring entry {user}: {e}"),
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn id_token(iss: &str, aud: &str) -> String {
        let b64 = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        format!(
            "{}.{}.sig",
            b64(serde_json::json!({"alg": "RS256"})),
            b64(serde_json::json!({"iss": iss, "aud": aud, "sub": "alice", "exp": 1}))
        )
    }

    fn write(dir: &Path, name: &str, iss: &str, aud: &str) {
        let body = serde_json::json!({"id_token": id_token(iss, aud), "refresh_token": "r"});
        std::fs::write(dir.join(name), body.to_string()).unwrap();
    }

    #[test]
    fn finds_the_one_entry_of_an_issuer_and_client() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &"a".repeat(64), "https://i", "kubernetes");
        write(dir.path(), &"b".repeat(64), "https://other", "kubernetes");
        write(dir.path(), &"c".repeat(64), "https://i", "another-client");
        // Our own files and stray ones are not kubelogin's.
        write(
            dir.path(),
            &format!("{}.token.json", "d".repeat(64)),
            "https://i",
            "kubernetes",
        );
        let (one, count) = find_one(dir.path(), false, "https://i", "kubernetes");
        assert_eq!(count, 1);
        let one = one.unwrap();
        assert_eq!(one.origin, Origin::File(dir.path().join("a".repeat(64))));
        assert_eq!(one.refresh_token.as_deref(), Some("r"));
    }

    #[test]
    fn two_matching_entries_are_ambiguous() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &"a".repeat(64), "https://i", "kubernetes");
        write(dir.path(), &"b".repeat(64), "https://i", "kubernetes");
        let (one, count) = find_one(dir.path(), false, "https://i", "kubernetes");
        assert!(one.is_none());
        assert_eq!(count, 2);
    }

    #[test]
    fn remove_takes_the_chosen_cache_files_and_their_locks_only() {
        let dir = tempfile::tempdir().unwrap();
        let hash = "e".repeat(64);
        write(dir.path(), &hash, "https://i", "kubernetes");
        write(dir.path(), &"f".repeat(64), "https://other", "kubernetes");
        std::fs::write(dir.path().join(format!("{hash}.lock")), "").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "keep").unwrap();
        // Files only: a unit test must not touch the keyring of the machine it runs on.
        let wanted = |e: &Entry| e.matches(Some("https://i"), Some("kubernetes"));
        assert_eq!(remove_files(dir.path(), &wanted).unwrap(), 1);
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["f".repeat(64), "notes.txt".into()]);
    }
}
