//! Single flight across processes: one lock file per cache key.
//!
//! kubectl, helm and k9s often run the plugin several times at once. Without this, each would
//! refresh on its own; with rotating refresh tokens the second refresh reuses a spent token,
//! and the provider revokes the whole grant. The hot path never takes this lock.
//!
//! The lock is an OS advisory lock (flock on Unix, LockFileEx on Windows) on a file that is
//! never deleted: the kernel drops it when the holder exits, even by kill -9.

use std::fs::{File, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::tokens::CacheKey;

#[derive(Debug, Error)]
pub enum LockError {
    #[error(transparent)]
    Dir(#[from] crate::private_file::FileError),
    #[error(
        "cannot lock the lock file {path}: {source}; check the permissions of --token-cache-dir"
    )]
    Open {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("another kubectl-oidc_login process held the login lock for more than {0:?}; finish or close that login (browser tab or terminal) and retry")]
    Timeout(Duration),
}

/// Held while this process refreshes or logs in; released on drop.
pub struct KeyLock {
    _file: File,
}

impl KeyLock {
    /// Waits up to `timeout` for the lock of `key` in `dir`. Returns whether it had to wait,
    /// in which case another process may have stored fresh tokens meanwhile.
    pub fn acquire(
        dir: &Path,
        key: &CacheKey,
        timeout: Duration,
    ) -> Result<(KeyLock, bool), LockError> {
        // Through the cache directory's handle, never a symbolic link: one planted here
        // would make us create the file it names.
        let dir = crate::private_file::CacheDir::create(dir)?;
        let name = format!("{}.lock", key.id());
        let file = dir.lock_file(&name)?;
        let path = dir.file_path(&name);
        let deadline = Instant::now() + timeout;
        let mut waited = false;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok((KeyLock { _file: file }, waited)),
                Err(TryLockError::WouldBlock) => {
                    if !waited {
                        crate::debug!(
                            1,
                            "another process is logging in or refreshing; waiting for it"
                        );
                    }
                    waited = true;
                    if Instant::now() >= deadline {
                        return Err(LockError::Timeout(timeout));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(TryLockError::Error(source)) => {
                    return Err(LockError::Open { path, source });
                }
            }
        }
    }
}
