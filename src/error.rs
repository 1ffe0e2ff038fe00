//! The error the commands return. Each building block has its own typed error; this one only
//! gathers them so `main` can print one line. Every message names the cause and, where there
//! is one, the fix, and never contains a token, code or secret. It imports building blocks
//! only: the settings' own error is joined to it above, in `dispatch`.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    ExecInfo(#[from] crate::exec_credential::ExecInfoError),
    #[error(transparent)]
    ClusterConfig(#[from] crate::config::ClusterConfigError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    SignIn(#[from] crate::signin::SignInError),
    #[error(transparent)]
    Oidc(#[from] crate::oidc::OidcError),
    #[error(transparent)]
    Loopback(#[from] crate::loopback::LoopbackError),
    #[error("cannot write the ExecCredential to stdout: {0}")]
    Output(std::io::Error),
    #[error("{0}")]
    Setup(String),
}
