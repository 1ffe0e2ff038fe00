//! `doctor` against real parts: a healthy HTTPS setup prints only `ok` lines and exits 0;
//! each check, made to fail on purpose, names its cause.
#![cfg(unix)]

use std::path::PathBuf;

use crate::common::{ApiServer, Run, World};

/// An HTTPS provider behind a test CA, and get-token flags that trust it and keep tokens on
/// disk (no keyring runs here, and that would be a warning).
fn healthy_world() -> (World, Vec<String>) {
    let world = World::with_https_provider(300);
    let mut args = world.get_token_args();
    args.push(format!(
        "--certificate-authority={}",
        world.provider_ca.as_ref().unwrap().display()
    ));
    args.push("--token-cache-storage=disk".into());
    (world, args)
}

fn kubeconfig(world: &World, name: &str, command: &str, args: &[String]) -> PathBuf {
    world.kubeconfig(name, "client.authentication.k8s.io/v1", command, args)
}

fn doctor(world: &World, kubeconfig: &std::path::Path) -> Run {
    let kubeconfig = kubeconfig.display().to_string();
    let run = world.plugin(&["doctor".into()], &[("KUBECONFIG", kubeconfig.as_str())]);
    // Shown with --nocapture: the transcript a user sees.
    eprintln!("$ kubectl oidc-login doctor\n{}{}", run.stdout, run.stderr);
    run
}

#[test]
fn a_healthy_setup_prints_only_ok_lines() {
    let (world, args) = healthy_world();
    let config = kubeconfig(&world, "kubeconfig", crate::common::PLUGIN, &args);
    world.kubectl(&config, &["auth", "whoami"], &[]).assert_ok();
    let run = doctor(&world, &config);
    run.assert_ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines.len() >= 7, "{}", run.stdout);
    for line in &lines {
        assert!(line.starts_with("  ok "), "not ok: {line}\n{}", run.stdout);
    }
    for expected in [
        "runs this plugin",
        "its flags parse",
        "is yours and private",
        "OS keyring: not used",
        "signing key(s), issuer matches exactly",
        "clock agrees",
        "cached login of alice@example.com",
        "the API server sees user alice@example.com with groups oidc:KubernetesAdministrators",
    ] {
        assert!(
            run.stdout.contains(expected),
            "{expected:?} in {}",
            run.stdout
        );
    }
    // Never a token.
    let token = world.plugin(&args, &[]).json()["status"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!run.stdout.contains(&token) && !run.stderr.contains(&token));
}

#[test]
fn a_missing_ca_is_named() {
    let (world, mut args) = healthy_world();
    args.retain(|a| !a.starts_with("--certificate-authority"));
    let config = kubeconfig(&world, "kubeconfig", crate::common::PLUGIN, &args);
    let run = doctor(&world, &config);
    run.assert_failed();
    assert!(run.stdout.contains("error"), "{}", run.stdout);
    assert!(run.stdout.contains("certificate"), "{}", run.stdout);
    assert!(run.stderr.contains("check(s) failed"), "{}", run.stderr);
}

#[test]
fn a_skewed_clock_is_a_warning() {
    let world = World::with_provider(&[
        ("OP_ID_TOKEN_TTL", "300".to_string()),
        ("OP_DATE_SKEW_SECS", "120".to_string()),
    ]);
    let mut args = world.get_token_args();
    args.push("--token-cache-storage=disk".into());
    let config = kubeconfig(&world, "kubeconfig", crate::common::PLUGIN, &args);
    let run = doctor(&world, &config);
    // The words a login or refresh prints for the same measurement (see tests/suite/clock.rs).
    // About 2 min: the Date header has a one-second resolution.
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("warning this machine's clock is "))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(
        line.contains(" min") && line.ends_with(" behind 127.0.0.1's"),
        "{line}"
    );
    assert!(
        run.stdout.contains(
            "fix: tokens are judged by the provider's clock, but fix this machine's (systemd: `sudo timedatectl set-ntp true`"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn a_cache_directory_others_can_read_is_a_warning() {
    let (world, args) = healthy_world();
    let config = kubeconfig(&world, "kubeconfig", crate::common::PLUGIN, &args);
    world.kubectl(&config, &["auth", "whoami"], &[]).assert_ok();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(world.cache_dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = doctor(&world, &config);
    assert!(run.stdout.contains("has mode 777"), "{}", run.stdout);
    assert!(run.stdout.contains("fix: chmod 700"), "{}", run.stdout);
}

#[test]
fn a_kubeconfig_running_another_binary_is_named() {
    let (world, args) = healthy_world();
    let other = world.path("kubectl-oidc_login-old");
    std::fs::write(&other, "#!/bin/sh\necho 'kubectl-oidc_login 0.0.1'\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = kubeconfig(&world, "kubeconfig", other.to_str().unwrap(), &args);
    let run = doctor(&world, &config);
    run.assert_failed();
    assert!(
        run.stdout
            .contains("which says \"kubectl-oidc_login 0.0.1\", not this plugin"),
        "{}",
        run.stdout
    );
}

#[test]
fn flags_this_plugin_rejects_are_named() {
    let (world, mut args) = healthy_world();
    args.push("--oidc-issuer=https://typo.example".into());
    let config = kubeconfig(&world, "kubeconfig", crate::common::PLUGIN, &args);
    let run = doctor(&world, &config);
    run.assert_failed();
    assert!(
        run.stdout.contains(
            "this plugin rejects the exec entry's arguments: unexpected argument '--oidc-issuer'"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn an_api_server_that_refuses_the_token_is_named() {
    let (world, args) = healthy_world();
    // An API server that trusts another issuer: it answers 401 to our token.
    let other_dir = world.path("other-api");
    std::fs::create_dir_all(&other_dir).unwrap();
    let other = ApiServer::start(&other_dir, "https://other.example/realms/x", None);
    let config = kubeconfig(&world, "kubeconfig", crate::common::PLUGIN, &args);
    let mut text: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    use base64::Engine;
    text["clusters"][0]["cluster"]["server"] = other.url.clone().into();
    text["clusters"][0]["cluster"]["certificate-authority-data"] =
        base64::engine::general_purpose::STANDARD
            .encode(&other.ca_pem)
            .into();
    std::fs::write(&config, serde_json::to_vec(&text).unwrap()).unwrap();
    // Signed in already: doctor itself never signs in before its API server check.
    world.plugin(&args, &[]).assert_ok();
    let run = doctor(&world, &config);
    run.assert_failed();
    assert!(
        run.stdout
            .contains("error   the API server refused the token"),
        "{}",
        run.stdout
    );
    // Everything before the API server was fine.
    assert!(
        run.stdout.contains("cached login of alice@example.com"),
        "{}",
        run.stdout
    );
    assert_eq!(world.logins().len(), 1, "no login during doctor");
}

#[test]
fn no_refresh_token_names_offline_access_when_the_provider_lists_it() {
    let world = World::with_provider(&[("OP_REFRESH_NEEDS_OFFLINE_ACCESS", "1".into())]);
    let mut args = world.get_token_args();
    args.push("--token-cache-storage=disk".into());
    let config = kubeconfig(&world, "kubeconfig", crate::common::PLUGIN, &args);
    world.kubectl(&config, &["auth", "whoami"], &[]).assert_ok();
    let run = doctor(&world, &config);
    assert!(
        run.stdout
            .contains("warning the provider issued no refresh token"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("fix: add --oidc-extra-scope=offline_access"),
        "{}",
        run.stdout
    );

    // Following the advice: the login brings a refresh token, and doctor is content.
    args.push("--oidc-extra-scope=offline_access".into());
    let config = kubeconfig(&world, "kubeconfig-offline", crate::common::PLUGIN, &args);
    world.kubectl(&config, &["auth", "whoami"], &[]).assert_ok();
    let run = doctor(&world, &config);
    assert!(
        run.stdout.contains("refresh token cached"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("issued no refresh token"),
        "{}",
        run.stdout
    );
}
