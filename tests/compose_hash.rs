//! Compose's own hash, checked against Compose v5: spindle computes the `com.docker.compose.config-hash` label that Compose writes on every container, network and volume.
//!
//! Each folder under `tests/fixtures/compose-hash/` is one case: compose files, env files and an
//! optional `args` file (one line of Compose CLI args before `up`, e.g. `--profile extra`). The
//! test creates the case with `docker compose up --no-start`, loads the same folder with
//! spindle, and checks for every resource Compose made that spindle's hash equals Compose's
//! label, and that the labels spindle would put on the networks and volumes equal Compose's
//! (spindle's own `io.spindle.*` labels aside).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use spindle::desired::compose_hash;
use spindle::desired::typed::DesiredState;
use spindle::labels;

use common::{TestProject, describe, docker};

fn case_dir(case: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/compose-hash")
        .join(case)
}

fn copy_into(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("the case folder is readable") {
        let entry = entry.expect("the case folder is readable");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("stat").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_into(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// `docker <kind> inspect` of every resource of `kind` labelled with the project.
fn inspect_all(kind: &str, project: &str) -> Vec<Value> {
    let filter = format!("label={}={project}", labels::PROJECT);
    let list = match kind {
        "container" => docker(&["ps", "-aq", "--no-trunc", "--filter", &filter]),
        _ => docker(&[kind, "ls", "-q", "--filter", &filter]),
    };
    assert!(list.status.success(), "{kind} ls: {}", describe(&list));
    let ids: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if ids.is_empty() {
        return Vec::new();
    }
    let mut args = vec![kind, "inspect"];
    args.extend(ids.iter().map(String::as_str));
    let out = docker(&args);
    assert!(out.status.success(), "{kind} inspect: {}", describe(&out));
    serde_json::from_slice(&out.stdout).expect("inspect prints JSON")
}

fn label<'a>(doc: &'a Value, pointer: &str, key: &str) -> Option<&'a str> {
    doc.pointer(pointer)?.get(key)?.as_str()
}

fn string_labels(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !k.starts_with("io.spindle."))
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// How many of each kind were compared.
#[derive(Debug, Default)]
struct Checked {
    containers: usize,
    networks: usize,
    volumes: usize,
}

/// Creates the case with Compose and compares every hash and resource label; panics listing
/// every mismatch.
fn check(case: &str) -> Checked {
    let p = TestProject::new(&format!("hash-{case}"), "plain");
    std::fs::remove_file(p.path("compose.yaml")).expect("the plain stack has a compose.yaml");
    copy_into(&case_dir(case), p.dir());
    let args_text = std::fs::read_to_string(p.path("args")).unwrap_or_default();
    let mut args: Vec<&str> = args_text.split_whitespace().collect();
    let profiles: Vec<String> = args
        .windows(2)
        .filter(|w| w[0] == "--profile")
        .map(|w| w[1].to_string())
        .collect();
    args.extend(["up", "--no-start"]);
    let out = p.compose(&args);
    assert!(out.status.success(), "compose up: {}", describe(&out));

    let request = spindle::desired::Request {
        desired_state: Some(p.dir().to_path_buf()),
        project_name: Some(p.name().to_string()),
        profiles,
        shell_env: std::env::vars().collect(),
        cwd: p.dir().to_path_buf(),
        ..Default::default()
    };
    let project = spindle::desired::load(&request).expect("spindle loads the case");
    let desired = DesiredState::from_project(&project, None).expect("the typed view builds");
    let ctx = spindle::spec::SpecContext::from_desired(&desired, Some(&desired.model));

    let mut mismatches = Vec::new();
    let mut checked = Checked::default();

    let containers = inspect_all("container", p.name());
    // Compose's `containers.sorted()[0]`: the first by name.
    let mut first: BTreeMap<String, (String, String)> = BTreeMap::new();
    for c in &containers {
        let service = label(c, "/Config/Labels", labels::SERVICE).unwrap_or_default();
        let name = c["Name"].as_str().unwrap_or_default().to_string();
        let id = c["Id"].as_str().unwrap_or_default().to_string();
        let entry = first
            .entry(service.to_string())
            .or_insert((name.clone(), id.clone()));
        if name < entry.0 {
            *entry = (name, id);
        }
    }
    let peer = |s: &str| first.get(s).map(|(_, id)| id.clone());
    for c in &containers {
        let name = c["Name"].as_str().unwrap_or_default();
        let service = label(c, "/Config/Labels", labels::SERVICE).unwrap_or_default();
        let got = label(c, "/Config/Labels", labels::CONFIG_HASH).unwrap_or_default();
        let Some(svc) = desired.services.get(service) else {
            mismatches.push(format!("{name}: spindle has no service {service:?}"));
            continue;
        };
        let want = compose_hash::service_hash_with_peers(&svc.model, &peer);
        if want != got {
            mismatches.push(format!(
                "container {name}: Compose wrote {got}, spindle computes {want} from\n  {}",
                compose_hash::service_hash_input(&svc.model, &peer)
            ));
        }
        checked.containers += 1;
    }

    for n in inspect_all("network", p.name()) {
        let name = n["Name"].as_str().unwrap_or_default();
        let key = label(&n, "/Labels", labels::NETWORK).unwrap_or_default();
        let Some(net) = desired.networks.get(key) else {
            mismatches.push(format!("network {name}: spindle has no network {key:?}"));
            continue;
        };
        let got = label(&n, "/Labels", labels::CONFIG_HASH).unwrap_or_default();
        let want = compose_hash::compose_network_hash(net);
        if want != got {
            mismatches.push(format!(
                "network {name}: Compose wrote {got}, spindle computes {want} from\n  {}",
                compose_hash::network_hash_input(&net.model)
            ));
        }
        let body = spindle::spec::network_body(&ctx, net);
        let (theirs, ours) = (string_labels(&n["Labels"]), string_labels(&body["Labels"]));
        if theirs != ours {
            mismatches.push(format!(
                "network {name}: Compose's labels {theirs:?}, spindle's {ours:?}"
            ));
        }
        checked.networks += 1;
    }

    for v in inspect_all("volume", p.name()) {
        let name = v["Name"].as_str().unwrap_or_default();
        let key = label(&v, "/Labels", labels::VOLUME).unwrap_or_default();
        let Some(vol) = desired.volumes.get(key) else {
            mismatches.push(format!("volume {name}: spindle has no volume {key:?}"));
            continue;
        };
        let got = label(&v, "/Labels", labels::CONFIG_HASH).unwrap_or_default();
        let want = compose_hash::compose_volume_hash(vol);
        if want != got {
            mismatches.push(format!(
                "volume {name}: Compose wrote {got}, spindle computes {want} from\n  {}",
                compose_hash::volume_hash_input(&vol.model)
            ));
        }
        let body = spindle::spec::volume_body(&ctx, vol);
        let (theirs, ours) = (string_labels(&v["Labels"]), string_labels(&body["Labels"]));
        if theirs != ours {
            mismatches.push(format!(
                "volume {name}: Compose's labels {theirs:?}, spindle's {ours:?}"
            ));
        }
        checked.volumes += 1;
    }

    assert!(
        mismatches.is_empty(),
        "case {case}: {} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert!(checked.containers > 0, "case {case} created no container");
    eprintln!("case {case}: {checked:?} hash as Compose hashed them");
    checked
}

#[test]
fn compose_hash_of_commands_environment_labels_process_settings_and_healthchecks_is_composes() {
    let c = check("basics");
    assert!(c.containers >= 27, "{c:?}");
}

#[test]
fn compose_hash_of_limits_devices_kernel_settings_and_deploy_is_composes() {
    let c = check("resources");
    assert!(c.containers >= 15, "{c:?}");
}

#[test]
fn compose_hash_of_networks_addresses_ports_and_dns_and_of_each_network_is_composes() {
    let c = check("networking");
    assert!(c.containers >= 14 && c.networks >= 6, "{c:?}");
}

#[test]
fn compose_hash_of_volumes_secrets_and_configs_and_of_each_volume_is_composes() {
    let c = check("storage");
    assert!(c.containers >= 5 && c.volumes >= 6, "{c:?}");
}

#[test]
fn compose_hash_of_service_references_resolves_them_to_container_ids_as_compose_does() {
    let c = check("references");
    assert!(c.containers >= 4, "{c:?}");
}
