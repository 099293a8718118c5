//! Pre-recreate hooks (`x-spindle.pre-recreate`) against the real Docker engine: exec and one-off hooks, blocking on failure and timeout, cleanup, redaction.
//!
//! Every test owns one compose project `spindle-h-hooks-*` built from `tests/fixtures/stacks/plain` with its
//! compose file replaced: a `db` service (offline busybox image, `init: true`, 1 s stop grace) with a named
//! volume `backup`, and an `app` that restarts with it (`depends_on: {db: {restart: true}}`).

mod common;

use std::time::Duration;

use common::{
    SpindleProcess, TestProject, action_service, action_verb, assert_exit, describe,
    evidence_records, files_containing, random_hex, state_dir, wait_for,
};
use serde_json::Value;

const PREFIX: &str = "spindle-h-hooks";

/// The stack with `hook` (YAML lines indented by 8 spaces) as `db`'s `x-spindle.pre-recreate`.
fn stack(hook: &str) -> String {
    format!(
        r#"services:
  db:
    image: spindle-test/busybox:1
    command: ["/usr/local/bin/idle"]
    init: true
    stop_grace_period: 1s
    cpus: 0.5
    environment:
      REV: "1"
      DB_PASSWORD: ${{DB_PASSWORD:-not-a-secret-here}}
    volumes:
      - backup:/backup
    x-spindle:
      pre-recreate:
{hook}
  app:
    image: spindle-test/busybox:1
    command: ["/usr/local/bin/idle"]
    init: true
    stop_grace_period: 1s
    depends_on:
      db:
        condition: service_started
        restart: true

volumes:
  backup: {{}}
"#
    )
}

/// A project with the stack, brought up (the first apply creates: no hook runs on a create).
fn project(test: &str, hook: &str) -> TestProject {
    let p = TestProject::with_prefix(PREFIX, test, "plain");
    p.write("compose.yaml", &stack(hook));
    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "the first spindle apply");
    p
}

/// Changes `db`'s environment, so that the next apply recreates it.
fn change_db(p: &TestProject) {
    p.edit("compose.yaml", "REV: \"1\"", "REV: \"2\"");
}

/// The result of the recreate of `service` in an apply (or evidence) `results` list.
fn recreate_result<'a>(results: &'a Value, service: &str) -> &'a Value {
    results
        .as_array()
        .and_then(|rs| {
            rs.iter().find(|r| {
                action_verb(&r["action"]) == "recreate"
                    && action_service(&r["action"]) == Some(service)
            })
        })
        .unwrap_or_else(|| panic!("no recreate of {service} in {results:#}"))
}

/// IDs of the containers carrying spindle's hook label in this project.
fn one_off_containers(p: &TestProject) -> Vec<String> {
    let out = p.docker(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        &format!("label=com.docker.compose.project={}", p.name()),
        "--filter",
        "label=io.spindle.hook",
    ]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn running(p: &TestProject, container: &str) -> bool {
    p.inspect(container)["State"]["Running"].as_bool() == Some(true)
}

#[test]
fn a_succeeding_exec_hook_writes_its_artifact_and_the_recreate_proceeds() {
    let p = project(
        "exec_ok",
        r#"        exec: echo dumped-by-hook > "$$SPINDLE_ARTIFACT" && echo wrote "$$SPINDLE_ARTIFACT"
        timeout: 30s
        artifact: /backup/{service}-{timestamp}.sql"#,
    );
    let old_db = p.id_of("db");
    let old_app = p.id_of("app");
    change_db(&p);

    let (out, report) = p.spindle_json(&["apply", "--format", "json"]);
    assert_exit(&out, 0, "spindle apply with a succeeding exec hook");
    let r = recreate_result(&report["results"], "db");
    assert_eq!(r["outcome"], "ok", "{r:#}");
    let hook = &r["hook"];
    assert_eq!(hook["mode"], "exec", "{hook:#}");
    assert_eq!(hook["outcome"], "ok", "{hook:#}");
    assert_eq!(hook["exit_code"], 0, "{hook:#}");
    let artifact = hook["artifact"].as_str().unwrap_or_default().to_string();
    assert!(
        artifact.starts_with("/backup/db-") && artifact.ends_with("Z.sql"),
        "{hook:#}"
    );
    assert!(
        hook["output_tail"]
            .as_str()
            .is_some_and(|t| t.contains(&format!("wrote {artifact}"))),
        "{hook:#}"
    );

    // The recreate happened, and the artifact is in the volume the new container sees.
    let new_db = p.id_of("db");
    assert_ne!(new_db, old_db);
    assert_ne!(p.id_of("app"), old_app, "app restarts with db");
    let cat = p.docker(&["exec", &p.container_name("db", 1), "cat", &artifact]);
    assert_exit(&cat, 0, "cat of the artifact in the new container");
    assert_eq!(
        String::from_utf8_lossy(&cat.stdout).trim(),
        "dumped-by-hook"
    );
}

#[test]
fn a_succeeding_one_off_hook_gets_the_service_volumes_and_is_removed_afterwards() {
    let p = project(
        "run_ok",
        r#"        run: echo from-one-off > /backup/one-off-$$SPINDLE_HOOK_TIMESTAMP.txt
        timeout: 30s"#,
    );
    let old_db = p.id_of("db");
    let old_image = p.inspect(&old_db)["Image"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    change_db(&p);

    let (out, report) = p.spindle_json(&["apply", "--format", "json"]);
    assert_exit(&out, 0, "spindle apply with a succeeding one-off hook");
    let hook = &recreate_result(&report["results"], "db")["hook"];
    assert_eq!(hook["mode"], "run", "{hook:#}");
    assert_eq!(hook["outcome"], "ok", "{hook:#}");
    assert_eq!(
        hook["container"],
        format!("{}-db-pre-recreate", p.name()),
        "{hook:#}"
    );
    assert_eq!(
        hook["image"],
        old_image.as_str(),
        "the service's current image"
    );
    assert_ne!(p.id_of("db"), old_db);

    let ls = p.docker(&["exec", &p.container_name("db", 1), "ls", "/backup"]);
    assert_exit(&ls, 0, "ls /backup in the new container");
    let listing = String::from_utf8_lossy(&ls.stdout).to_string();
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("one-off-") && l.ends_with("Z.txt")),
        "{listing}"
    );
    assert!(
        one_off_containers(&p).is_empty(),
        "the one-off container is removed"
    );
    // The one-off container never shows up as the project's state.
    let plan = p.spindle(&["plan"]);
    assert_exit(&plan, 0, "spindle plan after the hook");
}

#[test]
fn a_one_off_hook_with_declared_volumes_writes_to_a_host_folder() {
    let p = project(
        "run_bind",
        r#"        run: ["sh", "-c", "echo archived > /out/archive-$$SPINDLE_SERVICE.txt"]
        image: spindle-test/busybox:1
        volumes: ["./out:/out", "backup:/backup:ro"]
        networks: true
        artifact: ./out/archive-{service}.txt"#,
    );
    std::fs::create_dir_all(p.path("out")).expect("the out folder can be created");
    change_db(&p);

    let (out, report) = p.spindle_json(&["apply", "--format", "json"]);
    assert_exit(&out, 0, "spindle apply with a bind-mounted one-off hook");
    let hook = &recreate_result(&report["results"], "db")["hook"];
    assert_eq!(hook["outcome"], "ok", "{hook:#}");
    assert_eq!(hook["artifact"], "./out/archive-db.txt", "{hook:#}");
    assert_eq!(p.read("out/archive-db.txt").trim(), "archived");
    assert!(one_off_containers(&p).is_empty());
}

#[test]
fn a_failed_hook_blocks_the_recreate_and_its_dependents() {
    let p = project(
        "exec_fails",
        r#"        exec: echo cannot dump; exit 1
        timeout: 30s"#,
    );
    let before = p.fingerprint();
    change_db(&p);

    let out = p.spindle(&["apply"]);
    assert_exit(&out, 1, "spindle apply with a failing hook");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("pre-recreate hook (exec) of service db failed: exited with code 1"),
        "{}",
        describe(&out)
    );
    // Nothing changed: same containers, same start times, still running.
    assert_eq!(p.fingerprint(), before);
    assert!(running(&p, &p.container_name("db", 1)));

    let (out, report) = p.spindle_json(&["apply", "--format", "json"]);
    assert_exit(&out, 1, "spindle apply --format json with a failing hook");
    let r = recreate_result(&report["results"], "db");
    assert_eq!(r["outcome"], "failed", "{r:#}");
    assert_eq!(r["hook"]["outcome"], "failed", "{r:#}");
    assert_eq!(r["hook"]["exit_code"], 1, "{r:#}");
    assert!(
        r["hook"]["output_tail"]
            .as_str()
            .is_some_and(|t| t.contains("cannot dump")),
        "{r:#}"
    );
    let app = recreate_result(&report["results"], "app");
    assert_eq!(app["outcome"], "skipped", "{app:#}");
    assert_eq!(p.fingerprint(), before);
}

#[test]
fn a_timed_out_one_off_hook_blocks_the_recreate_and_leaves_no_container_behind() {
    let p = project(
        "run_timeout",
        r#"        run: sleep 41
        timeout: 1s"#,
    );
    let before = p.fingerprint();
    change_db(&p);

    let out = p.spindle(&["apply"]);
    assert_exit(&out, 1, "spindle apply with a timing-out one-off hook");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("pre-recreate hook (run) of service db timed out after 1s"),
        "{}",
        describe(&out)
    );
    assert_eq!(p.fingerprint(), before);
    assert!(
        one_off_containers(&p).is_empty(),
        "the one-off container is removed"
    );
}

#[test]
fn a_timed_out_exec_hook_is_killed_inside_the_old_container() {
    let p = project(
        "exec_timeout",
        // 5 s, not 1 s: on a loaded machine the exec's shell may not have reported the hook's
        // process ID within 1 s, and a hook whose PID is unknown cannot be killed.
        r#"        exec: ["sleep", "43"]
        timeout: 5s"#,
    );
    let before = p.fingerprint();
    change_db(&p);

    let out = p.spindle(&["apply"]);
    assert_exit(&out, 1, "spindle apply with a timing-out exec hook");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("timed out after 5s and was killed"),
        "{}",
        describe(&out)
    );
    assert_eq!(p.fingerprint(), before);
    let db = p.container_name("db", 1);
    wait_for(
        "the hook's sleep to be gone",
        Duration::from_secs(10),
        || {
            let ps = p.docker(&["exec", &db, "ps", "-o", "args"]);
            (!String::from_utf8_lossy(&ps.stdout).contains("sleep 43")).then_some(())
        },
    );
}

#[test]
fn no_hook_runs_on_a_create_an_in_place_update_or_a_no_op() {
    // A hook that would fail: any run of it makes the apply fail.
    let p = project(
        "not_run",
        r#"        exec: exit 1
        timeout: 5s"#,
    );
    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "a no-op apply");

    // A live limit changes in place.
    p.edit("compose.yaml", "cpus: 0.5", "cpus: 0.25");
    let (out, report) = p.spindle_json(&["apply", "--format", "json"]);
    assert_exit(&out, 0, "an in-place update");
    let results = report["results"].as_array().cloned().unwrap_or_default();
    assert!(
        results
            .iter()
            .any(|r| action_verb(&r["action"]) == "update"),
        "{report:#}"
    );
    assert!(
        results.iter().all(|r| r.get("hook").is_none()),
        "{report:#}"
    );

    // A removed container is created again, without the hook.
    let rm = p.docker(&["rm", "-f", &p.container_name("db", 1)]);
    assert_exit(&rm, 0, "docker rm -f db");
    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "an apply that creates db again");
}

#[test]
fn the_evidence_of_spindle_run_records_the_hook_with_its_output_redacted() {
    let p = TestProject::with_prefix(PREFIX, "evidence", "plain");
    let password = format!("hook-secret-{}", random_hex(16));
    p.write(".env", &format!("DB_PASSWORD={password}\n"));
    p.write(
        "compose.yaml",
        &stack(
            r#"        exec: echo "dumping with $$DB_PASSWORD" && echo ok > "$$SPINDLE_ARTIFACT"
        timeout: 30s
        artifact: /backup/{project}-{timestamp}.txt"#,
        ),
    );
    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "the first spindle apply");
    let old_db = p.id_of("db");
    change_db(&p);

    let state = state_dir();
    let mut run: SpindleProcess = p.spawn_run(state.path(), &[]);
    let record = wait_for(
        "an evidence record with the hook",
        Duration::from_secs(60),
        || {
            evidence_records(state.path()).into_iter().find(|r| {
                r["results"]
                    .as_array()
                    .is_some_and(|rs| rs.iter().any(|x| x.get("hook").is_some()))
            })
        },
    );
    run.terminate(Duration::from_secs(30));

    assert_eq!(record["outcome"], "converged", "{record:#}");
    let hook = &recreate_result(&record["results"], "db")["hook"];
    assert_eq!(hook["outcome"], "ok", "{hook:#}");
    let artifact = hook["artifact"].as_str().unwrap_or_default();
    assert!(
        artifact.starts_with(&format!("/backup/{}-", p.name())),
        "{hook:#}"
    );
    let tail = hook["output_tail"].as_str().unwrap_or_default();
    assert!(tail.contains("dumping with <redacted>"), "{hook:#}");
    assert!(!record.to_string().contains(&password));
    assert!(
        files_containing(state.path(), &password).is_empty(),
        "the secret reached the state dir"
    );
    assert_ne!(p.id_of("db"), old_db);
}

#[test]
fn a_malformed_hook_is_refused_at_load_time_with_its_key_path_and_nothing_changes() {
    let p = project(
        "bad_input",
        r#"        exec: "true"
        timeout: 5s"#,
    );
    let before = p.fingerprint();
    let cases = [
        (
            "        exec: \"true\"\n        timeout: soon",
            "services.db.x-spindle.pre-recreate.timeout",
            "not a duration",
        ),
        (
            "        exec: \"true\"\n        image: other:1",
            "services.db.x-spindle.pre-recreate.image",
            "only allowed with run",
        ),
        (
            "        run: \"true\"\n        volumes: [\"undeclared:/x\"]",
            "services.db.x-spindle.pre-recreate.volumes[0]",
            "not declared",
        ),
        (
            "        exec: \"true\"\n        timeoutt: 5s",
            "services.db.x-spindle.pre-recreate.timeoutt",
            "unknown key",
        ),
    ];
    for (hook, path, words) in cases {
        p.write("compose.yaml", &stack(hook));
        change_db(&p);
        let out = p.spindle(&["apply"]);
        assert_exit(&out, 1, &format!("spindle apply with {hook:?}"));
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            stderr.contains(path) && stderr.contains(words),
            "{hook:?}: {}",
            describe(&out)
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // A typo in the extension's own keys is refused too.
    p.write(
        "compose.yaml",
        &stack("        exec: \"true\"").replace("pre-recreate:", "pre-recrate:"),
    );
    let out = p.spindle(&["apply"]);
    assert_exit(&out, 1, "spindle apply with x-spindle.pre-recrate");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("x-spindle.pre-recrate is not a spindle setting"),
        "{}",
        describe(&out)
    );
    assert_eq!(p.fingerprint(), before, "nothing changed on the host");
}

#[test]
fn a_shutdown_interrupts_a_running_one_off_hook_removes_its_container_and_keeps_the_old_one() {
    let p = project(
        "shutdown",
        r#"        run: sleep 120
        timeout: 5m"#,
    );
    let before = p.fingerprint();
    change_db(&p);

    let state = state_dir();
    let mut run: SpindleProcess = p.spawn_run(state.path(), &[]);
    wait_for(
        "the one-off hook container to run",
        Duration::from_secs(60),
        || {
            one_off_containers(&p)
                .first()
                .filter(|id| running(&p, id))
                .cloned()
        },
    );
    run.terminate(Duration::from_secs(60));

    assert!(
        one_off_containers(&p).is_empty(),
        "the one-off container is removed"
    );
    assert_eq!(p.fingerprint(), before, "the old containers are untouched");
    let records = evidence_records(state.path());
    let last = records
        .last()
        .unwrap_or_else(|| panic!("no evidence record"));
    let hook = &recreate_result(&last["results"], "db")["hook"];
    assert_eq!(hook["outcome"], "interrupted", "{last:#}");
    assert_eq!(last["outcome"], "failed", "{last:#}");
}

#[test]
fn a_hook_runs_once_for_a_service_with_two_replicas() {
    let p = TestProject::with_prefix(PREFIX, "replicas", "plain");
    p.write(
        "compose.yaml",
        &stack(
            r#"        exec: echo "ran in $$HOSTNAME" >> /backup/runs.txt
        timeout: 30s"#,
        )
        .replace("cpus: 0.5", "cpus: 0.5\n    scale: 2"),
    );
    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "the first spindle apply");
    let before = p.fingerprint();
    change_db(&p);

    let (out, report) = p.spindle_json(&["apply", "--format", "json"]);
    assert_exit(&out, 0, "spindle apply of two replicas with a hook");
    let recreates: Vec<&Value> = report["results"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter(|r| {
                    action_verb(&r["action"]) == "recreate"
                        && action_service(&r["action"]) == Some("db")
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(recreates.len(), 2, "{report:#}");
    // Both recreates carry the one run's record.
    assert_eq!(recreates[0]["hook"], recreates[1]["hook"], "{report:#}");
    assert_eq!(recreates[0]["hook"]["outcome"], "ok", "{report:#}");
    for n in [1, 2] {
        let name = p.container_name("db", n);
        assert_ne!(p.ids().get(&name), before.get(&name).map(|b| &b.0));
    }
    let cat = p.docker(&[
        "exec",
        &p.container_name("db", 1),
        "cat",
        "/backup/runs.txt",
    ]);
    assert_exit(&cat, 0, "cat /backup/runs.txt");
    assert_eq!(
        String::from_utf8_lossy(&cat.stdout).lines().count(),
        1,
        "the hook ran once: {}",
        String::from_utf8_lossy(&cat.stdout)
    );
}
