//! Drop-in for kubelogin kubeconfigs, end to end: exec entries spelled as kubelogin users
//! write them (its README, docs/, issues; pflag's and klog's syntax), each run by the real
//! kubectl against the test provider. Each row states what the provider must then have seen:
//! the authorization request's parameters and the extra headers, exactly.

mod common;

use std::collections::BTreeMap;

use common::kubelogin_table::{is_deprecated, rows, url_host, STANDARD};
use common::{support_dir, World};

#[test]
fn kubelogin_exec_entries_work_through_kubectl_and_send_what_they_ask_for() {
    let world = World::new(300);
    let token_path = "/realms/test/protocol/openid-connect/token";
    let rows = rows();
    assert!(rows.len() >= 30, "{} rows", rows.len());
    let mut failures = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let mut args = vec![
            "get-token".to_string(),
            format!("--oidc-issuer-url={}", world.provider.issuer),
            "--oidc-client-id=kubernetes".to_string(),
            format!(
                "--token-cache-dir={}",
                world.path(&format!("cache-{i}")).display()
            ),
            format!(
                "--browser-command={}",
                support_dir().join("login.mjs").display()
            ),
        ];
        if !row.args.iter().any(|a| a.starts_with("--listen")) {
            args.push("--listen-address=127.0.0.1:0".into());
        }
        args.extend(row.args.iter().map(|a| a.to_string()));
        // One row puts a klog flag before the subcommand, as `kubectl oidc-login --v=1
        // get-token` would.
        if i == 0 {
            args.insert(0, "--log_dir=/tmp".into());
        }
        let kubeconfig = world.kubeconfig(
            &format!("kubeconfig-{i}"),
            "client.authentication.k8s.io/v1",
            common::PLUGIN,
            &args,
        );
        let logins_before = world.logins().len();
        let run = world.kubectl(&kubeconfig, &["auth", "whoami", "-o", "json"], &[]);
        if !run.ok() {
            failures.push(format!("{:?}: kubectl failed: {}", row.args, run.stderr));
            continue;
        }
        let logins = world.wait_for_logins(logins_before + 1);
        let Some(login) = logins.get(logins_before) else {
            failures.push(format!("{:?}: no browser login", row.args));
            continue;
        };
        let params: BTreeMap<String, String> =
            serde_json::from_value(login["auth_params"].clone()).unwrap();
        let extras: BTreeMap<String, String> = params
            .iter()
            .filter(|(k, _)| !STANDARD.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let want_extras: BTreeMap<String, String> = row
            .extra_params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if extras != want_extras {
            failures.push(format!("{:?}: extra params {extras:?}", row.args));
        }
        if params.get("scope").map(String::as_str) != Some(row.scope) {
            failures.push(format!("{:?}: scope {:?}", row.args, params.get("scope")));
        }
        if params.get("access_type").map(String::as_str) != Some("offline") {
            failures.push(format!("{:?}: access_type {params:?}", row.args));
        }
        if params.get("code_challenge_method").map(String::as_str) != Some("S256") {
            failures.push(format!("{:?}: PKCE {params:?}", row.args));
        }
        let redirect = url_host(params.get("redirect_uri").map(String::as_str).unwrap_or(""));
        if redirect != row.redirect_host {
            failures.push(format!("{:?}: redirect host {redirect}", row.args));
        }
        let seen: BTreeMap<String, String> = world.provider.headers()[token_path]
            .as_object()
            .map(|h| {
                h.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let want_headers: BTreeMap<String, String> = row
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if seen != want_headers {
            failures.push(format!("{:?}: headers {seen:?}", row.args));
        }
        if run.stderr.contains("Flag --") != row.args.iter().any(|a| is_deprecated(a)) {
            failures.push(format!(
                "{:?}: deprecation notice: {}",
                row.args, run.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A login cached by kubelogin: its file format (`{"id_token","refresh_token"}` JSON in a
/// file named by a 64-hex-digit hash, mode 0600), with real tokens from the test provider.
fn kubelogin_cache_file(world: &World, dir: &std::path::Path, name: &str) {
    let entry = world.kubelogin_entry(name, &[]);
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, entry.to_string()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

const HASH_A: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";
const HASH_B: &str = "f9e8d7c6b5a40392817f6e5d4c3b2a10f9e8d7c6b5a40392817f6e5d4c3b2a10";

#[test]
fn a_kubelogin_login_is_imported_without_a_browser_then_refreshed_once() {
    let world = World::new(20);
    let cache = world.cache_dir();
    kubelogin_cache_file(&world, &cache, HASH_A);
    let logins_before = world.wait_for_logins(1).len();
    world.provider.reset_counts();

    // kubelogin's default storage was disk; the refresh token goes where ours says.
    let kubeconfig = world.default_kubeconfig(&["--token-cache-storage=disk"]);
    let run = world.kubectl(&kubeconfig, &["auth", "whoami", "-o", "json"], &[]);
    run.assert_ok();
    assert!(
        run.stderr.contains("Imported the login kubelogin cached"),
        "{}",
        run.stderr
    );
    assert_eq!(world.logins().len(), logins_before, "no browser login");
    // The API server stand-in fetches the provider's keys itself; the plugin made no token
    // request: the ID token was still valid.
    assert_eq!(world.provider.count("/protocol/openid-connect/token"), 0);

    // Once kubelogin's ID token has expired: one refresh, still no browser.
    world.wait_for_cached_token_to_expire();
    world.provider.reset_counts();
    let run = world.kubectl(&kubeconfig, &["auth", "whoami", "-o", "json"], &[]);
    run.assert_ok();
    assert_eq!(world.provider.count("/protocol/openid-connect/token"), 1);
    assert_eq!(
        world.logins().len(),
        logins_before,
        "still no browser login"
    );
    assert!(
        !run.stderr.contains("Imported"),
        "imported once: {}",
        run.stderr
    );
}

#[test]
fn an_expired_kubelogin_login_is_refreshed_at_once() {
    let world = World::new(12);
    let cache = world.cache_dir();
    kubelogin_cache_file(&world, &cache, HASH_A);
    let logins_before = world.wait_for_logins(1).len();
    std::thread::sleep(std::time::Duration::from_secs(3));
    world.provider.reset_counts();
    let kubeconfig = world.default_kubeconfig(&["--token-cache-storage=disk"]);
    let run = world.kubectl(&kubeconfig, &["auth", "whoami", "-o", "json"], &[]);
    run.assert_ok();
    assert!(run.stderr.contains("Imported"), "{}", run.stderr);
    assert_eq!(world.provider.count("/protocol/openid-connect/token"), 1);
    assert_eq!(world.logins().len(), logins_before, "no browser login");
}

#[test]
fn two_matching_kubelogin_logins_are_not_imported() {
    let world = World::new(300);
    let cache = world.cache_dir();
    kubelogin_cache_file(&world, &cache, HASH_A);
    kubelogin_cache_file(&world, &cache, HASH_B);
    let logins_before = world.wait_for_logins(2).len();
    let kubeconfig = world.default_kubeconfig(&["--token-cache-storage=disk"]);
    let run = world.kubectl(&kubeconfig, &["auth", "whoami", "-o", "json"], &[]);
    run.assert_ok();
    assert!(run.stderr.contains("importing none"), "{}", run.stderr);
    assert_eq!(
        world.wait_for_logins(logins_before + 1).len(),
        logins_before + 1
    );
}

#[test]
fn clean_removes_kubelogins_files_too() {
    let world = World::new(300);
    let cache = world.cache_dir();
    kubelogin_cache_file(&world, &cache, HASH_A);
    std::fs::write(cache.join(format!("{HASH_A}.lock")), "").unwrap();
    // A login of this plugin beside it.
    world.plugin(&world.get_token_args(), &[]).assert_ok();
    let run = world.plugin(
        &[
            "clean".into(),
            format!("--token-cache-dir={}", cache.display()),
            "--token-cache-storage=disk".into(),
        ],
        &[],
    );
    run.assert_ok();
    assert!(
        run.stderr
            .contains("Removed kubelogin's cached logins: 1 file(s)"),
        "{}",
        run.stderr
    );
    let left: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn version_setup_guide_and_kubecachedir() {
    let world = World::new(300);
    let run = world.plugin(&["version".into()], &[]);
    run.assert_ok();
    assert!(
        run.stdout.starts_with("kubectl-oidc_login version "),
        "{}",
        run.stdout
    );
    let run = world.plugin(&["setup".into()], &[]);
    run.assert_ok();
    assert!(
        run.stdout
            .contains("kubectl oidc-login setup --oidc-issuer-url="),
        "{}",
        run.stdout
    );

    // Without --token-cache-dir, KUBECACHEDIR decides (the world sets it for every process).
    let mut args = world.get_token_args();
    args.retain(|a| !a.starts_with("--token-cache-dir"));
    args.push("--token-cache-storage=disk".into());
    world.plugin(&args, &[]).assert_ok();
    let dir = world.path("kubecache").join("oidc-login");
    assert!(
        std::fs::read_dir(&dir).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".token.json")),
        "a token file in {}",
        dir.display()
    );
    let run = world.plugin(&["accounts".into()], &[]);
    run.assert_ok();
    assert!(run.stdout.contains("client kubernetes"), "{}", run.stdout);
    let help = world.plugin(&["get-token".into(), "--help".into()], &[]);
    assert!(help.stdout.contains("KUBECACHEDIR"), "{}", help.stdout);
    // Run by hand, the plugin answers as kubelogin does: v1beta1.
    let run = world.plugin(&args, &[]);
    run.assert_ok();
    assert_eq!(
        run.json()["apiVersion"],
        "client.authentication.k8s.io/v1beta1"
    );
}

#[test]
fn without_stdin_but_with_a_terminal_on_stderr_the_url_is_printed_and_awaited() {
    // `kubectl apply -f - < x.yaml`: kubectl says interactive=false (stdin is taken), but the
    // person at the terminal reads stderr. `script` gives the plugin that terminal.
    let world = World::new(300);
    let mut args = world.get_token_args();
    args.retain(|a| !a.starts_with("--browser-command"));
    args.push("--skip-open-browser".into());
    args.push("--authentication-timeout-sec=2".into());
    let line = std::iter::once(common::PLUGIN.to_string())
        .chain(args)
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut command = std::process::Command::new("script");
    command.args(["-qec", &line, "/dev/null"]);
    let exec_info = r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}"#;
    let run = world.run(command, &[("KUBERNETES_EXEC_INFO", exec_info)]);
    let shown = format!("{}{}", run.stdout, run.stderr);
    assert!(shown.contains("Sign in to continue"), "{shown}");
    assert!(
        shown.contains("no browser login completed within"),
        "it waited for the login: {shown}"
    );
    assert!(!shown.contains("no person can see it"), "{shown}");

    // Without the terminal, nobody sees the URL: refused at once.
    let mut args = world.get_token_args();
    args.retain(|a| !a.starts_with("--browser-command"));
    args.push("--skip-open-browser".into());
    let run = world.plugin(&args, &[("KUBERNETES_EXEC_INFO", exec_info)]);
    run.assert_failed();
    assert!(
        run.stderr.contains("no person can see it"),
        "{}",
        run.stderr
    );
}
