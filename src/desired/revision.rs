//! The desired-state revision: the git commit of the folder, with `-dirty` when its files differ from that commit.
//!
//! spindle runs as root and the checkout may be writable by someone else, so git runs hardened:
//! no system or global config, no hooks, no fsmonitor, no filter drivers (each `filter.*` command
//! the checkout's config declares is blanked on the command line), no optional locks, no prompt,
//! a cleared environment and a timeout after which git is killed. A checkout owned by another
//! user is refused by git itself (`safe.directory` is read only from the ignored global and
//! system config), which reads as "no revision" unless the operator sets
//! `SPINDLE_GIT_SAFE_DIRECTORY`. The reconciler reads the revision once per
//! reconcile; `GET /version` shows the value it stored (see docs/api.md).

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one git command may run before it is killed and the revision is unknown.
pub const GIT_TIMEOUT: Duration = Duration::from_secs(5);
/// The operator's opt-in to read a checkout another user owns: its value is passed to git as
/// `safe.directory` (`*`, or the folder's path). Unset, git refuses such a checkout.
pub const SAFE_DIRECTORY_VAR: &str = "SPINDLE_GIT_SAFE_DIRECTORY";

/// Configuration passed to every git command, whatever the checkout's own config says.
const HARDENED: &[&str] = &[
    "core.fsmonitor=false",
    "core.hooksPath=/dev/null",
    "core.untrackedCache=false",
    "protocol.allow=never",
];

/// `<commit>` or `<commit>-dirty` when `dir` is in a git work tree; `None` otherwise (without
/// git, in a checkout git refuses, or when git takes longer than [`GIT_TIMEOUT`]).
/// Blocking: async code calls it through `spawn_blocking`.
pub fn revision(dir: &Path) -> Option<String> {
    let safe = std::env::var(SAFE_DIRECTORY_VAR).ok();
    revision_with(
        Path::new("git"),
        dir,
        GIT_TIMEOUT,
        safe.as_deref().filter(|s| !s.is_empty()),
    )
}

/// [`revision`] with the git program, the timeout and the `safe.directory` given (for tests).
pub fn revision_with(
    git: &Path,
    dir: &Path,
    timeout: Duration,
    safe_directory: Option<&str>,
) -> Option<String> {
    let safe: Vec<String> = safe_directory
        .map(|s| format!("safe.directory={s}"))
        .into_iter()
        .collect();
    let run = |config: &[String], args: &[&str]| {
        let config: Vec<String> = safe.iter().chain(config).cloned().collect();
        run_git(git, dir, &config, args, timeout)
    };
    let commit = run(&[], &["rev-parse", "--verify", "HEAD"])?;
    let commit = String::from_utf8(commit).ok()?.trim().to_string();
    if commit.is_empty() {
        return None;
    }
    // Filter drivers run commands from the checkout's config while `git status` compares files.
    // When the config cannot be listed or a key not blanked, `git status` is not run at all.
    let status = run(&[], &["config", "--list", "--name-only"])
        .and_then(|names| blank_filters(&String::from_utf8_lossy(&names)))
        .and_then(|blanked| {
            run(
                &blanked,
                &[
                    "status",
                    "--porcelain",
                    "--untracked-files=normal",
                    // A submodule's status runs in its own repository, whose config is not blanked.
                    "--ignore-submodules=all",
                    "--",
                    ".",
                ],
            )
        });
    // A status that fails or times out counts as dirty: the commit alone is not proven.
    let dirty = status.is_none_or(|s| !s.is_empty());
    Some(if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    })
}

/// `filter.<name>.<var>=` for every `filter.` key among the config keys `names` (one a line),
/// which turns each driver off; `None` when such a key cannot be passed safely with `-c` (it
/// holds `=`).
fn blank_filters(names: &str) -> Option<Vec<String>> {
    names
        .lines()
        .filter(|k| {
            k.get(..7)
                .is_some_and(|p| p.eq_ignore_ascii_case("filter."))
        })
        .map(|k| (!k.contains('=')).then(|| format!("{k}=")))
        .collect()
}

/// The stdout of `git <args>` in `dir` when it exits 0 within `timeout`; killed and `None` otherwise.
fn run_git(
    git: &Path,
    dir: &Path,
    config: &[String],
    args: &[&str],
    timeout: Duration,
) -> Option<Vec<u8>> {
    let mut cmd = Command::new(git);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LC_ALL", "C")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_ATTR_NOSYSTEM", "1")
        .arg("-C")
        .arg(dir);
    for c in HARDENED
        .iter()
        .copied()
        .chain(config.iter().map(String::as_str))
    {
        cmd.arg("-c").arg(c);
    }

    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().ok()?;
    let mut stdout = child.stdout.take()?;
    // Read on another thread so that a large output cannot fill the pipe and stall git.
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).map(|_| out)
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                tracing::warn!(
                    dir = %dir.display(),
                    "git did not answer within {} s; the desired-state revision is unknown",
                    timeout.as_secs()
                );
                return None;
            }
        }
    };
    let out = reader.join().ok()?.ok()?;
    status.success().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sh(dir: &Path, script: &str) {
        let out = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .output()
            .expect("sh runs");
        assert!(out.status.success(), "{script}: {out:?}");
    }

    /// A committed git checkout with one file.
    fn checkout() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("a temp dir");
        sh(
            dir.path(),
            "git init -q . && echo a > f && git add f && \
             git -c user.email=t@t -c user.name=t commit -qm one",
        );
        dir
    }

    /// An executable script at `path` that creates `marker` (and passes stdin through).
    fn hook(path: &Path, marker: &Path) {
        std::fs::write(
            path,
            format!("#!/bin/sh\ntouch '{}'\ncat\n", marker.display()),
        )
        .expect("write hook");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    #[test]
    fn a_checkout_whose_config_sets_core_fsmonitor_does_not_run_that_hook() {
        let repo = checkout();
        let outside = tempfile::tempdir().expect("a temp dir");
        let marker = outside.path().join("ran");
        hook(&outside.path().join("fsmonitor"), &marker);
        sh(
            repo.path(),
            &format!(
                "git config core.fsmonitor '{}'",
                outside.path().join("fsmonitor").display()
            ),
        );
        let rev = revision(repo.path()).expect("a revision");
        assert_eq!(rev.len(), 40, "{rev}");
        assert!(!marker.exists(), "the fsmonitor hook ran");
    }

    #[test]
    fn a_checkout_whose_config_declares_a_clean_filter_does_not_run_it() {
        let repo = checkout();
        let outside = tempfile::tempdir().expect("a temp dir");
        let marker = outside.path().join("ran");
        hook(&outside.path().join("clean"), &marker);
        sh(
            repo.path(),
            &format!(
                "echo '* filter=x' > .gitattributes && git add .gitattributes && \
                 git -c user.email=t@t -c user.name=t commit -qm attrs && \
                 git config filter.x.clean '{}' && git config filter.x.process '{}' && \
                 sleep 1 && echo b > f",
                outside.path().join("clean").display(),
                outside.path().join("clean").display()
            ),
        );
        let rev = revision(repo.path()).expect("a revision");
        assert!(rev.ends_with("-dirty"), "{rev}");
        assert!(!marker.exists(), "the clean filter ran");
    }

    #[test]
    fn a_clean_checkout_has_its_commit_and_a_changed_one_is_dirty() {
        let repo = checkout();
        let rev = revision(repo.path()).expect("a revision");
        assert!(!rev.ends_with("-dirty"), "{rev}");
        std::fs::write(repo.path().join("f"), "changed").expect("write");
        assert_eq!(revision(repo.path()), Some(format!("{rev}-dirty")));
    }

    #[test]
    fn a_folder_outside_any_checkout_has_no_revision() {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::write(dir.path().join(".git"), "gitdir: /nonexistent").expect("write");
        assert_eq!(revision(dir.path()), None);
    }

    #[test]
    fn a_git_that_hangs_is_killed_at_the_timeout_and_the_revision_is_unknown() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let git = dir.path().join("git");
        std::fs::write(&git, "#!/bin/sh\nexec sleep 30\n").expect("write");
        std::fs::set_permissions(&git, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let started = Instant::now();
        assert_eq!(
            revision_with(&git, dir.path(), Duration::from_millis(200), None),
            None
        );
        assert!(started.elapsed() < Duration::from_secs(20), "not killed");
    }

    #[test]
    fn a_checkout_owned_by_another_user_has_no_revision() {
        let repo = checkout();
        // Only root can hand the checkout to `nobody`; the tests run as root in CI.
        let uid = Command::new("id").arg("-u").output().expect("id runs");
        if uid.stdout != b"0\n" {
            return;
        }
        sh(repo.path(), "chown -R nobody .");
        let git = Path::new("git");
        assert_eq!(revision_with(git, repo.path(), GIT_TIMEOUT, None), None);
        // The operator's opt-in reads it, still without running what its config names.
        let outside = tempfile::tempdir().expect("a temp dir");
        let marker = outside.path().join("ran");
        hook(&outside.path().join("fsmonitor"), &marker);
        sh(
            repo.path(),
            &format!(
                "git -c safe.directory='*' config core.fsmonitor '{}'",
                outside.path().join("fsmonitor").display()
            ),
        );
        let rev = revision_with(git, repo.path(), GIT_TIMEOUT, Some("*")).expect("a revision");
        assert_eq!(rev.len(), 40, "{rev}");
        assert!(!marker.exists(), "the fsmonitor hook ran");
    }

    #[test]
    fn a_submodule_whose_config_declares_a_clean_filter_does_not_run_it() {
        let top = tempfile::tempdir().expect("a temp dir");
        let outside = tempfile::tempdir().expect("a temp dir");
        let marker = outside.path().join("ran");
        let clean = outside.path().join("clean");
        hook(&clean, &marker);
        sh(
            top.path(),
            &format!(
                "git init -q sub && cd sub && echo a > f && echo '* filter=x' > .gitattributes && \
                 git add . && git -c user.email=t@t -c user.name=t commit -qm s && cd .. && \
                 git init -q main && cd main && \
                 git -c protocol.file.allow=always submodule add -q ../sub sub && \
                 git -c user.email=t@t -c user.name=t commit -qm m && \
                 git -C sub config filter.x.clean '{c}' && git -C sub config filter.x.process '{c}' && \
                 sleep 1 && echo b > sub/f",
                c = clean.display()
            ),
        );
        let rev = revision(&top.path().join("main")).expect("a revision");
        assert_eq!(rev.trim_end_matches("-dirty").len(), 40, "{rev}");
        assert!(!marker.exists(), "the submodule's clean filter ran");
    }

    #[test]
    fn filter_keys_are_blanked_and_a_key_with_an_equals_sign_refuses() {
        assert_eq!(
            blank_filters("core.bare\nfilter.x.clean\nFilter.a.b.process\nuser.filter.x\n"),
            Some(vec![
                "filter.x.clean=".to_string(),
                "Filter.a.b.process=".to_string()
            ])
        );
        assert_eq!(blank_filters("core.bare\n"), Some(vec![]));
        assert_eq!(blank_filters("filter.a=b.clean\n"), None);
    }
}
