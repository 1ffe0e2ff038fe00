//! `kubectl-oidc_login`: the thin binary. All behaviour lives in the library crate so the
//! integration tests and the binary run exactly the same code.

fn main() {
    std::process::exit(kubectl_oidc_login::run(std::env::args_os()));
}
