//! The state dir and the locks against a second local user (`setpriv` to `nobody`): modes, owners, planted links, serialized tokens, and the intent record.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{TestProject, assert_exit, assert_no_panic, describe};

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Skips (with a note) a test that needs root and `setpriv`.
fn can_switch_user() -> bool {
    let ok = is_root()
        && Command::new("setpriv")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: needs root and setpriv (util-linux)");
    }
    ok
}

/// Runs `sh -c script` as `nobody:nogroup` with no supplementary groups.
fn as_nobody(script: &str) -> Output {
    Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .output()
        .expect("setpriv runs")
}

/// A folder `nobody` can enter (0755), so that only the state dir's own modes keep it out.
fn open_parent() -> tempfile::TempDir {
    let t = tempfile::Builder::new()
        .prefix("spindle-sd-")
        .tempdir()
        .expect("tempdir");
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    t
}

fn spindle_bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_spindle"));
    c.env_remove("SPINDLE_STATE_DIR")
        .env_remove("SPINDLE_LOCK_DIR")
        .env_remove("XDG_RUNTIME_DIR");
    c
}

fn token_create(state: &Path) -> Output {
    spindle_bin()
        .args(["token", "create", "--state-dir"])
        .arg(state)
        .output()
        .expect("spindle token create")
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .expect("stat")
        .permissions()
        .mode()
        & 0o777
}

fn project(test: &str) -> TestProject {
    TestProject::with_prefix("spindle-h-state", test, "plain")
}

/// `spindle -p <project> --desired-state <dir> apply --state-dir <state>` with the environment given.
fn apply(p: &TestProject, state: &Path, env: &[(&str, &Path)]) -> Output {
    let mut c = spindle_bin();
    c.arg("-p")
        .arg(p.name())
        .arg("--desired-state")
        .arg(p.dir())
        .args(["apply", "--state-dir"])
        .arg(state)
        .current_dir(p.dir());
    for (k, v) in env {
        c.env(k, v);
    }
    common::run_with_deadline(c, common::COMMAND_DEADLINE).expect("spindle apply")
}

#[test]
fn the_state_dir_is_0700_its_files_0600_and_another_user_can_neither_lock_read_nor_plant_in_it() {
    if !can_switch_user() {
        return;
    }
    let parent = open_parent();
    let state = parent.path().join("state");
    let out = token_create(&state);
    assert_exit(&out, 0, "spindle token create");
    let mut log = spindle::evidence::EvidenceLog::open(&spindle::evidence::evidence_dir(&state))
        .expect("open the log");
    log.append(
        serde_json::Map::new(),
        &spindle::redact::Redactor::default(),
    )
    .expect("append");
    let lock = spindle::lock::acquire(&spindle::lock::dir_for(Some(&state)).unwrap(), "erp")
        .expect("project lock");
    assert_eq!(lock.path, state.join("locks/erp.lock"));
    for dir in ["", "evidence", "locks"] {
        assert_eq!(mode(&state.join(dir)), 0o700, "{dir}");
    }
    for file in [
        "api-tokens.json",
        "api-tokens.lock",
        "evidence/.lock",
        "evidence/segment-000001.jsonl",
        "locks/erp.lock",
    ] {
        assert_eq!(mode(&state.join(file)), 0o600, "{file}");
    }
    let s = state.display();
    // flock(1) opens the file read-only: 0700 on the folder stops even that.
    let out = as_nobody(&format!("flock -n {s}/evidence/.lock true"));
    assert!(
        !out.status.success(),
        "nobody locked the log: {}",
        describe(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{}",
        describe(&out)
    );
    for script in [
        format!("cat {s}/api-tokens.json"),
        format!("cat {s}/evidence/segment-000001.jsonl"),
        format!("ls {s}/evidence"),
        format!("ln -s /etc/passwd-planted {s}/locks/crm.lock"),
    ] {
        let out = as_nobody(&script);
        assert!(!out.status.success(), "{script}: {}", describe(&out));
    }
    assert!(!state.join("locks/crm.lock").exists());
}

#[test]
fn a_state_dir_another_user_owns_is_refused_by_root_spindle_and_nothing_is_created() {
    if !can_switch_user() {
        return;
    }
    let p = project("foreign-owner");
    let parent = open_parent();
    let state = parent.path().join("state");
    std::fs::create_dir(&state).expect("mkdir");
    std::os::unix::fs::chown(&state, Some(NOBODY), Some(NOBODY)).expect("chown");
    let out = token_create(&state);
    assert_no_panic(&out, "token create");
    assert!(!out.status.success(), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&state.display().to_string()), "{err}");
    assert!(err.contains("owned by uid 65534"), "{err}");
    assert!(err.contains("chown"), "{err}");
    assert!(!state.join("api-tokens.json").exists());
    let out = apply(&p, &state, &[]);
    assert_no_panic(&out, "apply");
    assert!(!out.status.success(), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("owned by uid 65534"), "{err}");
    assert!(p.containers().is_empty(), "apply changed the host");
    // A world-writable one we own is refused as well, naming the chmod to run.
    std::os::unix::fs::chown(&state, Some(0), Some(0)).expect("chown back");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let out = token_create(&state);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("chmod 700"),
        "{}",
        describe(&out)
    );
}

#[test]
fn a_state_dir_under_a_folder_another_user_owns_is_refused_and_tmp_ancestry_is_accepted() {
    if !can_switch_user() {
        return;
    }
    // /tmp (1777, root) -> spindle-sd-* (0755, root) -> shared (nobody's) -> state
    let parent = open_parent();
    let shared = parent.path().join("shared");
    std::fs::create_dir(&shared).expect("mkdir");
    std::os::unix::fs::chown(&shared, Some(NOBODY), Some(NOBODY)).expect("chown");
    let state = shared.join("state");
    let out = token_create(&state);
    assert_no_panic(&out, "token create");
    assert!(!out.status.success(), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&shared.display().to_string()), "{err}");
    assert!(err.contains("owned by uid 65534 with mode 755"), "{err}");
    assert!(err.contains("chown root"), "{err}");
    assert!(!state.exists(), "the state dir was created");
    // What the refusal is about: the folder's owner can swap a state dir root made in it.
    std::fs::create_dir(&state).expect("mkdir");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let s = shared.display();
    let out = as_nobody(&format!("mv {s}/state {s}/old && mkdir -m 700 {s}/state"));
    assert!(out.status.success(), "{}", describe(&out));
    std::fs::remove_dir(&state).expect("rm");
    std::fs::rename(shared.join("old"), &state).expect("mv back");
    let out = token_create(&state);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(!state.join("api-tokens.json").exists());
    // Given back to root, the same path under /tmp is accepted.
    std::os::unix::fs::chown(&shared, Some(0), Some(0)).expect("chown back");
    let out = token_create(&state);
    assert_exit(&out, 0, "spindle token create under /tmp");
}

#[test]
fn an_old_0755_state_dir_we_own_is_tightened_to_0700() {
    let parent = open_parent();
    let state = parent.path().join("state");
    std::fs::create_dir(&state).expect("mkdir");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = token_create(&state);
    assert_exit(&out, 0, "spindle token create");
    assert_eq!(mode(&state), 0o700);
}

#[test]
fn a_lock_symlink_another_user_planted_in_the_temp_dir_is_never_followed() {
    if !can_switch_user() {
        return;
    }
    let p = project("planted-lock");
    // The temp dir as another user sees it: they made `spindle/` and planted the link first.
    let tmp = open_parent();
    let t = tmp.path().display();
    let victim: PathBuf = tmp.path().join("victim");
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let out = as_nobody(&format!(
        "mkdir {t}/spindle && ln -s {t}/victim {t}/spindle/{}.lock",
        p.name()
    ));
    assert!(out.status.success(), "{}", describe(&out));
    let out = apply(&p, p.state_dir(), &[("TMPDIR", tmp.path())]);
    assert_exit(&out, 0, "spindle apply");
    assert!(!victim.exists(), "root followed the planted link");
    assert!(
        p.state_dir()
            .join("locks")
            .join(format!("{}.lock", p.name()))
            .is_file()
    );
}

#[test]
fn twenty_concurrent_token_creates_keep_twenty_tokens() {
    let parent = open_parent();
    let state = parent.path().join("state");
    let children: Vec<_> = (0..20)
        .map(|i| {
            spindle_bin()
                .args(["token", "create", "--name", &format!("t{i}"), "--state-dir"])
                .arg(&state)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().expect("wait");
        assert_exit(&out, 0, "spindle token create");
    }
    let tokens = spindle::api::token::load(&state).expect("tokens");
    assert_eq!(tokens.len(), 20);
}

/// A tmpfs of 64 KiB at a temporary mount point, unmounted on drop.
struct TinyFs {
    dir: tempfile::TempDir,
}

impl TinyFs {
    fn mount() -> Option<Self> {
        let dir = tempfile::Builder::new()
            .prefix("spindle-full-")
            .tempdir()
            .ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(TinyFs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a filler file until the file system is full.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.path().join("filler")).expect("filler");
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).and_then(|()| f.sync_all()).is_ok() {}
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn an_apply_whose_intent_record_cannot_be_written_changes_nothing_and_says_so() {
    if !is_root() {
        eprintln!("skipped: needs root to mount a tmpfs");
        return;
    }
    let Some(fs) = TinyFs::mount() else {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    };
    let p = project("intent-full-disk");
    let state = fs.path().join("state");
    // The log opens (its folder and lock exist), then the disk fills up.
    drop(
        spindle::evidence::EvidenceLog::open(&spindle::evidence::evidence_dir(&state))
            .expect("open"),
    );
    fs.fill();
    let out = apply(&p, &state, &[]);
    assert_no_panic(&out, "apply");
    assert!(!out.status.success(), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot record the intent of this apply"),
        "{err}"
    );
    assert!(err.contains("nothing on the host was changed"), "{err}");
    assert!(
        p.containers().is_empty(),
        "apply changed the host: {:?}",
        p.containers()
    );
}

#[test]
fn an_apply_records_its_intent_before_its_result_and_the_log_verifies() {
    let p = project("intent-recorded");
    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "spindle apply");
    let dir = spindle::evidence::evidence_dir(p.state_dir());
    let records = spindle::evidence::list(&dir, 10).expect("list");
    let kinds: Vec<&str> = records.iter().rev().map(|r| r.kind()).collect();
    assert_eq!(kinds, ["intent", "reconcile"]);
    let (result, intent) = (&records[0], &records[1]);
    assert_eq!(result.fields["intent"], serde_json::json!([intent.id()]));
    assert_eq!(
        intent.fields["actions"], result.fields["plan"]["actions"],
        "the intent carries the plan's actions"
    );
    assert_eq!(intent.str("plan_hash").len(), 64);
    let out = spindle_bin()
        .args(["evidence", "verify", "--state-dir"])
        .arg(p.state_dir())
        .output()
        .expect("verify");
    assert_exit(&out, 0, "spindle evidence verify");
    // A second apply has nothing to do: no intent.
    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "second apply");
    let records = spindle::evidence::list(&dir, 10).expect("list");
    assert_eq!(records[0].kind(), "reconcile");
    assert_eq!(records.len(), 3);
}

#[test]
fn a_reconcile_of_spindle_run_whose_intent_cannot_be_written_changes_nothing() {
    if !is_root() {
        eprintln!("skipped: needs root to mount a tmpfs");
        return;
    }
    let Some(fs) = TinyFs::mount() else {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    };
    let p = project("intent-full-run");
    let state = fs.path().join("state");
    drop(
        spindle::evidence::EvidenceLog::open(&spindle::evidence::evidence_dir(&state))
            .expect("open"),
    );
    fs.fill();
    let mut run = p.spawn_run(&state, &["--listen", "off"]);
    common::wait_for(
        "spindle run to report the unrecorded intent",
        std::time::Duration::from_secs(60),
        || {
            run.stderr()
                .contains("cannot record the intent of this apply")
                .then_some(())
        },
    );
    assert!(
        run.stderr().contains("nothing on the host was changed"),
        "{}",
        run.stderr_tail(20)
    );
    assert!(
        p.containers().is_empty(),
        "run changed the host: {:?}",
        p.containers()
    );
    run.terminate(std::time::Duration::from_secs(20));
}

/// The API address `spindle run --listen 127.0.0.1:0` logged.
fn api_addr(run: &mut common::SpindleProcess) -> String {
    common::wait_for(
        "the API address in the log",
        std::time::Duration::from_secs(60),
        || {
            let log = run.stderr();
            let at = log.find("HTTP API listening addr=")?;
            let rest = &log[at + "HTTP API listening addr=".len()..];
            Some(rest.split_whitespace().next()?.to_string())
        },
    )
}

/// `GET /healthz` with a 2 s deadline: true on a 200.
fn healthz(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    let req = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1 200")
}

#[test]
fn while_another_process_holds_the_evidence_lock_the_api_answers_and_the_append_fails_in_bounded_time()
 {
    let p = project("held-evidence-lock");
    let state = p.state_dir().to_path_buf();
    let mut run = p.spawn_run(&state, &["--listen", "127.0.0.1:0", "--resync", "1s"]);
    let addr = api_addr(&mut run);
    let dir = spindle::evidence::evidence_dir(&state);
    common::wait_for(
        "the first record",
        std::time::Duration::from_secs(60),
        || {
            (!spindle::evidence::list(&dir, 1)
                .unwrap_or_default()
                .is_empty())
            .then_some(())
        },
    );
    let lock = std::fs::File::open(dir.join(".lock")).expect("open the lock");
    lock.lock().expect("hold the lock");
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(13) {
        assert!(
            healthz(&addr),
            "/healthz did not answer while the log was locked"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    common::wait_for(
        "the append to give up",
        std::time::Duration::from_secs(30),
        || {
            run.stderr()
                .contains("stayed locked by another process")
                .then_some(())
        },
    );
    run.assert_alive();
    drop(lock);
    run.terminate(std::time::Duration::from_secs(20));
}
