//! Kubernetes-like conditions per service (Ready, Progressing, Degraded), computed purely from desired + observed state.
//!
//! The same computation serves `GET /status` (after each reconcile, with the reconciler's degraded
//! map and what the apply left pending) and `spindle status` offline (with the plan as pending).
//! A condition's `lastTransitionTime` is kept from the previous status while its `status` stays the same.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::desired::typed::DesiredState;
use crate::observe::snapshot::{Health, Snapshot};

/// What one container looks like, reduced to what the conditions need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerFacts {
    pub running: bool,
    pub health: Health,
    pub exit_code: i64,
    /// A one-shot that finished with code 0 and is meant to stay finished ([`crate::plan::completed`]).
    pub completed: bool,
}

/// What the conditions of one service are computed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceFacts {
    pub replicas: u32,
    pub containers: Vec<ContainerFacts>,
    /// Changes spindle wants to make to the service and has not made (planned, failed or paused).
    pub pending: usize,
    /// Why spindle stopped healing the service, if it did.
    pub degraded: Option<String>,
}

/// The facts of every desired service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    pub services: BTreeMap<String, ServiceFacts>,
    pub paused: bool,
}

/// Reduces desired + observed state (and what spindle knows beyond them) to [`Facts`].
pub fn facts(
    desired: &DesiredState,
    snapshot: &Snapshot,
    degraded: &BTreeMap<String, String>,
    pending: &BTreeMap<String, usize>,
    paused: bool,
) -> Facts {
    let services = desired
        .services
        .iter()
        .map(|(name, svc)| {
            let containers = snapshot
                .containers
                .iter()
                .filter(|c| &c.service == name)
                .map(|c| ContainerFacts {
                    running: c.is_running(),
                    health: c.health,
                    exit_code: c.exit_code,
                    completed: crate::plan::completed(desired, svc, c),
                })
                .collect();
            (
                name.clone(),
                ServiceFacts {
                    replicas: svc.replicas,
                    containers,
                    pending: pending.get(name).copied().unwrap_or(0),
                    degraded: degraded.get(name).cloned(),
                },
            )
        })
        .collect();
    Facts { services, paused }
}

/// One condition, as Kubernetes writes them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    /// `"True"` or `"False"`.
    pub status: String,
    pub reason: String,
    pub message: String,
    pub last_transition_time: String,
}

impl Condition {
    pub fn is_true(&self) -> bool {
        self.status == "True"
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub replicas: u32,
    pub running: usize,
    pub conditions: Vec<Condition>,
}

impl ServiceStatus {
    pub fn condition(&self, kind: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.kind == kind)
    }
}

/// The conditions of every service.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicesStatus {
    pub services: BTreeMap<String, ServiceStatus>,
}

/// `(status, reason, message)` of one condition.
type Verdict = (bool, &'static str, String);

/// Whether a service is ready: every container it should have is running and, where it has a
/// healthcheck, healthy (a one-shot that finished with code 0 counts as ready); the reason and
/// message say why not.
pub fn ready(f: &ServiceFacts) -> (bool, &'static str, String) {
    let running = f.containers.iter().filter(|c| c.running).count();
    let want = f.replicas as usize;
    if f.containers.is_empty() && want > 0 {
        return (
            false,
            "ContainersMissing",
            format!("0 of {want} containers exist"),
        );
    }
    let finished = f
        .containers
        .iter()
        .filter(|c| !c.running && c.completed)
        .count();
    if running == 0 && finished >= want && want > 0 {
        return (
            true,
            "Completed",
            format!("{finished} of {want} one-shot containers finished with code 0"),
        );
    }
    if running < want {
        let stopped = f.containers.iter().find(|c| !c.running && !c.completed);
        let detail = stopped
            .map(|c| format!("; one exited with code {}", c.exit_code))
            .unwrap_or_default();
        return (
            false,
            "ContainersNotRunning",
            format!("{running} of {want} containers running{detail}"),
        );
    }
    let unhealthy = f
        .containers
        .iter()
        .filter(|c| c.running && c.health == Health::Unhealthy)
        .count();
    if unhealthy > 0 {
        return (
            false,
            "Unhealthy",
            format!("{unhealthy} of {running} running containers unhealthy"),
        );
    }
    let starting = f
        .containers
        .iter()
        .filter(|c| c.running && c.health == Health::Starting)
        .count();
    if starting > 0 {
        return (
            false,
            "HealthStarting",
            format!("{starting} of {running} running containers not yet healthy"),
        );
    }
    (
        true,
        "AllReplicasReady",
        format!("{running} of {want} containers running and healthy"),
    )
}

fn progressing(f: &ServiceFacts, paused: bool) -> Verdict {
    if f.pending > 0 && paused {
        return (
            false,
            "Paused",
            format!(
                "{} change(s) pending; spindle is paused and applies nothing until resumed",
                f.pending
            ),
        );
    }
    if f.pending > 0 {
        return (
            true,
            "ChangesPending",
            format!("{} change(s) not yet applied", f.pending),
        );
    }
    if f.containers
        .iter()
        .any(|c| c.running && c.health == Health::Starting)
    {
        return (
            true,
            "HealthStarting",
            "waiting for the healthcheck to pass".into(),
        );
    }
    (
        false,
        "UpToDate",
        "the service matches the desired state".into(),
    )
}

fn degraded(f: &ServiceFacts) -> Verdict {
    match &f.degraded {
        Some(reason) => (true, "RestartBudgetSpent", reason.clone()),
        None => (false, "AsExpected", "spindle is healing the service".into()),
    }
}

/// The conditions of every service, keeping `lastTransitionTime` from `previous` for conditions
/// whose status did not change; `now` (RFC 3339) for the others.
pub fn compute(facts: &Facts, previous: Option<&ServicesStatus>, now: &str) -> ServicesStatus {
    let services = facts
        .services
        .iter()
        .map(|(name, f)| {
            let verdicts = [
                ("Ready", ready(f)),
                ("Progressing", progressing(f, facts.paused)),
                ("Degraded", degraded(f)),
            ];
            let conditions = verdicts
                .into_iter()
                .map(|(kind, (status, reason, message))| {
                    let status = if status { "True" } else { "False" }.to_string();
                    let since = previous
                        .and_then(|p| p.services.get(name))
                        .and_then(|s| s.condition(kind))
                        .filter(|c| c.status == status)
                        .map(|c| c.last_transition_time.clone())
                        .unwrap_or_else(|| now.to_string());
                    Condition {
                        kind: kind.into(),
                        status,
                        reason: reason.into(),
                        message,
                        last_transition_time: since,
                    }
                })
                .collect();
            (
                name.clone(),
                ServiceStatus {
                    replicas: f.replicas,
                    running: f.containers.iter().filter(|c| c.running).count(),
                    conditions,
                },
            )
        })
        .collect();
    ServicesStatus { services }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(running: bool, health: Health) -> ContainerFacts {
        ContainerFacts {
            running,
            health,
            exit_code: if running { 0 } else { 1 },
            completed: false,
        }
    }

    fn svc(
        containers: Vec<ContainerFacts>,
        pending: usize,
        degraded: Option<&str>,
    ) -> ServiceFacts {
        ServiceFacts {
            replicas: 1,
            containers,
            pending,
            degraded: degraded.map(str::to_string),
        }
    }

    fn one(f: ServiceFacts, paused: bool) -> ServiceStatus {
        let facts = Facts {
            services: [("s".to_string(), f)].into(),
            paused,
        };
        compute(&facts, None, "T0").services["s"].clone()
    }

    /// `(type, status, reason)` of one condition.
    type Row = (String, String, String);

    fn summary(s: &ServiceStatus) -> Vec<Row> {
        s.conditions
            .iter()
            .map(|c| (c.kind.clone(), c.status.clone(), c.reason.clone()))
            .collect()
    }

    fn row(r: &str, rr: &str, p: &str, pr: &str, d: &str, dr: &str) -> Vec<Row> {
        vec![
            ("Ready".into(), r.into(), rr.into()),
            ("Progressing".into(), p.into(), pr.into()),
            ("Degraded".into(), d.into(), dr.into()),
        ]
    }

    #[test]
    fn conditions_follow_the_facts() {
        let table: Vec<(&str, ServiceFacts, bool, Vec<Row>)> = vec![
            (
                "healthy and in sync",
                svc(vec![c(true, Health::Healthy)], 0, None),
                false,
                row(
                    "True",
                    "AllReplicasReady",
                    "False",
                    "UpToDate",
                    "False",
                    "AsExpected",
                ),
            ),
            (
                "no healthcheck counts as ready when running",
                svc(vec![c(true, Health::None)], 0, None),
                false,
                row(
                    "True",
                    "AllReplicasReady",
                    "False",
                    "UpToDate",
                    "False",
                    "AsExpected",
                ),
            ),
            (
                "a finished one-shot is ready, not stopped",
                svc(
                    vec![ContainerFacts {
                        completed: true,
                        ..c(false, Health::None)
                    }],
                    0,
                    None,
                ),
                false,
                row(
                    "True",
                    "Completed",
                    "False",
                    "UpToDate",
                    "False",
                    "AsExpected",
                ),
            ),
            (
                "missing container with a pending create",
                svc(vec![], 1, None),
                false,
                row(
                    "False",
                    "ContainersMissing",
                    "True",
                    "ChangesPending",
                    "False",
                    "AsExpected",
                ),
            ),
            (
                "stopped and paused",
                svc(vec![c(false, Health::None)], 1, None),
                true,
                row(
                    "False",
                    "ContainersNotRunning",
                    "False",
                    "Paused",
                    "False",
                    "AsExpected",
                ),
            ),
            (
                "health starting",
                svc(vec![c(true, Health::Starting)], 0, None),
                false,
                row(
                    "False",
                    "HealthStarting",
                    "True",
                    "HealthStarting",
                    "False",
                    "AsExpected",
                ),
            ),
            (
                "unhealthy past the budget",
                svc(vec![c(true, Health::Unhealthy)], 0, Some("budget spent")),
                false,
                row(
                    "False",
                    "Unhealthy",
                    "False",
                    "UpToDate",
                    "True",
                    "RestartBudgetSpent",
                ),
            ),
        ];
        for (what, f, paused, want) in table {
            assert_eq!(summary(&one(f, paused)), want, "{what}");
        }
    }

    #[test]
    fn a_transition_time_is_kept_while_the_status_stays_and_renewed_when_it_flips() {
        let mut facts = Facts {
            services: [("s".to_string(), svc(vec![], 1, None))].into(),
            paused: false,
        };
        let first = compute(&facts, None, "T0");
        // Same statuses, another reason detail: the times stay.
        let second = compute(&facts, Some(&first), "T1");
        assert!(
            second.services["s"]
                .conditions
                .iter()
                .all(|c| c.last_transition_time == "T0")
        );
        facts.services.get_mut("s").unwrap().containers = vec![c(true, Health::Healthy)];
        facts.services.get_mut("s").unwrap().pending = 0;
        let third = compute(&facts, Some(&second), "T2");
        let s = &third.services["s"];
        assert_eq!(s.condition("Ready").unwrap().last_transition_time, "T2");
        assert_eq!(
            s.condition("Progressing").unwrap().last_transition_time,
            "T2"
        );
        assert_eq!(s.condition("Degraded").unwrap().last_transition_time, "T0");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn health() -> impl Strategy<Value = Health> {
            prop_oneof![
                Just(Health::None),
                Just(Health::Starting),
                Just(Health::Healthy),
                Just(Health::Unhealthy)
            ]
        }

        fn service() -> impl Strategy<Value = ServiceFacts> {
            (
                0u32..4,
                proptest::collection::vec((any::<bool>(), health()), 0..5),
                0usize..3,
                proptest::option::of("[a-z ]{0,12}"),
            )
                .prop_map(|(replicas, cs, pending, degraded)| ServiceFacts {
                    replicas,
                    containers: cs
                        .into_iter()
                        .map(|(running, health)| ContainerFacts {
                            running,
                            health,
                            exit_code: 0,
                            completed: !running,
                        })
                        .collect(),
                    pending,
                    degraded,
                })
        }

        proptest! {
            #[test]
            fn every_service_gets_three_conditions_and_same_facts_keep_their_times(
                services in proptest::collection::btree_map("[a-z]{1,6}", service(), 0..5),
                paused in any::<bool>(),
            ) {
                let facts = Facts { services, paused };
                let first = compute(&facts, None, "T0");
                prop_assert_eq!(first.services.len(), facts.services.len());
                for (name, st) in &first.services {
                    let kinds: Vec<&str> = st.conditions.iter().map(|c| c.kind.as_str()).collect();
                    prop_assert_eq!(kinds, vec!["Ready", "Progressing", "Degraded"]);
                    let f = &facts.services[name];
                    let running = f.containers.iter().filter(|c| c.running).count();
                    let finished = f.containers.iter().filter(|c| !c.running && c.completed).count();
                    let one_shot_done = running == 0 && f.replicas > 0 && finished >= f.replicas as usize;
                    let ready = one_shot_done
                        || (running >= f.replicas as usize
                            && f.containers.iter().filter(|c| c.running).all(|c| {
                                c.health != Health::Unhealthy && c.health != Health::Starting
                            }));
                    prop_assert_eq!(st.condition("Ready").unwrap().is_true(), ready);
                    prop_assert_eq!(st.condition("Degraded").unwrap().is_true(), f.degraded.is_some());
                    if paused && f.pending > 0 {
                        prop_assert!(!st.condition("Progressing").unwrap().is_true());
                    }
                }
                let again = compute(&facts, Some(&first), "T1");
                prop_assert_eq!(again, first);
            }
        }
    }
}
