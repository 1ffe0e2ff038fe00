//! Completion for `kubectl oidc-login …` typed at a kubectl prompt.
//!
//! kubectl (1.26+) completes a plugin's arguments by running `kubectl_complete-oidc_login` with
//! the words after the plugin name, the last one being the word under the cursor, and reads
//! Cobra's protocol back: one candidate per line (`value\tdescription`), then `:DIRECTIVE`.
//! install.sh installs that script, which calls the hidden `__complete` subcommand here. The
//! candidates come from the same clap definition as the parser, so they cannot drift.

use std::io::Write;

use clap::{Arg, ArgAction, Command};

/// Cobra's directives: let the shell complete file names, or offer nothing beyond our list.
const FILE_COMPLETION: u8 = 0;
const NO_FILE_COMPLETION: u8 = 4;

/// One candidate and its one-line description.
#[derive(Debug, PartialEq, Eq)]
pub struct Candidate {
    pub value: String,
    pub help: String,
}

/// Candidates for `words` (the last one is being typed) and the directive for the shell.
pub fn candidates(root: &Command, words: &[String]) -> (Vec<Candidate>, u8) {
    let (current, before) = match words.split_last() {
        Some((current, before)) => (current.as_str(), before),
        None => ("", &[][..]),
    };
    let Some(sub_name) = before.first() else {
        let subs = root
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name().starts_with(current))
            .map(|s| candidate(s.get_name().to_string(), s.get_about()))
            .collect();
        return (subs, NO_FILE_COMPLETION);
    };
    let Some(sub) = root.find_subcommand(sub_name) else {
        return (Vec::new(), NO_FILE_COMPLETION);
    };
    let args = || sub.get_arguments().chain(root.get_arguments());

    // The value of a flag: after `--flag ` or in `--flag=`.
    let pending = before
        .last()
        .and_then(|w| w.strip_prefix("--"))
        .and_then(|name| args().find(|a| a.get_long() == Some(name) && takes_value(a)));
    if let Some(arg) = pending {
        return values(arg, "", current);
    }
    if let Some((name, typed)) = current
        .strip_prefix("--")
        .and_then(|rest| rest.split_once('='))
    {
        return match args().find(|a| a.get_long() == Some(name)) {
            Some(arg) => values(arg, &format!("--{name}="), typed),
            None => (Vec::new(), NO_FILE_COMPLETION),
        };
    }
    if current.starts_with('-') {
        let flags = args()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long().map(|long| (a, format!("--{long}"))))
            .filter(|(_, flag)| flag.starts_with(current))
            .map(|(a, flag)| {
                let flag = if takes_value(a) {
                    format!("{flag}=")
                } else {
                    flag
                };
                candidate(flag, a.get_help())
            })
            .collect();
        return (flags, NO_FILE_COMPLETION);
    }
    (Vec::new(), NO_FILE_COMPLETION)
}

fn takes_value(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Set | ArgAction::Append)
}

/// Values of `arg` starting with `typed`, each written as `prefix` + value.
fn values(arg: &Arg, prefix: &str, typed: &str) -> (Vec<Candidate>, u8) {
    let possible = arg.get_possible_values();
    if !possible.is_empty() {
        let list = possible
            .iter()
            .filter(|v| !v.is_hide_set() && v.get_name().starts_with(typed))
            .map(|v| candidate(format!("{prefix}{}", v.get_name()), v.get_help()))
            .collect();
        return (list, NO_FILE_COMPLETION);
    }
    // Our path flags are named FILE or DIR; let the shell list the file system for them.
    let names = arg.get_value_names().unwrap_or_default();
    if names.iter().any(|n| *n == "FILE" || *n == "DIR") && prefix.is_empty() {
        return (Vec::new(), FILE_COMPLETION);
    }
    (Vec::new(), NO_FILE_COMPLETION)
}

fn candidate(value: String, help: Option<&clap::builder::StyledStr>) -> Candidate {
    let help = help
        .map(|h| h.to_string())
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    Candidate { value, help }
}

/// Prints the candidates in Cobra's protocol.
pub fn print(root: &Command, words: &[String]) -> std::io::Result<()> {
    let (list, directive) = candidates(root, words);
    let mut out = std::io::stdout().lock();
    for c in list {
        if c.help.is_empty() {
            writeln!(out, "{}", c.value)?;
        } else {
            writeln!(out, "{}\t{}", c.value, c.help)?;
        }
    }
    writeln!(out, ":{directive}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn complete(words: &[&str]) -> (Vec<String>, u8) {
        let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        let (list, directive) = candidates(&crate::cli::Cli::command(), &words);
        (list.into_iter().map(|c| c.value).collect(), directive)
    }

    #[test]
    fn subcommands_by_prefix_without_hidden_ones() {
        let (all, directive) = complete(&[""]);
        assert!(all.contains(&"get-token".to_string()), "{all:?}");
        assert!(all.contains(&"setup".to_string()));
        assert!(!all.iter().any(|s| s == "man" || s == "__complete"));
        assert_eq!(directive, NO_FILE_COMPLETION);
        assert_eq!(complete(&["get-t"]).0, vec!["get-token"]);
    }

    #[test]
    fn flags_of_the_subcommand_and_global_ones() {
        let (flags, _) = complete(&["get-token", "--oidc-c"]);
        assert_eq!(
            flags,
            vec![
                "--oidc-client-id=",
                "--oidc-client-secret=",
                "--oidc-client-secret-file="
            ],
            "{flags:?}"
        );
        let (flags, _) = complete(&["setup", "--write"]);
        assert_eq!(flags, vec!["--write-kubeconfig"]);
        let (flags, _) = complete(&["whoami", "--v"]);
        assert_eq!(flags, vec!["--v="]);
    }

    #[test]
    fn values_of_enum_flags_in_both_spellings() {
        let (values, _) = complete(&["get-token", "--token-cache-storage", "k"]);
        assert_eq!(values, vec!["keyring"]);
        let (values, _) = complete(&["get-token", "--oidc-pkce-method="]);
        assert_eq!(
            values,
            vec![
                "--oidc-pkce-method=auto",
                "--oidc-pkce-method=no",
                "--oidc-pkce-method=S256"
            ]
        );
    }

    #[test]
    fn path_flags_leave_completion_to_the_shell() {
        assert_eq!(
            complete(&["get-token", "--certificate-authority", ""]),
            (vec![], FILE_COMPLETION)
        );
        assert_eq!(complete(&["nonsense", "--x"]), (vec![], NO_FILE_COMPLETION));
    }
}
