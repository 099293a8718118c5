//! Table tests of the `host_access` rule: each finding, what passes, allowlists and modes; and the binds of the pre-recreate hook under both rules.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::host_access::covers;
use super::paths_tests::tree;
use super::*;
use crate::desired::typed::{DesiredService, PullPolicy};

pub(super) fn service(name: &str, model: Value) -> DesiredService {
    DesiredService {
        name: name.to_string(),
        image: "img:1".to_string(),
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

pub(super) fn state_with(model: Value, top: Value) -> DesiredState {
    let s = service("web", model);
    DesiredState {
        project: "p".to_string(),
        working_dir: PathBuf::from("/nonexistent"),
        config_files: Vec::new(),
        environment_files: Vec::new(),
        revision: None,
        services: BTreeMap::from([("web".to_string(), s)]),
        networks: BTreeMap::new(),
        volumes: BTreeMap::new(),
        model: top,
    }
}

pub(super) fn cfg(yaml: &str) -> PolicyConfig {
    yaml_serde::from_str(yaml).expect("valid policy config")
}

/// The host_access violations of one service `web` with `model`, by key path.
fn host_paths(model: Value, state_dir: Option<&Path>) -> Vec<String> {
    let s = state_with(model, json!({}));
    let ctx = Context {
        state_dir,
        path_refs: &[],
    };
    check_in(&s, None, &PolicyConfig::default(), &ctx)
        .into_iter()
        .inspect(|v| assert_eq!(v.policy, PolicyKind::HostAccess, "{v}"))
        .map(|v| v.path)
        .collect()
}

fn bind(source: &str) -> Value {
    json!({ "volumes": [{ "type": "bind", "source": source, "target": "/x" }] })
}

#[test]
fn privileged_and_host_namespaces_break_the_host_access_rule() {
    let table: &[(Value, &[&str])] = &[
        (json!({ "privileged": true }), &["services.web.privileged"]),
        (json!({ "privileged": false }), &[]),
        (json!({ "pid": "host" }), &["services.web.pid"]),
        (json!({ "ipc": "host" }), &["services.web.ipc"]),
        (
            json!({ "userns_mode": "host" }),
            &["services.web.userns_mode"],
        ),
        (json!({ "uts": "host" }), &["services.web.uts"]),
        (
            json!({ "network_mode": "host" }),
            &["services.web.network_mode"],
        ),
        (json!({ "cgroup": "host" }), &["services.web.cgroup"]),
        (json!({ "pid": "service:db" }), &[]),
        (json!({ "ipc": "shareable" }), &[]),
        (json!({ "cgroup": "private" }), &[]),
        (json!({ "network_mode": "none" }), &[]),
        (
            json!({ "privileged": true, "pid": "host", "ipc": "host" }),
            &[
                "services.web.privileged",
                "services.web.pid",
                "services.web.ipc",
            ],
        ),
    ];
    for (model, want) in table {
        assert_eq!(host_paths(model.clone(), None), *want, "{model}");
    }
}

#[test]
fn capabilities_beyond_dockers_default_set_break_the_host_access_rule_in_any_spelling() {
    let flagged = [
        "ALL",
        "all",
        "SYS_ADMIN",
        "sys_admin",
        "CAP_SYS_ADMIN",
        "cap_net_admin",
        "SYS_PTRACE",
        "SYS_MODULE",
        "DAC_READ_SEARCH",
        "NET_ADMIN",
        "SYS_TIME",
        "BPF",
    ];
    for cap in flagged {
        assert_eq!(
            host_paths(json!({ "cap_add": [cap] }), None),
            ["services.web.cap_add[0]"],
            "{cap}"
        );
    }
    let defaults = [
        "CHOWN",
        "DAC_OVERRIDE",
        "FSETID",
        "FOWNER",
        "MKNOD",
        "NET_RAW",
        "cap_net_raw",
        "SETGID",
        "SETUID",
        "SETFCAP",
        "SETPCAP",
        "NET_BIND_SERVICE",
        "SYS_CHROOT",
        "Kill",
        "CAP_AUDIT_WRITE",
    ];
    for cap in defaults {
        assert!(
            host_paths(json!({ "cap_add": [cap] }), None).is_empty(),
            "{cap}"
        );
    }
    assert_eq!(
        host_paths(json!({ "cap_add": ["CHOWN", "SYS_ADMIN"] }), None),
        ["services.web.cap_add[1]"]
    );
}

#[test]
fn unconfined_security_options_break_the_host_access_rule_and_others_pass() {
    for opt in [
        "seccomp:unconfined",
        "seccomp=unconfined",
        "SECCOMP=UNCONFINED",
        "apparmor:unconfined",
        "apparmor=unconfined",
        "label:disable",
        "label=disable",
        "systempaths=unconfined",
    ] {
        assert_eq!(
            host_paths(json!({ "security_opt": [opt] }), None),
            ["services.web.security_opt[0]"],
            "{opt}"
        );
    }
    for opt in [
        "no-new-privileges:false",
        "no-new-privileges:true",
        "no-new-privileges",
        "label=type:svirt_apache_t",
        "seccomp=/etc/docker/profile.json",
        "apparmor=docker-default",
    ] {
        assert!(
            host_paths(json!({ "security_opt": [opt] }), None).is_empty(),
            "{opt}"
        );
    }
}

#[test]
fn any_device_or_device_cgroup_rule_breaks_the_host_access_rule() {
    assert_eq!(
        host_paths(
            json!({ "devices": [
                { "source": "/dev/null", "target": "/dev/n", "permissions": "rwm" },
                { "source": "/dev/fuse", "target": "/dev/fuse", "permissions": "rwm" }
            ] }),
            None
        ),
        ["services.web.devices[0]", "services.web.devices[1]"]
    );
    assert_eq!(
        host_paths(json!({ "device_cgroup_rules": ["c 1:3 mr"] }), None),
        ["services.web.device_cgroup_rules[0]"]
    );
    assert!(host_paths(json!({ "devices": [] }), None).is_empty());
}

#[test]
fn binds_of_sensitive_host_paths_break_the_host_access_rule_and_ordinary_ones_pass() {
    let state = Path::new("/srv/spindle-state");
    let flagged = [
        "/",
        "/etc",
        "/etc/nginx",
        "/etc/../etc/shadow",
        "/var/run/docker.sock",
        "/run/docker.sock",
        "/var/run",
        "/run",
        "/var",
        "/proc",
        "/proc/1",
        "/sys",
        "/sys/fs/cgroup",
        "/boot",
        "/dev",
        "/dev/kmsg",
        "/root",
        "/root/.ssh",
        "/var/lib/docker",
        "/var/lib/docker/volumes",
        "/var/lib",
        "/srv/spindle-state",
        "/srv/spindle-state/evidence",
        "/srv",
    ];
    for src in flagged {
        assert_eq!(
            host_paths(bind(src), Some(state)),
            ["services.web.volumes[0].source"],
            "{src}"
        );
    }
    for src in [
        "/srv/data",
        "/srv/app",
        "/etc2",
        "/opt/app/config",
        "/var/log/app",
        "/srv/spindle-state2",
    ] {
        assert!(host_paths(bind(src), Some(state)).is_empty(), "{src}");
    }
    // Without a state dir, only the fixed list counts.
    assert!(host_paths(bind("/srv/spindle-state"), None).is_empty());
}

#[test]
fn a_top_level_volume_that_binds_a_sensitive_path_breaks_the_rule_for_the_services_mounting_it() {
    let top = |device: &str| {
        json!({ "volumes": { "v": { "driver": "local",
            "driver_opts": { "type": "none", "o": "bind", "device": device } } } })
    };
    let model = json!({ "volumes": [{ "type": "volume", "source": "v", "target": "/x" }] });
    let s = state_with(model.clone(), top("/etc"));
    let v = check(&s, None, &PolicyConfig::default());
    assert_eq!(
        v.iter().map(|v| v.path.as_str()).collect::<Vec<_>>(),
        ["services.web.volumes[0]"]
    );
    assert!(v[0].message.contains("volume `v`"), "{}", v[0].message);
    let s = state_with(model, top("/srv/data"));
    assert!(check(&s, None, &PolicyConfig::default()).is_empty());
}

#[test]
fn a_bind_through_a_symbolic_link_to_a_sensitive_path_breaks_the_rule() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let link = dir.path().join("innocent");
    std::os::unix::fs::symlink("/etc", &link).expect("a symbolic link");
    let s = state_with(bind(&link.display().to_string()), json!({}));
    let v = check(&s, None, &PolicyConfig::default());
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("through symbolic links"), "{}", v[0]);
}

#[test]
fn a_host_access_finding_says_why_and_how_to_allow_it_and_blocks_by_default() {
    let s = state_with(json!({ "privileged": true }), json!({}));
    let v = check(&s, None, &PolicyConfig::default());
    assert_eq!(v[0].mode, Mode::Enforce);
    let m = &v[0].message;
    assert!(
        m.contains("root on the host")
            && m.contains("policies.host_access.allow")
            && m.contains("service: web")
            && m.contains("access: \"privileged\""),
        "{m}"
    );
    let v = check(&s, None, &cfg("host_access:\n  mode: warn\n"));
    assert_eq!(v[0].mode, Mode::Warn);
}

#[test]
fn an_allowlist_access_covers_its_own_access_its_family_and_binds_below_it() {
    let table = [
        ("privileged", "privileged", true),
        ("pid", "ipc", false),
        ("cap_add", "cap_add:SYS_ADMIN", true),
        ("cap_add:CAP_sys_admin", "cap_add:SYS_ADMIN", true),
        ("cap_add:NET_ADMIN", "cap_add:SYS_ADMIN", false),
        ("security_opt", "security_opt:seccomp", true),
        ("security_opt:SECCOMP", "security_opt:seccomp", true),
        ("security_opt:apparmor", "security_opt:seccomp", false),
        ("bind", "bind:/", true),
        ("bind:/var/run", "bind:/var/run/docker.sock", true),
        (
            "bind:/var/run/docker.sock",
            "bind:/var/run/docker.sock",
            true,
        ),
        ("bind:/var/run/docker.sock", "bind:/var/run", false),
        ("bind:/etc/nginx", "bind:/etc", false),
        ("devices", "devices", true),
        ("privileged:x", "privileged", false),
    ];
    for (allowed, grant, want) in table {
        assert_eq!(covers(allowed, grant), want, "{allowed} covers {grant}");
    }
}

#[test]
fn a_host_access_allowlist_entry_needs_its_service_and_a_reason() {
    let s = state_with(
        json!({ "privileged": true, "cap_add": ["SYS_ADMIN"] }),
        json!({}),
    );
    let ok = cfg(
        "host_access:\n  allow:\n    - service: web\n      access: [privileged, cap_add:SYS_ADMIN]\n      reason: the node agent\n",
    );
    assert!(check(&s, None, &ok).is_empty());
    let one = cfg(
        "host_access:\n  allow:\n    - service: web\n      access: privileged\n      reason: the node agent\n",
    );
    assert_eq!(check(&s, None, &one).len(), 1);
    let other = cfg(
        "host_access:\n  allow:\n    - service: db\n      access: [privileged, cap_add]\n      reason: not web\n",
    );
    assert_eq!(check(&s, None, &other).len(), 2);
    let r: Result<PolicyConfig, _> = yaml_serde::from_str(
        "host_access:\n  allow:\n    - service: web\n      access: privileged\n",
    );
    assert!(r.is_err());
    let r: Result<PolicyConfig, _> = yaml_serde::from_str(
        "host_access:\n  allow:\n    - service: web\n      access: privileged\n      reason: \" \"\n",
    );
    assert!(r.is_err());
    let mut c = PolicyConfig::default();
    c.host_access.allow.push(AllowHostAccess {
        service: "web".into(),
        access: vec!["privileged".into()],
        reason: String::new(),
    });
    assert_eq!(c.validate().map_err(|e| e.len()), Err(1));
    assert_eq!(check(&s, None, &c).len(), 2);
}

#[test]
fn the_pre_recreate_hooks_binds_are_checked_by_both_rules() {
    use crate::desired::hook::{HookMode, HookMount, MountSource, PreRecreate, RunSpec};
    let t = tree();
    let hook = |sources: &[PathBuf]| PreRecreate {
        mode: HookMode::Run(RunSpec {
            command: vec!["true".into()],
            image: None,
            volumes: Some(
                sources
                    .iter()
                    .map(|p| HookMount {
                        source: MountSource::Bind(p.clone()),
                        target: "/x".into(),
                        read_only: false,
                    })
                    .collect(),
            ),
            networks: false,
        }),
        timeout: std::time::Duration::from_secs(1),
        artifact: None,
    };
    let mut s = state_with(json!({}), json!({}));
    s.working_dir = t.root.clone();
    let web = s.services.get_mut("web").expect("web");
    web.pre_recreate = Some(hook(&[
        t.root.join("./data"),
        PathBuf::from("/srv/dumps"),
        PathBuf::from("/var/run/docker.sock"),
        t.root.join("./../outside.env"),
    ]));
    let v: Vec<(PolicyKind, String)> = check(&s, None, &PolicyConfig::default())
        .into_iter()
        .map(|v| (v.policy, v.path))
        .collect();
    assert_eq!(
        v,
        [
            (
                PolicyKind::HostAccess,
                "services.web.x-spindle.pre-recreate.volumes[2]".to_string()
            ),
            (
                PolicyKind::Paths,
                "services.web.x-spindle.pre-recreate.volumes[3]".to_string()
            ),
        ]
    );
}

#[test]
fn a_secret_or_config_file_at_a_sensitive_path_is_a_bind_of_it() {
    for section in ["secrets", "configs"] {
        let top = |file: &str| json!({ section: { "s": { "file": file } } });
        let model = json!({ section: [{ "source": "s", "target": "s" }] });
        let s = state_with(model.clone(), top("/etc/shadow"));
        let v = check(&s, None, &PolicyConfig::default());
        assert_eq!(
            v.iter().map(|v| v.path.clone()).collect::<Vec<_>>(),
            [format!("services.web.{section}[0]")],
            "{section}"
        );
        let s = state_with(model, top("/srv/app/secret.txt"));
        assert!(check(&s, None, &PolicyConfig::default()).is_empty());
    }
}
