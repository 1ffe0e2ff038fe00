//! Files the user names on the command line or in the environment: secrets
//! (`--oidc-client-secret-file`, `--password-file`, `--local-server-key`) and public ones (CA
//! bundles, `--local-server-cert`). Every one is opened without blocking and read only when it
//! is a regular file of bounded size: a FIFO or a device put in its place by whoever can write
//! its directory would otherwise hang kubectl (and a shell prompt that calls it) or grow
//! memory without end.
//!
//! A secret file must also be what ssh asks of a private key, and a little more: checked on
//! the opened file, never on the name again,
//! - not a symbolic link (at the last component): a link lets whoever can write the directory
//!   point the name at any other file of the user's, whose owner and mode would then pass;
//! - owned by this user, with no permission for group or others (mode 600 or 400);
//! - its only name (one hard link): another name is the same risk as a symlink where the
//!   kernel lets other users link files they cannot read (fs.protected_hardlinks=0);
//! - at most [`SECRET_LIMIT`] bytes.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// A secret (a client secret, a password, a PEM private key) is far smaller than this.
pub const SECRET_LIMIT: u64 = 64 * 1024;
/// CA bundles and certificate chains are far smaller than this (the system's whole bundle is
/// about 200 KiB).
pub const PUBLIC_LIMIT: u64 = 16 * 1024 * 1024;

/// What the file holds, which decides the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Anyone may read it (certificates): regular, bounded, opened without blocking.
    Public,
    /// Only this user may: the rules of the module's documentation as well.
    Secret,
}

#[derive(Debug, Error)]
pub enum NamedFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is a symbolic link, which whoever can write its directory may point at any file of yours; name the file itself (`readlink -f {path}` shows it)")]
    SymbolicLink { path: PathBuf },
    #[error("{path} is {kind}, not a regular file (someone who can write its directory may have put it there); replace it with a plain file")]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{path} belongs to uid {owner}, not you (uid {me}): another account controls the secret; copy it to a file of your own with mode 600")]
    NotOwner { path: PathBuf, owner: u32, me: u32 },
    #[error("{path} has mode {mode:03o}: other accounts can read or change the secret in it; run `chmod 600 {path}`")]
    Readable { path: PathBuf, mode: u32 },
    #[error("{path} has {links} hard links: the secret is reachable under another name too, which may lie where others can steer it; give it a file of its own (`cp {path} NEW && chmod 600 NEW`)")]
    HardLinks { path: PathBuf, links: u64 },
    #[error("{path} is larger than {limit} bytes, far more than it should hold; name the file that holds just that")]
    TooLarge { path: PathBuf, limit: u64 },
}

/// The content of the file at `path`, after the checks of `kind`.
pub fn read(path: &Path, kind: Kind) -> Result<Vec<u8>, NamedFileError> {
    use std::io::Read;
    let failed = |source| NamedFileError::Read {
        path: path.to_path_buf(),
        source,
    };
    let limit = match kind {
        Kind::Public => PUBLIC_LIMIT,
        Kind::Secret => SECRET_LIMIT,
    };
    let file = open(path, kind)?;
    let meta = file.metadata().map_err(failed)?;
    if !meta.is_file() {
        return Err(NamedFileError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_of(&meta.file_type()),
        });
    }
    if kind == Kind::Secret {
        owner_only(path, &meta)?;
    }
    if meta.len() > limit {
        return Err(NamedFileError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(failed)?;
    if bytes.len() as u64 > limit {
        return Err(NamedFileError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(bytes)
}

/// Opens `path` for reading without waiting for a writer (a FIFO) or taking a terminal; a
/// secret's last component is never followed when it is a symbolic link.
#[cfg(unix)]
fn open(path: &Path, kind: Kind) -> Result<std::fs::File, NamedFileError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY;
    if kind == Kind::Secret {
        flags |= libc::O_NOFOLLOW;
    }
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|source| {
            // O_NOFOLLOW answers ELOOP (EMLINK on FreeBSD) for a link at the last component;
            // ELOOP may also mean a loop further up, so the name itself is looked at.
            let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            if kind == Kind::Secret && link {
                NamedFileError::SymbolicLink {
                    path: path.to_path_buf(),
                }
            } else {
                NamedFileError::Read {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })
}

/// Where there is no O_NOFOLLOW in std (Windows): the name is looked at first. Windows has no
/// FIFO in the file system (its named pipes live under `\\.\pipe\`).
#[cfg(not(unix))]
fn open(path: &Path, kind: Kind) -> Result<std::fs::File, NamedFileError> {
    if kind == Kind::Secret
        && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
    {
        return Err(NamedFileError::SymbolicLink {
            path: path.to_path_buf(),
        });
    }
    std::fs::File::open(path).map_err(|source| NamedFileError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Owner this user, no permission for anyone else, one name.
#[cfg(unix)]
fn owner_only(path: &Path, meta: &std::fs::Metadata) -> Result<(), NamedFileError> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(NamedFileError::NotOwner {
            path: path.to_path_buf(),
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(NamedFileError::Readable {
            path: path.to_path_buf(),
            mode,
        });
    }
    if meta.nlink() != 1 {
        return Err(NamedFileError::HardLinks {
            path: path.to_path_buf(),
            links: meta.nlink(),
        });
    }
    Ok(())
}

/// The user's profile's ACL keeps other accounts out on Windows.
#[cfg(not(unix))]
fn owner_only(_path: &Path, _meta: &std::fs::Metadata) -> Result<(), NamedFileError> {
    Ok(())
}

/// What a file that is not a regular one is, for the message.
fn kind_of(file_type: &std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_socket() {
            return "a socket";
        }
        if file_type.is_char_device() || file_type.is_block_device() {
            return "a device";
        }
    }
    "not a plain file"
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn private(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    #[test]
    fn a_secret_must_be_a_private_plain_file_with_one_name() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        private(&real, "s3cr3t\n");
        assert_eq!(read(&real, Kind::Secret).unwrap(), b"s3cr3t\n");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(matches!(
            read(&link, Kind::Secret),
            Err(NamedFileError::SymbolicLink { .. })
        ));
        // A certificate may be a link (the system's store is full of them).
        assert_eq!(read(&link, Kind::Public).unwrap(), b"s3cr3t\n");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        for kind in [Kind::Secret, Kind::Public] {
            assert!(matches!(
                read(&fifo, kind),
                Err(NamedFileError::NotRegular { kind: "a FIFO", .. })
            ));
        }
        let second = dir.path().join("second-name");
        std::fs::hard_link(&real, &second).unwrap();
        assert!(matches!(
            read(&real, Kind::Secret),
            Err(NamedFileError::HardLinks { links: 2, .. })
        ));
        let large = dir.path().join("large");
        private(&large, &"x".repeat(SECRET_LIMIT as usize + 1));
        assert!(matches!(
            read(&large, Kind::Secret),
            Err(NamedFileError::TooLarge { .. })
        ));
        std::fs::set_permissions(&large, std::fs::Permissions::from_mode(0o660)).unwrap();
        let error = read(&large, Kind::Secret).unwrap_err().to_string();
        assert!(error.contains("chmod 600"), "{error}");
    }
}
