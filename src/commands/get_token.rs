//! The `get-token` use case: the cached credential at once (the hot path), else the sign-in
//! step, then one ExecCredential on stdout.

use crate::config::Config;
use crate::error::Error;
use crate::exec_credential::{self, ExecInfo};
use crate::oidc::OidcError;
use crate::signin::{self, Mode, SignInError};

pub fn run(config: &Config) -> Result<(), Error> {
    let exec = ExecInfo::from_env()?;
    // The cluster's own audience and scope (its kubeconfig extension, read from the exec info
    // above): one kubeconfig user serves every cluster, each with its own cached token.
    let config = &*config.for_cluster(exec.cluster.as_ref())?;
    let store = signin::credential_store(config);
    let key = config.credential_key();

    // The hot path: one file read, no lock, no TLS, no keyring.
    if !config.force_refresh {
        if let Some((token, expiry)) = signin::cached(&*store, &key, config) {
            crate::debug!(1, "using the cached token");
            return output(&exec, &token, expiry);
        }
    }
    // Some kubectl builds (the Google Cloud SDK's dispatcher) run the exec plugin for every
    // command, `kubectl config view` included; `doctor` reads the kubeconfig that way and sets
    // this so reading it never starts a refresh or a browser login.
    if std::env::var_os(signin::NO_LOGIN_ENV).is_some() {
        return Err(SignInError::LoginForbidden.into());
    }
    let tokens = match config.token_exchange_audience {
        Some(_) => signin::exchanged(config, &exec, &*store, &key)?,
        None => signin::obtain(config, &exec, &*store, &key, Mode::Normal)?,
    };
    let (token, expiry) = tokens
        .credential(signin::credential_is_access_token(config))
        .ok_or(OidcError::NoAccessTokenExpiry)?;
    // client-go compares expirationTimestamp with this machine's clock.
    output(&exec, token, tokens.clock().to_local(expiry))
}

fn output(exec: &ExecInfo, token: &str, expiry: i64) -> Result<(), Error> {
    exec_credential::write(exec, token, expiry).map_err(Error::Output)
}
