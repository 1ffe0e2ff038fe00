//! The command line, as kubelogin's kubeconfigs write it (spf13/pflag's value rules).

use std::ffi::OsString;

use kubectl_oidc_login::cli::{self, pflag, Command};
use kubectl_oidc_login::settings;

/// `get-token` with arguments from the input (NUL-separated): the fast path parses exactly as
/// the full parser, the settings build or fail with one printable line, and what
/// `to_exec_args` writes into a kubeconfig parses back to the same flags.
pub fn get_token(data: &[u8]) {
    let args: Vec<String> = data
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let argv = |args: &[String]| -> Vec<OsString> {
        ["kubectl-oidc_login", "get-token"]
            .iter()
            .map(|s| s.to_string())
            .chain(args.iter().cloned())
            .map(Into::into)
            .collect()
    };
    let fast = cli::parse(cli::strip_klog_flags(argv(&args)));
    let full = cli::parse_full(cli::strip_klog_flags(argv(&args)));
    let parsed = match (fast, full) {
        (Ok(fast), Ok(full)) => {
            assert_eq!(format!("{fast:?}"), format!("{full:?}"));
            fast
        }
        (Err(fast), Err(full)) => {
            assert_eq!(fast.to_string(), full.to_string());
            return;
        }
        (fast, full) => panic!("fast {:?} but full {:?}", fast.is_ok(), full.is_ok()),
    };
    let Command::GetToken(mut first) = parsed.command else {
        return;
    };
    if let Err(err) = settings::config(&first) {
        super::assert_printable(&err.to_string());
    }
    let written = first.to_exec_args();
    assert_eq!(written[0], "get-token");
    let again = cli::parse(cli::strip_klog_flags(argv(&written[1..])))
        .unwrap_or_else(|e| panic!("{written:?} does not parse back: {e}"));
    let Command::GetToken(again) = again.command else {
        panic!("{written:?} parses back as another command");
    };
    // Left out of exec entries on purpose (see to_exec_args).
    first.password = None;
    first.force_refresh = false;
    assert_eq!(format!("{first:?}"), format!("{again:?}"), "{written:?}");
}

/// pflag's value readers: a CSV record of quoted fields reads back to the fields, a value
/// without quotes or line breaks splits at its commas, a pair's key holds no `=`.
pub fn pflag_values(data: &[u8]) {
    let items: Vec<String> = data
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).replace(['\r', '\n'], ""))
        .collect();
    let quoted: Vec<String> = items
        .iter()
        .map(|i| format!("\"{}\"", i.replace('"', "\"\"")))
        .collect();
    let record = quoted.join(",");
    assert_eq!(
        pflag::csv_record(&record).as_deref(),
        Ok(&items[..]),
        "{record:?}"
    );

    for item in &items {
        if !item.contains('"') && !item.is_empty() {
            let split: Vec<String> = item.split(',').map(str::to_string).collect();
            assert_eq!(
                pflag::csv_record(item).as_deref(),
                Ok(&split[..]),
                "{item:?}"
            );
        }
        let _ = pflag::parse_bool(item);
    }
    if let Ok(pairs) = pflag::string_to_string(&items) {
        for (key, _) in &pairs {
            assert!(!key.contains('='), "{key:?}");
        }
    }
    if let Ok(numbers) = pflag::int_slice(&items) {
        let count: usize = items
            .iter()
            .filter(|i| !i.is_empty())
            .map(|i| i.split(',').count())
            .sum();
        assert_eq!(numbers.len(), count, "{items:?}");
    }
}
