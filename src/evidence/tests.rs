//! Tests of the evidence log: the chain, rotation, torn tails, redaction, and tamper detection.

use std::path::Path;

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::*;

fn body(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => {
            let mut m = Map::new();
            m.insert("value".into(), other);
            m
        }
    }
}

fn none() -> Redactor {
    Redactor::default()
}

fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    segments(dir)
        .unwrap_or_default()
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

fn write_n(dir: &Path, n: usize, options: Options) -> Vec<Appended> {
    let mut log = EvidenceLog::open_with(dir, options).expect("open");
    (0..n)
        .map(|i| {
            log.append(body(json!({"started": format!("t{i}"), "n": i})), &none())
                .expect("append")
        })
        .collect()
}

#[test]
fn appended_records_carry_seq_id_and_a_chain_of_hashes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("evidence");
    let out = write_n(&dir, 3, Options::default());
    assert_eq!(out[0].id, "r000001");
    assert_eq!(out[2].id, "r000003");
    let recs = list(&dir, 10).expect("list");
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[0].id(), "r000003", "newest first");
    assert_eq!(recs[2].str("prev_hash"), GENESIS);
    assert_eq!(recs[1].str("prev_hash"), out[0].hash);
    assert_eq!(recs[0].str("prev_hash"), out[1].hash);
    assert_eq!(recs[0].hash(), out[2].hash);
    assert_eq!(recs[0].kind(), DEFAULT_KIND);
    let report = verify(&dir).expect("verify");
    assert!(report.ok(), "{:?}", report.problem);
    assert_eq!(report.records, 3);
    assert_eq!(report.last_id.as_deref(), Some("r000003"));
}

#[test]
fn the_log_fields_replace_the_bodys_own() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut log = EvidenceLog::open(tmp.path()).expect("open");
    let a = log
        .append(
            body(
                json!({"id": "mine", "seq": 99, "hash": "x", "prev_hash": "y", "kind": "startup"}),
            ),
            &none(),
        )
        .expect("append");
    assert_eq!(a.id, "r000001");
    let r = show(tmp.path(), "1").expect("show").expect("found");
    assert_eq!(r.seq(), 1);
    assert_eq!(r.kind(), "startup");
    assert_eq!(r.str("prev_hash"), GENESIS);
    assert!(verify(tmp.path()).expect("verify").ok());
}

#[test]
fn a_body_may_not_forge_a_torn_tail_marker() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut log = EvidenceLog::open(tmp.path()).expect("open");
    let err = log.append(body(json!({"kind": TORN_TAIL})), &none());
    assert!(matches!(err, Err(EvidenceError::ReservedKind)));
}

#[test]
fn reopening_continues_the_chain_in_the_same_segment() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_n(tmp.path(), 2, Options::default());
    let more = write_n(tmp.path(), 2, Options::default());
    assert_eq!(more[1].id, "r000004");
    assert_eq!(segment_files(tmp.path()).len(), 1);
    let report = verify(tmp.path()).expect("verify");
    assert!(report.ok(), "{:?}", report.problem);
    assert_eq!(report.records, 4);
}

#[test]
fn two_writers_of_one_log_interleave_and_the_chain_stays_whole() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let options = Options {
        max_segment_bytes: 300,
        ..Options::default()
    };
    let mut a = EvidenceLog::open_with(tmp.path(), options.clone()).expect("open a");
    let mut b = EvidenceLog::open_with(tmp.path(), options).expect("open b");
    let mut ids = Vec::new();
    for i in 0..9 {
        let log = if i % 3 == 0 { &mut b } else { &mut a };
        let out = log
            .append(body(json!({"started": format!("t{i}"), "n": i})), &none())
            .expect("append");
        ids.push(out.id);
    }
    let expected: Vec<String> = (1..=9).map(record_id).collect();
    assert_eq!(ids, expected, "each writer continues the other's chain");
    assert!(segment_files(tmp.path()).len() >= 2, "the writers rotated");
    let report = verify(tmp.path()).expect("verify");
    assert!(report.ok(), "{:?}", report.problem);
    assert_eq!(report.records, 9);
}

#[test]
fn writers_in_threads_never_fork_the_chain() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let mut log = EvidenceLog::open(&dir).expect("open");
                for i in 0..5 {
                    log.append(body(json!({"thread": t, "n": i})), &none())
                        .expect("append");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a writer thread");
    }
    let report = verify(&dir).expect("verify");
    assert!(report.ok(), "{:?}", report.problem);
    assert_eq!(report.records, 20);
}

#[test]
fn segments_rotate_by_size_and_the_chain_crosses_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let options = Options {
        max_segment_bytes: 400,
        ..Options::default()
    };
    write_n(tmp.path(), 12, options.clone());
    let files = segment_files(tmp.path());
    assert!(files.len() >= 3, "{files:?}");
    for f in &files {
        let size = std::fs::metadata(f).expect("metadata").len();
        assert!(size <= 400, "{f:?} has {size} bytes");
    }
    assert_eq!(
        files[0].file_name().and_then(|n| n.to_str()),
        Some("segment-000001.jsonl")
    );
    let report = verify(tmp.path()).expect("verify");
    assert!(report.ok(), "{:?}", report.problem);
    assert_eq!(report.records, 12);
    assert_eq!(report.segments, files.len());
    assert_eq!(list(tmp.path(), 5).expect("list").len(), 5);
    assert_eq!(
        show(tmp.path(), "r000001")
            .expect("show")
            .map(|r| r.segment),
        Some("segment-000001.jsonl".to_string())
    );
}

#[test]
fn a_record_bigger_than_a_segment_gets_a_segment_of_its_own() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut log = EvidenceLog::open_with(
        tmp.path(),
        Options {
            max_segment_bytes: 10,
            ..Options::default()
        },
    )
    .expect("open");
    for _ in 0..3 {
        log.append(body(json!({"big": "x".repeat(50)})), &none())
            .expect("append");
    }
    assert_eq!(segment_files(tmp.path()).len(), 3);
    assert!(verify(tmp.path()).expect("verify").ok());
}

#[test]
fn secret_values_are_written_redacted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let secret = "s3cr3t-hunter2-value";
    let redactor = Redactor::new([secret.to_string()]);
    let mut log = EvidenceLog::open(tmp.path()).expect("open");
    log.append(
        body(json!({
            "plan": [{"diff": format!("- DB_URL=mysql://u:{secret}@db\n+ DB_URL=x")}],
            "environment": {"DB_PASSWORD": "short", "COPY": secret},
            "errors": [format!("failed with {secret}")],
        })),
        &redactor,
    )
    .expect("append");
    let text = std::fs::read_to_string(&segment_files(tmp.path())[0]).expect("read");
    assert!(!text.contains(secret), "{text}");
    assert!(!text.contains("short"), "{text}");
    assert!(text.contains("<redacted>"));
    assert!(verify(tmp.path()).expect("verify").ok());
}

/// Cuts the newest segment's last line in half.
fn tear_last_line(dir: &Path) -> (std::path::PathBuf, u64) {
    let path = segment_files(dir).pop().expect("a segment");
    let bytes = std::fs::read(&path).expect("read");
    let body = &bytes[..bytes.len() - 1];
    let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    let cut = start + (bytes.len() - start) / 2;
    std::fs::write(&path, &bytes[..cut]).expect("write");
    (path, start as u64)
}

#[test]
fn a_torn_last_line_is_marked_in_a_new_segment_and_the_chain_continues() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let written = write_n(tmp.path(), 3, Options::default());
    let (torn_path, offset) = tear_last_line(tmp.path());
    let torn_bytes = std::fs::read(&torn_path).expect("read");

    let before = verify(tmp.path()).expect("verify");
    let problem = before.problem.expect("the torn tail is reported");
    assert_eq!(problem.kind, ProblemKind::Torn);
    assert_eq!(problem.line, 3);

    let mut log = EvidenceLog::open(tmp.path()).expect("open");
    let mark = log.torn_tail().cloned().expect("a torn tail");
    assert_eq!(mark.segment, "segment-000001.jsonl");
    assert_eq!(mark.offset, offset);
    assert_eq!(mark.last_good_seq, 2);
    assert_eq!(mark.last_good_hash, written[1].hash);
    let next = log.append(body(json!({"n": 4})), &none()).expect("append");
    assert_eq!(next.id, "r000004", "the marker took r000003");
    drop(log);

    assert_eq!(
        std::fs::read(&torn_path).expect("read"),
        torn_bytes,
        "never rewritten"
    );
    let files = segment_files(tmp.path());
    assert_eq!(files.len(), 2);
    let marker = show(tmp.path(), "r000003").expect("show").expect("marker");
    assert_eq!(marker.kind(), TORN_TAIL);
    assert_eq!(
        (marker.segment.as_str(), marker.line),
        ("segment-000002.jsonl", 1)
    );

    let report = verify(tmp.path()).expect("verify");
    assert!(report.ok(), "{:?}", report.problem);
    assert_eq!(report.records, 4);
    assert_eq!(report.markers.len(), 1);
    assert_eq!(report.markers[0].2, mark);
}

#[test]
fn a_segment_torn_in_its_first_line_is_marked_after_the_previous_segments_last_record() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let options = Options {
        max_segment_bytes: 10,
        ..Options::default()
    };
    let written = write_n(tmp.path(), 2, options.clone());
    tear_last_line(tmp.path());
    let log = EvidenceLog::open_with(tmp.path(), options).expect("open");
    let mark = log.torn_tail().cloned().expect("torn");
    assert_eq!(
        (mark.segment.as_str(), mark.offset),
        ("segment-000002.jsonl", 0)
    );
    assert_eq!(mark.last_good_hash, written[0].hash);
    drop(log);
    let report = verify(tmp.path()).expect("verify");
    assert!(report.ok(), "{:?}", report.problem);
}

#[test]
fn a_torn_first_record_is_marked_after_the_genesis() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_n(tmp.path(), 1, Options::default());
    tear_last_line(tmp.path());
    let log = EvidenceLog::open(tmp.path()).expect("open");
    assert_eq!(log.head(), (1, log.head().1));
    assert_eq!(
        log.torn_tail().map(|m| m.last_good_hash.as_str()),
        Some(GENESIS)
    );
    drop(log);
    assert!(verify(tmp.path()).expect("verify").ok());
}

#[test]
fn a_marker_that_no_longer_points_at_the_torn_place_is_rejected() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_n(tmp.path(), 3, Options::default());
    let (torn_path, _) = tear_last_line(tmp.path());
    drop(EvidenceLog::open(tmp.path()).expect("open"));
    // Someone appends to the torn segment afterwards: the torn place moved.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&torn_path)
        .expect("open");
    f.write_all(b"more").expect("write");
    let problem = verify(tmp.path())
        .expect("verify")
        .problem
        .expect("problem");
    assert_eq!(problem.kind, ProblemKind::BadMarker);
    assert_eq!(problem.segment, "segment-000002.jsonl");
    assert_eq!(problem.id.as_deref(), Some("r000003"));
}

#[test]
fn a_torn_tail_in_an_older_segment_without_a_marker_is_reported() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_n(
        tmp.path(),
        4,
        Options {
            max_segment_bytes: 10,
            ..Options::default()
        },
    );
    let first = &segment_files(tmp.path())[0];
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(first)
        .expect("open");
    f.write_all(b"{\"seq\":").expect("write");
    let problem = verify(tmp.path())
        .expect("verify")
        .problem
        .expect("problem");
    assert_eq!(problem.kind, ProblemKind::Torn);
    assert_eq!(problem.segment, "segment-000001.jsonl");
}

#[test]
fn a_missing_segment_is_reported() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_n(
        tmp.path(),
        4,
        Options {
            max_segment_bytes: 10,
            ..Options::default()
        },
    );
    std::fs::remove_file(&segment_files(tmp.path())[1]).expect("remove");
    let problem = verify(tmp.path())
        .expect("verify")
        .problem
        .expect("problem");
    assert_eq!(problem.kind, ProblemKind::Missing);
    assert_eq!(problem.segment, "segment-000003.jsonl");
    assert!(problem.detail.contains("segment-000002.jsonl"), "{problem}");
}

#[test]
fn an_edited_record_is_named_with_its_segment_and_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_n(tmp.path(), 3, Options::default());
    let path = &segment_files(tmp.path())[0];
    let text = std::fs::read_to_string(path).expect("read");
    std::fs::write(path, text.replace("\"t1\"", "\"t9\"")).expect("write");
    let problem = verify(tmp.path())
        .expect("verify")
        .problem
        .expect("problem");
    assert_eq!(problem.kind, ProblemKind::Edited);
    assert_eq!((problem.line, problem.id.as_deref()), (2, Some("r000002")));
    assert_eq!(
        problem.to_string(),
        "segment-000001.jsonl line 2 (record r000002): edited: its content does not match its hash"
    );
}

#[test]
fn an_empty_or_missing_log_verifies_with_no_records() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let report = verify(&tmp.path().join("nothing")).expect("verify");
    assert!(report.ok());
    assert_eq!(report.records, 0);
    assert!(
        list(&tmp.path().join("nothing"), 5)
            .expect("list")
            .is_empty()
    );
}

#[test]
fn default_state_dir_is_var_lib_spindle_unless_set() {
    // Reads the environment only; the variable is not set in the test environment, or points somewhere.
    let d = default_state_dir();
    match std::env::var_os("SPINDLE_STATE_DIR") {
        Some(v) if !v.is_empty() => assert_eq!(d, Path::new(&v)),
        _ => assert_eq!(d, Path::new("/var/lib/spindle")),
    }
    assert_eq!(evidence_dir(Path::new("/s")), Path::new("/s/evidence"));
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ]
}

fn tree() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn bodies() -> impl Strategy<Value = Vec<Map<String, Value>>> {
    prop::collection::vec(
        prop::collection::btree_map("[a-z_]{1,8}", tree(), 0..5)
            .prop_map(|m| m.into_iter().collect::<Map<String, Value>>()),
        2..8,
    )
}

/// Writes the bodies into a fresh log with small segments; returns the directory.
fn chain(bodies: Vec<Map<String, Value>>) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut log = EvidenceLog::open_with(
        tmp.path(),
        Options {
            max_segment_bytes: 600,
            ..Options::default()
        },
    )
    .expect("open");
    for mut b in bodies {
        b.shift_remove("kind");
        log.append(b, &none()).expect("append");
    }
    tmp
}

/// All lines of all segments, as (segment path, line start, line end including the newline).
fn all_lines(dir: &Path) -> Vec<(std::path::PathBuf, usize, usize)> {
    let mut out = Vec::new();
    for path in segment_files(dir) {
        let bytes = std::fs::read(&path).expect("read");
        let mut start = 0;
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'\n' {
                out.push((path.clone(), start, i + 1));
                start = i + 1;
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_head_found_from_the_end_is_the_head_a_full_scan_finds(
        parts in proptest::collection::vec(
            prop_oneof![
                (0u64..50).prop_map(|n| format!("{{\"seq\":{n},\"hash\":\"h{n}\"}}\n")),
                Just("not json\n".to_string()),
                Just("{\"seq\":\"x\"}\n".to_string()),
                Just("\n".to_string()),
                Just("{\"seq\":7,\"ha".to_string()),
                Just("[1]\n".to_string()),
            ],
            0..12,
        )
    ) {
        let bytes = parts.concat().into_bytes();
        let full = scan(&bytes);
        let last = scan_last(&bytes);
        prop_assert_eq!(
            last.lines.last().map(|(n, l, m)| (*n, l.clone(), m.clone())),
            full.lines.last().map(|(n, l, m)| (*n, l.clone(), m.clone()))
        );
        prop_assert_eq!(
            last.tail.map(|t| (t.offset, t.len, t.sha256)),
            full.tail.map(|t| (t.offset, t.len, t.sha256))
        );
    }

    #[test]
    fn a_chain_of_random_records_verifies(bodies in bodies()) {
        let n = bodies.len() as u64;
        let tmp = chain(bodies);
        let report = verify(tmp.path()).expect("verify");
        prop_assert!(report.ok(), "{:?}", report.problem);
        prop_assert_eq!(report.records, n);
    }

    #[test]
    fn flipping_any_byte_of_any_record_is_detected(bodies in bodies(), pick in any::<prop::sample::Index>(), xor in 1u8..=255) {
        let tmp = chain(bodies);
        let files = segment_files(tmp.path());
        let sizes: Vec<usize> = files.iter().map(|f| std::fs::metadata(f).map_or(0, |m| m.len() as usize)).collect();
        let mut at = pick.index(sizes.iter().sum());
        let mut target = 0;
        while at >= sizes[target] {
            at -= sizes[target];
            target += 1;
        }
        let mut bytes = std::fs::read(&files[target]).expect("read");
        bytes[at] ^= xor;
        std::fs::write(&files[target], &bytes).expect("write");
        let report = verify(tmp.path()).expect("verify");
        prop_assert!(!report.ok(), "flipped byte {} of {:?}", at, files[target]);
    }

    #[test]
    fn deleting_any_line_but_the_newest_is_detected(bodies in bodies(), pick in any::<prop::sample::Index>()) {
        let tmp = chain(bodies);
        let lines = all_lines(tmp.path());
        let (path, start, end) = lines[pick.index(lines.len() - 1)].clone();
        let mut bytes = std::fs::read(&path).expect("read");
        bytes.drain(start..end);
        std::fs::write(&path, &bytes).expect("write");
        let report = verify(tmp.path()).expect("verify");
        let problem = report.problem.expect("a problem");
        prop_assert!(matches!(problem.kind, ProblemKind::Missing | ProblemKind::BadMarker), "{}", problem);
    }

    #[test]
    fn swapping_two_records_is_detected(bodies in bodies(), a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>()) {
        let tmp = chain(bodies);
        let lines = all_lines(tmp.path());
        let (i, j) = (a.index(lines.len()), b.index(lines.len()));
        prop_assume!(i != j);
        let text = |(p, s, e): &(std::path::PathBuf, usize, usize)| std::fs::read(p).expect("read")[*s..*e].to_vec();
        let (li, lj) = (text(&lines[i]), text(&lines[j]));
        // Rebuild every segment with the two lines exchanged.
        for path in segment_files(tmp.path()) {
            let mut out = Vec::new();
            for (k, l) in lines.iter().enumerate().filter(|(_, l)| l.0 == path) {
                out.extend(if k == i { lj.clone() } else if k == j { li.clone() } else { text(l) });
            }
            std::fs::write(&path, out).expect("write");
        }
        let report = verify(tmp.path()).expect("verify");
        let problem = report.problem.expect("a problem");
        prop_assert!(matches!(problem.kind, ProblemKind::OutOfOrder | ProblemKind::Missing), "{}", problem);
    }
}

#[test]
fn after_a_failed_write_the_next_append_marks_the_partial_line_first() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut log = EvidenceLog::open(tmp.path()).expect("open");
    log.append(body(json!({"n": 1})), &none()).expect("append");
    // What a write cut short by a full disk leaves behind.
    let path = segment_files(tmp.path()).pop().expect("segment");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open");
    f.write_all(b"{\"seq\":2,\"id\":\"r0").expect("write");
    log.stale = true;
    log.current = None;
    let next = log.append(body(json!({"n": 2})), &none()).expect("append");
    assert_eq!(next.id, "r000003", "r000002 is the marker");
    assert!(log.torn_tail().is_some());
    let report = verify(tmp.path()).expect("verify");
    assert!(report.ok(), "{:?}", report.problem);
    assert_eq!(report.markers.len(), 1);
}

#[test]
fn a_crash_between_creating_the_marker_segment_and_writing_the_marker_is_recovered() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_n(tmp.path(), 3, Options::default());
    tear_last_line(tmp.path());
    // The segment for the marker was created, then the process died before the marker was written.
    std::fs::write(tmp.path().join(segment_name(2)), b"").expect("create");
    let mut log = EvidenceLog::open(tmp.path()).expect("open");
    let mark = log.torn_tail().cloned().expect("torn");
    assert_eq!(mark.segment, "segment-000001.jsonl");
    log.append(body(json!({"n": 4})), &none()).expect("append");
    drop(log);
    assert_eq!(
        segment_files(tmp.path()).len(),
        2,
        "the empty segment took the marker"
    );
    let report = verify(tmp.path()).expect("verify");
    assert!(report.ok(), "{:?}", report.problem);
    assert_eq!(report.markers[0].0, "segment-000002.jsonl");
}

#[test]
fn an_empty_newest_segment_without_a_torn_tail_is_simply_used() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_n(tmp.path(), 2, Options::default());
    std::fs::write(tmp.path().join(segment_name(2)), b"").expect("create");
    let more = write_n(tmp.path(), 1, Options::default());
    assert_eq!(more[0].id, "r000003");
    assert_eq!(segment_files(tmp.path()).len(), 2);
    assert!(verify(tmp.path()).expect("verify").ok());
}

#[test]
fn the_evidence_folder_is_made_0700_and_its_lock_and_segments_0600() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("state/evidence");
    let mut log = EvidenceLog::open(&dir).expect("open");
    log.append(Map::new(), &Redactor::default())
        .expect("append");
    let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&tmp.path().join("state")), 0o700);
    assert_eq!(mode(&dir.join(".lock")), 0o600);
    assert_eq!(mode(&dir.join(segment_name(1))), 0o600);
}

#[test]
fn a_held_evidence_lock_neither_stalls_the_runtime_nor_blocks_the_append_for_ever() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = Options {
        lock_wait: std::time::Duration::from_millis(800),
        ..Options::default()
    };
    let mut log = EvidenceLog::open_with(dir.path(), options).expect("open");
    // Another process's append in progress: the lock held through another open file.
    let other = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join(".lock"))
        .expect("open lock");
    other.lock().expect("lock");
    // One runtime thread: a wait that slept on it would starve every other task.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (ticks, result) = rt.block_on(async move {
        let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let t = ticks.clone();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                t.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
        let append = tokio::spawn(async move { log.append(Map::new(), &Redactor::default()) });
        let result = append.await.expect("join");
        ticker.abort();
        (ticks.load(std::sync::atomic::Ordering::Relaxed), result)
    });
    let e = result.expect_err("the append waits a bounded time");
    assert!(matches!(e, EvidenceError::Busy { .. }), "{e}");
    assert!(e.to_string().contains("stayed locked"), "{e}");
    assert!(ticks >= 20, "the runtime stalled: {ticks} ticks in 800 ms");
}
