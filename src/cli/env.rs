//! Every get-token flag from the environment, by one rule: `KUBECTL_OIDC_LOGIN_` and the
//! flag's long name upper-cased with `-` as `_` (`--listen-address` →
//! `KUBECTL_OIDC_LOGIN_LISTEN_ADDRESS`, `-v` → `KUBECTL_OIDC_LOGIN_V`). A flag given on the
//! command line (the kubeconfig's args) wins; a variable fills in only what the flags leave
//! out, and it is read with the flag's own syntax (pflag's bools, comma lists, `k=v,k2=v2`).
//!
//! Why this prefix: it is the plugin's own name (the binary is `kubectl-oidc_login`), so no
//! other program sets these by accident. Generic names (`OIDC_CLIENT_ID`, `AZURE_CLIENT_ID`)
//! set for other tools silently replaced a kubeconfig's client in Azure/kubelogin #427.
//!
//! The rule is applied to clap's model of the command, not written per flag: a flag added to
//! [`super::GetTokenArgs`] gets its variable with no code here.

use clap::parser::ValueSource;
use clap::{ArgMatches, Command, Id};

/// The prefix of every variable.
pub const PREFIX: &str = "KUBECTL_OIDC_LOGIN_";

/// Flags whose values are secrets: their source is named, their value never shown.
pub const SECRET_FLAGS: &[&str] = &["oidc-client-secret", "password", "oidc-request-header"];

/// The variable of the flag with this long name.
pub fn variable(long: &str) -> String {
    let mut name = String::with_capacity(PREFIX.len() + long.len());
    name.push_str(PREFIX);
    name.extend(long.chars().map(|c| {
        if c == '-' {
            '_'
        } else {
            c.to_ascii_uppercase()
        }
    }));
    name
}

/// The ids of get-token's flags (and `-v`), the ones the environment may give: those of
/// `command`'s `get-token` subcommand, or of `command` itself when it is get-token alone (the
/// hot path's parser), so nothing is built twice.
fn get_token_ids(command: &Command) -> Vec<Id> {
    let mut ids: Vec<Id> = command
        .find_subcommand("get-token")
        .unwrap_or(command)
        .get_arguments()
        .map(|a| a.get_id().clone())
        .collect();
    ids.push(Id::from("verbosity"));
    ids
}

/// `command` with every get-token flag of it (and of its subcommands) reading its variable.
/// The hot path pays for one look at the environment: with none of the plugin's variables set
/// (the usual case), the command is left as it is.
pub fn read_environment(command: Command) -> Command {
    let set: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| name.starts_with(PREFIX))
        .collect();
    if set.is_empty() {
        return command;
    }
    with_variables(command, Some(&set))
}

/// `command` with its get-token flags reading their variables: those named in `set`, or all
/// of them.
fn with_variables(command: Command, set: Option<&[String]>) -> Command {
    let ids = get_token_ids(&command);
    let attach = |arg: clap::Arg| {
        if !ids.contains(arg.get_id()) {
            return arg;
        }
        let Some(long) = arg.get_long() else {
            return arg;
        };
        let name = variable(long);
        if set.is_some_and(|set| !set.contains(&name)) {
            return arg;
        }
        // The help stays as kubelogin's; docs/cli.md and docs/configuration.md name the variables. clap
        // takes a static name (without its `string` feature, which slows every parse); only
        // the variables that are set get here, a few bytes each, once per process.
        let name: &'static str = Box::leak(name.into_boxed_str());
        arg.env(name).hide_env(true)
    };
    command
        .mut_args(attach)
        .mut_subcommands(|sub| sub.mut_args(attach))
}

/// The long names of the flags whose value came from the environment in `matches` (a
/// subcommand's matches, or the root's for `-v`).
pub fn from_environment(command: &Command, matches: &ArgMatches) -> Vec<String> {
    command
        .get_arguments()
        // Only the flags whose variable is set read one (see read_environment).
        .filter(|arg| arg.get_env().is_some())
        .filter(|arg| matches.value_source(arg.get_id().as_str()) == Some(ValueSource::EnvVariable))
        .filter_map(|arg| arg.get_long().map(str::to_string))
        .collect()
}

/// A clap error about a value that came from the environment, told with the variable's name
/// (clap names only the flag). Other errors are returned as they are.
pub fn name_the_variable(error: clap::Error, args: &[std::ffi::OsString]) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        error.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation | ErrorKind::InvalidUtf8
    ) {
        return error;
    }
    let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg) else {
        return error;
    };
    let Some(long) = arg
        .split([' ', '[', '='])
        .next()
        .and_then(|a| a.strip_prefix("--"))
    else {
        return error;
    };
    let on_command_line = args.iter().any(|a| {
        a.to_str().is_some_and(|a| {
            a.strip_prefix("--")
                .is_some_and(|a| a == long || a.starts_with(&format!("{long}=")))
        })
    });
    let name = variable(long);
    if on_command_line || std::env::var_os(&name).is_none() {
        return error;
    }
    let rendered = error.to_string();
    let mut lines = rendered.lines();
    let first = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ");
    // Clap's hints (possible values, the reason) stay; its usage line would point at the
    // command line, where the value is not.
    let rest: Vec<&str> = lines
        .take_while(|l| !l.starts_with("Usage:"))
        .filter(|l| !l.starts_with("For more information"))
        .collect();
    let message = format!(
        "{first} (from the environment variable {name}; unset it or correct its value)\n{}",
        rest.join("\n").trim_end()
    );
    clap::Error::raw(error.kind(), format!("{}\n", message.trim_end()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Args;

    #[test]
    fn one_rule_names_every_variable() {
        assert_eq!(
            variable("listen-address"),
            "KUBECTL_OIDC_LOGIN_LISTEN_ADDRESS"
        );
        assert_eq!(variable("v"), "KUBECTL_OIDC_LOGIN_V");
        assert_eq!(
            variable("oidc-client-secret-file"),
            "KUBECTL_OIDC_LOGIN_OIDC_CLIENT_SECRET_FILE"
        );
    }

    #[test]
    fn every_get_token_flag_has_a_variable_and_no_two_share_one() {
        let bare = super::super::GetTokenArgs::augment_args(Command::new("get-token"));
        let ids = get_token_ids(&bare);
        assert!(ids.len() > 30);
        // The full parser finds the same flags under its get-token subcommand.
        let full = <super::super::Cli as clap::CommandFactory>::command();
        assert_eq!(get_token_ids(&full), ids);
        let command = with_variables(bare, None);
        let mut names: Vec<String> = command
            .get_arguments()
            .filter(|a| ids.contains(a.get_id()))
            .map(|a| {
                let env = a.get_env().expect("every get-token flag reads a variable");
                env.to_string_lossy().into_owned()
            })
            .collect();
        let count = names.len();
        assert!(count > 30, "{names:?}");
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count);
        assert!(names.iter().all(|n| n.starts_with(PREFIX)));
    }
}
