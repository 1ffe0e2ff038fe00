//! The scripted browser (tests/support/login.mjs, or chromium-login.mjs for real Chromium):
//! the plugin runs it as --browser-command, and it logs each run as a JSON line.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::World;

impl World {
    pub fn login_log(&self) -> PathBuf {
        self.path("login.log")
    }

    /// The runs of the scripted browser so far, one JSON object each. A run reports after the
    /// redirect, when the plugin may already have exited, so this waits (up to 30 s) until every
    /// run started so far has reported (each writes a line to `login.log.started` first).
    pub fn logins(&self) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let reported = self.reported_logins();
            let started = std::fs::read_to_string(self.path("login.log.started"))
                .map(|s| s.lines().count())
                .unwrap_or(0);
            if reported.len() >= started || start.elapsed() > Duration::from_secs(30) {
                return reported;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn reported_logins(&self) -> Vec<Value> {
        std::fs::read_to_string(self.login_log())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits (up to 30 s) until the browser has finished `n` runs: it reports after the plugin
    /// may already have exited, since it takes its screenshot and closes after the redirect.
    pub fn wait_for_logins(&self, n: usize) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let logins = self.logins();
            if logins.len() >= n || start.elapsed() > Duration::from_secs(30) {
                return logins;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
