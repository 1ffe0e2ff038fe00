//! Who opened a connection to the loopback listener: the one check that keeps other accounts
//! on a shared machine out of a login, as ssh-agent's `SO_PEERCRED` check keeps them out of
//! its socket. A TCP peer carries no credentials, but the kernel knows which user created the
//! socket at the other end of a connection made on this machine (in this network namespace),
//! and which process holds it.
//!
//! - Linux: one `NETLINK_SOCK_DIAG` query (`inet_diag_req_v2`) for that exact socket; where
//!   netlink is unavailable, its line in `/proc/net/tcp` or `/proc/net/tcp6`.
//! - Windows: the owning process from `GetExtendedTcpTable`, and the user of its token; under
//!   Wine, Linux's `/proc/net` through drive Z:.
//! - Elsewhere (macOS, the BSDs): no such lookup exists for TCP; every connection is served.
//!
//! A connection from outside this network namespace or host (a forwarder in the host's
//! namespace reaching a container's address, as docker-proxy does; another machine) has no
//! socket here to look up. The rule for it ([`judge`]), written down in SECURITY.md ("The login
//! listener on other networks"):
//! - it arrived on a loopback address: refused, as any connection whose socket is not found.
//!   Only a process of this namespace can reach its loopback (WSL's mirrored networking is the
//!   exception, see docs/networks.md), so a missing socket means one that is gone, and nobody
//!   can vouch for it;
//! - it arrived on another address, which the user bound on purpose (`--listen-address`): its
//!   socket, when it is in our table, is judged by its owner like any other (another account
//!   connecting to this machine's own address is refused); when the peer's address is one of
//!   this machine's own, it is refused as on the loopback; otherwise it came from elsewhere
//!   and is served as remote. Nobody can tell whose it is; what protects the login then is
//!   what protects it from any other program: the one-time start key, state, PKCE and nonce,
//!   and the login warns once at its start that such an address is in use.

use std::net::{IpAddr, SocketAddr};

/// The owner of a connection's other end.
#[derive(Debug, Clone, PartialEq, Eq)]
// Where no lookup exists, every connection is Trusted.
#[cfg_attr(not(any(target_os = "linux", windows)), allow(dead_code))]
pub enum Owner {
    /// The plugin's own user, or the administrator (root, LocalSystem), who could read the
    /// plugin's memory anyway; WSL's localhost relay and some system proxies run as root.
    Trusted,
    /// Another account (its uid, where the lookup gives one).
    OtherUser(Option<u32>),
    /// A socket on this machine's own addresses that no process holds (closed right after
    /// sending, whose owner the kernel no longer reports), or none at all on a loopback
    /// address: nobody can vouch for it.
    Gone,
    /// From outside this network namespace or host, on a non-loopback address the user
    /// bound: served, with nobody to vouch for it (see the module's rule).
    Remote,
    /// The lookup itself failed; the connection is refused all the same (see [`owner`]).
    Unknown(String),
}

/// The owner of the socket at `peer` connected to our `local` address.
///
/// An unknown owner is refused by the caller: letting it in would let any account steer the
/// login whenever the lookup fails, which an attacker might arrange; the browser's own
/// connections fail then too, and the caller says why at once, so the user is not left waiting.
pub fn owner(local: SocketAddr, peer: SocketAddr) -> Owner {
    let (local, peer) = (unmapped(local), unmapped(peer));
    imp::owner(local, peer)
}

/// What the kernel says about the peer's socket.
#[derive(Debug, PartialEq)]
#[cfg_attr(not(any(target_os = "linux", windows)), allow(dead_code))]
pub struct Socket {
    /// Its owner's uid (on Windows: 0 for LocalSystem, `ours` for our own user, another
    /// value for anyone else).
    pub uid: u32,
    /// 0 when no process holds it any more (closed, or in TIME_WAIT, whose uid reads 0).
    pub inode: u32,
}

/// The verdict on the socket found (or not) at `peer` for a process whose effective uid is
/// `ours`, connected to our `local` address: the rule of the module's documentation.
#[cfg_attr(not(any(target_os = "linux", windows)), allow(dead_code))]
pub fn judge(found: Option<Socket>, ours: u32, local: SocketAddr, peer: SocketAddr) -> Owner {
    match found {
        // Gone before we looked: nobody can be asked, and no browser closes before its
        // answer.
        Some(Socket { inode: 0, .. }) => Owner::Gone,
        Some(Socket { uid, .. }) if uid == 0 || uid == ours => Owner::Trusted,
        Some(Socket { uid, .. }) => Owner::OtherUser(Some(uid)),
        None if local.ip().is_loopback() || is_own_address(peer) => Owner::Gone,
        None => Owner::Remote,
    }
}

/// Whether `peer`'s address is one of this machine's (this network namespace's): binding it
/// succeeds only then. Any doubt (an error other than "not available here") counts as ours,
/// so that a socket of ours that vanished is never taken for a remote one.
#[cfg_attr(not(any(target_os = "linux", windows)), allow(dead_code))]
fn is_own_address(peer: SocketAddr) -> bool {
    if peer.ip().is_loopback() || peer.ip().is_unspecified() {
        return true;
    }
    let mut probe = peer;
    probe.set_port(0);
    match std::net::UdpSocket::bind(probe) {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::AddrNotAvailable,
    }
}

/// An IPv4 peer of an IPv6 socket shows as `::ffff:a.b.c.d`, but its own socket is IPv4.
fn unmapped(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

/// Linux's own accounts of TCP sockets, read by the Linux build and, through drive Z:, by the
/// Windows build under Wine.
#[cfg(any(target_os = "linux", windows))]
mod procnet {
    use std::net::{IpAddr, SocketAddr};

    use super::Socket;

    /// The peer's line in /proc/net/tcp or tcp6, which every user may read.
    pub fn proc_net(local: SocketAddr, peer: SocketAddr) -> std::io::Result<Option<Socket>> {
        // Under Wine, Linux's root is drive Z:.
        let root = if cfg!(windows) { "Z:" } else { "" };
        let file = match peer {
            SocketAddr::V4(_) => format!("{root}/proc/net/tcp"),
            SocketAddr::V6(_) => format!("{root}/proc/net/tcp6"),
        };
        Ok(find_in_proc_net(
            &std::fs::read_to_string(file)?,
            local,
            peer,
        ))
    }

    /// An address as /proc/net/tcp prints it: each 32-bit word of the address as the machine
    /// stores it, in hex, then the port.
    fn proc_address(addr: SocketAddr) -> String {
        let words: Vec<String> = match addr.ip() {
            IpAddr::V4(ip) => vec![format!("{:08X}", u32::from_ne_bytes(ip.octets()))],
            IpAddr::V6(ip) => ip
                .octets()
                .chunks(4)
                .map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
                .collect(),
        };
        format!("{}:{:04X}", words.concat(), addr.port())
    }

    pub fn find_in_proc_net(table: &str, local: SocketAddr, peer: SocketAddr) -> Option<Socket> {
        let (ours, theirs) = (proc_address(peer), proc_address(local));
        table.lines().skip(1).find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 || fields[1] != ours || fields[2] != theirs {
                return None;
            }
            Some(Socket {
                uid: fields[7].parse().ok()?,
                inode: fields[9].parse().ok()?,
            })
        })
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use std::net::{IpAddr, SocketAddr};

    use super::procnet::proc_net;
    use super::{judge, Owner, Socket};

    pub fn owner(local: SocketAddr, peer: SocketAddr) -> Owner {
        let found = match netlink(local, peer) {
            Ok(found) => found,
            Err(netlink_error) => match proc_net(local, peer) {
                Ok(found) => found,
                Err(proc_error) => {
                    return Owner::Unknown(format!(
                        "sock_diag netlink: {netlink_error}; /proc/net: {proc_error}"
                    ))
                }
            },
        };
        // SAFETY: geteuid has no preconditions.
        judge(found, unsafe { libc::geteuid() }, local, peer)
    }

    const SOCK_DIAG_BY_FAMILY: u16 = 20;

    /// `struct inet_diag_sockid`: ports and addresses in network byte order.
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct SockId {
        sport: [u8; 2],
        dport: [u8; 2],
        src: [u8; 16],
        dst: [u8; 16],
        interface: u32,
        cookie: [u32; 2],
    }

    /// `struct inet_diag_req_v2`.
    #[repr(C)]
    struct Request {
        family: u8,
        protocol: u8,
        ext: u8,
        pad: u8,
        states: u32,
        id: SockId,
    }

    /// `struct inet_diag_msg`.
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Message {
        family: u8,
        state: u8,
        timer: u8,
        retrans: u8,
        id: SockId,
        expires: u32,
        rqueue: u32,
        wqueue: u32,
        uid: u32,
        inode: u32,
    }

    #[repr(C)]
    struct Packet {
        header: libc::nlmsghdr,
        request: Request,
    }

    fn address(ip: IpAddr) -> [u8; 16] {
        let mut out = [0u8; 16];
        match ip {
            IpAddr::V4(ip) => out[..4].copy_from_slice(&ip.octets()),
            IpAddr::V6(ip) => out = ip.octets(),
        }
        out
    }

    /// The id of the peer's own socket: its local end is `peer`, its remote end `local`.
    fn peer_socket_id(local: SocketAddr, peer: SocketAddr) -> SockId {
        SockId {
            sport: peer.port().to_be_bytes(),
            dport: local.port().to_be_bytes(),
            src: address(peer.ip()),
            dst: address(local.ip()),
            interface: 0,
            // INET_DIAG_NOCOOKIE: any socket with these addresses.
            cookie: [u32::MAX; 2],
        }
    }

    /// Closes the netlink socket however the query ends.
    struct Fd(libc::c_int);

    impl Drop for Fd {
        fn drop(&mut self) {
            // SAFETY: the descriptor is ours and closed once.
            unsafe { libc::close(self.0) };
        }
    }

    /// One exact lookup (no dump) of the peer's socket. `Ok(None)`: no such socket.
    pub(super) fn netlink(local: SocketAddr, peer: SocketAddr) -> std::io::Result<Option<Socket>> {
        let family = match peer.ip() {
            IpAddr::V4(_) => libc::AF_INET,
            IpAddr::V6(_) => libc::AF_INET6,
        };
        // SAFETY: plain socket(2).
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::NETLINK_SOCK_DIAG,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fd = Fd(fd);
        // The kernel answers at once; a second is a bound on a wedged one, not a wait.
        let timeout = libc::timeval {
            tv_sec: 1,
            tv_usec: 0,
        };
        // SAFETY: a valid timeval of the size given.
        unsafe {
            libc::setsockopt(
                fd.0,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        let id = peer_socket_id(local, peer);
        let packet = Packet {
            header: libc::nlmsghdr {
                nlmsg_len: std::mem::size_of::<Packet>() as u32,
                nlmsg_type: SOCK_DIAG_BY_FAMILY,
                nlmsg_flags: libc::NLM_F_REQUEST as u16,
                nlmsg_seq: 1,
                nlmsg_pid: 0,
            },
            request: Request {
                family: family as u8,
                protocol: libc::IPPROTO_TCP as u8,
                ext: 0,
                pad: 0,
                states: u32::MAX,
                id,
            },
        };
        // SAFETY: an all-zero sockaddr_nl is valid; the family and pid 0 name the kernel.
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: the packet and address are valid for the sizes given.
        let sent = unsafe {
            libc::sendto(
                fd.0,
                (&packet as *const Packet).cast(),
                std::mem::size_of::<Packet>(),
                0,
                (&kernel as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut buffer = [0u8; 4096];
        // SAFETY: the buffer is valid for its length.
        let n = unsafe { libc::recv(fd.0, buffer.as_mut_ptr().cast(), buffer.len(), 0) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        parse_answer(&buffer[..n as usize], &id)
    }

    fn read<T: Copy>(bytes: &[u8]) -> Option<T> {
        if bytes.len() < std::mem::size_of::<T>() {
            return None;
        }
        // SAFETY: long enough, read unaligned, and T is plain data valid for any bytes.
        Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
    }

    /// The kernel's answer to one lookup: a message about the socket, or an error.
    fn parse_answer(bytes: &[u8], asked: &SockId) -> std::io::Result<Option<Socket>> {
        let malformed = || std::io::Error::other("malformed answer");
        let header: libc::nlmsghdr = read(bytes).ok_or_else(malformed)?;
        let body = bytes
            .get(std::mem::size_of::<libc::nlmsghdr>()..)
            .ok_or_else(malformed)?;
        if header.nlmsg_type == libc::NLMSG_ERROR as u16 {
            let errno: i32 = read(body).ok_or_else(malformed)?;
            return match -errno {
                libc::ENOENT => Ok(None),
                errno => Err(std::io::Error::from_raw_os_error(errno)),
            };
        }
        if header.nlmsg_type != SOCK_DIAG_BY_FAMILY {
            return Err(malformed());
        }
        let message: Message = read(body).ok_or_else(malformed)?;
        // With no such connection the kernel may answer with a listening socket on the
        // peer's port; only the exact connection counts.
        let id = message.id;
        if (id.sport, id.dport, id.src, id.dst) != (asked.sport, asked.dport, asked.src, asked.dst)
        {
            return Ok(None);
        }
        Ok(Some(Socket {
            uid: message.uid,
            inode: message.inode,
        }))
    }
}

#[cfg(windows)]
mod imp {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    use windows_sys::Win32::Foundation::{CloseHandle, ERROR_ACCESS_DENIED, HANDLE, NO_ERROR};
    use windows_sys::Win32::NetworkManagement::IpHelper::{
        GetExtendedTcpTable, MIB_TCP6ROW_OWNER_PID, MIB_TCPROW_OWNER_PID,
        TCP_TABLE_OWNER_PID_CONNECTIONS,
    };
    use windows_sys::Win32::Networking::WinSock::{AF_INET, AF_INET6};
    use windows_sys::Win32::Security::{
        EqualSid, GetTokenInformation, IsWellKnownSid, TokenUser, WinLocalSystemSid, TOKEN_QUERY,
        TOKEN_USER,
    };
    use windows_sys::Win32::System::Threading::{
        GetCurrentProcess, OpenProcess, OpenProcessToken, PROCESS_QUERY_LIMITED_INFORMATION,
    };

    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleA, GetProcAddress};

    use super::procnet::proc_net;
    use super::{judge, Owner};

    pub fn owner(local: SocketAddr, peer: SocketAddr) -> Owner {
        if let Some(ours) = wine_uid() {
            return match proc_net(local, peer) {
                Ok(found) => judge(found, ours, local, peer),
                Err(e) => Owner::Unknown(format!("Wine's Z:/proc/net: {e}")),
            };
        }
        let pid = match owning_pid(local, peer) {
            Ok(Some(pid)) => pid,
            // No process of this machine holds it: judged by where it came from.
            Ok(None) => return judge(None, 1, local, peer),
            Err(e) => return Owner::Unknown(format!("GetExtendedTcpTable: {e}")),
        };
        match user_of(pid) {
            Ok(verdict) => verdict,
            // Another user's process: its token is not ours to read.
            Err(e) if e.raw_os_error() == Some(ERROR_ACCESS_DENIED as i32) => {
                Owner::OtherUser(None)
            }
            Err(e) => Owner::Unknown(format!("the token of process {pid}: {e}")),
        }
    }

    /// Under Wine, the Linux user this process runs as. Wine names Windows processes as owners
    /// only of its own processes' sockets (a native Linux browser's have pid 0), so there the
    /// Linux kernel's account, through drive Z:, is the one to ask.
    fn wine_uid() -> Option<u32> {
        // SAFETY: a module name and a function name, both NUL-terminated.
        let wine = unsafe {
            let ntdll = GetModuleHandleA(c"ntdll.dll".as_ptr().cast());
            !ntdll.is_null() && GetProcAddress(ntdll, c"wine_get_version".as_ptr().cast()).is_some()
        };
        if !wine {
            return None;
        }
        let status = std::fs::read_to_string("Z:/proc/self/status").ok()?;
        // Real, effective, saved and filesystem uid: the effective one decides, as on Linux.
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .and_then(|uid| uid.parse().ok())
    }

    fn port(raw: u32) -> u16 {
        u16::from_be(raw as u16)
    }

    /// The table of TCP connections with owning processes, for one address family.
    fn table(family: u16) -> std::io::Result<Vec<u64>> {
        let mut size = 0u32;
        let mut buffer: Vec<u64> = Vec::new();
        // The table may grow between the size query and the copy: ask again then.
        for _ in 0..4 {
            // SAFETY: the buffer is valid for `size` bytes (none on the first call).
            let status = unsafe {
                GetExtendedTcpTable(
                    buffer.as_mut_ptr().cast(),
                    &mut size,
                    0,
                    u32::from(family),
                    TCP_TABLE_OWNER_PID_CONNECTIONS,
                    0,
                )
            };
            if status == NO_ERROR {
                return Ok(buffer);
            }
            buffer = vec![0u64; (size as usize).div_ceil(8) + 1];
        }
        Err(std::io::Error::other("the table kept growing"))
    }

    fn rows<T: Copy>(table: &[u64]) -> Vec<T> {
        let bytes = table.len() * 8;
        if bytes < 8 {
            return Vec::new();
        }
        // SAFETY: the table starts with a u32 count followed by that many rows (aligned as
        // the API wrote them); the count is bounded by the buffer's size.
        unsafe {
            let base = table.as_ptr().cast::<u8>();
            let count = std::ptr::read_unaligned(base.cast::<u32>()) as usize;
            let offset = std::mem::align_of::<T>().max(4);
            let count = count.min((bytes - offset) / std::mem::size_of::<T>());
            (0..count)
                .map(|i| {
                    std::ptr::read_unaligned(base.add(offset + i * std::mem::size_of::<T>()).cast())
                })
                .collect()
        }
    }

    /// The process holding the peer's socket: its local end is `peer`, its remote `local`.
    fn owning_pid(local: SocketAddr, peer: SocketAddr) -> std::io::Result<Option<u32>> {
        match (local.ip(), peer.ip()) {
            (IpAddr::V4(l), IpAddr::V4(p)) => {
                let table = table(AF_INET)?;
                Ok(rows::<MIB_TCPROW_OWNER_PID>(&table)
                    .into_iter()
                    .find(|r| {
                        Ipv4Addr::from(r.dwLocalAddr.to_ne_bytes()) == p
                            && port(r.dwLocalPort) == peer.port()
                            && Ipv4Addr::from(r.dwRemoteAddr.to_ne_bytes()) == l
                            && port(r.dwRemotePort) == local.port()
                    })
                    .map(|r| r.dwOwningPid))
            }
            (IpAddr::V6(l), IpAddr::V6(p)) => {
                let table = table(AF_INET6)?;
                Ok(rows::<MIB_TCP6ROW_OWNER_PID>(&table)
                    .into_iter()
                    .find(|r| {
                        r.ucLocalAddr == p.octets()
                            && port(r.dwLocalPort) == peer.port()
                            && r.ucRemoteAddr == l.octets()
                            && port(r.dwRemotePort) == local.port()
                    })
                    .map(|r| r.dwOwningPid))
            }
            _ => Ok(None),
        }
    }

    struct Handle(HANDLE);

    impl Drop for Handle {
        fn drop(&mut self) {
            // SAFETY: a handle we opened, closed once.
            unsafe { CloseHandle(self.0) };
        }
    }

    /// The user SID of a process's token, as the bytes of a TOKEN_USER.
    fn token_user(process: HANDLE) -> std::io::Result<Vec<u64>> {
        let mut token: HANDLE = std::ptr::null_mut();
        // SAFETY: a process handle and an out pointer.
        if unsafe { OpenProcessToken(process, TOKEN_QUERY, &mut token) } == 0 {
            return Err(std::io::Error::last_os_error());
        }
        let token = Handle(token);
        let mut needed = 0u32;
        // SAFETY: a size query.
        unsafe { GetTokenInformation(token.0, TokenUser, std::ptr::null_mut(), 0, &mut needed) };
        let mut buffer = vec![0u64; (needed as usize).div_ceil(8).max(1)];
        // SAFETY: the buffer is valid for `needed` bytes and aligned for TOKEN_USER.
        if unsafe {
            GetTokenInformation(
                token.0,
                TokenUser,
                buffer.as_mut_ptr().cast(),
                needed,
                &mut needed,
            )
        } == 0
        {
            return Err(std::io::Error::last_os_error());
        }
        Ok(buffer)
    }

    fn user_of(pid: u32) -> std::io::Result<Owner> {
        // SAFETY: OpenProcess with a pid; a null handle is an error.
        let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
        if process.is_null() {
            return Err(std::io::Error::last_os_error());
        }
        let process = Handle(process);
        let theirs = token_user(process.0)?;
        // SAFETY: the pseudo handle of this process needs no closing.
        let ours = token_user(unsafe { GetCurrentProcess() })?;
        // SAFETY: both buffers hold a TOKEN_USER whose SID points into the same buffer.
        let (theirs_sid, ours_sid) = unsafe {
            (
                (*theirs.as_ptr().cast::<TOKEN_USER>()).User.Sid,
                (*ours.as_ptr().cast::<TOKEN_USER>()).User.Sid,
            )
        };
        // SAFETY: valid SIDs.
        let trusted = unsafe {
            EqualSid(theirs_sid, ours_sid) != 0
                || IsWellKnownSid(theirs_sid, WinLocalSystemSid) != 0
        };
        Ok(if trusted {
            Owner::Trusted
        } else {
            Owner::OtherUser(None)
        })
    }
}

#[cfg(not(any(target_os = "linux", windows)))]
mod imp {
    use std::net::SocketAddr;

    use super::Owner;

    /// No lookup exists here (see SECURITY.md, "The login listener").
    pub fn owner(_local: SocketAddr, _peer: SocketAddr) -> Owner {
        Owner::Trusted
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn the_owner_of_our_own_connection_is_us_both_ways() {
        for bind in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(listener) = TcpListener::bind(bind) else {
                continue;
            };
            let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (server, peer) = listener.accept().unwrap();
            let local = server.local_addr().unwrap();
            assert_eq!(owner(local, peer), Owner::Trusted, "{bind}");
            // SAFETY: geteuid has no preconditions.
            let uid = unsafe { libc::geteuid() };
            let by_netlink = imp::netlink(local, peer)
                .expect("sock_diag answers")
                .expect("the connection by netlink");
            assert_eq!(by_netlink.uid, uid);
            assert_ne!(by_netlink.inode, 0);
            let found = procnet::find_in_proc_net(
                &std::fs::read_to_string(if peer.is_ipv4() {
                    "/proc/net/tcp"
                } else {
                    "/proc/net/tcp6"
                })
                .unwrap(),
                local,
                peer,
            )
            .expect("the connection in /proc/net");
            assert_eq!(found, by_netlink);
            assert_ne!(found.inode, 0);
            // Closed by the peer before anyone looked: no live owner to vouch for it.
            drop(client);
            std::thread::sleep(std::time::Duration::from_millis(100));
            assert_eq!(owner(local, peer), Owner::Gone, "{bind}");
            drop(server);
        }
    }

    #[test]
    fn a_connection_that_does_not_exist_has_no_trusted_owner() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        // The listener itself is at `local`: a lookup that fell back to it must not count.
        let peer: SocketAddr = format!("127.0.0.1:{}", local.port()).parse().unwrap();
        assert_eq!(owner(peer, local), Owner::Gone);
    }

    #[test]
    fn a_missing_socket_is_remote_only_from_an_address_not_ours_to_one_not_loopback() {
        let at = |s: &str| -> SocketAddr { s.parse().unwrap() };
        let held = |uid| Some(Socket { uid, inode: 7 });
        // A socket found is judged by its owner, whatever the addresses.
        let (eth, outside) = (at("10.200.0.2:8000"), at("192.0.2.1:40000"));
        assert_eq!(judge(held(1000), 1000, eth, outside), Owner::Trusted);
        assert_eq!(judge(held(0), 1000, eth, outside), Owner::Trusted);
        assert_eq!(
            judge(held(65534), 1000, eth, outside),
            Owner::OtherUser(Some(65534))
        );
        assert_eq!(
            judge(Some(Socket { uid: 0, inode: 0 }), 1000, eth, outside),
            Owner::Gone
        );
        // None found: on the loopback, or from an address of this machine, nobody vouches.
        let lo = at("127.0.0.1:8000");
        assert_eq!(judge(None, 1000, lo, at("127.0.0.1:40000")), Owner::Gone);
        assert_eq!(judge(None, 1000, lo, outside), Owner::Gone);
        assert_eq!(judge(None, 1000, at("[::1]:8000"), outside), Owner::Gone);
        assert_eq!(judge(None, 1000, eth, at("127.0.0.1:40000")), Owner::Gone);
        // From an address no interface here has (TEST-NET-1): from outside, served.
        assert_eq!(judge(None, 1000, eth, outside), Owner::Remote);
        assert!(!is_own_address(outside));
        assert!(is_own_address(at("127.0.0.1:1")));
    }
}
