//! Property checks over every parser of outside input, one per fuzz target. Each takes the
//! raw bytes an attacker, a provider or a damaged file could hand the plugin and panics when
//! a property fails, not only when the code under it panics: an accepted callback carries
//! this login's state, a rendered credential reads back as kubectl reads it, what
//! `to_exec_args` writes parses back to the same settings.
//!
//! Compiled twice: into the fuzz targets (fuzz_targets/, libFuzzer on nightly, run by
//! scripts/fuzz) and into the regular test suite on stable (tests/suite/fuzz_replay.rs),
//! which replays seeds/ and findings/ through the same checks.

mod cache;
mod exec;
mod flags;
mod jwt;
mod listener;
mod pasted;
mod provider;
mod responses;

/// One fuzz target: its name (the file under fuzz_targets/, and the directories under
/// seeds/ and findings/) and its check.
pub type Check = fn(&[u8]);

pub const TARGETS: &[(&str, Check)] = &[
    ("listener_head", listener::head),
    ("listener_callback", listener::callback),
    ("pasted_response", pasted::response),
    ("jwt_claims", jwt::claims),
    ("exec_info", exec::exec_info),
    ("cluster_settings", exec::cluster_settings),
    ("token_file", cache::token_file),
    ("refresh_file", cache::refresh_file),
    ("cache_listing", cache::listing),
    ("cooldown_marker", cache::cooldown_marker),
    ("provider_cache", provider::cache),
    ("discovery", provider::discovery),
    ("token_response", responses::token),
    ("device_response", responses::device),
    ("exchange_response", responses::exchange),
    ("flags", flags::get_token),
    ("pflag_values", flags::pflag_values),
];

/// The check of target `name`.
pub fn check(name: &str) -> Check {
    TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no fuzz target {name}"))
        .1
}

/// Splits input into `n` parts at NUL bytes (missing parts are empty), so one input can
/// carry several fields; libFuzzer's mutations move the separators too.
fn fields(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut parts: Vec<&[u8]> = data.splitn(n, |b| *b == 0).collect();
    parts.resize(n, &[]);
    parts
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What the plugin prints of a message must be one terminal line without control characters.
fn assert_printable(message: &str) {
    let shown = kubectl_oidc_login::log::printable(message);
    assert!(
        !shown.chars().any(|c| c.is_control()),
        "a control character survives log::printable: {shown:?}"
    );
}
