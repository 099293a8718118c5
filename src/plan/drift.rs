//! Network drift fixed without a recreate: a container attached out of band (`docker network connect`) to a network the desired state does not give its service is disconnected from it.

use std::collections::BTreeSet;

use super::{ActionKind, Planner, container_ref};
use crate::desired::typed::{DesiredService, DesiredState};
use crate::observe::snapshot::ObservedContainer;
use crate::spec;

/// The networks (Docker names) container `c` is attached to that the desired state does not
/// give service `svc`, sorted. Read from the container's `NetworkSettings.Networks` (the list
/// call and the inspect document both carry it); empty when that is unknown, when the service
/// uses `network_mode` (its networks are not its own), or when it names no network.
pub fn foreign_networks(
    desired: &DesiredState,
    svc: &DesiredService,
    c: &ObservedContainer,
) -> Vec<String> {
    if svc.model.get("network_mode").is_some() {
        return Vec::new();
    }
    let wanted: BTreeSet<&str> = spec::service_networks(svc)
        .iter()
        .filter_map(|k| desired.networks.get(k))
        .map(|n| n.name.as_str())
        .collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let Some(joined) = c
        .inspect
        .pointer("/NetworkSettings/Networks")
        .and_then(serde_json::Value::as_object)
    else {
        return Vec::new();
    };
    let foreign: BTreeSet<&String> = joined
        .keys()
        .filter(|n| !wanted.contains(n.as_str()))
        .collect();
    foreign.into_iter().cloned().collect()
}

impl Planner<'_> {
    /// Plans one disconnect per foreign network of `c` (see [`foreign_networks`]), each with its
    /// reason. Nothing waits for them and they wait for nothing: the container keeps running.
    /// Returns whether it planned any.
    pub(super) fn disconnect_foreign(
        &mut self,
        svc: &DesiredService,
        c: &ObservedContainer,
    ) -> bool {
        let foreign = foreign_networks(self.desired, svc, c);
        for network in &foreign {
            self.push(
                ActionKind::DisconnectNetwork {
                    container: container_ref(c),
                    network: network.clone(),
                },
                format!(
                    "attached out of band to network {network}, which the desired state does \
                     not name for service {}",
                    svc.name
                ),
                None,
                Vec::new(),
            );
        }
        !foreign.is_empty()
    }
}
