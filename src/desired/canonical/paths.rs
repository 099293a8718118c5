//! Relative path resolution against the project working directory, with `~` expansion and Go's lexical path cleaning.

use std::path::PathBuf;

use crate::desired::tree::{KeyPath, Tree, type_name};

use super::CanonicalError;

/// What to do with the value found at a pattern.
#[derive(Clone, Copy)]
enum Resolver {
    /// Build context: left alone when it is a URL or a `service:` reference.
    Context,
    /// Made absolute unless it already is (Unix or Windows style); non-strings are left alone.
    MaybeUnix,
    /// A path or a list of paths, made absolute.
    Abs,
    /// `extends.file`: left alone when it names a remote resource.
    Extends,
    /// Made absolute, then its first symbolic link component resolved.
    Symlink,
    /// A service mount: only bind sources are resolved.
    VolumeMount,
    /// A top-level volume: a `local` driver's bind `device` is resolved.
    DriverOpts,
}

/// Patterns as compose-go lists them. The `include.*` ones never match a list of includes,
/// exactly as in compose-go: include paths are resolved when the include is loaded.
static RESOLVER_TABLE: std::sync::LazyLock<crate::desired::tree::PatternTable<Resolver>> =
    std::sync::LazyLock::new(|| crate::desired::tree::PatternTable::new(RESOLVERS));

static RESOLVERS: &[(&str, Resolver)] = &[
    ("services.*.build.context", Resolver::Context),
    ("services.*.build.additional_contexts.*", Resolver::Context),
    ("services.*.build.ssh.*", Resolver::MaybeUnix),
    ("services.*.env_file.*.path", Resolver::Abs),
    ("services.*.label_file.*", Resolver::Abs),
    ("services.*.extends.file", Resolver::Extends),
    ("services.*.develop.watch.*.path", Resolver::Symlink),
    ("services.*.volumes.*", Resolver::VolumeMount),
    ("configs.*.file", Resolver::MaybeUnix),
    ("secrets.*.file", Resolver::MaybeUnix),
    ("include.path", Resolver::Abs),
    ("include.project_directory", Resolver::Abs),
    ("include.env_file", Resolver::Abs),
    ("volumes.*", Resolver::DriverOpts),
];

/// Resolves paths in `tree` against `working_dir`, expanding a leading `~` with `home`.
pub(super) struct PathResolver<'a> {
    pub working_dir: &'a str,
    pub home: Option<&'a str>,
}

impl PathResolver<'_> {
    pub fn resolve(&self, value: &mut Tree, path: &KeyPath) -> Result<(), CanonicalError> {
        if let Some(r) = RESOLVER_TABLE.find(path) {
            let before = crate::desired::sources::before(value);
            self.apply(*r, value)
                .map_err(|reason| CanonicalError::Invalid {
                    path: path.clone(),
                    reason,
                })?;
            crate::desired::sources::note_resolved(path, before.as_ref(), value);
            return Ok(());
        }
        match value {
            Tree::Object(map) => {
                for (k, v) in map.iter_mut() {
                    self.resolve(v, &path.key(k.as_str()))?;
                }
            }
            Tree::Array(items) => {
                for (i, v) in items.iter_mut().enumerate() {
                    self.resolve(v, &path.index(i))?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn apply(&self, resolver: Resolver, value: &mut Tree) -> Result<(), String> {
        match resolver {
            Resolver::Context => {
                let Tree::String(s) = value else {
                    return Err(format!("expected a string, found a {}", type_name(value)));
                };
                if !(s.contains("://") || s.starts_with("service:") || is_remote_context(s)) {
                    *s = self.abs_str(s);
                }
            }
            Resolver::MaybeUnix => self.maybe_unix(value),
            Resolver::Abs => self.abs(value)?,
            Resolver::Extends => {
                let Tree::String(s) = value else {
                    return Err(format!("expected a string, found a {}", type_name(value)));
                };
                if !is_remote_resource(s) {
                    *s = self.abs_str(s);
                }
            }
            Resolver::Symlink => {
                self.abs(value)?;
                if let Tree::String(s) = value {
                    *s = resolve_symbolic_link(s)?;
                }
            }
            Resolver::VolumeMount => {
                let Tree::Object(mount) = value else {
                    return Ok(());
                };
                if mount.get("type").and_then(Tree::as_str) != Some("bind") {
                    return Ok(());
                }
                match mount.get_mut("source") {
                    None => return Err("a bind mount needs a source".into()),
                    Some(src @ Tree::String(_)) => self.maybe_unix(src),
                    Some(other) => {
                        return Err(format!(
                            "bind mount source must be a string, found a {}",
                            type_name(other)
                        ));
                    }
                }
            }
            Resolver::DriverOpts => {
                let Tree::Object(volume) = value else {
                    return Ok(());
                };
                if volume.get("driver").and_then(Tree::as_str) != Some("local") {
                    return Ok(());
                }
                let Some(Tree::Object(opts)) = volume.get_mut("driver_opts") else {
                    return Ok(());
                };
                if opts.get("o").and_then(Tree::as_str) == Some("bind")
                    && let Some(device) = opts.get_mut("device")
                {
                    self.maybe_unix(device);
                }
            }
        }
        Ok(())
    }

    /// A path, or a list of paths, made absolute; empty strings stay empty.
    fn abs(&self, value: &mut Tree) -> Result<(), String> {
        match value {
            Tree::Array(items) => items.iter_mut().try_for_each(|v| self.abs(v)),
            Tree::String(s) => {
                *s = self.abs_str(s);
                Ok(())
            }
            other => Err(format!(
                "expected a path or a list of paths, found a {}",
                type_name(other)
            )),
        }
    }

    fn abs_str(&self, s: &str) -> String {
        let s = expand_user(s, self.home);
        if s.starts_with('/') || s.is_empty() {
            s
        } else {
            join(&[self.working_dir, &s])
        }
    }

    /// Strings that are neither Unix- nor Windows-absolute are joined to the working directory.
    fn maybe_unix(&self, value: &mut Tree) {
        if let Tree::String(s) = value {
            let p = expand_user(s, self.home);
            *s = if p.starts_with('/') || is_windows_abs(&p) {
                p
            } else {
                join(&[self.working_dir, &p])
            };
        }
    }
}

fn is_remote_context(s: &str) -> bool {
    [
        "https://",
        "http://",
        "git://",
        "ssh://",
        "github.com/",
        "git@",
    ]
    .iter()
    .any(|p| s.starts_with(p))
}

/// What Compose's remote resource loaders (git, OCI) accept for `extends.file`.
fn is_remote_resource(s: &str) -> bool {
    s.contains("://") || s.starts_with("git@") || s.starts_with("github.com/")
}

/// `~` at the start becomes the home directory (`~user` is not looked up, as in compose).
pub(super) fn expand_user(p: &str, home: Option<&str>) -> String {
    match (p.strip_prefix('~'), home) {
        (Some(rest), Some(home)) if !home.is_empty() => join(&[home, rest]),
        _ => p.to_string(),
    }
}

fn is_sep(b: u8) -> bool {
    b == b'/' || b == b'\\'
}

/// `C:\x`, `C:/x` or `\\server\share`: absolute on Windows.
pub(super) fn is_windows_abs(p: &str) -> bool {
    let b = p.as_bytes();
    match b {
        [_, b':', rest @ ..] => rest.first().is_some_and(|c| is_sep(*c)),
        [a, c, ..] => is_sep(*a) && is_sep(*c),
        _ => false,
    }
}

/// Go's `filepath.Join` on Unix: non-empty elements joined with `/`, then cleaned.
pub(super) fn join(parts: &[&str]) -> String {
    let kept: Vec<&str> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
    if kept.is_empty() {
        return String::new();
    }
    clean(&kept.join("/"))
}

/// Go's `path.Clean`: the shortest equivalent path, lexically.
pub(super) fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let rooted = path.starts_with('/');
    let mut stack: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => match stack.last() {
                Some(&last) if last != ".." => {
                    stack.pop();
                }
                _ if rooted => {}
                _ => stack.push(".."),
            },
            c => stack.push(c),
        }
    }
    let body = stack.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

/// Replaces the first symbolic link component of an absolute path by its resolved target.
fn resolve_symbolic_link(path: &str) -> Result<String, String> {
    let mut current = if path.starts_with('/') {
        String::from("/")
    } else {
        String::new()
    };
    for part in path.split('/').filter(|p| !p.is_empty()) {
        current = join(&[&current, part]);
        let is_link = std::fs::symlink_metadata(&current)
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false);
        if is_link {
            let target: PathBuf = std::fs::canonicalize(&current)
                .map_err(|e| format!("cannot resolve symbolic link {current:?}: {e}"))?;
            return Ok(path.replacen(&current, &target.to_string_lossy(), 1));
        }
    }
    Ok(path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_the_way_go_cleans_them() {
        for (input, want) in [
            ("", "."),
            ("/", "/"),
            ("a/b", "a/b"),
            ("a//b/./c/", "a/b/c"),
            ("/../a", "/a"),
            ("../../a", "../../a"),
            ("a/../..", ".."),
            ("a/..", "."),
            ("/b//c/../d", "/b/d"),
            ("./x", "x"),
        ] {
            assert_eq!(clean(input), want, "{input:?}");
        }
    }

    #[test]
    fn joining_skips_empty_elements_and_cleans() {
        assert_eq!(join(&["/wd", "./data"]), "/wd/data");
        assert_eq!(join(&["/wd", "../x"]), "/x");
        assert_eq!(join(&["/wd", ""]), "/wd");
        assert_eq!(join(&["", ""]), "");
    }

    #[test]
    fn windows_absolute_paths_are_recognised() {
        for (p, want) in [
            (r"C:\x", true),
            ("c:/x", true),
            (r"\\server\share", true),
            ("C:", false),
            ("C:x", false),
            ("./x", false),
            ("x", false),
            ("", false),
        ] {
            assert_eq!(is_windows_abs(p), want, "{p:?}");
        }
    }

    #[test]
    fn a_leading_tilde_becomes_the_home_directory() {
        assert_eq!(expand_user("~/x", Some("/home/u")), "/home/u/x");
        assert_eq!(expand_user("~", Some("/home/u")), "/home/u");
        assert_eq!(expand_user("~bob/x", Some("/home/u")), "/home/u/bob/x");
        assert_eq!(expand_user("~/x", None), "~/x");
        assert_eq!(expand_user("./~", Some("/home/u")), "./~");
    }
}
