//! Table tests for the canonical, defaults and path stages, checked against Compose v5 where noted.

use proptest::prelude::*;
use serde_json::json;

use super::*;

fn canon(mut tree: Tree) -> Result<Tree, CanonicalError> {
    canonical(&mut tree)?;
    Ok(tree)
}

/// Canonical form of one service attribute `key: value` on service `web`.
fn canon_attr(key: &str, value: Tree) -> Result<Tree, CanonicalError> {
    let tree = canon(json!({"services": {"web": {key: value}}}))?;
    Ok(tree["services"]["web"][key].clone())
}

fn error_of(result: Result<Tree, CanonicalError>) -> (String, String) {
    match result {
        Ok(t) => panic!("expected an error, got {t}"),
        Err(CanonicalError::Invalid { path, reason }) => (path.to_string(), reason),
    }
}

#[test]
fn short_service_attributes_take_their_long_form() {
    let rows: Vec<(&str, Tree, Tree)> = vec![
        (
            "depends_on",
            json!(["db", "cache"]),
            json!({"db": {"condition": "service_started", "required": true},
                   "cache": {"condition": "service_started", "required": true}}),
        ),
        (
            "depends_on",
            json!({"db": {"condition": "service_healthy"}, "q": {"required": false}}),
            json!({"db": {"condition": "service_healthy", "required": true},
                   "q": {"required": false, "condition": "service_started"}}),
        ),
        (
            "env_file",
            json!("a.env"),
            json!([{"path": "a.env", "required": true}]),
        ),
        (
            "env_file",
            json!(["a.env", {"path": "b.env", "required": false}, {"path": "c.env", "format": "raw"}]),
            json!([{"path": "a.env", "required": true}, {"path": "b.env", "required": false},
                   {"path": "c.env", "format": "raw", "required": true}]),
        ),
        ("env_file", json!([1]), json!([null])),
        ("label_file", json!("l.labels"), json!(["l.labels"])),
        ("label_file", json!(["a", "b"]), json!(["a", "b"])),
        ("dns", json!("8.8.8.8"), json!(["8.8.8.8"])),
        ("dns", json!(["", "8.8.8.8", null]), json!(["8.8.8.8"])),
        ("dns", json!(""), json!([])),
        ("extends", json!("base"), json!({"service": "base"})),
        (
            "extends",
            json!({"service": "base", "file": "b.yaml"}),
            json!({"service": "base", "file": "b.yaml"}),
        ),
        ("gpus", json!("all"), json!([{"count": "all"}])),
        ("gpus", json!("anything"), json!([{"count": "all"}])),
        (
            "gpus",
            json!([{"driver": "nvidia", "count": 2}]),
            json!([{"driver": "nvidia", "count": 2}]),
        ),
        (
            "networks",
            json!(["front", "back"]),
            json!({"front": null, "back": null}),
        ),
        (
            "networks",
            json!({"front": {"aliases": ["a"]}}),
            json!({"front": {"aliases": ["a"]}}),
        ),
        ("models", json!(["llm"]), json!({"llm": null})),
        (
            "devices",
            json!(["/dev/a", "/dev/b:/dev/c", "/dev/d::r", "/dev/e:/dev/f:rw"]),
            json!([
                {"source": "/dev/a", "target": "/dev/a", "permissions": "rwm"},
                {"source": "/dev/b", "target": "/dev/c", "permissions": "rwm"},
                {"source": "/dev/d", "target": "/dev/d", "permissions": "r"},
                {"source": "/dev/e", "target": "/dev/f", "permissions": "rw"}
            ]),
        ),
        (
            "devices",
            json!([{"source": "/dev/a", "target": "/x", "permissions": "r"}]),
            json!([{"source": "/dev/a", "target": "/x", "permissions": "r"}]),
        ),
        (
            "secrets",
            json!(["s1", {"source": "s2", "target": "/t"}]),
            json!([{"source": "s1"}, {"source": "s2", "target": "/t"}]),
        ),
        ("configs", json!(["c1"]), json!([{"source": "c1"}])),
        ("ulimits", json!({"nofile": 1024}), json!({"nofile": 1024})),
        (
            "ulimits",
            json!({"nofile": {"soft": 1, "hard": 2}}),
            json!({"nofile": {"soft": 1, "hard": 2}}),
        ),
        ("build", json!("./app"), json!({"context": "./app"})),
        (
            "build",
            json!({"context": ".", "provenance": true, "sbom": false}),
            json!({"context": ".", "provenance": "true", "sbom": "false"}),
        ),
        (
            "build",
            json!({"provenance": "mode=max", "sbom": 1.5}),
            json!({"provenance": "mode=max", "sbom": "1.5"}),
        ),
        (
            "build",
            json!({"additional_contexts": ["foo=../foo", "img=docker-image://alpine", "e="]}),
            json!({"additional_contexts": {"foo": "../foo", "img": "docker-image://alpine", "e": ""}}),
        ),
        (
            "build",
            json!({"ssh": ["default", "key=./id_rsa"]}),
            json!({"ssh": {"default": null, "key": "./id_rsa"}}),
        ),
        (
            "build",
            json!({"ssh": {"default": null}}),
            json!({"ssh": {"default": null}}),
        ),
        (
            "build",
            json!({"secrets": ["s1", {"source": "s2"}], "ulimits": {"nproc": 65535}}),
            json!({"secrets": [{"source": "s1"}, {"source": "s2"}], "ulimits": {"nproc": 65535}}),
        ),
        (
            "develop",
            json!({"watch": [{"path": "./src", "action": "sync", "ignore": "node_modules", "include": "*.js"}]}),
            json!({"watch": [{"path": "./src", "action": "sync", "ignore": ["node_modules"], "include": ["*.js"]}]}),
        ),
        ("image", json!("nginx"), json!("nginx")),
        ("environment", json!(["A=1"]), json!(["A=1"])),
    ];
    for (key, input, want) in rows {
        let got = canon_attr(key, input.clone()).unwrap_or_else(|e| panic!("{key} {input}: {e}"));
        assert_eq!(got, want, "{key}: {input}");
    }
}

#[test]
fn short_ports_expand_in_place_keeping_long_entries() {
    let got = canon_attr(
        "ports",
        json!([
            "9-10:9-10",
            3000,
            {"target": 81, "published": "8081"},
            "[::1]:80:80",
            "127.0.0.1:8000-8010:80/UDP"
        ]),
    );
    let want = json!([
        {"mode": "ingress", "target": 10, "published": "10", "protocol": "tcp"},
        {"mode": "ingress", "target": 9, "published": "9", "protocol": "tcp"},
        {"mode": "ingress", "target": 3000, "protocol": "tcp"},
        {"target": 81, "published": "8081"},
        {"mode": "ingress", "host_ip": "::1", "target": 80, "published": "80", "protocol": "tcp"},
        {"mode": "ingress", "host_ip": "127.0.0.1", "target": 80, "published": "8000-8010", "protocol": "udp"}
    ]);
    assert_eq!(got.ok(), Some(want));
    assert_eq!(canon_attr("ports", json!([])).ok(), Some(json!([])));
}

#[test]
fn short_volumes_become_mounts_and_long_ones_are_kept() {
    let got = canon_attr(
        "volumes",
        json!([
            "./src:/dst:ro,z",
            "data:/data",
            {"type": "tmpfs", "target": "/tmp", "tmpfs": {"size": 1000}}
        ]),
    );
    let want = json!([
        {"type": "bind", "source": "./src", "target": "/dst", "read_only": true,
         "bind": {"selinux": "z", "create_host_path": true}},
        {"type": "volume", "source": "data", "target": "/data", "volume": {}},
        {"type": "tmpfs", "target": "/tmp", "tmpfs": {"size": 1000}}
    ]);
    assert_eq!(got.ok(), Some(want));
}

#[test]
fn invalid_short_syntax_is_reported_with_its_path_and_expected_shape() {
    let rows: Vec<(&str, Tree, &str, &str)> = vec![
        (
            "ports",
            json!(["80", "80:80:80:80"]),
            "services.web.ports[1]",
            "invalid IP address",
        ),
        (
            "ports",
            json!(["abc"]),
            "services.web.ports[0]",
            "not a number",
        ),
        (
            "ports",
            json!(["8000-8001:80-82"]),
            "services.web.ports[0]",
            "differ in size",
        ),
        (
            "ports",
            json!(["80/icmp"]),
            "services.web.ports[0]",
            "tcp, udp or sctp",
        ),
        ("ports", json!([true]), "services.web.ports[0]", "boolean"),
        ("ports", json!([8.5]), "services.web.ports[0]", "number"),
        ("ports", json!("80"), "services.web.ports", "string"),
        ("ports", json!(null), "services.web.ports", "null"),
        (
            "volumes",
            json!(["::b"]),
            "services.web.volumes[0]",
            "invalid volume spec",
        ),
        (
            "volumes",
            json!(["./a:/b:ro:x"]),
            "services.web.volumes[0]",
            "too many colons",
        ),
        ("volumes", json!([""]), "services.web.volumes[0]", "empty"),
        ("volumes", json!([7]), "services.web.volumes[0]", "number"),
        (
            "ulimits",
            json!({"nofile": "1024"}),
            "services.web.ulimits.nofile",
            "string",
        ),
        (
            "ulimits",
            json!({"nofile": 1.5}),
            "services.web.ulimits.nofile",
            "number",
        ),
        (
            "devices",
            json!(["/a:/b:r:x"]),
            "services.web.devices[0]",
            "confusing device mapping",
        ),
        (
            "depends_on",
            json!([1]),
            "services.web.depends_on[0]",
            "number",
        ),
        (
            "depends_on",
            json!({"db": "x"}),
            "services.web.depends_on.db",
            "string",
        ),
        (
            "depends_on",
            json!("db"),
            "services.web.depends_on",
            "string",
        ),
        ("env_file", json!(3), "services.web.env_file", "number"),
        ("build", json!(1), "services.web.build", "number"),
        (
            "build",
            json!({"ssh": ["nokey"]}),
            "services.web.build.ssh[0]",
            "ssh key",
        ),
        (
            "build",
            json!({"additional_contexts": ["x"]}),
            "services.web.build.additional_contexts[0]",
            "KEY=VALUE",
        ),
        (
            "networks",
            json!(["a", 1]),
            "services.web.networks[1]",
            "number",
        ),
        ("gpus", json!(1), "services.web.gpus", "number"),
        ("secrets", json!([1]), "services.web.secrets[0]", "number"),
        ("extends", json!(1), "services.web.extends", "number"),
    ];
    for (key, input, want_path, want_text) in rows {
        let (path, reason) = error_of(canon_attr(key, input.clone()));
        assert_eq!(path, want_path, "{key}: {input}");
        assert!(reason.contains(want_text), "{key}: {input}: {reason}");
    }
}

#[test]
fn deprecated_external_name_becomes_name_and_external_true() {
    let got = canon(json!({
        "networks": {"front": {"external": {"name": "real"}}, "back": {"external": true}, "n": null},
        "volumes": {"v": {"external": {"name": "x"}, "name": "x"}},
        "secrets": {"s": {"external": {}}},
        "configs": {"c": {"file": "./c"}}
    }));
    let want = json!({
        "networks": {"front": {"external": true, "name": "real"}, "back": {"external": true}, "n": null},
        "volumes": {"v": {"external": true, "name": "x"}},
        "secrets": {"s": {"external": true}},
        "configs": {"c": {"file": "./c"}}
    });
    assert_eq!(got.ok(), Some(want));
}

#[test]
fn a_conflicting_external_name_is_an_error() {
    let (path, reason) = error_of(canon(
        json!({"volumes": {"v": {"external": {"name": "x"}, "name": "y"}}}),
    ));
    assert_eq!(path, "volumes.v");
    assert!(reason.contains("conflict"), "{reason}");
}

#[test]
fn includes_given_as_paths_become_mappings() {
    let got = canon(json!({"include": ["a.yaml", {"path": ["b.yaml"], "env_file": "x.env"}]}));
    assert_eq!(
        got.ok(),
        Some(json!({"include": [{"path": "a.yaml"}, {"path": ["b.yaml"], "env_file": "x.env"}]}))
    );
    let (path, _) = error_of(canon(json!({"include": [1]})));
    assert_eq!(path, "include[0]");
}

#[test]
fn a_service_that_is_not_a_mapping_is_left_alone() {
    assert_eq!(
        canon(json!({"services": {"web": null, "x": "y"}})).ok(),
        Some(json!({"services": {"web": null, "x": "y"}}))
    );
}

#[test]
fn go_formats_non_string_provenance_like_fmt_sprint() {
    for (v, want) in [
        (json!(true), "true"),
        (json!(1), "1"),
        (json!(1.0), "1"),
        (json!(0.5), "0.5"),
        (json!(1e21), "1e+21"),
        (json!(1e6), "1e+06"),
        (json!(123456.0), "123456"),
        (json!(1234567.5), "1.2345675e+06"),
        (json!(0.0001), "0.0001"),
        (json!(-2.5e-7), "-2.5e-07"),
        (json!(0.00001), "1e-05"),
        (json!(null), "<nil>"),
        (json!([1, "a"]), "[1 a]"),
        (json!({"b": 1, "a": true}), "map[a:true b:1]"),
    ] {
        assert_eq!(go_sprint(&v), want, "{v}");
    }
}

fn defaulted(mut tree: Tree) -> Result<Tree, CanonicalError> {
    set_defaults(&mut tree)?;
    Ok(tree)
}

#[test]
fn defaults_fill_only_what_is_missing() {
    let rows: Vec<(&str, Tree, Tree)> = vec![
        (
            "build",
            json!({"dockerfile": "D"}),
            json!({"dockerfile": "D", "context": "."}),
        ),
        (
            "build",
            json!({"context": "./x"}),
            json!({"context": "./x"}),
        ),
        (
            "secrets",
            json!([{"source": "s1"}, {"source": "s2", "target": "/t"}]),
            json!([{"source": "s1", "target": "/run/secrets/s1"}, {"source": "s2", "target": "/t"}]),
        ),
        (
            "configs",
            json!([{"source": "c1"}]),
            json!([{"source": "c1"}]),
        ),
        (
            "ports",
            json!([{"target": 80}, {"target": 53, "protocol": "udp", "mode": "host"}]),
            json!([{"target": 80, "protocol": "tcp", "mode": "ingress"},
                   {"target": 53, "protocol": "udp", "mode": "host"}]),
        ),
        (
            "gpus",
            json!([{"driver": "nvidia"}, {"count": 2}, {"device_ids": ["0"]}]),
            json!([{"driver": "nvidia", "count": "all"}, {"count": 2}, {"device_ids": ["0"]}]),
        ),
        (
            "volumes",
            json!([{"type": "bind", "source": "./a", "target": "/a", "bind": {"propagation": "rshared"}},
                   {"type": "bind", "source": "./b", "target": "/b", "bind": {"create_host_path": false}},
                   {"type": "volume", "source": "v", "target": "/v"}]),
            json!([{"type": "bind", "source": "./a", "target": "/a",
                    "bind": {"propagation": "rshared", "create_host_path": true}},
                   {"type": "bind", "source": "./b", "target": "/b", "bind": {"create_host_path": false}},
                   {"type": "volume", "source": "v", "target": "/v"}]),
        ),
    ];
    for (key, input, want) in rows {
        let got = defaulted(json!({"services": {"web": {key: input.clone()}}}))
            .unwrap_or_else(|e| panic!("{key} {input}: {e}"));
        assert_eq!(got["services"]["web"][key], want, "{key}: {input}");
    }
    let got = defaulted(
        json!({"services": {"web": {"deploy": {"resources": {"reservations": {
        "devices": [{"capabilities": ["gpu"]}]}}}}}}),
    );
    assert_eq!(
        got.ok().map(
            |t| t["services"]["web"]["deploy"]["resources"]["reservations"]["devices"].clone()
        ),
        Some(json!([{"capabilities": ["gpu"], "count": "all"}]))
    );
}

#[test]
fn defaults_reject_what_they_cannot_complete() {
    let (path, _) = error_of(defaulted(json!({"services": {"web": {"secrets": ["s1"]}}})));
    assert_eq!(path, "services.web.secrets[0]");
    let (path, _) = error_of(defaulted(
        json!({"services": {"web": {"volumes": [{"type": "bind", "bind": null}]}}}),
    ));
    assert_eq!(path, "services.web.volumes[0].bind");
}

fn resolved(mut tree: Tree) -> Result<Tree, CanonicalError> {
    resolve_paths_with_home(&mut tree, "/wd", Some("/home/u"))?;
    Ok(tree)
}

#[test]
fn relative_paths_are_resolved_against_the_working_directory() {
    let rows: Vec<(Tree, Tree)> = vec![
        (
            json!({"build": {"context": "."}}),
            json!({"build": {"context": "/wd"}}),
        ),
        (
            json!({"build": {"context": "./app"}}),
            json!({"build": {"context": "/wd/app"}}),
        ),
        (
            json!({"build": {"context": "../app"}}),
            json!({"build": {"context": "/app"}}),
        ),
        (
            json!({"build": {"context": "~/app"}}),
            json!({"build": {"context": "/home/u/app"}}),
        ),
        (
            json!({"build": {"context": "/abs"}}),
            json!({"build": {"context": "/abs"}}),
        ),
        (
            json!({"build": {"context": "https://github.com/x/y.git"}}),
            json!({"build": {"context": "https://github.com/x/y.git"}}),
        ),
        (
            json!({"build": {"context": "git@github.com:x/y.git"}}),
            json!({"build": {"context": "git@github.com:x/y.git"}}),
        ),
        (
            json!({"build": {"context": "github.com/x/y"}}),
            json!({"build": {"context": "github.com/x/y"}}),
        ),
        (
            json!({"build": {"context": "service:base"}}),
            json!({"build": {"context": "service:base"}}),
        ),
        (
            json!({"build": {"additional_contexts": {"a": "../foo", "b": "docker-image://alpine", "c": "service:db"}}}),
            json!({"build": {"additional_contexts": {"a": "/foo", "b": "docker-image://alpine", "c": "service:db"}}}),
        ),
        (
            json!({"build": {"ssh": {"default": null, "k": "./id", "w": "C:\\id"}}}),
            json!({"build": {"ssh": {"default": null, "k": "/wd/id", "w": "C:\\id"}}}),
        ),
        (
            json!({"env_file": [{"path": "a.env", "required": true}, {"path": "/b.env"}, {"path": ""}]}),
            json!({"env_file": [{"path": "/wd/a.env", "required": true}, {"path": "/b.env"}, {"path": ""}]}),
        ),
        (
            json!({"label_file": ["./l", "~/m"]}),
            json!({"label_file": ["/wd/l", "/home/u/m"]}),
        ),
        (
            json!({"extends": {"service": "b", "file": "base.yaml"}}),
            json!({"extends": {"service": "b", "file": "/wd/base.yaml"}}),
        ),
        (
            json!({"extends": {"service": "b", "file": "oci://reg/x"}}),
            json!({"extends": {"service": "b", "file": "oci://reg/x"}}),
        ),
        (
            json!({"volumes": [
                {"type": "bind", "source": "./src", "target": "/s"},
                {"type": "bind", "source": "../up", "target": "/u"},
                {"type": "bind", "source": "~/h", "target": "/h"},
                {"type": "bind", "source": "/abs/../x", "target": "/a"},
                {"type": "bind", "source": "c:/foo", "target": "/c"},
                {"type": "bind", "source": "a:", "target": "/d"},
                {"type": "bind", "source": ".", "target": "/e"},
                {"type": "volume", "source": "data", "target": "/v"},
                {"type": "volume", "source": "./notbind", "target": "/n"}
            ]}),
            json!({"volumes": [
                {"type": "bind", "source": "/wd/src", "target": "/s"},
                {"type": "bind", "source": "/up", "target": "/u"},
                {"type": "bind", "source": "/home/u/h", "target": "/h"},
                {"type": "bind", "source": "/abs/../x", "target": "/a"},
                {"type": "bind", "source": "c:/foo", "target": "/c"},
                {"type": "bind", "source": "/wd/a:", "target": "/d"},
                {"type": "bind", "source": "/wd", "target": "/e"},
                {"type": "volume", "source": "data", "target": "/v"},
                {"type": "volume", "source": "./notbind", "target": "/n"}
            ]}),
        ),
        (
            json!({"develop": {"watch": [{"path": "./src"}]}}),
            json!({"develop": {"watch": [{"path": "/wd/src"}]}}),
        ),
    ];
    for (input, want) in rows {
        let got = resolved(json!({"services": {"web": input.clone()}}))
            .unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(got["services"]["web"], want, "{input}");
    }
}

#[test]
fn top_level_files_and_bind_devices_are_resolved() {
    let got = resolved(json!({
        "secrets": {"s1": {"file": "./s1.txt"}, "s2": {"file": "~/s2"}, "s3": {"environment": "X"}},
        "configs": {"c1": {"file": "../c1.conf"}},
        "volumes": {
            "v": {"driver": "local", "driver_opts": {"o": "bind", "type": "none", "device": "./data"}},
            "w": {"driver": "local", "driver_opts": {"o": "size=1", "device": "./data"}},
            "x": {"driver": "other", "driver_opts": {"o": "bind", "device": "./data"}},
            "n": null
        },
        "include": [{"path": "inc.yaml"}]
    }));
    let want = json!({
        "secrets": {"s1": {"file": "/wd/s1.txt"}, "s2": {"file": "/home/u/s2"}, "s3": {"environment": "X"}},
        "configs": {"c1": {"file": "/c1.conf"}},
        "volumes": {
            "v": {"driver": "local", "driver_opts": {"o": "bind", "type": "none", "device": "/wd/data"}},
            "w": {"driver": "local", "driver_opts": {"o": "size=1", "device": "./data"}},
            "x": {"driver": "other", "driver_opts": {"o": "bind", "device": "./data"}},
            "n": null
        },
        // compose-go's include patterns never match a list: include paths are left to the include loader.
        "include": [{"path": "inc.yaml"}]
    });
    assert_eq!(got.ok(), Some(want));
}

#[test]
fn unresolvable_path_values_are_reported_with_their_path() {
    let rows: Vec<(Tree, &str)> = vec![
        (
            json!({"build": {"context": 1}}),
            "services.web.build.context",
        ),
        (
            json!({"env_file": [{"path": 1}]}),
            "services.web.env_file[0].path",
        ),
        (
            json!({"volumes": [{"type": "bind", "target": "/x"}]}),
            "services.web.volumes[0]",
        ),
        (
            json!({"volumes": [{"type": "bind", "source": 1}]}),
            "services.web.volumes[0]",
        ),
        (
            json!({"extends": {"file": true}}),
            "services.web.extends.file",
        ),
    ];
    for (input, want) in rows {
        let (path, _) = error_of(resolved(json!({"services": {"web": input.clone()}})));
        assert_eq!(path, want, "{input}");
    }
}

#[test]
fn a_symbolic_link_in_a_watch_path_is_resolved() {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let real = dir.path().join("real");
    let link = dir.path().join("link");
    if std::fs::create_dir(&real).is_err() || std::os::unix::fs::symlink(&real, &link).is_err() {
        return;
    }
    let mut tree = json!({"services": {"web": {"develop": {"watch": [{"path": "link/sub"}]}}}});
    let wd = dir.path().to_string_lossy().to_string();
    let result = resolve_paths_with_home(&mut tree, &wd, None);
    assert!(result.is_ok());
    let canonical_real = std::fs::canonicalize(&real).map(|p| p.to_string_lossy().to_string());
    assert_eq!(
        tree["services"]["web"]["develop"]["watch"][0]["path"].as_str(),
        canonical_real.ok().map(|r| format!("{r}/sub")).as_deref()
    );
}

/// Arbitrary scalars, biased towards the characters short syntaxes care about.
fn leaf() -> impl Strategy<Value = Tree> {
    prop_oneof![
        Just(Tree::Null),
        any::<bool>().prop_map(Tree::Bool),
        any::<i64>().prop_map(Tree::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Tree::Null, Tree::Number)),
        "[0-9a-z:/\\[\\]\\-,.~${}=+ \\\\é\0]{0,24}".prop_map(Tree::String),
        any::<String>().prop_map(Tree::String),
    ]
}

const KEYS: &[&str] = &[
    "services",
    "web",
    "ports",
    "volumes",
    "build",
    "context",
    "secrets",
    "configs",
    "depends_on",
    "env_file",
    "label_file",
    "extends",
    "gpus",
    "networks",
    "models",
    "dns",
    "devices",
    "ssh",
    "ulimits",
    "develop",
    "watch",
    "ignore",
    "include",
    "external",
    "name",
    "provenance",
    "sbom",
    "additional_contexts",
    "path",
    "file",
    "type",
    "source",
    "bind",
    "driver",
    "driver_opts",
    "o",
    "device",
    "deploy",
    "resources",
    "reservations",
    "target",
    "required",
];

fn tree() -> impl Strategy<Value = Tree> {
    leaf().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Tree::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                Tree::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

/// A document whose services, top-level resources and includes are arbitrary.
fn document() -> impl Strategy<Value = Tree> {
    (
        prop::collection::vec((prop::sample::select(KEYS), tree()), 0..8),
        tree(),
        tree(),
    )
        .prop_map(|(service, volumes, include)| {
            let service: Map = service
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            json!({"services": {"web": service}, "volumes": volumes, "networks": volumes,
                   "include": include})
        })
}

proptest! {
    #[test]
    fn no_tree_makes_any_stage_panic(doc in document()) {
        let mut t = doc.clone();
        let _ = canonical(&mut t);
        let _ = set_defaults(&mut t);
        let _ = resolve_paths_with_home(&mut t, "/wd", Some("/h"));
        let mut t = doc;
        let _ = set_defaults(&mut t);
        let _ = resolve_paths_with_home(&mut t, "/wd", None);
    }

    #[test]
    fn no_string_makes_the_short_syntax_parsers_panic(s in "[0-9a-z:/\\[\\]\\-,.~${}+\\\\é\0]{0,24}", t in any::<String>()) {
        for spec in [&s, &t] {
            let _ = ports::parse(spec);
            let _ = volume::parse(spec);
            let _ = device_mapping(spec);
            let _ = canon_attr("ports", json!([spec]));
            let _ = canon_attr("volumes", json!([spec]));
        }
    }
}

#[test]
fn an_invalid_port_error_names_the_key_path_and_never_the_value() {
    for (key, value) in [
        ("ports", json!(["tok\"val-123456"])),
        ("ports", json!(["[tok\"val-123456]:80:80"])),
        ("ports", json!(["tok\"val-123456:80"])),
        ("ports", json!(["80:80/tok\"val-123456"])),
        ("ports", json!(["8000-8001:tok\"val-123456"])),
        ("devices", json!(["tok\"val-123456:a:b:c"])),
    ] {
        let (path, reason) = error_of(canon_attr(key, value));
        assert!(path.starts_with(&format!("services.web.{key}")), "{path}");
        assert!(
            !reason.contains("tok") && !reason.contains("123456"),
            "{reason}"
        );
    }
}
