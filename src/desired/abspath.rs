//! Absolute paths as Compose makes them: Go's `filepath.Abs` (join to the current directory, then clean lexically, symbolic links kept) and `os.Getwd` (the logical `$PWD` when it names the current directory).
//!
//! Compose v5 writes the project working directory, the compose files and the `--env-file`s into
//! container labels as absolute paths built this way; spindle builds them the same way, so the
//! labels it compares and writes are byte for byte Compose's, whether it was started with a
//! relative `--desired-state`, with `-f` alone, or from another directory.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// Go's `filepath.Clean` on Unix: `.` elements and repeated `/` dropped, `a/..` folded, `..` at
/// the root dropped; no file system access, so symbolic links are kept as written. An empty
/// path is `.`.
pub fn clean(p: &Path) -> PathBuf {
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) => {}
                _ => out.push(c),
            },
            other => out.push(other),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

/// Go's `filepath.Abs`: `p` when absolute, else `cwd` joined with `p`; cleaned either way.
pub fn absolute(cwd: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        clean(p)
    } else {
        clean(&cwd.join(p))
    }
}

/// compose-go's `ExpandUser`: a leading `~` is replaced by `home` (`~user` is not looked up:
/// `~x` becomes `<home>/x`, as in Compose). Without a home the path is left as it is.
pub fn expand_user(p: &Path, home: Option<&OsStr>) -> PathBuf {
    let bytes = p.as_os_str().as_bytes();
    match (bytes.strip_prefix(b"~"), home) {
        (Some(rest), Some(home)) if !home.is_empty() => {
            let rest = rest.strip_prefix(b"/").unwrap_or(rest);
            clean(&Path::new(home).join(OsString::from_vec(rest.to_vec())))
        }
        _ => p.to_path_buf(),
    }
}

/// The current directory as Go's `os.Getwd` gives it: `$PWD` when it is absolute and names the
/// same directory as `physical` (so a directory entered through a symbolic link keeps the name it
/// was entered by), else `physical` (what `getcwd` returns, links resolved).
pub fn logical_cwd(physical: &Path, pwd: Option<&OsStr>) -> PathBuf {
    let Some(pwd) = pwd.map(Path::new).filter(|p| p.is_absolute()) else {
        return physical.to_path_buf();
    };
    let same = match (std::fs::metadata(physical), std::fs::metadata(pwd)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    };
    if same {
        pwd.to_path_buf()
    } else {
        physical.to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_like_go_filepath_clean() {
        let cases = [
            ("", "."),
            (".", "."),
            ("./", "."),
            ("/", "/"),
            ("//", "/"),
            ("/..", "/"),
            ("/../a", "/a"),
            ("a/b/..", "a"),
            ("a/../..", ".."),
            ("../../a", "../../a"),
            ("/srv/app/.", "/srv/app"),
            ("/srv/app/./compose.yaml", "/srv/app/compose.yaml"),
            ("/srv//app///x/", "/srv/app/x"),
            ("/srv/app/../other/./x", "/srv/other/x"),
        ];
        for (input, want) in cases {
            assert_eq!(clean(Path::new(input)), PathBuf::from(want), "{input:?}");
        }
    }

    #[test]
    fn a_relative_path_is_made_absolute_against_the_current_directory() {
        let cwd = Path::new("/home/op/repo");
        let cases = [
            (".", "/home/op/repo"),
            ("./", "/home/op/repo"),
            ("desired-state", "/home/op/repo/desired-state"),
            ("desired-state/", "/home/op/repo/desired-state"),
            (
                "./desired-state/./compose.yaml",
                "/home/op/repo/desired-state/compose.yaml",
            ),
            ("..", "/home/op"),
            ("../other/compose.yaml", "/home/op/other/compose.yaml"),
            ("/srv/./app/", "/srv/app"),
            ("/srv/app/..", "/srv"),
        ];
        for (input, want) in cases {
            assert_eq!(
                absolute(cwd, Path::new(input)),
                PathBuf::from(want),
                "{input:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn an_absolute_path_is_clean_and_cleaning_it_again_changes_nothing(
            parts in proptest::collection::vec(
                proptest::prop_oneof!["\\.", "\\.\\.", "", "[a-z]{1,3}", "\\.[a-z]"],
                0..8,
            ),
            rooted in proptest::bool::ANY,
        ) {
            let p = format!("{}{}", if rooted { "/" } else { "" }, parts.join("/"));
            let a = absolute(Path::new("/cwd/x"), Path::new(&p));
            proptest::prop_assert!(a.is_absolute());
            proptest::prop_assert!(
                a.components().all(|c| !matches!(c, Component::CurDir | Component::ParentDir)),
                "{:?} -> {:?}", p, a
            );
            proptest::prop_assert_eq!(clean(&a), a.clone());
            let text = a.to_string_lossy().into_owned();
            proptest::prop_assert!(!text.contains("//"));
            proptest::prop_assert!(text == "/" || !text.ends_with('/'));
        }
    }

    #[test]
    fn a_leading_tilde_becomes_the_home_directory() {
        let home = Some(OsStr::new("/home/op"));
        let cases = [
            ("~/.env", home, "/home/op/.env"),
            ("~", home, "/home/op"),
            ("~x/.env", home, "/home/op/x/.env"),
            ("./~/.env", home, "./~/.env"),
            ("~/.env", None, "~/.env"),
            ("~/.env", Some(OsStr::new("")), "~/.env"),
        ];
        for (input, home, want) in cases {
            assert_eq!(
                expand_user(Path::new(input), home),
                PathBuf::from(want),
                "{input:?}"
            );
        }
    }

    #[test]
    fn pwd_names_the_current_directory_only_when_it_is_the_same_directory() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let real = tmp.path().join("real");
        let other = tmp.path().join("other");
        std::fs::create_dir_all(&real).expect("mkdir");
        std::fs::create_dir_all(&other).expect("mkdir");
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        let cases: [(Option<&Path>, &Path); 5] = [
            (Some(&link), &link),
            (Some(&real), &real),
            (Some(&other), &real),
            (Some(Path::new("relative/link")), &real),
            (None, &real),
        ];
        for (pwd, want) in cases {
            assert_eq!(
                logical_cwd(&real, pwd.map(Path::as_os_str)),
                want,
                "PWD={pwd:?}"
            );
        }
    }
}
