//! The real kubectl: kubeconfigs whose exec entry runs the built plugin, and runs of kubectl
//! (or of the plugin by hand) in a test's world.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{support_dir, ApiServer, Run, World, PLUGIN};

impl World {
    /// get-token arguments for this world, before any extra ones.
    pub fn get_token_args(&self) -> Vec<String> {
        vec![
            "get-token".into(),
            format!("--oidc-issuer-url={}", self.provider.issuer),
            "--oidc-client-id=kubernetes".into(),
            format!("--token-cache-dir={}", self.cache_dir().display()),
            "--listen-address=127.0.0.1:0".into(),
            format!(
                "--browser-command={}",
                support_dir().join("login.mjs").display()
            ),
        ]
    }

    /// get-token arguments for the realm's `client` with `--grant-type=GRANT` (the test realm
    /// has one client per grant, see tests/support/provider.mjs).
    pub fn grant_args(&self, client: &str, grant: &str) -> Vec<String> {
        let mut args = self.get_token_args();
        args.retain(|a| !a.starts_with("--oidc-client-id"));
        args.push(format!("--oidc-client-id={client}"));
        args.push(format!("--grant-type={grant}"));
        args
    }

    /// Writes a kubeconfig whose user runs `command args` (exec apiVersion `api_version`).
    pub fn kubeconfig(
        &self,
        name: &str,
        api_version: &str,
        command: &str,
        args: &[String],
    ) -> PathBuf {
        write_kubeconfig(&self.path(name), &self.api, api_version, command, args)
    }

    /// The usual kubeconfig: v1, the built plugin by absolute path, plus `extra` flags.
    pub fn default_kubeconfig(&self, extra: &[&str]) -> PathBuf {
        let mut args = self.get_token_args();
        args.extend(extra.iter().map(|s| s.to_string()));
        self.kubeconfig(
            "kubeconfig",
            "client.authentication.k8s.io/v1",
            PLUGIN,
            &args,
        )
    }

    /// A kubeconfig with only this world's cluster (no user, no context), as an admin hands
    /// it out before `setup --write-kubeconfig` adds the user.
    pub fn cluster_only_kubeconfig(&self) -> PathBuf {
        let kubeconfig = self.default_kubeconfig(&[]);
        let mut config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&kubeconfig).unwrap()).unwrap();
        config["users"] = serde_json::json!([]);
        config["contexts"] = serde_json::json!([]);
        config["current-context"] = serde_json::json!("");
        std::fs::write(&kubeconfig, serde_json::to_vec(&config).unwrap()).unwrap();
        kubeconfig
    }

    /// Runs the real kubectl against this world.
    pub fn kubectl(&self, kubeconfig: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Run {
        let mut command = Command::new(kubectl_path());
        command
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .args(args);
        self.run(command, extra_env)
    }

    /// PATH with the built plugin first, so `kubectl oidc-login` finds it.
    pub fn path_with_plugin(&self) -> String {
        let bin_dir = Path::new(PLUGIN).parent().unwrap();
        format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// Runs the plugin directly, as a user would by hand (no KUBERNETES_EXEC_INFO unless given).
    pub fn plugin(&self, args: &[String], extra_env: &[(&str, &str)]) -> Run {
        let mut command = Command::new(PLUGIN);
        command.args(args);
        self.run(command, extra_env)
    }
}

pub fn kubectl_path() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into())
}

/// kubectl by absolute path, for runs with a PATH that may not hold it.
pub fn kubectl_path_absolute() -> String {
    let name = kubectl_path();
    if name.contains('/') {
        return name;
    }
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|dir| Path::new(dir).join(&name))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
        .unwrap_or(name)
}

/// Writes to `path` a kubeconfig for `api` (its URL and CA) whose user runs `command args`
/// with exec apiVersion `api_version`.
pub fn write_kubeconfig(
    path: &Path,
    api: &ApiServer,
    api_version: &str,
    command: &str,
    args: &[String],
) -> PathBuf {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(&api.ca_pem);
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": api.url, "certificate-authority-data": ca}}],
        "users": [{"name": "oidc", "user": {"exec": {
            "apiVersion": api_version,
            "command": command,
            "args": args,
            "interactiveMode": "IfAvailable",
            "provideClusterInfo": false,
        }}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "oidc"}}],
        "current-context": "test",
    });
    std::fs::write(path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    path.to_path_buf()
}

/// The user and groups of a `kubectl auth whoami -o json` run: (username, groups).
pub fn user_info(run: &Run) -> (String, Vec<String>) {
    let info = &run.json()["status"]["userInfo"];
    let groups = info["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap().to_string())
        .collect();
    (info["username"].as_str().unwrap().to_string(), groups)
}
