//! The context `setup --write-kubeconfig --context` writes: decided against the kubeconfig
//! before the login, so a missing cluster is named before anyone signs in; written with
//! `kubectl config` after it; and read back as kubectl will read it, so setup never reports a
//! context that kubectl cannot use (a context whose cluster does not exist sends kubectl to
//! localhost:8080).

use std::path::PathBuf;

use serde_json::Value;
use thiserror::Error;

use crate::kubeconfig::{self, KubeconfigError};

#[derive(Debug, Error)]
pub enum PlanError {
    #[error("setup --context={context}: the kubeconfig has no context {context:?} and no current context to take a cluster from; pass --server=URL and --server-certificate-authority=FILE (your API server's address and CA, from your cluster's admin), or --cluster=NAME of a cluster in the kubeconfig")]
    NoCluster { context: String },
    #[error("setup --context={context}: cluster {cluster:?} is not in the kubeconfig ({files}); pass --server=URL and --server-certificate-authority=FILE (your API server's address and CA, from your cluster's admin) to add it, or --cluster=NAME of one that is (`kubectl config get-clusters` lists them)")]
    MissingCluster {
        context: String,
        cluster: String,
        files: String,
    },
    #[error("--server={0}: give the API server's https:// URL (kubectl sends tokens only over TLS), e.g. https://api.example.com:6443")]
    BadServer(String),
    #[error("--server-certificate-authority={path}: {why}; give the PEM file of the CA that signed the API server's certificate (the provider's CA is --certificate-authority)")]
    BadServerCa { path: String, why: String },
    #[error("--server={server}: kubectl cannot reach the API server there ({why}); check the URL with your cluster's admin")]
    Unreachable { server: String, why: String },
    #[error("--server={server}: the API server's certificate is not trusted ({why}); give the CA that signed it with --server-certificate-authority=FILE")]
    Untrusted { server: String, why: String },
    #[error("wrote context {context:?}, but kubectl cannot use it ({why}); check it with `kubectl config view --minify --context={context}`")]
    Unusable { context: String, why: String },
    #[error(transparent)]
    Kubectl(#[from] KubeconfigError),
}

/// What was asked for: kubectl's names (the context, its cluster, the user) and, for a cluster
/// to write, the API server's URL and CA file.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub context: String,
    pub cluster: Option<String>,
    pub server: Option<String>,
    pub server_ca: Option<PathBuf>,
    pub use_context: bool,
}

/// What will be written, decided before the login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub context: String,
    pub cluster: String,
    /// `kubectl config set-cluster` with this server and CA file (embedded), when asked.
    pub server: Option<(String, Option<PathBuf>)>,
    /// `kubectl config use-context`: asked for, or the kubeconfig has no current context.
    pub make_current: bool,
}

/// Decides the plan against the kubeconfig kubectl reads now (`kubectl config view`), or says
/// in one line what is missing.
pub fn plan(request: &Request) -> Result<Plan, PlanError> {
    if let Some(server) = &request.server {
        let https = url::Url::parse(server)
            .map(|u| u.scheme() == "https" && u.host().is_some())
            .unwrap_or(false);
        if !https {
            return Err(PlanError::BadServer(server.clone()));
        }
    }
    if let Some(path) = &request.server_ca {
        check_ca_file(path)?;
    }
    // Read first: a kubectl that does not run is named as such, not as an unreachable server.
    let view = kubeconfig::view()?;
    if let Some(server) = &request.server {
        check_server(server, request.server_ca.as_deref())?;
    }
    decide(request, &view)
}

/// [`plan`] on a `kubectl config view -o json`.
fn decide(request: &Request, view: &Value) -> Result<Plan, PlanError> {
    let context_cluster = |name: &str| {
        view["contexts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == name)
            .and_then(|c| c["context"]["cluster"].as_str())
            .filter(|c| !c.is_empty())
            .map(str::to_string)
    };
    let current = view["current-context"].as_str().unwrap_or("");
    let cluster = request
        .cluster
        .clone()
        .or_else(|| context_cluster(&request.context))
        .or_else(|| request.server.as_ref().map(|_| request.context.clone()))
        .or_else(|| context_cluster(current))
        .ok_or_else(|| PlanError::NoCluster {
            context: request.context.clone(),
        })?;
    let exists = view["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["name"] == cluster.as_str());
    if !exists && request.server.is_none() {
        return Err(PlanError::MissingCluster {
            context: request.context.clone(),
            cluster,
            files: files_text(),
        });
    }
    Ok(Plan {
        context: request.context.clone(),
        cluster,
        server: request
            .server
            .clone()
            .map(|server| (server, request.server_ca.clone())),
        make_current: request.use_context || current.is_empty(),
    })
}

fn files_text() -> String {
    let files: Vec<String> = kubeconfig::files()
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    if files.is_empty() {
        "no file".into()
    } else {
        files.join(", ")
    }
}

/// A PEM file with a certificate in it: what kubectl embeds and later trusts.
fn check_ca_file(path: &std::path::Path) -> Result<(), PlanError> {
    let bad = |why: String| PlanError::BadServerCa {
        path: path.display().to_string(),
        why,
    };
    let text = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    if !String::from_utf8_lossy(&text).contains("-----BEGIN CERTIFICATE-----") {
        return Err(bad("it holds no PEM certificate".into()));
    }
    Ok(())
}

/// Whether kubectl reaches the API server at `server` and trusts its certificate with `ca`
/// (else the system's roots), as it will once the cluster is written: any HTTP answer will do
/// (an API server without anonymous access says Unauthorized), a TLS or network error will not.
fn check_server(server: &str, ca: Option<&std::path::Path>) -> Result<(), PlanError> {
    // An empty kubeconfig of its own: nothing of the user's (a token, a client certificate)
    // is sent to a server not yet trusted. (kubectl reads an empty file as an error: EOF.)
    let empty = tempfile::NamedTempFile::new()
        .and_then(|mut file| {
            std::io::Write::write_all(&mut file, b"apiVersion: v1\nkind: Config\n")?;
            Ok(file)
        })
        .map_err(|e| KubeconfigError::Write {
            path: std::env::temp_dir().display().to_string(),
            why: e.to_string(),
        })?;
    let mut args = vec![
        format!("--kubeconfig={}", empty.path().display()),
        format!("--server={server}"),
        // Without any credential kubectl would ask for a user name and password.
        "--token=kubectl-oidc-login-setup-probe".into(),
        "--request-timeout=15s".into(),
    ];
    if let Some(ca) = ca {
        args.push(format!("--certificate-authority={}", ca.display()));
    }
    args.extend(["get".into(), "--raw=/version".into()]);
    let why = match kubeconfig::kubectl(&args.iter().map(String::as_str).collect::<Vec<_>>()) {
        Ok(_) => return Ok(()),
        Err(KubeconfigError::Kubectl { why, .. }) => why,
        Err(e) => return Err(e.into()),
    };
    // kubectl's words for an HTTP answer: 401 ("must be logged in") and the other statuses.
    if why.contains("Error from server") || why.contains("You must be logged in to the server") {
        return Ok(());
    }
    let last = why
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string();
    if why.contains("x509") || why.contains("certificate") {
        Err(PlanError::Untrusted {
            server: server.to_string(),
            why: last,
        })
    } else {
        Err(PlanError::Unreachable {
            server: server.to_string(),
            why: last,
        })
    }
}

impl Plan {
    /// Writes the cluster (when asked), the context pairing it with `user` (written before),
    /// and the current context; then reads the context back through kubectl.
    pub fn write(&self, user: &str) -> Result<(), PlanError> {
        if let Some((server, ca)) = &self.server {
            let mut args = vec![
                "config".to_string(),
                "set-cluster".into(),
                self.cluster.clone(),
                format!("--server={server}"),
            ];
            if let Some(ca) = ca {
                args.push(format!("--certificate-authority={}", ca.display()));
                args.push("--embed-certs=true".into());
            }
            kubeconfig::kubectl(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
        }
        kubeconfig::kubectl(&[
            "config",
            "set-context",
            &self.context,
            &format!("--cluster={}", self.cluster),
            &format!("--user={user}"),
        ])?;
        if self.make_current {
            kubeconfig::kubectl(&["config", "use-context", &self.context])?;
        }
        self.check(user)
    }

    /// The context as kubectl resolves it: its cluster has a server, its user is `user`.
    fn check(&self, user: &str) -> Result<(), PlanError> {
        let unusable = |why: String| PlanError::Unusable {
            context: self.context.clone(),
            why,
        };
        let context = format!("--context={}", self.context);
        let out = kubeconfig::kubectl(&["config", "view", "--minify", &context, "-o", "json"])
            .map_err(|e| unusable(e.to_string()))?;
        let view: Value =
            serde_json::from_slice(&out).map_err(|e| unusable(format!("kubectl's view: {e}")))?;
        let server = view["clusters"][0]["cluster"]["server"]
            .as_str()
            .unwrap_or("");
        if server.is_empty() {
            return Err(unusable(format!(
                "cluster {:?} has no server",
                self.cluster
            )));
        }
        if view["users"][0]["name"] != user {
            return Err(unusable(format!("its user is not {user:?}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(context: &str) -> Request {
        Request {
            context: context.into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_cluster_comes_from_the_flag_the_context_the_server_or_the_current_context() {
        let view = json!({
            "current-context": "admin",
            "contexts": [
                {"name": "admin", "context": {"cluster": "prod", "user": "root"}},
                {"name": "old", "context": {"cluster": "staging", "user": "x"}},
            ],
            "clusters": [{"name": "prod", "cluster": {"server": "https://p"}},
                         {"name": "staging", "cluster": {"server": "https://s"}}],
        });
        let with = |r: Request| decide(&r, &view).map(|p| (p.cluster, p.make_current));
        assert_eq!(
            with(request("new")).unwrap(),
            ("prod".into(), false),
            "the current context's cluster"
        );
        assert_eq!(with(request("old")).unwrap().0, "staging", "its own");
        let named = Request {
            cluster: Some("staging".into()),
            use_context: true,
            ..request("new")
        };
        assert_eq!(with(named).unwrap(), ("staging".into(), true));
        let server = Request {
            server: Some("https://api:6443".into()),
            ..request("platform")
        };
        assert_eq!(with(server).unwrap().0, "platform", "a new one");
        let missing = Request {
            cluster: Some("platform".into()),
            ..request("platform")
        };
        assert!(matches!(
            with(missing),
            Err(PlanError::MissingCluster { .. })
        ));
    }

    #[test]
    fn an_empty_kubeconfig_needs_a_server_and_gets_a_current_context() {
        let empty = json!({"clusters": null, "contexts": null, "current-context": ""});
        assert!(matches!(
            decide(&request("platform"), &empty),
            Err(PlanError::NoCluster { .. })
        ));
        let server = Request {
            server: Some("https://api:6443".into()),
            ..request("platform")
        };
        let plan = decide(&server, &empty).unwrap();
        assert_eq!(plan.cluster, "platform");
        assert!(plan.make_current);
    }
}
