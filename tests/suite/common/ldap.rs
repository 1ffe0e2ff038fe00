//! A private OpenLDAP (Debian's slapd) for the Keycloak tests: the directory a company's
//! Keycloak federates, with people and groups. Started in the foreground from a slapd.conf in
//! the test's directory, on a free loopback port, and filled with ldapadd.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::Daemon;

pub const BASE_DN: &str = "dc=example,dc=com";
pub const PEOPLE_DN: &str = "ou=people,dc=example,dc=com";
pub const GROUPS_DN: &str = "ou=groups,dc=example,dc=com";
pub const BIND_DN: &str = "cn=admin,dc=example,dc=com";
/// The directory manager's password: Keycloak binds with it to search (a test directory).
pub const BIND_PASSWORD: &str = "ldap-admin-test";

/// The people in the directory: (uid, given name, password, groups).
pub const PEOPLE: &[(&str, &str, &str, &[&str])] = &[
    (
        "alice",
        "Alice",
        "alice-pw",
        &["KubernetesAdministrators", "developers"],
    ),
    ("bob", "Bob", "bob-pw", &["developers"]),
    ("carol", "Carol", "carol-pw", &["developers"]),
    // groupOfNames needs one member at least: dave keeps KubernetesAdministrators non-empty
    // when a test removes alice.
    ("dave", "Dave", "dave-pw", &["KubernetesAdministrators"]),
];

pub fn password_of(uid: &str) -> &'static str {
    PEOPLE.iter().find(|p| p.0 == uid).unwrap().2
}

pub struct Ldap {
    _daemon: Daemon,
    pub url: String,
    pub pid: u32,
    dir: PathBuf,
}

/// Why slapd cannot run here (not installed), for the "not built here" line.
pub fn unavailable() -> Option<String> {
    for tool in ["/usr/sbin/slapd", "/usr/bin/ldapadd", "/usr/bin/ldapmodify"] {
        if !Path::new(tool).exists() {
            return Some(format!(
                "{tool} is missing: install Debian's slapd and ldap-utils (./test.sh does)"
            ));
        }
    }
    None
}

pub use super::free_port;

impl Ldap {
    /// A directory for one test, stopped when the returned value is dropped.
    pub fn start(dir: &Path) -> Self {
        Self::start_in(dir, false)
    }

    /// A directory in a process group of its own (its pid is the group's id), for a server
    /// that outlives any one test: the caller kills the group.
    pub fn start_detached(dir: &Path) -> Self {
        Self::start_in(dir, true)
    }

    fn start_in(dir: &Path, own_group: bool) -> Self {
        use std::os::unix::process::CommandExt;
        let dir = dir.join("ldap");
        let db = dir.join("db");
        std::fs::create_dir_all(&db).unwrap();
        let conf = dir.join("slapd.conf");
        std::fs::write(
            &conf,
            format!(
                "include /etc/ldap/schema/core.schema\n\
                 include /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\n\
                 modulepath /usr/lib/ldap\n\
                 moduleload back_mdb\n\
                 pidfile {pid}\n\
                 database mdb\n\
                 maxsize 10485760\n\
                 suffix \"{BASE_DN}\"\n\
                 rootdn \"{BIND_DN}\"\n\
                 rootpw {BIND_PASSWORD}\n\
                 directory {db}\n",
                pid = dir.join("slapd.pid").display(),
                db = db.display(),
            ),
        )
        .unwrap();
        let port = free_port();
        let url = format!("ldap://127.0.0.1:{port}");
        let log = std::fs::File::create(dir.join("slapd.log")).unwrap();
        // -d 0: stay in the foreground (so Daemon's kill ends it) without debug output.
        let mut command = Command::new("/usr/sbin/slapd");
        if own_group {
            command.process_group(0);
        }
        let child = command
            .args(["-d", "0", "-h", &format!("{url}/"), "-f"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("slapd starts");
        let ldap = Ldap {
            pid: child.id(),
            _daemon: Daemon { child },
            url,
            dir,
        };
        ldap.wait_ready();
        ldap.add(&ldap.initial_entries());
        ldap
    }

    fn wait_ready(&self) {
        let start = Instant::now();
        loop {
            let out = self.tool("ldapsearch", &["-b", BASE_DN, "-s", "base"], None);
            // 32: no such object, the empty database answering.
            if matches!(out.status.code(), Some(0) | Some(32)) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "slapd did not answer on {} within 20 s: {}",
                self.url,
                std::fs::read_to_string(self.dir.join("slapd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn tool(&self, name: &str, args: &[&str], input: Option<&str>) -> std::process::Output {
        use std::io::Write;
        let mut child = Command::new(name)
            .args(["-x", "-H", &self.url, "-D", BIND_DN, "-w", BIND_PASSWORD])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{name} runs: {e}"));
        let mut stdin = child.stdin.take().unwrap();
        if let Some(input) = input {
            stdin.write_all(input.as_bytes()).unwrap();
        }
        drop(stdin);
        child.wait_with_output().unwrap()
    }

    fn run_ldif(&self, tool: &str, ldif: &str) {
        let out = self.tool(tool, &[], Some(ldif));
        assert!(
            out.status.success(),
            "{tool} failed: {}\n{ldif}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn add(&self, ldif: &str) {
        self.run_ldif("ldapadd", ldif);
    }

    pub fn modify(&self, ldif: &str) {
        self.run_ldif("ldapmodify", ldif);
    }

    fn initial_entries(&self) -> String {
        let mut ldif = format!(
            "dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
             dn: {PEOPLE_DN}\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: {GROUPS_DN}\nobjectClass: organizationalUnit\nou: groups\n\n"
        );
        for (uid, given, password, _) in PEOPLE {
            ldif.push_str(&format!(
                "dn: uid={uid},{PEOPLE_DN}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {given} Example\n\
                 givenName: {given}\nsn: Example\nmail: {uid}@example.com\nuserPassword: {password}\n\n"
            ));
        }
        for group in ["KubernetesAdministrators", "developers"] {
            ldif.push_str(&format!(
                "dn: cn={group},{GROUPS_DN}\nobjectClass: groupOfNames\ncn: {group}\n"
            ));
            for (uid, _, _, groups) in PEOPLE {
                if groups.contains(&group) {
                    ldif.push_str(&format!("member: uid={uid},{PEOPLE_DN}\n"));
                }
            }
            ldif.push('\n');
        }
        ldif
    }

    /// Removes `uid` from `group`, as a directory admin does when someone changes team.
    pub fn remove_from_group(&self, uid: &str, group: &str) {
        self.modify(&format!(
            "dn: cn={group},{GROUPS_DN}\nchangetype: modify\ndelete: member\nmember: uid={uid},{PEOPLE_DN}\n"
        ));
    }

    pub fn add_to_group(&self, uid: &str, group: &str) {
        self.modify(&format!(
            "dn: cn={group},{GROUPS_DN}\nchangetype: modify\nadd: member\nmember: uid={uid},{PEOPLE_DN}\n"
        ));
    }

    /// The members of `group` as slapd has them.
    pub fn members(&self, group: &str) -> Vec<String> {
        let out = self.tool(
            "ldapsearch",
            &[
                "-LLL",
                "-b",
                &format!("cn={group},{GROUPS_DN}"),
                "-s",
                "base",
                "member",
            ],
            None,
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("member: "))
            .map(str::to_string)
            .collect()
    }
}
