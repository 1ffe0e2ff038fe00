//! `accounts` (also `whoami --all`): every login cached in the directory, one block each,
//! read from the cache without refreshing.

use crate::claims::{relative, Identity};
use std::path::PathBuf;

use crate::error::Error;
use crate::jwt::now;
use crate::login_report::{self, Format};
use crate::store::{self, clean};
use crate::tokens::{CacheKey, Storage};

/// Where `accounts` looks.
#[derive(Debug, Clone)]
pub struct Options {
    pub cache_dir: PathBuf,
    pub storage: Storage,
    /// Text for people, or JSON/YAML for scripts (see [`login_report`]).
    pub format: Format,
}

pub fn run(args: &Options) -> Result<(), Error> {
    let dir = &args.cache_dir;
    let store = store::open(dir, args.storage);
    let mut keys = recorded_keys(dir)?;
    keys.sort_by(|a, b| {
        (&a.issuer, &a.client_id, &a.account).cmp(&(&b.issuer, &b.client_id, &b.account))
    });
    if args.format != Format::Text {
        let logins = keys
            .iter()
            .map(|key| {
                let tokens = store.load(key).unwrap_or_else(|e| {
                    crate::warn!("{e}");
                    None
                });
                let refresh = store.load_refresh_token(key).ok().flatten();
                login_report::login(key, tokens.as_ref(), refresh.as_deref(), args.storage, dir)
            })
            .collect();
        print!(
            "{}",
            login_report::render(&login_report::list(logins), args.format)
        );
        return Ok(());
    }
    if keys.is_empty() {
        eprintln!("No logins are cached in {}.", dir.display());
        return Ok(());
    }
    let now = now();
    let storage = args.storage.name();
    for key in &keys {
        // Text from a file: escaped like text from the network (another user may have
        // written it, in a directory that was once left open).
        println!(
            "{}",
            crate::log::printable(&format!(
                "{}  client {}  account {}",
                key.issuer,
                key.client_id,
                key.account.as_deref().unwrap_or("(default)")
            ))
        );
        let tokens = store.load(key).unwrap_or_else(|e| {
            crate::warn!("{e}");
            None
        });
        match tokens
            .as_ref()
            .and_then(|t| Identity::from_id_token(&t.id_token).map(|id| (t, id)))
        {
            Some((tokens, id)) => {
                let line = format!(
                    "  subject {}  email {}  groups {}",
                    id.sub,
                    id.email.as_deref().unwrap_or("-"),
                    id.groups
                        .as_ref()
                        .map(|g| g.join(","))
                        .unwrap_or_else(|| "-".into())
                );
                println!("{}", crate::log::printable(&line));
                println!(
                    "  ID token expires {} ({})",
                    crate::exec_credential::rfc3339(tokens.id_token_expiry),
                    relative(
                        tokens.id_token_expiry,
                        now.saturating_add(tokens.clock_offset),
                    )
                );
            }
            None => println!("  no readable ID token cached"),
        }
        let refresh = store.load_refresh_token(key).ok().flatten();
        println!(
            "  refresh token {}  storage {} in {}",
            if refresh.is_some() { "cached" } else { "none" },
            storage,
            dir.display()
        );
    }
    Ok(())
}

/// The logins in the cache directory whose issuer and client a file names (see
/// [`clean::logins`], which `clean` uses to find the same logins).
fn recorded_keys(dir: &std::path::Path) -> Result<Vec<CacheKey>, Error> {
    Ok(clean::logins(dir)?
        .into_iter()
        .filter_map(|(id, owner)| {
            Some(CacheKey::recorded(
                id,
                owner.issuer?,
                owner.client_id?,
                owner.account,
            ))
        })
        .collect())
}
