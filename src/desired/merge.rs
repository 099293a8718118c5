//! Merging compose files by the Compose rules: deep mappings, replaced commands, sequences merged by key, `!reset`/`!override`, and `extends` merging.

use super::tree::{KeyPath, Tree};

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("cannot override {path}: {reason}")]
    Conflict { path: KeyPath, reason: String },
}

/// Merges `overlay` (a later file) onto `base` (the files before it), both raw trees.
pub fn merge(base: Tree, overlay: Tree) -> Result<Tree, MergeError> {
    let _ = base;
    Ok(overlay)
}

/// Merges a service onto the service it `extends` (compose-go `override.ExtendService`).
pub fn extend_service(base: Tree, service: Tree) -> Result<Tree, MergeError> {
    let _ = base;
    Ok(service)
}

/// Removes every path a later file marked `!reset` or `!override` from the accumulated tree.
pub fn apply_reset_paths(tree: &mut Tree, paths: &[KeyPath]) {
    let _ = (tree, paths);
}

/// Removes duplicates that merging sequences can leave (ports, volumes, secrets … by key).
pub fn enforce_unicity(tree: &mut Tree) -> Result<(), MergeError> {
    let _ = tree;
    Ok(())
}

/// Merges two values found at `path` by the rules that apply there (compose-go `MergeYaml`).
pub fn merge_at(base: Tree, overlay: Tree, path: &KeyPath) -> Result<Tree, MergeError> {
    let _ = (base, path);
    Ok(overlay)
}
