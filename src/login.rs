//! `login`: sign in again in the browser, replacing the cached login of one account only.
//! `prompt=login` makes the provider ask for credentials even while its session cookie would
//! silently sign the same user in again: this is how a user switches user.

use crate::claims::Identity;
use crate::cli::GetTokenArgs;
use crate::config::Config;
use crate::error::Error;
use crate::exec_credential::ExecInfo;
use crate::get_token::{obtain, Mode};
use crate::store::{self, CacheKey};

pub fn run(args: &GetTokenArgs) -> Result<(), Error> {
    let config = Config::from_args(args)?;
    let store = store::open(&config);
    // The key comes from the flags as the kubeconfig has them, without the prompt added
    // below, so the new login replaces exactly the one kubectl uses.
    let key = CacheKey::new(&config);
    let mut flow = config.clone();
    if !flow.auth_extra_params.iter().any(|(k, _)| k == "prompt") {
        flow.auth_extra_params
            .push(("prompt".to_string(), "login".to_string()));
    }
    let exec = ExecInfo::from_env()?;
    let tokens = obtain(&flow, &exec, &*store, &key, Mode::FreshLogin)?;
    let who = Identity::from_id_token(&tokens.id_token)
        .map(|id| id.email.unwrap_or(id.sub))
        .unwrap_or_else(|| "(unreadable ID token)".into());
    eprintln!(
        "Signed in as {who} for account {}.",
        config.account.as_deref().unwrap_or("(default)")
    );
    Ok(())
}
