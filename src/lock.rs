//! One writer per project: an exclusive lock on a per-project lock file, so `spindle apply` and `spindle run` never act on the same project at once.
//!
//! Lock files live in `$SPINDLE_LOCK_DIR`, else `<state-dir>/locks`, else (no state dir known)
//! `/run/spindle` for root or `$XDG_RUNTIME_DIR/spindle` for others; never in a folder other users
//! can write such as `/tmp`. The folder is 0700 and the files 0600, opened without following a link
//! (see [`crate::statedir`]).

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::statedir::{Access, StateDir, StateDirError};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another spindle process is changing project {project} (lock {path} is held); wait for it to finish, or stop `spindle run` for this project first"
    )]
    Busy { project: String, path: PathBuf },
    #[error("cannot open lock file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot use the lock folder")]
    Unsafe(#[source] StateDirError),
    #[error(
        "no folder for project locks is known: give --state-dir DIR or set SPINDLE_LOCK_DIR (spindle never keeps locks in /tmp)"
    )]
    NoDir,
}

/// Held while a process may change a project; released on drop (and by the OS if the process dies).
#[derive(Debug)]
pub struct ProjectLock {
    _file: File,
    pub path: PathBuf,
}

/// The sub-folder of the state directory that holds the project locks.
pub const LOCKS_DIR: &str = "locks";

/// Where lock files live: `SPINDLE_LOCK_DIR`, else `<state_dir>/locks`, else `/run/spindle` (root)
/// or `$XDG_RUNTIME_DIR/spindle`.
pub fn dir_for(state_dir: Option<&Path>) -> Result<PathBuf, LockError> {
    if let Some(d) = std::env::var_os("SPINDLE_LOCK_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    if let Some(s) = state_dir {
        return Ok(s.join(LOCKS_DIR));
    }
    if crate::statedir::euid() == 0 {
        return Ok(PathBuf::from("/run/spindle"));
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => Ok(PathBuf::from(d).join("spindle")),
        None => Err(LockError::NoDir),
    }
}

/// Takes the project's lock without waiting; a held lock is an error naming the project.
pub fn acquire(dir: &Path, project: &str) -> Result<ProjectLock, LockError> {
    let name = format!("{project}.lock");
    let path = dir.join(&name);
    let file = StateDir::open(dir)
        .and_then(|d| d.open_file(&name, Access::Lock))
        .map_err(LockError::Unsafe)?;
    match file.try_lock() {
        Ok(()) => Ok(ProjectLock { _file: file, path }),
        Err(std::fs::TryLockError::WouldBlock) => Err(LockError::Busy {
            project: project.to_string(),
            path,
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(LockError::Io { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_second_writer_of_the_same_project_is_refused_and_others_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path(), "erp").unwrap();
        let e = acquire(dir.path(), "erp").unwrap_err();
        assert!(
            e.to_string()
                .contains("another spindle process is changing project erp")
        );
        let _other = acquire(dir.path(), "crm").unwrap();
        drop(first);
        acquire(dir.path(), "erp").unwrap();
    }

    #[test]
    fn project_locks_live_under_the_state_dir_0700_and_0600_never_in_tmp() {
        let state = tempfile::tempdir().unwrap();
        // SPINDLE_LOCK_DIR is not set in unit tests.
        let dir = dir_for(Some(state.path())).unwrap();
        assert_eq!(dir, state.path().join("locks"));
        let lock = acquire(&dir, "erp").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&lock.path), 0o600);
        if crate::statedir::euid() == 0 {
            assert_eq!(dir_for(None).unwrap(), PathBuf::from("/run/spindle"));
        }
        if let Ok(d) = dir_for(None) {
            assert!(!d.starts_with(std::env::temp_dir()), "{}", d.display());
        }
    }

    #[test]
    fn a_symlink_planted_at_the_lock_path_is_refused_and_its_target_is_not_created() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("locks");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let target = tmp.path().join("etc-passwd-ish");
        std::os::unix::fs::symlink(&target, dir.join("erp.lock")).unwrap();
        let e = acquire(&dir, "erp").unwrap_err();
        let text = format!("{:#}", anyhow::Error::from(e));
        assert!(text.contains("symbolic link"), "{text}");
        assert!(!target.exists());
    }
}
