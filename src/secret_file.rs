//! A secret (client secret, password) read from a file the user keeps private, as ssh treats a
//! private key: a file that another account could read is refused, with the one command that
//! fixes it, rather than used. The secret itself never appears in an error.

use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum SecretFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} has mode {mode:03o}: other accounts can read the secret in it; run `chmod 600 {path}`")]
    Readable { path: PathBuf, mode: u32 },
    #[error("{path} belongs to uid {owner}, not you (uid {me}): another account controls the secret; copy it to a file of your own with mode 600")]
    NotOwner { path: PathBuf, owner: u32, me: u32 },
    #[error("{path} is empty; write the secret into it")]
    Empty { path: PathBuf },
}

/// The first line of the file at `path`, after checking that only its owner, who must be
/// this user, can read it.
pub fn read(path: &Path) -> Result<String, SecretFileError> {
    let failed = |source| SecretFileError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(failed)?;
    // The checks look at the file that was opened, not at the name again.
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = file.metadata().map_err(failed)?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Err(SecretFileError::NotOwner {
                path: path.to_path_buf(),
                owner: meta.uid(),
                me,
            });
        }
        let mode = meta.mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretFileError::Readable {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    let text = std::io::read_to_string(file).map_err(failed)?;
    // `echo SECRET > file` ends it with a newline, which is never part of a secret.
    let secret = text.lines().next().unwrap_or_default();
    if secret.is_empty() {
        return Err(SecretFileError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(secret.to_string())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn reads_an_owner_only_file_and_refuses_a_readable_one_without_telling_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "s3cr3t-value\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read(&path).unwrap(), "s3cr3t-value");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(error.contains("chmod 600"), "{error}");
        assert!(error.contains("640"), "{error}");
        assert!(!error.contains("s3cr3t"), "{error}");
        std::fs::write(&path, "\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(matches!(read(&path), Err(SecretFileError::Empty { .. })));
    }
}
