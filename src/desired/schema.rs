//! Checks a merged compose tree against the keys the Compose specification allows, naming the key path of anything unknown.

use std::path::{Path, PathBuf};

use super::tree::{KeyPath, Map, Tree, type_name};

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(
        "{path}: unknown key{hint}; remove it or fix its spelling (keys starting with x- are free for extensions)"
    )]
    UnknownKey { path: KeyPath, hint: String },
    #[error("{path}: must be {expected}, not {found}")]
    WrongType {
        path: KeyPath,
        expected: &'static str,
        found: &'static str,
    },
    #[error("{file}: {source}")]
    InFile {
        file: PathBuf,
        #[source]
        source: Box<SchemaError>,
    },
}

impl SchemaError {
    pub fn in_file(self, file: &Path) -> super::DesiredError {
        super::DesiredError::Schema(SchemaError::InFile {
            file: file.to_path_buf(),
            source: Box::new(self),
        })
    }
}

const TOP: &[&str] = &[
    "version", "name", "include", "services", "networks", "volumes", "secrets", "configs", "models",
];
const SERVICE: &[&str] = &[
    "annotations",
    "attach",
    "blkio_config",
    "build",
    "cap_add",
    "cap_drop",
    "cgroup",
    "cgroup_parent",
    "command",
    "configs",
    "container_name",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpus",
    "cpuset",
    "credential_spec",
    "depends_on",
    "deploy",
    "develop",
    "device_cgroup_rules",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "entrypoint",
    "env_file",
    "environment",
    "expose",
    "extends",
    "external_links",
    "extra_hosts",
    "gpus",
    "group_add",
    "healthcheck",
    "hostname",
    "image",
    "init",
    "ipc",
    "isolation",
    "label_file",
    "labels",
    "links",
    "logging",
    "mac_address",
    "mem_limit",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "models",
    "network_mode",
    "networks",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "pids_limit",
    "platform",
    "ports",
    "post_start",
    "pre_start",
    "pre_stop",
    "privileged",
    "profiles",
    "provider",
    "pull_policy",
    "pull_refresh_after",
    "read_only",
    "restart",
    "runtime",
    "scale",
    "secrets",
    "security_opt",
    "shm_size",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "tty",
    "ulimits",
    "use_api_socket",
    "user",
    "userns_mode",
    "uts",
    "volumes",
    "volumes_from",
    "working_dir",
];
const NETWORK: &[&str] = &[
    "attachable",
    "driver",
    "driver_opts",
    "enable_ipv4",
    "enable_ipv6",
    "external",
    "internal",
    "ipam",
    "labels",
    "name",
];
const VOLUME: &[&str] = &["driver", "driver_opts", "external", "labels", "name"];
const SECRET: &[&str] = &[
    "driver",
    "driver_opts",
    "environment",
    "external",
    "file",
    "labels",
    "name",
    "template_driver",
];
const CONFIG: &[&str] = &[
    "content",
    "environment",
    "external",
    "file",
    "labels",
    "name",
    "template_driver",
];
const HEALTHCHECK: &[&str] = &[
    "disable",
    "interval",
    "retries",
    "start_interval",
    "start_period",
    "test",
    "timeout",
];
const DEPLOY: &[&str] = &[
    "endpoint_mode",
    "labels",
    "mode",
    "placement",
    "replicas",
    "resources",
    "restart_policy",
    "rollback_config",
    "update_config",
];
const RESOURCES: &[&str] = &["limits", "reservations"];
const LIMITS: &[&str] = &["cpus", "memory", "pids"];
const RESERVATIONS: &[&str] = &["cpus", "devices", "generic_resources", "memory"];
const RESTART_POLICY: &[&str] = &["condition", "delay", "max_attempts", "window"];
const UPDATE_CONFIG: &[&str] = &[
    "delay",
    "failure_action",
    "max_failure_ratio",
    "monitor",
    "order",
    "parallelism",
];
const BUILD: &[&str] = &[
    "additional_contexts",
    "args",
    "cache_from",
    "cache_to",
    "context",
    "dockerfile",
    "dockerfile_inline",
    "entitlements",
    "extra_hosts",
    "isolation",
    "labels",
    "network",
    "no_cache",
    "no_cache_filter",
    "platforms",
    "privileged",
    "provenance",
    "pull",
    "sbom",
    "secrets",
    "shm_size",
    "ssh",
    "tags",
    "target",
    "ulimits",
];
const LOGGING: &[&str] = &["driver", "options"];
const EXTENDS: &[&str] = &["file", "service"];
const PORT: &[&str] = &[
    "app_protocol",
    "host_ip",
    "mode",
    "name",
    "protocol",
    "published",
    "target",
];
const SERVICE_VOLUME: &[&str] = &[
    "bind",
    "consistency",
    "image",
    "read_only",
    "source",
    "target",
    "tmpfs",
    "type",
    "volume",
];
const DEPENDS_ON: &[&str] = &["condition", "restart", "required"];

/// Checks keys of a merged (not yet canonical) compose tree.
pub fn check(doc: &Tree) -> Result<(), SchemaError> {
    let root = KeyPath::root();
    let top = mapping(doc, &root)?;
    keys(top, TOP, &root)?;
    for (section, allowed) in [
        ("networks", NETWORK),
        ("volumes", VOLUME),
        ("secrets", SECRET),
        ("configs", CONFIG),
    ] {
        if let Some(v) = top.get(section).filter(|v| !v.is_null()) {
            let path = root.key(section);
            for (name, r) in mapping(v, &path)? {
                if !r.is_null() {
                    keys(mapping(r, &path.key(name))?, allowed, &path.key(name))?;
                }
            }
        }
    }
    if let Some(v) = top.get("services").filter(|v| !v.is_null()) {
        let path = root.key("services");
        for (name, s) in mapping(v, &path)? {
            if !s.is_null() {
                service(mapping(s, &path.key(name))?, &path.key(name))?;
            }
        }
    }
    Ok(())
}

fn service(s: &Map, path: &KeyPath) -> Result<(), SchemaError> {
    keys(s, SERVICE, path)?;
    for key in [
        "image",
        "container_name",
        "hostname",
        "platform",
        "user",
        "working_dir",
    ] {
        match s.get(key) {
            None | Some(Tree::Null) | Some(Tree::String(_)) => {}
            Some(other) => {
                return Err(SchemaError::WrongType {
                    path: path.key(key),
                    expected: "a string",
                    found: type_name(other),
                });
            }
        }
    }
    nested(s, "healthcheck", HEALTHCHECK, path)?;
    nested(s, "logging", LOGGING, path)?;
    nested(s, "extends", EXTENDS, path)?;
    nested(s, "build", BUILD, path)?;
    if let Some(d) = nested(s, "deploy", DEPLOY, path)? {
        let dp = path.key("deploy");
        nested(d, "restart_policy", RESTART_POLICY, &dp)?;
        nested(d, "update_config", UPDATE_CONFIG, &dp)?;
        nested(d, "rollback_config", UPDATE_CONFIG, &dp)?;
        if let Some(r) = nested(d, "resources", RESOURCES, &dp)? {
            let rp = dp.key("resources");
            nested(r, "limits", LIMITS, &rp)?;
            nested(r, "reservations", RESERVATIONS, &rp)?;
        }
    }
    for (key, allowed) in [("ports", PORT), ("volumes", SERVICE_VOLUME)] {
        if let Some(Tree::Array(items)) = s.get(key) {
            for (i, item) in items.iter().enumerate() {
                if let Tree::Object(m) = item {
                    keys(m, allowed, &path.key(key).index(i))?;
                }
            }
        }
    }
    if let Some(Tree::Object(deps)) = s.get("depends_on") {
        for (dep, cfg) in deps {
            if let Tree::Object(m) = cfg {
                keys(m, DEPENDS_ON, &path.key("depends_on").key(dep))?;
            }
        }
    }
    Ok(())
}

fn nested<'a>(
    parent: &'a Map,
    key: &str,
    allowed: &[&str],
    path: &KeyPath,
) -> Result<Option<&'a Map>, SchemaError> {
    match parent.get(key) {
        Some(Tree::Object(m)) => {
            keys(m, allowed, &path.key(key))?;
            Ok(Some(m))
        }
        _ => Ok(None),
    }
}

fn mapping<'a>(v: &'a Tree, path: &KeyPath) -> Result<&'a Map, SchemaError> {
    v.as_object().ok_or_else(|| SchemaError::WrongType {
        path: path.clone(),
        expected: "a mapping",
        found: type_name(v),
    })
}

fn keys(m: &Map, allowed: &[&str], path: &KeyPath) -> Result<(), SchemaError> {
    for k in m.keys() {
        if k.starts_with("x-") || allowed.contains(&k.as_str()) {
            continue;
        }
        let hint = closest(k, allowed)
            .map(|c| format!(" (did you mean {c:?}?)"))
            .unwrap_or_default();
        return Err(SchemaError::UnknownKey {
            path: path.key(k.as_str()),
            hint,
        });
    }
    Ok(())
}

/// The allowed key nearest to `k` by edit distance, when it is plausibly a typo.
fn closest<'a>(k: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|a| (levenshtein(k, a), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 4))
        .min()
        .map(|(_, a)| a)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_unknown_service_key_is_named_with_its_path_and_a_suggestion() {
        let e = check(&json!({"services": {"web": {"imagee": "x"}}})).unwrap_err();
        let m = e.to_string();
        assert!(m.starts_with("services.web.imagee: unknown key"), "{m}");
        assert!(m.contains("did you mean \"image\""), "{m}");
    }

    #[test]
    fn an_unknown_top_level_key_is_named() {
        let e = check(&json!({"servics": {}})).unwrap_err();
        assert!(e.to_string().starts_with("servics: unknown key"), "{e}");
    }

    #[test]
    fn extension_keys_are_allowed_everywhere_checked() {
        check(&json!({"x-a": 1, "services": {"w": {"x-b": 2, "deploy": {"x-c": 3}}}})).unwrap();
    }

    #[test]
    fn nested_long_forms_are_checked() {
        let e = check(&json!({"services": {"w": {"ports": [{"target": 80, "publshed": 1}]}}}))
            .unwrap_err();
        assert!(
            e.to_string().starts_with("services.w.ports[0].publshed"),
            "{e}"
        );
        let e =
            check(&json!({"services": {"w": {"deploy": {"resources": {"limits": {"cpu": 1}}}}}}))
                .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("services.w.deploy.resources.limits.cpu"),
            "{e}"
        );
    }

    #[test]
    fn a_service_that_is_not_a_mapping_is_refused() {
        let e = check(&json!({"services": {"w": "nginx"}})).unwrap_err();
        assert!(
            e.to_string().contains("services.w: must be a mapping"),
            "{e}"
        );
    }
}
