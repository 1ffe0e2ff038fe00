//! The real Go peers side by side with the plugin (issue 22): int128/kubelogin (the latest
//! release and an old one), helm v3 and v4, and the real kube-apiserver with the OIDC settings
//! of `examples/`. scripts/peers builds them (./test.sh runs it); a peer this machine could
//! not build makes its test print `not built here: PEER (ERROR)` and return.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use crate::common::kubelogin_table::{grant_rows, rows, url_host, GrantRow, STANDARD};
use crate::common::{
    peer, peer_version, support_dir, KubeApiServer, OidcConfig, SecretService, World,
};
use serde_json::Value;

const TOKEN_PATH: &str = "/realms/test/protocol/openid-connect/token";

/// What one program did with one row of the kubelogin table, as the provider saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    accepted: bool,
    /// The scopes as a set: their order carries no meaning (RFC 6749 §3.3), and kubelogin
    /// puts `openid` last.
    scope: BTreeSet<String>,
    access_type: String,
    /// The first line of stderr when the program refused the args (shown, not compared).
    error: String,
    pkce: String,
    redirect_host: String,
    extras: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
    deprecation_notice: bool,
}

impl Seen {
    /// The fields in which `self` and `other` differ, by name.
    fn differences(&self, other: &Seen) -> BTreeSet<&'static str> {
        let mut d = BTreeSet::new();
        if self.accepted != other.accepted {
            d.insert("accepted");
        }
        if !self.accepted || !other.accepted {
            return d;
        }
        for (name, same) in [
            ("scope", self.scope == other.scope),
            ("access_type", self.access_type == other.access_type),
            ("pkce", self.pkce == other.pkce),
            ("redirect_host", self.redirect_host == other.redirect_host),
            ("extras", self.extras == other.extras),
            ("headers", self.headers == other.headers),
            (
                "deprecation_notice",
                self.deprecation_notice == other.deprecation_notice,
            ),
        ] {
            if !same {
                d.insert(name);
            }
        }
        d
    }
}

/// Runs `program` with a row's exec args through kubectl (a fresh cache, so every run is a
/// browser login), and reads what reached the provider.
fn observe(
    world: &World,
    program: &Path,
    api_version: &str,
    tag: &str,
    row_args: &[&str],
    first: bool,
) -> Seen {
    let mut args = vec![
        "get-token".to_string(),
        format!("--oidc-issuer-url={}", world.provider.issuer),
        "--oidc-client-id=kubernetes".to_string(),
        format!(
            "--token-cache-dir={}",
            world.path(&format!("cache-{tag}")).display()
        ),
        format!(
            "--browser-command={}",
            support_dir().join("login.mjs").display()
        ),
    ];
    if !row_args.iter().any(|a| a.starts_with("--listen")) {
        args.push("--listen-address=127.0.0.1:0".into());
    }
    args.extend(row_args.iter().map(|a| a.to_string()));
    // As in tests/suite/kubelogin_dropin.rs: one row puts a klog flag before the subcommand.
    if first {
        args.insert(0, "--log_dir=/tmp".into());
    }
    let kubeconfig = world.kubeconfig(
        &format!("kubeconfig-{tag}"),
        api_version,
        program.to_str().unwrap(),
        &args,
    );
    let before = world.logins().len();
    let run = world.kubectl(&kubeconfig, &["auth", "whoami", "-o", "json"], &[]);
    let logins = if run.ok() {
        world.wait_for_logins(before + 1)
    } else {
        Vec::new()
    };
    let Some(login) = logins.get(before) else {
        return Seen {
            accepted: false,
            scope: BTreeSet::new(),
            access_type: String::new(),
            error: run
                .stderr
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .to_string(),
            pkce: String::new(),
            redirect_host: String::new(),
            extras: BTreeMap::new(),
            headers: BTreeMap::new(),
            deprecation_notice: run.stderr.contains("Flag --"),
        };
    };
    let params: BTreeMap<String, String> =
        serde_json::from_value(login["auth_params"].clone()).unwrap();
    let headers = world.provider.headers()[TOKEN_PATH]
        .as_object()
        .map(|h| {
            h.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    Seen {
        accepted: true,
        scope: scope_set(params.get("scope").map(String::as_str).unwrap_or("")),
        access_type: params.get("access_type").cloned().unwrap_or_default(),
        error: String::new(),
        pkce: params
            .get("code_challenge_method")
            .cloned()
            .unwrap_or_default(),
        redirect_host: url_host(params.get("redirect_uri").map(String::as_str).unwrap_or("")),
        extras: params
            .iter()
            .filter(|(k, _)| !STANDARD.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        headers,
        deprecation_notice: run.stderr.contains("Flag --"),
    }
}

fn scope_set(scope: &str) -> BTreeSet<String> {
    scope.split_whitespace().map(str::to_string).collect()
}

/// Where our plugin and kubelogin differ on purpose: (row's first argument, field). Each is
/// explained in docs/kubelogin.md.
const INTENDED_DIFFERENCES: &[(&str, &str)] = &[
    // kubelogin v1.30+ dropped these deprecated flags ("unknown flag"); kubeconfigs written
    // for older releases still carry them, and ours still reads them (with a notice).
    ("--listen-port=0", "accepted"),
    ("--listen-port=0,0", "accepted"),
    ("--oidc-redirect-url-hostname=localhost", "accepted"),
    ("--oidc-redirect-url-hostname=127.0.0.1", "accepted"),
    // pflag prints "Flag --oidc-use-pkce has been deprecated" for any value; ours stays quiet
    // when the value turns the deprecated behaviour off.
    ("--oidc-use-pkce=false", "deprecation_notice"),
];

/// Every row of the kubelogin table through `kubelogin` and through our plugin, one after the
/// other against one provider, in kubeconfigs of exec `api_version`; returns the rows'
/// differences (row args, fields) and prints the table.
fn differential(
    kubelogin: &Path,
    api_version: &str,
    label: &str,
    only: impl Fn(&[&str]) -> bool,
) -> Vec<String> {
    let world = World::new(300);
    let ours = Path::new(crate::common::PLUGIN);
    let mut found = Vec::new();
    let mut compared = 0;
    for (i, row) in rows().iter().enumerate() {
        if !only(row.args) {
            continue;
        }
        compared += 1;
        let theirs = observe(
            &world,
            kubelogin,
            api_version,
            &format!("{label}-{i}"),
            row.args,
            i == 0,
        );
        let mine = observe(
            &world,
            ours,
            api_version,
            &format!("ours-{label}-{i}"),
            row.args,
            i == 0,
        );
        let diff = mine.differences(&theirs);
        println!(
            "{label} row {i} {:?}: {}",
            row.args,
            if diff.is_empty() {
                "same".to_string()
            } else {
                format!("differs in {diff:?}\n  kubelogin: {theirs:?}\n  ours:      {mine:?}")
            }
        );
        // The same row must mean what the table says for kubelogin too, or the table is wrong.
        if theirs.accepted && theirs.scope != scope_set(row.scope) {
            found.push(format!(
                "{label}: table scope {:?} for {:?}",
                row.scope, row.args
            ));
        }
        for field in diff {
            found.push(format!("{:?} {field}", row.args));
        }
    }
    assert!(compared >= 10, "{label}: only {compared} rows compared");
    found
}

/// Against the old release, besides: flags deprecated after it (and dropped by the latest
/// release) draw our deprecation notice, which that release did not print.
const INTENDED_DIFFERENCES_OLD: &[(&str, &str)] = &[
    ("--oidc-use-pkce", "deprecation_notice"),
    (
        "--oidc-redirect-url-hostname=localhost",
        "deprecation_notice",
    ),
    (
        "--oidc-redirect-url-hostname=127.0.0.1",
        "deprecation_notice",
    ),
];

/// Splits differences into (intended by `list`, unexpected).
fn intended(found: &[String], list: &[(&str, &str)]) -> (Vec<String>, Vec<String>) {
    found.iter().cloned().partition(|f| {
        list.iter().any(|(row, field)| {
            f.starts_with(&format!("[{row:?}")) && f.ends_with(&format!(" {field}"))
        })
    })
}

#[test]
fn kubelogin_table_rows_send_the_same_request_through_real_kubelogin_and_ours() {
    let Some(kubelogin) = peer("kubelogin", &peer_version("KUBELOGIN")) else {
        return;
    };
    let found = differential(
        &kubelogin,
        "client.authentication.k8s.io/v1",
        "kubelogin",
        |_| true,
    );
    let (expected, unexpected) = intended(&found, INTENDED_DIFFERENCES);
    println!("intended differences: {expected:#?}");
    assert!(
        unexpected.is_empty(),
        "our plugin and kubelogin differ:\n{}",
        unexpected.join("\n")
    );
    // Against the latest release every intended difference shows: none is stale.
    assert_eq!(expected.len(), INTENDED_DIFFERENCES.len(), "{expected:#?}");
    // And the migration guide names each flag.
    let migrating =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/kubelogin.md")).unwrap();
    for (row, _) in INTENDED_DIFFERENCES.iter().chain(INTENDED_DIFFERENCES_OLD) {
        let flag = row.split('=').next().unwrap();
        assert!(
            migrating.contains(&format!("`{flag}")),
            "docs/kubelogin.md names {flag}"
        );
    }
}

/// What one program did with one grant row, as the provider and kubectl's token showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GrantSeen {
    accepted: bool,
    error: String,
    /// The authorization request's PKCE method ("" without PKCE or without a browser).
    pkce: String,
    /// One line per request in which the client authenticated.
    login_requests: Vec<String>,
    refresh_requests: Vec<String>,
    /// The `aud` of the token handed to kubectl: the client's ID token or the access token.
    credential: String,
}

impl GrantSeen {
    fn differences(&self, other: &GrantSeen) -> BTreeSet<&'static str> {
        let mut d = BTreeSet::new();
        if self.accepted != other.accepted {
            d.insert("accepted");
            return d;
        }
        for (name, same) in [
            ("pkce", self.pkce == other.pkce),
            (
                "login_requests",
                self.login_requests == other.login_requests,
            ),
            (
                "refresh_requests",
                self.refresh_requests == other.refresh_requests,
            ),
            ("credential", self.credential == other.credential),
        ] {
            if !same {
                d.insert(name);
            }
        }
        d
    }
}

/// The client-authenticated requests since the last reset, one line each; scopes as a set.
fn client_request_lines(world: &World) -> Vec<String> {
    world
        .provider
        .client_requests()
        .iter()
        .map(|r| {
            format!(
                "{} {} auth={} status={} params={} scope={:?}",
                r["endpoint"].as_str().unwrap_or(""),
                r["grant_type"].as_str().unwrap_or("-"),
                r["auth"].as_str().unwrap_or(""),
                r["status"],
                r["params"],
                scope_set(r["scope"].as_str().unwrap_or(""))
            )
        })
        .collect()
}

/// The `aud` of the token in an ExecCredential on stdout.
fn credential_audience(run: &crate::common::Run) -> String {
    use base64::Engine;
    let token = serde_json::from_str::<Value>(&run.stdout)
        .ok()
        .and_then(|v| v["status"]["token"].as_str().map(str::to_string));
    let Some(token) = token else {
        return String::new();
    };
    token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .map(|c| c["aud"].to_string())
        .unwrap_or_default()
}

/// Runs `program` with a grant row's flags (a fresh cache), then once more with
/// `--force-refresh` when the row refreshes.
fn observe_grant(world: &World, program: &Path, tag: &str, row: &GrantRow) -> GrantSeen {
    let mut args = vec![
        "get-token".to_string(),
        format!("--oidc-issuer-url={}", world.provider.issuer),
        format!("--oidc-client-id={}", row.client_id),
        format!(
            "--token-cache-dir={}",
            world.path(&format!("cache-{tag}")).display()
        ),
        format!(
            "--browser-command={}",
            support_dir().join("login.mjs").display()
        ),
        "--listen-address=127.0.0.1:0".to_string(),
        "--token-cache-storage=disk".to_string(),
    ];
    if let Some(secret) = row.client_secret {
        args.push(format!("--oidc-client-secret={secret}"));
    }
    args.extend(row.args.iter().map(|a| a.to_string()));
    world.provider.reset_counts();
    let before = world.logins().len();
    let mut command = std::process::Command::new(program);
    command.args(&args);
    let run = world.run(command, &[]);
    let login_requests = client_request_lines(world);
    let pkce = if row.args.iter().any(|a| a.starts_with("--grant-type")) || !run.ok() {
        String::new()
    } else {
        world
            .wait_for_logins(before + 1)
            .get(before)
            .and_then(|l| l["auth_params"]["code_challenge_method"].as_str())
            .unwrap_or("")
            .to_string()
    };
    let mut refresh_requests = Vec::new();
    if run.ok() && row.refresh {
        world.provider.reset_counts();
        let mut command = std::process::Command::new(program);
        command.args(&args).arg("--force-refresh");
        let again = world.run(command, &[]);
        refresh_requests = client_request_lines(world);
        if !again.ok() {
            refresh_requests.push(format!("refresh failed: {}", again.stderr.trim()));
        }
    }
    GrantSeen {
        accepted: run.ok(),
        error: run.stderr.lines().last().unwrap_or("").to_string(),
        pkce,
        login_requests,
        refresh_requests,
        credential: credential_audience(&run),
    }
}

#[test]
fn grant_rows_send_the_same_token_requests_through_real_kubelogin_and_ours() {
    let Some(kubelogin) = peer("kubelogin", &peer_version("KUBELOGIN")) else {
        return;
    };
    let ours = Path::new(crate::common::PLUGIN);
    let migrating =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/kubelogin.md")).unwrap();
    let mut failures = Vec::new();
    for (i, row) in grant_rows().iter().enumerate() {
        let envs: Vec<(&str, String)> = row
            .provider
            .iter()
            .map(|(k, v)| (*k, v.to_string()))
            .collect();
        let world = World::with_provider(&envs);
        let theirs = observe_grant(&world, &kubelogin, &format!("kubelogin-{i}"), row);
        let mine = observe_grant(&world, ours, &format!("ours-{i}"), row);
        let diff = mine.differences(&theirs);
        println!(
            "grant row {i} {}: {}\n  kubelogin: {theirs:#?}\n  ours:      {mine:#?}",
            row.name,
            if diff.is_empty() {
                "same".to_string()
            } else {
                format!("differs in {diff:?}")
            }
        );
        if !mine.accepted {
            failures.push(format!("{}: ours failed: {}", row.name, mine.error));
        }
        let intended: BTreeSet<&str> = row.intended.iter().copied().collect();
        if diff != intended {
            failures.push(format!(
                "{}: differs in {diff:?}, intended {intended:?}",
                row.name
            ));
        }
    }
    // Every intended difference is named in the migration guide's tables.
    for topic in [
        "`client_secret_post`",
        "`--grant-type=client-credentials`",
        "PKCE",
    ] {
        if !migrating.contains(topic) {
            failures.push(format!("docs/kubelogin.md does not name {topic}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The flags of a kubelogin binary, from its own `get-token --help` (flags added later make a
/// row not apply to an old release).
fn known_flags(kubelogin: &Path) -> BTreeSet<String> {
    let out = std::process::Command::new(kubelogin)
        .args(["get-token", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    help.split_whitespace()
        .filter_map(|w| w.strip_prefix("--"))
        .map(|w| w.split(['=', ',']).next().unwrap().to_string())
        .collect()
}

#[test]
fn kubelogin_table_rows_an_old_kubelogin_knew_send_the_same_request_through_ours() {
    let version = peer_version("KUBELOGIN_OLD");
    let Some(kubelogin) = peer("kubelogin", &version) else {
        return;
    };
    let flags = known_flags(&kubelogin);
    assert!(flags.contains("oidc-issuer-url"), "{flags:?}");
    let applies = |args: &[&str]| {
        args.iter().filter(|a| a.starts_with("--")).all(|a| {
            let name = a.trim_start_matches('-').split('=').next().unwrap();
            flags.contains(name)
        })
    };
    // Releases before v1.29 answer v1beta1 only, so the kubeconfigs written for them say so.
    let found = differential(
        &kubelogin,
        "client.authentication.k8s.io/v1beta1",
        &format!("kubelogin-{version}"),
        applies,
    );
    let list: Vec<_> = INTENDED_DIFFERENCES
        .iter()
        .chain(INTENDED_DIFFERENCES_OLD)
        .copied()
        .collect();
    let (expected, unexpected) = intended(&found, &list);
    println!("intended differences: {expected:#?}");
    assert!(
        unexpected.is_empty(),
        "our plugin and kubelogin {version} differ:\n{}",
        unexpected.join("\n")
    );
}

/// kubelogin's get-token as a person's kubeconfig runs it, in `world`.
fn kubelogin_get_token(
    world: &World,
    kubelogin: &Path,
    storage: &str,
    env: &[(&str, &str)],
) -> crate::common::Run {
    let mut args = world.get_token_args();
    args.push(format!("--token-cache-storage={storage}"));
    let mut command = std::process::Command::new(kubelogin);
    command.args(&args);
    world.run(command, env)
}

/// The files kubelogin keeps in the cache dir: named by a 64-hex-digit hash.
fn kubelogin_files(world: &World) -> Vec<String> {
    std::fs::read_dir(world.cache_dir())
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
                .collect()
        })
        .unwrap_or_default()
}

/// How many items kubelogin keeps in the Secret Service (service `kubelogin`, as go-keyring
/// writes them), counted with secret-tool; 0 without a keyring.
fn kubelogin_keyring_items(keyring: Option<&SecretService>) -> usize {
    let Some(keyring) = keyring else {
        return 0;
    };
    let out = std::process::Command::new("secret-tool")
        .args(["search", "--all", "service", "kubelogin"])
        .envs(keyring.env())
        .output()
        .unwrap();
    // One "[/org/freedesktop/secrets/collection/…]" header per item, on stdout or stderr
    // depending on the libsecret version.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
        .filter(|l| l.starts_with("[/"))
        .count()
}

fn token_of(run: &crate::common::Run) -> String {
    run.json()["status"]["token"].as_str().unwrap().to_string()
}

/// kubelogin signs in for real and caches the login (disk or keyring); our plugin then answers
/// from that login: with the very same ID token and no request at all while it is valid, with
/// one refresh once it has expired; `clean` then leaves kubelogin nothing to answer from.
fn migration(storage: &str, keyring: Option<&SecretService>) {
    let Some(kubelogin) = peer("kubelogin", &peer_version("KUBELOGIN")) else {
        return;
    };
    let env_owned: Vec<(&str, String)> = keyring.map(|k| k.env()).unwrap_or_default();
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // 1. A valid ID token: no browser, no request to the provider, the same token.
    let world = World::new(300);
    let run = kubelogin_get_token(&world, &kubelogin, storage, &env);
    run.assert_ok();
    let kubelogins_token = token_of(&run);
    assert_eq!(world.wait_for_logins(1).len(), 1, "kubelogin signed in");
    // Where kubelogin put it: one file, or one keyring item and no file.
    let (files, items) = match keyring {
        None => (1, 0),
        Some(_) => (0, 1),
    };
    assert_eq!(
        kubelogin_files(&world).len(),
        files,
        "kubelogin's cache files"
    );
    assert_eq!(
        kubelogin_keyring_items(keyring),
        items,
        "kubelogin's keyring items"
    );
    world.provider.reset_counts();
    let ours = |world: &World| {
        let mut args = world.get_token_args();
        args.push("--token-cache-storage=auto".into());
        args
    };
    let run = world.plugin(&ours(&world), &env);
    run.assert_ok();
    let origin = if keyring.is_some() {
        "in its keyring item kubelogin/"
    } else {
        "in its file "
    };
    assert!(
        run.stderr
            .contains(&format!("Imported the login kubelogin cached {origin}")),
        "{}",
        run.stderr
    );
    assert_eq!(token_of(&run), kubelogins_token, "kubelogin's ID token");
    assert_eq!(
        world.provider.realm_requests(),
        0,
        "{}",
        world.provider.counts()
    );
    assert_eq!(world.logins().len(), 1, "no browser login");

    // 2. `clean`: kubelogin then finds nothing and must sign in again.
    world
        .plugin(
            &[
                "clean".into(),
                format!("--token-cache-dir={}", world.cache_dir().display()),
            ],
            &env,
        )
        .assert_ok();
    assert!(
        kubelogin_files(&world).is_empty(),
        "{:?}",
        kubelogin_files(&world)
    );
    assert_eq!(
        kubelogin_keyring_items(keyring),
        0,
        "kubelogin's keyring items"
    );
    kubelogin_get_token(&world, &kubelogin, storage, &env).assert_ok();
    assert_eq!(
        world.wait_for_logins(2).len(),
        2,
        "after clean, kubelogin needed a browser login"
    );

    // 3. An expired ID token: one refresh, still no browser. The provider's ID tokens live
    // 12 s; the plugin refreshes within its margin (10 s) of expiry.
    let world = World::new(12);
    kubelogin_get_token(&world, &kubelogin, storage, &env).assert_ok();
    assert_eq!(world.wait_for_logins(1).len(), 1);
    std::thread::sleep(Duration::from_secs(3));
    world.provider.reset_counts();
    let run = world.plugin(&ours(&world), &env);
    run.assert_ok();
    assert!(run.stderr.contains("Imported"), "{}", run.stderr);
    assert_eq!(
        world.provider.count("/protocol/openid-connect/token"),
        1,
        "{}\n{}",
        world.provider.counts(),
        run.stderr
    );
    assert_eq!(world.logins().len(), 1, "no browser login");
}

#[test]
fn a_login_real_kubelogin_cached_on_disk_is_used_then_cleaned() {
    migration("disk", None);
}

#[test]
fn a_login_real_kubelogin_kept_in_the_keyring_is_used_then_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = SecretService::start(dir.path());
    migration("keyring", Some(&keyring));
}

/// The exec args our plugin needs against the HTTPS provider of `world`.
fn plugin_args(world: &World, cache: &str) -> Vec<String> {
    let mut args = world.get_token_args();
    args.retain(|a| !a.starts_with("--token-cache-dir"));
    args.push(format!("--token-cache-dir={}", world.path(cache).display()));
    args.push(format!(
        "--certificate-authority={}",
        world.provider_ca.as_ref().unwrap().display()
    ));
    args
}

/// `kubectl auth whoami` through the plugin: (username, groups).
fn whoami(world: &World, kubeconfig: &Path, env: &[(&str, &str)]) -> (String, Vec<String>) {
    let run = world.kubectl(kubeconfig, &["auth", "whoami", "-o", "json"], env);
    run.assert_ok();
    crate::common::user_info(&run)
}

/// The real API server with the OIDC settings of `examples/`: users, `oidc:` groups and RBAC
/// of examples/cluster-role-binding.yaml.
fn real_api_server(oidc: OidcConfig) -> Option<(World, KubeApiServer)> {
    let world = World::with_https_provider(300);
    let api = KubeApiServer::start(
        world.dir.path(),
        &world.provider.issuer,
        world.provider_ca.as_ref().unwrap(),
        oidc,
    )?;
    let (rss, peak) = api.memory_kib();
    println!(
        "kube-apiserver {} ({oidc:?}): ready in {:.1} s, RSS {} MiB (peak {} MiB)",
        peer_version("KUBE_APISERVER"),
        api.startup.as_secs_f64(),
        rss / 1024,
        peak / 1024
    );

    let alice = api.exec_kubeconfig(
        &world.path("alice.kubeconfig"),
        crate::common::PLUGIN,
        &plugin_args(&world, "cache-alice"),
    );
    let (user, groups) = whoami(&world, &alice, &[]);
    assert_eq!(user, "alice@example.com");
    for g in [
        "oidc:KubernetesAdministrators",
        "oidc:developers",
        "system:authenticated",
    ] {
        assert!(groups.contains(&g.to_string()), "{g} in {groups:?}");
    }
    world
        .kubectl(&alice, &["get", "pods", "-A"], &[])
        .assert_ok();
    world
        .kubectl(&alice, &["get", "secrets", "-A"], &[])
        .assert_ok();

    // bob is only in developers: `view` (pods yes, secrets and writes no).
    let bob = api.exec_kubeconfig(
        &world.path("bob.kubeconfig"),
        crate::common::PLUGIN,
        &plugin_args(&world, "cache-bob"),
    );
    let as_bob = [("LOGIN_USER", "bob")];
    let (user, groups) = whoami(&world, &bob, &as_bob);
    assert_eq!(user, "bob@example.com");
    assert!(
        groups.contains(&"oidc:developers".to_string())
            && !groups
                .iter()
                .any(|g| g.contains("KubernetesAdministrators")),
        "{groups:?}"
    );
    world
        .kubectl(&bob, &["get", "pods", "-A"], &as_bob)
        .assert_ok();
    for forbidden in [
        &["get", "secrets", "-A"][..],
        &["create", "configmap", "bobs", "--from-literal=a=b"][..],
    ] {
        let run = world.kubectl(&bob, forbidden, &as_bob);
        run.assert_failed();
        assert!(
            // "Error from server (Forbidden)" for reads; "… is forbidden: User …" for create.
            run.stderr.to_lowercase().contains("forbidden")
                && run.stderr.contains("User \"bob@example.com\""),
            "{forbidden:?}: {}",
            run.stderr
        );
    }
    Some((world, api))
}

#[test]
fn the_real_api_server_with_the_flags_example_maps_users_and_groups() {
    let Some((world, api)) = real_api_server(OidcConfig::Flags) else {
        return;
    };
    // helm against the same server (it is the costly part to start).
    helm_through_the_plugin(&world, &api, "HELM3");
    helm_through_the_plugin(&world, &api, "HELM4");
    let (rss, peak) = api.memory_kib();
    println!(
        "kube-apiserver after the helm runs: RSS {} MiB (peak {} MiB)",
        rss / 1024,
        peak / 1024
    );
}

#[test]
fn the_real_api_server_with_the_authentication_config_example_maps_users_and_groups() {
    let _ = real_api_server(OidcConfig::AuthenticationConfiguration);
}

/// helm installs, lists and uninstalls the chart in tests/support/chart through the plugin's
/// exec credential; the API server's audit log says alice did it, with helm.
fn helm_through_the_plugin(world: &World, api: &KubeApiServer, key: &str) {
    let version = peer_version(key);
    let Some(helm) = peer("helm", &version) else {
        return;
    };
    let kubeconfig = api.exec_kubeconfig(
        &world.path(&format!("helm-{key}.kubeconfig")),
        crate::common::PLUGIN,
        &plugin_args(world, &format!("cache-helm-{key}")),
    );
    let release = format!("peer-{}", key.to_lowercase());
    let helm_run = |args: &[&str]| {
        let mut command = std::process::Command::new(&helm);
        command
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .args(["--namespace", "default"])
            .args(args);
        world.run(command, &[])
    };
    let chart = support_dir().join("chart");
    helm_run(&["install", &release, chart.to_str().unwrap()]).assert_ok();
    let list = helm_run(&["list", "-o", "json"]);
    list.assert_ok();
    let listed: Value = serde_json::from_str(&list.stdout).unwrap();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == release.as_str() && r["status"] == "deployed"),
        "{listed}"
    );
    let configmap = api.admin(&["get", "configmap", &release, "-o", "json"]);
    configmap.assert_ok();
    helm_run(&["uninstall", &release]).assert_ok();

    // The API server recorded who created and deleted the ConfigMap: alice, through helm.
    // helm 3 creates it (verb create); helm 4 applies it server-side (verb patch).
    let events = api.audit_events();
    for verbs in [&["create", "patch"][..], &["delete"][..]] {
        let event = events
            .iter()
            .find(|e| {
                verbs.iter().any(|v| e["verb"] == *v)
                    && e["objectRef"]["resource"] == "configmaps"
                    && e["objectRef"]["name"] == release.as_str()
                    && e["stage"] == "ResponseComplete"
            })
            .unwrap_or_else(|| panic!("no audit event {verbs:?} of {release}"));
        assert_eq!(event["user"]["username"], "alice@example.com", "{event}");
        assert!(
            event["userAgent"]
                .as_str()
                .unwrap_or("")
                .starts_with("Helm/"),
            "{event}"
        );
        let code = event["responseStatus"]["code"].as_u64().unwrap_or(0);
        assert!((200..300).contains(&code), "{event}");
        println!(
            "helm {version}: {} {release} by {} ({})",
            event["verb"], event["user"]["username"], event["userAgent"]
        );
    }
}
