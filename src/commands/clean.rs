//! `clean`: delete cached logins from every store (disk files and keyring entries), for all
//! logins or those of one issuer, client or account, and say what went.

use std::path::PathBuf;

use crate::error::Error;
use crate::store::clean::clean;

/// Which logins `clean` removes, and from where.
#[derive(Debug, Clone)]
pub struct Options {
    pub cache_dir: PathBuf,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub account: Option<String>,
}

pub fn run(args: &Options) -> Result<(), Error> {
    let dir = &args.cache_dir;
    let report = clean(
        dir,
        args.issuer.as_deref(),
        args.client_id.as_deref(),
        args.account.as_deref(),
    )?;
    if report.logins == 0 {
        eprintln!("Nothing cached in {}.", dir.display());
    } else {
        eprintln!(
            "Removed {} login(s): {} file(s) from {} and {} keyring entr{}.",
            report.logins,
            report.files,
            dir.display(),
            report.keyring_entries,
            if report.keyring_entries == 1 {
                "y"
            } else {
                "ies"
            }
        );
    }
    Ok(())
}
