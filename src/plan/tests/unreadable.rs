//! Planner tests of unreadable engine items: what they may concern is held, never planned as if absent.

use super::*;
use crate::engine::Unreadable;

fn container_of(service: Option<&str>) -> Unreadable {
    Unreadable {
        kind: "container",
        id: Some("0123456789abcdef".into()),
        name: None,
        service: service.map(str::to_string),
    }
}

/// The converged snapshot of `d` without the containers of `services` (as when they are skipped).
fn without(d: &DesiredState, services: &[&str]) -> Snapshot {
    let mut o = converged(d);
    o.containers
        .retain(|c| !services.contains(&c.service.as_str()));
    o
}

#[test]
fn a_skipped_container_holds_its_service_instead_of_creating_a_duplicate() {
    let d = erp();
    let mut o = without(&d, &["gateway", "db"]);
    assert!(kinds(&run(&d, &o)).contains(&"create gateway".to_string()));
    o.unreadable = vec![container_of(Some("gateway"))];
    let p = run(&d, &o);
    let k = kinds(&p);
    assert!(!k.iter().any(|a| a.ends_with(" gateway")), "{k:?}");
    assert!(
        k.contains(&"create db".to_string()),
        "the others are planned: {k:?}"
    );
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert!(
        p.warnings[0].starts_with("container 0123456789ab (service gateway): the engine's description of it cannot be read"),
        "{}",
        p.warnings[0]
    );
    assert!(p.warnings[0].contains("nothing is planned for service gateway"));
    for a in &p.actions {
        assert!(a.after.iter().all(|x| *x < p.actions.len()), "{a:?}");
    }
}

#[test]
fn what_waits_on_a_held_action_is_held_too() {
    let d = erp();
    let mut o = without(&d, &["backend", "frontend"]);
    o.unreadable = vec![container_of(Some("backend"))];
    let k = kinds(&run(&d, &o));
    assert!(!k.iter().any(|a| a.ends_with(" backend")), "{k:?}");
    // frontend's create waits on backend's, which is held.
    assert!(!k.contains(&"create frontend".to_string()), "{k:?}");
}

#[test]
fn a_skipped_container_without_a_service_label_holds_every_service() {
    let d = erp();
    let mut o = without(&d, &["db", "worker"]);
    o.unreadable = vec![container_of(None)];
    let p = run(&d, &o);
    assert!(
        p.actions.iter().all(|a| a.kind.service().is_none()),
        "{:?}",
        kinds(&p)
    );
    assert!(
        p.warnings[0].contains("nothing is planned for any service"),
        "{:?}",
        p.warnings
    );
}

#[test]
fn a_skipped_network_is_not_created_again() {
    let d = erp();
    let mut o = converged(&d);
    o.networks.clear();
    assert!(kinds(&run(&d, &o)).contains(&"create-network -".to_string()));
    o.unreadable = vec![Unreadable {
        kind: "network",
        id: None,
        name: Some("p_default".into()),
        service: None,
    }];
    let p = run(&d, &o);
    assert!(
        !kinds(&p).contains(&"create-network -".to_string()),
        "{:?}",
        kinds(&p)
    );
    assert!(
        p.warnings[0].starts_with("network p_default: "),
        "{:?}",
        p.warnings
    );
}

#[test]
fn nothing_unreadable_changes_nothing() {
    let d = erp();
    let o = without(&d, &["db"]);
    let p = run(&d, &o);
    assert!(p.warnings.is_empty());
    assert!(kinds(&p).contains(&"create db".to_string()));
}
