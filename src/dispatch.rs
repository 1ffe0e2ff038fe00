//! A parsed command line → its use case: settings from [`crate::settings`], then the command
//! in [`crate::commands`]. The commands about the command line itself (completion, man) are
//! answered by [`crate::cli`].

use std::io::Write;

use thiserror::Error;

use crate::cli::Command;
use crate::commands;
use crate::error::Error;
use crate::settings::{self, SettingsError};

/// Why a command line failed: its flags made no sense, or the command itself failed.
#[derive(Debug, Error)]
pub enum Failure {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Command(#[from] Error),
}

pub fn run(command: Command) -> Result<(), Failure> {
    let result = match command {
        Command::GetToken(args) => commands::get_token::run(&settings::config(&args)?),
        Command::Login(args) => commands::login::run(&settings::config(&args)?),
        Command::Setup(args) => commands::setup::run(&settings::setup(&args)?),
        Command::SetupGuide => stdout(commands::setup::GUIDE.as_bytes()),
        Command::Version => stdout(
            format!(
                "kubectl-oidc_login version {} ({}_{})\n",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH
            )
            .as_bytes(),
        ),
        Command::Logout(args) => commands::logout::run(&settings::logout(&args)?),
        Command::Whoami(args) => commands::whoami::run(&settings::whoami(&args)?),
        Command::Accounts(args) => commands::accounts::run(&settings::accounts(&args)?),
        Command::Clean(args) => commands::clean::run(&settings::clean(&args)?),
        Command::Doctor(args) => commands::doctor::run(&settings::doctor(&args)),
        Command::Completion(args) => stdout(&crate::cli::completion_script(args.shell)),
        Command::Man => stdout(&crate::cli::man_page().map_err(Error::Output)?),
        Command::Complete { words } => crate::cli::print_completions(&words).map_err(Error::Output),
    };
    Ok(result?)
}

fn stdout(bytes: &[u8]) -> Result<(), Error> {
    std::io::stdout().write_all(bytes).map_err(Error::Output)
}
