//! Table tests: canonical models next to what `docker-compose config --format json` (v5.6.1) printed for the same project.

use indexmap::IndexMap;
use pretty_assertions::assert_eq;
use proptest::prelude::*;

use super::*;

/// `(case, active profiles)`; each case has `fixtures/<case>/compose.yaml` (what compose
/// read), `input.yaml` (the canonical model handed to this stage) and `expected.json`.
const CASES: &[(&str, &[&str])] = &[
    ("basic", &[]),
    ("healthcheck", &[]),
    ("sizes", &[]),
    ("cpus", &[]),
    ("ports", &[]),
    ("ulimits", &[]),
    ("blkio", &[]),
    ("deploy", &[]),
    ("envlist", &[]),
    ("envmap", &[]),
    ("envfile", &[]),
    ("profiles", &[]),
    ("profiles_star", &["*"]),
    ("hosts", &[]),
    ("labels", &[]),
    ("objects", &[]),
    ("external", &[]),
    ("extensions", &[]),
    ("build", &[]),
    ("dollar", &[]),
    ("gpus", &[]),
    ("develop", &[]),
    ("misc", &[]),
    ("edges", &[]),
    ("wide", &[]),
];

fn fixture(case: &str, file: &str) -> String {
    let path = format!(
        "{}/src/desired/emit/fixtures/{case}/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The environment compose ran with.
fn lookup(name: &str) -> Option<String> {
    let v = match name {
        "SEEN" => "env-seen",
        "B" => "from-env",
        "HOME" => "/root",
        "SECRET_ENV" => "1",
        "CFG_ENV" => "2",
        _ => return None,
    };
    Some(v.to_string())
}

/// Stands in for the dotenv reader on the `envfile` fixture's files.
fn read_env_file(
    entry: &EnvFileEntry<'_>,
    interpolate: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<IndexMap<String, String>>, String> {
    let required = entry.required;
    let pairs: Vec<(&str, String)> = match entry.path.file_name().and_then(|f| f.to_str()) {
        Some("one.env") => vec![
            ("A", "file1".into()),
            ("F1", "one".into()),
            ("X", interpolate("SEEN").unwrap_or_default()),
            ("B", "file-b".into()),
        ],
        Some("two.env") => vec![("F1", "two".into()), ("F2", "two".into())],
        _ if required => return Err("not found".into()),
        _ => return Ok(None),
    };
    Ok(Some(
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    ))
}

/// Stands in for the dotenv reader on the `edges` fixture's label file.
fn read_label_file(
    path: &std::path::Path,
    _known: &dyn Fn(&str) -> Option<String>,
) -> Result<IndexMap<String, String>, String> {
    match path.file_name().and_then(|f| f.to_str()) {
        Some("a.label") => Ok([("L1", "one"), ("L2", "one-x")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()),
        _ => Err("not found".into()),
    }
}

fn run(case: &str, profiles: &[&str]) -> Result<Tree, EmitError> {
    let mut model: Tree = yaml_serde::from_str(&fixture(case, "input.yaml"))
        .unwrap_or_else(|e| panic!("{case}: {e}"));
    let active: Vec<String> = profiles.iter().map(|p| p.to_string()).collect();
    apply_profiles(&mut model, &active)?;
    if let Some(Tree::Object(services)) = model.get_mut("services") {
        for service in services.values_mut() {
            if let Tree::Object(service) = service {
                resolve_environment_interpolated(service, &lookup, &read_env_file)?;
                resolve_labels(service, &read_label_file)?;
            }
        }
    }
    emit(model)
}

/// Paths where two trees differ, with both sides, for readable failures.
fn differences(got: &Tree, want: &Tree, at: String, out: &mut Vec<String>) {
    match (got, want) {
        (Tree::Object(a), Tree::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(w) => differences(v, w, format!("{at}.{k}"), out),
                    None => out.push(format!("{at}.{k}: unexpected {v}")),
                }
            }
            for (k, w) in b {
                if !a.contains_key(k) {
                    out.push(format!("{at}.{k}: missing, compose has {w}"));
                }
            }
        }
        (Tree::Array(a), Tree::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                differences(v, w, format!("{at}[{i}]"), out);
            }
        }
        _ if got != want => out.push(format!("{at}: got {got}, compose has {want}")),
        _ => {}
    }
}

fn assert_same(got: &Tree, want: &Tree, case: &str) {
    let mut out = Vec::new();
    differences(got, want, String::new(), &mut out);
    assert!(out.is_empty(), "{case}:\n{}", out.join("\n"));
}

#[test]
fn every_fixture_prints_what_compose_printed() {
    for (case, profiles) in CASES {
        let want: Tree = serde_json::from_str(&fixture(case, "expected.json")).expect("json");
        let got = run(case, profiles).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_same(&got, &want, case);
    }
}

#[test]
fn the_output_of_compose_reads_back_unchanged() {
    // compose's output is itself a canonical model (minus `$` escaping).
    for (case, _) in CASES {
        let printed: Tree = serde_json::from_str(&fixture(case, "expected.json")).expect("json");
        if printed.to_string().contains('$') {
            continue;
        }
        // The defaults stage would set this again; absent means true in compose's output.
        let mut model = printed.clone();
        set_default_create_host_path(&mut model);
        let again = emit(model).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_same(&again, &printed, case);
    }
}

fn set_default_create_host_path(v: &mut Tree) {
    match v {
        Tree::Object(m) => {
            if let Some(Tree::Object(bind)) = m.get_mut("bind") {
                bind.entry("create_host_path").or_insert(Tree::Bool(true));
            }
            m.values_mut().for_each(set_default_create_host_path);
        }
        Tree::Array(items) => items.iter_mut().for_each(set_default_create_host_path),
        _ => {}
    }
}

fn service_model(service: serde_json::Value) -> Tree {
    serde_json::json!({"name": "t", "services": {"web": service}})
}

#[test]
fn invalid_typed_values_are_reported_with_their_path() {
    let table = [
        (
            serde_json::json!({"image": "x", "mem_limit": "lots"}),
            "services.web.mem_limit",
            "byte size",
        ),
        (
            serde_json::json!({"healthcheck": {"interval": "10"}}),
            "services.web.healthcheck.interval",
            "duration",
        ),
        (
            serde_json::json!({"stop_grace_period": "1y"}),
            "services.web.stop_grace_period",
            "duration",
        ),
        (
            serde_json::json!({"cpus": "half"}),
            "services.web.cpus",
            "number",
        ),
        (
            serde_json::json!({"privileged": "maybe"}),
            "services.web.privileged",
            "boolean",
        ),
        (
            serde_json::json!({"ports": [{"target": -1}]}),
            "services.web.ports[0].target",
            "unsigned integer",
        ),
        (
            serde_json::json!({"ulimits": {"nofile": {"soft": "x"}}}),
            "services.web.ulimits.nofile.soft",
            "ulimit",
        ),
        (
            serde_json::json!({"command": "echo 'open"}),
            "services.web.command",
            "command",
        ),
        (
            serde_json::json!({"deploy": {"resources": {"limits": {"cpus": "x"}}}}),
            "services.web.deploy.resources.limits.cpus",
            "cpus",
        ),
        (
            serde_json::json!({"extra_hosts": ["nohost"]}),
            "services.web.extra_hosts[0]",
            "extra host",
        ),
        (
            serde_json::json!({"secrets": [{"source": "s", "mode": "9"}]}),
            "services.web.secrets[0].mode",
            "file mode",
        ),
        (
            serde_json::json!({"blkio_config": {"weight": 70000}}),
            "services.web.blkio_config.weight",
            "unsigned integer",
        ),
        (
            serde_json::json!({"blkio_config": {"weight": "10"}}),
            "services.web.blkio_config.weight",
            "unsigned integer",
        ),
        (
            serde_json::json!({"cpu_shares": "many"}),
            "services.web.cpu_shares",
            "integer",
        ),
    ];
    for (service, path, kind) in table {
        match emit(service_model(service.clone())) {
            Err(EmitError::Invalid {
                path: p, kind: k, ..
            }) => {
                assert_eq!((p.to_string(), k), (path.to_string(), kind), "{service}");
            }
            other => panic!("{service}: expected an error, got {other:?}"),
        }
    }
}

#[test]
fn a_service_requiring_a_disabled_service_is_an_error() {
    let mut model = serde_json::json!({
        "services": {
            "a": {"image": "x", "profiles": ["p"]},
            "b": {"image": "x", "depends_on": {"a": {"condition": "service_started", "required": true}}},
        }
    });
    let err = apply_profiles(&mut model, &[]).expect_err("required dependency");
    assert_eq!(
        err.to_string(),
        "services.b.depends_on: refers to service \"a\", which is disabled by profiles"
    );
    let mut model2 = model.clone();
    assert!(apply_profiles(&mut model2, &["p".to_string()]).is_ok());
}

#[test]
fn network_mode_and_build_contexts_naming_a_disabled_service_are_errors() {
    let table = [
        (
            serde_json::json!({"image": "x", "network_mode": "service:a"}),
            "services.b.network_mode",
        ),
        (
            serde_json::json!({"build": {"context": ".", "additional_contexts": {"base": "service:a"}}}),
            "services.b.build.additional_contexts.base",
        ),
    ];
    for (b, path) in table {
        let mut model = serde_json::json!({
            "services": {"a": {"image": "x", "profiles": ["p"]}, "b": b}
        });
        match apply_profiles(&mut model, &[]) {
            Err(EmitError::DisabledDependency {
                path: p,
                dependency,
            }) => {
                assert_eq!(
                    (p.to_string(), dependency.as_str()),
                    (path.to_string(), "a")
                );
            }
            other => panic!("{path}: expected an error, got {other:?}"),
        }
    }
}

#[test]
fn a_missing_required_env_file_is_an_error_naming_the_entry() {
    let mut service = serde_json::json!({
        "env_file": [{"path": "/nope/a.env", "required": true}]
    });
    let Tree::Object(service) = &mut service else {
        unreachable!()
    };
    let err = resolve_environment(service, &|_| None, &|_, required| {
        if required {
            Err("no such file".into())
        } else {
            Ok(None)
        }
    })
    .expect_err("missing file");
    assert!(
        err.to_string()
            .starts_with("env_file[0]: cannot read env file"),
        "{err}"
    );
}

#[test]
fn label_files_sit_under_the_service_labels() {
    let mut service = serde_json::json!({
        "labels": {"a": "own"},
        "label_file": ["/x/one.label", "/x/two.label"]
    });
    let Tree::Object(service) = &mut service else {
        unreachable!()
    };
    resolve_labels(service, &|path, known| {
        let mut m = IndexMap::new();
        if path.ends_with("one.label") {
            m.insert("a".to_string(), "file".to_string());
            m.insert("b".to_string(), "one".to_string());
        } else {
            m.insert("c".to_string(), known("b").unwrap_or_default());
        }
        Ok(m)
    })
    .expect("labels");
    assert_eq!(
        Tree::Object(service.clone()),
        serde_json::json!({
            "labels": {"a": "own", "b": "one", "c": "one"},
            "label_file": ["/x/one.label", "/x/two.label"]
        })
    );
}

/// Field paths the per-field proptest fills with arbitrary values.
const FIELD_PATHS: &[&str] = &[
    "profiles",
    "annotations",
    "attach",
    "build",
    "build.args",
    "build.ssh",
    "build.labels",
    "build.cache_from",
    "build.extra_hosts",
    "build.secrets.*",
    "build.secrets.*.mode",
    "build.shm_size",
    "build.ulimits.nofile",
    "develop.watch.*",
    "develop.watch.*.exec.command",
    "blkio_config.weight",
    "blkio_config.weight_device.*",
    "blkio_config.device_read_bps.*.rate",
    "cpu_percent",
    "cpus",
    "cpu_shares",
    "command",
    "entrypoint",
    "configs.*",
    "configs.*.mode",
    "depends_on.db",
    "depends_on.db.required",
    "deploy.replicas",
    "deploy.labels",
    "deploy.update_config.delay",
    "deploy.update_config.parallelism",
    "deploy.update_config.max_failure_ratio",
    "deploy.resources.limits.cpus",
    "deploy.resources.limits.memory",
    "deploy.resources.reservations.devices.*.count",
    "deploy.resources.reservations.generic_resources.*.discrete_resource_spec",
    "deploy.restart_policy.delay",
    "deploy.restart_policy.max_attempts",
    "deploy.placement.max_replicas_per_node",
    "devices.*",
    "dns",
    "dns_search",
    "environment",
    "env_file",
    "env_file.*",
    "env_file.*.required",
    "expose",
    "extra_hosts",
    "extra_hosts.h",
    "gpus.*",
    "healthcheck.test",
    "healthcheck.interval",
    "healthcheck.retries",
    "labels",
    "label_file",
    "logging.options",
    "mem_limit",
    "memswap_limit",
    "models.m",
    "networks.n",
    "networks.n.aliases",
    "networks.n.driver_opts",
    "networks.n.priority",
    "ports.*",
    "ports.*.target",
    "ports.*.published",
    "provider.options",
    "scale",
    "secrets.*",
    "shm_size",
    "stop_grace_period",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "ulimits.nofile",
    "ulimits.nofile.soft",
    "volumes.*",
    "volumes.*.tmpfs.size",
    "volumes.*.tmpfs.mode",
    "volumes.*.bind.create_host_path",
    "volumes.*.volume.labels",
    "pre_start.*.command",
    "post_start.*.environment",
    "ipam.config.*",
    "ipam.config.*.aux_addresses",
    "driver_opts",
    "external",
    "enable_ipv6",
    "content",
    "environment",
];

fn arb_tree() -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![
        Just(Tree::Null),
        any::<bool>().prop_map(Tree::Bool),
        any::<i64>().prop_map(Tree::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Tree::Number)
            .unwrap_or(Tree::Null)),
        "[a-z0-9 .:=$'\"\\\\-]{0,12}".prop_map(Tree::String),
        prop::sample::select(vec![
            "1m30s", "10s", "512M", "1g", "0.5", "all", "0755", "a=b", "true", "-1", "1.5k", "",
        ])
        .prop_map(|s| Tree::String(s.to_string())),
    ];
    let keys = prop::sample::select(vec![
        "services",
        "web",
        "networks",
        "volumes",
        "secrets",
        "configs",
        "name",
        "image",
        "command",
        "entrypoint",
        "environment",
        "env_file",
        "healthcheck",
        "interval",
        "test",
        "deploy",
        "resources",
        "limits",
        "cpus",
        "memory",
        "ports",
        "target",
        "published",
        "ulimits",
        "nofile",
        "soft",
        "hard",
        "mem_limit",
        "extra_hosts",
        "labels",
        "tmpfs",
        "blkio_config",
        "device_read_bps",
        "rate",
        "profiles",
        "depends_on",
        "required",
        "build",
        "ssh",
        "mode",
        "count",
        "devices",
        "x-a",
        "ipam",
        "config",
        "develop",
        "watch",
        "exec",
        "secrets",
        "source",
        "label_file",
        "path",
    ]);
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Tree::Array),
            prop::collection::vec((keys.clone(), inner), 0..5).prop_map(|kv| {
                Tree::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

proptest! {
    #[test]
    fn no_input_makes_the_emitter_panic(tree in arb_tree(), star in any::<bool>()) {
        let mut model = tree;
        let active = if star { vec!["*".to_string()] } else { Vec::new() };
        let _ = apply_profiles(&mut model, &active);
        if let Some(Tree::Object(services)) = model.get_mut("services") {
            for service in services.values_mut() {
                if let Tree::Object(service) = service {
                    let _ = resolve_environment(service, &|_| None, &|_, _| Ok(None));
                    let _ = resolve_labels(service, &|_, _| Ok(IndexMap::new()));
                }
            }
        }
        let _ = emit(model);
    }

    #[test]
    fn services_nested_anywhere_do_not_panic(service in arb_tree()) {
        let _ = emit(service_model(service));
    }

    #[test]
    fn any_value_at_any_field_does_not_panic(
        field in prop::sample::select(FIELD_PATHS.to_vec()),
        value in arb_tree(),
    ) {
        // Builds `{"a": {"b": value}}` from `a.b`, `*` standing for a list element.
        let mut node = value;
        for key in field.rsplit('.') {
            node = if key == "*" {
                Tree::Array(vec![node])
            } else {
                serde_json::json!({ key: node })
            };
        }
        let mut model = service_model(node.clone());
        let _ = apply_profiles(&mut model, &[]);
        let _ = emit(model);
        let _ = emit(serde_json::json!({"services": {}, "networks": {"n": node.clone()}}));
        let _ = emit(serde_json::json!({"volumes": {"v": node.clone()}, "secrets": {"s": node}}));
    }
}
