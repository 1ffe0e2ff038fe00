//! Property tests of every parser of outside input: KUBERNETES_EXEC_INFO, JWT header and claims
//! decoding, cache files, discovery documents, pasted authorization responses, the command
//! line and completion words. Each property runs CASES generated inputs (proptest, on stable
//! in every test run). Coverage-guided fuzzing of the same parsers, with stronger properties,
//! is fuzz/ (cargo-fuzz, nightly: scripts/fuzz); its inputs are replayed by fuzz_replay.rs. The
//! loopback listener's request handling has its own property in src/loopback.rs.

use kubectl_oidc_login::exec_credential::ExecInfo;
use kubectl_oidc_login::oidc::keyboard::parse_pasted;
use kubectl_oidc_login::oidc::provider::Metadata;
use kubectl_oidc_login::private_file::CacheDir;
use kubectl_oidc_login::store::disk::load_token_file;
use kubectl_oidc_login::tokens::CacheKey;
use kubectl_oidc_login::{cli, jwt};
use proptest::prelude::*;

const CASES: u32 = 2000;

/// JSON-ish text: mostly structure characters and the field names the parsers look for.
fn jsonish() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("{".to_string()),
            Just("}".to_string()),
            Just("[".to_string()),
            Just("]".to_string()),
            Just(",".to_string()),
            Just(":".to_string()),
            Just("\"apiVersion\"".to_string()),
            Just("\"client.authentication.k8s.io/v1\"".to_string()),
            Just("\"spec\"".to_string()),
            Just("\"interactive\"".to_string()),
            Just("\"version\"".to_string()),
            Just("\"id_token\"".to_string()),
            Just("\"issuer\"".to_string()),
            Just("true".to_string()),
            Just("1".to_string()),
            Just("-99999999999999999999".to_string()),
            Just("null".to_string()),
            ".{0,12}",
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn exec_info_never_panics(raw in prop_oneof![jsonish(), ".*"]) {
        let _ = ExecInfo::parse(&raw);
    }

    #[test]
    fn jwt_decoding_never_panics(
        header in "[A-Za-z0-9_=-]{0,40}",
        payload in prop_oneof![
            "[A-Za-z0-9_=-]{0,80}",
            jsonish().prop_map(|j| {
                use base64::Engine;
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(j)
            }),
        ],
        dots in 0usize..5,
    ) {
        let token = [header.as_str(), payload.as_str(), "sig", "x"][..dots.min(4)].join(".");
        let _ = jwt::peek_claims::<serde_json::Value>(&token);
        let _ = jwt::peek_header::<serde_json::Value>(&token);
        let _ = jwt::peek_expiry(&token);
    }

    #[test]
    fn cache_files_never_panic(content in prop_oneof![
        jsonish().prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..256),
    ]) {
        // One directory for every case: a process keeps each cache directory it opened.
        static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
        let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
        let key = CacheKey::new("https://i", "c", None, &[], &[], None, None);
        std::fs::write(dir.path().join(format!("{}.token.json", key.id())), &content).unwrap();
        let cache = CacheDir::open(dir.path()).unwrap().unwrap();
        let _ = load_token_file(&cache, &key);
    }

    #[test]
    fn discovery_documents_never_panic(doc in jsonish()) {
        let _ = serde_json::from_str::<Metadata>(&doc);
    }

    #[test]
    fn a_pasted_response_yields_a_code_only_with_this_logins_state(
        input in prop_oneof![
            ".{0,60}",
            ("[a-z]{0,8}", "[a-zA-Z0-9%&=_.-]{0,40}")
                .prop_map(|(code, rest)| format!("http://localhost:8000/?code={code}&{rest}")),
            "[a-zA-Z0-9%&=_.-]{0,40}"
                .prop_map(|q| format!("http://localhost:8000/?{q}&state=the-state")),
        ],
    ) {
        let result = parse_pasted(&input, "the-state", "https://idp.example", false);
        if let Ok(code) = result {
            prop_assert!(!code.is_empty());
            if let Ok(url) = url::Url::parse(input.trim()) {
                let state = url.query_pairs().find(|(k, _)| k == "state").map(|(_, v)| v.into_owned());
                prop_assert_eq!(state.as_deref(), Some("the-state"));
            }
        }
    }

    #[test]
    fn the_command_line_never_panics(args in prop::collection::vec(prop_oneof![
        Just("get-token".to_string()),
        Just("--oidc-issuer-url=https://i".to_string()),
        Just("--oidc-client-id".to_string()),
        Just("--v".to_string()),
        Just("--log-dir".to_string()),
        Just("-v1".to_string()),
        Just("whoami".to_string()),
        Just("--all".to_string()),
        "--[a-z-]{0,20}(=.{0,10})?",
        ".{0,10}",
    ], 0..8)) {
        let argv: Vec<std::ffi::OsString> = std::iter::once("kubectl-oidc_login".to_string())
            .chain(args)
            .map(Into::into)
            .collect();
        let _ = cli::parse(cli::strip_klog_flags(argv));
    }

    #[test]
    fn the_get_token_fast_path_parses_exactly_as_the_full_parser_and_round_trips(args in prop::collection::vec(prop_oneof![
        Just("--oidc-issuer-url=https://i".to_string()),
        Just("--oidc-client-id=c".to_string()),
        Just("--oidc-client-id=d".to_string()),
        Just("--oidc-extra-scope=email,groups".to_string()),
        Just("--oidc-extra-scope".to_string()),
        Just("--force-refresh".to_string()),
        Just("--grant-type=device-code".to_string()),
        Just("--token-cache-storage=disk".to_string()),
        Just("--listen-address=127.0.0.1:0".to_string()),
        Just("--account=admin".to_string()),
        Just("-v1".to_string()),
        Just("--v=2".to_string()),
        Just("--help".to_string()),
        Just("--version".to_string()),
        "--[a-z-]{0,20}(=.{0,10})?",
        ".{0,10}",
    ], 0..10)) {
        // The flags fuzz target's check: the fast path parses as the full parser does, and
        // what to_exec_args writes parses back to the same flags.
        crate::fuzz_checks::check("flags")(args.join("\0").as_bytes());
    }

    #[test]
    fn completion_never_panics(words in prop::collection::vec(".{0,12}", 0..6)) {
        use clap::CommandFactory;
        let _ = kubectl_oidc_login::cli::complete::candidates(&cli::Cli::command(), &words);
    }
}
