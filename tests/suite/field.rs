//! How browser logins fail on real desks, and that they no longer do: browser commands with
//! arguments, $BROWSER, WSL, a browser that resolves localhost to ::1, background callers
//! after an abandoned login, Ctrl-C. The "browser" here is a fake on PATH that records its
//! argv (no real browser is needed to see how it was started); WSL is simulated by its
//! environment and fake `wslview`/`cmd.exe` (no WSL kernel runs here).
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::World;

/// Writes an executable `name` in `dir` that appends its argv, one argument a line and a
/// `--` line after, to `$ARGV_LOG`.
fn fake_program(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        "#!/bin/sh\n{ printf '%s\\n' \"$(basename \"$0\")\"; for a in \"$@\"; do printf '%s\\n' \"$a\"; done; echo --; } >> \"$ARGV_LOG\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The recorded launches: program name, then its arguments.
fn launches(log: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.split("--\n")
        .filter(|b| !b.is_empty())
        .map(|b| b.lines().map(str::to_string).collect())
        .collect()
}

/// The URL the browser was given: the listener's one-time start page (`REDIRECT/login?k=KEY`)
/// for the authorization URL the terminal shows, since other users can read the browser's
/// command line but not the terminal. `word` is the launcher's argument holding it.
fn launched_url(stderr: &str, word: &str) -> String {
    let shown = stderr
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("http") && l.contains("/protocol/openid-connect/auth"))
        .unwrap_or_else(|| panic!("no URL in {stderr}"));
    let redirect = url::Url::parse(shown)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .unwrap()
        .1
        .into_owned();
    let start = word
        .find(&format!("{redirect}/login?k="))
        .unwrap_or_else(|| panic!("{word:?} holds no start URL of {redirect}"));
    let url = &word[start..];
    assert!(!url.contains("state="), "{url}");
    url.to_string()
}

/// Runs get-token with a fake browser world: `extra` flags, `env` on top, PATH starting with
/// the fakes. The login cannot finish (nobody follows the URL), so it times out after 1 s.
fn launch(
    world: &World,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (crate::common::Run, Vec<Vec<String>>) {
    let fakes = world.path("fakes");
    let log = world.path(&format!("argv-{}.log", rand_suffix()));
    let path = format!(
        "{}:{}",
        fakes.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut args: Vec<String> = world
        .get_token_args()
        .into_iter()
        .filter(|a| !a.starts_with("--browser-command"))
        .collect();
    args.push("--authentication-timeout-sec=1".into());
    args.push("-v1".into());
    // Nothing cached, so these abandoned logins start no cool-down for the next case.
    args.push("--token-cache-storage=none".into());
    args.extend(extra.iter().map(|s| s.to_string()));
    let log_text = log.display().to_string();
    let mut all_env: Vec<(&str, &str)> = vec![("PATH", &path), ("ARGV_LOG", &log_text)];
    all_env.extend_from_slice(env);
    let exec_info = r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":true}}"#;
    all_env.push(("KUBERNETES_EXEC_INFO", exec_info));
    let run = world.plugin(&args, &all_env);
    // The fake ran detached; give it a moment to write.
    let start = Instant::now();
    while launches(&log).is_empty() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    (run, launches(&log))
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[test]
fn browser_commands_browser_variable_and_wsl_launchers() {
    let world = World::new(300);
    let fakes = world.path("fakes");
    std::fs::create_dir_all(&fakes).unwrap();
    fake_program(&fakes, "fakebrowser");

    // --browser-command with arguments, quotes included; the URL is the last argument, whole,
    // its `&`s intact.
    let (run, seen) = launch(
        &world,
        &[r#"--browser-command=fakebrowser --private-window "two words""#],
        &[],
    );
    let url = launched_url(&run.stderr, seen[0].last().unwrap());
    assert_eq!(
        seen,
        [vec![
            "fakebrowser",
            "--private-window",
            "two words",
            url.as_str()
        ]]
    );
    assert!(
        run.stderr
            .contains("opened the browser with --browser-command (fakebrowser)"),
        "{}",
        run.stderr
    );

    // $BROWSER without %s: the URL appended.
    let (run, seen) = launch(&world, &[], &[("BROWSER", "fakebrowser")]);
    let url = launched_url(&run.stderr, seen[0].last().unwrap());
    assert_eq!(seen, [vec!["fakebrowser".to_string(), url]]);
    assert!(
        run.stderr
            .contains("opened the browser with $BROWSER entry"),
        "{}",
        run.stderr
    );

    // $BROWSER as a list: a missing program is passed over; %s is replaced.
    let (run, seen) = launch(
        &world,
        &[],
        &[("BROWSER", "no-such-browser:fakebrowser --new-tab=%s")],
    );
    let url = launched_url(&run.stderr, seen[0].last().unwrap());
    assert_eq!(
        seen,
        [vec!["fakebrowser".to_string(), format!("--new-tab={url}")]]
    );

    // WSL: wslview first.
    let wsl_fakes = world.path("fakes");
    fake_program(&wsl_fakes, "wslview");
    let (run, seen) = launch(&world, &[], &[("WSL_DISTRO_NAME", "Ubuntu")]);
    let url = launched_url(&run.stderr, seen[0].last().unwrap());
    assert_eq!(seen, [vec!["wslview".to_string(), url]]);
    assert!(
        run.stderr.contains("opened the browser with wslview (WSL)"),
        "{}",
        run.stderr
    );

    // WSL without wslview: cmd.exe's start, the `&`s escaped so cmd keeps them.
    std::fs::remove_file(wsl_fakes.join("wslview")).unwrap();
    fake_program(&wsl_fakes, "cmd.exe");
    let (run, seen) = launch(&world, &[], &[("WSL_DISTRO_NAME", "Ubuntu")]);
    let url = launched_url(&run.stderr, seen[0].last().unwrap());
    assert_eq!(
        seen,
        [vec![
            "cmd.exe".to_string(),
            "/c".into(),
            "start".into(),
            "\"\"".into(),
            url.replace('&', "^&"),
        ]]
    );
}

#[test]
fn a_browser_that_resolves_localhost_to_ipv6_still_delivers_the_code() {
    let world = World::new(300);
    let run = world.plugin(&world.get_token_args(), &[("LOGIN_LOOPBACK_HOST", "::1")]);
    run.assert_ok();
    let login = &world.wait_for_logins(1)[0];
    assert_eq!(login["callback_via"], "::1", "{login}");
    assert_eq!(login["callback_status"], 200, "{login}");
    assert!(
        login["callback_page"]
            .as_str()
            .unwrap()
            .contains("Signed in as alice@example.com"),
        "{login}"
    );
}

#[test]
fn after_an_abandoned_login_background_callers_fail_at_once_until_a_terminal_login() {
    let world = World::new(300);
    let fakes = world.path("fakes");
    std::fs::create_dir_all(&fakes).unwrap();
    let fake = fake_program(&fakes, "fakebrowser");
    let argv_log = world.path("argv.log");
    let argv_log_text = argv_log.display().to_string();
    let mut args: Vec<String> = world
        .get_token_args()
        .into_iter()
        .filter(|a| !a.starts_with("--browser-command"))
        .collect();
    args.push(format!("--browser-command={}", fake.display()));
    args.push("--authentication-timeout-sec=60".into());

    // 1. A background login that nobody finishes, ended with Ctrl-C.
    let mut command = Command::new(crate::common::PLUGIN);
    command.args(&args);
    world.prepare(&mut command, &[("ARGV_LOG", &argv_log_text)]);
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while launches(&argv_log).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no browser launch"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let interrupted_at = Instant::now();
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        interrupted_at.elapsed() < Duration::from_secs(10),
        "Ctrl-C ended the login, not its 60 s timeout"
    );

    // 2. Ten background kubectl calls (no terminal): each fails at once, naming the way out,
    // and no browser opens. A wait would last the 60 s authentication timeout, or block on
    // the lock of the interrupted login.
    let kubeconfig = world.kubeconfig(
        "kubeconfig",
        "client.authentication.k8s.io/v1",
        crate::common::PLUGIN,
        &args,
    );
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let started = Instant::now();
        let run = world.kubectl(
            &kubeconfig,
            &["get", "--raw", "/api"],
            &[("ARGV_LOG", &argv_log_text)],
        );
        slowest = slowest.max(started.elapsed());
        run.assert_failed();
        assert!(
            run.stderr.contains("kubectl oidc-login login"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("was abandoned"), "{}", run.stderr);
    }
    // The bound only separates "at once" from a wait for the 60 s login or for the lock; the
    // time itself is printed (with --nocapture) rather than asserted.
    eprintln!("slowest background call after the abandoned login: {slowest:?}");
    assert!(
        slowest < Duration::from_secs(10),
        "a call waited: {slowest:?}"
    );
    assert_eq!(launches(&argv_log).len(), 1, "no new browser tab");

    // 3. A terminal login (`script` gives it one) succeeds and ends the cool-down.
    let mut login_args = vec!["login".to_string()];
    login_args.extend(world.get_token_args().into_iter().skip(1));
    let line = std::iter::once(crate::common::PLUGIN.to_string())
        .chain(login_args)
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut terminal = Command::new("script");
    terminal.args(["-qec", &line, "/dev/null"]);
    let run = world.run(terminal, &[]);
    run.assert_ok();

    // 4. Background calls work again (the terminal login's token, a cache hit).
    let run = world.kubectl(
        &kubeconfig,
        &["get", "--raw", "/api"],
        &[("ARGV_LOG", &argv_log_text)],
    );
    run.assert_ok();
    assert_eq!(launches(&argv_log).len(), 1);
}
