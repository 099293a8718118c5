//! The typed view of a loaded project that planning and applying work from.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::Project;
use super::tree::{Map, Tree};

/// The desired state of one project: what the host must run.
#[derive(Clone, Debug, Serialize)]
pub struct DesiredState {
    pub project: String,
    pub working_dir: PathBuf,
    pub config_files: Vec<PathBuf>,
    /// The env files given with `--env-file` (absolute), for Compose's `environment_file` label.
    pub environment_files: Vec<PathBuf>,
    /// The desired-state revision, when known (git commit, `-dirty` suffix).
    pub revision: Option<String>,
    pub services: BTreeMap<String, DesiredService>,
    /// By key in the compose file.
    pub networks: BTreeMap<String, DesiredNetwork>,
    /// By key in the compose file.
    pub volumes: BTreeMap<String, DesiredVolume>,
    /// The whole normalized model (secrets and configs live only here).
    #[serde(skip)]
    pub model: Tree,
}

#[derive(Clone, Debug, Serialize)]
pub struct DesiredService {
    pub name: String,
    pub image: String,
    pub spec_hash: String,
    /// How many containers (`scale`, else `deploy.replicas`, else 1).
    pub replicas: u32,
    pub depends_on: Vec<Dependency>,
    /// True when the service has a healthcheck that is not disabled.
    pub has_healthcheck: bool,
    pub pull_policy: PullPolicy,
    pub container_name: Option<String>,
    /// `x-spindle.on-dependency-change`: set, the service follows every dependency it declares
    /// (as if each had `restart: true`) with this action; unset, it follows the dependencies
    /// declared with `restart: true` by recreating.
    pub on_dependency_change: Option<DependentAction>,
    /// `x-spindle.pre-recreate`: what runs before the service's container is recreated.
    pub pre_recreate: Option<super::hook::PreRecreate>,
    /// `deploy.update_config`: the order of a recreate, what a failed one does, its waits.
    pub update: super::update::UpdateConfig,
    /// The probes of `spindle.yaml` that gate this service (`gates:`): its health gate in an
    /// apply waits for them after the container's own readiness (see docs/probes.md).
    #[serde(skip)]
    pub probes: Vec<crate::health::ProbeSpec>,
    /// The normalized compose definition (as `spindle config --format json` prints it).
    pub model: Tree,
}

/// The entries of a normalized `key: value` mapping (`environment`, `labels`, …) as text: a
/// string as it is, another scalar in its JSON form, and `null` (a key without a value) as `None`.
pub fn string_entries(mapping: Option<&Tree>) -> Vec<(String, Option<String>)> {
    mapping
        .and_then(Tree::as_object)
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Tree::Null => None,
                        Tree::String(s) => Some(s.clone()),
                        other => Some(other.to_string()),
                    };
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default()
}

impl DesiredService {
    /// `environment:` entries; a key without a value is `None` (Compose sends it as a bare key).
    /// Whether the service follows `dep` (is recreated or restarted once `dep`'s container was
    /// replaced and is ready again): `depends_on.<dep>.restart: true`, or any dependency when
    /// `x-spindle.on-dependency-change` is set.
    pub fn follows(&self, dep: &Dependency) -> bool {
        dep.restart || self.on_dependency_change.is_some()
    }

    /// What the service does when it follows a dependency (recreate unless it asked otherwise).
    pub fn dependent_action(&self) -> DependentAction {
        self.on_dependency_change
            .unwrap_or(DependentAction::Recreate)
    }

    pub fn environment(&self) -> Vec<(String, Option<String>)> {
        string_entries(self.model.get("environment"))
    }

    /// `labels:` entries; a label without a value is the empty string.
    pub fn labels(&self) -> Vec<(String, String)> {
        string_entries(self.model.get("labels"))
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dependency {
    pub service: String,
    pub condition: Condition,
    pub restart: bool,
    pub required: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    ServiceStarted,
    ServiceHealthy,
    ServiceCompletedSuccessfully,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PullPolicy {
    /// Pull when the image is not present (Compose's default, also `if_not_present`).
    Missing,
    /// Pull before every create.
    Always,
    /// Never pull; a missing image is an error.
    Never,
    /// The image is built locally; spindle never builds, so it must be present.
    Build,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DependentAction {
    Recreate,
    Restart,
}

#[derive(Clone, Debug, Serialize)]
pub struct DesiredNetwork {
    pub key: String,
    /// The Docker name (`<project>_<key>` unless set).
    pub name: String,
    pub external: bool,
    pub model: Tree,
}

#[derive(Clone, Debug, Serialize)]
pub struct DesiredVolume {
    pub key: String,
    pub name: String,
    pub external: bool,
    pub model: Tree,
}

#[derive(Debug, thiserror::Error)]
pub enum TypedError {
    #[error("services.{service}: {message}")]
    Service { service: String, message: String },
    // The inner error is the message's tail (it starts with its key path), not a chained
    // source: a chain would print it twice.
    #[error("services.{service}.x-spindle.{error}")]
    Extension {
        service: String,
        error: super::hook::HookError,
    },
    #[error("services.{service}.{error}")]
    Update {
        service: String,
        error: super::update::UpdateError,
    },
}

/// The keys of a service's `x-spindle` extension.
pub const EXTENSION_KEYS: &[&str] = &["on-dependency-change", "pre-recreate"];

impl DesiredState {
    /// Builds the typed view of a loaded project.
    pub fn from_project(p: &Project, revision: Option<String>) -> Result<Self, TypedError> {
        let empty = Map::new();
        let section = |k: &str| p.model.get(k).and_then(Tree::as_object).unwrap_or(&empty);
        let mut services = BTreeMap::new();
        let declared = |k: &str| section("volumes").contains_key(k);
        let hook_cx = super::hook::HookContext {
            volume_declared: &declared,
            working_dir: &p.working_dir,
        };
        for (name, s) in section("services") {
            let mut svc = service(name, s, &p.service_hashes, p.extensions.get(name), &hook_cx)?;
            svc.probes = crate::health::gating(&p.probes, name);
            services.insert(name.clone(), svc);
        }
        let resource = |k: &str| -> BTreeMap<String, (String, bool, Tree)> {
            section(k)
                .iter()
                .map(|(key, v)| {
                    let name = v
                        .get("name")
                        .and_then(Tree::as_str)
                        .unwrap_or(key)
                        .to_string();
                    let external = v.get("external").and_then(Tree::as_bool).unwrap_or(false);
                    (key.clone(), (name, external, v.clone()))
                })
                .collect()
        };
        Ok(Self {
            model: p.model.clone(),
            project: p.name.clone(),
            working_dir: p.working_dir.clone(),
            config_files: p.files.clone(),
            environment_files: p.explicit_env_files.clone(),
            revision,
            services,
            networks: resource("networks")
                .into_iter()
                .map(|(key, (name, external, model))| {
                    (
                        key.clone(),
                        DesiredNetwork {
                            key,
                            name,
                            external,
                            model,
                        },
                    )
                })
                .collect(),
            volumes: resource("volumes")
                .into_iter()
                .map(|(key, (name, external, model))| {
                    (
                        key.clone(),
                        DesiredVolume {
                            key,
                            name,
                            external,
                            model,
                        },
                    )
                })
                .collect(),
        })
    }

    /// Services in dependency order (dependencies first), ties broken by name.
    pub fn ordered_services(&self) -> Vec<&DesiredService> {
        let mut graph: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (n, s) in &self.services {
            graph.insert(
                n.clone(),
                s.depends_on
                    .iter()
                    .filter(|d| self.services.contains_key(&d.service))
                    .map(|d| d.service.clone())
                    .collect(),
            );
        }
        let mut done: Vec<String> = Vec::new();
        while done.len() < graph.len() {
            let before = done.len();
            for (n, deps) in &graph {
                if !done.contains(n) && deps.iter().all(|d| done.contains(d)) {
                    done.push(n.clone());
                }
            }
            if done.len() == before {
                // A cycle cannot reach here (the loader refuses cycles); keep the rest by name.
                for n in graph.keys() {
                    if !done.contains(n) {
                        done.push(n.clone());
                    }
                }
            }
        }
        done.iter().filter_map(|n| self.services.get(n)).collect()
    }
}

fn service(
    name: &str,
    s: &Tree,
    hashes: &BTreeMap<String, String>,
    ext: Option<&Tree>,
    hook_cx: &super::hook::HookContext<'_>,
) -> Result<DesiredService, TypedError> {
    let err = |message: &str| TypedError::Service {
        service: name.to_string(),
        message: message.to_string(),
    };
    let image = s
        .get("image")
        .and_then(Tree::as_str)
        .ok_or_else(|| err("has no image: spindle does not build images; set image"))?
        .to_string();
    let replicas = s
        .get("scale")
        .and_then(Tree::as_u64)
        .or_else(|| {
            s.get("deploy")
                .and_then(|d| d.get("replicas"))
                .and_then(Tree::as_u64)
        })
        .unwrap_or(1);
    let replicas = u32::try_from(replicas).map_err(|_| err("scale is too large"))?;
    let depends_on = s
        .get("depends_on")
        .and_then(Tree::as_object)
        .map(|deps| {
            deps.iter()
                .map(|(dep, cfg)| Dependency {
                    service: dep.clone(),
                    condition: match cfg.get("condition").and_then(Tree::as_str) {
                        Some("service_healthy") => Condition::ServiceHealthy,
                        Some("service_completed_successfully") => {
                            Condition::ServiceCompletedSuccessfully
                        }
                        _ => Condition::ServiceStarted,
                    },
                    restart: cfg.get("restart").and_then(Tree::as_bool).unwrap_or(false),
                    required: cfg.get("required").and_then(Tree::as_bool).unwrap_or(true),
                })
                .collect()
        })
        .unwrap_or_default();
    let hc = s.get("healthcheck");
    let has_healthcheck = hc.is_some_and(|h| {
        !h.get("disable").and_then(Tree::as_bool).unwrap_or(false)
            && h.get("test")
                .and_then(Tree::as_array)
                .and_then(|t| t.first())
                .and_then(Tree::as_str)
                != Some("NONE")
    });
    let pull_policy = match s.get("pull_policy").and_then(Tree::as_str) {
        Some("always") => PullPolicy::Always,
        Some("never") => PullPolicy::Never,
        Some("build") => PullPolicy::Build,
        _ => PullPolicy::Missing,
    };
    let on_dependency_change = match ext
        .and_then(|x| x.get("on-dependency-change"))
        .and_then(Tree::as_str)
    {
        Some("restart") => Some(DependentAction::Restart),
        Some("recreate") => Some(DependentAction::Recreate),
        None => None,
        Some(_) => {
            return Err(err(
                "x-spindle.on-dependency-change must be recreate or restart",
            ));
        }
    };
    if let Some(x) = ext {
        let Some(m) = x.as_object() else {
            return Err(err("x-spindle must be a mapping"));
        };
        if let Some(k) = m.keys().find(|k| !EXTENSION_KEYS.contains(&k.as_str())) {
            return Err(err(&format!(
                "x-spindle.{k} is not a spindle setting; known are {}",
                EXTENSION_KEYS.join(", ")
            )));
        }
    }
    let pre_recreate = ext
        .and_then(|x| x.get("pre-recreate"))
        .map(|h| super::hook::parse(h, hook_cx))
        .transpose()
        .map_err(|error| TypedError::Extension {
            service: name.to_string(),
            error,
        })?;
    let update = super::update::parse(s).map_err(|error| TypedError::Update {
        service: name.to_string(),
        error,
    })?;
    Ok(DesiredService {
        name: name.to_string(),
        image,
        spec_hash: hashes.get(name).cloned().unwrap_or_default(),
        replicas,
        depends_on,
        has_healthcheck,
        pull_policy,
        container_name: s
            .get("container_name")
            .and_then(Tree::as_str)
            .map(str::to_string),
        on_dependency_change,
        pre_recreate,
        update,
        probes: Vec::new(),
        model: s.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_error_names_its_key_path_once_and_chains_no_source() {
        let bad = serde_json::json!({"deploy": {"update_config": {"order": "sideways"}}});
        let Err(error) = super::super::update::parse(&bad) else {
            panic!("order sideways must be refused");
        };
        let e = TypedError::Update {
            service: "web".into(),
            error,
        };
        let text = format!("{:#}", anyhow::Error::from(e));
        assert!(
            text.starts_with("services.web.deploy.update_config.order"),
            "{text}"
        );
        assert_eq!(text.matches("update_config.order").count(), 1, "{text}");
    }
}
