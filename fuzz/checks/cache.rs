//! Files in the cache directory: the plugin's own (a damaged disk, an edit, another version
//! of the plugin) and kubelogin's, which the plugin imports and cleans.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use kubectl_oidc_login::claims::relative;
use kubectl_oidc_login::cooldown::{self, COOLDOWN_SECS};
use kubectl_oidc_login::exec_credential::{render, rfc3339, ExecInfo};
use kubectl_oidc_login::login_report::{self, Format};
use kubectl_oidc_login::private_file::CacheDir;
use kubectl_oidc_login::store::disk::{load_token_file, token_path, DiskStore};
use kubectl_oidc_login::store::{clean, kubelogin, TokenStore};
use kubectl_oidc_login::times::{LATEST, MAX_CLOCK_OFFSET};
use kubectl_oidc_login::tokens::{CacheKey, Storage};

/// One private cache directory per process (the plugin opens a path once per process, so
/// the directory stays and its files are removed before each input).
fn cache_dir() -> (&'static Path, Arc<CacheDir>) {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = DIR.get_or_init(|| {
        let top = tempfile::tempdir().expect("a temporary directory");
        let path = top.path().join("cache");
        (top, path)
    });
    let dir = CacheDir::create(path).expect("a private cache directory");
    for name in dir.names().expect("a listing") {
        dir.remove(&name).expect("removed");
    }
    (path.as_path(), dir)
}

fn key() -> CacheKey {
    CacheKey::new("https://op.example", "kubectl", None, &[], &[], None, None)
}

fn file_name(path: PathBuf) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// A token file: what loads has sane times and is this login's, goes through the hot path
/// to a credential, and survives being written back; what does not load names the file.
pub fn token_file(data: &[u8]) {
    let (path, dir) = cache_dir();
    let key = key();
    let name = file_name(token_path(path, &key));
    dir.write(&name, data).unwrap();
    let tokens = match load_token_file(&dir, &key) {
        Ok(Some(tokens)) => tokens,
        Ok(None) => return,
        Err(err) => {
            let message = err.to_string();
            super::assert_printable(&message);
            assert!(message.contains(&name), "{message}");
            return;
        }
    };
    assert!(tokens.insane_times().is_none());
    assert!((-MAX_CLOCK_OFFSET..=MAX_CLOCK_OFFSET).contains(&tokens.clock_offset));
    for use_access_token in [false, true] {
        if let Some((token, expiry)) = tokens.credential(use_access_token) {
            assert!((0..=LATEST).contains(&expiry));
            let local = tokens.clock().to_local(expiry);
            let _ = relative(local, tokens.clock().now());
            let out = render(&ExecInfo::parse("{}").unwrap(), token, local);
            assert!(out.contains(&rfc3339(local)));
        }
    }
    let report = login_report::login(&key, Some(&tokens), None, Storage::Disk, path);
    let _ = login_report::render(&report, Format::Yaml);

    let store = DiskStore::new(path.to_path_buf());
    store.save_short_lived(&key, &tokens).expect("written back");
    let again = load_token_file(&dir, &key)
        .expect("reads back")
        .expect("present");
    assert_eq!(again, tokens);
}

/// The files `accounts`, `clean` and the kubelogin import list: the input is one file of
/// each kind (NUL-separated), under the names they look for.
pub fn listing(data: &[u8]) {
    let (path, dir) = cache_dir();
    let parts = super::fields(data, 3);
    let id = key().id().to_string();
    dir.write(&format!("{id}.meta.json"), parts[0]).unwrap();
    dir.write(&format!("{id}.token.json"), parts[1]).unwrap();
    let kubelogin_name = "0".repeat(64);
    dir.write(&kubelogin_name, parts[2]).unwrap();

    let logins = clean::logins(path).expect("a listing");
    assert!(logins.len() <= 1);
    let meta: serde_json::Value = serde_json::from_slice(parts[0]).unwrap_or_default();
    for (found, owner) in &logins {
        assert_eq!(found, &id);
        assert_eq!(owner.account.as_deref(), meta["account"].as_str());
    }
    let entries = kubelogin::files(path);
    assert!(entries.len() <= 1);
    for entry in entries {
        assert_eq!(
            entry.origin,
            kubelogin::Origin::File(path.join(&kubelogin_name))
        );
        assert!(entry.matches(None, None));
        let _ = entry.matches(Some("https://op.example"), Some("kubectl"));
        assert!(entry.refresh_token.as_deref() != Some(""));
    }
}

/// A cool-down marker: a cool-down is only ever the last five minutes.
pub fn cooldown_marker(data: &[u8]) {
    let (path, dir) = cache_dir();
    let id = key().id().to_string();
    dir.write(&format!("{id}.abandoned"), data).unwrap();
    let written: Option<i64> = std::str::from_utf8(data)
        .ok()
        .and_then(|t| t.trim().parse().ok());
    for now in [0, 1_700_000_000, LATEST, i64::MIN, i64::MAX] {
        if let Some(age) = cooldown::active(path, &id, now) {
            assert!((0..COOLDOWN_SECS).contains(&age), "{age}");
            assert_eq!(Some(now - age), written);
        }
    }
}

/// A refresh token file: what loads is the file's `refresh_token`, what does not names the
/// file.
pub fn refresh_file(data: &[u8]) {
    let (path, dir) = cache_dir();
    let key = key();
    let store = DiskStore::new(path.to_path_buf());
    let name = file_name(store.refresh_path(&key));
    dir.write(&name, data).unwrap();
    match store.load_refresh_token(&key) {
        Ok(Some(token)) => {
            let json: serde_json::Value = serde_json::from_slice(data).expect("it parsed");
            assert_eq!(json["refresh_token"].as_str(), Some(token.as_str()));
        }
        Ok(None) => panic!("a refresh file that is there reads as none"),
        Err(err) => {
            let message = err.to_string();
            super::assert_printable(&message);
            assert!(message.contains(&name), "{message}");
        }
    }
}
