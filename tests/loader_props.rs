//! Property tests: the whole loader (files on disk through `spindle::desired::load`) never panics, whatever the input.

use proptest::prelude::*;
use serde_json::{Map, Value};
use spindle::desired::{self, Request};

/// Keys that compose files use, so that random documents reach deep into the pipeline.
const KEYS: &[&str] = &[
    "services",
    "networks",
    "volumes",
    "secrets",
    "configs",
    "name",
    "include",
    "image",
    "ports",
    "environment",
    "env_file",
    "depends_on",
    "condition",
    "healthcheck",
    "test",
    "interval",
    "deploy",
    "resources",
    "limits",
    "cpus",
    "memory",
    "volumes_from",
    "extends",
    "service",
    "file",
    "profiles",
    "command",
    "entrypoint",
    "labels",
    "ulimits",
    "nofile",
    "soft",
    "hard",
    "target",
    "published",
    "source",
    "type",
    "bind",
    "external",
    "driver",
    "ipam",
    "config",
    "subnet",
    "extra_hosts",
    "tmpfs",
    "build",
    "context",
    "web",
    "db",
    "default",
    "x-a",
    "network_mode",
    "restart",
    "scale",
    "mem_limit",
    "stop_grace_period",
    "required",
    "path",
    "links",
    "secrets",
];

const SCALARS: &[&str] = &[
    "80:80",
    "127.0.0.1:8080-8081:80-81/udp",
    "[::1]:53:53",
    "./data:/data:ro",
    "vol:/v",
    "1m30s",
    "512M",
    "0.5",
    "service_healthy",
    "${A}",
    "${A:-x}",
    "${B:?boom}",
    "$$",
    "db",
    "service:db",
    "CMD",
    "true",
    "-1",
    "0755",
    "2024-01-01",
    "~/x",
    "../up",
    "",
    "*",
    "a=b",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        proptest::sample::select(SCALARS).prop_map(|s| Value::String(s.to_string())),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        ".{0,12}".prop_map(Value::String),
    ]
}

fn tree() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..5).prop_map(
                |kvs| {
                    let mut m = Map::new();
                    for (k, v) in kvs {
                        m.insert(k.to_string(), v);
                    }
                    Value::Object(m)
                }
            ),
        ]
    })
}

fn load(compose: &str, env: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("compose.yaml"), compose).expect("write");
    std::fs::write(dir.path().join(".env"), env).expect("write");
    std::fs::write(dir.path().join("other.yaml"), compose).expect("write");
    let req = Request {
        desired_state: Some(dir.path().to_path_buf()),
        cwd: dir.path().to_path_buf(),
        ..Request::default()
    };
    // Either a project or an error; a panic fails the property.
    let _ = desired::load(&req);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn the_loader_never_panics_on_arbitrary_text(compose in ".{0,200}", env in ".{0,80}") {
        load(&compose, &env);
    }

    #[test]
    fn the_loader_never_panics_on_arbitrary_compose_shaped_documents(doc in tree(), env in "([A-Z]{1,3}=.{0,6}\n){0,4}") {
        let yaml = yaml_serde::to_string(&doc).expect("serializes");
        load(&yaml, &env);
    }

    #[test]
    fn the_loader_never_panics_on_services_built_from_compose_keys(services in proptest::collection::vec((proptest::sample::select(&["web", "db", "app"][..]), tree()), 1..4)) {
        let mut m = Map::new();
        for (name, s) in services {
            m.insert(name.to_string(), s);
        }
        let doc = serde_json::json!({"services": Value::Object(m), "volumes": {"vol": null}});
        let yaml = yaml_serde::to_string(&doc).expect("serializes");
        load(&yaml, "A=1\n");
    }
}
