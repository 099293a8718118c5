//! Planner tests of Compose beside spindle: adoption by Compose's config-hash, `--compare-fields`, network hashes, and a recreate Compose has in flight.

use super::*;

/// A container `docker compose up` made from `s`: Compose's labels, no spindle label, and an
/// inspect document that matches nothing spindle would build.
fn compose_made(d: &DesiredState, s: &DesiredService, config_hash: &str) -> ObservedContainer {
    let mut c = container(d, s, 1);
    c.labels.retain(|k, _| !k.starts_with("io.spindle."));
    c.labels
        .insert(labels::CONFIG_HASH.to_string(), config_hash.to_string());
    c.inspect = json!({"Config": {"Labels": {}}, "HostConfig": {}});
    c
}

#[test]
fn a_compose_made_container_whose_config_hash_is_composes_hash_of_the_service_is_adopted_without_a_field_comparison()
 {
    let d = erp();
    let mut o = converged(&d);
    for c in &mut o.containers {
        let s = &d.services[&c.service];
        *c = compose_made(&d, s, &compose_hash::compose_service_hash(s));
    }
    let p = run(&d, &o);
    assert!(p.is_empty(), "{:?}", kinds(&p));

    // Another hash (an older configuration, or one Compose computed from other files) falls
    // back to the field comparison, which this inspect document fails.
    if let Some(c) = o.containers.iter_mut().find(|c| c.service == "worker") {
        c.labels
            .insert(labels::CONFIG_HASH.into(), "an older configuration".into());
    }
    let p = run(&d, &o);
    assert_eq!(kinds(&p), vec!["recreate worker".to_string()], "{p:?}");
    assert!(
        p.actions[0]
            .reason
            .starts_with("not created by spindle and differs in:"),
        "{}",
        p.actions[0].reason
    );
}

#[test]
fn compare_fields_compares_a_compose_made_container_field_by_field_even_when_its_config_hash_matches()
 {
    let d = erp();
    let mut o = converged(&d);
    for c in &mut o.containers {
        let s = &d.services[&c.service];
        *c = compose_made(&d, s, &compose_hash::compose_service_hash(s));
    }
    let opts = PlanOptions {
        compare_fields: true,
        ..PlanOptions::default()
    };
    // Every container carries Compose's hash of its service, but its inspect document matches
    // nothing spindle would build: the field comparison, not the hash, decides.
    let p = plan(&d, &o, &opts);
    assert_eq!(p.actions.len(), o.containers.len(), "{:?}", kinds(&p));
    for a in &p.actions {
        assert_eq!(a.kind.verb(), "recreate", "{:?}", kinds(&p));
        assert!(
            a.reason
                .starts_with("not created by spindle and differs in:"),
            "{}",
            a.reason
        );
    }
    // Containers spindle created are still settled by its own spec hash.
    let p = plan(&d, &converged(&d), &opts);
    assert!(p.is_empty(), "{:?}", kinds(&p));
}

#[test]
fn a_compose_made_container_with_composes_hash_but_a_new_image_id_is_recreated() {
    let d = erp();
    let mut o = converged(&d);
    for c in &mut o.containers {
        let s = &d.services[&c.service];
        *c = compose_made(&d, s, &compose_hash::compose_service_hash(s));
    }
    o.images.insert("img/db:1".into(), "sha256:newer".into());
    let p = run(&d, &o);
    assert!(
        kinds(&p).iter().any(|k| k.starts_with("recreate db")),
        "{:?}",
        kinds(&p)
    );
}

#[test]
fn a_network_carrying_composes_hash_or_the_hash_an_earlier_spindle_wrote_is_kept() {
    let mut d = erp();
    if let Some(n) = d.networks.get_mut("default") {
        n.model = json!({"name": "p_default", "ipam": {}, "labels": {"b": "1", "a": "2"}});
    }
    let mut o = converged(&d);
    let net = &d.networks["default"];
    assert_ne!(
        spec::network_config_hash(net),
        spec::legacy_network_hash(net)
    );
    for n in o.networks.values_mut() {
        n.config_hash = Some(spec::network_config_hash(net));
    }
    assert!(run(&d, &o).is_empty());
    // spindle's old hash counts only on a network spindle made.
    for n in o.networks.values_mut() {
        n.config_hash = Some(spec::legacy_network_hash(net));
    }
    assert_eq!(kinds(&run(&d, &o))[0], "recreate-network -");
    for n in o.networks.values_mut() {
        n.labels.insert(labels::MANAGED_BY.into(), "spindle".into());
    }
    assert!(run(&d, &o).is_empty());
}

#[test]
fn a_slot_compose_is_recreating_is_left_to_compose() {
    let d = erp();
    let mut o = converged(&d);
    let backend = &d.services["backend"];
    // Compose made the replacement `<old id 12>_<name>` and has stopped the old container.
    let mut tmp = compose_made(&d, backend, &compose_hash::compose_service_hash(backend));
    tmp.id = "fedcba9876543210".into();
    tmp.name = "0123456789ab_p-backend-1".into();
    tmp.state = RunState::Created;
    if let Some(old) = o.containers.iter_mut().find(|c| c.service == "backend") {
        old.state = RunState::Exited;
    }
    o.containers.push(tmp.clone());
    let p = run(&d, &o);
    assert!(
        p.actions
            .iter()
            .all(|a| a.kind.service() != Some("backend")),
        "{:?}",
        kinds(&p)
    );
    assert!(!p.in_sync.contains(&"backend".to_string()));
    let marker = vec![InFlight {
        service: "backend".into(),
        number: 1,
        replacement: ContainerRef {
            id: tmp.id.clone(),
            name: tmp.name.clone(),
            service: "backend".into(),
            number: 1,
        },
    }];
    assert_eq!(p.in_flight, marker);
    // Compose has removed the old one; the replacement is not yet renamed.
    o.containers
        .retain(|c| c.service != "backend" || c.id == tmp.id);
    let p = run(&d, &o);
    assert!(
        p.actions
            .iter()
            .all(|a| a.kind.service() != Some("backend")),
        "{:?}",
        kinds(&p)
    );
    assert_eq!(p.in_flight, marker);
    // Renamed: the slot is Compose's no longer, and nothing is in flight.
    for c in o.containers.iter_mut().filter(|c| c.id == tmp.id) {
        c.name = "p-backend-1".into();
        c.state = RunState::Running;
    }
    assert!(run(&d, &o).in_flight.is_empty());
}

#[test]
fn a_host_without_a_recreate_in_flight_plans_none() {
    let d = erp();
    assert!(run(&d, &converged(&d)).in_flight.is_empty());
}

#[test]
fn only_composes_temporary_name_counts_as_a_recreate_in_flight() {
    for (name, in_flight) in [
        ("0123456789ab_p-backend-1", true),
        ("0123456789AB_p-backend-1", true),
        ("0123456789a_p-backend-1", false),
        ("0123456789xy_p-backend-1", false),
        ("0123456789ab-p-backend-1", false),
        ("p-backend-1", false),
        ("0123456789ab_p-backend-10", false),
    ] {
        assert_eq!(
            compose_recreate_in_flight(name, "p-backend-1"),
            in_flight,
            "{name}"
        );
    }
}
