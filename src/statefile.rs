//! Small files of the state directory (pause state, profile pin, API tokens, last-seen memory), read and replaced atomically through the [`crate::statedir`] gate.

use std::path::Path;

use crate::statedir::StateDir;

fn split(path: &Path) -> (&Path, String) {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (dir, name)
}

/// Replaces `path` with `bytes` atomically (mode 0600, never through a link); its folder is
/// created 0700 when missing and checked (see [`StateDir`]). A crash leaves the old file or the
/// new one, never a torn one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let (dir, name) = split(path);
    Ok(StateDir::open(dir)?.write_atomic(&name, bytes)?)
}

/// The bytes of `path` (`None` when it or its folder does not exist), opened without following a
/// link, after the folder and the file passed the checks of [`StateDir`].
pub fn read(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let (dir, name) = split(path);
    match StateDir::existing(dir)? {
        None => Ok(None),
        Some(d) => Ok(d.read(&name)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_write_replaces_the_file_with_mode_0600_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(read(&path).unwrap().unwrap(), b"two");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let sub = std::fs::metadata(dir.path().join("sub")).unwrap();
        assert_eq!(sub.permissions().mode() & 0o777, 0o700);
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
        assert_eq!(read(&dir.path().join("none/x.json")).unwrap(), None);
    }
}
