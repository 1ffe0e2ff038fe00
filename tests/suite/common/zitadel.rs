//! zitadel/oidc's example OpenID Provider (`example/server` of the pinned library release that
//! scripts/providers builds, unchanged), started per test on a free port with users of the
//! test's own (its USERS_FILE setting). Its issuer is `http://localhost:PORT/` (trailing slash
//! included), it serves one native client `native` (PKCE, refresh tokens with offline_access,
//! loopback redirects on any port), its ID tokens carry `sub` only and live one hour (both fixed
//! in the example). Requests are counted in its own log: the example logs every request it
//! served (`msg="http request" ... path=/oauth/token`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{free_port, Daemon};

pub struct Zitadel {
    _daemon: Daemon,
    /// `http://localhost:PORT/`, as the example announces it.
    pub issuer: String,
    pub port: u16,
    pub log: PathBuf,
    /// Requests in the log before the last reset.
    offset: std::cell::Cell<usize>,
}

impl Zitadel {
    /// Starts the example provider in `dir` whose native client accepts loopback redirects to
    /// `redirect_uri` on any port; None (after the `not built here` line) when scripts/providers
    /// could not build it.
    pub fn start(dir: &Path, redirect_uri: &str) -> Option<Self> {
        let binary = match super::hydra::built_provider(
            "zitadel",
            "zitadel-oidc",
            "zitadel",
            "github.com/zitadel/oidc/v3",
        ) {
            Ok(b) => b,
            Err(why) => {
                super::not_built_here(&why);
                return None;
            }
        };
        // The example's User fields (storage.User), keyed by ID, which becomes `sub`.
        let users = dir.join("zitadel-users.json");
        std::fs::write(
            &users,
            serde_json::to_vec(&json!({
                "alice": {"ID": "alice", "Username": "alice", "Password": "secret",
                    "FirstName": "Alice", "LastName": "Admin", "Email": "alice@example.com",
                    "EmailVerified": true, "PreferredLanguage": "en", "IsAdmin": true},
            }))
            .unwrap(),
        )
        .unwrap();
        let port = free_port();
        let log = dir.join("zitadel.log");
        let child = Command::new(binary)
            .env("PORT", port.to_string())
            .env("REDIRECT_URI", redirect_uri)
            .env("USERS_FILE", &users)
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::OpenOptions::new().append(true).open(&log).unwrap(),
            ))
            .spawn()
            .expect("the zitadel example runs");
        let zitadel = Zitadel {
            _daemon: Daemon::from_child(child),
            issuer: format!("http://localhost:{port}/"),
            port,
            log,
            offset: std::cell::Cell::new(0),
        };
        let http = reqwest::blocking::Client::new();
        let start = Instant::now();
        let discovery = format!("{}.well-known/openid-configuration", zitadel.issuer);
        while !http
            .get(&discovery)
            .send()
            .map(|r| r.status().is_success())
            .unwrap_or(false)
        {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the zitadel example did not start: {}",
                std::fs::read_to_string(&zitadel.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        zitadel.reset_counts();
        Some(zitadel)
    }

    /// The paths of the requests it served since the last reset, from its log.
    pub fn requests(&self) -> Vec<String> {
        self.logged_paths().split_off(self.offset.get())
    }

    fn logged_paths(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("msg=\"http request\""))
            .filter_map(|l| {
                l.split_whitespace()
                    .find_map(|f| f.strip_prefix("path="))
                    .map(str::to_string)
            })
            .collect()
    }

    pub fn count(&self, path: &str) -> usize {
        self.requests().iter().filter(|p| *p == path).count()
    }

    pub fn reset_counts(&self) {
        // The example logs a request once it is answered; the test's requests are answered.
        self.offset.set(self.logged_paths().len());
    }

    /// Revokes a refresh token of the native client (RFC 7009).
    pub fn revoke(&self, refresh_token: &str) -> u16 {
        reqwest::blocking::Client::new()
            .post(format!("{}revoke", self.issuer))
            .form(&[
                ("token", refresh_token),
                ("token_type_hint", "refresh_token"),
                ("client_id", "native"),
            ])
            .send()
            .unwrap()
            .status()
            .as_u16()
    }
}
