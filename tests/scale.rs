//! Converging at scale against the real Docker engine: health gates wait side by side whatever `--parallelism`
//! says (it bounds engine writes only), and a no-op observe settles running containers from the list call and
//! inspects only what the list cannot vouch for (issue 9, item 6).
//!
//! Timing is asserted by structure only: the start and end values of the apply's own results show which
//! actions and writes overlapped; no wall-clock threshold is used.

mod common;

use common::{TestProject, apply_results, assert_exit};
use serde_json::Value;
use spindle::desired::{self, Request, typed::DesiredState};
use spindle::engine::Engine;
use spindle::observe::{self, Depth};

/// `(start, end)` in ms since the apply started, of each item of `items` (`started_ms`, `elapsed_ms`).
fn windows<'a>(items: impl Iterator<Item = &'a Value>) -> Vec<(u64, u64)> {
    items
        .map(|r| {
            let start = r["started_ms"].as_u64().unwrap_or_default();
            (start, start + r["elapsed_ms"].as_u64().unwrap_or_default())
        })
        .collect()
}

/// The largest number of windows open at one instant.
fn max_overlap(windows: &[(u64, u64)]) -> usize {
    windows
        .iter()
        .map(|(s, _)| windows.iter().filter(|(a, b)| a <= s && s < b).count())
        .max()
        .unwrap_or(0)
}

#[test]
fn twelve_health_gated_creates_with_parallelism_one_wait_for_their_gates_side_by_side() {
    let p = TestProject::new("scale_gates", "gates12");
    let out = p.spindle(&["apply", "--parallelism", "1", "--format", "json"]);
    assert_exit(&out, 0, "spindle apply --parallelism 1");
    let report: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("report: {e}"));

    let results = apply_results(&report);
    let creates: Vec<&Value> = report["results"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|r| r["action"]["kind"]["kind"] == "create")
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(creates.len(), 12, "{results:?}");
    for r in &creates {
        assert_eq!(r["outcome"], "ok", "{r:#}");
        assert_eq!(
            r["readiness"], "healthy",
            "each create passed its health gate: {r:#}"
        );
    }

    // With one slot per action (the old rule) no two gated creates could overlap. Now the slot is
    // held by each engine write only: writes never overlap, the creates' gate waits do.
    let writes = windows(report["write_log"].as_array().into_iter().flatten());
    assert!(
        writes.len() >= 24,
        "a create and a start per service: {writes:?}"
    );
    let mut sorted = writes.clone();
    sorted.sort();
    for pair in sorted.windows(2) {
        // Times are whole milliseconds rounded down: allow that much.
        assert!(
            pair[1].0 + 1 >= pair[0].1,
            "with --parallelism 1 no two engine writes overlap: {pair:?}"
        );
    }
    let gates = windows(creates.iter().copied());
    let overlap = max_overlap(&gates);
    assert!(
        overlap >= 2,
        "health gates of different services are waited for side by side: {gates:?}"
    );
}

fn load(p: &TestProject) -> DesiredState {
    let req = Request {
        desired_state: Some(p.dir().to_path_buf()),
        project_name: Some(p.name().to_string()),
        cwd: p.dir().to_path_buf(),
        ..Request::default()
    };
    let project = desired::load(&req).unwrap_or_else(|e| panic!("load: {e}"));
    DesiredState::from_project(&project, None).unwrap_or_else(|e| panic!("desired: {e}"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"))
}

#[test]
fn a_no_op_observe_inspects_no_container_the_list_settles_and_a_live_change_is_inspected() {
    let p = TestProject::new("scale_noop", "gates12");
    assert_exit(&p.spindle(&["apply"]), 0, "spindle apply");
    let desired = load(&p);
    let live_of = |s: &desired::typed::DesiredService| spindle::spec::live_config(s).ok();

    runtime().block_on(async {
        let engine = Engine::connect()
            .await
            .unwrap_or_else(|e| panic!("engine: {e}"));
        // Every container is running (healthy or not yet): all twelve are settled by the list.
        let before = engine.requests();
        let listed = observe::snapshot_with(
            &engine,
            &desired,
            Depth::Listed {
                live: &live_of,
                inspect: &[],
            },
        )
        .await
        .unwrap_or_else(|e| panic!("observe: {e}"));
        let reads = engine.requests().since(before).reads;
        assert_eq!(listed.containers.len(), 12);
        // list containers, list networks, list volumes, one image: no container inspect.
        assert_eq!(
            reads, 4,
            "a no-op observe of 12 settled containers makes 4 reads"
        );

        // The full observe inspects each one (12 more reads) and sees the same containers.
        let before = engine.requests();
        let full = observe::snapshot(&engine, &desired)
            .await
            .unwrap_or_else(|e| panic!("observe: {e}"));
        assert_eq!(engine.requests().since(before).reads, 4 + 12);
        let brief = |s: &spindle::observe::snapshot::Snapshot| {
            s.containers
                .iter()
                .map(|c| {
                    (
                        c.id.clone(),
                        c.name.clone(),
                        c.service.clone(),
                        c.number,
                        c.state,
                        c.image_id.clone(),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            brief(&listed),
            brief(&full),
            "the list settles what an inspect would say"
        );
        let opts = spindle::plan::PlanOptions::default();
        assert!(
            spindle::plan::plan(&desired, &listed, &opts).is_empty(),
            "no-op from the list"
        );
        assert!(
            spindle::plan::plan(&desired, &full, &opts).is_empty(),
            "no-op from inspects"
        );
        for (l, f) in listed.containers.iter().zip(&full.containers) {
            assert_eq!(
                l.inspect["NetworkSettings"]["Networks"]
                    .as_object()
                    .map(|m| m.keys().cloned().collect::<Vec<_>>()),
                f.inspect["NetworkSettings"]["Networks"]
                    .as_object()
                    .map(|m| m.keys().cloned().collect::<Vec<_>>()),
                "the networks (and their addresses) come from the list call"
            );
        }

        // A live change this process made (here: an update through the engine) is never settled
        // by the labels again: that one container is inspected.
        let g01 = full
            .containers
            .iter()
            .find(|c| c.service == "g01")
            .unwrap_or_else(|| panic!("no g01"));
        engine
            .update(&g01.id, &serde_json::json!({"CpuShares": 512}))
            .await
            .unwrap_or_else(|e| panic!("update: {e}"));
        let before = engine.requests();
        let again = observe::snapshot_with(
            &engine,
            &desired,
            Depth::Listed {
                live: &live_of,
                inspect: &[],
            },
        )
        .await
        .unwrap_or_else(|e| panic!("observe: {e}"));
        assert_eq!(engine.requests().since(before).reads, 4 + 1);
        let seen = again
            .containers
            .iter()
            .find(|c| c.id == g01.id)
            .unwrap_or_else(|| panic!("no g01"));
        assert_eq!(
            seen.live.cpu_shares, 512,
            "the inspect shows the changed live setting"
        );
    });
}

#[test]
fn a_cpu_limit_changed_with_docker_update_is_left_to_the_full_inspect_of_inspect_all_or_spindle_run()
 {
    let p = TestProject::new("scale_update", "plain");
    assert_exit(&p.spindle(&["apply"]), 0, "spindle apply");
    let a = p.container_name("a", 1);
    let id = p.id_of("a");
    assert_exit(
        &p.docker(&["update", "--cpus", "1.5", &a]),
        0,
        "docker update --cpus",
    );

    // The list call cannot show resource limits: a one-shot plan trusts it (docs/architecture.md).
    assert_exit(&p.spindle(&["plan"]), 0, "spindle plan after docker update");
    // A full inspect sees the change and sets it back in place.
    let (out, plan) = p.spindle_json(&["plan", "--inspect-all", "--format", "json"]);
    assert_exit(&out, 2, "spindle plan --inspect-all");
    assert_eq!(
        common::plan_actions(&plan),
        vec![("update".to_string(), "a".to_string())],
        "{plan:#}"
    );
    assert_exit(
        &p.spindle(&["apply", "--inspect-all"]),
        0,
        "spindle apply --inspect-all",
    );
    let info = p.inspect(&a);
    assert_eq!(info["HostConfig"]["NanoCpus"], 500_000_000);
    assert_eq!(info["Id"].as_str(), Some(id.as_str()), "set back in place");
}
