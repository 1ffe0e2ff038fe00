//! Attacks on the loopback listener by other local processes, performed for real against the
//! running plugin during a real login or logout with the test provider: another user (nobody,
//! through `setpriv`, when the tests run as root) reading the browser's command line to end a
//! login as himself or abort it, taking logout's ID token, flooding the listener with
//! connections and forged callbacks, or holding the `[::1]` side of a `localhost` redirect; and
//! processes of the user's own racing the browser for logout's one-time key, idling on or
//! trickling into the listener while the real callback is on its way.
#![cfg(target_os = "linux")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::{wait_at_most, Run, World};
use serde_json::Value;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `program args` as another user (nobody) when the tests run as root; `None` otherwise.
fn as_nobody(program: &str, args: &[&str]) -> Option<Command> {
    if !is_root() {
        return None;
    }
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", program])
        .args(args)
        .current_dir("/");
    Some(command)
}

/// The scripted browser's checkpoints (LOGIN_HOLD in tests/support/login.mjs).
struct Hold {
    dir: PathBuf,
}

impl Hold {
    fn new(world: &World) -> Self {
        let dir = world.path("hold");
        std::fs::create_dir_all(&dir).unwrap();
        Hold { dir }
    }

    fn env(&self) -> String {
        self.dir.display().to_string()
    }

    /// Waits until the browser reached checkpoint `name`; returns the URL it is about to load.
    fn reached(&self, name: &str, plugin: &mut Running) -> String {
        let file = self.dir.join(format!("{name}.reached"));
        let start = Instant::now();
        loop {
            if let Ok(url) = std::fs::read_to_string(&file) {
                return url;
            }
            if let Some(status) = plugin.child.try_wait().unwrap() {
                panic!("the plugin ended ({status}) before the browser reached {name}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the browser never reached {name}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn go(&self, name: &str) {
        std::fs::write(self.dir.join(format!("{name}.go")), "").unwrap();
    }
}

/// A plugin run in the background, for tests that act while it waits for the browser.
struct Running {
    child: Child,
    out: Option<JoinHandle<String>>,
    err: Option<JoinHandle<String>>,
}

impl Running {
    fn start(world: &World, args: &[String], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(crate::common::PLUGIN);
        command.args(args);
        world.prepare(&mut command, env);
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let out = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Running {
            child,
            out: Some(out),
            err: Some(err),
        }
    }

    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status")
    }

    /// Waits for the plugin to end; `Err` with what it said so far when it outlives `limit`
    /// (it is killed then).
    fn finish(mut self, limit: Duration) -> Result<Run, String> {
        let status = wait_at_most(&mut self.child, limit);
        let stdout = self.out.take().unwrap().join().unwrap();
        let stderr = self.err.take().unwrap().join().unwrap();
        match status {
            Some(status) => Ok(Run {
                status,
                stdout,
                stderr,
            }),
            None => Err(format!(
                "the plugin was still running after {limit:?}:\n{stderr}"
            )),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn port_of(url: &str) -> u16 {
    url::Url::parse(url).unwrap().port().unwrap()
}

/// A local program's GET of the sign-out start page on `port`, as JSON {status, location,
/// body}. `key` is `none` (no key), `wrong` (a made-up key) or `stolen`: the key read from the
/// browser's command line in /proc, which every local user can read.
const LOGOUT_THIEF: &str = r#"
const fs = require('fs');
const [port, key] = process.argv.slice(1);
let said = false;
const say = (answer) => { said = true; console.log(JSON.stringify(answer)); };
(async () => {
  let url = `http://127.0.0.1:${port}/logout`;
  if (key === 'wrong') url += '?k=AAAAAAAAAAAAAAAAAAAAAA';
  if (key === 'stolen') {
    let seen = null;
    for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      let argv;
      try { argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'); } catch { continue; }
      seen = argv.find((a) => a.includes(`:${port}/logout?k=`)) || seen;
    }
    if (!seen) throw new Error('no sign-out URL on any command line');
    const u = new URL(seen);
    url = `http://127.0.0.1:${port}${u.pathname}${u.search}`;
  }
  const res = await fetch(url, { redirect: 'manual' });
  say({ status: res.status, location: res.headers.get('location'), body: await res.text() });
})().catch((e) => say({ error: String(e) }));
// A connection closed unanswered can leave fetch neither resolved nor rejected.
process.on('exit', () => { if (!said) console.log(JSON.stringify({ error: 'closed without an answer' })); });
"#;

/// Who runs [`LOGOUT_THIEF`].
#[derive(Clone, Copy)]
enum Thief {
    /// A process the listener serves: the user's own (or root's, when the tests run as root).
    SameUser,
    /// Another user (nobody, through `setpriv`); the caller checked for root.
    OtherUser,
}

/// Runs [`LOGOUT_THIEF`]; its JSON answer, `error` set when the connection closed unanswered.
fn run_logout_thief(port: u16, key: &str, thief: Thief) -> Value {
    let port = port.to_string();
    let other_user = matches!(thief, Thief::OtherUser);
    node_json(LOGOUT_THIEF, &[port.as_str(), key], other_user, "thief")
}

/// Runs the Node.js `script` with `script_args`, as another user (nobody, through `setpriv`;
/// the caller checked for root) or as the user; the JSON line it prints (`who` names it when
/// that is not JSON).
fn node_json(script: &str, script_args: &[&str], other_user: bool, who: &str) -> Value {
    let mut args = vec!["-e", script];
    args.extend_from_slice(script_args);
    let mut command = if other_user {
        as_nobody("node", &args).expect("the caller checked for root")
    } else {
        let mut command = Command::new("node");
        command.args(&args);
        command
    };
    let out = command.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "{who} said {text:?} ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A local process the listener serves (the user's own) tries the sign-out start page: the
/// one-time key is what stands between it and the ID token.
fn steal_logout(port: u16, key: &str) -> Value {
    let answer = run_logout_thief(port, key, Thief::SameUser);
    assert!(answer["error"].is_null(), "{answer}");
    answer
}

#[track_caller]
fn assert_no_id_token(answer: &Value, id_token: &str) {
    let text = answer.to_string();
    assert!(!text.contains("id_token_hint"), "{answer}");
    assert!(!text.contains(id_token), "{answer}");
    assert!(answer["location"].is_null(), "{answer}");
    assert!(
        [404, 410].contains(&answer["status"].as_u64().unwrap()),
        "{answer}"
    );
}

/// A logged-in world with an https provider (so revocation works and logout's only possible
/// failure is the one under test), its logout arguments and the cached ID token.
fn logged_in() -> (World, Vec<String>, String) {
    let world = World::with_https_provider(300);
    let ca = format!(
        "--certificate-authority={}",
        world.provider_ca.as_ref().unwrap().display()
    );
    let mut args = world.get_token_args();
    args.push(ca);
    world.plugin(&args, &[]).assert_ok();
    let token: Value = serde_json::from_slice(&std::fs::read(world.token_file()).unwrap()).unwrap();
    let id_token = token["id_token"].as_str().unwrap().to_string();
    args[0] = "logout".into();
    (world, args, id_token)
}

const RACED: &str = "the sign-out URL was opened twice";

#[test]
fn logout_gives_the_id_token_to_no_local_process_without_the_browsers_one_time_key() {
    let (world, args, id_token) = logged_in();
    let hold = Hold::new(&world);
    let hold_env = hold.env();
    let mut plugin = Running::start(&world, &args, &[("LOGIN_HOLD", hold_env.as_str())]);
    let start = hold.reached("start", &mut plugin);
    let port = port_of(&start);

    // While logout waits for the browser: no key, or a made-up one, gets nothing.
    assert_no_id_token(&steal_logout(port, "none"), &id_token);
    assert_no_id_token(&steal_logout(port, "wrong"), &id_token);

    // The browser, first with the key, is sent on to the provider with the hint...
    hold.go("start");
    let to_provider = hold.reached("after-start", &mut plugin);
    assert!(to_provider.contains("id_token_hint="), "{to_provider}");
    // ...and the key read from its command line afterwards gets nothing.
    assert_no_id_token(&steal_logout(port, "stolen"), &id_token);
    hold.go("after-start");

    // The key was presented twice: logout cannot know who came first, so it says so, after
    // the revocation and the local clean.
    let run = plugin.finish(Duration::from_secs(60)).unwrap();
    run.assert_failed();
    let last = run.stderr.lines().last().unwrap();
    assert!(
        last.starts_with("error: ") && last.contains(RACED),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Revoked the refresh token"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Removed the cached login"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(&id_token), "{}", run.stderr);
}

#[test]
fn logout_reports_a_local_process_that_took_the_id_token_before_the_browser() {
    let (world, args, id_token) = logged_in();
    let hold = Hold::new(&world);
    let hold_env = hold.env();
    let mut plugin = Running::start(&world, &args, &[("LOGIN_HOLD", hold_env.as_str())]);
    let start = hold.reached("start", &mut plugin);
    let port = port_of(&start);

    // A process of the user's own reads the key on the browser's command line and gets there
    // first: the one redirect goes to it (nothing can tell it from the browser)...
    let stolen = steal_logout(port, "stolen");
    assert_eq!(stolen["status"], 302, "{stolen}");
    assert!(
        stolen["location"].as_str().unwrap().contains(&id_token),
        "{stolen}"
    );
    // ...so the browser gets nothing...
    hold.go("start");
    // (The first run of the scripted browser was the login.)
    let browser = &world.wait_for_logins(2)[1];
    assert_eq!(browser["start_status"], 410, "{browser}");

    // ...and logout says so, with a non-zero exit, after its other work.
    let run = plugin.finish(Duration::from_secs(60)).unwrap();
    eprintln!("$ logout\n{}", run.stderr);
    run.assert_failed();
    assert_eq!(run.stdout, "");
    let last = run.stderr.lines().last().unwrap();
    assert!(last.starts_with("error: "), "{}", run.stderr);
    for part in [
        RACED,
        "another local process may have received the ID token",
        "--keep-session",
    ] {
        assert!(last.contains(part), "{part:?} not in {last}");
    }
    assert!(
        run.stderr.contains("Revoked the refresh token"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Removed the cached login"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(&id_token), "{}", run.stderr);
    assert!(
        !run.stderr.contains("Signed out at the provider"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_localhost_redirect_is_never_sent_for_a_port_another_user_holds_on_ipv6() {
    let world = World::new(300);
    let port = crate::common::free_port();
    let script = format!(
        "require('net').createServer((c) => c.destroy()).listen({port}, '::1', () => console.log('listening'))"
    );
    let Some(mut squatter) = as_nobody("node", &["-e", &script]) else {
        crate::common::not_built_here(
            "not run here: a_localhost_redirect_is_never_sent_for_a_port_another_user_holds_on_ipv6 (needs root to act as another user with setpriv)",
        );
        return;
    };
    let mut squatter = squatter.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = [0u8; 9];
    squatter
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut line)
        .unwrap();
    assert_eq!(&line, b"listening");

    let mut args = world.get_token_args();
    args.retain(|a| !a.starts_with("--listen-address"));
    args.push(format!("--listen-address=127.0.0.1:{port}"));
    let run = world.plugin(&args, &[]);
    let _ = squatter.kill();
    run.assert_failed();
    assert!(
        world.logins().is_empty(),
        "no browser for a half-owned localhost"
    );
    let last = run.stderr.lines().last().unwrap();
    for part in [
        format!("cannot listen on 127.0.0.1:{port}"),
        format!("[::1]:{port} is held by another program"),
        "--listen-address".to_string(),
    ] {
        assert!(last.contains(&part), "{part:?} not in {last}");
    }
    let _ = squatter.wait();

    // With a next address, the login goes on there, never naming the half-owned port.
    let mut squatter = as_nobody("node", &["-e", &script])
        .unwrap()
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    squatter
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut line)
        .unwrap();
    args.push("--listen-address=127.0.0.1:0".into());
    let run = world.plugin(&args, &[]);
    let _ = squatter.kill();
    let _ = squatter.wait();
    run.assert_ok();
    let login = &world.wait_for_logins(1)[0];
    let redirect = login["auth_params"]["redirect_uri"].as_str().unwrap();
    assert!(redirect.starts_with("http://localhost:"), "{redirect}");
    assert_ne!(port_of(redirect), port, "{redirect}");
    assert_eq!(login["callback_status"], 200, "{login}");
}

#[test]
fn a_47_mib_request_head_is_cut_short_and_does_not_grow_the_plugin() {
    let world = World::new(300);
    let hold = Hold::new(&world);
    let hold_env = hold.env();
    let mut plugin = Running::start(
        &world,
        &world.get_token_args(),
        &[("LOGIN_HOLD", hold_env.as_str())],
    );
    // The browser's start URL is the listener's own start page.
    let port = port_of(&hold.reached("start", &mut plugin));
    let before = plugin.peak_rss_kib();

    const SIZE: usize = 47 << 20;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut sent = 0usize;
    let head = format!(
        "GET /?{} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Pad: ",
        "a".repeat(4096)
    );
    let mut failed = stream.write_all(head.as_bytes()).err();
    let chunk = vec![b'a'; 64 << 10];
    while failed.is_none() && sent < SIZE {
        match stream.write_all(&chunk) {
            Ok(()) => sent += chunk.len(),
            Err(e) => failed = Some(e),
        }
    }
    if failed.is_none() {
        failed = stream.write_all(b"\r\n\r\n").err();
    }
    // Whatever the listener answers, give it a moment to read what it will.
    let mut answer = Vec::new();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.read_to_end(&mut answer);
    let after = plugin.peak_rss_kib();
    drop(stream);

    eprintln!("peak RSS {before} KiB before, {after} KiB after; {sent} bytes of the head taken");
    assert!(
        failed.is_some() && sent < SIZE,
        "the listener took all {sent} bytes of the head"
    );
    let growth = after.saturating_sub(before);
    assert!(
        growth < 8 * 1024,
        "the plugin's peak RSS grew by {growth} KiB ({before} → {after}) for a 47 MiB head"
    );

    // The login still completes (the browser passes the start page unheld).
    hold.go("start");
    hold.go("after-start");
    plugin.finish(Duration::from_secs(60)).unwrap().assert_ok();
    assert_eq!(world.wait_for_logins(1)[0]["callback_status"], 200);
}

/// Sends `GET target` with `Host: host` to `port`; the status line of the answer, read with a
/// limit of `limit` (an error names the limit).
fn get_status(port: u16, host: &str, target: &str, limit: Duration) -> Result<String, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(limit)).unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if answer.is_empty() => return Err(format!("no answer within {limit:?} ({e})")),
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&answer);
    Ok(text.lines().next().unwrap_or_default().to_string())
}

/// Opens `idle` connections that send nothing together with the real callback, which this
/// test delivers (the browser stops at the redirect), and asserts it is answered.
fn callback_with_idle_connections(idle: usize) {
    let world = World::new(300);
    let redirect_file = world.path("redirect.txt");
    let redirect_env = redirect_file.display().to_string();
    let plugin = Running::start(
        &world,
        &world.get_token_args(),
        &[("LOGIN_REDIRECT_FILE", redirect_env.as_str())],
    );
    let start = Instant::now();
    let callback = loop {
        if let Ok(url) = std::fs::read_to_string(&redirect_file) {
            break url;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no redirect");
        std::thread::sleep(Duration::from_millis(20));
    };
    let url = url::Url::parse(&callback).unwrap();
    let port = url.port().unwrap();
    let target = format!("{}?{}", url.path(), url.query().unwrap());

    let idle: Vec<TcpStream> = (0..idle)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    // The old listener never answered while the idle connections stayed open; the limit
    // only leaves room for a loaded machine.
    let status = get_status(
        port,
        &format!("localhost:{port}"),
        &target,
        Duration::from_secs(20),
    );
    drop(idle);
    let status = status.unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    plugin.finish(Duration::from_secs(60)).unwrap().assert_ok();
}

#[test]
fn idle_connections_opened_with_the_callback_do_not_hold_it_up() {
    callback_with_idle_connections(4);
}

#[test]
fn more_idle_connections_than_the_listener_serves_at_once_do_not_crowd_out_the_callback() {
    callback_with_idle_connections(40);
}

#[test]
fn a_trickling_connection_does_not_hold_up_the_https_callback() {
    let port = crate::common::free_port();
    let redirect = format!("https://localhost:{port}");
    let world = World::with_provider(&[
        ("OP_APPLICATION_TYPE", "web".into()),
        ("OP_REDIRECT_URIS", format!("[\"{redirect}\"]")),
    ]);
    let (ca, cert, key) = crate::common::test_certificate(world.dir.path(), "loopback");
    let mut args = world.get_token_args();
    args.retain(|a| !a.starts_with("--listen-address"));
    args.extend([
        format!("--listen-address=127.0.0.1:{port}"),
        format!("--local-server-cert={}", cert.display()),
        format!("--local-server-key={}", key.display()),
    ]);
    let hold = Hold::new(&world);
    let hold_env = hold.env();
    let ca_env = ca.display().to_string();
    let mut plugin = Running::start(
        &world,
        &args,
        &[
            ("LOGIN_HOLD", hold_env.as_str()),
            ("NODE_EXTRA_CA_CERTS", ca_env.as_str()),
        ],
    );
    hold.reached("start", &mut plugin);

    // The start of a TLS record announcing 512 bytes, then one byte every 1.5 s.
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let trickle = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                if slow.write_all(&[0x01]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(1500));
            }
        })
    };

    // The real callback, right behind it, is answered and the login ends (in a second or two;
    // the old listener served the trickle first, for as long as it lasted: minutes).
    hold.go("start");
    hold.go("after-start");
    let run = plugin.finish(Duration::from_secs(20));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    trickle.join().unwrap();
    run.unwrap().assert_ok();
    let login = &world.wait_for_logins(1)[0];
    assert_eq!(login["callback_status"], 200, "{login}");
}

/// Another user's attack on a login in progress, in node (run as nobody through `setpriv`).
/// Arguments: the listener's port, the mode (`forge`: sign in at the provider as bob with the
/// login's values and deliver bob's code; `abort`: deliver `error=access_denied` with the
/// login's state), the scripted browser (tests/support/login.mjs, which bob's sign-in runs), a
/// directory it may write, and optionally an authorization URL handed to it (as if it had
/// leaked some other way). Without one, it looks for the login on every process's command line
/// in /proc, as any account can, and follows a start page of the listener it finds there.
/// Prints JSON: what it found and what each of its requests to the listener got.
const LOGIN_ATTACKER: &str = r#"
const fs = require('fs');
const http = require('http');
const { execFileSync } = require('child_process');
const [port, mode, loginScript, workdir, leaked] = process.argv.slice(1);
const report = { requests: [] };
// One GET to the listener; {status, location} or {error} when it closes without an answer.
function get(url) {
  const u = new URL(url);
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: u.pathname + u.search, headers: { host: `localhost:${port}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, location: res.headers.location || null }));
    });
    req.setTimeout(20000, () => req.destroy(new Error('no answer within 20 s')));
    req.on('error', (e) => resolve({ error: e.code || e.message }));
    req.end();
  });
}
(async () => {
  let auth = leaked || null;
  if (!auth) {
    for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      let argv;
      try { argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'); } catch { continue; }
      const hit = argv.find((a) => a.includes(`localhost:${port}`) || a.includes(`localhost%3A${port}`));
      if (hit) report.cmdline = hit;
    }
    if (!report.cmdline) throw new Error('no login on any command line');
    report.cmdline_has_state = new URL(report.cmdline).searchParams.has('state');
    if (report.cmdline_has_state) {
      auth = report.cmdline;
    } else {
      // A start page of the listener: what does it send the browser on to?
      const answer = await get(report.cmdline);
      report.requests.push({ what: 'start page', ...answer });
      if (answer.location) auth = answer.location;
    }
  }
  if (!auth) return;
  const state = new URL(auth).searchParams.get('state');
  const redirect = new URL(auth).searchParams.get('redirect_uri');
  report.got_state = Boolean(state);
  let callback;
  if (mode === 'abort') {
    callback = `${redirect}?error=access_denied&state=${encodeURIComponent(state)}`;
  } else {
    // The attacker signs in at the provider as himself with the victim's values.
    const file = `${workdir}/redirect`;
    execFileSync('node', [loginScript, auth], { env: { PATH: process.env.PATH, LOGIN_USER: 'bob', LOGIN_REDIRECT_FILE: file }, stdio: 'ignore' });
    callback = fs.readFileSync(file, 'utf8');
  }
  report.requests.push({ what: mode, ...(await get(callback)) });
})().catch((e) => { report.error = String(e); }).finally(() => console.log(JSON.stringify(report)));
"#;

/// A directory another user (nobody) may write: the attacker's own.
fn attacker_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("attacker")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// Runs [`LOGIN_ATTACKER`] as nobody against the listener on `port`.
fn attack_login(port: u16, mode: &str, leaked: Option<&str>) -> Value {
    let dir = attacker_dir();
    let port = port.to_string();
    let login = crate::common::support_dir().join("login.mjs");
    let workdir = dir.path().display().to_string();
    let login = login.display().to_string();
    let mut args = vec!["-e", LOGIN_ATTACKER, &port, mode, &login, &workdir];
    args.extend(leaked);
    let out = as_nobody("node", &args)
        .expect("the caller checked for root")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "attacker said {text:?} ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The attacker's requests each closed unanswered: none reached the login.
#[track_caller]
fn assert_all_refused(report: &Value) {
    let requests = report["requests"].as_array().unwrap();
    for request in requests {
        assert!(
            request["status"].is_null() && request["error"].is_string(),
            "another user's request was answered: {report}"
        );
    }
}

/// The line that ends a login or logout another user's connections tried to reach.
fn refused_line(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| {
            l.contains("connections from other users") || l.contains("connection from another user")
        })
        .collect()
}

/// The cached login's user, from the ID token's `sub`.
fn cached_sub(world: &World) -> String {
    let token: Value = serde_json::from_slice(&std::fs::read(world.token_file()).unwrap()).unwrap();
    let id_token = token["id_token"].as_str().unwrap();
    crate::common::jwt_claims(id_token)["sub"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A login whose scripted browser waits at its start page, for another user to attack
/// (`None`, said as `not run here`, when the tests cannot act as another user): its world,
/// the browser's checkpoints, the plugin and the listener's port.
fn a_login_held_at_its_start(name: &str) -> Option<(World, Hold, Running, u16)> {
    if !is_root() {
        crate::common::not_built_here(&format!(
            "not run here: {name} (needs root to act as another user with setpriv)"
        ));
        return None;
    }
    let world = World::new(300);
    let hold = Hold::new(&world);
    let hold_env = hold.env();
    let mut plugin = Running::start(
        &world,
        &world.get_token_args(),
        &[("LOGIN_HOLD", hold_env.as_str())],
    );
    let start = hold.reached("start", &mut plugin);
    let url = url::Url::parse(&start).unwrap();
    let port = match url.query_pairs().find(|(k, _)| k == "redirect_uri") {
        Some((_, redirect)) => port_of(&redirect),
        None => port_of(&start),
    };
    Some((world, hold, plugin, port))
}

/// Another user attacks a login in progress with `mode`: first with whatever the browser's
/// command line in /proc gives away, then (once the browser has passed the start page) with
/// the authorization URL itself, as if it had leaked. The victim's login must end as the
/// victim, and the terminal must say in one line that other users' connections were refused.
fn another_user_attacks_a_login(name: &str, mode: &str) {
    let Some((world, hold, mut plugin, port)) = a_login_held_at_its_start(name) else {
        return;
    };

    // 1. From /proc: the browser's command line, and the listener's start page if that is
    // what it names.
    let seen = attack_login(port, mode, None);
    eprintln!("from /proc: {seen}");
    assert!(seen["error"].is_null(), "{seen}");
    if seen["cmdline_has_state"] == true {
        // What the attack achieved: let the browser go on and see how the login ends.
        hold.go("start");
        let outcome = match plugin.finish(Duration::from_secs(60)) {
            Ok(run) => format!("exit {}:\n{}", run.status, run.stderr),
            Err(e) => e,
        };
        panic!("the login's state is on the browser's command line ({seen}); the login ended with {outcome}");
    }
    assert_all_refused(&seen);

    // 2. With the authorization URL itself, as if it had leaked: still refused.
    hold.go("start");
    let auth = hold.reached("after-start", &mut plugin);
    let leaked = attack_login(port, mode, Some(&auth));
    eprintln!("with the leaked authorization URL: {leaked}");
    assert!(leaked["error"].is_null(), "{leaked}");
    assert_eq!(leaked["got_state"], true, "{leaked}");
    assert_all_refused(&leaked);

    // The victim's own login goes on and ends as the victim.
    hold.go("after-start");
    let run = plugin.finish(Duration::from_secs(60)).unwrap();
    eprintln!("$ get-token\n{}", run.stderr);
    run.assert_ok();
    assert!(
        run.stderr.contains("Signed in as alice@example.com"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("bob"), "{}", run.stderr);
    assert_eq!(cached_sub(&world), "alice");
    let login = &world.wait_for_logins(1)[0];
    assert_eq!(login["callback_status"], 200, "{login}");
    let refused = refused_line(&run.stderr);
    assert_eq!(refused.len(), 1, "{}", run.stderr);
    let count =
        seen["requests"].as_array().unwrap().len() + leaked["requests"].as_array().unwrap().len();
    assert!(
        refused[0].contains(&format!("refused {count} connections from other users")),
        "{}",
        run.stderr
    );
}

#[test]
fn another_user_cannot_end_a_login_as_himself_with_values_from_the_browsers_command_line() {
    another_user_attacks_a_login(
        "another_user_cannot_end_a_login_as_himself_with_values_from_the_browsers_command_line",
        "forge",
    );
}

#[test]
fn another_user_cannot_abort_a_login_with_its_state() {
    another_user_attacks_a_login("another_user_cannot_abort_a_login_with_its_state", "abort");
}

#[test]
fn another_user_cannot_take_logouts_id_token_with_the_key_from_the_browsers_command_line() {
    if !is_root() {
        crate::common::not_built_here(
            "not run here: another_user_cannot_take_logouts_id_token_with_the_key_from_the_browsers_command_line (needs root to act as another user with setpriv)",
        );
        return;
    }
    let (world, args, id_token) = logged_in();
    let hold = Hold::new(&world);
    let hold_env = hold.env();
    let mut plugin = Running::start(&world, &args, &[("LOGIN_HOLD", hold_env.as_str())]);
    let start = hold.reached("start", &mut plugin);
    let port = port_of(&start);

    // Another user reads the key on the browser's command line and gets there first: its
    // connection is closed unanswered.
    let stolen = run_logout_thief(port, "stolen", Thief::OtherUser);
    eprintln!("the other user's request: {stolen}");
    assert!(!stolen.to_string().contains(&id_token), "{stolen}");
    assert!(
        stolen["status"].is_null() && stolen["error"].is_string(),
        "another user's request was answered: {stolen}"
    );

    // The browser, with the same key after it, signs out; logout succeeds and says what it
    // refused.
    hold.go("start");
    hold.go("after-start");
    let run = plugin.finish(Duration::from_secs(60)).unwrap();
    eprintln!("$ logout\n{}", run.stderr);
    run.assert_ok();
    assert!(
        run.stderr.contains("Signed out at the provider"),
        "{}",
        run.stderr
    );
    let browser = &world.wait_for_logins(2)[1];
    assert_eq!(browser["start_status"], 302, "{browser}");
    let refused = refused_line(&run.stderr);
    assert_eq!(refused.len(), 1, "{}", run.stderr);
    assert!(!run.stderr.contains(&id_token), "{}", run.stderr);
}

/// Another user's flood: connections opened in a loop, each sending the start of a request
/// head that never ends, up to 64 open at once.
const FLOODER: &str = r#"
const net = require('net');
const port = Number(process.argv[1]);
const open = new Set();
function one() {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  s.on('connect', () => s.write('GET / HTTP/1.1\r\n'));
  s.on('close', () => { open.delete(s); if (open.size < 64) setImmediate(one); });
  open.add(s);
}
for (let i = 0; i < 8; i++) one();
setInterval(() => { if (open.size < 64) one(); }, 5);
"#;

/// `count` forged callbacks, one connection each, one after the other; prints how many were
/// answered and how many closed unanswered.
const FORGER: &str = r#"
const http = require('http');
const [port, count] = process.argv.slice(1).map(Number);
const get = (i) => new Promise((resolve) => {
  const req = http.request({ host: '127.0.0.1', port, path: `/?code=forged-${i}&state=forged-${i}`, headers: { host: `localhost:${port}` }, agent: false }, (res) => {
    res.resume();
    res.on('end', () => resolve(true));
  });
  req.setTimeout(20000, () => req.destroy());
  req.on('error', () => resolve(false));
  req.end();
});
(async () => {
  let answered = 0;
  for (let i = 0; i < count; i++) if (await get(i)) answered++;
  console.log(JSON.stringify({ answered, refused: count - answered }));
})();
"#;

#[test]
fn another_users_flood_and_forged_callbacks_neither_starve_the_browser_nor_fill_the_terminal() {
    let Some((world, hold, plugin, port)) = a_login_held_at_its_start(
        "another_users_flood_and_forged_callbacks_neither_starve_the_browser_nor_fill_the_terminal",
    ) else {
        return;
    };
    let port_arg = port.to_string();

    // Three processes of another user open connections in a loop...
    // Killed when dropped: a failing assertion below must not leave them flooding for ever.
    let mut flooders: Vec<crate::common::Daemon> = (0..3)
        .map(|_| {
            crate::common::Daemon::from_child(
                as_nobody("node", &["-e", FLOODER, &port_arg])
                    .unwrap()
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    // ...it sends 1,000 forged callbacks...
    let forged = as_nobody("node", &["-e", FORGER, &port_arg, "1000"])
        .unwrap()
        .output()
        .unwrap();
    let forged: Value = serde_json::from_slice(&forged.stdout)
        .unwrap_or_else(|e| panic!("forger: {e}: {forged:?}"));
    eprintln!("another user's forged callbacks: {forged}");
    // ...and stale tabs of the user's own (or a confused local program) 100 more.
    let host = format!("localhost:{port}");
    for i in 0..100 {
        let target = format!("/?code=stale-{i}&state=stale-{i}");
        let status = get_status(port, &host, &target, Duration::from_secs(20));
        assert!(
            status
                .as_deref()
                .is_ok_and(|s| s.starts_with("HTTP/1.1 400")),
            "{status:?}"
        );
    }
    // Every request of the user's own, during the flood, is answered.
    for _ in 0..8 {
        let status = get_status(port, &host, "/favicon.ico", Duration::from_secs(20));
        assert!(
            status
                .as_deref()
                .is_ok_and(|s| s.starts_with("HTTP/1.1 404")),
            "{status:?}"
        );
    }

    // The browser's requests too, and the login ends.
    hold.go("start");
    hold.go("after-start");
    let run = plugin.finish(Duration::from_secs(60));
    for flooder in &mut flooders {
        flooder.stop();
    }
    let run = run.unwrap();
    let lines: Vec<&str> = run.stderr.lines().collect();
    eprintln!(
        "$ get-token ({} lines on the terminal)\n{}",
        lines.len(),
        lines
            .iter()
            .take(30)
            .copied()
            .collect::<Vec<_>>()
            .join("\n")
    );
    run.assert_ok();
    let login = &world.wait_for_logins(1)[0];
    assert_eq!(login["callback_status"], 200, "{login}");
    assert_eq!(forged["answered"], 0, "{forged}");
    let about_redirects: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("login redirect"))
        .collect();
    assert_eq!(about_redirects.len(), 1, "{}", run.stderr);
    assert!(
        about_redirects[0].contains("ignored 100 "),
        "{}",
        run.stderr
    );
    assert_eq!(refused_line(&run.stderr).len(), 1, "{}", run.stderr);
    assert!(lines.len() < 20, "{}", run.stderr);
}

/// Another user's attack on a device login, in node (run as nobody): finds the browser's
/// command line in /proc (argument: the URL the test saw the browser get), and approves the
/// device login at the provider as bob when that line holds the user code, or tries the
/// listener's start page when it does not. Prints JSON: what it found and what it got.
const DEVICE_ATTACKER: &str = r#"
const fs = require('fs');
const http = require('http');
const { execFileSync } = require('child_process');
const [seen, loginScript] = process.argv.slice(1);
const report = {};
(async () => {
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let argv;
    try { argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'); } catch { continue; }
    if (argv.includes(seen)) report.cmdline = seen;
  }
  if (!report.cmdline) throw new Error('the browser is on no command line');
  const url = new URL(report.cmdline);
  report.cmdline_has_user_code = url.searchParams.has('user_code');
  if (report.cmdline_has_user_code) {
    // Bob confirms the victim's code at the provider and signs in as himself.
    execFileSync('node', [loginScript, report.cmdline], { env: { PATH: process.env.PATH, LOGIN_USER: 'bob' }, stdio: 'ignore' });
    report.approved_as_bob = true;
    return;
  }
  report.start = await new Promise((resolve) => {
    const req = http.request({ host: url.hostname, port: url.port, path: url.pathname + url.search }, (res) => {
      res.resume();
      resolve({ status: res.statusCode, location: res.headers.location || null });
    });
    req.setTimeout(20000, () => req.destroy(new Error('no answer within 20 s')));
    req.on('error', (e) => resolve({ error: e.code || e.message }));
    req.end();
  });
})().catch((e) => { report.error = String(e); }).finally(() => console.log(JSON.stringify(report)));
"#;

/// A device-code login whose browser is held at its first checkpoint: the hold, the running
/// plugin, and the start page the browser is about to open.
fn device_login_held_at_start(world: &World) -> (Hold, Running, String) {
    let hold = Hold::new(world);
    let hold_env = hold.env();
    let args = world.grant_args("kubernetes-device", "device-code");
    let mut plugin = Running::start(world, &args, &[("LOGIN_HOLD", hold_env.as_str())]);
    let opened = hold.reached("start", &mut plugin);
    (hold, plugin, opened)
}

/// DEVICE_ATTACKER against the URL `opened`, run by another user (nobody; the tests run as
/// root) or by the user: what it found and got.
fn device_attack(opened: &str, as_other: bool) -> Value {
    let login = crate::common::support_dir().join("login.mjs");
    let login = login.display().to_string();
    node_json(
        DEVICE_ATTACKER,
        &[opened, login.as_str()],
        as_other,
        "attacker",
    )
}

/// The device grant's one-click verification URL carries the user code; on the browser's
/// command line another user could approve the victim's device login as himself first, and
/// the victim's kubectl would then work as that user. The browser gets a start page of a
/// loopback listener instead, which serves only the plugin's own user.
#[test]
fn another_user_cannot_approve_a_device_login_with_the_code_from_the_browsers_command_line() {
    if !is_root() {
        crate::common::not_built_here(
            "not run here: another_user_cannot_approve_a_device_login_with_the_code_from_the_browsers_command_line (needs root to act as another user with setpriv)",
        );
        return;
    }
    let world = World::new(300);
    let (hold, mut plugin, opened) = device_login_held_at_start(&world);

    let seen = device_attack(&opened, true);
    eprintln!("from /proc: {seen}");
    assert!(seen["error"].is_null(), "{seen}");

    hold.go("start");
    if seen["cmdline_has_user_code"] == false {
        // The browser passes the listener's start page on to the verification page.
        hold.reached("after-start", &mut plugin);
        hold.go("after-start");
    }
    let run = plugin.finish(Duration::from_secs(60)).unwrap();
    eprintln!("$ get-token --grant-type=device-code\n{}", run.stderr);
    assert_eq!(
        seen["cmdline_has_user_code"], false,
        "the user code is on the browser's command line ({seen}); the login ended with exit {} as {:?}",
        run.status,
        run.status.success().then(|| cached_sub(&world))
    );
    assert!(
        seen["start"]["status"].is_null() && seen["start"]["error"].is_string(),
        "another user's request was answered: {seen}"
    );
    run.assert_ok();
    assert_eq!(cached_sub(&world), "alice");
    let login = &world.wait_for_logins(1)[0];
    assert_eq!(login["device_success"], true, "{login}");
    let refused = refused_line(&run.stderr);
    assert_eq!(
        refused,
        ["warning: refused 1 connection from another user to the login listener"],
        "{}",
        run.stderr
    );
}

/// The device grant's start page is one-time, like the login's (issue 44): once the browser
/// has been sent on, its key opens nothing more, for another user (nobody) who read it from
/// the browser's command line, nor for a program of the user's own. Neither may get the
/// verification URL with the user code, and the device login still ends as the user.
#[test]
fn the_device_start_page_serves_its_key_once_and_never_to_another_user() {
    if !is_root() {
        crate::common::not_built_here(
            "not run here: the_device_start_page_serves_its_key_once_and_never_to_another_user (needs root to act as another user with setpriv)",
        );
        return;
    }
    let world = World::new(300);
    let (hold, mut plugin, opened) = device_login_held_at_start(&world);
    assert!(opened.contains("/device?k="), "{opened}");
    // Before the browser: another user's request with the key is closed unanswered.
    let before = device_attack(&opened, true);
    eprintln!("another user, before the browser: {before}");
    // The browser is sent on with the key...
    hold.go("start");
    hold.reached("after-start", &mut plugin);
    // ...after which the key opens nothing, for anyone.
    let other_after = device_attack(&opened, true);
    let own_after = device_attack(&opened, false);
    eprintln!("another user, after the browser: {other_after}");
    eprintln!("a program of the user's own, after the browser: {own_after}");
    hold.go("after-start");
    let run = plugin.finish(Duration::from_secs(60)).unwrap();
    eprintln!("$ get-token --grant-type=device-code\n{}", run.stderr);
    for (who, seen) in [
        ("another user before the browser", &before),
        ("another user after the browser", &other_after),
        ("the user's own program after the browser", &own_after),
    ] {
        assert!(seen["error"].is_null(), "{who}: {seen}");
        assert_eq!(seen["cmdline_has_user_code"], false, "{who}: {seen}");
        let location = seen["start"]["location"].as_str().unwrap_or_default();
        assert!(
            !location.contains("user_code"),
            "{who} got the verification URL with the user code: {seen}"
        );
    }
    assert!(
        before["start"]["status"].is_null(),
        "another user's request was answered: {before}"
    );
    run.assert_ok();
    assert_eq!(cached_sub(&world), "alice");
}
