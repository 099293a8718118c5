//! The desired-state folder contract: `spindle.yaml` or Compose's file discovery, env files, and `.env.example` defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;

use super::abspath::{absolute, expand_user};
use super::load::{Environment, Inputs, load_model, read};
use super::tree::Tree;
use super::{DesiredError, dotenv, hash};
use crate::redact;

/// The name of the optional manifest at the top of a desired-state folder.
pub const MANIFEST: &str = "spindle.yaml";
/// Compose's file names, in order of preference.
pub const DEFAULT_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];
/// Compose's override file names, in order of preference.
pub const OVERRIDE_FILES: &[&str] = &[
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

/// `spindle.yaml`: how a desired-state folder is put together.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The compose project name.
    pub project: Option<String>,
    /// Compose files in merge order, relative to the folder.
    #[serde(default)]
    pub compose_files: Vec<PathBuf>,
    /// Env files for interpolation, in order; later ones win. Default: `.env`.
    pub env_files: Option<Vec<PathBuf>>,
    /// Named profiles; each adds override files after `compose_files`.
    #[serde(default)]
    pub profiles: BTreeMap<String, ManifestProfile>,
    /// Extra words that mark a variable or key as secret-like (beside PASSWORD, TOKEN, KEY, …).
    #[serde(default)]
    pub secret_words: Vec<String>,
    /// Image, network, port and `.env.example` policies (see docs/policies.md).
    #[serde(default)]
    pub policies: crate::policy::PolicyConfig,
    /// Probes of the application itself, for `spindle verify` and, with `gates:`, the apply health gate (see docs/probes.md).
    #[serde(default)]
    pub probes: Vec<crate::health::ProbeSpec>,
    /// Automatic switching to a profile under CPU load (see docs/profiles.md).
    #[serde(default)]
    pub switching: Option<crate::profile::SwitchingConfig>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestProfile {
    /// Override files this profile adds, relative to the folder.
    #[serde(default)]
    pub compose_files: Vec<PathBuf>,
}

/// What the caller asks to load; the same flags as `docker compose`, plus `--desired-state`.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// A desired-state folder (may hold `spindle.yaml`).
    pub desired_state: Option<PathBuf>,
    /// `-f`: compose files, relative to `cwd`.
    pub files: Vec<PathBuf>,
    /// `--env-file`: env files, relative to `cwd` (a leading `~` is the home directory).
    pub env_files: Vec<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--project-directory`.
    pub project_directory: Option<PathBuf>,
    /// `--profile`: spindle.yaml profiles and Compose profiles to activate.
    pub profiles: Vec<String>,
    /// The process environment.
    pub shell_env: Environment,
    /// The current directory, as Compose sees it (see [`super::abspath::logical_cwd`]).
    pub cwd: PathBuf,
}

/// A loaded desired state.
#[derive(Clone, Debug)]
pub struct Project {
    pub name: String,
    pub working_dir: PathBuf,
    pub files: Vec<PathBuf>,
    pub env_files: Vec<PathBuf>,
    /// The env files given explicitly (`--env-file`), absolute: Compose writes them into the
    /// `com.docker.compose.project.environment_file` label, and only then.
    pub explicit_env_files: Vec<PathBuf>,
    pub profiles: Vec<String>,
    /// The normalized model, as `docker compose config --format json` prints it.
    pub model: Tree,
    /// Spec hash of each service (see `hash`).
    pub service_hashes: BTreeMap<String, String>,
    /// The policies from `spindle.yaml` (defaults without one).
    pub policies: crate::policy::PolicyConfig,
    /// The text of `.env.example`, for the policy that it holds no real secret. Never printed.
    pub env_example: Option<String>,
    /// Each service's `x-spindle` extension, by service name.
    pub extensions: BTreeMap<String, Tree>,
    /// Things the operator should know (defaults taken from `.env.example`, …). Never holds values.
    pub warnings: Vec<String>,
    /// Values of secret-like variables; output passes through a [`redact::Redactor`] built from them.
    pub secret_values: Vec<String>,
    /// The probes `spindle.yaml` declares (none without one).
    pub probes: Vec<crate::health::ProbeSpec>,
    /// Compose files of `spindle.yaml` profiles that are not active, for checks over every file
    /// of the folder (`spindle verify`); they are not loaded.
    pub inactive_files: Vec<PathBuf>,
    /// The paths the desired state writes relative (binds, env files, includes, `extends.file`,
    /// `.env`, …) and where they resolve, for the `paths` policy (docs/policies.md).
    pub path_refs: Vec<super::sources::PathRef>,
}

/// Resolves the request into inputs and loads the project, within the input limits that
/// `SPINDLE_MAX_INPUT_BYTES` and `SPINDLE_MAX_INPUT_DEPTH` of the request's environment set.
pub fn load(req: &Request) -> Result<Project, DesiredError> {
    let limits = super::limits::Limits::from_env(&req.shell_env)?;
    super::limits::scoped(limits, || {
        let recording = super::sources::Recording::start();
        let mut project = load_within_limits(req)?;
        project.path_refs = recording.finish();
        Ok(project)
    })
}

fn load_within_limits(req: &Request) -> Result<Project, DesiredError> {
    // Every path is absolute and cleaned where Compose makes it so (Go's `filepath.Abs`), so
    // the working-dir and config-files labels are Compose's whatever the current directory.
    let abs = |p: &Path| -> PathBuf { absolute(&req.cwd, p) };
    let folder = req.desired_state.as_deref().map(abs);
    if let Some(words) = req.shell_env.get("SPINDLE_SECRET_WORDS") {
        redact::add_secret_words(words.split(',').map(str::to_string));
    }
    let manifest_path = folder.as_ref().map(|d| d.join(MANIFEST));
    let manifest = match &manifest_path {
        Some(p) if p.is_file() => Some(read_manifest(p)?),
        Some(_) | None => None,
    };
    if let (Some(m), Some(path)) = (&manifest, &manifest_path) {
        switching(m, path)?;
        redact::add_secret_words(m.secret_words.iter().cloned());
        let mut names = std::collections::BTreeSet::new();
        if let Some(dup) = m.probes.iter().find(|p| !names.insert(p.name.as_str())) {
            return Err(DesiredError::Folder {
                file: path.clone(),
                message: format!(
                    "probes: the name {:?} is used twice; give each probe its own name",
                    dup.name
                ),
            });
        }
    }

    // Env files are found from here; the project directory proper is settled once the files are known.
    let env_dir = match (&req.project_directory, &folder, req.files.first()) {
        (Some(d), _, _) => abs(d),
        (None, Some(d), _) => d.clone(),
        (None, None, Some(f)) => abs(f).parent().map(Path::to_path_buf).unwrap_or_default(),
        (None, None, None) => req.cwd.clone(),
    };
    let mut warnings = Vec::new();

    // Env files: explicit flags, else the manifest's, else `.env` in the project directory.
    let (env_files, explicit_env) = if !req.env_files.is_empty() {
        let home = req.shell_env.get("HOME").map(std::ffi::OsStr::new);
        (
            req.env_files
                .iter()
                .map(|p| abs(&expand_user(p, home)))
                .collect::<Vec<_>>(),
            true,
        )
    } else if let Some(list) = manifest.as_ref().and_then(|m| m.env_files.clone()) {
        for (i, p) in list.iter().enumerate() {
            let key = || format!("{MANIFEST}:env_files[{i}]");
            super::sources::note_joined(key, &p.to_string_lossy(), &env_dir);
        }
        (list.iter().map(|p| absolute(&env_dir, p)).collect(), false)
    } else {
        if env_dir.join(".env").is_file() {
            super::sources::note_joined(|| ".env".into(), ".env", &env_dir);
        }
        (vec![env_dir.join(".env")], false)
    };
    let mut file_env = Environment::new();
    let mut used_env_files = Vec::new();
    for f in &env_files {
        let text = match super::limits::read_to_string(f) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit_env => continue,
            Err(source) => {
                return Err(DesiredError::Io {
                    path: f.clone(),
                    source,
                });
            }
        };
        let lookup = |k: &str| req.shell_env.get(k).or_else(|| file_env.get(k)).cloned();
        let vars = dotenv::parse(&text, &lookup).map_err(|source| DesiredError::Dotenv {
            file: f.clone(),
            source,
        })?;
        file_env.extend(vars);
        used_env_files.push(f.clone());
    }

    // `.env.example`: canonical keys; non-secret ones fall back to their example value.
    let example = env_dir.join(".env.example");
    let mut env_example = None;
    // Keys `.env.example` declares without a default: the host's values of them are secret.
    let mut declared_empty = std::collections::BTreeSet::new();
    if example.is_file() {
        super::sources::note_joined(|| ".env.example".into(), ".env.example", &env_dir);
        let text = read(&example)?;
        env_example = Some(text.clone());
        let defaults = dotenv::parse(&text, &|_| None).map_err(|source| DesiredError::Dotenv {
            file: example.clone(),
            source,
        })?;
        for (key, value) in defaults {
            if value.is_empty() {
                declared_empty.insert(key.clone());
            }
            if file_env.contains_key(&key) || req.shell_env.contains_key(&key) {
                continue;
            }
            if redact::is_secret_key(&key)
                && (value.is_empty() || redact::is_secret_entry(&key, &value))
            {
                return Err(DesiredError::SecretMissing {
                    key,
                    example: example.clone(),
                });
            }
            warnings.push(format!(
                "{key} is not set in the host env file; using the default from .env.example"
            ));
            file_env.insert(key, value);
        }
    }

    // The shell environment wins over env files.
    let mut environment: Environment = file_env;
    for (k, v) in &req.shell_env {
        environment.insert(k.clone(), v.clone());
    }

    let profiles: Vec<String> = if !req.profiles.is_empty() {
        req.profiles.clone()
    } else {
        environment
            .get("COMPOSE_PROFILES")
            .map(|p| {
                p.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };

    let mut files = compose_files(req, manifest.as_ref(), &env_dir, &environment, &abs)?;
    if let Some(m) = &manifest {
        for p in &profiles {
            if let Some(prof) = m.profiles.get(p) {
                for (i, f) in prof.compose_files.iter().enumerate() {
                    let key = || format!("{MANIFEST}:profiles.{p}.compose_files[{i}]");
                    super::sources::note_joined(key, &f.to_string_lossy(), &env_dir);
                }
                files.extend(prof.compose_files.iter().map(|f| absolute(&env_dir, f)));
            }
        }
    }
    let mut inactive_files: Vec<PathBuf> = Vec::new();
    if let Some(m) = &manifest {
        for (name, prof) in &m.profiles {
            if !profiles.contains(name) {
                for f in prof.compose_files.iter().map(|f| absolute(&env_dir, f)) {
                    if !files.contains(&f) && !inactive_files.contains(&f) {
                        inactive_files.push(f);
                    }
                }
            }
        }
    }
    // Like Compose: the named directory, else the folder of the first compose file.
    let working_dir = match (&req.project_directory, &folder, files.first()) {
        (Some(d), _, _) => abs(d),
        (None, Some(d), _) => d.clone(),
        (None, None, Some(f)) => f.parent().map(Path::to_path_buf).unwrap_or(env_dir),
        (None, None, None) => env_dir,
    };
    for f in &files {
        if !f.is_file() {
            return Err(DesiredError::Io {
                path: f.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "compose file not found"),
            });
        }
    }

    let project_name = req
        .project_name
        .clone()
        .or_else(|| manifest.as_ref().and_then(|m| m.project.clone()));
    let env_secrets = super::secrets::from_environment(&environment, &declared_empty);
    let inputs = Inputs {
        working_dir: working_dir.clone(),
        files: files.clone(),
        environment,
        project_name,
        profiles: profiles.clone(),
    };
    let super::load::Loaded {
        name,
        model,
        extensions,
        declared_services,
    } = match load_model(&inputs) {
        Ok(loaded) => loaded,
        Err(e) => {
            // The error may quote the environment's secrets; the model that would tell public
            // names apart is not there.
            redact::register_secrets(env_secrets);
            return Err(e);
        }
    };
    // What the compose files write themselves, before interpolation: only those names are public.
    let written: String = files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect::<Vec<_>>()
        .join("\n");
    let secrets = super::secrets::collect(
        &inputs.environment,
        &declared_empty,
        &model,
        &name,
        &written,
    );
    redact::register_secrets(secrets.values.iter().cloned());
    warnings.extend(secrets.warnings.into_iter().filter(|w| first_time(w)));
    let secret_values = secrets.values;
    if let (Some(m), Some(path)) = (&manifest, &manifest_path) {
        crate::health::check_gates(&m.probes, &|s| declared_services.contains(s)).map_err(
            |message| DesiredError::Folder {
                file: path.clone(),
                message,
            },
        )?;
    }
    let service_hashes = hash::service_hashes(&model);
    Ok(Project {
        name,
        working_dir,
        files,
        explicit_env_files: if explicit_env { env_files } else { Vec::new() },
        env_files: used_env_files,
        profiles,
        model,
        service_hashes,
        probes: manifest
            .as_ref()
            .map(|m| m.probes.clone())
            .unwrap_or_default(),
        inactive_files,
        path_refs: Vec::new(),
        policies: manifest.map(|m| m.policies).unwrap_or_default(),
        env_example,
        extensions,
        warnings,
        secret_values,
    })
}

/// The manifest of a desired-state folder, if it has one.
pub fn read_manifest_in(folder: &Path) -> Result<Option<Manifest>, DesiredError> {
    let path = folder.join(MANIFEST);
    if path.is_file() {
        read_manifest(&path).map(Some)
    } else {
        Ok(None)
    }
}

/// The checked `switching:` block of a manifest read from `path`, if it has one.
pub fn switching(
    m: &Manifest,
    path: &Path,
) -> Result<Option<crate::profile::Switching>, DesiredError> {
    m.switching
        .as_ref()
        .map(|s| s.validate(&m.profiles))
        .transpose()
        .map_err(|e| DesiredError::Folder {
            file: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// True the first time this process sees `warning`: the warnings about secrets are given once,
/// not at every reconcile of `spindle run`.
fn first_time(warning: &str) -> bool {
    static SEEN: std::sync::Mutex<std::collections::BTreeSet<String>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    SEEN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(warning.to_string())
}

fn read_manifest(path: &Path) -> Result<Manifest, DesiredError> {
    let text = read(path)?;
    super::yaml::check_depth(path, &text)?;
    yaml_serde::from_str(&text).map_err(|e| {
        let loc = e
            .location()
            .map(|l| format!("line {}, column {}: ", l.line(), l.column()))
            .unwrap_or_default();
        let msg = e.to_string();
        let msg = super::limits::shorten_quoted(&crate::redact::serde_message(
            msg.split(" at line ").next().unwrap_or(&msg),
        ));
        DesiredError::Folder {
            file: path.to_path_buf(),
            message: format!("{loc}{msg}"),
        }
    })
}

/// The compose files: `-f`, else the manifest's, else `COMPOSE_FILE`, else Compose's discovery.
fn compose_files(
    req: &Request,
    manifest: Option<&Manifest>,
    working_dir: &Path,
    env: &IndexMap<String, String>,
    abs: &dyn Fn(&Path) -> PathBuf,
) -> Result<Vec<PathBuf>, DesiredError> {
    if !req.files.is_empty() {
        return Ok(req.files.iter().map(|p| abs(p)).collect());
    }
    if let Some(m) = manifest.filter(|m| !m.compose_files.is_empty()) {
        for (i, f) in m.compose_files.iter().enumerate() {
            let key = || format!("{MANIFEST}:compose_files[{i}]");
            super::sources::note_joined(key, &f.to_string_lossy(), working_dir);
        }
        return Ok(m
            .compose_files
            .iter()
            .map(|f| absolute(working_dir, f))
            .collect());
    }
    if let Some(list) = env.get("COMPOSE_FILE").filter(|s| !s.is_empty()) {
        let sep = env
            .get("COMPOSE_PATH_SEPARATOR")
            .filter(|s| !s.is_empty())
            .map(String::as_str)
            .unwrap_or(":");
        return Ok(list.split(sep).map(|f| abs(Path::new(f))).collect());
    }
    // Discovery walks up from the project directory, like Compose, unless a folder was named.
    let mut dir = working_dir.to_path_buf();
    loop {
        if let Some(found) = DEFAULT_FILES
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.is_file())
        {
            let mut files = vec![found];
            if let Some(o) = OVERRIDE_FILES
                .iter()
                .map(|n| dir.join(n))
                .find(|p| p.is_file())
            {
                files.push(o);
            }
            return Ok(files);
        }
        if req.desired_state.is_some() {
            break;
        }
        match dir.parent() {
            Some(p) => dir = p.to_path_buf(),
            None => break,
        }
    }
    Err(DesiredError::NoComposeFile {
        dir: working_dir.to_path_buf(),
    })
}
