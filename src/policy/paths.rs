//! The `paths` rule: every path the desired state writes relative (binds, `env_file`, `include`, `extends.file`, build contexts, secret and config files, `.env` and its symbolic link target) stays inside the desired-state folder, unless allowlisted with a reason.

use std::path::{Path, PathBuf};

use super::rooted_clean as clean;

use crate::desired::sources::PathRef;

use super::{PolicyConfig, PolicyKind, Violation};

/// The path with symbolic links resolved: its longest existing ancestor canonicalized, and the
/// rest (which does not exist yet) appended as it is.
pub(super) fn real(p: &Path) -> PathBuf {
    let p = clean(p);
    let mut rest = Vec::new();
    let mut at = p.as_path();
    loop {
        if let Ok(r) = std::fs::canonicalize(at) {
            let mut r = r;
            for c in rest.iter().rev() {
                r.push(c);
            }
            return r;
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                at = parent;
            }
            _ => return p,
        }
    }
}

/// Where a resolved path lands outside `root`, or `None` when it stays inside: checked lexically
/// against the folder as named (`..` climbs), and through symbolic links against the folder's
/// own real path (so a folder reached through a link is compared real with real).
fn outside(resolved: &Path, root: &Path) -> Option<PathBuf> {
    let lexical = clean(resolved);
    if !lexical.starts_with(clean(root)) {
        return Some(lexical);
    }
    let target = real(&lexical);
    if !target.starts_with(real(root)) {
        return Some(target);
    }
    None
}

/// Adds the violations to `out`, and to `granted` one line per path an allowlist entry lets
/// out (`policy paths: <key>: allowed (<reason>)`).
pub(super) fn check(
    root: &Path,
    refs: &[PathRef],
    cfg: &PolicyConfig,
    out: &mut Vec<Violation>,
    granted: &mut Vec<String>,
) {
    let allowed: Vec<(PathBuf, PathBuf, &str)> = cfg
        .paths
        .allow_outside
        .iter()
        .filter(|a| !a.reason.trim().is_empty())
        .map(|a| {
            let p = clean(&root.join(a.path.trim()));
            let r = real(&p);
            (p, r, a.reason.as_str())
        })
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for r in refs {
        let Some(target) = outside(&r.resolved, root) else {
            continue;
        };
        let lexical = clean(&r.resolved);
        let real_target = real(&lexical);
        if let Some((_, _, reason)) = allowed.iter().find(|(p, rp, _)| {
            [&lexical, &target, &real_target]
                .iter()
                .any(|t| t.starts_with(p) || t.starts_with(rp))
        }) {
            granted.push(format!(
                "policy paths: {}: `{}` allowed outside the folder ({reason})",
                r.key,
                target.display()
            ));
            continue;
        }
        if !seen.insert(r.key.clone()) {
            continue;
        }
        let how = if target == lexical {
            format!("resolves to `{}`", target.display())
        } else {
            format!(
                "resolves to `{}`, which is a symbolic link to `{}`",
                lexical.display(),
                target.display()
            )
        };
        out.push(Violation {
            policy: PolicyKind::Paths,
            mode: cfg.paths.mode,
            path: r.key.clone(),
            message: format!(
                "`{}` {how}, outside the desired-state folder `{}`: a repository must not reach \
                 the host's files through relative paths; move the file into the folder, or add `{}` to policies.paths.allow_outside with a reason",
                r.written,
                root.display(),
                target.display()
            ),
        });
    }
}
