//! Settling containers from the list call: the containers whose list entry (labels, state, status) says all the planner needs, so that observe inspects only the rest.
//!
//! The list call (`GET /containers/json`) returns each container's labels, `State`, `Status`
//! (with `(healthy)`), image ID, networks (IDs, addresses) and mounts, but not its `HostConfig`
//! resources. A container is settled by its entry when all of these hold:
//!
//! 1. its service is desired, and it carries no `io.spindle.replaces` label (no recreate in flight);
//! 2. it is running (`State` `running`; its health is read from `Status`);
//! 3. it was created from the desired service definition: spindle's spec hash label
//!    (`io.spindle.spec-hash`) equals the service's, or Compose's `com.docker.compose.config-hash`
//!    equals Compose's hash of the desired service ([`compose_hash_settles`]; that hash covers the
//!    live settings too, so point 4 is then not needed);
//! 4. it was created with the desired live settings: the live-updatable keys (`cpus`,
//!    `mem_limit`, `restart`, `deploy.resources`, …) of its `io.spindle.spec` label equal the
//!    desired ones, so the live settings it was created with are the desired ones;
//! 5. no live change since its creation is known (see [`crate::engine::Engine::live_changed`]:
//!    an update spindle made, or an `update` event).
//!
//! A settled container reads with the desired live settings and with the parts of an inspect
//! document the list has (`Id`, `Name`, `Image`, `Config.Labels`, `State`, `HostConfig.NetworkMode`,
//! `NetworkSettings.Networks`, `Mounts`). Everything else is inspected. What the list cannot show
//! (a `docker update` nobody saw) is found by a full inspect: `spindle run` makes one at startup,
//! at every periodic resync and on SIGHUP (see docs/architecture.md).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::snapshot::LiveConfig;
use crate::desired::compose_hash;
use crate::desired::hash::LIVE_KEYS;
use crate::desired::typed::{DesiredService, DesiredState};
use crate::labels;

/// The live settings the containers of a service are created with, in engine units (the caller
/// passes `spec::live_config`); `None` when they cannot be computed (the container is then inspected).
pub type LiveOf = dyn Fn(&DesiredService) -> Option<LiveConfig> + Sync;

/// A list entry (`GET /containers/json`, one element) read as the parts of an inspect document it
/// has, or `None` when it has no ID.
pub fn inspect_shape(entry: &Value) -> Option<Value> {
    let id = entry.get("Id").and_then(Value::as_str)?;
    // `Names` also holds legacy link aliases (`/other/alias`); the container's own name has one `/`.
    let names: Vec<&str> = entry
        .get("Names")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let name = names
        .iter()
        .find(|n| n.trim_start_matches('/').find('/').is_none())
        .or(names.first())
        .copied()
        .unwrap_or_default();
    let state = entry.get("State").and_then(Value::as_str).unwrap_or("");
    let status = entry.get("Status").and_then(Value::as_str).unwrap_or("");
    let mut st = Map::new();
    st.insert("Status".into(), json!(state));
    st.insert(
        "Running".into(),
        json!(matches!(state, "running" | "restarting" | "paused")),
    );
    if let Some(h) = health_word(status) {
        st.insert("Health".into(), json!({ "Status": h }));
    }
    if let Some(code) = exit_code(status) {
        st.insert("ExitCode".into(), json!(code));
    }
    let mut doc = Map::new();
    doc.insert("Id".into(), json!(id));
    doc.insert(
        "Name".into(),
        json!(format!("/{}", name.trim_start_matches('/'))),
    );
    doc.insert(
        "Image".into(),
        entry.get("ImageID").cloned().unwrap_or(Value::Null),
    );
    doc.insert(
        "Config".into(),
        json!({ "Labels": entry.get("Labels").cloned().unwrap_or(Value::Null) }),
    );
    doc.insert("State".into(), Value::Object(st));
    if let Some(mode) = entry.pointer("/HostConfig/NetworkMode") {
        doc.insert("HostConfig".into(), json!({ "NetworkMode": mode }));
    }
    if let Some(n) = entry.pointer("/NetworkSettings/Networks") {
        doc.insert("NetworkSettings".into(), json!({ "Networks": n }));
    }
    if let Some(m) = entry.get("Mounts") {
        doc.insert("Mounts".into(), m.clone());
    }
    Some(Value::Object(doc))
}

/// The health in a list entry's `Status` (`Up 2 minutes (healthy)`, `Up 1 second (health: starting)`).
fn health_word(status: &str) -> Option<&'static str> {
    if status.ends_with("(healthy)") {
        Some("healthy")
    } else if status.ends_with("(unhealthy)") {
        Some("unhealthy")
    } else if status.ends_with("(health: starting)") {
        Some("starting")
    } else {
        None
    }
}

/// The exit code in a list entry's `Status` (`Exited (3) 2 minutes ago`).
fn exit_code(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    rest.split_once(')')?.0.trim().parse().ok()
}

/// The desired service whose container the list entry settles, or why it does not. `doc` is the
/// entry in inspect shape ([`inspect_shape`]); `live_changed` says whether a live change since
/// its creation is known.
pub fn settled_service<'d>(
    desired: &'d DesiredState,
    doc: &Value,
    live_changed: bool,
) -> Result<&'d DesiredService, &'static str> {
    let label = |k: &str| {
        doc.pointer("/Config/Labels")
            .and_then(|l| l.get(k))
            .and_then(Value::as_str)
    };
    let Some(svc) = label(labels::SERVICE).and_then(|s| desired.services.get(s)) else {
        return Err("its service is not desired");
    };
    if label(labels::REPLACES).is_some() {
        return Err("a recreate is in flight");
    }
    if doc.pointer("/State/Status").and_then(Value::as_str) != Some("running") {
        return Err("it is not running");
    }
    let all = super::config_labels(doc);
    if !compose_hash_settles(svc, &all) {
        if label(labels::SPEC_HASH) != Some(svc.spec_hash.as_str()) {
            return Err("its spec hash label differs from the desired service's");
        }
        if !created_with_desired_live(svc, label(labels::SPEC)) {
            return Err("it was created with other live settings");
        }
    }
    if live_changed {
        return Err("its live settings changed since its creation");
    }
    Ok(svc)
}

/// Whether Compose's `com.docker.compose.config-hash` shows that the container was created from
/// the desired service as it is now, live settings included (Compose's hash covers every key but
/// `build`, `pull_policy`, `scale`, `deploy.replicas`, `depends_on` and `profiles`). This settles
/// a container `docker compose up` made as well as one spindle made (spindle writes Compose's own
/// hash); the planner adopts a Compose-made one on that hash alone (`plan`, `Comparison::Same`).
/// A service whose hash covers another service's container id (`service:` references) is
/// inspected instead, where the planner knows its peers.
pub fn compose_hash_settles(svc: &DesiredService, labels: &BTreeMap<String, String>) -> bool {
    !compose_hash::references_peers(&svc.model)
        && labels
            .get(crate::labels::CONFIG_HASH)
            .is_some_and(|h| *h == compose_hash::compose_service_hash(svc))
}

/// Whether the service definition in the `io.spindle.spec` label has the desired live-updatable
/// keys (the ones the spec hash leaves out: [`LIVE_KEYS`], `deploy.resources`, `deploy.restart_policy`).
fn created_with_desired_live(svc: &DesiredService, spec_label: Option<&str>) -> bool {
    let Some(created) = spec_label.and_then(|s| serde_json::from_str::<Value>(s).ok()) else {
        return false;
    };
    let same = |path: &[&str]| {
        let at = |v: &Value| path.iter().try_fold(v, |v, k| v.get(k)).cloned();
        at(&created) == at(&svc.model)
    };
    LIVE_KEYS.iter().all(|k| same(&[k]))
        && same(&["deploy", "resources"])
        && same(&["deploy", "restart_policy"])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{self, Request};
    use crate::observe::observed_from_inspect;
    use crate::observe::snapshot::{Health, RunState};

    /// The list entries of a healthy container on two networks and of one that exited with code 3.
    fn entries() -> Vec<Value> {
        let path = format!(
            "{}/tests/fixtures/observe/list-entries.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn shaped(entry: &Value) -> Value {
        inspect_shape(entry).unwrap_or_else(|| panic!("no shape for {entry}"))
    }

    const COMPOSE: &str = "name: p
services:
  web:
    image: spindle-test/busybox:1
    cpus: 0.5
    restart: unless-stopped
  db:
    image: spindle-test/busybox:1
";

    fn desired_from(compose: &str) -> DesiredState {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        std::fs::write(dir.path().join("compose.yaml"), compose)
            .unwrap_or_else(|e| panic!("write: {e}"));
        let req = Request {
            desired_state: Some(dir.path().to_path_buf()),
            cwd: dir.path().to_path_buf(),
            ..Request::default()
        };
        let project = desired::load(&req).unwrap_or_else(|e| panic!("load: {e}"));
        DesiredState::from_project(&project, None).unwrap_or_else(|e| panic!("desired: {e}"))
    }

    /// The inspect-shaped entry of a running container spindle created from `compose`'s `web`.
    fn running_web(d: &DesiredState, created_from: &DesiredState) -> Value {
        let svc = &created_from.services["web"];
        json!({
            "Id": "abc",
            "Name": "/p-web-1",
            "Config": {"Labels": {
                labels::PROJECT: "p",
                labels::SERVICE: "web",
                labels::CONTAINER_NUMBER: "1",
                labels::SPEC_HASH: d.services["web"].spec_hash.clone(),
                labels::SPEC: serde_json::to_string_pretty(&svc.model).unwrap_or_default(),
            }},
            "State": {"Status": "running", "Running": true},
        })
    }

    #[test]
    fn a_running_entry_reads_with_its_name_health_image_and_networks() {
        let doc = shaped(&entries()[0]);
        let c = observed_from_inspect(doc).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.name, "scale-capture-1");
        assert_eq!(c.service, "web");
        assert_eq!(
            (c.state, c.health, c.exit_code),
            (RunState::Running, Health::Healthy, 0)
        );
        assert!(c.image_id.starts_with("sha256:6d75"), "{}", c.image_id);
        assert_eq!(
            c.inspect
                .pointer("/NetworkSettings/Networks/scale-capture-net/IPAddress")
                .and_then(Value::as_str),
            Some("172.27.0.2"),
            "per-network addresses stay available from the list call"
        );
        assert!(
            c.inspect
                .pointer("/NetworkSettings/Networks/bridge/NetworkID")
                .is_some()
        );
        assert_eq!(c.id.len(), 64);
    }

    #[test]
    fn an_exited_entry_reads_with_its_exit_code_from_the_status() {
        let c = observed_from_inspect(shaped(&entries()[1])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((c.state, c.exit_code), (RunState::Exited, 3));
        assert!(!c.is_running());
    }

    #[test]
    fn the_health_in_the_status_text_reads_as_docker_reports_it() {
        for (status, state, health) in [
            ("Up 2 minutes (healthy)", "running", Some("healthy")),
            (
                "Up 1 second (health: starting)",
                "running",
                Some("starting"),
            ),
            ("Up 5 seconds (unhealthy)", "running", Some("unhealthy")),
            ("Up 5 seconds", "running", None),
            ("Restarting (1) 2 seconds ago", "restarting", None),
        ] {
            let doc =
                shaped(&json!({"Id": "a", "Names": ["/x"], "State": state, "Status": status}));
            assert_eq!(
                doc.pointer("/State/Health/Status").and_then(Value::as_str),
                health,
                "{status}"
            );
        }
    }

    #[test]
    fn a_link_alias_among_the_names_does_not_hide_the_container_name() {
        let doc =
            shaped(&json!({"Id": "a", "Names": ["/p-web-1/db", "/p-db-1"], "State": "running"}));
        assert_eq!(doc["Name"], json!("/p-db-1"));
    }

    #[test]
    fn an_entry_without_an_id_has_no_shape() {
        assert_eq!(inspect_shape(&json!({"Names": ["/x"]})), None);
    }

    #[test]
    fn a_running_container_created_from_the_desired_spec_and_live_settings_is_settled() {
        let d = desired_from(COMPOSE);
        let doc = running_web(&d, &d);
        assert_eq!(
            settled_service(&d, &doc, false).map(|s| s.name.as_str()),
            Ok("web")
        );
    }

    #[test]
    fn every_thing_the_list_cannot_vouch_for_sends_the_container_to_an_inspect() {
        let d = desired_from(COMPOSE);
        let other_cpus = desired_from(&COMPOSE.replace("cpus: 0.5", "cpus: 0.25"));
        // The spec hash leaves live settings out: a cpus change keeps it, the spec label shows it.
        assert_eq!(
            d.services["web"].spec_hash,
            other_cpus.services["web"].spec_hash
        );
        let base = running_web(&d, &d);
        let with = |f: &dyn Fn(&mut Value)| {
            let mut doc = base.clone();
            f(&mut doc);
            doc
        };
        let cases: Vec<(&str, Value, bool, &str)> = vec![
            (
                "another spec hash",
                with(&|d| d["Config"]["Labels"][labels::SPEC_HASH] = json!("other")),
                false,
                "its spec hash label differs from the desired service's",
            ),
            (
                "no spec hash (Compose made it)",
                with(&|d| {
                    if let Some(l) = d["Config"]["Labels"].as_object_mut() {
                        l.remove(labels::SPEC_HASH);
                    }
                }),
                false,
                "its spec hash label differs from the desired service's",
            ),
            (
                "created with other live settings",
                running_web(&d, &other_cpus),
                false,
                "it was created with other live settings",
            ),
            (
                "no spec label",
                with(&|d| {
                    if let Some(l) = d["Config"]["Labels"].as_object_mut() {
                        l.remove(labels::SPEC);
                    }
                }),
                false,
                "it was created with other live settings",
            ),
            (
                "a live change is known",
                base.clone(),
                true,
                "its live settings changed since its creation",
            ),
            (
                "stopped",
                with(&|d| d["State"]["Status"] = json!("exited")),
                false,
                "it is not running",
            ),
            (
                "a recreate in flight",
                with(&|d| d["Config"]["Labels"][labels::REPLACES] = json!("old")),
                false,
                "a recreate is in flight",
            ),
            (
                "an orphan",
                with(&|d| d["Config"]["Labels"][labels::SERVICE] = json!("gone")),
                false,
                "its service is not desired",
            ),
        ];
        for (what, doc, live_changed, why) in cases {
            assert_eq!(
                settled_service(&d, &doc, live_changed).map(|s| s.name.clone()),
                Err(why),
                "{what}"
            );
        }
    }

    #[test]
    fn compose_s_own_hash_of_the_desired_service_settles_a_container_and_any_other_value_does_not()
    {
        let d = desired_from(COMPOSE);
        let web = &d.services["web"];
        let with_hash =
            |h: &str| BTreeMap::from([(crate::labels::CONFIG_HASH.to_string(), h.to_string())]);
        assert!(compose_hash_settles(
            web,
            &with_hash(&compose_hash::compose_service_hash(web))
        ));
        assert!(!compose_hash_settles(web, &with_hash(&web.spec_hash)));
        assert!(!compose_hash_settles(web, &BTreeMap::new()));
        // A service whose hash covers another service's container id is left to an inspect.
        let mut shared = web.clone();
        if let Some(m) = shared.model.as_object_mut() {
            m.insert("network_mode".into(), json!("service:db"));
        }
        let plain = compose_hash::compose_service_hash(&shared);
        assert!(!compose_hash_settles(&shared, &with_hash(&plain)));
    }
}
