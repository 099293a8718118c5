//! Observing the engine: a project's containers (listed, and inspected where the list does not settle them), networks, volumes and images, as a planner-ready snapshot.
//!
//! [`snapshot`] reads everything the planner needs about one project, inspecting every container;
//! [`snapshot_with`] and [`Depth::Listed`] inspect only the containers the list call does not
//! settle (see [`listed`]). The parsing of inspect documents ([`observed_from_inspect`],
//! [`live_from_inspect`]) and of list entries is pure and tested on captured documents.

pub mod listed;
pub mod seen;
pub mod snapshot;

use std::collections::{BTreeMap, BTreeSet};

use futures_util::StreamExt;
use serde_json::Value;

use crate::desired::typed::DesiredState;
use crate::engine::{Engine, EngineError, optional};
use crate::labels;
use snapshot::{
    Health, LiveConfig, ObservedContainer, ObservedNetwork, ObservedVolume, RunState, Snapshot,
};

/// How many containers are inspected at once.
const INSPECT_CONCURRENCY: usize = 8;

/// Docker's "never" timestamp (a container not yet started or not yet finished).
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error("observe project {project}: {source}")]
    Engine {
        project: String,
        #[source]
        source: EngineError,
    },
    #[error("observe container {container}: the inspect document has no {field}")]
    Inspect {
        container: String,
        field: &'static str,
    },
}

/// How deeply [`snapshot_with`] looks at the project's containers.
#[derive(Clone, Copy)]
pub enum Depth<'a> {
    /// Every container is inspected.
    Full,
    /// Only the containers the list call does not settle are inspected (see [`listed`]), and
    /// those named in `inspect` (by name or ID): the list is a view the engine updates a moment
    /// after the event it sends, so the container an event is about is inspected. A settled
    /// container reads with the live settings `live` gives for its service.
    Listed {
        live: &'a listed::LiveOf,
        inspect: &'a [String],
    },
}

impl std::fmt::Debug for Depth<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Depth::Full => "Full",
            Depth::Listed { .. } => "Listed",
        })
    }
}

/// Reads what the engine holds for the desired state's project: its containers (each inspected),
/// networks, volumes, the local images the services use, and which external networks and
/// volumes exist. Makes read calls only.
pub async fn snapshot(engine: &Engine, desired: &DesiredState) -> Result<Snapshot, ObserveError> {
    snapshot_with(engine, desired, Depth::Full).await
}

/// [`snapshot`], inspecting the containers `depth` asks for.
pub async fn snapshot_with(
    engine: &Engine,
    desired: &DesiredState,
    depth: Depth<'_>,
) -> Result<Snapshot, ObserveError> {
    let project = desired.project.as_str();
    let wrap = |source: EngineError| ObserveError::Engine {
        project: project.to_string(),
        source,
    };
    let selector = format!("{}={project}", labels::PROJECT);

    let crate::engine::Listed {
        items: all,
        mut unreadable,
    } = engine
        .list_containers_checked(&[&selector])
        .await
        .map_err(wrap)?;
    let listed = all.len();
    let mut containers = Vec::new();
    let mut ids = Vec::new();
    // The service of each container to inspect, should its inspect document be unreadable.
    let mut service_of: BTreeMap<String, Option<String>> = BTreeMap::new();
    for c in all {
        let one_off = c
            .labels
            .as_ref()
            .and_then(|l| l.get(labels::ONEOFF))
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let Some(id) = c.id.clone().filter(|_| !one_off) else {
            continue;
        };
        if let Depth::Listed { live, inspect } = depth
            && let Some(doc) = serde_json::to_value(&c)
                .ok()
                .as_ref()
                .and_then(listed::inspect_shape)
        {
            let name = doc["Name"].as_str().unwrap_or("").trim_start_matches('/');
            let named = inspect.iter().any(|n| *n == id || n == name);
            match listed::settled_service(desired, &doc, engine.live_changed(&id))
                .and_then(|svc| {
                    if named {
                        Err("an event names it")
                    } else {
                        Ok(svc)
                    }
                })
                .and_then(|svc| live(svc).ok_or("its live settings cannot be computed"))
            {
                Ok(live) => {
                    let mut o = observed_from_inspect(doc)?;
                    o.live = live;
                    containers.push(o);
                    continue;
                }
                Err(why) => tracing::trace!(container = %id, why, "inspecting"),
            }
        }
        service_of.insert(
            id.clone(),
            c.labels
                .as_ref()
                .and_then(|l| l.get(labels::SERVICE))
                .cloned(),
        );
        ids.push(id);
    }
    let settled = containers.len();
    let inspected: Vec<(String, Result<Option<Value>, EngineError>)> =
        futures_util::stream::iter(ids)
            .map(|id| async move {
                // A container removed between the listing and the inspect is simply gone.
                let doc = optional(engine.inspect_container(&id).await).map(|i| i.map(|i| i.raw));
                (id, doc)
            })
            .buffer_unordered(INSPECT_CONCURRENCY)
            .collect()
            .await;
    tracing::debug!(
        listed,
        settled,
        inspected = inspected.len(),
        ?depth,
        "observed the project's containers"
    );
    for (id, doc) in inspected {
        let doc = match doc {
            Err(e) if e.is_unreadable_reply() => {
                let u = crate::engine::Unreadable {
                    kind: "container",
                    id: Some(id.clone()),
                    name: None,
                    service: service_of.remove(&id).flatten(),
                };
                tracing::warn!(
                    item = %u.describe(),
                    "inspect container: the engine's description of this container cannot be read; it is skipped"
                );
                unreadable.push(u);
                continue;
            }
            doc => doc,
        };
        if let Some(doc) = doc.map_err(wrap)? {
            let c = observed_from_inspect(doc)?;
            // The label may have changed between listing and inspect (a rename by another tool).
            if c.labels.get(labels::PROJECT).map(String::as_str) == Some(project) {
                containers.push(c);
            }
        }
    }
    containers.sort_by(|a, b| {
        (&a.service, a.number, &a.name, &a.id).cmp(&(&b.service, b.number, &b.name, &b.id))
    });

    let mut networks = BTreeMap::new();
    let listed_networks = engine.list_networks(&[&selector]).await.map_err(wrap)?;
    unreadable.extend(listed_networks.unreadable);
    for n in listed_networks.items {
        let Some(name) = n.name else { continue };
        let labels: BTreeMap<String, String> = n.labels.unwrap_or_default().into_iter().collect();
        networks.insert(
            name.clone(),
            ObservedNetwork {
                id: n.id.unwrap_or_default(),
                name,
                driver: n.driver.unwrap_or_default(),
                config_hash: labels.get(labels::CONFIG_HASH).cloned(),
                labels,
            },
        );
    }

    let mut volumes = BTreeMap::new();
    let listed_volumes = engine.list_volumes(&[&selector]).await.map_err(wrap)?;
    unreadable.extend(listed_volumes.unreadable);
    for v in listed_volumes.items {
        volumes.insert(
            v.name.clone(),
            ObservedVolume {
                name: v.name,
                driver: v.driver,
                labels: v.labels.into_iter().collect(),
            },
        );
    }

    let mut images = BTreeMap::new();
    let references: BTreeSet<&str> = desired
        .services
        .values()
        .map(|s| s.image.as_str())
        .collect();
    for reference in references {
        if let Some(id) = engine.image_id(reference).await.map_err(wrap)? {
            images.insert(reference.to_string(), id);
        }
    }

    let mut external_networks = Vec::new();
    for n in desired.networks.values().filter(|n| n.external) {
        if optional(engine.inspect_network(&n.name).await)
            .map_err(wrap)?
            .is_some()
        {
            external_networks.push(n.name.clone());
        }
    }
    let mut external_volumes = Vec::new();
    for v in desired.volumes.values().filter(|v| v.external) {
        if optional(engine.inspect_volume(&v.name).await)
            .map_err(wrap)?
            .is_some()
        {
            external_volumes.push(v.name.clone());
        }
    }
    external_networks.sort();
    external_networks.dedup();
    external_volumes.sort();
    external_volumes.dedup();

    Ok(Snapshot {
        project: project.to_string(),
        containers,
        networks,
        volumes,
        images,
        external_networks,
        external_volumes,
        unreadable,
    })
}

/// Reads a container's inspect document (`docker inspect` JSON, one object) into the planner's view.
pub fn observed_from_inspect(doc: Value) -> Result<ObservedContainer, ObserveError> {
    let text = |v: &Value, path: &[&str]| -> Option<String> {
        path.iter()
            .try_fold(v, |v, k| v.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let id = text(&doc, &["Id"]).ok_or_else(|| ObserveError::Inspect {
        container: text(&doc, &["Name"]).unwrap_or_else(|| "(unnamed)".to_string()),
        field: "Id",
    })?;
    let name = text(&doc, &["Name"])
        .map(|n| n.trim_start_matches('/').to_string())
        .unwrap_or_default();
    let labels = config_labels(&doc);
    let service = labels.get(labels::SERVICE).cloned().unwrap_or_default();
    let number = labels
        .get(labels::CONTAINER_NUMBER)
        .and_then(|n| n.trim().parse::<u32>().ok())
        .unwrap_or(0);
    let state = doc.get("State").unwrap_or(&Value::Null);
    let time = |key: &str| text(state, &[key]).filter(|t| !t.is_empty() && t.as_str() != ZERO_TIME);
    let started_at = time("StartedAt");
    let finished_at = time("FinishedAt");
    Ok(ObservedContainer {
        state: run_state(state, started_at.is_some()),
        health: match state.pointer("/Health/Status").and_then(Value::as_str) {
            Some("healthy") => Health::Healthy,
            Some("unhealthy") => Health::Unhealthy,
            Some("starting") => Health::Starting,
            _ => Health::None,
        },
        exit_code: state.get("ExitCode").and_then(Value::as_i64).unwrap_or(0),
        image_id: text(&doc, &["Image"]).unwrap_or_default(),
        started_at,
        finished_at,
        live: live_from_inspect(&doc),
        addresses: addresses(doc.pointer("/NetworkSettings/Networks")),
        id,
        name,
        service,
        number,
        labels,
        inspect: doc,
    })
}

/// Network name → IPv4 address from a `NetworkSettings.Networks` object (inspect and list carry
/// the same shape); networks without an address (a stopped container) are left out.
fn addresses(networks: Option<&Value>) -> BTreeMap<String, String> {
    networks
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(net, ep)| {
                    let ip = ep
                        .get("IPAddress")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    (net.clone(), ip.to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `Config.Labels` of an inspect document (or a list entry in inspect shape), string values only.
pub fn config_labels(doc: &Value) -> BTreeMap<String, String> {
    doc.pointer("/Config/Labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The lifecycle state: Docker's `Status` when it is one spindle knows, else derived from the flags.
fn run_state(state: &Value, ever_started: bool) -> RunState {
    let flag = |k: &str| state.get(k).and_then(Value::as_bool).unwrap_or(false);
    match state.get("Status").and_then(Value::as_str) {
        Some("created") => RunState::Created,
        Some("running") => RunState::Running,
        Some("paused") => RunState::Paused,
        Some("restarting") => RunState::Restarting,
        Some("removing") => RunState::Removing,
        Some("exited") => RunState::Exited,
        Some("dead") => RunState::Dead,
        _ if flag("Dead") => RunState::Dead,
        _ if flag("Paused") => RunState::Paused,
        _ if flag("Restarting") => RunState::Restarting,
        _ if flag("Running") => RunState::Running,
        _ if ever_started => RunState::Exited,
        _ => RunState::Created,
    }
}

/// The live-updatable settings of a container, from its inspect document's `HostConfig`.
///
/// Missing or null fields read as 0 (Docker's "unset"); a restart policy named `""` reads as `no`,
/// which is what the engine means by it.
pub fn live_from_inspect(doc: &Value) -> LiveConfig {
    let host = doc.get("HostConfig").unwrap_or(&Value::Null);
    let int = |k: &str| host.get(k).and_then(Value::as_i64).unwrap_or(0);
    let restart = host.get("RestartPolicy").unwrap_or(&Value::Null);
    let policy = restart
        .get("Name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .unwrap_or("no");
    LiveConfig {
        nano_cpus: int("NanoCpus"),
        cpu_shares: int("CpuShares"),
        cpu_quota: int("CpuQuota"),
        cpu_period: int("CpuPeriod"),
        cpuset_cpus: host
            .get("CpusetCpus")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        memory: int("Memory"),
        memory_reservation: int("MemoryReservation"),
        memory_swap: int("MemorySwap"),
        pids_limit: int("PidsLimit"),
        restart_policy: policy.to_string(),
        restart_max_retries: restart
            .get("MaximumRetryCount")
            .and_then(Value::as_i64)
            .unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/tests/fixtures/observe/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn observed(name: &str) -> ObservedContainer {
        observed_from_inspect(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn a_healthy_running_container_reads_with_its_identity_and_times() {
        let c = observed("web-1");
        assert_eq!(c.name, "spindle-h-engine-fixtures-web-1");
        assert_eq!(c.service, "web");
        assert_eq!(c.number, 1);
        assert_eq!(c.state, RunState::Running);
        assert!(c.is_running());
        assert_eq!(c.health, Health::Healthy);
        assert_eq!(c.exit_code, 0);
        assert!(c.image_id.starts_with("sha256:"), "{}", c.image_id);
        assert_eq!(c.id.len(), 64);
        assert!(c.started_at.is_some());
        assert_eq!(c.finished_at, None);
        assert_eq!(
            c.labels.get(labels::PROJECT).map(String::as_str),
            Some("spindle-h-engine-fixtures")
        );
        assert_eq!(c.inspect["Id"], json!(c.id));
    }

    #[test]
    fn resource_limits_and_restart_policy_read_from_the_host_config() {
        assert_eq!(
            live_from_inspect(&fixture("web-1")),
            LiveConfig {
                nano_cpus: 500_000_000,
                cpu_shares: 512,
                cpu_quota: 0,
                cpu_period: 0,
                cpuset_cpus: String::new(),
                memory: 64 << 20,
                memory_reservation: 32 << 20,
                memory_swap: 128 << 20,
                pids_limit: 100,
                restart_policy: "unless-stopped".into(),
                restart_max_retries: 0,
            }
        );
        let late = live_from_inspect(&fixture("late-2"));
        assert_eq!((late.cpu_quota, late.cpu_period), (50_000, 100_000));
        assert_eq!(late.cpuset_cpus, "0");
        assert_eq!((late.memory, late.memory_swap), (128 << 20, 256 << 20));
        assert_eq!(late.restart_policy, "no");
    }

    #[test]
    fn an_exited_container_keeps_its_exit_code_and_retry_policy() {
        let c = observed("job-1");
        assert_eq!(c.state, RunState::Exited);
        assert!(!c.is_running());
        assert_eq!(c.exit_code, 3);
        assert_eq!(c.health, Health::None);
        assert!(c.finished_at.is_some());
        assert_eq!(c.live.restart_policy, "on-failure");
        assert_eq!(c.live.restart_max_retries, 5);
    }

    #[test]
    fn a_created_container_has_no_start_or_finish_time() {
        let c = observed("late-2");
        assert_eq!(c.state, RunState::Created);
        assert_eq!(c.number, 2);
        assert_eq!((c.started_at, c.finished_at), (None, None));
    }

    #[test]
    fn an_unhealthy_container_reads_as_running_and_unhealthy() {
        let c = observed("sick-1");
        assert_eq!(c.state, RunState::Running);
        assert_eq!(c.health, Health::Unhealthy);
    }

    #[test]
    fn a_container_made_by_compose_reads_with_compose_labels_and_limits() {
        let c = observed("compose-web-1");
        assert_eq!(c.service, "web");
        assert_eq!(c.number, 1);
        assert_eq!(c.spec_hash(), None);
        assert!(c.labels.contains_key(labels::CONFIG_HASH));
        assert_eq!(c.live.nano_cpus, 250_000_000);
        assert_eq!(c.live.memory, 48 << 20);
        assert_eq!(c.live.restart_policy, "always");
        assert_eq!(c.health, Health::Healthy);
    }

    #[test]
    fn a_document_without_an_id_is_an_error_naming_the_field() {
        let err = observed_from_inspect(json!({"Name": "/x"}))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(err, "observe container /x: the inspect document has no Id");
    }

    #[test]
    fn a_sparse_document_reads_with_defaults_and_never_panics() {
        for doc in [
            json!({"Id": "a"}),
            json!({"Id": "a", "State": null, "HostConfig": null, "Config": {"Labels": null}}),
            json!({"Id": "a", "State": {"Running": true}, "Config": {"Labels": {"com.docker.compose.container-number": "x"}}}),
            json!({"Id": "a", "HostConfig": {"NanoCpus": "1", "RestartPolicy": {"Name": 3}}}),
        ] {
            let c = observed_from_inspect(doc.clone());
            assert!(c.is_ok(), "{doc}");
        }
        let c = observed_from_inspect(json!({"Id": "a", "State": {"Running": true}}));
        assert_eq!(c.ok().map(|c| c.state), Some(RunState::Running));
        assert_eq!(live_from_inspect(&json!({})).restart_policy, "no");
    }

    #[test]
    fn the_docker_zero_time_reads_as_never() {
        let c = observed_from_inspect(json!({"Id": "a", "State": {"Status": "exited",
            "StartedAt": "2026-01-01T00:00:00Z", "FinishedAt": ZERO_TIME}}));
        let c = c.ok();
        assert_eq!(c.as_ref().and_then(|c| c.finished_at.clone()), None);
        assert_eq!(
            c.and_then(|c| c.started_at),
            Some("2026-01-01T00:00:00Z".to_string())
        );
    }

    #[test]
    fn addresses_name_every_attached_network_with_its_address_or_empty_while_it_has_none() {
        let networks = json!({
            "p_default": {"NetworkID": "n1", "IPAddress": "172.18.0.3", "IPPrefixLen": 16},
            "p_back": {"NetworkID": "n2", "IPAddress": "10.5.0.7"},
            "p_stopped": {"NetworkID": "n3", "IPAddress": ""}
        });
        let want = BTreeMap::from([
            ("p_back".to_string(), "10.5.0.7".to_string()),
            ("p_default".to_string(), "172.18.0.3".to_string()),
            ("p_stopped".to_string(), String::new()),
        ]);
        let c =
            observed_from_inspect(json!({"Id": "a", "NetworkSettings": {"Networks": networks}}));
        assert_eq!(c.ok().map(|c| c.addresses), Some(want));
        assert_eq!(
            observed("web-1").addresses.len(),
            1,
            "a captured running container has its address"
        );
        assert!(
            observed("late-2").addresses.values().all(String::is_empty),
            "a created container has none yet"
        );
    }
}
