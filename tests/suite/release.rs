//! The release command's output, as a krew user's machine checks it: every archive's SHA-256
//! recomputed against SHA256SUMS and the krew manifest (darwin included), the binary, LICENSE,
//! README, completion helper, completions and man pages inside each archive, the version it
//! prints equal to Cargo.toml's, and a host-only run into an absolute directory. The other
//! channels made from the same archives are checked in channels.rs. `./test.sh` runs `scripts/release --profile
//! test --out target/dist-test` (the same packaging as a release, over the release build of
//! x86_64 Linux and dev builds of the others) beside the tests; they wait for it.
#![cfg(target_os = "linux")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

pub(crate) fn dist() -> PathBuf {
    crate::common::wait_for_platform_builds();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dist-test");
    assert!(
        dir.join("oidc-login.yaml").exists(),
        "{} is missing: ./test.sh runs scripts/release --profile test --out target/dist-test",
        dir.display()
    );
    dir
}

/// Every OS/arch the release makes an archive for, as krew names them, sorted.
pub(crate) const PLATFORMS: [&str; 5] = [
    "darwin/amd64",
    "darwin/arm64",
    "linux/amd64",
    "linux/arm64",
    "windows/amd64",
];

pub(crate) fn sha256(path: &Path) -> String {
    let digest = Sha256::digest(std::fs::read(path).unwrap());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn checksums_and_krew_manifest_match_the_archives() {
    let dist = dist();
    let sums: BTreeMap<String, String> = std::fs::read_to_string(dist.join("SHA256SUMS"))
        .unwrap()
        .lines()
        .map(|l| {
            let (sum, name) = l.split_once("  ").unwrap();
            (name.to_string(), sum.to_string())
        })
        .collect();
    // Five archives (the darwin ones over test.sh's stand-in binaries, see channels.rs), and the
    // .deb and .rpm of scripts/release-channels.
    assert_eq!(
        sums.keys()
            .filter(|n| n.ends_with(".tar.gz") || n.ends_with(".zip"))
            .count(),
        5,
        "{sums:?}"
    );
    for (name, sum) in &sums {
        assert_eq!(&sha256(&dist.join(name)), sum, "{name}");
    }

    let manifest =
        &crate::common::parse_yaml(&std::fs::read_to_string(dist.join("oidc-login.yaml")).unwrap())
            [0];
    assert_eq!(manifest["kind"], "Plugin");
    assert_eq!(manifest["metadata"]["name"], "oidc-login");
    assert_eq!(
        manifest["spec"]["version"],
        format!("v{}", env!("CARGO_PKG_VERSION"))
    );
    let platforms = manifest["spec"]["platforms"].as_array().unwrap();
    let mut seen = Vec::new();
    for platform in platforms {
        let uri = platform["uri"].as_str().unwrap();
        let file = uri.rsplit('/').next().unwrap();
        assert_eq!(
            platform["sha256"].as_str().unwrap(),
            sha256(&dist.join(file)),
            "{file}"
        );
        let bin = platform["bin"].as_str().unwrap();
        let listing = if file.ends_with(".zip") {
            Command::new("unzip")
                .arg("-l")
                .arg(dist.join(file))
                .output()
        } else {
            Command::new("tar")
                .arg("-tzf")
                .arg(dist.join(file))
                .output()
        }
        .unwrap();
        assert!(
            String::from_utf8_lossy(&listing.stdout).contains(bin),
            "{bin} not in {file}"
        );
        let labels = &platform["selector"]["matchLabels"];
        seen.push(format!(
            "{}/{}",
            labels["os"].as_str().unwrap(),
            labels["arch"].as_str().unwrap()
        ));
    }
    seen.sort();
    assert_eq!(seen, PLATFORMS);
}

#[test]
fn the_linux_archive_holds_a_static_binary_of_this_version() {
    let dist = dist();
    let archive = dist.join(format!(
        "kubectl-oidc_login-v{}-linux-amd64.tar.gz",
        env!("CARGO_PKG_VERSION")
    ));
    let unpacked = tempfile::tempdir().unwrap();
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(unpacked.path())
        .status()
        .unwrap();
    assert!(status.success());
    let out = Command::new(unpacked.path().join("kubectl-oidc_login"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("kubectl-oidc_login {}", env!("CARGO_PKG_VERSION"))
    );
}

/// The names in an archive (tar.gz or zip), without a leading `./`.
pub(crate) fn listing(archive: &Path) -> Vec<String> {
    let out = if archive.extension().is_some_and(|e| e == "zip") {
        Command::new("unzip").arg("-Z1").arg(archive).output()
    } else {
        Command::new("tar").arg("-tzf").arg(archive).output()
    }
    .unwrap();
    assert!(out.status.success(), "{}", archive.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_start_matches("./").to_string())
        .filter(|l| !l.is_empty() && !l.ends_with('/'))
        .collect()
}

/// Apache-2.0 asks for its text to travel with the binary; krew-index's validator refuses an
/// archive without a LICENSE; kubectl 1.26+ completes `kubectl oidc-login <TAB>` only through
/// the helper; man pages, one per command. Every archive, every platform.
#[test]
fn every_archive_holds_the_license_readme_completion_helper_and_man_pages() {
    let dist = dist();
    let license = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("LICENSE"))
        .expect("LICENSE at the root");
    assert!(license.contains("Apache License") && license.contains("Version 2.0, January 2004"));
    let mut archives = 0;
    for entry in std::fs::read_dir(&dist).unwrap().flatten() {
        let path = entry.path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.ends_with(".tar.gz") || name.ends_with(".zip")) {
            continue;
        }
        archives += 1;
        let files = listing(&path);
        let mut wanted = vec![
            "LICENSE".to_string(),
            "README.md".into(),
            "kubectl_complete-oidc_login".into(),
            "completions/kubectl-oidc_login.bash".into(),
            "completions/_kubectl-oidc_login".into(),
            "completions/kubectl-oidc_login.fish".into(),
            "man/kubectl-oidc_login.1".into(),
        ];
        // One page per command users run (the hidden ones have none).
        for command in [
            "get-token",
            "setup",
            "logout",
            "whoami",
            "login",
            "accounts",
            "clean",
            "completion",
            "doctor",
            "version",
        ] {
            wanted.push(format!("man/kubectl-oidc_login-{command}.1"));
        }
        for file in &wanted {
            assert!(files.contains(file), "{file} not in {name}: {files:?}");
        }
    }
    assert_eq!(archives, 5);
}

/// `scripts/release --host-only --out ABSOLUTE`: the quick check of one archive, written to an
/// absolute path (which the zip step once took for a relative one), byte for byte the archive
/// the full run made: the archives are reproducible. Its cargo build is the release build
/// ./install.sh made, so cargo finds nothing to do.
#[test]
fn a_host_only_release_into_an_absolute_directory_rebuilds_the_same_archive() {
    let dist = dist();
    let out = tempfile::tempdir().unwrap();
    let mut release = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/release"));
    release
        .arg("--host-only")
        .arg("--out")
        .arg(out.path().join("dist"));
    crate::install::without_cargo_test_env(&mut release);
    let run = crate::common::run_with_timeout(release, std::time::Duration::from_secs(1200));
    run.assert_ok();
    let archive = format!(
        "kubectl-oidc_login-v{}-linux-amd64.tar.gz",
        env!("CARGO_PKG_VERSION")
    );
    let written: Vec<String> = std::fs::read_dir(out.path().join("dist"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(written.contains(&archive), "{written:?}");
    assert_eq!(
        sha256(&out.path().join("dist").join(&archive)),
        sha256(&dist.join(&archive)),
        "{archive} differs between two runs of scripts/release"
    );
}
