//! Profile switching against the real Docker engine: measured CPU load switches a running stack to its low-cpu
//! profile in place and back, and a pin set with `spindle profile` while `spindle run` runs switches it (issue 5).
//!
//! The load is real: `nice -n 19` shell loops, two per core, stopped by a drop guard. The machine is shared, so the
//! thresholds have wide margins, every wait has a generous deadline, and nothing asserts a latency.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{TestProject, assert_exit, state_dir, wait_for};
use serde_json::Value;

const PREFIX: &str = "spindle-h-profile";
/// The cap of the base files and of the low-cpu profile (`tests/fixtures/stacks/profile`).
const BASE_NANO_CPUS: i64 = 1_000_000_000;
const LOW_NANO_CPUS: i64 = 250_000_000;
const DEADLINE: Duration = Duration::from_secs(90);
/// Leaving needs the shared machine to calm down below the leave threshold for a while.
const LEAVE_DEADLINE: Duration = Duration::from_secs(90);
/// The leave threshold of the load test, in per mille.
const LEAVE_BELOW: u32 = 500;

/// Busy loops, four per core (PSI `some` near 100 % here; two per core gave only ~85 %), at the
/// lowest priority; killed on drop.
struct Burner(Vec<Child>);

impl Burner {
    fn start() -> Self {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get()) * 4;
        Burner(
            (0..n)
                .map(|_| {
                    Command::new("nice")
                        .args(["-n", "19", "sh", "-c", "while :; do :; done"])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .expect("a busy loop starts")
                })
                .collect(),
        )
    }
}

impl Drop for Burner {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The machine's load over `span`, in per mille, from the source spindle's `source: auto` uses.
fn machine_load(span: Duration) -> Option<u32> {
    let mut source = spindle::profile::source::open(spindle::profile::SourceKind::Auto).ok()?;
    source.sample().ok()?;
    std::thread::sleep(span);
    source.sample().ok()?.map(|r| r.permille)
}

fn switching(p: &TestProject, block: &str) {
    let text = p.read("spindle.yaml");
    let head = text
        .split("switching:")
        .next()
        .unwrap_or_default()
        .to_string();
    p.write("spindle.yaml", &format!("{head}switching:\n{block}"));
}

#[test]
fn cpu_load_switches_a_running_stack_to_low_cpu_in_place_and_back_when_it_stops() {
    let p = TestProject::with_prefix(PREFIX, "load_switch", "profile");
    switching(
        &p,
        "  mode: auto\n  profile: low-cpu\n  source: auto\n  enter: {above: 70, for: 2s}\n  leave: {below: 50, for: 3s}\n  min_dwell: 1s\n  sample_every: 500ms\n",
    );
    let state = state_dir();
    let mut run = p.spawn_run(state.path(), &[]);
    // On a busy shared machine the switcher may enter low-cpu before the burner starts; the base
    // is only awaited when the machine is calm enough.
    wait_for("web to run", DEADLINE, || {
        run.assert_alive();
        common::running_nano_cpus(&p, "web")
    });

    let burner = Burner::start();
    let id = common::wait_nano_cpus(
        &p,
        &mut run,
        "web",
        LOW_NANO_CPUS,
        "web to get the low-cpu cap under load",
        DEADLINE,
    );
    let (trigger, record) = common::wait_profile_switch(state.path(), "enter", DEADLINE);
    assert_eq!(trigger["to"], "low-cpu", "{trigger}");
    assert!(trigger["from"].is_null(), "{trigger}");
    let readings = trigger["readings_permille"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        !readings.is_empty(),
        "the trigger carries the readings: {trigger}"
    );
    assert!(
        readings.iter().all(|r| r.as_u64().is_some_and(|r| r > 700)),
        "every reading of the window is above the threshold: {trigger}"
    );
    assert!(
        matches!(trigger["source"].as_str(), Some("psi" | "stat")),
        "{trigger}"
    );
    assert_eq!(record["active_profile"], "low-cpu", "{record}");
    assert!(
        common::only_updates_of("web", &record),
        "the switch is an in-place update: {}",
        record["plan"]
    );

    drop(burner);
    // The machine is shared: other work may keep it above the leave threshold. The test fails only
    // when spindle stays in low-cpu although the machine, measured the same way, is calm.
    let started = std::time::Instant::now();
    let back = loop {
        run.assert_alive();
        if let Some((id, n)) =
            common::running_nano_cpus(&p, "web").filter(|(_, n)| *n == BASE_NANO_CPUS)
        {
            let _ = n;
            break id;
        }
        if started.elapsed() > LEAVE_DEADLINE {
            let calm = machine_load(Duration::from_secs(5)).is_some_and(|l| l < LEAVE_BELOW);
            assert!(
                !calm,
                "the machine is below the leave threshold but web still has the low-cpu cap"
            );
            eprintln!(
                "NOTICE: the shared machine stayed above the leave threshold for {LEAVE_DEADLINE:?}; \
                 switching back is proven by the switcher's unit tests only in this run"
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(back, id, "switching back updates the same container");
    let (trigger, record) = common::wait_profile_switch(state.path(), "leave", DEADLINE);
    assert_eq!(trigger["from"], "low-cpu", "{trigger}");
    assert!(trigger["to"].is_null(), "{trigger}");
    assert!(record["active_profile"].is_null(), "{record}");
    assert!(
        common::only_updates_of("web", &record),
        "{}",
        record["plan"]
    );
    assert_eq!(
        id,
        common::running_nano_cpus(&p, "web")
            .map(|(id, _)| id)
            .unwrap_or_default(),
        "never recreated"
    );
}

#[test]
fn a_pin_set_with_the_cli_while_run_runs_switches_the_profile_and_unpin_switches_back() {
    let p = TestProject::with_prefix(PREFIX, "cli_pin", "profile");
    // Manual mode: only the pin decides, whatever the shared machine's load.
    let state = state_dir();
    let state_arg = state.path().to_string_lossy().into_owned();
    let mut run = p.spawn_run(state.path(), &[]);
    let id = common::wait_nano_cpus(
        &p,
        &mut run,
        "web",
        BASE_NANO_CPUS,
        "web to run with its base cap",
        DEADLINE,
    );

    let bad = p.spindle(&["profile", "pin", "turbo", "--state-dir", &state_arg]);
    assert_exit(&bad, 1, "pin of an undeclared profile");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("turbo") && err.contains("default, low-cpu"),
        "{err}"
    );
    assert!(
        !state.path().join("profile.json").exists(),
        "a refused pin writes nothing"
    );

    assert_exit(
        &p.spindle(&["profile", "pin", "low-cpu", "--state-dir", &state_arg]),
        0,
        "spindle profile pin low-cpu",
    );
    let pinned = common::wait_nano_cpus(
        &p,
        &mut run,
        "web",
        LOW_NANO_CPUS,
        "web to get the pinned low-cpu cap",
        DEADLINE,
    );
    assert_eq!(pinned, id, "the pin is applied in place");
    let (trigger, record) = common::wait_profile_switch(state.path(), "pin", DEADLINE);
    assert_eq!(trigger["to"], "low-cpu", "{trigger}");
    assert_eq!(record["active_profile"], "low-cpu", "{record}");
    assert!(
        common::only_updates_of("web", &record),
        "{}",
        record["plan"]
    );

    let show = p.spindle(&[
        "profile",
        "show",
        "--format",
        "json",
        "--state-dir",
        &state_arg,
    ]);
    assert_exit(&show, 0, "spindle profile show");
    let doc: Value = serde_json::from_slice(&show.stdout).unwrap_or_default();
    assert_eq!(doc["pinned"], "low-cpu", "{doc}");

    assert_exit(
        &p.spindle(&["profile", "unpin", "--state-dir", &state_arg]),
        0,
        "spindle profile unpin",
    );
    let back = common::wait_nano_cpus(
        &p,
        &mut run,
        "web",
        BASE_NANO_CPUS,
        "web back to its base cap after unpin",
        DEADLINE,
    );
    assert_eq!(back, id);
    let (trigger, _) = common::wait_profile_switch(state.path(), "unpin", DEADLINE);
    assert_eq!(trigger["from"], "low-cpu", "{trigger}");
}

#[test]
fn a_bad_switching_block_stops_run_before_it_touches_the_host() {
    let p = TestProject::with_prefix(PREFIX, "bad_block", "profile");
    switching(
        &p,
        "  profile: low-cpu\n  enter: {above: 80, for: 2m}\n  leave: {below: 40, for: 1m}\n",
    );
    let state = state_dir();
    let state_arg = state.path().to_string_lossy().into_owned();
    let out = p.spindle(&["run", "--state-dir", &state_arg]);
    assert_exit(&out, 1, "spindle run with leave.for shorter than enter.for");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("spindle.yaml") && err.contains("switching.leave.for"),
        "{err}"
    );
    assert!(p.containers().is_empty(), "nothing was created");

    switching(
        &p,
        "  profile: turbo\n  enter: {above: 80, for: 2m}\n  leave: {below: 40, for: 10m}\n",
    );
    let out = p.spindle(&["profile", "pin", "low-cpu", "--state-dir", &state_arg]);
    assert_exit(
        &out,
        1,
        "spindle profile pin with an undeclared switching.profile",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("switching.profile") && err.contains("low-cpu"),
        "{err}"
    );
    assert!(!state.path().join("profile.json").exists());
}
