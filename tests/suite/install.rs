//! `./install.sh` where cargo builds somewhere other than `target/`: with `CARGO_TARGET_DIR`,
//! and with `build.target-dir` in a cargo config. The script runs from a copy of the project
//! (symlinks to its files, so cargo finds its build fresh) whose own `target/` holds a stale
//! binary left by an earlier build; the installed plugin must be the one cargo just built.
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const STALE: &str = "#!/bin/sh\necho 'kubectl-oidc_login version 0.0.0-stale'\n";

/// The project's real target directory, whose release build (made by ./install.sh, which
/// ./test.sh follows) the script's cargo run finds up to date.
fn real_target() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target")
}

/// A copy of the project: a symlink per top-level entry, and a `target/` of its own with a
/// stale binary where both the static and the host build would be. Always at the same path,
/// since cargo's dep-info records the sources' absolute paths: after the first run, only a
/// change of the sources rebuilds the plugin for it.
fn project_copy() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let copy = Path::new(env!("CARGO_TARGET_TMPDIR")).join("install-sh-project");
    let _ = std::fs::remove_dir_all(&copy);
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(root).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" || name == ".git" {
            continue;
        }
        std::os::unix::fs::symlink(entry.path(), copy.join(&name)).unwrap();
    }
    let musl = format!("{}-unknown-linux-musl", std::env::consts::ARCH);
    for sub in [
        format!("target/{musl}/release"),
        "target/release".to_string(),
    ] {
        let stale = copy.join(sub).join("kubectl-oidc_login");
        std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
        std::fs::write(&stale, STALE).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    copy
}

/// Runs the copy's install.sh with `env`, installing into a directory of the test's own;
/// returns the run and the installed binary.
fn install(dir: &Path, copy: &Path, env: &[(&str, String)]) -> (crate::common::Run, PathBuf) {
    let bin = dir.join("bin");
    let mut command = Command::new("bash");
    command
        .arg(copy.join("install.sh"))
        .env("INSTALL_DIR", &bin)
        .env("HOME", dir.join("home"))
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"));
    without_cargo_test_env(&mut command);
    for (k, v) in env {
        command.env(k, v);
    }
    let run = crate::common::run_with_timeout(command, Duration::from_secs(900));
    (run, bin.join("kubectl-oidc_login"))
}

/// Removes what `cargo test` and ./test.sh put in the environment from a command that runs
/// cargo on the release build. `cargo test` hands the test its own CARGO_* variables
/// (CARGO_MANIFEST_DIR, ...); ring's build script watches CARGO_MANIFEST_DIR, so passing them on
/// would rebuild half the dependency tree that ./install.sh built without them. ./test.sh's
/// clippy wrapper would make cargo rebuild the plugin that ./install.sh built without it.
pub(crate) fn without_cargo_test_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if (name.starts_with("CARGO_") && name != "CARGO_HOME")
            || name == "RUSTC_WORKSPACE_WRAPPER"
            || name == "CLIPPY_ARGS"
        {
            command.env_remove(&name);
        }
    }
}

fn built_release_exists() -> bool {
    let musl = format!("{}-unknown-linux-musl", std::env::consts::ARCH);
    [format!("{musl}/release"), "release".to_string()]
        .iter()
        .any(|sub| real_target().join(sub).join("kubectl-oidc_login").exists())
}

fn assert_installed_the_fresh_build(run: &crate::common::Run, installed: &Path) {
    run.assert_ok();
    let version = Command::new(installed).arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(
        version.contains(env!("CARGO_PKG_VERSION")) && !version.contains("stale"),
        "installed {version:?}\nstdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
}

#[test]
fn install_sh_takes_the_binary_from_cargo_target_dir_and_build_target_dir() {
    if !built_release_exists() {
        crate::common::not_built_here(
            "not built here: install.sh with CARGO_TARGET_DIR (no release build in target/ to reuse; ./install.sh makes one, and ./test.sh runs after it)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let copy = project_copy();

    let (run, installed) = install(
        dir.path(),
        &copy,
        &[("CARGO_TARGET_DIR", real_target().display().to_string())],
    );
    assert_installed_the_fresh_build(&run, &installed);

    // The same through a cargo config's build.target-dir.
    let dir = tempfile::tempdir().unwrap();
    let copy = project_copy();
    std::fs::create_dir_all(copy.join(".cargo")).unwrap();
    std::fs::write(
        copy.join(".cargo/config.toml"),
        format!(
            "[build]\ntarget-dir = {:?}\n",
            real_target().display().to_string()
        ),
    )
    .unwrap();
    let (run, installed) = install(dir.path(), &copy, &[]);
    assert_installed_the_fresh_build(&run, &installed);
}
