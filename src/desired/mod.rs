//! Desired state: loads a desired-state folder the way Docker Compose loads a project.
//!
//! The pipeline mirrors compose-go, stage by stage, on an untyped [`tree::Tree`]:
//! parse YAML (`yaml`) → interpolate (`interpolate`) → `extends` → merge the files
//! (`merge`) → canonical long forms (`canonical`) → defaults and relative paths
//! (`canonical`) → normalization (`normalize`) → profiles, env files and the JSON model
//! Compose prints (`emit`).

pub mod canonical;
pub mod dotenv;
pub mod emit;
pub mod interpolate;
pub mod merge;
pub mod tree;
