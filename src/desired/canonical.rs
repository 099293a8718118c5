//! Short compose syntax to its canonical long form, default values, empty-value pruning and relative path resolution.

use std::path::Path;

use super::tree::{KeyPath, Map, Tree, type_name};

mod paths;
mod ports;
mod volume;

pub(crate) use volume::short_target as short_volume_target;

#[derive(Debug, thiserror::Error)]
pub enum CanonicalError {
    #[error("{path}: {reason}")]
    Invalid { path: KeyPath, reason: String },
}

fn invalid(path: &KeyPath, reason: impl Into<String>) -> CanonicalError {
    CanonicalError::Invalid {
        path: path.clone(),
        reason: reason.into(),
    }
}

fn wrong_type(path: &KeyPath, what: &str, value: &Tree) -> CanonicalError {
    invalid(
        path,
        format!("invalid type {} for {what}", type_name(value)),
    )
}

/// compose-go `transform.Canonical` followed by `OmitEmpty`.
pub fn canonical(tree: &mut Tree) -> Result<(), CanonicalError> {
    transform(tree, &KeyPath::root())?;
    omit_empty(tree, &KeyPath::root());
    Ok(())
}

/// The transformers compose-go registers, by the path pattern they apply to.
#[derive(Clone, Copy)]
enum Transformer {
    Service,
    FileMount,
    StringOrX,
    KeyValue,
    DependsOn,
    EnvFile,
    StringOrList,
    Extends,
    Gpus,
    StringSliceToMap,
    VolumeMount,
    DeviceMapping,
    Ports,
    Build,
    Ssh,
    Ulimits,
    MaybeExternal,
    Include,
}

static TRANSFORMER_TABLE: std::sync::LazyLock<super::tree::PatternTable<Transformer>> =
    std::sync::LazyLock::new(|| super::tree::PatternTable::new(TRANSFORMERS));

static TRANSFORMERS: &[(&str, Transformer)] = &[
    ("services.*", Transformer::Service),
    ("services.*.build.secrets.*", Transformer::FileMount),
    ("services.*.build.provenance", Transformer::StringOrX),
    ("services.*.build.sbom", Transformer::StringOrX),
    (
        "services.*.build.additional_contexts",
        Transformer::KeyValue,
    ),
    ("services.*.depends_on", Transformer::DependsOn),
    ("services.*.env_file", Transformer::EnvFile),
    ("services.*.label_file", Transformer::StringOrList),
    ("services.*.extends", Transformer::Extends),
    ("services.*.gpus", Transformer::Gpus),
    ("services.*.networks", Transformer::StringSliceToMap),
    ("services.*.models", Transformer::StringSliceToMap),
    ("services.*.volumes.*", Transformer::VolumeMount),
    ("services.*.dns", Transformer::StringOrList),
    ("services.*.devices.*", Transformer::DeviceMapping),
    ("services.*.secrets.*", Transformer::FileMount),
    ("services.*.configs.*", Transformer::FileMount),
    ("services.*.ports", Transformer::Ports),
    ("services.*.build", Transformer::Build),
    ("services.*.build.ssh", Transformer::Ssh),
    ("services.*.ulimits.*", Transformer::Ulimits),
    ("services.*.build.ulimits.*", Transformer::Ulimits),
    (
        "services.*.develop.watch.*.ignore",
        Transformer::StringOrList,
    ),
    (
        "services.*.develop.watch.*.include",
        Transformer::StringOrList,
    ),
    ("volumes.*", Transformer::MaybeExternal),
    ("networks.*", Transformer::MaybeExternal),
    ("secrets.*", Transformer::MaybeExternal),
    ("configs.*", Transformer::MaybeExternal),
    ("include.*", Transformer::Include),
];

/// Applies the first transformer whose pattern matches `path`; otherwise walks into children.
/// A transformer decides itself whether to walk further (as in compose-go).
fn transform(value: &mut Tree, path: &KeyPath) -> Result<(), CanonicalError> {
    match TRANSFORMER_TABLE.find(path) {
        Some(t) => apply(*t, value, path),
        None => transform_children(value, path),
    }
}

fn transform_children(value: &mut Tree, path: &KeyPath) -> Result<(), CanonicalError> {
    match value {
        Tree::Object(map) => {
            for (k, v) in map.iter_mut() {
                transform(v, &path.key(k.as_str()))?;
            }
        }
        Tree::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                transform(v, &path.index(i))?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn apply(t: Transformer, value: &mut Tree, path: &KeyPath) -> Result<(), CanonicalError> {
    match t {
        Transformer::Service => {
            if value.is_object() {
                transform_children(value, path)?;
            }
        }
        Transformer::FileMount => match value {
            Tree::Object(_) => {}
            Tree::String(s) => *value = single("source", std::mem::take(s)),
            other => return Err(wrong_type(path, "a file mount", other)),
        },
        Transformer::StringOrX => {
            if !value.is_string() {
                *value = Tree::String(go_sprint(value));
            }
        }
        Transformer::KeyValue => match value {
            Tree::Object(_) => {}
            Tree::Array(items) => {
                let mut map = Map::new();
                for (i, item) in items.iter().enumerate() {
                    let Some((k, v)) = item.as_str().and_then(|s| s.split_once('=')) else {
                        return Err(invalid(&path.index(i), "expected a KEY=VALUE string"));
                    };
                    map.insert(k.to_string(), Tree::from(v));
                }
                *value = Tree::Object(map);
            }
            other => return Err(wrong_type(path, "a mapping", other)),
        },
        Transformer::DependsOn => depends_on(value, path)?,
        Transformer::EnvFile => match value {
            Tree::String(s) => {
                *value = Tree::Array(vec![env_file_entry(Tree::from(std::mem::take(s)))])
            }
            Tree::Array(items) => {
                for item in items.iter_mut() {
                    *item = env_file_entry(std::mem::take(item));
                }
            }
            other => return Err(wrong_type(path, "env_file", other)),
        },
        Transformer::StringOrList => {
            if let Tree::String(s) = value {
                *value = Tree::Array(vec![Tree::from(std::mem::take(s))]);
            }
        }
        Transformer::Extends => match value {
            Tree::Object(_) => transform_children(value, path)?,
            Tree::String(s) => *value = single("service", std::mem::take(s)),
            other => return Err(wrong_type(path, "extends", other)),
        },
        Transformer::Gpus => match value {
            Tree::Array(_) => transform_children(value, path)?,
            Tree::String(_) => *value = Tree::Array(vec![single("count", "all")]),
            other => return Err(wrong_type(path, "gpus", other)),
        },
        Transformer::StringSliceToMap => {
            if let Tree::Array(items) = value {
                let mut map = Map::new();
                for (i, item) in items.iter().enumerate() {
                    let Some(name) = item.as_str() else {
                        return Err(wrong_type(&path.index(i), "a name", item));
                    };
                    map.insert(name.to_string(), Tree::Null);
                }
                *value = Tree::Object(map);
            }
        }
        Transformer::VolumeMount => match value {
            Tree::Object(_) => {}
            Tree::String(s) => *value = volume::parse(s).map_err(|e| invalid(path, e))?,
            other => return Err(wrong_type(path, "a service volume mount", other)),
        },
        Transformer::DeviceMapping => match value {
            Tree::Object(_) => {}
            Tree::String(s) => *value = device_mapping(s).map_err(|e| invalid(path, e))?,
            other => return Err(wrong_type(path, "a device mapping", other)),
        },
        Transformer::Ports => transform_ports(value, path)?,
        Transformer::Build => match value {
            Tree::Object(_) => transform_children(value, path)?,
            Tree::String(s) => *value = single("context", std::mem::take(s)),
            other => return Err(wrong_type(path, "build", other)),
        },
        Transformer::Ssh => match value {
            Tree::Object(_) => {}
            Tree::Array(items) => {
                let mut map = Map::new();
                for (i, item) in items.iter().enumerate() {
                    let Some(s) = item.as_str() else {
                        return Err(wrong_type(&path.index(i), "an ssh key", item));
                    };
                    match s.split_once('=') {
                        Some((id, p)) => map.insert(id.to_string(), Tree::from(p)),
                        None if s == "default" => map.insert(s.to_string(), Tree::Null),
                        None => {
                            return Err(invalid(
                                &path.index(i),
                                "expected `default` or ID=PATH for an ssh key",
                            ));
                        }
                    };
                }
                *value = Tree::Object(map);
            }
            other => return Err(wrong_type(path, "ssh", other)),
        },
        Transformer::Ulimits => match value {
            Tree::Object(_) => {}
            Tree::Number(n) if n.is_i64() || n.is_u64() => {}
            other => return Err(wrong_type(path, "a ulimit", other)),
        },
        Transformer::MaybeExternal => maybe_external(value, path)?,
        Transformer::Include => match value {
            Tree::Object(_) => {}
            Tree::String(s) => *value = single("path", std::mem::take(s)),
            other => return Err(wrong_type(path, "include", other)),
        },
    }
    Ok(())
}

fn single(key: &str, value: impl Into<Tree>) -> Tree {
    let mut map = Map::new();
    map.insert(key.to_string(), value.into());
    Tree::Object(map)
}

/// `depends_on`: a list of names becomes a mapping with the default condition; mapping
/// entries get the defaults they lack.
fn depends_on(value: &mut Tree, path: &KeyPath) -> Result<(), CanonicalError> {
    match value {
        Tree::Object(map) => {
            for (name, entry) in map.iter_mut() {
                let Tree::Object(dep) = entry else {
                    return Err(wrong_type(&path.key(name.as_str()), "a dependency", entry));
                };
                if !dep.contains_key("condition") {
                    dep.insert("condition".into(), Tree::from("service_started"));
                }
                if !dep.contains_key("required") {
                    dep.insert("required".into(), Tree::Bool(true));
                }
            }
        }
        Tree::Array(items) => {
            let mut map = Map::new();
            for (i, item) in items.iter().enumerate() {
                let Some(name) = item.as_str() else {
                    return Err(wrong_type(&path.index(i), "a service name", item));
                };
                let mut dep = Map::new();
                dep.insert("condition".into(), Tree::from("service_started"));
                dep.insert("required".into(), Tree::Bool(true));
                map.insert(name.to_string(), Tree::Object(dep));
            }
            *value = Tree::Object(map);
        }
        other => return Err(wrong_type(path, "depends_on", other)),
    }
    Ok(())
}

/// One `env_file` entry: a path becomes `{path, required: true}`; anything but a string or a
/// mapping becomes null, as in compose-go.
fn env_file_entry(entry: Tree) -> Tree {
    match entry {
        Tree::String(s) => {
            let mut map = Map::new();
            map.insert("path".into(), Tree::String(s));
            map.insert("required".into(), Tree::Bool(true));
            Tree::Object(map)
        }
        Tree::Object(mut map) => {
            if !map.contains_key("required") {
                map.insert("required".into(), Tree::Bool(true));
            }
            Tree::Object(map)
        }
        _ => Tree::Null,
    }
}

/// `src[:dst[:permissions]]` to `{source, target, permissions}`.
fn device_mapping(spec: &str) -> Result<Tree, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, perms) = match parts.as_slice() {
        [src] => (*src, "", "rwm"),
        [src, dst] => (*src, *dst, "rwm"),
        [src, dst, perms] => (*src, *dst, *perms),
        _ => {
            return Err(
                "confusing device mapping: write source[:target[:permissions]], or use the long syntax"
                    .into(),
            );
        }
    };
    let dst = if dst.is_empty() { src } else { dst };
    let mut map = Map::new();
    map.insert("source".into(), Tree::from(src));
    map.insert("target".into(), Tree::from(dst));
    map.insert("permissions".into(), Tree::from(perms));
    Ok(Tree::Object(map))
}

/// `ports`: every short entry (string or integer) expands to one or more long mappings.
fn transform_ports(value: &mut Tree, path: &KeyPath) -> Result<(), CanonicalError> {
    let Tree::Array(entries) = value else {
        return Err(wrong_type(path, "ports", value));
    };
    let mut out = Vec::with_capacity(entries.len());
    for (i, entry) in std::mem::take(entries).into_iter().enumerate() {
        let spec = match &entry {
            Tree::Object(_) => {
                out.push(entry);
                continue;
            }
            Tree::String(s) => s.clone(),
            Tree::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
            other => return Err(wrong_type(&path.index(i), "a port", other)),
        };
        let parsed = ports::parse(&spec)
            .map_err(|e| invalid(&path.index(i), format!("invalid port: {e} (the form is [[ip:]published:]target[/protocol], like 8080:80/tcp)")))?;
        out.extend(parsed);
    }
    *value = Tree::Array(out);
    Ok(())
}

/// Top-level volumes, networks, secrets and configs: the deprecated `external: {name}` form
/// becomes `external: true` plus `name`.
fn maybe_external(value: &mut Tree, path: &KeyPath) -> Result<(), CanonicalError> {
    if value.is_null() {
        return Ok(());
    }
    transform_children(value, path)?;
    let Tree::Object(resource) = value else {
        return Err(wrong_type(path, "a resource definition", value));
    };
    let ext_name = match resource.get("external") {
        Some(Tree::Object(ext)) => Some(ext.get("name").cloned()),
        _ => None,
    };
    let Some(ext_name) = ext_name else {
        return Ok(());
    };
    resource.insert("external".into(), Tree::Bool(true));
    if let Some(ext_name) = ext_name {
        match resource.get("name") {
            Some(name) if *name != ext_name => {
                return Err(invalid(
                    path,
                    "name and external.name conflict; only use name",
                ));
            }
            Some(_) => {}
            None => {
                resource.insert("name".into(), ext_name);
            }
        }
    }
    Ok(())
}

/// Go's `fmt.Sprint` of a YAML scalar, for fields that accept a string or anything else.
fn go_sprint(value: &Tree) -> String {
    match value {
        Tree::Null => "<nil>".into(),
        Tree::Bool(b) => b.to_string(),
        Tree::String(s) => s.clone(),
        Tree::Number(n) => match n.as_f64() {
            Some(f) if !(n.is_i64() || n.is_u64()) => go_float(f),
            _ => n.to_string(),
        },
        Tree::Array(items) => {
            let inner: Vec<String> = items.iter().map(go_sprint).collect();
            format!("[{}]", inner.join(" "))
        }
        Tree::Object(map) => {
            let mut entries: Vec<(&String, &Tree)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_sprint(v)))
                .collect();
            format!("map[{}]", inner.join(" "))
        }
    }
}

/// Go's `%v` of a float64 (`strconv` shortest `g`): exponent form when the decimal
/// exponent is below -4 or at least 6, e.g. `1e+06`, `1.5e-05`.
fn go_float(f: f64) -> String {
    let sci = format!("{f:e}");
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return format!("{f}");
    };
    let exp_value: i32 = exp.parse().unwrap_or(0);
    if f != 0.0 && !(-4..6).contains(&exp_value) {
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        format!("{mantissa}e{sign}{digits:0>2}")
    } else {
        format!("{f}")
    }
}

/// compose-go `OmitEmpty`: null and empty-string entries are dropped from `services.*.dns`.
fn omit_empty(value: &mut Tree, path: &KeyPath) {
    let prune = path.matches("services.*.dns");
    let is_empty = |v: &Tree| v.is_null() || v.as_str() == Some("");
    match value {
        Tree::Object(map) => {
            if prune {
                map.retain(|_, v| !is_empty(v));
            }
            for (k, v) in map.iter_mut() {
                omit_empty(v, &path.key(k.as_str()));
            }
        }
        Tree::Array(items) => {
            if prune {
                items.retain(|v| !is_empty(v));
            }
            for (i, v) in items.iter_mut().enumerate() {
                omit_empty(v, &path.index(i));
            }
        }
        _ => {}
    }
}

/// Default values compose-go fills in, by path pattern.
#[derive(Clone, Copy)]
enum DefaultValue {
    BuildContext,
    SecretMount,
    Port,
    DeviceRequest,
    VolumeBind,
}

static DEFAULT_TABLE: std::sync::LazyLock<super::tree::PatternTable<DefaultValue>> =
    std::sync::LazyLock::new(|| super::tree::PatternTable::new(DEFAULTS));

static DEFAULTS: &[(&str, DefaultValue)] = &[
    ("services.*.build", DefaultValue::BuildContext),
    ("services.*.secrets.*", DefaultValue::SecretMount),
    ("services.*.ports.*", DefaultValue::Port),
    (
        "services.*.deploy.resources.reservations.devices.*",
        DefaultValue::DeviceRequest,
    ),
    ("services.*.gpus.*", DefaultValue::DeviceRequest),
    ("services.*.volumes.*.bind", DefaultValue::VolumeBind),
];

/// compose-go `transform.SetDefaultValues`.
pub fn set_defaults(tree: &mut Tree) -> Result<(), CanonicalError> {
    defaults(tree, &KeyPath::root())
}

fn defaults(value: &mut Tree, path: &KeyPath) -> Result<(), CanonicalError> {
    if let Some(d) = DEFAULT_TABLE.find(path) {
        return apply_default(*d, value, path);
    }
    match value {
        Tree::Object(map) => {
            for (k, v) in map.iter_mut() {
                defaults(v, &path.key(k.as_str()))?;
            }
        }
        Tree::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                defaults(v, &path.index(i))?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn set_missing(map: &mut Map, key: &str, value: impl FnOnce() -> Tree) {
    if !map.contains_key(key) {
        map.insert(key.to_string(), value());
    }
}

fn apply_default(d: DefaultValue, value: &mut Tree, path: &KeyPath) -> Result<(), CanonicalError> {
    match (d, value) {
        (DefaultValue::BuildContext, Tree::Object(map)) => {
            set_missing(map, "context", || ".".into())
        }
        (DefaultValue::BuildContext, _) => {}
        (DefaultValue::SecretMount, Tree::Object(map)) => {
            let source = map
                .get("source")
                .map(go_sprint)
                .unwrap_or_else(|| "%!s(<nil>)".into());
            set_missing(map, "target", || format!("/run/secrets/{source}").into());
        }
        (DefaultValue::SecretMount, other) => {
            return Err(wrong_type(path, "a secret mount", other));
        }
        (DefaultValue::Port, Tree::Object(map)) => {
            set_missing(map, "protocol", || "tcp".into());
            set_missing(map, "mode", || "ingress".into());
        }
        (DefaultValue::Port, _) => {}
        (DefaultValue::DeviceRequest, Tree::Object(map)) => {
            if !map.contains_key("count") && !map.contains_key("device_ids") {
                map.insert("count".into(), "all".into());
            }
        }
        (DefaultValue::DeviceRequest, other) => {
            return Err(wrong_type(path, "a device request", other));
        }
        (DefaultValue::VolumeBind, Tree::Object(map)) => {
            set_missing(map, "create_host_path", || Tree::Bool(true));
        }
        (DefaultValue::VolumeBind, other) => return Err(wrong_type(path, "bind options", other)),
    }
    Ok(())
}

/// compose-go `paths.ResolveRelativePaths`: makes build contexts, env files, bind sources,
/// secret and config files absolute against `working_dir`.
pub fn resolve_relative_paths(tree: &mut Tree, working_dir: &Path) -> Result<(), CanonicalError> {
    let home = std::env::var("HOME").ok();
    let working_dir = working_dir.to_string_lossy();
    resolve_paths_with_home(tree, &working_dir, home.as_deref())
}

/// [`resolve_relative_paths`] with an explicit home directory for `~` (none: `~` is kept).
pub fn resolve_paths_with_home(
    tree: &mut Tree,
    working_dir: &str,
    home: Option<&str>,
) -> Result<(), CanonicalError> {
    paths::PathResolver { working_dir, home }.resolve(tree, &KeyPath::root())
}

#[cfg(test)]
mod tests;
