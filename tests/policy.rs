//! Policy checks over typed desired states built in memory: each policy's pass and fail cases, modes and their defaults, allowlists, the network rule's `network_mode` cases, inventory.

use std::collections::BTreeMap;
use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::{Value, json};
use spindle::desired::typed::{DesiredNetwork, DesiredService, DesiredState, PullPolicy};
use spindle::policy::{
    self, AllowImage, InventoryRow, Mode, Pinning, PolicyConfig, PolicyKind, Violation, check,
    classify, inventory,
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
        on_dependency_change: None,
        pre_recreate: None,
        update: Default::default(),
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
    // With `network_mode` the service is on no network of the file (`host` is a violation of
    // its own, see below).
    let s = state(
        vec![service("web", "nginx:1", json!({ "network_mode": "none" }))],
        vec![("default", "shared", true)],
    );
    assert!(check(&s, None, &PolicyConfig::default()).is_empty());
}

fn modes(v: &[Violation]) -> Vec<(PolicyKind, Mode)> {
    v.iter().map(|v| (v.policy, v.mode)).collect()
}

/// One violation of each policy: a floating image, an external network, a secret in
/// `.env.example`, a port on all interfaces.
fn every_policy_broken() -> (DesiredState, &'static str) {
    let s = state(
        vec![service(
            "web",
            "nginx",
            json!({
                "networks": { "edge": null },
                "ports": [{ "target": 80, "published": "8080" }],
            }),
        )],
        vec![("edge", "other_internal", true)],
    );
    (s, "DB_PASSWORD=Zx9!kq2Lp0\n")
}

#[test]
fn every_policy_enforces_by_default_except_ports_on_all_interfaces_which_warn() {
    let (s, env) = every_policy_broken();
    let v = check(&s, Some(env), &PolicyConfig::default());
    assert_eq!(
        modes(&v),
        [
            (PolicyKind::ImagePinned, Mode::Enforce),
            (PolicyKind::ExternalNetwork, Mode::Enforce),
            (PolicyKind::EnvExampleSecret, Mode::Enforce),
            (PolicyKind::PortBinding, Mode::Warn),
        ]
    );
    // An empty `policies:` section (and each empty section) means the same defaults.
    let c = cfg("images: {}\nnetworks: {}\nenv_example: {}\nports: {}\n");
    assert_eq!(c, PolicyConfig::default());
}

#[test]
fn each_policy_takes_the_mode_set_for_it() {
    let (s, env) = every_policy_broken();
    let c = cfg(
        "images:\n  mode: warn\nnetworks:\n  mode: warn\nenv_example:\n  mode: warn\nports:\n  mode: enforce\n",
    );
    assert_eq!(
        modes(&check(&s, Some(env), &c)),
        [
            (PolicyKind::ImagePinned, Mode::Warn),
            (PolicyKind::ExternalNetwork, Mode::Warn),
            (PolicyKind::EnvExampleSecret, Mode::Warn),
            (PolicyKind::PortBinding, Mode::Enforce),
        ]
    );
    // A mode does not change what is a violation: allowlists still allow.
    let c = cfg(
        "ports:\n  mode: enforce\n  allow_all_interfaces:\n    - service: web\n      reason: the edge\n",
    );
    assert!(
        !check(&s, Some(env), &c)
            .iter()
            .any(|v| v.policy == PolicyKind::PortBinding)
    );
}

#[test]
fn an_unknown_mode_is_refused_naming_its_key_path_and_the_modes() {
    for (yaml, path) in [
        ("ports:\n  mode: audit\n", "ports.mode"),
        ("images:\n  mode: Enforce\n", "images.mode"),
        ("env_example:\n  mode: ''\n", "env_example.mode"),
        ("networks:\n  mode: block\n", "networks.mode"),
    ] {
        let err = yaml_serde::from_str::<PolicyConfig>(yaml)
            .err()
            .unwrap_or_else(|| panic!("accepted: {yaml}"))
            .to_string();
        assert!(
            err.contains(path) && err.contains("enforce") && err.contains("warn"),
            "{yaml} → {err}"
        );
    }
}

fn network_mode_state(modes: &[(&str, &str)]) -> DesiredState {
    let mut services: Vec<DesiredService> = modes
        .iter()
        .map(|(name, mode)| service(name, "img:1", json!({ "network_mode": mode })))
        .collect();
    services.push(service(
        "vpn",
        "img:1",
        json!({ "networks": { "default": null } }),
    ));
    let mut named = service("named", "img:1", json!({ "networks": { "default": null } }));
    named.container_name = Some("my-named".into());
    services.push(named);
    state(services, vec![("default", "p_default", false)])
}

#[test]
fn network_mode_of_another_stacks_container_or_an_unknown_service_breaks_the_network_rule() {
    let table = [
        ("container:other-stack-db-1", true),
        ("container:0123456789ab", true),
        ("service:nope", true),
        ("container:p-vpn-1", false),
        ("container:my-named", false),
        ("service:vpn", false),
        ("none", false),
        ("bridge", false),
    ];
    for (mode, broken) in table {
        let s = network_mode_state(&[("web", mode)]);
        let v = check(&s, None, &PolicyConfig::default());
        if broken {
            assert_eq!(
                kinds(&v),
                [(
                    PolicyKind::ExternalNetwork,
                    "services.web.network_mode".into()
                )],
                "{mode}"
            );
            assert_eq!(v[0].mode, Mode::Enforce, "{mode}");
            assert!(
                v[0].message.contains(mode) && v[0].message.contains("allow_network_mode"),
                "{mode}: {}",
                v[0].message
            );
        } else {
            assert!(v.is_empty(), "{mode}: {v:?}");
        }
    }
}

#[test]
fn network_mode_host_is_the_host_access_rule_and_is_reported_once() {
    let s = network_mode_state(&[("web", "host")]);
    let v = check(&s, None, &PolicyConfig::default());
    assert_eq!(
        kinds(&v),
        [(PolicyKind::HostAccess, "services.web.network_mode".into())]
    );
    assert_eq!(v[0].mode, Mode::Enforce);
    assert!(
        v[0].message.contains("network_mode: host") && v[0].message.contains("host_access"),
        "{}",
        v[0].message
    );
    // The network rule's mode no longer decides it; the host_access rule's does.
    let v = check(&s, None, &cfg("networks:\n  mode: warn\n"));
    assert_eq!(modes(&v), [(PolicyKind::HostAccess, Mode::Enforce)]);
    let v = check(&s, None, &cfg("host_access:\n  mode: warn\n"));
    assert_eq!(modes(&v), [(PolicyKind::HostAccess, Mode::Warn)]);
}

#[test]
fn a_network_mode_allowlisted_with_a_reason_passes_for_its_service_or_for_all() {
    let s = network_mode_state(&[("web", "container:vpn-gateway"), ("mon", "host")]);
    assert_eq!(check(&s, None, &PolicyConfig::default()).len(), 2);
    // An allow_network_mode entry for `host` (written before host_access existed) still allows it.
    let c = cfg(
        "networks:\n  allow_network_mode:\n    - service: web\n      network_mode: container:vpn-gateway\n      reason: the shared VPN sidecar\n    - network_mode: host\n      reason: node exporter reads host interfaces\n",
    );
    assert!(check(&s, None, &c).is_empty());
    // An entry for another service, or another value, allows nothing.
    let c = cfg(
        "networks:\n  allow_network_mode:\n    - service: mon\n      network_mode: container:vpn-gateway\n      reason: not web\n    - network_mode: container:vpn\n      reason: another container\n",
    );
    assert_eq!(check(&s, None, &c).len(), 2);
    // An entry without a reason is refused, and never allows anything when built in code.
    let r: Result<PolicyConfig, _> =
        yaml_serde::from_str("networks:\n  allow_network_mode:\n    - network_mode: host\n");
    assert!(r.is_err());
    let mut c = PolicyConfig::default();
    c.networks
        .allow_network_mode
        .push(policy::AllowNetworkMode {
            service: None,
            network_mode: "host".into(),
            reason: " ".into(),
        });
    assert_eq!(c.validate().map_err(|e| e.len()), Err(1));
    assert_eq!(check(&s, None, &c).len(), 2);
}

#[test]
fn a_network_mode_violation_warns_when_the_network_rule_is_in_warn_mode() {
    let s = network_mode_state(&[("web", "container:other-stack-db-1")]);
    let v = check(&s, None, &cfg("networks:\n  mode: warn\n"));
    assert_eq!(modes(&v), [(PolicyKind::ExternalNetwork, Mode::Warn)]);
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
