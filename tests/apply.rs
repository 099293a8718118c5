//! `spindle plan` and `spindle apply` against the real Docker engine: each test owns one compose project.
//!
//! The stacks are in `tests/fixtures/stacks/` (offline busybox images, 1 s healthchecks, 1 s stop grace, no
//! published ports), so the tests are quick and run in parallel safely. They need a running Docker engine, the
//! offline images (built on first use by `infra/scripts/build-test-images.sh`) and Compose v5
//! (`SPINDLE_COMPOSE_BIN`, set by `infra/scripts/env.sh`).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{TestProject, apply_results, assert_exit, assert_no_panic, parse_time, plan_actions};
use serde_json::Value;

const ERP: [&str; 5] = ["db", "backend", "worker", "frontend", "gateway"];
const PLAIN: [&str; 3] = ["a", "b", "c"];

/// Services of the mini ERP stack that have a healthcheck.
const ERP_HEALTHCHECKED: [&str; 3] = ["backend", "frontend", "gateway"];

/// Applies the stack and checks it converged.
#[track_caller]
fn apply_ok(p: &TestProject) {
    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "spindle apply");
}

/// Service → container ID of `<project>-<service>-1`.
fn ids_by_service(p: &TestProject, services: &[&str]) -> BTreeMap<String, String> {
    services
        .iter()
        .map(|s| (s.to_string(), p.id_of(s)))
        .collect()
}

fn started_at(info: &Value) -> i128 {
    info["State"]["StartedAt"]
        .as_str()
        .and_then(parse_time)
        .unwrap_or_else(|| panic!("no State.StartedAt in {:#}", info["State"]))
}

/// `wget` of the container's own /health from inside it.
#[track_caller]
fn assert_serves(p: &TestProject, container: &str) {
    let out = p.docker(&[
        "exec",
        container,
        "wget",
        "-q",
        "-O-",
        "http://127.0.0.1:8000/health",
    ]);
    assert_exit(&out, 0, &format!("wget /health in {container}"));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

/// `docker-compose ps --format json` rows: one JSON object a line (v2.21+), or one array (older).
fn compose_ps(p: &TestProject) -> Vec<Value> {
    let out = p.compose(&["ps", "--format", "json"]);
    assert_exit(&out, 0, "docker-compose ps --format json");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if let Ok(Value::Array(rows)) = serde_json::from_str::<Value>(text.trim()) {
        return rows;
    }
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("compose ps line {l:?}: {e}")))
        .collect()
}

#[test]
fn a_fresh_apply_brings_the_mini_erp_stack_up_with_compose_names_and_labels() {
    let p = TestProject::new("fresh_apply", "erp");
    assert!(p.containers().is_empty());

    apply_ok(&p);

    let mut expected: Vec<String> = ERP.iter().map(|s| p.container_name(s, 1)).collect();
    expected.sort();
    let names: Vec<String> = p.containers().into_iter().map(|(name, _)| name).collect();
    assert_eq!(
        names, expected,
        "one container per service, named <project>-<service>-1"
    );

    // backend gated frontend and gateway, so it was healthy before apply finished.
    let backend = p.inspect(&p.container_name("backend", 1));
    assert_eq!(
        backend["State"]["Health"]["Status"], "healthy",
        "{:#}",
        backend["State"]
    );

    for service in ERP {
        let name = p.container_name(service, 1);
        let info = if ERP_HEALTHCHECKED.contains(&service) {
            p.wait_ready(&name, Duration::from_secs(30))
        } else {
            p.inspect(&name)
        };
        assert_eq!(
            info["State"]["Running"], true,
            "{name} runs: {:#}",
            info["State"]
        );
        let labels = &info["Config"]["Labels"];
        assert_eq!(labels["com.docker.compose.project"], p.name(), "{name}");
        assert_eq!(labels["com.docker.compose.service"], service, "{name}");
        assert_eq!(labels["com.docker.compose.container-number"], "1", "{name}");
        assert_eq!(labels["com.docker.compose.oneoff"], "False", "{name}");
        assert!(
            labels["io.spindle.spec-hash"].is_string(),
            "{name} has spindle's spec hash: {labels:#}"
        );
    }

    // Compose v5 sees the same containers.
    let rows = compose_ps(&p);
    let mut listed: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["Name"].as_str().unwrap_or_default().to_string(),
                r["Service"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    listed.sort();
    let mut wanted: Vec<(String, String)> = ERP
        .iter()
        .map(|s| (p.container_name(s, 1), s.to_string()))
        .collect();
    wanted.sort();
    assert_eq!(
        listed, wanted,
        "docker-compose ps lists spindle's containers: {rows:#?}"
    );
    for row in &rows {
        assert_eq!(row["State"], "running", "{row:#}");
    }
}

#[test]
fn a_second_apply_makes_no_docker_write_call_and_plan_then_reports_in_sync() {
    let p = TestProject::new("second_apply", "erp");
    apply_ok(&p);
    let before = p.fingerprint();

    let (out, result) = p.spindle_json(&["apply", "--format", "json"]);
    assert_exit(&out, 0, "second spindle apply");
    assert_eq!(result["converged"], true, "{result:#}");
    assert_eq!(
        result["writes"], 0,
        "a converged project needs no write call: {result:#}"
    );
    assert_eq!(
        p.fingerprint(),
        before,
        "nothing was recreated or restarted"
    );

    let (out, plan) = p.spindle_json(&["plan", "--format", "json"]);
    assert_exit(&out, 0, "spindle plan after apply");
    assert_eq!(plan_actions(&plan), vec![], "{plan:#}");
    let out = p.spindle(&["plan"]);
    assert_exit(&out, 0, "spindle plan (text) after apply");
}

#[test]
fn an_environment_change_on_backend_recreates_frontend_and_gateway_only_after_backend_is_healthy_again()
 {
    let p = TestProject::new("backend_env_change", "erp");
    apply_ok(&p);
    let before = ids_by_service(&p, &ERP);

    p.edit("compose.yaml", "RELEASE: \"1\"", "RELEASE: \"2\"");

    let (out, plan) = p.spindle_json(&["plan", "--format", "json"]);
    assert_exit(&out, 2, "spindle plan with a changed backend");
    let actions = plan_actions(&plan);
    assert!(
        actions
            .iter()
            .any(|(verb, service)| verb == "recreate" && service == "backend"),
        "backend is recreated: {plan:#}"
    );
    assert!(
        !actions
            .iter()
            .any(|(verb, service)| verb != "ensure-image"
                && (service == "db" || service == "worker")),
        "db and worker are left alone: {plan:#}"
    );

    let ((out, result), recording) =
        p.record_while(|| p.spindle_json(&["apply", "--format", "json"]));
    assert_exit(&out, 0, "spindle apply of the backend change");
    assert_eq!(result["converged"], true, "{result:#}");

    let after = ids_by_service(&p, &ERP);
    for service in ["backend", "frontend", "gateway"] {
        assert_ne!(before[service], after[service], "{service} was recreated");
    }
    for service in ["db", "worker"] {
        assert_eq!(before[service], after[service], "{service} is untouched");
    }
    assert_eq!(
        p.containers().len(),
        ERP.len(),
        "old containers are removed: {:?}",
        p.containers()
    );

    let backend = p.inspect(&after["backend"]);
    let env: Vec<&str> = backend["Config"]["Env"]
        .as_array()
        .map(|e| e.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        env.contains(&"RELEASE=2"),
        "the new backend has the new environment: {env:?}"
    );

    // The first healthy probe of the new backend, from the health log polled during the apply (Docker keeps
    // only the last five probes) and the final one.
    let seen = recording
        .get(&after["backend"])
        .unwrap_or_else(|| panic!("the new backend was never seen during apply: {recording:#?}"));
    let backend_healthy = seen
        .first_healthy()
        .unwrap_or_else(|| panic!("no successful probe in the backend's health log: {seen:#?}"));
    assert!(
        backend_healthy >= started_at(&backend),
        "the backend became healthy after it started"
    );

    for service in ["frontend", "gateway"] {
        let info = p.inspect(&after[service]);
        let started = started_at(&info);
        assert!(
            started >= backend_healthy,
            "{service} started at {} before the new backend was first healthy at {} ({} ms early)",
            info["State"]["StartedAt"],
            backend_healthy,
            (backend_healthy - started) / 1_000_000
        );
        assert_eq!(
            info["State"]["Running"], true,
            "{service}: {:#}",
            info["State"]
        );
    }
}

#[test]
fn a_new_image_that_does_not_exist_fails_before_the_old_container_is_stopped() {
    let p = TestProject::new("missing_image", "plain");
    apply_ok(&p);
    let before = p.fingerprint();

    p.edit(
        "compose.yaml",
        "  a:\n    image: spindle-test/busybox:1\n",
        "  a:\n    image: spindle-test/does-not-exist:1\n",
    );
    let (out, result) = p.spindle_json(&["apply", "--format", "json"]);
    assert_exit(&out, 1, "spindle apply with a missing image");
    assert_no_panic(&out, "spindle apply");
    assert_eq!(result["converged"], false, "{result:#}");
    let results = apply_results(&result);
    assert!(
        results
            .iter()
            .any(|(_, service, outcome)| service == "a" && outcome == "failed"),
        "service a failed: {result:#}"
    );

    // Same containers, same IDs, never stopped (the start time is unchanged), and still running.
    assert_eq!(
        p.fingerprint(),
        before,
        "nothing was stopped, removed or added"
    );
    assert!(before.values().all(|(_, _, running)| *running));
    assert_serves(&p, &p.container_name("a", 1));
}

#[test]
fn a_healthcheck_that_never_passes_rolls_back_to_the_old_backend_which_keeps_serving() {
    let p = TestProject::new("broken_healthcheck", "erp");
    apply_ok(&p);
    let before = p.ids();

    p.edit(
        "compose.yaml",
        "      db:\n        condition: service_started\n    healthcheck: *http_health\n",
        "      db:\n        condition: service_started\n    healthcheck:\n      test: [\"CMD\", \"false\"]\n      \
         interval: 1s\n      timeout: 2s\n      retries: 2\n",
    );
    let (out, result) = p.spindle_json(&["apply", "--timeout", "20s", "--format", "json"]);
    assert_exit(&out, 1, "spindle apply with a failing healthcheck");
    assert_no_panic(&out, "spindle apply");
    assert_eq!(result["converged"], false, "{result:#}");
    let results = apply_results(&result);
    assert!(
        results
            .iter()
            .any(|(_, service, outcome)| service == "backend" && outcome == "rolled_back"),
        "the backend recreate was rolled back: {result:#}"
    );
    assert!(
        !results
            .iter()
            .any(
                |(verb, service, outcome)| (service == "frontend" || service == "gateway")
                    && verb != "ensure-image"
                    && outcome == "ok"
            ),
        "frontend and gateway were not recreated behind a backend that never became healthy: {result:#}"
    );

    // The new container is gone; the old ones, same IDs, all run; the old backend serves again.
    assert_eq!(
        p.ids(),
        before,
        "the same containers as before the failed apply"
    );
    let backend = p.container_name("backend", 1);
    let info = p.wait_ready(&backend, Duration::from_secs(30));
    assert_eq!(info["Id"], before[&backend].as_str());
    assert_serves(&p, &backend);
    for service in ERP {
        let info = p.inspect(&p.container_name(service, 1));
        assert_eq!(
            info["State"]["Running"], true,
            "{service}: {:#}",
            info["State"]
        );
    }
}

#[test]
fn a_cpu_limit_change_is_applied_in_place_without_recreating_or_restarting() {
    let p = TestProject::new("cpu_in_place", "plain");
    apply_ok(&p);
    let a = p.container_name("a", 1);
    let info = p.inspect(&a);
    assert_eq!(
        info["HostConfig"]["NanoCpus"], 500_000_000,
        "{:#}",
        info["HostConfig"]
    );
    let before = p.fingerprint();

    p.edit("compose.yaml", "cpus: 0.5", "cpus: 0.25");
    let (out, plan) = p.spindle_json(&["plan", "--format", "json"]);
    assert_exit(&out, 2, "spindle plan with a changed cpu limit");
    let actions = plan_actions(&plan);
    assert!(
        actions.contains(&("update".to_string(), "a".to_string())),
        "an in-place update of a: {plan:#}"
    );
    assert!(
        !actions.iter().any(|(verb, _)| verb == "recreate"),
        "nothing is recreated: {plan:#}"
    );

    let (out, result) = p.spindle_json(&["apply", "--format", "json"]);
    assert_exit(&out, 0, "spindle apply of the cpu change");
    assert_eq!(result["converged"], true, "{result:#}");

    let info = p.inspect(&a);
    assert_eq!(
        info["HostConfig"]["NanoCpus"], 250_000_000,
        "{:#}",
        info["HostConfig"]
    );
    assert_eq!(
        p.fingerprint(),
        before,
        "same containers, IDs and start times"
    );

    let out = p.spindle(&["plan"]);
    assert_exit(&out, 0, "spindle plan after the update");
}

#[test]
fn a_stack_started_by_compose_v5_is_adopted_without_recreating_anything() {
    let p = TestProject::new("adopt_compose", "erp");
    let out = p.compose(&["up", "-d", "--wait", "--wait-timeout", "60"]);
    assert_exit(&out, 0, "docker-compose up -d --wait");
    let before = p.fingerprint();
    assert_eq!(before.len(), ERP.len(), "{before:#?}");

    let (out, plan) = p.spindle_json(&["plan", "--format", "json"]);
    assert!(
        matches!(out.status.code(), Some(0 | 2)),
        "spindle plan of a compose-made stack\n{}",
        common::describe(&out)
    );
    let actions = plan_actions(&plan);
    assert!(
        !actions.iter().any(|(verb, _)| matches!(
            verb.as_str(),
            "create" | "recreate" | "resume-recreate" | "remove" | "restart"
        )),
        "containers Compose made from the same files are adopted as they are: {plan:#}"
    );

    let (out, result) = p.spindle_json(&["apply", "--format", "json"]);
    assert_exit(&out, 0, "spindle apply of a compose-made stack");
    assert_eq!(result["converged"], true, "{result:#}");
    assert_eq!(
        p.fingerprint(),
        before,
        "same containers, IDs and start times"
    );

    let out = p.spindle(&["plan"]);
    assert_exit(&out, 0, "spindle plan after adopting");
}

#[test]
fn a_service_removed_from_the_files_is_an_orphan_left_running_until_remove_orphans() {
    let p = TestProject::new("orphan", "plain");
    apply_ok(&p);
    let before = ids_by_service(&p, &PLAIN);

    let text = p.read("compose.yaml");
    let cut = text.find("\n  c:\n").expect("the plain stack defines c");
    p.write("compose.yaml", &text[..=cut]);

    let (out, plan) = p.spindle_json(&["plan", "--format", "json"]);
    assert!(
        matches!(out.status.code(), Some(0 | 2)),
        "spindle plan with an orphan\n{}",
        common::describe(&out)
    );
    let orphans = plan["orphans"].as_array().cloned().unwrap_or_default();
    assert_eq!(orphans.len(), 1, "{plan:#}");
    assert_eq!(orphans[0]["name"], p.container_name("c", 1), "{plan:#}");
    assert_eq!(orphans[0]["id"], before["c"].as_str(), "{plan:#}");
    assert_eq!(orphans[0]["service"], "c", "{plan:#}");
    assert!(
        !plan_actions(&plan).iter().any(|(verb, _)| verb == "remove"),
        "orphans are not removed unless asked: {plan:#}"
    );

    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "spindle apply without --remove-orphans");
    assert_eq!(
        ids_by_service(&p, &PLAIN),
        before,
        "the orphan is left running"
    );
    assert_eq!(p.inspect(&before["c"])["State"]["Running"], true);

    let out = p.spindle(&["apply", "--remove-orphans"]);
    assert_exit(&out, 0, "spindle apply --remove-orphans");
    assert!(
        p.try_inspect(&before["c"]).is_none(),
        "the orphan is removed"
    );
    assert_eq!(ids_by_service(&p, &["a", "b"]), {
        let mut kept = before.clone();
        kept.remove("c");
        kept
    });
    assert_eq!(p.containers().len(), 2, "{:?}", p.containers());

    let (_, plan) = p.spindle_json(&["plan", "--format", "json"]);
    assert_eq!(
        plan["orphans"].as_array().map(Vec::len),
        Some(0),
        "{plan:#}"
    );
}

/// Broken versions of the plain stack: (what is wrong, compose.yaml).
fn bad_inputs(good: &str) -> Vec<(&'static str, String)> {
    let edit = |from: &str, to: &str| {
        assert_eq!(good.matches(from).count(), 1, "{from:?} in the plain stack");
        good.replacen(from, to, 1)
    };
    vec![
        ("a YAML syntax error", edit("cpus: 0.5", "cpus: [0.5")),
        (
            "an unknown service in depends_on",
            edit(
                "  b:\n    image: spindle-test/busybox:1\n",
                "  b:\n    image: spindle-test/busybox:1\n    depends_on: [nosuch]\n",
            ),
        ),
        (
            "an unset required variable",
            edit(
                "  c:\n    image: spindle-test/busybox:1\n",
                "  c:\n    image: spindle-test/busybox:1\n    environment:\n      \
                 TOKEN: ${SPINDLE_IT_UNSET_TOKEN:?SPINDLE_IT_UNSET_TOKEN must be set}\n",
            ),
        ),
    ]
}

/// The spindle commands each bad input is fed to.
const BAD_INPUT_COMMANDS: [&[&str]; 4] = [
    &["plan"],
    &["plan", "--format", "json"],
    &["apply"],
    &["apply", "--remove-orphans", "--format", "json"],
];

#[test]
fn bad_input_exits_1_and_leaves_an_applied_project_untouched() {
    // SAFETY of the test: the variable is never set by this suite; make sure the environment does not either.
    assert!(std::env::var_os("SPINDLE_IT_UNSET_TOKEN").is_none());
    let p = TestProject::new("bad_input_applied", "plain");
    apply_ok(&p);
    let good = p.read("compose.yaml");
    let before = p.fingerprint();
    let networks = p.networks();
    let volumes = p.volumes();

    for (what, text) in bad_inputs(&good) {
        p.write("compose.yaml", &text);
        for args in BAD_INPUT_COMMANDS {
            let out = p.spindle(args);
            let context = format!("spindle {} with {what}", args.join(" "));
            assert_exit(&out, 1, &context);
            assert_no_panic(&out, &context);
            assert!(!out.stderr.is_empty(), "{context}: says what is wrong");
            assert_eq!(p.fingerprint(), before, "{context}: containers untouched");
            assert_eq!(p.networks(), networks, "{context}: networks untouched");
            assert_eq!(p.volumes(), volumes, "{context}: volumes untouched");
        }
    }

    // The good files still apply as a no-op.
    p.write("compose.yaml", &good);
    let out = p.spindle(&["plan"]);
    assert_exit(&out, 0, "spindle plan with the good files again");
}

#[test]
fn bad_input_exits_1_and_creates_nothing_for_a_project_never_applied() {
    assert!(std::env::var_os("SPINDLE_IT_UNSET_TOKEN").is_none());
    let p = TestProject::new("bad_input_new", "plain");
    let good = p.read("compose.yaml");

    for (what, text) in bad_inputs(&good) {
        p.write("compose.yaml", &text);
        for args in BAD_INPUT_COMMANDS {
            let out = p.spindle(args);
            let context = format!("spindle {} with {what}", args.join(" "));
            assert_exit(&out, 1, &context);
            assert_no_panic(&out, &context);
            assert_eq!(p.containers(), vec![], "{context}: no container");
            assert_eq!(p.networks(), Vec::<String>::new(), "{context}: no network");
            assert_eq!(p.volumes(), Vec::<String>::new(), "{context}: no volume");
        }
    }
}

#[test]
fn plan_exits_2_when_changes_are_pending_and_0_when_in_sync() {
    let p = TestProject::new("plan_exit", "plain");

    // Nothing exists yet: every service is to be created; planning itself creates nothing.
    let out = p.spindle(&["plan"]);
    assert_exit(&out, 2, "spindle plan of a new project");
    let (out, plan) = p.spindle_json(&["plan", "--format", "json"]);
    assert_exit(&out, 2, "spindle plan --format json of a new project");
    assert_eq!(plan["project"], p.name(), "{plan:#}");
    let actions = plan_actions(&plan);
    for service in PLAIN {
        assert!(
            actions.contains(&("create".to_string(), service.to_string())),
            "{service} is to be created: {plan:#}"
        );
    }
    for action in plan["actions"].as_array().into_iter().flatten() {
        assert!(
            action["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "every action says why: {action:#}"
        );
    }
    assert_eq!(p.containers(), vec![], "plan writes nothing");

    apply_ok(&p);
    let out = p.spindle(&["plan"]);
    assert_exit(&out, 0, "spindle plan in sync");
    let (out, plan) = p.spindle_json(&["plan", "--format", "json"]);
    assert_exit(&out, 0, "spindle plan --format json in sync");
    let mut in_sync: Vec<&str> = plan["in_sync"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    in_sync.sort();
    assert_eq!(in_sync, PLAIN.to_vec(), "{plan:#}");

    // A pending change: c gets an environment variable.
    let before = p.fingerprint();
    p.edit(
        "compose.yaml",
        "  c:\n    image: spindle-test/busybox:1\n",
        "  c:\n    image: spindle-test/busybox:1\n    environment:\n      CHANGED: \"yes\"\n",
    );
    let out = p.spindle(&["plan"]);
    assert_exit(&out, 2, "spindle plan with a pending change");
    assert!(!out.stdout.is_empty(), "the text plan shows the change");
    let (out, plan) = p.spindle_json(&["plan", "--format", "json"]);
    assert_exit(&out, 2, "spindle plan --format json with a pending change");
    let recreate_c = plan["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| common::action_verb(a) == "recreate" && common::action_service(a) == Some("c"))
        .unwrap_or_else(|| panic!("c is to be recreated: {plan:#}"));
    assert!(
        recreate_c["diff"]
            .as_str()
            .is_some_and(|d| d.contains("CHANGED")),
        "the diff shows the new variable: {recreate_c:#}"
    );
    assert_eq!(p.fingerprint(), before, "plan writes nothing");
}

/// Creates (without starting) a replacement for `old` as an interrupted recreate leaves it:
/// the same labels plus `io.spindle.replaces=<old id>`, named `name`.
fn fake_replacement(p: &TestProject, old: &str, name: &str) -> String {
    let info = p.inspect(old);
    let mut args: Vec<String> = vec!["create".into(), "--name".into(), name.into()];
    if let Some(labels) = info["Config"]["Labels"].as_object() {
        for (k, v) in labels {
            args.push("--label".into());
            args.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    args.push("--label".into());
    args.push(format!("io.spindle.replaces={old}"));
    args.push("--init".into());
    args.push("--network".into());
    args.push(format!("{}_default", p.name()));
    args.push("spindle-test/busybox:1".into());
    args.push("/usr/local/bin/idle".into());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = p.docker(&refs);
    assert!(out.status.success(), "{}", common::describe(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The containers of one service, by ID.
fn service_containers(p: &TestProject, service: &str) -> Vec<String> {
    let label = format!("label=com.docker.compose.service={service}");
    let project = format!("label=com.docker.compose.project={}", p.name());
    let out = p.docker(&[
        "ps",
        "-aq",
        "--no-trunc",
        "--filter",
        &project,
        "--filter",
        &label,
    ]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_recreate_interrupted_before_the_swap_is_undone_by_the_next_apply() {
    let p = TestProject::new("resume-undo", "plain");
    apply_ok(&p);
    let old = p.id_of("b");
    let next = format!("{}-next", p.container_name("b", 1));
    let new = fake_replacement(&p, &old, &next);

    let (out, plan) = p.spindle_json(&["plan", "--format", "json"]);
    assert_exit(&out, 2, "plan with a recreate in flight");
    assert!(
        plan_actions(&plan)
            .iter()
            .any(|(verb, svc)| verb == "resume_recreate" && svc == "b"),
        "{plan:#}"
    );

    apply_ok(&p);
    assert_eq!(
        service_containers(&p, "b"),
        vec![old.clone()],
        "one container for b #1, the old one"
    );
    assert!(
        p.try_inspect(&new).is_none(),
        "the unfinished replacement is gone"
    );
    assert_eq!(p.inspect(&old)["State"]["Running"], true);
    assert_eq!(
        p.inspect(&old)["Name"],
        format!("/{}", p.container_name("b", 1))
    );
    assert_exit(&p.spindle(&["plan"]), 0, "plan after the undo");
}

#[test]
fn a_recreate_interrupted_after_the_swap_is_finished_by_the_next_apply() {
    let p = TestProject::new("resume-finish", "plain");
    apply_ok(&p);
    let old = p.id_of("b");
    let name = p.container_name("b", 1);
    let new = fake_replacement(&p, &old, &format!("{name}-next"));
    // The swap went through: the old one stopped and set aside, the new one named and started.
    for args in [
        vec!["stop", "-t", "1", old.as_str()],
        vec!["rename", old.as_str()],
    ] {
        let mut args = args;
        let old_name = format!("{name}-old");
        if args[0] == "rename" {
            args.push(&old_name);
            let out = p.docker(&args);
            assert!(out.status.success(), "{}", common::describe(&out));
        } else {
            let out = p.docker(&args);
            assert!(out.status.success(), "{}", common::describe(&out));
        }
    }
    for args in [
        vec!["rename", new.as_str(), name.as_str()],
        vec!["start", new.as_str()],
    ] {
        let out = p.docker(&args);
        assert!(out.status.success(), "{}", common::describe(&out));
    }

    apply_ok(&p);
    assert_eq!(
        service_containers(&p, "b"),
        vec![new.clone()],
        "one container for b #1, the new one"
    );
    assert!(
        p.try_inspect(&old).is_none(),
        "the old container is removed"
    );
    assert_exit(&p.spindle(&["plan"]), 0, "plan after finishing");
}

#[test]
fn a_network_configuration_change_recreates_the_network_and_its_containers() {
    let p = TestProject::new("network-change", "plain");
    apply_ok(&p);
    let before = ids_by_service(&p, &PLAIN);
    let text = p.read("compose.yaml");
    p.write(
        "compose.yaml",
        &format!("{text}\nnetworks:\n  default:\n    labels:\n      com.example.tier: test\n"),
    );
    let (out, plan) = p.spindle_json(&["plan", "--format", "json"]);
    assert_exit(&out, 2, "plan after a network change");
    assert!(
        plan_actions(&plan)
            .iter()
            .any(|(verb, _)| verb == "recreate_network"),
        "{plan:#}"
    );
    apply_ok(&p);
    let net = format!("{}_default", p.name());
    let info = p.docker(&["network", "inspect", &net, "--format", "{{json .Labels}}"]);
    let labels: Value = serde_json::from_slice(&info.stdout).unwrap_or(Value::Null);
    assert_eq!(labels["com.example.tier"], "test", "{labels}");
    let after = ids_by_service(&p, &PLAIN);
    for s in PLAIN {
        assert_ne!(before[s], after[s], "{s} is recreated on the new network");
        let nets = p.inspect(&after[s])["NetworkSettings"]["Networks"].clone();
        assert!(nets.get(&net).is_some(), "{s} joined {net}: {nets}");
    }
    assert_exit(&p.spindle(&["plan"]), 0, "plan after the network change");
}

#[test]
fn a_floating_image_violates_the_pinning_policy_and_blocks_the_apply() {
    let p = TestProject::new("policy", "plain");
    p.edit(
        "compose.yaml",
        "  b:\n    image: spindle-test/busybox:1",
        "  b:\n    image: spindle-test/busybox",
    );
    let out = p.spindle(&["apply"]);
    assert_exit(&out, 1, "apply with a floating image");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("image_pinned"), "{text}");
    assert!(text.contains("services.b.image"), "{text}");
    assert!(
        p.containers().is_empty(),
        "nothing is created: {:?}",
        p.containers()
    );
}

#[test]
fn a_one_shot_that_finishes_before_its_gate_looks_counts_as_completed_and_its_dependent_starts() {
    let p = TestProject::new("one_shot", "plain");
    p.write(
        "compose.yaml",
        r#"services:
  migrate:
    image: spindle-test/busybox:1
    command: ["true"]
    restart: "no"
  app:
    image: spindle-test/busybox:1
    command: ["/usr/local/bin/idle"]
    init: true
    stop_grace_period: 1s
    depends_on:
      migrate:
        condition: service_completed_successfully
"#,
    );
    apply_ok(&p);
    let migrate = p.inspect(&p.container_name("migrate", 1));
    assert_eq!(
        migrate["State"]["Status"], "exited",
        "{:#}",
        migrate["State"]
    );
    assert_eq!(migrate["State"]["ExitCode"], 0);
    let app = p.inspect(&p.container_name("app", 1));
    assert_eq!(app["State"]["Running"], true, "{:#}", app["State"]);

    // The finished one-shot is not started again: the project is in sync.
    let (out, plan) = p.spindle_json(&["plan", "--format", "json"]);
    assert_exit(&out, 0, "spindle plan after apply");
    assert_eq!(plan_actions(&plan), vec![], "{plan:#}");
}
