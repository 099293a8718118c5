//! Short compose syntax to its canonical long form, default values, empty-value pruning and relative path resolution.

use std::path::Path;

use super::tree::{KeyPath, Tree};

#[derive(Debug, thiserror::Error)]
pub enum CanonicalError {
    #[error("{path}: {reason}")]
    Invalid { path: KeyPath, reason: String },
}

/// compose-go `transform.Canonical` followed by `OmitEmpty`.
pub fn canonical(tree: &mut Tree) -> Result<(), CanonicalError> {
    let _ = tree;
    Ok(())
}

/// compose-go `transform.SetDefaultValues`.
pub fn set_defaults(tree: &mut Tree) -> Result<(), CanonicalError> {
    let _ = tree;
    Ok(())
}

/// compose-go `paths.ResolveRelativePaths`: makes build contexts, env files, bind sources,
/// secret and config files absolute against `working_dir`.
pub fn resolve_relative_paths(tree: &mut Tree, working_dir: &Path) -> Result<(), CanonicalError> {
    let _ = (tree, working_dir);
    Ok(())
}

/// compose-go `fixEmptyNotNull`: empty YAML sequences stay empty sequences.
pub fn fix_empty_not_null(tree: &mut Tree) {
    let _ = tree;
}
