//! A shared bastion host (issue 32, items 9 to 14): another local account with nothing but an
//! ordinary login attacks the token cache through a shared `KUBECACHEDIR` (symlinks, a FIFO,
//! a directory swapped between check and write, hostile meta files), and a process of the
//! same user tries to read the memory of a plugin waiting for a login, or to make it dump
//! core. Each attack is performed for real: the attacker is the unprivileged user `nobody`
//! (uid 65534), run through `setpriv` while the tests run as root; where they do not, the
//! tests that need a second user say `not run here`.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kubectl_oidc_login::tokens::CacheKey;

use crate::common::{wait_at_most, Run, World, PLUGIN};

pub(crate) const NOBODY: u32 = 65534;

pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Says why a test that needs a second real user did not run (never a silent pass).
fn needs_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    crate::common::not_built_here(&format!(
        "not built here: shared_cache::{test} (not run here: needs root to act as the victim and as another user)"
    ));
    false
}

pub(crate) fn setpriv_nobody() -> Command {
    let mut command = Command::new("setpriv");
    command.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
    command
}

/// Runs `args` as `nobody`: another local user.
pub(crate) fn as_nobody(args: &[&str]) {
    let status = setpriv_nobody().args(args).status().expect("setpriv runs");
    assert!(status.success(), "{args:?} as nobody");
}

pub(crate) fn s(path: &Path) -> String {
    path.display().to_string()
}

pub(crate) fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A team's shared KUBECACHEDIR that every user may write (no sticky bit: the kernel's
/// protected_symlinks and protected_fifos rules would otherwise hide the attacks).
fn shared_dir(world: &World) -> PathBuf {
    let shared = world.path("shared");
    std::fs::create_dir_all(&shared).unwrap();
    chmod(&world.path(""), 0o755);
    chmod(&shared, 0o777);
    shared
}

/// A shared KUBECACHEDIR whose parent is the other user's (nobody's, mode 755): he may rename
/// and replace what is in it, nobody else may.
pub(crate) fn nobodys_shared_dir(world: &World) -> PathBuf {
    chmod(&world.path(""), 0o755);
    let shared = world.path("shared");
    std::fs::create_dir(&shared).unwrap();
    std::os::unix::fs::chown(&shared, Some(NOBODY), Some(NOBODY)).unwrap();
    chmod(&shared, 0o755);
    shared
}

/// The other user (nobody) swaps `shared`'s `oidc-login` with his `shared/decoy` in a loop,
/// with renameat2(RENAME_EXCHANGE), so the name never goes missing, until the file `stop`
/// exists. `make_decoy` (Python, given `shared`, `decoy` and `arg`) makes the decoy first.
pub(crate) fn swap_in_a_loop(shared: &Path, make_decoy: &str, arg: &str, stop: &Path) -> Child {
    let attacker = format!(
        r#"
import ctypes, os, sys
shared, arg, stop = sys.argv[1:4]
libc = ctypes.CDLL(None, use_errno=True)
live = os.path.join(shared, "oidc-login").encode()
decoy = os.path.join(shared, "decoy")
{make_decoy}
n = 0
while n % 1000 or not os.path.exists(stop):
    n += 1
    if libc.renameat2(-100, live, -100, decoy.encode(), 2) != 0:
        sys.exit(f"renameat2: {{os.strerror(ctypes.get_errno())}}")
"#
    );
    setpriv_nobody()
        .args([
            "/usr/bin/python3",
            "-c",
            &attacker,
            &s(shared),
            arg,
            &s(stop),
        ])
        .spawn()
        .expect("the attacker starts")
}

pub(crate) fn key(world: &World, client: &str) -> CacheKey {
    CacheKey::new(&world.provider.issuer, client, None, &[], &[], None, None)
}

/// get-token arguments of the world without --token-cache-dir (KUBECACHEDIR decides), for
/// `client` at the world's provider.
pub(crate) fn shared_args(world: &World, client: &str) -> Vec<String> {
    let mut args: Vec<String> = world
        .get_token_args()
        .into_iter()
        .filter(|a| !a.starts_with("--token-cache-dir") && !a.starts_with("--oidc-client-id"))
        .collect();
    args.push(format!("--oidc-client-id={client}"));
    args
}

/// How kubectl runs the plugin for a background command: no terminal.
const EXEC_INFO: &str = r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}"#;

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The victim's own login, cached in their private cache directory; returns its ID token.
fn victim_login(world: &World) -> String {
    let run = world.plugin(&world.get_token_args(), &[]);
    run.assert_ok();
    run.json()["status"]["token"].as_str().unwrap().to_string()
}

/// Runs the plugin with `env`, killed after `limit`: `Err` with what it said when it hung.
pub(crate) fn bounded(
    world: &World,
    args: &[String],
    env: &[(&str, &str)],
    limit: Duration,
) -> Result<Run, String> {
    let mut command = Command::new(PLUGIN);
    command.args(args);
    world.prepare(&mut command, env);
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let status = wait_at_most(&mut child, limit);
    let stdout = std::fs::read_to_string(&out).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    match status {
        Some(status) => Ok(Run {
            status,
            stdout,
            stderr,
        }),
        None => Err(format!(
            "the plugin hung for more than {limit:?}; stderr so far: {stderr}"
        )),
    }
}

/// Item 9: in a shared KUBECACHEDIR another user's `oidc-login` holds the dev cluster's token
/// file as a symlink to the victim's own prod token (the file names follow from a shared
/// kubeconfig). kubectl for dev must not get the prod token. Twice: the attacker's own
/// `oidc-login`, and one the victim made but left writable to the team.
#[test]
fn another_users_symlink_never_hands_the_prod_token_to_dev() {
    if !needs_root("another_users_symlink_never_hands_the_prod_token_to_dev") {
        return;
    }
    let world = World::new(300);
    let prod_token = victim_login(&world);
    let prod_file = world
        .cache_dir()
        .join(format!("{}.token.json", key(&world, "kubernetes").id()));
    assert!(prod_file.exists());
    let dev_name = format!("{}.token.json", key(&world, "dev-cluster").id());
    let args = shared_args(&world, "dev-cluster");
    for owner in ["the attacker", "the victim (mode 777)"] {
        let shared = shared_dir(&world);
        let planted = shared.join("oidc-login");
        let _ = std::fs::remove_dir_all(&planted);
        if owner == "the attacker" {
            as_nobody(&["mkdir", "-m", "0777", &s(&planted)]);
        } else {
            std::fs::create_dir(&planted).unwrap();
            chmod(&planted, 0o777);
        }
        as_nobody(&["ln", "-s", &s(&prod_file), &s(&planted.join(&dev_name))]);
        let run = bounded(
            &world,
            &args,
            &[
                ("KUBECACHEDIR", &s(&shared)),
                ("KUBERNETES_EXEC_INFO", EXEC_INFO),
                // The cache alone answers: no login for the dev cluster's unknown client.
                ("KUBECTL_OIDC_LOGIN_NO_LOGIN", "1"),
            ],
            Duration::from_secs(60),
        )
        .unwrap();
        assert!(
            !run.stdout.contains(&prod_token),
            "kubectl for dev got the prod token through a symlink in a directory of {owner}: {}\nstderr: {}",
            run.stdout,
            run.stderr
        );
        assert!(!run.stderr.contains(&prod_token), "{}", run.stderr);
    }
}

/// Item 10: a FIFO as the token file in a shared KUBECACHEDIR. The hot path must not wait for
/// the attacker to open its other end: a bounded run, and a clear line or a login.
#[test]
fn a_fifo_as_the_token_file_never_hangs_the_hot_path() {
    if !needs_root("a_fifo_as_the_token_file_never_hangs_the_hot_path") {
        return;
    }
    let world = World::new(300);
    let token_name = format!("{}.token.json", key(&world, "kubernetes").id());
    let args = shared_args(&world, "kubernetes");
    for owner in ["the attacker", "the victim (mode 777)"] {
        let shared = shared_dir(&world);
        let planted = shared.join("oidc-login");
        let _ = std::fs::remove_dir_all(&planted);
        if owner == "the attacker" {
            as_nobody(&["mkdir", "-m", "0777", &s(&planted)]);
        } else {
            std::fs::create_dir(&planted).unwrap();
            chmod(&planted, 0o777);
        }
        let fifo = planted.join(&token_name);
        as_nobody(&["mkfifo", "-m", "0666", &s(&fifo)]);
        let run = bounded(
            &world,
            &args,
            &[("KUBECACHEDIR", &s(&shared))],
            Duration::from_secs(60),
        )
        .unwrap_or_else(|e| panic!("FIFO in a directory of {owner}: {e}"));
        assert!(
            run.ok() || run.stderr.contains(&s(&planted)),
            "no clear error for the FIFO in a directory of {owner}: {}",
            run.stderr
        );
    }
}

/// Item 11: the attacker owns the shared KUBECACHEDIR and, in a loop, swaps the victim's
/// `oidc-login` for a symlink to the victim's project and back, while the victim refreshes.
/// Nothing may land in the project: every write goes to the directory the plugin checked.
#[test]
fn a_cache_directory_swapped_for_a_symlink_mid_run_never_steers_a_write() {
    if !needs_root("a_cache_directory_swapped_for_a_symlink_mid_run_never_steers_a_write") {
        return;
    }
    let world = World::new(300);
    let shared = nobodys_shared_dir(&world);
    let project = world.path("home/project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("main.go"), "package main\n").unwrap();
    let args = shared_args(&world, "kubernetes");
    let env = [("KUBECACHEDIR", s(&shared))];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    world.plugin(&args, &env).assert_ok();
    assert!(shared.join("oidc-login").is_dir());

    let stop = world.path("stop-attacker");
    let mut attacker = swap_in_a_loop(&shared, "os.symlink(arg, decoy)", &s(&project), &stop);
    let mut refreshes = 0;
    let mut landed = Vec::new();
    let mut forced = args.clone();
    forced.push("--force-refresh".into());
    for _ in 0..40 {
        let _ = world.plugin(&forced, &env);
        refreshes += 1;
        landed = file_names(&project);
        if landed.len() > 1 {
            break;
        }
    }
    std::fs::write(&stop, "").unwrap();
    let _ = attacker.wait();
    assert_eq!(
        landed,
        ["main.go"],
        "the victim's cache files landed in the project after {refreshes} refreshes"
    );
}

/// Item 12: another user makes the shared KUBECACHEDIR's `oidc-login` a symlink to the
/// victim's private cache; the victim's `clean` must not delete the victim's login there.
#[test]
fn clean_never_follows_another_users_symlink_into_the_private_cache() {
    if !needs_root("clean_never_follows_another_users_symlink_into_the_private_cache") {
        return;
    }
    let world = World::new(300);
    victim_login(&world);
    let private = world.cache_dir();
    let before = file_names(&private);
    assert!(
        before
            .iter()
            .filter(|n| n.starts_with(key(&world, "kubernetes").id()))
            .count()
            == 4,
        "{before:?}"
    );
    let shared = shared_dir(&world);
    as_nobody(&["ln", "-s", &s(&private), &s(&shared.join("oidc-login"))]);
    let mut command = Command::new(PLUGIN);
    command.arg("clean");
    let run = world.run(command, &[("KUBECACHEDIR", &s(&shared))]);
    assert_eq!(
        file_names(&private),
        before,
        "clean deleted the victim's login through another user's symlink: {}",
        run.stderr
    );
}

/// Item 13: `accounts` and `whoami --all` read meta files; one with ESC, BEL and CR in its
/// issuer, client and account (planted by another user in a directory left writable, and one
/// of the victim's own) must reach the terminal escaped.
#[test]
fn accounts_show_a_hostile_meta_file_escaped() {
    let world = World::new(300);
    let dir = world.cache_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let meta = r#"{"issuer":"https://evil.example\u001b]0;pwned\u0007\r","client_id":"c\u001b[2J","account":"a\rre-enter your password:"}"#;
    std::fs::write(dir.join(format!("{}.meta.json", "a".repeat(64))), meta).unwrap();
    if is_root() {
        chmod(&world.path(""), 0o755);
        chmod(&dir, 0o777);
        let planted = dir.join(format!("{}.meta.json", "b".repeat(64)));
        as_nobody(&[
            "sh",
            "-c",
            &format!("printf '%s' '{meta}' > '{}'", s(&planted)),
        ]);
    } else {
        crate::common::not_built_here(
            "not built here: shared_cache::accounts_show_a_hostile_meta_file_escaped, the other user's meta file (not run here: needs root to act as another user); the victim's own is checked",
        );
    }
    for command in [vec!["accounts"], vec!["whoami", "--all"]] {
        let mut args: Vec<String> = command.iter().map(|s| s.to_string()).collect();
        args.push(format!("--token-cache-dir={}", s(&dir)));
        let run = world.plugin(&args, &[]);
        run.assert_ok();
        for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            assert!(
                !text.contains(['\u{1b}', '\u{7}', '\r']),
                "{command:?} sent raw control characters to the terminal on {name}: {text:?}"
            );
        }
        assert!(
            run.stdout.contains("evil.example\\u{1b}]0;pwned\\u{7}\\r"),
            "{command:?} did not show the victim's own meta file escaped: {}",
            run.stdout
        );
    }
}

/// The plugin waiting for a login (a browser that never comes back), run as `uid`, with a
/// core size limit of `core` (as a shell's `ulimit -c` would leave it) and `cwd`.
fn waiting_plugin(world: &World, cache: &Path, cwd: &Path, core: u64, uid: Option<u32>) -> Child {
    use std::os::unix::process::CommandExt;
    let idle = world.path("idle-browser");
    std::fs::write(&idle, "#!/bin/sh\nexit 0\n").unwrap();
    chmod(&idle, 0o755);
    // A copy any user may run: the build directory need not be theirs to enter.
    let plugin = world.path("kubectl-oidc_login");
    if !plugin.exists() {
        std::fs::copy(PLUGIN, &plugin).unwrap();
        chmod(&plugin, 0o755);
    }
    let mut command = Command::new(&plugin);
    command
        .args(shared_args(world, "kubernetes"))
        .arg(format!("--token-cache-dir={}", s(cache)))
        .arg(format!("--browser-command={}", s(&idle)))
        .arg("--authentication-timeout-sec=60")
        .current_dir(cwd)
        .env("HOME", s(cwd))
        .env_remove("KUBERNETES_EXEC_INFO")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(uid) = uid {
        command.uid(uid).gid(uid);
    }
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: core,
                rlim_max: core,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &limit);
            Ok(())
        });
    }
    let child = command.spawn().expect("the plugin starts");
    // Whatever the plugin does about its memory, it does first thing; a second is plenty.
    std::thread::sleep(Duration::from_secs(1));
    child
}

/// Item 14: a process of the same (non-root) user reads the memory of the plugin while it waits
/// for a login (it holds the PKCE verifier, and after the login the tokens), and a crash
/// (SIGSEGV) with `ulimit -c unlimited` writes a core file. Neither may happen.
#[test]
fn the_waiting_plugin_is_neither_readable_nor_dumpable() {
    let world = World::new(300);
    chmod(&world.path(""), 0o755);
    // As root the reader must be another, ordinary account: root may read any memory.
    let uid = is_root().then_some(NOBODY);
    let home = world.path("victim-home");
    std::fs::create_dir_all(&home).unwrap();
    let cache = home.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    if let Some(uid) = uid {
        std::os::unix::fs::chown(&home, Some(uid), Some(uid)).unwrap();
        std::os::unix::fs::chown(&cache, Some(uid), Some(uid)).unwrap();
    }
    chmod(&cache, 0o700);

    let mut plugin = waiting_plugin(&world, &cache, &home, 0, uid);
    let pid = plugin.id();
    assert!(
        plugin.try_wait().unwrap().is_none(),
        "the plugin is not waiting"
    );
    let reader = r#"
import sys
pid = sys.argv[1]
try:
    maps = open(f"/proc/{pid}/maps").read().splitlines()
    mem = open(f"/proc/{pid}/mem", "rb")
    got = 0
    for line in maps:
        addrs, perms = line.split()[:2]
        if perms.startswith("r"):
            start, end = (int(a, 16) for a in addrs.split("-"))
            try:
                mem.seek(start)
                got += len(mem.read(min(end - start, 65536)))
            except OSError:
                pass
    print(f"read {got} bytes of the plugin's memory")
except OSError as e:
    print(f"refused: {e}")
"#;
    let mut read = match uid {
        Some(_) => setpriv_nobody(),
        None => Command::new("/usr/bin/python3"),
    };
    if uid.is_some() {
        read.arg("/usr/bin/python3");
    }
    let out = read
        .args(["-c", reader, &pid.to_string()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let _ = plugin.kill();
    let _ = plugin.wait();
    let mut failures = Vec::new();
    if !said.starts_with("refused") {
        failures.push(format!(
            "a process of the same user read the waiting plugin's memory: {said}{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }

    // A crash of the waiting plugin, with core dumps allowed by the shell.
    let mut plugin = waiting_plugin(&world, &cache, &home, libc::RLIM_INFINITY, uid);
    assert!(
        plugin.try_wait().unwrap().is_none(),
        "the plugin is not waiting"
    );
    // SAFETY: kill with a pid this test started and has not reaped.
    unsafe { libc::kill(plugin.id() as i32, libc::SIGSEGV) };
    let status = plugin.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    let cores: Vec<String> = file_names(&home)
        .into_iter()
        .filter(|n| n.starts_with("core"))
        .collect();
    if status.core_dumped() || !cores.is_empty() {
        failures.push(format!(
            "the crashed plugin dumped core ({status}; files {cores:?})"
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
