//! Table tests of the `host_access` findings added after the review: a volume mounting a host device, `volumes_from`/`pid`/`ipc` of a container outside the project, the root-equivalent paths, and grants checked against where a bind resolves.

use std::path::Path;

use serde_json::{Value, json};

use super::host_access::covers;
use super::tests::{cfg, state_with};
use super::*;

/// The host_access violations of service `web` (`model`, top-level `top`) under `c`.
fn violations(model: Value, top: Value, c: &PolicyConfig) -> Vec<Violation> {
    let s = state_with(model, top);
    check(&s, None, c)
        .into_iter()
        .inspect(|v| assert_eq!(v.policy, PolicyKind::HostAccess, "{v}"))
        .collect()
}

fn paths(v: &[Violation]) -> Vec<&str> {
    v.iter().map(|v| v.path.as_str()).collect()
}

fn mounts_rootfs() -> Value {
    json!({ "volumes": [{ "type": "volume", "source": "rootfs", "target": "/host" }] })
}

fn rootfs(volume: Value) -> Value {
    json!({ "volumes": { "rootfs": volume } })
}

#[test]
fn a_local_volume_mounting_a_host_device_breaks_the_host_access_rule_and_memory_or_remote_shares_pass()
 {
    let flagged = [
        json!({ "driver_opts": { "type": "ext4", "device": "/dev/vda" } }),
        json!({ "driver": "local", "driver_opts": { "type": "xfs", "device": "/dev/sdb1" } }),
        json!({ "driver_opts": { "type": "btrfs", "device": "/dev/mapper/root", "o": "subvol=@" } }),
        json!({ "driver_opts": { "device": "/srv/disk.img", "o": "loop" } }),
        json!({ "driver_opts": { "type": "overlay", "device": "overlay",
            "o": "lowerdir=/etc,upperdir=/srv/u,workdir=/srv/w" } }),
        json!({ "driver_opts": { "type": "none", "device": "/etc", "o": "bind" } }),
        json!({ "driver_opts": { "type": "none", "device": "/", "o": "rbind,ro" } }),
    ];
    for volume in flagged {
        let v = violations(
            mounts_rootfs(),
            rootfs(volume.clone()),
            &PolicyConfig::default(),
        );
        assert_eq!(paths(&v), ["services.web.volumes[0]"], "{volume}");
        assert!(v[0].message.contains("volume `rootfs`"), "{}", v[0].message);
    }
    let v = violations(
        mounts_rootfs(),
        rootfs(json!({ "driver_opts": { "type": "ext4", "device": "/dev/vda" } })),
        &PolicyConfig::default(),
    );
    assert!(
        v[0].message.contains("`/dev/vda`")
            && v[0].message.contains("access: \"volume_device:rootfs\""),
        "{}",
        v[0].message
    );
    let passing = [
        json!({ "driver_opts": { "type": "tmpfs", "device": "tmpfs", "o": "size=1m" } }),
        json!({ "driver_opts": { "type": "nfs", "o": "addr=10.0.0.1,rw", "device": ":/export" } }),
        json!({ "driver_opts": { "type": "NFS4", "o": "addr=nas", "device": ":/export" } }),
        json!({ "driver_opts": { "type": "cifs", "o": "addr=nas", "device": "//nas/share" } }),
        json!({ "driver_opts": { "type": "none", "device": "/srv/data", "o": "bind" } }),
        json!({ "driver": "some-plugin", "driver_opts": { "device": "/dev/vda" } }),
        json!({ "driver_opts": { "type": "ext4" } }),
        json!({}),
    ];
    for volume in passing {
        let v = violations(
            mounts_rootfs(),
            rootfs(volume.clone()),
            &PolicyConfig::default(),
        );
        assert!(v.is_empty(), "{volume}: {v:?}");
    }
}

#[test]
fn a_volume_device_is_allowed_by_its_own_grant_only() {
    let top = rootfs(json!({ "driver_opts": { "type": "ext4", "device": "/dev/vda" } }));
    let allow = |access: &str| {
        cfg(&format!(
            "host_access:\n  allow:\n    - service: web\n      access: \"{access}\"\n      reason: the backup agent reads the disk\n"
        ))
    };
    for (access, want) in [
        ("volume_device:rootfs", 0),
        ("volume_device", 0),
        ("volume_device:other", 1),
        ("bind:/dev/vda", 1),
        ("devices", 1),
    ] {
        assert_eq!(
            violations(mounts_rootfs(), top.clone(), &allow(access)).len(),
            want,
            "{access}"
        );
    }
}

#[test]
fn a_pre_recreate_hook_mounting_a_device_volume_breaks_the_host_access_rule() {
    use crate::desired::hook::{HookMode, HookMount, MountSource, PreRecreate, RunSpec};
    let mut s = state_with(
        json!({}),
        rootfs(json!({ "driver_opts": { "type": "ext4", "device": "/dev/vda" } })),
    );
    s.services.get_mut("web").expect("web").pre_recreate = Some(PreRecreate {
        mode: HookMode::Run(RunSpec {
            command: vec!["true".into()],
            image: None,
            volumes: Some(vec![HookMount {
                source: MountSource::Volume("rootfs".into()),
                target: "/host".into(),
                read_only: false,
            }]),
            networks: false,
        }),
        timeout: std::time::Duration::from_secs(1),
        artifact: None,
    });
    let v = check(&s, None, &PolicyConfig::default());
    assert_eq!(
        paths(&v),
        ["services.web.x-spindle.pre-recreate.volumes[0]"]
    );
}

#[test]
fn volumes_from_pid_and_ipc_of_a_container_outside_the_project_break_the_host_access_rule() {
    let none = PolicyConfig::default();
    let table: &[(Value, &[&str])] = &[
        (
            json!({ "volumes_from": ["container:socket-proxy"] }),
            &["services.web.volumes_from[0]"],
        ),
        (
            json!({ "volumes_from": ["data", "data:ro", "container:agent:rw"] }),
            &["services.web.volumes_from[2]"],
        ),
        (json!({ "pid": "container:agent" }), &["services.web.pid"]),
        (json!({ "ipc": "container:agent" }), &["services.web.ipc"]),
        (json!({ "volumes_from": ["data:rw"] }), &[]),
        (json!({ "pid": "service:db", "ipc": "service:db" }), &[]),
    ];
    for (model, want) in table {
        assert_eq!(
            paths(&violations(model.clone(), json!({}), &none)),
            *want,
            "{model}"
        );
    }
    let v = violations(
        json!({ "volumes_from": ["container:agent:ro"] }),
        json!({}),
        &none,
    );
    assert!(
        v[0].message
            .contains("access: \"volumes_from:container:agent\""),
        "{}",
        v[0].message
    );
    let allow = cfg(
        "host_access:\n  allow:\n    - service: web\n      access: [\"volumes_from:container:agent\", \"pid:container:agent\"]\n      reason: the sidecar debugs the agent\n",
    );
    let model = json!({ "volumes_from": ["container:agent"], "pid": "container:agent",
        "ipc": "container:agent" });
    assert_eq!(
        paths(&violations(model, json!({}), &allow)),
        ["services.web.ipc"]
    );
    let other = json!({ "volumes_from": ["container:other"], "pid": "container:other" });
    assert_eq!(violations(other, json!({}), &allow).len(), 2);
}

fn bind(source: &str, read_only: bool) -> Value {
    json!({ "volumes": [{ "type": "bind", "source": source, "target": "/x", "read_only": read_only }] })
}

#[test]
fn root_equivalent_host_paths_are_sensitive_binds_read_only_or_not() {
    let flagged = [
        "/usr",
        "/usr/local/bin",
        "/bin",
        "/sbin",
        "/lib",
        "/lib32",
        "/lib64",
        "/libx32",
        "/home",
        "/home/alice",
        "/home/alice/.ssh",
        "/home/alice/.bashrc",
        "/var/spool/cron",
        "/var/spool/cron/crontabs",
        "/var/spool",
        "/run/containerd",
        "/run/containerd/containerd.sock",
        "/var/run/containerd/containerd.sock",
        "/var/lib/containerd",
        "/run/systemd",
        "/var/run/systemd/private",
        "/var/lib/kubelet",
        "/var/lib/kubelet/pods",
        "/proc",
        "/sys",
        "/etc",
    ];
    for src in flagged {
        for ro in [false, true] {
            assert_eq!(
                paths(&violations(
                    bind(src, ro),
                    json!({}),
                    &PolicyConfig::default()
                )),
                ["services.web.volumes[0].source"],
                "{src} read_only {ro}"
            );
        }
    }
    for src in [
        // A project's own folder in a home is not the home's keys or start-up files.
        "/home/alice/stack/data",
        "/var/log",
        "/var/log/app",
        "/usr2",
        "/srv/home",
        "/opt/lib",
        "/run/app",
    ] {
        assert!(
            violations(bind(src, true), json!({}), &PolicyConfig::default()).is_empty(),
            "{src}"
        );
    }
}

#[test]
fn an_allowed_folder_does_not_let_a_symbolic_link_in_it_reach_a_sensitive_path() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let allowed = dir.path().join("allowed");
    std::fs::create_dir(&allowed).expect("a folder");
    std::os::unix::fs::symlink("/", allowed.join("link")).expect("a symbolic link");
    let source = allowed.join("link").display().to_string();
    let allow = |access: &str| {
        cfg(&format!(
            "host_access:\n  allow:\n    - service: web\n      access: {access}\n      reason: the agent's folder\n"
        ))
    };
    let only_folder = allow(&format!("[\"bind:{}\"]", allowed.display()));
    let v = violations(bind(&source, false), json!({}), &only_folder);
    assert_eq!(paths(&v), ["services.web.volumes[0].source"]);
    assert!(
        v[0].message.contains("through symbolic links") && v[0].message.contains("\"bind:/\""),
        "{}",
        v[0].message
    );
    let both = allow(&format!("[\"bind:{}\", \"bind:/\"]", allowed.display()));
    assert!(violations(bind(&source, false), json!({}), &both).is_empty());
}

#[test]
fn a_missing_bind_source_under_a_link_to_a_sensitive_path_breaks_the_rule() {
    // Docker creates a missing bind source, following the link: `<tmp>/etc-link/new` makes `/etc/new`.
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::os::unix::fs::symlink("/etc", dir.path().join("etc-link")).expect("a symbolic link");
    let source = dir.path().join("etc-link/not-yet").display().to_string();
    let v = violations(bind(&source, false), json!({}), &PolicyConfig::default());
    assert_eq!(paths(&v), ["services.web.volumes[0].source"]);
    assert!(v[0].message.contains("`/etc/not-yet`"), "{}", v[0].message);
}

#[test]
fn a_grant_of_the_docker_socket_covers_it_under_var_run_and_run() {
    for (allowed, grant, want) in [
        ("bind:/var/run/docker.sock", "bind:/run/docker.sock", true),
        ("bind:/run/docker.sock", "bind:/var/run/docker.sock", true),
        ("bind:/var/run", "bind:/run/containerd", true),
        ("bind:/var/run2", "bind:/run/docker.sock", false),
        ("pid:container:a", "pid:container:a", true),
        ("pid:container:a", "pid", false),
        ("pid", "pid:container:a", true),
    ] {
        assert_eq!(covers(allowed, grant), want, "{allowed} covers {grant}");
    }
    let c = cfg(
        "host_access:\n  allow:\n    - service: web\n      access: bind:/var/run/docker.sock\n      reason: the proxy\n",
    );
    for src in ["/var/run/docker.sock", "/run/docker.sock"] {
        assert!(
            violations(bind(src, false), json!({}), &c).is_empty(),
            "{src}"
        );
    }
    assert!(Path::new("/run").exists());
}
