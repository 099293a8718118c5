//! Which host paths a bind must not reach without a grant, and the forms of a bind source that are checked: as written, with `/var/run` read as `/run`, and as it resolves through symbolic links.

use std::path::{Path, PathBuf};

use super::rooted_clean as clean;

/// Host paths whose bind gives a container power over the host, and why. A bind at, under or
/// above one of them is sensitive, read-only or not (a read-only bind still reads `/etc/shadow`,
/// and a socket is connected to through a read-only mount).
const SENSITIVE: &[(&str, &str)] = &[
    (
        "/etc",
        "the host's configuration (users, sudoers, cron, systemd units)",
    ),
    (
        "/run/docker.sock",
        "the Docker socket: whoever reaches it controls every container and the host",
    ),
    (
        "/run/containerd",
        "containerd's socket and state: whoever reaches it controls every container and the host",
    ),
    (
        "/var/lib/containerd",
        "containerd's data: every container's files and snapshots",
    ),
    (
        "/run/systemd",
        "systemd's sockets: whoever reaches them starts units as root",
    ),
    ("/proc", "the host's kernel and process interfaces"),
    ("/sys", "the host's kernel and device interfaces"),
    ("/boot", "the host's kernel and boot loader"),
    ("/dev", "the host's devices"),
    ("/root", "root's home (keys and credentials)"),
    ("/usr", "the host's programs and libraries, which root runs"),
    ("/bin", "the host's programs, which root runs"),
    ("/sbin", "the host's system programs, which root runs"),
    ("/lib", "the host's libraries, which root's programs load"),
    ("/lib32", "the host's libraries, which root's programs load"),
    ("/lib64", "the host's libraries, which root's programs load"),
    (
        "/libx32",
        "the host's libraries, which root's programs load",
    ),
    (
        "/var/spool/cron",
        "the host's crontabs, which cron runs (as root for root's)",
    ),
    (
        "/var/lib/docker",
        "the engine's data: every container's files, volumes and secrets",
    ),
    (
        "/var/lib/kubelet",
        "the kubelet's data: every pod's volumes, secrets and service-account tokens",
    ),
];

/// `p` with a leading `/var/run` read as `/run` (the link every distribution ships), so that
/// `/var/run/docker.sock` and `/run/docker.sock` are one path to the list and to grants.
pub(super) fn run_alias(p: &Path) -> PathBuf {
    match p.strip_prefix("/var/run") {
        Ok(rest) => Path::new("/run").join(rest),
        Err(_) => p.to_path_buf(),
    }
}

/// The forms of `source` that are checked: cleaned as written, then (when they differ) as it
/// resolves through symbolic links, as the kernel reads it and, when it does not exist yet
/// (Docker creates a missing bind source), through its longest existing ancestor.
fn forms(source: &Path) -> Vec<PathBuf> {
    let mut forms = vec![clean(source)];
    let resolved = [
        std::fs::canonicalize(source).ok(),
        Some(super::paths::real(source)),
    ];
    for r in resolved.into_iter().flatten() {
        if !forms.iter().any(|f| run_alias(f) == run_alias(&r)) {
            forms.push(r);
        }
    }
    forms
}

/// Why a bind of `f` reaches into the users' homes, or `None`: `/home`, a home itself
/// (`/home/u`) or a dot-entry in it (`/home/u/.ssh`, `/home/u/.bashrc`: keys, credentials, shell
/// start-up files) is sensitive; a project's own folder in a home (`/home/u/stack/data`) is not.
fn home(f: &Path) -> Option<&'static str> {
    let rest = f.strip_prefix("/home").ok()?;
    let mut parts = rest.components();
    match (parts.next(), parts.next()) {
        (None, _) => Some("is the users' homes (keys, credentials, shell start-up files)"),
        (Some(_), None) => Some("is a user's home (keys, credentials, shell start-up files)"),
        (Some(_), Some(entry)) if entry.as_os_str().to_string_lossy().starts_with('.') => {
            Some("is a dot-entry of a user's home (keys, credentials, shell start-up files)")
        }
        _ => None,
    }
}

/// Why the form `f` of a bind source is sensitive, or `None`.
fn why(f: &Path, state_forms: &[PathBuf]) -> Option<String> {
    let f = run_alias(f);
    if f == Path::new("/") {
        return Some("is the host's whole file system".into());
    }
    for (s, why) in SENSITIVE {
        let s = Path::new(s);
        if f.starts_with(s) {
            return Some(format!("is {why}"));
        }
        if s.starts_with(&f) {
            return Some(format!("holds `{}`, {why}", s.display()));
        }
    }
    if let Some(why) = home(&f) {
        return Some(why.into());
    }
    for s in state_forms {
        if f.starts_with(s) || s.starts_with(&f) {
            return Some(
                "holds spindle's own state dir (evidence, tokens, locks): the service could \
                 rewrite what spindle records and trusts"
                    .into(),
            );
        }
    }
    None
}

/// What a bind of `source` needs: the grant (`bind:<path>`) of each of its forms that is
/// sensitive, as written first, and why the first one is. Empty when no form is sensitive.
/// A grant must cover every one of them, so an allowed folder holding a link to `/` does not
/// let `/` through.
pub(super) fn sensitive(source: &Path, state_dir: Option<&Path>) -> Option<(Vec<String>, String)> {
    let mut state_forms = Vec::new();
    if let Some(d) = state_dir.and_then(|d| std::path::absolute(d).ok()) {
        if let Ok(real) = std::fs::canonicalize(&d) {
            state_forms.push(run_alias(&real));
        }
        state_forms.push(run_alias(&clean(&d)));
    }
    let mut grants = Vec::new();
    let mut first = None;
    for (i, f) in forms(source).iter().enumerate() {
        let Some(why) = why(f, &state_forms) else {
            continue;
        };
        grants.push(format!("bind:{}", f.display()));
        if first.is_none() {
            first = Some(if i == 0 {
                why
            } else {
                format!("{why} (through symbolic links: `{}`)", f.display())
            });
        }
    }
    first.map(|why| (grants, why))
}
