//! Docker-free translation of a compose service into the engine's create bodies (container, network, volume), and the comparison used to adopt containers Compose created.

use crate::desired::typed::{DesiredService, DesiredState};
use crate::observe::snapshot::LiveConfig;

/// The desired live settings of a service (placeholder until the spec stage lands).
pub fn live_config(svc: &DesiredService) -> LiveConfig {
    let _ = svc;
    LiveConfig::default()
}

/// Key paths where a container's inspect document differs from what spindle would create.
pub fn adoption_diff_for(
    desired: &DesiredState,
    svc: &DesiredService,
    number: u32,
    inspect: &serde_json::Value,
) -> Vec<String> {
    let _ = (desired, svc, number, inspect);
    vec!["(adoption not implemented)".into()]
}

/// `<project>-<service>-<n>`, or the service's `container_name` (placeholder until the spec stage lands).
pub fn container_name(project: &str, svc: &DesiredService, number: u32) -> String {
    match &svc.container_name {
        Some(n) if !n.is_empty() => n.clone(),
        _ => format!("{project}-{}-{number}", svc.name),
    }
}
