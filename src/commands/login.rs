//! `login`: sign in again in the browser, replacing the cached login of one account only.
//! `prompt=login` makes the provider ask for credentials even while its session cookie would
//! silently sign the same user in again: this is how a user switches user.

use crate::config::Config;
use crate::error::Error;
use crate::exec_credential::ExecInfo;
use crate::signin::{obtain, Mode};
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
    // The sign-in step says who signed in, for which account.
    obtain(&flow, &exec, &*store, &key, Mode::FreshLogin)?;
    Ok(())
}
