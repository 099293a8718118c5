//! Planner tests of out-of-band network drift: a container attached to a network its service is not given is disconnected, not recreated.

use super::*;

/// The inspect document's networks of a container: `{"NetworkSettings": {"Networks": {…}}}`.
fn attached(names: &[&str]) -> Tree {
    let nets: serde_json::Map<String, Tree> =
        names.iter().map(|n| (n.to_string(), json!({}))).collect();
    json!({"NetworkSettings": {"Networks": nets}})
}

#[test]
fn a_container_attached_out_of_band_to_another_network_is_disconnected_not_recreated() {
    let d = erp();
    let mut o = converged(&d);
    for c in &mut o.containers {
        c.inspect = attached(&["p_default"]);
    }
    assert!(run(&d, &o).is_empty(), "on its own networks only: in sync");
    if let Some(c) = o.containers.iter_mut().find(|c| c.service == "backend") {
        c.inspect = attached(&["p_default", "other_internal", "bridge"]);
    }
    let p = run(&d, &o);
    let k = kinds(&p);
    assert_eq!(
        k,
        [
            "disconnect-network backend".to_string(),
            "disconnect-network backend".to_string()
        ],
        "one disconnect per foreign network, nothing recreated, no dependent follows"
    );
    let planned: Vec<(&str, &str, &str)> = p
        .actions
        .iter()
        .filter_map(|a| match &a.kind {
            ActionKind::DisconnectNetwork { container, network } => {
                Some((container.id.as_str(), network.as_str(), a.reason.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        planned,
        [
            (
                "id-backend-1",
                "bridge",
                "attached out of band to network bridge, which the desired state does not name for service backend"
            ),
            (
                "id-backend-1",
                "other_internal",
                "attached out of band to network other_internal, which the desired state does not name for service backend"
            ),
        ]
    );
    assert!(p.actions.iter().all(|a| a.after.is_empty()));
    assert!(
        !p.in_sync.contains(&"backend".to_string()),
        "{:?}",
        p.in_sync
    );
    assert!(
        p.in_sync.contains(&"frontend".to_string()),
        "{:?}",
        p.in_sync
    );
}

#[test]
fn a_container_to_be_recreated_or_of_unknown_networks_or_with_network_mode_gets_no_disconnect() {
    let d = erp();
    let mut o = converged(&d);
    // Recreated anyway (disconnected from its own network): the new container is clean.
    if let Some(c) = o.containers.iter_mut().find(|c| c.service == "db") {
        c.inspect = attached(&["some-net"]);
    }
    let p = run(&d, &o);
    assert!(
        !kinds(&p).iter().any(|k| k.starts_with("disconnect")),
        "{p:?}"
    );
    // Networks unknown (no inspect document): nothing to say.
    let o = converged(&d);
    assert!(run(&d, &o).is_empty());
    // A service on `network_mode` has no networks of its own.
    let mut d = erp();
    if let Some(w) = d.services.get_mut("worker") {
        w.model = json!({"image": "img/worker:1", "network_mode": "service:backend"});
    }
    let mut o = converged(&d);
    if let Some(c) = o.containers.iter_mut().find(|c| c.service == "worker") {
        c.inspect = attached(&["some-net"]);
    }
    assert!(run(&d, &o).is_empty());
}

#[test]
fn foreign_networks_are_the_attached_ones_the_service_is_not_given() {
    let mut d = erp();
    d.networks.insert(
        "edge".into(),
        DesiredNetwork {
            key: "edge".into(),
            name: "proxy_public".into(),
            external: true,
            model: json!({"name": "proxy_public", "external": true}),
        },
    );
    let mut s = d.services["frontend"].clone();
    s.model = json!({"networks": {"default": null, "edge": null}});
    let mut c = container(&d, &s, 1);
    let table: [(&[&str], &[&str]); 4] = [
        (&["p_default", "proxy_public"], &[]),
        (&["p_default"], &[]),
        (&["p_default", "proxy_public", "x", "a"], &["a", "x"]),
        // Any network the service is not given is foreign, whoever made it.
        (&["p_default", "p_backend"], &["p_backend"]),
    ];
    for (joined, want) in table {
        c.inspect = attached(joined);
        assert_eq!(
            crate::plan::drift::foreign_networks(&d, &s, &c),
            want,
            "{joined:?}"
        );
    }
}

proptest! {
    #[test]
    fn a_disconnect_never_names_a_network_of_the_service_and_covers_every_other(
        extra in proptest::collection::btree_set("[a-z]{1,6}", 0..5),
        on_default in any::<bool>(),
    ) {
        let d = erp();
        let s = &d.services["backend"];
        let mut c = container(&d, s, 1);
        let mut joined: Vec<&str> = extra.iter().map(String::as_str).collect();
        if on_default {
            joined.push("p_default");
        }
        c.inspect = attached(&joined);
        let foreign = crate::plan::drift::foreign_networks(&d, s, &c);
        prop_assert!(!foreign.iter().any(|n| n == "p_default"));
        let want: Vec<String> = extra.iter().filter(|n| *n != "p_default").cloned().collect();
        prop_assert_eq!(foreign, want);
    }
}
