//! The certificate of the HTTPS loopback listener (`--local-server-cert/--local-server-key`),
//! for providers that only accept https redirect URIs. The connections are served by
//! [`super::server`] over the rustls 0.23 the HTTP client already uses (tiny_http's own TLS
//! support pinned rustls 0.20, unmaintained, with an open advisory).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use super::LoopbackError;
use crate::named_file::Kind;

/// Loads the certificate chain and key the user gave.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, LoopbackError> {
    // The key is a secret file (owner-only, no symlink, one name); both are read without
    // blocking on a FIFO put in their place (see crate::named_file).
    let read = |path: &Path, kind| {
        crate::named_file::read(path, kind).map_err(|e| LoopbackError::Tls(e.to_string()))
    };
    let cert_pem = read(cert, Kind::Public)?;
    let key_pem = read(key, Kind::Secret)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| LoopbackError::Tls(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(LoopbackError::Tls(format!(
            "{}: no PEM certificate found",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| LoopbackError::Tls(format!("{}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| LoopbackError::Tls(format!("the certificate and key do not fit: {e}")))?;
    Ok(Arc::new(config))
}
