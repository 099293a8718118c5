//! Smaller truths, on the real engine:
//! - the evidence record of an apply has the shape docs/evidence.md documents: `revision` with
//!   `git_commit` (`null` without git), `dirty` and `inputs_sha256`; `services` with each service's
//!   `state` (`ready` only when its containers run and, with a healthcheck, are healthy) and its
//!   containers' `health`; no top-level `health` field;
//! - a container whose `com.docker.compose.container-number` label is garbled is left alone, with a
//!   warning, and never removed as "scaled down".

mod common;

use std::process::Command;

use common::{TestProject, assert_exit, evidence_records, plan_actions, record_service};
use serde_json::Value;

fn last_record(p: &TestProject) -> Value {
    evidence_records(p.state_dir())
        .pop()
        .expect("the apply wrote a record")
}

fn git(p: &TestProject, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(p.dir())
        .args([
            "-c",
            "user.name=spindle-test",
            "-c",
            "user.email=test@spindle.invalid",
        ])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The documented keys of `revision` and of each service entry, and no top-level `health`.
#[track_caller]
fn assert_documented_shape(record: &Value) {
    let revision = record["revision"]
        .as_object()
        .expect("revision is an object");
    let mut keys: Vec<&str> = revision.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["dirty", "git_commit", "inputs_sha256"], "{record:#}");
    assert!(revision["dirty"].is_boolean(), "{record:#}");
    assert!(
        revision["inputs_sha256"]
            .as_str()
            .is_some_and(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit())),
        "{record:#}"
    );
    assert!(
        record.get("health").is_none(),
        "no top-level health: {record:#}"
    );
    for (name, entry) in record["services"]
        .as_object()
        .expect("services is an object")
    {
        let state = entry["state"].as_str().unwrap_or_default();
        assert!(
            ["ready", "not-ready", "missing", "degraded"].contains(&state),
            "{name}: {entry:#}"
        );
        for c in entry["containers"].as_array().expect("containers") {
            let mut keys: Vec<&str> = c
                .as_object()
                .expect("object")
                .keys()
                .map(String::as_str)
                .collect();
            keys.sort_unstable();
            assert_eq!(
                keys,
                ["exit_code", "health", "id", "name", "state"],
                "{name}: {entry:#}"
            );
        }
    }
}

#[test]
fn an_apply_record_has_the_documented_revision_and_services_with_and_without_git() {
    let p = TestProject::new("record-shape", "plain");
    assert_exit(&p.spindle(&["apply"]), 0, "spindle apply");
    let record = last_record(&p);
    assert_documented_shape(&record);
    // Without git: no commit, not dirty.
    assert_eq!(record["revision"]["git_commit"], Value::Null, "{record:#}");
    assert_eq!(record["revision"]["dirty"], false, "{record:#}");
    // `a` has a healthcheck and the apply waited for it; `b` has none and runs.
    let a = record_service(&record, "a").expect("a");
    assert_eq!(a["state"], "ready", "{a:#}");
    assert_eq!(a["containers"][0]["health"], "healthy", "{a:#}");
    let b = record_service(&record, "b").expect("b");
    assert_eq!(b["state"], "ready", "{b:#}");
    assert_eq!(b["containers"][0]["health"], "none", "{b:#}");

    // In a git work tree: the commit, then dirty once a file differs from it.
    git(&p, &["init", "-q"]);
    git(&p, &["add", "-A"]);
    git(&p, &["commit", "-q", "-m", "desired state"]);
    let head = git(&p, &["rev-parse", "HEAD"]);
    assert_exit(&p.spindle(&["apply"]), 0, "spindle apply in git");
    let record = last_record(&p);
    assert_documented_shape(&record);
    assert_eq!(
        record["revision"]["git_commit"],
        head.as_str(),
        "{record:#}"
    );
    assert_eq!(record["revision"]["dirty"], false, "{record:#}");
    p.write("notes.txt", "untracked\n");
    assert_exit(&p.spindle(&["apply"]), 0, "spindle apply, dirty");
    let record = last_record(&p);
    assert_eq!(
        record["revision"]["git_commit"],
        head.as_str(),
        "{record:#}"
    );
    assert_eq!(record["revision"]["dirty"], true, "{record:#}");
}

#[test]
fn a_container_with_a_garbled_number_label_is_left_alone_with_a_warning_and_never_scaled_down() {
    let p = TestProject::new("unnumbered-left-alone", "plain");
    assert_exit(&p.spindle(&["apply"]), 0, "spindle apply");
    let stray = format!("{}-b-stray", p.name());
    let out = p.docker(&[
        "run",
        "-d",
        "--init",
        "--name",
        &stray,
        "--label",
        &format!("com.docker.compose.project={}", p.name()),
        "--label",
        "com.docker.compose.service=b",
        "--label",
        "com.docker.compose.container-number=x",
        "spindle-test/busybox:1",
        "/usr/local/bin/idle",
    ]);
    assert_exit(&out, 0, "docker run the stray container");
    let warning = format!(
        "container {stray} of service b has an invalid com.docker.compose.container-number label \"x\": spindle leaves it alone"
    );

    let (out, plan) = p.spindle_json(&["plan", "--format", "json"]);
    assert_exit(&out, 0, "spindle plan: nothing to do");
    assert!(plan_actions(&plan).is_empty(), "{plan:#}");
    let warnings: Vec<&str> = plan["warnings"]
        .as_array()
        .map(|w| w.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(warnings.len(), 1, "{plan:#}");
    assert!(warnings[0].starts_with(&warning), "{plan:#}");
    let text = String::from_utf8_lossy(&p.spindle(&["plan"]).stdout).to_string();
    assert!(text.contains(&format!("  warning: {warning}")), "{text}");

    // Scaled to zero: the numbered container goes, the stray one stays, and the record says why.
    p.edit(
        "compose.yaml",
        "    stop_grace_period: 1s\n\n  c:",
        "    stop_grace_period: 1s\n    scale: 0\n\n  c:",
    );
    assert_exit(&p.spindle(&["apply"]), 0, "spindle apply, b scaled to 0");
    assert!(
        p.try_inspect(&p.container_name("b", 1)).is_none(),
        "b #1 is removed"
    );
    let left = p.inspect(&stray);
    assert_eq!(
        left["State"]["Running"], true,
        "the stray container is left alone"
    );
    let record = last_record(&p);
    let recorded = record["plan"]["warnings"].to_string();
    assert!(recorded.contains(&stray), "{record:#}");
}
