//! `clean`: delete cached tokens from every store and say what went.

use std::path::Path;

use crate::cli::CleanArgs;
use crate::config::expand_home;
use crate::error::Error;

use super::StoreError;

pub fn run(args: &CleanArgs) -> Result<(), Error> {
    let dir = expand_home(&args.token_cache_dir)?;
    let removed = clean_dir(&dir, args.oidc_issuer_url.as_deref())?;
    if removed == 0 {
        eprintln!("Nothing cached in {}.", dir.display());
    } else {
        eprintln!("Removed {removed} cached file(s) from {}.", dir.display());
    }
    Ok(())
}

/// Removes our token files (all, or those of one issuer). Files we did not write are left.
fn clean_dir(dir: &Path, issuer: Option<&str>) -> Result<usize, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(source) => {
            return Err(StoreError::Dir {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(id) = name.strip_suffix(".token.json") else {
            continue;
        };
        if let Some(issuer) = issuer {
            let belongs = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|v| v["issuer"] == issuer);
            if !belongs {
                continue;
            }
        }
        for file in [path.clone(), dir.join(format!("{id}.refresh.json"))] {
            if super::file::remove_optional(&file)? {
                removed += 1;
            }
        }
    }
    Ok(removed)
}
