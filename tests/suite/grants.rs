//! Every grant kubelogin users rely on, end to end against the real test provider and, where a
//! cluster call matters, the real kubectl: device code, authcode-keyboard, password and client
//! credentials. The provider offers each grant to its own client (kubernetes-device,
//! kubernetes-password, robot), as a Keycloak realm would per client.
//!
//! oidc-provider leaves the password grant out on purpose; tests/support/provider.mjs adds it
//! as a grant handler that issues the provider's own tokens (the same models a code exchange
//! uses), so the plugin's side of ROPC runs against real token issuance and verification.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use crate::common::{support_dir, Run, World, PLUGIN};

const EXEC_INFO_NO_TERMINAL: &str = r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}"#;
const EXEC_INFO_TERMINAL: &str = r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":true}}"#;

/// The plugin running, with its stderr readable line by line while it runs.
struct Live {
    child: Child,
    lines: Receiver<String>,
    stderr_seen: Vec<String>,
    stdout: std::thread::JoinHandle<String>,
}

impl Live {
    fn start(world: &World, args: &[String], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(PLUGIN);
        command.args(args);
        world.prepare(&mut command, env);
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                if tx.send(line.unwrap_or_default()).is_err() {
                    break;
                }
            }
        });
        let mut out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            out.read_to_string(&mut s).unwrap();
            s
        });
        Live {
            child,
            lines,
            stderr_seen: Vec::new(),
            stdout,
        }
    }

    /// Waits (up to 30 s) for a stderr line containing `needle`.
    fn line_with(&mut self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    self.stderr_seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!("no {needle:?} on stderr: {:?}", self.stderr_seen),
            }
        }
    }

    /// Types `text` on the plugin's stdin.
    fn write_stdin(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    fn finish(mut self) -> Run {
        drop(self.child.stdin.take());
        let status = self.child.wait().unwrap();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.stderr_seen.push(line);
        }
        Run {
            status,
            stdout: self.stdout.join().unwrap(),
            stderr: self.stderr_seen.join("\n"),
        }
    }
}

/// Runs the scripted browser on `url` (as a person would on another machine).
fn browse(world: &World, url: &str, env: &[(&str, &str)]) {
    let mut command = Command::new(support_dir().join("login.mjs"));
    command.arg(url);
    world.prepare(&mut command, env);
    let run = crate::common::run_with_timeout(command, Duration::from_secs(60));
    assert!(run.ok(), "browser failed: {}", run.stderr);
}

#[test]
fn device_code_signs_in_through_the_browser_and_kubectl_sees_the_user() {
    let world = World::new(300);
    let args = world.grant_args("kubernetes-device", "device-code");
    let kubeconfig = world.kubeconfig(
        "kubeconfig",
        "client.authentication.k8s.io/v1",
        PLUGIN,
        &args,
    );
    let run = world.kubectl(&kubeconfig, &["auth", "whoami", "-o", "json"], &[]);
    run.assert_ok();
    assert_eq!(
        run.json()["status"]["userInfo"]["username"],
        "alice@example.com"
    );
    // The browser opened verification_uri_complete: code confirmed, login, consent.
    let logins = world.wait_for_logins(1);
    assert_eq!(logins[0]["device_success"], true, "{logins:?}");
    assert_eq!(logins[0]["steps"][0], "device");
    assert_eq!(world.provider.count("/protocol/openid-connect/auth"), 0);
    assert_eq!(
        world.provider.count("/protocol/openid-connect/auth/device"),
        1
    );
    // Polled at the provider's interval until the sign-in finished; no more once it did.
    let polls = world.provider.count("/protocol/openid-connect/token");
    assert!((1..=30).contains(&polls), "{polls} polls");
    // The next call is a cache hit: no request at all.
    world.provider.reset_counts();
    world
        .kubectl(&kubeconfig, &["get", "--raw", "/api"], &[])
        .assert_ok();
    assert_eq!(world.provider.realm_requests(), 0);
}

#[test]
fn device_code_over_ssh_prints_the_code_and_needs_no_terminal() {
    let world = World::new(300);
    let mut args = world.grant_args("kubernetes-device", "device-code");
    args.retain(|a| !a.starts_with("--browser-command"));
    args.push("--skip-open-browser".into());
    // kubectl without a terminal (e.g. `kubectl get pods | less` over SSH).
    let mut live = Live::start(
        &world,
        &args,
        &[("KUBERNETES_EXEC_INFO", EXEC_INFO_NO_TERMINAL)],
    );
    let line = live.line_with("enter the code");
    // "To sign in, open URI and enter the code CODE"
    let words: Vec<&str> = line.split_whitespace().collect();
    let uri = words[words.iter().position(|w| *w == "open").unwrap() + 1];
    let code = words.last().unwrap();
    assert!(uri.ends_with("/device"), "{line}");
    // The person types the code on another machine's browser.
    browse(&world, &format!("{uri}?user_code={code}"), &[]);
    let run = live.finish();
    run.assert_ok();
    let credential: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(credential["status"]["token"].as_str().unwrap().len() > 100);
    assert!(!run
        .stderr
        .contains(credential["status"]["token"].as_str().unwrap()));
}

#[test]
fn device_code_abort_at_the_provider_is_reported_and_nothing_is_cached() {
    let world = World::new(300);
    let args = world.grant_args("kubernetes-device", "device-code");
    let run = world.plugin(&args, &[("LOGIN_CANCEL", "1")]);
    run.assert_failed();
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr
            .contains("refused at the provider (access_denied)"),
        "{}",
        run.stderr
    );
    assert!(world
        .cache_files()
        .iter()
        .all(|(p, _)| !p.to_string_lossy().contains(".token.json")));
}

#[test]
fn device_code_for_a_client_without_the_grant_names_the_keycloak_setting() {
    let world = World::new(300);
    let args = world.grant_args("kubernetes", "device-code");
    let run = world.plugin(&args, &[]);
    run.assert_failed();
    assert!(
        run.stderr.contains("OAuth 2.0 Device Authorization Grant"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
}

#[test]
fn password_grant_with_flags_reaches_the_cluster_and_auto_picks_it_for_username() {
    let world = World::new(300);
    // `auto` (the default) with --username means the password grant, as in kubelogin.
    let mut args = world.grant_args("kubernetes-password", "auto");
    args.push("--username=bob".into());
    args.push("--password=secret".into());
    let kubeconfig = world.kubeconfig(
        "kubeconfig",
        "client.authentication.k8s.io/v1",
        PLUGIN,
        &args,
    );
    let run = world.kubectl(&kubeconfig, &["auth", "whoami", "-o", "json"], &[]);
    run.assert_ok();
    let user = &run.json()["status"]["userInfo"];
    assert_eq!(user["username"], "bob@example.com");
    assert!(user["groups"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g == "oidc:developers"));
    assert!(world.logins().is_empty(), "no browser for a password login");
    assert_eq!(world.provider.count("/protocol/openid-connect/auth"), 0);
    // The refresh token it got refreshes like any other.
    world.provider.reset_counts();
    let mut refresh = args.clone();
    refresh.push("--force-refresh".into());
    world.plugin(&refresh, &[]).assert_ok();
    assert_eq!(world.provider.count("/protocol/openid-connect/token"), 1);
}

#[test]
fn password_grant_with_a_wrong_password_fails_cleanly() {
    let world = World::new(300);
    let mut args = world.grant_args("kubernetes-password", "password");
    args.push("--username=alice".into());
    args.push("--password=wrong-password".into());
    let run = world.plugin(&args, &[]);
    run.assert_failed();
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr
            .contains("refused the user name or password (invalid_grant"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("wrong-password"));
    assert!(world
        .cache_files()
        .iter()
        .all(|(p, _)| !p.to_string_lossy().contains(".token.json")));
}

#[test]
fn password_prompt_reads_the_terminal_without_echo() {
    let world = World::new(300);
    let mut args = world.grant_args("kubernetes-password", "password");
    args.push("--username=alice".into());
    let mut command = Command::new(support_dir().join("terminal.py"));
    command
        .args(["Password: ", "secret", "--", PLUGIN])
        .args(&args);
    world.prepare(&mut command, &[]);
    let run = crate::common::run_with_timeout(command, Duration::from_secs(90));
    run.assert_ok();
    // The terminal shows the prompt and the ExecCredential, never the typed password.
    let shown = &run.stdout;
    assert!(shown.contains("Password: "), "{shown}");
    assert!(shown.contains("\"kind\":\"ExecCredential\""), "{shown}");
    assert!(
        !shown.contains("secret"),
        "the password was echoed: {shown}"
    );
}

#[test]
fn password_grant_without_a_terminal_fails_at_once() {
    let world = World::new(300);
    let mut args = world.grant_args("kubernetes-password", "password");
    args.push("--username=alice".into());
    let run = world.plugin(&args, &[("KUBERNETES_EXEC_INFO", EXEC_INFO_NO_TERMINAL)]);
    run.assert_failed();
    assert!(run.stderr.contains("without a terminal"), "{}", run.stderr);
    assert_eq!(world.provider.count("/protocol/openid-connect/token"), 0);
}

#[test]
fn keyboard_login_takes_the_pasted_address() {
    let world = World::new(300);
    let mut args = world.grant_args("kubernetes", "authcode-keyboard");
    // A loopback address nobody listens on: the browser runs elsewhere, the person copies
    // the address it ends on. (The test provider does not accept the out-of-band URN.)
    args.push("--oidc-redirect-url=http://127.0.0.1:9".into());
    let mut live = Live::start(
        &world,
        &args,
        &[("KUBERNETES_EXEC_INFO", EXEC_INFO_TERMINAL)],
    );
    live.line_with("Open this URL in a browser");
    let url_line = live.line_with("/protocol/openid-connect/auth?");
    let copied = world.path("copied-address");
    let copied_env = copied.display().to_string();
    browse(
        &world,
        url_line.trim(),
        &[("LOGIN_REDIRECT_FILE", copied_env.as_str())],
    );
    let address = std::fs::read_to_string(&copied).unwrap();
    assert!(address.contains("code="), "{address}");
    live.write_stdin(&format!("{address}\n"));
    let run = live.finish();
    run.assert_ok();
    assert!(run.stdout.contains("\"token\":\"ey"), "{}", run.stdout);
    assert!(
        !run.stderr.contains("code="),
        "the code must not be echoed back"
    );
}

#[test]
fn keyboard_login_without_a_terminal_names_the_device_grant() {
    let world = World::new(300);
    let args = world.grant_args("kubernetes", "authcode-keyboard");
    let run = world.plugin(&args, &[("KUBERNETES_EXEC_INFO", EXEC_INFO_NO_TERMINAL)]);
    run.assert_failed();
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr.contains("--grant-type=device-code"),
        "{}",
        run.stderr
    );
}

#[test]
fn client_credentials_robot_reaches_the_cluster_and_caches_its_token() {
    let world = World::new(300);
    let mut args = world.grant_args("robot", "client-credentials");
    args.push("--oidc-client-secret=robot-secret".into());
    let kubeconfig = world.kubeconfig(
        "kubeconfig",
        "client.authentication.k8s.io/v1",
        PLUGIN,
        &args,
    );
    // A CI job: no terminal, no browser.
    let run = world.kubectl(&kubeconfig, &["auth", "whoami", "-o", "json"], &[]);
    run.assert_ok();
    assert_eq!(run.json()["status"]["userInfo"]["username"], "robot:robot");
    assert!(world.logins().is_empty());
    world.provider.reset_counts();
    world
        .kubectl(&kubeconfig, &["get", "--raw", "/api"], &[])
        .assert_ok();
    assert_eq!(world.provider.realm_requests(), 0, "cache hit");
    // A wrong secret is the provider's invalid_client, with the hint.
    let mut wrong = world.grant_args("robot", "client-credentials");
    wrong.push("--oidc-client-secret=not-it".into());
    wrong.push("--force-refresh".into());
    let run = world.plugin(&wrong, &[]);
    run.assert_failed();
    assert!(run.stderr.contains("invalid_client"), "{}", run.stderr);
    assert!(!run.stderr.contains("not-it"));
}

#[test]
fn client_credentials_without_a_secret_says_which_flag() {
    let world = World::new(300);
    let args = world.grant_args("robot", "client-credentials");
    let run = world.plugin(&args, &[]);
    run.assert_failed();
    assert!(
        run.stderr.contains("needs --oidc-client-secret"),
        "{}",
        run.stderr
    );
}

#[test]
fn request_headers_and_extra_authorization_parameters_reach_the_provider() {
    let world = World::new(300);
    let mut args = world.get_token_args();
    args.extend(
        [
            "--oidc-request-header=X-Tenant=team-a",
            "--oidc-auth-request-extra-params=kc_idp_hint=ldap",
            "--oidc-auth-request-extra-params=prompt=login",
            "--oidc-extra-scope=email,groups",
        ]
        .map(String::from),
    );
    world.plugin(&args, &[]).assert_ok();
    let headers = world.provider.headers();
    for path in [
        "/realms/test/.well-known/openid-configuration",
        "/realms/test/protocol/openid-connect/token",
    ] {
        assert_eq!(headers[path]["x-tenant"], "team-a", "{path}: {headers}");
    }
    let login = &world.wait_for_logins(1)[0];
    assert_eq!(login["auth_params"]["kc_idp_hint"], "ldap");
    assert_eq!(login["auth_params"]["prompt"], "login");
    assert_eq!(login["auth_params"]["scope"], "openid email groups");
    assert_eq!(login["auth_params"]["code_challenge_method"], "S256");
}

#[test]
fn open_url_after_authentication_sends_the_browser_on() {
    let world = World::new(300);
    let mut args = world.get_token_args();
    args.push("--open-url-after-authentication=https://wiki.example.com/kubernetes".into());
    world.plugin(&args, &[]).assert_ok();
    let login = &world.wait_for_logins(1)[0];
    assert_eq!(login["callback_status"], 302, "{login}");
    assert_eq!(
        login["callback_location"],
        "https://wiki.example.com/kubernetes"
    );
}

#[test]
fn a_custom_redirect_url_is_sent_and_served() {
    let world = World::new(300);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut args = world.get_token_args();
    args.retain(|a| !a.starts_with("--listen-address"));
    args.push(format!("--listen-address=127.0.0.1:{port}"));
    args.push(format!("--oidc-redirect-url=http://127.0.0.1:{port}"));
    world.plugin(&args, &[]).assert_ok();
    let login = &world.wait_for_logins(1)[0];
    assert_eq!(
        login["auth_params"]["redirect_uri"],
        format!("http://127.0.0.1:{port}")
    );
    assert_eq!(login["callback_status"], 200);
}

#[test]
fn pkce_method_no_sends_no_challenge_and_auto_sends_s256() {
    // A provider that does not insist on PKCE, as some older ones do.
    let world = World::with_provider(&[("OP_PKCE_REQUIRED", "0".into())]);
    let mut args = world.get_token_args();
    args.push("--oidc-pkce-method=no".into());
    args.push("--token-cache-storage=none".into());
    world.plugin(&args, &[]).assert_ok();
    let login = &world.wait_for_logins(1)[0];
    assert!(
        login["auth_params"].get("code_challenge_method").is_none(),
        "{login}"
    );
    // The default sends S256 (and the provider's required-PKCE realm would refuse `no`).
    let mut args = world.get_token_args();
    args.push("--token-cache-storage=none".into());
    world.plugin(&args, &[]).assert_ok();
    assert_eq!(
        world.wait_for_logins(2)[1]["auth_params"]["code_challenge_method"],
        "S256"
    );
}

/// The device grant with nobody at the browser, through the real kubectl, against a provider
/// whose polling `interval` is hostile (issue 36, found by fuzzing the device flow): the login
/// must end at --authentication-timeout-sec with the timeout's own words, whatever the
/// provider asks for.
fn device_login_nobody_finishes(provider_env: &[(&str, String)]) -> Run {
    let world = World::with_provider(provider_env);
    let mut args = world.grant_args("kubernetes-device", "device-code");
    args.retain(|a| {
        !a.starts_with("--browser-command") && !a.starts_with("--authentication-timeout-sec")
    });
    args.extend([
        "--skip-open-browser".into(),
        "--authentication-timeout-sec=3".into(),
    ]);
    let kubeconfig = world.kubeconfig(
        "kubeconfig",
        "client.authentication.k8s.io/v1",
        PLUGIN,
        &args,
    );
    let mut command = Command::new(crate::common::kubectl_path());
    command
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(["get", "--raw", "/api"]);
    world.prepare(&mut command, &[]);
    let run = crate::common::run_with_timeout(command, Duration::from_secs(60));
    assert!(!run.ok(), "{}", run.stderr);
    assert!(
        run.stderr.contains("no sign-in before the code expired"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run
}

/// `"interval":100000000` and `authorization_pending`: the plugin slept 3 years past its
/// timeout while holding the cache lock.
#[test]
fn device_code_never_sleeps_past_the_authentication_timeout() {
    device_login_nobody_finishes(&[("OP_DEVICE_INTERVAL", "100000000".into())]);
}

/// `"interval":18446744073709551615` and `slow_down`: adding slow_down's 5 s overflowed and
/// aborted the plugin ("overflow when adding durations").
#[test]
fn device_code_survives_a_slow_down_on_the_largest_interval() {
    device_login_nobody_finishes(&[
        ("OP_DEVICE_INTERVAL_RAW", "18446744073709551615".into()),
        ("OP_DEVICE_SLOW_DOWN", "1".into()),
    ]);
}
