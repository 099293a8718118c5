//! Settling containers from the list call: the containers whose list entry (labels, state, status) says all the planner needs, so that observe inspects only the rest.
//!
//! The list call (`GET /containers/json`) returns each container's labels, `State`, `Status`
//! (with `(healthy)`), image ID, networks (IDs, addresses) and mounts, but not its `HostConfig`
//! resources. A container is settled by its entry when all of these hold:
//!
//! 1. its service is desired, and it carries no `io.spindle.replaces` label (no recreate in flight);
//! 2. it is running (`State` `running`; its health is read from `Status`);
//! 3. it was created from the desired service definition: spindle's spec hash label
//!    (`io.spindle.spec-hash`) equals the service's, or Compose's hash settles it
//!    ([`compose_hash_settles`], not yet);
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
    doc.insert("Name".into(), json!(format!("/{}", name.trim_start_matches('/'))));
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
    let all: BTreeMap<String, String> = doc
        .pointer("/Config/Labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
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

/// The hook for Compose's own hash: whether `com.docker.compose.config-hash` (and the container's
/// other labels) show that Compose created it from the desired service, live settings included.
///
/// Always `false` for now: spindle does not yet compute Compose's hash, so a container Compose
/// created is inspected (and compared field by field, see `spec::adoption_diff`). Once the hash is
/// Compose's own, return `labels[CONFIG_HASH] == compose_hash(svc)` here; the planner must then
/// adopt such a container on the hash alone, since a settled container has no full inspect document.
pub fn compose_hash_settles(_svc: &DesiredService, _labels: &BTreeMap<String, String>) -> bool {
    false
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
}
