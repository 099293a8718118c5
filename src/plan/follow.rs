//! The recovery rule: which dependency slots moved (replaced by this plan, by self-heal, out of band, or readdressed), and which dependents follow them, each with its cause.
//!
//! A dependent that declares `depends_on: {dep: {restart: true}}` follows `dep` (is recreated, or
//! restarted with `x-spindle.on-dependency-change: restart`) once `dep` is ready again, because
//! nginx-style frontends keep the address they resolved at start. Pure: the memory of what was
//! last seen is an input ([`super::PlanOptions::last_seen`]).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::desired::typed::DesiredService;
use crate::observe::seen::{Change, LastSeen, Slot};
use crate::observe::snapshot::ObservedContainer;

/// Why a dependent follows: which container of which dependency moved, and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Follow {
    /// The dependency's service.
    pub dependency: String,
    /// The dependency's slot that moved (`backend-1`).
    pub container: String,
    #[serde(flatten)]
    pub cause: FollowCause,
}

/// What happened to the dependency's container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum FollowCause {
    /// This plan recreates it (a changed definition, or an interrupted recreate it finishes).
    RecreatedByPlan,
    /// Its container was missing: this plan creates it again.
    RecreatedBySelfHeal,
    /// Another container holds the slot than the one spindle last saw, and it was not made by
    /// spindle (`docker compose up --force-recreate`, a hand-made replacement).
    ReplacedOutOfBand { old_id: String, new_id: String },
    /// Another container holds the slot, made by an earlier spindle recreate whose dependents
    /// have not followed yet (that reconcile failed or was interrupted).
    ReplacedEarlier { old_id: String, new_id: String },
    /// The same container came back (a start, a restart) with another address on a network.
    AddressChanged {
        network: String,
        old: String,
        new: String,
    },
}

impl Follow {
    /// `backend-1 was replaced out of band (id 0123456789ab → ba9876543210)`.
    pub fn describe(&self) -> String {
        let c = &self.container;
        match &self.cause {
            FollowCause::RecreatedByPlan => format!("{c} is recreated by this plan"),
            FollowCause::RecreatedBySelfHeal => {
                format!("{c} is re-created by self-heal (its container was missing)")
            }
            FollowCause::ReplacedOutOfBand { old_id, new_id } => format!(
                "{c} was replaced out of band (id {} → {})",
                short(old_id),
                short(new_id)
            ),
            FollowCause::ReplacedEarlier { old_id, new_id } => format!(
                "{c} was replaced by an earlier recreate its dependents did not follow yet (id {} → {})",
                short(old_id),
                short(new_id)
            ),
            FollowCause::AddressChanged { network, old, new } => {
                format!("{c} changed address {old} → {new} on network {network}")
            }
        }
    }
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// The reason of a dependent's follow action: `dependency backend-1 … (depends_on restart: true)`,
/// or `(x-spindle.on-dependency-change)` when that is what makes `svc` follow.
pub fn reason(svc: &DesiredService, follows: &[Follow]) -> Option<String> {
    let first = follows.first()?;
    let declared = match svc
        .depends_on
        .iter()
        .find(|d| d.service == first.dependency)
    {
        Some(d) if !d.restart => "x-spindle.on-dependency-change",
        _ => "depends_on restart: true",
    };
    let more = match follows.len() {
        1 => String::new(),
        n => format!(" and {} more", n - 1),
    };
    Some(format!(
        "dependency {}{more} ({declared})",
        first.describe()
    ))
}

/// How the slots of `svc` moved: the numbers this plan replaces (with their cause), and, for the
/// other slots holding exactly one container, any change against what was last seen.
pub fn moved(
    svc: &DesiredService,
    current: &[&ObservedContainer],
    replaced: &BTreeMap<u32, FollowCause>,
    last_seen: &LastSeen,
) -> Vec<Follow> {
    let mut out: Vec<Follow> = replaced
        .iter()
        .map(|(n, cause)| Follow {
            dependency: svc.name.clone(),
            container: Slot::new(&svc.name, *n).label(),
            cause: cause.clone(),
        })
        .collect();
    for number in 1..=svc.replicas {
        if replaced.contains_key(&number) {
            continue;
        }
        let mut here = current.iter().filter(|c| c.number == number);
        let (Some(c), None) = (here.next(), here.next()) else {
            continue;
        };
        let slot = Slot::new(&svc.name, number);
        let cause = match last_seen.change(&slot, c) {
            None => continue,
            Some(Change::Replaced { old_id, new_id }) if c.replaces() == Some(old_id.as_str()) => {
                FollowCause::ReplacedEarlier { old_id, new_id }
            }
            Some(Change::Replaced { old_id, new_id }) => {
                FollowCause::ReplacedOutOfBand { old_id, new_id }
            }
            Some(Change::Readdressed { network, old, new }) => {
                FollowCause::AddressChanged { network, old, new }
            }
        };
        out.push(Follow {
            dependency: svc.name.clone(),
            container: slot.label(),
            cause,
        });
    }
    out
}

/// The follows of `svc`: the moves of every dependency it follows ([`DesiredService::follows`]).
pub fn follows_of(svc: &DesiredService, moved: &BTreeMap<String, Vec<Follow>>) -> Vec<Follow> {
    svc.depends_on
        .iter()
        .filter(|d| svc.follows(d))
        .filter_map(|d| moved.get(&d.service))
        .flatten()
        .cloned()
        .collect()
}
