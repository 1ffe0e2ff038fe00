//! A machine whose clock is minutes or hours off still works: the plugin runs under
//! libfaketime (Debian `faketime`, LD_PRELOAD on the dynamically linked test build), while the
//! provider, the API server stand-in (which refuses expired tokens by its own, real clock)
//! and the real kubectl keep the real time. Every time decision about tokens follows the
//! provider's clock (measured from its Date header at each token response); only the
//! ExecCredential's expirationTimestamp is in this machine's clock, for client-go.

use std::path::PathBuf;

use crate::common::{support_dir, Run, World, PLUGIN};
use serde_json::Value;

const TOKEN: &str = "/protocol/openid-connect/token";
const NOTICE: &str = "this machine's clock is ";

fn libfaketime() -> PathBuf {
    let found = std::fs::read_dir("/usr/lib")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("faketime/libfaketime.so.1"))
        .find(|p| p.exists());
    found.expect("libfaketime is missing: ./test.sh installs Debian's faketime")
}

/// The world of one skewed machine: the plugin (and only it) sees its clock `skew_secs` off.
struct Skewed {
    world: World,
    kubeconfig: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    skew_secs: i64,
}

impl Skewed {
    fn new(skew_secs: i64, ttl_secs: u64) -> Skewed {
        let world = World::new(ttl_secs);
        let mut args = world.get_token_args();
        // The scripted browser is no part of the machine under test: it runs on the real
        // clock, as the provider's pages would for a person.
        args.retain(|a| !a.starts_with("--browser-command"));
        args.push(format!(
            "--browser-command=env -u LD_PRELOAD -u FAKETIME {}",
            support_dir().join("login.mjs").display()
        ));
        args.push("--token-cache-storage=disk".into());
        let env = vec![
            (
                "LD_PRELOAD".to_string(),
                libfaketime().display().to_string(),
            ),
            ("FAKETIME".to_string(), format!("{skew_secs:+}")),
            // Only the wall clock is wrong on such machines; timeouts stay real.
            ("FAKETIME_DONT_FAKE_MONOTONIC".to_string(), "1".to_string()),
        ];
        let kubeconfig = kubeconfig_with_env(&world, &args, &env);
        Skewed {
            world,
            kubeconfig,
            args,
            env,
            skew_secs,
        }
    }

    fn kubectl(&self) -> Run {
        self.world
            .kubectl(&self.kubeconfig, &["get", "--raw", "/api"], &[])
    }

    /// The plugin run by hand on the skewed clock: its ExecCredential and stderr.
    fn plugin(&self) -> Run {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.world.plugin(&self.args, &env)
    }

    /// The `exp` of the cached ID token: the provider's (real) clock.
    fn cached_exp(&self) -> i64 {
        let json: Value =
            serde_json::from_slice(&std::fs::read(self.world.token_file()).unwrap()).unwrap();
        json["id_token_expiry"].as_i64().unwrap()
    }
}

/// A kubeconfig whose exec entry gives the plugin (and only it) `env`.
fn kubeconfig_with_env(world: &World, args: &[String], env: &[(String, String)]) -> PathBuf {
    let path = world.kubeconfig(
        "kubeconfig",
        "client.authentication.k8s.io/v1",
        PLUGIN,
        args,
    );
    let mut config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["users"][0]["user"]["exec"]["env"] = env
        .iter()
        .map(|(name, value)| serde_json::json!({"name": name, "value": value}))
        .collect();
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    path
}

fn notices(stderr: &str) -> usize {
    stderr.matches(NOTICE).count()
}

fn expiration_timestamp(run: &Run) -> i64 {
    let text = run.json()["status"]["expirationTimestamp"]
        .as_str()
        .unwrap()
        .to_string();
    chrono::DateTime::parse_from_rfc3339(&text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .timestamp()
}

/// One browser login, a cache hit, and (for short tokens) a refresh after the token's real
/// expiry, all through the real kubectl; the notice once per login or refresh, never on a hit.
fn works_with_skew(skew_secs: i64, ttl_secs: u64) {
    let machine = Skewed::new(skew_secs, ttl_secs);
    let world = &machine.world;

    let run = machine.kubectl();
    run.assert_ok();
    assert_eq!(world.logins().len(), 1, "{}", run.stderr);
    let expect_notice = skew_secs.abs() > kubectl_oidc_login::clock::NOTICE_SECS;
    assert_eq!(
        notices(&run.stderr),
        usize::from(expect_notice),
        "{}",
        run.stderr
    );
    if expect_notice {
        let way = if skew_secs > 0 { "ahead of" } else { "behind" };
        assert!(run.stderr.contains(way), "{}", run.stderr);
    }

    // A cache hit, by hand: no request, no notice, and the expiry in this machine's clock.
    world.provider.reset_counts();
    let hit = machine.plugin();
    hit.assert_ok();
    assert_eq!(
        world.provider.realm_requests(),
        0,
        "{}",
        world.provider.counts()
    );
    assert_eq!(notices(&hit.stderr), 0, "{}", hit.stderr);
    let local_expiry = expiration_timestamp(&hit);
    let expected = machine.cached_exp() + machine.skew_secs;
    assert!(
        (local_expiry - expected).abs() <= 2,
        "expirationTimestamp {local_expiry}, expected the real expiry moved by the skew: {expected}"
    );
    machine.kubectl().assert_ok();
    assert_eq!(
        world.provider.count(TOKEN),
        0,
        "{}",
        world.provider.counts()
    );

    if ttl_secs <= 60 {
        // Past the token's real expiry, whichever way this machine's clock is off: one
        // refresh, no browser, and the API server (real clock) accepts the new token.
        // The test itself runs on the real clock, and the cached exp is the provider's.
        world.wait_for_cached_token_to_expire();
        world.provider.reset_counts();
        let run = machine.kubectl();
        run.assert_ok();
        assert_eq!(
            world.provider.count(TOKEN),
            1,
            "{}",
            world.provider.counts()
        );
        assert_eq!(
            notices(&run.stderr),
            usize::from(expect_notice),
            "{}",
            run.stderr
        );
        machine.kubectl().assert_ok();
        assert_eq!(
            world.provider.count(TOKEN),
            1,
            "{}",
            world.provider.counts()
        );
    }
    assert_eq!(world.logins().len(), 1, "one browser login in all");
}

/// A token the provider signed with an `exp` already past by the real clock is refused
/// however this machine's clock is set, and kubectl gets no credential.
fn refuses_an_expired_token_with_skew(skew_secs: i64) {
    let world = World::with_provider(&[("OP_FORGE", "expired".to_string())]);
    let mut args = world.get_token_args();
    args.push("--token-cache-storage=disk".into());
    let faketime = libfaketime().display().to_string();
    let skew = format!("{skew_secs:+}");
    let run = world.plugin(
        &args,
        &[
            ("LD_PRELOAD", faketime.as_str()),
            ("FAKETIME", skew.as_str()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    );
    run.assert_failed();
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("the ID token is not valid at the provider's time: ID token expired at"),
        "{}",
        run.stderr
    );
    // The browser reports its run after the plugin has exited, so wait for that one report.
    assert_eq!(world.wait_for_logins(1).len(), 1, "no second browser login");
    let cached = std::fs::read_dir(world.cache_dir())
        .map(|d| {
            d.filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy().ends_with(".token.json"))
        })
        .unwrap_or(false);
    assert!(!cached, "nothing cached");
}

macro_rules! skews {
    ($($name:ident: $skew:expr, $ttl:expr;)*) => {$(
        #[test]
        fn $name() {
            works_with_skew($skew, $ttl);
        }
    )*};
}

skews! {
    one_hour_behind_with_30_second_tokens: -3600, 30;
    six_minutes_behind_with_30_second_tokens: -360, 30;
    four_minutes_behind_with_30_second_tokens: -240, 30;
    ten_minutes_ahead_with_30_second_tokens: 600, 30;
    one_hour_ahead_with_30_second_tokens: 3600, 30;
    one_hour_behind_with_5_minute_tokens: -3600, 300;
    six_minutes_behind_with_5_minute_tokens: -360, 300;
    four_minutes_behind_with_5_minute_tokens: -240, 300;
    ten_minutes_ahead_with_5_minute_tokens: 600, 300;
    one_hour_ahead_with_5_minute_tokens: 3600, 300;
}

#[test]
fn an_expired_token_is_refused_whatever_the_skew() {
    for skew in [-3600, -360, -240, 0, 600, 3600] {
        refuses_an_expired_token_with_skew(skew);
    }
}
