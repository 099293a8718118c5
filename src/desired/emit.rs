//! Turns the normalized model into the JSON Compose prints (`docker compose config --format json`), checking and converting typed fields (durations, sizes, ports) on the way.

use super::tree::{KeyPath, Tree};

#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    #[error("{path}: invalid {kind} {value:?}: {reason}")]
    Invalid {
        path: KeyPath,
        kind: &'static str,
        value: String,
        reason: String,
    },
}

/// compose-go `ModelToProject` + JSON marshalling of `types.Project`, on a normalized tree.
pub fn emit(model: Tree) -> Result<Tree, EmitError> {
    Ok(model)
}
