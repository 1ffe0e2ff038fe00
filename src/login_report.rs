//! The machine-readable form of a cached login, for `whoami -o json|yaml` and `accounts -o
//! json|yaml` (shell prompts, k9s plugins, scripts). The schema is documented in
//! docs/accounts.md; `schemaVersion` changes only when a field changes meaning or goes
//! away, never for a new field. It never holds a token or a secret: only what the tokens say
//! (claims and expiry times) and where they are kept.

use std::path::Path;

use serde_json::{json, Value};

use crate::claims::Identity;
use crate::exec_credential::rfc3339;
use crate::private_file::CacheDir;
use crate::tokens::{CacheKey, Storage, TokenSet};

/// The version of the schema below.
pub const SCHEMA_VERSION: u32 = 1;

/// How a command prints what it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Yaml,
}

/// One login: `tokens` as cached (None: nothing readable), whether a refresh token is kept,
/// and where. Times are RFC 3339 UTC in this machine's clock (a measured offset to the
/// provider's clock is taken out).
pub fn login(
    key: &CacheKey,
    tokens: Option<&TokenSet>,
    refresh_token: Option<&str>,
    storage: Storage,
    dir: &Path,
) -> Value {
    let identity = tokens.and_then(|t| Identity::from_id_token(&t.id_token));
    let local = |t: &TokenSet, at: i64| rfc3339(t.clock().to_local(at));
    let id_token_expiry = tokens
        .filter(|t| !t.id_token.is_empty())
        .map(|t| local(t, t.id_token_expiry));
    let access_token_expiry = tokens.and_then(|t| t.access_token_expiry.map(|at| local(t, at)));
    let refresh_expiry = refresh_token.and_then(crate::jwt::peek_expiry).map(rfc3339);
    json!({
        "schemaVersion": SCHEMA_VERSION,
        "kind": "Login",
        "issuer": key.issuer,
        "client": key.client_id,
        "account": key.account,
        "user": identity.as_ref().map(|i| i.clone().who()),
        "subject": identity.as_ref().map(|i| i.sub.clone()),
        "preferredUsername": identity.as_ref().and_then(|i| i.preferred_username.clone()),
        "email": identity.as_ref().and_then(|i| i.email.clone()),
        "emailVerified": identity.as_ref().and_then(|i| i.email_verified),
        "groups": identity.as_ref().and_then(|i| i.groups.clone()),
        "idTokenExpiry": id_token_expiry,
        "accessTokenExpiry": access_token_expiry,
        "refreshToken": {
            "cached": refresh_token.is_some(),
            "expiry": refresh_expiry,
        },
        "storage": {
            "mode": storage.name(),
            "directory": dir.display().to_string(),
        },
        "clusters": clusters(dir, key),
    })
}

/// The tokens exchanged from this login for clusters (`--token-exchange-audience`): their
/// audience and expiry, read from the token files named after the login's key. Listed and
/// read through the cache's one [`CacheDir`] handle, with its checks: a FIFO, a symlink or
/// another user's file named like a cluster token is skipped with a warning, and a directory
/// swapped in after the login was read is never listed.
fn clusters(dir: &Path, key: &CacheKey) -> Value {
    let prefix = format!("{}-", key.id());
    let cache = match CacheDir::open(dir) {
        Ok(Some(cache)) => cache,
        Ok(None) => return Value::Array(Vec::new()),
        Err(e) => {
            crate::warn!("{e}");
            return Value::Array(Vec::new());
        }
    };
    let names = cache.names().unwrap_or_else(|e| {
        crate::warn!("{e}");
        Vec::new()
    });
    let mut out: Vec<Value> = names
        .into_iter()
        .filter_map(|name| {
            name.strip_prefix(&prefix)?.strip_suffix(".token.json")?;
            let bytes = match cache.read(&name) {
                Ok(bytes) => bytes?,
                Err(e) => {
                    crate::warn!("{e}");
                    return None;
                }
            };
            let file: Value = serde_json::from_slice(&bytes).ok()?;
            let tokens: Option<TokenSet> = serde_json::from_value(file.clone()).ok();
            let expiry = tokens.as_ref().and_then(|t| {
                t.credential(true)
                    .or_else(|| t.credential(false))
                    .map(|(_, at)| rfc3339(t.clock().to_local(at)))
            });
            Some(json!({
                "audience": file["client_id"],
                "expiry": expiry,
            }))
        })
        .collect();
    out.sort_by_key(|c| c["audience"].as_str().unwrap_or_default().to_string());
    Value::Array(out)
}

/// A list of logins.
pub fn list(logins: Vec<Value>) -> Value {
    json!({
        "schemaVersion": SCHEMA_VERSION,
        "kind": "LoginList",
        "logins": logins,
    })
}

/// `value` as JSON or YAML text, ending with a newline. No hostile character (see
/// [`crate::log::is_hostile`]: terminal controls, and what YAML forbids or reads as a line
/// break) is written raw, whatever a provider put in a claim: each is a `\uXXXX` escape,
/// which JSON strings and YAML double-quoted scalars both read back as the same character.
pub fn render(value: &Value, format: Format) -> String {
    let text = match format {
        Format::Yaml => {
            let mut out = String::new();
            yaml(value, 0, &mut out);
            out
        }
        _ => format!(
            "{}\n",
            serde_json::to_string_pretty(value).expect("JSON serialises")
        ),
    };
    escape_hostile(text)
}

/// `text` (JSON, or the YAML below) with each hostile character as `\uXXXX`. Outside strings
/// both texts hold nothing but ASCII and line feeds, and serde_json already escapes C0 inside
/// them, so every character replaced here is inside a string, where the escape means the same
/// character; all of them are in the BMP, so one `\u` escape each (YAML knows no surrogate
/// pairs).
fn escape_hostile(text: String) -> String {
    let hostile = |c: char| c != '\n' && crate::log::is_hostile(c);
    if !text.chars().any(hostile) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if hostile(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// A mapping key: bare when it is a plain word (every key of the schema is), else quoted.
fn yaml_key(key: &str) -> String {
    if !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        key.to_string()
    } else {
        Value::String(key.to_string()).to_string()
    }
}

/// Block-style YAML of a JSON value. Strings are written as JSON strings, which YAML reads as
/// double-quoted scalars with the same escapes, so no value can be mistaken for another type.
fn yaml(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, v) in map {
                out.push_str(&format!("{pad}{}:", yaml_key(key)));
                nested(v, indent, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                out.push_str(&format!("{pad}-"));
                match item {
                    Value::Object(map) if !map.is_empty() => {
                        // The first key on the dash's line, the others under it.
                        let mut text = String::new();
                        yaml(item, indent + 2, &mut text);
                        out.push(' ');
                        out.push_str(text.trim_start());
                    }
                    _ => nested(item, indent, out),
                }
            }
        }
        _ => {
            out.push_str(&pad);
            out.push_str(&scalar(value));
            out.push('\n');
        }
    }
}

fn nested(value: &Value, indent: usize, out: &mut String) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            yaml(value, indent + 2, out);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            yaml(value, indent + 2, out);
        }
        _ => {
            out.push(' ');
            out.push_str(&scalar(value));
            out.push('\n');
        }
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_of_nested_values() {
        let value = json!({"a": 1, "b": {"c": "x: y", "d": null}, "e": [], "f": ["g", {"h": true, "i": [1]}]});
        assert_eq!(
            render(&value, Format::Yaml),
            "a: 1\nb:\n  c: \"x: y\"\n  d: null\ne: []\nf:\n  - \"g\"\n  - h: true\n    i:\n      - 1\n"
        );
    }

    #[test]
    fn hostile_characters_are_escaped_in_both_formats_and_read_back_the_same() {
        let hostile = "a\u{85}b\u{9b}c\u{2028}d\u{202e}e\u{7f}f\u{feff}g\u{1b}h ünï 𝄞";
        let value = json!({"claim": hostile, "odd key: x": 1});
        let json_text = render(&value, Format::Json);
        assert!(!json_text
            .chars()
            .any(|c| c != '\n' && crate::log::is_hostile(c)));
        assert!(json_text.contains("\\u0085") && json_text.contains("ünï 𝄞"));
        let back: Value = serde_json::from_str(&json_text).unwrap();
        assert_eq!(back, value);
        let yaml_text = render(&value, Format::Yaml);
        assert!(!yaml_text
            .chars()
            .any(|c| c != '\n' && crate::log::is_hostile(c)));
        assert!(yaml_text.contains("\"odd key: x\": 1"), "{yaml_text}");
    }
}
