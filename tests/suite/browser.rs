//! A real browser in the loop: headless Chromium (Debian's package, driven by playwright-core)
//! opened by the plugin through --browser-command, logging in through the provider's own pages
//! and landing on the plugin's loopback listener. Screenshots of what the user sees are kept in
//! tests/artifacts/browser/.

use std::path::PathBuf;

use crate::common::World;

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts/browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A kubeconfig whose plugin opens Chromium, with `extra` get-token flags.
fn chromium_kubeconfig(world: &World, extra: &[String]) -> PathBuf {
    let mut args: Vec<String> = world
        .get_token_args()
        .into_iter()
        .filter(|a| !a.starts_with("--browser-command"))
        .collect();
    args.push(format!(
        "--browser-command={}",
        crate::common::support_dir()
            .join("chromium-login.mjs")
            .display()
    ));
    args.extend(extra.iter().cloned());
    world.kubeconfig(
        "kubeconfig",
        "client.authentication.k8s.io/v1",
        crate::common::PLUGIN,
        &args,
    )
}

/// Asserts the page shows neither the authorization code nor the state that reached it.
fn assert_no_secrets_on_page(login: &serde_json::Value) {
    let text = login["text"].as_str().unwrap();
    for key in ["code", "state"] {
        if let Some(value) = login["final_query"][key].as_str() {
            assert!(!text.contains(value), "the page shows the {key}: {text}");
        }
    }
}

#[test]
fn kubectl_get_through_a_real_chromium_login() {
    let world = World::new(300);
    let screenshot = artifacts().join("success.png");
    let _ = std::fs::remove_file(&screenshot);
    // A named account: the landing page says who signed in, and for which account.
    let kubeconfig = chromium_kubeconfig(&world, &["--account=work".to_string()]);
    let run = world.kubectl(
        &kubeconfig,
        &["auth", "whoami", "-o", "json"],
        &[("SCREENSHOT", screenshot.to_str().unwrap())],
    );
    run.assert_ok();
    assert_eq!(
        run.json()["status"]["userInfo"]["username"],
        "alice@example.com"
    );
    assert!(
        run.stderr
            .contains("Signed in as alice@example.com (account work)."),
        "{}",
        run.stderr
    );

    let logins = world.wait_for_logins(1);
    assert_eq!(logins.len(), 1);
    let login = &logins[0];
    assert_eq!(login["error"], serde_json::Value::Null, "{login}");
    assert_eq!(login["steps"][1], "login");
    assert_eq!(login["steps"][2], "consent");
    assert!(
        login["final_url_host"]
            .as_str()
            .unwrap()
            .starts_with("localhost:"),
        "{login}"
    );
    assert!(login["final_query"]["state"].is_string(), "{login}");
    assert_eq!(login["title"], "Signed in - kubectl oidc-login");
    let text = login["text"].as_str().unwrap();
    assert!(
        text.contains("Signed in as alice@example.com (account work)"),
        "{text}"
    );
    assert!(text.contains("close this tab"), "{text}");
    assert!(login["final_query"]["code"].is_string(), "{login}");
    assert_no_secrets_on_page(login);
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 1000);
}

#[test]
fn cancelling_at_consent_shows_access_denied_on_the_page_and_in_the_terminal() {
    let world = World::new(300);
    let screenshot = artifacts().join("access-denied.png");
    let _ = std::fs::remove_file(&screenshot);
    let kubeconfig = chromium_kubeconfig(&world, &[]);
    let run = world.kubectl(
        &kubeconfig,
        &["get", "--raw", "/api"],
        &[
            ("LOGIN_CANCEL", "1"),
            ("SCREENSHOT", screenshot.to_str().unwrap()),
        ],
    );
    run.assert_failed();
    assert!(run.stderr.contains("access_denied"), "{}", run.stderr);
    let login = &world.wait_for_logins(1)[0];
    assert_eq!(
        login["title"], "Sign-in failed - kubectl oidc-login",
        "{login}"
    );
    let text = login["text"].as_str().unwrap();
    assert!(
        text.contains("access_denied") && text.contains("Return to the terminal"),
        "{text}"
    );
    assert_no_secrets_on_page(login);
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 1000);
}

#[test]
fn a_user_who_walks_away_meets_the_timeout_and_the_port_is_freed() {
    let world = World::new(300);
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let kubeconfig = chromium_kubeconfig(
        &world,
        &[
            format!("--listen-address=127.0.0.1:{port}"),
            "--authentication-timeout-sec=5".into(),
        ],
    );
    let run = world.kubectl(
        &kubeconfig,
        &["get", "--raw", "/api"],
        &[("LOGIN_STALL", "1")],
    );
    run.assert_failed();
    assert!(
        run.stderr.contains("no browser login completed within 5s"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("--authentication-timeout-sec"),
        "{}",
        run.stderr
    );
    // The listener is gone: the port can be bound again.
    std::net::TcpListener::bind(("127.0.0.1", port)).expect("the loopback port is free again");
}

#[test]
fn two_racing_kubectl_calls_share_one_browser_login() {
    let world = World::new(300);
    let kubeconfig = chromium_kubeconfig(&world, &[]);
    let runs: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| world.kubectl(&kubeconfig, &["get", "--raw", "/api"], &[])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for run in &runs {
        run.assert_ok();
    }
    let logins = world.wait_for_logins(1);
    // Give a second browser, were there one, time to report too.
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(world.logins().len(), 1, "{logins:?}");
    assert_eq!(logins[0]["error"], serde_json::Value::Null, "{logins:?}");
}
