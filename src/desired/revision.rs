//! The desired-state revision: the git commit of the folder, with `-dirty` when its files differ from that commit.

use std::path::Path;
use std::process::Command;

/// `<commit>` or `<commit>-dirty` when `dir` is in a git work tree; `None` otherwise (or without git).
pub fn revision(dir: &Path) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--verify", "HEAD"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let commit = String::from_utf8(out.stdout).ok()?.trim().to_string();
    let status = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "status",
            "--porcelain",
            "--untracked-files=normal",
            "--",
            ".",
        ])
        .output()
        .ok()?;
    let dirty = !status.status.success() || !status.stdout.is_empty();
    Some(if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    })
}
