//! TLS and network settings against the real provider: a provider behind a CA made for the
//! test (as a company Keycloak usually is), and a real HTTP proxy (Debian's tinyproxy) that
//! every request to a provider off this machine must cross when HTTPS_PROXY says so. A
//! loopback provider is never reached through a proxy (tests/suite/trust_attacks.rs), and a
//! plain-http provider is accepted only on loopback, so HTTP_PROXY never carries a provider's
//! traffic.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::World;

fn ca_flag(world: &World) -> String {
    format!(
        "--certificate-authority={}",
        world.provider_ca.as_ref().unwrap().display()
    )
}

/// get-token arguments that log in on every call (nothing cached), plus `extra`.
fn uncached(world: &World, extra: &[&str]) -> Vec<String> {
    let mut args = world.get_token_args();
    args.push("--token-cache-storage=none".into());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[test]
fn a_private_ca_is_refused_until_given_by_file_or_data() {
    let world = World::with_https_provider(300);

    let run = world.plugin(&uncached(&world, &[]), &[]);
    run.assert_failed();
    assert!(run.stdout.is_empty());
    let error = run.stderr.lines().last().unwrap();
    assert!(error.contains("certificate"), "{error}");
    assert!(error.contains("--certificate-authority"), "{error}");
    assert!(error.contains("127.0.0.1:"), "names the host: {error}");
    assert!(world.logins().is_empty(), "refused before any browser");

    let ca = ca_flag(&world);
    world.plugin(&uncached(&world, &[&ca]), &[]).assert_ok();

    use base64::Engine;
    let pem = std::fs::read(world.provider_ca.as_ref().unwrap()).unwrap();
    let data = format!(
        "--certificate-authority-data={}",
        base64::engine::general_purpose::STANDARD.encode(pem)
    );
    world.plugin(&uncached(&world, &[&data]), &[]).assert_ok();
    assert_eq!(world.wait_for_logins(2).len(), 2);
}

#[test]
fn a_ca_file_that_is_not_pem_is_named() {
    let world = World::with_https_provider(300);
    let bogus = world.path("not-a-ca.pem");
    std::fs::write(&bogus, "hello").unwrap();
    let flag = format!("--certificate-authority={}", bogus.display());
    let run = world.plugin(&uncached(&world, &[&flag]), &[]);
    run.assert_failed();
    assert!(
        run.stderr.contains(&bogus.display().to_string()),
        "{}",
        run.stderr
    );
}

#[test]
fn insecure_skip_tls_verify_works_and_warns() {
    let world = World::with_https_provider(300);
    let run = world.plugin(&uncached(&world, &["--insecure-skip-tls-verify"]), &[]);
    run.assert_ok();
    assert!(
        run.stderr.contains(
            "warning: --insecure-skip-tls-verify: the provider's TLS certificate is not verified"
        ),
        "{}",
        run.stderr
    );
}

/// A tinyproxy on a free loopback port, logging every request.
pub(crate) struct Tinyproxy {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Tinyproxy {
    pub(crate) fn start(world: &World) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = world.path("tinyproxy.log");
        let conf = world.path("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogFile \"{}\"\nLogLevel Info\nMaxClients 20\nAllow 127.0.0.1\n",
                log.display()
            ),
        )
        .unwrap();
        let child = Command::new("tinyproxy")
            .args(["-d", "-c"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tinyproxy is installed (test.sh installs it)");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "tinyproxy did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Tinyproxy { child, port, log }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The request lines tinyproxy logged ("GET http://…", "CONNECT host:port").
    pub(crate) fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once("]: Request (file descriptor "))
            .filter_map(|(_, rest)| rest.split_once("): ").map(|(_, r)| r.to_string()))
            .collect()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An address of this machine that is not loopback (proxies carry requests to it), from
/// `hostname -I`.
fn non_loopback_address() -> Option<String> {
    let out = Command::new("hostname").arg("-I").output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|a| a.parse::<std::net::Ipv4Addr>().ok())
        .find(|ip| !ip.is_loopback() && !ip.is_unspecified())
        .map(|ip| ip.to_string())
}

#[test]
fn every_request_to_an_https_provider_crosses_https_proxy_unless_no_proxy() {
    let Some(address) = non_loopback_address() else {
        crate::common::not_built_here(
            "not built here: the HTTPS_PROXY test (this machine has no IPv4 address but loopback, and loopback is never proxied)",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = crate::common::test_certificate_for(dir.path(), "provider", &[&address]);
    let provider = crate::common::Provider::start_with(
        dir.path(),
        &[
            ("OP_HOST", address.clone()),
            ("OP_TLS_CERT", cert.display().to_string()),
            ("OP_TLS_KEY", key.display().to_string()),
        ],
    );
    let api = crate::common::ApiServer::start(dir.path(), &provider.issuer, Some(&ca));
    let world = World {
        dir,
        provider,
        api,
        provider_ca: Some(ca),
    };
    let proxy = Tinyproxy::start(&world);
    let ca = ca_flag(&world);
    let url = proxy.url();
    let args = uncached(&world, &[&ca]);
    world
        .plugin(&args, &[("HTTPS_PROXY", url.as_str())])
        .assert_ok();
    let requests = proxy.requests();
    let provider = format!("CONNECT {address}:{}", world.provider.port);
    // Discovery, JWKS and the token exchange: each a tunnel through the proxy.
    let tunnels = requests.iter().filter(|r| r.starts_with(&provider)).count();
    assert!(tunnels >= 1, "{requests:?}");
    assert_eq!(tunnels, requests.len(), "{requests:?}");
    let before = world.provider.realm_requests();
    assert!(before >= 3, "the provider saw the requests too");

    // NO_PROXY bypasses it.
    let seen = requests.len();
    world
        .plugin(
            &args,
            &[
                ("HTTPS_PROXY", url.as_str()),
                ("NO_PROXY", address.as_str()),
            ],
        )
        .assert_ok();
    assert_eq!(proxy.requests().len(), seen, "{:?}", proxy.requests());
}

#[test]
fn local_server_cert_serves_the_redirect_over_https() {
    // A provider that only accepts an https redirect URI: a web client with an exact one.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redirect = format!("https://localhost:{port}");
    let world = World::with_provider(&[
        ("OP_APPLICATION_TYPE", "web".into()),
        ("OP_REDIRECT_URIS", format!("[\"{redirect}\"]")),
    ]);
    let (ca, cert, key) = crate::common::test_certificate(world.dir.path(), "loopback");
    let mut args = world.get_token_args();
    args.retain(|a| !a.starts_with("--listen-address"));
    args.extend([
        format!("--listen-address=127.0.0.1:{port}"),
        format!("--local-server-cert={}", cert.display()),
        format!("--local-server-key={}", key.display()),
    ]);
    // The browser trusts the listener's certificate, as the user's would after installing it.
    let ca_env = ca.display().to_string();
    let run = world.plugin(&args, &[("NODE_EXTRA_CA_CERTS", ca_env.as_str())]);
    run.assert_ok();
    let login = &world.wait_for_logins(1)[0];
    assert_eq!(login["auth_params"]["redirect_uri"], redirect.as_str());
    assert_eq!(login["callback_status"], 200, "{login}");
    assert!(login["callback_page"]
        .as_str()
        .unwrap()
        .contains("Signed in"));

    // A browser that resolves `localhost` to ::1 reaches the HTTPS listener there too.
    let mut fresh = args.clone();
    fresh.push("--token-cache-storage=none".into());
    let run = world.plugin(
        &fresh,
        &[
            ("NODE_EXTRA_CA_CERTS", ca_env.as_str()),
            ("LOGIN_LOOPBACK_HOST", "::1"),
        ],
    );
    run.assert_ok();
    let login = &world.wait_for_logins(2)[1];
    assert_eq!(login["callback_via"], "::1", "{login}");
    assert_eq!(login["callback_status"], 200, "{login}");
    assert!(
        login["callback_page"]
            .as_str()
            .unwrap()
            .contains("Signed in as alice@example.com"),
        "{login}"
    );

    // A key that does not belong to the certificate is named before any browser opens.
    let (_, _, other_key) = crate::common::test_certificate(world.dir.path(), "other");
    let mut bad = args.clone();
    bad.retain(|a| !a.starts_with("--local-server-key"));
    bad.push(format!("--local-server-key={}", other_key.display()));
    bad.push("--force-refresh".into());
    bad.push("--token-cache-storage=none".into());
    let run = world.plugin(&bad, &[]);
    run.assert_failed();
    assert!(
        run.stderr
            .contains("--local-server-cert/--local-server-key"),
        "{}",
        run.stderr
    );
    assert_eq!(world.logins().len(), 2);
}
