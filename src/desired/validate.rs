//! Consistency checks on a loaded project: references between services and resources, dependency cycles, exclusive settings.

use std::collections::{BTreeMap, BTreeSet};

use super::tree::{KeyPath, Map, Tree};

#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error(
        "service {service:?} depends on undefined service {dependency:?}: add it, or remove it from services.{service}.depends_on"
    )]
    UnknownDependency { service: String, dependency: String },
    #[error("dependency cycle detected: {cycle}; break the cycle in depends_on")]
    Cycle { cycle: String },
    #[error(
        "service {service:?} refers to undefined {kind} {name:?}: declare it under top-level {kind}s"
    )]
    Undefined {
        service: String,
        kind: &'static str,
        name: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: KeyPath, message: String },
}

/// compose-go `validation.Validate`: checks of top-level resources before paths are resolved.
pub fn check_resources(doc: &Tree) -> Result<(), ValidateError> {
    for (section, keys) in [
        ("configs", &["file", "environment", "content"][..]),
        ("secrets", &["file", "environment"][..]),
    ] {
        let Some(Tree::Object(items)) = doc.get(section) else {
            continue;
        };
        for (name, item) in items {
            let Tree::Object(item) = item else { continue };
            let path = KeyPath::parse(section).key(name.as_str());
            let count = keys.iter().filter(|k| item.contains_key(**k)).count();
            if count > 1 {
                return Err(ValidateError::Invalid {
                    path,
                    message: format!("{} attributes are mutually exclusive", keys.join("|")),
                });
            }
            if count == 0 && !item.contains_key("driver") && !item.contains_key("external") {
                return Err(ValidateError::Invalid {
                    path,
                    message: format!("one of {} must be set", keys.join("|")),
                });
            }
        }
    }
    if let Some(Tree::Object(volumes)) = doc.get("volumes") {
        for (name, v) in volumes {
            let Tree::Object(v) = v else { continue };
            if v.get("external").is_some_and(|e| e == &Tree::Bool(true)) {
                for k in v.keys() {
                    if !matches!(k.as_str(), "external" | "name") && !k.starts_with("x-") {
                        return Err(ValidateError::Invalid {
                            path: KeyPath::parse("volumes").key(name.as_str()),
                            message: format!(
                                "conflicting parameters \"external\" and {k:?} specified"
                            ),
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

/// compose-go `checkConsistency` on the emitted model (after profiles are applied).
pub fn check_consistency(model: &Tree) -> Result<(), ValidateError> {
    let empty = Map::new();
    let services = model
        .get("services")
        .and_then(Tree::as_object)
        .unwrap_or(&empty);
    let section = |k: &str| -> BTreeSet<String> {
        model
            .get(k)
            .and_then(Tree::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let (networks, volumes, secrets, configs) = (
        section("networks"),
        section("volumes"),
        section("secrets"),
        section("configs"),
    );
    for (name, s) in services {
        let path = KeyPath::parse("services").key(name.as_str());
        if s.get("image").is_none_or(Tree::is_null)
            && s.get("build").is_none_or(Tree::is_null)
            && s.get("provider").is_none_or(Tree::is_null)
        {
            return Err(ValidateError::Invalid {
                path,
                message: "has neither an image nor a build context specified: set image".into(),
            });
        }
        if let Some(platform) = s.get("platform").and_then(Tree::as_str)
            && !platform.is_empty()
            && let Some(Tree::Array(platforms)) = s.get("build").and_then(|b| b.get("platforms"))
            && !platforms.is_empty()
            && !platforms.iter().any(|p| p.as_str() == Some(platform))
        {
            let listed: Vec<&str> = platforms.iter().filter_map(Tree::as_str).collect();
            return Err(ValidateError::Invalid {
                path: path.key("platform"),
                message: format!(
                    "{platform:?} is not among services.{name}.build.platforms ({}): Compose requires build.platforms to include platform; add it there, or change platform",
                    listed.join(", ")
                ),
            });
        }
        if s.get("network_mode").is_some_and(|v| !v.is_null())
            && s.get("networks")
                .and_then(Tree::as_object)
                .is_some_and(|n| !n.is_empty())
        {
            return Err(ValidateError::Invalid {
                path,
                message: "network_mode and networks are mutually exclusive".into(),
            });
        }
        if let Some(Tree::Array(test)) = s.get("healthcheck").and_then(|h| h.get("test"))
            && let Some(first) = test.first().and_then(Tree::as_str)
            && !matches!(first, "CMD" | "CMD-SHELL" | "NONE")
        {
            return Err(ValidateError::Invalid {
                path: path.key("healthcheck").key("test"),
                message: "must start with \"CMD\", \"CMD-SHELL\" or \"NONE\"".into(),
            });
        }
        for (kind, key, known) in [
            ("network", "networks", &networks),
            ("secret", "secrets", &secrets),
            ("config", "configs", &configs),
        ] {
            for r in refs(s.get(key)) {
                if !known.contains(&r) {
                    return Err(ValidateError::Undefined {
                        service: name.clone(),
                        kind,
                        name: r,
                    });
                }
            }
        }
        if let Some(Tree::Array(vols)) = s.get("volumes") {
            for v in vols {
                if v.get("type").and_then(Tree::as_str) == Some("volume")
                    && let Some(src) = v.get("source").and_then(Tree::as_str)
                    && !src.is_empty()
                    && !volumes.contains(src)
                {
                    return Err(ValidateError::Undefined {
                        service: name.clone(),
                        kind: "volume",
                        name: src.to_string(),
                    });
                }
            }
        }
        if let Some(Tree::Object(deps)) = s.get("depends_on") {
            for (dep, cfg) in deps {
                let required = cfg.get("required").and_then(Tree::as_bool).unwrap_or(true);
                if !services.contains_key(dep) && required {
                    return Err(ValidateError::UnknownDependency {
                        service: name.clone(),
                        dependency: dep.clone(),
                    });
                }
            }
        }
    }
    check_cycles(services)
}

/// Names referenced by a service's `networks`/`secrets`/`configs` in any of their forms.
fn refs(v: Option<&Tree>) -> Vec<String> {
    match v {
        Some(Tree::Object(m)) => m.keys().cloned().collect(),
        Some(Tree::Array(a)) => a
            .iter()
            .filter_map(|e| match e {
                Tree::String(s) => Some(s.clone()),
                Tree::Object(m) => m.get("source").and_then(Tree::as_str).map(str::to_string),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The `depends_on` graph of the services, by name.
pub fn dependency_graph(services: &Map) -> BTreeMap<String, Vec<String>> {
    services
        .iter()
        .map(|(name, s)| {
            let deps = s
                .get("depends_on")
                .and_then(Tree::as_object)
                .map(|d| {
                    d.keys()
                        .filter(|k| services.contains_key(*k))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            (name.clone(), deps)
        })
        .collect()
}

fn check_cycles(services: &Map) -> Result<(), ValidateError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Unvisited,
        InProgress,
        Done,
    }
    let graph = dependency_graph(services);
    let mut marks: BTreeMap<&str, Mark> = graph
        .keys()
        .map(|k| (k.as_str(), Mark::Unvisited))
        .collect();
    // Iterative depth-first search; the stack holds (node, next edge index).
    for start in graph.keys() {
        if marks.get(start.as_str()) != Some(&Mark::Unvisited) {
            continue;
        }
        let mut stack: Vec<(&str, usize)> = vec![(start.as_str(), 0)];
        marks.insert(start.as_str(), Mark::InProgress);
        while let Some((node, edge)) = stack.last().copied() {
            let deps = graph.get(node).map(Vec::as_slice).unwrap_or_default();
            if let Some(next) = deps.get(edge) {
                if let Some(top) = stack.last_mut() {
                    top.1 += 1;
                }
                match marks.get(next.as_str()).copied() {
                    Some(Mark::Unvisited) => {
                        marks.insert(next.as_str(), Mark::InProgress);
                        stack.push((next.as_str(), 0));
                    }
                    Some(Mark::InProgress) => {
                        let from = stack.iter().position(|(n, _)| *n == next).unwrap_or(0);
                        let mut cycle: Vec<&str> = stack[from..].iter().map(|(n, _)| *n).collect();
                        cycle.push(next.as_str());
                        return Err(ValidateError::Cycle {
                            cycle: cycle.join(" -> "),
                        });
                    }
                    _ => {}
                }
            } else {
                marks.insert(node, Mark::Done);
                stack.pop();
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_dependency_on_an_unknown_service_names_both_services() {
        let m = json!({"services": {"web": {"image": "x", "depends_on": {"dbb": {"condition": "service_started", "required": true}}}}});
        let e = check_consistency(&m).unwrap_err().to_string();
        assert!(e.contains("\"web\"") && e.contains("\"dbb\""), "{e}");
    }

    #[test]
    fn an_optional_dependency_on_a_missing_service_is_accepted() {
        let m =
            json!({"services": {"web": {"image": "x", "depends_on": {"db": {"required": false}}}}});
        check_consistency(&m).unwrap();
    }

    #[test]
    fn a_dependency_cycle_names_the_services_in_order() {
        let m = json!({"services": {
            "a": {"image": "x", "depends_on": {"b": {}}},
            "b": {"image": "x", "depends_on": {"c": {}}},
            "c": {"image": "x", "depends_on": {"a": {}}},
        }});
        let e = check_consistency(&m).unwrap_err().to_string();
        assert!(e.contains("a -> b -> c -> a"), "{e}");
    }

    #[test]
    fn a_self_dependency_is_a_cycle() {
        let m = json!({"services": {"a": {"image": "x", "depends_on": {"a": {}}}}});
        assert!(
            check_consistency(&m)
                .unwrap_err()
                .to_string()
                .contains("a -> a")
        );
    }

    #[test]
    fn undefined_networks_and_volumes_are_named() {
        let m = json!({"services": {"a": {"image": "x", "networks": {"back": null}}}});
        assert!(
            check_consistency(&m)
                .unwrap_err()
                .to_string()
                .contains("undefined network \"back\"")
        );
        let m = json!({"services": {"a": {"image": "x", "volumes": [{"type": "volume", "source": "data", "target": "/d"}]}}});
        assert!(
            check_consistency(&m)
                .unwrap_err()
                .to_string()
                .contains("undefined volume \"data\"")
        );
    }

    #[test]
    fn a_platform_outside_build_platforms_is_refused_as_compose_refuses_it() {
        let svc = |platform: Tree, platforms: Tree| {
            json!({"services": {"web": {"image": "x", "platform": platform,
                "build": {"context": "/src", "platforms": platforms}}}})
        };
        let refused = svc(json!("linux/arm64"), json!(["linux/amd64", "linux/386"]));
        let e = check_consistency(&refused).unwrap_err().to_string();
        assert_eq!(
            e,
            "services.web.platform: \"linux/arm64\" is not among services.web.build.platforms \
             (linux/amd64, linux/386): Compose requires build.platforms to include platform; add it \
             there, or change platform"
        );
        for accepted in [
            svc(json!("linux/amd64"), json!(["linux/arm64", "linux/amd64"])),
            svc(json!("linux/arm64"), json!([])),
            svc(json!(""), json!(["linux/amd64"])),
            json!({"services": {"web": {"image": "x", "platform": "linux/arm64"}}}),
            json!({"services": {"web": {"image": "x", "build": {"context": "/s", "platforms": ["linux/amd64"]}}}}),
        ] {
            assert!(check_consistency(&accepted).is_ok(), "{accepted}");
        }
    }

    #[test]
    fn a_secret_needs_a_source() {
        let e = check_resources(&json!({"secrets": {"s": {}}})).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("secrets.s: one of file|environment"),
            "{e}"
        );
    }
}
