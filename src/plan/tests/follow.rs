//! Table tests of the recovery rule in the planner: which dependents follow a moved dependency, with which cause.

use super::*;
use crate::observe::seen::{LastSeen, SeenContainer, Slot};

const NET: &str = "p_default";

/// The erp host converged, every container with an address on the default network (backend: .3).
fn host(d: &DesiredState) -> Snapshot {
    let mut o = converged(d);
    let order = ["db", "backend", "worker", "frontend", "gateway"];
    for c in &mut o.containers {
        let i = order.iter().position(|s| *s == c.service).unwrap_or(9);
        c.addresses = BTreeMap::from([(NET.to_string(), format!("172.18.0.{}", i + 2))]);
    }
    o
}

fn backend_mut(o: &mut Snapshot) -> &mut ObservedContainer {
    o.containers
        .iter_mut()
        .find(|c| c.service == "backend")
        .expect("the host has a backend")
}

fn with_memory(d: &DesiredState, o: &Snapshot, seen: &LastSeen) -> Plan {
    plan(
        d,
        o,
        &PlanOptions {
            last_seen: seen.clone(),
            ..PlanOptions::default()
        },
    )
}

/// `(verb service, causes)` of every action that follows something.
fn follows(p: &Plan) -> Vec<(String, Vec<FollowCause>)> {
    p.actions
        .iter()
        .filter(|a| !a.follows.is_empty())
        .map(|a| {
            (
                format!("{} {}", a.kind.verb(), a.kind.service().unwrap_or("-")),
                a.follows.iter().map(|f| f.cause.clone()).collect(),
            )
        })
        .collect()
}

fn replaced(old: &str, new: &str) -> FollowCause {
    FollowCause::ReplacedOutOfBand {
        old_id: old.into(),
        new_id: new.into(),
    }
}

/// A change to the observed backend, and the follows the planner must decide for it.
struct Case {
    what: &'static str,
    change: fn(&mut ObservedContainer),
    /// Expected `(verb service)` of the follows of frontend and gateway (empty: nothing follows).
    followers: &'static [&'static str],
    cause: Option<fn() -> FollowCause>,
    /// Expected actions on backend itself.
    backend: &'static [&'static str],
}

#[test]
fn a_dependency_that_changed_since_it_was_last_seen_makes_its_restart_dependents_follow() {
    let cases = [
        Case {
            what: "nothing changed",
            change: |_| {},
            followers: &[],
            cause: None,
            backend: &[],
        },
        Case {
            what: "replaced out of band (another id)",
            change: |c| c.id = "id-backend-new".into(),
            followers: &["recreate frontend", "recreate gateway"],
            cause: Some(|| replaced("id-backend-1", "id-backend-new")),
            backend: &[],
        },
        Case {
            what: "replaced by an earlier spindle recreate whose follows did not finish",
            change: |c| {
                c.id = "id-backend-new".into();
                c.labels
                    .insert(labels::REPLACES.into(), "id-backend-1".into());
            },
            followers: &["recreate frontend", "recreate gateway"],
            cause: Some(|| FollowCause::ReplacedEarlier {
                old_id: "id-backend-1".into(),
                new_id: "id-backend-new".into(),
            }),
            backend: &[],
        },
        Case {
            what: "the same container with another address",
            change: |c| {
                c.addresses.insert(NET.into(), "172.18.0.99".into());
            },
            followers: &["recreate frontend", "recreate gateway"],
            cause: Some(|| FollowCause::AddressChanged {
                network: NET.into(),
                old: "172.18.0.3".into(),
                new: "172.18.0.99".into(),
            }),
            backend: &[],
        },
        Case {
            what: "stopped (no address): a stop is not a move, the start is planned",
            change: |c| {
                c.state = RunState::Exited;
                c.addresses.clear();
            },
            followers: &[],
            cause: None,
            backend: &["start backend"],
        },
        Case {
            what: "an address on a network it was not seen on",
            change: |c| {
                c.addresses.insert("p_other".into(), "10.0.0.2".into());
            },
            followers: &[],
            cause: None,
            backend: &[],
        },
    ];
    let d = erp();
    let seen = LastSeen::of(&host(&d));
    assert_eq!(
        seen.get(&Slot::new("backend", 1)).map(|s| s.id.as_str()),
        Some("id-backend-1")
    );
    for case in cases {
        let mut o = host(&d);
        (case.change)(backend_mut(&mut o));
        let p = with_memory(&d, &o, &seen);
        let got = follows(&p);
        let verbs: Vec<&str> = got.iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(verbs, case.followers, "{}: {:?}", case.what, kinds(&p));
        for (_, causes) in &got {
            assert_eq!(
                causes,
                &vec![(case.cause.expect("a cause"))()],
                "{}",
                case.what
            );
        }
        let on_backend: Vec<String> = kinds(&p)
            .into_iter()
            .filter(|k| k.ends_with(" backend"))
            .collect();
        assert_eq!(on_backend, case.backend, "{}", case.what);
        // db and worker (no `restart: true` on backend) never follow.
        assert!(
            !kinds(&p)
                .iter()
                .any(|k| k.ends_with(" db") || k.ends_with(" worker")),
            "{}: {:?}",
            case.what,
            kinds(&p)
        );
    }
}

#[test]
fn with_nothing_seen_yet_nothing_follows() {
    let d = erp();
    let mut o = host(&d);
    backend_mut(&mut o).id = "id-backend-new".into();
    for seen in [
        LastSeen::default(),
        // Something seen, but not this slot.
        LastSeen {
            slots: BTreeMap::from([(
                Slot::new("db", 1),
                SeenContainer {
                    id: "id-db-1".into(),
                    addresses: BTreeMap::new(),
                },
            )]),
        },
    ] {
        let p = with_memory(&d, &o, &seen);
        assert!(p.is_empty(), "{:?}", kinds(&p));
    }
}

#[test]
fn each_follow_reason_names_the_dependency_container_and_the_cause() {
    let d = erp();
    let seen = LastSeen::of(&host(&d));
    let reason_of = |o: &Snapshot| {
        with_memory(&d, o, &seen)
            .actions
            .iter()
            .find(|a| a.kind.service() == Some("frontend"))
            .map(|a| a.reason.clone())
            .unwrap_or_default()
    };
    let mut o = host(&d);
    backend_mut(&mut o).id = "0123456789abcdef0123".into();
    let mut seen_long = seen.clone();
    if let Some(s) = seen_long.slots.get_mut(&Slot::new("backend", 1)) {
        s.id = "fedcba9876543210fedc".into();
    }
    let long = with_memory(&d, &o, &seen_long);
    let frontend = long
        .actions
        .iter()
        .find(|a| a.kind.service() == Some("frontend"))
        .map(|a| a.reason.clone())
        .unwrap_or_default();
    assert_eq!(
        frontend,
        "dependency backend-1 was replaced out of band (id fedcba987654 → 0123456789ab) (depends_on restart: true)"
    );
    let mut o = host(&d);
    backend_mut(&mut o)
        .addresses
        .insert(NET.into(), "172.18.0.42".into());
    assert_eq!(
        reason_of(&o),
        "dependency backend-1 changed address 172.18.0.3 → 172.18.0.42 on network p_default (depends_on restart: true)"
    );
    // The plan's own recreate and self-heal's re-create.
    let mut changed = erp();
    if let Some(b) = changed.services.get_mut("backend") {
        b.spec_hash = "hash-backend-2".into();
    }
    let p = with_memory(&changed, &host(&d), &seen);
    let f = p
        .actions
        .iter()
        .find(|a| a.kind.service() == Some("frontend"))
        .cloned();
    assert_eq!(
        f.as_ref().map(|a| a.reason.as_str()),
        Some("dependency backend-1 is recreated by this plan (depends_on restart: true)")
    );
    assert_eq!(
        f.map(|a| a.follows),
        Some(vec![Follow {
            dependency: "backend".into(),
            container: "backend-1".into(),
            cause: FollowCause::RecreatedByPlan,
        }])
    );
    let mut o = host(&d);
    o.containers.retain(|c| c.service != "backend");
    let p = with_memory(&d, &o, &seen);
    assert_eq!(
        follows(&p),
        vec![
            (
                "recreate frontend".to_string(),
                vec![FollowCause::RecreatedBySelfHeal]
            ),
            (
                "recreate gateway".to_string(),
                vec![FollowCause::RecreatedBySelfHeal]
            ),
        ]
    );
    let reason = p
        .actions
        .iter()
        .find(|a| a.kind.service() == Some("frontend"))
        .map(|a| a.reason.clone());
    assert_eq!(
        reason.as_deref(),
        Some(
            "dependency backend-1 is re-created by self-heal (its container was missing) (depends_on restart: true)"
        )
    );
}

#[test]
fn a_follower_that_asks_for_restart_is_restarted_and_waits_for_the_dependency_s_actions() {
    let mut d = erp();
    if let Some(f) = d.services.get_mut("frontend") {
        f.on_dependency_change = Some(DependentAction::Restart);
    }
    let seen = LastSeen::of(&host(&d));
    let mut o = host(&d);
    backend_mut(&mut o).id = "id-backend-new".into();
    let p = with_memory(&d, &o, &seen);
    assert_eq!(
        follows(&p),
        vec![
            (
                "restart frontend".to_string(),
                vec![replaced("id-backend-1", "id-backend-new")]
            ),
            (
                "recreate gateway".to_string(),
                vec![replaced("id-backend-1", "id-backend-new")]
            ),
        ]
    );
    // When backend has actions (here: a stop that is started again and another id), its
    // followers wait for them, so they start behind a ready backend.
    let mut o = host(&d);
    let b = backend_mut(&mut o);
    b.id = "id-backend-new".into();
    b.state = RunState::Exited;
    let p = with_memory(&d, &o, &seen);
    let start = p
        .actions
        .iter()
        .find(|a| a.kind.verb() == "start")
        .map(|a| a.id);
    assert!(start.is_some(), "{:?}", kinds(&p));
    for a in p.actions.iter().filter(|a| !a.follows.is_empty()) {
        assert!(
            start.is_some_and(|s| a.after.contains(&s)),
            "{} waits for the start of backend: {:?}",
            a.reason,
            a.after
        );
    }
}

#[test]
fn a_follower_recreated_for_another_reason_still_carries_its_follow() {
    let mut d = erp();
    let seen = LastSeen::of(&host(&d));
    let mut o = host(&d);
    backend_mut(&mut o).id = "id-backend-new".into();
    if let Some(f) = d.services.get_mut("frontend") {
        f.spec_hash = "hash-frontend-2".into();
    }
    let p = with_memory(&d, &o, &seen);
    let f = p
        .actions
        .iter()
        .find(|a| a.kind.service() == Some("frontend"))
        .cloned()
        .expect("frontend is recreated");
    assert!(f.reason.starts_with("spec changed"), "{}", f.reason);
    assert_eq!(f.follows.len(), 1, "{:?}", f.follows);
}

#[test]
fn a_slot_with_two_containers_or_a_replacement_in_flight_is_not_judged() {
    let d = erp();
    let seen = LastSeen::of(&host(&d));
    let mut o = host(&d);
    let mut twin = backend_mut(&mut o).clone();
    twin.id = "id-backend-twin".into();
    twin.name = "p-backend-1-next".into();
    twin.labels
        .insert(labels::REPLACES.into(), "id-backend-1".into());
    o.containers.push(twin);
    assert!(
        !LastSeen::of(&o)
            .slots
            .contains_key(&Slot::new("backend", 1))
    );
    let p = with_memory(&d, &o, &seen);
    // The interrupted recreate is finished, and that is what frontend and gateway follow.
    assert_eq!(
        follows(&p)
            .into_iter()
            .flat_map(|(_, c)| c)
            .collect::<Vec<_>>(),
        vec![FollowCause::RecreatedByPlan, FollowCause::RecreatedByPlan],
        "{:?}",
        kinds(&p)
    );
}

#[test]
fn follows_are_serialized_with_their_cause_for_the_evidence() {
    let f = Follow {
        dependency: "backend".into(),
        container: "backend-1".into(),
        cause: FollowCause::AddressChanged {
            network: NET.into(),
            old: "172.18.0.3".into(),
            new: "172.18.0.9".into(),
        },
    };
    assert_eq!(
        serde_json::to_value(&f).ok(),
        Some(json!({
            "dependency": "backend", "container": "backend-1", "cause": "address_changed",
            "network": NET, "old": "172.18.0.3", "new": "172.18.0.9"
        }))
    );
}

proptest! {
    /// With a memory of the host as it is, nothing follows, whatever the order of containers.
    #[test]
    fn a_memory_of_the_host_as_it_is_plans_nothing(seed in any::<u64>()) {
        let d = erp();
        let mut o = host(&d);
        let seen = LastSeen::of(&o);
        let n = o.containers.len();
        o.containers.rotate_left((seed as usize) % n);
        prop_assert!(with_memory(&d, &o, &seen).is_empty());
    }
}

#[test]
fn x_spindle_on_dependency_change_makes_a_service_follow_a_dependency_declared_without_restart_true()
 {
    let mut d = erp();
    if let Some(w) = d.services.get_mut("worker") {
        assert!(w.depends_on.iter().all(|dep| !dep.restart));
        w.on_dependency_change = Some(DependentAction::Restart);
    }
    let seen = LastSeen::of(&host(&d));
    let mut o = host(&d);
    backend_mut(&mut o).id = "id-backend-new".into();
    let p = with_memory(&d, &o, &seen);
    let worker: Vec<(String, Vec<FollowCause>)> = follows(&p)
        .into_iter()
        .filter(|(what, _)| what.ends_with("worker"))
        .collect();
    assert_eq!(
        worker,
        vec![(
            "restart worker".to_string(),
            vec![replaced("id-backend-1", "id-backend-new")]
        )]
    );
    let reason = p
        .actions
        .iter()
        .find(|a| a.kind.service() == Some("worker"))
        .map(|a| a.reason.clone())
        .unwrap_or_default();
    assert!(
        reason.ends_with("(x-spindle.on-dependency-change)"),
        "{reason}"
    );
}
