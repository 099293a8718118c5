//! Policy checks over typed desired states built in memory: each policy's pass and fail cases, allowlists, inventory.

use std::collections::BTreeMap;
use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::{Value, json};
use spindle::desired::typed::{
    DependentAction, DesiredNetwork, DesiredService, DesiredState, PullPolicy,
};
use spindle::policy::{
    self, AllowImage, InventoryRow, Pinning, PolicyConfig, PolicyKind, Violation, check, classify,
    inventory,
};

fn service(name: &str, image: &str, model: Value) -> DesiredService {
    DesiredService {
        name: name.to_string(),
        image: image.to_string(),
        spec_hash: String::new(),
        replicas: 1,
        depends_on: Vec::new(),
        has_healthcheck: false,
        pull_policy: PullPolicy::Missing,
        container_name: None,
        on_dependency_change: DependentAction::Recreate,
        pre_recreate: None,
        probes: Vec::new(),
        model,
    }
}

fn state(services: Vec<DesiredService>, networks: Vec<(&str, &str, bool)>) -> DesiredState {
    DesiredState {
        project: "p".to_string(),
        working_dir: PathBuf::from("/nonexistent"),
        config_files: Vec::new(),
        environment_files: Vec::new(),
        revision: None,
        services: services.into_iter().map(|s| (s.name.clone(), s)).collect(),
        networks: networks
            .into_iter()
            .map(|(key, name, external)| {
                (
                    key.to_string(),
                    DesiredNetwork {
                        key: key.to_string(),
                        name: name.to_string(),
                        external,
                        model: json!({ "name": name, "external": external }),
                    },
                )
            })
            .collect(),
        volumes: BTreeMap::new(),
        model: json!({}),
    }
}

fn image_state(image: &str) -> DesiredState {
    state(
        vec![service("web", image, json!({ "image": image }))],
        vec![],
    )
}

fn cfg(yaml: &str) -> PolicyConfig {
    yaml_serde::from_str(yaml).expect("valid policy config")
}

fn kinds(v: &[Violation]) -> Vec<(PolicyKind, String)> {
    v.iter().map(|v| (v.policy, v.path.clone())).collect()
}

#[test]
fn image_references_are_classified_pinned_or_floating() {
    let table = [
        ("nginx:1.27", true),
        ("nginx", false),
        ("nginx:latest", false),
        ("library/nginx:1.27-alpine", true),
        ("docker.io/library/nginx", false),
        ("localhost:5000/app", false),
        ("localhost:5000/app:latest", false),
        ("localhost:5000/app:2.1", true),
        ("localhost:5000/team/app", false),
        ("registry.example.com:443/a/b:v1", true),
        (
            "nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            true,
        ),
        (
            "nginx:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            true,
        ),
        ("localhost:5000/app@sha256:abcd", true),
        ("nginx@", false),
        ("nginx:", false),
        ("", false),
        ("spindle-sample/erp-backend:1", true),
    ];
    for (image, pinned) in table {
        assert_eq!(classify(image) == Pinning::Pinned, pinned, "{image}");
    }
}

#[test]
fn a_registry_port_is_not_mistaken_for_a_tag() {
    let r = policy::ImageRef::parse("localhost:5000/app");
    assert_eq!(
        (r.name, r.tag, r.digest),
        ("localhost:5000/app", None, None)
    );
    let r = policy::ImageRef::parse("localhost:5000/app:3@sha256:ab");
    assert_eq!(
        (r.name, r.tag, r.digest),
        ("localhost:5000/app", Some("3"), Some("sha256:ab"))
    );
}

#[test]
fn a_pinned_image_passes_and_a_floating_one_is_a_violation() {
    let none = PolicyConfig::default();
    assert!(check(&image_state("redis:7.2"), None, &none).is_empty());
    let v = check(&image_state("redis"), None, &none);
    assert_eq!(
        kinds(&v),
        [(PolicyKind::ImagePinned, "services.web.image".into())]
    );
    assert!(v[0].message.contains("allow_floating"));
    let v = check(&image_state("localhost:5000/app:latest"), None, &none);
    assert_eq!(v.len(), 1);
}

#[test]
fn a_floating_image_in_the_allowlist_passes_by_exact_reference_or_trailing_glob() {
    let c = cfg(
        "images:\n  allow_floating:\n    - image: redis\n      reason: cache, rebuilt nightly\n    - image: localhost:5000/*\n      reason: our own registry\n",
    );
    assert!(check(&image_state("redis"), None, &c).is_empty());
    assert!(check(&image_state("localhost:5000/app"), None, &c).is_empty());
    assert_eq!(check(&image_state("redis:latest"), None, &c).len(), 1);
    assert_eq!(check(&image_state("localhost:5001/app"), None, &c).len(), 1);
}

#[test]
fn an_allowlist_entry_without_a_reason_is_refused() {
    for yaml in [
        "images:\n  allow_floating:\n    - image: redis\n",
        "images:\n  allow_floating:\n    - image: redis\n      reason: ''\n",
        "networks:\n  allow_external:\n    - name: edge\n      reason: '  '\n",
        "ports:\n  allow_all_interfaces:\n    - service: gateway\n      port: 80\n",
    ] {
        let r: Result<PolicyConfig, _> = yaml_serde::from_str(yaml);
        assert!(r.is_err(), "{yaml}");
    }
    let mut c = PolicyConfig::default();
    c.images.allow_floating.push(AllowImage {
        image: "redis".into(),
        reason: String::new(),
    });
    assert_eq!(c.validate().map_err(|e| e.len()), Err(1));
    // An entry without a reason never allows anything.
    assert_eq!(check(&image_state("redis"), None, &c).len(), 1);
}

#[test]
fn unknown_policy_keys_are_refused() {
    let r: Result<PolicyConfig, _> = yaml_serde::from_str("images:\n  allow_floatin: []\n");
    assert!(r.is_err());
    let r: Result<PolicyConfig, _> = yaml_serde::from_str("volumes: {}\n");
    assert!(r.is_err());
    assert_eq!(cfg("{}"), PolicyConfig::default());
}

#[test]
fn an_external_network_in_use_must_be_allowlisted_by_its_docker_name() {
    let s = state(
        vec![
            service(
                "web",
                "nginx:1",
                json!({ "networks": { "edge": null, "default": null } }),
            ),
            service("db", "mariadb:11", json!({})),
        ],
        vec![
            ("default", "p_default", false),
            ("edge", "proxy_internal", true),
            ("unused", "other_net", true),
        ],
    );
    let v = check(&s, None, &PolicyConfig::default());
    assert_eq!(
        kinds(&v),
        [(PolicyKind::ExternalNetwork, "networks.edge".into())]
    );
    assert!(v[0].message.contains("proxy_internal") && v[0].message.contains("web"));
    let c = cfg(
        "networks:\n  allow_external:\n    - name: proxy_internal\n      reason: the shared reverse proxy\n",
    );
    assert!(check(&s, None, &c).is_empty());
    // The compose key is not the Docker name.
    let c = cfg("networks:\n  allow_external:\n    - name: edge\n      reason: wrong name\n");
    assert_eq!(check(&s, None, &c).len(), 1);
}

#[test]
fn a_service_without_networks_uses_the_default_network_which_may_be_external() {
    let s = state(
        vec![service("web", "nginx:1", json!({}))],
        vec![("default", "shared", true)],
    );
    assert_eq!(check(&s, None, &PolicyConfig::default()).len(), 1);
    let s = state(
        vec![service("web", "nginx:1", json!({ "network_mode": "host" }))],
        vec![("default", "shared", true)],
    );
    assert!(check(&s, None, &PolicyConfig::default()).is_empty());
}

#[test]
fn env_example_placeholders_pass_and_real_looking_secrets_are_violations() {
    let text = "\
# sample
DB_PASSWORD=changeme
API_KEY=<your api key>
JWT_SECRET=${SOMETHING}
SMTP_PASS=xxxxxxxx
STRIPE_SECRET_KEY=
REDIS_PASSWORD=placeholder
ADMIN_PASSWORD=password
APP_SECRET=secret
SHORT_TOKEN=abc123
DB_HOST=db.internal
APP_URL=https://Example.com/Path123
MYSQL_ROOT_PASSWORD=Zx9!kq2Lp0
GITHUB_TOKEN=ghp_a1B2c3D4e5F6g7H8i9J0
SESSION_SECRET=qwrtzupasdfghjkl
";
    let s = image_state("nginx:1");
    let v = check(&s, Some(text), &PolicyConfig::default());
    assert_eq!(
        kinds(&v),
        [
            (
                PolicyKind::EnvExampleSecret,
                ".env.example:MYSQL_ROOT_PASSWORD".into()
            ),
            (
                PolicyKind::EnvExampleSecret,
                ".env.example:GITHUB_TOKEN".into()
            ),
            (
                PolicyKind::EnvExampleSecret,
                ".env.example:SESSION_SECRET".into()
            ),
        ]
    );
    for secret in ["Zx9!kq2Lp0", "ghp_a1B2c3D4e5F6g7H8i9J0", "qwrtzupasdfghjkl"] {
        for x in &v {
            assert!(!x.message.contains(secret) && !x.path.contains(secret));
        }
    }
}

#[test]
fn an_unparsable_env_example_is_a_violation_without_its_contents() {
    let v = check(
        &image_state("nginx:1"),
        Some("DB PASSWORD=Zx9!kq2Lp0\n"),
        &PolicyConfig::default(),
    );
    assert_eq!(
        kinds(&v),
        [(PolicyKind::EnvExampleSecret, ".env.example".into())]
    );
    assert!(!v[0].message.contains("Zx9"));
}

#[test]
fn ports_on_all_interfaces_are_violations_unless_allowlisted() {
    let ports = json!({ "ports": [
        { "mode": "ingress", "target": 80, "published": "8080", "protocol": "tcp" },
        { "mode": "ingress", "host_ip": "127.0.0.1", "target": 81, "published": "8081", "protocol": "tcp" },
        { "mode": "ingress", "host_ip": "0.0.0.0", "target": 443, "published": "8443", "protocol": "tcp" },
        { "mode": "ingress", "host_ip": "::", "target": 53, "published": "5353", "protocol": "udp" },
        { "mode": "ingress", "target": 9000 },
    ]});
    let s = state(vec![service("gateway", "gw:1", ports)], vec![]);
    let v = check(&s, None, &PolicyConfig::default());
    assert_eq!(
        kinds(&v),
        [
            (PolicyKind::PortBinding, "services.gateway.ports[0]".into()),
            (PolicyKind::PortBinding, "services.gateway.ports[2]".into()),
            (PolicyKind::PortBinding, "services.gateway.ports[3]".into()),
        ]
    );
    let one = cfg(
        "ports:\n  allow_all_interfaces:\n    - service: gateway\n      port: 8443\n      reason: public TLS\n",
    );
    assert_eq!(check(&s, None, &one).len(), 2);
    let all =
        cfg("ports:\n  allow_all_interfaces:\n    - service: gateway\n      reason: the edge\n");
    assert!(check(&s, None, &all).is_empty());
    let other =
        cfg("ports:\n  allow_all_interfaces:\n    - service: web\n      reason: not this one\n");
    assert_eq!(check(&s, None, &other).len(), 3);
}

#[test]
fn a_port_range_is_allowed_by_a_port_inside_it() {
    let s = state(
        vec![service(
            "rtp",
            "rtp:1",
            json!({ "ports": [{ "target": 10000, "published": "10000-10010" }] }),
        )],
        vec![],
    );
    assert_eq!(check(&s, None, &PolicyConfig::default()).len(), 1);
    let c = cfg(
        "ports:\n  allow_all_interfaces:\n    - service: rtp\n      port: 10005\n      reason: media\n",
    );
    assert!(check(&s, None, &c).is_empty());
}

#[test]
fn inventory_joins_desired_and_running_images() {
    let s = state(
        vec![
            service("web", "nginx:1.27", json!({})),
            service("cache", "redis", json!({})),
        ],
        vec![],
    );
    let running = vec![
        (
            "web".to_string(),
            "nginx:1.27".to_string(),
            "sha256:aa".to_string(),
        ),
        (
            "web".to_string(),
            "nginx:1.27".to_string(),
            "sha256:aa".to_string(),
        ),
        (
            "old".to_string(),
            "busybox".to_string(),
            "sha256:bb".to_string(),
        ),
    ];
    let rows = inventory(&s, &running);
    assert_eq!(
        rows,
        [
            InventoryRow {
                service: "cache".into(),
                desired_ref: "redis".into(),
                pinned: false,
                floating_reason: Some("no tag, which means latest".into()),
                local_image_id: None,
                running_ref: None,
                running_image_id: None,
            },
            InventoryRow {
                service: "web".into(),
                desired_ref: "nginx:1.27".into(),
                pinned: true,
                floating_reason: None,
                local_image_id: None,
                running_ref: Some("nginx:1.27".into()),
                running_image_id: Some("sha256:aa".into()),
            },
            InventoryRow {
                service: "old".into(),
                desired_ref: String::new(),
                pinned: false,
                floating_reason: None,
                local_image_id: None,
                running_ref: Some("busybox".into()),
                running_image_id: Some("sha256:bb".into()),
            },
        ]
    );
}

#[test]
fn local_image_ids_fill_in_by_desired_reference_and_mark_stale_rows() {
    let s = state(
        vec![
            service("web", "nginx:1.27", json!({})),
            service("cache", "redis", json!({})),
        ],
        vec![],
    );
    let running = vec![(
        "web".to_string(),
        "nginx:1.27".to_string(),
        "sha256:old".to_string(),
    )];
    let mut rows = inventory(&s, &running);
    let local =
        std::collections::BTreeMap::from([("nginx:1.27".to_string(), "sha256:new".to_string())]);
    policy::resolve_local(&mut rows, &local);
    let by = |svc: &str| rows.iter().find(|r| r.service == svc).cloned();
    let web = by("web").unwrap_or_else(|| panic!("no web row in {rows:?}"));
    assert_eq!(web.local_image_id.as_deref(), Some("sha256:new"));
    assert!(web.stale(), "{web:?}");
    let cache = by("cache").unwrap_or_else(|| panic!("no cache row in {rows:?}"));
    assert_eq!(cache.local_image_id, None);
    assert!(
        !cache.stale(),
        "nothing runs and nothing is local: {cache:?}"
    );
}

proptest! {
    #[test]
    fn check_never_panics_on_arbitrary_image_strings(image in ".{0,40}", env in ".{0,80}") {
        let _ = check(&image_state(&image), Some(&env), &PolicyConfig::default());
        let _ = inventory(&image_state(&image), &[("web".into(), image.clone(), image.clone())]);
    }

    #[test]
    fn a_version_tag_always_pins_and_no_tag_never_does(
        host in "[a-z]{1,8}(:[0-9]{1,5})?",
        path in "[a-z][a-z0-9-]{0,8}",
        tag in "[0-9][a-z0-9.]{0,6}",
    ) {
        let bare = format!("{host}/{path}");
        prop_assert_eq!(classify(&bare), Pinning::Floating("no tag, which means latest"));
        prop_assert_eq!(classify(&format!("{bare}:{tag}")), Pinning::Pinned);
    }
}
