//! kubectl's kubeconfig flags (`--kubeconfig`, `--context`, `--cluster`, `--user`) mean in
//! every subcommand what they mean to kubectl, and `setup --write-kubeconfig` never writes a
//! context kubectl cannot use: a missing cluster is named before the login (issue 41: a
//! context whose cluster did not exist sent kubectl to localhost:8080), `--server` and
//! `--server-certificate-authority` add it, and the `try:` command setup prints works as
//! printed. Against the suite's provider and HTTPS API server stand-ins, with the real kubectl.

use crate::common::{kubectl_path_absolute, Run, World};

fn setup_args(world: &World, extra: &[&str]) -> Vec<String> {
    let mut args = world.get_token_args();
    args[0] = "setup".into();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// The `try:` command of setup's last line, run with bash exactly as printed.
fn run_printed_try(world: &World, setup: &Run, env: &[(&str, &str)]) -> Run {
    let line = setup
        .stderr
        .lines()
        .find(|l| l.contains("; try: "))
        .unwrap_or_else(|| panic!("no `try:` command: {}", setup.stderr));
    let command = line.split("; try: ").nth(1).unwrap();
    eprintln!("running setup's suggestion: {command}");
    let mut bash = std::process::Command::new("bash");
    bash.args(["-c", command]);
    world.run(bash, env)
}

/// `setup --write-kubeconfig --context=platform` with `extra`, which must fail.
#[track_caller]
fn setup_refused(world: &World, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let mut args = vec!["--write-kubeconfig", "--context=platform"];
    args.extend_from_slice(extra);
    let run = world.plugin(&setup_args(world, &args), env);
    run.assert_failed();
    run
}

/// A refused setup wrote no kubeconfig and refused before the browser opened.
#[track_caller]
fn assert_nothing_written_and_no_login(world: &World, kubeconfig: &std::path::Path) {
    assert!(
        !kubeconfig.exists(),
        "a kubeconfig was written: {}",
        std::fs::read_to_string(kubeconfig).unwrap_or_default()
    );
    assert_eq!(world.logins().len(), 0, "the browser opened");
}

fn path_env(world: &World) -> String {
    let kubectl = kubectl_path_absolute();
    let kubectl_dir = std::path::Path::new(&kubectl)
        .parent()
        .unwrap()
        .to_path_buf();
    format!("{}:{}", kubectl_dir.display(), world.path_with_plugin())
}

/// The issue's first hour: an engineer with only an issuer and a client asks for a context
/// whose cluster the kubeconfig lacks. setup names what is missing in one line, before the
/// browser opens, and writes nothing.
#[test]
fn setup_names_a_missing_cluster_before_signing_in_and_writes_nothing() {
    let world = World::new(300);
    let kubeconfig = world.path("home/.kube/config");
    let path = path_env(&world);
    let env = [("PATH", path.as_str())];
    let run = setup_refused(&world, &["--cluster=platform"], &env);
    assert!(!run.stderr.contains("Wrote context"), "{}", run.stderr);
    let error: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error"))
        .collect();
    assert_eq!(error.len(), 1, "{}", run.stderr);
    for named in [
        "cluster \"platform\"",
        "--server=",
        "--server-certificate-authority=",
    ] {
        assert!(error[0].contains(named), "{named}: {}", error[0]);
    }
    assert_nothing_written_and_no_login(&world, &kubeconfig);

    // Without --cluster and with no current context, the same: nothing to pair it with.
    let run = setup_refused(&world, &[], &env);
    assert!(run.stderr.contains("--server="), "{}", run.stderr);
    assert!(!kubeconfig.exists());

    // A CA file that holds no certificate is refused by name, also before any login.
    std::fs::write(world.path("not-a-ca.txt"), "hello").unwrap();
    let ca = format!(
        "--server-certificate-authority={}",
        world.path("not-a-ca.txt").display()
    );
    let server = format!("--server={}", world.api.url);
    let run = setup_refused(&world, &[&server, &ca], &env);
    assert!(
        run.stderr.contains("--server-certificate-authority=") && run.stderr.contains("no PEM"),
        "{}",
        run.stderr
    );
    assert_nothing_written_and_no_login(&world, &kubeconfig);
}

/// With the API server's URL and CA, setup adds the cluster to an empty kubeconfig, makes the
/// context current (there was none), and kubectl works with and without --context; the
/// printed `try:` command works as printed, also for a --kubeconfig file of its own.
#[test]
fn setup_with_server_and_its_ca_writes_a_context_kubectl_uses() {
    let world = World::new(300);
    let path = path_env(&world);
    let env = [("PATH", path.as_str())];
    let server_ca = world.path("platform-ca.crt");
    std::fs::write(&server_ca, &world.api.ca_pem).unwrap();
    let server = format!("--server={}", world.api.url);
    let ca = format!("--server-certificate-authority={}", server_ca.display());
    let run = world.plugin(
        &setup_args(
            &world,
            &["--write-kubeconfig", "--context=platform", &server, &ca],
        ),
        &env,
    );
    run.assert_ok();
    assert!(
        run.stderr.contains("now the current context"),
        "{}",
        run.stderr
    );
    let kubeconfig = world.path("home/.kube/config");
    let default_kubeconfig = kubeconfig.display().to_string();
    for args in [
        &["auth", "whoami", "-o", "json"][..],
        &["--context=platform", "auth", "whoami", "-o", "json"][..],
    ] {
        let whoami = world.kubectl(&kubeconfig, args, &env);
        whoami.assert_ok();
        assert_eq!(
            whoami.json()["status"]["userInfo"]["username"],
            "alice@example.com"
        );
    }
    let printed = run_printed_try(&world, &run, &env);
    printed.assert_ok();
    assert!(
        printed.stdout.contains("alice@example.com"),
        "{}",
        printed.stdout
    );

    // A second context for the same cluster, in a file named by --kubeconfig: ~/.kube/config
    // is left alone, the current context there stays, and the printed command names the file.
    let own = world.path("platform.kubeconfig");
    let file = format!("--kubeconfig={}", own.display());
    let run = world.plugin(
        &setup_args(
            &world,
            &[
                "--write-kubeconfig",
                &file,
                "--context=second",
                "--cluster=platform-copy",
                &server,
                &ca,
            ],
        ),
        &env,
    );
    run.assert_ok();
    assert!(own.is_file());
    assert!(
        !std::fs::read_to_string(&kubeconfig)
            .unwrap()
            .contains("second"),
        "setup wrote {default_kubeconfig} though --kubeconfig named another file"
    );
    let printed = run_printed_try(&world, &run, &env);
    printed.assert_ok();
    assert!(
        printed.stdout.contains("alice@example.com"),
        "{}",
        printed.stdout
    );
}

/// A kubeconfig with two contexts: `oidc` (the plugin's user at the stand-in API server) and
/// the current one, `broken`, whose cluster answers nowhere. Each subcommand's --context and
/// --kubeconfig pick what kubectl's do.
#[test]
fn context_and_kubeconfig_mean_what_kubectl_says_in_every_subcommand() {
    let world = World::new(300);
    let path = path_env(&world);
    let kubeconfig = world.cluster_only_kubeconfig();
    let file = kubeconfig.display().to_string();
    let env = [("PATH", path.as_str()), ("KUBECONFIG", file.as_str())];
    // setup --context with no --cluster, in a kubeconfig with no current context but the
    // cluster named: --cluster is kubectl's cluster name.
    let run = world.plugin(
        &setup_args(
            &world,
            &["--write-kubeconfig", "--context=oidc", "--cluster=test"],
        ),
        &env,
    );
    run.assert_ok();
    let kubectl = |args: &[&str]| world.kubectl(&kubeconfig, args, &env);
    kubectl(&[
        "config",
        "set-cluster",
        "nowhere",
        "--server=https://127.0.0.1:9",
    ])
    .assert_ok();
    kubectl(&[
        "config",
        "set-context",
        "broken",
        "--cluster=nowhere",
        "--user=oidc",
    ])
    .assert_ok();
    kubectl(&["config", "use-context", "broken"]).assert_ok();

    // setup --context of an existing context keeps its cluster (as kubectl config
    // set-context does), even though the current context's cluster is another.
    let run = world.plugin(
        &setup_args(&world, &["--write-kubeconfig", "--context=oidc"]),
        &env,
    );
    run.assert_ok();
    assert!(run.stderr.contains("(cluster \"test\""), "{}", run.stderr);
    assert!(
        !run.stderr.contains("now the current context"),
        "{}",
        run.stderr
    );

    let mut whoami = world.get_token_args();
    whoami[0] = "whoami".into();
    let with = |base: &[String], extra: &[&str]| -> Vec<String> {
        base.iter()
            .cloned()
            .chain(extra.iter().map(|s| s.to_string()))
            .collect()
    };
    // whoami --context NAME asks the API server of that context, as kubectl --context does.
    let good = world.plugin(&with(&whoami, &["--context=oidc"]), &env);
    good.assert_ok();
    assert!(good.stdout.contains("alice@example.com"), "{}", good.stdout);
    let reference = kubectl(&["--context=oidc", "auth", "whoami"]);
    reference.assert_ok();
    assert!(
        good.stdout.contains(reference.stdout.trim()),
        "{}",
        good.stdout
    );
    // --cluster names a cluster and overrides the context's, as in kubectl.
    let overridden = world.plugin(&with(&whoami, &["--cluster=nowhere"]), &env);
    overridden.assert_failed();
    let kubectl_too = kubectl(&["--context=oidc", "--cluster=nowhere", "auth", "whoami"]);
    kubectl_too.assert_failed();
    let fixed = world.plugin(
        &with(&whoami, &["--context=broken", "--cluster=test"]),
        &env,
    );
    fixed.assert_ok();
    // --kubeconfig FILE, with KUBECONFIG pointing elsewhere.
    let elsewhere = [
        ("PATH", path.as_str()),
        ("KUBECONFIG", "/nonexistent/kubeconfig"),
    ];
    let flag = format!("--kubeconfig={file}");
    world
        .plugin(&with(&whoami, &[&flag, "--context=oidc"]), &elsewhere)
        .assert_ok();
    // The switch that --cluster once was is named, not taken for a cluster.
    let bare = world.plugin(&with(&whoami, &["--cluster"]), &env);
    bare.assert_failed();
    assert!(bare.stderr.contains("--api-server"), "{}", bare.stderr);

    // doctor: the current context is broken; --context picks the good one, and --kubeconfig
    // the file.
    let doctor = |extra: &[&str], env: &[(&str, &str)]| {
        let args: Vec<String> = std::iter::once("doctor".to_string())
            .chain(extra.iter().map(|s| s.to_string()))
            .collect();
        world.plugin(&args, env)
    };
    let current = doctor(&[], &env);
    current.assert_failed();
    doctor(&["--context=oidc"], &env).assert_ok();
    doctor(&[&flag, "--context=oidc"], &elsewhere).assert_ok();
    doctor(&["--context=broken", "--cluster=test"], &env).assert_ok();
}

/// The API server given by --server is tried through kubectl before the login: a CA that did
/// not sign its certificate, or an address where nothing answers, is named in one line, and
/// nothing is written.
#[test]
fn setup_tries_the_server_before_signing_in() {
    let world = World::new(300);
    let path = path_env(&world);
    let env = [("PATH", path.as_str())];
    let kubeconfig = world.path("home/.kube/config");
    std::fs::create_dir_all(world.path("other")).unwrap();
    let (other_ca, _, _) = crate::common::test_certificate(&world.path("other"), "other");
    let wrong_ca = format!("--server-certificate-authority={}", other_ca.display());
    let server = format!("--server={}", world.api.url);
    let run = setup_refused(&world, &[&server, &wrong_ca], &env);
    assert!(
        run.stderr.contains("certificate is not trusted")
            && run.stderr.contains("--server-certificate-authority=FILE"),
        "{}",
        run.stderr
    );

    let nowhere = format!("--server=https://127.0.0.1:{}", crate::common::free_port());
    let run = setup_refused(&world, &[&nowhere], &env);
    assert!(
        run.stderr.contains("cannot reach the API server"),
        "{}",
        run.stderr
    );
    assert_nothing_written_and_no_login(&world, &kubeconfig);
}

/// On a terminal, setup asks for the cluster it lacks instead of refusing: the API server's
/// URL and CA file, typed at two prompts; kubectl then uses the context. Run on a real
/// pseudo-terminal.
#[test]
fn on_a_terminal_setup_asks_for_a_missing_cluster() {
    let world = World::new(300);
    let path = path_env(&world);
    let server_ca = world.path("platform-ca.crt");
    std::fs::write(&server_ca, &world.api.ca_pem).unwrap();
    // Answers each prompt once it shows, in order; prints what the terminal showed and exits
    // with the command's code.
    const DRIVER: &str = r#"
import os, pty, select, sys, time
pairs = sys.argv[1:sys.argv.index("--")]
command = sys.argv[sys.argv.index("--") + 1:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(command[0], command)
shown, deadline = b"", time.time() + 120
while time.time() < deadline:
    ready, _, _ = select.select([fd], [], [], 0.2)
    if ready:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        shown += data
    if pairs and pairs[0].encode() in shown:
        os.write(fd, pairs[1].encode() + b"\n")
        pairs = pairs[2:]
sys.stdout.write(shown.decode(errors="replace"))
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let mut command = std::process::Command::new("python3");
    command
        .args(["-c", DRIVER])
        .args(["API server's URL", &world.api.url])
        .args(["CA file", &server_ca.display().to_string()])
        .arg("--")
        .arg(crate::common::PLUGIN)
        .args(setup_args(
            &world,
            &["--write-kubeconfig", "--context=platform"],
        ));
    let run = world.run(command, &[("PATH", path.as_str())]);
    eprintln!("the terminal showed:\n{}", run.stdout);
    run.assert_ok();
    assert!(
        run.stdout.contains("Wrote context \"platform\""),
        "{}",
        run.stdout
    );
    let kubeconfig = world.path("home/.kube/config");
    let whoami = world.kubectl(
        &kubeconfig,
        &["auth", "whoami", "-o", "json"],
        &[("PATH", path.as_str())],
    );
    whoami.assert_ok();
    assert_eq!(
        whoami.json()["status"]["userInfo"]["username"],
        "alice@example.com"
    );
}
