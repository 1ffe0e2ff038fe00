//! get-token end to end: the real kubectl runs the built plugin against a real OpenID
//! Provider (oidc-provider) and an HTTPS API server stand-in that verifies every token.

use crate::common::World;

const TOKEN: &str = "/protocol/openid-connect/token";

fn whoami(world: &World, kubeconfig: &std::path::Path) -> serde_json::Value {
    let run = world.kubectl(kubeconfig, &["auth", "whoami", "-o", "json"], &[]);
    run.assert_ok();
    run.json()
}

#[test]
fn first_login_then_cache_hit_then_one_request_refresh() {
    let world = World::new(15);
    let kubeconfig = world.default_kubeconfig(&[]);

    // First call: nothing cached, so the browser logs in and the API server gets the ID token.
    let me = whoami(&world, &kubeconfig);
    assert_eq!(me["status"]["userInfo"]["username"], "alice@example.com");
    let groups = me["status"]["userInfo"]["groups"].to_string();
    assert!(groups.contains("oidc:KubernetesAdministrators"), "{groups}");
    let logins = world.wait_for_logins(1);
    assert_eq!(logins.len(), 1, "{logins:?}");
    assert_eq!(logins[0]["callback_status"], 200);
    assert!(logins[0]["callback_page"]
        .as_str()
        .unwrap()
        .contains("Signed in as alice@example.com. You can close this tab"));

    // Second call: the cached token is still valid, so nothing reaches the provider.
    world.provider.reset_counts();
    world
        .kubectl(&kubeconfig, &["get", "--raw", "/api"], &[])
        .assert_ok();
    assert_eq!(
        world.provider.realm_requests(),
        0,
        "{}",
        world.provider.counts()
    );

    // After the ID token nears expiry: exactly one request (the token endpoint), no browser.
    world.wait_for_cached_token_to_expire();
    world.provider.reset_counts();
    world
        .kubectl(&kubeconfig, &["get", "--raw", "/api"], &[])
        .assert_ok();
    assert_eq!(
        world.provider.count(TOKEN),
        1,
        "{}",
        world.provider.counts()
    );
    assert_eq!(
        world.provider.realm_requests(),
        1,
        "{}",
        world.provider.counts()
    );
    assert_eq!(world.logins().len(), 1);
}

#[test]
fn a_revoked_refresh_token_leads_back_to_the_browser() {
    let world = World::new(15);
    let kubeconfig = world.default_kubeconfig(&[]);
    world
        .kubectl(&kubeconfig, &["get", "--raw", "/api"], &[])
        .assert_ok();
    let old_refresh = world.cached_refresh_token();
    world.provider.revoke(&old_refresh);
    world.wait_for_cached_token_to_expire();

    let run = world.kubectl(&kubeconfig, &["get", "--raw", "/api"], &[]);
    run.assert_ok();
    assert!(run.stderr.contains("signing in again"), "{}", run.stderr);
    assert_eq!(world.wait_for_logins(2).len(), 2);
    assert_ne!(world.cached_refresh_token(), old_refresh);
}

#[test]
fn kubectl_accepts_v1_and_v1beta1_credentials() {
    let world = World::new(300);
    for (name, version) in [
        ("v1", "client.authentication.k8s.io/v1"),
        ("v1beta1", "client.authentication.k8s.io/v1beta1"),
    ] {
        let kubeconfig = world.kubeconfig(
            name,
            version,
            crate::common::PLUGIN,
            &world.get_token_args(),
        );
        let me = whoami(&world, &kubeconfig);
        assert_eq!(
            me["status"]["userInfo"]["username"], "alice@example.com",
            "{name}"
        );
    }
    // The plugin answers in the version KUBERNETES_EXEC_INFO asks for.
    let info = r#"{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","spec":{"interactive":false}}"#;
    let run = world.plugin(&world.get_token_args(), &[("KUBERNETES_EXEC_INFO", info)]);
    run.assert_ok();
    let credential = run.json();
    assert_eq!(
        credential["apiVersion"],
        "client.authentication.k8s.io/v1beta1"
    );
    assert_eq!(credential["kind"], "ExecCredential");
    let expiry = credential["status"]["expirationTimestamp"]
        .as_str()
        .unwrap();
    assert!(expiry.ends_with('Z') && expiry.len() == 20, "{expiry}");
    // Only one browser login for all of it.
    assert_eq!(world.wait_for_logins(1).len(), 1);
}

#[test]
fn without_a_terminal_a_grant_that_reads_stdin_fails_at_once() {
    let world = World::new(300);
    let kubeconfig = world.default_kubeconfig(&["--grant-type=password", "--username=alice"]);
    let run = world.kubectl(&kubeconfig, &["get", "--raw", "/api"], &[]);
    run.assert_failed();
    assert!(
        run.stderr
            .contains("would prompt for the user name or password"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("interactive=false"), "{}", run.stderr);
    assert!(world.logins().is_empty());
}

#[test]
fn without_a_terminal_or_a_browser_the_login_fails_at_once() {
    let world = World::new(300);
    let mut args: Vec<String> = world
        .get_token_args()
        .into_iter()
        .filter(|a| !a.starts_with("--browser-command"))
        .collect();
    args.push("--skip-open-browser".into());
    let kubeconfig = world.kubeconfig(
        "k",
        "client.authentication.k8s.io/v1",
        crate::common::PLUGIN,
        &args,
    );
    let run = world.kubectl(&kubeconfig, &["get", "--raw", "/api"], &[]);
    run.assert_failed();
    assert!(
        run.stderr.contains("no browser can be opened"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_callback_with_a_wrong_state_is_rejected_and_the_login_goes_on() {
    let world = World::new(300);
    let kubeconfig = world.default_kubeconfig(&[]);
    let run = world.kubectl(
        &kubeconfig,
        &["get", "--raw", "/api"],
        &[("LOGIN_TAMPER_STATE", "1")],
    );
    run.assert_ok();
    let logins = world.wait_for_logins(1);
    assert_eq!(
        logins[0]["steps"][2]["forged_state_status"], 400,
        "{logins:?}"
    );
    assert_eq!(logins[0]["callback_status"], 200);
    assert!(
        run.stderr.contains("state does not match"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_corrupt_cache_file_is_a_warning_and_a_fresh_login() {
    let world = World::new(300);
    let kubeconfig = world.default_kubeconfig(&[]);
    world
        .kubectl(&kubeconfig, &["get", "--raw", "/api"], &[])
        .assert_ok();
    std::fs::write(world.token_file(), b"{\"version\":1,\"id_token\":\"trunc").unwrap();
    std::fs::write(
        world.cache_dir().join(
            world
                .token_file()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .replace(".token.json", ".refresh.json"),
        ),
        b"not json",
    )
    .unwrap();
    let run = world.kubectl(&kubeconfig, &["get", "--raw", "/api"], &[]);
    run.assert_ok();
    assert!(run.stderr.contains("is damaged"), "{}", run.stderr);
    assert_eq!(world.wait_for_logins(2).len(), 2);
    // And the cache is whole again.
    world.provider.reset_counts();
    world
        .kubectl(&kubeconfig, &["get", "--raw", "/api"], &[])
        .assert_ok();
    assert_eq!(world.provider.realm_requests(), 0);
}

#[test]
fn a_denied_consent_is_shown_on_the_page_and_in_the_terminal() {
    let world = World::new(300);
    let kubeconfig = world.default_kubeconfig(&[]);
    let run = world.kubectl(
        &kubeconfig,
        &["get", "--raw", "/api"],
        &[("LOGIN_CANCEL", "1")],
    );
    run.assert_failed();
    assert!(run.stderr.contains("access_denied"), "{}", run.stderr);
    let page = world.wait_for_logins(1)[0]["callback_page"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        page.contains("Sign-in failed") && page.contains("access_denied"),
        "{page}"
    );
    // Nothing was cached for the failed login.
    let cached: Vec<_> = std::fs::read_dir(world.cache_dir())
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(
        !cached
            .iter()
            .any(|n| n.to_string_lossy().contains(".token.")),
        "{cached:?}"
    );
}

#[test]
fn a_kubelogin_style_kubeconfig_works_through_kubectl_plugin_discovery() {
    let world = World::new(300);
    let bin_dir = std::path::Path::new(crate::common::PLUGIN)
        .parent()
        .unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    // Exactly what kubelogin's README puts in a kubeconfig, plus klog flags old configs carry.
    let mut args = vec!["oidc-login".to_string()];
    args.extend(world.get_token_args());
    args.push("--logtostderr".into());
    args.push("--oidc-extra-scope=email".into());
    let kubeconfig = world.kubeconfig(
        "k",
        "client.authentication.k8s.io/v1beta1",
        "kubectl",
        &args,
    );
    let run = world.kubectl(
        &kubeconfig,
        &["auth", "whoami", "-o", "json"],
        &[("PATH", &path)],
    );
    run.assert_ok();
    assert_eq!(
        run.json()["status"]["userInfo"]["username"],
        "alice@example.com"
    );

    let mut command = std::process::Command::new(crate::common::kubectl_path());
    command.args(["plugin", "list"]).env("PATH", &path);
    let listed = crate::common::output_of(&mut command);
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("kubectl-oidc_login"),
        "{}",
        String::from_utf8_lossy(&listed.stdout)
    );
}

#[test]
fn a_provider_that_is_down_at_refresh_time_does_not_break_a_still_valid_token() {
    let mut world = World::new(15);
    let kubeconfig = world.default_kubeconfig(&[]);
    world
        .kubectl(&kubeconfig, &["get", "--raw", "/api"], &[])
        .assert_ok();

    // The token is within the refresh margin but not expired, and the provider is down: the
    // refresh fails, the cached token still gets this call through, with one warning.
    world.wait_for_cached_token_to_expire();
    world.provider.stop();
    let run = world.kubectl(&kubeconfig, &["get", "--raw", "/api"], &[]);
    run.assert_ok();
    let warning = run
        .stderr
        .lines()
        .find(|l| l.contains("using the cached token"))
        .unwrap_or_else(|| panic!("{}", run.stderr));
    assert!(
        warning.contains("cannot refresh: request to 127.0.0.1:"),
        "{warning}"
    );

    // Once it has expired too: one error naming the provider's host, no browser.
    std::thread::sleep(std::time::Duration::from_secs(11));
    let run = world.plugin(&world.get_token_args(), &[]);
    run.assert_failed();
    assert!(run.stdout.is_empty());
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: request to 127.0.0.1:")
            && last.contains("check --oidc-issuer-url and that the provider is reachable"),
        "{}",
        run.stderr
    );
    assert_eq!(
        world.logins().len(),
        1,
        "no browser while the provider is down"
    );
}

/// A verified ID token whose `exp` lies past the year 9999 (issue 36, found by fuzzing
/// `exec_credential::rfc3339`): RFC 3339 has four-digit years only, and kubectl refused every
/// call with `parsing time "+10000-01-01T00:00:00Z"` for as long as such a token was cached.
#[test]
fn a_token_valid_past_the_year_9999_still_reaches_kubectl() {
    // From now to a little past 10000-01-01T00:00:00Z (253402300800).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let world = World::new(253_402_300_800 + 86_400 - now);
    let kubeconfig = world.default_kubeconfig(&[]);
    for _ in 0..2 {
        let run = world.kubectl(&kubeconfig, &["get", "--raw", "/api"], &[]);
        run.assert_ok();
    }
    assert_eq!(world.logins().len(), 1);
    let run = world.plugin(&world.get_token_args(), &[]);
    run.assert_ok();
    assert_eq!(
        run.json()["status"]["expirationTimestamp"],
        "9999-12-31T23:59:59Z"
    );
}

/// Times read from the cache are checked like the rest of a file (issue 36, found by fuzzing
/// the cache readers): an ID token expiry of i64::MIN made `expiry - now` overflow (a panic
/// in test builds; in release the token was served as valid with a 1970 expiry), and a clock
/// offset of i64::MAX did the same. Each is a damaged file, named, and a fresh login.
#[test]
fn absurd_times_in_the_token_file_are_a_damaged_file_not_an_overflow() {
    let world = World::new(300);
    let kubeconfig = world.default_kubeconfig(&[]);
    world
        .kubectl(&kubeconfig, &["get", "--raw", "/api"], &[])
        .assert_ok();
    let good: serde_json::Value =
        serde_json::from_slice(&std::fs::read(world.token_file()).unwrap()).unwrap();
    for (n, (field, value)) in [
        ("id_token_expiry", serde_json::json!(i64::MIN)),
        ("clock_offset", serde_json::json!(i64::MAX)),
        ("clock_offset", serde_json::json!(i64::MIN)),
        ("access_token_expiry", serde_json::json!(i64::MAX)),
    ]
    .into_iter()
    .enumerate()
    {
        let mut bad = good.clone();
        bad[field] = value;
        std::fs::write(world.token_file(), serde_json::to_vec(&bad).unwrap()).unwrap();
        let run = world.kubectl(&kubeconfig, &["get", "--raw", "/api"], &[]);
        run.assert_ok();
        assert!(run.stderr.contains("is damaged"), "{field}: {}", run.stderr);
        assert!(
            run.stderr
                .contains(&world.token_file().display().to_string()),
            "{field}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{field}: {}", run.stderr);
        // The cache is whole again: renewed (by the refresh token), not patched.
        let renewed: serde_json::Value =
            serde_json::from_slice(&std::fs::read(world.token_file()).unwrap()).unwrap();
        let expiry = renewed["id_token_expiry"].as_i64().unwrap();
        assert!(
            (1_700_000_000..4_000_000_000).contains(&expiry),
            "{n}: {renewed}"
        );
        assert!(
            renewed["clock_offset"].as_i64().unwrap_or(0).abs() < 60,
            "{n}: {renewed}"
        );
    }
}
