//! The install channels of docs/install.md, each checked by its own real tool on what
//! `scripts/release --profile test` made in `target/dist-test` (./test.sh runs it beside the
//! tests): real krew v0.4.3 and krew-index's own validator, `cargo package`/`cargo install`,
//! dpkg, lintian, rpm and rpmlint, Ruby's parser for the Homebrew formula, actionlint for the
//! workflows. The Go tools come from scripts/packaging-tools (pinned modules under tests/peers/,
//! built once into a cache); one that cannot be built here makes its test print `not built
//! here: …` instead of passing.
//!
//! macOS binaries cannot be built here (no Apple SDK): test.sh hands scripts/release a stand-in
//! file for them (`--prebuilt …-apple-darwin=…`, the path the release workflow takes with the
//! real ones), so the darwin archives and manifest entries go through the same packaging and the
//! same krew installs, but nothing here runs a darwin binary. The tests that touch them say so.
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{kubectl_path_absolute, not_built_here, run_with_timeout, Daemon, Run, World};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every platform of a release: (krew os, krew arch, archive file, binary name).
fn platforms() -> Vec<(&'static str, &'static str, String, &'static str)> {
    [
        ("linux", "amd64", "tar.gz", "kubectl-oidc_login"),
        ("linux", "arm64", "tar.gz", "kubectl-oidc_login"),
        ("windows", "amd64", "zip", "kubectl-oidc_login.exe"),
        ("darwin", "amd64", "tar.gz", "kubectl-oidc_login"),
        ("darwin", "arm64", "tar.gz", "kubectl-oidc_login"),
    ]
    .into_iter()
    .map(|(os, arch, suffix, bin)| {
        (
            os,
            arch,
            format!("kubectl-oidc_login-v{VERSION}-{os}-{arch}.{suffix}"),
            bin,
        )
    })
    .collect()
}

fn say_darwin_is_a_stand_in() {
    eprintln!(
        "channels: the darwin archives hold a stand-in file, not a macOS binary (none can be \
         built here); their packaging and krew installs are real"
    );
}

/// The pinned tool `name` from scripts/packaging-tools' cache (it is run first: it waits for a
/// build test.sh started, or builds what is missing); None after printing why it is not there.
fn tool(group: &str, name: &str, module_dir: &str, module: &str) -> Option<PathBuf> {
    let go_mod =
        std::fs::read_to_string(repo().join("tests/peers").join(module_dir).join("go.mod"))
            .unwrap();
    let version = go_mod
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{module} ")))
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or_else(|| panic!("{module} in tests/peers/{module_dir}/go.mod"))
        .to_string();
    let mut build = Command::new(repo().join("scripts/packaging-tools"));
    build.arg(group);
    let run = run_with_timeout(build, Duration::from_secs(1200));
    // The same rule as the script's.
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| dirs::home_dir().unwrap().join(".cache"))
        .join("kubectl-oidc-login/packaging");
    let id = format!("{name}-{version}");
    if cache.join(&id).is_file() {
        return Some(cache.join(&id));
    }
    let why = std::fs::read_to_string(cache.join(format!("{id}.not-built")))
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|_| format!("not built here: {id} ({})", run.stderr.trim()));
    not_built_here(&why);
    None
}

fn krew_tools() -> Option<(PathBuf, PathBuf)> {
    let krew = tool("krew", "krew", "krew", "sigs.k8s.io/krew")?;
    let validate = tool("krew", "validate-krew-manifest", "krew", "sigs.k8s.io/krew")?;
    Some((krew, validate))
}

/// Waits while ./test.sh installs the channels' checkers from Debian (lintian, rpm, rpmlint,
/// ruby, crun, shellcheck) in the background; it holds `target/tmp/channels.lock` until then.
/// Returns at once when no ./test.sh is installing them.
fn wait_for_channel_packages() {
    let lock = repo().join("target/tmp/channels.lock");
    let _ = std::fs::create_dir_all(lock.parent().unwrap());
    if let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock)
    {
        let _ = file.lock_shared();
    }
}

/// The release scripts/release made for the tests, once the channels' checkers are installed.
fn dist() -> PathBuf {
    wait_for_channel_packages();
    crate::release::dist()
}

/// A directory served over HTTP on loopback (Python's http.server): the release's download
/// address, which krew fetches from when it installs from a manifest or an index.
struct Served {
    _daemon: Daemon,
    base: String,
}

fn serve(dir: &Path) -> Served {
    let port = crate::common::free_port();
    let child = Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .arg("--directory")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let daemon = Daemon::from_child(child);
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "http.server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Served {
        _daemon: daemon,
        base: format!("http://127.0.0.1:{port}/"),
    }
}

/// The release's krew manifest with its download address moved to `base`: the same archives
/// and sha256 fields, fetched from loopback instead of the GitHub release (not reachable here).
fn manifest_served_from(base: &str) -> String {
    let manifest = std::fs::read_to_string(dist().join("oidc-login.yaml")).unwrap();
    let release_base = format!(
        "https://github.com/kubectl-oidc-login/kubectl-oidc-login/releases/download/v{VERSION}/"
    );
    assert!(manifest.contains(&release_base), "{manifest}");
    manifest.replace(&release_base, base)
}

/// A krew installation of its own: KREW_ROOT in a temporary directory, and the cached krew as
/// the `kubectl-krew` plugin on PATH, which is how kubectl finds krew.
struct Krew {
    dir: tempfile::TempDir,
}

impl Krew {
    fn new(krew: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tools")).unwrap();
        std::os::unix::fs::symlink(krew, dir.path().join("tools/kubectl-krew")).unwrap();
        Krew { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// PATH as a krew user has it: krew's bin directory first, then kubectl-krew.
    fn path(&self) -> String {
        format!(
            "{}:{}:{}",
            self.root().join("bin").display(),
            self.dir.path().join("tools").display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PATH", self.path()),
            ("KREW_ROOT", self.root().display().to_string()),
            ("KREW_NO_UPGRADE_CHECK", "1".into()),
            ("HOME", self.dir.path().join("home").display().to_string()),
        ]
    }

    /// `kubectl ARGS` with this krew's environment (and `env`, e.g. KREW_OS/KREW_ARCH).
    fn kubectl(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = Command::new(kubectl_path_absolute());
        command.args(args).current_dir(self.dir.path());
        for (k, v) in self.env() {
            command.env(k, v);
        }
        for (k, v) in env {
            command.env(k, v);
        }
        run_with_timeout(command, Duration::from_secs(300))
    }

    /// The files krew put in the plugin's store, relative to it.
    fn store_files(&self) -> Vec<String> {
        let store = self.root().join(format!("store/oidc-login/v{VERSION}"));
        let mut files = Vec::new();
        walk(&store, &store, &mut files);
        files.sort();
        files
    }
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
    {
        let path = entry.path();
        if path.is_dir() {
            walk(base, &path, out);
        } else {
            out.push(path.strip_prefix(base).unwrap().display().to_string());
        }
    }
}

/// What every archive and package holds besides the binary.
fn assert_holds_the_texts(files: &[String], what: &str) {
    for expected in [
        "LICENSE",
        "README.md",
        "kubectl_complete-oidc_login",
        "man/kubectl-oidc_login.1",
        "man/kubectl-oidc_login-get-token.1",
        "man/kubectl-oidc_login-setup.1",
        "completions/kubectl-oidc_login.bash",
        "completions/_kubectl-oidc_login",
        "completions/kubectl-oidc_login.fish",
    ] {
        assert!(
            files.iter().any(|f| f == expected),
            "{expected} not in {what}: {files:?}"
        );
    }
}

#[test]
fn krew_index_validator_passes_with_an_install_of_every_platform() {
    let Some((krew, validate)) = krew_tools() else {
        return;
    };
    say_darwin_is_a_stand_in();
    let served = serve(&dist());
    let dir = tempfile::tempdir().unwrap();
    // The validator wants the file named after the plugin, as in krew-index's plugins/.
    let manifest = dir.path().join("oidc-login.yaml");
    std::fs::write(&manifest, manifest_served_from(&served.base)).unwrap();
    let tools = dir.path().join("tools");
    std::fs::create_dir_all(&tools).unwrap();
    std::os::unix::fs::symlink(&krew, tools.join("kubectl-krew")).unwrap();
    let mut command = Command::new(validate);
    command.arg("-manifest").arg(&manifest).env(
        "PATH",
        format!("{}:{}", tools.display(), std::env::var("PATH").unwrap()),
    );
    let run = run_with_timeout(command, Duration::from_secs(600));
    run.assert_ok();
    // It names each platform it installed; all five are in the manifest.
    let manifest = crate::common::parse_yaml(&std::fs::read_to_string(&manifest).unwrap());
    let mut seen: Vec<String> = manifest[0]["spec"]["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let labels = &p["selector"]["matchLabels"];
            format!(
                "{}/{}",
                labels["os"].as_str().unwrap(),
                labels["arch"].as_str().unwrap()
            )
        })
        .collect();
    seen.sort();
    assert_eq!(seen, crate::release::PLATFORMS);
}

#[test]
fn krew_installs_every_archive_and_the_installed_plugin_logs_in_through_kubectl() {
    let Some((krew, _)) = krew_tools() else {
        return;
    };
    let manifest = dist().join("oidc-login.yaml");
    let host = format!("kubectl-oidc_login-v{VERSION}-linux-amd64.tar.gz");
    let krew_user = Krew::new(&krew);
    krew_user
        .kubectl(
            &[
                "krew",
                "install",
                &format!("--manifest={}", manifest.display()),
                &format!("--archive={}", dist().join(&host).display()),
            ],
            &[],
        )
        .assert_ok();
    assert_holds_the_texts(&krew_user.store_files(), "krew's store");

    // kubectl finds the plugin krew linked, and nothing else of that name.
    let listed = krew_user.kubectl(&["plugin", "list"], &[]);
    let linked = krew_user.root().join("bin/kubectl-oidc_login");
    assert!(
        listed.stdout.contains(&linked.display().to_string()),
        "{}\n{}",
        listed.stdout,
        listed.stderr
    );
    let version = krew_user.kubectl(&["oidc-login", "--version"], &[]);
    version.assert_ok();
    assert_eq!(
        version.stdout.trim(),
        format!("kubectl-oidc_login {VERSION}")
    );

    // A login through the krew-installed plugin, from a kubelogin-style kubeconfig.
    let world = World::new(300);
    let mut args = vec!["oidc-login".to_string()];
    args.extend(world.get_token_args());
    let kubeconfig = world.kubeconfig(
        "kubeconfig",
        "client.authentication.k8s.io/v1",
        "kubectl",
        &args,
    );
    let path = krew_user.path();
    let run = world.kubectl(
        &kubeconfig,
        &["auth", "whoami", "-o", "json"],
        &[("PATH", &path)],
    );
    run.assert_ok();
    assert_eq!(
        run.json()["status"]["userInfo"]["username"],
        "alice@example.com"
    );
    assert_eq!(world.wait_for_logins(1).len(), 1);

    // The manifest's caveat: the completion helper linked into krew's bin completes
    // `kubectl oidc-login <TAB>`.
    std::os::unix::fs::symlink(
        krew_user.root().join(format!(
            "store/oidc-login/v{VERSION}/kubectl_complete-oidc_login"
        )),
        krew_user.root().join("bin/kubectl_complete-oidc_login"),
    )
    .unwrap();
    let completed = krew_user.kubectl(&["__complete", "oidc-login", "get-"], &[]);
    assert!(
        completed.stdout.contains("get-token"),
        "{}\n{}",
        completed.stdout,
        completed.stderr
    );

    // Every other platform, as krew on that machine installs it.
    say_darwin_is_a_stand_in();
    for (os, arch, archive, bin) in platforms() {
        if (os, arch) == ("linux", "amd64") {
            continue;
        }
        let other = Krew::new(&krew);
        other
            .kubectl(
                &[
                    "krew",
                    "install",
                    &format!("--manifest={}", manifest.display()),
                    &format!("--archive={}", dist().join(&archive).display()),
                ],
                &[("KREW_OS", os), ("KREW_ARCH", arch)],
            )
            .assert_ok();
        let files = other.store_files();
        assert_holds_the_texts(&files, &format!("krew's store for {os}/{arch}"));
        assert!(files.iter().any(|f| f == bin), "{bin} not in {files:?}");
    }
}

#[test]
fn krew_installs_from_the_projects_own_index_kept_in_a_git_repository() {
    let Some((krew, _)) = krew_tools() else {
        return;
    };
    let served = serve(&dist());
    // The project's repository as krew sees an index: plugins/oidc-login.yaml on its default
    // branch (the release workflow commits it there); here a local clone-able repository.
    let index = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(index.path().join("plugins")).unwrap();
    std::fs::write(
        index.path().join("plugins/oidc-login.yaml"),
        manifest_served_from(&served.base),
    )
    .unwrap();
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "plugins"],
        &[
            "-c",
            "user.name=release",
            "-c",
            "user.email=release@example.com",
            "commit",
            "-q",
            "-m",
            "oidc-login",
        ],
    ] {
        let status = Command::new("git")
            .args(args)
            .current_dir(index.path())
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }

    let krew_user = Krew::new(&krew);
    // Exactly the two commands of docs/install.md, with the repository's address.
    krew_user
        .kubectl(
            &[
                "krew",
                "index",
                "add",
                "kubectl-oidc-login",
                &index.path().display().to_string(),
            ],
            &[],
        )
        .assert_ok();
    let installed = krew_user.kubectl(&["krew", "install", "kubectl-oidc-login/oidc-login"], &[]);
    installed.assert_ok();
    // No central index was added behind the user's back (that `oidc-login` is kubelogin's).
    let indexes = krew_user.kubectl(&["krew", "index", "list"], &[]);
    indexes.assert_ok();
    assert!(
        !indexes.stdout.contains("kubernetes-sigs/krew-index"),
        "{}",
        indexes.stdout
    );
    let version = krew_user.kubectl(&["oidc-login", "--version"], &[]);
    version.assert_ok();
    assert_eq!(
        version.stdout.trim(),
        format!("kubectl-oidc_login {VERSION}")
    );
    let list = krew_user.kubectl(&["krew", "list"], &[]);
    list.assert_ok();
    assert!(
        list.stdout.contains("kubectl-oidc-login/oidc-login"),
        "{}",
        list.stdout
    );
}

/// A .deb or .rpm of the release, or None after saying why scripts/release made none (no nfpm).
fn package(name: &str) -> Option<PathBuf> {
    let path = dist().join(name);
    if path.is_file() {
        return Some(path);
    }
    // scripts/release-channels leaves the packages out only when nfpm could not be built.
    tool("nfpm", "nfpm", "nfpm", "github.com/goreleaser/nfpm/v2")?;
    panic!(
        "{} is missing though nfpm is built: ./test.sh makes it with scripts/release",
        path.display()
    );
}

fn output(command: &mut Command) -> Run {
    run_with_timeout(
        std::mem::replace(command, Command::new("true")),
        Duration::from_secs(300),
    )
}

/// The files a package installs, as absolute paths (no directories).
fn files_under(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    if root.join("usr").exists() {
        walk(root, &root.join("usr"), &mut files);
    }
    files.iter().map(|f| format!("/{f}")).collect()
}

/// The same set of files in both packages but where each distribution wants its own: Debian's
/// copyright, changelog.Debian.gz and lintian overrides against RPM's licence directory, and
/// zsh's vendor directory of each.
fn common_files(files: &[String]) -> Vec<String> {
    let mut common: Vec<String> = files
        .iter()
        .filter(|f| {
            !f.starts_with("/usr/share/lintian/")
                && !f.starts_with("/usr/share/licenses/")
                && !f.starts_with("/usr/share/zsh/")
                && !f.ends_with("/copyright")
                && !f.ends_with("/changelog.Debian.gz")
        })
        .cloned()
        .collect();
    common.sort();
    common
}

/// The files every package must hold where each shell, man and kubectl look.
fn assert_installed_where_looked_for(files: &[String], zsh_dir: &str, what: &str) {
    for expected in [
        "/usr/bin/kubectl-oidc_login".to_string(),
        "/usr/bin/kubectl_complete-oidc_login".into(),
        "/usr/share/bash-completion/completions/kubectl-oidc_login".into(),
        format!("{zsh_dir}/_kubectl-oidc_login"),
        "/usr/share/fish/vendor_completions.d/kubectl-oidc_login.fish".into(),
        "/usr/share/man/man1/kubectl-oidc_login.1.gz".into(),
        "/usr/share/man/man1/kubectl-oidc_login-get-token.1.gz".into(),
        "/usr/share/doc/kubectl-oidc-login/README.md".into(),
    ] {
        assert!(
            files.contains(&expected),
            "{expected} not in {what}: {files:?}"
        );
    }
}

/// lintian (errors and warnings fail, packaging/lintian-overrides says why for each
/// exception), then dpkg installs it, kubectl finds the plugin, bash completes it, man finds its
/// pages, and dpkg removes it leaving no file behind. dpkg works on a root directory of the
/// test's own (`--root`): the real dpkg with its own database, but not the machine's /usr,
/// which the tests running beside this one share.
#[test]
fn the_deb_passes_lintian_installs_with_dpkg_answers_through_kubectl_and_removes_cleanly() {
    let Some(deb) = package(&format!("kubectl-oidc-login_{VERSION}-1_amd64.deb")) else {
        return;
    };
    let lintian = output(
        Command::new("lintian")
            .args(["--fail-on", "error,warning"])
            .arg(&deb),
    );
    lintian.assert_ok();
    assert!(
        !lintian.stdout.contains("W: ") && !lintian.stdout.contains("E: "),
        "{}",
        lintian.stdout
    );

    let root = tempfile::tempdir().unwrap();
    let admin = root.path().join("var/lib/dpkg");
    std::fs::create_dir_all(admin.join("updates")).unwrap();
    std::fs::create_dir_all(admin.join("info")).unwrap();
    std::fs::write(admin.join("status"), "").unwrap();
    let dpkg = || {
        let mut command = Command::new("dpkg");
        command.arg(format!("--root={}", root.path().display()));
        command
    };
    output(dpkg().arg("-i").arg(&deb)).assert_ok();
    let files = files_under(root.path());
    assert_installed_where_looked_for(&files, "/usr/share/zsh/vendor-completions", "the .deb");

    let bin = root.path().join("usr/bin");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let mut kubectl = Command::new(kubectl_path_absolute());
    kubectl.args(["oidc-login", "--version"]).env("PATH", &path);
    let version = output(&mut kubectl);
    version.assert_ok();
    assert_eq!(
        version.stdout.trim(),
        format!("kubectl-oidc_login {VERSION}")
    );
    let mut kubectl = Command::new(kubectl_path_absolute());
    kubectl
        .args(["__complete", "oidc-login", "get-"])
        .env("PATH", &path);
    let completed = output(&mut kubectl);
    assert!(
        completed.stdout.contains("get-token"),
        "{}",
        completed.stdout
    );
    // bash-completion loads a command's file from this directory by the command's name.
    let mut bash = Command::new("bash");
    bash.arg("-c")
        .arg("source \"$1\" && complete -p kubectl-oidc_login")
        .arg("bash")
        .arg(
            root.path()
                .join("usr/share/bash-completion/completions/kubectl-oidc_login"),
        );
    output(&mut bash).assert_ok();
    if Path::new("/usr/bin/man").exists() {
        let mut man = Command::new("man");
        man.args(["-w", "kubectl-oidc_login-get-token"])
            .env("MANPATH", root.path().join("usr/share/man"));
        let found = output(&mut man);
        found.assert_ok();
        assert!(found.stdout.contains("kubectl-oidc_login-get-token.1.gz"));
    }

    output(dpkg().args(["--purge", "kubectl-oidc-login"])).assert_ok();
    assert_eq!(files_under(root.path()), Vec::<String>::new());
    assert!(
        !root.path().join("usr").exists(),
        "dpkg left directories behind"
    );
}

/// rpmlint (packaging/rpmlint.toml says why for each filter) with no error or warning; the
/// .rpm lists the same files as the .deb, each in its distribution's place; rpm installs and
/// erases it in a root of the test's own.
#[test]
fn the_rpm_passes_rpmlint_and_holds_what_the_deb_holds() {
    let Some(rpm) = package(&format!("kubectl-oidc-login-{VERSION}-1.x86_64.rpm")) else {
        return;
    };
    let Some(deb) = package(&format!("kubectl-oidc-login_{VERSION}-1_amd64.deb")) else {
        return;
    };
    let lint = output(
        Command::new("rpmlint")
            .arg("-c")
            .arg(repo().join("packaging/rpmlint.toml"))
            .arg(&rpm),
    );
    lint.assert_ok();
    assert!(
        lint.stdout.contains("0 errors, 0 warnings"),
        "{}",
        lint.stdout
    );

    let listed = output(Command::new("rpm").arg("-qlp").arg(&rpm));
    listed.assert_ok();
    let rpm_files: Vec<String> = listed.stdout.lines().map(str::to_string).collect();
    assert_installed_where_looked_for(&rpm_files, "/usr/share/zsh/site-functions", "the .rpm");
    assert!(rpm_files.contains(&"/usr/share/licenses/kubectl-oidc-login/LICENSE".to_string()));
    let contents = output(Command::new("dpkg-deb").arg("-c").arg(&deb));
    contents.assert_ok();
    let deb_files: Vec<String> = contents
        .stdout
        .lines()
        .filter(|l| !l.starts_with('d'))
        .filter_map(|l| l.split_whitespace().last())
        .map(|f| f.trim_start_matches('.').to_string())
        .collect();
    assert_eq!(common_files(&rpm_files), common_files(&deb_files));

    let root = tempfile::tempdir().unwrap();
    let rpm_root = || {
        let mut command = Command::new("rpm");
        command.arg(format!("--root={}", root.path().display()));
        command
    };
    output(rpm_root().arg("--initdb")).assert_ok();
    // --nodeps: this root has no rpm-installed system to satisfy /bin/sh (the helper's shell).
    output(rpm_root().args(["-i", "--nodeps"]).arg(&rpm)).assert_ok();
    let mut installed = files_under(root.path());
    installed.sort();
    let mut expected = rpm_files.clone();
    expected.sort();
    assert_eq!(installed, expected);
    let version =
        output(Command::new(root.path().join("usr/bin/kubectl-oidc_login")).arg("--version"));
    assert_eq!(
        version.stdout.trim(),
        format!("kubectl-oidc_login {VERSION}")
    );
    output(rpm_root().args(["-e", "kubectl-oidc-login"])).assert_ok();
    assert_eq!(files_under(root.path()), Vec::<String>::new());
}

/// The C compiler ./install.sh and scripts/release hand ring for the static x86_64 build,
/// spelled as they spell it (`command -v musl-gcc || command -v cc`, a full path): ring's build
/// script reruns, and everything above it rebuilds, whenever that variable's value changes.
fn install_sh_cc() -> String {
    ["musl-gcc", "cc"]
        .iter()
        .find_map(|name| {
            std::env::var("PATH")
                .unwrap_or_default()
                .split(':')
                .map(|dir| Path::new(dir).join(name))
                .find(|p| p.is_file())
        })
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "cc".into())
}

/// What `cargo install kubectl-oidc-login` gets: `cargo publish --dry-run` packages the crate
/// with no warning of its own (the two cargo prints regardless are named below), the package
/// holds the sources and texts and none of the test rig, and `cargo install` from the unpacked
/// package, offline against the registry cache, builds a plugin that answers through kubectl.
/// CPU: the install builds the release profile for the static x86_64 target with the project's
/// target directory as cargo's build-dir, whose dependencies ./install.sh has compiled (same
/// profile, target and C compiler), so only the crate itself and the LTO link run (about a
/// minute and a half of CPU, once per change of the sources: the package is unpacked again only
/// when it changed; warm, about 6 s). A debug build would recompile every dependency, or wait
/// on the lock of `cargo test`'s own target/debug.
#[test]
fn the_crate_packages_without_the_test_rig_and_installs_offline_from_the_package() {
    let mut publish = Command::new("cargo");
    publish
        .args([
            "publish",
            "--dry-run",
            "--locked",
            "--no-verify",
            "--allow-dirty",
        ])
        .current_dir(repo());
    crate::install::without_cargo_test_env(&mut publish);
    let published = output(&mut publish);
    published.assert_ok();
    for line in published.stderr.lines().filter(|l| l.contains("warning")) {
        assert!(
            // cargo 1.80+ warns of every test target whose file a package leaves out, explicit
            // or not (rust-lang/cargo#14290, open): the suite is the test rig.
            line == "warning: ignoring test `suite` as `tests/suite/main.rs` is not included in the published package"
                || line == "warning: aborting upload due to dry run",
            "cargo publish --dry-run warned: {line}\n{}",
            published.stderr
        );
    }

    // The .crate itself, where `cargo package` puts it (publish's dry run keeps it elsewhere).
    let mut package = Command::new("cargo");
    package
        .args([
            "package",
            "--locked",
            "--no-verify",
            "--allow-dirty",
            "--offline",
        ])
        .current_dir(repo());
    crate::install::without_cargo_test_env(&mut package);
    output(&mut package).assert_ok();
    let crate_file = repo().join(format!("target/package/kubectl-oidc-login-{VERSION}.crate"));
    let listing = output(Command::new("tar").arg("-tzf").arg(&crate_file));
    listing.assert_ok();
    let prefix = format!("kubectl-oidc-login-{VERSION}/");
    let files: Vec<&str> = listing
        .stdout
        .lines()
        .map(|l| l.strip_prefix(&prefix).unwrap_or(l))
        .collect();
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "LICENSE",
        "README.md",
        "src/main.rs",
        "src/lib.rs",
    ] {
        assert!(files.contains(&needed), "{needed} not packaged: {files:?}");
    }
    for file in &files {
        assert!(
            !file.starts_with("tests/")
                && !file.starts_with("fuzz/")
                && !file.starts_with("bench/")
                && !file.starts_with("scripts/")
                && !file.ends_with("go.mod")
                && !file.ends_with("package-lock.json")
                && !file.contains("wine"),
            "{file} is test rig, packaged: {files:?}"
        );
    }

    // Unpacked at a fixed place (cargo's fingerprints hold the sources' paths and times), and
    // only when the package changed.
    let unpack_to = repo().join("target/crate-install");
    let stamp = unpack_to.join("crate.sha256");
    // The package's files but .cargo_vcs_info.json, which names the commit: a new commit with
    // the same sources must not unpack (and so rebuild) again.
    let contents = output(
        Command::new("tar")
            .args(["-xzOf"])
            .arg(&crate_file)
            .arg("--exclude=*/.cargo_vcs_info.json"),
    );
    contents.assert_ok();
    let digest = {
        use sha2::{Digest, Sha256};
        let hash = Sha256::digest(format!("{}\n{}", listing.stdout, contents.stdout));
        hash.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(digest.as_str()) {
        let _ = std::fs::remove_dir_all(&unpack_to);
        std::fs::create_dir_all(&unpack_to).unwrap();
        output(
            Command::new("tar")
                .arg("-xzf")
                .arg(&crate_file)
                .arg("-C")
                .arg(&unpack_to),
        )
        .assert_ok();
        std::fs::write(&stamp, &digest).unwrap();
    }
    let root = tempfile::tempdir().unwrap();
    let target = "x86_64-unknown-linux-musl";
    let mut install = Command::new("cargo");
    install
        .args(["install", "--offline", "--locked", "--target", target])
        .arg("--path")
        .arg(unpack_to.join(format!("kubectl-oidc-login-{VERSION}")))
        .arg("--root")
        .arg(root.path())
        // Intermediate artifacts in the project's target directory (cargo's build-dir), the
        // installed build's own binary apart from the workspace's, which the tests beside this
        // one run and scripts/release packages.
        .arg("--target-dir")
        .arg(unpack_to.join("out"))
        .arg("--config")
        .arg(format!(
            "build.build-dir={:?}",
            repo().join("target").display().to_string()
        ))
        // ./install.sh's C compiler for ring, so its compiled dependencies are reused.
        .env("CC_x86_64_unknown_linux_musl", install_sh_cc());
    crate::install::without_cargo_test_env(&mut install);
    let installed = run_with_timeout(install, Duration::from_secs(1200));
    installed.assert_ok();

    let bin = root.path().join("bin");
    assert!(
        bin.join("kubectl-oidc_login").is_file(),
        "{}",
        installed.stderr
    );
    let mut kubectl = Command::new(kubectl_path_absolute());
    kubectl.args(["oidc-login", "--version"]).env(
        "PATH",
        format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
    );
    let version = output(&mut kubectl);
    version.assert_ok();
    assert_eq!(
        version.stdout.trim(),
        format!("kubectl-oidc_login {VERSION}")
    );
}

/// SHA256SUMS of the release: file name to sum.
fn sums() -> std::collections::BTreeMap<String, String> {
    std::fs::read_to_string(dist().join("SHA256SUMS"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(sum, name)| (name.to_string(), sum.to_string()))
        .collect()
}

fn release_url(file: &str) -> String {
    format!(
        "https://github.com/kubectl-oidc-login/kubectl-oidc-login/releases/download/v{VERSION}/{file}"
    )
}

/// The Homebrew formula, the Scoop manifest and the winget manifests scripts/release writes from
/// the same archives and sums: Ruby's own parser accepts the formula, and each names every
/// archive of its platforms with the sum SHA256SUMS has for it. Not checked here (no tool or
/// registry package can do it): `brew audit`/`brew install` (Homebrew runs on macOS and Linux
/// with its own Ruby and network), Scoop's and winget's JSON schemas (published on GitHub and
/// aka.ms only) and `winget validate` (Windows only).
#[test]
fn the_homebrew_formula_scoop_and_winget_manifests_name_the_release_archives_and_sums() {
    let sums = sums();
    let formula = dist().join("homebrew/kubectl-oidc-login.rb");
    let ruby = output(Command::new("ruby").arg("-c").arg(&formula));
    ruby.assert_ok();
    assert_eq!(ruby.stdout.trim(), "Syntax OK");
    let text = std::fs::read_to_string(&formula).unwrap();
    let mut named = 0;
    for (os, arch, archive, _) in platforms() {
        if os == "windows" {
            continue;
        }
        let url = format!("url \"{}\"", release_url(&archive));
        let at = text
            .find(&url)
            .unwrap_or_else(|| panic!("{os}/{arch} ({archive}) not in the formula:\n{text}"));
        let sha = format!("sha256 \"{}\"", sums[&archive]);
        assert!(
            text[at..].lines().nth(1).unwrap().trim() == sha,
            "{archive}: the line after its url is not {sha}:\n{text}"
        );
        named += 1;
    }
    assert_eq!(named, 4);
    for installed in [
        "bin.install \"kubectl-oidc_login\", \"kubectl_complete-oidc_login\"",
        "man1.install Dir[\"man/*.1\"]",
        "completions/kubectl-oidc_login.bash",
        "completions/_kubectl-oidc_login",
        "completions/kubectl-oidc_login.fish",
    ] {
        assert!(text.contains(installed), "{installed} not in the formula");
    }

    let windows = format!("kubectl-oidc_login-v{VERSION}-windows-amd64.zip");
    let in_zip = crate::release::listing(&dist().join(&windows));
    let scoop: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dist().join("scoop/kubectl-oidc-login.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(scoop["version"], VERSION);
    assert_eq!(scoop["architecture"]["64bit"]["url"], release_url(&windows));
    assert_eq!(
        scoop["architecture"]["64bit"]["hash"],
        sums[&windows].as_str()
    );
    assert!(in_zip.contains(&scoop["bin"].as_str().unwrap().to_string()));

    let dir = dist().join(format!(
        "winget/manifests/k/KubectlOidcLogin/KubectlOidcLogin/{VERSION}"
    ));
    let mut types = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let manifest =
            &crate::common::parse_yaml(&std::fs::read_to_string(entry.path()).unwrap())[0];
        assert_eq!(
            manifest["PackageIdentifier"],
            "KubectlOidcLogin.KubectlOidcLogin"
        );
        assert_eq!(manifest["PackageVersion"], VERSION);
        assert_eq!(manifest["ManifestVersion"], "1.6.0");
        types.push(manifest["ManifestType"].as_str().unwrap().to_string());
        if manifest["ManifestType"] == "installer" {
            let installer = &manifest["Installers"][0];
            assert_eq!(installer["InstallerUrl"], release_url(&windows));
            assert_eq!(
                installer["InstallerSha256"],
                sums[&windows].to_uppercase().as_str()
            );
            let nested = manifest["NestedInstallerFiles"][0]["RelativeFilePath"]
                .as_str()
                .unwrap();
            assert!(
                in_zip.contains(&nested.to_string()),
                "{nested} not in {windows}"
            );
        }
    }
    types.sort();
    assert_eq!(types, ["defaultLocale", "installer", "version"]);
    eprintln!(
        "channels: not checked here: brew audit and install, Scoop's and winget's JSON schemas, \
         winget validate (no tool or registry package for them runs on this machine)"
    );
}

/// The container image scripts/release builds with crane (no daemon): an OCI layout whose index
/// holds linux/amd64 and linux/arm64, each FROM scratch with the plugin as entrypoint, an
/// unprivileged user and the CA certificates. The amd64 image runs under Debian's crun, with
/// the image's own entrypoint, user, working directory and environment, as a CI job would: a
/// client-credentials login against the test provider, the token cached in the user's HOME
/// inside the container. crun 1.8 refuses this machine's hybrid cgroup layout ("cgroups in
/// hybrid mode not supported"), so it runs in a mount namespace of its own without the cgroup2
/// mount and with its cgroup manager off: the container's namespaces are real, its resource
/// limits are not set.
#[test]
fn the_container_image_holds_both_platforms_and_logs_in_under_crun() {
    let layout = dist().join("image");
    if !layout.join("index.json").is_file() {
        if tool(
            "crane",
            "crane",
            "crane",
            "github.com/google/go-containerregistry",
        )
        .is_none()
        {
            return;
        }
        panic!(
            "{} is missing though crane is built: ./test.sh makes it with scripts/release",
            layout.display()
        );
    }
    let blob = |digest: &serde_json::Value| {
        layout
            .join("blobs/sha256")
            .join(digest.as_str().unwrap().trim_start_matches("sha256:"))
    };
    let json = |path: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    let top = json(layout.join("index.json"));
    let index = json(blob(&top["manifests"][0]["digest"]));
    let mut platforms = Vec::new();
    let mut amd64 = None;
    for manifest in index["manifests"].as_array().unwrap() {
        let platform = format!(
            "{}/{}",
            manifest["platform"]["os"].as_str().unwrap(),
            manifest["platform"]["architecture"].as_str().unwrap()
        );
        if platform == "linux/amd64" {
            amd64 = Some(json(blob(&manifest["digest"])));
        }
        platforms.push(platform);
    }
    platforms.sort();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    let manifest = amd64.unwrap();
    let config = json(blob(&manifest["config"]["digest"]));
    let image = &config["config"];
    assert_eq!(
        image["Entrypoint"],
        serde_json::json!(["/kubectl-oidc_login"])
    );
    assert_eq!(image["User"], "65532:65532");
    assert_eq!(config["architecture"], "amd64");

    let bundle = tempfile::tempdir().unwrap();
    let rootfs = bundle.path().join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        // As root, tar keeps the layer's owners (the user's HOME is 65532's).
        output(
            Command::new("tar")
                .arg("--numeric-owner")
                .arg("-xf")
                .arg(blob(&layer["digest"]))
                .arg("-C")
                .arg(&rootfs),
        )
        .assert_ok();
    }
    for file in ["LICENSE", "etc/ssl/certs/ca-certificates.crt", "etc/passwd"] {
        assert!(rootfs.join(file).is_file(), "{file} not in the image");
    }

    let world = World::new(300);
    let mut args: Vec<String> = image["Entrypoint"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    args.extend([
        "get-token".to_string(),
        format!("--oidc-issuer-url={}", world.provider.issuer),
        "--oidc-client-id=robot".into(),
        "--oidc-client-secret=robot-secret".into(),
        "--grant-type=client-credentials".into(),
    ]);
    let (uid, gid) = image["User"].as_str().unwrap().split_once(':').unwrap();
    // The loopback provider is reached through the host's network (no network namespace).
    let spec = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": uid.parse::<u32>().unwrap(), "gid": gid.parse::<u32>().unwrap()},
            "args": args,
            "env": image["Env"],
            "cwd": image["WorkingDir"],
            "noNewPrivileges": true,
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "oidc-login",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        ],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]},
    });
    std::fs::write(
        bundle.path().join("config.json"),
        serde_json::to_vec_pretty(&spec).unwrap(),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut crun = Command::new("unshare");
    crun.args(["-m", "sh", "-c"])
        .arg(
            "umount /sys/fs/cgroup/unified 2>/dev/null; \
             exec crun --root \"$1\" --cgroup-manager=disabled run --bundle \"$2\" image-test",
        )
        .arg("sh")
        .arg(state.path())
        .arg(bundle.path());
    let run = output(&mut crun);
    run.assert_ok();
    assert!(
        run.json()["status"]["token"].as_str().is_some(),
        "{}",
        run.stdout
    );
    assert_eq!(world.provider.count("/protocol/openid-connect/token"), 1);
    let cache = rootfs.join("home/nonroot/.kube/cache/oidc-login");
    let cached: Vec<_> = std::fs::read_dir(&cache)
        .unwrap_or_else(|e| panic!("{}: {e}", cache.display()))
        .flatten()
        .collect();
    assert!(
        !cached.is_empty(),
        "no token cached in the container's HOME"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(cached[0].metadata().unwrap().uid(), 65532);
}

/// actionlint (with shellcheck over every `run:` script) passes on every workflow, and the
/// release workflow hands the macOS runners' binaries to scripts/release, which is how darwin
/// reaches the archives and the krew manifest.
#[test]
fn actionlint_passes_on_every_workflow_and_the_release_packages_darwin() {
    let Some(actionlint) = tool(
        "actionlint",
        "actionlint",
        "actionlint",
        "github.com/rhysd/actionlint",
    ) else {
        return;
    };
    let mut lint = Command::new(actionlint);
    lint.args(["-shellcheck", "shellcheck"]).current_dir(repo());
    let run = output(&mut lint);
    assert!(run.ok(), "actionlint:\n{}{}", run.stdout, run.stderr);
    let release = std::fs::read_to_string(repo().join(".github/workflows/release.yml")).unwrap();
    for target in ["aarch64-apple-darwin", "x86_64-apple-darwin"] {
        assert!(
            release.contains(&format!("--prebuilt {target}=")),
            "release.yml does not pass the {target} binary to scripts/release"
        );
    }
}

/// The Nix expression scripts/release writes parses with Debian's nix (`nix-instantiate
/// --parse`), and names each macOS and Linux archive with its sum from SHA256SUMS. Not checked
/// here: a build with nixpkgs (no nixpkgs channel can be fetched).
#[test]
fn the_nix_expression_parses_and_names_the_release_archives() {
    let nix = dist().join("nix/kubectl-oidc-login.nix");
    if !Path::new("/usr/bin/nix-instantiate").exists() {
        not_built_here("not built here: nix-instantiate (Debian's nix-bin is not installed)");
        return;
    }
    let parsed = output(Command::new("nix-instantiate").arg("--parse").arg(&nix));
    parsed.assert_ok();
    let text = std::fs::read_to_string(&nix).unwrap();
    let sums = sums();
    for (system, os, arch) in [
        ("x86_64-linux", "linux", "amd64"),
        ("aarch64-linux", "linux", "arm64"),
        ("x86_64-darwin", "darwin", "amd64"),
        ("aarch64-darwin", "darwin", "arm64"),
    ] {
        let archive = format!("kubectl-oidc_login-v{VERSION}-{os}-{arch}.tar.gz");
        let line = format!(
            "{system} = {{ url = \"{}\"; sha256 = \"{}\"; }};",
            release_url(&archive),
            sums[&archive]
        );
        assert!(text.contains(&line), "{line} not in {text}");
    }
}
