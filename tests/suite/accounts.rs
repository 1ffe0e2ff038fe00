//! Several accounts at one provider and client, and switching user: two kubeconfig users with
//! `--account personal` and `--account admin`, the real kubectl, the test provider's two users
//! (alice in KubernetesAdministrators, bob a developer), and a scripted browser that keeps its
//! cookies between runs (LOGIN_COOKIE_JAR), so the provider's session behaves as in a real
//! browser profile.

use crate::common::{World, PLUGIN};
use serde_json::{json, Value};

/// A kubeconfig with one user and context per account; every user runs this build.
fn two_account_kubeconfig(world: &World) -> std::path::PathBuf {
    let base = world.kubeconfig(
        "base.json",
        "client.authentication.k8s.io/v1",
        PLUGIN,
        &world.get_token_args(),
    );
    let mut config: Value = serde_json::from_slice(&std::fs::read(base).unwrap()).unwrap();
    let exec = config["users"][0]["user"]["exec"].clone();
    let user = |account: &str| {
        let mut exec = exec.clone();
        exec["args"]
            .as_array_mut()
            .unwrap()
            .push(json!(format!("--account={account}")));
        json!({"name": account, "user": {"exec": exec}})
    };
    config["users"] = json!([user("personal"), user("admin")]);
    config["contexts"] = json!([
        {"name": "personal", "context": {"cluster": "test", "user": "personal"}},
        {"name": "admin", "context": {"cluster": "test", "user": "admin"}},
    ]);
    config["current-context"] = json!("personal");
    let path = world.path("kubeconfig.json");
    std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
    path
}

fn whoami(
    world: &World,
    kubeconfig: &std::path::Path,
    context: &str,
    env: &[(&str, &str)],
) -> String {
    let run = world.kubectl(
        kubeconfig,
        &["--context", context, "auth", "whoami", "-o", "json"],
        env,
    );
    run.assert_ok();
    run.json()["status"]["userInfo"]["username"]
        .as_str()
        .unwrap()
        .to_string()
}

fn args_for(world: &World, command: &str, account: Option<&str>) -> Vec<String> {
    let mut args = world.get_token_args();
    args[0] = command.into();
    if let Some(account) = account {
        args.push(format!("--account={account}"));
    }
    args
}

#[test]
fn two_accounts_keep_their_own_identity_through_kubectl_and_refreshes() {
    let world = World::new(300);
    let kubeconfig = two_account_kubeconfig(&world);
    // Each account in its own browser profile (or private window), as docs/accounts.md advises:
    // the provider's session of one never touches the other's.
    let personal_jar = world.path("profile-personal.json").display().to_string();
    let admin_jar = world.path("profile-admin.json").display().to_string();
    let bob = [
        ("LOGIN_USER", "bob"),
        ("LOGIN_COOKIE_JAR", personal_jar.as_str()),
    ];
    let alice = [
        ("LOGIN_USER", "alice"),
        ("LOGIN_COOKIE_JAR", admin_jar.as_str()),
    ];

    assert_eq!(
        whoami(&world, &kubeconfig, "personal", &bob),
        "bob@example.com"
    );
    assert_eq!(
        whoami(&world, &kubeconfig, "admin", &alice),
        "alice@example.com"
    );
    let logins = world.wait_for_logins(2);
    assert_eq!(logins.len(), 2);
    for (login, account) in logins.iter().zip(["personal", "admin"]) {
        assert_eq!(login["auth_params"]["login_hint"], account);
        assert_eq!(login["auth_params"]["prompt"], "login");
        assert_eq!(login["steps"][0], "login", "{login}");
    }

    // Cache hits, then forced refreshes: each account stays who it was, with no browser.
    for _ in 0..2 {
        assert_eq!(
            whoami(&world, &kubeconfig, "personal", &[]),
            "bob@example.com"
        );
        assert_eq!(
            whoami(&world, &kubeconfig, "admin", &[]),
            "alice@example.com"
        );
        for account in ["personal", "admin"] {
            let mut refresh = args_for(&world, "get-token", Some(account));
            refresh.push("--force-refresh".into());
            world.plugin(&refresh, &[]).assert_ok();
        }
    }
    assert_eq!(world.logins().len(), 2, "no further browser login");
}

#[test]
fn one_browser_profile_for_two_accounts_asks_again_but_never_mixes_them() {
    // Signing in as alice in the browser session where bob was signed in ends bob's session at
    // the provider (Keycloak does the same), and with it bob's refresh token. The personal
    // account must then ask for bob again, never quietly become alice.
    let world = World::new(300);
    let kubeconfig = two_account_kubeconfig(&world);
    let jar = world.path("profile.json").display().to_string();
    let bob = [("LOGIN_USER", "bob"), ("LOGIN_COOKIE_JAR", jar.as_str())];
    let alice = [("LOGIN_USER", "alice"), ("LOGIN_COOKIE_JAR", jar.as_str())];
    assert_eq!(
        whoami(&world, &kubeconfig, "personal", &bob),
        "bob@example.com"
    );
    assert_eq!(
        whoami(&world, &kubeconfig, "admin", &alice),
        "alice@example.com"
    );

    let mut refresh = args_for(&world, "get-token", Some("personal"));
    refresh.push("--force-refresh".into());
    let run = world.plugin(&refresh, &bob);
    run.assert_ok();
    assert!(
        run.stderr
            .contains("the provider no longer accepts the cached login"),
        "{}",
        run.stderr
    );
    let login = &world.wait_for_logins(3)[2];
    assert_eq!(login["auth_params"]["login_hint"], "personal");
    assert_eq!(login["steps"][0], "login", "the provider asks who: {login}");
    assert_eq!(
        whoami(&world, &kubeconfig, "personal", &[]),
        "bob@example.com"
    );
}

#[test]
fn login_switches_the_user_of_one_account_only() {
    let world = World::new(300);
    let kubeconfig = two_account_kubeconfig(&world);
    let jar = world.path("browser-profile.json").display().to_string();
    let env = |user: &'static str| [("LOGIN_USER", user), ("LOGIN_COOKIE_JAR", jar.as_str())];
    assert_eq!(
        whoami(&world, &kubeconfig, "personal", &env("bob")),
        "bob@example.com"
    );
    assert_eq!(
        whoami(&world, &kubeconfig, "admin", &env("alice")),
        "alice@example.com"
    );

    // Switch the admin account to bob, on purpose.
    let run = world.plugin(&args_for(&world, "login", Some("admin")), &env("bob"));
    run.assert_ok();
    // One line says who signed in, for which account (the sign-in step's, as get-token's).
    let signed_in: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("Signed in"))
        .collect();
    assert_eq!(
        signed_in,
        ["Signed in as bob@example.com (account admin)."],
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "login prints no credential");
    let login = &world.wait_for_logins(3)[2];
    assert_eq!(login["auth_params"]["prompt"], "login");
    assert_eq!(login["steps"][0], "login");

    assert_eq!(whoami(&world, &kubeconfig, "admin", &[]), "bob@example.com");
    assert_eq!(
        whoami(&world, &kubeconfig, "personal", &[]),
        "bob@example.com"
    );
    // `login` without --account replaces the default account, not these two.
    world
        .plugin(&args_for(&world, "login", None), &env("alice"))
        .assert_ok();
    assert_eq!(whoami(&world, &kubeconfig, "admin", &[]), "bob@example.com");
}

#[test]
fn whoami_all_lists_every_account_with_its_identity() {
    let world = World::new(300);
    let kubeconfig = two_account_kubeconfig(&world);
    let jar = world.path("browser-profile.json").display().to_string();
    whoami(
        &world,
        &kubeconfig,
        "personal",
        &[("LOGIN_USER", "bob"), ("LOGIN_COOKIE_JAR", jar.as_str())],
    );
    whoami(
        &world,
        &kubeconfig,
        "admin",
        &[("LOGIN_USER", "alice"), ("LOGIN_COOKIE_JAR", jar.as_str())],
    );
    let cache = format!("--token-cache-dir={}", world.cache_dir().display());
    let run = world.plugin(&["whoami".into(), "--all".into(), cache.clone()], &[]);
    run.assert_ok();
    let listing = &run.stdout;
    let admin = listing.find("account admin").expect(listing);
    let personal = listing.find("account personal").expect(listing);
    assert!(admin < personal, "sorted: {listing}");
    assert!(
        listing[admin..personal].contains("email alice@example.com"),
        "{listing}"
    );
    assert!(
        listing[personal..].contains("email bob@example.com"),
        "{listing}"
    );
    assert!(listing.contains("refresh token cached"), "{listing}");
    assert!(listing.contains(&world.provider.issuer), "{listing}");
    // The same as `accounts`.
    let accounts = world.plugin(&["accounts".into(), cache], &[]);
    assert_eq!(accounts.stdout, run.stdout);
}

#[test]
fn logout_ends_the_provider_session_so_the_next_login_asks_again() {
    let world = World::new(300);
    let jar = world.path("browser-profile.json").display().to_string();
    let env = [("LOGIN_COOKIE_JAR", jar.as_str())];
    let get_token = world.get_token_args();
    world.plugin(&get_token, &env).assert_ok();
    // With the session alive, a new login after a local clean needs no password...
    let mut clean = vec!["clean".to_string()];
    clean.push(format!("--token-cache-dir={}", world.cache_dir().display()));
    world.plugin(&clean, &[]).assert_ok();
    world.plugin(&get_token, &env).assert_ok();
    let logins = world.wait_for_logins(2);
    assert_eq!(logins[0]["steps"][0], "login");
    assert!(
        !logins[1]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "login"),
        "{logins:?}"
    );

    // ...logout ends it at the provider (through the browser, the ID token as hint)...
    let run = world.plugin(&args_for(&world, "logout", None), &env);
    assert!(
        run.stderr.contains("Signed out at the provider."),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Removed the cached login"),
        "{}",
        run.stderr
    );
    let logins = world.wait_for_logins(3);
    assert_eq!(logins[2]["steps"], json!(["plugin-start", "logout"]));
    assert!(logins[2]["callback_page"]
        .as_str()
        .unwrap()
        .contains("Signed out"));

    // ...so the provider shows its login page again.
    world.plugin(&get_token, &env).assert_ok();
    let logins = world.wait_for_logins(4);
    assert_eq!(logins[3]["steps"][0], "login", "{logins:?}");
}

#[test]
fn a_login_cached_without_an_account_is_the_default_account() {
    let world = World::new(300);
    world.plugin(&world.get_token_args(), &[]).assert_ok();
    world.provider.reset_counts();
    // The same flags find it (no new login)...
    world.plugin(&world.get_token_args(), &[]).assert_ok();
    assert_eq!(world.provider.realm_requests(), 0);
    // ...a named account is another login...
    world
        .plugin(&args_for(&world, "get-token", Some("admin")), &[])
        .assert_ok();
    assert_eq!(world.wait_for_logins(2).len(), 2);
    // ...and the listing calls the first one the default account.
    let cache = format!("--token-cache-dir={}", world.cache_dir().display());
    let run = world.plugin(&["accounts".into(), cache.clone()], &[]);
    assert!(run.stdout.contains("account (default)"), "{}", run.stdout);
    assert!(run.stdout.contains("account admin"), "{}", run.stdout);

    // clean --account removes that account only.
    let run = world.plugin(
        &["clean".into(), cache.clone(), "--account=admin".into()],
        &[],
    );
    run.assert_ok();
    assert!(run.stderr.contains("Removed 1 login(s)"), "{}", run.stderr);
    let run = world.plugin(&["accounts".into(), cache], &[]);
    assert!(run.stdout.contains("account (default)"), "{}", run.stdout);
    assert!(!run.stdout.contains("account admin"), "{}", run.stdout);
}

#[test]
fn setup_prints_one_kubeconfig_user_per_account() {
    let world = World::new(300);
    let mut args = args_for(&world, "setup", None);
    args.push("--extra-account=admin".into());
    args.push("--extra-account=personal".into());
    let run = world.plugin(&args, &[]);
    run.assert_ok();
    let section = crate::common::section(&run.stdout, "## 4. kubeconfig\n", "## 5.");
    assert!(section.contains("set-credentials oidc \\"), "{section}");
    for account in ["admin", "personal"] {
        let start = section
            .find(&format!("set-credentials oidc-{account} \\"))
            .unwrap_or_else(|| panic!("no user for {account}: {section}"));
        let entry = &section[start..];
        let entry = &entry[..entry.find("\n\n").unwrap()];
        assert!(
            entry.contains(&format!("--exec-arg=--account={account}")),
            "{entry}"
        );
    }
}
