//! The network rule: a service reaches no other stack's network, neither through an external network nor through `network_mode` (`container:`, `service:`; `host` is the `host_access` rule's), unless allowlisted with a reason.

use crate::desired::tree::Tree;
use crate::desired::typed::DesiredState;

use super::{PolicyConfig, PolicyKind, Violation};

/// The network keys a service attaches to (`default` when it names none and uses no `network_mode`).
fn service_networks(model: &Tree) -> Vec<String> {
    match model.get("networks") {
        Some(Tree::Object(m)) => m.keys().cloned().collect(),
        Some(Tree::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ if model.get("network_mode").is_some() => Vec::new(),
        _ => vec!["default".to_string()],
    }
}

pub(super) fn check_external(desired: &DesiredState, cfg: &PolicyConfig, out: &mut Vec<Violation>) {
    for (key, net) in &desired.networks {
        if !net.external {
            continue;
        }
        let users: Vec<&str> = desired
            .services
            .iter()
            .filter(|(_, s)| service_networks(&s.model).iter().any(|n| n == key))
            .map(|(n, _)| n.as_str())
            .collect();
        if users.is_empty() || cfg.external_allowed(&net.name) {
            continue;
        }
        out.push(Violation {
            policy: PolicyKind::ExternalNetwork,
            mode: cfg.networks.mode,
            path: format!("networks.{key}"),
            message: format!(
                "external network `{}` (used by {}) belongs to another stack; never attach to \
                 other stacks' internal networks — declare a network of this project instead, \
                 or add `{}` to policies.networks.allow_external with a reason",
                net.name,
                users.join(", "),
                net.name
            ),
        });
    }
}

/// True when `name` is the name of a container of one of this project's services (as spindle
/// and Compose name them: `container_name`, else `<project>-<service>-<number>`).
fn own_container(desired: &DesiredState, name: &str) -> bool {
    desired.services.values().any(|s| {
        (1..=s.replicas.max(1)).any(|n| crate::spec::container_name(&desired.project, s, n) == name)
    })
}

/// Why a `network_mode` value leaves the project, or `None` when it stays inside it.
fn escapes(desired: &DesiredState, service: &str, mode: &str) -> Option<String> {
    let allow = format!(
        "or add `network_mode: {mode}` (service `{service}`) to \
         policies.networks.allow_network_mode with a reason"
    );
    // `host` is the host_access policy's (one finding, one place to allow it).
    if let Some(x) = mode.strip_prefix("container:") {
        if own_container(desired, x) {
            return None;
        }
        return Some(format!(
            "network_mode `{mode}` joins the network stack of container `{x}`, which is not a \
             container of this project's services, so the service joins another stack's \
             networks; use `service:<name>` for a service of this project, {allow}"
        ));
    }
    if let Some(x) = mode.strip_prefix("service:") {
        if desired.services.contains_key(x) {
            return None;
        }
        return Some(format!(
            "network_mode `{mode}` names no service of this project; use `service:<name>` \
             for one of its services, {allow}"
        ));
    }
    None
}

/// `network_mode: container:<not this project's>` and `service:<not a service>`.
pub(super) fn check_network_modes(
    desired: &DesiredState,
    cfg: &PolicyConfig,
    out: &mut Vec<Violation>,
) {
    for (name, s) in &desired.services {
        let Some(mode) = s.model.get("network_mode").and_then(Tree::as_str) else {
            continue;
        };
        let mode = mode.trim();
        let Some(message) = escapes(desired, name, mode) else {
            continue;
        };
        if cfg.network_mode_allowed(name, mode) {
            continue;
        }
        out.push(Violation {
            policy: PolicyKind::ExternalNetwork,
            mode: cfg.networks.mode,
            path: format!("services.{name}.network_mode"),
            message,
        });
    }
}
