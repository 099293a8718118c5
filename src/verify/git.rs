//! The git side of the host input layer: the commit checked out and how each file of the folder stands against it (runs `git`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::host::{FileState, GitView};

/// The name a file is shown by: relative to the folder when inside it.
pub fn shown(dir: &Path, file: &Path) -> String {
    file.strip_prefix(dir)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| file.display().to_string())
}

fn git(dir: &Path, args: &[&str]) -> std::io::Result<Output> {
    let mut c = Command::new("git");
    c.arg("-C").arg(dir).args(args);
    // The folder's own repository, whatever the caller's environment points at.
    for var in ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"] {
        c.env_remove(var);
    }
    c.output()
}

/// Runs git in `file`'s folder with `args` followed by the file's name.
fn on_file(file: &Path, args: &[&str], rev_prefix: Option<&str>) -> bool {
    let (Some(parent), Some(name)) = (file.parent(), file.file_name()) else {
        return false;
    };
    let name = name.to_string_lossy();
    let target = match rev_prefix {
        Some(rev) => format!("{rev}:./{name}"),
        None => name.to_string(),
    };
    let mut all: Vec<&str> = args.to_vec();
    all.push(&target);
    git(parent, &all).is_ok_and(|o| o.status.success())
}

/// What git says about the folder `dir`: `files` (compose files, `spindle.yaml`,
/// `.env.example`) against `HEAD`, and which of `env_files` git tracks.
pub fn view(dir: &Path, files: &[PathBuf], env_files: &[PathBuf]) -> GitView {
    let head = match git(dir, &["rev-parse", "--verify", "--quiet", "HEAD"]) {
        Err(e) => {
            return GitView::Unavailable {
                reason: format!("git cannot run ({e})"),
            };
        }
        Ok(o) => o,
    };
    if !head.status.success() {
        let inside =
            git(dir, &["rev-parse", "--is-inside-work-tree"]).is_ok_and(|o| o.status.success());
        let reason = if inside {
            format!("the git repository of {} has no commit yet", dir.display())
        } else {
            format!("{} is not in a git work tree", dir.display())
        };
        return GitView::Unavailable { reason };
    }
    let commit = String::from_utf8_lossy(&head.stdout).trim().to_string();
    let files = files
        .iter()
        .map(|f| {
            let state = if !on_file(f, &["cat-file", "-e"], Some("HEAD")) {
                FileState::NotCommitted
            } else if on_file(f, &["diff", "--quiet", "HEAD", "--"], None) {
                FileState::Committed
            } else {
                FileState::Modified
            };
            (shown(dir, f), state)
        })
        .collect();
    let tracked_env = env_files
        .iter()
        .filter(|f| {
            on_file(f, &["ls-files", "--error-unmatch", "--"], None)
                || on_file(f, &["cat-file", "-e"], Some("HEAD"))
        })
        .map(|f| shown(dir, f))
        .collect();
    GitView::At {
        commit,
        files,
        tracked_env,
    }
}
