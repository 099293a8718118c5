//! Holding what an unreadable engine item may concern: the planner cannot tell such an item from
//! an absent one, so acting would duplicate it (a second container for a slot, a second network of
//! the same name). Nothing is planned for what it may concern, and a warning says why.
//!
//! - a container with a readable service label: every action of that service;
//! - a container without one: every action of every service;
//! - a network or volume: the actions that create it (by name; all of them when its name cannot
//!   be read);
//! - and every action that waits on a held one.

use std::collections::BTreeSet;

use super::{ActionKind, Plan};
use crate::engine::Unreadable;

/// Drops from `plan` every action `unreadable` may concern, with one warning per item.
pub(super) fn hold(plan: &mut Plan, unreadable: &[Unreadable]) {
    if unreadable.is_empty() {
        return;
    }
    let concerns = |kind: &ActionKind| {
        unreadable.iter().any(|u| match (u.kind, kind) {
            ("container", k) => match (&u.service, k.service()) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(s), Some(t)) => s == t,
            },
            (
                "network",
                ActionKind::CreateNetwork { name, .. } | ActionKind::RecreateNetwork { name, .. },
            )
            | ("volume", ActionKind::CreateVolume { name, .. }) => {
                u.name.as_ref().is_none_or(|n| n == name)
            }
            _ => false,
        })
    };
    let mut held: BTreeSet<usize> = plan
        .actions
        .iter()
        .filter(|a| concerns(&a.kind))
        .map(|a| a.id)
        .collect();
    loop {
        let before = held.len();
        for a in &plan.actions {
            if a.after.iter().any(|x| held.contains(x)) {
                held.insert(a.id);
            }
        }
        if held.len() == before {
            break;
        }
    }
    for u in unreadable {
        let what = match (u.kind, &u.service) {
            ("container", Some(s)) => format!("nothing is planned for service {s}"),
            ("container", None) => "nothing is planned for any service".to_string(),
            _ => format!("nothing is planned that would create this {}", u.kind),
        };
        plan.warnings.push(format!(
            "{}: the engine's description of it cannot be read, so it was skipped; {what} until it can be read (or the {} is removed)",
            u.describe(),
            u.kind
        ));
    }
    plan.remove_actions(&held);
}
