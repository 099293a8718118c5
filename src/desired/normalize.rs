//! Normalization after merging: the default network, implied dependencies, resource names scoped to the project.

use super::tree::{Map, Tree};

/// Resolves a variable name against the project environment.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// compose-go `loader.Normalize`, on a canonical tree whose `name` is already set.
pub fn normalize(doc: &mut Map, lookup: Lookup<'_>) {
    normalize_networks(doc);
    if let Some(Tree::Object(services)) = doc.get_mut("services") {
        for (_, service) in services.iter_mut() {
            if let Tree::Object(service) = service {
                normalize_service(service, lookup);
            }
        }
    }
    name_resources(doc);
}

fn implied(condition_restart: bool) -> Tree {
    serde_json::json!({
        "condition": "service_started",
        "restart": condition_restart,
        "required": true,
    })
}

fn normalize_service(service: &mut Map, lookup: Lookup<'_>) {
    if service.get("pull_policy").and_then(Tree::as_str) == Some("if_not_present") {
        service.insert("pull_policy".into(), "missing".into());
    }
    if let Some(Tree::Object(build)) = service.get_mut("build") {
        if build.get("context").is_none_or(Tree::is_null) {
            build.insert("context".into(), ".".into());
        }
        if build.get("dockerfile").is_none_or(Tree::is_null)
            && build.get("dockerfile_inline").is_none_or(Tree::is_null)
        {
            build.insert("dockerfile".into(), "Dockerfile".into());
        }
        if let Some(args) = build.get_mut("args") {
            resolve_from_env(args, lookup, false);
        }
    }
    if let Some(env) = service.get_mut("environment") {
        resolve_from_env(env, lookup, true);
    }

    let mut depends_on = match service.remove("depends_on") {
        Some(Tree::Object(m)) => m,
        _ => Map::new(),
    };
    if let Some(Tree::Array(links)) = service.get("links") {
        for link in links.iter().filter_map(Tree::as_str) {
            let name = match link.split(':').collect::<Vec<_>>().as_slice() {
                [svc, _alias] => *svc,
                _ => link,
            };
            depends_on
                .entry(name.to_string())
                .or_insert_with(|| implied(true));
        }
    }
    for ns in ["network_mode", "ipc", "pid", "uts", "cgroup"] {
        if let Some(shared) = service
            .get(ns)
            .and_then(Tree::as_str)
            .and_then(|r| r.strip_prefix("service:"))
        {
            depends_on
                .entry(shared.to_string())
                .or_insert_with(|| implied(true));
        }
    }
    if let Some(Tree::Array(volumes)) = service.get_mut("volumes") {
        for v in volumes.iter_mut() {
            if let Some(Tree::String(target)) = v.get_mut("target") {
                *target = clean_path(target);
            }
        }
    }
    if let Some(Tree::Array(from)) = service.get("volumes_from") {
        for v in from.iter().filter_map(Tree::as_str) {
            if !v.starts_with("container:") {
                let svc = v.split(':').next().unwrap_or(v);
                depends_on
                    .entry(svc.to_string())
                    .or_insert_with(|| implied(false));
            }
        }
    }
    if !depends_on.is_empty() {
        service.insert("depends_on".into(), Tree::Object(depends_on));
    }

    // pre_start hooks run in the service's image unless they name their own.
    let image = service
        .get("image")
        .and_then(Tree::as_str)
        .map(str::to_string);
    if let (Some(image), Some(Tree::Array(hooks))) = (image, service.get_mut("pre_start"))
        && !image.is_empty()
    {
        for hook in hooks.iter_mut().filter_map(Tree::as_object_mut) {
            hook.entry("image").or_insert_with(|| image.clone().into());
        }
    }
}

/// Fills `KEY` entries without a value from the environment (compose-go `resolve`).
/// With `keep_empty`, a key the environment lacks stays (as null / a bare key); otherwise it is dropped.
fn resolve_from_env(v: &mut Tree, lookup: Lookup<'_>, keep_empty: bool) {
    match v {
        Tree::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in std::mem::take(items) {
                match item {
                    Tree::String(s) if !s.contains('=') => match lookup(&s) {
                        Some(val) => out.push(Tree::String(format!("{s}={val}"))),
                        None if keep_empty => out.push(Tree::String(s)),
                        None => {}
                    },
                    Tree::String(_) => out.push(item),
                    _ => {}
                }
            }
            *items = out;
        }
        Tree::Object(m) => {
            let mut out = Map::new();
            for (k, val) in std::mem::take(m) {
                if !val.is_null() {
                    out.insert(k, val);
                } else if let Some(found) = lookup(&k) {
                    out.insert(k, Tree::String(found));
                } else if keep_empty {
                    out.insert(k, Tree::Null);
                }
            }
            *m = out;
        }
        _ => {}
    }
}

fn normalize_networks(doc: &mut Map) {
    let mut uses_default = false;
    if let Some(Tree::Object(services)) = doc.get_mut("services") {
        for (_, service) in services.iter_mut() {
            let Tree::Object(service) = service else {
                continue;
            };
            if service.contains_key("provider") || service.contains_key("network_mode") {
                continue;
            }
            match service.get("networks") {
                Some(Tree::Object(n)) if !n.is_empty() => {
                    if n.contains_key("default") {
                        uses_default = true;
                    }
                }
                _ => {
                    let mut n = Map::new();
                    n.insert("default".into(), Tree::Null);
                    service.insert("networks".into(), Tree::Object(n));
                    uses_default = true;
                }
            }
        }
    }
    let networks = doc
        .entry("networks")
        .or_insert_with(|| Tree::Object(Map::new()));
    if let Tree::Object(networks) = networks {
        if uses_default && !networks.contains_key("default") {
            networks.insert("default".into(), Tree::Null);
        }
        if networks.is_empty() {
            doc.remove("networks");
        }
    }
}

fn is_true(v: &Tree) -> bool {
    match v {
        Tree::Bool(b) => *b,
        Tree::String(s) => matches!(s.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"),
        Tree::Number(n) => n.as_i64() == Some(1),
        _ => false,
    }
}

fn name_resources(doc: &mut Map) {
    let project = doc
        .get("name")
        .and_then(Tree::as_str)
        .unwrap_or_default()
        .to_string();
    for kind in ["networks", "volumes", "configs", "secrets"] {
        let Some(Tree::Object(resources)) = doc.get_mut(kind) else {
            continue;
        };
        for (key, r) in resources.iter_mut() {
            if r.is_null() {
                *r = Tree::Object(Map::new());
            }
            let Tree::Object(r) = r else { continue };
            if r.get("name").is_none_or(Tree::is_null) {
                let name = if r.get("external").is_some_and(is_true) {
                    key.clone()
                } else {
                    format!("{project}_{key}")
                };
                r.insert("name".into(), name.into());
            }
        }
    }
}

/// Lexical path cleaning like Go's `path.Clean`: collapses `//`, `.` and `..`.
pub fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(doc: Tree, env: &[(&str, &str)]) -> Tree {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let Tree::Object(mut m) = doc else { panic!() };
        normalize(&mut m, &lookup);
        Tree::Object(m)
    }

    #[test]
    fn a_service_without_networks_joins_the_default_network_which_gets_a_project_name() {
        let out = run(
            json!({"name": "p", "services": {"web": {"image": "x"}}}),
            &[],
        );
        assert_eq!(out["services"]["web"]["networks"], json!({"default": null}));
        assert_eq!(out["networks"]["default"], json!({"name": "p_default"}));
    }

    #[test]
    fn network_mode_services_do_not_get_the_default_network() {
        let out = run(
            json!({"name": "p", "services": {"web": {"network_mode": "host"}}}),
            &[],
        );
        assert!(out["services"]["web"].get("networks").is_none());
        assert!(out.get("networks").is_none());
    }

    #[test]
    fn external_resources_keep_their_key_as_name() {
        let out = run(
            json!({"name": "p", "volumes": {"a": {"external": true}, "b": null, "c": {"name": "own"}}}),
            &[],
        );
        assert_eq!(out["volumes"]["a"]["name"], "a");
        assert_eq!(out["volumes"]["b"]["name"], "p_b");
        assert_eq!(out["volumes"]["c"]["name"], "own");
    }

    #[test]
    fn environment_keys_without_values_are_taken_from_the_environment_or_left_null() {
        let out = run(
            json!({"name": "p", "services": {"w": {"environment": {"A": null, "B": null, "C": "c"}}}}),
            &[("A", "from-env")],
        );
        assert_eq!(
            out["services"]["w"]["environment"],
            json!({"A": "from-env", "B": null, "C": "c"})
        );
    }

    #[test]
    fn links_and_shared_namespaces_imply_dependencies() {
        let out = run(
            json!({"name": "p", "services": {"w": {"links": ["db:database"], "network_mode": "service:vpn", "volumes_from": ["data", "container:x"]}}}),
            &[],
        );
        let d = &out["services"]["w"]["depends_on"];
        assert_eq!(d["db"]["restart"], true);
        assert_eq!(d["vpn"]["condition"], "service_started");
        assert_eq!(d["data"]["restart"], false);
        assert!(d.get("x").is_none());
    }

    #[test]
    fn paths_are_cleaned_like_go_path_clean() {
        for (i, o) in [
            ("/a//b/./c/..", "/a/b"),
            ("/..", "/"),
            ("a/../..", ".."),
            ("", "."),
            ("/data/", "/data"),
        ] {
            assert_eq!(clean_path(i), o, "{i}");
        }
    }
}
