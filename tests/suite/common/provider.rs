//! The real OpenID Provider: npm oidc-provider set up like a Keycloak realm
//! (tests/support/provider.mjs), with test hooks that count requests and revoke tokens.

use std::path::Path;

use serde_json::Value;

use super::{start_node, Daemon};

pub struct Provider {
    _daemon: Daemon,
    pub issuer: String,
    pub port: u16,
}

impl Provider {
    /// Starts a provider whose ID and access tokens live `ttl_secs`.
    pub fn start(dir: &Path, ttl_secs: u64) -> Self {
        Self::start_with(dir, &[("OP_ID_TOKEN_TTL", ttl_secs.to_string())])
    }

    pub fn start_with(dir: &Path, envs: &[(&str, String)]) -> Self {
        let (daemon, ready) = start_node("provider.mjs", &[], envs, &dir.join("provider.log"));
        Provider {
            _daemon: daemon,
            issuer: ready["issuer"].as_str().unwrap().to_string(),
            port: ready["port"].as_u64().unwrap() as u16,
        }
    }

    /// The provider goes down: its port refuses connections from now on.
    pub fn stop(&mut self) {
        self._daemon.stop();
    }

    fn test_url(&self, path: &str) -> String {
        // The provider's own origin: it listens on 127.0.0.1 unless OP_HOST says otherwise.
        let origin = self.issuer.split("/realms/").next().unwrap();
        format!("{origin}/__test/{path}")
    }

    /// An HTTP client for the test hooks; the provider's certificate is the test's own.
    fn http(&self) -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap()
    }

    /// Requests per path since the last reset, e.g. "/realms/test/protocol/openid-connect/token".
    pub fn counts(&self) -> Value {
        let body = self
            .http()
            .get(self.test_url("counts"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        serde_json::from_str(&body).unwrap()
    }

    /// The `x-*` request headers last seen per path.
    pub fn headers(&self) -> Value {
        let body = self
            .http()
            .get(self.test_url("headers"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        serde_json::from_str(&body).unwrap()
    }

    /// Every request in which a client authenticated (token, revocation, device
    /// authorization) since the last reset, in order: `endpoint`, `grant_type`, `scope`,
    /// `auth` (basic, post or none), `params` (names only) and `status`.
    pub fn client_requests(&self) -> Vec<Value> {
        let body = self
            .http()
            .get(self.test_url("client_requests"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        serde_json::from_str(&body).unwrap()
    }

    /// How many requests reached `endpoint` (a path below the realm).
    pub fn count(&self, endpoint: &str) -> u64 {
        self.counts()[format!("/realms/test{endpoint}")]
            .as_u64()
            .unwrap_or(0)
    }

    /// Total requests to the realm (test hooks excluded).
    pub fn realm_requests(&self) -> u64 {
        self.counts()
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.starts_with("/realms/"))
            .map(|(_, v)| v.as_u64().unwrap())
            .sum()
    }

    pub fn reset_counts(&self) {
        self.http().post(self.test_url("reset")).send().unwrap();
    }

    /// Revokes a refresh token at the provider (RFC 7009), as an admin or logout would.
    pub fn revoke(&self, refresh_token: &str) {
        let status = self
            .http()
            .post(format!("{}/protocol/openid-connect/revoke", self.issuer))
            .form(&[
                ("token", refresh_token),
                ("token_type_hint", "refresh_token"),
                ("client_id", "kubernetes"),
            ])
            .send()
            .unwrap()
            .status();
        assert!(status.is_success(), "revocation answered {status}");
    }

    /// Exchanges a refresh token directly, to check at the provider whether it is still alive.
    pub fn refresh_status(&self, refresh_token: &str) -> u16 {
        self.http()
            .post(format!("{}/protocol/openid-connect/token", self.issuer))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", "kubernetes"),
            ])
            .send()
            .unwrap()
            .status()
            .as_u16()
    }
}
