//! The integration suite: one test binary with a module per area (issue 35). One crate
//! compiles `common` and links every dependency once, where a file per test crate did both 28
//! times. Run one area with `cargo test --test suite attacks::` (or any name filter).

mod common;

mod accounts;
mod attacks;
mod browser;
mod channels;
mod clock;
mod docs;
mod doctor;
mod examples;
mod exchange;
mod field;
// Logins across network namespaces, SSH and port forwards (issue 42).
mod field_networks;
mod field_requests;
// The fuzz targets' property checks (fuzz/checks/): fuzz_replay replays the committed inputs
// through them, properties drives some with generated inputs.
#[path = "../../fuzz/checks/mod.rs"]
mod fuzz_checks;
mod fuzz_replay;
mod get_token;
mod grants;
mod hardening;
mod hardening3;
mod hosted;
mod install;
mod keycloak;
mod keyring;
mod kubeconfig_flags;
mod kubelogin_args;
mod kubelogin_dropin;
mod layering;
mod listener_attacks;
mod network;
mod pairwise;
mod peers;
mod pflag_model;
mod platforms;
mod properties;
mod providers;
mod quickstart;
mod release;
mod secrets;
mod setup;
mod shared_cache;
mod trust_attacks;
mod two_providers;
