//! Docker-free translation of a compose service into the engine's create bodies (container, network, volume), and the comparison used to adopt containers Compose created.
//!
//! Everything here mirrors Docker Compose v5 (`pkg/compose/create.go`, `getCreateConfigs` and
//! friends; `convergence.go` for names), so a container spindle creates behaves like, and is
//! listed by `docker compose ps/logs/exec` as, one `docker compose up` creates.
//!
//! Public API:
//! - [`SpecContext`]: the project-level facts a body needs (name, files, resolved network and
//!   volume names, secrets and configs, the Compose version label);
//!   [`SpecContext::from_desired`] builds it from the typed state and the project's model.
//! - [`container_name`], [`container_body`] (the `POST /containers/create` JSON: `Config`
//!   fields, `HostConfig`, `NetworkingConfig` for the primary network only, since API 1.41
//!   accepts one network at create) and [`extra_networks`] (the other networks with their
//!   endpoint settings, to connect with `POST /networks/{name}/connect` right after create, as
//!   Compose does below API 1.44). [`service_networks`] gives Compose's network order.
//! - [`Peers`]: resolves `service:x` references (`network_mode`, `ipc`, `pid`, `volumes_from`,
//!   `links`) to containers, as Compose does at create (`container:<ID of x's first
//!   container>`); [`NoPeers`] when none exist ([`SpecError::MissingPeer`] then).
//! - [`live_config`] / [`update_body`]: the settings `docker update` can change, in engine
//!   units; [`observed_live`] reads them from an inspect document; [`live_differences`] compares them with the observed ones after the engine's
//!   normalisation (default swap limit, unlimited pids), and [`live_update_possible`] says
//!   whether an update can get there (the engine reads `0` as "unchanged", so removing a limit
//!   needs a recreate).
//! - [`network_body`], [`volume_body`], with Compose's labels and Compose's own hash
//!   ([`network_config_hash`], [`volume_config_hash`]; [`legacy_network_hash`] is the one earlier
//!   spindle versions wrote, still current on the networks they made).
//! - [`adoption_diff`] (and [`adoption_diff_with_image`], stricter when the image's inspect
//!   document is at hand): the key paths, never values, where a container's inspect document
//!   disagrees with the body; pass the body through [`with_all_networks`] so every network is
//!   checked.
//!
//! Checked against the engine: the container-conformance harness
//! (`tests/container_conformance.rs`, see `docs/compose-compatibility.md`) creates every one of its
//! cases with Compose v5 and with spindle and compares the inspect documents field by field. Also,
//! for the sample stack (with and without `--profile low-cpu`) and
//! a stack using most service keys (`fixtures/wide`), containers created from these bodies
//! have the same `Config` and `HostConfig` as the ones Compose v5 creates on Engine 20.10, apart
//! from spindle's own labels; `fixtures/*.inspect.json` are Compose's containers (made by
//! `fixtures/capture.sh`) and the tests check they are adoptable and that spindle computes the
//! `com.docker.compose.config-hash` Compose wrote on them.
//!
//! Labels: `com.docker.compose.config-hash` carries Compose's own hash of the service
//! ([`crate::desired::compose_hash`], with `service:` references resolved through [`Peers`]), so
//! `docker compose up` finds spindle's containers, networks and volumes up to date; spindle's spec
//! hash is in `io.spindle.spec-hash`.
//!
//! What differs from Compose: spindle adds its own `io.spindle.*` labels, and proxy
//! settings from `~/.docker/config.json` are not added to the environment. Like Compose,
//! `deploy.labels`, `deploy.placement`, `deploy.resources.reservations.cpus`, `platform` and the
//! `uid`/`gid`/`mode` of secrets and configs have no effect, and `mac_address` only reaches the
//! endpoint settings (which API 1.41 ignores). Service keys that change behaviour and that
//! spindle cannot reproduce (`post_start`/`pre_stop` hooks, `models`, `provider`,
//! `use_api_socket`, seccomp profile files, `environment`/`content` secrets and configs, image
//! mounts, `interface_name`, unknown keys) are refused with [`SpecError::Unsupported`] naming
//! the key path, never ignored.

mod adopt;
mod container;
mod live;
mod resources;
pub mod units;

#[cfg(test)]
mod adopt_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use adopt::{adoption_diff, adoption_diff_with_image, with_all_networks};
pub use container::{
    NoPeers, Peers, container_body, container_name, extra_networks, service_networks,
};
pub use live::{live_config, live_differences, live_update_possible, observed_live, update_body};
pub use resources::{
    legacy_network_hash, network_body, network_config_hash, volume_body, volume_config_hash,
};

use crate::desired::typed::DesiredState;

/// The Compose version written to `com.docker.compose.version` (the reference Compose v5).
pub const COMPOSE_VERSION: &str = "5.6.1";

/// The value of `io.spindle.managed-by`.
pub const MANAGED_BY_VALUE: &str = "spindle";

/// Project-level facts the bodies need.
#[derive(Clone, Debug, Default)]
pub struct SpecContext {
    pub project: String,
    pub working_dir: PathBuf,
    pub config_files: Vec<PathBuf>,
    /// Set only when env files were given explicitly (Compose's `--env-file`), as Compose labels
    /// `com.docker.compose.project.environment_file` only then.
    pub environment_files: Vec<PathBuf>,
    pub revision: Option<String>,
    /// Network key → Docker name.
    pub networks: BTreeMap<String, String>,
    /// Volume key → Docker name.
    pub volumes: BTreeMap<String, String>,
    /// Secret key → its model (`file`, `environment`, `external`, …).
    pub secrets: BTreeMap<String, serde_json::Value>,
    /// Config key → its model.
    pub configs: BTreeMap<String, serde_json::Value>,
    /// `com.docker.compose.version`.
    pub compose_version_label: String,
}

impl SpecContext {
    /// The context of a typed desired state; `model` is the project's normalized model (for
    /// secrets and configs, which the typed view does not carry).
    pub fn from_desired(d: &DesiredState, model: Option<&serde_json::Value>) -> Self {
        let section = |k: &str| -> BTreeMap<String, serde_json::Value> {
            model
                .and_then(|m| m.get(k))
                .and_then(serde_json::Value::as_object)
                .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default()
        };
        Self {
            project: d.project.clone(),
            working_dir: d.working_dir.clone(),
            config_files: d.config_files.clone(),
            environment_files: d.environment_files.clone(),
            revision: d.revision.clone(),
            networks: d
                .networks
                .iter()
                .map(|(k, n)| (k.clone(), n.name.clone()))
                .collect(),
            volumes: d
                .volumes
                .iter()
                .map(|(k, v)| (k.clone(), v.name.clone()))
                .collect(),
            secrets: section("secrets"),
            configs: section("configs"),
            compose_version_label: COMPOSE_VERSION.to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("services.{service}.{key}: not supported by spindle ({why})")]
    Unsupported {
        service: String,
        key: String,
        why: &'static str,
    },
    #[error("services.{service}.{key}: {message}")]
    Invalid {
        service: String,
        key: String,
        message: String,
    },
    #[error("services.{service}.{key}: service {peer} has no container yet")]
    MissingPeer {
        service: String,
        key: String,
        peer: String,
    },
    #[error("services.{service}.networks.{network}: network is not defined in the project")]
    UnknownNetwork { service: String, network: String },
}
