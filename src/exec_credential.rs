//! The contract with client-go: KUBERNETES_EXEC_INFO in, one ExecCredential JSON out.

use std::io::{IsTerminal, Write};

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub const V1: &str = "client.authentication.k8s.io/v1";
pub const V1BETA1: &str = "client.authentication.k8s.io/v1beta1";
const ENV: &str = "KUBERNETES_EXEC_INFO";

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ExecInfoError {
    #[error("KUBERNETES_EXEC_INFO is not valid ExecCredential JSON ({0}); it is set by kubectl, unset it when running by hand")]
    Malformed(String),
    #[error("KUBERNETES_EXEC_INFO asks for apiVersion {0:?}, but only {V1} and {V1BETA1} are supported; set users[].user.exec.apiVersion to one of them")]
    UnknownVersion(String),
    #[error("the cluster's extension {CLUSTER_EXTENSION} is not what this plugin reads ({0}); write it as {{audience: CLUSTER_CLIENT_ID, scope: CLIENT_SCOPE}} (scope optional) in the kubeconfig's clusters[].cluster.extensions")]
    BadClusterConfig(String),
}

/// The name of the cluster extension kubectl hands exec plugins as `spec.cluster.config`
/// (with `provideClusterInfo: true` in the user's exec entry).
pub const CLUSTER_EXTENSION: &str = "client.authentication.k8s.io/exec";

/// This plugin's settings for one cluster, from the cluster's own kubeconfig entry (see
/// [`CLUSTER_EXTENSION`]): so one kubeconfig user serves every cluster, and a new cluster is
/// one cluster entry. Keys other plugins may read are left alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ClusterConfig {
    /// The audience to exchange the login for: the cluster's client ID.
    #[serde(default, deserialize_with = "non_empty")]
    pub audience: Option<String>,
    /// The RFC 8693 `scope` of the exchange (space-separated, or a YAML list).
    #[serde(default, deserialize_with = "scope")]
    pub scope: Option<String>,
}

fn non_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<String>::deserialize(d)?;
    match value.as_deref().map(str::trim) {
        Some("") => Err(serde::de::Error::custom("audience is empty")),
        Some(v) => Ok(Some(v.to_string())),
        None => Ok(None),
    }
}

fn scope<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scope {
        One(String),
        Many(Vec<String>),
    }
    let words: Vec<String> = match Option::<Scope>::deserialize(d)? {
        None => return Ok(None),
        Some(Scope::One(s)) => vec![s],
        Some(Scope::Many(v)) => v,
    };
    Ok(normalize_scope(words.iter().map(String::as_str)))
}

/// Scopes as one space-delimited value (RFC 6749 §3.3), each once, in the order given; None
/// when there are none.
pub fn normalize_scope<'a>(values: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for word in values.flat_map(str::split_whitespace) {
        if !out.contains(&word) {
            out.push(word);
        }
    }
    (!out.is_empty()).then(|| out.join(" "))
}

/// What kubectl told us about this call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecInfo {
    pub api_version: &'static str,
    /// Whether the user can answer on stdin (kubectl's `spec.interactive`).
    pub interactive: bool,
    /// The cluster's settings for this plugin (`spec.cluster.config`), when kubectl passed any.
    pub cluster: Option<ClusterConfig>,
}

#[derive(Deserialize)]
struct RawExecInfo {
    #[serde(rename = "apiVersion")]
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    spec: RawSpec,
}

#[derive(Deserialize, Default)]
struct RawSpec {
    #[serde(default)]
    interactive: bool,
    #[serde(default)]
    cluster: Option<RawCluster>,
}

/// Only the extension is read: the server, its CA and the rest are kubectl's business.
#[derive(Deserialize, Default)]
struct RawCluster {
    #[serde(default)]
    config: Option<serde_json::Value>,
}

impl ExecInfo {
    pub fn from_env() -> Result<Self, ExecInfoError> {
        match std::env::var(ENV) {
            Ok(raw) if !raw.trim().is_empty() => Self::parse(&raw),
            // Run by hand: answer in v1beta1 as kubelogin does (scripts that read its output
            // expect that), and the user is at the terminal if stdin is one.
            _ => Ok(ExecInfo {
                api_version: V1BETA1,
                interactive: std::io::stdin().is_terminal(),
                cluster: None,
            }),
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ExecInfoError> {
        // serde also takes a derived struct as a JSON array of its fields, and skips ignored
        // fields without checking them as strictly as serde_json's Value would (both found by
        // fuzzing). Neither matters: KUBERNETES_EXEC_INFO comes from kubectl (or whoever runs
        // the plugin, who could as well pass flags), and any form that parses is held to the
        // same checks of kind, apiVersion and cluster config below.
        let info: RawExecInfo =
            serde_json::from_str(raw).map_err(|e| ExecInfoError::Malformed(e.to_string()))?;
        if let Some(kind) = &info.kind {
            if kind != "ExecCredential" {
                return Err(ExecInfoError::Malformed(format!(
                    "kind is {kind:?}, expected \"ExecCredential\""
                )));
            }
        }
        let api_version = match info.api_version.as_deref() {
            None | Some(V1) => V1,
            Some(V1BETA1) => V1BETA1,
            Some(other) => return Err(ExecInfoError::UnknownVersion(other.to_string())),
        };
        // A JSON null (an extension written without a value) is no extension.
        let cluster = match info.spec.cluster.and_then(|c| c.config) {
            None | Some(serde_json::Value::Null) => None,
            Some(config) => Some(
                serde_json::from_value(config)
                    .map_err(|e| ExecInfoError::BadClusterConfig(e.to_string()))?,
            ),
        };
        Ok(ExecInfo {
            api_version,
            interactive: info.spec.interactive,
            cluster,
        })
    }
}

#[derive(Serialize)]
struct ExecCredential<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    spec: Spec,
    status: Status<'a>,
}

#[derive(Serialize)]
struct Spec {
    interactive: bool,
}

#[derive(Serialize)]
struct Status<'a> {
    token: &'a str,
    #[serde(rename = "expirationTimestamp")]
    expiration_timestamp: String,
}

/// Renders the ExecCredential for `token`, which expires at `expiry` (Unix seconds).
pub fn render(info: &ExecInfo, token: &str, expiry: i64) -> String {
    let credential = ExecCredential {
        kind: "ExecCredential",
        api_version: info.api_version,
        spec: Spec {
            interactive: info.interactive,
        },
        status: Status {
            token,
            expiration_timestamp: rfc3339(expiry),
        },
    };
    let mut json = serde_json::to_string(&credential).expect("ExecCredential serialises");
    json.push('\n');
    json
}

/// Writes the ExecCredential to stdout in one write, so a reader never sees half of it.
pub fn write(info: &ExecInfo, token: &str, expiry: i64) -> std::io::Result<()> {
    let json = render(info, token, expiry);
    let mut out = std::io::stdout().lock();
    out.write_all(json.as_bytes())?;
    out.flush()
}

/// RFC 3339 in UTC with a `Z`, as client-go's metav1.Time expects.
pub fn rfc3339(unix: i64) -> String {
    // RFC 3339 (and Go's time.Parse, which kubectl uses) knows four-digit years only: chrono
    // writes `+10000-…` past 9999 and kubectl then fails every call while such a token is
    // cached. Clamping loses nothing: kubectl runs the plugin again long before either end.
    chrono::DateTime::from_timestamp(crate::times::sane_time(unix), 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_keep_four_digit_years() {
        assert_eq!(rfc3339(253_402_300_800), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(-62_135_596_801), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(i64::MIN), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn picks_the_version_kubectl_asks_for() {
        let v1beta1 = r#"{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","spec":{"interactive":true}}"#;
        assert_eq!(
            ExecInfo::parse(v1beta1).unwrap(),
            ExecInfo {
                api_version: V1BETA1,
                interactive: true,
                cluster: None,
            }
        );
        let v1 = r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false,"cluster":{"server":"https://x"}}}"#;
        assert_eq!(ExecInfo::parse(v1).unwrap().api_version, V1);
    }

    #[test]
    fn refuses_unknown_versions_and_garbage() {
        let alpha =
            r#"{"apiVersion":"client.authentication.k8s.io/v1alpha1","kind":"ExecCredential"}"#;
        assert!(matches!(
            ExecInfo::parse(alpha),
            Err(ExecInfoError::UnknownVersion(_))
        ));
        assert!(matches!(
            ExecInfo::parse("{not json"),
            Err(ExecInfoError::Malformed(_))
        ));
    }

    #[test]
    fn reads_the_clusters_extension_as_kubectl_passes_it() {
        // As kubectl 1.32 passed it for a cluster with
        // `extension: {audience: dev, scope: aud-dev}` and provideClusterInfo: true.
        let raw = r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"cluster":{"server":"https://127.0.0.1:6443","certificate-authority-data":"LS0t","config":{"audience":"dev","scope":"aud-dev"}},"interactive":true}}"#;
        assert_eq!(
            ExecInfo::parse(raw).unwrap().cluster,
            Some(ClusterConfig {
                audience: Some("dev".into()),
                scope: Some("aud-dev".into()),
            })
        );
        let list = r#"{"spec":{"cluster":{"server":"https://x","config":{"audience":"dev","scope":["openid","aud-dev","openid"],"other-plugin":1}}}}"#;
        assert_eq!(
            ExecInfo::parse(list)
                .unwrap()
                .cluster
                .unwrap()
                .scope
                .as_deref(),
            Some("openid aud-dev")
        );
        // No extension, or no cluster info at all: no cluster settings.
        for none in [
            r#"{"spec":{"cluster":{"server":"https://x"}}}"#,
            r#"{"spec":{"cluster":{"server":"https://x","config":null}}}"#,
            r#"{"spec":{}}"#,
        ] {
            assert_eq!(ExecInfo::parse(none).unwrap().cluster, None, "{none}");
        }
        for bad in [
            r#"{"spec":{"cluster":{"config":{"audience":""}}}}"#,
            r#"{"spec":{"cluster":{"config":{"audience":7}}}}"#,
            r#"{"spec":{"cluster":{"config":"dev"}}}"#,
        ] {
            assert!(
                matches!(
                    ExecInfo::parse(bad),
                    Err(ExecInfoError::BadClusterConfig(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn renders_token_and_utc_expiry() {
        let info = ExecInfo {
            api_version: V1,
            interactive: false,
            cluster: None,
        };
        let json: serde_json::Value = serde_json::from_str(&render(&info, "tok", 0)).unwrap();
        assert_eq!(json["kind"], "ExecCredential");
        assert_eq!(json["apiVersion"], V1);
        assert_eq!(json["status"]["token"], "tok");
        assert_eq!(
            json["status"]["expirationTimestamp"],
            "1970-01-01T00:00:00Z"
        );
    }
}
