//! The desired-state revision of `spindle run` (issue 10, point 5): git runs once per reconcile, hardened, and
//! `GET /version` only reads what the last reconcile stored.
//!
//! The folder is a git checkout whose `.git/config` sets `core.fsmonitor` to a hook that leaves a marker; `git`
//! on spindle's `PATH` is a wrapper that counts its runs before calling the real git.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{TestProject, state_dir, wait_for};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(60);

fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("sh runs");
    assert!(out.status.success(), "{script}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn executable(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn get_json(base: &str, path: &str) -> Value {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let resp = reqwest::Client::new()
            .get(format!("{base}{path}"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        resp.json().await.expect("a JSON body")
    })
}

#[test]
fn version_reads_the_revision_of_the_last_reconcile_and_never_runs_git_or_its_fsmonitor_hook() {
    let p = TestProject::with_prefix("spindle-h-small", "revision", "plain");
    let tools = tempfile::tempdir().expect("a temp dir");
    let marker = tools.path().join("fsmonitor-ran");
    let count = tools.path().join("git-runs");
    executable(
        &tools.path().join("fsmonitor"),
        &format!("#!/bin/sh\ntouch '{}'\n", marker.display()),
    );
    let real_git = sh(p.dir(), "command -v git");
    let bin = tools.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir");
    executable(
        &bin.join("git"),
        &format!(
            "#!/bin/sh\necho run >> '{}'\nexec '{real_git}' \"$@\"\n",
            count.display()
        ),
    );
    let commit = sh(
        p.dir(),
        &format!(
            "git init -q . && git add -A && git -c user.email=t@t -c user.name=t commit -qm one && \
             git config core.fsmonitor '{}' && git rev-parse HEAD",
            tools.path().join("fsmonitor").display()
        ),
    );
    let runs = || {
        std::fs::read_to_string(&count)
            .unwrap_or_default()
            .lines()
            .count()
    };

    let state = state_dir();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let state_arg = state.path().to_string_lossy().into_owned();
    let mut run = p.spawn_spindle(
        &["run", "--state-dir", &state_arg, "--listen", "127.0.0.1:0"],
        &[("PATH", &path)],
    );
    let base = wait_for("the HTTP API address in the log", DEADLINE, || {
        run.assert_alive();
        let log = run.stderr();
        let at = log.find("HTTP API listening addr=")?;
        let rest = &log[at + "HTTP API listening addr=".len()..];
        let addr: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
        Some(format!("http://{addr}"))
    });
    let v = wait_for("the revision in /version", DEADLINE, || {
        run.assert_alive();
        let v = get_json(&base, "/version");
        v["desired_revision"].is_string().then_some(v)
    });
    assert_eq!(v["desired_revision"], Value::String(commit), "{v}");
    assert!(runs() > 0, "the reconcile ran git through the wrapper");
    // Reconciles (which do run git) may come at any time: ten requests between two equal reconcile
    // counts must leave the count of git runs as it was, in at least one of five tries.
    let reconciles = || get_json(&base, "/status")["reconciles"].as_u64();
    let mut tries = Vec::new();
    for _ in 0..5 {
        let (r0, c0) = (reconciles(), runs());
        for _ in 0..10 {
            let v = get_json(&base, "/version");
            assert!(v["desired_revision"].is_string(), "{v}");
        }
        std::thread::sleep(Duration::from_millis(300));
        let (r1, c1) = (reconciles(), runs());
        tries.push((r0, r1, c0, c1));
        if r0 == r1 && c0 == c1 {
            break;
        }
    }
    assert!(
        tries.iter().any(|(r0, r1, c0, c1)| r0 == r1 && c0 == c1),
        "GET /version ran git: (reconciles before, after, git runs before, after) {tries:?}"
    );
    assert!(!marker.exists(), "the fsmonitor hook of the checkout ran");
    run.terminate(Duration::from_secs(20));
}
