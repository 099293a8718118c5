//! Table tests of what Docker Engine 20.10 does to a create body, as the container-conformance harness
//! (`tests/container_conformance.rs`) found it, and that adoption accepts exactly that.

use serde_json::{Value, json};

use super::adoption_diff;

/// A body with the given `Config` and `HostConfig` fields, on network `p_default`.
fn body(config: Value, host: Value) -> Value {
    let mut b = json!({
        "Image": "img:1",
        "HostConfig": {"NetworkMode": "p_default"},
        "NetworkingConfig": {"EndpointsConfig": {"p_default": {"Aliases": ["p-web-1", "web"]}}}
    });
    for (k, v) in config.as_object().cloned().unwrap_or_default() {
        b[k] = v;
    }
    for (k, v) in host.as_object().cloned().unwrap_or_default() {
        b["HostConfig"][k] = v;
    }
    b
}

/// An inspect document with the given `Config`, `HostConfig` and endpoint fields.
fn inspect(config: Value, host: Value, endpoint: Value) -> Value {
    let mut i = json!({
        "Config": {"Image": "img:1", "Cmd": ["/usr/local/bin/idle"]},
        "HostConfig": {"NetworkMode": "p_default"},
        "NetworkSettings": {"Networks": {"p_default": {"Aliases": ["p-web-1", "web", "0123456789ab"]}}}
    });
    for (k, v) in config.as_object().cloned().unwrap_or_default() {
        i["Config"][k] = v;
    }
    for (k, v) in host.as_object().cloned().unwrap_or_default() {
        i["HostConfig"][k] = v;
    }
    for (k, v) in endpoint.as_object().cloned().unwrap_or_default() {
        i["NetworkSettings"]["Networks"]["p_default"][k] = v;
    }
    i
}

/// What, body config, body host, inspect config, inspect host, inspect endpoint, expected differences.
type Row = (
    &'static str,
    Value,
    Value,
    Value,
    Value,
    Value,
    Vec<&'static str>,
);

#[test]
fn what_the_engine_does_to_a_create_body_is_adopted_and_a_real_difference_is_not() {
    let table: Vec<Row> = vec![
        (
            "an empty command takes the image's (`command: []`)",
            json!({"Cmd": []}),
            json!({}),
            json!({"Cmd": ["/usr/local/bin/idle"]}),
            json!({}),
            json!({}),
            vec![],
        ),
        (
            "a set command must match",
            json!({"Cmd": ["sleep", "1"]}),
            json!({}),
            json!({"Cmd": ["/usr/local/bin/idle"]}),
            json!({}),
            json!({}),
            vec!["Config.Cmd"],
        ),
        (
            "links on a user-defined network are kept on the endpoint",
            json!({}),
            json!({"Links": ["p-db-1:db", "p-db-1:db-1", "p-db-1:p-db-1", "ext:alias"]}),
            json!({}),
            json!({"Links": null}),
            json!({"Links": ["p-db-1:db", "p-db-1:db-1", "p-db-1:p-db-1", "ext:alias"]}),
            vec![],
        ),
        (
            "a missing link is a difference",
            json!({}),
            json!({"Links": ["p-db-1:db", "ext:alias"]}),
            json!({}),
            json!({"Links": null}),
            json!({"Links": ["p-db-1:db"]}),
            vec!["HostConfig.Links"],
        ),
        (
            "the engine disables labels of a privileged container",
            json!({}),
            json!({"Privileged": true}),
            json!({}),
            json!({"Privileged": true, "SecurityOpt": ["label=disable"]}),
            json!({}),
            vec![],
        ),
        (
            "and of one sharing the host's PID namespace",
            json!({}),
            json!({"PidMode": "host"}),
            json!({}),
            json!({"PidMode": "host", "SecurityOpt": ["label=disable"]}),
            json!({}),
            vec![],
        ),
        (
            "but not of an ordinary one",
            json!({}),
            json!({}),
            json!({}),
            json!({"SecurityOpt": ["label=disable"]}),
            json!({}),
            vec!["HostConfig.SecurityOpt"],
        ),
        (
            "CpuPercent and a block-I/O weight the engine cannot apply are stored as 0",
            json!({}),
            json!({"CpuPercent": 5000, "BlkioWeight": 300}),
            json!({}),
            json!({"CpuPercent": 0, "BlkioWeight": 0}),
            json!({}),
            vec![],
        ),
        (
            "a block-I/O weight the engine did store must match",
            json!({}),
            json!({"BlkioWeight": 300}),
            json!({}),
            json!({"BlkioWeight": 200}),
            json!({}),
            vec!["HostConfig.BlkioWeight"],
        ),
        (
            "mount options an older engine does not know are dropped by it",
            json!({}),
            json!({"Mounts": [
                {"Type": "bind", "Source": "/d", "Target": "/d", "BindOptions": {"Propagation": "rprivate", "CreateMountpoint": true}},
                {"Type": "volume", "Source": "p_v", "Target": "/v", "VolumeOptions": {"Subpath": "sub"}}
            ]}),
            json!({}),
            json!({"Mounts": [
                {"Type": "bind", "Source": "/d", "Target": "/d", "BindOptions": {"Propagation": "rprivate"}},
                {"Type": "volume", "Source": "p_v", "Target": "/v", "VolumeOptions": {}}
            ]}),
            json!({}),
            vec![],
        ),
        (
            "but one the engine kept must match",
            json!({}),
            json!({"Mounts": [{"Type": "volume", "Source": "p_v", "Target": "/v", "VolumeOptions": {"Subpath": "sub"}}]}),
            json!({}),
            json!({"Mounts": [{"Type": "volume", "Source": "p_v", "Target": "/v", "VolumeOptions": {"Subpath": "other"}}]}),
            json!({}),
            vec!["HostConfig.Mounts"],
        ),
    ];
    for (what, bc, bh, ic, ih, ie, want) in table {
        let got = adoption_diff(&body(bc, bh), &inspect(ic, ih, ie));
        assert_eq!(got, want, "{what}");
    }
}
