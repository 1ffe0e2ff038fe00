//! A STAND-IN for Microsoft Entra ID (tests/support/entra-standin.mjs): Entra cannot run here,
//! so npm oidc-provider issues tokens shaped as Entra's documents describe, under Entra's own
//! issuer name `https://login.microsoftonline.com/{tid}/v2.0`. That name must reach the stand-in,
//! so it listens on port 443 of a loopback address of its own (127.A.B.1), and the processes
//! that resolve the name (kubectl, and through it the plugin and the scripted browser) run in a
//! mount namespace whose /etc/hosts maps it there: [`EntraStandIn::command`]. Its certificate
//! is the test CA's, passed as users pass a private CA. Needs root (port 443, `unshare
//! --mount`); elsewhere the tests say `not built here`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::{start_node, test_certificate_for, Daemon};

/// The tenant of the stand-in (any GUID: the plugin only compares it).
pub const TENANT: &str = "3c7d1a52-8e4f-4b6a-9d21-6f0e8c4b2a17";
/// The cluster's API app: the `aud` of the access tokens (AKS's server app ID has this shape).
pub const RESOURCE: &str = "9b5e2c84-0d17-4a3f-8e6b-1c2d3f4a5b6c";
pub const HOST: &str = "login.microsoftonline.com";

pub struct EntraStandIn {
    _daemon: Daemon,
    /// `https://login.microsoftonline.com/{TENANT}/v2.0`
    pub issuer: String,
    /// The v1.0 access tokens' issuer, `https://sts.windows.net/{TENANT}/`.
    pub access_issuer: String,
    /// The keys, by the stand-in's address (for the API server stand-in, which resolves no name).
    pub jwks: String,
    pub ca: PathBuf,
    hosts: PathBuf,
}

impl EntraStandIn {
    /// Starts the stand-in in `dir` with tokens living `ttl_secs` and `envs` (see the script);
    /// None, after the `not built here` line, where it cannot run.
    pub fn start(dir: &Path, ttl_secs: u64, envs: &[(&str, String)]) -> Option<Self> {
        if unsafe { libc::geteuid() } != 0 {
            super::not_built_here(
                "not built here: Entra ID stand-in (needs root: port 443 and unshare --mount)",
            );
            return None;
        }
        let address = loopback_address();
        let (ca, cert, key) = test_certificate_for(dir, "entra", &[HOST, &address]);
        let mut all: Vec<(&str, String)> = vec![
            ("ENTRA_TENANT", TENANT.into()),
            ("ENTRA_RESOURCE", RESOURCE.into()),
            ("ENTRA_ADDRESS", address.clone()),
            ("ENTRA_TLS_CERT", cert.display().to_string()),
            ("ENTRA_TLS_KEY", key.display().to_string()),
            ("ENTRA_TTL", ttl_secs.to_string()),
        ];
        all.extend(envs.iter().cloned());
        let (daemon, ready) = start_node("entra-standin.mjs", &[], &all, &dir.join("entra.log"));
        let hosts = dir.join("hosts");
        let system = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        std::fs::write(&hosts, format!("{system}\n{address} {HOST}\n")).unwrap();
        let standin = EntraStandIn {
            _daemon: daemon,
            issuer: string(&ready, "issuer"),
            access_issuer: string(&ready, "access_issuer"),
            jwks: string(&ready, "jwks"),
            ca,
            hosts,
        };
        // One check that this machine lets a mount namespace map the name.
        let mut probe = standin.command("getent");
        probe
            .args(["hosts", HOST])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = probe.output().expect("unshare runs");
        if !String::from_utf8_lossy(&out.stdout).contains(&address) {
            super::not_built_here(&format!(
                "not built here: Entra ID stand-in (unshare --mount could not map {HOST}: {})",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            return None;
        }
        Some(standin)
    }

    /// `program` run where `login.microsoftonline.com` is this stand-in: in a mount namespace
    /// of its own with the test's /etc/hosts bound over the system's. Its children (the plugin
    /// kubectl runs, the browser the plugin opens) inherit it.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("unshare");
        command.args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            r#"mount --bind "$0" /etc/hosts && exec "$@""#,
        ]);
        command.arg(&self.hosts).arg(program);
        command
    }
}

fn string(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap().to_string()
}

/// A loopback address no other test uses, 127.A.B.1 (the whole of 127/8 is loopback on Linux),
/// so that port 443 on it is free.
fn loopback_address() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let n = hasher.finish();
    format!("127.{}.{}.1", 1 + n % 250, 1 + (n >> 8) % 250)
}
