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
    deny_inspection();
    kubectl_oidc_login::run(arguments(argc, argv))
}

/// Keeps tokens out of other processes' reach, as ssh-agent does: no process of the same user
/// may ptrace this one or read its memory (`/proc/PID/mem`) while it holds a PKCE verifier,
/// a refresh token or a client secret, and a crash writes no core file holding them. First
/// thing, before any secret exists; one system call on the hot path.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn deny_inspection() {
    // SAFETY: PR_SET_DUMPABLE takes a plain integer and touches only this process.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
}

/// macOS: PT_DENY_ATTACH refuses debuggers (and task_for_pid through them), and a zero core
/// limit keeps secrets out of /cores.
#[cfg(target_os = "macos")]
fn deny_inspection() {
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: both calls take plain values and touch only this process.
    unsafe {
        libc::ptrace(libc::PT_DENY_ATTACH, 0, std::ptr::null_mut(), 0);
        libc::setrlimit(libc::RLIMIT_CORE, &none);
    }
}

/// Other Unix systems: at least no core file.
#[cfg(all(
    unix,
    not(any(target_os = "linux", target_os = "android", target_os = "macos"))
))]
fn deny_inspection() {
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit takes a plain value and touches only this process.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) };
}

/// Windows: another process of the same user may open this one (the same-user boundary of
/// the platform); Windows Error Reporting writes no full memory dump by default.
#[cfg(not(unix))]
fn deny_inspection() {}

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
