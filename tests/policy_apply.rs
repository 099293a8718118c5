//! Policies enforced end to end on the real engine: each violation of a policy in mode `enforce` blocks `spindle apply` (exit 1, named, nothing created) and a blocked `spindle run` reconcile is in the evidence; allowlisted variants apply; a violation in mode `warn` (ports on all interfaces by default) applies and is shown in plan, apply, status and the evidence.

mod common;

use std::process::Output;
use std::time::Duration;

use common::{
    TestProject, assert_exit, assert_no_panic, docker, evidence_records, state_dir, wait_for,
};
use serde_json::Value;

const PREFIX: &str = "spindle-h-ops";

/// A one-service stack on `image`, with `extra` appended to the service (indented 4 spaces).
fn stack(image: &str, extra: &str) -> String {
    format!(
        "services:\n  web:\n    image: {image}\n    command: [\"/usr/local/bin/serve\", \"8000\"]\n    \
         init: true\n    stop_grace_period: 1s\n{extra}"
    )
}

fn project(test: &str) -> TestProject {
    TestProject::with_prefix(PREFIX, test, "plain")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `spindle apply` exits 1 naming the policy and the key path, and the project has nothing on the host.
#[track_caller]
fn assert_blocked(p: &TestProject, policy: &str, path: &str) -> String {
    let out = p.spindle(&["apply"]);
    assert_no_panic(&out, "spindle apply");
    assert_exit(&out, 1, "spindle apply of a stack that violates a policy");
    let all = text(&out);
    assert!(
        all.contains(&format!("policy {policy}: {path}:")),
        "the violation is named as `policy {policy}: {path}: …`:\n{all}"
    );
    assert!(
        p.containers().is_empty(),
        "no container was created:\n{all}"
    );
    assert!(p.networks().is_empty(), "no network was created:\n{all}");
    assert!(p.volumes().is_empty(), "no volume was created:\n{all}");
    // `plan` says the same and exits 1 too.
    let out = p.spindle(&["plan"]);
    assert_exit(&out, 1, "spindle plan of a stack that violates a policy");
    assert!(text(&out).contains(&format!("policy {policy}: {path}:")));
    all
}

#[track_caller]
fn assert_applies(p: &TestProject) {
    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "spindle apply of the allowlisted variant");
    assert!(
        p.is_running(&p.container_name("web", 1)),
        "web runs:\n{}",
        text(&out)
    );
}

/// Removes a tag (or network) made for one test, also after a failure.
struct Cleanup(Vec<Vec<String>>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for args in &self.0 {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let _ = docker(&args);
        }
    }
}

#[test]
fn a_floating_image_blocks_apply_until_it_is_allowlisted() {
    let p = project("policy-floating");
    // A floating reference that exists locally: a tag of the test image made for this test only.
    let floating = format!("{}-img", p.name());
    let tagged = docker(&[
        "tag",
        "spindle-test/busybox:1",
        &format!("{floating}:latest"),
    ]);
    assert!(tagged.status.success(), "docker tag");
    let _cleanup = Cleanup(vec![vec!["rmi".into(), format!("{floating}:latest")]]);

    for (image, why) in [
        (floating.clone(), "no tag, which means latest"),
        (format!("{floating}:latest"), "tag latest"),
    ] {
        p.write("compose.yaml", &stack(&image, ""));
        let out = assert_blocked(&p, "image_pinned", "services.web.image");
        assert!(out.contains(why), "{out}");
        assert!(
            out.contains("allow_floating"),
            "says how to allow it: {out}"
        );
    }

    p.write(
        "spindle.yaml",
        &format!(
            "policies:\n  images:\n    allow_floating:\n      - image: {floating}:latest\n        \
             reason: a local build, re-tagged on purpose\n"
        ),
    );
    assert_applies(&p);
}

#[test]
fn an_external_network_blocks_apply_until_it_is_allowlisted() {
    let p = project("policy-external");
    let external = format!("{}-foreign", p.name());
    let networks = format!("networks:\n  edge:\n    external: true\n    name: {external}\n");
    let compose = stack("spindle-test/busybox:1", "    networks: [edge]\n") + &networks;
    p.write("compose.yaml", &compose);
    // Blocked before the network exists, and after it does: the policy never depends on the host.
    let out = assert_blocked(&p, "external_network", "networks.edge");
    assert!(out.contains(&external), "{out}");

    let made = docker(&["network", "create", &external]);
    assert!(made.status.success(), "docker network create");
    let _cleanup = Cleanup(vec![vec!["network".into(), "rm".into(), external.clone()]]);
    assert_blocked(&p, "external_network", "networks.edge");
    assert!(p.containers().is_empty());

    p.write(
        "spindle.yaml",
        &format!(
            "policies:\n  networks:\n    allow_external:\n      - name: {external}\n        \
             reason: the shared proxy network, meant for attaching\n"
        ),
    );
    assert_applies(&p);
    let attached = p.inspect(&p.container_name("web", 1));
    assert!(
        attached["NetworkSettings"]["Networks"]
            .get(&external)
            .is_some(),
        "web is attached to {external}"
    );
    // The container must go before the network it uses can be removed by the cleanup.
    let _ = docker(&["rm", "-f", &p.container_name("web", 1)]);
}

#[test]
fn a_real_looking_secret_in_env_example_blocks_apply_without_being_printed() {
    let p = project("policy-secret");
    let secret = format!("Zq7-{}-pX4", common::random_hex(12));
    p.write(
        "compose.yaml",
        &stack(
            "spindle-test/busybox:1",
            "    environment:\n      DB_PASSWORD: ${DB_PASSWORD}\n",
        ),
    );
    p.write(".env.example", &format!("DB_PASSWORD={secret}\n"));
    p.write(".env", "DB_PASSWORD=the-host-value-1\n");
    let out = assert_blocked(&p, "env_example_secret", ".env.example:DB_PASSWORD");
    assert!(
        !out.contains(&secret),
        "the secret value is never printed:\n{out}"
    );

    p.write(".env.example", "DB_PASSWORD=changeme\n");
    assert_applies(&p);
}

/// A TCP port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// The `warnings` of the project's last evidence record.
fn last_warnings(p: &TestProject) -> Vec<String> {
    let records = evidence_records(p.state_dir());
    let last = records.last().cloned().unwrap_or(Value::Null);
    let warnings: Vec<String> = last["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w.as_str().map(str::to_string))
        .collect();
    // The plan leaves out an empty `warnings`.
    let planned = last["plan"]
        .get("warnings")
        .cloned()
        .unwrap_or_else(|| serde_json::json!([]));
    assert_eq!(
        planned,
        serde_json::json!(warnings),
        "the plan in the record holds the same warnings: {last:#}"
    );
    warnings
}

#[test]
fn a_port_on_all_interfaces_applies_with_a_warning_by_default_and_blocks_in_mode_enforce() {
    let p = project("policy-port");
    let port = free_port();
    p.write(
        "compose.yaml",
        &stack(
            "spindle-test/busybox:1",
            &format!("    ports: [\"{port}:8000\"]\n"),
        ),
    );
    let warning = "policy port_binding: services.web.ports[0]:";

    // Mode enforce: blocked, whether not allowlisted or allowlisted for another port.
    p.write("spindle.yaml", "policies:\n  ports:\n    mode: enforce\n");
    let out = assert_blocked(&p, "port_binding", "services.web.ports[0]");
    assert!(
        out.contains(&format!("127.0.0.1:{port}")),
        "says how to bind it: {out}"
    );
    p.write(
        "spindle.yaml",
        &format!(
            "policies:\n  ports:\n    mode: enforce\n    allow_all_interfaces:\n      - service: web\n        \
             port: {}\n        reason: not this one\n",
            port.wrapping_add(1)
        ),
    );
    assert_blocked(&p, "port_binding", "services.web.ports[0]");

    // The default (no spindle.yaml): the plan shows the warning, in text and JSON, and is not blocked.
    std::fs::remove_file(p.path("spindle.yaml")).unwrap_or_else(|e| panic!("rm: {e}"));
    let out = p.spindle(&["plan"]);
    assert_exit(
        &out,
        2,
        "spindle plan of a stack with a warning: changes pending",
    );
    assert!(
        text(&out).contains(&format!("  warning: {warning}")) && !text(&out).contains("blocked"),
        "{}",
        text(&out)
    );
    let (out, plan) = p.spindle_json(&["plan", "--format", "json"]);
    assert_exit(&out, 2, "spindle plan --format json");
    assert_eq!(plan["blockers"], serde_json::json!([]), "{plan:#}");
    assert!(
        plan["warnings"][0]
            .as_str()
            .is_some_and(|w| w.starts_with(warning)),
        "{plan:#}"
    );
    // … apply converges, says so, and the evidence records it.
    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "spindle apply of a stack with a warning");
    assert!(
        text(&out).contains(&format!("warning: {warning}")),
        "{}",
        text(&out)
    );
    assert!(p.is_running(&p.container_name("web", 1)));
    let warnings = last_warnings(&p);
    assert!(
        warnings.len() == 1 && warnings[0].starts_with(warning),
        "{warnings:?}"
    );
    assert_eq!(
        evidence_records(p.state_dir())
            .last()
            .map(|r| r["outcome"].clone()),
        Some(Value::from("converged"))
    );
    // … and `spindle status` (computed offline here) shows it.
    let (out, status) = p.spindle_json(&[
        "status",
        "--api",
        "127.0.0.1:9",
        "--format",
        "json",
        "--state-dir",
        &p.state_dir().to_string_lossy(),
    ]);
    assert_exit(&out, 0, "spindle status");
    assert_eq!(status["source"], "offline", "{status:#}");
    assert!(
        status["warnings"][0]
            .as_str()
            .is_some_and(|w| w.starts_with(warning)),
        "{status:#}"
    );
    let out = p.spindle(&["status", "--api", "127.0.0.1:9"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("warning: {warning}")),
        "{}",
        text(&out)
    );

    // Allowlisted for this port, even in mode enforce: no warning, nothing blocked.
    p.write(
        "spindle.yaml",
        &format!(
            "policies:\n  ports:\n    mode: enforce\n    allow_all_interfaces:\n      - service: web\n        \
             port: {port}\n        reason: public entry point\n"
        ),
    );
    assert_applies(&p);
    assert!(last_warnings(&p).is_empty());

    // Bound to one address instead, no allowlist needed: the change applies (a recreate).
    std::fs::remove_file(p.path("spindle.yaml")).unwrap_or_else(|e| panic!("rm: {e}"));
    p.write(
        "compose.yaml",
        &stack(
            "spindle-test/busybox:1",
            &format!("    ports: [\"127.0.0.1:{port}:8000\"]\n"),
        ),
    );
    assert_applies(&p);
    assert!(last_warnings(&p).is_empty());
}

#[test]
fn a_floating_image_applies_in_mode_warn_with_the_warning_recorded() {
    let p = project("policy-floating-warn");
    // A floating reference that exists locally: a tag of the test image made for this test only.
    let floating = format!("{}-img", p.name());
    let tagged = docker(&[
        "tag",
        "spindle-test/busybox:1",
        &format!("{floating}:latest"),
    ]);
    assert!(tagged.status.success(), "docker tag");
    let _cleanup = Cleanup(vec![vec!["rmi".into(), format!("{floating}:latest")]]);
    p.write("compose.yaml", &stack(&floating, ""));
    // Blocked by default (mode enforce) …
    assert_blocked(&p, "image_pinned", "services.web.image");
    // … and applied with `mode: warn`, the violation recorded as a warning.
    p.write("spindle.yaml", "policies:\n  images:\n    mode: warn\n");
    assert_applies(&p);
    let warnings = last_warnings(&p);
    assert!(
        warnings.len() == 1
            && warnings[0].starts_with("policy image_pinned: services.web.image:")
            && warnings[0].contains("no tag, which means latest"),
        "{warnings:?}"
    );
}

#[test]
fn an_unknown_policy_mode_fails_the_load_naming_the_key_path() {
    let p = project("policy-bad-mode");
    p.write("compose.yaml", &stack("spindle-test/busybox:1", ""));
    p.write("spindle.yaml", "policies:\n  ports:\n    mode: audit\n");
    for cmd in ["plan", "apply"] {
        let out = p.spindle(&[cmd]);
        assert_no_panic(&out, cmd);
        assert!(!out.status.success(), "{cmd} refuses: {}", text(&out));
        let all = text(&out);
        assert!(
            all.contains("spindle.yaml")
                && all.contains("policies.ports.mode")
                && all.contains("`enforce`")
                && all.contains("`warn`"),
            "{cmd}: the error names the file, the key path and the modes (never the value):\n{all}"
        );
    }
    assert!(p.containers().is_empty(), "nothing was created");
}

#[test]
fn a_blocked_reconcile_of_spindle_run_is_recorded_with_its_violation() {
    let p = project("policy-run");
    let state = state_dir();
    p.write("compose.yaml", &stack("spindle-test/busybox", ""));
    let run = p.spawn_run(state.path(), &["--resync", "1s"]);
    let record = wait_for(
        "an evidence record of the blocked reconcile",
        Duration::from_secs(60),
        || {
            evidence_records(state.path())
                .into_iter()
                .find(|r| r["outcome"] == "blocked")
        },
    );
    let error = record["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("policy image_pinned: services.web.image:"),
        "the record names the violation: {record:#}"
    );
    assert!(p.containers().is_empty(), "nothing was created");
    assert!(p.networks().is_empty(), "nothing was created");

    // `spindle evidence show` prints the same record.
    let id = record["id"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            panic!("the record has an id: {record:#}");
        });
    let out = p.spindle(&[
        "evidence",
        "show",
        &id,
        "--state-dir",
        &state.path().to_string_lossy(),
    ]);
    assert_exit(&out, 0, "spindle evidence show");
    let shown: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("evidence show prints JSON ({e})"));
    assert_eq!(shown["outcome"], "blocked");
    assert_eq!(shown["error"], record["error"]);
    drop(run);
}

/// Project prefix of the tests of the evidence `spindle apply` writes.
const APPLYEV: &str = "spindle-h-applyev";

/// The records in the project's state dir (`SPINDLE_STATE_DIR` of `p.spindle`).
fn records(p: &TestProject) -> Vec<Value> {
    evidence_records(p.state_dir())
}

#[track_caller]
fn assert_cli_trigger(record: &Value) {
    let trigger = &record["triggers"][0];
    assert_eq!(trigger["kind"], "cli", "{record:#}");
    assert_eq!(trigger["command"], "apply", "{record:#}");
}

#[test]
fn a_blocked_apply_writes_a_record_with_outcome_blocked_and_the_violation() {
    let p = TestProject::with_prefix(APPLYEV, "blocked", "plain");
    p.write("compose.yaml", &stack("spindle-test/busybox", ""));
    assert_blocked(&p, "image_pinned", "services.web.image");
    let records = records(&p);
    assert_eq!(records.len(), 1, "one record per apply: {records:#?}");
    let record = &records[0];
    assert_cli_trigger(record);
    assert_eq!(record["kind"], "reconcile", "{record:#}");
    assert_eq!(record["project"], p.name(), "{record:#}");
    assert_eq!(record["outcome"], "blocked", "{record:#}");
    let error = record["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("policy image_pinned: services.web.image:"),
        "the record names the violation: {record:#}"
    );
    assert_eq!(record["writes"], serde_json::json!([]), "{record:#}");
}

#[test]
fn a_successful_apply_records_its_actions_and_never_the_secret_from_env() {
    let p = TestProject::with_prefix(APPLYEV, "converged", "plain");
    let password = format!("applyev-secret-{}", common::random_hex(16));
    p.write(".env", &format!("DB_PASSWORD={password}\n"));
    p.write(
        "compose.yaml",
        &stack(
            "spindle-test/busybox:1",
            "    environment:\n      DB_PASSWORD: ${DB_PASSWORD}\n",
        ),
    );
    assert_applies(&p);
    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "a second apply, in sync");

    let records = records(&p);
    assert_eq!(records.len(), 2, "one record per apply: {records:#?}");
    let (first, second) = (&records[0], &records[1]);
    assert_cli_trigger(first);
    assert_eq!(first["outcome"], "converged", "{first:#}");
    let results = first["results"].as_array().cloned().unwrap_or_default();
    assert!(
        !results.is_empty() && results.iter().all(|r| r["outcome"] == "ok"),
        "the actions and their results are recorded: {first:#}"
    );
    assert!(
        first["writes"].as_array().is_some_and(|w| !w.is_empty()),
        "the engine writes are recorded: {first:#}"
    );
    assert_eq!(first["services"]["web"]["state"], "ready", "{first:#}");
    assert!(first["revision"]["inputs_sha256"].is_string(), "{first:#}");
    assert_eq!(second["outcome"], "in-sync", "{second:#}");
    assert_eq!(second["prev_hash"], first["hash"], "one chain");
    assert!(
        common::files_containing(p.state_dir(), &password).is_empty(),
        "the secret reached the evidence"
    );

    // `spindle run` appends to the same log: the mixed chain verifies.
    let mut run = p.spawn_run(p.state_dir(), &["--resync", "1s"]);
    wait_for(
        "a record of spindle run after the apply records",
        Duration::from_secs(60),
        || records_after_cli(&evidence_records(p.state_dir())).then_some(()),
    );
    run.terminate(Duration::from_secs(30));
    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "an apply after run");
    let out = p.spindle(&[
        "evidence",
        "verify",
        "--state-dir",
        &p.state_dir().to_string_lossy(),
    ]);
    assert_exit(&out, 0, "spindle evidence verify of apply and run records");
    assert!(
        common::files_containing(p.state_dir(), &password).is_empty(),
        "the secret reached the evidence"
    );
}

/// True when a record of `spindle run` (a trigger that is not `cli`) follows the apply records.
fn records_after_cli(records: &[Value]) -> bool {
    records
        .iter()
        .any(|r| r["triggers"][0]["kind"] != "cli" && r["outcome"].is_string())
}

#[test]
fn an_unwritable_state_dir_fails_the_apply_before_anything_is_created() {
    let p = TestProject::with_prefix(APPLYEV, "unwritable", "plain");
    p.write("compose.yaml", &stack("spindle-test/busybox:1", ""));
    // A file where the state dir should be: not creatable, even for root.
    let blocker = p.state_dir().join("not-a-dir");
    std::fs::write(&blocker, "x").expect("write a file");
    let out = p.spindle(&["apply", "--state-dir", &blocker.to_string_lossy()]);
    assert_no_panic(&out, "spindle apply");
    assert_exit(&out, 1, "spindle apply with an unwritable state dir");
    let all = text(&out);
    assert!(
        all.contains(&blocker.join("evidence").display().to_string())
            && all.contains("--state-dir")
            && all.contains("SPINDLE_STATE_DIR"),
        "the error names the directory and how to choose another:\n{all}"
    );
    assert!(
        p.containers().is_empty(),
        "no container was created:\n{all}"
    );
    assert!(p.networks().is_empty(), "no network was created:\n{all}");

    // The documented escape hatch applies without a record.
    let out = p.spindle(&["apply", "--no-evidence"]);
    assert_exit(&out, 0, "spindle apply --no-evidence");
    assert!(records(&p).is_empty(), "--no-evidence writes no record");
}

#[test]
fn an_apply_of_another_project_appends_to_the_log_a_running_spindle_run_writes() {
    let a = TestProject::with_prefix(APPLYEV, "shared-run", "plain");
    let b = TestProject::with_prefix(APPLYEV, "shared-apply", "plain");
    for p in [&a, &b] {
        p.write("compose.yaml", &stack("spindle-test/busybox:1", ""));
    }
    let state = a.state_dir().to_string_lossy().into_owned();
    let mut run = a.spawn_run(a.state_dir(), &["--resync", "1s"]);
    wait_for("a record of spindle run", Duration::from_secs(60), || {
        records_after_cli(&records(&a)).then_some(())
    });
    let out = b.spindle(&["apply", "--state-dir", &state]);
    assert_exit(
        &out,
        0,
        "spindle apply of another project while run writes the log",
    );
    wait_for(
        "a record of spindle run after the apply's",
        Duration::from_secs(60),
        || {
            let all = records(&a);
            let apply = all.iter().position(|r| r["project"] == b.name())?;
            all[apply + 1..]
                .iter()
                .any(|r| r["project"] == a.name())
                .then_some(())
        },
    );
    run.terminate(Duration::from_secs(30));
    let out = a.spindle(&["evidence", "verify", "--state-dir", &state]);
    assert_exit(&out, 0, "spindle evidence verify of the shared log");
}
