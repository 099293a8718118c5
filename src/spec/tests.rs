//! Table tests of the spec module against inspect documents captured from Docker Engine 20.10 and Compose v5.
//!
//! The fixtures under `fixtures/` were made by `fixtures/capture.sh`: Compose v5 brought each
//! stack up, and `docker inspect` of its containers was saved with the crate root replaced by
//! `@ROOT@`. Each test loads the same folder with spindle's loader, builds the create body of
//! every container, and checks `adoption_diff` finds nothing, then that a change is found.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::*;
use crate::desired::typed::{DesiredService, DesiredState};
use crate::desired::{Request, load};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures() -> PathBuf {
    root().join("src/spec/fixtures")
}

struct Case {
    state: DesiredState,
    ctx: SpecContext,
    inspect: Vec<Value>,
}

/// Peers from the captured containers: the first container of a service by name, its ID.
struct Captured(Vec<Value>);

impl Peers for Captured {
    fn first_container(&self, service: &str) -> Option<String> {
        let mut found: Vec<(&str, &str)> = self
            .0
            .iter()
            .filter(|c| label(c, crate::labels::SERVICE) == Some(service))
            .filter_map(|c| Some((c.get("Name")?.as_str()?, c.get("Id")?.as_str()?)))
            .collect();
        found.sort();
        found.first().map(|(_, id)| id.to_string())
    }
    fn container_names(&self, service: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|c| label(c, crate::labels::SERVICE) == Some(service))
            .filter_map(|c| c.get("Name")?.as_str())
            .map(|n| n.trim_start_matches('/').to_string())
            .collect()
    }
}

fn label<'a>(c: &'a Value, k: &str) -> Option<&'a str> {
    c.get("Config")?.get("Labels")?.get(k)?.as_str()
}

fn load_case(folder: &Path, project: &str, profiles: &[&str], env: bool, fixture: &str) -> Case {
    let req = Request {
        desired_state: Some(folder.to_path_buf()),
        files: Vec::new(),
        env_files: if env {
            vec![fixtures().join("sample.env")]
        } else {
            Vec::new()
        },
        project_name: Some(project.to_string()),
        project_directory: None,
        profiles: profiles.iter().map(|p| p.to_string()).collect(),
        shell_env: Default::default(),
        cwd: root(),
    };
    let p = match load(&req) {
        Ok(p) => p,
        Err(e) => panic!("loading {}: {e}", folder.display()),
    };
    let state = match DesiredState::from_project(&p, Some("abc123".into())) {
        Ok(s) => s,
        Err(e) => panic!("typed view: {e}"),
    };
    let ctx = SpecContext::from_desired(&state, Some(&p.model));
    let text = std::fs::read_to_string(fixtures().join(fixture))
        .unwrap_or_else(|e| panic!("{fixture}: {e}"))
        .replace("@ROOT@", &root().display().to_string());
    let inspect: Vec<Value> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    Case {
        state,
        ctx,
        inspect,
    }
}

fn sample() -> Case {
    load_case(
        &root().join("desired-state"),
        "spindle-h-spec-sample",
        &[],
        true,
        "sample.inspect.json",
    )
}

fn sample_low_cpu() -> Case {
    load_case(
        &root().join("desired-state"),
        "spindle-h-spec-lowcpu",
        &["low-cpu"],
        true,
        "sample-low-cpu.inspect.json",
    )
}

fn wide() -> Case {
    load_case(
        &fixtures().join("wide"),
        "spindle-h-spec-wide",
        &[],
        false,
        "wide.inspect.json",
    )
}

impl Case {
    fn service(&self, name: &str) -> &DesiredService {
        match self.state.services.get(name) {
            Some(s) => s,
            None => panic!("no service {name}"),
        }
    }

    fn container(&self, service: &str) -> &Value {
        match self
            .inspect
            .iter()
            .find(|c| label(c, crate::labels::SERVICE) == Some(service))
        {
            Some(c) => c,
            None => panic!("no container of {service}"),
        }
    }

    /// The full body (all networks) for the captured container of the service.
    fn body_for(&self, svc: &DesiredService, c: &Value) -> Value {
        let number: u32 = label(c, crate::labels::CONTAINER_NUMBER)
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let peers = Captured(self.inspect.clone());
        let image = c.get("Image").and_then(Value::as_str);
        let body = match container_body(&self.ctx, svc, number, image, &peers) {
            Ok(b) => b,
            Err(e) => panic!("{}: {e}", svc.name),
        };
        let extra = match extra_networks(&self.ctx, svc, number, &peers) {
            Ok(x) => x,
            Err(e) => panic!("{}: {e}", svc.name),
        };
        with_all_networks(&body, &extra)
    }

    /// `adoption_diff` of every captured container against the body spindle builds for it.
    fn diffs(&self) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        for c in &self.inspect {
            let Some(service) = label(c, crate::labels::SERVICE) else {
                continue;
            };
            let svc = self.service(service);
            let body = self.body_for(svc, c);
            out.insert(service.to_string(), adoption_diff(&body, c));
        }
        out
    }

    fn with_model(&self, service: &str, edit: impl FnOnce(&mut Value)) -> DesiredService {
        let mut s = self.service(service).clone();
        edit(&mut s.model);
        s
    }
}

fn assert_no_diffs(case: &Case, expected_services: usize) {
    let diffs = case.diffs();
    assert_eq!(diffs.len(), expected_services, "{diffs:?}");
    let differing: BTreeMap<_, _> = diffs.into_iter().filter(|(_, d)| !d.is_empty()).collect();
    assert!(differing.is_empty(), "differences: {differing:#?}");
}

#[test]
fn every_sample_container_compose_created_is_adoptable() {
    assert_no_diffs(&sample(), 10);
}

#[test]
fn every_low_cpu_sample_container_compose_created_is_adoptable() {
    assert_no_diffs(&sample_low_cpu(), 10);
}

#[test]
fn every_container_of_the_wide_stack_compose_created_is_adoptable() {
    assert_no_diffs(&wide(), 3);
}

#[test]
fn an_environment_change_is_reported_by_key_without_the_value() {
    let case = sample();
    let svc = case.with_model("backend", |m| {
        m["environment"]["LOG_LEVEL"] = json!("debug");
    });
    let c = case.container("backend");
    let d = adoption_diff(&case.body_for(&svc, c), c);
    assert_eq!(d, vec!["Config.Env.LOG_LEVEL".to_string()]);
    assert!(d.iter().all(|p| !p.contains("debug")));
}

#[test]
fn an_image_change_is_reported() {
    let case = sample();
    let mut svc = case.service("gateway").clone();
    svc.image = "spindle-sample/gateway:2".into();
    let c = case.container("gateway");
    assert_eq!(
        adoption_diff(&case.body_for(&svc, c), c),
        vec!["Config.Image".to_string()]
    );
}

#[test]
fn a_different_image_id_is_reported() {
    let case = sample();
    let svc = case.service("gateway");
    let c = case.container("gateway");
    let peers = Captured(case.inspect.clone());
    let body = container_body(&case.ctx, svc, 1, Some("sha256:other"), &peers).unwrap_or_default();
    let extra = extra_networks(&case.ctx, svc, 1, &peers).unwrap_or_default();
    assert_eq!(
        adoption_diff(&with_all_networks(&body, &extra), c),
        vec!["Image".to_string()]
    );
}

#[test]
fn a_port_change_is_reported() {
    let case = sample();
    let svc = case.with_model("gateway", |m| {
        m["ports"][0]["published"] = json!("18932");
    });
    let c = case.container("gateway");
    assert_eq!(
        adoption_diff(&case.body_for(&svc, c), c),
        vec!["HostConfig.PortBindings.8080/tcp".to_string()]
    );
}

#[test]
fn a_new_exposed_port_is_reported() {
    let case = sample();
    let svc = case.with_model("backend", |m| {
        m["expose"] = json!(["8000", "8001"]);
    });
    let c = case.container("backend");
    assert_eq!(
        adoption_diff(&case.body_for(&svc, c), c),
        vec!["Config.ExposedPorts.8001/tcp".to_string()]
    );
}

#[test]
fn a_cpu_limit_change_is_reported() {
    let case = sample_low_cpu();
    let svc = case.with_model("db", |m| {
        m["cpus"] = json!(0.5);
    });
    let c = case.container("db");
    assert_eq!(
        adoption_diff(&case.body_for(&svc, c), c),
        vec!["HostConfig.NanoCpus".to_string()]
    );
}

#[test]
fn a_missing_network_is_reported() {
    let case = sample();
    let svc = case.service("gateway");
    let c = case.container("gateway");
    let mut inspect = c.clone();
    if let Some(n) = inspect
        .pointer_mut("/NetworkSettings/Networks")
        .and_then(Value::as_object_mut)
    {
        n.remove("spindle-h-spec-sample_edge");
    }
    assert_eq!(
        adoption_diff(&case.body_for(svc, c), &inspect),
        vec!["NetworkSettings.Networks.spindle-h-spec-sample_edge".to_string()]
    );
}

#[test]
fn a_volume_and_a_healthcheck_change_are_reported() {
    let case = sample();
    let svc = case.with_model("db", |m| {
        m["volumes"][0]["read_only"] = json!(true);
        m["healthcheck"]["retries"] = json!(3);
    });
    let c = case.container("db");
    assert_eq!(
        adoption_diff(&case.body_for(&svc, c), c),
        vec![
            "Config.Healthcheck.Retries".to_string(),
            "HostConfig.Binds".to_string()
        ]
    );
}

#[test]
fn names_follow_project_service_number_unless_container_name_is_set() {
    let case = sample();
    assert_eq!(
        container_name("erp", case.service("backend"), 2),
        "erp-backend-2"
    );
    let mut s = case.service("backend").clone();
    s.container_name = Some("custom".into());
    assert_eq!(container_name("erp", &s, 1), "custom");
}

#[test]
fn the_body_carries_compose_and_spindle_labels() {
    let case = sample();
    let svc = case.service("backend");
    let body = container_body(&case.ctx, svc, 1, Some("sha256:abc"), &NoPeers).unwrap_or_default();
    let l = &body["Labels"];
    assert_eq!(l["com.docker.compose.project"], "spindle-h-spec-sample");
    assert_eq!(l["com.docker.compose.service"], "backend");
    assert_eq!(l["com.docker.compose.container-number"], "1");
    assert_eq!(l["com.docker.compose.oneoff"], "False");
    assert_eq!(l["com.docker.compose.image"], "sha256:abc");
    assert_eq!(
        l["com.docker.compose.depends_on"],
        "db:service_healthy:true,redis:service_healthy:false,configure:service_completed_successfully:false"
    );
    assert_eq!(l["io.spindle.spec-hash"], json!(svc.spec_hash));
    assert_eq!(
        l["com.docker.compose.config-hash"],
        json!(crate::desired::compose_hash::compose_service_hash(svc))
    );
    assert_eq!(l["io.spindle.revision"], "abc123");
    assert_eq!(l["io.spindle.managed-by"], "spindle");
    assert_eq!(l["com.example.erp.role"], "web");
    assert_eq!(
        body["NetworkingConfig"]["EndpointsConfig"]["spindle-h-spec-sample_default"]["Aliases"],
        json!(["spindle-h-spec-sample-backend-1", "backend"])
    );
    assert_eq!(
        body["HostConfig"]["NetworkMode"],
        "spindle-h-spec-sample_default"
    );
    assert_eq!(body["StopTimeout"], 5);
    assert_eq!(body["Healthcheck"]["Interval"], 2_000_000_000_i64);
}

#[test]
fn the_first_network_is_in_the_body_and_the_others_are_listed_apart() {
    let case = sample();
    let svc = case.service("frontend");
    let body = container_body(&case.ctx, svc, 1, None, &NoPeers).unwrap_or_default();
    let eps = body["NetworkingConfig"]["EndpointsConfig"]
        .as_object()
        .map(|o| o.keys().cloned().collect::<Vec<_>>());
    assert_eq!(eps, Some(vec!["spindle-h-spec-sample_default".to_string()]));
    let extra = extra_networks(&case.ctx, svc, 1, &NoPeers).unwrap_or_default();
    assert_eq!(extra.len(), 1);
    assert_eq!(extra[0].0, "spindle-h-spec-sample_edge");
}

#[test]
fn service_network_mode_needs_the_peer_container() {
    let case = wide();
    let svc = case.service("side");
    match container_body(&case.ctx, svc, 1, None, &NoPeers) {
        Err(SpecError::MissingPeer { peer, .. }) => assert_eq!(peer, "main"),
        other => panic!("expected a missing peer, got {other:?}"),
    }
}

#[test]
fn secrets_and_configs_with_files_are_read_only_bind_mounts() {
    let case = wide();
    let svc = case.service("main");
    let body = container_body(&case.ctx, svc, 1, None, &NoPeers).unwrap_or_default();
    let mounts = body["HostConfig"]["Mounts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let secret = mounts.iter().find(|m| m["Target"] == "/run/secrets/s1");
    assert_eq!(secret.map(|m| &m["ReadOnly"]), Some(&json!(true)));
    assert!(
        mounts
            .iter()
            .any(|m| m["Target"] == "/c1" && m["Type"] == "bind")
    );
}

#[test]
fn keys_spindle_cannot_reproduce_are_refused_by_name() {
    let case = sample();
    for (key, value) in [
        ("post_start", json!([{"command": ["true"]}])),
        ("use_api_socket", json!(true)),
        ("something_new", json!(1)),
    ] {
        let svc = case.with_model("backend", |m| {
            m[key] = value;
        });
        match container_body(&case.ctx, &svc, 1, None, &NoPeers) {
            Err(SpecError::Unsupported { key: k, .. }) => assert_eq!(k, key),
            other => panic!("{key}: expected unsupported, got {other:?}"),
        }
    }
    let svc = case.with_model("backend", |m| {
        m["security_opt"] = json!(["seccomp=./profile.json"]);
    });
    assert!(matches!(
        container_body(&case.ctx, &svc, 1, None, &NoPeers),
        Err(SpecError::Unsupported { .. })
    ));
}

#[test]
fn environment_secrets_are_refused_rather_than_left_out() {
    let case = wide();
    let mut ctx = case.ctx.clone();
    ctx.secrets
        .insert("s1".into(), json!({"name": "x", "environment": "TOKEN"}));
    assert!(matches!(
        container_body(&ctx, case.service("main"), 1, None, &NoPeers),
        Err(SpecError::Unsupported { .. })
    ));
}

#[test]
fn live_config_is_in_engine_units() {
    let case = sample_low_cpu();
    let live = live_config(case.service("backend")).unwrap_or_default();
    assert_eq!(live.nano_cpus, 500_000_000);
    assert_eq!(live.memory, 512 * 1024 * 1024);
    assert_eq!(live.restart_policy, "unless-stopped");
    let db = live_config(case.service("db")).unwrap_or_default();
    assert_eq!(db.nano_cpus, 750_000_000);
    assert_eq!(db.memory, 1024 * 1024 * 1024);
    let configure = live_config(case.service("configure")).unwrap_or_default();
    assert_eq!(configure.restart_policy, "no");
}

#[test]
fn live_config_matches_what_the_engine_reports_for_compose_containers() {
    for case in [sample(), sample_low_cpu(), wide()] {
        for c in &case.inspect {
            let Some(service) = label(c, crate::labels::SERVICE) else {
                continue;
            };
            let observed = observed_live(c);
            let desired = live_config(case.service(service)).unwrap_or_default();
            assert!(
                live_differences(&desired, &observed).is_empty(),
                "{service}: {:?}",
                live_differences(&desired, &observed)
            );
        }
    }
}

#[test]
fn removing_a_limit_needs_a_recreate_but_changing_one_does_not() {
    let case = sample_low_cpu();
    let observed = live_config(case.service("backend")).unwrap_or_default();
    let mut raised = observed.clone();
    raised.memory *= 2;
    raised.nano_cpus = 1_000_000_000;
    assert!(live_update_possible(&observed, &raised));
    let mut removed = observed.clone();
    removed.memory = 0;
    assert!(!live_update_possible(&observed, &removed));
    let body = update_body(&raised);
    assert_eq!(body["Memory"], json!(1024 * 1024 * 1024_i64));
    assert_eq!(body["MemorySwap"], json!(2 * 1024 * 1024 * 1024_i64));
    assert_eq!(body["NanoCpus"], json!(1_000_000_000_i64));
    assert_eq!(body["RestartPolicy"]["Name"], "unless-stopped");
}

/// Compose's `com.docker.compose.config-hash` of every captured container, and the one spindle
/// computes for it (with the captured containers as peers).
fn compose_hashes(case: &Case) -> Vec<(String, String, String)> {
    let peers = Captured(case.inspect.clone());
    case.inspect
        .iter()
        .filter_map(|c| {
            let service = label(c, crate::labels::SERVICE)?;
            let theirs = label(c, crate::labels::CONFIG_HASH)?.to_string();
            let ours = crate::desired::compose_hash::service_hash_with_peers(
                &case.service(service).model,
                &|s| peers.first_container(s),
            );
            Some((service.to_string(), theirs, ours))
        })
        .collect()
}

#[test]
fn spindle_computes_the_config_hash_compose_wrote_on_every_captured_container() {
    for case in [sample(), sample_low_cpu()] {
        let hashes = compose_hashes(&case);
        assert!(hashes.len() >= 10, "{hashes:?}");
        let differing: Vec<_> = hashes.iter().filter(|(_, t, o)| t != o).collect();
        assert!(differing.is_empty(), "{differing:#?}");
    }
    // `main` of the wide stack hashes absolute host paths under the crate root the capture ran
    // in (binds, secret files), so only its other services are comparable here; tests/compose_hash.rs
    // compares such services against Compose on the engine.
    let hashes = compose_hashes(&wide());
    let comparable: Vec<_> = hashes.iter().filter(|(s, _, _)| s != "main").collect();
    assert_eq!(comparable.len(), 2, "{hashes:?}");
    assert!(comparable.iter().all(|(_, t, o)| t == o), "{comparable:#?}");
}

#[test]
fn network_and_volume_bodies_carry_compose_labels_and_a_config_hash() {
    let case = wide();
    let front = match case.state.networks.get("front") {
        Some(n) => n,
        None => panic!("no front network"),
    };
    let b = network_body(&case.ctx, front);
    assert_eq!(b["Name"], "spindle-h-spec-wide_front");
    assert_eq!(b["Labels"]["com.docker.compose.network"], "front");
    assert_eq!(
        b["Labels"]["com.docker.compose.project"],
        "spindle-h-spec-wide"
    );
    assert_eq!(b["Labels"]["com.example.net"], "front");
    assert_eq!(b["IPAM"]["Config"][0]["Subnet"], "10.213.77.0/24");
    let hash = network_config_hash(front);
    assert_eq!(b["Labels"]["com.docker.compose.config-hash"], json!(hash));
    let mut changed = front.clone();
    changed.model["internal"] = json!(true);
    assert_ne!(network_config_hash(&changed), hash);

    let named = match case.state.volumes.get("named") {
        Some(v) => v,
        None => panic!("no named volume"),
    };
    let v = volume_body(&case.ctx, named);
    assert_eq!(v["Name"], "spindle-h-spec-wide_named");
    assert_eq!(v["Labels"]["com.docker.compose.volume"], "named");
    assert_eq!(v["Labels"]["com.example.vol"], "named");
}

#[test]
fn adoption_with_the_image_reports_leftover_environment() {
    let case = sample();
    let svc = case.service("gateway");
    let c = case.container("gateway");
    let image = json!({"Config": {"Env": ["PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Labels": {"org.opencontainers.image.description": "spindle test image (busybox-static)"},
        "Cmd": ["/usr/local/bin/idle"], "WorkingDir": "/"}});
    let body = case.body_for(svc, c);
    let mut labels_from_image = image.clone();
    if let (Some(dst), Some(src)) = (
        labels_from_image
            .pointer_mut("/Config/Labels")
            .and_then(Value::as_object_mut),
        c.pointer("/Config/Labels").and_then(Value::as_object),
    ) {
        for (k, v) in src {
            if k.starts_with("spindle.") || k.starts_with("org.") {
                dst.insert(k.clone(), v.clone());
            }
        }
    }
    assert!(adoption_diff_with_image(&body, c, Some(&labels_from_image)).is_empty());
    let mut stale = c.clone();
    if let Some(env) = stale
        .pointer_mut("/Config/Env")
        .and_then(Value::as_array_mut)
    {
        env.push(json!("REMOVED=1"));
    }
    assert_eq!(
        adoption_diff_with_image(&body, &stale, Some(&labels_from_image)),
        vec!["Config.Env.REMOVED".to_string()]
    );
    // Without the image, what the image might have added is accepted.
    assert!(adoption_diff(&body, &stale).is_empty());
}

/// The value without nulls (what a typed client leaves out).
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

fn round_trips<T: serde::de::DeserializeOwned + serde::Serialize>(what: &str, v: &Value) {
    let typed: T = match serde_json::from_value(v.clone()) {
        Ok(t) => t,
        Err(e) => panic!("{what}: {e}"),
    };
    let back = serde_json::to_value(&typed).unwrap_or_default();
    assert_eq!(back, without_nulls(v), "{what}");
}

#[test]
fn every_body_round_trips_through_bollards_types_without_losing_a_field() {
    use bollard::models::{
        ContainerCreateBody, ContainerUpdateBody, EndpointSettings, NetworkCreateRequest,
        VolumeCreateRequest,
    };
    for case in [sample(), sample_low_cpu(), wide()] {
        let peers = Captured(case.inspect.clone());
        for svc in case.state.services.values() {
            let body = container_body(&case.ctx, svc, 1, Some("sha256:x"), &peers)
                .unwrap_or_else(|e| panic!("{e}"));
            round_trips::<ContainerCreateBody>(&svc.name, &body);
            for (net, ep) in extra_networks(&case.ctx, svc, 1, &peers).unwrap_or_default() {
                round_trips::<EndpointSettings>(&net, &ep);
            }
            let live = live_config(svc).unwrap_or_default();
            round_trips::<ContainerUpdateBody>(&svc.name, &update_body(&live));
        }
        for n in case.state.networks.values() {
            round_trips::<NetworkCreateRequest>(&n.key, &network_body(&case.ctx, n));
        }
        for v in case.state.volumes.values() {
            round_trips::<VolumeCreateRequest>(&v.key, &volume_body(&case.ctx, v));
        }
    }
}

#[test]
fn links_and_volumes_from_resolve_to_the_peer_containers() {
    let case = wide();
    let svc = case.with_model("healthless", |m| {
        m["links"] = json!(["main:m"]);
        m["external_links"] = json!(["other_db"]);
        m["volumes_from"] = json!(["main:ro", "container:keep:rw"]);
    });
    let peers = Captured(case.inspect.clone());
    let body = container_body(&case.ctx, &svc, 1, None, &peers).unwrap_or_default();
    let main_id = peers.first_container("main").unwrap_or_default();
    assert_eq!(body["HostConfig"]["VolumesFrom"], json!([main_id, "keep"]));
    assert_eq!(
        body["HostConfig"]["Links"],
        json!([
            "spindle-h-spec-wide-main-1:m",
            "spindle-h-spec-wide-main-1:main-1",
            "spindle-h-spec-wide-main-1:spindle-h-spec-wide-main-1",
            "other_db:other_db"
        ])
    );
    let ep = &body["NetworkingConfig"]["EndpointsConfig"]["spindle-h-spec-wide_default"];
    assert_eq!(ep["Links"], body["HostConfig"]["Links"]);
}

#[test]
fn a_primary_network_is_chosen_by_priority_then_name() {
    let case = sample();
    let svc = case.with_model("gateway", |m| {
        m["networks"] = json!({"default": null, "edge": {"priority": 10}});
    });
    let body = container_body(&case.ctx, &svc, 1, None, &NoPeers).unwrap_or_default();
    assert_eq!(
        body["HostConfig"]["NetworkMode"],
        "spindle-h-spec-sample_edge"
    );
    assert_eq!(service_networks(&svc), vec!["edge", "default"]);
}

#[test]
fn null_environment_values_are_sent_as_bare_keys_like_compose() {
    let case = wide();
    let body =
        container_body(&case.ctx, case.service("main"), 1, None, &NoPeers).unwrap_or_default();
    let env: Vec<&str> = body["Env"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(env.contains(&"UNSET_IN_SHELL"));
    assert!(env.contains(&"EMPTY="));
}

#[test]
fn capabilities_blkio_devices_and_static_addresses_are_sent_as_compose_sends_them() {
    let case = wide();
    let svc = case.with_model("main", |m| {
        m["cap_add"] = json!(["sys_time", "NET_ADMIN", "CAP_NET_ADMIN", "ALL"]);
        m["cap_drop"] = json!(["net_raw"]);
        // compose-go's model spells the device entries' keys with capitals.
        m["blkio_config"] = json!({
            "weight": 300,
            "weight_device": [{"Path": "/dev/null", "Weight": 400}],
            "device_read_bps": [{"Path": "/dev/null", "Rate": "12582912"}]
        });
        m["networks"] = json!({"default": {"ipv4_address": "10.1.2.3", "ipv6_address": "fd00::3"}});
    });
    let body = container_body(&case.ctx, &svc, 1, None, &NoPeers).unwrap_or_default();
    let h = &body["HostConfig"];
    // The engine client Compose uses sorts and deduplicates them.
    assert_eq!(h["CapAdd"], json!(["ALL", "CAP_NET_ADMIN", "CAP_SYS_TIME"]));
    assert_eq!(h["CapDrop"], json!(["CAP_NET_RAW"]));
    assert_eq!(
        h["BlkioWeightDevice"],
        json!([{"Path": "/dev/null", "Weight": 400}])
    );
    assert_eq!(
        h["BlkioDeviceReadBps"],
        json!([{"Path": "/dev/null", "Rate": 12582912}])
    );
    let ep = &body["NetworkingConfig"]["EndpointsConfig"]["spindle-h-spec-wide_default"];
    assert_eq!(ep["IPAddress"], "10.1.2.3");
    assert_eq!(ep["IPv6Gateway"], "fd00::3");
    assert_eq!(
        ep["IPAMConfig"],
        json!({"IPv4Address": "10.1.2.3", "IPv6Address": "fd00::3"})
    );
}
