//! What kubectl hands the plugin (KUBERNETES_EXEC_INFO, the cluster's extension) and what
//! the plugin hands back (the ExecCredential).

use kubectl_oidc_login::exec_credential::{render, rfc3339, ExecInfo};
use kubectl_oidc_login::times::sane_time;
use kubectl_oidc_login::{kubeconfig, kuberc};
use serde_json::{json, Value};

use super::{fields, text};

/// KUBERNETES_EXEC_INFO, then the credential for it: the output is one line of JSON that
/// kubectl reads back to the token, the version it asked for and an expiry Go's
/// time.Parse(time.RFC3339) takes.
pub fn exec_info(data: &[u8]) {
    let parts = fields(data, 3);
    let raw = text(parts[0]);
    let token = text(parts[1]);
    let mut when = [0u8; 8];
    for (to, from) in when.iter_mut().zip(parts[2]) {
        *to = *from;
    }
    let expiry = i64::from_le_bytes(when);

    let info = match ExecInfo::parse(&raw) {
        Ok(info) => info,
        Err(err) => {
            super::assert_printable(&err.to_string());
            return;
        }
    };
    let asked: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
    if let Some(version) = asked.get("apiVersion").and_then(Value::as_str) {
        assert_eq!(info.api_version, version);
    }

    let out = render(&info, &token, expiry);
    assert!(out.ends_with('\n'));
    assert!(
        !out.trim_end().contains('\n'),
        "more than one line: {out:?}"
    );
    let credential: Value = serde_json::from_str(&out).expect("the credential is JSON");
    assert_eq!(credential["kind"], "ExecCredential");
    assert_eq!(credential["apiVersion"], info.api_version);
    assert_eq!(credential["status"]["token"], token.as_str());
    let stamp = credential["status"]["expirationTimestamp"]
        .as_str()
        .expect("an expiry");
    assert_eq!(go_rfc3339(stamp), Some(sane_time(expiry)), "{stamp}");
    assert_eq!(stamp, rfc3339(expiry));
}

/// Go's time.Parse(time.RFC3339, s) for the UTC form the plugin writes: a four-digit year and
/// every field in range, else None.
fn go_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| std::str::from_utf8(part).ok()?.parse().ok())?
    };
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let date =
        chrono::NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?)?;
    let time = chrono::NaiveTime::from_hms_opt(digits(11..13)?, digits(14..16)?, digits(17..19)?)?;
    Some(date.and_time(time).and_utc().timestamp())
}

/// One cluster of `kubectl config view -o json`: what doctor and setup read of the plugin's
/// extension is what get-token reads of it through KUBERNETES_EXEC_INFO; and a kuberc's
/// credential plugin policy.
pub fn cluster_settings(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let from_kubeconfig = kubeconfig::cluster_config(&value);
    if let Some(extension) = value["extensions"].as_array().and_then(|all| {
        all.iter()
            .find(|e| e["name"] == "client.authentication.k8s.io/exec")
    }) {
        let info = json!({
            "apiVersion": "client.authentication.k8s.io/v1",
            "kind": "ExecCredential",
            "spec": {"interactive": false, "cluster": {"config": extension["extension"]}},
        });
        let from_exec_info = ExecInfo::parse(&info.to_string()).map(|i| i.cluster);
        match (&from_kubeconfig, &from_exec_info) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            other => panic!("the two readers disagree: {other:?}"),
        }
    }
    if let Ok(Some(config)) = &from_kubeconfig {
        for part in [&config.audience, &config.scope].into_iter().flatten() {
            assert!(!part.trim().is_empty());
        }
        if let Some(scope) = &config.scope {
            assert_eq!(
                scope.split(' ').count(),
                scope.split_whitespace().count(),
                "{scope:?}"
            );
        }
    }

    if let Some(policy) = kuberc::parse(&value) {
        let command = "kubectl-oidc_login-fuzz-nonexistent";
        match policy.verdict(command) {
            kuberc::Verdict::DenyAll => assert_ne!(policy.kind, "Allowlist"),
            kuberc::Verdict::Allowed => {
                assert!(policy.allowlist.iter().any(|e| e == command), "{policy:?}")
            }
            kuberc::Verdict::Refused { entry } => {
                assert_eq!(entry, command);
                let _ = kuberc::entry_to_add(&entry);
            }
        }
    }
}
