//! kubectl credential plugin for OpenID Connect providers (Keycloak and friends).
//!
//! Layers, each importing only those below it: [`cli`] (syntax) → [`settings`] (meaning) →
//! [`dispatch`] → [`commands`] (one use case per subcommand) → building blocks ([`signin`], [`oidc`],
//! [`store`], [`loopback`], [`exec_credential`], ...). Data flows one way: flags → [`config`]
//! → [`store`] cache lookup → [`oidc`] flow → [`store`] → [`exec_credential`] output. The hot
//! path (a still-valid cached token) touches only `cli`, `settings`, the token file and
//! `exec_credential`: no TLS, no keyring, no lock.

// The top: syntax, meaning, dispatch, and the error the commands return.
pub mod cli;
pub mod dispatch;
pub mod error;
pub mod settings;

// The use cases, one per subcommand.
pub mod commands;

// The building blocks: they import nothing above them (see tests/suite/layering.rs).
pub mod browser;
pub mod claims;
pub mod clock;
pub mod config;
pub mod context_plan;
pub mod cooldown;
pub mod diagnose;
pub mod exec_credential;
pub mod interrupt;
pub mod jwt;
pub mod kubeconfig;
pub mod kuberc;
pub mod lock;
pub mod log;
pub mod login_report;
pub mod loopback;
pub mod named_file;
pub mod oidc;
pub mod private_file;
pub mod secret_file;
pub mod signin;
pub mod store;
pub mod times;
pub mod tokens;
pub mod troubleshooting;

use std::ffi::OsString;

/// Runs the plugin with the given arguments and returns the process exit code.
pub fn run<I: IntoIterator<Item = OsString>>(args: I) -> i32 {
    let args = cli::strip_klog_flags(args.into_iter().collect());
    let cli = match cli::parse(args) {
        Ok(cli) => cli,
        Err(err) => {
            // clap renders help and version on stdout and usage errors on stderr; either way
            // it knows the right exit code.
            let _ = err.print();
            let _ = std::io::Write::flush(&mut std::io::stdout());
            return err.exit_code();
        }
    };
    log::set_verbosity(cli.verbosity);
    let code = match dispatch::run(cli.command) {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("error: {}", log::printable(&err.to_string()));
            1
        }
    };
    // The binary's C `main` returns straight to libc, which does not flush Rust's stdout.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    code
}
