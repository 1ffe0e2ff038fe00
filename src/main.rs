//! `kubectl-oidc_login`: the thin binary. All behaviour lives in the library crate so the
//! integration tests and the binary run exactly the same code.
//!
//! `no_main`: std's own `main` wrapper reads /proc/self/maps to place a stack guard for the main
//! thread, about an eighth of the instructions of a cache hit. The plugin runs before every
//! kubectl call, and the only thing that wrapper adds here is the "stack overflow" message, so
//! the C `main` is ours.
#![no_main]

use std::ffi::{c_char, c_int, OsString};

#[unsafe(no_mangle)]
pub extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    kubectl_oidc_login::run(arguments(argc, argv))
}

/// The arguments, from the C runtime's own `argv` on Unix: std recovers them by itself on glibc
/// and macOS, but not on musl, where a static binary would otherwise see none.
#[cfg(unix)]
fn arguments(argc: c_int, argv: *const *const c_char) -> Vec<OsString> {
    use std::os::unix::ffi::OsStringExt;
    (0..usize::try_from(argc).unwrap_or(0))
        .map(|i| {
            // SAFETY: the C runtime passes `argc` valid NUL-terminated strings in `argv`, and
            // they live as long as the process.
            let arg = unsafe { std::ffi::CStr::from_ptr(*argv.add(i)) };
            OsString::from_vec(arg.to_bytes().to_vec())
        })
        .collect()
}

/// On Windows the C `argv` is in the ANSI code page; std reads the UTF-16 command line.
#[cfg(not(unix))]
fn arguments(_argc: c_int, _argv: *const *const c_char) -> Vec<OsString> {
    std::env::args_os().collect()
}
