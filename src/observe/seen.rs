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
    /// Network name → IPv4 address, for the networks where it had one.
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
            (new != old).then(|| Change::Readdressed {
                network: net.clone(),
                old: old.clone(),
                new: new.clone(),
            })
        })
    }

    /// `now`, keeping the addresses it has none for (a stopped container keeps its last address,
    /// so that a start on another address is noticed).
    pub fn merged(&self, now: &SeenContainer) -> SeenContainer {
        let mut addresses = if self.id == now.id {
            self.addresses.clone()
        } else {
            BTreeMap::new()
        };
        addresses.extend(now.addresses.clone());
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
