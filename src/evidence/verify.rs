//! `verify`: recomputes every record's hash and every link of the chain across segments, and names the first break.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    EvidenceError, GENESIS, TORN_TAIL, Tail, record_hash, record_id, scan, segment_name, segments,
};

/// Where a torn tail was and what the marker after it records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TornMark {
    /// The segment whose tail is torn.
    pub segment: String,
    /// The byte offset in that segment where the torn bytes begin (just after the last complete record).
    pub offset: u64,
    /// How many torn bytes follow (they stay in the file, never rewritten).
    pub bytes: u64,
    /// SHA-256 of the torn bytes.
    pub sha256: String,
    /// The sequence number of the last good record (0 when there is none).
    pub last_good_seq: u64,
    /// The hash of the last good record ([`GENESIS`] when there is none).
    pub last_good_hash: String,
}

/// What is wrong with the first bad record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// The record's content does not match its hash, or its line is not as the log wrote it.
    Edited,
    /// A record (or a whole segment) before this one is gone: a sequence gap or a broken `prev_hash` link.
    Missing,
    /// The record's sequence number goes backwards, or a later record stands before it.
    OutOfOrder,
    /// A line that is not a record (not a JSON object with `seq` and `hash`) between records.
    Malformed,
    /// A torn tail that no marker accounts for.
    Torn,
    /// A torn-tail marker that does not point exactly at a torn tail.
    BadMarker,
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Edited => "edited",
            Self::Missing => "missing",
            Self::OutOfOrder => "out of order",
            Self::Malformed => "malformed",
            Self::Torn => "torn",
            Self::BadMarker => "bad marker",
        })
    }
}

/// The first break in the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    /// The segment file name.
    pub segment: String,
    /// The 1-based line number in that segment (for a torn tail: the line where the torn bytes begin).
    pub line: usize,
    /// The record's id, when the line names one.
    pub id: Option<String>,
    pub detail: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} line {}", self.segment, self.line)?;
        if let Some(id) = &self.id {
            write!(f, " (record {id})")?;
        }
        write!(f, ": {}: {}", self.kind, self.detail)
    }
}

/// What `verify` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    /// Segments read.
    pub segments: usize,
    /// Records whose hash and link checked out (up to the first problem).
    pub records: u64,
    /// The id and hash of the last good record.
    pub last_id: Option<String>,
    pub last_hash: Option<String>,
    /// Torn tails that markers account for: (marker segment, marker line, mark).
    pub markers: Vec<(String, usize, TornMark)>,
    /// The first problem, if any.
    pub problem: Option<Problem>,
}

impl VerifyReport {
    /// True when every record checked out.
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// Verifies the log in `dir` (the evidence directory). An I/O failure is an error; a broken chain is a report
/// with `problem` set.
pub fn verify(dir: &Path) -> Result<VerifyReport, EvidenceError> {
    let mut report = VerifyReport::default();
    report.problem = check(dir, &mut report)?;
    Ok(report)
}

/// A torn tail waiting for its marker: (segment name, tail, line number where it begins).
type Pending = (String, Tail, usize);

fn check(dir: &Path, report: &mut VerifyReport) -> Result<Option<Problem>, EvidenceError> {
    let mut expected = 1u64;
    let mut prev = GENESIS.to_string();
    let mut pending: Option<Pending> = None;
    let mut last_number = 0u64;
    for (n, path) in segments(dir)? {
        let name = segment_name(n);
        if n != last_number + 1 {
            let missing = if n == last_number + 2 {
                segment_name(last_number + 1)
            } else {
                format!(
                    "{} to {}",
                    segment_name(last_number + 1),
                    segment_name(n - 1)
                )
            };
            return Ok(Some(Problem {
                kind: ProblemKind::Missing,
                segment: name,
                line: 1,
                id: None,
                detail: format!("segment {missing} is missing"),
            }));
        }
        last_number = n;
        report.segments += 1;
        let bytes = super::read_segment(&path)?;
        let scanned = scan(&bytes);
        let seqs: HashSet<u64> = scanned
            .lines
            .iter()
            .filter_map(|(_, _, m)| m.as_ref()?.get("seq")?.as_u64())
            .collect();
        for (index, (line, raw, parsed)) in scanned.lines.iter().enumerate() {
            let problem = |kind, id: Option<String>, detail: String| {
                Ok(Some(Problem {
                    kind,
                    segment: name.clone(),
                    line: *line,
                    id,
                    detail,
                }))
            };
            let Some(m) = parsed else {
                return problem(
                    ProblemKind::Malformed,
                    None,
                    "the line is not a JSON object".into(),
                );
            };
            let (Some(seq), Some(hash)) = (
                m.get("seq").and_then(Value::as_u64),
                m.get("hash").and_then(Value::as_str),
            ) else {
                return problem(
                    ProblemKind::Malformed,
                    None,
                    "the line has no integer seq and string hash".into(),
                );
            };
            let id = record_id(seq);
            let named = Some(id.clone());
            if serde_json::to_vec(m).ok().as_deref() != Some(raw.as_slice()) {
                return problem(
                    ProblemKind::Edited,
                    named,
                    "the line is not byte for byte as the log wrote it".into(),
                );
            }
            if record_hash(m) != hash {
                return problem(
                    ProblemKind::Edited,
                    named,
                    "its content does not match its hash".into(),
                );
            }
            if m.get("id").and_then(Value::as_str) != Some(id.as_str()) {
                return problem(
                    ProblemKind::Edited,
                    named,
                    format!("its id does not match its seq {seq}"),
                );
            }
            let is_marker = m.get("kind").and_then(Value::as_str) == Some(TORN_TAIL);
            if let Some((torn_segment, tail, torn_line)) = pending.take() {
                if index != 0 || !is_marker {
                    return Ok(Some(unmarked(&torn_segment, &tail, torn_line, false)));
                }
                let mark = m
                    .get("torn")
                    .and_then(|t| serde_json::from_value::<TornMark>(t.clone()).ok());
                let points_there = mark.as_ref().is_some_and(|k| {
                    k.segment == torn_segment
                        && k.offset == tail.offset
                        && k.bytes == tail.len
                        && k.sha256 == tail.sha256
                        && k.last_good_seq == expected - 1
                        && k.last_good_hash == prev
                });
                let Some(mark) = mark.filter(|_| points_there) else {
                    return problem(
                        ProblemKind::BadMarker,
                        named,
                        format!(
                            "the torn-tail marker does not point at the torn tail ({} bytes at byte {} of {torn_segment}, after {})",
                            tail.len,
                            tail.offset,
                            last_name(expected)
                        ),
                    );
                };
                report.markers.push((name.clone(), *line, mark));
            } else if is_marker {
                return problem(
                    ProblemKind::BadMarker,
                    named,
                    "a torn-tail marker where the segment before ends cleanly".into(),
                );
            }
            if seq < expected || (seq > expected && seqs.contains(&expected)) {
                return problem(
                    ProblemKind::OutOfOrder,
                    named,
                    format!("it follows {}", last_name(expected)),
                );
            }
            if seq > expected {
                let gone = if seq == expected + 1 {
                    record_id(expected)
                } else {
                    format!("{} to {}", record_id(expected), record_id(seq - 1))
                };
                return problem(
                    ProblemKind::Missing,
                    named,
                    format!("record {gone} before it is missing"),
                );
            }
            if m.get("prev_hash").and_then(Value::as_str) != Some(prev.as_str()) {
                return problem(
                    ProblemKind::Missing,
                    named,
                    format!(
                        "its prev_hash does not match the hash of {}: the record before it was removed or replaced",
                        last_name(expected)
                    ),
                );
            }
            expected = seq + 1;
            prev = hash.to_string();
            report.records += 1;
            report.last_id = Some(id);
            report.last_hash = Some(prev.clone());
        }
        if let Some((torn_segment, tail, torn_line)) = pending.take() {
            return Ok(Some(unmarked(&torn_segment, &tail, torn_line, false)));
        }
        if let Some(tail) = scanned.tail {
            pending = Some((name, tail, scanned.lines.len() + 1));
        }
    }
    Ok(pending.map(|(segment, tail, line)| unmarked(&segment, &tail, line, true)))
}

fn last_name(expected: u64) -> String {
    if expected <= 1 {
        "the start of the log".into()
    } else {
        record_id(expected - 1)
    }
}

fn unmarked(segment: &str, tail: &Tail, line: usize, newest: bool) -> Problem {
    let detail = if newest {
        format!(
            "the log ends in {} torn bytes at byte {} (a write cut short, e.g. by a crash); spindle marks it when it next opens the log",
            tail.len, tail.offset
        )
    } else {
        format!(
            "{} torn bytes at byte {} are not followed by a torn-tail marker opening the next segment",
            tail.len, tail.offset
        )
    };
    Problem {
        kind: ProblemKind::Torn,
        segment: segment.to_string(),
        line,
        id: None,
        detail,
    }
}
