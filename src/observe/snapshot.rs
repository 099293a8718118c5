//! What the engine holds for a project, as plain Docker-free values the planner can read.

use std::collections::BTreeMap;

use serde::Serialize;

/// Everything observed about one project at one moment.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Snapshot {
    pub project: String,
    /// The project's containers (by the project label), one-off containers excluded.
    pub containers: Vec<ObservedContainer>,
    /// The project's networks, by their Docker name.
    pub networks: BTreeMap<String, ObservedNetwork>,
    /// The project's volumes, by their Docker name.
    pub volumes: BTreeMap<String, ObservedVolume>,
    /// Local images: reference (as written in the compose file) → image ID, for the references
    /// the desired state uses. A missing key means the image is not present locally.
    pub images: BTreeMap<String, String>,
    /// External networks and volumes that exist, by name (they are never created).
    pub external_networks: Vec<String>,
    pub external_volumes: Vec<String>,
    /// Containers, networks and volumes of the project whose description the engine gave in a
    /// shape spindle cannot read: left out of the lists above, and reported. The planner holds
    /// what they may concern (see `plan::unreadable`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<crate::engine::Unreadable>,
}

/// The lifecycle state Docker reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

/// The health status Docker reports; `None` when the container has no healthcheck.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    None,
    Starting,
    Healthy,
    Unhealthy,
}

/// Settings Docker can change on a running container (`POST /containers/{id}/update`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LiveConfig {
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpu_quota: i64,
    pub cpu_period: i64,
    pub cpuset_cpus: String,
    pub memory: i64,
    pub memory_reservation: i64,
    pub memory_swap: i64,
    pub pids_limit: i64,
    pub restart_policy: String,
    pub restart_max_retries: i64,
}

impl LiveConfig {
    /// One field by its name (as [`crate::spec::live_differences`] names them), for messages.
    pub fn field(&self, name: &str) -> String {
        match name {
            "nano_cpus" => self.nano_cpus.to_string(),
            "cpu_shares" => self.cpu_shares.to_string(),
            "cpu_quota" => self.cpu_quota.to_string(),
            "cpu_period" => self.cpu_period.to_string(),
            "cpuset_cpus" => self.cpuset_cpus.clone(),
            "memory" => self.memory.to_string(),
            "memory_reservation" => self.memory_reservation.to_string(),
            "memory_swap" => self.memory_swap.to_string(),
            "pids_limit" => self.pids_limit.to_string(),
            "restart_policy" => self.restart_policy.clone(),
            "restart_max_retries" => self.restart_max_retries.to_string(),
            _ => String::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ObservedContainer {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    pub service: String,
    pub number: u32,
    pub labels: BTreeMap<String, String>,
    pub state: RunState,
    pub health: Health,
    pub exit_code: i64,
    /// The image ID the container runs (`sha256:…`).
    pub image_id: String,
    /// RFC 3339 start and finish times as Docker reports them.
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub live: LiveConfig,
    /// Network name → the container's IPv4 address on it, for every network it is attached to;
    /// empty while it has none (a stopped or only created container). The container list call
    /// carries the same (`NetworkSettings.Networks.*.IPAddress`), so a container the list settles
    /// has it too (`observe::listed`).
    pub addresses: BTreeMap<String, String>,
    /// The raw inspect document, for field-by-field comparison of containers spindle did not create.
    #[serde(skip)]
    pub inspect: serde_json::Value,
}

impl ObservedContainer {
    /// spindle's spec hash label, if spindle created this container.
    pub fn spec_hash(&self) -> Option<&str> {
        self.labels
            .get(crate::labels::SPEC_HASH)
            .map(String::as_str)
    }

    /// Compose's configuration hash label (`com.docker.compose.config-hash`), which Compose and
    /// spindle both write as Compose computes it (`desired::compose_hash`); spindle
    /// versions before it wrote their own spec hash there.
    pub fn compose_hash(&self) -> Option<&str> {
        self.labels
            .get(crate::labels::CONFIG_HASH)
            .map(String::as_str)
    }

    /// The container this one replaces, while a recreate is in flight.
    pub fn replaces(&self) -> Option<&str> {
        self.labels.get(crate::labels::REPLACES).map(String::as_str)
    }

    pub fn is_running(&self) -> bool {
        matches!(self.state, RunState::Running | RunState::Restarting)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ObservedNetwork {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    /// Compose's hash of the network's configuration (`com.docker.compose.config-hash`), which
    /// Compose and spindle both write; `None` for a network made by hand.
    pub config_hash: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ObservedVolume {
    pub name: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
}
