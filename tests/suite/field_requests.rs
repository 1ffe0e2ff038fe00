//! What kubelogin's users keep asking for (issue 34), through the real kubectl: every get-token
//! flag from the environment under the plugin's own prefix (kubelogin #1109), secrets out of
//! the kubeconfig's args (kubelogin #1088), machine-readable identity (`-o json|yaml`, as
//! Pinniped's `whoami`), and kubectl's credential plugin allowlist (kuberc, KEP-3104), with a
//! kubectl of the same release as the suite's kube-apiserver. Unix only, as the suite's
//! kubectl, API servers and owner-only file modes are (the Windows build is run under Wine by
//! tests/suite/platforms.rs).
#![cfg(unix)]

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{parse_yaml, peer, peer_version, user_info, Run, World, PLUGIN};

/// get-token's arguments for this world without `--flag…` (the environment is to give it).
fn without(mut args: Vec<String>, flag: &str) -> Vec<String> {
    args.retain(|a| !a.starts_with(flag));
    args
}

/// A file holding `secret` with `mode`, as a user would write it.
fn secret_file(world: &World, name: &str, secret: &str, mode: u32) -> PathBuf {
    let path = world.path(name);
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    path
}

fn token_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".token.json"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn the_environment_fills_in_the_flags_a_kubeconfig_leaves_out_and_the_kubeconfig_wins() {
    let world = World::new(300);
    // A team's shared kubeconfig: no cache directory in it; each person's environment
    // chooses one. The kubeconfig's own --listen-address wins over the environment's.
    let args = without(world.get_token_args(), "--token-cache-dir");
    let kubeconfig = world.kubeconfig(
        "kubeconfig",
        "client.authentication.k8s.io/v1",
        PLUGIN,
        &args,
    );
    let mine = world.path("my-cache");
    let mine_env = mine.display().to_string();
    let env = [
        ("KUBECTL_OIDC_LOGIN_TOKEN_CACHE_DIR", mine_env.as_str()),
        ("KUBECTL_OIDC_LOGIN_TOKEN_CACHE_STORAGE", "disk"),
        // Not a usable address: were it taken over the kubeconfig's, the login would fail.
        ("KUBECTL_OIDC_LOGIN_LISTEN_ADDRESS", "203.0.113.1:1"),
        // Generic names set for other programs change nothing (Azure/kubelogin #427).
        ("OIDC_CLIENT_ID", "someone-else"),
        ("CLIENT_ID", "someone-else"),
        ("AZURE_CLIENT_ID", "someone-else"),
        ("TOKEN_CACHE_DIR", "/nonexistent"),
    ];
    let run = world.kubectl(&kubeconfig, &["auth", "whoami", "-o", "json"], &env);
    run.assert_ok();
    assert_eq!(user_info(&run).0, "alice@example.com");
    assert_eq!(
        token_files(&mine),
        1,
        "the login is cached where the environment said"
    );
    assert!(
        !world.path("kubecache/oidc-login").exists(),
        "nothing in the default cache directory"
    );

    // -v1 says which value came from where; a secret's value never.
    let mut by_hand = args.clone();
    by_hand.push("-v1".into());
    let run = world.plugin(
        &by_hand,
        &[
            ("KUBECTL_OIDC_LOGIN_TOKEN_CACHE_DIR", mine_env.as_str()),
            ("KUBECTL_OIDC_LOGIN_TOKEN_CACHE_STORAGE", "disk"),
            ("KUBECTL_OIDC_LOGIN_PASSWORD", "hunter2-never-shown"),
        ],
    );
    run.assert_ok();
    assert!(
        run.stderr
            .contains("--token-cache-dir from $KUBECTL_OIDC_LOGIN_TOKEN_CACHE_DIR"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("--password from $KUBECTL_OIDC_LOGIN_PASSWORD (a secret: value not shown)"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("--listen-address from"),
        "{}",
        run.stderr
    );
    assert_eq!(world.logins().len(), 1, "the second run was a cache hit");

    // doctor names the sources too, the exec entry's own `env:` list included (kubectl hands
    // it to the plugin over its environment).
    let mut config: Value = serde_json::from_slice(&std::fs::read(&kubeconfig).unwrap()).unwrap();
    config["users"][0]["user"]["exec"]["env"] = serde_json::json!([
        {"name": "KUBECTL_OIDC_LOGIN_TOKEN_CACHE_STORAGE", "value": "disk"},
    ]);
    std::fs::write(&kubeconfig, serde_json::to_vec(&config).unwrap()).unwrap();
    let kubeconfig_env = kubeconfig.display().to_string();
    let doctor = world.plugin(
        &["doctor".into()],
        &[
            ("KUBECONFIG", kubeconfig_env.as_str()),
            ("KUBECTL_OIDC_LOGIN_TOKEN_CACHE_DIR", mine_env.as_str()),
        ],
    );
    for line in [
        "storage disk",
        "from the environment: --token-cache-dir from $KUBECTL_OIDC_LOGIN_TOKEN_CACHE_DIR",
        "from the environment: --token-cache-storage from $KUBECTL_OIDC_LOGIN_TOKEN_CACHE_STORAGE=\"disk\"",
        "cached login of alice@example.com",
    ] {
        assert!(doctor.stdout.contains(line), "{line}: {}", doctor.stdout);
    }
}

#[test]
fn a_malformed_value_in_the_environment_names_its_variable() {
    let world = World::new(300);
    let args = world.get_token_args();
    for (variable, value) in [
        ("KUBECTL_OIDC_LOGIN_GRANT_TYPE", "bogus"),
        ("KUBECTL_OIDC_LOGIN_SKIP_OPEN_BROWSER", "yes"),
        // A header may carry a credential: named, its value not shown.
        (
            "KUBECTL_OIDC_LOGIN_OIDC_REQUEST_HEADER",
            "Bearer-no-equals-sign",
        ),
        ("KUBECTL_OIDC_LOGIN_AUTHENTICATION_TIMEOUT_SEC", "soon"),
    ] {
        let run = world.plugin(&args, &[(variable, value)]);
        run.assert_failed();
        assert!(run.stderr.contains(variable), "{variable}: {}", run.stderr);
        assert!(!run.stderr.contains("Bearer"), "{}", run.stderr);
        assert_eq!(
            run.stderr
                .trim()
                .lines()
                .filter(|l| l.starts_with("error"))
                .count(),
            1,
            "{}",
            run.stderr
        );
    }
    assert!(world.logins().is_empty());
}

#[test]
fn the_password_comes_from_the_environment_or_an_owner_only_file_never_from_the_args() {
    let world = World::new(300);
    let mut args = world.grant_args("kubernetes-password", "password");
    args.push("--username=alice".into());
    args.push("--token-cache-storage=none".into());
    let kubeconfig = world.kubeconfig(
        "kubeconfig",
        "client.authentication.k8s.io/v1",
        PLUGIN,
        &args,
    );
    // CI: the password in a variable, kubectl with no terminal to prompt on.
    let run = world.kubectl(
        &kubeconfig,
        &["auth", "whoami", "-o", "json"],
        &[("KUBECTL_OIDC_LOGIN_PASSWORD", "secret")],
    );
    run.assert_ok();
    assert_eq!(user_info(&run).0, "alice@example.com");

    // From a file only its owner can read.
    let file = secret_file(&world, "password", "secret", 0o600);
    let mut with_file = args.clone();
    with_file.push(format!("--password-file={}", file.display()));
    let kubeconfig = world.kubeconfig(
        "kubeconfig-file",
        "client.authentication.k8s.io/v1",
        PLUGIN,
        &with_file,
    );
    let run = world.kubectl(&kubeconfig, &["auth", "whoami", "-o", "json"], &[]);
    run.assert_ok();
    assert_eq!(user_info(&run).0, "alice@example.com");

    // A file others can read is refused as ssh refuses such a key: one line, the fix, no
    // secret, and no request to the provider.
    let before = world.provider.count("/protocol/openid-connect/token");
    secret_file(&world, "password", "secret", 0o644);
    let run = world.plugin(&with_file, &[]);
    run.assert_failed();
    assert!(
        run.stderr
            .contains(&format!("chmod 600 {}", file.display())),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--password-file"), "{}", run.stderr);
    assert!(!run.stderr.contains("secret\n") && !run.stderr.contains(": secret"));
    assert_eq!(
        world.provider.count("/protocol/openid-connect/token"),
        before
    );
}

#[test]
fn the_client_secret_comes_from_a_file_and_setup_writes_the_file_not_the_secret() {
    let world = World::new(300);
    // A confidential client (client_secret_post) that signs in with the browser.
    let file = secret_file(&world, "client-secret", "post-secret", 0o600);
    let kubeconfig = world.cluster_only_kubeconfig();
    let kubeconfig_env = kubeconfig.display().to_string();
    let path = world.path_with_plugin();
    let env = [
        ("KUBECONFIG", kubeconfig_env.as_str()),
        ("PATH", path.as_str()),
    ];
    let mut setup = without(world.get_token_args(), "--oidc-client-id");
    setup[0] = "setup".into();
    setup.push("--oidc-client-id=kubernetes-post".into());
    setup.extend([
        format!("--oidc-client-secret-file={}", file.display()),
        "--write-kubeconfig".into(),
        "--user=confidential".into(),
        "--context=confidential".into(),
        "--cluster=test".into(),
    ]);
    let run = world.plugin(&setup, &env);
    run.assert_ok();
    assert!(
        run.stdout.contains("the client secret is read from a file"),
        "{}",
        run.stdout
    );
    let written = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(written.contains("--oidc-client-secret-file="), "{written}");
    assert!(!written.contains("post-secret\""), "{written}");
    assert!(!written.contains("--oidc-client-secret="), "{written}");
    let run = world.kubectl(
        &kubeconfig,
        &["--context=confidential", "auth", "whoami", "-o", "json"],
        &[("PATH", path.as_str())],
    );
    run.assert_ok();
    assert_eq!(user_info(&run).0, "alice@example.com");

    // Given on the command line, setup warns and names the other forms.
    let mut inline = setup[..setup.len() - 4].to_vec();
    inline.retain(|a| !a.starts_with("--oidc-client-secret-file"));
    inline.push("--oidc-client-secret=post-secret".into());
    let run = world.plugin(&inline, &env);
    run.assert_ok();
    assert!(
        run.stdout
            .contains("--oidc-client-secret-file=FILE (mode 600) or in $KUBECTL_OIDC_LOGIN_OIDC_CLIENT_SECRET"),
        "{}",
        run.stdout
    );

    // A group-readable secret file is refused.
    secret_file(&world, "client-secret", "post-secret", 0o640);
    let run = world.kubectl(
        &kubeconfig,
        &["--context=confidential", "auth", "whoami"],
        &[
            ("PATH", path.as_str()),
            ("KUBECTL_OIDC_LOGIN_FORCE_REFRESH", "true"),
        ],
    );
    run.assert_failed();
    assert!(run.stderr.contains("chmod 600"), "{}", run.stderr);
    assert!(!run.stderr.contains("post-secret"), "{}", run.stderr);
}

/// Every string of `value`, to look for tokens in.
fn strings(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::String(s) => into.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, into)),
        Value::Object(map) => map.values().for_each(|v| strings(v, into)),
        _ => {}
    }
}

/// The tokens cached in `dir` (every string of 40 characters or more in its files).
fn cached_tokens(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if let Ok(json) = serde_json::from_slice::<Value>(&std::fs::read(entry.path()).unwrap()) {
            strings(&json, &mut out);
        }
    }
    out.retain(|s| s.len() >= 40 && !s.contains('/'));
    out
}

fn assert_no_token(run: &Run, tokens: &[String]) {
    for token in tokens {
        assert!(
            !run.stdout.contains(token.as_str()),
            "a cached token ({} chars) is in the output",
            token.len()
        );
    }
}

#[test]
fn whoami_and_accounts_print_json_and_yaml_with_no_token_in_them() {
    let world = World::new(300);
    let kubeconfig = world.default_kubeconfig(&["--token-cache-storage=disk"]);
    world
        .kubectl(&kubeconfig, &["auth", "whoami"], &[])
        .assert_ok();
    // A token-exchange login beside it: the clusters it got tokens for are listed.
    let mut exchange = world.get_token_args();
    exchange.retain(|a| !a.starts_with("--oidc-client-id"));
    exchange.extend([
        "--oidc-client-id=kubernetes-exchange".to_string(),
        "--oidc-client-secret=exchange-secret".to_string(),
        "--token-cache-storage=disk".to_string(),
        "--token-exchange-audience=cluster-a".to_string(),
    ]);
    world.plugin(&exchange, &[]).assert_ok();
    let tokens = cached_tokens(&world.cache_dir());
    assert!(tokens.len() >= 3, "{tokens:?}");

    let mut whoami = world.get_token_args();
    whoami[0] = "whoami".into();
    whoami.extend([
        "--token-cache-storage=disk".into(),
        "-o".into(),
        "json".into(),
    ]);
    let run = world.plugin(&whoami, &[]);
    run.assert_ok();
    assert_no_token(&run, &tokens);
    let me = run.json();
    assert_eq!(me["schemaVersion"], 1);
    assert_eq!(me["kind"], "Login");
    assert_eq!(me["issuer"], world.provider.issuer.as_str());
    assert_eq!(me["client"], "kubernetes");
    assert_eq!(me["account"], Value::Null);
    assert_eq!(me["user"], "alice@example.com");
    assert_eq!(me["email"], "alice@example.com");
    assert!(
        me["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == "KubernetesAdministrators"),
        "{me}"
    );
    let expiry = me["idTokenExpiry"].as_str().unwrap();
    assert!(expiry.ends_with('Z') && expiry.len() == 20, "{expiry}");
    assert_eq!(me["refreshToken"]["cached"], true);
    assert_eq!(me["storage"]["mode"], "disk");
    assert_eq!(
        me["storage"]["directory"],
        world.cache_dir().display().to_string().as_str()
    );
    assert_eq!(me["clusters"], serde_json::json!([]));

    // YAML says the same.
    let yaml_args: Vec<String> = whoami
        .iter()
        .map(|a| {
            if a == "json" {
                "yaml".into()
            } else {
                a.clone()
            }
        })
        .collect();
    let run = world.plugin(&yaml_args, &[]);
    run.assert_ok();
    assert_no_token(&run, &tokens);
    assert_eq!(parse_yaml(&run.stdout), vec![me.clone()]);

    // Every login, the exchanged one with its cluster; `whoami --all` is the same list.
    let cache = format!("--token-cache-dir={}", world.cache_dir().display());
    let run = world.plugin(
        &[
            "accounts".into(),
            cache.clone(),
            "--token-cache-storage=disk".into(),
            "-o".into(),
            "json".into(),
        ],
        &[],
    );
    run.assert_ok();
    assert_no_token(&run, &tokens);
    let list = run.json();
    assert_eq!(list["schemaVersion"], 1);
    assert_eq!(list["kind"], "LoginList");
    let logins = list["logins"].as_array().unwrap();
    assert_eq!(logins.len(), 2, "{list}");
    assert!(logins.contains(&me), "{list}");
    let exchanged = logins
        .iter()
        .find(|l| l["client"] == "kubernetes-exchange")
        .unwrap();
    assert_eq!(exchanged["clusters"][0]["audience"], "cluster-a", "{list}");
    assert!(exchanged["clusters"][0]["expiry"].is_string(), "{list}");

    let run = world.plugin(
        &[
            "whoami".into(),
            "--all".into(),
            cache,
            "--token-cache-storage=disk".into(),
            "-o".into(),
            "yaml".into(),
        ],
        &[],
    );
    run.assert_ok();
    assert_eq!(parse_yaml(&run.stdout), vec![list]);
}

/// kubectl of the suite's Kubernetes release (scripts/peers builds it beside kube-apiserver).
fn kubectl_with_kuberc() -> Option<PathBuf> {
    peer("kubectl", &peer_version("KUBE_APISERVER"))
}

fn kuberc(world: &World, name: &str, body: &str) -> String {
    let path = world.path(name);
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

#[test]
fn kubectl_runs_the_plugin_only_when_its_kuberc_allowlist_names_it_and_doctor_says_so() {
    let Some(kubectl) = kubectl_with_kuberc() else {
        return;
    };
    let world = World::new(300);
    let kubeconfig = world.default_kubeconfig(&[]);
    let kubeconfig_env = kubeconfig.display().to_string();
    // PATH: this kubectl first (doctor and setup ask the kubectl on PATH about kuberc).
    let bin = world.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(&kubectl, bin.join("kubectl")).unwrap();
    let path = format!("{}:{}", bin.display(), world.path_with_plugin());
    let run = |kuberc: &str, args: &[&str]| {
        let mut command = std::process::Command::new(&kubectl);
        command
            .arg(format!("--kubeconfig={kubeconfig_env}"))
            .args(args);
        world.run(command, &[("KUBERC", kuberc), ("PATH", path.as_str())])
    };
    let header = "apiVersion: kubectl.config.k8s.io/v1beta1\nkind: Preference\n";
    let allowlist = |name: &str, command: &str| {
        kuberc(
            &world,
            name,
            &format!(
                "{header}credentialPluginPolicy: Allowlist\ncredentialPluginAllowlist:\n- command: {command}\n"
            ),
        )
    };
    let run_doctor = |kuberc: &str| {
        world.plugin(
            &["doctor".into()],
            &[
                ("KUBECONFIG", kubeconfig_env.as_str()),
                ("KUBERC", kuberc),
                ("PATH", path.as_str()),
            ],
        )
    };

    // docs/troubleshooting.md's entry: the exec entry's command (here the plugin by absolute path).
    let allowed = allowlist("kuberc-allowed", PLUGIN);
    let ok = run(&allowed, &["auth", "whoami", "-o", "json"]);
    ok.assert_ok();
    assert_eq!(user_info(&ok).0, "alice@example.com");

    // An allowlist of other plugins: kubectl refuses to run this one, and says so.
    let others = allowlist("kuberc-others", "gke-gcloud-auth-plugin");
    let refused = run(&others, &["auth", "whoami", "-o", "json"]);
    refused.assert_failed();
    assert!(
        refused
            .stderr
            .contains("is not permitted by the credential plugin allowlist"),
        "{}",
        refused.stderr
    );

    // doctor reads the kuberc kubectl reads and names the entry to add.
    let doctor = run_doctor(&others);
    doctor.assert_failed();
    assert!(
        doctor.stdout.contains("credentialPluginPolicy Allowlist")
            && doctor
                .stdout
                .contains(&format!("[{{command: \"{PLUGIN}\"}}]")),
        "{}",
        doctor.stdout
    );
    let doctor = run_doctor(&allowed);
    assert!(
        doctor
            .stdout
            .contains(&format!("its allowlist names {PLUGIN}")),
        "{}",
        doctor.stdout
    );

    // The entry by the plugin's name matches an exec entry with its absolute path: kubectl
    // resolves both on PATH (exec.LookPath) and compares the paths; doctor does the same.
    let by_name = allowlist("kuberc-by-name", "kubectl-oidc_login");
    run(&by_name, &["auth", "whoami"]).assert_ok();
    let doctor = run_doctor(&by_name);
    assert!(
        doctor
            .stdout
            .contains(&format!("its allowlist names {PLUGIN}")),
        "{}",
        doctor.stdout
    );

    // kubelogin's style of entry (`command: kubectl`, `args: [oidc-login, …]`) needs kubectl
    // itself allowed, as docs/troubleshooting.md says.
    let mut args = vec!["oidc-login".to_string()];
    args.extend(world.get_token_args());
    let kubelogin_style = world.kubeconfig(
        "kubeconfig-kubectl",
        "client.authentication.k8s.io/v1",
        "kubectl",
        &args,
    );
    let kubectl_allowed = allowlist("kuberc-kubectl", "kubectl");
    let style_run = |kuberc: &str| {
        let mut command = std::process::Command::new(&kubectl);
        command
            .arg(format!("--kubeconfig={}", kubelogin_style.display()))
            .args(["auth", "whoami"]);
        world.run(command, &[("KUBERC", kuberc), ("PATH", path.as_str())])
    };
    style_run(&kubectl_allowed).assert_ok();
    style_run(&by_name).assert_failed();

    // setup says it when a policy is set: the entry it prints runs `kubectl oidc-login`.
    let mut setup = world.get_token_args();
    setup[0] = "setup".into();
    let run = world.plugin(
        &setup,
        &[("KUBERC", others.as_str()), ("PATH", path.as_str())],
    );
    run.assert_ok();
    assert!(
        run.stdout
            .contains("kubectl's kuberc sets credentialPluginPolicy Allowlist: kubectl will refuse the exec entry, which runs kubectl")
            && run.stdout.contains("[{command: \"kubectl\"}]"),
        "{}",
        run.stdout
    );
}
