//! Private files, for the token stores, the provider cache, the lock and the cool-down: a 0700 directory, 0600 files, written atomically (temp file, fsync, rename)
//! so a reader or a crash sees either the old content or the new, never half of one.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// What went wrong with one private file or its directory; the path is always named.
#[derive(Debug, Error)]
pub enum FileError {
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
    #[error("the token cache file {path} is larger than {limit} bytes; remove it")]
    TooLarge { path: PathBuf, limit: u64 },
    /// A cache directory this process must not write through.
    #[error("refusing the token cache directory {path}: {why}; remove it (or fix its owner), or choose a directory of your own with --token-cache-dir")]
    Unsafe { path: PathBuf, why: String },
    #[error("the token cache file {path} belongs to another user (uid {owner}); it is ignored: remove it, or fix the owner of --token-cache-dir")]
    ForeignOwner { path: PathBuf, owner: u32 },
}

/// Creates `dir` (0700) if needed; tightens the mode of an existing one that others can read.
/// A directory that is a symbolic link or belongs to another user is refused, never adopted:
/// in a shared cache directory (`KUBECACHEDIR=/tmp/...`) another user could plant either to
/// steer our token files (and, for root, any file it creates) wherever they like.
pub fn ensure_private_dir(dir: &Path) -> Result<(), FileError> {
    let err = |source| FileError::Dir {
        path: dir.to_path_buf(),
        source,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        let meta = match fs::symlink_metadata(dir) {
            Ok(meta) => meta,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(err)?;
                // Someone may have raced us to the name: judge what is there now.
                fs::symlink_metadata(dir).map_err(err)?
            }
            Err(e) => return Err(err(e)),
        };
        if meta.file_type().is_symlink() {
            return Err(FileError::Unsafe {
                path: dir.to_path_buf(),
                why: "it is a symbolic link".into(),
            });
        }
        if !meta.is_dir() {
            return Err(err(std::io::Error::new(
                ErrorKind::AlreadyExists,
                "it exists and is not a directory",
            )));
        }
        if meta.uid() != euid() {
            return Err(FileError::Unsafe {
                path: dir.to_path_buf(),
                why: format!("it belongs to another user (uid {})", meta.uid()),
            });
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            crate::warn!(
                "token cache directory {} had mode {mode:o}; setting it to 700",
                dir.display()
            );
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(err)?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        fs::create_dir_all(dir).map_err(err)
    }
}

#[cfg(unix)]
fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Writes `contents` to `path` atomically with mode 0600.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), FileError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    ensure_private_dir(dir)?;
    let err = |source| FileError::Write {
        path: path.to_path_buf(),
        source,
    };
    // tempfile creates the file 0600 on Unix, in the same directory so rename is atomic.
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(contents).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    sweep_stale_temp_files(dir);
    Ok(())
}

/// A process killed between creating its temp file and renaming it leaves the temp file
/// behind; nothing reads it, but it holds a token. Writers are rare (a login or refresh), so
/// each one removes leftovers old enough that no live writer can own them.
fn sweep_stale_temp_files(dir: &Path) {
    const STALE: std::time::Duration = std::time::Duration::from_secs(600);
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(".tmp-") {
            continue;
        }
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE);
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Reads `path`; `Ok(None)` when it does not exist. A file owned by another user is refused:
/// tokens planted by someone else must not be handed to kubectl. Bounded: cache files are a
/// few KiB.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, FileError> {
    use std::io::Read;
    let err = |source| FileError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(err(source)),
    };
    let meta = file.metadata().map_err(err)?;
    if !meta.is_file() {
        return Err(err(std::io::Error::other("it is not a regular file")));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if meta.uid() != euid() {
            return Err(FileError::ForeignOwner {
                path: path.to_path_buf(),
                owner: meta.uid(),
            });
        }
    }
    let mut bytes = Vec::with_capacity(meta.len().min(MAX_FILE) as usize);
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(err)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_FILE,
        });
    }
    Ok(Some(bytes))
}

/// Token, refresh and provider cache files are far smaller than this.
const MAX_FILE: u64 = 4 * 1024 * 1024;

/// Deletes `path`; `Ok(false)` when it was not there.
pub fn remove_optional(path: &Path) -> Result<bool, FileError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(source) => Err(FileError::Write {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_sweeps_temp_files_left_by_killed_writers_but_not_fresh_ones() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join(".tmp-killed");
        let fresh = dir.path().join(".tmp-writing");
        fs::write(&old, "token").unwrap();
        fs::write(&fresh, "token").unwrap();
        let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
        write_private(&dir.path().join("f.json"), b"x").unwrap();
        assert!(!old.exists());
        assert!(fresh.exists());
    }

    #[test]
    fn writes_private_files_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/f.json");
        write_private(&path, b"one").unwrap();
        write_private(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let dmode = fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(dmode, 0o700);
        }
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }
}
