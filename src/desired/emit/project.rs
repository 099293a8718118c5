//! Project-level steps compose-go runs while building the project: profiles (and pruning of unused resources), env files and label files.

use std::collections::HashSet;
use std::path::Path;

use indexmap::IndexMap;

use super::EmitError;
use super::decode::{decode, mapping_with_equals};
use super::schema::Ty;
use crate::desired::tree::{KeyPath, Map, Tree};

/// Variables read from an env or label file, in file order.
pub type FileVars = IndexMap<String, String>;
/// Resolves a variable name (project environment, labels read so far...).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;
/// Reads an env file: `(path, required)`; `Ok(None)` for a missing optional file.
pub type EnvFileReader<'a> = &'a dyn Fn(&Path, bool) -> Result<Option<FileVars>, String>;
/// Reads an env file entry with the lookup its `${VAR}` references are interpolated with.
pub type InterpolatingEnvFileReader<'a> =
    &'a dyn Fn(&EnvFileEntry<'_>, Lookup<'_>) -> Result<Option<FileVars>, String>;

/// One `env_file` entry of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvFileEntry<'a> {
    pub path: &'a Path,
    /// A missing file is an error only when required.
    pub required: bool,
    /// `format` (`raw` reads values verbatim); `None` for the dotenv grammar.
    pub format: Option<&'a str>,
}
/// Reads a label file with the lookup of labels read from earlier files.
pub type LabelFileReader<'a> = &'a dyn Fn(&Path, Lookup<'_>) -> Result<FileVars, String>;

fn service_enabled(service: &Tree, active: &[String]) -> bool {
    let profiles: Vec<&str> = match service.get("profiles") {
        Some(Tree::Array(items)) => items.iter().filter_map(Tree::as_str).collect(),
        Some(Tree::String(s)) => vec![s.as_str()],
        _ => Vec::new(),
    };
    profiles.is_empty()
        || active
            .iter()
            .any(|a| a == "*" || profiles.iter().any(|p| p == a))
}

/// Keys of a mapping, or the strings of a list (short forms not yet canonical).
fn names(v: Option<&Tree>) -> Vec<String> {
    match v {
        Some(Tree::Object(m)) => m.keys().cloned().collect(),
        Some(Tree::Array(items)) => items
            .iter()
            .filter_map(Tree::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn sources(v: Option<&Tree>, only_volumes: bool) -> Vec<String> {
    let Some(Tree::Array(items)) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| match item {
            Tree::Object(m) => {
                if only_volumes && m.get("type").and_then(Tree::as_str) != Some("volume") {
                    return None;
                }
                m.get("source")
                    .and_then(Tree::as_str)
                    .filter(|s| !s.is_empty())
            }
            Tree::String(s) if !only_volumes => Some(s.as_str()),
            _ => None,
        })
        .map(str::to_string)
        .collect()
}

/// compose-go `WithProfiles` followed by the depends_on consistency check and
/// `WithoutUnnecessaryResources`, as `docker compose config` runs them: services whose
/// `profiles` match none of `active` (`*` matches all) are removed; a service that
/// requires a removed one (`depends_on` not marked `required: false`, `network_mode:
/// service:…`, a `service:…` build context) is an error, while `required: false`
/// dependencies are kept as they are; networks, volumes, secrets, configs and models no remaining service uses are dropped.
pub fn apply_profiles(model: &mut Tree, active: &[String]) -> Result<(), EmitError> {
    let Some(top) = model.as_object_mut() else {
        return Ok(());
    };
    let mut disabled = HashSet::new();
    if let Some(Tree::Object(services)) = top.get_mut("services") {
        services.retain(|name, service| {
            let keep = service_enabled(service, active);
            if !keep {
                disabled.insert(name.clone());
            }
            keep
        });
        for (name, service) in services.iter() {
            let at = KeyPath::root().key("services").key(name);
            let disabled_ref = |path: KeyPath, value: Option<&Tree>| {
                let target = value.and_then(Tree::as_str)?.strip_prefix("service:")?;
                disabled
                    .contains(target)
                    .then(|| EmitError::DisabledDependency {
                        path,
                        dependency: target.to_string(),
                    })
            };
            if let Some(err) = disabled_ref(at.key("network_mode"), service.get("network_mode")) {
                return Err(err);
            }
            if let Some(Tree::Object(contexts)) = service
                .get("build")
                .and_then(|b| b.get("additional_contexts"))
            {
                for (key, value) in contexts {
                    let path = at.key("build").key("additional_contexts").key(key);
                    if let Some(err) = disabled_ref(path, Some(value)) {
                        return Err(err);
                    }
                }
            }
            if let Some(deps) = service.get("depends_on") {
                let required_of = |dep: &str| match deps {
                    Tree::Object(m) => match m.get(dep) {
                        Some(Tree::Object(d)) => match d.get("required") {
                            Some(Tree::Bool(b)) => *b,
                            Some(Tree::String(s)) => {
                                super::scalar::go_parse_bool(s).unwrap_or(true)
                            }
                            _ => false,
                        },
                        _ => false,
                    },
                    _ => true,
                };
                for dep in names(Some(deps)) {
                    if disabled.contains(&dep) && required_of(&dep) {
                        return Err(EmitError::DisabledDependency {
                            path: KeyPath::root().key("services").key(name).key("depends_on"),
                            dependency: dep,
                        });
                    }
                }
            }
        }
    }

    let mut used: [HashSet<String>; 5] = Default::default();
    if let Some(Tree::Object(services)) = top.get("services") {
        for service in services.values() {
            used[0].extend(names(service.get("networks")));
            used[1].extend(sources(service.get("volumes"), true));
            used[2].extend(sources(service.get("secrets"), false));
            if let Some(build) = service.get("build") {
                used[2].extend(sources(build.get("secrets"), false));
            }
            used[3].extend(sources(service.get("configs"), false));
            used[4].extend(names(service.get("models")));
        }
    }
    for (key, keep) in ["networks", "volumes", "secrets", "configs", "models"]
        .iter()
        .zip(&used)
    {
        if let Some(Tree::Object(section)) = top.get_mut(*key) {
            section.retain(|name, _| keep.contains(name));
        }
    }
    Ok(())
}

/// The env file entries: path, whether it must exist, format.
fn env_files(service: &Map) -> Vec<(KeyPath, String, bool, Option<String>)> {
    let base = KeyPath::root().key("env_file");
    match service.get("env_file") {
        Some(Tree::String(s)) => vec![(base, s.clone(), true, None)],
        Some(Tree::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| match item {
                Tree::String(s) => Some((base.index(i), s.clone(), true, None)),
                Tree::Object(m) => {
                    let path = m.get("path").and_then(Tree::as_str)?.to_string();
                    let required = match m.get("required") {
                        Some(Tree::Bool(b)) => *b,
                        Some(Tree::String(s)) => super::scalar::go_parse_bool(s).unwrap_or(true),
                        _ => true,
                    };
                    let format = m.get("format").and_then(Tree::as_str).map(str::to_string);
                    Some((base.index(i), path, required, format))
                }
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// compose-go `WithServicesEnvironmentResolved(discardEnvFiles: true)` for one service.
///
/// Variables of `environment` with no value are looked up with `lookup` (left null when
/// unset); then the `env_file` files are read in order (`read_env_file(path, required)`
/// returns `Ok(None)` for a missing optional file) and their variables sit under the
/// service's own `environment`, which wins, null values included. `env_file` is removed,
/// as Compose prints the project without it.
pub fn resolve_environment(
    service: &mut Map,
    lookup: &dyn Fn(&str) -> Option<String>,
    read_env_file: EnvFileReader<'_>,
) -> Result<(), EmitError> {
    resolve_environment_interpolated(service, lookup, &|entry, _| {
        read_env_file(entry.path, entry.required)
    })
}

/// [`resolve_environment`], with the reader also given the lookup Compose uses to
/// interpolate env files: the project environment first, then the service's `environment`.
pub fn resolve_environment_interpolated(
    service: &mut Map,
    lookup: &dyn Fn(&str) -> Option<String>,
    read_env_file: InterpolatingEnvFileReader<'_>,
) -> Result<(), EmitError> {
    let env_path = KeyPath::root().key("environment");
    let mut own =
        mapping_with_equals(service.get("environment").unwrap_or(&Tree::Null), &env_path)?;
    for (k, v) in own.iter_mut() {
        if v.is_none() {
            *v = lookup(k);
        }
    }
    let mut merged: IndexMap<String, Option<String>> = own
        .iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), Some(v))))
        .collect();
    let interpolation = |name: &str| -> Option<String> {
        lookup(name).or_else(|| own.get(name).cloned().flatten())
    };
    for (path, file, required, format) in env_files(service) {
        let entry = EnvFileEntry {
            path: Path::new(&file),
            required,
            format: format.as_deref(),
        };
        match read_env_file(&entry, &interpolation) {
            Ok(Some(vars)) => {
                for (k, v) in vars {
                    merged.insert(k, Some(v));
                }
            }
            Ok(None) => {}
            Err(reason) => {
                return Err(EmitError::File {
                    path,
                    what: "env",
                    file,
                    reason,
                });
            }
        }
    }
    for (k, v) in own {
        merged.insert(k, v);
    }
    service.shift_remove("env_file");
    if merged.is_empty() {
        service.shift_remove("environment");
    } else {
        let env: Map = merged
            .into_iter()
            .map(|(k, v)| (k, v.map(Tree::String).unwrap_or(Tree::Null)))
            .collect();
        service.insert("environment".into(), Tree::Object(env));
    }
    Ok(())
}

/// compose-go `WithServicesLabelsResolved` for one service: the
/// `label_file` files are read in order (each may refer to labels read before it through
/// the given lookup), later files win, and the service's own `labels` win over all.
/// `label_file` stays: Compose v5 prints it (unlike `env_file`).
pub fn resolve_labels(
    service: &mut Map,
    read_label_file: LabelFileReader<'_>,
) -> Result<(), EmitError> {
    let base = KeyPath::root().key("label_file");
    let files: Vec<String> = match service.get("label_file") {
        Some(Tree::String(s)) => vec![s.clone()],
        Some(Tree::Array(items)) => items
            .iter()
            .filter_map(Tree::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    let mut labels: IndexMap<String, String> = IndexMap::new();
    for (i, file) in files.into_iter().enumerate() {
        let vars = {
            let known = |name: &str| labels.get(name).cloned();
            read_label_file(Path::new(&file), &known)
        };
        match vars {
            Ok(vars) => labels.extend(vars),
            Err(reason) => {
                return Err(EmitError::File {
                    path: base.index(i),
                    what: "label",
                    file,
                    reason,
                });
            }
        }
    }
    let own = decode(
        &Ty::Labels,
        service.get("labels").unwrap_or(&Tree::Null),
        &KeyPath::root().key("labels"),
    )?;
    if let Tree::Object(m) = own.json {
        for (k, v) in m {
            if let Tree::String(s) = v {
                labels.insert(k, s);
            }
        }
    }
    if !labels.is_empty() {
        let m: Map = labels
            .into_iter()
            .map(|(k, v)| (k, Tree::String(v)))
            .collect();
        service.insert("labels".into(), Tree::Object(m));
    }
    Ok(())
}
