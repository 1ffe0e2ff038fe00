//! Property test: for generated get-token command lines in kubelogin's syntax, this plugin's
//! parse (clap, then the settings layer) equals a reference model of spf13/pflag's rules for
//! the same flag types, written here apart from the plugin's own code:
//! bool (`--f`, `--f=V` with strconv.ParseBool's spellings, last one wins), stringSlice (one
//! encoding/csv record per value; the first occurrence replaces the default, later ones
//! append), stringArray (taken whole), stringToString (one pair kept whole when the value
//! has a single `=`, else a CSV record of pairs; merged like a Go map). Values never contain
//! line breaks (a kubeconfig argument does not either).

use std::collections::BTreeMap;
use std::ffi::OsString;

use kubectl_oidc_login::cli::{self, Command};
use kubectl_oidc_login::config::Config;
use kubectl_oidc_login::settings;
use proptest::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Bool,
    StringSlice,
    StringArray,
    StringToString,
}

const FLAGS: &[(&str, Kind)] = &[
    ("force-refresh", Kind::Bool),
    ("skip-open-browser", Kind::Bool),
    ("insecure-skip-tls-verify", Kind::Bool),
    ("oidc-use-access-token", Kind::Bool),
    ("oidc-extra-scope", Kind::StringSlice),
    ("listen-address", Kind::StringSlice),
    ("certificate-authority", Kind::StringArray),
    ("oidc-auth-request-extra-params", Kind::StringToString),
    ("oidc-request-header", Kind::StringToString),
];

/// Go's encoding/csv Reader.Read on a one-line input, default settings.
fn go_csv(input: &str) -> Result<Vec<String>, ()> {
    let chars: Vec<char> = input.chars().collect();
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        let mut field = String::new();
        if chars.get(i) == Some(&'"') {
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(()), // no closing quote
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        field.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        match chars.get(i) {
                            None => {
                                fields.push(field);
                                return Ok(fields);
                            }
                            Some(',') => {
                                i += 1;
                                fields.push(field);
                                break;
                            }
                            Some(_) => return Err(()),
                        }
                    }
                    Some(c) => {
                        field.push(*c);
                        i += 1;
                    }
                }
            }
        } else {
            while let Some(c) = chars.get(i) {
                match c {
                    ',' => break,
                    '"' => return Err(()), // bare quote
                    c => field.push(*c),
                }
                i += 1;
            }
            fields.push(field);
            if chars.get(i) == Some(&',') {
                i += 1;
            } else {
                return Ok(fields);
            }
        }
    }
}

/// pflag's readAsCSV: an empty value is an empty list.
fn read_as_csv(value: &str) -> Result<Vec<String>, ()> {
    if value.is_empty() {
        Ok(Vec::new())
    } else {
        go_csv(value)
    }
}

#[derive(Debug, Default, PartialEq)]
struct Model {
    bools: BTreeMap<&'static str, bool>,
    slices: BTreeMap<&'static str, Vec<String>>,
    maps: BTreeMap<&'static str, BTreeMap<String, String>>,
}

/// The settings pflag would produce from `(flag, value)` occurrences, or Err where pflag
/// refuses the command line.
fn model(occurrences: &[(usize, String)]) -> Result<Model, ()> {
    let mut m = Model::default();
    for (flag, value) in occurrences {
        let (name, kind) = FLAGS[*flag];
        match kind {
            Kind::Bool => {
                let v = match value.as_str() {
                    "" => true, // written `--flag`
                    "1" | "t" | "T" | "TRUE" | "true" | "True" => true,
                    "0" | "f" | "F" | "FALSE" | "false" | "False" => false,
                    _ => return Err(()),
                };
                m.bools.insert(name, v);
            }
            Kind::StringSlice => {
                let items = read_as_csv(value)?;
                m.slices.entry(name).or_default().extend(items);
            }
            Kind::StringArray => m.slices.entry(name).or_default().push(value.clone()),
            Kind::StringToString => {
                let pairs = match value.matches('=').count() {
                    0 => return Err(()),
                    1 => vec![value.trim_matches('"').to_string()],
                    _ => go_csv(value)?,
                };
                let map = m.maps.entry(name).or_default();
                for pair in pairs {
                    let (k, v) = pair.split_once('=').ok_or(())?;
                    map.insert(k.to_string(), v.to_string());
                }
            }
        }
    }
    Ok(m)
}

/// What the plugin made of the same command line, in the model's terms.
fn observed(c: &Config) -> Model {
    let mut m = Model::default();
    m.bools.insert("force-refresh", c.force_refresh);
    m.bools.insert("skip-open-browser", c.skip_open_browser);
    m.bools
        .insert("insecure-skip-tls-verify", c.insecure_skip_tls_verify);
    m.bools.insert("oidc-use-access-token", c.use_access_token);
    m.slices.insert("oidc-extra-scope", c.extra_scopes.clone());
    m.slices
        .insert("listen-address", c.listen_addresses.clone());
    m.slices.insert(
        "certificate-authority",
        c.ca_files.iter().map(|p| p.display().to_string()).collect(),
    );
    m.maps.insert(
        "oidc-auth-request-extra-params",
        c.auth_extra_params.iter().cloned().collect(),
    );
    m.maps.insert(
        "oidc-request-header",
        c.request_headers.iter().cloned().collect(),
    );
    m
}

/// The model with every flag pflag never saw at its default, as the plugin reports it; the
/// plugin's documented extras applied to scopes (no `openid`, no repeats, spaces split).
fn with_defaults(mut m: Model) -> Model {
    for (name, kind) in FLAGS {
        match kind {
            Kind::Bool => {
                m.bools.entry(name).or_insert(false);
            }
            Kind::StringSlice | Kind::StringArray => {
                let default = if *name == "listen-address" {
                    vec!["127.0.0.1:8000".to_string(), "127.0.0.1:18000".to_string()]
                } else {
                    Vec::new()
                };
                m.slices.entry(name).or_insert(default);
            }
            Kind::StringToString => {
                m.maps.entry(name).or_default();
            }
        }
    }
    let scopes = m.slices.get_mut("oidc-extra-scope").unwrap();
    let mut unique: Vec<String> = Vec::new();
    for s in scopes.iter().flat_map(|s| s.split_whitespace()) {
        if s != "openid" && !unique.iter().any(|u| u == s) {
            unique.push(s.to_string());
        }
    }
    *scopes = unique;
    m
}

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9:.]{1,6}",
        // Quoted, with commas and doubled quotes inside.
        "[a-z,]{0,4}".prop_map(|s| format!("\"{}\"", s.replace('"', "\"\""))),
        "[a-z]{1,3}\"\"[a-z]{1,3}".prop_map(|s| format!("\"{s}\"")),
    ]
}

fn csv_value() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::collection::vec(field(), 1..4).prop_map(|f| f.join(",")),
        // Broken CSV: a bare quote, or an unclosed one.
        1 => "[a-z]{1,3}\"[a-z]{0,3}",
        1 => "\"[a-z]{1,3}",
    ]
}

fn pair() -> impl Strategy<Value = String> {
    ("[a-c]", "[a-z0-9]{0,3}").prop_map(|(k, v)| format!("{k}={v}"))
}

fn map_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(pair(), 1..4).prop_map(|p| p.join(",")),
        // One pair whose value has a comma: kept whole.
        ("[a-c]", "[a-z]{1,2},[a-z]{1,2}").prop_map(|(k, v)| format!("{k}={v}")),
        pair().prop_map(|p| format!("\"{p}\"")),
        "[a-z]{1,4}",
    ]
}

fn bool_value() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "", "1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False", "yes",
    ])
    .prop_map(str::to_string)
}

fn occurrence() -> impl Strategy<Value = (usize, String, bool)> {
    (0..FLAGS.len(), any::<bool>()).prop_flat_map(|(flag, separate)| {
        let value = match FLAGS[flag].1 {
            Kind::Bool => bool_value().boxed(),
            Kind::StringSlice => csv_value().boxed(),
            Kind::StringArray => "[a-z/,]{1,8}".boxed(),
            Kind::StringToString => map_value().boxed(),
        };
        (Just(flag), value, Just(separate))
    })
}

fn argv(occurrences: &[(usize, String, bool)]) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "kubectl-oidc_login".into(),
        "get-token".into(),
        "--oidc-issuer-url=https://issuer.example".into(),
        "--oidc-client-id=kubernetes".into(),
    ];
    for (flag, value, separate) in occurrences {
        let (name, kind) = FLAGS[*flag];
        match (kind, value.is_empty()) {
            (Kind::Bool, true) => args.push(format!("--{name}").into()),
            // pflag's bools take `=value` only; non-bools either way.
            (Kind::Bool, false) => args.push(format!("--{name}={value}").into()),
            _ if *separate && !value.starts_with('-') => {
                args.push(format!("--{name}").into());
                args.push(value.into());
            }
            _ => args.push(format!("--{name}={value}").into()),
        }
    }
    args
}

fn parse(args: Vec<OsString>) -> Result<Config, String> {
    let cli = cli::parse(cli::strip_klog_flags(args)).map_err(|e| e.to_string())?;
    match cli.command {
        Command::GetToken(args) => settings::config(&args).map_err(|e| e.to_string()),
        other => Err(format!("not get-token: {other:?}")),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn the_parse_equals_pflags_rules(occurrences in prop::collection::vec(occurrence(), 0..8)) {
        let args = argv(&occurrences);
        let simple: Vec<(usize, String)> =
            occurrences.iter().map(|(f, v, _)| (*f, v.clone())).collect();
        let expected = model(&simple).map(with_defaults);
        let got = parse(args.clone());
        match (expected, got) {
            (Ok(expected), Ok(config)) => prop_assert_eq!(expected, observed(&config), "{:?}", args),
            (Err(()), Err(_)) => {}
            (Ok(expected), Err(e)) => prop_assert!(false, "{:?} refused ({}), pflag: {:?}", args, e, expected),
            (Err(()), Ok(config)) => prop_assert!(false, "{:?} accepted, pflag refuses: {:?}", args, observed(&config)),
        }
    }
}

#[test]
fn the_model_reads_csv_as_go_does() {
    assert_eq!(go_csv("a,b").unwrap(), ["a", "b"]);
    assert_eq!(go_csv("\"a,b\",c").unwrap(), ["a,b", "c"]);
    assert_eq!(go_csv("\"x\"\"y\"").unwrap(), ["x\"y"]);
    assert_eq!(go_csv("a,").unwrap(), ["a", ""]);
    assert!(go_csv("a\"b").is_err());
    assert!(go_csv("\"ab").is_err());
    assert!(go_csv("\"ab\"c").is_err());
}
