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

/// The module a file is, for the import graph: a top-level module, or one command (commands
/// may share steps, but never in a circle).
fn module_of(relative: &Path) -> String {
    let parts: Vec<&str> = relative
        .components()
        .filter_map(|c| c.as_os_str().to_str())
        .collect();
    match parts.as_slice() {
        ["commands", file] => format!("commands::{}", file.trim_end_matches(".rs")),
        [first, ..] => first.trim_end_matches(".rs").to_string(),
        [] => String::new(),
    }
}

#[test]
fn the_import_graph_has_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let from = module_of(relative);
        if from == "lib" || from == "main" {
            continue;
        }
        let source = std::fs::read_to_string(file).unwrap();
        let mut targets: Vec<String> = Vec::new();
        for (i, _) in source.match_indices("crate::commands::") {
            let rest = &source[i + "crate::commands::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            targets.push(format!("commands::{name}"));
        }
        if from.starts_with("commands::") {
            for (i, _) in source.match_indices("super::") {
                let rest = &source[i + "super::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                targets.push(format!("commands::{name}"));
            }
        }
        targets.extend(
            crate_imports(&source)
                .into_iter()
                .filter(|name| name != "commands"),
        );
        for to in targets {
            if to != from {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    // Depth-first search; a node met again while still on the path closes a cycle.
    fn visit(
        node: &str,
        edges: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = Default::default();
    for node in edges.keys() {
        if let Some(cycle) = visit(node, &edges, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
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
