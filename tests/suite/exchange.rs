//! `--token-exchange-audience` against the test provider (tests/support/provider.mjs), whose
//! confidential client `kubernetes-exchange` exchanges its users' access tokens for the
//! audiences cluster-a/b/c as Keycloak's standard token exchange does: the cache per audience,
//! a user switch reaching every cluster, logout, a provider without token exchange, and
//! exchanged tokens the plugin must refuse. The real Keycloak and kube-apiservers run the same
//! story in tests/suite/keycloak/exchange.rs.

use serde_json::Value;

use crate::common::{jwt_claims, Run, World};

const TOKEN: &str = "/protocol/openid-connect/token";

fn args(world: &World, audience: &str) -> Vec<String> {
    let mut args = world.get_token_args();
    args.retain(|a| !a.starts_with("--oidc-client-id"));
    args.extend([
        "--oidc-client-id=kubernetes-exchange".to_string(),
        "--oidc-client-secret=exchange-secret".to_string(),
        "--token-cache-storage=disk".to_string(),
        format!("--token-exchange-audience={audience}"),
    ]);
    args
}

fn with_command(mut args: Vec<String>, command: &str) -> Vec<String> {
    args[0] = command.to_string();
    args
}

fn claims(run: &Run) -> Value {
    jwt_claims(run.json()["status"]["token"].as_str().unwrap())
}

fn logins(world: &World) -> usize {
    world.logins().len()
}

/// Files in the cache directory whose names end with `suffix`.
fn cached(world: &World, suffix: &str) -> usize {
    std::fs::read_dir(world.cache_dir())
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_user_switch_by_login_reaches_every_cluster_and_logout_forgets_their_tokens() {
    let world = World::new(300);
    let (a, b) = (args(&world, "cluster-a"), args(&world, "cluster-b"));

    let run = world.plugin(&a, &[]);
    run.assert_ok();
    assert_eq!(claims(&run)["sub"], "alice");
    assert_eq!(claims(&run)["aud"], "cluster-a");
    world.provider.reset_counts();
    let run = world.plugin(&b, &[]);
    run.assert_ok();
    assert_eq!(claims(&run)["aud"], "cluster-b");
    assert_eq!(world.provider.realm_requests(), 1, "one exchange, no login");
    assert_eq!(world.provider.count(TOKEN), 1);
    assert_eq!(logins(&world), 1);

    // The hot path: a cached cluster token, no request.
    world.provider.reset_counts();
    world.plugin(&a, &[]).assert_ok();
    assert_eq!(world.provider.realm_requests(), 0);
    // --force-refresh on a cluster's entry exchanges again; it does not sign in again.
    let mut forced = a.clone();
    forced.push("--force-refresh".into());
    world.plugin(&forced, &[]).assert_ok();
    assert_eq!(world.provider.count(TOKEN), 1);
    assert_eq!(logins(&world), 1);

    // `login` switches to bob (with any cluster's flags: it acts on the login client); every
    // cluster's next token is bob's, not alice's cached one.
    world
        .plugin(&with_command(b.clone(), "login"), &[("LOGIN_USER", "bob")])
        .assert_ok();
    assert_eq!(logins(&world), 2);
    world.provider.reset_counts();
    let run = world.plugin(&a, &[]);
    run.assert_ok();
    assert_eq!(
        claims(&run)["sub"],
        "bob",
        "cluster-a still had alice's token"
    );
    assert_eq!(
        world.provider.count(TOKEN),
        1,
        "one exchange of bob's login"
    );
    assert_eq!(logins(&world), 2);

    // logout forgets the login and the tokens exchanged from it.
    assert!(cached(&world, ".token.json") >= 2);
    let mut logout = with_command(a.clone(), "logout");
    logout.push("--keep-session".into());
    // (The test provider's plain-http revocation endpoint is refused: that error is logout's.)
    let run = world.plugin(&logout, &[]);
    assert!(
        run.stderr.contains("Removed the cached login"),
        "{}",
        run.stderr
    );
    assert_eq!(cached(&world, ".token.json"), 0);
}

#[test]
fn a_provider_without_token_exchange_is_named_before_any_browser_login() {
    let world = World::with_provider(&[("OP_NO_EXCHANGE", "1".into())]);
    let run = world.plugin(&args(&world, "cluster-a"), &[]);
    run.assert_failed();
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    assert!(
        errors[0].contains("lists no urn:ietf:params:oauth:grant-type:token-exchange grant")
            && errors[0].contains("Keycloak 26.2"),
        "{}",
        errors[0]
    );
    assert_eq!(
        logins(&world),
        0,
        "no browser for a provider that cannot exchange"
    );
    assert_eq!(world.provider.count(TOKEN), 0);
}

#[test]
fn exchanged_tokens_for_other_audiences_other_keys_or_past_expiry_are_refused() {
    for (forge, words) in [
        ("extra_aud", "cluster-z"),
        ("other_key", "Signature verification failed"),
        ("expired", "expired"),
    ] {
        let world = World::with_provider(&[("OP_EXCHANGE_FORGE", forge.into())]);
        let a = args(&world, "cluster-a");
        for attempt in 0..2 {
            let run = world.plugin(&a, &[]);
            eprintln!("{forge} (attempt {attempt}): {}", run.stderr);
            run.assert_failed();
            assert!(
                run.stderr
                    .contains("the token exchanged for audience cluster-a failed verification")
                    && run.stderr.contains(words),
                "{forge}: {}",
                run.stderr
            );
            assert!(!run.stdout.contains("token"), "no token handed to kubectl");
        }
        // Nothing refused was cached; the login was (one browser login).
        assert_eq!(cached(&world, ".token.json"), 1, "{forge}");
        assert_eq!(logins(&world), 1);
    }
}
