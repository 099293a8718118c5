//! `spindle evidence verify|list|show` on a temporary state directory: ok, tampering, torn tails, output.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Map, Value, json};
use spindle::evidence::{self, EvidenceLog, Options};
use spindle::redact::Redactor;

fn spindle(args: &[&str], state: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .env_remove("SPINDLE_STATE_DIR")
        .output()
        .expect("run spindle")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn body(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A state directory with `n` reconcile records in small segments.
fn state_with(n: usize) -> tempfile::TempDir {
    state_in_segments_of(n, 1024)
}

fn state_in_segments_of(n: usize, max_segment_bytes: u64) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut log = EvidenceLog::open_with(
        &evidence::evidence_dir(tmp.path()),
        Options {
            max_segment_bytes,
            ..Options::default()
        },
    )
    .expect("open");
    for i in 0..n {
        log.append(
            body(json!({
                "started": format!("2026-11-30T02:00:{i:02}Z"),
                "finished": format!("2026-11-30T02:00:{i:02}Z"),
                "triggers": ["file", {"kind": "docker", "event": "die"}],
                "revision": {"git_commit": "abc123", "dirty": false, "inputs_sha256": "00"},
                "plan": [{"service": "web", "kind": "recreate", "reasons": ["image"]}],
                "outcome": "converged",
            })),
            &Redactor::default(),
        )
        .expect("append");
    }
    tmp
}

#[test]
fn verify_of_an_intact_log_exits_0_with_the_count() {
    let state = state_with(30);
    let out = spindle(&["evidence", "verify"], state.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("ok: 30 records in "), "{text}");
    assert!(text.contains("last r000030 "), "{text}");
}

#[test]
fn verify_of_a_tampered_log_exits_1_naming_the_edited_record() {
    let state = state_with(5);
    let dir = evidence::evidence_dir(state.path());
    let path = dir.join("segment-000001.jsonl");
    let text = std::fs::read_to_string(&path).expect("read");
    let edited = text.replacen("\"converged\"", "\"failed!!!\"", 2);
    std::fs::write(&path, edited).expect("write");
    let out = spindle(&["evidence", "verify"], state.path());
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("segment-000001.jsonl line 1 (record r000001): edited"),
        "{err}"
    );
}

#[test]
fn verify_names_a_deleted_record_as_missing() {
    let state = state_with(5);
    let path = evidence::evidence_dir(state.path()).join("segment-000001.jsonl");
    let text = std::fs::read_to_string(&path).expect("read");
    let kept: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, l)| l)
        .collect();
    std::fs::write(&path, kept.join("\n") + "\n").expect("write");
    let out = spindle(&["evidence", "verify"], state.path());
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("(record r000003): missing: record r000002 before it is missing"),
        "{err}"
    );
}

#[test]
fn verify_reports_a_torn_tail_and_then_the_marker_after_reopening() {
    let state = state_in_segments_of(3, 1 << 20);
    let dir = evidence::evidence_dir(state.path());
    let path = dir.join("segment-000001.jsonl");
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() - 40]).expect("write");
    let out = spindle(&["evidence", "verify"], state.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(": torn: "), "{}", stderr(&out));

    let mut log = EvidenceLog::open(&dir).expect("reopen");
    log.append(body(json!({"outcome": "converged"})), &Redactor::default())
        .expect("append");
    drop(log);
    let out = spindle(&["evidence", "verify"], state.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("note: segment-000002.jsonl line 1 marks a torn tail"),
        "{text}"
    );
    assert!(
        text.contains("of segment-000001.jsonl, after r000002"),
        "{text}"
    );
    assert!(text.contains("ok: 4 records"), "{text}");
}

#[test]
fn list_prints_the_newest_records_first_in_text_and_json() {
    let state = state_with(4);
    let out = spindle(&["evidence", "list", "--limit", "2"], state.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("ID "), "{text}");
    assert!(
        lines[1].starts_with("r000004  2026-11-30T02:00:03Z  file,docker  1"),
        "{text}"
    );
    assert!(lines[1].ends_with("converged"), "{text}");
    assert!(lines[2].starts_with("r000003 "), "{text}");

    let out = spindle(&["evidence", "list", "--format", "json"], state.path());
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(all.len(), 4);
    assert_eq!(all[0]["id"], "r000004");
    assert_eq!(all[3]["prev_hash"], evidence::GENESIS);
}

#[test]
fn list_fits_an_80_column_terminal_for_realistic_records() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = evidence::evidence_dir(tmp.path());
    let mut log = EvidenceLog::open(&dir).expect("open");
    let docker =
        |action: &str| json!({"kind": "docker", "action": action, "container": "erp-backend-1"});
    let bodies = [
        // What `spindle run` writes: millisecond times, many triggers, long outcomes.
        json!({"started": "2026-11-30T02:00:03.123Z", "finished": "2026-11-30T02:00:09.456Z",
               "triggers": [{"kind": "file", "path": "/srv/desired-state/compose.yaml"},
                            docker("die"), docker("kill"), docker("die"), docker("destroy"),
                            {"kind": "resync"}, {"kind": "profile", "cause": "enter"}],
               "plan": {"actions": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]},
               "outcome": "invalid-desired-state",
               "error": "compose.yaml: line 5, column 10: did not find expected ',' or ']'"}),
        json!({"started": "2026-11-30T02:01:03.999Z", "triggers": [{"kind": "retry"}],
               "plan": {"actions": []}, "outcome": "in-sync"}),
        json!({"started": "2026-11-30T02:02:03.001Z", "triggers": [{"kind": "cli", "command": "apply",
               "user": "a-rather-long-operator-name"}], "plan": {"actions": [1]},
               "outcome": "blocked", "error": "policy image: floating tag"}),
        json!({"kind": "api", "action": "pause", "at": "2026-11-30T02:03:00.000Z",
               "actor": "t1", "actor_name": "deploy-bot"}),
        json!({"started": "2026-11-30T02:04:00.000Z", "triggers": [], "outcome": "paused"}),
    ];
    for b in bodies {
        log.append(body(b), &Redactor::default()).expect("append");
    }
    drop(log);
    // A torn tail and its marker, as after a crash.
    let segment = dir.join("segment-000001.jsonl");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .expect("segment");
    std::io::Write::write_all(&mut f, b"{\"seq\":6,\"torn").expect("write");
    drop(f);
    let mut log = EvidenceLog::open(&dir).expect("reopen marks the torn tail");
    log.append(
        body(
            json!({"started": "2026-11-30T02:05:00.000Z", "triggers": [{"kind": "signal"}],
        "plan": {"actions": []}, "outcome": "converged"}),
        ),
        &Redactor::default(),
    )
    .expect("append");
    drop(log);

    let out = spindle(&["evidence", "list"], tmp.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 8, "a header and seven records:\n{text}");
    for line in &lines {
        assert!(
            line.chars().count() <= 80,
            "{} columns:\n{line}\n\n{text}",
            line.chars().count()
        );
    }
    assert!(
        lines[0].starts_with("ID       STARTED               TRIGGERS"),
        "{text}"
    );
    let row = |id: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(id))
            .copied()
            .unwrap_or_default()
    };
    assert!(
        row("r000001").contains("2026-11-30T02:00:03Z  file,docker(4),…"),
        "{text}"
    );
    assert!(
        row("r000001").ends_with("12       invalid-desired-state"),
        "{text}"
    );
    assert!(row("r000003").ends_with("blocked"), "{text}");
    assert!(row("r000004").ends_with("api: pause"), "{text}");
    assert!(row("r000005").ends_with("paused"), "{text}");
    let torn = row("r000006");
    assert!(
        torn.contains("torn at 000001:") && !torn.ends_with('…'),
        "{text}"
    );
}

#[test]
fn show_prints_one_record_as_json_and_fails_for_an_unknown_id() {
    let state = state_with(3);
    let out = spindle(&["evidence", "show", "r000002"], state.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rec: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(rec["seq"], 2);
    assert_eq!(rec["revision"]["git_commit"], "abc123");
    assert_eq!(rec["hash"].as_str().map(str::len), Some(64));

    let out = spindle(&["evidence", "show", "r000009"], state.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no evidence record r000009"));
}

#[test]
fn a_state_dir_without_an_evidence_log_is_an_error_not_an_empty_log() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = spindle(&["evidence", "verify"], tmp.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no evidence log at"),
        "{}",
        stderr(&out)
    );
}
