//! A cluster's entry in the kubeconfig for this plugin: its extension
//! [`CLUSTER_EXTENSION`], read from a `kubectl config view` and written into the file that
//! holds the cluster. kubectl writes the kubeconfig everywhere else, but none of its `config`
//! commands can set an extension (`kubectl config set clusters.X.extensions…` panics in 1.32,
//! and map keys may not hold the dots of the extension's name); so the file is read and
//! rendered by kubectl itself (`config view --raw`, byte for byte what it writes), changed
//! here as JSON in between, and replaced whole under kubectl's own lock file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use thiserror::Error;

use crate::exec_credential::{ClusterConfig, CLUSTER_EXTENSION};

#[derive(Debug, Error)]
pub enum KubeconfigError {
    #[error("no cluster {cluster:?} in the kubeconfig ({files}); add it first (kubectl config set-cluster {cluster} --server=https://… --certificate-authority=…), named as its audience")]
    NoCluster { cluster: String, files: String },
    #[error("`kubectl {command}` failed: {why}")]
    Kubectl { command: String, why: String },
    #[error("cannot write the kubeconfig {path}: {why}")]
    Write { path: String, why: String },
    /// A kubeconfig file another account could steer while it is written.
    #[error("refusing to write the kubeconfig {path}: {why}; {fix}")]
    Unsafe {
        path: String,
        why: String,
        fix: &'static str,
    },
}

/// Checks, before anything is written, that no other account can steer a write into the
/// kubeconfig files kubectl reads (kubectl and this plugin write one of them): each must be,
/// or be a symbolic link of this user's (or root's) to, a regular file of this user's (or
/// root's), in a directory of theirs that others cannot write (a sticky one, like /tmp, is
/// fine: others cannot rename what is not theirs). Otherwise another account chooses which
/// file is rewritten (a symlink into the user's own files), what kubectl then runs as the user
/// (a file of theirs), or swaps the file or its temporary copies while it is rewritten.
pub fn check_writable() -> Result<(), KubeconfigError> {
    files().iter().try_for_each(|file| check_file(file))
}

#[cfg(unix)]
fn check_file(file: &Path) -> Result<(), KubeconfigError> {
    use std::os::unix::fs::MetadataExt;
    let refuse = |why: String, fix: &'static str| KubeconfigError::Unsafe {
        path: file.display().to_string(),
        why,
        fix,
    };
    let parent = |path: &Path| {
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf()
    };
    let link = match std::fs::symlink_metadata(file) {
        Ok(meta) => meta,
        // kubectl creates it: only its directory matters.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = parent(file);
            return match std::fs::metadata(&dir) {
                Ok(meta) => check_dir(&dir, &meta).map_err(|why| refuse(why, MOVE_IT)),
                Err(_) => Ok(()),
            };
        }
        Err(e) => return Err(refuse(format!("cannot look at it ({e})"), MOVE_IT)),
    };
    let real = if link.file_type().is_symlink() {
        if !trusted(link.uid()) {
            return Err(refuse(
                format!(
                    "it is a symbolic link of another user (uid {}), who chooses which of your files is rewritten through it",
                    link.uid()
                ),
                "remove the link, or point KUBECONFIG at a file of your own",
            ));
        }
        let dir = parent(file);
        let meta = std::fs::metadata(&dir).map_err(|e| refuse(e.to_string(), MOVE_IT))?;
        check_dir(&dir, &meta).map_err(|why| refuse(why, MOVE_IT))?;
        std::fs::canonicalize(file).map_err(|e| {
            refuse(
                format!("it is a symbolic link whose file cannot be found ({e})"),
                "point KUBECONFIG at the file itself",
            )
        })?
    } else {
        file.to_path_buf()
    };
    let meta = std::fs::metadata(&real).map_err(|e| refuse(e.to_string(), MOVE_IT))?;
    if !meta.is_file() {
        return Err(refuse(
            format!("{} is not a regular file", real.display()),
            "point KUBECONFIG at a kubeconfig file",
        ));
    }
    if !trusted(meta.uid()) {
        return Err(refuse(
            format!(
                "{} belongs to another user (uid {}), who decides what kubectl runs as you with it",
                real.display(),
                meta.uid()
            ),
            "copy it to a file of your own (for example ~/.kube/config) and point KUBECONFIG there",
        ));
    }
    let dir = parent(&real);
    let dir_meta = std::fs::metadata(&dir).map_err(|e| refuse(e.to_string(), MOVE_IT))?;
    check_dir(&dir, &dir_meta).map_err(|why| refuse(why, MOVE_IT))
}

#[cfg(not(unix))]
fn check_file(_file: &Path) -> Result<(), KubeconfigError> {
    // The user's profile's ACL keeps other accounts out of the default kubeconfig.
    Ok(())
}

#[cfg(unix)]
const MOVE_IT: &str =
    "move the kubeconfig into a directory only you can write, and point KUBECONFIG there";

/// This user, or root (who can change any file anyway).
#[cfg(unix)]
fn trusted(uid: u32) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    uid == 0 || uid == unsafe { libc::geteuid() }
}

/// Why another account could rename or replace files in `dir`, if it could.
#[cfg(unix)]
fn check_dir(dir: &Path, meta: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let mode = meta.mode();
    let sticky = mode & 0o1000 != 0;
    // SAFETY: getegid has no preconditions and cannot fail.
    let own_group = meta.gid() == unsafe { libc::getegid() };
    // Group-writable is fine for the user's own (private) group, as umask 002 systems make.
    let others_write = mode & 0o002 != 0 || (mode & 0o020 != 0 && !own_group);
    if others_write && !sticky {
        return Err(format!(
            "its directory {} is one others may write (mode {:03o}, no sticky bit), so they can swap the file, or the copies setup writes beside it, while it is rewritten",
            dir.display(),
            mode & 0o777
        ));
    }
    if !trusted(meta.uid()) {
        return Err(format!(
            "its directory {} belongs to another user (uid {}), who can swap the file while it is rewritten",
            dir.display(),
            meta.uid()
        ));
    }
    Ok(())
}

/// kubectl's flags for picking from the kubeconfig, with kubectl's meanings: the file, and the
/// names of a context, a cluster and a user in it. Commands hand them on to the kubectl they
/// run, so every subcommand reads them as kubectl does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub cluster: Option<String>,
    pub user: Option<String>,
}

impl Target {
    pub fn is_empty(&self) -> bool {
        *self == Target::default()
    }

    /// The same choice as kubectl's global flags.
    pub fn kubectl_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(file) = &self.kubeconfig {
            args.push(format!("--kubeconfig={}", file.display()));
        }
        for (flag, value) in [
            ("context", &self.context),
            ("cluster", &self.cluster),
            ("user", &self.user),
        ] {
            if let Some(value) = value {
                args.push(format!("--{flag}={value}"));
            }
        }
        args
    }
}

/// The kubeconfig files kubectl reads, in its order: $KUBECONFIG, else ~/.kube/config.
pub fn files() -> Vec<PathBuf> {
    match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        Some(list) => std::env::split_paths(&list)
            .filter(|p| !p.as_os_str().is_empty())
            .collect(),
        None => dirs::home_dir()
            .map(|h| vec![h.join(".kube").join("config")])
            .unwrap_or_default(),
    }
}

/// This plugin's settings in one cluster of a `kubectl config view -o json`: None without
/// the extension.
pub fn cluster_config(cluster: &Value) -> Result<Option<ClusterConfig>, String> {
    let Some(entry) = cluster["extensions"]
        .as_array()
        .and_then(|all| all.iter().find(|e| e["name"] == CLUSTER_EXTENSION))
    else {
        return Ok(None);
    };
    match &entry["extension"] {
        Value::Null => Ok(None),
        value => serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|e| e.to_string()),
    }
}

/// Sets the extension of cluster `name` to `config`, in the first kubeconfig file that defines
/// the cluster (the one whose entry kubectl uses). Returns that file.
pub fn set_cluster_config(name: &str, config: &ClusterConfig) -> Result<PathBuf, KubeconfigError> {
    let files = files();
    for file in files.iter().filter(|f| f.is_file()) {
        let mut view = view_json(file)?;
        let Some(cluster) = view["clusters"]
            .as_array_mut()
            .and_then(|all| all.iter_mut().find(|c| c["name"] == name))
        else {
            continue;
        };
        let mut extension = json!({ "audience": config.audience });
        if let Some(scope) = &config.scope {
            extension["scope"] = json!(scope);
        }
        let entry = json!({ "name": CLUSTER_EXTENSION, "extension": extension });
        let extensions = &mut cluster["cluster"]["extensions"];
        if !extensions.is_array() {
            *extensions = json!([]);
        }
        let list = extensions.as_array_mut().expect("an array");
        list.retain(|e| e["name"] != CLUSTER_EXTENSION);
        list.push(entry);
        let _lock = FileLock::take(file)?;
        replace(file, &view)?;
        return Ok(file.clone());
    }
    Err(KubeconfigError::NoCluster {
        cluster: name.to_string(),
        files: files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// The kubeconfig kubectl reads now, merged (`kubectl config view -o json`; secrets redacted).
pub fn view() -> Result<Value, KubeconfigError> {
    let out = kubectl(&["config", "view", "-o", "json"])?;
    serde_json::from_slice(&out).map_err(|e| KubeconfigError::Kubectl {
        command: "config view -o json".into(),
        why: e.to_string(),
    })
}

/// `kubectl ARGS`, which must not sign in; its stdout, or its last words as the error.
pub fn kubectl(args: &[&str]) -> Result<Vec<u8>, KubeconfigError> {
    let failed = |why: String| KubeconfigError::Kubectl {
        command: args.join(" "),
        why,
    };
    let out = Command::new("kubectl")
        .args(args)
        // Reading a kubeconfig must not sign in (some kubectl builds run the exec plugin for
        // every command).
        .env(crate::signin::NO_LOGIN_ENV, "1")
        .output()
        .map_err(|e| failed(e.to_string()))?;
    if !out.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(out.stdout)
}

/// One file as kubectl reads it, secrets and relative paths as they are.
fn view_json(file: &Path) -> Result<Value, KubeconfigError> {
    let kubeconfig = format!("--kubeconfig={}", file.display());
    let out = kubectl(&["config", "view", &kubeconfig, "--raw", "-o", "json"])?;
    serde_json::from_slice(&out).map_err(|e| KubeconfigError::Kubectl {
        command: "config view -o json".into(),
        why: e.to_string(),
    })
}

/// Replaces `file` whole with `view`, rendered by kubectl as it writes kubeconfigs, keeping the
/// file's permissions: a reader sees the old file or the new one, never half of either.
fn replace(file: &Path, view: &Value) -> Result<(), KubeconfigError> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let failed = |why: String| KubeconfigError::Write {
        path: file.display().to_string(),
        why,
    };
    let mut json = tempfile::NamedTempFile::new_in(dir).map_err(|e| failed(e.to_string()))?;
    json.write_all(view.to_string().as_bytes())
        .map_err(|e| failed(e.to_string()))?;
    let kubeconfig = format!("--kubeconfig={}", json.path().display());
    let yaml = kubectl(&["config", "view", &kubeconfig, "--raw"])?;
    let mut out = tempfile::NamedTempFile::new_in(dir).map_err(|e| failed(e.to_string()))?;
    out.write_all(&yaml).map_err(|e| failed(e.to_string()))?;
    let permissions = std::fs::metadata(file)
        .map_err(|e| failed(e.to_string()))?
        .permissions();
    // Through the open file, never the name again.
    out.as_file()
        .set_permissions(permissions)
        .map_err(|e| failed(e.to_string()))?;
    out.as_file()
        .sync_all()
        .map_err(|e| failed(e.to_string()))?;
    out.persist(file).map_err(|e| failed(e.error.to_string()))?;
    Ok(())
}

/// client-go's lock on a kubeconfig it writes: `FILE.lock`, created exclusively, removed after.
/// Taking it keeps a `kubectl config set-…` running meanwhile from writing an old copy back.
struct FileLock(PathBuf);

impl FileLock {
    fn take(file: &Path) -> Result<Self, KubeconfigError> {
        let mut path = file.as_os_str().to_owned();
        path.push(".lock");
        let path = PathBuf::from(path);
        let start = Instant::now();
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(_) => return Ok(FileLock(path)),
                Err(e)
                    if e.kind() == std::io::ErrorKind::AlreadyExists
                        && start.elapsed() < Duration::from_secs(5) =>
                {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => {
                    return Err(KubeconfigError::Write {
                        path: file.display().to_string(),
                        why: format!(
                            "its lock {} ({e}); if no kubectl is running, remove that file",
                            path.display()
                        ),
                    })
                }
            }
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_extension_of_a_viewed_cluster() {
        let cluster = json!({
            "server": "https://x",
            "extensions": [
                {"name": "other", "extension": {"audience": "no"}},
                {"name": CLUSTER_EXTENSION, "extension": {"audience": "dev", "scope": "aud-dev"}},
            ],
        });
        assert_eq!(
            cluster_config(&cluster).unwrap(),
            Some(ClusterConfig {
                audience: Some("dev".into()),
                scope: Some("aud-dev".into()),
            })
        );
        assert_eq!(
            cluster_config(&json!({"server": "https://x"})).unwrap(),
            None
        );
        assert!(cluster_config(
            &json!({"extensions": [{"name": CLUSTER_EXTENSION, "extension": {"audience": 1}}]})
        )
        .is_err());
    }
}
