//! The import graph runs one way: `cli` (syntax) → `settings`/`dispatch` → `commands` →
//! building blocks. This reads `src/` as text and fails when a file reaches back up: a
//! building block importing `cli`, `settings`, `dispatch`, a command or the top-level error,
//! or `cli` importing anything of the crate outside itself.

use std::path::{Path, PathBuf};

/// The modules above the building blocks, as the first segment after `crate::`.
const TOP: &[&str] = &["cli", "settings", "dispatch", "commands", "error"];

#[derive(Debug, PartialEq)]
enum Layer {
    /// lib.rs and main.rs wire everything together.
    Root,
    Cli,
    /// settings.rs, dispatch.rs, error.rs.
    Top,
    Command,
    BuildingBlock,
}

fn layer(relative: &Path) -> Layer {
    let first = relative
        .components()
        .next()
        .and_then(|c| c.as_os_str().to_str())
        .unwrap_or_default();
    match first {
        "lib.rs" | "main.rs" => Layer::Root,
        "cli" | "cli.rs" => Layer::Cli,
        "settings.rs" | "dispatch.rs" | "error.rs" => Layer::Top,
        "commands" => Layer::Command,
        _ => Layer::BuildingBlock,
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The first path segment after every `crate::` in `source` (comments included: a doc link
/// up the layers is a dependency a reader follows too), and `super::` climbs out of `cli/`.
fn crate_imports(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (i, _) in source.match_indices("crate::") {
        // `$crate::` inside a macro is the macro's own crate path, not an import.
        if source[..i].ends_with('$') {
            continue;
        }
        let rest = &source[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        found.push(name);
    }
    // `use crate::{a, b}` names several at once.
    for (i, _) in source.match_indices("crate::{") {
        let rest = &source[i + "crate::{".len()..];
        let group = &rest[..rest.find('}').unwrap_or(rest.len())];
        found.extend(group.split(',').map(|item| {
            item.trim()
                .split("::")
                .next()
                .unwrap_or_default()
                .to_string()
        }));
    }
    found.retain(|n| !n.is_empty());
    found
}

fn violations() -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(files.len() > 20, "src/ has the crate's files");
    let mut problems = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let layer = layer(relative);
        let source = std::fs::read_to_string(file).unwrap();
        for name in crate_imports(&source) {
            let bad = match layer {
                Layer::Root | Layer::Top => false,
                Layer::Cli => name != "cli",
                // Commands take plain settings, never clap types, and share steps among
                // themselves (login and setup reuse get-token's `obtain`).
                Layer::Command => matches!(name.as_str(), "cli" | "settings" | "dispatch"),
                Layer::BuildingBlock => TOP.contains(&name.as_str()),
            };
            if bad {
                problems.push(format!(
                    "{} ({layer:?}) imports crate::{name}",
                    relative.display()
                ));
            }
        }
        // Within cli/, `super::` must stay inside cli/.
        if layer == Layer::Cli && relative.components().count() == 1 {
            assert!(!source.contains("super::"), "{}", relative.display());
        }
    }
    problems
}

#[test]
fn no_module_reaches_back_up_the_layers() {
    let problems = violations();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_scanner_sees_imports_in_every_form() {
    // The check above is only as good as this scanner: it must see each way Rust names a
    // module, or a violation would pass unnoticed.
    let source = "use crate::cli::Cli;\nuse crate::{error::Error, store};\nlet x = crate::commands::get_token::run;\n$crate::log::enabled(1)";
    let mut found = crate_imports(source);
    found.sort();
    assert_eq!(
        found,
        ["cli", "commands", "error", "store"].map(String::from)
    );
    assert_eq!(layer(Path::new("oidc/grant.rs")), Layer::BuildingBlock);
    assert_eq!(layer(Path::new("commands/setup.rs")), Layer::Command);
    assert_eq!(layer(Path::new("cli/complete.rs")), Layer::Cli);
    assert_eq!(layer(Path::new("error.rs")), Layer::Top);
}
