//! The import graph runs one way: `cli` (syntax) → `dispatch`/`settings` → `commands` →
//! `error` → building blocks. This reads `src/` as text and fails when a file reaches back
//! up: a building block importing `cli`, `settings`, `dispatch`, a command or the commands'
//! error; a command importing `cli`, `settings`, `dispatch` or another command; `cli`
//! importing anything of the crate outside itself; or any circle of imports.
//!
//! The scanner resolves every form a Rust path can take: `use` trees with groups nested to any
//! depth, `self`, renames and globs, `crate::`, `super::` (any number) and `self::` paths,
//! and paths written in expressions, attributes, macro calls and strings (serde's `with =
//! "crate::…"`). Comments count too: a doc link up the layers is a dependency a reader
//! follows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, PartialEq, Clone, Copy)]
enum Layer {
    /// lib.rs and main.rs wire everything together.
    Root,
    Cli,
    /// dispatch.rs and settings.rs: flags → settings → the command to run.
    Top,
    Command,
    /// error.rs: what the commands return, gathered from the building blocks' errors.
    CommandError,
    BuildingBlock,
}

/// The layer of a module path (its first segment decides).
fn layer_of_module(first: &str) -> Layer {
    match first {
        "" | "lib" | "main" => Layer::Root,
        "cli" => Layer::Cli,
        "settings" | "dispatch" => Layer::Top,
        "commands" => Layer::Command,
        "error" => Layer::CommandError,
        _ => Layer::BuildingBlock,
    }
}

/// A source file's module path: `commands/login.rs` → `["commands", "login"]`,
/// `loopback/mod.rs` → `["loopback"]`, `lib.rs` → `[]`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .components()
        .filter_map(|c| c.as_os_str().to_str())
        .map(|s| s.trim_end_matches(".rs").to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    /// `::`
    PathSep,
    Open,
    Close,
    Comma,
    Semi,
    Star,
    Dollar,
    Other,
}

fn tokens(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
            continue;
        }
        out.push(match c {
            ':' if chars.get(i + 1) == Some(&':') => {
                i += 1;
                Token::PathSep
            }
            '{' => Token::Open,
            '}' => Token::Close,
            ',' => Token::Comma,
            ';' => Token::Semi,
            '*' => Token::Star,
            '$' => Token::Dollar,
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            _ => Token::Other,
        });
        i += 1;
    }
    out
}

/// Reads one use tree at `*at` with `prefix` before it and returns every path it names. A
/// glob or a `self` names the prefix itself; a rename keeps the path it renames.
fn use_tree(tokens: &[Token], at: &mut usize, prefix: Vec<String>) -> Vec<Vec<String>> {
    let mut path = prefix;
    loop {
        match tokens.get(*at) {
            Some(Token::Open) => {
                *at += 1;
                let mut found = Vec::new();
                while !matches!(tokens.get(*at), None | Some(Token::Close | Token::Semi)) {
                    found.extend(use_tree(tokens, at, path.clone()));
                    if tokens.get(*at) == Some(&Token::Comma) {
                        *at += 1;
                    } else if tokens.get(*at) != Some(&Token::Close) {
                        // Not Rust after all (prose that says "use"): stop here.
                        break;
                    }
                }
                if tokens.get(*at) == Some(&Token::Close) {
                    *at += 1;
                }
                return found;
            }
            Some(Token::Star) => {
                *at += 1;
                return vec![path];
            }
            Some(Token::Ident(name)) => {
                if name != "self" || path.is_empty() {
                    path.push(name.clone());
                }
                *at += 1;
                if tokens.get(*at) == Some(&Token::PathSep) {
                    *at += 1;
                    continue;
                }
                if let Some(Token::Ident(word)) = tokens.get(*at) {
                    if word == "as" {
                        *at += 2;
                    }
                }
                return vec![path];
            }
            Some(Token::PathSep) => {
                // A leading `::` (an extern crate path).
                *at += 1;
            }
            _ => return if path.is_empty() { vec![] } else { vec![path] },
        }
    }
}

/// Every path in `source` that starts at this crate, resolved to an absolute module path
/// (without `crate`). `module` is the file's own module path, which `self::` and `super::`
/// start from; in the crate root a bare first segment is a module of the crate too.
fn crate_paths(source: &str, module: &[String]) -> Vec<Vec<String>> {
    let tokens = tokens(source);
    let mut found = Vec::new();
    // Inline modules (`mod tests { use super::*; }`) move `self` and `super` down a level:
    // (name, brace depth inside it).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    while i < tokens.len() {
        let after_dollar = i > 0 && tokens[i - 1] == Token::Dollar;
        let after_sep = i > 0 && tokens[i - 1] == Token::PathSep;
        let here = || -> Vec<String> {
            module
                .iter()
                .cloned()
                .chain(inline.iter().map(|(name, _)| name.clone()))
                .collect()
        };
        let paths = match &tokens[i] {
            Token::Ident(word) if word == "use" && !after_sep => {
                i += 1;
                use_tree(&tokens, &mut i, Vec::new())
            }
            Token::Ident(word)
                if matches!(word.as_str(), "crate" | "super" | "self")
                    && !after_dollar
                    && !after_sep
                    && tokens.get(i + 1) == Some(&Token::PathSep) =>
            {
                use_tree(&tokens, &mut i, Vec::new())
            }
            Token::Ident(word) if word == "mod" => {
                if let (Some(Token::Ident(name)), Some(Token::Open)) =
                    (tokens.get(i + 1), tokens.get(i + 2))
                {
                    depth += 1;
                    inline.push((name.clone(), depth));
                    i += 3;
                } else {
                    i += 1;
                }
                continue;
            }
            Token::Open => {
                depth += 1;
                i += 1;
                continue;
            }
            Token::Close => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        };
        let here = here();
        found.extend(paths.into_iter().filter_map(|path| resolve(path, &here)));
    }
    found
}

fn resolve(path: Vec<String>, module: &[String]) -> Option<Vec<String>> {
    let first = path.first()?.as_str();
    match first {
        "crate" => Some(path[1..].to_vec()),
        "self" => Some(
            module
                .iter()
                .cloned()
                .chain(path[1..].iter().cloned())
                .collect(),
        ),
        "super" => {
            let ups = path.iter().take_while(|s| *s == "super").count();
            let base = module.len().checked_sub(ups)?;
            Some(
                module[..base]
                    .iter()
                    .cloned()
                    .chain(path[ups..].iter().cloned())
                    .collect(),
            )
        }
        // Elsewhere a bare path names another crate (or an item already in scope).
        _ if module.is_empty() => Some(path),
        _ => None,
    }
}

/// The node of the import graph a module path belongs to: the top-level module, except that
/// each command is a node of its own (no command may import another).
fn node(path: &[String]) -> String {
    match path {
        [first, command, ..] if first == "commands" => format!("commands::{command}"),
        [first, ..] => first.clone(),
        [] => String::new(),
    }
}

struct Tree {
    /// (path relative to src/, source text)
    files: Vec<(PathBuf, String)>,
}

impl Tree {
    fn read() -> Tree {
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
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut paths = Vec::new();
        rust_files(&src, &mut paths);
        paths.sort();
        assert!(paths.len() > 20, "src/ has the crate's files");
        let files = paths
            .iter()
            .map(|p| {
                (
                    p.strip_prefix(&src).unwrap().to_path_buf(),
                    std::fs::read_to_string(p).unwrap(),
                )
            })
            .collect();
        Tree { files }
    }

    /// The same tree with one file's text replaced (or added).
    fn with(&self, relative: &str, source: &str) -> Tree {
        let mut files: Vec<_> = self
            .files
            .iter()
            .filter(|(p, _)| p != Path::new(relative))
            .cloned()
            .collect();
        files.push((PathBuf::from(relative), source.to_string()));
        Tree { files }
    }

    /// The top-level module names, so that paths to items the crate root defines (macros such
    /// as `crate::debug!`) are not taken for modules.
    fn modules(&self) -> BTreeSet<String> {
        self.files
            .iter()
            .filter_map(|(p, _)| module_path(p).first().cloned())
            .collect()
    }

    /// (file, its module path, the crate paths it names)
    fn imports(&self) -> Vec<(PathBuf, Vec<String>, Vec<Vec<String>>)> {
        let modules = self.modules();
        self.files
            .iter()
            .map(|(relative, source)| {
                let module = module_path(relative);
                let paths = crate_paths(source, &module)
                    .into_iter()
                    .filter(|p| p.first().is_some_and(|f| modules.contains(f)))
                    .collect();
                (relative.clone(), module, paths)
            })
            .collect()
    }

    fn violations(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (file, module, paths) in self.imports() {
            let from = layer_of_module(module.first().map(String::as_str).unwrap_or(""));
            for path in paths {
                let to = layer_of_module(&path[0]);
                let bad = match from {
                    Layer::Root | Layer::Top => false,
                    Layer::Cli => to != Layer::Cli,
                    Layer::Command => {
                        matches!(to, Layer::Cli | Layer::Top)
                            || (to == Layer::Command && node(&path) != node(&module))
                    }
                    Layer::CommandError => to != Layer::BuildingBlock,
                    Layer::BuildingBlock => to != Layer::BuildingBlock,
                };
                // `commands/mod.rs` lists the commands; that is not an import.
                let listing = module == ["commands"] && path.len() == 2 && path[0] == "commands";
                if bad && !listing {
                    problems.push(format!(
                        "{} ({from:?}) imports crate::{} ({to:?})",
                        file.display(),
                        path.join("::")
                    ));
                }
            }
        }
        problems.sort();
        problems.dedup();
        problems
    }

    fn edges(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (_, module, paths) in self.imports() {
            let from = node(&module);
            if from.is_empty() {
                continue;
            }
            for path in paths {
                let to = node(&path);
                // A parent module naming its children (`commands/mod.rs`) is no dependency.
                let listing = module.len() == 1 && path.len() == 2 && path[0] == module[0];
                if to != from && !to.is_empty() && !listing {
                    edges.entry(from.clone()).or_default().insert(to);
                }
            }
        }
        edges
    }

    /// One circle of imports, if there is any.
    fn cycle(&self) -> Option<Vec<String>> {
        let edges = self.edges();
        // Depth-first search; a node met again while still on the path closes a cycle.
        fn visit(
            node: &str,
            edges: &BTreeMap<String, BTreeSet<String>>,
            path: &mut Vec<String>,
            done: &mut BTreeSet<String>,
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
        let mut done = BTreeSet::new();
        edges
            .keys()
            .find_map(|node| visit(node, &edges, &mut Vec::new(), &mut done))
    }
}

#[test]
fn no_module_reaches_back_up_the_layers() {
    let problems = Tree::read().violations();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_import_graph_has_no_cycle() {
    if let Some(cycle) = Tree::read().cycle() {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn a_planted_grouped_import_is_caught() {
    // The circle this test once missed: the commands' error importing the settings (which
    // import every command's options) through a grouped `use`.
    let tree = Tree::read();
    let error = &tree
        .files
        .iter()
        .find(|(p, _)| p == Path::new("error.rs"))
        .unwrap()
        .1;
    let planted = tree.with(
        "error.rs",
        &format!("use crate::{{settings::{{self, SettingsError}}, store}};\n{error}"),
    );
    let cycle = planted.cycle().expect("the planted circle is found");
    assert!(cycle.contains(&"settings".to_string()), "{cycle:?}");
    assert!(cycle.contains(&"error".to_string()), "{cycle:?}");
    assert!(planted
        .violations()
        .iter()
        .any(|v| v.starts_with("error.rs (CommandError) imports crate::settings")));

    // A command reaching another command's step, written as a nested group.
    let planted = tree.with(
        "commands/login.rs",
        "use crate::{commands::{get_token::{self as gt}}, store};\n",
    );
    assert_eq!(
        planted.violations(),
        ["commands/login.rs (Command) imports crate::commands::get_token (Command)"]
    );
}

#[test]
fn the_scanner_sees_imports_in_every_form() {
    // The checks above are only as good as this scanner: it must see each way Rust names a
    // module, or a violation would pass unnoticed.
    let source = r#"
        use crate::cli::Cli;
        pub(crate) use crate::{error::Error, store::{self, disk::{Disk as D, *}}};
        use super::sibling::Thing;
        use super::super::grand;
        use self::child::Item;
        use std::io::{self, Write};
        let x = crate::commands::get_token::run;
        #[serde(with = "crate::jwt::serde_exp")]
        crate::debug!(1, "{}", crate::claims::human(x));
        $crate::log::enabled(1)
        /// See [`crate::oidc::grant`].
        // We use the store; then we go on.
        mod tests { use super::*; use super::super::up; }
        use self::after::Inline;
    "#;
    let module: Vec<String> = ["oidc", "grant"].map(String::from).to_vec();
    let mut found: Vec<String> = crate_paths(source, &module)
        .iter()
        .map(|p| p.join("::"))
        .collect();
    found.sort();
    let mut expected = vec![
        "cli::Cli",
        "error::Error",
        "store",
        "store::disk::Disk",
        "store::disk",
        "oidc::sibling::Thing",
        "grand",
        "oidc::grant::child::Item",
        "commands::get_token::run",
        "jwt::serde_exp",
        "debug",
        "claims::human",
        "oidc::grant",
        "oidc::grant",
        "oidc::up",
        "oidc::grant::after::Inline",
    ];
    expected.sort();
    assert_eq!(found, expected);

    // In the crate root a bare path is one of the crate's modules.
    assert_eq!(
        crate_paths("use cli::Command;", &[]),
        [vec!["cli".to_string(), "Command".to_string()]]
    );
    assert!(crate_paths("use cli::Command;", &module).is_empty());

    assert_eq!(module_path(Path::new("loopback/mod.rs")), ["loopback"]);
    assert_eq!(
        module_path(Path::new("commands/setup.rs")),
        ["commands", "setup"]
    );
    assert_eq!(layer_of_module("oidc"), Layer::BuildingBlock);
    assert_eq!(layer_of_module("commands"), Layer::Command);
    assert_eq!(layer_of_module("error"), Layer::CommandError);
    assert_eq!(
        node(&["commands".into(), "login".into(), "run".into()]),
        "commands::login"
    );
}
