//! The use cases, one file per subcommand. Each is a short story over the building blocks
//! (`oidc`, `store`, `loopback`, ...), takes plain settings (never clap types) and returns
//! the top-level [`crate::error::Error`].

pub mod accounts;
pub mod clean;
pub mod doctor;
pub mod get_token;
pub mod login;
pub mod logout;
pub mod setup;
pub mod whoami;
