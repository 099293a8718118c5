//! The loading pipeline: from compose files and env files to the normalized project, stage by stage as compose-go runs them.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::limits::excerpt;
use super::tree::{KeyPath, Map, Tree};
use super::yaml::Marker;
use super::{
    DesiredError, canonical, dotenv, emit, interpolate, merge, normalize, schema, validate, yaml,
};

/// The variables interpolation sees: the shell environment over the env files.
pub type Environment = IndexMap<String, String>;

/// What to load: the resolved inputs of a compose project.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// The project directory: relative paths in the files resolve against it.
    pub working_dir: PathBuf,
    /// Compose files in merge order, absolute.
    pub files: Vec<PathBuf>,
    /// The variables interpolation sees (shell environment over env files).
    pub environment: Environment,
    /// Set by `-p`, `COMPOSE_PROJECT_NAME` or `spindle.yaml`; otherwise the files' `name:` or the folder name.
    pub project_name: Option<String>,
    /// Compose profiles to activate.
    pub profiles: Vec<String>,
}

/// Reads a file within the size limit ([`super::limits`]), naming it in the error.
pub(crate) fn read(path: &Path) -> Result<String, DesiredError> {
    super::limits::read_to_string(path).map_err(|source| DesiredError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Loads and normalizes a project; the result is the JSON tree `docker compose config --format json` prints.
pub fn load_model(inputs: &Inputs) -> Result<Loaded, DesiredError> {
    let mut env = inputs.environment.clone();
    let name = project_name(inputs, &env)?;
    env.insert("COMPOSE_PROJECT_NAME".into(), name.clone());
    let lookup = |k: &str| env.get(k).cloned();

    let dict = load_yaml_model(&inputs.files, &inputs.working_dir, &lookup, &mut Vec::new())?;
    if dict.as_object().is_none_or(Map::is_empty) {
        return Err(DesiredError::Empty);
    }

    let Tree::Object(mut top) = dict else {
        return unreachable_mapping();
    };
    top.insert("name".into(), Tree::String(name.clone()));
    normalize::normalize(&mut top, &lookup);

    let mut model = Tree::Object(top);
    let declared_services = model
        .get("services")
        .and_then(Tree::as_object)
        .map(|s| s.keys().cloned().collect())
        .unwrap_or_default();
    emit::apply_profiles(&mut model, &inputs.profiles).map_err(DesiredError::Emit)?;
    validate::check_consistency(&model)?;
    resolve_service_files(&mut model, &lookup)?;
    // Compose's printed model drops `x-` keys below the top level; keep spindle's own.
    let extensions = model
        .get("services")
        .and_then(Tree::as_object)
        .map(|services| {
            services
                .iter()
                .filter_map(|(n, s)| Some((n.clone(), s.get("x-spindle")?.clone())))
                .collect()
        })
        .unwrap_or_default();
    let model = emit::emit_project(&model).map_err(DesiredError::Emit)?;
    Ok(Loaded {
        name,
        model,
        extensions,
        declared_services,
    })
}

/// The result of loading: the project name, the model Compose would print, and each service's
/// `x-spindle` extension (which that model leaves out).
pub struct Loaded {
    pub name: String,
    pub model: Tree,
    pub extensions: std::collections::BTreeMap<String, Tree>,
    /// Every service the compose files define, including those profiles disable.
    pub declared_services: std::collections::BTreeSet<String>,
}

fn unreachable_mapping<T>() -> Result<T, DesiredError> {
    Err(DesiredError::Invalid {
        path: KeyPath::root(),
        message: "top-level object must be a mapping".into(),
    })
}

/// compose-go `loadYamlModel`: the files merged in order, with defaults, checks, absolute paths
/// and environment resolution. `included` is the chain of files being included, for cycle detection.
fn load_yaml_model(
    files: &[PathBuf],
    working_dir: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
    included: &mut Vec<PathBuf>,
) -> Result<Tree, DesiredError> {
    let mut dict = Tree::Object(Map::new());
    for file in files {
        dict = load_file(
            file,
            lookup,
            dict,
            ExtendsMode::Resolve(&mut Vec::new()),
            Some((working_dir, &mut *included)),
        )?;
    }
    if let Tree::Object(top) = &mut dict {
        top.remove("version");
    }
    canonical::set_defaults(&mut dict)
        .map_err(|source| DesiredError::Canonical { file: None, source })?;
    validate::check_resources(&dict)?;
    canonical::resolve_relative_paths(&mut dict, working_dir)
        .map_err(|source| DesiredError::Canonical { file: None, source })?;
    resolve_environment(&mut dict, lookup);
    Ok(dict)
}

/// compose-go `ApplyInclude`: loads each included project on its own and imports its resources;
/// what the including file declares wins over what it includes.
fn apply_include(
    file: &Path,
    cfg: &mut Tree,
    working_dir: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
    included: &mut Vec<PathBuf>,
) -> Result<(), DesiredError> {
    let Some(Tree::Object(top)) = Some(&mut *cfg) else {
        return Ok(());
    };
    let Some(spec) = top.remove("include") else {
        return Ok(());
    };
    let path = KeyPath::parse("include");
    let items = match spec {
        Tree::Null => return Ok(()),
        Tree::Array(a) => a,
        _ => {
            return Err(DesiredError::Invalid {
                path,
                message: "include must be a list".into(),
            });
        }
    };
    included.push(file.to_path_buf());
    for (i, item) in items.into_iter().enumerate() {
        let ipath = path.index(i);
        let (paths, project_dir, env_files) = match item {
            Tree::String(p) => (vec![p], None, Vec::new()),
            Tree::Object(m) => {
                let list = |k: &str| -> Result<Vec<String>, DesiredError> {
                    match m.get(k) {
                        None | Some(Tree::Null) => Ok(Vec::new()),
                        Some(Tree::String(s)) => Ok(vec![s.clone()]),
                        Some(Tree::Array(a)) => a
                            .iter()
                            .map(|v| {
                                v.as_str().map(str::to_string).ok_or_else(|| {
                                    DesiredError::Invalid {
                                        path: ipath.key(k),
                                        message: "must be a path or a list of paths".into(),
                                    }
                                })
                            })
                            .collect(),
                        Some(_) => Err(DesiredError::Invalid {
                            path: ipath.key(k),
                            message: "must be a path or a list of paths".into(),
                        }),
                    }
                };
                let dir = m
                    .get("project_directory")
                    .and_then(Tree::as_str)
                    .map(str::to_string);
                (list("path")?, dir, list("env_file")?)
            }
            _ => {
                return Err(DesiredError::Invalid {
                    path: ipath,
                    message: "an include entry must be a path or a mapping".into(),
                });
            }
        };
        let Some(first) = paths.first() else {
            return Err(DesiredError::Invalid {
                path: ipath.key("path"),
                message: "include needs at least one path".into(),
            });
        };
        for (j, p) in paths.iter().enumerate() {
            super::sources::note_joined(|| format!("{ipath}.path[{j}]"), p, working_dir);
        }
        let files: Vec<PathBuf> = paths.iter().map(|p| working_dir.join(p)).collect();
        let main = working_dir.join(first);
        if included.contains(&main) {
            let chain: Vec<String> = included
                .iter()
                .chain(std::iter::once(&main))
                .map(|p| p.display().to_string())
                .collect();
            return Err(DesiredError::Invalid {
                path: ipath,
                message: format!("include cycle detected: {}", chain.join(" includes ")),
            });
        }
        let project_dir = match project_dir {
            Some(d) => {
                super::sources::note_joined(
                    || format!("{ipath}.project_directory"),
                    &d,
                    working_dir,
                );
                working_dir.join(d)
            }
            None => main.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        let env_files: Vec<PathBuf> = if env_files.is_empty() {
            let f = project_dir.join(".env");
            if f.is_file() {
                super::sources::note_joined(|| format!("{ipath} (.env)"), ".env", &project_dir);
                vec![f]
            } else {
                Vec::new()
            }
        } else {
            for (j, f) in env_files.iter().enumerate() {
                super::sources::note_joined(|| format!("{ipath}.env_file[{j}]"), f, working_dir);
            }
            env_files
                .iter()
                .filter(|f| f.as_str() != "/dev/null")
                .map(|f| working_dir.join(f))
                .collect()
        };
        let mut extra = IndexMap::new();
        for f in &env_files {
            let text = read(f)?;
            let l = |k: &str| lookup(k).or_else(|| extra.get(k).cloned());
            let vars = dotenv::parse(&text, &l).map_err(|source| DesiredError::Dotenv {
                file: f.clone(),
                source,
            })?;
            extra.extend(vars);
        }
        let inner = |k: &str| lookup(k).or_else(|| extra.get(k).cloned());
        let imported = load_yaml_model(&files, &project_dir, &inner, included)?;
        let Tree::Object(imported) = imported else {
            continue;
        };
        let Tree::Object(top) = &mut *cfg else {
            continue;
        };
        for section in [
            "services", "volumes", "networks", "secrets", "configs", "models",
        ] {
            let Some(Tree::Object(from)) = imported.get(section) else {
                continue;
            };
            let to = top
                .entry(section)
                .or_insert_with(|| Tree::Object(Map::new()));
            let Tree::Object(to) = to else { continue };
            for (name, value) in from {
                match to.remove(name) {
                    None => {
                        to.insert(name.clone(), value.clone());
                    }
                    Some(local) => {
                        let merged = merge::merge_at(
                            value.clone(),
                            local,
                            &KeyPath::parse(section).key(name.as_str()),
                        )
                        .map_err(|source| DesiredError::Merge {
                            file: file.to_path_buf(),
                            source,
                        })?;
                        to.insert(name.clone(), merged);
                    }
                }
            }
        }
    }
    included.pop();
    Ok(())
}

/// How `extends` is handled while loading a file.
enum ExtendsMode<'a> {
    /// Resolve `extends`; the vector is the chain of (file, service) being resolved, for cycle detection.
    Resolve(&'a mut Vec<(PathBuf, String)>),
    /// A file read as the base of an `extends`: its own `extends` are resolved by the caller.
    Skip,
}

/// compose-go `loadYamlFile`: every document of one file merged onto `dict`.
fn load_file(
    file: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
    mut dict: Tree,
    mut extends: ExtendsMode<'_>,
    mut include: Option<(&Path, &mut Vec<PathBuf>)>,
) -> Result<Tree, DesiredError> {
    let text = read(file)?;
    let docs = yaml::parse_file(file, &text)?;
    for doc in docs {
        let mut cfg = doc.tree;
        interpolate::interpolate_tree(&mut cfg, lookup).map_err(|source| {
            DesiredError::Interpolate {
                file: file.to_path_buf(),
                source,
            }
        })?;
        // compose-go runs `fixEmptyNotNull` here, to turn Go's nil lists into empty ones; a tree
        // has no nil list distinct from `null`, so there is no step to take.
        if let Some((dir, chain)) = &mut include {
            apply_include(file, &mut cfg, dir, lookup, chain)?;
        }
        if let ExtendsMode::Resolve(chain) = &mut extends {
            apply_extends(file, &mut cfg, &doc.markers, lookup, chain)?;
        }
        let resets: Vec<KeyPath> = doc.markers.iter().map(|(p, _)| p.clone()).collect();
        merge::apply_reset_paths(&mut dict, &resets);
        dict = merge::merge(dict, cfg).map_err(|source| DesiredError::Merge {
            file: file.to_path_buf(),
            source,
        })?;
        merge::enforce_unicity(&mut dict).map_err(|source| DesiredError::Merge {
            file: file.to_path_buf(),
            source,
        })?;
        schema::check(&dict).map_err(|e| e.in_file(file))?;
        if let Tree::Object(m) = &mut dict {
            m.remove("version");
        }
        canonical::canonical(&mut dict).map_err(|source| DesiredError::Canonical {
            file: Some(file.to_path_buf()),
            source,
        })?;
        merge::enforce_unicity(&mut dict).map_err(|source| DesiredError::Merge {
            file: file.to_path_buf(),
            source,
        })?;
    }
    Ok(dict)
}

/// compose-go `ApplyExtends`: replaces each service that `extends` another by the merge of the two.
fn apply_extends(
    file: &Path,
    cfg: &mut Tree,
    markers: &[(KeyPath, Marker)],
    lookup: &dyn Fn(&str) -> Option<String>,
    chain: &mut Vec<(PathBuf, String)>,
) -> Result<(), DesiredError> {
    let Some(Tree::Object(services)) = cfg.get("services") else {
        return Ok(());
    };
    let names: Vec<String> = services.keys().cloned().collect();
    let mut services = services.clone();
    for name in names {
        let resolved = extend_service(file, &name, &services, markers, lookup, chain)?;
        if let Some(r) = resolved {
            services.insert(name, r);
        }
    }
    if let Tree::Object(top) = cfg {
        top.insert("services".into(), Tree::Object(services));
    }
    Ok(())
}

fn extend_service(
    file: &Path,
    name: &str,
    services: &Map,
    markers: &[(KeyPath, Marker)],
    lookup: &dyn Fn(&str) -> Option<String>,
    chain: &mut Vec<(PathBuf, String)>,
) -> Result<Option<Tree>, DesiredError> {
    let path = KeyPath::parse("services").key(name);
    let service = match services.get(name) {
        None | Some(Tree::Null) => return Ok(None),
        Some(Tree::Object(s)) => s,
        Some(_) => {
            return Err(DesiredError::Invalid {
                path,
                message: "a service must be a mapping".into(),
            });
        }
    };
    let Some(ext) = service.get("extends") else {
        return Ok(Some(Tree::Object(service.clone())));
    };
    let (base_name, base_file) = match ext {
        Tree::String(s) => (s.clone(), None),
        Tree::Object(m) => {
            let svc =
                m.get("service")
                    .and_then(Tree::as_str)
                    .ok_or_else(|| DesiredError::Invalid {
                        path: path.key("extends").key("service"),
                        message: "extends needs the name of the service to extend".into(),
                    })?;
            let f = match m.get("file") {
                None | Some(Tree::Null) => None,
                Some(Tree::String(f)) => Some(f.clone()),
                Some(_) => {
                    return Err(DesiredError::Invalid {
                        path: path.key("extends").key("file"),
                        message: "extends.file must be a path".into(),
                    });
                }
            };
            (svc.to_string(), f)
        }
        _ => {
            return Err(DesiredError::Invalid {
                path: path.key("extends"),
                message: "extends must be a service name or a mapping with service and file".into(),
            });
        }
    };

    let key = (file.to_path_buf(), name.to_string());
    if chain.contains(&key) {
        let mut names: Vec<String> = chain.iter().map(|(_, s)| s.clone()).collect();
        names.push(name.to_string());
        return Err(DesiredError::ExtendsCycle {
            services: names.join(" -> "),
        });
    }
    chain.push(key);

    let base = match &base_file {
        None => {
            if !services.contains_key(&base_name) {
                chain.pop();
                return Err(DesiredError::Invalid {
                    path: path.key("extends"),
                    message: format!(
                        "cannot extend service {:?} in {}: service {:?} not found",
                        excerpt(name),
                        file.display(),
                        excerpt(&base_name)
                    ),
                });
            }
            extend_service(file, &base_name, services, markers, lookup, chain)?
        }
        Some(rel) => {
            let dir = file.parent().unwrap_or(Path::new("."));
            super::sources::note_joined(|| format!("{path}.extends.file"), rel, dir);
            let other = dir.join(rel);
            let loaded = load_file(
                &other,
                lookup,
                Tree::Object(Map::new()),
                ExtendsMode::Skip,
                None,
            )?;
            let Some(Tree::Object(other_services)) = loaded.get("services") else {
                chain.pop();
                return Err(DesiredError::Invalid {
                    path: path.key("extends"),
                    message: format!(
                        "cannot extend service {:?}: {} has no services section",
                        excerpt(name),
                        other.display()
                    ),
                });
            };
            if !other_services.contains_key(&base_name) {
                chain.pop();
                return Err(DesiredError::Invalid {
                    path: path.key("extends"),
                    message: format!(
                        "cannot extend service {:?}: service {:?} not found in {}",
                        excerpt(name),
                        excerpt(&base_name),
                        other.display()
                    ),
                });
            }
            let mut other_services = other_services.clone();
            // The base file's own relative paths resolve against its folder.
            let other_dir = other.parent().unwrap_or(Path::new(".")).to_path_buf();
            let mut wrapper = Tree::Object(Map::from_iter([(
                "services".to_string(),
                Tree::Object(other_services.clone()),
            )]));
            canonical::resolve_relative_paths(&mut wrapper, &other_dir).map_err(|source| {
                DesiredError::Canonical {
                    file: Some(other.clone()),
                    source,
                }
            })?;
            if let Some(Tree::Object(s)) = wrapper.get("services") {
                other_services = s.clone();
            }
            extend_service(&other, &base_name, &other_services, &[], lookup, chain)?
        }
    };
    chain.pop();

    let Some(mut base) = base else {
        return Ok(Some(Tree::Object(service.clone())));
    };
    // `!reset`/`!override` in this service apply to what it inherits.
    let prefix = path.clone();
    let rel: Vec<KeyPath> = markers
        .iter()
        .filter(|(p, _)| yaml::has_prefix(p, &prefix))
        .map(|(p, _)| p.clone())
        .collect();
    if !rel.is_empty() {
        let mut wrapper = Tree::Object(Map::from_iter([(
            "services".to_string(),
            Tree::Object(Map::from_iter([(name.to_string(), base)])),
        )]));
        merge::apply_reset_paths(&mut wrapper, &rel);
        base = wrapper
            .get_mut("services")
            .and_then(|s| s.get_mut(name))
            .map(Tree::take)
            .unwrap_or(Tree::Null);
    }
    let mut merged = merge::extend_named_service(name, base, Tree::Object(service.clone()))
        .map_err(|source| DesiredError::Merge {
            file: file.to_path_buf(),
            source,
        })?;
    if let Tree::Object(m) = &mut merged {
        m.remove("extends");
    }
    Ok(Some(merged))
}

/// compose-go `ResolveEnvironment`: bare `KEY` list entries, secrets and configs from the environment.
fn resolve_environment(dict: &mut Tree, lookup: &dyn Fn(&str) -> Option<String>) {
    if let Some(Tree::Object(services)) = dict.get_mut("services") {
        for (_, s) in services.iter_mut() {
            if let Some(Tree::Array(env)) = s.get_mut("environment") {
                for e in env.iter_mut() {
                    if let Tree::String(k) = e
                        && let Some(v) = lookup(k)
                    {
                        *e = Tree::String(format!("{k}={v}"));
                    }
                }
            }
        }
    }
    if let Some(Tree::Object(configs)) = dict.get_mut("configs") {
        for (_, c) in configs.iter_mut() {
            let found = c.get("environment").and_then(Tree::as_str).and_then(lookup);
            if let (Some(v), Tree::Object(c)) = (found, c) {
                c.insert("content".into(), Tree::String(v));
            }
        }
    }
}

/// Reads each service's `env_file`s into its environment and `label_file`s into its labels,
/// as `docker compose config` shows them.
fn resolve_service_files(
    model: &mut Tree,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), DesiredError> {
    let read_env = |entry: &emit::EnvFileEntry<'_>,
                    l: emit::Lookup<'_>|
     -> Result<Option<IndexMap<String, String>>, String> {
        match super::limits::read_to_string(entry.path) {
            Ok(text) if entry.format == Some("raw") => Ok(Some(parse_raw_env(&text))),
            Ok(text) => dotenv::parse(&text, l).map(Some).map_err(|e| e.to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !entry.required => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    };
    let read_labels = |p: &Path, l: emit::Lookup<'_>| -> Result<IndexMap<String, String>, String> {
        let text = super::limits::read_to_string(p).map_err(|e| e.to_string())?;
        dotenv::parse(&text, l).map_err(|e| e.to_string())
    };
    if let Some(Tree::Object(services)) = model.get_mut("services") {
        for (name, s) in services.iter_mut() {
            if let Tree::Object(s) = s {
                let at = |e: emit::EmitError| DesiredError::Service {
                    service: name.clone(),
                    source: e,
                };
                emit::resolve_environment_interpolated(s, lookup, &read_env).map_err(at)?;
                emit::resolve_labels(s, &read_labels).map_err(at)?;
            }
        }
    }
    Ok(())
}

/// The `raw` env file format: `KEY=VALUE` lines taken verbatim.
fn parse_raw_env(text: &str) -> IndexMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The project name: set explicitly (validated), else the files' `name:` (normalized), else the folder's name.
fn project_name(inputs: &Inputs, env: &Environment) -> Result<String, DesiredError> {
    if let Some(n) = inputs.project_name.as_deref().filter(|n| !n.is_empty()) {
        if normalize_project_name(n) != n {
            return Err(DesiredError::ProjectName {
                name: n.to_string(),
            });
        }
        return Ok(n.to_string());
    }
    if let Some(n) = env.get("COMPOSE_PROJECT_NAME").filter(|n| !n.is_empty()) {
        if normalize_project_name(n) != *n {
            return Err(DesiredError::ProjectName { name: n.clone() });
        }
        return Ok(n.clone());
    }
    let lookup = |k: &str| env.get(k).cloned();
    let mut from_files = String::new();
    for f in &inputs.files {
        let Ok(text) = read(f) else { continue };
        if let Some(n) = yaml::top_level_name(&text) {
            from_files = n;
        }
    }
    if !from_files.is_empty() {
        let n = interpolate::interpolate_str(&from_files, &lookup).map_err(|source| {
            DesiredError::Interpolate {
                file: inputs.files.first().cloned().unwrap_or_default(),
                source: interpolate::InterpolateError::At {
                    path: KeyPath::parse("name"),
                    source: Box::new(source),
                },
            }
        })?;
        let n = normalize_project_name(&n);
        if !n.is_empty() {
            return Ok(n);
        }
    }
    let base = inputs
        .working_dir
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let n = normalize_project_name(&base);
    if n.is_empty() {
        return Err(DesiredError::ProjectName { name: base });
    }
    Ok(n)
}

/// Lowercases and keeps `[a-z0-9_-]`, without leading `_` or `-` (Compose's rule).
pub fn normalize_project_name(s: &str) -> String {
    let kept: String = s
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    kept.trim_start_matches(['_', '-']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_are_normalized_like_compose() {
        for (i, o) in [
            ("My App", "myapp"),
            ("_x-1", "x-1"),
            ("ERP.prod", "erpprod"),
        ] {
            assert_eq!(normalize_project_name(i), o);
        }
    }
}
