//! The README's two quick starts, run as written: the blocks between `<!-- quickstart:NAME -->`
//! and `<!-- /quickstart:NAME -->` are read from README.md and run with bash, block by block
//! (each command shown as written before it runs), against the suite's real Keycloak and a
//! real kube-apiserver, ending in kubectl calls that must succeed. Text and test cannot drift apart: the test has
//! no copy of the commands.
//!
//! What the test does that a reader would not, each said in the output:
//! - The first block of each quick start sets the reader's values (`NAME=value`); the test
//!   replaces each value with the suite's (its Keycloak, its API server, their CA files) and
//!   prints the lines it ran.
//! - The browser: `$BROWSER` is the suite's headless Chromium on Keycloak's pages (a person
//!   clicks there), and the loopback port is a free one registered at the realm
//!   (`KUBECTL_OIDC_LOGIN_LISTEN_ADDRESS`), since other tests may hold the default 8000.
//! - The admin's API server flag (a ```yaml line of the static pod manifest, which cannot be
//!   edited here) is given to the test's kube-apiserver with the file the block wrote.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::common::keycloak::{self, keycloak_or_skip, Keycloak};
use crate::common::{
    kubectl_path_absolute, ldap, run_with_input, support_dir, KubeApiServer, OidcConfig, Run,
    PLUGIN,
};

/// One fenced block of a quick start: its language and its text.
#[derive(Debug)]
struct Block {
    lang: String,
    text: String,
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// The fenced blocks of quick start `name`, in order.
fn blocks(name: &str) -> Vec<Block> {
    let readme = readme();
    let start = format!("<!-- quickstart:{name} -->");
    let end = format!("<!-- /quickstart:{name} -->");
    let from = readme
        .find(&start)
        .unwrap_or_else(|| panic!("README.md has no {start}"))
        + start.len();
    let to = from
        + readme[from..]
            .find(&end)
            .unwrap_or_else(|| panic!("README.md has no {end}"));
    let mut blocks = Vec::new();
    let mut lines = readme[from..to].lines();
    while let Some(line) = lines.next() {
        let Some(lang) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let mut text = String::new();
        for line in lines.by_ref() {
            if line.trim_start().starts_with("```") {
                break;
            }
            text += line;
            text += "\n";
        }
        blocks.push(Block {
            lang: lang.trim().to_string(),
            text,
        });
    }
    assert!(!blocks.is_empty(), "no fenced blocks in {start}");
    blocks
}

/// The values block with each `NAME=value` line's value replaced by the suite's: every line
/// must be an assignment the test knows, and every value the test has must be used.
fn substitute(block: &Block, values: &[(&str, String)]) -> String {
    assert_eq!(block.lang, "sh", "{block:?}");
    let mut out = String::new();
    let mut used = Vec::new();
    for line in block.text.lines().filter(|l| !l.trim().is_empty()) {
        let (name, _) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not NAME=value: {line:?}"));
        let value = values
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("the test has no value for {name} ({line:?})"));
        out += &format!("{name}={}\n", shell_word(&value.1));
        used.push(name);
    }
    for (name, _) in values {
        assert!(used.contains(name), "the README no longer sets {name}");
    }
    out
}

fn shell_word(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// A reader's shell: a directory to work in, a HOME, and the browser the suite drives.
struct Reader {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    values: String,
}

impl Reader {
    fn new(kc: &Keycloak, port: u16, user: &str, password: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        // The README's relative paths (examples/…) are the clone's.
        std::os::unix::fs::symlink(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"),
            dir.path().join("examples"),
        )
        .unwrap();
        let bins = [
            Path::new(PLUGIN).parent().unwrap().to_path_buf(),
            Path::new(&kubectl_path_absolute())
                .parent()
                .unwrap()
                .to_path_buf(),
        ];
        let path = std::env::join_paths(
            bins.iter()
                .cloned()
                .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
        )
        .unwrap();
        let d = |name: &str| dir.path().join(name).display().to_string();
        let env = vec![
            ("HOME".into(), d("home")),
            ("PATH".into(), path.to_string_lossy().into_owned()),
            (
                "BROWSER".into(),
                support_dir()
                    .join("chromium-keycloak.mjs")
                    .display()
                    .to_string(),
            ),
            (
                "KUBECTL_OIDC_LOGIN_LISTEN_ADDRESS".into(),
                format!("127.0.0.1:{port}"),
            ),
            ("KC_ORIGIN".into(), kc.base.clone()),
            ("KC_USER".into(), user.into()),
            ("KC_PASSWORD".into(), password.into()),
            ("KC_NEW_PASSWORD".into(), "a-new-password-1".into()),
            ("KC_BROWSER_STATE".into(), d("browser-state.json")),
            ("LOGIN_LOG".into(), d("login.log")),
            // No keyring here: the refresh token goes to a 0600 file, as on a headless box.
            (
                "DBUS_SESSION_BUS_ADDRESS".into(),
                "unix:path=/nonexistent/bus".into(),
            ),
        ];
        eprintln!(
            "stand-ins for the reader: $BROWSER is headless Chromium typing {user}'s password on Keycloak's pages, and the login listens on 127.0.0.1:{port} (registered at the realm) instead of the default 8000, which other tests may hold"
        );
        Reader {
            dir,
            env,
            values: String::new(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn set(&mut self, name: &str, value: &str) {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.into(), value.into()));
    }

    /// Runs one block with bash (`-euo pipefail`, each command shown), after the values, in the reader's
    /// directory; `stdin` is what the reader types.
    fn run(&self, block: &Block, stdin: &str) -> Run {
        assert_eq!(block.lang, "sh", "{block:?}");
        let n = std::fs::read_dir(self.dir.path()).unwrap().count();
        let script = self.path(&format!("step-{n}.sh"));
        std::fs::write(
            &script,
            // Each command is shown as written before it runs (xtrace would show expanded
            // values: the admin's token among them).
            format!(
                "set -euo pipefail\n{}trap 'echo \"+ $BASH_COMMAND\" >&2' DEBUG\n{}",
                self.values, block.text
            ),
        )
        .unwrap();
        eprintln!("--- running, as the README says:\n{}", block.text);
        let mut command = Command::new("bash");
        command
            .arg(&script)
            .current_dir(self.dir.path())
            .env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_EXEC_INFO")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        let run = run_with_input(command, Some(stdin.as_bytes()), Duration::from_secs(300));
        eprintln!("--- stdout:\n{}--- stderr:\n{}", run.stdout, run.stderr);
        run
    }

    /// The `try:` command the last setup printed, run exactly as printed.
    fn run_printed_try(&self, setup: &Run) -> Run {
        let line = setup
            .stderr
            .lines()
            .find(|l| l.contains("; try: "))
            .unwrap_or_else(|| panic!("setup printed no `try:` command: {}", setup.stderr));
        let command = line.split("; try: ").nth(1).unwrap();
        self.run(
            &Block {
                lang: "sh".into(),
                text: format!("{command}\n"),
            },
            "",
        )
    }
}

/// Registers `http://localhost:PORT` for the realm's `kubernetes` client, as an admin adds a
/// redirect URI (Keycloak matches the port exactly; see the module comment).
fn register_port(kc: &Keycloak, realm: &str, port: u16) {
    let mut uris = kc.client(realm, "kubernetes")["redirectUris"].clone();
    uris.as_array_mut()
        .unwrap()
        .push(json!(format!("http://localhost:{port}")));
    kc.update_client(realm, "kubernetes", json!({"redirectUris": uris}));
}

/// The engineer has an issuer URL, a client ID, the API server's URL and its CA file (and
/// Keycloak's CA, which is private here): after the README's commands, `kubectl get pods` and
/// `kubectl auth whoami` work, and so does the command setup's last line suggests.
#[test]
fn the_engineers_quick_start_works_as_written() {
    let kc = keycloak_or_skip!();
    let realm = "quickstart-engineer";
    // The realm the admin's quick start makes (examples/keycloak-realm.json): user alice, in
    // KubernetesAdministrators, with a password to change at the first login.
    kc.create_realm("keycloak-realm.json", realm, None, json!({}));
    let port = ldap::free_port();
    register_port(kc, realm, port);
    let mut reader = Reader::new(kc, port, "alice", "change-me");
    let Some(api) = KubeApiServer::start(
        reader.dir.path(),
        &kc.issuer(realm),
        &kc.ca,
        OidcConfig::AuthenticationConfiguration,
    ) else {
        return;
    };
    let server_ca = reader.path("platform-ca.crt");
    std::fs::write(&server_ca, &api.ca_pem).unwrap();

    let blocks = blocks("engineer");
    reader.values = substitute(
        &blocks[0],
        &[
            ("ISSUER", kc.issuer(realm)),
            ("CLIENT_ID", "kubernetes".into()),
            ("ISSUER_CA", kc.ca.display().to_string()),
            ("SERVER", api.url.clone()),
            ("SERVER_CA", server_ca.display().to_string()),
        ],
    );
    eprintln!(
        "--- the reader's values, as the test set them:\n{}",
        reader.values
    );
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    let run = reader.run(&blocks[1], "");
    assert!(
        run.ok(),
        "the engineer's quick start failed:\n{}\nAPI server log:\n{}",
        run.stderr,
        api.log_tail()
    );
    // The last commands are kubectl's; whoami names the user the API server saw.
    assert!(
        run.stdout.contains("alice@example.com"),
        "kubectl auth whoami: {}",
        run.stdout
    );
    assert!(
        run.stdout.contains("oidc:KubernetesAdministrators"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stderr.contains("localhost:8080"),
        "kubectl went to its default server: {}",
        run.stderr
    );
    reader.set("KUBECTL_OIDC_LOGIN_NO_LOGIN", "1");
    let printed = reader.run_printed_try(&run);
    assert!(printed.ok(), "{}", printed.stderr);
    assert!(
        printed.stdout.contains("alice@example.com"),
        "{}",
        printed.stdout
    );
}

/// The admin has a Keycloak and a cluster: the README's blocks import the realm, write the
/// API server's AuthenticationConfiguration (trusting Keycloak's private CA), bind RBAC for
/// the group, and verify with `kubectl auth whoami`, which must show the group.
#[test]
fn the_admins_quick_start_works_as_written() {
    let kc = keycloak_or_skip!();
    let realm = "quickstart-admin";
    let port = ldap::free_port();
    let mut reader = Reader::new(kc, port, "alice", "change-me");
    let blocks = blocks("admin");
    let sh: Vec<&Block> = blocks.iter().filter(|b| b.lang == "sh").collect();
    let manifest: Vec<&Block> = blocks.iter().filter(|b| b.lang == "yaml").collect();
    assert_eq!(
        sh.len(),
        5,
        "values, Keycloak, API server, RBAC, verify: {blocks:?}"
    );
    assert_eq!(manifest.len(), 1, "the API server's flag: {blocks:?}");
    reader.values = substitute(
        sh[0],
        &[
            ("KEYCLOAK", kc.base.clone()),
            ("KEYCLOAK_CA", kc.ca.display().to_string()),
            ("KEYCLOAK_ADMIN", keycloak::ADMIN_USER.into()),
            ("REALM", realm.into()),
        ],
    );
    eprintln!(
        "--- the reader's values, as the test set them:\n{}",
        reader.values
    );

    // 1. Keycloak: the realm, with the admin's password typed at the prompt.
    reader
        .run(sh[1], &format!("{}\n", keycloak::ADMIN_PASSWORD))
        .assert_ok();
    let client = kc.client(realm, "kubernetes");
    assert!(
        client["defaultClientScopes"]
            .as_array()
            .unwrap()
            .contains(&json!("groups")),
        "groups must be a default client scope: {client}"
    );
    register_port(kc, realm, port);

    // 2. The API server: the block writes the AuthenticationConfiguration; the manifest's
    // flag names it, and the test's kube-apiserver gets that flag with that file.
    reader.run(sh[2], "").assert_ok();
    let flag = manifest[0]
        .text
        .lines()
        .find_map(|l| l.trim().strip_prefix("- --authentication-config="))
        .unwrap_or_else(|| panic!("no --authentication-config in {:?}", manifest[0]));
    let file = Path::new(flag).file_name().unwrap();
    let written = reader.path(file.to_str().unwrap());
    assert!(
        written.is_file(),
        "the block wrote no {}",
        written.display()
    );
    let Some(api) = KubeApiServer::start_as_written(reader.dir.path(), &written) else {
        return;
    };
    // The admin's own kubeconfig (a system:masters token here), as their kubectl reads it.
    let admin_kubeconfig = reader.path("admin-kubeconfig");
    std::fs::copy(&api.admin_kubeconfig, &admin_kubeconfig).unwrap();
    reader.set("KUBECONFIG", &admin_kubeconfig.display().to_string());

    // Before RBAC, the API server knows alice but lets her do nothing: the binding below is
    // what grants it.
    // 3. RBAC for the group.
    reader.run(sh[3], "").assert_ok();

    // 4. Verify: setup as a member of the group, then kubectl auth whoami shows the groups.
    let run = reader.run(sh[4], "");
    assert!(
        run.ok(),
        "the admin's verify step failed:\n{}\nAPI server log:\n{}",
        run.stderr,
        api.log_tail()
    );
    for expected in ["alice@example.com", "oidc:KubernetesAdministrators"] {
        assert!(run.stdout.contains(expected), "{expected}: {}", run.stdout);
    }
    reader.set("KUBECTL_OIDC_LOGIN_NO_LOGIN", "1");
    let printed = reader.run_printed_try(&run);
    assert!(printed.ok(), "{}", printed.stderr);
    assert!(
        printed.stdout.contains("oidc:KubernetesAdministrators"),
        "{}",
        printed.stdout
    );
}
