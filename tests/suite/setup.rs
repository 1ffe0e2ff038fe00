//! `setup`, `logout`, `whoami`, `clean`, completions and the man page, against the real
//! provider and the real kubectl. Every diagnostic is triggered by a provider configured wrongly
//! on purpose (tests/support/provider.mjs reads OP_* settings).

use crate::common::{section, World};

fn setup_args(world: &World, extra: &[&str]) -> Vec<String> {
    let mut args = world.get_token_args();
    args[0] = "setup".into();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[test]
fn setup_prints_claims_apiserver_settings_rbac_and_the_exec_entry() {
    let world = World::new(300);
    let run = world.plugin(&setup_args(&world, &[]), &[]);
    run.assert_ok();
    let report = &run.stdout;
    assert!(
        report.contains("email:    alice@example.com (verified)"),
        "{report}"
    );
    assert!(
        report.contains("groups:   KubernetesAdministrators, developers"),
        "{report}"
    );
    assert!(
        report.contains("Use `email` as the username claim and `groups` as the groups claim"),
        "{report}"
    );
    for flag in [
        format!("--oidc-issuer-url={}", world.provider.issuer),
        "--oidc-client-id=kubernetes".into(),
        "--oidc-username-claim=email".into(),
        "--oidc-groups-claim=groups".into(),
        "--oidc-groups-prefix=oidc:".into(),
    ] {
        assert!(report.contains(&flag), "{flag} missing: {report}");
    }

    let authn = &crate::common::parse_yaml(section(report, "this FILE:\n", "## 3."))[0];
    assert_eq!(authn["kind"], "AuthenticationConfiguration");
    assert_eq!(
        authn["jwt"][0]["issuer"]["url"],
        world.provider.issuer.as_str()
    );
    assert_eq!(authn["jwt"][0]["issuer"]["audiences"][0], "kubernetes");
    assert_eq!(
        authn["jwt"][0]["claimMappings"]["username"]["claim"],
        "email"
    );
    assert_eq!(
        authn["jwt"][0]["claimMappings"]["groups"]["prefix"],
        "oidc:"
    );

    let binding = &crate::common::parse_yaml(section(report, "## 3. RBAC\n", "## 4."))[0];
    assert_eq!(binding["kind"], "ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], "cluster-admin");
    assert_eq!(binding["subjects"][0]["kind"], "Group");
    assert_eq!(
        binding["subjects"][0]["name"],
        "oidc:KubernetesAdministrators"
    );

    let exec = section(report, "## 4. kubeconfig\n", "## 5.");
    assert!(
        exec.contains("kubectl config set-credentials oidc"),
        "{exec}"
    );
    assert!(
        exec.contains(&format!(
            "--exec-arg=--oidc-issuer-url={}",
            world.provider.issuer
        )),
        "{exec}"
    );
    let diagnostics = &report[report.find("## 5. Diagnostics").unwrap()..];
    for ok in [
        "enforces PKCE",
        "supports PKCE with S256",
        "accepts client kubernetes",
        "carries groups",
    ] {
        assert!(diagnostics.contains(ok), "{ok}: {diagnostics}");
    }
    // The test provider serves plain http, which the API server would refuse: the one
    // warning.
    let warnings: Vec<&str> = diagnostics
        .lines()
        .filter(|l| l.trim_start().starts_with("warning"))
        .collect();
    assert_eq!(warnings.len(), 1, "{diagnostics}");
    assert!(warnings[0].contains("is plain http"), "{diagnostics}");
    assert!(
        diagnostics.contains("kube-apiserver accepts only https issuers"),
        "{diagnostics}"
    );
    assert_eq!(world.wait_for_logins(1).len(), 1);
}

#[test]
fn setup_writes_a_kubeconfig_that_kubectl_then_uses() {
    let world = World::new(300);
    let kubeconfig = world.cluster_only_kubeconfig();
    let kubeconfig_env = kubeconfig.display().to_string();
    let path = world.path_with_plugin();
    let env = [
        ("KUBECONFIG", kubeconfig_env.as_str()),
        ("PATH", path.as_str()),
    ];

    let run = world.plugin(
        &setup_args(
            &world,
            &[
                "--write-kubeconfig",
                "--user=alice",
                "--context=oidc-test",
                "--cluster=test",
            ],
        ),
        &env,
    );
    run.assert_ok();
    assert!(
        run.stderr.contains("Wrote context \"oidc-test\""),
        "{}",
        run.stderr
    );

    let mut command = std::process::Command::new(crate::common::kubectl_path());
    command
        .args(["--context=oidc-test", "auth", "whoami", "-o", "json"])
        .envs(world.env())
        .env("KUBECONFIG", &kubeconfig_env)
        .env("PATH", &path)
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");
    let whoami = crate::common::run_with_timeout(command, std::time::Duration::from_secs(60));
    whoami.assert_ok();
    let me = whoami.json();
    assert_eq!(me["status"]["userInfo"]["username"], "alice@example.com");
    // setup's login is the one kubectl uses: no second browser login.
    assert_eq!(world.wait_for_logins(1).len(), 1);

    // An app started from a desktop (Lens, an IDE) has a PATH without ~/.local/bin or
    // ~/.cargo/bin: the written entry runs the plugin by absolute path, so it still works.
    let mut command = std::process::Command::new(crate::common::kubectl_path_absolute());
    command
        .args(["--context=oidc-test", "auth", "whoami", "-o", "json"])
        .envs(world.env())
        .env("KUBECONFIG", &kubeconfig_env)
        .env("PATH", "/usr/bin:/bin")
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");
    let desktop = crate::common::run_with_timeout(command, std::time::Duration::from_secs(60));
    desktop.assert_ok();
    assert_eq!(
        desktop.json()["status"]["userInfo"]["username"],
        "alice@example.com"
    );
}

/// Runs setup against a provider started with `envs`, returning the run.
fn setup_with_provider(
    envs: &[(&str, String)],
    issuer_suffix: Option<&str>,
) -> (World, crate::common::Run) {
    let world = World::with_provider(envs);
    let mut args = setup_args(&world, &[]);
    if let Some(suffix) = issuer_suffix {
        args[1] = format!(
            "--oidc-issuer-url={}",
            suffix.replace("ISSUER", &world.provider.issuer)
        );
    }
    let run = world.plugin(&args, &[]);
    (world, run)
}

#[test]
fn setup_finds_nothing_to_fix_at_a_well_configured_https_provider() {
    let world = World::with_https_provider(300);
    let ca = format!(
        "--certificate-authority={}",
        world.provider_ca.as_ref().unwrap().display()
    );
    let run = world.plugin(&setup_args(&world, &[&ca]), &[]);
    run.assert_ok();
    let diagnostics = &run.stdout[run.stdout.find("## 5. Diagnostics").unwrap()..];
    assert!(!diagnostics.contains("warning"), "{diagnostics}");
    assert!(!diagnostics.contains("error"), "{diagnostics}");
    assert_eq!(
        diagnostics
            .lines()
            .filter(|l| l.trim_start().starts_with("ok"))
            .count(),
        5,
        "{diagnostics}"
    );
    // The printed exec entry carries the CA, so kubectl's calls trust the provider too.
    assert!(
        run.stdout.contains(&format!("--exec-arg={ca}")),
        "{}",
        run.stdout
    );
}

#[test]
fn diagnostics_name_a_wrong_realm() {
    let (_world, run) = setup_with_provider(&[], Some("ISSUER-typo"));
    run.assert_failed();
    assert!(run.stderr.contains("HTTP 404"), "{}", run.stderr);
    assert!(
        run.stderr.contains("check the realm name"),
        "{}",
        run.stderr
    );
}

#[test]
fn diagnostics_name_an_issuer_with_a_trailing_slash() {
    let (_world, run) = setup_with_provider(&[], Some("ISSUER/"));
    run.assert_failed();
    assert!(run.stderr.contains("ends with a slash"), "{}", run.stderr);
    assert!(
        run.stderr.contains("use exactly the `issuer`"),
        "{}",
        run.stderr
    );
}

#[test]
fn diagnostics_name_https_against_an_http_provider() {
    let world = World::new(300);
    let https = world.provider.issuer.replace("http://", "https://");
    let mut args = setup_args(&world, &[]);
    args[1] = format!("--oidc-issuer-url={https}");
    let run = world.plugin(&args, &[]);
    run.assert_failed();
    assert!(run.stderr.contains("http vs https"), "{}", run.stderr);
}

#[test]
fn diagnostics_name_a_redirect_uri_the_client_does_not_allow() {
    let (world, run) = setup_with_provider(
        &[(
            "OP_REDIRECT_URIS",
            r#"["http://127.0.0.1:9999/callback"]"#.to_string(),
        )],
        None,
    );
    run.assert_failed();
    assert!(
        run.stderr
            .contains("the redirect URI http://localhost:8000 is not allowed"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Valid redirect URIs"), "{}", run.stderr);
    assert!(
        world.logins().is_empty(),
        "no browser for a login that cannot work"
    );
}

#[test]
fn diagnostics_name_pkce_that_is_not_enforced() {
    let (_world, run) = setup_with_provider(&[("OP_PKCE_REQUIRED", "0".into())], None);
    run.assert_ok();
    assert!(
        run.stdout.contains("PKCE is not enforced"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("Proof Key for Code Exchange Code Challenge Method: S256"),
        "{}",
        run.stdout
    );
}

#[test]
fn diagnostics_name_pkce_the_provider_does_not_announce() {
    let (_world, run) = setup_with_provider(&[("OP_PKCE_UNANNOUNCED", "1".into())], None);
    // The login still works (the provider does accept S256); setup says what to check.
    run.assert_ok();
    assert!(
        run.stdout
            .contains("the provider does not announce PKCE S256"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("supports PKCE with S256"),
        "{}",
        run.stdout
    );
}

#[test]
fn diagnostics_name_a_missing_groups_claim() {
    let (_world, run) = setup_with_provider(&[("OP_NO_GROUPS", "1".into())], None);
    run.assert_ok();
    assert!(
        run.stdout.contains("the ID token has no groups claim"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Group Membership"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("No group to bind; bind the user instead"),
        "{}",
        run.stdout
    );
}

#[test]
fn diagnostics_name_an_unverified_email() {
    let (_world, run) = setup_with_provider(&[("OP_EMAIL_UNVERIFIED", "1".into())], None);
    run.assert_ok();
    // email is not suggested as the username claim, and asking for it is flagged.
    assert!(
        run.stdout.contains("Use `sub` as the username claim"),
        "{}",
        run.stdout
    );
    let world = World::with_provider(&[("OP_EMAIL_UNVERIFIED", "1".into())]);
    let run = world.plugin(&setup_args(&world, &["--username-claim=email"]), &[]);
    run.assert_ok();
    assert!(
        run.stdout
            .contains("is not verified, and kube-apiserver refuses"),
        "{}",
        run.stdout
    );
}

#[test]
fn diagnostics_name_token_lifetimes_that_are_too_short_or_too_long() {
    let (_world, run) = setup_with_provider(&[("OP_ID_TOKEN_TTL", "60".into())], None);
    run.assert_ok();
    assert!(
        run.stdout.contains("ID tokens live only 1m 0s"),
        "{}",
        run.stdout
    );
    let (_world, run) = setup_with_provider(&[("OP_ID_TOKEN_TTL", "36000".into())], None);
    run.assert_ok();
    assert!(
        run.stdout.contains("ID tokens live 10h 0m: a stolen token"),
        "{}",
        run.stdout
    );
}

#[test]
fn logout_revokes_at_the_provider_and_the_next_call_logs_in_again() {
    // RFC 7009 wants TLS for revocation (the oauth2 crate refuses plain http): a provider
    // behind a private CA, as in most companies.
    let world = World::with_https_provider(300);
    let ca = format!(
        "--certificate-authority={}",
        world.provider_ca.as_ref().unwrap().display()
    );
    let kubeconfig = world.default_kubeconfig(&[&ca]);
    world
        .kubectl(&kubeconfig, &["get", "--raw", "/api"], &[])
        .assert_ok();
    let refresh = world.cached_refresh_token();
    assert_eq!(world.provider.refresh_status(&refresh), 200);
    // That check rotated the token at the provider; take the rotated one into the cache's place
    // by logging out with what the cache holds now.
    let refresh = world.cached_refresh_token();

    let mut args = world.get_token_args();
    args[0] = "logout".into();
    args.push(ca);
    let run = world.plugin(&args, &[]);
    run.assert_ok();
    assert!(
        run.stderr.contains("Revoked the refresh token"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Removed the cached login"),
        "{}",
        run.stderr
    );
    // Checked at the provider: the refresh token is dead.
    assert_eq!(world.provider.refresh_status(&refresh), 400);
    let left: Vec<_> = world
        .cache_files()
        .into_iter()
        .filter(|(p, _)| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("provider-")
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");

    world
        .kubectl(&kubeconfig, &["get", "--raw", "/api"], &[])
        .assert_ok();
    // The login, logout's trip to the provider's end-session page, and the new login.
    let logins = world.wait_for_logins(3);
    assert_eq!(logins.len(), 3);
    assert_eq!(
        logins[1]["steps"],
        serde_json::json!(["plugin-start", "logout"])
    );
    assert!(logins[2]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == "consent"));
}

#[test]
fn logout_cleans_locally_and_fails_loudly_when_the_provider_cannot_revoke() {
    // A plain-http provider: RFC 7009 forbids sending the token there, so revocation fails.
    let world = World::new(300);
    world.plugin(&world.get_token_args(), &[]).assert_ok();
    let refresh = world.cached_refresh_token();
    let mut args = world.get_token_args();
    args[0] = "logout".into();
    let run = world.plugin(&args, &[]);
    run.assert_failed();
    let last = run.stderr.lines().last().unwrap();
    assert!(
        last.starts_with("error: logged out locally, but"),
        "{}",
        run.stderr
    );
    assert!(last.contains("plain http"), "{last}");
    assert!(last.contains("Sessions → Sign out"), "{last}");
    assert!(
        run.stderr.contains("Removed the cached login"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains(&refresh),
        "the token must not be printed"
    );
    // Nothing cached any more, though the provider still honours the token (said above).
    assert!(world.cache_files().iter().all(|(p, _)| p
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("provider-")));
    assert_eq!(world.provider.refresh_status(&refresh), 200);
}

#[test]
fn whoami_shows_the_cached_identity_and_what_the_cluster_sees() {
    let world = World::new(300);
    let kubeconfig = world.default_kubeconfig(&[]);
    let mut args = world.get_token_args();
    args[0] = "whoami".into();
    let before = world.plugin(&args, &[]);
    before.assert_failed();
    assert!(
        before.stderr.contains("no login is cached"),
        "{}",
        before.stderr
    );

    world
        .kubectl(&kubeconfig, &["get", "--raw", "/api"], &[])
        .assert_ok();
    world.provider.reset_counts();
    args.push("--api-server".into());
    let kubeconfig_env = kubeconfig.display().to_string();
    let run = world.plugin(&args, &[("KUBECONFIG", kubeconfig_env.as_str())]);
    run.assert_ok();
    for line in [
        "subject:       alice",
        "email:         alice@example.com (verified)",
        "groups:        KubernetesAdministrators, developers",
        "refresh token: cached",
    ] {
        assert!(run.stdout.contains(line), "{line}: {}", run.stdout);
    }
    assert!(
        run.stdout.contains("ID token:      expires"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("oidc:KubernetesAdministrators"),
        "{}",
        run.stdout
    );
    // whoami itself neither refreshed nor logged in.
    assert_eq!(world.provider.count("/protocol/openid-connect/token"), 0);
}

#[test]
fn clean_can_target_one_client() {
    let world = World::new(300);
    world.plugin(&world.get_token_args(), &[]).assert_ok();
    let clean = |client: &str| {
        world.plugin(
            &[
                "clean".into(),
                format!("--token-cache-dir={}", world.cache_dir().display()),
                format!("--oidc-client-id={client}"),
            ],
            &[],
        )
    };
    let other = clean("another-client");
    other.assert_ok();
    assert!(other.stderr.contains("Nothing cached"), "{}", other.stderr);
    let ours = clean("kubernetes");
    ours.assert_ok();
    assert!(
        ours.stderr.contains("Removed 1 login(s)"),
        "{}",
        ours.stderr
    );
}

#[test]
fn completions_and_man_page_are_generated() {
    let world = World::new(300);
    for shell in ["bash", "zsh", "fish"] {
        let run = world.plugin(&["completion".into(), shell.into()], &[]);
        run.assert_ok();
        assert!(run.stdout.contains("kubectl-oidc_login"), "{shell}");
        assert!(run.stdout.contains("oidc-issuer-url"), "{shell}");
    }
    // The bash script really completes, past the first word (bash runs it as a shell would).
    let script = world.path("completion.bash");
    std::fs::write(
        &script,
        world
            .plugin(&["completion".into(), "bash".into()], &[])
            .stdout,
    )
    .unwrap();
    let bash = std::process::Command::new("bash")
        .arg("-c")
        .arg(
            r#"source "$1"
COMP_WORDS=(kubectl-oidc_login get-token --oidc-pkce-method ""); COMP_CWORD=3
_kubectl__oidc_login kubectl-oidc_login "" --oidc-pkce-method; echo "${COMPREPLY[*]}"
COMP_WORDS=(kubectl-oidc_login setup --write); COMP_CWORD=2
_kubectl__oidc_login kubectl-oidc_login --write setup; echo "${COMPREPLY[*]}""#,
        )
        .arg("bash")
        .arg(&script)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&bash.stdout),
        "auto no S256\n--write-kubeconfig\n",
        "{}",
        String::from_utf8_lossy(&bash.stderr)
    );

    let man = world.plugin(&["man".into()], &[]);
    man.assert_ok();
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH"),
        "{}",
        &man.stdout[..200.min(man.stdout.len())]
    );
    assert!(man.stdout.contains(r"get\-token"), "{}", man.stdout);

    // Every page the main page names exists: `man --dir` writes one per subcommand.
    let dir = world.path("man1");
    std::fs::create_dir_all(&dir).unwrap();
    let written = world.plugin(&["man".into(), format!("--dir={}", dir.display())], &[]);
    written.assert_ok();
    let main = std::fs::read_to_string(dir.join("kubectl-oidc_login.1")).unwrap();
    let named: Vec<String> = main
        .lines()
        .filter_map(|l| l.strip_suffix("(1)"))
        .map(|l| l.replace(r"\-", "-"))
        .collect();
    assert!(named.len() >= 10, "{main}");
    for page in named {
        let file = dir.join(format!("{page}.1"));
        assert!(
            file.exists(),
            "the man page names {page}(1), which is not written"
        );
    }
    assert_eq!(man.stdout, main, "`man` prints the page `man --dir` writes");
}

#[test]
fn kubectl_completes_the_plugin_through_its_completion_script() {
    // kubectl 1.26+ asks `kubectl_complete-oidc_login` (installed by install.sh beside the
    // binary) for the words after `kubectl oidc-login`.
    let world = World::new(300);
    let bin = world.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("completion/kubectl_complete-oidc_login");
    std::fs::copy(&script, bin.join("kubectl_complete-oidc_login")).unwrap();
    let path = format!("{}:{}", bin.display(), world.path_with_plugin());
    let complete = |words: &[&str]| {
        // `__complete` must be kubectl's first argument, so no --kubeconfig here.
        let mut kubectl = std::process::Command::new(crate::common::kubectl_path());
        kubectl.args(["__complete", "oidc-login"]).args(words);
        let run = world.run(kubectl, &[("PATH", path.as_str())]);
        run.assert_ok();
        run.stdout
    };
    let subcommands = complete(&["s"]);
    assert!(subcommands.starts_with("setup\t"), "{subcommands}");
    assert!(subcommands.ends_with(":4\n"), "{subcommands}");
    let values = complete(&["get-token", "--token-cache-storage", ""]);
    assert!(
        values.starts_with("auto\t") && values.contains("\nkeyring\t"),
        "{values}"
    );
    let flags = complete(&["logout", "--keep"]);
    assert!(flags.starts_with("--keep-session\t"), "{flags}");
}

#[test]
fn a_refused_redirect_uri_names_the_port_of_listen_address_once() {
    // Keycloak matches loopback ports exactly: the fix must name the URI this login sends.
    let world = World::with_provider(&[(
        "OP_REDIRECT_URIS",
        r#"["http://127.0.0.1:9999/callback"]"#.to_string(),
    )]);
    let mut args = setup_args(&world, &["--listen-address=127.0.0.1:18123"]);
    args.retain(|a| a != "--listen-address=127.0.0.1:0");
    let run = world.plugin(&args, &[]);
    run.assert_failed();
    assert!(
        run.stderr.contains(
            "fix: Keycloak: Clients → CLIENT → Valid redirect URIs: add http://localhost:18123 exactly"
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(":8000"), "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("is not allowed for client").count(),
        1,
        "the finding once: {}",
        run.stderr
    );
    let last = run.stderr.lines().last().unwrap_or("");
    assert!(
        last.starts_with("error: setup stopped before signing in: one error above"),
        "{}",
        run.stderr
    );
}

#[test]
fn no_refresh_token_at_a_provider_listing_offline_access_is_explained_and_asked_for() {
    // Hydra, Dex and Entra ID issue refresh tokens only for offline_access, which their
    // discovery lists; setup says so and writes the scope into the entry it writes.
    let world = World::with_provider(&[("OP_REFRESH_NEEDS_OFFLINE_ACCESS", "1".into())]);
    let kubeconfig = world.default_kubeconfig(&[]);
    let kubeconfig_env = kubeconfig.display().to_string();
    let path = world.path_with_plugin();
    let env = [
        ("KUBECONFIG", kubeconfig_env.as_str()),
        ("PATH", path.as_str()),
    ];
    let run = world.plugin(
        &setup_args(
            &world,
            &[
                "--write-kubeconfig",
                "--user=hydra",
                "--context=hydra",
                "--cluster=test",
            ],
        ),
        &env,
    );
    run.assert_ok();
    let report = format!("{}{}", run.stdout, run.stderr);
    assert!(
        report.contains("the provider issued no refresh token"),
        "{report}"
    );
    assert!(
        report.contains("fix: add --oidc-extra-scope=offline_access"),
        "{report}"
    );
    let entry = section(&run.stdout, "## 4. kubeconfig\n", "## 5.");
    assert!(
        entry.contains("--exec-arg=--oidc-extra-scope=offline_access"),
        "{entry}"
    );

    // The written entry asks for it, and its login then brings a refresh token.
    let mut command = std::process::Command::new(crate::common::kubectl_path());
    command
        .args([
            "config",
            "view",
            "-o",
            "jsonpath={.users[?(@.name==\"hydra\")].user.exec.args}",
        ])
        .env("KUBECONFIG", &kubeconfig_env);
    let written = crate::common::run_with_timeout(command, std::time::Duration::from_secs(30));
    written.assert_ok();
    assert!(
        written.stdout.contains("--oidc-extra-scope=offline_access"),
        "{}",
        written.stdout
    );
    let mut command = std::process::Command::new(crate::common::kubectl_path());
    command
        .args(["--context=hydra", "auth", "whoami", "-o", "json"])
        .envs(world.env())
        .env("KUBECONFIG", &kubeconfig_env)
        .env("PATH", &path)
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");
    crate::common::run_with_timeout(command, std::time::Duration::from_secs(60)).assert_ok();
    let logins = world.wait_for_logins(2);
    let scope = logins[1]["auth_params"]["scope"].as_str().unwrap();
    assert!(scope.contains("offline_access"), "{scope}");
    let refreshes: Vec<_> = world
        .provider
        .client_requests()
        .into_iter()
        .filter(|r| r["grant_type"] == "authorization_code")
        .collect();
    assert_eq!(refreshes.len(), 2, "{refreshes:?}");
    assert!(
        world
            .cache_files()
            .iter()
            .any(|(p, _)| p.to_string_lossy().contains("refresh")),
        "a refresh token is cached: {:?}",
        world.cache_files()
    );
}
