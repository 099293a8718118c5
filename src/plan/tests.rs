//! Table and property tests of the planner.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::desired::typed::{Condition, Dependency, DesiredNetwork, DesiredVolume, PullPolicy};
use crate::observe::snapshot::{Health, ObservedNetwork, ObservedVolume};

fn svc(name: &str, deps: &[(&str, bool)]) -> DesiredService {
    DesiredService {
        name: name.into(),
        image: format!("img/{name}:1"),
        spec_hash: format!("hash-{name}"),
        replicas: 1,
        depends_on: deps
            .iter()
            .map(|(d, restart)| Dependency {
                service: d.to_string(),
                condition: Condition::ServiceHealthy,
                restart: *restart,
                required: true,
            })
            .collect(),
        has_healthcheck: true,
        pull_policy: PullPolicy::Missing,
        container_name: None,
        on_dependency_change: None,
        pre_recreate: None,
        update: Default::default(),
        probes: Vec::new(),
        model: json!({"image": format!("img/{name}:1"), "environment": {"A": "1"}, "networks": {"default": null}}),
    }
}

/// db ← backend ← {frontend, gateway (restart: true)}, worker depends on backend without restart.
fn erp() -> DesiredState {
    let services = [
        svc("db", &[]),
        svc("backend", &[("db", false)]),
        svc("worker", &[("backend", false)]),
        svc("frontend", &[("backend", true)]),
        svc("gateway", &[("backend", true), ("frontend", false)]),
    ];
    DesiredState {
        project: "p".into(),
        working_dir: PathBuf::from("/srv/p"),
        config_files: vec![PathBuf::from("/srv/p/compose.yaml")],
        environment_files: Vec::new(),
        revision: None,
        services: services.into_iter().map(|s| (s.name.clone(), s)).collect(),
        networks: BTreeMap::from([(
            "default".to_string(),
            DesiredNetwork {
                key: "default".into(),
                name: "p_default".into(),
                external: false,
                model: json!({"name": "p_default"}),
            },
        )]),
        volumes: BTreeMap::from([(
            "data".to_string(),
            DesiredVolume {
                key: "data".into(),
                name: "p_data".into(),
                external: false,
                model: json!({"name": "p_data"}),
            },
        )]),
        model: Tree::Null,
    }
}

fn container(d: &DesiredState, s: &DesiredService, number: u32) -> ObservedContainer {
    let mut labels = BTreeMap::new();
    labels.insert(labels::PROJECT.to_string(), d.project.clone());
    labels.insert(labels::SERVICE.to_string(), s.name.clone());
    labels.insert(labels::SPEC_HASH.to_string(), s.spec_hash.clone());
    labels.insert(
        labels::SPEC.to_string(),
        spec_document(s, &Redactor::default()),
    );
    ObservedContainer {
        id: format!("id-{}-{number}", s.name),
        name: format!("{}-{}-{number}", d.project, s.name),
        service: s.name.clone(),
        number,
        labels,
        state: RunState::Running,
        health: Health::Healthy,
        exit_code: 0,
        image_id: format!("sha256:{}", s.name),
        started_at: None,
        finished_at: None,
        live: spec::live_config(s).unwrap_or_default(),
        addresses: BTreeMap::new(),
        inspect: Tree::Null,
    }
}

/// The snapshot of a host that already matches `d`.
fn converged(d: &DesiredState) -> Snapshot {
    Snapshot {
        project: d.project.clone(),
        containers: d
            .services
            .values()
            .flat_map(|s| (1..=s.replicas).map(move |n| (s, n)))
            .map(|(s, n)| container(d, s, n))
            .collect(),
        networks: d
            .networks
            .values()
            .map(|n| {
                (
                    n.name.clone(),
                    ObservedNetwork {
                        id: format!("net-{}", n.name),
                        name: n.name.clone(),
                        driver: "bridge".into(),
                        labels: BTreeMap::new(),
                        config_hash: None,
                    },
                )
            })
            .collect(),
        volumes: d
            .volumes
            .values()
            .map(|v| {
                (
                    v.name.clone(),
                    ObservedVolume {
                        name: v.name.clone(),
                        driver: "local".into(),
                        labels: BTreeMap::new(),
                    },
                )
            })
            .collect(),
        images: d
            .services
            .values()
            .map(|s| (s.image.clone(), format!("sha256:{}", s.name)))
            .collect(),
        external_networks: Vec::new(),
        external_volumes: Vec::new(),
    }
}

fn kinds(p: &Plan) -> Vec<String> {
    p.actions
        .iter()
        .map(|a| format!("{} {}", a.kind.verb(), a.kind.service().unwrap_or("-")))
        .collect()
}

fn run(d: &DesiredState, o: &Snapshot) -> Plan {
    plan(d, o, &PlanOptions::default())
}

#[test]
fn a_converged_host_gets_an_empty_plan() {
    let d = erp();
    let p = run(&d, &converged(&d));
    assert!(p.is_empty(), "{:?}", kinds(&p));
    assert_eq!(p.in_sync.len(), 5);
}

#[test]
fn an_empty_host_gets_networks_volumes_images_and_containers_in_dependency_order() {
    let d = erp();
    let o = Snapshot {
        project: "p".into(),
        ..Snapshot::default()
    };
    let p = run(&d, &o);
    let k = kinds(&p);
    assert_eq!(k[0], "create-network -");
    assert_eq!(k[1], "create-volume -");
    let pos = |s: &str| k.iter().position(|x| x == s).unwrap();
    assert!(pos("create db") < pos("create backend"));
    assert!(pos("create backend") < pos("create frontend"));
    assert!(pos("create frontend") < pos("create gateway"));
    // Every create waits for the network and volume, and for its dependencies' actions.
    let gw = &p.actions[pos("create gateway")];
    assert!(gw.after.contains(&0) && gw.after.contains(&1));
    assert!(gw.after.contains(&pos("create backend")));
    assert!(gw.after.contains(&pos("create frontend")));
}

#[test]
fn a_changed_backend_recreates_it_and_then_its_restart_dependents_only() {
    let d = erp();
    let mut o = converged(&d);
    let mut changed = erp();
    if let Some(b) = changed.services.get_mut("backend") {
        b.spec_hash = "hash-backend-2".into();
        b.model = json!({"image": "img/backend:1", "environment": {"A": "2"}, "networks": {"default": null}});
    }
    o.images = converged(&d).images;
    let p = run(&changed, &o);
    let k = kinds(&p);
    assert_eq!(
        k,
        vec!["recreate backend", "recreate frontend", "recreate gateway"],
        "{k:?}"
    );
    let backend = &p.actions[0];
    assert_eq!(backend.reason, "spec changed: environment");
    let diff = backend.diff.as_deref().unwrap_or_default();
    assert!(
        diff.contains("-    \"A\": \"1\"") && diff.contains("+    \"A\": \"2\""),
        "{diff}"
    );
    assert!(
        p.actions[1].after.contains(&0),
        "frontend waits for backend"
    );
    assert!(p.actions[1].reason.contains("dependency backend"));
    assert!(p.in_sync.contains(&"worker".to_string()));
    assert!(p.in_sync.contains(&"db".to_string()));
}

#[test]
fn a_dependent_that_asks_for_restart_is_restarted_not_recreated() {
    let mut d = erp();
    if let Some(f) = d.services.get_mut("frontend") {
        f.on_dependency_change = Some(DependentAction::Restart);
    }
    let o = converged(&d);
    if let Some(b) = d.services.get_mut("backend") {
        b.spec_hash = "changed".into();
    }
    let k = kinds(&run(&d, &o));
    assert!(k.contains(&"restart frontend".to_string()), "{k:?}");
    assert!(!k.contains(&"recreate frontend".to_string()), "{k:?}");
}

#[test]
fn a_removed_container_is_created_and_a_stopped_one_started() {
    let d = erp();
    let mut o = converged(&d);
    o.containers.retain(|c| c.service != "db");
    if let Some(w) = o.containers.iter_mut().find(|c| c.service == "worker") {
        w.state = RunState::Exited;
        w.exit_code = 137;
    }
    let p = run(&d, &o);
    let k = kinds(&p);
    assert!(k.contains(&"create db".to_string()), "{k:?}");
    assert!(k.contains(&"start worker".to_string()), "{k:?}");
    let start = p.actions.iter().find(|a| a.kind.verb() == "start").unwrap();
    assert_eq!(start.reason, "container is exited with code 137");
}

#[test]
fn a_one_shot_container_that_exited_cleanly_is_left_alone_but_a_stopped_service_is_started() {
    let mut d = erp();
    // db waits for worker to complete: worker is a one-shot.
    if let Some(db) = d.services.get_mut("db") {
        db.depends_on.push(Dependency {
            service: "worker".into(),
            condition: Condition::ServiceCompletedSuccessfully,
            restart: false,
            required: true,
        });
    }
    let mut o = converged(&d);
    for c in o
        .containers
        .iter_mut()
        .filter(|c| c.service == "worker" || c.service == "frontend")
    {
        c.state = RunState::Exited;
        c.exit_code = 0;
    }
    let k = kinds(&run(&d, &o));
    assert_eq!(k, vec!["start frontend"], "{k:?}");
}

#[test]
fn a_live_setting_change_is_an_update_in_place() {
    let mut d = erp();
    if let Some(w) = d.services.get_mut("worker") {
        w.model = json!({"image": "img/worker:1", "cpus": 0.5});
    }
    let mut o = converged(&d);
    if let Some(w) = o.containers.iter_mut().find(|c| c.service == "worker") {
        w.live.nano_cpus = 250_000_000;
    }
    let p = run(&d, &o);
    assert_eq!(kinds(&p), vec!["update worker"]);
    assert!(
        p.actions[0]
            .reason
            .contains("nano_cpus 250000000 → 500000000"),
        "{}",
        p.actions[0].reason
    );
}

#[test]
fn removing_a_limit_docker_cannot_remove_in_place_recreates() {
    let d = erp();
    let mut o = converged(&d);
    if let Some(w) = o.containers.iter_mut().find(|c| c.service == "worker") {
        w.live.nano_cpus = 123;
    }
    let p = run(&d, &o);
    assert_eq!(kinds(&p), vec!["recreate worker"]);
    assert!(p.actions[0].reason.contains("cannot be changed in place"));
}

#[test]
fn a_new_image_id_for_the_same_reference_recreates() {
    let d = erp();
    let mut o = converged(&d);
    o.images.insert("img/db:1".into(), "sha256:new".into());
    let k = kinds(&run(&d, &o));
    assert!(k.contains(&"recreate db".to_string()), "{k:?}");
}

#[test]
fn orphans_are_reported_and_removed_only_when_asked() {
    let d = erp();
    let mut o = converged(&d);
    let mut orphan = container(&d, &svc("old", &[]), 1);
    orphan.service = "old".into();
    o.containers.push(orphan);
    let p = run(&d, &o);
    assert!(p.is_empty());
    assert_eq!(p.orphans.len(), 1);
    let p = plan(
        &d,
        &o,
        &PlanOptions {
            remove_orphans: true,
            ..PlanOptions::default()
        },
    );
    assert_eq!(kinds(&p), vec!["remove old"]);
}

#[test]
fn scaling_down_removes_the_highest_numbers_and_scaling_up_creates() {
    let mut d = erp();
    if let Some(w) = d.services.get_mut("worker") {
        w.replicas = 3;
    }
    let mut o = converged(&d);
    if let Some(w) = d.services.get_mut("worker") {
        w.replicas = 1;
    }
    let p = run(&d, &o);
    let removed: Vec<u32> = p
        .actions
        .iter()
        .filter_map(|a| match &a.kind {
            ActionKind::Remove { container } => Some(container.number),
            _ => None,
        })
        .collect();
    assert_eq!(removed, vec![3, 2]);
    if let Some(w) = d.services.get_mut("worker") {
        w.replicas = 4;
    }
    o.containers
        .retain(|c| !(c.service == "worker" && c.number > 1));
    let k = kinds(&run(&d, &o));
    assert_eq!(
        k.iter().filter(|x| *x == "create worker").count(),
        3,
        "{k:?}"
    );
}

#[test]
fn a_container_without_a_usable_number_label_is_left_alone_with_a_warning() {
    // (the number label, the warning's words)
    let cases: [(Option<&str>, &str); 5] = [
        (None, "has no com.docker.compose.container-number label"),
        (
            Some("x"),
            "has an invalid com.docker.compose.container-number label \"x\"",
        ),
        (
            Some(""),
            "invalid com.docker.compose.container-number label \"\"",
        ),
        (
            Some("0"),
            "invalid com.docker.compose.container-number label \"0\"",
        ),
        (
            Some("-1"),
            "invalid com.docker.compose.container-number label \"-1\"",
        ),
    ];
    for (label, words) in cases {
        let d = erp();
        let mut o = converged(&d);
        let worker = &d.services["worker"];
        let mut stray = container(&d, worker, 0);
        stray.id = "id-stray".into();
        stray.name = "stray-worker".into();
        match label {
            Some(v) => stray
                .labels
                .insert(labels::CONTAINER_NUMBER.into(), v.into()),
            None => stray.labels.remove(labels::CONTAINER_NUMBER),
        };
        o.containers.push(stray);
        let p = run(&d, &o);
        assert!(p.is_empty(), "{label:?}: {:?}", kinds(&p));
        assert_eq!(p.warnings.len(), 1, "{label:?}: {:?}", p.warnings);
        let w = &p.warnings[0];
        assert!(
            w.starts_with("container stray-worker of service worker "),
            "{w}"
        );
        assert!(w.contains(words), "{label:?}: {w}");
        assert!(w.contains("spindle leaves it alone"), "{w}");
        // Scaled to 0, the numbered replica goes; the unnumbered one still stays.
        let mut d0 = d.clone();
        if let Some(w) = d0.services.get_mut("worker") {
            w.replicas = 0;
        }
        let removed: Vec<String> = run(&d0, &o)
            .actions
            .iter()
            .filter_map(|a| match &a.kind {
                ActionKind::Remove { container } => Some(container.name.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(removed, vec!["p-worker-1".to_string()], "{label:?}");
    }
}

#[test]
fn an_unnumbered_container_holding_a_slots_name_keeps_that_slot_from_being_created() {
    let d = erp();
    let mut o = converged(&d);
    let c = o
        .containers
        .iter_mut()
        .find(|c| c.service == "worker")
        .expect("worker");
    c.number = 0;
    c.labels.remove(labels::CONTAINER_NUMBER);
    let p = run(&d, &o);
    assert!(
        !kinds(&p).iter().any(|k| k.contains("worker")),
        "{:?}",
        kinds(&p)
    );
    assert_eq!(
        p.warnings.len(),
        2,
        "the container is left alone, and slot 1 is not created: {:?}",
        p.warnings
    );
    assert_eq!(
        p.warnings[1],
        "worker #1 is not created: container p-worker-1 holds its name"
    );
    assert!(!p.in_sync.contains(&"worker".to_string()));
}

#[test]
fn an_interrupted_recreate_is_resumed_and_nothing_else_touches_that_slot() {
    let d = erp();
    let mut o = converged(&d);
    let old = o
        .containers
        .iter()
        .find(|c| c.service == "db")
        .cloned()
        .unwrap();
    let mut new = old.clone();
    new.id = "id-db-new".into();
    new.name = "p-db-1-next".into();
    new.labels.insert(labels::REPLACES.into(), old.id.clone());
    o.containers.push(new);
    let p = run(&d, &o);
    let k = kinds(&p);
    assert_eq!(k[0], "resume-recreate db", "{k:?}");
    assert!(
        !k.iter().any(|x| x == "create db" || x == "remove db"),
        "{k:?}"
    );
}

#[test]
fn duplicates_of_one_slot_are_removed_keeping_the_running_one() {
    let d = erp();
    let mut o = converged(&d);
    let mut dup = o
        .containers
        .iter()
        .find(|c| c.service == "db")
        .cloned()
        .unwrap();
    dup.id = "id-db-dup".into();
    dup.state = RunState::Exited;
    o.containers.push(dup);
    let p = run(&d, &o);
    assert_eq!(kinds(&p), vec!["remove db"]);
    match &p.actions[0].kind {
        ActionKind::Remove { container } => assert_eq!(container.id, "id-db-dup"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_missing_external_network_blocks_the_plan() {
    let mut d = erp();
    d.networks.insert(
        "edge".into(),
        DesiredNetwork {
            key: "edge".into(),
            name: "shared-edge".into(),
            external: true,
            model: json!({"external": true}),
        },
    );
    let p = run(&d, &converged(&d));
    assert_eq!(p.blockers.len(), 1);
    assert!(p.blockers[0].contains("shared-edge"));
}

#[test]
fn secrets_never_appear_in_diffs() {
    let d = erp();
    let o = converged(&d);
    let mut changed = erp();
    if let Some(b) = changed.services.get_mut("backend") {
        b.spec_hash = "x".into();
        b.model = json!({"image": "img/backend:1", "environment": {"A": "1", "DB_PASSWORD": "s3cr3t-value"}});
    }
    let opts = PlanOptions {
        redactor: Redactor::new(["s3cr3t-value".to_string()]),
        ..PlanOptions::default()
    };
    let text = serde_json::to_string(&plan(&changed, &o, &opts)).unwrap();
    assert!(!text.contains("s3cr3t-value"), "{text}");
    assert!(text.contains("<redacted>"));
}

/// A random host state derived from the desired one: containers dropped, stopped, changed, duplicated.
fn perturbed() -> impl Strategy<Value = (DesiredState, Snapshot)> {
    let ops = proptest::collection::vec((0usize..5, 0u8..6), 0..8);
    (ops, any::<bool>()).prop_map(|(ops, orphan)| {
        let d = erp();
        let mut o = converged(&d);
        for (i, op) in ops {
            let n = o.containers.len();
            if n == 0 {
                break;
            }
            let idx = i % n;
            match op {
                0 => {
                    o.containers.remove(idx);
                }
                1 => o.containers[idx].state = RunState::Exited,
                2 => {
                    o.containers[idx]
                        .labels
                        .insert(labels::SPEC_HASH.into(), "stale".into());
                }
                3 => {
                    let mut dup = o.containers[idx].clone();
                    dup.id.push_str("-dup");
                    o.containers.push(dup);
                }
                4 => o.containers[idx].live.memory = 1 << 20,
                _ => {
                    let mut next = o.containers[idx].clone();
                    next.labels
                        .insert(labels::REPLACES.into(), o.containers[idx].id.clone());
                    next.id.push_str("-next");
                    o.containers.push(next);
                }
            }
        }
        if orphan {
            let mut c = container(&d, &svc("gone", &[]), 1);
            c.service = "gone".into();
            o.containers.push(c);
        }
        (d, o)
    })
}

proptest! {
    #[test]
    fn the_plan_is_deterministic((d, o) in perturbed()) {
        let a = serde_json::to_string(&run(&d, &o)).unwrap();
        let b = serde_json::to_string(&run(&d, &o)).unwrap();
        prop_assert_eq!(a, b);
    }

    #[test]
    fn actions_only_wait_for_earlier_actions((d, o) in perturbed()) {
        let p = run(&d, &o);
        for a in &p.actions {
            prop_assert!(a.after.iter().all(|x| *x < a.id), "{:?}", a);
        }
    }

    #[test]
    fn every_slot_ends_with_one_container_and_orphans_stay_unless_asked((d, o) in perturbed()) {
        let p = run(&d, &o);
        for s in d.services.values() {
            for n in 1..=s.replicas {
                let kept = o.containers.iter().filter(|c| c.service == s.name && c.number == n).count();
                let fixes = p.actions.iter().filter(|a| matches!(&a.kind,
                    ActionKind::Create { service, number } | ActionKind::Recreate { service, number, .. }
                    | ActionKind::ResumeRecreate { service, number, .. } if *service == s.name && *number == n)).count();
                prop_assert!(kept > 0 || fixes == 1, "{} #{} has no container and no create", s.name, n);
                prop_assert!(fixes <= 1);
            }
        }
        let removes_orphan = p.actions.iter().any(|a| matches!(&a.kind, ActionKind::Remove { container } if container.service == "gone"));
        prop_assert!(!removes_orphan);
    }

    #[test]
    fn a_converged_host_stays_untouched_whatever_the_order_of_containers(seed in any::<u64>()) {
        let d = erp();
        let mut o = converged(&d);
        let n = o.containers.len();
        o.containers.rotate_left((seed as usize) % n);
        prop_assert!(run(&d, &o).is_empty());
    }
}

#[test]
fn a_finished_replacement_is_an_ordinary_container() {
    let d = erp();
    let mut o = converged(&d);
    if let Some(db) = o.containers.iter_mut().find(|c| c.service == "db") {
        db.labels
            .insert(labels::REPLACES.into(), "long-gone".into());
    }
    assert!(run(&d, &o).is_empty());
}

#[test]
fn a_network_whose_configuration_changed_is_recreated_and_its_services_follow() {
    let d = erp();
    let mut o = converged(&d);
    for n in o.networks.values_mut() {
        n.config_hash = Some("an older configuration".into());
    }
    let p = run(&d, &o);
    let k = kinds(&p);
    assert_eq!(k[0], "recreate-network -", "{k:?}");
    assert_eq!(
        k.iter().filter(|x| x.starts_with("recreate ")).count(),
        5,
        "{k:?}"
    );
    assert!(p.actions.iter().skip(1).all(|a| a.after.contains(&0)));
    // A network spindle did not create (no hash) is left alone.
    for n in o.networks.values_mut() {
        n.config_hash = None;
    }
    assert!(run(&d, &o).is_empty());
}

#[test]
fn a_container_renamed_or_disconnected_out_of_band_is_recreated() {
    let d = erp();
    let mut o = converged(&d);
    if let Some(c) = o.containers.iter_mut().find(|c| c.service == "worker") {
        c.name = "someone-renamed-it".into();
    }
    if let Some(c) = o.containers.iter_mut().find(|c| c.service == "db") {
        c.inspect = json!({"NetworkSettings": {"Networks": {"bridge": {}}}});
    }
    let p = run(&d, &o);
    let reasons: Vec<&str> = p.actions.iter().map(|a| a.reason.as_str()).collect();
    assert!(
        reasons.iter().any(|r| r.starts_with("renamed out of band")),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"disconnected out of band from p_default"),
        "{reasons:?}"
    );
}

#[test]
fn removing_actions_renumbers_the_rest_and_their_waits() {
    let d = erp();
    let o = Snapshot {
        project: "p".into(),
        ..Snapshot::default()
    };
    let mut p = run(&d, &o);
    let n = p.actions.len();
    p.remove_actions(&BTreeSet::from([0]));
    assert_eq!(p.actions.len(), n - 1);
    for (i, a) in p.actions.iter().enumerate() {
        assert_eq!(a.id, i);
        assert!(a.after.iter().all(|x| *x < i));
    }
}

#[test]
fn without_starts_drops_only_the_actions_that_start_a_container_and_renumbers_the_waits() {
    let c = |service: &str| ContainerRef {
        id: format!("id-{service}"),
        name: format!("p-{service}-1"),
        service: service.into(),
        number: 1,
    };
    let action = |id: usize, kind: ActionKind, after: Vec<usize>| Action {
        id,
        kind,
        reason: String::new(),
        diff: None,
        after,
        follows: Vec::new(),
    };
    let plan = Plan {
        project: "p".into(),
        actions: vec![
            action(0, ActionKind::Start { container: c("db") }, vec![]),
            action(
                1,
                ActionKind::Create {
                    service: "web".into(),
                    number: 1,
                },
                vec![0],
            ),
            action(
                2,
                ActionKind::Start {
                    container: c("cache"),
                },
                vec![],
            ),
            action(
                3,
                ActionKind::Remove {
                    container: c("old"),
                },
                vec![1, 2],
            ),
            action(
                4,
                ActionKind::Restart {
                    container: c("gateway"),
                },
                vec![3],
            ),
        ],
        ..Plan::default()
    };
    let kept = plan.without_starts();
    let kinds: Vec<&str> = kept.actions.iter().map(|a| a.kind.verb()).collect();
    assert_eq!(kinds, vec!["create", "remove"]);
    assert_eq!(kept.actions[0].after, Vec::<usize>::new());
    assert_eq!(kept.actions[1].id, 1);
    assert_eq!(kept.actions[1].after, vec![0]);
}

mod compose;
mod follow;
mod network_drift;
mod redacted_diff;
