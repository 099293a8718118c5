//! One writer per project: an exclusive lock on a per-project lock file, so `spindle apply` and `spindle run` never act on the same project at once.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another spindle process is changing project {project} (lock {path} is held); wait for it to finish, or stop `spindle run` for this project first"
    )]
    Busy { project: String, path: PathBuf },
    #[error("cannot open lock file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Held while a process may change a project; released on drop (and by the OS if the process dies).
#[derive(Debug)]
pub struct ProjectLock {
    _file: File,
    pub path: PathBuf,
}

/// Where lock files live: `SPINDLE_LOCK_DIR`, else `$XDG_RUNTIME_DIR/spindle`, else the temp dir.
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SPINDLE_LOCK_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
        return PathBuf::from(d).join("spindle");
    }
    std::env::temp_dir().join("spindle")
}

/// Takes the project's lock without waiting; a held lock is an error naming the project.
pub fn acquire(dir: &Path, project: &str) -> Result<ProjectLock, LockError> {
    let path = dir.join(format!("{project}.lock"));
    std::fs::create_dir_all(dir).map_err(|source| LockError::Io {
        path: path.clone(),
        source,
    })?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| LockError::Io {
            path: path.clone(),
            source,
        })?;
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
}
