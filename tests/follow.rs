//! The recovery rule against the real engine with `spindle run` (issue 9, item 3): when backend's container is
//! replaced — by spindle's plan, by self-heal, out of band, or by a start that gave it another address — frontend
//! (`depends_on: {backend: {condition: service_healthy, restart: true}}`) is recreated and gateway (the same, with
//! `x-spindle.on-dependency-change: restart`) restarted, once backend is healthy again, exactly once, and the
//! evidence records each follow with its cause. The memory this needs survives a restart of spindle.
//!
//! The stack is `tests/fixtures/stacks/follow/`. Everything is polled with generous deadlines; the only ordering
//! asserted is that the dependents started after the new backend was first healthy.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{
    Recording, SpindleProcess, TestProject, assert_exit, evidence_records, parse_time, state_dir,
    wait_for,
};
use serde_json::Value;

/// How long a convergence or a follow may take before the test fails (no latency is asserted; generous, because
/// the engine is shared with other tests and a loaded host makes healthchecks slow).
const DEADLINE: Duration = Duration::from_secs(300);

/// What a test saw of the stack before backend moved.
struct Before {
    backend: String,
    frontend: String,
    gateway: String,
    gateway_started: String,
    records: usize,
}

fn started_at(info: &Value) -> String {
    info["State"]["StartedAt"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn id(info: &Value) -> String {
    info["Id"].as_str().unwrap_or_default().to_string()
}

/// backend's address on the project's default network.
fn address(p: &TestProject, container: &str) -> String {
    let net = format!("{}_default", p.name());
    p.inspect(container)["NetworkSettings"]["Networks"][net.as_str()]["IPAddress"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Starts `spindle run` and waits until the stack is up and the memory holds backend.
fn converge(p: &TestProject, state: &Path) -> (SpindleProcess, Before) {
    let mut run = p.spawn_run(state, &["--listen", "off"]);
    let before = settled(p, &mut run, state);
    (run, before)
}

/// Waits until all three services are ready and the memory file names the running backend.
fn settled(p: &TestProject, run: &mut SpindleProcess, state: &Path) -> Before {
    let memory = state.join(format!("last-seen-{}.json", p.name()));
    wait_for("spindle run to converge the stack", DEADLINE, || {
        run.assert_alive();
        let ready = ["backend", "frontend", "gateway"]
            .iter()
            .all(|s| p.is_ready(&p.container_name(s, 1)));
        let backend = p
            .try_inspect(&p.container_name("backend", 1))
            .map(|i| id(&i))?;
        let text = std::fs::read_to_string(&memory).ok()?;
        (ready && text.contains(&backend)).then_some(())
    });
    Before {
        backend: id(&p.inspect(&p.container_name("backend", 1))),
        frontend: id(&p.inspect(&p.container_name("frontend", 1))),
        gateway: id(&p.inspect(&p.container_name("gateway", 1))),
        gateway_started: started_at(&p.inspect(&p.container_name("gateway", 1))),
        records: evidence_records(state).len(),
    }
}

/// When the container first passed its healthcheck since its last start (the end of that probe), in ns since the
/// epoch, from what `record_while` saw (Docker keeps only the last five probes, and its event buffer is short).
fn first_healthy(recording: &Recording, container_id: &str) -> i128 {
    let seen = recording
        .get(container_id)
        .unwrap_or_else(|| panic!("{container_id} was never seen while the test watched"));
    let last_start = seen.started_at.last().copied().unwrap_or_default();
    seen.probes
        .values()
        .find(|p| p.start >= last_start && p.exit_code == 0)
        .map(|p| p.end)
        .unwrap_or_else(|| {
            panic!("{container_id} never passed a probe since its last start: {seen:#?}")
        })
}

/// Runs `disturb` (which moves backend), then waits until frontend was recreated and gateway restarted behind the
/// new backend, and checks the evidence: the follow of each, with `cause`, ended `ok`; and both started after the
/// backend they follow was first healthy. Returns what `disturb` returned and the record's follows.
#[track_caller]
fn assert_followed<T>(
    p: &TestProject,
    run: &mut SpindleProcess,
    state: &Path,
    before: &Before,
    cause: &str,
    disturb: impl FnOnce(&mut SpindleProcess) -> T,
) -> (T, Vec<Value>) {
    let frontend = p.container_name("frontend", 1);
    let gateway = p.container_name("gateway", 1);
    // A panic inside `record_while` would leave its poller running: catch it, and raise it once the poller stopped.
    let (outcome, recording) = p.record_while(|| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let moved = disturb(run);
            (moved, wait_follows(p, run, state, before, cause))
        }))
    });
    let (moved, follows) = outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    for f in &follows {
        assert_eq!(f["follows"]["dependency"], "backend", "{f:#}");
        assert_eq!(f["follows"]["container"], "backend-1", "{f:#}");
        let want = if f["service"] == "frontend" {
            "recreate"
        } else {
            "restart"
        };
        assert_eq!(f["action"], want, "{f:#}");
    }
    assert_eq!(
        id(&p.inspect(&gateway)),
        before.gateway,
        "gateway is restarted, not recreated"
    );
    let backend = id(&p.inspect(&p.container_name("backend", 1)));
    let healthy = first_healthy(&recording, &backend);
    for c in [&frontend, &gateway] {
        let info = p.inspect(c);
        let started = parse_time(&started_at(&info)).unwrap_or_default();
        assert!(
            started >= healthy,
            "{c} started at {} before backend {backend} was first healthy ({} ms early)",
            started_at(&info),
            (healthy - started) / 1_000_000
        );
    }
    (moved, follows)
}

/// Waits until frontend and gateway moved and are ready, and the evidence has their follows with `cause`, `ok`.
fn wait_follows(
    p: &TestProject,
    run: &mut SpindleProcess,
    state: &Path,
    before: &Before,
    cause: &str,
) -> Vec<Value> {
    let frontend = p.container_name("frontend", 1);
    let gateway = p.container_name("gateway", 1);
    wait_for(
        &format!("frontend and gateway to follow backend ({cause})"),
        DEADLINE,
        || {
            run.assert_alive();
            let f = p.try_inspect(&frontend)?;
            let g = p.try_inspect(&gateway)?;
            let moved = id(&f) != before.frontend && started_at(&g) != before.gateway_started;
            if !(moved && p.is_ready(&frontend) && p.is_ready(&gateway)) {
                return None;
            }
            let follows: Vec<Value> = evidence_records(state)
                .iter()
                .skip(before.records)
                .flat_map(|r| r["follows"].as_array().cloned().unwrap_or_default())
                .filter(|f| f["follows"]["cause"] == cause && f["outcome"] == "ok")
                .collect();
            let services: Vec<&str> = follows
                .iter()
                .filter_map(|f| f["service"].as_str())
                .collect();
            (services.contains(&"frontend") && services.contains(&"gateway")).then_some(follows)
        },
    )
}

/// Reconciles after the follow (one on SIGHUP, and any its events caused) follow nothing again: the memory moved on.
#[track_caller]
fn assert_followed_once(p: &TestProject, run: &mut SpindleProcess, state: &Path) {
    let frontend = id(&p.inspect(&p.container_name("frontend", 1)));
    let gateway = started_at(&p.inspect(&p.container_name("gateway", 1)));
    let before = evidence_records(state).len();
    assert!(run.signal("HUP"), "SIGHUP could not be sent");
    let after = wait_for("a reconcile record after SIGHUP", DEADLINE, || {
        run.assert_alive();
        let records = evidence_records(state);
        let hup = records
            .iter()
            .skip(before)
            .any(|r| r["triggers"].to_string().contains("\"signal\""));
        hup.then_some(records)
    });
    for r in after.iter().skip(before) {
        assert!(r.get("follows").is_none(), "nothing follows twice: {r:#}");
    }
    assert_eq!(id(&p.inspect(&p.container_name("frontend", 1))), frontend);
    assert_eq!(
        started_at(&p.inspect(&p.container_name("gateway", 1))),
        gateway
    );
}

/// Replaces `<project>-backend-1` the way Compose does, with plain docker: a new container with the same labels,
/// command, healthcheck and network alias is created beside the old one, the old one is stopped and removed, the
/// new one takes its name and starts. Returns the new container's id.
fn replace_backend_by_hand(p: &TestProject) -> String {
    let name = p.container_name("backend", 1);
    let old = p.inspect(&name);
    let tmp = format!("{name}-byhand");
    let mut args: Vec<String> = vec![
        "create".into(),
        "--name".into(),
        tmp.clone(),
        "--init".into(),
        "--stop-timeout".into(),
        "1".into(),
        "--network".into(),
        format!("{}_default", p.name()),
        "--network-alias".into(),
        "backend".into(),
        "--health-cmd".into(),
        "wget -q -O- http://127.0.0.1:8000/health".into(),
        "--health-interval".into(),
        "1s".into(),
        "--health-timeout".into(),
        "2s".into(),
        "--health-retries".into(),
        "20".into(),
    ];
    for e in old["Config"]["Env"].as_array().into_iter().flatten() {
        args.push("--env".into());
        args.push(e.as_str().unwrap_or_default().to_string());
    }
    for (k, v) in old["Config"]["Labels"].as_object().into_iter().flatten() {
        args.push("--label".into());
        args.push(format!("{k}={}", v.as_str().unwrap_or_default()));
    }
    args.push(
        old["Config"]["Image"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    );
    for c in old["Config"]["Cmd"].as_array().into_iter().flatten() {
        args.push(c.as_str().unwrap_or_default().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = p.docker(&args);
    assert_exit(&out, 0, "docker create of the replacement");
    let new = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_exit(
        &p.docker(&["rm", "-f", &name]),
        0,
        "docker rm -f of the old backend",
    );
    assert_exit(&p.docker(&["rename", &tmp, &name]), 0, "docker rename");
    assert_exit(&p.docker(&["start", &name]), 0, "docker start");
    new
}

/// A throwaway container, removed on drop (it carries no project label, so the project's cleanup would miss it).
struct Squatter(String);

impl Drop for Squatter {
    fn drop(&mut self) {
        let _ = common::docker(&["rm", "-f", &self.0]);
    }
}

/// Stops backend and starts a throwaway container on its network, which takes the address backend had (the engine
/// hands out the lowest free one).
fn take_address_of_stopped_backend(p: &TestProject) -> Squatter {
    let backend = p.container_name("backend", 1);
    assert_exit(
        &p.docker(&["stop", "-t", "1", &backend]),
        0,
        "docker stop backend",
    );
    let squatter = Squatter(format!("{}-squatter", p.name()));
    let out = p.docker(&[
        "run",
        "-d",
        "--name",
        &squatter.0,
        "--network",
        &format!("{}_default", p.name()),
        "spindle-test/busybox:1",
        "/usr/local/bin/idle",
    ]);
    assert_exit(
        &out,
        0,
        "docker run of the container that takes backend's address",
    );
    squatter
}

// --- 1. spindle's own plan recreates backend -------------------------------------------------------------------

#[test]
fn when_spindle_s_plan_recreates_the_backend_its_dependents_follow_once_it_is_healthy() {
    let p = TestProject::new("follow_plan", "follow");
    let state = state_dir();
    let (mut run, before) = converge(&p, state.path());
    let ((), follows) = assert_followed(
        &p,
        &mut run,
        state.path(),
        &before,
        "recreated_by_plan",
        |run| {
            p.edit("compose.yaml", "RELEASE: \"1\"", "RELEASE: \"2\"");
            assert!(run.signal("HUP"), "SIGHUP could not be sent");
        },
    );
    assert_eq!(
        follows[0]["reason"], "backend-1 is recreated by this plan",
        "{follows:#?}"
    );
    assert_ne!(
        id(&p.inspect(&p.container_name("backend", 1))),
        before.backend
    );
    assert_followed_once(&p, &mut run, state.path());
}

// --- 2. self-heal re-creates a removed backend -----------------------------------------------------------------

#[test]
fn when_self_heal_re_creates_a_removed_backend_its_dependents_follow() {
    let p = TestProject::new("follow_selfheal", "follow");
    let state = state_dir();
    let (mut run, before) = converge(&p, state.path());
    assert_followed(
        &p,
        &mut run,
        state.path(),
        &before,
        "recreated_by_self_heal",
        |_| {
            let rm = p.docker(&["rm", "-f", &p.container_name("backend", 1)]);
            assert_exit(&rm, 0, "docker rm -f backend");
        },
    );
    assert_followed_once(&p, &mut run, state.path());
}

// --- 3. an out-of-band replacement -----------------------------------------------------------------------------

#[test]
fn when_backend_is_replaced_out_of_band_its_dependents_follow_with_the_old_and_new_id() {
    let p = TestProject::new("follow_outofband", "follow");
    let state = state_dir();
    let (mut run, before) = converge(&p, state.path());
    // spindle is frozen while the replacement is made, so it never sees the half-done swap (two containers in one
    // slot, or none); it wakes to the finished replacement, as after a Compose recreate it did not watch. How
    // spindle and a concurrent Compose recreate get along is tested with Compose itself, below.
    let (new, follows) = assert_followed(
        &p,
        &mut run,
        state.path(),
        &before,
        "replaced_out_of_band",
        |run| {
            assert!(run.signal("STOP"), "SIGSTOP could not be sent");
            let new = replace_backend_by_hand(&p);
            assert!(run.signal("CONT"), "SIGCONT could not be sent");
            new
        },
    );
    for f in &follows {
        assert_eq!(f["follows"]["old_id"], before.backend.as_str(), "{f:#}");
        assert_eq!(f["follows"]["new_id"], new.as_str(), "{f:#}");
        let reason = f["reason"].as_str().unwrap_or_default();
        assert!(
            reason.starts_with("backend-1 was replaced out of band (id ")
                && reason.contains(&before.backend[..12])
                && reason.contains(&new[..12]),
            "{reason}"
        );
    }
    assert_eq!(
        id(&p.inspect(&p.container_name("backend", 1))),
        new,
        "the replacement is adopted as it is"
    );
    assert_followed_once(&p, &mut run, state.path());
}

/// The same with Compose v5 itself, while spindle runs: the Compose command succeeds (spindle's networks carry
/// Compose's own labels and hash, so Compose does not try to recreate them) and the dependents follow.
#[test]
fn when_compose_force_recreates_the_backend_its_dependents_follow() {
    let p = TestProject::new("follow_compose", "follow");
    let state = state_dir();
    let (mut run, before) = converge(&p, state.path());
    let (new, follows) = assert_followed(
        &p,
        &mut run,
        state.path(),
        &before,
        "replaced_out_of_band",
        |_| {
            let out = p.compose(&["up", "-d", "--force-recreate", "--no-deps", "backend"]);
            assert_exit(&out, 0, "docker compose up -d --force-recreate backend");
            id(&p.inspect(&p.container_name("backend", 1)))
        },
    );
    assert_ne!(new, before.backend);
    assert!(
        follows
            .iter()
            .all(|f| f["follows"]["new_id"] == new.as_str()),
        "{follows:#?}"
    );
    assert_followed_once(&p, &mut run, state.path());
}

// --- 4. a start that gives backend another address --------------------------------------------------------------

#[test]
fn when_a_restart_gives_the_backend_another_address_its_dependents_follow() {
    let p = TestProject::new("follow_address", "follow");
    let state = state_dir();
    let (mut run, before) = converge(&p, state.path());
    let backend = p.container_name("backend", 1);
    let old_ip = address(&p, &backend);
    assert!(!old_ip.is_empty(), "backend has an address");
    let (new_ip, follows) = assert_followed(
        &p,
        &mut run,
        state.path(),
        &before,
        "address_changed",
        |run| {
            // Frozen, so that spindle does not start backend again before the throwaway container took its
            // address.
            assert!(run.signal("STOP"), "SIGSTOP could not be sent");
            let squatter = take_address_of_stopped_backend(&p);
            assert_exit(&p.docker(&["start", &backend]), 0, "docker start backend");
            let new_ip = address(&p, &backend);
            drop(squatter);
            assert!(run.signal("CONT"), "SIGCONT could not be sent");
            new_ip
        },
    );
    assert_ne!(new_ip, old_ip, "backend came back on another address");
    assert!(!new_ip.is_empty());
    for f in &follows {
        assert_eq!(f["follows"]["old"], old_ip.as_str(), "{f:#}");
        assert_eq!(f["follows"]["new"], new_ip.as_str(), "{f:#}");
        assert_eq!(
            f["follows"]["network"],
            format!("{}_default", p.name()),
            "{f:#}"
        );
    }
    assert_eq!(
        id(&p.inspect(&backend)),
        before.backend,
        "backend itself is the same container"
    );
    assert_followed_once(&p, &mut run, state.path());
}

// --- 5. spindle restarts between the replacement and the next reconcile -----------------------------------------

#[test]
fn a_replacement_made_while_spindle_was_stopped_is_followed_after_it_starts_again() {
    let p = TestProject::new("follow_restart", "follow");
    let state = state_dir();
    let (mut run, before) = converge(&p, state.path());
    let status = run.terminate(Duration::from_secs(30));
    assert!(status.success(), "spindle run stopped cleanly: {status:?}");
    let memory = state.path().join(format!("last-seen-{}.json", p.name()));
    let mode = std::fs::metadata(&memory)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .unwrap_or_default();
    assert_eq!(mode, 0o600, "{} is 0600", memory.display());
    assert!(
        std::fs::read_to_string(&memory)
            .unwrap_or_default()
            .contains(&before.backend),
        "the memory names the backend spindle saw"
    );

    let new = replace_backend_by_hand(&p);

    let mut run = p.spawn_run(state.path(), &["--listen", "off"]);
    let ((), follows) = assert_followed(
        &p,
        &mut run,
        state.path(),
        &before,
        "replaced_out_of_band",
        |_| {},
    );
    assert!(
        follows
            .iter()
            .all(|f| f["follows"]["new_id"] == new.as_str()),
        "{follows:#?}"
    );
    assert_followed_once(&p, &mut run, state.path());
}

// --- spindle plan and spindle apply share the memory ------------------------------------------------------------

#[test]
fn spindle_plan_shows_and_spindle_apply_makes_the_follow_of_a_replacement_made_after_the_last_apply()
 {
    let p = TestProject::new("follow_apply", "follow");
    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "the first spindle apply");
    let before = id(&p.inspect(&p.container_name("backend", 1)));
    let frontend = id(&p.inspect(&p.container_name("frontend", 1)));
    let gateway = started_at(&p.inspect(&p.container_name("gateway", 1)));
    // Nothing moved: nothing to follow.
    assert_exit(&p.spindle(&["plan"]), 0, "spindle plan after apply");

    let new = replace_backend_by_hand(&p);
    wait_for("the replacement to be healthy", DEADLINE, || {
        p.is_ready(&p.container_name("backend", 1)).then_some(())
    });
    let (out, plan) = p.spindle_json(&["plan", "--format", "json"]);
    assert_exit(&out, 2, "spindle plan after the replacement");
    // `--state-dir` names whose memory the plan reads: one that saw nothing has nothing to follow.
    let elsewhere = state_dir();
    let elsewhere = elsewhere.path().to_string_lossy().to_string();
    assert_exit(
        &p.spindle(&["plan", "--state-dir", &elsewhere]),
        0,
        "spindle plan with a state dir that saw nothing",
    );
    let follows: Vec<(String, String)> = plan["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| {
            let f = a["follows"].get(0)?;
            Some((
                format!(
                    "{} {}",
                    common::action_verb(a),
                    common::action_service(a).unwrap_or_default()
                ),
                f["cause"].as_str()?.to_string(),
            ))
        })
        .collect();
    assert_eq!(
        follows,
        vec![
            (
                "recreate frontend".to_string(),
                "replaced_out_of_band".to_string()
            ),
            (
                "restart gateway".to_string(),
                "replaced_out_of_band".to_string()
            ),
        ],
        "{plan:#}"
    );
    assert_eq!(
        common::plan_actions(&plan).len(),
        2,
        "backend itself is kept: {plan:#}"
    );
    let text = p.spindle(&["plan"]);
    let shown = String::from_utf8_lossy(&text.stdout);
    assert!(
        shown.contains(&format!(
            "dependency backend-1 was replaced out of band (id {} → {})",
            &before[..12],
            &new[..12]
        )),
        "{shown}"
    );

    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "the apply that follows");
    assert_ne!(id(&p.inspect(&p.container_name("frontend", 1))), frontend);
    assert_ne!(
        started_at(&p.inspect(&p.container_name("gateway", 1))),
        gateway
    );
    let record = evidence_records(p.state_dir())
        .last()
        .cloned()
        .unwrap_or_default();
    let causes: Vec<&str> = record["follows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["follows"]["cause"].as_str())
        .collect();
    assert_eq!(
        causes,
        ["replaced_out_of_band", "replaced_out_of_band"],
        "{record:#}"
    );
    // Followed once: the next plan is empty.
    assert_exit(&p.spindle(&["plan"]), 0, "spindle plan after the follow");
}

// --- a start made by spindle itself that gives backend another address -------------------------------------------

#[test]
fn when_spindle_s_own_start_gives_the_backend_another_address_its_dependents_follow_in_the_next_reconcile()
 {
    let p = TestProject::new("follow_ownstart", "follow");
    let state = state_dir();
    let (mut run, before) = converge(&p, state.path());
    let backend = p.container_name("backend", 1);
    let old_ip = address(&p, &backend);
    let (squatter, follows) = assert_followed(
        &p,
        &mut run,
        state.path(),
        &before,
        "address_changed",
        |run| {
            // Frozen while backend is stopped and its address taken, so that the start spindle plans for the
            // stopped backend is what gives it another address: a change the plan could not know of.
            assert!(run.signal("STOP"), "SIGSTOP could not be sent");
            let squatter = take_address_of_stopped_backend(&p);
            assert!(run.signal("CONT"), "SIGCONT could not be sent");
            squatter
        },
    );
    drop(squatter);
    let new_ip = address(&p, &backend);
    assert_ne!(new_ip, old_ip);
    for f in &follows {
        assert_eq!(f["follows"]["old"], old_ip.as_str(), "{f:#}");
        assert_eq!(f["follows"]["new"], new_ip.as_str(), "{f:#}");
    }
    // spindle started backend itself, and followed in a later reconcile than that start.
    let records = evidence_records(state.path());
    let started = records
        .iter()
        .skip(before.records)
        .position(|r| {
            r["results"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|x| common::action_verb(&x["action"]) == "start" && x["outcome"] == "ok")
        })
        .unwrap_or_else(|| panic!("spindle started backend: {records:#?}"));
    let followed = records
        .iter()
        .skip(before.records)
        .position(|r| r.get("follows").is_some())
        .unwrap_or_default();
    assert!(followed > started, "the follow comes after the start");
    assert_eq!(id(&p.inspect(&backend)), before.backend);
    assert_followed_once(&p, &mut run, state.path());
}

// --- a corrupt memory ------------------------------------------------------------------------------------------

#[test]
fn a_corrupt_memory_file_is_a_warning_nothing_follows_and_it_is_rewritten() {
    let p = TestProject::new("follow_corrupt", "follow");
    assert_exit(&p.spindle(&["apply"]), 0, "the first spindle apply");
    let memory = p.state_dir().join(format!("last-seen-{}.json", p.name()));
    std::fs::write(&memory, "{\"version\": 1, \"proj").expect("the memory is overwritten");
    let new = replace_backend_by_hand(&p);
    wait_for("the replacement to be healthy", DEADLINE, || {
        p.is_ready(&p.container_name("backend", 1)).then_some(())
    });
    let ids = p.ids();

    let out = p.spindle(&["plan"]);
    assert_exit(&out, 0, "spindle plan with a corrupt memory: nothing to do");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the recovery rule's memory is unreadable")
            && stderr.contains(&memory.display().to_string()),
        "{stderr}"
    );
    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "spindle apply with a corrupt memory");
    assert_eq!(p.ids(), ids, "nothing was recreated");
    let text = std::fs::read_to_string(&memory).unwrap_or_default();
    let doc: Value = serde_json::from_str(&text).unwrap_or_default();
    assert_eq!(doc["project"], p.name(), "rewritten: {text}");
    assert!(
        text.contains(&new),
        "the memory now names the replacement: {text}"
    );
}
