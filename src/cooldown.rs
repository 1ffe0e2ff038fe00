//! Background callers never storm the user with logins. IDEs, Lens, k9s and VS Code run
//! kubectl without a terminal every few seconds; when a browser login was abandoned (timed
//! out, refused, Ctrl-C), each of them would open a new tab. So an abandoned login is recorded
//! beside the cache, and for a while callers without a terminal fail at once with what to run
//! instead; a caller with a terminal may always log in, and a successful login ends it.

use std::io::IsTerminal;
use std::path::Path;

use crate::private_file::CacheDir;

/// How long background callers hold back after an abandoned login.
pub const COOLDOWN_SECS: i64 = 300;

fn marker(key_id: &str) -> String {
    format!("{key_id}.abandoned")
}

/// Records that a browser login of `key_id` was abandoned at `now`, through the cache's own
/// writer (a private directory, an atomic 0600 file).
pub fn record(dir: &Path, key_id: &str, now: i64) {
    // The marker holds only a time; failing to write it costs the cool-down, nothing more.
    let written = CacheDir::create(dir)
        .and_then(|dir| dir.write(&marker(key_id), now.to_string().as_bytes()));
    if let Err(e) = written {
        crate::debug!(1, "{e}");
    }
}

/// Seconds since a login of `key_id` was abandoned, while that is within the cool-down.
pub fn active(dir: &Path, key_id: &str, now: i64) -> Option<i64> {
    let bytes = CacheDir::open(dir).ok()??.read(&marker(key_id)).ok()??;
    let at: i64 = std::str::from_utf8(&bytes).ok()?.trim().parse().ok()?;
    // A marker holding an absurd time (i64::MIN) is no cool-down, not an overflow.
    let age = now.checked_sub(at)?;
    (0..COOLDOWN_SECS).contains(&age).then_some(age)
}

/// Ends the cool-down of `key_id` (a login succeeded).
pub fn clear(dir: &Path, key_id: &str) {
    if let Ok(Some(dir)) = CacheDir::open(dir) {
        let _ = dir.remove(&marker(key_id));
    }
}

/// A caller nobody watches: neither stdin nor stderr is a terminal.
pub fn is_background() -> bool {
    !std::io::stdin().is_terminal() && !std::io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_with_an_absurd_time_is_no_cooldown() {
        let dir = tempfile::tempdir().unwrap();
        record(dir.path(), "k", i64::MIN);
        assert_eq!(active(dir.path(), "k", 1000), None);
        record(dir.path(), "k", i64::MAX);
        assert_eq!(active(dir.path(), "k", -1000), None);
    }

    #[test]
    fn a_record_holds_for_the_cooldown_and_clears() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(active(dir.path(), "k", 1000), None);
        record(dir.path(), "k", 1000);
        assert_eq!(active(dir.path(), "k", 1010), Some(10));
        assert_eq!(active(dir.path(), "k", 1000 + COOLDOWN_SECS), None);
        assert_eq!(active(dir.path(), "other", 1010), None);
        clear(dir.path(), "k");
        assert_eq!(active(dir.path(), "k", 1010), None);
    }
}
