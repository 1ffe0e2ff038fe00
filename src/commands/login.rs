//! `login`: sign in again in the browser, replacing the cached login of one account only.
//! `prompt=login` makes the provider ask for credentials even while its session cookie would
//! silently sign the same user in again: this is how a user switches user.

use super::get_token::{obtain, Mode};
use crate::claims::Identity;
use crate::config::Config;
use crate::error::Error;
use crate::exec_credential::ExecInfo;
use crate::store;

pub fn run(config: &Config) -> Result<(), Error> {
    let store = store::open(&config.cache_dir, config.storage);
    // The key comes from the flags as the kubeconfig has them, without the prompt added
    // below, so the new login replaces exactly the one kubectl uses.
    let key = config.cache_key();
    let mut flow = config.clone();
    if !flow.auth_extra_params.iter().any(|(k, _)| k == "prompt") {
        flow.auth_extra_params
            .push(("prompt".to_string(), "login".to_string()));
    }
    let exec = ExecInfo::from_env()?;
    let tokens = obtain(&flow, &exec, &*store, &key, Mode::FreshLogin)?;
    let who = Identity::from_id_token(&tokens.id_token)
        .map(Identity::who)
        .unwrap_or_else(|| "(unreadable ID token)".into());
    eprintln!(
        "Signed in as {who} for account {}.",
        config.account.as_deref().unwrap_or("(default)")
    );
    Ok(())
}
