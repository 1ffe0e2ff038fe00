//! The files in examples/ are exercised here so they never drift from what the plugin and the
//! test provider do: the kubeconfig logs in through the real kubectl, the cluster-side YAML
//! equals what `setup` prints for the same settings, and the Keycloak realm registers the
//! client the way tests/support/client.json (the test provider's client) does.
//!
//! Not run here, for want of the parts on this machine: Keycloak itself (a JVM server), kind
//! (needs Docker) and kube-oidc-proxy (a container image). Their files are parsed and checked
//! for consistency with the parts that do run.

use crate::common::{parse_yaml, section, World};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The issuer the examples are written for; tests put the test provider's in its place.
const EXAMPLE_ISSUER: &str = "https://keycloak.example.com/realms/platform";

fn example_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

fn example(name: &str) -> String {
    std::fs::read_to_string(example_path(name)).unwrap()
}

fn json_file(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn strings(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// `setup`'s report for the test provider, binding KubernetesAdministrators.
fn setup_report(world: &World) -> String {
    let mut args = world.get_token_args();
    args[0] = "setup".into();
    args.push("--group=KubernetesAdministrators".into());
    let run = world.plugin(&args, &[]);
    run.assert_ok();
    run.stdout
}

#[test]
fn realm_registers_the_client_the_test_provider_uses() {
    let realm = json_file(&example_path("keycloak-realm.json"));
    let tested =
        json_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/client.json"));
    let client = &realm["clients"][0];

    assert_eq!(client["clientId"], tested["client_id"]);
    // A public client: no secret on laptops; PKCE protects the code instead.
    assert_eq!(client["publicClient"], true);
    assert_eq!(tested["token_endpoint_auth_method"], "none");
    assert_eq!(client["attributes"]["pkce.code.challenge.method"], "S256");
    // Browser login only: the standard flow on, the password grant off.
    let grants = strings(&tested["grant_types"]);
    assert_eq!(
        client["standardFlowEnabled"],
        grants.contains("authorization_code")
    );
    assert_eq!(
        client["directAccessGrantsEnabled"],
        grants.contains("password")
    );
    assert_eq!(client["implicitFlowEnabled"], false);
    assert_eq!(
        strings(&client["redirectUris"]),
        strings(&tested["redirect_uris"])
    );
    // get-token's default listen addresses and redirect host must be among them.
    for uri in ["http://localhost:8000", "http://localhost:18000"] {
        assert!(strings(&client["redirectUris"]).contains(uri), "{uri}");
    }

    // Every scope the client asks for exists; defining scopes replaces Keycloak's built-in
    // ones, so `basic` (sub), `profile` and `email` must be there too.
    let scopes: BTreeSet<String> = realm["clientScopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    for wanted in strings(&client["defaultClientScopes"]) {
        assert!(scopes.contains(&wanted), "scope {wanted} is not defined");
    }
    for needed in ["basic", "profile", "email", "groups"] {
        assert!(
            strings(&client["defaultClientScopes"]).contains(needed),
            "{needed}"
        );
    }

    // The groups scope puts plain group names (no leading slash) in the ID token.
    let groups_scope = realm["clientScopes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "groups")
        .unwrap();
    let mapper = &groups_scope["protocolMappers"][0];
    assert_eq!(mapper["protocolMapper"], "oidc-group-membership-mapper");
    assert_eq!(mapper["config"]["claim.name"], "groups");
    assert_eq!(mapper["config"]["full.path"], "false");
    assert_eq!(mapper["config"]["id.token.claim"], "true");

    // The sample user is in the group the ClusterRoleBinding names, with a verified email
    // (the username claim).
    let realm_groups: BTreeSet<String> = realm["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["path"].as_str().unwrap().to_string())
        .collect();
    let user = &realm["users"][0];
    assert_eq!(user["emailVerified"], true);
    for group in strings(&user["groups"]) {
        assert!(realm_groups.contains(&group), "{group}");
    }
    assert!(strings(&user["groups"]).contains("/KubernetesAdministrators"));

    // ID tokens live as long as access tokens in Keycloak; keep them in the range setup's
    // diagnostics call sound (2 min to 1 h).
    let lifespan = realm["accessTokenLifespan"].as_u64().unwrap();
    assert!((120..=3600).contains(&lifespan), "{lifespan}");
}

#[test]
fn cluster_side_examples_equal_what_setup_prints() {
    let world = World::new(300);
    let report = setup_report(&world);
    let for_test = |text: String| text.replace(EXAMPLE_ISSUER, &world.provider.issuer);

    // kube-apiserver flags: the same lines, in the same order.
    let printed: Vec<&str> = section(&report, "## 2. kube-apiserver\n", "or, with")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let flags_file = for_test(example("kube-apiserver-flags.txt"));
    let flags: Vec<&str> = flags_file.lines().collect();
    assert_eq!(flags, printed);

    let printed = parse_yaml(section(&report, "this FILE:\n", "## 3."));
    let file = parse_yaml(&for_test(example("authentication-config.yaml")));
    assert_eq!(file, printed);

    let printed = parse_yaml(section(&report, "## 3. RBAC\n", "## 4."));
    let file = parse_yaml(&example("cluster-role-binding.yaml"));
    assert_eq!(file[0], printed[0]);
    // The other bindings follow the same pattern: a group of the realm, with the prefix.
    let realm = json_file(&example_path("keycloak-realm.json"));
    let realm_groups: BTreeSet<String> = realm["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| format!("oidc:{}", g["name"].as_str().unwrap()))
        .collect();
    for binding in &file {
        let subject = binding["subjects"][0]["name"].as_str().unwrap();
        assert!(realm_groups.contains(subject), "{subject}");
    }
}

#[test]
fn example_kubeconfig_logs_in_through_real_kubectl() {
    let world = World::new(300);
    let mut config = parse_yaml(&example("kubeconfig.yaml")).remove(0);
    let ca = world.path("apiserver-ca.crt");
    std::fs::write(&ca, &world.api.ca_pem).unwrap();
    config["clusters"][0]["cluster"] = json!({
        "server": world.api.url,
        "certificate-authority": ca,
    });
    let exec = &mut config["users"][0]["user"]["exec"];
    assert_eq!(exec["command"], "kubectl");
    let args = exec["args"].as_array_mut().unwrap();
    for arg in args.iter_mut() {
        *arg = json!(arg
            .as_str()
            .unwrap()
            .replace(EXAMPLE_ISSUER, &world.provider.issuer));
    }
    // The test's own cache dir, free port and scripted browser; everything else as written.
    args.extend(world.get_token_args()[3..].iter().map(|a| json!(a)));
    let kubeconfig = world.path("kubeconfig.json");
    std::fs::write(&kubeconfig, serde_json::to_vec(&config).unwrap()).unwrap();

    // `command: kubectl` finds this build as the oidc-login plugin on PATH.
    let path = world.path_with_plugin();
    let run = world.kubectl(
        &kubeconfig,
        &["auth", "whoami", "-o", "json"],
        &[("PATH", path.as_str())],
    );
    run.assert_ok();
    let review: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        review["status"]["userInfo"]["username"],
        "alice@example.com"
    );
    assert_eq!(world.wait_for_logins(1).len(), 1);
}

#[test]
fn kind_config_mounts_the_authentication_config_it_names() {
    let kind = parse_yaml(&example("kind-cluster.yaml")).remove(0);
    assert_eq!(kind["kind"], "Cluster");
    let node = &kind["nodes"][0];
    assert_eq!(node["role"], "control-plane");
    let mount = &node["extraMounts"][0];
    let host = mount["hostPath"].as_str().unwrap();
    assert!(example_path(host).is_file(), "{host} is not in examples/");
    let patch = parse_yaml(node["kubeadmConfigPatches"][0].as_str().unwrap()).remove(0);
    assert_eq!(patch["kind"], "ClusterConfiguration");
    let flag = &patch["apiServer"]["extraArgs"]["authentication-config"];
    assert_eq!(flag, &mount["containerPath"]);
    // The API server's static pod sees the node's directory holding that file.
    let volume = &patch["apiServer"]["extraVolumes"][0];
    let dir = volume["mountPath"].as_str().unwrap();
    assert!(flag.as_str().unwrap().starts_with(&format!("{dir}/")));
    assert_eq!(volume["hostPath"], volume["mountPath"]);
}

#[test]
fn kube_oidc_proxy_accepts_the_same_tokens_as_the_api_server() {
    let docs = parse_yaml(&example("kube-oidc-proxy.yaml"));
    let find = |kind: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind}"))
    };
    let deployment = find("Deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let args = strings(&container["args"]);
    for flag in example("kube-apiserver-flags.txt").lines() {
        assert!(args.contains(flag), "{flag} missing from {args:?}");
    }
    // It may impersonate the users and groups it forwards, under its own service account.
    let role = find("ClusterRole");
    let rule = &role["rules"][0];
    assert!(strings(&rule["verbs"]).contains("impersonate"));
    assert!(strings(&rule["resources"])
        .is_superset(&BTreeSet::from(["users".to_string(), "groups".to_string()])));
    let account = find("ServiceAccount");
    let binding = find("ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["name"], account["metadata"]["name"]);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["serviceAccountName"],
        account["metadata"]["name"]
    );
    // The Service reaches the container's named port, and the TLS files come from the Secret.
    let service = find("Service");
    assert_eq!(
        service["spec"]["ports"][0]["targetPort"],
        container["ports"][0]["name"]
    );
    let tls_dir = container["volumeMounts"][0]["mountPath"].as_str().unwrap();
    assert!(args.contains(&format!("--tls-cert-file={tls_dir}/tls.crt")));
    assert!(args.contains(&format!("--tls-private-key-file={tls_dir}/tls.key")));
}
