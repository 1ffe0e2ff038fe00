//! The loopback listener's HTTP(S) server: GET requests without a body, one response each,
//! for the plugin's own user only, bounded against the local processes that may connect.
//!
//! Every local account can connect to a loopback port. Each socket accepted is first checked
//! for its owner ([`super::peer`]): another user's connection is closed at once, unanswered,
//! before it takes any of the room below, and only counted (see [`Server::refused`]).
//! Connections are accepted on threads of their own, as soon as they arrive.
//!
//! tiny_http 0.12, used before, could not be bounded: it reads a request head of any size into
//! memory (47 MiB of header grew the plugin by 49 MiB), has no read timeout, and hands
//! connections to a few worker threads, so four idle connections opened with the callback left
//! it unanswered. Here every connection is read on a thread of its own, its head is capped at
//! [`MAX_HEAD`] (then 431 and close) and must arrive, TLS handshake included, within
//! [`HEAD_TIME`]; at most [`MAX_CONNECTIONS`] are open at once: past that, the one that has
//! waited longest without sending its head is closed to make room (a browser sends its head at
//! once), so idle connections cannot crowd out the browser's either. A connection whose head
//! has arrived is never the one closed, even when its thread has not read it yet: one is
//! closed only while its thread waits for bytes with everything received so far read, and
//! nothing more has come in (see [`Deadlined::read`]).
//! What to answer is decided by the one loop that waits for the login (see [`Server::next`]).

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::peer::{self, Owner};
use super::Reply;

/// A browser's request head is a few hundred bytes to a few KiB; anything longer is not one.
pub const MAX_HEAD: usize = 8 * 1024;
/// Time from accepting a connection to its whole request head (TLS handshake included):
/// generous for a browser on the same machine, short for one that only holds a connection.
pub const HEAD_TIME: Duration = Duration::from_secs(5);
/// Time to write one response to a reader that does not read.
const WRITE_TIME: Duration = Duration::from_secs(5);
/// Connections open at once; a browser uses one or two (plus a spare it may open).
pub const MAX_CONNECTIONS: usize = 16;

pub struct Server {
    /// The bound addresses: the first; then the same port on the other loopback address.
    addrs: Vec<SocketAddr>,
    shared: Arc<Shared>,
    heads: mpsc::Receiver<Incoming>,
    /// Each accepting thread's sender, dropped when it has ended and closed its socket.
    ended_tx: mpsc::Sender<()>,
    ended: mpsc::Receiver<()>,
}

/// What the accepting threads and the connections' threads share with the server.
struct Shared {
    tls: Option<Arc<ServerConfig>>,
    connections: Arc<Mutex<Connections>>,
    heads: Mutex<mpsc::Sender<Incoming>>,
    /// Set when the server is dropped: the accepting threads end at their next connection.
    stop: AtomicBool,
    /// Connections closed unanswered because another user held their end.
    refused_users: AtomicUsize,
    /// Connections closed unanswered because nobody could be found to vouch for them.
    refused_unnamed: AtomicUsize,
    /// The first refusal of each kind (another account's, one nobody vouches for, a failed
    /// lookup) has been said, at once, in one line; later ones are only counted.
    refusal_said: [AtomicBool; 3],
    /// A connection from outside this network namespace has been served (said once, at -v1).
    remote_said: AtomicBool,
}

/// One request whose head arrived whole, waiting for the loop's answer on its own thread.
pub struct Incoming {
    pub host: Option<String>,
    pub target: String,
    reply: mpsc::Sender<Reply>,
    /// Closed by the connection's thread once the response is written (or failed).
    written: mpsc::Receiver<()>,
}

impl Incoming {
    /// Hands `reply` to the connection's thread; with `wait`, returns once it is written, so a
    /// last page reaches the browser before the process exits.
    pub fn answer(self, reply: Reply, wait: bool) {
        if self.reply.send(reply).is_ok() && wait {
            let _ = self
                .written
                .recv_timeout(WRITE_TIME + Duration::from_secs(1));
        }
    }
}

impl Server {
    pub fn bind(address: &str, tls: Option<Arc<ServerConfig>>) -> std::io::Result<Self> {
        let (heads_tx, heads) = mpsc::channel();
        let (ended_tx, ended) = mpsc::channel();
        let mut server = Server {
            addrs: Vec::new(),
            shared: Arc::new(Shared {
                tls,
                connections: Arc::default(),
                heads: Mutex::new(heads_tx),
                stop: AtomicBool::new(false),
                refused_users: AtomicUsize::new(0),
                refused_unnamed: AtomicUsize::new(0),
                refusal_said: Default::default(),
                remote_said: AtomicBool::new(false),
            }),
            heads,
            ended_tx,
            ended,
        };
        server.listen(TcpListener::bind(address)?)?;
        Ok(server)
    }

    /// Listens on `address` too; connections on either socket are answered alike.
    pub fn also_listen(&mut self, address: SocketAddr) -> std::io::Result<()> {
        self.listen(TcpListener::bind(address)?)
    }

    /// Accepts connections on `listener` on a thread of its own, from now until the server is
    /// dropped.
    fn listen(&mut self, listener: TcpListener) -> std::io::Result<()> {
        let addr = listener.local_addr()?;
        let shared = self.shared.clone();
        let ended = self.ended_tx.clone();
        std::thread::Builder::new()
            .name("loopback-accept".into())
            .spawn(move || {
                shared.accept_all(listener);
                drop(ended);
            })?;
        self.addrs.push(addr);
        Ok(())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    pub fn is_https(&self) -> bool {
        self.shared.tls.is_some()
    }

    /// Waits up to `wait` for a request head.
    pub fn next(&self, wait: Duration) -> Option<Incoming> {
        self.heads.recv_timeout(wait).ok()
    }

    /// How many connections were closed unanswered: (those whose other end belonged to another
    /// user, those nobody could be found to vouch for).
    pub fn refused(&self) -> (usize, usize) {
        (
            self.shared.refused_users.load(Ordering::SeqCst),
            self.shared.refused_unnamed.load(Ordering::SeqCst),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // A blocking accept cannot be interrupted portably: a connection of our own wakes each
        // accepting thread, which then sees `stop` and ends, closing its socket (the port is
        // free again for a later login in this process).
        for addr in &self.addrs {
            let mut addr = *addr;
            if addr.ip().is_unspecified() {
                addr.set_ip(match addr {
                    SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        }
        // Wait (a little) for the sockets to close: this process may bind the port again.
        let (placeholder, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.ended_tx, placeholder));
        let _ = self.ended.recv_timeout(Duration::from_secs(2));
    }
}

impl Shared {
    fn accept_all(self: Arc<Self>, listener: TcpListener) {
        loop {
            let accepted = listener.accept();
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            match accepted {
                Ok((stream, peer)) => self.admit(stream, peer),
                // A connection reset before it was accepted, or no file descriptor left: this
                // connection is lost, the listener is not. The pause keeps a lasting failure
                // from spinning.
                Err(e) => {
                    crate::debug!(1, "accepting a loopback connection failed: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }

    fn admit(&self, stream: TcpStream, peer: SocketAddr) {
        let local = match stream.local_addr() {
            Ok(local) => local,
            Err(e) => {
                crate::debug!(1, "dropped a loopback connection from {peer}: {e}");
                return;
            }
        };
        let owner = peer::owner(local, peer);
        match &owner {
            Owner::Trusted => {}
            Owner::Remote => {
                if !self.remote_said.swap(true, Ordering::SeqCst) {
                    crate::debug!(
                        1,
                        "serving a connection from {peer}, which came from outside this machine's network namespace: nobody can tell whose it is (see the warning about {local} above)"
                    );
                }
            }
            Owner::OtherUser(_) | Owner::Gone | Owner::Unknown(_) => {
                let (counter, kind) = match owner {
                    Owner::OtherUser(_) => (&self.refused_users, 0),
                    Owner::Gone => (&self.refused_unnamed, 1),
                    _ => (&self.refused_unnamed, 2),
                };
                counter.fetch_add(1, Ordering::SeqCst);
                // Each kind once: another account's knocking must not hide why the user's own
                // browser (behind a relay nobody can vouch for) is turned away.
                if !self.refusal_said[kind].swap(true, Ordering::SeqCst) {
                    crate::warn!("{}", refusal_line(&owner, local, peer));
                } else {
                    crate::debug!(1, "closed a connection from {peer} unanswered: {owner:?}");
                }
                return;
            }
        }
        let Some(slot) = Slot::take(&self.connections, &stream) else {
            crate::debug!(
                1,
                "closed a loopback connection from {peer}: too many are open"
            );
            return;
        };
        let tls = self.tls.clone();
        let heads = self.heads.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let spawned = std::thread::Builder::new()
            .name("loopback-connection".into())
            .spawn(move || {
                if let Err(e) = serve_connection(stream, tls, &heads, slot) {
                    crate::debug!(1, "dropped a loopback connection from {peer}: {e}");
                }
            });
        // Without a thread (resources exhausted) the connection is dropped, its slot freed.
        if let Err(e) = spawned {
            crate::debug!(1, "dropped a loopback connection from {peer}: {e}");
        }
    }
}

/// The one line said at the first refused connection, while the login still waits: from
/// where, why, and what works instead. Later refusals are counted and summed up at the end.
pub fn refusal_line(owner: &Owner, local: SocketAddr, peer: SocketAddr) -> String {
    const INSTEAD: &str = "--grant-type=authcode-keyboard or --grant-type=device-code, which need no connection to this listener";
    #[cfg(unix)]
    // SAFETY: geteuid has no preconditions.
    let us = format!("uid {}", unsafe { libc::geteuid() });
    #[cfg(not(unix))]
    let us = "this account".to_string();
    let head =
        format!("refused a connection to the login listener ({local}) from {peer}, unanswered");
    match owner {
        Owner::OtherUser(uid) => {
            let who = uid.map_or("another account".to_string(), |uid| format!("another account (uid {uid})"));
            format!("{head}: its other end belongs to {who}, and only {us} and root may take part in this login. If that was your browser, run it as {us}; or sign in with {INSTEAD}")
        }
        Owner::Unknown(why) => format!("{head}: cannot tell which account opened it ({why}), and another account could otherwise steer this login. Sign in with {INSTEAD}"),
        // WSL's mirrored networking delivers a Windows browser's connection onto the loopback
        // with no Linux socket behind it (docs/networks.md, WSL 2).
        _ if wsl() && local.ip().is_loopback() => format!("{head}: no process in this Linux system holds its other end, as when a Windows browser connects through WSL's mirrored networking, which hides whose connection it is. Set networkingMode=nat in .wslconfig (its localhost relay is trusted), or sign in with {INSTEAD} (docs/networks.md, WSL 2)"),
        _ => format!("{head}: no process on this machine holds its other end (it closed at once, or it came in from another network namespace onto an address of this one), so nobody can vouch for it. A browser elsewhere reaches the login through a forwarder to a non-loopback --listen-address, or an SSH tunnel to the loopback (docs/networks.md); or sign in with {INSTEAD}"),
    }
}

/// Whether this is Linux under WSL.
fn wsl() -> bool {
    cfg!(target_os = "linux")
        && (std::env::var_os("WSL_DISTRO_NAME").is_some()
            || std::env::var_os("WSL_INTEROP").is_some())
}

/// The open connections.
#[derive(Default)]
struct Connections {
    open: usize,
    next_id: u64,
    /// Those still sending their request head, oldest first.
    reading: VecDeque<Reading>,
    /// Those closed to make room, no longer counted in `open`; their threads are ending.
    closed: Vec<u64>,
}

/// A connection still sending its request head.
struct Reading {
    id: u64,
    /// A handle to close it with.
    stream: TcpStream,
    /// Its thread has read all that came without finding a whole head (or has not started
    /// reading): it may be closed for room unless bytes it has yet to read have arrived.
    waiting: bool,
}

/// One open connection's place among the [`Connections`], given back when its thread ends.
struct Slot {
    connections: Arc<Mutex<Connections>>,
    id: u64,
}

impl Slot {
    /// A place for `stream`, made by closing the connection that has waited longest for its
    /// head when [`MAX_CONNECTIONS`] are open; `None` when none can be closed (all have sent
    /// their heads, or bytes their threads have yet to read).
    fn take(connections: &Arc<Mutex<Connections>>, stream: &TcpStream) -> Option<Slot> {
        let mut all = connections.lock().unwrap_or_else(|e| e.into_inner());
        if all.open >= MAX_CONNECTIONS {
            let i = all
                .reading
                .iter()
                .position(|r| r.waiting && !has_unread(&r.stream))?;
            let oldest = all.reading.remove(i).expect("an index just found");
            // Its blocked wait returns at once and its thread ends.
            let _ = oldest.stream.shutdown(std::net::Shutdown::Both);
            all.closed.push(oldest.id);
            all.open -= 1;
        }
        let handle = stream.try_clone().ok()?;
        let id = all.next_id;
        all.next_id += 1;
        all.reading.push_back(Reading {
            id,
            stream: handle,
            // Its thread has read nothing yet: all that came is still in the socket.
            waiting: true,
        });
        all.open += 1;
        Some(Slot {
            connections: connections.clone(),
            id,
        })
    }

    /// Marks this connection's thread as waiting for bytes (or done waiting). `false` when it
    /// was closed to make room meanwhile.
    fn set_waiting(&self, waiting: bool) -> bool {
        let mut all = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        match all.reading.iter_mut().find(|r| r.id == self.id) {
            Some(reading) => {
                reading.waiting = waiting;
                true
            }
            None => !all.closed.contains(&self.id),
        }
    }

    /// The head is in: this connection is no longer the one to close for room.
    fn head_read(&self) {
        let mut all = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        all.reading.retain(|r| r.id != self.id);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.head_read();
        let mut all = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        match all.closed.iter().position(|id| *id == self.id) {
            Some(i) => {
                all.closed.swap_remove(i);
            }
            None => all.open -= 1,
        }
    }
}

/// Whether bytes have arrived on `stream` that nobody has read yet (or the question failed:
/// then the connection is not closed for room either).
fn has_unread(stream: &TcpStream) -> bool {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int.
        let r = unsafe { libc::ioctl(stream.as_raw_fd(), libc::FIONREAD, &mut n) };
        r != 0 || n > 0
    }
    #[cfg(windows)]
    {
        use std::os::windows::io::AsRawSocket;
        use windows_sys::Win32::Networking::WinSock::{ioctlsocket, FIONREAD, SOCKET};
        let mut n: u32 = 0;
        // SAFETY: FIONREAD writes one u32.
        let r = unsafe { ioctlsocket(stream.as_raw_socket() as SOCKET, FIONREAD, &mut n) };
        r != 0 || n > 0
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = stream;
        true
    }
}

/// A TCP stream whose every read and write ends by one deadline, however the bytes trickle.
struct Deadlined {
    stream: TcpStream,
    deadline: Instant,
    /// The connection's place; while the head is being read, each wait for bytes is announced
    /// there, so the connection can be closed for room only then.
    slot: Slot,
    head_read: bool,
}

impl Deadlined {
    fn left(&self) -> std::io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the connection's time is up",
            ))
        } else {
            Ok(left)
        }
    }

    fn head_read(&mut self) {
        self.head_read = true;
        self.slot.head_read();
    }
}

impl Read for Deadlined {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.stream.set_read_timeout(Some(self.left()?))?;
        if !self.head_read {
            // Waits for bytes without taking them, announced as waiting: bytes that arrive
            // meanwhile stay in the socket, where the one making room sees them, until this
            // thread has said it is no longer waiting.
            if !self.slot.set_waiting(true) {
                return Err(closed_for_room());
            }
            let peeked = self.stream.peek(&mut [0u8; 1]);
            if !self.slot.set_waiting(false) {
                return Err(closed_for_room());
            }
            peeked?;
        }
        self.stream.read(buf)
    }
}

fn closed_for_room() -> std::io::Error {
    std::io::Error::other("closed to make room for another connection")
}

impl Write for Deadlined {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.stream.set_write_timeout(Some(self.left()?))?;
        self.stream.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush()
    }
}

/// A connection as plain bytes, whatever carries them.
trait Connection: Read + Write {
    fn deadlined(&mut self) -> &mut Deadlined;
    /// Ends the response (TLS: close_notify).
    fn finish(&mut self) {
        let _ = self.flush();
    }
}

impl Connection for Deadlined {
    fn deadlined(&mut self) -> &mut Deadlined {
        self
    }
}

impl Connection for StreamOwned<ServerConnection, Deadlined> {
    fn deadlined(&mut self) -> &mut Deadlined {
        &mut self.sock
    }

    fn finish(&mut self) {
        self.conn.send_close_notify();
        let _ = self.flush();
    }
}

fn serve_connection(
    stream: TcpStream,
    tls: Option<Arc<ServerConfig>>,
    heads: &mpsc::Sender<Incoming>,
    slot: Slot,
) -> std::io::Result<()> {
    // Accepted sockets inherit non-blocking mode on some systems (BSDs, Windows).
    stream.set_nonblocking(false)?;
    let stream = Deadlined {
        stream,
        deadline: Instant::now() + HEAD_TIME,
        slot,
        head_read: false,
    };
    match tls {
        None => exchange(stream, heads),
        Some(config) => {
            let connection =
                ServerConnection::new(config).map_err(|e| std::io::Error::other(e.to_string()))?;
            // The handshake happens within the first read, so within HEAD_TIME too.
            exchange(StreamOwned::new(connection, stream), heads)
        }
    }
}

/// Reads one request head, has the waiting loop decide the answer, writes it, closes.
fn exchange(mut conn: impl Connection, heads: &mpsc::Sender<Incoming>) -> std::io::Result<()> {
    let head = read_head(&mut conn);
    conn.deadlined().head_read();
    let head = match head? {
        Ok(head) => head,
        Err(refusal) => {
            respond(&mut conn, refusal.reply());
            return Err(std::io::Error::other(refusal.to_string()));
        }
    };
    let (reply_tx, reply) = mpsc::channel();
    let (_written, written) = mpsc::channel();
    let incoming = Incoming {
        host: head.host,
        target: head.target,
        reply: reply_tx,
        written,
    };
    // The loop may have ended (the login is over): nothing to answer then.
    if heads.send(incoming).is_err() {
        return Ok(());
    }
    if let Ok(reply) = reply.recv() {
        respond(&mut conn, reply);
    }
    // Closed before the waiting loop hears the response is out (`_written` goes next), so the
    // process may exit right after.
    drop(conn);
    Ok(())
}

fn respond(conn: &mut impl Connection, reply: Reply) {
    conn.deadlined().deadline = Instant::now() + WRITE_TIME;
    // The browser may have gone away; the login outcome does not depend on it.
    let _ = conn.write_all(&response(reply));
    conn.finish();
}

/// The bytes of one response; every response closes its connection.
fn response(reply: Reply) -> Vec<u8> {
    let (status, headers, body) = match reply {
        Reply::Page(status, html) => (
            status,
            "Content-Type: text/html; charset=utf-8\r\n".to_string(),
            html,
        ),
        // Our own URLs (the end-session URL, --open-url-after-authentication); one that could
        // split the header is left out rather than sent.
        Reply::Redirect(location) if !location.chars().any(char::is_control) => (
            302,
            format!("Location: {location}\r\nReferrer-Policy: no-referrer\r\n"),
            String::new(),
        ),
        Reply::Redirect(_) => (500, String::new(), String::new()),
    };
    format!(
        "HTTP/1.1 {status} {}\r\n{headers}Cache-Control: no-store\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        reason(status),
        body.len()
    )
    .into_bytes()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        410 => "Gone",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}

/// The parts of a request head the listener looks at.
#[derive(Debug, PartialEq)]
pub struct Head {
    pub target: String,
    pub host: Option<String>,
}

/// A request answered without asking the waiting loop.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("request head longer than {MAX_HEAD} bytes")]
    TooLarge,
    #[error("not an HTTP/1 request")]
    Malformed,
    #[error("method {0} (only GET is served)")]
    Method(String),
}

impl Refusal {
    fn reply(&self) -> Reply {
        let (status, title) = match self {
            Refusal::TooLarge => (431, "Request too large"),
            Refusal::Malformed => (400, "Bad request"),
            Refusal::Method(_) => (405, "Method not allowed"),
        };
        Reply::Page(
            status,
            super::page(title, "This is the kubectl oidc-login listener."),
        )
    }
}

/// Reads up to the end of the request head and parses it. `Err` is an I/O failure (a timeout,
/// a closed connection, a TLS error): nothing can be answered then.
fn read_head(conn: &mut impl Read) -> std::io::Result<Result<Head, Refusal>> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    loop {
        if let Some(end) = head_end(&head) {
            return Ok(parse_head(&head[..end]));
        }
        if head.len() > MAX_HEAD {
            return Ok(Err(Refusal::TooLarge));
        }
        let n = conn.read(&mut buf[..(MAX_HEAD + 1 - head.len()).min(1024)])?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
    }
}

/// Where the head ends (its blank line), if it has.
fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|w| w == b"\r\n\r\n")
}

/// The target and Host of a GET request head (without its final blank line).
pub fn parse_head(head: &[u8]) -> Result<Head, Refusal> {
    let text = std::str::from_utf8(head).map_err(|_| Refusal::Malformed)?;
    // Lines end only in CRLF. A bare CR or LF, or another control character, would let a
    // parser that splits lines differently see another Host than this one (RFC 9112 §2.2;
    // found by fuzzing); browsers send none, so the head is refused. Tabs are whitespace.
    if text
        .split("\r\n")
        .any(|line| line.chars().any(|c| c.is_control() && c != '\t'))
    {
        return Err(Refusal::Malformed);
    }
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let (Some(method), Some(target), Some(version), None) = (
        request_line.next(),
        request_line.next(),
        request_line.next(),
        request_line.next(),
    ) else {
        return Err(Refusal::Malformed);
    };
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") || target.is_empty() {
        return Err(Refusal::Malformed);
    }
    let mut host = None;
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(Refusal::Malformed)?;
        // Obsolete line folding and spaces before the colon are refused (RFC 9112 §5).
        if name.is_empty() || name.contains([' ', '\t']) {
            return Err(Refusal::Malformed);
        }
        if name.eq_ignore_ascii_case("host") {
            // Two Hosts would let the check and the browser disagree on which one counts.
            if host.is_some() {
                return Err(Refusal::Malformed);
            }
            host = Some(value.trim().to_string());
        }
    }
    if method != "GET" {
        return Err(Refusal::Method(method.to_string()));
    }
    Ok(Head {
        target: target.to_string(),
        host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_target_and_host_of_a_get() {
        let head = b"GET /?code=c&state=s HTTP/1.1\r\nhost: localhost:8000\r\nAccept: */*";
        assert_eq!(
            parse_head(head),
            Ok(Head {
                target: "/?code=c&state=s".into(),
                host: Some("localhost:8000".into())
            })
        );
        assert_eq!(
            parse_head(b"GET /x HTTP/1.0"),
            Ok(Head {
                target: "/x".into(),
                host: None
            })
        );
        assert_eq!(
            parse_head(b"POST / HTTP/1.1\r\nHost: a"),
            Err(Refusal::Method("POST".into()))
        );
        for bad in [
            &b"\xff\xfe"[..],
            b"GET /",
            b"GET / HTTP/2",
            b"GET / HTTP/1.1 extra",
            b"GET / HTTP/1.1\r\nno colon",
            b"GET / HTTP/1.1\r\n folded: x",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b",
            b"GET / HTTP/1.1\r\nHost: a\r8888\nHost: b",
            b"GET /\x00 HTTP/1.1",
        ] {
            assert_eq!(parse_head(bad), Err(Refusal::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn reads_no_more_than_the_cap_of_an_endless_head() {
        let mut endless = std::io::repeat(b'a').take(1 << 20);
        assert!(matches!(
            read_head(&mut endless),
            Ok(Err(Refusal::TooLarge))
        ));
        assert_eq!(endless.limit(), (1 << 20) - (MAX_HEAD as u64 + 1));
        let mut short = &b"GET / HTTP/1.1\r\nHost: h\r\n\r\nrest"[..];
        assert!(matches!(read_head(&mut short), Ok(Ok(_))));
        let mut cut = &b"GET / HTTP/1.1\r\n"[..];
        assert!(read_head(&mut cut).is_err());
    }

    #[test]
    fn idle_connections_make_room_for_one_that_sends_its_head() {
        let server = Server::bind("127.0.0.1:0", None).unwrap();
        let addr = server.addr();
        let idle: Vec<TcpStream> = (0..3 * MAX_CONNECTIONS)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        let mut browser = TcpStream::connect(addr).unwrap();
        browser
            .write_all(b"GET /cb HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let incoming = loop {
            assert!(Instant::now() < deadline, "the head never reached the loop");
            if let Some(incoming) = server.next(Duration::from_millis(25)) {
                break incoming;
            }
        };
        assert_eq!(incoming.target, "/cb");
        let open = server.shared.connections.lock().unwrap().open;
        assert!(open <= MAX_CONNECTIONS, "{open} open");
        incoming.answer(Reply::Page(200, "ok".into()), true);
        let mut answer = String::new();
        browser.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nok"), "{answer}");
        drop(idle);
    }

    /// `n` accepted connections (server side, client side), each client having sent `sent`.
    fn pairs(n: usize, sent: &[u8]) -> Vec<(TcpStream, TcpStream)> {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        (0..n)
            .map(|_| {
                let mut client = TcpStream::connect(addr).unwrap();
                client.write_all(sent).unwrap();
                let (server, _) = listener.accept().unwrap();
                (server, client)
            })
            .collect()
    }

    /// Waits until the kernel shows `stream` holding unread bytes (loopback delivery is quick,
    /// but not part of write_all).
    fn arrived(stream: &TcpStream) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !has_unread(stream) {
            assert!(Instant::now() < deadline, "the bytes never arrived");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn room_is_made_only_by_closing_a_connection_whose_head_has_not_arrived() {
        let connections = Arc::new(Mutex::new(Connections::default()));
        // Full heads that no thread has read yet (their threads have not run): none of them
        // may be closed for a newcomer, which is turned away instead.
        let full = pairs(MAX_CONNECTIONS + 1, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        full.iter().for_each(|(server, _)| arrived(server));
        let slots: Vec<Slot> = full[..MAX_CONNECTIONS]
            .iter()
            .map(|(server, _)| Slot::take(&connections, server).unwrap())
            .collect();
        assert!(Slot::take(&connections, &full[MAX_CONNECTIONS].0).is_none());
        for (_, client) in &full[..MAX_CONNECTIONS] {
            client.set_nonblocking(true).unwrap();
            let closed = matches!((&*client).read(&mut [0u8; 1]), Ok(0));
            assert!(!closed, "a connection whose head had arrived was closed");
        }
        drop(slots);

        // Connections that sent nothing (or half a head, all of it read): the oldest goes.
        let idle = pairs(MAX_CONNECTIONS + 1, b"");
        let slots: Vec<Slot> = idle[..MAX_CONNECTIONS]
            .iter()
            .map(|(server, _)| Slot::take(&connections, server).unwrap())
            .collect();
        let newcomer = Slot::take(&connections, &idle[MAX_CONNECTIONS].0);
        assert!(newcomer.is_some());
        let mut oldest = &idle[0].1;
        oldest
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        assert!(
            matches!(oldest.read(&mut [0u8; 1]), Ok(0)),
            "the oldest idle one was not closed"
        );
        assert!(
            !slots[0].set_waiting(true),
            "its thread would not learn it was closed"
        );
        assert!(slots[1].set_waiting(true));
    }

    #[test]
    fn responses_close_and_never_split_a_header() {
        let text = String::from_utf8(response(Reply::Redirect("https://x/?a=1".into()))).unwrap();
        assert!(text.starts_with("HTTP/1.1 302 Found\r\nLocation: https://x/?a=1\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        let text = String::from_utf8(response(Reply::Redirect(
            "https://x/\r\nSet-Cookie: a".into(),
        )))
        .unwrap();
        assert!(text.starts_with("HTTP/1.1 500 "), "{text}");
        assert!(!text.contains("Set-Cookie"));
    }
}
