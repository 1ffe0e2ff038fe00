//! The fuzz targets' property checks (fuzz/checks/, the same code the libFuzzer targets run)
//! over every committed input: the seed corpora (fuzz/seeds/TARGET/) and every input a
//! campaign ever found failing (fuzz/findings/TARGET/), on stable and without a fuzzing
//! engine, so a finding stays fixed. New inputs come from `scripts/fuzz`.

use std::path::{Path, PathBuf};

use crate::fuzz_checks as checks;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found
}

#[test]
fn every_seed_and_finding_passes_its_targets_check() {
    let root = fuzz_dir();
    let mut failures = Vec::new();
    let mut replayed = 0;
    for (name, _) in checks::TARGETS {
        let check = checks::check(name);
        let seeds = files(&root.join("seeds").join(name));
        assert!(
            !seeds.is_empty(),
            "fuzz target {name} has no seeds in fuzz/seeds/{name}"
        );
        for file in seeds
            .iter()
            .chain(&files(&root.join("findings").join(name)))
        {
            let data = std::fs::read(file).expect("a committed input");
            replayed += 1;
            if let Err(panic) = std::panic::catch_unwind(|| check(&data)) {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{}: {why}", file.display()));
            }
        }
    }
    eprintln!(
        "replayed {replayed} inputs of {} fuzz targets",
        checks::TARGETS.len()
    );
    assert!(
        failures.is_empty(),
        "{} inputs fail their check:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The table of checks, the targets cargo-fuzz builds and the committed directories name the
/// same targets, so no target goes unreplayed and no corpus is left without its target.
#[test]
fn the_targets_the_checks_and_the_corpora_agree() {
    let root = fuzz_dir();
    let mut table: Vec<&str> = checks::TARGETS.iter().map(|(n, _)| *n).collect();
    table.sort();
    let names = |dir: &str, strip: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(root.join(dir))
            .into_iter()
            .flatten()
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter_map(|n| n.strip_suffix(strip).map(str::to_string))
            .collect();
        names.sort();
        names
    };
    assert_eq!(names("fuzz_targets", ".rs"), table, "fuzz/fuzz_targets/");
    assert_eq!(names("seeds", ""), table, "fuzz/seeds/");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for name in &table {
        assert!(
            manifest.contains(&format!("path = \"fuzz_targets/{name}.rs\"")),
            "fuzz/Cargo.toml lacks the target {name}"
        );
    }
    for finding in names("findings", "") {
        assert!(
            table.contains(&finding.as_str()),
            "fuzz/findings/{finding} names no target"
        );
    }
}
