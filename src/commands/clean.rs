//! `clean`: delete cached logins from every store (disk files and keyring entries), for all
//! logins or those of one issuer, client or account, and say what went. What int128/kubelogin
//! cached there goes too, so no old refresh token of its stays behind.

use std::path::PathBuf;

use crate::error::Error;
use crate::store::clean::clean;
use crate::store::kubelogin;

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
    // kubelogin has no accounts: cleaning one account leaves its logins alone.
    let theirs = if args.account.is_some() {
        kubelogin::Removed::default()
    } else {
        let wanted = |entry: &kubelogin::Entry| {
            entry.matches(args.issuer.as_deref(), args.client_id.as_deref())
        };
        kubelogin::remove(dir, &wanted)?
    };
    let theirs_count = theirs.files + theirs.keyring_entries;
    if theirs_count > 0 {
        eprintln!(
            "Removed kubelogin's cached logins: {}.",
            removed(theirs.files, dir, theirs.keyring_entries)
        );
    }
    if report.logins > 0 {
        eprintln!(
            "Removed {} login(s): {}.",
            report.logins,
            removed(report.files, dir, report.keyring_entries)
        );
    } else if theirs_count == 0 {
        eprintln!("Nothing cached in {}.", dir.display());
    }
    Ok(())
}

/// "2 file(s) from DIR and 1 keyring entry".
fn removed(files: usize, dir: &std::path::Path, keyring_entries: usize) -> String {
    let entries = if keyring_entries == 1 {
        "entry"
    } else {
        "entries"
    };
    format!(
        "{files} file(s) from {} and {keyring_entries} keyring {entries}",
        dir.display()
    )
}
