//! Token storage against a real Secret Service (gnome-keyring on a private D-Bus session),
//! single-flight refresh and login across concurrent kubectl processes, and crash safety.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{SecretService, World};

const TOKEN: &str = "/protocol/openid-connect/token";

fn env_of(service: &SecretService) -> Vec<(&'static str, String)> {
    service.env()
}

fn as_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn the_refresh_token_lives_in_the_keyring_and_in_no_file() {
    let world = World::new(15);
    let keyring = SecretService::start(world.dir.path());
    let env = env_of(&keyring);
    let kubeconfig = world.default_kubeconfig(&[]);
    let run = world.kubectl(&kubeconfig, &["get", "--raw", "/api"], &as_refs(&env));
    run.assert_ok();
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);

    let id = world.key_id();
    let refresh = keyring
        .lookup(&format!("{id}/refresh_token"))
        .expect("refresh token in the keyring");
    assert!(refresh.len() > 10);
    for (path, content) in world.cache_files() {
        assert!(
            !content.contains(&refresh),
            "{} holds the refresh token",
            path.display()
        );
    }
    assert!(!world
        .cache_dir()
        .join(format!("{id}.refresh.json"))
        .exists());

    // The refresh reads it back from the keyring: one request, no browser.
    world.wait_for_cached_token_to_expire();
    world.provider.reset_counts();
    world
        .kubectl(&kubeconfig, &["get", "--raw", "/api"], &as_refs(&env))
        .assert_ok();
    assert_eq!(
        world.provider.realm_requests(),
        1,
        "{}",
        world.provider.counts()
    );
    assert_eq!(world.logins().len(), 1);
    // The rotated refresh token replaced the old one in the keyring.
    let rotated = keyring.lookup(&format!("{id}/refresh_token")).unwrap();
    assert_ne!(rotated, refresh);
}

#[test]
fn without_a_keyring_the_refresh_token_falls_back_to_a_private_file_with_a_warning() {
    let world = World::new(300);
    let kubeconfig = world.default_kubeconfig(&[]);
    // World runs every process with a D-Bus address where nothing listens.
    let started = Instant::now();
    let run = world.kubectl(&kubeconfig, &["get", "--raw", "/api"], &[]);
    run.assert_ok();
    eprintln!("login with keyring fallback took {:?}", started.elapsed());
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(
        warnings[0].contains("no OS keyring answers"),
        "{}",
        warnings[0]
    );
    #[cfg(unix)]
    {
        let refresh_file = world
            .cache_dir()
            .join(format!("{}.refresh.json", world.key_id()));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&refresh_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(!world.cached_refresh_token().is_empty());
}

#[test]
fn keyring_mode_keeps_every_token_in_the_keyring() {
    let world = World::new(300);
    let keyring = SecretService::start(world.dir.path());
    let env = env_of(&keyring);
    let kubeconfig = world.default_kubeconfig(&["--token-cache-storage=keyring"]);
    let run = world.kubectl(&kubeconfig, &["get", "--raw", "/api"], &as_refs(&env));
    run.assert_ok();
    let id = world.key_id();
    let stored = keyring
        .lookup(&format!("{id}/id_token"))
        .unwrap_or_else(|| panic!("no ID token in the keyring; plugin said: {}", run.stderr));
    let id_token: serde_json::Value = serde_json::from_str(&stored).unwrap();
    let id_token = id_token["token"].as_str().unwrap().to_string();
    let refresh = keyring.lookup(&format!("{id}/refresh_token")).unwrap();
    for (path, content) in world.cache_files() {
        assert!(
            !content.contains(&id_token) && !content.contains(&refresh),
            "{}",
            path.display()
        );
    }
    // A cache hit reads the keyring, and nothing reaches the provider.
    world.provider.reset_counts();
    world
        .kubectl(&kubeconfig, &["get", "--raw", "/api"], &as_refs(&env))
        .assert_ok();
    assert_eq!(world.provider.realm_requests(), 0);
    assert_eq!(world.logins().len(), 1);
}

#[test]
fn moving_from_disk_to_the_default_mode_keeps_the_login() {
    let world = World::new(15);
    let keyring = SecretService::start(world.dir.path());
    let env = env_of(&keyring);
    let disk = world.default_kubeconfig(&["--token-cache-storage=disk"]);
    world
        .kubectl(&disk, &["get", "--raw", "/api"], &as_refs(&env))
        .assert_ok();
    let id = world.key_id();
    assert!(world
        .cache_dir()
        .join(format!("{id}.refresh.json"))
        .exists());
    assert!(keyring.lookup(&format!("{id}/refresh_token")).is_none());

    world.wait_for_cached_token_to_expire();
    let auto = world.default_kubeconfig(&[]);
    world.provider.reset_counts();
    let run = world.kubectl(&auto, &["get", "--raw", "/api", "-v=0"], &as_refs(&env));
    run.assert_ok();
    assert_eq!(
        world.provider.realm_requests(),
        1,
        "refreshed, not a new login: {}",
        run.stderr
    );
    assert_eq!(world.logins().len(), 1);
    assert!(
        keyring.lookup(&format!("{id}/refresh_token")).is_some(),
        "{}",
        run.stderr
    );
    assert!(!world
        .cache_dir()
        .join(format!("{id}.refresh.json"))
        .exists());
}

#[test]
fn clean_removes_the_login_from_disk_and_keyring() {
    let world = World::new(300);
    let keyring = SecretService::start(world.dir.path());
    let env = env_of(&keyring);
    let kubeconfig = world.default_kubeconfig(&[]);
    world
        .kubectl(&kubeconfig, &["get", "--raw", "/api"], &as_refs(&env))
        .assert_ok();
    let id = world.key_id();
    assert!(keyring.lookup(&format!("{id}/refresh_token")).is_some());

    let run = world.plugin(
        &[
            "clean".to_string(),
            format!("--token-cache-dir={}", world.cache_dir().display()),
        ],
        &as_refs(&env),
    );
    run.assert_ok();
    assert!(run.stderr.contains("Removed 1 login(s)"), "{}", run.stderr);
    assert!(keyring.lookup(&format!("{id}/refresh_token")).is_none());
    let left: Vec<_> = world
        .cache_files()
        .into_iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&id))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // The next call has to log in again.
    world
        .kubectl(&kubeconfig, &["get", "--raw", "/api"], &as_refs(&env))
        .assert_ok();
    assert_eq!(world.wait_for_logins(2).len(), 2);
}

/// Starts `n` kubectl processes at once and waits for all of them.
fn kubectl_burst(
    world: &World,
    kubeconfig: &std::path::Path,
    n: usize,
    env: &[(&str, &str)],
) -> Vec<crate::common::Run> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|_| scope.spawn(|| world.kubectl(kubeconfig, &["get", "--raw", "/api"], env)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn twenty_concurrent_kubectl_calls_on_an_expired_token_make_one_refresh() {
    let world = World::new(15);
    let keyring = SecretService::start(world.dir.path());
    let env = env_of(&keyring);
    let kubeconfig = world.default_kubeconfig(&[]);
    world
        .kubectl(&kubeconfig, &["get", "--raw", "/api"], &as_refs(&env))
        .assert_ok();
    world.wait_for_cached_token_to_expire();
    world.provider.reset_counts();

    for run in kubectl_burst(&world, &kubeconfig, 20, &as_refs(&env)) {
        run.assert_ok();
    }
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
fn five_concurrent_calls_with_nothing_cached_open_one_browser_login() {
    let world = World::new(300);
    let keyring = SecretService::start(world.dir.path());
    let env = env_of(&keyring);
    let kubeconfig = world.default_kubeconfig(&[]);
    for run in kubectl_burst(&world, &kubeconfig, 5, &as_refs(&env)) {
        run.assert_ok();
    }
    world.wait_for_logins(1);
    // Give a second browser, were there one, time to report too.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(world.logins().len(), 1, "{:?}", world.logins());
    assert_eq!(
        world.provider.count(TOKEN),
        1,
        "{}",
        world.provider.counts()
    );
}

#[test]
fn killing_the_plugin_at_random_points_of_a_refresh_never_breaks_the_next_call() {
    let world = World::new(300);
    let keyring = SecretService::start(world.dir.path());
    let env = env_of(&keyring);
    let args = world.get_token_args();
    world.plugin(&args, &as_refs(&env)).assert_ok();
    let mut forced = args.clone();
    forced.push("--force-refresh".into());

    // A cheap deterministic spread of kill points from 0 to ~60 ms, covering lock, keyring
    // read, the request, the keyring write and the file rename.
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    let mut killed_mid_flight = 0;
    for round in 0..60 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_micros(seed % 60_000);
        let mut child = Command::new(crate::common::PLUGIN)
            .args(&forced)
            .envs(world.env())
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            killed_mid_flight += 1;
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();

        let run = world.plugin(&args, &as_refs(&env));
        run.assert_ok();
        let credential = run.json();
        assert!(
            credential["status"]["token"]
                .as_str()
                .is_some_and(|t| t.len() > 20),
            "round {round}: {}",
            run.stdout
        );
        for (path, content) in world.cache_files() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".json") && !name.starts_with(".tmp") {
                assert!(
                    serde_json::from_str::<serde_json::Value>(&content).is_ok(),
                    "round {round}: {name} is not whole JSON"
                );
            }
        }
    }
    assert!(
        killed_mid_flight >= 30,
        "only {killed_mid_flight} kills landed mid-flight"
    );
    eprintln!(
        "{killed_mid_flight} of 60 kills landed mid-flight; {} browser logins in all",
        world.logins().len()
    );
}

#[test]
fn a_login_kubelogin_kept_in_the_keyring_is_imported_and_clean_removes_it() {
    let world = World::new(300);
    let keyring = SecretService::start(world.dir.path());
    let env = env_of(&keyring);
    let entry = world.kubelogin_entry("keyring", &as_refs(&env));
    // Where kubelogin --token-cache-storage=keyring keeps it.
    let item = format!("kubelogin/tokencache/{}", "ab".repeat(32));
    keyring.store_item("kubelogin", &item, &entry.to_string());
    let logins_before = world.wait_for_logins(1).len();

    let kubeconfig = world.default_kubeconfig(&[]);
    let run = world.kubectl(&kubeconfig, &["get", "--raw", "/api"], &as_refs(&env));
    run.assert_ok();
    assert!(
        run.stderr.contains(&format!(
            "Imported the login kubelogin cached in its keyring item kubelogin/{item}"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(world.logins().len(), logins_before, "no browser login");

    let clean = world.plugin(
        &[
            "clean".into(),
            format!("--token-cache-dir={}", world.cache_dir().display()),
        ],
        &as_refs(&env),
    );
    clean.assert_ok();
    let theirs = clean
        .stderr
        .lines()
        .find(|l| l.starts_with("Removed kubelogin's cached logins"))
        .unwrap_or_else(|| panic!("{}", clean.stderr));
    assert!(
        theirs.starts_with("Removed kubelogin's cached logins: 0 file(s)")
            && theirs.ends_with("and 1 keyring entry."),
        "{theirs}"
    );
    assert!(!keyring.has_item("kubelogin", &item));
}
