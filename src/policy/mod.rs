//! Policies checked over the desired state before anything is applied: pinned images, no other stack's networks (external or `network_mode`), no real secrets in `.env.example`, no unwanted all-interface ports, no access to the host (`host_access`), no relative path out of the folder (`paths`).
//!
//! Everything here is Docker-free and, but for the `paths` rule's symbolic links and the
//! `host_access` rule's resolution of bind sources, pure: [`check`] reads the typed desired
//! state and the text of `.env.example`; [`findings`] splits the violations by each policy's mode (`enforce`
//! blocks, `warn` only reports); [`inventory`] joins the desired images with what the caller
//! observed running. Messages name keys and key paths, never a secret value.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::desired::tree::Tree;
use crate::desired::typed::DesiredState;

mod config;
mod host_access;
#[cfg(test)]
mod host_refs_tests;
mod image;
mod network;
mod paths;
#[cfg(test)]
mod paths_tests;
mod secret;
mod sensitive;
#[cfg(test)]
mod tests;

/// A path cleaned lexically as an absolute one (`..` pops, `.` and repeated `/` drop; a relative
/// path is taken from `/`), for comparing bind sources and folders without touching the disk.
pub(crate) fn rooted_clean(p: &Path) -> std::path::PathBuf {
    crate::desired::abspath::clean(&Path::new("/").join(p))
}

pub use config::{
    AllowHostAccess, AllowImage, AllowNetwork, AllowNetworkMode, AllowPath, AllowPort,
    EnvExamplePolicy, HostAccessPolicy, ImagePolicy, Mode, NetworkPolicy, PathsPolicy,
    PolicyConfig, PolicyError, PortPolicy,
};
pub use image::{ImageRef, Pinning, classify};
pub use secret::{is_placeholder, looks_real};

/// Which policy a violation breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    ImagePinned,
    ExternalNetwork,
    EnvExampleSecret,
    PortBinding,
    HostAccess,
    Paths,
}

impl PolicyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ImagePinned => "image_pinned",
            Self::ExternalNetwork => "external_network",
            Self::EnvExampleSecret => "env_example_secret",
            Self::PortBinding => "port_binding",
            Self::HostAccess => "host_access",
            Self::Paths => "paths",
        }
    }
}

impl std::fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One broken policy: where, and what to do about it. Never holds a secret value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub policy: PolicyKind,
    /// The mode of the policy: `enforce` blocks, `warn` only reports.
    pub mode: Mode,
    /// A key path: `services.web.image`, `networks.edge`, `.env.example:DB_PASSWORD`, `services.gateway.ports[0]`.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} [{}]: {}", self.path, self.policy, self.message)
    }
}

/// What the policies know beyond the desired state itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct Context<'a> {
    /// spindle's state dir: a bind of it (or of a folder holding it) is host access.
    pub state_dir: Option<&'a Path>,
    /// The paths the desired state writes relative (`Project::path_refs`), for the `paths`
    /// policy; it checks them against `DesiredState::working_dir`.
    pub path_refs: &'a [crate::desired::sources::PathRef],
}

/// Checks every policy; each violation carries its policy's mode. The desired state may be
/// applied when no violation is in mode `enforce`.
/// Violations come in a stable order: images, networks (external, then `network_mode`),
/// `.env.example`, ports, host access, paths.
pub fn check(
    desired: &DesiredState,
    env_example: Option<&str>,
    cfg: &PolicyConfig,
) -> Vec<Violation> {
    check_in(desired, env_example, cfg, &Context::default())
}

/// [`check`], with what the policies know beyond the desired state (the state dir, the
/// relative paths). The `paths` policy reads the file system (symbolic links); the others are pure.
pub fn check_in(
    desired: &DesiredState,
    env_example: Option<&str>,
    cfg: &PolicyConfig,
    ctx: &Context<'_>,
) -> Vec<Violation> {
    check_all(desired, env_example, cfg, ctx, &mut Vec::new())
}

/// [`check_in`], also adding to `allowed` one line per `host_access` or `paths` finding an
/// allowlist entry lets through, with its reason.
fn check_all(
    desired: &DesiredState,
    env_example: Option<&str>,
    cfg: &PolicyConfig,
    ctx: &Context<'_>,
    allowed: &mut Vec<String>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    check_images(desired, cfg, &mut out);
    network::check_external(desired, cfg, &mut out);
    network::check_network_modes(desired, cfg, &mut out);
    if let Some(text) = env_example {
        check_env_example(text, cfg.env_example.mode, &mut out);
    }
    check_ports(desired, cfg, &mut out);
    host_access::check(desired, cfg, ctx.state_dir, &mut out, allowed);
    // The pre-recreate hook's relative binds are resolved by the typed model, after the load's
    // recording: one joined to the folder was written relative.
    let mut refs = ctx.path_refs.to_vec();
    for (name, s) in &desired.services {
        for (i, p) in host_access::hook_binds(s) {
            if p.starts_with(&desired.working_dir) {
                refs.push(crate::desired::sources::PathRef {
                    key: format!("services.{name}.x-spindle.pre-recreate.volumes[{i}]"),
                    written: p
                        .strip_prefix(&desired.working_dir)
                        .map(|r| r.display().to_string())
                        .unwrap_or_default(),
                    resolved: p.to_path_buf(),
                });
            }
        }
    }
    paths::check(&desired.working_dir, &refs, cfg, &mut out, allowed);
    out
}

fn check_images(desired: &DesiredState, cfg: &PolicyConfig, out: &mut Vec<Violation>) {
    for (name, s) in &desired.services {
        let Pinning::Floating(why) = classify(&s.image) else {
            continue;
        };
        if cfg.floating_allowed(&s.image).is_some() {
            continue;
        }
        out.push(Violation {
            policy: PolicyKind::ImagePinned,
            mode: cfg.images.mode,
            path: format!("services.{name}.image"),
            message: format!(
                "image `{}` is floating ({why}); pin it with a version tag or a digest \
                 (`@sha256:…`), or add it to policies.images.allow_floating with a reason",
                s.image
            ),
        });
    }
}

fn check_env_example(text: &str, mode: Mode, out: &mut Vec<Violation>) {
    // Variables a value references stay visible as `${NAME}`, which reads as a placeholder.
    let lookup = |name: &str| Some(format!("${{{name}}}"));
    let vars = match crate::desired::dotenv::parse(text, &lookup) {
        Ok(v) => v,
        Err(crate::desired::dotenv::DotenvError::Syntax { line, .. }) => {
            out.push(Violation {
                policy: PolicyKind::EnvExampleSecret,
                mode,
                path: ".env.example".to_string(),
                message: format!(
                    "cannot be parsed (line {line}), so it cannot be checked for secrets; fix its syntax"
                ),
            });
            return;
        }
    };
    for (key, value) in &vars {
        if crate::redact::is_secret_entry(key, value) && !is_placeholder(value) && looks_real(value)
        {
            out.push(Violation {
                policy: PolicyKind::EnvExampleSecret,
                mode,
                path: format!(".env.example:{key}"),
                message: format!(
                    "{key} holds a value that looks like a real secret; .env.example is committed, \
                     so replace it with a placeholder such as `changeme` or `<{}>`, or leave it \
                     empty (and rotate the secret if it was real)",
                    key.to_ascii_lowercase()
                ),
            });
        }
    }
}

/// A published port as `(low, high)`; a single port gives `(p, p)`.
fn published_range(v: &Tree) -> Option<(u16, u16)> {
    match v {
        Tree::Number(n) => n
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .map(|p| (p, p)),
        Tree::String(s) => {
            let s = s.trim();
            match s.split_once('-') {
                Some((a, b)) => Some((a.trim().parse().ok()?, b.trim().parse().ok()?)),
                None => s.parse().ok().map(|p| (p, p)),
            }
        }
        _ => None,
    }
}

fn check_ports(desired: &DesiredState, cfg: &PolicyConfig, out: &mut Vec<Violation>) {
    for (name, s) in &desired.services {
        let Some(Tree::Array(ports)) = s.model.get("ports") else {
            continue;
        };
        for (i, p) in ports.iter().enumerate() {
            let published = match p.get("published") {
                None | Some(Tree::Null) => continue,
                Some(Tree::String(s)) if s.trim().is_empty() => continue,
                Some(v) => v,
            };
            let host_ip = p.get("host_ip").and_then(Tree::as_str).unwrap_or("").trim();
            if !matches!(host_ip, "" | "0.0.0.0" | "::" | "[::]") {
                continue;
            }
            let range = published_range(published);
            if cfg.port_allowed(name, range) {
                continue;
            }
            let shown = match range {
                Some((lo, hi)) if lo == hi => lo.to_string(),
                Some((lo, hi)) => format!("{lo}-{hi}"),
                None => "?".to_string(),
            };
            out.push(Violation {
                policy: PolicyKind::PortBinding,
                mode: cfg.ports.mode,
                path: format!("services.{name}.ports[{i}]"),
                message: format!(
                    "port {shown} is published on all interfaces; bind it to one address \
                     (`127.0.0.1:{shown}:…` or `host_ip`), or add service `{name}` to \
                     policies.ports.allow_all_interfaces with a reason"
                ),
            });
        }
    }
}

/// One line of `spindle inventory`: an image a service should run against what runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryRow {
    pub service: String,
    pub desired_ref: String,
    pub pinned: bool,
    /// Why the desired reference floats (`no tag`, `tag latest`); `None` when pinned.
    pub floating_reason: Option<String>,
    /// The image ID the desired reference resolves to in the local image store; `None` when the
    /// image is not present (or `inventory` was not given the local images).
    #[serde(default)]
    pub local_image_id: Option<String>,
    pub running_ref: Option<String>,
    pub running_image_id: Option<String>,
}

impl InventoryRow {
    /// True when a container runs an image other than the one the desired reference resolves to
    /// locally (a re-tagged floating image, or a pending recreate).
    pub fn stale(&self) -> bool {
        matches!((&self.local_image_id, &self.running_image_id), (Some(l), Some(r)) if l != r)
    }
}

/// Fills `local_image_id` of each row from the local images (reference → image ID), as
/// `observe::Snapshot::images` holds them.
pub fn resolve_local(
    rows: &mut [InventoryRow],
    images: &std::collections::BTreeMap<String, String>,
) {
    for row in rows {
        row.local_image_id = images.get(&row.desired_ref).cloned();
    }
}

/// Joins the desired images with the running ones (`(service, image ref, image id)`, one per
/// container). A service gets one row per distinct running image, or one row with nothing
/// running; services running but no longer desired get rows with an empty `desired_ref`.
pub fn inventory(
    desired: &DesiredState,
    running: &[(String, String, String)],
) -> Vec<InventoryRow> {
    let mut rows = Vec::new();
    let mut push = |service: &str, desired_ref: &str, run: Option<(&str, &str)>| {
        let (pinned, floating_reason) = if desired_ref.is_empty() {
            (false, None)
        } else {
            match classify(desired_ref) {
                Pinning::Pinned => (true, None),
                Pinning::Floating(why) => (false, Some(why.to_string())),
            }
        };
        let row = InventoryRow {
            service: service.to_string(),
            desired_ref: desired_ref.to_string(),
            pinned,
            floating_reason,
            local_image_id: None,
            running_ref: run.map(|r| r.0.to_string()),
            running_image_id: run.map(|r| r.1.to_string()),
        };
        if !rows.contains(&row) {
            rows.push(row);
        }
    };
    for (name, s) in &desired.services {
        let mut any = false;
        for (svc, r, id) in running {
            if svc == name {
                any = true;
                push(name, &s.image, Some((r, id)));
            }
        }
        if !any {
            push(name, &s.image, None);
        }
    }
    for (svc, r, id) in running {
        if !desired.services.contains_key(svc) {
            push(svc, "", Some((r, id)));
        }
    }
    rows
}

/// The violations of a loaded project as plan lines (`policy <kind>: <path>: <message>`), split
/// by mode: `blockers` forbid the apply, `warnings` are only reported.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    pub blockers: Vec<String>,
    pub warnings: Vec<String>,
    /// What an allowlist entry of `host_access` or `paths` let through, with its reason: the
    /// evidence records it (`allowed`), so a granted host access is never silent.
    pub allowed: Vec<String>,
}

/// Checks a loaded project's policies (see [`check_in`]) and splits the violations by mode.
/// `state_dir` is spindle's state dir, which no service may bind.
pub fn findings(
    desired: &DesiredState,
    project: &crate::desired::Project,
    state_dir: Option<&Path>,
) -> Findings {
    let mut out = Findings::default();
    let ctx = Context {
        state_dir,
        path_refs: &project.path_refs,
    };
    for v in check_all(
        desired,
        project.env_example.as_deref(),
        &project.policies,
        &ctx,
        &mut out.allowed,
    ) {
        let line = format!("policy {}: {}: {}", v.policy, v.path, v.message);
        match v.mode {
            Mode::Enforce => out.blockers.push(line),
            Mode::Warn => out.warnings.push(line),
        }
    }
    out
}
