//! The `policies:` section of `spindle.yaml`: each policy's mode (`enforce` or `warn`) and its allowlists, every entry with a reason.

use serde::{Deserialize, Deserializer, Serialize};

/// What a violation of a policy does: block the apply, or only be reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The violation blocks `plan`/`apply`/each reconcile (an admission controller's enforce).
    Enforce,
    /// The violation is reported in plan, status and evidence, and nothing is blocked (audit).
    Warn,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Warn => "warn",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `policies:` section of `spindle.yaml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    #[serde(default)]
    pub images: ImagePolicy,
    #[serde(default)]
    pub networks: NetworkPolicy,
    #[serde(default)]
    pub env_example: EnvExamplePolicy,
    #[serde(default)]
    pub ports: PortPolicy,
    #[serde(default)]
    pub host_access: HostAccessPolicy,
    #[serde(default)]
    pub paths: PathsPolicy,
}

/// `image_pinned`: enforced unless configured otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImagePolicy {
    pub mode: Mode,
    /// Image references that may float (no tag or `latest`).
    pub allow_floating: Vec<AllowImage>,
}

impl Default for ImagePolicy {
    fn default() -> Self {
        Self {
            mode: Mode::Enforce,
            allow_floating: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AllowImage {
    /// An exact reference (`redis`, `redis:latest`) or a prefix glob ending in `*` (`localhost:5000/*`).
    pub image: String,
    #[serde(deserialize_with = "reason")]
    pub reason: String,
}

/// `external_network`: external networks and `network_mode` values that leave the project.
/// Enforced unless configured otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkPolicy {
    pub mode: Mode,
    /// External networks the project may attach to, by Docker name.
    pub allow_external: Vec<AllowNetwork>,
    /// `network_mode` values (`host`, `container:<name>`) services may use.
    pub allow_network_mode: Vec<AllowNetworkMode>,
}

impl Default for NetworkPolicy {
    fn default() -> Self {
        Self {
            mode: Mode::Enforce,
            allow_external: Vec::new(),
            allow_network_mode: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AllowNetwork {
    pub name: String,
    #[serde(deserialize_with = "reason")]
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AllowNetworkMode {
    /// The service that may use it; every service when absent.
    #[serde(default)]
    pub service: Option<String>,
    /// The value exactly as written in the compose file: `host`, `container:vpn-gateway`.
    pub network_mode: String,
    #[serde(deserialize_with = "reason")]
    pub reason: String,
}

/// `env_example_secret`: enforced unless configured otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnvExamplePolicy {
    pub mode: Mode,
}

impl Default for EnvExamplePolicy {
    fn default() -> Self {
        Self {
            mode: Mode::Enforce,
        }
    }
}

/// `port_binding`: only warns unless configured otherwise, so a stock stack that publishes on
/// all interfaces is adopted (with the warning visible).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortPolicy {
    pub mode: Mode,
    /// Services (and optionally one published port) that may publish on all interfaces.
    pub allow_all_interfaces: Vec<AllowPort>,
}

impl Default for PortPolicy {
    fn default() -> Self {
        Self {
            mode: Mode::Warn,
            allow_all_interfaces: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AllowPort {
    pub service: String,
    /// The published (host) port; every port of the service when absent.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(deserialize_with = "reason")]
    pub reason: String,
}

/// `host_access`: what gives a service the host (privileged, host namespaces, capabilities
/// beyond Docker's defaults, unconfined security options, devices, sensitive binds).
/// Enforced unless configured otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostAccessPolicy {
    pub mode: Mode,
    /// What each service may have, each entry with a reason.
    pub allow: Vec<AllowHostAccess>,
}

impl Default for HostAccessPolicy {
    fn default() -> Self {
        Self {
            mode: Mode::Enforce,
            allow: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AllowHostAccess {
    pub service: String,
    /// One access or a list: `privileged`, `pid`, `ipc`, `uts`, `userns_mode`, `network_mode`,
    /// `cgroup`, `cap_add:SYS_ADMIN` (or `cap_add` for any), `security_opt:seccomp` (or
    /// `security_opt`), `devices`, `device_cgroup_rules`, `bind:/var/run/docker.sock` (a path
    /// covers what is under it; `bind` for any), `volume_device:<volume>`,
    /// `volumes_from:container:<name>`, `pid:container:<name>`, `ipc:container:<name>`.
    #[serde(deserialize_with = "one_or_many")]
    pub access: Vec<String>,
    #[serde(deserialize_with = "reason")]
    pub reason: String,
}

/// `paths`: every relative path stays inside the desired-state folder. Enforced unless
/// configured otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PathsPolicy {
    pub mode: Mode,
    /// Places outside the folder that relative paths may reach.
    pub allow_outside: Vec<AllowPath>,
}

impl Default for PathsPolicy {
    fn default() -> Self {
        Self {
            mode: Mode::Enforce,
            allow_outside: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AllowPath {
    /// A path outside the folder (absolute, or relative to the folder: `../shared`); it covers
    /// itself and everything under it.
    pub path: String,
    #[serde(deserialize_with = "reason")]
    pub reason: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("policies.{path}: an allowlist entry needs a non-empty reason")]
    MissingReason { path: String },
}

/// Refuses an empty or blank reason while deserializing.
fn reason<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Err(serde::de::Error::custom(
            "an allowlist entry needs a non-empty reason",
        ));
    }
    Ok(s)
}

/// One string or a list of strings.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

fn has_reason(reason: &str) -> bool {
    !reason.trim().is_empty()
}

impl PolicyConfig {
    /// Checks a configuration built in code: every allowlist entry has a reason.
    /// (Deserializing already refuses a missing or empty reason.)
    pub fn validate(&self) -> Result<(), Vec<PolicyError>> {
        let mut errors = Vec::new();
        let mut need = |path: String, reason: &str| {
            if !has_reason(reason) {
                errors.push(PolicyError::MissingReason { path });
            }
        };
        for (i, a) in self.images.allow_floating.iter().enumerate() {
            need(format!("images.allow_floating[{i}]"), &a.reason);
        }
        for (i, a) in self.networks.allow_external.iter().enumerate() {
            need(format!("networks.allow_external[{i}]"), &a.reason);
        }
        for (i, a) in self.networks.allow_network_mode.iter().enumerate() {
            need(format!("networks.allow_network_mode[{i}]"), &a.reason);
        }
        for (i, a) in self.ports.allow_all_interfaces.iter().enumerate() {
            need(format!("ports.allow_all_interfaces[{i}]"), &a.reason);
        }
        for (i, a) in self.host_access.allow.iter().enumerate() {
            need(format!("host_access.allow[{i}]"), &a.reason);
        }
        for (i, a) in self.paths.allow_outside.iter().enumerate() {
            need(format!("paths.allow_outside[{i}]"), &a.reason);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The allowlist entry that lets `image` float, if any (entries without a reason never count).
    pub fn floating_allowed(&self, image: &str) -> Option<&AllowImage> {
        self.images
            .allow_floating
            .iter()
            .filter(|a| has_reason(&a.reason))
            .find(|a| match a.image.strip_suffix('*') {
                Some(prefix) => image.starts_with(prefix),
                None => a.image == image,
            })
    }

    pub(super) fn external_allowed(&self, name: &str) -> bool {
        self.networks
            .allow_external
            .iter()
            .any(|a| has_reason(&a.reason) && a.name == name)
    }

    pub(super) fn network_mode_allowed(&self, service: &str, network_mode: &str) -> bool {
        self.networks.allow_network_mode.iter().any(|a| {
            has_reason(&a.reason)
                && a.network_mode.trim() == network_mode
                && a.service.as_deref().is_none_or(|s| s == service)
        })
    }

    /// The reason of the allowlist entry that lets `service` have `grant` (see
    /// [`AllowHostAccess::access`]), if any.
    pub(super) fn host_access_allowed(&self, service: &str, grant: &str) -> Option<&str> {
        let by_entry = self.host_access.allow.iter().find(|a| {
            has_reason(&a.reason)
                && a.service == service
                && a.access
                    .iter()
                    .any(|x| super::host_access::covers(x, grant))
        });
        if let Some(a) = by_entry {
            return Some(&a.reason);
        }
        // `network_mode: host` was the network policy's; its allowlist entries keep working.
        if grant != "network_mode" {
            return None;
        }
        self.networks
            .allow_network_mode
            .iter()
            .find(|a| {
                has_reason(&a.reason)
                    && a.network_mode.trim() == "host"
                    && a.service.as_deref().is_none_or(|s| s == service)
            })
            .map(|a| a.reason.as_str())
    }

    pub(super) fn port_allowed(&self, service: &str, published: Option<(u16, u16)>) -> bool {
        self.ports.allow_all_interfaces.iter().any(|a| {
            has_reason(&a.reason)
                && a.service == service
                && match (a.port, published) {
                    (None, _) => true,
                    (Some(p), Some((lo, hi))) => lo <= p && p <= hi,
                    (Some(_), None) => false,
                }
        })
    }
}
