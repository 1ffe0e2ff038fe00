//! kubectl's credential plugin policy (kuberc `credentialPluginPolicy` and
//! `credentialPluginAllowlist`, Kubernetes 1.35+, KEP-3104): whether the kubectl on PATH would
//! run an exec entry's command, and the allowlist entry that would let it.
//!
//! kubectl reads the file itself (`kubectl kuberc view -o json`): it knows where (`--kuberc`,
//! `$KUBERC`, `KUBERC=off`, `~/.kube/kuberc`) and every version of the format, and a kubectl
//! too old for kuberc applies no policy at all, which is then the right answer too.
//!
//! How kubectl matches (client-go 1.36 `plugin/pkg/client/auth/exec/exec.go`,
//! `checkAllowlistLocked`): an entry equal to the exec entry's `command` (path-cleaned)
//! matches; otherwise both are resolved with Go's `exec.LookPath` (a name with a `/` is taken
//! as it is, a bare name is searched on PATH; symlinks are not followed) and the two paths
//! must be equal. So an entry allows one program, whatever arguments the kubeconfig gives it:
//! an exec entry `command: kubectl` (kubelogin's style) needs `kubectl` itself allowed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The policy kubectl applies, as its kuberc says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `AllowAll`, `DenyAll` or `Allowlist` (an empty policy is AllowAll).
    pub kind: String,
    /// The `command` (or the older `name`) of each allowlist entry.
    pub allowlist: Vec<String>,
}

/// What the policy says about one exec command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// kubectl refuses it; `entry` is the allowlist entry (a `command` value) to add.
    Refused {
        entry: String,
    },
    /// The policy denies every plugin.
    DenyAll,
}

/// The credential plugin policy of the kuberc the kubectl on PATH reads, or None when it sets
/// none (no kuberc, an older kubectl, `KUBERC=off`, or a policy of AllowAll).
pub fn policy() -> Option<Policy> {
    let out = Command::new("kubectl")
        .args(["kuberc", "view", "-o", "json"])
        // Without a file, kubectl offers to write one and reads the answer: say no.
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    parse(&view)
}

/// The policy in a kuberc (as JSON).
pub fn parse(view: &serde_json::Value) -> Option<Policy> {
    let kind = view["credentialPluginPolicy"].as_str().unwrap_or_default();
    if kind.is_empty() || kind == "AllowAll" {
        return None;
    }
    let allowlist = view["credentialPluginAllowlist"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            entry["command"]
                .as_str()
                .filter(|c| !c.is_empty())
                .or_else(|| entry["name"].as_str())
                .map(str::to_string)
        })
        .collect();
    Some(Policy {
        kind: kind.to_string(),
        allowlist,
    })
}

impl Policy {
    /// Whether kubectl would run an exec entry whose `command` is `command`.
    pub fn verdict(&self, command: &str) -> Verdict {
        match self.kind.as_str() {
            "DenyAll" => return Verdict::DenyAll,
            "Allowlist" => {}
            // kubectl refuses to start on an unknown policy; nothing to add would help.
            _ => return Verdict::DenyAll,
        }
        let cleaned = clean(command);
        let resolved = look_path(&cleaned);
        let allowed = self.allowlist.iter().any(|entry| {
            entry == &cleaned
                || resolved
                    .as_ref()
                    .is_some_and(|r| look_path(entry).as_ref() == Some(r))
        });
        if allowed {
            Verdict::Allowed
        } else {
            Verdict::Refused { entry: cleaned }
        }
    }
}

/// Go's `filepath.Clean` for the forms an exec command takes (repeated and trailing `/`,
/// `./`).
fn clean(command: &str) -> String {
    if !command.contains('/') {
        return command.to_string();
    }
    let absolute = command.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in command.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if absolute => {}
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Go's `exec.LookPath` on Unix: a name with a `/` is checked as it is, a bare name is
/// searched in PATH; the file must be executable. Symlinks are not resolved.
fn look_path(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return executable(Path::new(name)).then(|| PathBuf::from(name));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| {
            if dir.as_os_str().is_empty() {
                PathBuf::from(".").join(name)
            } else {
                dir.join(name)
            }
        })
        .find(|p| executable(p))
}

fn executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

/// The kuberc lines that allow `entry`, for a message.
pub fn entry_to_add(entry: &str) -> String {
    format!(
        "add to your kuberc (`kubectl kuberc view` shows it): credentialPluginAllowlist: [{{command: {}}}]",
        serde_json::to_string(entry).expect("strings serialise")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_policy_and_matches_as_kubectl_does() {
        assert_eq!(parse(&json!({"kind": "Preference"})), None);
        assert_eq!(parse(&json!({"credentialPluginPolicy": "AllowAll"})), None);
        let policy = parse(&json!({
            "credentialPluginPolicy": "Allowlist",
            "credentialPluginAllowlist": [{"command": "/usr/bin/true"}, {"name": "sh"}],
        }))
        .unwrap();
        assert_eq!(policy.allowlist, ["/usr/bin/true", "sh"]);
        assert_eq!(policy.verdict("/usr/bin/true"), Verdict::Allowed);
        assert_eq!(policy.verdict("/usr/bin//true"), Verdict::Allowed);
        assert_eq!(
            policy.verdict("/nonexistent/kubectl-oidc_login"),
            Verdict::Refused {
                entry: "/nonexistent/kubectl-oidc_login".into()
            }
        );
        let deny = Policy {
            kind: "DenyAll".into(),
            allowlist: vec![],
        };
        assert_eq!(deny.verdict("x"), Verdict::DenyAll);
    }

    #[test]
    fn cleans_paths_as_go_does() {
        assert_eq!(clean("/a//b/./c/"), "/a/b/c");
        assert_eq!(clean("/a/../b"), "/b");
        assert_eq!(clean("./kubectl"), "kubectl");
        assert_eq!(clean("kubectl"), "kubectl");
    }
}
