//! `kubectl-oidc_login`: the thin binary. All behaviour lives in the library crate so the
//! integration tests and the binary run exactly the same code.
//!
//! `no_main`: std's own `main` wrapper reads /proc/self/maps to place a stack guard for the main
//! thread, about an eighth of the instructions of a cache hit. The plugin runs before every
//! kubectl call, and the only thing that wrapper adds here is the "stack overflow" message, so
//! the C `main` is ours. std still initialises itself (args, env) on Linux, macOS and Windows.
#![no_main]

use std::ffi::{c_char, c_int};

#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    kubectl_oidc_login::run(std::env::args_os())
}
