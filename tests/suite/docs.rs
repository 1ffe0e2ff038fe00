//! Documentation that cannot lie: the pages (README.md, SECURITY.md, CONTRIBUTING.md and
//! docs/**/*.md) are read as a user would copy from them and checked against the binary's own
//! clap model and against the real kubectl:
//!
//! - every command line that runs the plugin (`kubectl oidc-login SUB …`, `kubectl-oidc_login
//!   SUB …`, a kubeconfig's exec `args`) names a subcommand that exists and only flags that
//!   subcommand accepts;
//! - every other `--flag` is either one of the plugin's or, in the same clause, said to belong to
//!   another program (the API server, kubectl, …); a flag the text calls ignored is one the
//!   plugin really ignores;
//! - flags hidden from `--help` (kubelogin's deprecated ones) are named only where the
//!   migration guide says what replaces them;
//! - every `KUBECTL_OIDC_LOGIN_*` variable is one the plugin reads;
//! - every flag and subcommand in `--help` is explained on a hand-written page (docs/cli.md, the
//!   generated reference, does not count), and docs/cli.md is the current rendering;
//! - every YAML and JSON block parses; kubeconfigs load with the real kubectl; no kubeconfig
//!   carries a secret; the AuthenticationConfiguration, ClusterRoleBinding and API server flags
//!   shown equal the files in examples/ that tests/suite/peers.rs runs on a real kube-apiserver;
//! - every relative link reaches a file and heading, and every `troubleshooting::see` anchor in
//!   src/ reaches an entry of docs/troubleshooting.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;
use serde_json::Value;

use crate::common::{yaml_to_json, PLUGIN};

/// Pages written on other branches, linked from here before they exist; the lead removes each
/// entry when its page is merged.
const PENDING_FILES: &[&str] = &["docs/engineer.md", "docs/install.md", "LICENSE"];
/// Sections written on other branches (file, anchor), linked before they exist.
const PENDING_ANCHORS: &[(&str, &str)] = &[];

/// The pages that may name flags `--help` hides: the migration guide, which says what replaces
/// them, and the generated reference.
const HIDDEN_FLAGS_PAGES: &[&str] = &["docs/kubelogin.md", "docs/cli.md"];

/// Words that, in the same clause, say a flag belongs to another program.
const OTHER_PROGRAMS: &[&str] = &[
    "API server",
    "apiserver",
    "kubectl",
    "kubeadm",
    "kind",
    "kubelogin",
    "klog",
    "Pinniped",
    "Chromium",
    "cargo",
    "bench/run",
    "scripts/",
    "kc.sh",
    "ssh",
    "helm",
    "hyperfine",
    "install.sh",
    "docker",
    "Docker",
    "podman",
    "Podman",
    "WSL",
    "wsl",
    "dev container",
    "devcontainer",
    "sshd",
    "socat",
    "curl",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The pages, relative path → text.
fn pages() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for name in ["README.md", "SECURITY.md", "CONTRIBUTING.md"] {
        if let Ok(text) = std::fs::read_to_string(repo().join(name)) {
            out.insert(name.to_string(), text);
        }
    }
    fn walk(dir: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                let relative = path.strip_prefix(repo()).unwrap().to_string_lossy();
                out.insert(
                    relative.replace('\\', "/"),
                    std::fs::read_to_string(&path).unwrap(),
                );
            }
        }
    }
    walk(&repo().join("docs"), &mut out);
    out
}

/// A fenced block of a page, with where it stands.
struct Block {
    page: String,
    lang: String,
    text: String,
    line: usize,
}

/// Every fenced block of every page, page by page.
fn blocks() -> Vec<Block> {
    let mut out = Vec::new();
    for (page, text) in pages() {
        for piece in pieces(&text) {
            if let Piece::Block {
                lang, text, line, ..
            } = piece
            {
                out.push(Block {
                    page: page.clone(),
                    lang,
                    text,
                    line,
                });
            }
        }
    }
    out
}

/// A piece of a page: a fenced block with its language and the paragraph before it, or a
/// paragraph of prose (a table row counts as one).
enum Piece {
    Block {
        lang: String,
        before: String,
        text: String,
        line: usize,
    },
    Prose {
        text: String,
        line: usize,
    },
}

fn pieces(page: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut lines = page.lines().enumerate().peekable();
    let mut paragraph: Vec<&str> = Vec::new();
    let mut paragraph_line = 0;
    let mut last_paragraph = String::new();
    let flush = |paragraph: &mut Vec<&str>, at: usize, out: &mut Vec<Piece>, last: &mut String| {
        if !paragraph.is_empty() {
            let text = paragraph.join(" ");
            *last = text.clone();
            out.push(Piece::Prose { text, line: at });
            paragraph.clear();
        }
    };
    while let Some((n, line)) = lines.next() {
        let trimmed = line.trim_start();
        if let Some(lang) = trimmed.strip_prefix("```") {
            flush(
                &mut paragraph,
                paragraph_line,
                &mut out,
                &mut last_paragraph,
            );
            let indent = line.len() - trimmed.len();
            let mut text = String::new();
            for (_, inner) in lines.by_ref() {
                if inner.trim_start().starts_with("```") {
                    break;
                }
                text.push_str(inner.get(indent..).unwrap_or(inner.trim_start()));
                text.push('\n');
            }
            out.push(Piece::Block {
                lang: lang.trim().to_string(),
                before: last_paragraph.clone(),
                text,
                line: n + 1,
            });
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("<!--") {
            flush(
                &mut paragraph,
                paragraph_line,
                &mut out,
                &mut last_paragraph,
            );
            continue;
        }
        // Table rows and list items each start a paragraph of their own.
        if trimmed.starts_with('|') || trimmed.starts_with("- ") || starts_numbered(trimmed) {
            flush(
                &mut paragraph,
                paragraph_line,
                &mut out,
                &mut last_paragraph,
            );
        }
        if paragraph.is_empty() {
            paragraph_line = n + 1;
        }
        paragraph.push(trimmed);
        if trimmed.starts_with('|') {
            flush(
                &mut paragraph,
                paragraph_line,
                &mut out,
                &mut last_paragraph,
            );
        }
    }
    flush(
        &mut paragraph,
        paragraph_line,
        &mut out,
        &mut last_paragraph,
    );
    out
}

fn starts_numbered(line: &str) -> bool {
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    digits > 0 && line[digits..].starts_with(". ")
}

/// What the plugin accepts: per subcommand its flags (long names and short letters), the
/// global ones, and the klog flags it drops.
struct Model {
    root: clap::Command,
    subcommands: BTreeMap<String, (BTreeSet<String>, BTreeSet<char>)>,
    global_long: BTreeSet<String>,
    global_short: BTreeSet<char>,
    klog: BTreeSet<String>,
    /// Every long flag of any subcommand, hidden ones included.
    any: BTreeSet<String>,
    /// The flags `--help` hides (kubelogin's deprecated and no-op ones).
    hidden: BTreeSet<String>,
    variables: BTreeSet<String>,
}

impl Model {
    fn new() -> Self {
        let root = kubectl_oidc_login::cli::Cli::command();
        let mut subcommands = BTreeMap::new();
        let mut any = BTreeSet::new();
        let hidden = root
            .get_subcommands()
            .flat_map(|sub| sub.get_arguments())
            .filter(|a| a.is_hide_set())
            .filter_map(|a| a.get_long().map(str::to_string))
            .collect();
        for sub in root.get_subcommands() {
            let long: BTreeSet<String> = sub
                .get_arguments()
                .filter_map(|a| a.get_long().map(str::to_string))
                .chain(["help".to_string()])
                .collect();
            let short: BTreeSet<char> = sub
                .get_arguments()
                .filter_map(|a| a.get_short())
                .chain(['h'])
                .collect();
            any.extend(long.iter().cloned());
            subcommands.insert(sub.get_name().to_string(), (long, short));
        }
        let global_long: BTreeSet<String> = root
            .get_arguments()
            .filter_map(|a| a.get_long().map(str::to_string))
            .chain(["help".to_string(), "version".to_string()])
            .collect();
        let global_short: BTreeSet<char> = root
            .get_arguments()
            .filter_map(|a| a.get_short())
            .chain(['h', 'V'])
            .collect();
        any.extend(global_long.iter().cloned());
        let klog = kubectl_oidc_login::cli::KLOG_FLAGS
            .iter()
            .map(|(name, _)| name.to_string())
            .collect();
        let get_token = root.find_subcommand("get-token").unwrap();
        let mut variables: BTreeSet<String> = get_token
            .get_arguments()
            .filter_map(|a| a.get_long())
            .chain(["v"])
            .map(kubectl_oidc_login::cli::env::variable)
            .collect();
        variables.insert(kubectl_oidc_login::signin::NO_LOGIN_ENV.to_string());
        Model {
            root,
            subcommands,
            global_long,
            global_short,
            klog,
            any,
            hidden,
            variables,
        }
    }

    fn is_ours(&self, long: &str) -> bool {
        self.any.contains(long) || self.klog.contains(long)
    }

    /// Checks one command line that runs the plugin, from the word after `oidc-login` (or the
    /// binary's name) on.
    fn check_command(&self, words: &[String], at: &str, failures: &mut Vec<String>) {
        let mut words = words.iter().peekable();
        // Global flags before the subcommand.
        let mut sub = None;
        while let Some(word) = words.next() {
            if word == "-v" {
                words.next();
                continue;
            }
            if word.starts_with('-') {
                self.check_flag(None, word, at, failures);
                continue;
            }
            sub = Some(word.clone());
            break;
        }
        let Some(sub) = sub else { return };
        let Some((long, short)) = self.subcommands.get(&sub) else {
            failures.push(format!("{at}: `{sub}` is no subcommand of the plugin"));
            return;
        };
        for word in words {
            if let Some(flag) = word.strip_prefix("--") {
                let name = flag.split('=').next().unwrap();
                if !(long.contains(name)
                    || self.global_long.contains(name)
                    || self.klog.contains(name))
                {
                    failures.push(format!("{at}: `{sub}` does not accept `--{name}`"));
                }
            } else if let Some(letters) = word.strip_prefix('-') {
                let Some(letter) = letters.chars().next() else {
                    continue;
                };
                if letter.is_ascii_alphabetic()
                    && !short.contains(&letter)
                    && !self.global_short.contains(&letter)
                {
                    failures.push(format!("{at}: `{sub}` does not accept `-{letter}`"));
                }
            }
        }
    }

    fn check_flag(&self, _sub: Option<&str>, word: &str, at: &str, failures: &mut Vec<String>) {
        if let Some(flag) = word.strip_prefix("--") {
            let name = flag.split('=').next().unwrap();
            if !self.global_long.contains(name) && !self.klog.contains(name) {
                failures.push(format!("{at}: `--{name}` is no global flag of the plugin"));
            }
        }
    }
}

/// The words of a command line, as a shell would split them (quotes kept simple: the docs use
/// no escapes), up to the first pipe or redirection, brackets of optional parts and trailing
/// punctuation removed, placeholders (`…`, `SUBCOMMAND`) dropped.
fn words(line: &str) -> Vec<String> {
    let line = line.split(" #").next().unwrap();
    let line = line.split(['|', '>', ';']).next().unwrap();
    let line = line.split("&&").next().unwrap();
    shlex_like(line)
        .into_iter()
        .map(|w| {
            w.trim_matches(|c| matches!(c, '[' | ']' | ',' | '(' | ')' | '`'))
                .to_string()
        })
        .filter(|w| !w.is_empty() && !is_placeholder(w))
        .collect()
}

fn is_placeholder(word: &str) -> bool {
    word.contains('…')
        || word.contains("...")
        || word.starts_with('<')
        || (word.len() > 1 && word.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
}

/// The flags a clause names: in its code spans as a shell would read them (so the words inside
/// a quoted `--browser-command='firefox --private-window'` are that flag's value), elsewhere
/// wherever `--name` appears.
fn flags_of_clause(clause: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, part) in clause.split('`').enumerate() {
        if i % 2 == 0 {
            out.extend(flags_in(part));
        } else {
            for word in shlex_like(part) {
                if word.starts_with("--") {
                    out.extend(flags_in(word.split('=').next().unwrap()));
                }
            }
        }
    }
    out
}

fn shlex_like(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => quote = Some(c),
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            (None, c) => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// The words after the plugin's name in `words`, when they run the plugin.
fn plugin_invocation(words: &[String]) -> Option<Vec<String>> {
    let i = words
        .iter()
        .position(|w| w == "oidc-login" || w.ends_with("kubectl-oidc_login"))?;
    // `kubectl oidc-login …`, `kubectl-oidc_login …`, or a YAML args list starting with it.
    Some(words[i + 1..].to_vec())
}

/// The `--flag` names in a text (not `---`, not a flag inside a word such as `--exec-arg=--x`).
fn flags_in(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(found) = text[i..].find("--") {
        let start = i + found;
        let before = if start == 0 { b' ' } else { bytes[start - 1] };
        let name: String = text[start + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        i = start + 2 + name.len();
        let boundary = !(before.is_ascii_alphanumeric() || matches!(before, b'-' | b'=' | b'/'));
        if boundary && name.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
            out.push(name.trim_end_matches('-').to_string());
        }
    }
    out
}

/// Clauses of a paragraph: split at `;`, `|` and sentence ends.
fn clauses(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut in_code = false;
    for (i, &c) in chars.iter().enumerate() {
        if c == '`' {
            in_code = !in_code;
        }
        let end_of_sentence = c == '.' && chars.get(i + 1).is_some_and(|n| *n == ' ');
        if !in_code && (c == ';' || c == '|' || end_of_sentence) {
            out.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    out.push(current);
    out
}

/// The inline code spans of a paragraph.
fn code_spans(text: &str) -> Vec<String> {
    text.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_string())
        .collect()
}

/// Lines of a shell block as commands: continuations joined, prompts taken off; in a block that
/// shows a prompt, only the prompted lines are commands (the rest is output).
fn shell_commands(block: &str) -> Vec<String> {
    let prompted = block.lines().any(|l| l.starts_with("$ "));
    let mut out = Vec::new();
    let mut current = String::new();
    for line in block.lines() {
        let line = if prompted {
            match line.strip_prefix("$ ") {
                Some(rest) => rest,
                None if !current.is_empty() => line,
                None => continue,
            }
        } else {
            line
        };
        let line = line.split(" #").next().unwrap();
        if let Some(part) = line.trim_end().strip_suffix('\\') {
            current.push_str(part);
            current.push(' ');
        } else {
            current.push_str(line);
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn owned_elsewhere(clause: &str) -> bool {
    OTHER_PROGRAMS.iter().any(|p| clause.contains(p))
}

/// Every `args` array in a parsed YAML or JSON document that runs get-token.
fn exec_args(value: &Value, out: &mut Vec<Vec<String>>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if key == "args" {
                    if let Some(list) = inner.as_array() {
                        let words: Vec<String> = list
                            .iter()
                            .map(|v| match v {
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            })
                            .collect();
                        if words.iter().any(|w| w == "get-token") {
                            out.push(words);
                        }
                    }
                }
                exec_args(inner, out);
            }
        }
        Value::Array(list) => list.iter().for_each(|v| exec_args(v, out)),
        _ => {}
    }
}

/// YAML documents as JSON, read by the npm `yaml` package as tests/suite/common does, but
/// returning the error instead of failing the test at the first bad block.
fn parse_yaml(text: &str) -> Result<Vec<Value>, String> {
    let out = yaml_to_json(text);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err
            .lines()
            .find(|l| l.contains("Error"))
            .unwrap_or("not YAML");
        return Err(line.to_string());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

/// Checks every command line, flag and variable the pages name.
fn check_names(pages: &BTreeMap<String, String>, model: &Model) -> Vec<String> {
    let mut failures = Vec::new();
    let ignored: BTreeSet<String> = model
        .klog
        .iter()
        .cloned()
        .chain([
            "tls-renegotiation-once".into(),
            "tls-renegotiation-freely".into(),
        ])
        .collect();
    for (name, page) in pages {
        for piece in pieces(page) {
            match piece {
                Piece::Prose { text, line } => {
                    let at = format!("{name}:{line}");
                    // Command lines in code spans.
                    let mut in_commands = BTreeSet::new();
                    for span in code_spans(&text) {
                        let w = words(&span);
                        if let Some(rest) = plugin_invocation(&w) {
                            model.check_command(&rest, &at, &mut failures);
                            in_commands.extend(flags_in(&span));
                        } else if w.first().is_some_and(|first| !first.starts_with('-')) {
                            // Another program's command line (`kubectl config …`): its flags
                            // are its own.
                            in_commands.extend(flags_in(&span));
                        }
                    }
                    for clause in clauses(&text) {
                        let says_ignored =
                            clause.contains("ignored") && !clause.contains("not ignored");
                        for flag in flags_of_clause(&clause) {
                            if says_ignored && !ignored.contains(&flag) && model.is_ours(&flag) {
                                failures.push(format!(
                                    "{at}: `--{flag}` is called ignored, but the plugin reads it"
                                ));
                            }
                            if model.hidden.contains(&flag)
                                && !HIDDEN_FLAGS_PAGES.contains(&name.as_str())
                            {
                                failures.push(format!(
                                    "{at}: `--{flag}` is hidden from --help (deprecated or a no-op); name it only in {HIDDEN_FLAGS_PAGES:?}"
                                ));
                            }
                            if in_commands.contains(&flag) || model.is_ours(&flag) {
                                continue;
                            }
                            if !owned_elsewhere(&clause) {
                                failures.push(format!(
                                    "{at}: `--{flag}` is no flag of the plugin, and the text does not say whose it is: {}",
                                    clause.trim()
                                ));
                            }
                        }
                    }
                }
                Piece::Block {
                    lang,
                    before,
                    text,
                    line,
                } => {
                    let at = format!("{name}:{line}");
                    if matches!(lang.as_str(), "yaml" | "json") {
                        continue; // check_blocks reads them parsed.
                    }
                    for command in shell_commands(&text) {
                        let w = words(&command);
                        if let Some(rest) = plugin_invocation(&w) {
                            model.check_command(&rest, &at, &mut failures);
                        } else if w.first().is_some_and(|f| f.starts_with("--")) {
                            // Bare flag lines: the paragraph before says whose they are.
                            for flag in flags_in(&command) {
                                if !model.is_ours(&flag) && !owned_elsewhere(&before) {
                                    failures.push(format!(
                                        "{at}: `--{flag}` is no flag of the plugin, and the text before the block does not say whose it is"
                                    ));
                                }
                            }
                        }
                    }
                }
            }
        }
        for variable in variables_in(page) {
            if !model.variables.contains(&variable) {
                failures.push(format!(
                    "{name}: {variable} is no variable the plugin reads"
                ));
            }
        }
    }
    failures
}

fn variables_in(text: &str) -> BTreeSet<String> {
    const PREFIX: &str = "KUBECTL_OIDC_LOGIN_";
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find(PREFIX) {
        let tail: String = rest[i + PREFIX.len()..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        if !tail.is_empty() {
            out.insert(format!("{PREFIX}{tail}"));
        }
        rest = &rest[i + PREFIX.len()..];
    }
    out
}

#[test]
fn every_command_flag_and_variable_the_docs_name_is_accepted_where_they_use_it() {
    let model = Model::new();
    let failures = check_names(&pages(), &model);
    assert!(
        failures.is_empty(),
        "{} places in the docs name what the plugin does not accept:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_flag_and_subcommand_in_help_is_explained_on_a_written_page() {
    let model = Model::new();
    let written: String = pages()
        .into_iter()
        .filter(|(name, _)| name != "docs/cli.md")
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join("\n");
    let mentioned: BTreeSet<String> = flags_in(&written).into_iter().collect();
    let mut failures = Vec::new();
    for sub in model.root.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        let name = sub.get_name();
        if !written.contains(&format!("oidc-login {name}"))
            && !written.contains(&format!("`{name}`"))
        {
            failures.push(format!("the subcommand `{name}` is explained nowhere"));
        }
        for arg in sub.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if arg.is_hide_set() || long == "help" {
                continue;
            }
            if !mentioned.contains(long) {
                failures.push(format!(
                    "`{name} --{long}` is in its --help but explained nowhere"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} flags or subcommands are only in --help and docs/cli.md:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_cli_reference_is_generated_from_the_current_definitions() {
    let committed = std::fs::read_to_string(repo().join("docs/cli.md")).unwrap_or_default();
    let rendered = Command::new(PLUGIN)
        .arg("__cli-reference")
        .output()
        .unwrap();
    assert!(rendered.status.success());
    let rendered = String::from_utf8(rendered.stdout).unwrap();
    assert_eq!(rendered, kubectl_oidc_login::cli::reference_markdown());
    assert!(
        committed == rendered,
        "docs/cli.md is stale: run `cargo run -- __cli-reference > docs/cli.md`"
    );
}

/// YAML and JSON blocks: each parses; kubeconfigs load with the real kubectl and carry no
/// secret; the cluster-side YAML equals the examples the real kube-apiserver runs.
#[test]
fn every_yaml_and_json_block_parses_and_kubeconfigs_load_with_kubectl() {
    let model = Model::new();
    let dir = tempfile::tempdir().unwrap();
    let example = |name: &str| {
        parse_yaml(&std::fs::read_to_string(repo().join("examples").join(name)).unwrap()).unwrap()
    };
    let authentication = example("authentication-config.yaml").remove(0);
    let bindings = example("cluster-role-binding.yaml");
    let mut failures = Vec::new();
    let mut kubeconfigs = 0;
    for Block {
        page: name,
        lang,
        text,
        line,
    } in blocks()
    {
        let at = format!("{name}:{line}");
        let docs = match lang.as_str() {
            "json" => match serde_json::from_str::<Value>(&text) {
                Ok(v) => vec![v],
                Err(e) => {
                    failures.push(format!("{at}: not JSON: {e}"));
                    continue;
                }
            },
            "yaml" => match parse_yaml(&text) {
                Ok(docs) => docs,
                Err(e) => {
                    failures.push(format!("{at}: not YAML: {e}"));
                    continue;
                }
            },
            _ => continue,
        };
        for doc in &docs {
            let mut args = Vec::new();
            exec_args(doc, &mut args);
            for words in args {
                if let Some(rest) = plugin_invocation(&words).or(Some(words.clone())) {
                    model.check_command(&rest, &at, &mut failures);
                }
                for secret in ["--oidc-client-secret=", "--password="] {
                    if words.iter().any(|w| w.starts_with(secret)) {
                        failures.push(format!(
                            "{at}: a kubeconfig with `{secret}…` in its args: the secret is in every copy of the file; use the -file flag or the environment"
                        ));
                    }
                }
            }
            let is_kubeconfig = matches!(
                doc.get("kind").and_then(Value::as_str),
                None | Some("Config")
            ) && ["users", "clusters", "contexts"]
                .iter()
                .any(|k| doc.get(k).is_some());
            if is_kubeconfig {
                kubeconfigs += 1;
                let file = dir.path().join(format!("kubeconfig-{kubeconfigs}"));
                std::fs::write(&file, &text).unwrap();
                let out = Command::new("kubectl")
                    .args(["config", "view", "-o", "json", "--kubeconfig"])
                    .arg(&file)
                    .env_remove("KUBECONFIG")
                    .output()
                    .expect("kubectl runs");
                if !out.status.success() {
                    failures.push(format!(
                        "{at}: kubectl cannot load this kubeconfig: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
            }
            match doc.get("kind").and_then(Value::as_str) {
                Some("AuthenticationConfiguration") => {
                    let shape = authentication_shape(doc);
                    if !shape.is_empty() {
                        failures.push(format!("{at}: {shape}"));
                    }
                    // The example issuer's file is the tested example, apart from the
                    // audience and the CA, which the text explains. (Other issuers, such as
                    // a second provider's, are held to the shape alone.)
                    let example_issuer = authentication["jwt"][0]["issuer"]["url"].clone();
                    let jwt = doc["jwt"].as_array().map(Vec::len).unwrap_or(0);
                    if jwt != 1 || doc["jwt"][0]["issuer"]["url"] != example_issuer {
                        continue;
                    }
                    let mut shown = doc.clone();
                    if let Some(issuer) = shown["jwt"][0]["issuer"].as_object_mut() {
                        issuer.remove("certificateAuthority");
                        issuer.insert("audiences".into(), serde_json::json!(["kubernetes"]));
                    }
                    if shown != authentication {
                        failures.push(format!(
                            "{at}: this AuthenticationConfiguration is not examples/authentication-config.yaml (the one a real kube-apiserver runs in tests/suite/peers.rs), apart from audiences and certificateAuthority"
                        ));
                    }
                }
                Some("ClusterRoleBinding") if !bindings.contains(doc) => {
                    failures.push(format!(
                        "{at}: this ClusterRoleBinding is none of examples/cluster-role-binding.yaml"
                    ));
                }
                _ => {}
            }
        }
    }
    assert!(kubeconfigs > 0, "no kubeconfig found in the docs");
    assert!(
        failures.is_empty(),
        "{} blocks in the docs fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// What kube-apiserver demands of an AuthenticationConfiguration's shape (its validation in
/// `k8s.io/apiserver/pkg/apis/apiserver/validation`): empty when it holds.
fn authentication_shape(doc: &Value) -> String {
    let version = doc["apiVersion"].as_str().unwrap_or_default();
    if !matches!(
        version,
        "apiserver.config.k8s.io/v1"
            | "apiserver.config.k8s.io/v1beta1"
            | "apiserver.config.k8s.io/v1alpha1"
    ) {
        return format!("apiVersion {version:?} is no AuthenticationConfiguration version");
    }
    let Some(jwt) = doc["jwt"].as_array() else {
        return "no jwt list".into();
    };
    for entry in jwt {
        let url = entry["issuer"]["url"].as_str().unwrap_or_default();
        if !url.starts_with("https://") {
            return format!("issuer url {url:?} is not https");
        }
        let audiences = entry["issuer"]["audiences"].as_array().map(Vec::len);
        if audiences.unwrap_or(0) == 0 {
            return format!("issuer {url} has no audiences");
        }
        let username = &entry["claimMappings"]["username"];
        if username["claim"].is_null() && username["expression"].is_null() {
            return format!("issuer {url} maps no username (claim or expression)");
        }
    }
    String::new()
}

/// The API server flags a page shows in a block of bare flags are the tested example's.
#[test]
fn api_server_flags_shown_are_the_tested_example() {
    let example =
        std::fs::read_to_string(repo().join("examples/kube-apiserver-flags.txt")).unwrap();
    let example: BTreeSet<&str> = example.lines().filter(|l| l.starts_with("--")).collect();
    let mut failures = Vec::new();
    for Block {
        page: name,
        text,
        line,
        ..
    } in blocks()
    {
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() || !lines.iter().all(|l| l.starts_with("--oidc-")) {
            continue;
        }
        for l in lines {
            if !example.contains(l) {
                failures.push(format!(
                    "{name}:{line}: `{l}` is not in examples/kube-apiserver-flags.txt"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// GitHub's anchor for a heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(page: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut in_block = false;
    for line in page.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
        }
        if !in_block && line.starts_with('#') {
            out.insert(anchor(line.trim_start_matches('#')));
        }
    }
    out
}

#[test]
fn every_link_reaches_a_page_and_heading() {
    let pages = pages();
    let mut failures = Vec::new();
    for (name, page) in &pages {
        let base = Path::new(name).parent().unwrap_or(Path::new(""));
        let mut rest = page.as_str();
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = &rest[..end];
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, fragment) = match target.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (target, None),
            };
            let file = if file.is_empty() {
                name.clone()
            } else {
                normalize(&base.join(file))
            };
            if PENDING_FILES.contains(&file.as_str()) {
                continue;
            }
            let path = repo().join(&file);
            if !path.exists() {
                failures.push(format!("{name}: link to {target}: no such file"));
                continue;
            }
            if let Some(fragment) = fragment {
                if PENDING_ANCHORS.contains(&(file.as_str(), fragment)) {
                    continue;
                }
                let text = pages
                    .get(&file)
                    .cloned()
                    .unwrap_or_else(|| std::fs::read_to_string(&path).unwrap_or_default());
                if !anchors(&text).contains(fragment) {
                    failures.push(format!("{name}: link to {target}: no such heading"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn normalize(path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for component in path.components() {
        match component.as_os_str().to_str().unwrap() {
            "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part.to_string()),
        }
    }
    parts.join("/").trim_end_matches('/').to_string()
}

/// Every message that links to the troubleshooting page names an entry that exists.
#[test]
fn troubleshooting_links_in_the_code_reach_an_entry() {
    let page = std::fs::read_to_string(repo().join("docs/troubleshooting.md")).unwrap();
    let entries = anchors(&page);
    let mut used = BTreeSet::new();
    fn walk(dir: &Path, used: &mut BTreeSet<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, used);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for call in ["troubleshooting::see(\"", "troubleshooting::link(\""] {
                for piece in text.split(call).skip(1) {
                    let anchor = piece.split('"').next().unwrap().to_string();
                    used.insert((path.display().to_string(), anchor));
                }
            }
        }
    }
    walk(&repo().join("src"), &mut used);
    assert!(
        !used.is_empty(),
        "no message links to the troubleshooting page"
    );
    let missing: Vec<String> = used
        .iter()
        .filter(|(_, a)| !entries.contains(a))
        .map(|(file, a)| format!("{file}: #{a} is no entry of docs/troubleshooting.md"))
        .collect();
    assert!(missing.is_empty(), "{}", missing.join("\n"));
    // The address the messages print is the page's.
    assert!(kubectl_oidc_login::troubleshooting::link("x").ends_with("docs/troubleshooting.md#x"));
}

/// The transcript of a first login in the README is what the binary prints: a real login
/// through the real kubectl against the test provider (its issuer, ports and random values
/// written as the README shows them).
#[test]
fn the_first_login_transcript_is_real_output() {
    const MARKER: &str = "<!-- transcript:first-login -->";
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let shown = readme
        .split_once(MARKER)
        .and_then(|(_, rest)| rest.split_once("```console\n"))
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(block, _)| block.to_string())
        .unwrap_or_else(|| panic!("README.md has no console block after {MARKER}"));
    let world = crate::common::World::new(300);
    // With a keyring running (a desktop) there is no warning about the refresh token's file;
    // the test world has none, so it says disk.
    let kubeconfig = world.default_kubeconfig(&["--token-cache-storage=disk"]);
    let first = world.kubectl(&kubeconfig, &["auth", "whoami"], &[]);
    first.assert_ok();
    let again = world.kubectl(&kubeconfig, &["auth", "whoami"], &[]);
    again.assert_ok();
    assert!(again.stderr.is_empty(), "{}", again.stderr);
    let real = format!(
        "$ kubectl auth whoami\n{}{}$ kubectl auth whoami\n{}",
        first.stderr, first.stdout, again.stdout
    );
    let real = real.replace(
        &world.provider.issuer,
        "https://keycloak.example.com/realms/platform",
    );
    let real = ["state", "code_challenge", "nonce"]
        .iter()
        .fold(real, |text, name| {
            replace_value(&text, &format!("{name}="), "…")
        });
    let real = replace_value(&real, "localhost%3A", "8000");
    assert!(
        shown == real,
        "README.md's first-login transcript differs from the binary's output; the real one:\n{real}"
    );
}

/// `text` with the value after each `key` (up to `&`, a space or a line end) replaced.
fn replace_value(text: &str, key: &str, value: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(key) {
        out.push_str(&rest[..i + key.len()]);
        out.push_str(value);
        rest = &rest[i + key.len()..];
        let end = rest
            .find(|c: char| c == '&' || c.is_whitespace())
            .unwrap_or(rest.len());
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// History (issue numbers, "this round") belongs to CHANGELOG.md; the guides say how things
/// are.
#[test]
fn guides_hold_no_history() {
    let mut failures = Vec::new();
    for (name, page) in pages() {
        for (n, line) in page.lines().enumerate() {
            let lower = line.to_lowercase();
            let issue_number = lower.match_indices("issue").any(|(i, _)| {
                lower[i + 5..]
                    .trim_start_matches(['s', ' '])
                    .starts_with(|c: char| c.is_ascii_digit())
            });
            if issue_number || lower.contains("this round") {
                failures.push(format!("{name}:{}: {line}", n + 1));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "history in the guides (move it to CHANGELOG.md):\n{}",
        failures.join("\n")
    );
}

/// docs/dev/performance.md gives one set of numbers: those of bench/results.json, the last
/// `bench/run`.
#[test]
fn performance_numbers_are_the_last_measured_ones() {
    let page = std::fs::read_to_string(repo().join("docs/dev/performance.md")).unwrap();
    let results: Value =
        serde_json::from_slice(&std::fs::read(repo().join("bench/results.json")).unwrap()).unwrap();
    let number = |path: &[&str]| {
        path.iter()
            .fold(&results, |v, key| &v[*key])
            .as_f64()
            .unwrap_or_else(|| panic!("bench/results.json has no {path:?}"))
    };
    let hit = |mode: &str| number(&["cache_hit", mode, "plugin_ms"]);
    let ratio = |mode: &str| number(&["cache_hit", mode, "ratio"]);
    let expected = [
        format!(
            "| cache hit, `disk` | {:.2} ms, {:.2}× `cat` |",
            hit("disk"),
            ratio("disk")
        ),
        format!(
            "| cache hit, `keyring` | {:.2} ms, {:.1}× `cat` |",
            hit("keyring"),
            ratio("keyring")
        ),
        format!(
            "{:.2} / {:.2} / {:.2} ms",
            number(&["side_by_side", "static"]),
            number(&["side_by_side", "glibc"]),
            number(&["side_by_side", "cat"])
        ),
        format!(
            "{:.2} ms (ours: {:.2}× of it)",
            number(&["kubelogin", "ms"]),
            number(&["kubelogin", "plugin_ratio"])
        ),
        format!(
            "| hot path system calls | {} (`cat`: {}) |",
            number(&["hot_path", "syscalls"]),
            number(&["hot_path", "cat_syscalls"])
        ),
        format!(
            "| refresh | {} request, {:.1} ms |",
            number(&["refresh", "provider_requests"]),
            number(&["refresh", "wall_ms"])
        ),
    ];
    let missing: Vec<&String> = expected.iter().filter(|e| !page.contains(*e)).collect();
    assert!(
        missing.is_empty(),
        "docs/dev/performance.md does not show bench/results.json's numbers: {missing:#?}"
    );
    // One syscall count and one set of ratios: no second table of older runs.
    assert_eq!(
        page.matches("system calls |").count(),
        1,
        "more than one syscall count"
    );
}

/// The sequence diagrams: Mermaid (which GitHub renders) has no checker that runs here without a
/// browser, so this reads the subset the pages use: every message goes between declared
/// participants, and every `alt` ends.
#[test]
fn sequence_diagrams_are_well_formed() {
    let mut failures = Vec::new();
    let mut diagrams = 0;
    for Block {
        page: name,
        lang,
        text,
        line,
    } in blocks()
    {
        if lang != "mermaid" {
            continue;
        }
        diagrams += 1;
        let at = format!("{name}:{line}");
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        if lines.next() != Some("sequenceDiagram") {
            failures.push(format!("{at}: not a sequenceDiagram"));
            continue;
        }
        let mut participants = BTreeSet::new();
        let mut depth = 0i32;
        for l in lines {
            let first = l.split_whitespace().next().unwrap();
            match first {
                "participant" | "actor" => {
                    participants.insert(l.split_whitespace().nth(1).unwrap().to_string());
                }
                "alt" | "opt" | "loop" => depth += 1,
                "else" => {}
                "end" => depth -= 1,
                "Note" => {}
                _ => {
                    let Some((arrow, _text)) = l.split_once(':') else {
                        failures.push(format!("{at}: `{l}` is no statement"));
                        continue;
                    };
                    let ends: Vec<&str> = arrow
                        .split(['-', '>', '+'])
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .collect();
                    if ends.len() != 2 || !ends.iter().all(|e| participants.contains(*e)) {
                        failures.push(format!(
                            "{at}: `{l}` is not a message between declared participants"
                        ));
                    }
                }
            }
            if depth < 0 {
                failures.push(format!("{at}: `end` without a block"));
            }
        }
        if depth != 0 {
            failures.push(format!("{at}: a block is not closed with `end`"));
        }
    }
    assert!(diagrams >= 2, "the sequence diagrams are gone");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
