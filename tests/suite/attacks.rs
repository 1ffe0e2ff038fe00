//! Attacks on the plugin's trust, performed for real (issue 26): a man in the middle whose
//! discovery document an unverified run cached, a provider whose discovery names plain-http
//! endpoints, a hostile provider's terminal escapes, ID tokens authorized for another client,
//! a refresh that changes the user, a token that vouches for its own freshness, and another
//! local user who plants a symlink or a directory of their own in a shared cache directory.
//! Each test fails on the code before the fix; the listener's attacks are in
//! tests/suite/listener_attacks.rs.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
#[cfg(unix)]
use std::path::PathBuf;
#[cfg(unix)]
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::{test_certificate, Provider, Run, World};

#[track_caller]
fn assert_refused(run: &Run, message: &str) {
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "stdout: {}", run.stdout);
    assert!(
        run.stderr.contains(message),
        "expected {message:?} in: {}",
        run.stderr
    );
}

/// A TCP listener that counts the connections it receives and reads whatever they send, as
/// an eavesdropper on a plain-http endpoint would.
fn eavesdropper() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut stream = stream;
            let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
        }
    });
    (port, seen)
}

#[cfg(unix)]
fn without_cache_dir_flag(args: Vec<String>) -> Vec<String> {
    args.into_iter()
        .filter(|a| !a.starts_with("--token-cache-dir"))
        .collect()
}

/// Item 2: one run with --insecure-skip-tls-verify meets a man in the middle (an impostor at
/// the issuer's address, with a certificate nobody trusts) whose discovery names the
/// attacker's token endpoint (https, with a certificate the victim does trust). A later,
/// verified run at the real provider must never send the code and PKCE verifier there.
#[test]
fn a_discovery_cached_by_an_unverified_run_never_steers_a_verified_one() {
    let world = World::new(300);
    let dir = world.path("mitm");
    std::fs::create_dir_all(&dir).unwrap();
    let (real_ca, real_cert, real_key) = test_certificate(&dir, "real");
    let (_, mitm_cert, mitm_key) = test_certificate(&dir, "mitm");
    let (evil_ca, evil_cert, evil_key) = test_certificate(&dir, "evil");
    let tls = |cert: &Path, key: &Path| {
        vec![
            ("OP_TLS_CERT", cert.display().to_string()),
            ("OP_TLS_KEY", key.display().to_string()),
        ]
    };
    // The attacker's token endpoint: a provider of its own that records what reaches it.
    let evil_dir = dir.join("evil-provider");
    std::fs::create_dir_all(&evil_dir).unwrap();
    let evil = Provider::start_with(&evil_dir, &tls(&evil_cert, &evil_key));
    let evil_token_endpoint = format!("{}/protocol/openid-connect/token", evil.issuer);

    // The impostor holds the issuer's address while the victim runs without verification.
    let port = crate::common::free_port();
    let imp_dir = dir.join("impostor");
    std::fs::create_dir_all(&imp_dir).unwrap();
    let mut envs = tls(&mitm_cert, &mitm_key);
    envs.push(("OP_PORT", port.to_string()));
    envs.push((
        "NODE_EXTRA_CA_CERTS",
        dir.join("mitm-ca.crt").display().to_string(),
    ));
    envs.push((
        "OP_DISCOVERY_PATCH",
        serde_json::json!({ "token_endpoint": evil_token_endpoint }).to_string(),
    ));
    let mut impostor = Provider::start_with(&imp_dir, &envs);
    let issuer = impostor.issuer.clone();
    let base_args = |extra: &[String]| {
        let mut args = vec![
            "get-token".to_string(),
            format!("--oidc-issuer-url={issuer}"),
            "--oidc-client-id=kubernetes".into(),
            format!("--token-cache-dir={}", world.cache_dir().display()),
            "--listen-address=127.0.0.1:0".into(),
            format!(
                "--browser-command={}",
                crate::common::support_dir().join("login.mjs").display()
            ),
        ];
        args.extend(extra.iter().cloned());
        args
    };
    // The victim signs in through the impostor; its code goes to the attacker's token
    // endpoint, which refuses it: the run fails, with the impostor's metadata in hand.
    let mitm_ca = dir.join("mitm-ca.crt").display().to_string();
    let unverified = world.plugin(
        &base_args(&["--insecure-skip-tls-verify".into()]),
        &[("NODE_EXTRA_CA_CERTS", mitm_ca.as_str())],
    );
    assert!(!unverified.ok(), "{}", unverified.stderr);
    assert_eq!(evil.count("/protocol/openid-connect/token"), 1);
    evil.reset_counts();
    impostor.stop();

    // The real provider is back at its address; the victim verifies TLS with its CA, and
    // trusts the attacker's CA too (a public certificate, in real life).
    let real_dir = dir.join("real-provider");
    std::fs::create_dir_all(&real_dir).unwrap();
    let mut envs = tls(&real_cert, &real_key);
    envs.push(("OP_PORT", port.to_string()));
    let real = Provider::start_with(&real_dir, &envs);
    assert_eq!(real.issuer, issuer);
    let verified = world.plugin(
        &base_args(&[
            format!("--certificate-authority={}", real_ca.display()),
            format!("--certificate-authority={}", evil_ca.display()),
        ]),
        &[(
            "NODE_EXTRA_CA_CERTS",
            real_ca.display().to_string().as_str(),
        )],
    );
    assert_eq!(
        evil.count("/protocol/openid-connect/token"),
        0,
        "the attacker's token endpoint received the code: {}",
        verified.stderr
    );
    verified.assert_ok();
    assert_eq!(real.count("/protocol/openid-connect/token"), 1);
}

/// Item 13: an https issuer whose discovery names a plain-http token endpoint: the code, the
/// PKCE verifier and the client secret would cross the network in clear text.
#[test]
fn an_https_issuer_with_a_plain_http_token_endpoint_is_refused_before_anything_is_sent() {
    let (port, seen) = eavesdropper();
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_certificate(dir.path(), "provider");
    let provider = Provider::start_with(
        dir.path(),
        &[
            ("OP_TLS_CERT", cert.display().to_string()),
            ("OP_TLS_KEY", key.display().to_string()),
            ("NODE_EXTRA_CA_CERTS", ca.display().to_string()),
            (
                "OP_DISCOVERY_PATCH",
                serde_json::json!({
                    "token_endpoint": format!("http://127.0.0.1:{port}/realms/test/protocol/openid-connect/token")
                })
                .to_string(),
            ),
        ],
    );
    let world = World::new(300);
    let args = vec![
        "get-token".to_string(),
        format!("--oidc-issuer-url={}", provider.issuer),
        "--oidc-client-id=kubernetes".into(),
        "--oidc-client-secret=s3cret-of-the-client".into(),
        format!("--token-cache-dir={}", world.cache_dir().display()),
        format!("--certificate-authority={}", ca.display()),
        "--listen-address=127.0.0.1:0".into(),
        format!(
            "--browser-command={}",
            crate::common::support_dir().join("login.mjs").display()
        ),
    ];
    let run = world.plugin(
        &args,
        &[("NODE_EXTRA_CA_CERTS", ca.display().to_string().as_str())],
    );
    assert_refused(
        &run,
        "refusing the provider's token endpoint http://127.0.0.1:",
    );
    assert!(run.stderr.contains("not https"), "{}", run.stderr);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        seen.load(Ordering::SeqCst),
        0,
        "something was sent in clear text"
    );
    assert!(world.logins().is_empty(), "no browser login may start");
    assert!(!run.stderr.contains("s3cret-of-the-client"));
}

const HOSTILE: &str = "denied\u{1b}]0;owned\u{7}\u{1b}[2J\rre-enter your password: ";

#[track_caller]
fn assert_no_raw_controls(run: &Run) {
    for c in ['\u{1b}', '\u{7}', '\r'] {
        assert!(
            !run.stderr.contains(c),
            "raw control {c:?} reached the terminal: {:?}",
            run.stderr
        );
    }
    assert!(run.stderr.contains("\\u{1b}]0;owned"), "{:?}", run.stderr);
}

/// Item 7: terminal escapes in the callback's error_description.
#[test]
fn escapes_in_the_callback_error_description_are_shown_escaped() {
    let world = World::with_provider(&[("OP_AUTH_ERROR_DESCRIPTION", HOSTILE.to_string())]);
    let run = world.plugin(&world.get_token_args(), &[]);
    assert_refused(&run, "access_denied");
    assert_no_raw_controls(&run);
}

/// Item 7: terminal escapes in the token endpoint's error text.
#[test]
fn escapes_in_the_token_endpoint_error_are_shown_escaped() {
    let world = World::with_provider(&[
        ("OP_TOKEN_ERROR", "invalid_request".to_string()),
        ("OP_ERROR_DESCRIPTION", HOSTILE.to_string()),
    ]);
    let run = world.plugin(&world.get_token_args(), &[]);
    assert_refused(&run, "invalid_request");
    assert_no_raw_controls(&run);
}

/// Item 8: `aud` is only our client, but `azp` names another one.
#[test]
fn an_id_token_authorized_for_another_client_is_refused_at_login() {
    let world = World::with_provider(&[("OP_FORGE", "azp_other".to_string())]);
    let run = world.plugin(&world.get_token_args(), &[]);
    assert_refused(&run, "authorized party (azp) is `someone-else`");
    assert!(
        !world
            .cache_files()
            .iter()
            .any(|(p, _)| p.to_string_lossy().ends_with(".token.json")),
        "nothing may be cached"
    );
}

/// Item 8, at refresh: the login is genuine, the refreshed ID token is for another client.
#[test]
fn an_id_token_authorized_for_another_client_is_refused_at_refresh() {
    let world = World::with_provider(&[
        ("OP_FORGE", "azp_other".to_string()),
        ("OP_FORGE_GRANT", "refresh_token".to_string()),
    ]);
    world.plugin(&world.get_token_args(), &[]).assert_ok();
    let mut args = world.get_token_args();
    args.push("--force-refresh".into());
    let run = world.plugin(&args, &[]);
    assert_refused(&run, "authorized party (azp) is `someone-else`");
}

/// Item 9: the login is alice's; the provider answers her refresh with a validly signed ID
/// token for mallory. The answer is refused and nothing of mallory's is cached.
#[test]
fn a_refresh_that_changes_the_user_is_refused() {
    let world = World::with_provider(&[
        ("OP_FORGE", "other_sub".to_string()),
        ("OP_FORGE_GRANT", "refresh_token".to_string()),
    ]);
    let login = world.plugin(&world.get_token_args(), &[]);
    login.assert_ok();
    let alice = login.json()["status"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut args = world.get_token_args();
    args.push("--force-refresh".into());
    let run = world.plugin(&args, &[]);
    assert_refused(
        &run,
        "names another user (sub `mallory`) than the login it renews (sub `alice`)",
    );
    for (path, text) in world.cache_files() {
        assert!(
            !text.contains("mallory"),
            "{} holds mallory's token",
            path.display()
        );
        assert!(
            !(path.to_string_lossy().ends_with(".token.json") && text.contains(&alice)),
            "the old login must be removed, not kept for a later refresh"
        );
    }
}

/// Item 10: no Date header, and an ID token issued and expired an hour ago. Taking the clock
/// from the token's own iat made it look fresh for its whole lifetime.
#[test]
fn an_expired_id_token_is_refused_when_the_response_has_no_date_header() {
    let world = World::with_provider(&[
        ("OP_NO_DATE", "1".to_string()),
        ("OP_FORGE", "expired_hour".to_string()),
    ]);
    let run = world.plugin(&world.get_token_args(), &[]);
    assert_refused(&run, "expired");
    assert!(!world
        .cache_files()
        .iter()
        .any(|(p, _)| p.to_string_lossy().ends_with(".token.json")));
}

/// Another local user and a shared cache directory (Unix permissions and ownership).
#[cfg(unix)]
mod shared_cache_directory {
    use super::*;

    fn is_root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    /// Runs `command` as the unprivileged user `nobody` (uid 65534): another local user.
    fn as_nobody(args: &[&str]) {
        let status = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .args(args)
            .status()
            .expect("setpriv runs");
        assert!(status.success(), "{args:?} as nobody");
    }

    /// A directory any user may write (no sticky bit: the kernel's protected_symlinks rule would
    /// otherwise hide the attack), like a team's shared KUBECACHEDIR.
    fn shared_dir(world: &World) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let shared = world.path("shared");
        std::fs::create_dir_all(&shared).unwrap();
        std::fs::set_permissions(world.path(""), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        shared
    }

    /// The names of the files in `dir`, to show what the plugin wrote there.
    fn file_names(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    /// Item 11: another user plants `oidc-login` in a shared KUBECACHEDIR as a symlink to the
    /// victim's project directory. The plugin must neither chmod it nor write into it.
    #[test]
    fn a_symlink_planted_in_a_shared_cache_directory_is_refused() {
        let world = World::new(300);
        let shared = shared_dir(&world);
        let project = world.path("home/project");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(project.join("main.go"), "package main\n").unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&project, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let link = shared.join("oidc-login");
        let (project_s, link_s) = (project.display().to_string(), link.display().to_string());
        if is_root() {
            as_nobody(&["ln", "-s", &project_s, &link_s]);
        } else {
            // Not root: the symlink is planted by this user, which is the same attack on the path.
            std::os::unix::fs::symlink(&project, &link).unwrap();
        }
        let args = without_cache_dir_flag(world.get_token_args());
        let shared_s = shared.display().to_string();
        let run = world.plugin(&args, &[("KUBECACHEDIR", shared_s.as_str())]);
        assert_refused(
            &run,
            &format!("refusing the token cache directory {link_s}: it is a symbolic link"),
        );
        assert_eq!(
            mode(&project),
            0o755,
            "the project directory's mode was changed"
        );
        let names = file_names(&project);
        assert_eq!(
            names,
            ["main.go"],
            "cache files were written into the project"
        );
    }

    /// Item 12: run as root, with an `oidc-login` directory that another user made in a shared
    /// cache directory, holding a dangling symlink where the lock file goes. Root must neither
    /// adopt the directory nor create the file the symlink names.
    #[test]
    fn root_never_adopts_a_cache_directory_owned_by_another_user() {
        if !is_root() {
            crate::common::not_built_here(
                "not built here: root_never_adopts_a_cache_directory_owned_by_another_user (not run here: needs root to act as root and as another user)",
            );
            return;
        }
        let world = World::new(300);
        let shared = shared_dir(&world);
        let planted = shared.join("oidc-login");
        let planted_s = planted.display().to_string();
        as_nobody(&["mkdir", "-m", "0777", &planted_s]);
        let key = kubectl_oidc_login::tokens::CacheKey::new(
            &world.provider.issuer,
            "kubernetes",
            None,
            &[],
            &[],
            None,
            None,
        );
        let target = world.path("etc-nologin");
        let lock = planted.join(format!("{}.lock", key.id()));
        as_nobody(&[
            "ln",
            "-s",
            &target.display().to_string(),
            &lock.display().to_string(),
        ]);
        let args = without_cache_dir_flag(world.get_token_args());
        let shared_s = shared.display().to_string();
        let run = world.plugin(&args, &[("KUBECACHEDIR", shared_s.as_str())]);
        assert_refused(
            &run,
            &format!("refusing the token cache directory {planted_s}: it belongs to another user (uid 65534)"),
        );
        assert!(
            !target.exists(),
            "root created the file the planted symlink names"
        );
        assert_eq!(
            mode(&planted),
            0o777,
            "root changed the attacker's directory"
        );
        let names = file_names(&planted);
        assert_eq!(
            names.len(),
            1,
            "root wrote into the attacker's directory: {names:?}"
        );
    }
}
