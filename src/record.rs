//! The body of a reconcile's evidence record, built the same way by `spindle run` (each reconcile) and `spindle apply` (one per apply).
//!
//! The log (`crate::evidence`) adds `seq`, `id`, `prev_hash` and `hash` and redacts the body once more; this module
//! fills in what the reconcile saw and did: `project`, `revision`, `plan`, `results`, `writes`, `follows`, `services`,
//! `warnings`, `outcome`, `error`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::apply::Report;
use crate::desired::{Project, typed::DesiredState};
use crate::observe::snapshot::Snapshot;
use crate::plan::{ActionKind, Follow, Plan};

/// How a reconcile ended, as the record's `outcome` says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A policy or a plan blocker forbade the apply; nothing was changed.
    Blocked,
    /// An action failed (or was rolled back).
    Failed,
    /// Nothing to do: the host already matched.
    InSync,
    /// Actions ran and all succeeded.
    Converged,
}

impl Outcome {
    /// The apply's outcome: blocked before failed before in-sync before converged.
    pub fn of(plan: &Plan, report: &Report) -> Self {
        if !report.blockers.is_empty() {
            Self::Blocked
        } else if !report.converged {
            Self::Failed
        } else if plan.is_empty() && report.results.is_empty() {
            Self::InSync
        } else {
            Self::Converged
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Blocked => "blocked",
            Self::Failed => "failed",
            Self::InSync => "in-sync",
            Self::Converged => "converged",
        }
    }
}

/// SHA-256 over the input files' contents, in order (compose files, then env files).
pub fn inputs_hash(files: &[PathBuf], env_files: &[PathBuf]) -> String {
    let mut h = Sha256::new();
    for f in files.iter().chain(env_files) {
        h.update(f.to_string_lossy().as_bytes());
        h.update([0]);
        if let Ok(bytes) = std::fs::read(f) {
            h.update(&bytes);
        }
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// Inserts `project`, `revision` (git commit, dirty, inputs hash) and `profile` for a loaded project; returns the
/// inputs hash.
pub fn insert_loaded(
    record: &mut Map<String, Value>,
    project: &Project,
    revision: Option<&str>,
) -> String {
    let inputs = inputs_hash(&project.files, &project.env_files);
    record.insert("project".into(), json!(project.name));
    record.insert(
        "revision".into(),
        json!({
            "git_commit": revision.map(|r| r.trim_end_matches("-dirty")),
            "dirty": revision.is_some_and(|r| r.ends_with("-dirty")),
            "inputs_sha256": inputs,
        }),
    );
    record.insert("profile".into(), json!(project.profiles));
    inputs
}

/// `{service: {state, containers: [...], reason?}}`: the state of each desired service in `snap`
/// (see [`service_state`]).
pub fn services(
    desired: &DesiredState,
    snap: &Snapshot,
    degraded: &BTreeMap<String, String>,
) -> Value {
    let facts = crate::status::facts(desired, snap, degraded, &BTreeMap::new(), false);
    let mut out = Map::new();
    for name in desired.services.keys() {
        let containers: Vec<Value> = snap
            .containers
            .iter()
            .filter(|c| &c.service == name)
            .map(|c| {
                json!({
                    "name": c.name,
                    "id": c.id,
                    "state": c.state,
                    "health": c.health,
                    "exit_code": c.exit_code,
                })
            })
            .collect();
        let (state, reason) = match facts.services.get(name) {
            Some(f) => service_state(f),
            None => (ServiceState::Missing, None),
        };
        let mut entry = Map::new();
        entry.insert("state".into(), state.as_str().into());
        if let Some(reason) = reason {
            entry.insert("reason".into(), reason.into());
        }
        entry.insert("containers".into(), Value::Array(containers));
        out.insert(name.clone(), Value::Object(entry));
    }
    Value::Object(out)
}

/// A service's `state` in a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceState {
    /// Every container it should have is running and, where it has a healthcheck, healthy (or
    /// it is a one-shot that finished with code 0).
    Ready,
    /// Containers exist, but not all are running, or some are unhealthy or still starting.
    NotReady,
    /// It has no container.
    Missing,
    /// spindle stopped healing it (the restart budget is spent, …).
    Degraded,
}

impl ServiceState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::NotReady => "not-ready",
            Self::Missing => "missing",
            Self::Degraded => "degraded",
        }
    }
}

/// The state of one service and, unless it is ready, why.
pub fn service_state(f: &crate::status::ServiceFacts) -> (ServiceState, Option<String>) {
    if let Some(reason) = &f.degraded {
        return (ServiceState::Degraded, Some(reason.clone()));
    }
    if f.containers.is_empty() && f.replicas > 0 {
        return (ServiceState::Missing, None);
    }
    match crate::status::ready(f) {
        (true, _, _) => (ServiceState::Ready, None),
        (false, _, message) => (ServiceState::NotReady, Some(message)),
    }
}

/// One dependent that followed a moved dependency (the recovery rule), as the evidence records it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FollowRecord {
    /// The dependent's service and container, and what was done to it (`recreate`, `restart`).
    pub service: String,
    pub container: String,
    pub action: &'static str,
    /// Which dependency container moved, and why (`cause` and its details).
    pub follows: Follow,
    /// The cause in words (`backend-1 was replaced out of band (id … → …)`).
    pub reason: String,
    /// How the follow ended (`ok`, `failed`, `rolled_back`, `skipped`); absent when it did not run.
    pub outcome: Option<crate::apply::Outcome>,
}

/// The follows of a plan with their outcomes: one entry per (dependent action, moved dependency).
pub fn follows(plan: &Plan, report: &Report) -> Vec<FollowRecord> {
    let mut out = Vec::new();
    for a in &plan.actions {
        let container = match &a.kind {
            ActionKind::Recreate { old, .. } => old.name.clone(),
            ActionKind::Restart { container } => container.name.clone(),
            _ => String::new(),
        };
        let outcome = report
            .results
            .iter()
            .find(|r| r.action.id == a.id)
            .map(|r| r.outcome);
        for f in &a.follows {
            out.push(FollowRecord {
                service: a.kind.service().unwrap_or_default().to_string(),
                container: container.clone(),
                action: a.kind.verb(),
                follows: f.clone(),
                reason: f.describe(),
                outcome,
            });
        }
    }
    out
}

/// `<verb> <service>: <error>` for each failed or rolled-back action.
pub fn failures(report: &Report) -> Vec<String> {
    report
        .failed()
        .map(|r| {
            format!(
                "{} {}: {}",
                r.action.kind.verb(),
                r.action.kind.service().unwrap_or(""),
                r.error.as_deref().unwrap_or("")
            )
        })
        .collect()
}

/// Inserts `warnings`, the plan's violations of policies in mode `warn`, when there are any.
pub fn insert_warnings(record: &mut Map<String, Value>, plan: &Plan) {
    if !plan.warnings.is_empty() {
        record.insert("warnings".into(), json!(plan.warnings));
    }
}

/// Inserts what an apply did: `plan`, `results`, `writes`, `follows` (when a dependent followed a moved dependency),
/// `services` (the state after it), `outcome`, and `error` (the blockers, or the failed actions). Returns the outcome.
pub fn insert_applied(
    record: &mut Map<String, Value>,
    plan: &Plan,
    report: &Report,
    services: Value,
) -> Outcome {
    record.insert(
        "plan".into(),
        serde_json::to_value(plan).unwrap_or(Value::Null),
    );
    record.insert(
        "results".into(),
        serde_json::to_value(&report.results).unwrap_or(Value::Null),
    );
    record.insert(
        "writes".into(),
        serde_json::to_value(&report.write_log).unwrap_or(Value::Null),
    );
    let follows = follows(plan, report);
    if !follows.is_empty() {
        record.insert(
            "follows".into(),
            serde_json::to_value(&follows).unwrap_or(Value::Null),
        );
    }
    record.insert("services".into(), services);
    insert_warnings(record, plan);
    let outcome = Outcome::of(plan, report);
    record.insert("outcome".into(), outcome.as_str().into());
    match outcome {
        Outcome::Blocked => {
            record.insert("error".into(), report.blockers.join("; ").into());
        }
        Outcome::Failed => {
            let failed = failures(report);
            if !failed.is_empty() {
                record.insert("error".into(), failed.join("; ").into());
            }
        }
        Outcome::InSync | Outcome::Converged => {}
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(converged: bool, blockers: &[&str]) -> Report {
        Report {
            project: "p".into(),
            converged,
            results: Vec::new(),
            writes: 0,
            write_log: Vec::new(),
            blockers: blockers.iter().map(|b| b.to_string()).collect(),
            elapsed_ms: 0,
        }
    }

    fn plan() -> Plan {
        Plan {
            project: "p".into(),
            actions: Vec::new(),
            orphans: Vec::new(),
            in_sync: Vec::new(),
            blockers: Vec::new(),
            warnings: Vec::new(),
            in_flight: Vec::new(),
        }
    }

    #[test]
    fn a_warning_is_recorded_and_does_not_change_the_outcome() {
        let mut record = Map::new();
        let mut p = plan();
        p.warnings
            .push("policy port_binding: services.web.ports[0]: …".into());
        let out = insert_applied(&mut record, &p, &report(true, &[]), Value::Null);
        assert_eq!(out, Outcome::InSync);
        assert_eq!(record["outcome"], "in-sync");
        assert_eq!(
            record["warnings"],
            json!(["policy port_binding: services.web.ports[0]: …"])
        );
        assert_eq!(record["plan"]["warnings"], record["warnings"]);
        assert!(record.get("error").is_none(), "{record:?}");
    }

    #[test]
    fn a_service_is_ready_only_when_its_containers_run_and_those_with_a_healthcheck_are_healthy() {
        use crate::observe::snapshot::Health;
        use crate::status::{ContainerFacts, ServiceFacts};
        let c = |running: bool, health: Health| ContainerFacts {
            running,
            health,
            exit_code: if running { 0 } else { 1 },
            completed: false,
        };
        let one_shot = ContainerFacts {
            running: false,
            health: Health::None,
            exit_code: 0,
            completed: true,
        };
        let facts = |replicas: u32, containers: Vec<ContainerFacts>| ServiceFacts {
            replicas,
            containers,
            pending: 0,
            degraded: None,
        };
        use ServiceState::*;
        let cases = [
            (facts(1, vec![c(true, Health::None)]), Ready),
            (facts(1, vec![c(true, Health::Healthy)]), Ready),
            (facts(1, vec![c(true, Health::Starting)]), NotReady),
            (facts(1, vec![c(true, Health::Unhealthy)]), NotReady),
            (facts(1, vec![c(false, Health::None)]), NotReady),
            (facts(1, vec![c(false, Health::Healthy)]), NotReady),
            (
                facts(2, vec![c(true, Health::Healthy), c(true, Health::Starting)]),
                NotReady,
            ),
            (facts(2, vec![c(true, Health::Healthy)]), NotReady),
            (
                facts(2, vec![c(true, Health::Healthy), c(true, Health::None)]),
                Ready,
            ),
            (facts(1, vec![one_shot.clone()]), Ready),
            (facts(1, vec![]), Missing),
            (facts(0, vec![]), Ready),
        ];
        for (f, want) in cases {
            let (state, reason) = service_state(&f);
            assert_eq!(state, want, "{f:?}");
            assert_eq!(reason.is_some(), want == NotReady, "{f:?}: {reason:?}");
        }
        let mut degraded = facts(1, vec![c(true, Health::Healthy)]);
        degraded.degraded = Some("unhealthy for longer than 60s".into());
        assert_eq!(
            service_state(&degraded),
            (Degraded, Some("unhealthy for longer than 60s".to_string()))
        );
    }

    #[test]
    fn the_outcome_is_blocked_before_failed_before_in_sync() {
        let cases = [
            (report(false, &["policy x"]), Outcome::Blocked),
            (report(true, &["policy x"]), Outcome::Blocked),
            (report(false, &[]), Outcome::Failed),
            (report(true, &[]), Outcome::InSync),
        ];
        for (r, want) in cases {
            assert_eq!(Outcome::of(&plan(), &r), want, "{r:?}");
        }
    }

    #[test]
    fn a_blocked_apply_records_its_blockers_as_the_error() {
        let mut record = Map::new();
        let out = insert_applied(
            &mut record,
            &plan(),
            &report(false, &["policy a: x", "policy b: y"]),
            Value::Null,
        );
        assert_eq!(out, Outcome::Blocked);
        assert_eq!(record["outcome"], "blocked");
        assert_eq!(record["error"], "policy a: x; policy b: y");
        let keys: Vec<&str> = record.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["plan", "results", "writes", "services", "outcome", "error"]
        );
    }
}
