//! A secret (client secret, password) read from a file the user keeps private, as ssh treats a
//! private key: a file that another account could read, change or steer is refused, with the
//! one command that fixes it, rather than used (the rules are in [`crate::named_file`]). The
//! secret itself never appears in an error.

use std::path::Path;

use thiserror::Error;

use crate::named_file::{self, Kind, NamedFileError};

#[derive(Debug, Error)]
pub enum SecretFileError {
    #[error(transparent)]
    File(#[from] NamedFileError),
    #[error("{path} is empty; write the secret into it")]
    Empty { path: std::path::PathBuf },
}

/// The first line of the file at `path`, after checking that only its owner, who must be
/// this user, can read it, and that it is a plain file of its own.
pub fn read(path: &Path) -> Result<String, SecretFileError> {
    let bytes = named_file::read(path, Kind::Secret)?;
    let text = String::from_utf8(bytes).map_err(|_| NamedFileError::Read {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "it is not UTF-8 text"),
    })?;
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
