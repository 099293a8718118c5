//! The relative paths a desired state refers to (binds, env files, includes, `extends.file`, `.env`, …), noted while it loads, for the `paths` policy.
//!
//! The loader resolves relative paths deep inside its stages; rather than thread a list through
//! every one, a load opens a [`Recording`] on its thread and each stage [`note`]s what it
//! resolved. Outside a recording nothing is kept (and nothing is cloned).

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::tree::{KeyPath, Tree};

/// A path written relative in the desired state, and where it resolved to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PathRef {
    /// Where it is written: `services.web.volumes[0].source`, `include[0].path`,
    /// `services.web.extends.file`, `.env`, `spindle.yaml:env_files[0]`.
    pub key: String,
    /// The path as written (after interpolation).
    pub written: String,
    /// The absolute path it resolves to, lexically (symbolic links not followed).
    pub resolved: PathBuf,
}

thread_local! {
    static RECORDING: RefCell<Option<Vec<PathRef>>> = const { RefCell::new(None) };
}

/// Notes the relative paths of the loads on this thread until [`Recording::finish`].
pub(crate) struct Recording {
    outer: Option<Vec<PathRef>>,
    done: bool,
}

impl Recording {
    pub(crate) fn start() -> Self {
        let outer = RECORDING.with(|r| r.borrow_mut().replace(Vec::new()));
        Self { outer, done: false }
    }

    pub(crate) fn finish(mut self) -> Vec<PathRef> {
        self.done = true;
        let outer = self.outer.take();
        let mut got = RECORDING
            .with(|r| std::mem::replace(&mut *r.borrow_mut(), outer))
            .unwrap_or_default();
        got.dedup();
        got
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        // A load that fails drops its recording: put back what an enclosing one had (if any).
        if !self.done {
            let outer = self.outer.take();
            RECORDING.with(|r| *r.borrow_mut() = outer);
        }
    }
}

fn recording() -> bool {
    RECORDING.with(|r| r.borrow().is_some())
}

fn push(p: PathRef) {
    RECORDING.with(|r| {
        if let Some(v) = r.borrow_mut().as_mut() {
            v.push(p);
        }
    });
}

/// True when `written` is a relative path (not absolute, not `~`, not a URL, not empty).
fn relative(written: &str) -> bool {
    !(written.is_empty()
        || written.starts_with('/')
        || written.starts_with('~')
        || written.contains("://"))
}

/// Notes `written` at `key`, resolved against `base`, when it is relative.
pub(crate) fn note_joined(key: impl FnOnce() -> String, written: &str, base: &Path) {
    if recording() && relative(written) {
        push(PathRef {
            key: key(),
            written: written.to_string(),
            resolved: base.join(written),
        });
    }
}

/// A copy of `value` when a recording is on, to compare with after resolving it.
pub(crate) fn before(value: &Tree) -> Option<Tree> {
    recording().then(|| value.clone())
}

/// Notes every string under `key` that resolving turned from relative (`before`) into
/// absolute (`after`). Paths under `develop` (Compose's file watch, not used by spindle) are
/// left out.
pub(crate) fn note_resolved(key: &KeyPath, before: Option<&Tree>, after: &Tree) {
    let Some(before) = before else { return };
    let shown = key.to_string();
    if shown.contains(".develop.") {
        return;
    }
    walk(&shown, before, after);
}

fn walk(key: &str, before: &Tree, after: &Tree) {
    match (before, after) {
        (Tree::String(b), Tree::String(a)) if b != a && relative(b) && a.starts_with('/') => {
            push(PathRef {
                key: key.to_string(),
                written: b.clone(),
                resolved: PathBuf::from(a),
            });
        }
        (Tree::Array(b), Tree::Array(a)) => {
            for (i, (b, a)) in b.iter().zip(a).enumerate() {
                walk(&format!("{key}[{i}]"), b, a);
            }
        }
        (Tree::Object(b), Tree::Object(a)) => {
            for (k, b) in b {
                if let Some(a) = a.get(k) {
                    walk(&format!("{key}.{k}"), b, a);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_paths_resolving_made_absolute_from_relative_are_noted_and_only_while_recording() {
        let before = json!({"source": "./data", "target": "/data", "x": "/abs"});
        let after = json!({"source": "/wd/data", "target": "/data", "x": "/abs"});
        note_resolved(
            &KeyPath::parse("services.web.volumes"),
            Some(&before),
            &after,
        );
        let r = Recording::start();
        note_resolved(
            &KeyPath::parse("services.web.volumes").index(0),
            Some(&before),
            &after,
        );
        note_joined(|| "include[0]".into(), "../x.yaml", Path::new("/wd"));
        note_joined(|| "include[1]".into(), "/abs.yaml", Path::new("/wd"));
        let got = r.finish();
        assert_eq!(
            got,
            vec![
                PathRef {
                    key: "services.web.volumes[0].source".into(),
                    written: "./data".into(),
                    resolved: "/wd/data".into()
                },
                PathRef {
                    key: "include[0]".into(),
                    written: "../x.yaml".into(),
                    resolved: "/wd/../x.yaml".into()
                },
            ]
        );
        assert!(!recording());
    }
}
