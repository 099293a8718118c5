//! The recovery rule's memory in the state directory (`last-seen-<project>.json`, 0600): read before a reconcile plans, advanced from the final observation after it applied.
//!
//! The memory is what lets spindle notice a replacement it did not make (`docker compose up -d
//! --force-recreate backend`) or a start that gave a container another address: the planner
//! compares the containers it observes with it ([`crate::plan::follow`]). A missing file means
//! nothing was seen yet; an unreadable or corrupt one is treated the same, with a warning — never
//! as "everything changed".

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::apply::{Outcome, Report};
use crate::desired::typed::DesiredState;
use crate::observe::seen::{LastSeen, SeenContainer, Slot};
use crate::plan::{ActionKind, Plan};

/// The file format's version; another version reads as "nothing seen yet".
const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum SeenError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a last-seen file of project {project} ({reason})")]
    Parse {
        path: PathBuf,
        project: String,
        reason: String,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SeenError {
    /// The message with its sources, `cannot read …: Permission denied (os error 13)`.
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            out.push_str(": ");
            out.push_str(&s.to_string());
            source = s.source();
        }
        out
    }
}

/// `<state_dir>/last-seen-<project>.json`.
pub fn path(state_dir: &Path, project: &str) -> PathBuf {
    state_dir.join(format!("last-seen-{project}.json"))
}

/// The file: a version, the project, one entry per slot.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeenFile {
    version: u32,
    project: String,
    containers: Vec<Entry>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    service: String,
    number: u32,
    id: String,
    #[serde(default)]
    addresses: BTreeMap<String, String>,
}

/// Reads the memory of `project` from `path`: empty when the file does not exist; an error (the
/// caller warns and starts from nothing seen) when it cannot be read or is not such a file.
pub fn load(path: &Path, project: &str) -> Result<LastSeen, SeenError> {
    let bytes = match crate::statefile::read(path) {
        Ok(Some(b)) => b,
        Ok(None) => return Ok(LastSeen::default()),
        Err(source) => {
            return Err(SeenError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let parse = |reason: String| SeenError::Parse {
        path: path.to_path_buf(),
        project: project.to_string(),
        reason,
    };
    let file: SeenFile = serde_json::from_slice(&bytes).map_err(|e| parse(e.to_string()))?;
    if file.version != VERSION {
        return Err(parse(format!(
            "version {}, this spindle reads {VERSION}",
            file.version
        )));
    }
    if file.project != project {
        return Err(parse(format!("it is project {}'s", file.project)));
    }
    Ok(LastSeen {
        slots: file
            .containers
            .into_iter()
            .map(|e| {
                (
                    Slot {
                        service: e.service,
                        number: e.number,
                    },
                    SeenContainer {
                        id: e.id,
                        addresses: e.addresses,
                    },
                )
            })
            .collect(),
    })
}

/// [`load`] from `<state_dir>/last-seen-<project>.json`, where an unreadable or corrupt file
/// counts as nothing seen, with a warning (never as "everything changed": nothing follows until a
/// change is seen anew). Blocking: call it off the async runtime.
pub fn load_or_nothing(state_dir: &Path, project: &str) -> LastSeen {
    load(&path(state_dir, project), project).unwrap_or_else(|e| {
        tracing::warn!(
            error = %crate::redact::scrub(&e.chain()),
            "the recovery rule's memory is unreadable: starting from nothing seen (no dependent follows until a change is seen anew); it is rewritten after the next apply"
        );
        LastSeen::default()
    })
}

/// Replaces the file atomically, mode 0600.
pub fn save(path: &Path, project: &str, seen: &LastSeen) -> Result<(), SeenError> {
    let file = SeenFile {
        version: VERSION,
        project: project.to_string(),
        containers: seen
            .slots
            .iter()
            .map(|(slot, c)| Entry {
                service: slot.service.clone(),
                number: slot.number,
                id: c.id.clone(),
                addresses: c.addresses.clone(),
            })
            .collect(),
    };
    let mut bytes = serde_json::to_vec_pretty(&file).unwrap_or_default();
    bytes.push(b'\n');
    crate::statefile::write_atomic(path, &bytes).map_err(|source| SeenError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The memory of a long-running process (`spindle run`): read from the state directory once, kept
/// in the process, written back whenever it changed. Every file access runs off the async runtime.
#[derive(Debug, Default)]
pub struct Memory {
    /// `None`: kept in this process only.
    state_dir: Option<PathBuf>,
    /// The project it belongs to, and what was seen (`None` until read).
    current: Option<(String, LastSeen)>,
}

impl Memory {
    pub fn in_dir(state_dir: &Path) -> Self {
        Self {
            state_dir: Some(state_dir.to_path_buf()),
            current: None,
        }
    }

    /// The memory of `project`, read from the state directory the first time ([`load_or_nothing`]).
    pub async fn get(&mut self, project: &str) -> LastSeen {
        if let Some((p, seen)) = &self.current
            && p == project
        {
            return seen.clone();
        }
        let seen = match &self.state_dir {
            None => LastSeen::default(),
            Some(dir) => load_off_runtime(dir.clone(), project.to_string()).await,
        };
        self.current = Some((project.to_string(), seen.clone()));
        seen
    }

    /// Moves the memory on after an apply ([`advance`]), writes it when it changed, and returns the
    /// slots whose change is still to be followed.
    pub async fn advance(
        &mut self,
        desired: &DesiredState,
        old: &LastSeen,
        planned: &LastSeen,
        plan: &Plan,
        report: &Report,
        now: &LastSeen,
    ) -> Vec<Slot> {
        let adv = advance(old, &Shape::of(desired), planned, plan, report, now);
        if old.is_empty() && !adv.seen.is_empty() {
            tracing::info!(
                slots = adv.seen.slots.len(),
                "nothing seen before: the containers are recorded, no dependent follows"
            );
        }
        for slot in &adv.pending {
            tracing::info!(container = %slot.label(), "a change its dependents have not followed yet: they follow next");
        }
        let project = &desired.project;
        let unchanged = self
            .current
            .as_ref()
            .is_some_and(|(p, s)| p == project && *s == adv.seen);
        if !unchanged {
            self.current = Some((project.clone(), adv.seen.clone()));
            if let Some(dir) = &self.state_dir {
                save_off_runtime(dir.clone(), project.clone(), adv.seen).await;
            }
        }
        adv.pending
    }
}

/// [`load_or_nothing`] on a blocking thread.
pub async fn load_off_runtime(state_dir: PathBuf, project: String) -> LastSeen {
    tokio::task::spawn_blocking(move || load_or_nothing(&state_dir, &project))
        .await
        .unwrap_or_default()
}

/// [`save`] on a blocking thread; a failure is a warning (the memory stays in the process).
pub async fn save_off_runtime(state_dir: PathBuf, project: String, seen: LastSeen) {
    let saved =
        tokio::task::spawn_blocking(move || save(&path(&state_dir, &project), &project, &seen))
            .await;
    let error = match saved {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e.chain(),
        Err(e) => e.to_string(),
    };
    tracing::warn!(%error, "the recovery rule's memory could not be written; it is kept in this process");
}

/// What [`advance`] needs of the desired state: each service's scale, and the services some
/// dependent follows (`depends_on: {it: {restart: true}}`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    pub replicas: BTreeMap<String, u32>,
    pub followed: BTreeSet<String>,
}

impl Shape {
    pub fn of(desired: &DesiredState) -> Self {
        Self {
            replicas: desired
                .services
                .values()
                .map(|s| (s.name.clone(), s.replicas))
                .collect(),
            followed: desired
                .services
                .values()
                .flat_map(|s| s.depends_on.iter().filter(|d| s.follows(d)))
                .map(|d| d.service.clone())
                .collect(),
        }
    }
}

/// The memory after a reconcile, and the slots whose change is still to be followed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Advance {
    pub seen: LastSeen,
    /// Slots that changed but whose dependents have not followed that change: the old entry is
    /// kept, so the next reconcile plans the follow.
    pub pending: Vec<Slot>,
}

/// What to remember after a reconcile applied `plan`: the final observation (`now`), slot by slot,
/// except where a slot's change has not been followed yet.
///
/// A slot with no `restart: true` dependent, one seen for the first time, or one that did not
/// change takes what `now` shows (a stopped container keeps its last address). A changed slot with
/// dependents takes `now` only when the plan knew of the change — it replaced the slot itself, or
/// the change was already there when it planned (`planned`, the observation it planned from) — and
/// every action that followed that dependency succeeded. Otherwise (a start during the apply gave
/// the container another address, a follow failed or was skipped) the old entry stays and the
/// slot is pending. Slots of services no longer desired, or above their scale, are forgotten.
pub fn advance(
    old: &LastSeen,
    shape: &Shape,
    planned: &LastSeen,
    plan: &Plan,
    report: &Report,
    now: &LastSeen,
) -> Advance {
    let ok: BTreeSet<usize> = report
        .results
        .iter()
        .filter(|r| r.outcome == Outcome::Ok)
        .map(|r| r.action.id)
        .collect();
    let replaced_ok = |slot: &Slot| {
        plan.actions.iter().any(|a| {
            ok.contains(&a.id)
                && match &a.kind {
                    ActionKind::Create { service, number }
                    | ActionKind::Recreate {
                        service, number, ..
                    }
                    | ActionKind::ResumeRecreate {
                        service, number, ..
                    } => *service == slot.service && *number == slot.number,
                    _ => false,
                }
        })
    };
    let follows_ok = |service: &str| {
        plan.actions
            .iter()
            .filter(|a| a.follows.iter().any(|f| f.dependency == service))
            .all(|a| ok.contains(&a.id))
    };
    let wanted = |slot: &Slot| {
        shape
            .replicas
            .get(&slot.service)
            .is_some_and(|r| slot.number >= 1 && slot.number <= *r)
    };
    let mut out = Advance::default();
    for (slot, seen_now) in &now.slots {
        if !wanted(slot) {
            continue;
        }
        let entry = match old.get(slot) {
            None => seen_now.clone(),
            Some(before) => {
                let changed = before.change_to(seen_now).is_some();
                let known = replaced_ok(slot)
                    || (planned.get(slot).is_some_and(|p| {
                        before.change_to(p).is_some() && p.change_to(seen_now).is_none()
                    }));
                if !changed
                    || !shape.followed.contains(&slot.service)
                    || (known && follows_ok(&slot.service))
                {
                    before.merged(seen_now)
                } else {
                    out.pending.push(slot.clone());
                    before.clone()
                }
            }
        };
        out.seen.slots.insert(slot.clone(), entry);
    }
    // A slot without a container now (removed, a create that failed) keeps what was seen.
    for (slot, before) in &old.slots {
        if wanted(slot) && !out.seen.slots.contains_key(slot) {
            out.seen.slots.insert(slot.clone(), before.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests;
