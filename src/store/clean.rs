//! Finding and deleting whole logins across every store (disk files and keyring entries), for
//! `clean`, `logout` and `accounts`.

use std::collections::BTreeMap;
use std::path::Path;

use super::keyring::{remove_all, Keyring, SERVICE};
use super::StoreError;
use crate::private_file::CacheDir;

/// File suffixes of one login's files; the part before is the key id.
const SUFFIXES: &[&str] = &[
    ".token.json",
    ".refresh.json",
    ".meta.json",
    ".lock",
    // An abandoned login's cool-down marker (the cooldown module writes it).
    ".abandoned",
];

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub logins: usize,
    pub files: usize,
    pub keyring_entries: usize,
}

/// Removes every login (or those of `issuer`) found in `dir`, from disk and keyring.
pub fn clean(
    dir: &Path,
    issuer: Option<&str>,
    client_id: Option<&str>,
    account: Option<&str>,
) -> Result<Report, StoreError> {
    let mut report = Report::default();
    for (id, owner) in logins(dir)? {
        if issuer.is_some() && owner.issuer.as_deref() != issuer
            || client_id.is_some() && owner.client_id.as_deref() != client_id
            || account.is_some() && owner.account.as_deref() != account
        {
            continue;
        }
        let one = remove_login(dir, &id)?;
        report.logins += 1;
        report.files += one.files;
        report.keyring_entries += one.keyring_entries;
    }
    Ok(report)
}

/// Removes one login (by key id) from the keyring and from `dir`.
pub fn remove_login(dir: &Path, id: &str) -> Result<Report, StoreError> {
    let mut report = Report {
        logins: 1,
        ..Report::default()
    };
    match remove_all(&Keyring, id) {
        Ok(n) => report.keyring_entries += n,
        Err(e) => crate::debug!(1, "{e}"),
    }
    if let Some(dir) = CacheDir::open(dir)? {
        for suffix in SUFFIXES {
            if dir.remove(&format!("{id}{suffix}"))? {
                report.files += 1;
            }
        }
        report.files += remove_derived_files(&dir, id, true)?;
    }
    report.keyring_entries += remove_derived_entries(id);
    Ok(report)
}

/// Removes the files of tokens exchanged from login `id` (see
/// [`crate::tokens::CacheKey::for_exchange`]): they die with the login they came from.
/// Returns how many files (and keyring entries, with `with_keyring`) went. Their lock files
/// stay: another process may hold one.
pub fn remove_derived(dir: &Path, id: &str, with_keyring: bool) -> Result<usize, StoreError> {
    let entries = if with_keyring {
        remove_derived_entries(id)
    } else {
        0
    };
    let files = match CacheDir::open(dir)? {
        Some(dir) => remove_derived_files(&dir, id, false)?,
        None => 0,
    };
    Ok(files + entries)
}

/// The keyring entries of tokens exchanged from login `id` (`--token-cache-storage=keyring`
/// keeps them there), found by searching this plugin's service.
fn remove_derived_entries(id: &str) -> usize {
    let prefix = format!("{id}-");
    let items = match Keyring.items_of(SERVICE) {
        Ok(items) => items,
        Err(e) => {
            crate::debug!(1, "{e}");
            return 0;
        }
    };
    items
        .iter()
        .filter(|(user, _)| user.starts_with(&prefix))
        .filter(|(user, _)| Keyring.delete_of(SERVICE, user).unwrap_or(false))
        .count()
}

fn remove_derived_files(dir: &CacheDir, id: &str, with_locks: bool) -> Result<usize, StoreError> {
    let prefix = format!("{id}-");
    let mut removed = 0;
    for name in dir.names()? {
        if name.starts_with(&prefix)
            && SUFFIXES
                .iter()
                .any(|s| name.ends_with(s) && (with_locks || *s != ".lock"))
            && dir.remove(&name)?
        {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Which provider and client a login belongs to, when a file says so.
#[derive(Debug, Default, Clone)]
pub struct Owner {
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    /// Recorded in the meta file only; None is the default account.
    pub account: Option<String>,
}

/// Key ids with files in `dir`, and whom each belongs to. Only files of this user are read
/// (see [`CacheDir::read`]); what they say is text from a file, which callers escape before
/// it reaches a terminal.
pub fn logins(dir: &Path) -> Result<BTreeMap<String, Owner>, StoreError> {
    let Some(dir) = CacheDir::open(dir)? else {
        return Ok(BTreeMap::new());
    };
    let mut found: BTreeMap<String, Owner> = BTreeMap::new();
    for name in dir.names()? {
        let Some(id) = SUFFIXES.iter().find_map(|s| name.strip_suffix(s)) else {
            continue;
        };
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let slot = found.entry(id.to_string()).or_default();
        // The meta file names the account; it or the token file names issuer and client.
        let is_meta = name.ends_with(".meta.json");
        let names_owner = name.ends_with(".token.json") && slot.issuer.is_none();
        if !is_meta && !names_owner {
            continue;
        }
        let bytes = match dir.read(&name) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => continue,
            Err(e) => {
                crate::warn!("{e}");
                continue;
            }
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        if is_meta {
            slot.account = v["account"].as_str().map(str::to_string);
        }
        if slot.issuer.is_none() {
            slot.issuer = v["issuer"].as_str().map(str::to_string);
            slot.client_id = v["client_id"].as_str().map(str::to_string);
        }
    }
    Ok(found)
}
