//! A real Secret Service: a private D-Bus session with gnome-keyring, and what the plugin left
//! in the token cache directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Daemon, World};

/// A private D-Bus session with an unlocked gnome-keyring (a real Secret Service), its keyrings
/// in a throwaway XDG_DATA_HOME (a keyring made with another password would stay locked).
pub struct SecretService {
    _bus: Daemon,
    _keyring: Daemon,
    pub address: String,
    pub data_home: PathBuf,
}

impl SecretService {
    pub fn start(dir: &Path) -> Self {
        // A session bus without service activation: otherwise a client call that comes before
        // our daemon has claimed org.freedesktop.secrets activates a second, locked
        // gnome-keyring, and every write then fails for want of a GUI prompt.
        let bus_config = dir.join("dbus-session.conf");
        std::fs::write(
            &bus_config,
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
        )
        .unwrap();
        let mut bus = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", bus_config.display()))
            .args(["--nofork", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon runs (./test.sh installs it)");
        let mut address = String::new();
        BufReader::new(bus.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        let address = address.trim().to_string();
        let data_home = dir.join("xdg-data");
        std::fs::create_dir_all(&data_home).unwrap();
        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("XDG_DATA_HOME", &data_home)
            .env("HOME", dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnome-keyring-daemon runs (./test.sh installs it)");
        {
            use std::io::Write;
            let mut stdin = keyring.stdin.take().unwrap();
            stdin.write_all(b"test-keyring-password").unwrap();
        }
        let service = SecretService {
            _bus: Daemon { child: bus },
            _keyring: Daemon { child: keyring },
            address,
            data_home,
        };
        // Ready once a write succeeds: the login collection is created asynchronously after
        // --unlock, and a write before that fails with "result not returned from SS API".
        let start = Instant::now();
        while !service.store_probe() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "gnome-keyring did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        service
    }

    fn store_probe(&self) -> bool {
        use std::io::Write;
        let Ok(mut child) = Command::new("secret-tool")
            .args([
                "store",
                "--label=probe",
                "service",
                "test-probe",
                "username",
                "probe",
            ])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env("XDG_DATA_HOME", &self.data_home)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        else {
            return false;
        };
        let _ = child.stdin.take().unwrap().write_all(b"probe");
        child.wait().is_ok_and(|s| s.success())
    }

    fn lookup_raw(&self, username: &str) -> Option<Output> {
        let out = Command::new("secret-tool")
            .args([
                "lookup",
                "service",
                "kubectl-oidc-login",
                "username",
                username,
            ])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env("XDG_DATA_HOME", &self.data_home)
            .output()
            .ok()?;
        // Exit 1 with nothing on stdout or stderr is "no such item"; errors print to stderr.
        if !out.stderr.is_empty() {
            eprintln!("secret-tool: {}", String::from_utf8_lossy(&out.stderr));
            return None;
        }
        Some(out)
    }

    /// Stores `secret` as another program would: attributes `service` and `username`, as
    /// zalando/go-keyring (kubelogin's) writes them.
    pub fn store_item(&self, service: &str, username: &str, secret: &str) {
        use std::io::Write;
        let mut child = Command::new("secret-tool")
            .args([
                "store",
                "--label=test item",
                "service",
                service,
                "username",
                username,
            ])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env("XDG_DATA_HOME", &self.data_home)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(secret.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "secret-tool store");
    }

    /// Whether `service` holds an item `username`.
    pub fn has_item(&self, service: &str, username: &str) -> bool {
        let out = Command::new("secret-tool")
            .args(["lookup", "service", service, "username", username])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env("XDG_DATA_HOME", &self.data_home)
            .output()
            .unwrap();
        !out.stdout.is_empty()
    }

    /// The secret stored under `username` for our service, read with secret-tool.
    pub fn lookup(&self, username: &str) -> Option<String> {
        let out = self.lookup_raw(username)?;
        let secret = String::from_utf8(out.stdout).unwrap();
        (!secret.is_empty()).then_some(secret)
    }

    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DBUS_SESSION_BUS_ADDRESS", self.address.clone()),
            ("XDG_DATA_HOME", self.data_home.display().to_string()),
        ]
    }
}

impl World {
    /// A login as int128/kubelogin caches it, `{"id_token","refresh_token"}` JSON, with real
    /// tokens of the test provider: this plugin signs in once (disk storage) in a scratch
    /// directory named after `name`, which is then removed.
    pub fn kubelogin_entry(&self, name: &str, env: &[(&str, &str)]) -> Value {
        let scratch = self.path(&format!("scratch-{name}"));
        let mut args = self.get_token_args();
        args.retain(|a| !a.starts_with("--token-cache-dir"));
        args.push(format!("--token-cache-dir={}", scratch.display()));
        args.push("--token-cache-storage=disk".into());
        self.plugin(&args, env).assert_ok();
        let read = |suffix: &str| -> Value {
            let path = std::fs::read_dir(&scratch)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.to_string_lossy().ends_with(suffix))
                .unwrap();
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
        };
        let entry = serde_json::json!({
            "id_token": read(".token.json")["id_token"],
            "refresh_token": read(".refresh.json")["refresh_token"],
        });
        std::fs::remove_dir_all(&scratch).unwrap();
        entry
    }

    /// The cached refresh token of the only login in the cache dir (disk storage).
    pub fn cached_refresh_token(&self) -> String {
        let entry = std::fs::read_dir(self.cache_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(".refresh.json"))
            .expect("a refresh token file");
        let json: Value = serde_json::from_slice(&std::fs::read(entry).unwrap()).unwrap();
        json["refresh_token"].as_str().unwrap().to_string()
    }

    /// The cached token file of the only login in the cache dir.
    pub fn token_file(&self) -> PathBuf {
        std::fs::read_dir(self.cache_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(".token.json"))
            .expect("a token file")
    }

    /// Waits until the cached ID token is within the plugin's refresh margin.
    pub fn wait_for_cached_token_to_expire(&self) {
        let json: Value =
            serde_json::from_slice(&std::fs::read(self.token_file()).unwrap()).unwrap();
        let expiry = json["id_token_expiry"].as_i64().unwrap();
        let margin = kubectl_oidc_login::signin::MIN_VALIDITY_SECS;
        let now = kubectl_oidc_login::jwt::now();
        let wait = expiry - margin - now + 1;
        if wait > 0 {
            std::thread::sleep(Duration::from_secs(wait as u64));
        }
    }

    /// The id of the only login in the cache dir.
    pub fn key_id(&self) -> String {
        std::fs::read_dir(self.cache_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .find_map(|n| n.strip_suffix(".meta.json").map(str::to_string))
            .expect("a login in the cache dir")
    }

    /// Every file under the cache dir, with its content.
    pub fn cache_files(&self) -> Vec<(PathBuf, String)> {
        std::fs::read_dir(self.cache_dir())
            .map(|d| {
                d.map(|e| {
                    let p = e.unwrap().path();
                    let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap_or_default())
                        .into_owned();
                    (p, text)
                })
                .collect()
            })
            .unwrap_or_default()
    }
}
