//! The third hardening round (issue 44), each attack performed for real: another local user
//! (`nobody`, through `setpriv`, while the tests run as root) swaps a secret file for a FIFO
//! or a symlink to the user's own `~/.git-credentials`, races a directory with a FIFO into the
//! place of a shared cache while `whoami -o json` lists cluster tokens, and plants a symlink or
//! a file of his own where `setup --write-kubeconfig` writes; a hostile provider puts control
//! characters in claims that `-o json|yaml` must escape (checked with PyYAML and the npm
//! `yaml` package); the browser must not inherit secrets given in the environment; and a
//! warning about a weakened setting names where it came from.

#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{output_with_stdin, yaml_to_json, Run, World};
use crate::shared_cache::{as_nobody, bounded, chmod, is_root, key, nobodys_shared_dir, s, NOBODY};

/// Says why a test that needs a second real user did not run (never a silent pass).
fn needs_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    crate::common::not_built_here(&format!(
        "not built here: hardening3::{test} (not run here: needs root to act as the user and as another user)"
    ));
    false
}

/// A team's directory that belongs to the other user, who let everyone write it (no sticky
/// bit): he may rename and replace anything in it.
fn team_dir(world: &World) -> PathBuf {
    chmod(&world.path(""), 0o755);
    let team = world.path("team");
    std::fs::create_dir_all(&team).unwrap();
    std::os::unix::fs::chown(&team, Some(NOBODY), Some(NOBODY)).unwrap();
    chmod(&team, 0o777);
    team
}

fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    chmod(path, 0o600);
}

/// Item 1: whoever may write the secret file's directory swaps the file for a FIFO; the
/// plugin must fail at once with a line naming the file, not wait for him to open the other
/// end (kubectl, and a shell prompt calling it, would hang).
#[test]
fn a_secret_file_swapped_for_a_fifo_fails_at_once() {
    if !needs_root("a_secret_file_swapped_for_a_fifo_fails_at_once") {
        return;
    }
    let world = World::new(300);
    let team = team_dir(&world);
    let secret = team.join("client-secret");
    let password = team.join("password");
    let mut robot = world.grant_args("robot", "client-credentials");
    robot.push(format!("--oidc-client-secret-file={}", s(&secret)));
    let mut by_password = world.grant_args("kubernetes-password", "password");
    by_password.extend([
        "--username=alice".into(),
        format!("--password-file={}", s(&password)),
    ]);
    let robot_env = world.grant_args("robot", "client-credentials");
    let variable = ("KUBECTL_OIDC_LOGIN_OIDC_CLIENT_SECRET_FILE", s(&secret));
    let cases = [
        ("--oidc-client-secret-file", &secret, &robot, None),
        ("--password-file", &password, &by_password, None),
        (
            "$KUBECTL_OIDC_LOGIN_OIDC_CLIENT_SECRET_FILE",
            &secret,
            &robot_env,
            Some(variable),
        ),
    ];
    let mut failures = Vec::new();
    for (given, file, args, env) in cases {
        write_private(file, "robot-secret\n");
        as_nobody(&[
            "sh",
            "-c",
            &format!("rm -f '{0}' && mkfifo -m 0666 '{0}'", s(file)),
        ]);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        match bounded(&world, args, &env, Duration::from_secs(30)) {
            Err(e) => failures.push(format!("{given} as another user's FIFO: {e}")),
            Ok(run) => {
                eprintln!("$ get-token with {given} a FIFO\n{}", run.stderr);
                if run.ok() || !run.stdout.is_empty() {
                    failures.push(format!("{given}: the run did not fail: {}", run.stdout));
                }
                if !(run.stderr.contains(&s(file)) && run.stderr.contains("FIFO")) {
                    failures.push(format!("{given}: no line naming the FIFO: {}", run.stderr));
                }
            }
        }
        std::fs::remove_file(file).unwrap();
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(world.provider.client_requests().is_empty());
}

/// Item 2: another user links the secret file's name to the user's own `~/.git-credentials`
/// (mode 600, so owner and mode pass); its first line would go to the token endpoint as the
/// client secret. Here it is the robot's real secret, so a run that reads it signs in.
/// Beside it, what else a secret file must not be: another name of a file (a hard link) and
/// far larger than any secret.
#[test]
fn a_secret_file_that_is_another_name_of_the_users_own_file_is_refused() {
    if !needs_root("a_secret_file_that_is_another_name_of_the_users_own_file_is_refused") {
        return;
    }
    let world = World::new(300);
    let team = team_dir(&world);
    let home = world.path("home");
    std::fs::create_dir_all(&home).unwrap();
    let credentials = home.join(".git-credentials");
    write_private(
        &credentials,
        "robot-secret\nhttps://alice:hunter2@git.example.com\n",
    );
    let symlink = team.join("client-secret");
    as_nobody(&["ln", "-s", &s(&credentials), &s(&symlink)]);
    // fs.protected_hardlinks=1 (the default here) keeps another user from linking a file he
    // cannot write; on a host with it off he could. Stand-in: the link is made by root.
    let hard = team.join("hard-linked-secret");
    std::fs::hard_link(&credentials, &hard).unwrap();
    let large = home.join("large-secret");
    write_private(&large, &format!("robot-secret\n{}\n", "x".repeat(1 << 20)));
    let mut failures = Vec::new();
    for (file, why) in [
        (&symlink, "symbolic link"),
        (&hard, "hard links"),
        (&large, "larger than"),
    ] {
        let mut args = world.grant_args("robot", "client-credentials");
        args.push(format!("--oidc-client-secret-file={}", s(file)));
        args.push("--token-cache-storage=none".into());
        let run = world.plugin(&args, &[]);
        eprintln!(
            "$ get-token --oidc-client-secret-file={}\n{}",
            s(file),
            run.stderr
        );
        if run.ok() || !run.stdout.is_empty() {
            failures.push(format!(
                "the secret was read through {} ({why}) and sent to the token endpoint",
                s(file)
            ));
        } else if !(run.stderr.contains(why) && run.stderr.contains(&s(file))) {
            failures.push(format!(
                "{}: no line saying {why:?}: {}",
                s(file),
                run.stderr
            ));
        }
        assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        world.provider.client_requests().is_empty(),
        "{:?}",
        world.provider.client_requests()
    );
}

/// Item 3: secrets given in `KUBECTL_OIDC_LOGIN_*` variables must not reach the browser's
/// environment, nor what it starts, whichever way the browser is launched
/// (`--browser-command`, `$BROWSER`, the desktop's `xdg-open`). The "browser" is a script that
/// records its environment and its child's, then runs the scripted browser.
#[test]
fn the_browser_inherits_none_of_the_secrets_given_in_the_environment() {
    let world = World::new(300);
    let dumps = world.path("dumps");
    let bin = world.path("bin");
    std::fs::create_dir_all(&dumps).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    let login = crate::common::support_dir().join("login.mjs");
    let script = format!(
        "#!/bin/sh\ncat /proc/self/environ > \"$DUMP_DIR/$$.browser\"\nsh -c 'cat /proc/self/environ' > \"$DUMP_DIR/$$.child\"\nexec node '{}' \"$@\"\n",
        s(&login)
    );
    let browser = bin.join("xdg-open");
    std::fs::write(&browser, script).unwrap();
    chmod(&browser, 0o755);
    let secrets = [
        ("KUBECTL_OIDC_LOGIN_OIDC_CLIENT_SECRET", "post-secret"),
        (
            "KUBECTL_OIDC_LOGIN_PASSWORD",
            "password-h3-from-the-environment",
        ),
        (
            "KUBECTL_OIDC_LOGIN_OIDC_REQUEST_HEADER",
            "X-Team-Token=header-h3-from-the-environment",
        ),
    ];
    let path = format!("{}:{}", s(&bin), std::env::var("PATH").unwrap_or_default());
    let dump_dir = s(&dumps);
    let launchers = [
        ("--browser-command", vec![], true),
        (
            "$BROWSER",
            vec![("BROWSER", browser.to_str().unwrap())],
            false,
        ),
        (
            "xdg-open",
            vec![("DISPLAY", ":0"), ("PATH", path.as_str())],
            false,
        ),
    ];
    for (i, (launcher, launch_env, flag)) in launchers.into_iter().enumerate() {
        let mut args = world.grant_args("kubernetes-post", "authcode");
        args.retain(|a| !a.starts_with("--browser-command") && !a.starts_with("--token-cache-dir"));
        args.push(format!(
            "--token-cache-dir={}",
            s(&world.path(&format!("cache-{i}")))
        ));
        if flag {
            args.push(format!("--browser-command={}", s(&browser)));
        }
        let mut env: Vec<(&str, &str)> = secrets.to_vec();
        env.push(("DUMP_DIR", dump_dir.as_str()));
        env.extend(launch_env);
        let run = world.plugin(&args, &env);
        eprintln!("$ get-token (browser by {launcher})\n{}", run.stderr);
        run.assert_ok();
        let mut seen = 0;
        for entry in std::fs::read_dir(&dumps).unwrap() {
            let path = entry.unwrap().path();
            let environment = std::fs::read(&path).unwrap();
            let environment = String::from_utf8_lossy(&environment).replace('\0', "\n");
            for (variable, value) in secrets {
                let secret = value.rsplit('=').next().unwrap();
                assert!(
                    !environment.contains(secret),
                    "{} started by {launcher} has {variable}'s secret in its environment",
                    path.file_name().unwrap().to_string_lossy()
                );
            }
            std::fs::remove_file(&path).unwrap();
            seen += 1;
        }
        assert_eq!(
            seen, 2,
            "{launcher}: the browser and its child ran once each"
        );
    }
    assert_eq!(world.wait_for_logins(3).len(), 3);
}

/// Claims a hostile provider (or any LDAP attribute its users may set) puts in an ID token:
/// every character class YAML forbids or folds, and the terminal controls of item 5.
fn hostile_claims() -> Value {
    json!({
        "email": "alice\u{9b}31m@example.com",
        "groups": [
            "c1 \u{80} \u{85} \u{9b}2J \u{9f}",
            "separators \u{2028} \u{2029}",
            "bidi \u{202e}evil\u{202c} \u{2066}x\u{2069} \u{200f}",
            "c0 \u{1b}]0;pwned\u{7} \u{7f} \t \r \n",
            "bom \u{feff} nonchars \u{fffe}\u{ffff}",
            "quotes \" \\ ' : # - {} [] & * ! | > % @ `",
            "plain ünïcode ✓ 𝄞",
        ],
    })
}

/// Characters that must not appear raw in `-o json|yaml` output.
fn raw_hostile(text: &str) -> Vec<String> {
    text.chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}')
        })
        .map(|c| format!("U+{:04X}", c as u32))
        .collect()
}

/// `text` parsed by PyYAML, as JSON.
fn parse_with_pyyaml(text: &str) -> Result<Value, String> {
    let out = output_with_stdin(
        Command::new("python3").args([
            "-c",
            "import sys, json, yaml\nsys.stdout.write(json.dumps(yaml.safe_load(sys.stdin.buffer.read().decode('utf-8'))))",
        ]),
        text.as_bytes(),
    );
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(stderr.lines().last().unwrap_or_default().to_string());
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

/// `text` parsed by the npm `yaml` package (what kubectl-style tools in JavaScript use).
fn parse_with_npm_yaml(text: &str) -> Result<Value, String> {
    let out = yaml_to_json(text);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(stderr
            .lines()
            .find(|l| l.contains("Error"))
            .unwrap_or_default()
            .to_string());
    }
    let docs: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    Ok(docs.into_iter().next().unwrap_or_default())
}

/// Items 4 and 5: `whoami -o json|yaml` and `accounts -o json|yaml` of a login whose claims
/// carry control characters. The output holds none raw, and every parser reads back exactly
/// the claims: PyYAML and the npm `yaml` package for YAML, serde_json for JSON.
#[test]
fn machine_readable_output_escapes_hostile_claims_and_parses_back_to_them() {
    let claims = hostile_claims();
    let world = World::with_provider(&[("OP_ALICE_CLAIMS", claims.to_string())]);
    world.plugin(&world.get_token_args(), &[]).assert_ok();
    let mut whoami = world.get_token_args();
    whoami[0] = "whoami".into();
    let accounts = vec![
        "accounts".to_string(),
        format!("--token-cache-dir={}", s(&world.cache_dir())),
    ];
    let mut failures = Vec::new();
    for (command, base) in [("whoami", &whoami), ("accounts", &accounts)] {
        for format in ["json", "yaml"] {
            let mut args = base.clone();
            args.extend(["-o".to_string(), format.to_string()]);
            let run = world.plugin(&args, &[]);
            run.assert_ok();
            let what = format!("{command} -o {format}");
            let raw = raw_hostile(&run.stdout);
            if !raw.is_empty() {
                failures.push(format!("{what} wrote raw {}", raw.join(" ")));
            }
            let parsed: Vec<(&str, Result<Value, String>)> = if format == "json" {
                vec![(
                    "serde_json",
                    serde_json::from_str(&run.stdout).map_err(|e| e.to_string()),
                )]
            } else {
                vec![
                    ("PyYAML", parse_with_pyyaml(&run.stdout)),
                    ("npm yaml", parse_with_npm_yaml(&run.stdout)),
                ]
            };
            for (parser, value) in parsed {
                let login = match value {
                    Ok(v) if command == "accounts" => v["logins"][0].clone(),
                    Ok(v) => v,
                    Err(e) => {
                        failures.push(format!("{parser} refuses {what}: {e}"));
                        continue;
                    }
                };
                for claim in ["groups", "email"] {
                    if login[claim] != claims[claim] {
                        failures.push(format!(
                            "{parser} reads {what}'s {claim} as {}, not {}",
                            login[claim], claims[claim]
                        ));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `whoami -o json` for the world's login, with `env`, bounded (a hang is a failure).
fn whoami_json(world: &World, args: &[String], env: &[(&str, &str)]) -> Result<Run, String> {
    let mut args = args.to_vec();
    args[0] = "whoami".into();
    args.extend(["-o".to_string(), "json".to_string()]);
    bounded(world, &args, env, Duration::from_secs(20))
}

/// Item 6, in a cache directory left open (mode 777): another user plants a FIFO named like a
/// cluster token of the login. `whoami -o json` lists cluster tokens; it must not block on it.
#[test]
fn whoami_json_never_blocks_on_a_fifo_named_like_a_cluster_token() {
    if !needs_root("whoami_json_never_blocks_on_a_fifo_named_like_a_cluster_token") {
        return;
    }
    let world = World::new(300);
    world.plugin(&world.get_token_args(), &[]).assert_ok();
    chmod(&world.path(""), 0o755);
    chmod(&world.cache_dir(), 0o777);
    let id = key(&world, "kubernetes").id().to_string();
    let fifo = world.cache_dir().join(format!("{id}-planted.token.json"));
    as_nobody(&["mkfifo", "-m", "0666", &s(&fifo)]);
    let run = whoami_json(&world, &world.get_token_args(), &[]).unwrap();
    run.assert_ok();
    assert_eq!(run.json()["clusters"], json!([]), "{}", run.stdout);
}

/// Item 6 as the issue ran it: the other user owns the parent of a shared KUBECACHEDIR and
/// swaps the user's `oidc-login` with a directory of his own (renameat2 RENAME_EXCHANGE, in a
/// loop) holding a FIFO named like a cluster token, while the user runs `whoami -o json`.
/// Every run must end: one that read the listing by path after opening the directory would
/// sooner or later block on the FIFO.
#[test]
fn whoami_json_never_lists_a_directory_raced_into_the_caches_place() {
    if !needs_root("whoami_json_never_lists_a_directory_raced_into_the_caches_place") {
        return;
    }
    let world = World::new(300);
    let shared = nobodys_shared_dir(&world);
    let args = crate::shared_cache::shared_args(&world, "kubernetes");
    let shared_env = s(&shared);
    let env = [("KUBECACHEDIR", shared_env.as_str())];
    world.plugin(&args, &env).assert_ok();
    let id = key(&world, "kubernetes").id().to_string();
    let stop = world.path("stop-attacker");
    let name = format!("{id}-raced.token.json");
    let mut attacker = crate::shared_cache::swap_in_a_loop(
        &shared,
        "os.mkdir(decoy, 0o755)\nos.mkfifo(os.path.join(decoy, arg), 0o666)",
        &name,
        &stop,
    );
    let mut outcome = Ok(0);
    let mut answered = 0;
    for run in 0..60 {
        match whoami_json(&world, &args, &env) {
            Ok(r) => answered += usize::from(r.ok()),
            Err(e) => {
                outcome = Err(format!("run {run} of whoami -o json: {e}"));
                break;
            }
        }
    }
    std::fs::write(&stop, "").unwrap();
    let _ = attacker.wait();
    // The attacker's FIFO, left in whichever directory holds it now, must not block the
    // cleanup of the world either.
    for dir in ["oidc-login", "decoy"] {
        let _ = std::fs::remove_file(shared.join(dir).join(&name));
    }
    outcome.unwrap();
    eprintln!("{answered} of 60 runs of whoami -o json answered while the directory was swapped");
}

/// Item 7: the warning about a weakened setting says where the setting came from, so the user
/// can find it: the variable when the environment gave it, the flag when the command line did.
#[test]
fn the_insecure_tls_warning_names_its_source() {
    let world = World::new(300);
    let variable = "KUBECTL_OIDC_LOGIN_INSECURE_SKIP_TLS_VERIFY";
    let warning = |run: &Run| -> String {
        run.stderr
            .lines()
            .find(|l| l.starts_with("warning:") && l.contains("not verified"))
            .unwrap_or_else(|| panic!("no warning about TLS verification: {}", run.stderr))
            .to_string()
    };
    let from_env = world.plugin(&world.get_token_args(), &[(variable, "true")]);
    from_env.assert_ok();
    let line = warning(&from_env);
    assert!(line.contains(&format!("${variable}")), "{line}");

    let mut args = world.get_token_args();
    args.push("--insecure-skip-tls-verify".into());
    args.push("--force-refresh".into());
    let from_flag = world.plugin(&args, &[]);
    from_flag.assert_ok();
    let line = warning(&from_flag);
    assert!(line.contains("--insecure-skip-tls-verify"), "{line}");
    assert!(!line.contains(variable), "{line}");
}

/// The Also of issue 44: `setup --write-kubeconfig` where another user can reach the file.
/// (a) In a shared sticky directory (like /tmp; fs.protected_symlinks is 0 here, as on many
/// hosts) he plants the kubeconfig's name as a symlink to the user's own ~/.kube/config; (b)
/// in a team directory he owns he replaces the user's kubeconfig with a file of his own;
/// (c) the user's own kubeconfig sits in a directory others may write, where its temp files
/// and the file itself can be swapped while setup rewrites it. Each is refused before the
/// login, naming the file, and the user's real kubeconfig stays as it was. The user's own
/// symlink (dotfiles) keeps working.
#[test]
fn setup_never_writes_a_kubeconfig_another_user_can_steer() {
    if !needs_root("setup_never_writes_a_kubeconfig_another_user_can_steer") {
        return;
    }
    let world = World::new(300);
    chmod(&world.path(""), 0o755);
    let real = world.cluster_only_kubeconfig();
    let home_config = world.path("home/.kube/config");
    std::fs::create_dir_all(home_config.parent().unwrap()).unwrap();
    std::fs::copy(&real, &home_config).unwrap();
    let before = std::fs::read(&home_config).unwrap();
    let shared = world.path("shared-tmp");
    std::fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o1777);
    let team = team_dir(&world);

    let planted = shared.join("kubeconfig");
    as_nobody(&["ln", "-s", &s(&home_config), &s(&planted)]);
    let theirs = team.join("theirs");
    std::fs::copy(&real, world.path("copy")).unwrap();
    as_nobody(&["cp", &s(&world.path("copy")), &s(&theirs)]);
    as_nobody(&["chmod", "0666", &s(&theirs)]);
    let open_dir = team.join("mine");
    std::fs::copy(&real, &open_dir).unwrap();
    chmod(&open_dir, 0o600);

    let path = world.path_with_plugin();
    let mut args = world.get_token_args();
    args[0] = "setup".into();
    args.extend(
        [
            "--write-kubeconfig",
            "--user=alice",
            "--context=oidc-test",
            "--cluster=test",
        ]
        .map(String::from),
    );
    let mut failures = Vec::new();
    for (case, kubeconfig, why) in [
        ("a symlink another user planted", &planted, "symbolic link"),
        ("another user's file", &theirs, "belongs to"),
        (
            "a directory others may write",
            &open_dir,
            "others may write",
        ),
    ] {
        let kubeconfig_env = s(kubeconfig);
        let logins = world.logins().len();
        let run = world.plugin(
            &args,
            &[
                ("KUBECONFIG", kubeconfig_env.as_str()),
                ("PATH", path.as_str()),
            ],
        );
        eprintln!("$ setup --write-kubeconfig into {case}\n{}", run.stderr);
        if std::fs::read(&home_config).unwrap() != before {
            failures.push(format!("setup wrote into ~/.kube/config through {case}"));
            std::fs::copy(&real, &home_config).unwrap();
        }
        if run.ok() {
            failures.push(format!("setup wrote the kubeconfig in {case}"));
        } else if !(run.stderr.contains(why) && run.stderr.contains(&kubeconfig_env)) {
            failures.push(format!("{case}: no line saying {why:?}: {}", run.stderr));
        }
        if world.logins().len() != logins {
            failures.push(format!("{case}: setup signed in before refusing"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The user's own symlink into a private directory of theirs is followed, as kubectl does.
    let dotfiles = world.path("home/dotfiles");
    std::fs::create_dir_all(&dotfiles).unwrap();
    chmod(&dotfiles, 0o700);
    let target = dotfiles.join("kubeconfig");
    std::fs::copy(&real, &target).unwrap();
    let link = world.path("home/.kube/linked");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let link_env = s(&link);
    let run = world.plugin(
        &args,
        &[("KUBECONFIG", link_env.as_str()), ("PATH", path.as_str())],
    );
    run.assert_ok();
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let written = std::fs::read_to_string(&target).unwrap();
    assert!(written.contains("oidc-test"), "{written}");
}
