//! kubectl credential plugin for OpenID Connect providers (Keycloak and friends).
//!
//! Data flows one way: [`cli`] flags → [`config`] → [`store`] cache lookup → [`oidc`] flow →
//! [`store`] → [`exec_credential`] output. The hot path (a still-valid cached token) touches only
//! `cli`, `config`, the token file and `exec_credential`: no TLS, no keyring, no lock.

pub mod accounts;
pub mod browser;
pub mod claims;
pub mod cli;
pub mod complete;
pub mod config;
pub mod diagnose;
pub mod error;
pub mod exec_credential;
pub mod get_token;
pub mod jwt;
pub mod lock;
pub mod log;
pub mod login;
pub mod logout;
pub mod loopback;
pub mod loopback_tls;
pub mod oidc;
pub mod setup;
pub mod store;
pub mod whoami;

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
    let code = match cli::dispatch(cli) {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("error: {err}");
            1
        }
    };
    // The binary's C `main` returns straight to libc, which does not flush Rust's stdout.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    code
}

#[cfg(test)]
pub(crate) mod test_support {
    /// get-token flags with every default, as clap fills them in.
    pub fn args() -> crate::cli::GetTokenArgs {
        let cli = crate::cli::parse(
            [
                "k",
                "get-token",
                "--oidc-issuer-url=https://i",
                "--oidc-client-id=c",
            ]
            .iter()
            .map(std::ffi::OsString::from)
            .collect(),
        )
        .unwrap();
        match cli.command {
            crate::cli::Command::GetToken(args) => *args,
            _ => unreachable!(),
        }
    }
}
