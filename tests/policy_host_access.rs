//! The `host_access` and `paths` policies end to end on the real engine: `spindle plan` and `apply` refuse a privileged service, a bind of the state dir, a bind climbing out of the folder and a `.env` linked out of it (exit 1, named, nothing created, the refusal recorded); allowlisted with a reason, or in mode `warn` with the warning recorded, the stack applies; `spindle run` refuses a bind of its own state dir.

mod common;

use std::process::Output;
use std::time::Duration;

use common::{TestProject, assert_exit, assert_no_panic, evidence_records, state_dir, wait_for};

const PREFIX: &str = "spindle-h-policy";

/// A one-service stack with `extra` appended to the service (indented 4 spaces).
fn stack(extra: &str) -> String {
    format!(
        "services:\n  web:\n    image: spindle-test/busybox:1\n    command: [\"/usr/local/bin/idle\"]\n    \
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

/// `spindle plan` and `spindle apply` exit 1 naming `policy <policy>: <path>:`, nothing of the
/// project is on the host, and the apply left a record with outcome `blocked`.
#[track_caller]
fn assert_refused(p: &TestProject, policy: &str, path: &str) -> String {
    let needle = format!("policy {policy}: {path}:");
    let out = p.spindle(&["plan"]);
    assert_no_panic(&out, "spindle plan");
    assert_exit(&out, 1, "spindle plan of a stack that reaches the host");
    assert!(
        text(&out).contains(&needle),
        "plan names {needle}:\n{}",
        text(&out)
    );
    let before = evidence_records(p.state_dir()).len();
    let out = p.spindle(&["apply"]);
    assert_no_panic(&out, "spindle apply");
    assert_exit(&out, 1, "spindle apply of a stack that reaches the host");
    let all = text(&out);
    assert!(all.contains(&needle), "apply names {needle}:\n{all}");
    assert!(
        p.containers().is_empty(),
        "no container was created:\n{all}"
    );
    assert!(p.networks().is_empty(), "no network was created:\n{all}");
    let records = evidence_records(p.state_dir());
    assert_eq!(records.len(), before + 1, "one record of the refused apply");
    let record = &records[before];
    assert_eq!(record["outcome"], "blocked", "{record:#}");
    assert!(
        record["error"]
            .as_str()
            .unwrap_or_default()
            .contains(&needle),
        "the record names the violation: {record:#}"
    );
    assert_eq!(record["writes"], serde_json::json!([]), "{record:#}");
    all
}

#[test]
fn a_privileged_service_is_refused_until_it_is_allowlisted_with_a_reason() {
    let p = project("host-access-privileged");
    p.write("compose.yaml", &stack("    privileged: true\n"));
    let out = assert_refused(&p, "host_access", "services.web.privileged");
    assert!(
        out.contains("root on the host") && out.contains("policies.host_access.allow"),
        "says why and how to allow it:\n{out}"
    );
    // Allowlisted for another service, or for another access, it is still refused.
    p.write(
        "spindle.yaml",
        "policies:\n  host_access:\n    allow:\n      - service: other\n        access: privileged\n        reason: not web\n      - service: web\n        access: [pid, cap_add]\n        reason: not privileged\n",
    );
    assert_refused(&p, "host_access", "services.web.privileged");
    // In mode warn it applies, and the warning is in the apply's output and its record. (The
    // container is created, not started: this engine may itself run without the capabilities
    // a privileged container needs.)
    p.write(
        "spindle.yaml",
        "policies:\n  host_access:\n    mode: warn\n",
    );
    let out = p.spindle(&["apply", "--no-start"]);
    assert_exit(&out, 0, "spindle apply with host_access in mode warn");
    assert!(
        text(&out).contains("policy host_access: services.web.privileged:"),
        "{}",
        text(&out)
    );
    let records = evidence_records(p.state_dir());
    let last = records.last().expect("a record");
    assert!(
        last["warnings"]
            .as_array()
            .is_some_and(|w| w.iter().any(|w| w
                .as_str()
                .is_some_and(|w| w.contains("policy host_access: services.web.privileged:")))),
        "the warning is recorded: {last:#}"
    );
    // Allowlisted with a reason, it applies without a warning.
    p.write(
        "spindle.yaml",
        "policies:\n  host_access:\n    allow:\n      - service: web\n        access: privileged\n        reason: the test needs a privileged container\n",
    );
    let out = p.spindle(&["apply", "--no-start"]);
    assert_exit(&out, 0, "spindle apply of the allowlisted stack");
    assert!(!text(&out).contains("host_access"), "{}", text(&out));
    // The grant is not silent: the record says what was allowed, for which service and why.
    let records = evidence_records(p.state_dir());
    let last = records.last().expect("a record");
    assert_eq!(
        last["allowed"],
        serde_json::json!([
            "policy host_access: services.web.privileged: `privileged` allowed for service web \
             (the test needs a privileged container)"
        ]),
        "{last:#}"
    );
    let web = p.inspect(&p.container_name("web", 1));
    assert_eq!(web["HostConfig"]["Privileged"], true, "{web:#}");
}

#[test]
fn binds_of_the_docker_socket_and_of_the_state_dir_are_refused() {
    let p = project("host-access-binds");
    p.write(
        "compose.yaml",
        &stack("    volumes: [\"/var/run/docker.sock:/var/run/docker.sock\"]\n"),
    );
    let out = assert_refused(&p, "host_access", "services.web.volumes[0].source");
    assert!(out.contains("Docker socket"), "{out}");
    let state = p.state_dir().display().to_string();
    p.write(
        "compose.yaml",
        &stack(&format!("    volumes: [\"{state}/evidence:/evidence\"]\n")),
    );
    let out = assert_refused(&p, "host_access", "services.web.volumes[0].source");
    assert!(out.contains("state dir"), "{out}");
}

#[test]
fn a_bind_climbing_out_of_the_folder_and_a_dot_env_linked_out_of_it_are_refused() {
    let p = project("paths-out-of-folder");
    let depth = p.dir().components().count();
    let up = "../".repeat(depth);
    p.write(
        "compose.yaml",
        &stack(&format!("    volumes: [\"{up}etc:/host-etc:ro\"]\n")),
    );
    let out = assert_refused(&p, "paths", "services.web.volumes[0].source");
    assert!(
        out.contains("outside the desired-state folder") && out.contains("allow_outside"),
        "{out}"
    );

    let elsewhere = tempfile::tempdir().expect("a temporary folder");
    let target = elsewhere.path().join("host.env");
    std::fs::write(&target, "GREETING=hi\n").expect("an env file");
    p.write("compose.yaml", &stack(""));
    std::os::unix::fs::symlink(&target, p.path(".env")).expect("a symbolic link");
    let out = assert_refused(&p, "paths", ".env");
    assert!(out.contains("symbolic link"), "{out}");

    // Allowlisted with a reason, it applies.
    p.write(
        "spindle.yaml",
        &format!(
            "policies:\n  paths:\n    allow_outside:\n      - path: {}\n        reason: the host keeps this stack's settings there\n",
            elsewhere.path().display()
        ),
    );
    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "spindle apply with the .env target allowlisted");
    let records = evidence_records(p.state_dir());
    let last = records.last().expect("a record");
    assert!(
        last["allowed"][0]
            .as_str()
            .is_some_and(|a| a.starts_with("policy paths: .env: ")
                && a.ends_with("(the host keeps this stack's settings there)")),
        "{last:#}"
    );
}

#[test]
fn spindle_run_refuses_a_bind_of_its_own_state_dir() {
    let p = project("host-access-run-state");
    let state = state_dir();
    p.write(
        "compose.yaml",
        &stack(&format!(
            "    volumes: [\"{}:/state\"]\n",
            state.path().display()
        )),
    );
    let _run = p.spawn_run(state.path(), &["--resync", "1s"]);
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
        error.contains("policy host_access: services.web.volumes[0].source:")
            && error.contains("state dir"),
        "the record names the violation: {record:#}"
    );
    assert!(p.containers().is_empty(), "nothing was created");
}

#[test]
fn a_named_volume_mounting_a_host_disk_is_refused_at_plan_time_and_nothing_is_mounted() {
    // The device is never mounted: the policy refuses before any engine write.
    let p = project("host-access-volume-device");
    p.write(
        "compose.yaml",
        &format!(
            "{}volumes:\n  rootfs:\n    driver_opts:\n      type: ext4\n      device: /dev/vda\n",
            stack("    volumes: [\"rootfs:/host\"]\n")
        ),
    );
    let out = assert_refused(&p, "host_access", "services.web.volumes[0]");
    assert!(
        out.contains("volume `rootfs`") && out.contains("access: \"volume_device:rootfs\""),
        "says which volume and how to allow it:\n{out}"
    );
    assert!(p.volumes().is_empty(), "no volume was created:\n{out}");
}
