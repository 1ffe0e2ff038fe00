//! Ctrl-C while a login waits for the browser: the wait notices, so the login is recorded as
//! abandoned (see [`crate::cooldown`]) before the process exits; the lock and the listener
//! go with the process, and no temporary file is open while waiting.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// From now on, SIGINT and SIGTERM set a flag (see [`requested`]) instead of ending the
/// process; a wait loop that polls the flag then ends the login cleanly.
#[cfg(unix)]
pub fn watch() {
    extern "C" fn on_signal(_: libc::c_int) {
        // Only an atomic store: nothing else is safe in a signal handler.
        REQUESTED.store(true, Ordering::SeqCst);
    }
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// Windows: Ctrl-C ends the process as before (no abandonment record there).
#[cfg(not(unix))]
pub fn watch() {}

/// Whether Ctrl-C (or SIGTERM) arrived since [`watch`].
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
