//! Secrets never leak: a run through every flow at the highest verbosity (`-v 9`), then every
//! token, code, refresh token, client secret and password it created is searched for in all
//! that the plugin wrote to stderr, in what it passed to the browser, and in every file outside
//! the 0600 cache. The password and client secret also come from the environment and from
//! owner-only files (`--password-file`, `--oidc-client-secret-file`).

use std::collections::BTreeSet;

use crate::common::{Run, World};
use serde_json::Value;

fn verbose(mut args: Vec<String>) -> Vec<String> {
    args.push("-v9".into());
    args.push("--token-cache-storage=disk".into());
    args
}

/// The tokens of every cache file (ID, access and refresh tokens).
fn cached_secrets(world: &World, into: &mut BTreeSet<String>) {
    for (path, _) in world.cache_files() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.ends_with(".token.json") || name.ends_with(".refresh.json")) {
            continue;
        }
        let json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        collect_strings(&json, into);
    }
}

/// The values of every `*token*` field (id_token, access_token, refresh_token, token).
fn collect_strings(value: &Value, into: &mut BTreeSet<String>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, into)),
        Value::Object(map) => {
            for (key, v) in map {
                match v {
                    Value::String(s) if key.contains("token") && s.len() >= 16 => {
                        into.insert(s.clone());
                    }
                    _ => collect_strings(v, into),
                }
            }
        }
        _ => {}
    }
}

/// Keeps a successful run's stderr, and its credential as a secret for every other channel.
fn keep(run: &Run, secrets: &mut BTreeSet<String>, stderr: &mut String) {
    run.assert_ok();
    stderr.push_str(&run.stderr);
    if let Ok(json) = serde_json::from_str::<Value>(&run.stdout) {
        collect_strings(&json["status"], secrets);
    }
}

fn files_under(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn no_secret_reaches_stderr_the_browser_or_a_stray_file_at_any_verbosity() {
    let world = World::new(300);
    let mut secrets = BTreeSet::new();
    let mut stderr = String::new();
    let record = [("LOGIN_RECORD_CODE", "1")];

    // Browser login, cache hit, refresh.
    let login = verbose(world.get_token_args());
    keep(&world.plugin(&login, &record), &mut secrets, &mut stderr);
    cached_secrets(&world, &mut secrets);
    keep(&world.plugin(&login, &record), &mut secrets, &mut stderr);
    let mut refresh = login.clone();
    refresh.push("--force-refresh".into());
    keep(&world.plugin(&refresh, &record), &mut secrets, &mut stderr);
    cached_secrets(&world, &mut secrets);

    // Password grant with the password on the command line, and a robot's client secret.
    let password = "correct-horse-battery-staple-1";
    let mut args = verbose(world.grant_args("kubernetes-password", "password"));
    args.push("--username=alice".into());
    let mut wrong = args.clone();
    wrong.push(format!("--password={password}"));
    let run = world.plugin(&wrong, &[]);
    run.assert_failed();
    stderr.push_str(&run.stderr);
    secrets.insert(password.to_string());
    args.push("--password=secret".into());
    keep(&world.plugin(&args, &[]), &mut secrets, &mut stderr);
    cached_secrets(&world, &mut secrets);

    let mut robot = verbose(world.grant_args("robot", "client-credentials"));
    robot.push("--oidc-client-secret=robot-secret".into());
    keep(&world.plugin(&robot, &[]), &mut secrets, &mut stderr);
    secrets.insert("robot-secret".into());
    cached_secrets(&world, &mut secrets);

    // The same secrets from the environment and from owner-only files (issue 34): wrong
    // ones, so each run ends in the error path, where a secret is likeliest to be echoed.
    let mut from_env = verbose(world.grant_args("kubernetes-password", "password"));
    from_env.push("--username=alice".into());
    // No cache: the login above would answer from it without the password.
    from_env.push("--token-cache-storage=none".into());
    for (variable, value) in [
        (
            "KUBECTL_OIDC_LOGIN_PASSWORD",
            "wrong-password-from-the-environment",
        ),
        (
            "KUBECTL_OIDC_LOGIN_PASSWORD_FILE",
            "/nonexistent/wrong-password-file-path",
        ),
    ] {
        let run = world.plugin(&from_env, &[(variable, value)]);
        run.assert_failed();
        stderr.push_str(&run.stderr);
    }
    secrets.insert("wrong-password-from-the-environment".into());
    let password_file = world.path("password-file");
    std::fs::write(&password_file, "wrong-password-from-a-file\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut with_file = from_env.clone();
    with_file.push(format!("--password-file={}", password_file.display()));
    let run = world.plugin(&with_file, &[]);
    run.assert_failed();
    stderr.push_str(&run.stderr);
    secrets.insert("wrong-password-from-a-file".into());
    let mut robot_env = verbose(world.grant_args("robot", "client-credentials"));
    robot_env.push("--force-refresh".into());
    let run = world.plugin(
        &robot_env,
        &[(
            "KUBECTL_OIDC_LOGIN_OIDC_CLIENT_SECRET",
            "wrong-client-secret-from-the-environment",
        )],
    );
    run.assert_failed();
    stderr.push_str(&run.stderr);
    secrets.insert("wrong-client-secret-from-the-environment".into());
    let robot_file = world.path("robot-secret-file");
    std::fs::write(&robot_file, "robot-secret\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&robot_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut robot_from_file = robot_env.clone();
    robot_from_file.push(format!(
        "--oidc-client-secret-file={}",
        robot_file.display()
    ));
    keep(
        &world.plugin(&robot_from_file, &[]),
        &mut secrets,
        &mut stderr,
    );
    cached_secrets(&world, &mut secrets);

    // whoami and logout read the cached tokens too.
    let mut whoami = verbose(world.get_token_args());
    whoami[0] = "whoami".into();
    keep(&world.plugin(&whoami, &[]), &mut secrets, &mut stderr);
    let mut logout = verbose(world.get_token_args());
    logout[0] = "logout".into();
    logout.push("--keep-session".into());
    stderr.push_str(&world.plugin(&logout, &[]).stderr);

    // The authorization codes the browser delivered.
    let logins = world.wait_for_logins(1);
    for login in &logins {
        if let Some(code) = login["code"].as_str() {
            secrets.insert(code.to_string());
        }
        // The browser got exactly one argument: the authorization URL.
        assert_eq!(login["argv_count"], 1, "{login}");
        assert!(login["auth_params"]["client_id"].is_string(), "{login}");
    }
    assert!(
        secrets.len() >= 8,
        "too few secrets collected: {}",
        secrets.len()
    );
    assert!(stderr.contains("oidc-login: "), "the debug lines were on");

    for secret in &secrets {
        // On failure, name the line (with the secret cut out) rather than print the secret.
        if let Some(line) = stderr.lines().find(|l| l.contains(secret.as_str())) {
            panic!(
                "a secret ({} chars) reached stderr in: {}",
                secret.len(),
                line.replace(secret.as_str(), "<SECRET>")
            );
        }
    }
    // Files: only the cache may hold tokens, and (Unix) only with mode 0600 in a 0700
    // directory.
    let cache = world.cache_dir();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
    let mut files = Vec::new();
    files_under(world.dir.path(), &mut files);
    for file in files {
        let content = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        if file.starts_with(&cache) {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", file.display());
            }
            continue;
        }
        // The test's own logs record the codes on purpose (login.log): skip that one file.
        if file == world.login_log() {
            continue;
        }
        // The user's own secret files hold their secrets by design.
        if file == password_file || file == robot_file {
            continue;
        }
        for secret in &secrets {
            assert!(
                !content.contains(secret.as_str()),
                "a secret is in {}",
                file.display()
            );
        }
    }
}
