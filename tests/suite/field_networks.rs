//! Logins where engineers actually run kubectl (issue 42), each on real parts: Linux network
//! namespaces and veth pairs stand for the host, a container and a laptop, Debian's socat for
//! docker-proxy and for a dev container's port forward, Debian's OpenSSH for the SSH host,
//! headless Chromium for the browser, the real kubectl's exec entry for the caller, and real
//! ordinary accounts (made with useradd) for the plugin's user and for another user. The
//! provider is HTTPS on the host's side of the veth pair, with a CA of the test's own passed by
//! --certificate-authority: an http issuer is accepted only on a loopback address, which a
//! namespace does not share, and a company's Keycloak is HTTPS anyway.
//!
//! The root network namespace is left alone: the "host" (the machine a container runs on, the
//! SSH host) is a network namespace of each test's own too, joined to the container's (or the
//! laptop's) by a veth pair made inside them, and the test's thread enters it for the lab's
//! lifetime ([`OnTheHost`]), so every process it starts there (forwarders, Chromium, the
//! provider, the API server, sshd, kubectl) and every socket it opens live in it. No interface,
//! address, route or nftables rule of the root namespace is added, changed or removed: Chromium
//! in other tests of the same run aborts its navigations (`net::ERR_NETWORK_CHANGED`) when an
//! interface or address comes or goes there. Each lab's namespaces and accounts have names of
//! their own (process id and a counter), so labs running at once cannot meet; all of it is
//! removed when the lab is dropped, also when a test fails.
//!
//! What docs/networks.md advises is what these tests run. WSL 2 cannot run here: its rules are
//! reasoned from Microsoft's documentation and WSL's source (docs/networks.md), not tested.
//!
//! Everything here needs root (network namespaces, other accounts); without it each test says
//! "not run here" (see common::not_built_here) instead of passing.
#![cfg(target_os = "linux")]

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{
    free_port, kubectl_path_absolute, not_built_here, run_with_timeout, support_dir,
    test_certificate_for, wait_at_most, write_kubeconfig, ApiServer, Daemon, Provider, Run, PLUGIN,
};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs `program args` to completion; panics with its stderr when it fails.
#[track_caller]
fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program} does not run: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// This lab's tag, unique among the labs of every test process running now: the process id
/// and a counter of the process. Names of namespaces, interfaces and accounts carry it.
fn lab_tag() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    format!("{}x{n}", std::process::id())
}

/// Serialises useradd and userdel within this process (they lock /etc/passwd and fail rather
/// than wait when another holds it).
static ACCOUNTS: Mutex<()> = Mutex::new(());

/// Runs useradd or userdel, again a few times while another process holds /etc/passwd.
fn account_tool(program: &str, args: &[&str]) -> Result<(), String> {
    let _one_at_a_time = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    let mut tries = 0;
    loop {
        let out = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{program} does not run: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        tries += 1;
        if tries == 20 || !stderr.contains("lock") {
            return Err(format!("{program} {args:?}: {stderr}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An ordinary account of this machine made for one lab alone (the plugin's user, or another
/// user): a home, a shell, and `*` as its password, which OpenSSH counts as unlocked for key
/// logins (`!`, useradd's default, is locked). Deleted when dropped, with every process still
/// running as it (all the lab's own: nothing else runs as an account made a moment ago).
struct Account {
    name: String,
    uid: u32,
    gid: u32,
}

impl Account {
    fn new(name: String) -> Account {
        // A leftover of a killed run that had this process id (no Drop ran) goes first.
        if Command::new("id")
            .arg(&name)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            let _ = account_tool("userdel", &["-r", "-f", &name]);
        }
        account_tool("useradd", &["-m", "-p", "*", "-s", "/bin/sh", &name])
            .unwrap_or_else(|e| panic!("{e}"));
        let id = |flag: &str| run("id", &[flag, &name]).trim().parse().unwrap();
        Account {
            uid: id("-u"),
            gid: id("-g"),
            name,
        }
    }

    /// The ids of the processes running as this account (real or effective uid).
    fn processes(&self) -> Vec<i32> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status"));
                status.is_ok_and(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("Uid:"))
                        .is_some_and(|ids| {
                            ids.split_whitespace()
                                .take(2)
                                .any(|id| id == self.uid.to_string())
                        })
                })
            })
            .collect()
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        // A plugin that kubectl left behind when a test failed, an sshd session still closing.
        for _ in 0..50 {
            let left = self.processes();
            if left.is_empty() {
                break;
            }
            for pid in left {
                // SAFETY: kill has no memory preconditions; pid runs as this lab's own account.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if let Err(e) = account_tool("userdel", &["-r", &self.name]) {
            eprintln!("field_networks: the account {} stays: {e}", self.name);
        }
    }
}

/// Two network namespaces of the test's own joined by a veth pair made inside them: the host
/// (`host_name`) has `.1` of a /24, the container or laptop (`name`) `.2`; each has its own
/// loopback (up). Nothing of it is ever in the root namespace. Deleted when dropped (the veth
/// pair goes with them).
struct Netns {
    name: String,
    host_name: String,
    host_ip: String,
    ns_ip: String,
}

impl Netns {
    fn new(tag: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        // The addresses exist only inside the lab's two namespaces, so another lab's cannot
        // clash with them; a subnet per lab of this process still keeps logs apart.
        let octet = NEXT.fetch_add(1, Ordering::SeqCst) % 250 + 1;
        let net = Netns {
            name: format!("oidcf{tag}"),
            host_name: format!("oidch{tag}"),
            host_ip: format!("10.231.{octet}.1"),
            ns_ip: format!("10.231.{octet}.2"),
        };
        let (host_if, ns_if) = (format!("ofh{tag}"), format!("ofn{tag}"));
        for ns in [&net.host_name, &net.name] {
            // A leftover of a killed run that had this process id (no Drop ran) goes first.
            if Path::new("/run/netns").join(ns).exists() {
                let _ = Command::new("ip").args(["netns", "del", ns]).status();
            }
            run("ip", &["netns", "add", ns]);
        }
        // Made in the host namespace with its peer in the other one: neither end is ever in
        // the root namespace, not even for a moment.
        run(
            "ip",
            &[
                "-n",
                &net.host_name,
                "link",
                "add",
                &host_if,
                "type",
                "veth",
                "peer",
                "name",
                &ns_if,
                "netns",
                &net.name,
            ],
        );
        for (ns, dev, ip) in [
            (&net.host_name, &host_if, &net.host_ip),
            (&net.name, &ns_if, &net.ns_ip),
        ] {
            run(
                "ip",
                &["-n", ns, "addr", "add", &format!("{ip}/24"), "dev", dev],
            );
            run("ip", &["-n", ns, "link", "set", dev, "up"]);
            run("ip", &["-n", ns, "link", "set", "lo", "up"]);
        }
        net
    }

    /// `program` run inside the container's (or laptop's) namespace (as root).
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Each namespace goes when its last process has ended, and the veth pair with it.
        for ns in [&self.name, &self.host_name] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// While alive, the test's own thread is in the lab's host namespace: every process the test
/// starts from it, and every socket it opens (free_port's probe, `ss`), is on the host, so
/// nothing the test forgets to wrap can reach the root namespace. setns(2) moves this thread
/// alone; the other tests' threads stay where they are. Dropped, the thread goes back (libtest
/// may run the next test on it).
struct OnTheHost {
    back: std::fs::File,
}

impl OnTheHost {
    fn enter(net: &Netns) -> OnTheHost {
        let back = std::fs::File::open("/proc/thread-self/ns/net").unwrap();
        let host = std::fs::File::open(Path::new("/run/netns").join(&net.host_name)).unwrap();
        // SAFETY: setns takes an open namespace file descriptor and moves this thread only.
        let entered = unsafe { libc::setns(host.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(
            entered,
            0,
            "setns into {}: {}",
            net.host_name,
            std::io::Error::last_os_error()
        );
        OnTheHost { back }
    }
}

impl Drop for OnTheHost {
    fn drop(&mut self) {
        // SAFETY: as in enter, with the namespace this thread came from.
        if unsafe { libc::setns(self.back.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            let line = format!(
                "field_networks: this thread stays in the lab's namespace: {}",
                std::io::Error::last_os_error()
            );
            // A second panic while unwinding would abort the whole run.
            if std::thread::panicking() {
                eprintln!("{line}");
            } else {
                panic!("{line}");
            }
        }
    }
}

/// Waits until something listens on TCP `port` (in `net`, or on the host).
fn wait_listening(net: Option<&Netns>, port: u16) {
    let start = Instant::now();
    loop {
        let mut command = match net {
            Some(net) => net.command("ss"),
            None => Command::new("ss"),
        };
        let out = command
            .args(["-Hltn", &format!("sport = :{port}")])
            .output()
            .unwrap();
        if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "nothing listens on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One test's world across networks: the host's and the container's (or laptop's) namespaces,
/// the provider and the API server on the host, the plugin's user, another user, and a
/// directory of the plugin's user's.
///
/// Fields drop in this order: the provider and the API server end, then the accounts (with
/// every process still running as them), then the thread leaves the host, then the namespaces
/// go, then the directory.
struct Lab {
    provider: Provider,
    api: ApiServer,
    /// The plugin's user.
    user: Account,
    /// Another ordinary account of the same machine.
    other: Account,
    _on_the_host: OnTheHost,
    net: Netns,
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    /// The provider's CA, readable by every account.
    ca: PathBuf,
    /// The plugin's user's own directory: HOME, caches, kubeconfig, the browser's recorder.
    work: PathBuf,
    /// A copy of the plugin every account may run.
    plugin: PathBuf,
}

impl Lab {
    /// `None` (said as "not run here") when the tests cannot act as root.
    fn new(name: &str) -> Option<Lab> {
        if !is_root() {
            not_built_here(&format!(
                "not run here: field_networks::{name} (needs root for network namespaces and other accounts)"
            ));
            return None;
        }
        for (tool, package) in [
            ("socat", "socat"),
            ("chromium", "chromium"),
            ("sshd", "openssh-server"),
        ] {
            let found = ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
                .iter()
                .any(|d| Path::new(d).join(tool).exists());
            assert!(
                found,
                "{tool} is missing: ./test.sh installs Debian's {package}"
            );
        }
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::Builder::new()
            .prefix("field-networks")
            .tempdir_in("/tmp")
            .unwrap();
        let dir = tmp.path().to_path_buf();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let tag = lab_tag();
        let net = Netns::new(&tag);
        let on_the_host = OnTheHost::enter(&net);
        let user = Account::new(format!("ofa{tag}"));
        let other = Account::new(format!("ofb{tag}"));
        let (ca, cert, key) = test_certificate_for(&dir, "provider", &[&net.host_ip]);
        let provider = Provider::start_with(
            &dir,
            &[
                ("OP_ID_TOKEN_TTL", "300".to_string()),
                ("OP_HOST", net.host_ip.clone()),
                ("OP_TLS_CERT", cert.display().to_string()),
                ("OP_TLS_KEY", key.display().to_string()),
            ],
        );
        let api = ApiServer::start_on(&dir, &provider.issuer, Some(&ca), &net.host_ip);
        let work = dir.join("user");
        for sub in ["", "home", "cache", "kubecache"] {
            std::fs::create_dir_all(work.join(sub)).unwrap();
            std::os::unix::fs::chown(work.join(sub), Some(user.uid), Some(user.gid)).unwrap();
            std::fs::set_permissions(work.join(sub), std::fs::Permissions::from_mode(0o700))
                .unwrap();
        }
        let plugin = dir.join("kubectl-oidc_login");
        std::fs::copy(PLUGIN, &plugin).unwrap();
        std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
        // The "browser" the plugin opens only records the start URL; the test opens it in
        // Chromium where the user's browser is (the host, the laptop).
        let recorder = work.join("open-browser");
        let start_url = work.join("start-url");
        std::fs::write(
            &recorder,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$1\" > '{0}.tmp' && mv '{0}.tmp' '{0}'\n",
                start_url.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&recorder, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(&recorder, Some(user.uid), Some(user.gid)).unwrap();
        Some(Lab {
            provider,
            api,
            user,
            other,
            _on_the_host: on_the_host,
            net,
            _tmp: tmp,
            dir,
            ca,
            work,
            plugin,
        })
    }

    /// The kubeconfig of the plugin's user: the real kubectl runs the plugin with
    /// `listen` flags (none: the environment or the default decides).
    fn kubeconfig(&self, listen: &[&str]) -> PathBuf {
        let mut args = vec![
            "get-token".to_string(),
            format!("--oidc-issuer-url={}", self.provider.issuer),
            "--oidc-client-id=kubernetes".into(),
            format!("--certificate-authority={}", self.ca.display()),
            format!("--token-cache-dir={}", self.work.join("cache").display()),
            "--token-cache-storage=disk".into(),
            format!(
                "--browser-command={}",
                self.work.join("open-browser").display()
            ),
            "--authentication-timeout-sec=120".into(),
        ];
        args.extend(listen.iter().map(|s| s.to_string()));
        let path = self.work.join("kubeconfig");
        write_kubeconfig(
            &path,
            &self.api,
            "client.authentication.k8s.io/v1",
            &self.plugin.display().to_string(),
            &args,
        );
        std::os::unix::fs::chown(&path, Some(self.user.uid), Some(self.user.gid)).unwrap();
        path
    }

    /// `program` as `account` (in `net`, or on the host), with a clean environment of the
    /// plugin user's directory and `env`.
    fn as_account(
        &self,
        net: Option<&Netns>,
        account: &Account,
        program: &str,
        env: &[(&str, &str)],
    ) -> Command {
        let mut command = match net {
            Some(net) => net.command("setpriv"),
            None => Command::new("setpriv"),
        };
        command
            .arg(format!("--reuid={}", account.uid))
            .arg(format!("--regid={}", account.gid))
            .args(["--clear-groups", program])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", self.work.join("home"))
            .env("KUBECACHEDIR", self.work.join("kubecache"))
            // No keyring: the headless case, as in the rest of the suite.
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
            .current_dir("/");
        for (k, v) in env {
            command.env(k, v);
        }
        command
    }

    /// `kubectl auth whoami` as the plugin's user (in `net`, or on the host), in the
    /// background: the login waits for the browser the test opens.
    fn kubectl_whoami(&self, net: Option<&Netns>, listen: &[&str], env: &[(&str, &str)]) -> Job {
        let _ = std::fs::remove_file(self.work.join("start-url"));
        let kubeconfig = self.kubeconfig(listen);
        let mut command = self.as_account(net, &self.user, &kubectl_path_absolute(), env);
        command.args([
            &format!("--kubeconfig={}", kubeconfig.display()),
            "auth",
            "whoami",
            "-o",
            "json",
        ]);
        Job::start(command, &self.dir, "kubectl")
    }

    /// The start URL the plugin handed its browser.
    fn start_url(&self, job: &mut Job) -> String {
        let file = self.work.join("start-url");
        let start = Instant::now();
        loop {
            if let Ok(url) = std::fs::read_to_string(&file) {
                return url.trim().to_string();
            }
            if let Ok(Some(status)) = job.child.try_wait() {
                panic!(
                    "kubectl ended ({status}) before the plugin opened a browser:\n{}",
                    job.stderr_now()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the plugin opened no browser:\n{}",
                job.stderr_now()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The authorization URL the terminal shows, which a user copies into a browser where no
    /// browser opens beside the plugin (a container, an SSH session).
    fn terminal_url(&self, job: &mut Job) -> String {
        let line = job.wait_for_stderr("/protocol/openid-connect/auth?", Duration::from_secs(60));
        let url = line.trim().to_string();
        assert!(url.starts_with(&self.provider.issuer), "{url}");
        url
    }

    /// Chromium (in `net`, or on the host) opens `url` and signs in as alice; its report.
    fn browse(&self, net: Option<&Netns>, url: &str) -> Value {
        let log = self.dir.join(format!("login-{}.log", free_port()));
        let mut command = match net {
            Some(net) => net.command("node"),
            None => Command::new("node"),
        };
        command
            .arg(support_dir().join("chromium-login.mjs"))
            .arg(url)
            .current_dir(support_dir())
            .env("LOGIN_LOG", &log)
            .env("LOGIN_ALLOW_HOSTS", &self.net.host_ip)
            .env("LOGIN_IGNORE_HTTPS_ERRORS", "1");
        let run = run_with_timeout(command, Duration::from_secs(120));
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        serde_json::from_str(text.lines().next().unwrap_or("null"))
            .unwrap_or_else(|e| panic!("no report from the browser ({e}): {}", run.stderr))
    }

    /// A TCP forwarder (socat, as docker-proxy or a port forward is) run by `account` (root
    /// when `None`) in `net` (or on the host): listens on `listen`, connects to `to`.
    fn forwarder(
        &self,
        net: Option<&Netns>,
        account: Option<&Account>,
        listen: &str,
        to: &str,
    ) -> Daemon {
        let mut command = match account {
            Some(account) => self.as_account(net, account, "socat", &[]),
            None => match net {
                Some(net) => net.command("socat"),
                None => Command::new("socat"),
            },
        };
        command
            .args([listen, to])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Daemon::from_child(command.spawn().expect("socat runs"))
    }

    /// The host's end of a forward into the lab's namespace (docker-proxy's part, or an
    /// editor's): root's socat on the host's 127.0.0.1:`port`, connecting to the namespace's own
    /// address at `to_port`.
    fn host_forward(&self, port: u16, to_port: u16) -> Daemon {
        self.forwarder(
            None,
            None,
            &format!("TCP4-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"),
            &format!("TCP4:{}:{to_port}", self.net.ns_ip),
        )
    }

    /// The namespace's end of that forward (a dev container's forwarder), run by `account` (root
    /// when `None`): listens on the namespace's own address at `tunnel_port`, connects to its
    /// 127.0.0.1:`port`.
    fn namespace_forward(&self, account: Option<&Account>, tunnel_port: u16, port: u16) -> Daemon {
        self.forwarder(
            Some(&self.net),
            account,
            &format!(
                "TCP4-LISTEN:{tunnel_port},bind={},reuseaddr,fork",
                self.net.ns_ip
            ),
            &format!("TCP4:127.0.0.1:{port}"),
        )
    }

    /// Another ordinary account (in `net`, or on the host) sends a request to `addr:port` and
    /// returns what came back (nothing, when the listener closed the connection unanswered).
    fn another_account_requests(&self, net: Option<&Netns>, addr: &str, port: u16) -> String {
        let script = format!(
            "exec 3<>/dev/tcp/{addr}/{port} && printf 'GET /login?k=guess HTTP/1.1\\r\\nHost: localhost:{port}\\r\\n\\r\\n' >&3 && timeout 20 cat <&3"
        );
        let out = self
            .as_account(net, &self.other, "bash", &[])
            .args(["-c", &script])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// A process run in the background, its output in files (readable while it runs).
struct Job {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Job {
    fn start(mut command: Command, dir: &Path, name: &str) -> Job {
        let stdout = dir.join(format!("{name}-{}.out", free_port()));
        let stderr = stdout.with_extension("err");
        let child = command
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Job {
            child,
            stdout,
            stderr,
        }
    }

    fn stderr_now(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits (up to `limit`) for a line holding `text` on stderr while the process runs.
    fn wait_for_stderr(&mut self, text: &str, limit: Duration) -> String {
        let start = Instant::now();
        loop {
            let now = self.stderr_now();
            if let Some(line) = now.lines().find(|l| l.contains(text)) {
                return line.to_string();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("it ended ({status}) without saying {text:?}:\n{now}");
            }
            assert!(
                start.elapsed() < limit,
                "nothing said {text:?} within {limit:?} while the login waited:\n{now}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn finish(mut self) -> Run {
        let status = wait_at_most(&mut self.child, Duration::from_secs(120))
            .unwrap_or_else(|| panic!("still running after 120 s:\n{}", self.stderr_now()));
        Run {
            status,
            stdout: std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            stderr: self.stderr_now(),
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// kubectl got alice's token: the API server names her.
#[track_caller]
fn assert_signed_in(run: &Run, browser: &Value) {
    assert!(
        run.ok(),
        "kubectl failed ({}):\n{}\nbrowser: {browser}",
        run.status,
        run.stderr
    );
    assert_eq!(
        run.json()["status"]["userInfo"]["username"],
        "alice@example.com",
        "{}",
        run.stderr
    );
    assert!(browser["error"].is_null(), "{browser}");
    assert!(
        browser["text"]
            .as_str()
            .is_some_and(|t| t.contains("Signed in as alice@example.com")),
        "{browser}"
    );
}

/// The lines of stderr that say `text`.
fn lines_with<'a>(stderr: &'a str, text: &str) -> Vec<&'a str> {
    stderr.lines().filter(|l| l.contains(text)).collect()
}

/// No line of stderr says `text`.
#[track_caller]
fn assert_no_line_with(stderr: &str, text: &str) {
    assert!(lines_with(stderr, text).is_empty(), "{stderr}");
}

/// The line the plugin says at once when it refuses a connection, waited for (20 s at the
/// most) while the login waits; it holds each of `what`.
#[track_caller]
fn assert_said_at_once(kubectl: &mut Job, what: &[String]) {
    let line = kubectl.wait_for_stderr("refused a connection", Duration::from_secs(20));
    eprintln!("said at once: {line}");
    for what in what {
        assert!(line.contains(what), "{what:?} missing: {line}");
    }
}

/// The warning a non-loopback listen address gives, once, at the start.
#[track_caller]
fn assert_warned_once_about(stderr: &str, listen: &str) {
    let warned = lines_with(stderr, &format!("the login listener is on {listen}"));
    assert_eq!(warned.len(), 1, "{stderr}");
    for what in [
        "not a loopback address",
        "one-time start key, state, PKCE and nonce",
        "--grant-type=authcode-keyboard or device-code",
    ] {
        assert!(warned[0].contains(what), "{what:?} missing: {}", warned[0]);
    }
}

/// docker run -p 127.0.0.1:PORT:PORT: the plugin in the container's network namespace,
/// listening on 0.0.0.0:PORT (`listen` flags, or `env`); docker-proxy's part played by socat as
/// root on the host's loopback, connecting to the container's address; the browser on the host
/// opens the URL the terminal shows (`via_terminal`, as a user of `docker run -it` does) or the
/// listener's start page (as a browser the plugin opened would).
fn a_container_with_a_published_port(
    name: &str,
    listen: &[&str],
    env: &[(&str, &str)],
    port: u16,
    via_terminal: bool,
) {
    let Some(lab) = Lab::new(name) else {
        return;
    };
    let container = &lab.net;
    let mut kubectl = lab.kubectl_whoami(Some(container), listen, env);
    let _proxy = lab.host_forward(port, port);
    wait_listening(None, port);
    let start = lab.start_url(&mut kubectl);
    assert!(
        start.starts_with(&format!("http://localhost:{port}/login?k=")),
        "{start}"
    );
    let url = if via_terminal {
        lab.terminal_url(&mut kubectl)
    } else {
        start
    };
    let browser = lab.browse(None, &url);
    let run = kubectl.finish();
    eprintln!("$ kubectl auth whoami (in the container)\n{}", run.stderr);
    assert_signed_in(&run, &browser);
    assert_warned_once_about(&run.stderr, &format!("0.0.0.0:{port}"));
    assert_no_line_with(&run.stderr, "warning: refused");
}

#[test]
fn a_container_with_a_published_port_by_the_listen_address_flag() {
    let port = free_port();
    let listen = format!("--listen-address=0.0.0.0:{port}");
    a_container_with_a_published_port(
        "a_container_with_a_published_port_by_the_listen_address_flag",
        &[&listen],
        &[],
        port,
        false,
    );
}

#[test]
fn a_container_with_a_published_port_by_the_environment_variable_alone() {
    let port = free_port();
    let listen = format!("0.0.0.0:{port}");
    a_container_with_a_published_port(
        "a_container_with_a_published_port_by_the_environment_variable_alone",
        &[],
        &[("KUBECTL_OIDC_LOGIN_LISTEN_ADDRESS", &listen)],
        port,
        true,
    );
}

/// In the same container, another ordinary account connects to the listener, on the loopback
/// and on the container's own address: both connections are closed unanswered, the terminal
/// says so at once in one line (from where, why, what to do), and the user's login through the
/// published port goes on.
#[test]
fn another_account_in_the_container_is_refused_at_once_and_the_login_goes_on() {
    let Some(lab) =
        Lab::new("another_account_in_the_container_is_refused_at_once_and_the_login_goes_on")
    else {
        return;
    };
    let container = &lab.net;
    let port = free_port();
    let listen = format!("--listen-address=0.0.0.0:{port}");
    let mut kubectl = lab.kubectl_whoami(Some(container), &[&listen], &[]);
    let url = lab.start_url(&mut kubectl);

    let on_loopback = lab.another_account_requests(Some(container), "127.0.0.1", port);
    assert_eq!(
        on_loopback, "",
        "another account was answered on the loopback"
    );
    let other = &lab.other;
    assert_said_at_once(
        &mut kubectl,
        &[
            format!("(127.0.0.1:{port}) from 127.0.0.1:"),
            format!("another account (uid {})", other.uid),
            format!("only uid {} and root", lab.user.uid),
            "--grant-type=authcode-keyboard or --grant-type=device-code".to_string(),
        ],
    );
    let on_own_address = lab.another_account_requests(Some(container), &container.ns_ip, port);
    assert_eq!(
        on_own_address, "",
        "another account was answered on the container's own address"
    );

    let _proxy = lab.host_forward(port, port);
    wait_listening(None, port);
    let browser = lab.browse(None, &url);
    let run = kubectl.finish();
    eprintln!("$ kubectl auth whoami (in the container)\n{}", run.stderr);
    assert_signed_in(&run, &browser);
    assert_eq!(
        lines_with(&run.stderr, "refused a connection").len(),
        1,
        "{}",
        run.stderr
    );
    let summary = lines_with(&run.stderr, "connections from other users");
    assert_eq!(summary.len(), 1, "{}", run.stderr);
    assert!(
        summary[0].contains("refused 2 connections"),
        "{}",
        run.stderr
    );
    assert_no_line_with(&run.stderr, "no process here holds");
}

/// A dev container (VS Code, Codespaces): the editor's forwarder runs inside the container as
/// the container's user, or as root, and connects to 127.0.0.1; here socat plays it, fed by a
/// host-side socat on the host's loopback (the editor's end). The plugin keeps its loopback
/// listen address, and both logins complete.
#[test]
fn a_dev_container_forward_as_the_users_own_account_or_root() {
    let Some(lab) = Lab::new("a_dev_container_forward_as_the_users_own_account_or_root") else {
        return;
    };
    let container = &lab.net;
    let (port, tunnel_port) = (free_port(), free_port());
    let listen = format!("--listen-address=127.0.0.1:{port}");
    let _editor = lab.host_forward(port, tunnel_port);
    wait_listening(None, port);
    for (who, account) in [("the container's user", Some(&lab.user)), ("root", None)] {
        // A fresh login each time: nothing cached from the one before.
        for entry in std::fs::read_dir(lab.work.join("cache")).unwrap() {
            let path = entry.unwrap().path();
            let _ = std::fs::remove_file(&path).or_else(|_| std::fs::remove_dir_all(&path));
        }
        let mut kubectl = lab.kubectl_whoami(Some(container), &[&listen], &[]);
        let url = lab.start_url(&mut kubectl);
        let forward = lab.namespace_forward(account, tunnel_port, port);
        wait_listening(Some(container), tunnel_port);
        let browser = lab.browse(None, &url);
        let run = kubectl.finish();
        drop(forward);
        eprintln!("$ kubectl auth whoami (forwarder as {who})\n{}", run.stderr);
        assert_signed_in(&run, &browser);
        assert_no_line_with(&run.stderr, "warning: refused");
        assert_no_line_with(&run.stderr, "not a loopback address");
    }
}

/// A real OpenSSH server on the host, on a port and with a host key of its own, accepting the
/// plugin's user by key and allowing local forwards only.
struct Sshd {
    _daemon: Daemon,
    port: u16,
    client_key: PathBuf,
    known_hosts: PathBuf,
}

impl Sshd {
    fn start(lab: &Lab) -> Sshd {
        let dir = lab.dir.join("ssh");
        std::fs::create_dir_all(&dir).unwrap();
        // sshd's privilege separation directory, which Debian's package makes at boot only.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let host_key = dir.join("host_key");
        let client_key = dir.join("client_key");
        for key in [&host_key, &client_key] {
            run(
                "ssh-keygen",
                &["-q", "-t", "ed25519", "-N", "", "-f", key.to_str().unwrap()],
            );
        }
        let authorized = dir.join("authorized_keys");
        std::fs::copy(client_key.with_extension("pub"), &authorized).unwrap();
        let port = free_port();
        let host_ip = &lab.net.host_ip;
        let known_hosts = dir.join("known_hosts");
        let host_pub = std::fs::read_to_string(host_key.with_extension("pub")).unwrap();
        std::fs::write(&known_hosts, format!("[{host_ip}]:{port} {host_pub}")).unwrap();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress {host_ip}\nHostKey {}\nPidFile none\nAuthorizedKeysFile {}\n\
                 StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\nPermitRootLogin no\nAllowUsers {}\nAllowTcpForwarding local\n\
                 X11Forwarding no\nPermitTTY no\n",
                host_key.display(),
                authorized.display(),
                lab.user.name
            ),
        )
        .unwrap();
        let daemon = Daemon::from_child(
            Command::new("/usr/sbin/sshd")
                .args(["-D", "-e", "-f", config.to_str().unwrap()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap())
                .spawn()
                .expect("sshd runs"),
        );
        wait_listening(None, port);
        Sshd {
            _daemon: daemon,
            port,
            client_key,
            known_hosts,
        }
    }

    /// `ssh -N -L PORT:127.0.0.1:PORT user@HOST` on the laptop (another namespace); returns
    /// once the laptop's end of the tunnel listens.
    fn tunnel(&self, lab: &Lab, laptop: &Netns, port: u16) -> Daemon {
        let forward = format!("{port}:127.0.0.1:{port}");
        let daemon = Daemon::from_child(
            laptop
                .command("ssh")
                .args(["-N", "-L", &forward])
                .args(["-p", &self.port.to_string()])
                .args(["-i", self.client_key.to_str().unwrap()])
                .args([
                    "-o",
                    &format!("UserKnownHostsFile={}", self.known_hosts.display()),
                ])
                .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
                .args(["-o", "ExitOnForwardFailure=yes"])
                .arg(format!("{}@{}", lab.user.name, lab.net.host_ip))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(lab.dir.join("ssh.log")).unwrap())
                .spawn()
                .expect("ssh runs"),
        );
        wait_listening(Some(laptop), port);
        daemon
    }
}

/// kubelogin's advice for a remote host, `ssh -L`: the plugin runs on the SSH host as an
/// ordinary user on its default kind of address (127.0.0.1), the browser on the laptop (its
/// own network namespace) opens the start page through the tunnel. sshd's session process,
/// which makes the tunnel's connection on the host, runs as the user who logged in.
fn over_ssh(name: &str, another_account_knocks: bool) {
    let Some(lab) = Lab::new(name) else {
        return;
    };
    let sshd = Sshd::start(&lab);
    let laptop = &lab.net;
    let port = free_port();
    let _tunnel = sshd.tunnel(&lab, laptop, port);
    let listen = format!("--listen-address=127.0.0.1:{port}");
    let mut kubectl = lab.kubectl_whoami(None, &[&listen], &[]);
    let start = lab.start_url(&mut kubectl);
    // No browser opens on an SSH host: the user opens the URL the terminal shows. The other
    // run opens the listener's start page through the tunnel, as a browser the plugin could
    // reach would.
    let url = if another_account_knocks {
        start
    } else {
        lab.terminal_url(&mut kubectl)
    };
    if another_account_knocks {
        let answer = lab.another_account_requests(None, "127.0.0.1", port);
        assert_eq!(answer, "", "another account on the SSH host was answered");
        let other = &lab.other;
        assert_said_at_once(
            &mut kubectl,
            &[
                format!("(127.0.0.1:{port}) from 127.0.0.1:"),
                format!("another account (uid {})", other.uid),
                "--grant-type=authcode-keyboard or --grant-type=device-code".to_string(),
            ],
        );
    }
    let browser = lab.browse(Some(laptop), &url);
    let run = kubectl.finish();
    eprintln!("$ kubectl auth whoami (on the SSH host)\n{}", run.stderr);
    assert_signed_in(&run, &browser);
    assert_no_line_with(&run.stderr, "not a loopback address");
    if another_account_knocks {
        let summary = lines_with(&run.stderr, "connection from another user");
        assert_eq!(summary.len(), 1, "{}", run.stderr);
    } else {
        assert_no_line_with(&run.stderr, "warning: refused");
    }
}

#[test]
fn a_remote_host_over_an_ssh_tunnel() {
    over_ssh("a_remote_host_over_an_ssh_tunnel", false);
}

#[test]
fn another_account_on_the_ssh_host_is_refused_at_once_and_the_login_goes_on() {
    over_ssh(
        "another_account_on_the_ssh_host_is_refused_at_once_and_the_login_goes_on",
        true,
    );
}

/// `doctor` says the same as the login's start when a kubeconfig listens on every address (the
/// container recipe), and nothing about it for the default loopback address.
#[test]
fn doctor_warns_about_a_listen_address_that_is_not_a_loopback_one() {
    let world = crate::common::World::with_https_provider(300);
    let mut args = world.get_token_args();
    args.push(format!(
        "--certificate-authority={}",
        world.provider_ca.as_ref().unwrap().display()
    ));
    args.push("--token-cache-storage=disk".into());
    let doctor = |args: &[String]| {
        let config = world.kubeconfig(
            "kubeconfig",
            "client.authentication.k8s.io/v1",
            PLUGIN,
            args,
        );
        let config = config.display().to_string();
        let run = world.plugin(&["doctor".into()], &[("KUBECONFIG", config.as_str())]);
        eprintln!("$ kubectl oidc-login doctor\n{}{}", run.stdout, run.stderr);
        run
    };
    let run = doctor(&args);
    assert!(
        !run.stdout.contains("not a loopback address"),
        "{}",
        run.stdout
    );
    args.retain(|a| !a.starts_with("--listen-address"));
    args.push("--listen-address=0.0.0.0:8000".into());
    let run = doctor(&args);
    let warned = lines_with(&run.stdout, "not a loopback address");
    assert_eq!(warned.len(), 1, "{}", run.stdout);
    assert!(
        warned[0].contains("the login listener will be on 0.0.0.0:8000"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("--grant-type=device-code or authcode-keyboard"),
        "{}",
        run.stdout
    );
}

/// A connection that arrives on the loopback from outside the namespace has no socket here to
/// vouch for it, and is refused: the loopback keeps its whole guarantee. Here the host reaches
/// the container's 127.0.0.1 through a DNAT rule (nftables, with route_localnet); WSL's mirrored
/// networking delivers a Windows browser's connection the same way (onto 127.0.0.1, no Linux
/// socket behind it), so the plugin runs with WSL's variable set, and the line it says at once
/// names that mode and the way out. The summary does not call it another user's, and the
/// user's own login (through a forwarder of the user's in the namespace) goes on.
#[test]
fn a_connection_onto_the_loopback_from_outside_the_namespace_is_refused_and_said_why() {
    let Some(lab) = Lab::new(
        "a_connection_onto_the_loopback_from_outside_the_namespace_is_refused_and_said_why",
    ) else {
        return;
    };
    let container = &lab.net;
    let (port, tunnel_port) = (free_port(), free_port());
    let nft = |rule: &str| {
        let out = container.command("nft").arg(rule).output().unwrap();
        assert!(
            out.status.success(),
            "nft {rule}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let out = container
        .command("sysctl")
        .args(["-qw", "net.ipv4.conf.all.route_localnet=1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    nft("add table ip nat");
    nft("add chain ip nat prerouting { type nat hook prerouting priority -100 ; }");
    nft(&format!(
        "add rule ip nat prerouting tcp dport {port} dnat to 127.0.0.1:{port}"
    ));

    let listen = format!("--listen-address=127.0.0.1:{port}");
    let mut kubectl = lab.kubectl_whoami(
        Some(container),
        &[&listen],
        &[("WSL_DISTRO_NAME", "Ubuntu")],
    );
    let url = lab.start_url(&mut kubectl);
    let knock = format!(
        "exec 3<>/dev/tcp/{}/{port} && printf 'GET / HTTP/1.1\\r\\nHost: localhost:{port}\\r\\n\\r\\n' >&3 && timeout 20 cat <&3",
        container.ns_ip
    );
    let out = Command::new("bash").args(["-c", &knock]).output().unwrap();
    // Connected, then closed unanswered (a reset, since the request was never read).
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("connect:"),
        "the DNAT path is not there: {out:?}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "answered");
    assert_said_at_once(
        &mut kubectl,
        &[
            format!("(127.0.0.1:{port}) from {}:", container.host_ip),
            "no process in this Linux system holds its other end".to_string(),
            "WSL's mirrored networking".to_string(),
            "networkingMode=nat".to_string(),
            "--grant-type=authcode-keyboard or --grant-type=device-code".to_string(),
        ],
    );

    let _editor = lab.host_forward(port, tunnel_port);
    let _forward = lab.namespace_forward(Some(&lab.user), tunnel_port, port);
    wait_listening(None, port);
    wait_listening(Some(container), tunnel_port);
    let browser = lab.browse(None, &url);
    let run = kubectl.finish();
    eprintln!("$ kubectl auth whoami (in the namespace)\n{}", run.stderr);
    assert_signed_in(&run, &browser);
    assert!(
        lines_with(&run.stderr, "from other users").is_empty()
            && lines_with(&run.stderr, "from another user").is_empty(),
        "{}",
        run.stderr
    );
    let summary = lines_with(&run.stderr, "whose other end no process here holds");
    assert_eq!(summary.len(), 1, "{}", run.stderr);
    assert!(
        summary[0].contains("refused 1 connection"),
        "{}",
        run.stderr
    );
}
