//! The one gate to spindle's state directory: folders 0700 and files 0600, owned by the effective user, opened without following links.
//!
//! Every access to the state directory (evidence segments and their lock, tokens, the pause
//! state, the profile pin, the recovery rule's memory, project locks) goes through [`StateDir`].
//! It refuses a folder or file that is a symbolic link, that another user owns, or that group or
//! others can write, naming the path, the owner and what to do. A folder we own that others can
//! only read (a state dir made 0755 by an older spindle) is tightened to 0700, and a file to 0600.
//! Every folder that is looked up on the way to the state directory (its ancestors, and the folders
//! that hold a link among them) must be root's or ours and not writable by group or others unless
//! sticky (`/tmp`): otherwise another user could rename the state directory away and swap in another.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mode of every folder spindle creates in its state directory.
pub const DIR_MODE: u32 = 0o700;
/// The mode of every file spindle creates in its state directory.
pub const FILE_MODE: u32 = 0o600;

#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    #[error(
        "{path} is owned by uid {owner}, but spindle runs as uid {euid}: another user could change or read spindle's state; \
         run `chown -R {euid} {path}` if it is spindle's, or give another --state-dir"
    )]
    ForeignOwner {
        path: PathBuf,
        owner: u32,
        euid: u32,
    },
    #[error(
        "{path} (owned by uid {owner}) can be written by group or others (mode {mode:o}): another user could change spindle's state; \
         run `chmod {fix:o} {path}`"
    )]
    Writable {
        path: PathBuf,
        owner: u32,
        mode: u32,
        fix: u32,
    },
    #[error(
        "{path} is a symbolic link: spindle does not follow links in its state directory; remove it (and point --state-dir at the real folder)"
    )]
    Symlink { path: PathBuf },
    #[error(
        "{path}, on the way to the state dir, is owned by uid {owner} with mode {mode:o}: {why}, so another user could rename the state dir away and put another in its place; \
         make it root's and not writable by group or others (`chown root {path} && chmod go-w {path}`), or give a --state-dir whose folders are all root's or uid {euid}'s"
    )]
    UnsafeAncestor {
        path: PathBuf,
        owner: u32,
        mode: u32,
        euid: u32,
        why: &'static str,
    },
    #[error("{path} is not a {expected}; move it away")]
    WrongType {
        path: PathBuf,
        expected: &'static str,
    },
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StateDirError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| {
            if source.raw_os_error() == Some(libc::ELOOP) {
                StateDirError::Symlink {
                    path: path.to_path_buf(),
                }
            } else {
                StateDirError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        }
    }
}

impl From<StateDirError> for std::io::Error {
    fn from(e: StateDirError) -> Self {
        match e {
            StateDirError::Io { source, .. } => source,
            other => std::io::Error::new(std::io::ErrorKind::PermissionDenied, other),
        }
    }
}

/// The effective user id spindle runs as.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// How a file in the state directory is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read only; the file must exist.
    Read,
    /// Read and write, created (0600) when missing (lock files).
    Lock,
    /// Append, created (0600) when missing.
    Append,
    /// Append to a file that must not exist yet (0600).
    AppendNew,
}

/// A checked folder of the state directory (the state directory itself, or one inside it).
#[derive(Clone, Debug)]
pub struct StateDir {
    path: PathBuf,
}

impl StateDir {
    /// Creates `path` (0700, with missing parents) when it does not exist, then checks it and the
    /// folders on the way to it (before anything is created, and again after).
    pub fn open(path: &Path) -> Result<Self, StateDirError> {
        check_ancestors(path)?;
        match std::fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(path)
        {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(StateDirError::io(path)(e)),
        }
        check_ancestors(path)?;
        check_dir(path)?;
        Ok(StateDir {
            path: path.to_path_buf(),
        })
    }

    /// Checks `path` (and the folders on the way to it) when it exists; `None` when it does not (nothing is created).
    pub fn existing(path: &Path) -> Result<Option<Self>, StateDirError> {
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StateDirError::io(path)(e)),
            Ok(_) => {
                check_ancestors(path)?;
                check_dir(path)?;
                Ok(Some(StateDir {
                    path: path.to_path_buf(),
                }))
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder `name` inside this one, created 0700 when missing, checked.
    pub fn subdir(&self, name: &str) -> Result<StateDir, StateDirError> {
        let path = self.path.join(name);
        match std::fs::DirBuilder::new().mode(DIR_MODE).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(StateDirError::io(&path)(e)),
        }
        check_dir(&path)?;
        Ok(StateDir { path })
    }

    /// Opens the file `name` in this folder without following a link, and checks it.
    pub fn open_file(&self, name: &str, access: Access) -> Result<File, StateDirError> {
        open_checked(&self.path.join(name), access)
    }

    /// The bytes of the file `name`; `None` when it does not exist.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>, StateDirError> {
        read_checked(&self.path.join(name))
    }

    /// Replaces the file `name` with `bytes` atomically: a temporary file beside it (0600, never
    /// through a link), fsynced, renamed over it, and the folder fsynced. A crash leaves the old
    /// file or the new one, never a torn one.
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<(), StateDirError> {
        let path = self.path.join(name);
        let tmp = self
            .path
            .join(format!(".{name}.{}.tmp", std::process::id()));
        let write = || -> Result<(), StateDirError> {
            let _ = std::fs::remove_file(&tmp);
            let mut f = open_checked(&tmp, Access::AppendNew)?;
            f.write_all(bytes)
                .and_then(|()| f.sync_all())
                .map_err(StateDirError::io(&tmp))?;
            // A rename replaces a link planted at `path`; it never writes through it.
            std::fs::rename(&tmp, &path).map_err(StateDirError::io(&path))?;
            self.sync()
        };
        write().inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }

    /// Fsyncs the folder (after a file in it was created or renamed).
    pub fn sync(&self) -> Result<(), StateDirError> {
        open_dir(&self.path).and_then(|d| d.sync_all().map_err(StateDirError::io(&self.path)))
    }
}

/// Opens a folder without following a link.
fn open_dir(path: &Path) -> Result<File, StateDirError> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            // With O_DIRECTORY a link answers ENOTDIR, not ELOOP.
            Some(libc::ENOTDIR)
                if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) =>
            {
                StateDirError::Symlink {
                    path: path.to_path_buf(),
                }
            }
            Some(libc::ENOTDIR) => StateDirError::WrongType {
                path: path.to_path_buf(),
                expected: "folder",
            },
            _ => StateDirError::io(path)(e),
        })
}

/// The most links followed on the way to the state dir (the kernel's `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// Refuses the state dir when a folder looked up on the way to it could be changed by another
/// user. The walk goes from `/` to the state dir's parent resolving links one at a time, so both
/// the folder that holds a link (`/var` for `/var/run`) and where the link leads (`/run`) are
/// checked. It stops at the first folder that does not exist: spindle creates the rest, 0700.
fn check_ancestors(path: &Path) -> Result<(), StateDirError> {
    let abs = std::path::absolute(path).map_err(StateDirError::io(path))?;
    let Some(parent) = abs.parent() else {
        return Ok(());
    };
    // The names still to look up, the next one last; ".." stands for a parent step.
    let mut todo: Vec<std::ffi::OsString> = Vec::new();
    push_components(&mut todo, parent);
    let mut real = PathBuf::from("/");
    let root = std::fs::metadata(&real).map_err(StateDirError::io(&real))?;
    check_ancestor(&real, &root)?;
    let mut links = 0;
    while let Some(name) = todo.pop() {
        if name == ".." {
            real.pop();
            continue;
        }
        let next = real.join(&name);
        let meta = match std::fs::symlink_metadata(&next) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StateDirError::io(&next)(e)),
            Ok(m) => m,
        };
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Err(StateDirError::Io {
                    path: next,
                    source: std::io::Error::from_raw_os_error(libc::ELOOP),
                });
            }
            let target = std::fs::read_link(&next).map_err(StateDirError::io(&next))?;
            if target.is_absolute() {
                real = PathBuf::from("/");
            }
            push_components(&mut todo, &target);
            continue;
        }
        check_ancestor(&next, &meta)?;
        real = next;
    }
    Ok(())
}

/// Pushes the names of `path` on `todo` so that its first name is popped first.
fn push_components(todo: &mut Vec<std::ffi::OsString>, path: &Path) {
    use std::path::Component;
    let names: Vec<std::ffi::OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    todo.extend(names.into_iter().rev());
}

/// An ancestor must be root's or ours, and not writable by group or others unless sticky.
fn check_ancestor(path: &Path, meta: &std::fs::Metadata) -> Result<(), StateDirError> {
    let (owner, mode, me) = (meta.uid(), meta.mode() & 0o7777, euid());
    let why = if owner != 0 && owner != me {
        "another user owns it"
    } else if mode & 0o022 != 0 && mode & libc::S_ISVTX == 0 {
        "group or others can write it and it is not sticky"
    } else {
        return Ok(());
    };
    Err(StateDirError::UnsafeAncestor {
        path: path.to_path_buf(),
        owner,
        mode,
        euid: me,
        why,
    })
}

/// Checks a folder: not a link, a folder, ours, not writable by others; tightened to 0700.
fn check_dir(path: &Path) -> Result<(), StateDirError> {
    let dir = open_dir(path)?;
    check_owner_and_mode(path, &dir, DIR_MODE)
}

/// Refuses `file` when another user owns it or group/others can write it; tightens readable bits.
fn check_owner_and_mode(path: &Path, file: &File, wanted: u32) -> Result<(), StateDirError> {
    let meta = file.metadata().map_err(StateDirError::io(path))?;
    let (owner, mode, me) = (meta.uid(), meta.mode() & 0o7777, euid());
    if owner != me {
        return Err(StateDirError::ForeignOwner {
            path: path.to_path_buf(),
            owner,
            euid: me,
        });
    }
    if mode & 0o022 != 0 {
        return Err(StateDirError::Writable {
            path: path.to_path_buf(),
            owner,
            mode,
            fix: wanted,
        });
    }
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            from = format!("{mode:o}"),
            to = format!("{wanted:o}"),
            "tightening the mode of a state-dir entry (an older spindle made it readable by others)"
        );
        file.set_permissions(std::fs::Permissions::from_mode(wanted))
            .map_err(StateDirError::io(path))?;
    }
    Ok(())
}

/// Opens a file of the state directory with `O_NOFOLLOW` (0600 when created) and checks it.
pub fn open_checked(path: &Path, access: Access) -> Result<File, StateDirError> {
    let mut o = OpenOptions::new();
    match access {
        Access::Read => o.read(true),
        Access::Lock => o.read(true).write(true).create(true).truncate(false),
        Access::Append => o.append(true).create(true),
        Access::AppendNew => o.append(true).create_new(true),
    };
    let file = o
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(StateDirError::io(path))?;
    let meta = file.metadata().map_err(StateDirError::io(path))?;
    if !meta.is_file() {
        return Err(StateDirError::WrongType {
            path: path.to_path_buf(),
            expected: "regular file",
        });
    }
    check_owner_and_mode(path, &file, FILE_MODE)?;
    Ok(file)
}

/// The bytes of a state-dir file opened with [`open_checked`]; `None` when it does not exist.
pub fn read_checked(path: &Path) -> Result<Option<Vec<u8>>, StateDirError> {
    let mut file = match open_checked(path, Access::Read) {
        Ok(f) => f,
        Err(StateDirError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut bytes).map_err(StateDirError::io(path))?;
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests;
