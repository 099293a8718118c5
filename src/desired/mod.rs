//! Desired state: loads a desired-state folder the way Docker Compose loads a project.
//!
//! The pipeline mirrors compose-go, stage by stage, on an untyped [`tree::Tree`]:
//! parse YAML (`yaml`) → interpolate (`interpolate`) → `extends` (`load`) → merge the files
//! (`merge`) → key check (`schema`) → canonical long forms, defaults and relative paths
//! (`canonical`) → normalization (`normalize`) → the JSON model Compose prints, profiles and
//! env files (`emit`) → consistency (`validate`). `folder` decides the inputs (the
//! desired-state folder contract) and `hash` fingerprints each service; `compose_hash` computes
//! the `com.docker.compose.config-hash` Compose v5 writes on containers, networks and volumes.

use std::path::PathBuf;

pub mod abspath;
pub mod canonical;
pub mod compose_hash;
pub mod dotenv;
pub mod emit;
pub mod folder;
pub mod hash;
pub mod hook;
pub mod interpolate;
pub mod load;
pub mod merge;
pub mod normalize;
pub mod revision;
pub mod schema;
pub mod secrets;
pub mod tree;
pub mod typed;
pub mod update;
pub mod validate;
pub mod yaml;

pub use folder::{Project, Request, load};
use tree::KeyPath;

#[derive(Debug, thiserror::Error)]
pub enum DesiredError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Yaml(#[from] yaml::YamlError),
    #[error("{file}: {source}")]
    Dotenv {
        file: PathBuf,
        #[source]
        source: dotenv::DotenvError,
    },
    #[error("{file}: {source}")]
    Interpolate {
        file: PathBuf,
        #[source]
        source: interpolate::InterpolateError,
    },
    #[error("{file}: {source}")]
    Merge {
        file: PathBuf,
        #[source]
        source: merge::MergeError,
    },
    #[error("{}{source}", file.as_ref().map(|f| format!("{}: ", f.display())).unwrap_or_default())]
    Canonical {
        file: Option<PathBuf>,
        #[source]
        source: canonical::CanonicalError,
    },
    #[error(transparent)]
    Schema(#[from] schema::SchemaError),
    #[error(transparent)]
    Emit(emit::EmitError),
    #[error("services.{service}: {source}")]
    Service {
        service: String,
        #[source]
        source: emit::EmitError,
    },
    #[error(transparent)]
    Validate(#[from] validate::ValidateError),
    #[error("{path}: {message}")]
    Invalid { path: KeyPath, message: String },
    #[error("extends cycle detected: {services}")]
    ExtendsCycle { services: String },
    #[error("empty compose file: define at least one service")]
    Empty,
    #[error(
        "invalid project name {name:?}: use only lowercase letters, digits, hyphens and underscores, starting with a letter or digit"
    )]
    ProjectName { name: String },
    #[error(
        "no compose file found in {dir} (looked for compose.yaml, compose.yml, docker-compose.yml, docker-compose.yaml): pass -f FILE or add spindle.yaml"
    )]
    NoComposeFile { dir: PathBuf },
    #[error("{file}: {message}")]
    Folder { file: PathBuf, message: String },
    #[error(
        "{key} is listed in {example} but not set in the host env file: it looks like a secret, so spindle will not fall back to the example's value; set {key} in .env"
    )]
    SecretMissing { key: String, example: PathBuf },
}
