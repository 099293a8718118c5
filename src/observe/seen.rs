//! What spindle last saw of each container slot (container id, address per network): the memory the recovery rule compares against to notice a replacement it did not make.
//!
//! A slot is a `(service, container number)`. The memory is built from a [`Snapshot`] and kept in
//! the state directory between reconciles (`crate::seen`); the planner reads it
//! ([`crate::plan::PlanOptions::last_seen`]) and decides which dependents follow.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::snapshot::{ObservedContainer, Snapshot};

/// One container slot: a service and a container number.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Slot {
    pub service: String,
    pub number: u32,
}

impl Slot {
    pub fn new(service: &str, number: u32) -> Self {
        Self {
            service: service.to_string(),
            number,
        }
    }

    /// `backend-1`, as causes name it.
    pub fn label(&self) -> String {
        format!("{}-{}", self.service, self.number)
    }
}

/// What was seen of the container in one slot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenContainer {
    /// The full container id.
    pub id: String,
    /// Network name → IPv4 address, for the networks it is attached to (empty while it has no
    /// address there: stopped).
    #[serde(default)]
    pub addresses: BTreeMap<String, String>,
}

impl SeenContainer {
    pub fn of(c: &ObservedContainer) -> Self {
        Self {
            id: c.id.clone(),
            addresses: c.addresses.clone(),
        }
    }

    /// How `now` differs from what was seen: another container, or (the same container) another
    /// address on a network both know. A network without an address on either side (a stopped
    /// container) says nothing: a stop is not a change until the container gets an address again.
    pub fn change_to(&self, now: &SeenContainer) -> Option<Change> {
        if self.id != now.id {
            return Some(Change::Replaced {
                old_id: self.id.clone(),
                new_id: now.id.clone(),
            });
        }
        self.addresses.iter().find_map(|(net, old)| {
            let new = now.addresses.get(net)?;
            (!old.is_empty() && !new.is_empty() && new != old).then(|| Change::Readdressed {
                network: net.clone(),
                old: old.clone(),
                new: new.clone(),
            })
        })
    }

    /// `now`, keeping the last address on each network the same container is still attached to
    /// without one (a stopped container keeps it, so that a start on another address is noticed).
    /// A network it left is forgotten: a later attach on another address is no move.
    pub fn merged(&self, now: &SeenContainer) -> SeenContainer {
        let addresses = now
            .addresses
            .iter()
            .map(|(net, ip)| {
                let kept = match self.addresses.get(net) {
                    Some(last) if ip.is_empty() && self.id == now.id => last.clone(),
                    _ => ip.clone(),
                };
                (net.clone(), kept)
            })
            .collect();
        SeenContainer {
            id: now.id.clone(),
            addresses,
        }
    }
}

/// How a slot's container changed since it was last seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Replaced {
        old_id: String,
        new_id: String,
    },
    Readdressed {
        network: String,
        old: String,
        new: String,
    },
}

/// The memory: what was last seen per slot. Empty means "nothing seen yet": no slot can have
/// changed, so nothing follows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LastSeen {
    pub slots: BTreeMap<Slot, SeenContainer>,
}

impl LastSeen {
    /// What a snapshot shows: one entry per slot that holds exactly one container (with a number
    /// label that reads as a number). A slot with two (a recreate in flight, a duplicate) is left
    /// out: which container stays is the planner's decision, not a fact yet.
    pub fn of(snapshot: &Snapshot) -> Self {
        let mut count: BTreeMap<Slot, usize> = BTreeMap::new();
        let settled: Vec<&ObservedContainer> = snapshot
            .containers
            .iter()
            .filter(|c| c.number > 0 && !c.service.is_empty())
            .collect();
        for c in &settled {
            *count.entry(Slot::new(&c.service, c.number)).or_default() += 1;
        }
        let slots = settled
            .into_iter()
            .filter(|c| count.get(&Slot::new(&c.service, c.number)) == Some(&1))
            .map(|c| (Slot::new(&c.service, c.number), SeenContainer::of(c)))
            .collect();
        Self { slots }
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn get(&self, slot: &Slot) -> Option<&SeenContainer> {
        self.slots.get(slot)
    }

    /// How the container now in `slot` differs from the one last seen there; `None` when nothing
    /// was seen there yet, or nothing changed.
    pub fn change(&self, slot: &Slot, now: &ObservedContainer) -> Option<Change> {
        self.slots.get(slot)?.change_to(&SeenContainer::of(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(id: &str, addresses: &[(&str, &str)]) -> SeenContainer {
        SeenContainer {
            id: id.into(),
            addresses: addresses
                .iter()
                .map(|(n, ip)| (n.to_string(), ip.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_stop_keeps_the_last_address_and_a_network_the_container_left_is_forgotten() {
        let running = seen("a", &[("p_default", "172.18.0.3"), ("foreign", "10.9.0.4")]);
        // Stopped: still attached to p_default without an address; `foreign` was disconnected.
        let stopped = seen("a", &[("p_default", "")]);
        assert_eq!(running.change_to(&stopped), None, "a stop is not a move");
        let remembered = running.merged(&stopped);
        assert_eq!(remembered, seen("a", &[("p_default", "172.18.0.3")]));
        // Started on another address: a move.
        let moved = seen("a", &[("p_default", "172.18.0.9")]);
        assert_eq!(
            remembered.change_to(&moved),
            Some(Change::Readdressed {
                network: "p_default".into(),
                old: "172.18.0.3".into(),
                new: "172.18.0.9".into(),
            })
        );
        // Attached again to the network it left, on another address: not a move.
        let back = seen("a", &[("p_default", "172.18.0.3"), ("foreign", "10.9.0.7")]);
        assert_eq!(remembered.change_to(&back), None);
        // Another container forgets the old one's addresses.
        let other = seen("b", &[("p_default", "")]);
        assert_eq!(running.merged(&other), other);
    }
}
