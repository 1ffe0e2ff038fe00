//! The use cases, one file per subcommand. Each is a short story over the building blocks
//! (`signin`, `oidc`, `store`, `loopback`, ...), takes plain settings (never clap types) and
//! returns the commands' [`crate::error::Error`]. No command imports another: a step two
//! commands share is a building block (`get-token`, `login` and `setup` all sign in through
//! `signin`).

pub mod accounts;
pub mod clean;
pub mod doctor;
pub mod get_token;
pub mod login;
pub mod logout;
pub mod setup;
pub mod whoami;
