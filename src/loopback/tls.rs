//! The HTTPS variant of the loopback listener (`--local-server-cert/--local-server-key`), for
//! providers that only accept https redirect URIs. tiny_http's own TLS support pins rustls
//! 0.20, which is unmaintained and has an open advisory; this serves the one redirect over the
//! rustls 0.23 the HTTP client already uses. One connection at a time, each bounded in size
//! and time, like the plain listener.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::{LoopbackError, Reply};

/// A browser's request head is well under this; anything longer is not one.
const MAX_HEAD: usize = 16 * 1024;
/// Time for one connection's handshake and request head (a browser may open a spare
/// connection it never uses; it must not hold up the real one for long).
const CONNECTION_TIME: Duration = Duration::from_secs(3);

/// Loads the certificate chain and key the user gave.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, LoopbackError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| LoopbackError::Tls(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(LoopbackError::Tls(format!(
            "{}: no PEM certificate found",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| LoopbackError::Tls(format!("{}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| LoopbackError::Tls(format!("the certificate and key do not fit: {e}")))?;
    Ok(Arc::new(config))
}

pub struct TlsServer {
    /// The bound address first; then the same port on [::1] when `localhost` may resolve there.
    listeners: Vec<TcpListener>,
    config: Arc<ServerConfig>,
}

impl TlsServer {
    pub fn bind(address: &str, config: Arc<ServerConfig>) -> std::io::Result<Self> {
        Ok(TlsServer {
            listeners: vec![polled(TcpListener::bind(address)?)?],
            config,
        })
    }

    /// Listens on `address` too; connections on either socket are answered alike.
    pub fn also_listen(&mut self, address: SocketAddr) -> std::io::Result<()> {
        self.listeners.push(polled(TcpListener::bind(address)?)?);
        Ok(())
    }

    pub fn addr(&self) -> SocketAddr {
        self.listeners[0]
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Waits up to `wait` for one connection and answers its request with `decide(host,
    /// target)`; `Ok(None)` when nothing (or nothing usable) arrived.
    pub fn serve_one<T>(
        &self,
        wait: Duration,
        decide: impl FnOnce(Option<&str>, &str) -> (Reply, T),
    ) -> std::io::Result<Option<T>> {
        let deadline = Instant::now() + wait;
        let stream = 'wait: loop {
            for listener in &self.listeners {
                match listener.accept() {
                    Ok((stream, _)) => break 'wait stream,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // A failed handshake or a garbled request ends only this connection, not the login.
        match self.answer(stream, decide) {
            Ok(outcome) => Ok(outcome),
            Err(e) => {
                crate::debug!(1, "dropped a loopback connection: {e}");
                Ok(None)
            }
        }
    }

    fn answer<T>(
        &self,
        stream: TcpStream,
        decide: impl FnOnce(Option<&str>, &str) -> (Reply, T),
    ) -> std::io::Result<Option<T>> {
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(CONNECTION_TIME))?;
        stream.set_write_timeout(Some(CONNECTION_TIME))?;
        let connection = ServerConnection::new(self.config.clone())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut tls = StreamOwned::new(connection, stream);
        let head = read_head(&mut tls)?;
        let Some((target, host)) = parse_head(&head) else {
            return Ok(None);
        };
        let (reply, outcome) = decide(host.as_deref(), &target);
        let response = match reply {
            Reply::Page(status, html) => format!(
                "HTTP/1.1 {status} {}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
                reason(status),
                html.len()
            ),
            Reply::Redirect(location) => format!(
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
        };
        // The browser may have gone away; the outcome does not depend on it.
        let _ = tls.write_all(response.as_bytes()).and_then(|_| tls.flush());
        tls.conn.send_close_notify();
        let _ = tls.flush();
        Ok(Some(outcome))
    }
}

/// Polled, so the login deadline is kept without a thread per accept.
fn polled(listener: TcpListener) -> std::io::Result<TcpListener> {
    listener.set_nonblocking(true)?;
    Ok(listener)
}

fn read_head(stream: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_HEAD {
            return Err(std::io::Error::other("request head too large"));
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(head)
}

/// The request target and Host header of a GET request head.
fn parse_head(head: &[u8]) -> Option<(String, Option<String>)> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    if request_line.next()? != "GET" {
        return None;
    }
    let target = request_line.next()?.to_string();
    let host = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("host"))
        .map(|(_, value)| value.trim().to_string());
    Some((target, host))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        421 => "Misdirected Request",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_target_and_host_of_a_get() {
        let head = b"GET /?code=c&state=s HTTP/1.1\r\nhost: localhost:8000\r\nAccept: */*\r\n\r\n";
        assert_eq!(
            parse_head(head),
            Some((
                "/?code=c&state=s".to_string(),
                Some("localhost:8000".to_string())
            ))
        );
        assert_eq!(parse_head(b"POST / HTTP/1.1\r\n\r\n"), None);
        assert_eq!(parse_head(b"\xff\xfe"), None);
        assert_eq!(
            parse_head(b"GET /x HTTP/1.1\r\n\r\n"),
            Some(("/x".to_string(), None))
        );
    }

    #[test]
    fn refuses_an_endless_head() {
        let endless = std::io::repeat(b'a');
        assert!(read_head(&mut endless.take(1 << 20)).is_err());
    }
}
