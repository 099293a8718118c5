//! Reading records back: `list` the newest ones and `show` one by id.

use std::path::Path;

use serde_json::{Map, Value};

use super::{EvidenceError, scan, segments};

/// One record as stored, with where it was found.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The segment file name (`segment-000001.jsonl`).
    pub segment: String,
    /// The 1-based line number in that segment.
    pub line: usize,
    /// The record as stored.
    pub fields: Map<String, Value>,
}

impl Record {
    pub fn seq(&self) -> u64 {
        self.fields.get("seq").and_then(Value::as_u64).unwrap_or(0)
    }
    pub fn id(&self) -> &str {
        self.str("id")
    }
    pub fn kind(&self) -> &str {
        self.str("kind")
    }
    pub fn hash(&self) -> &str {
        self.str("hash")
    }
    /// A string field, or "" when it is missing or not a string.
    pub fn str(&self, key: &str) -> &str {
        self.fields.get(key).and_then(Value::as_str).unwrap_or("")
    }
}

/// Reads every record of one segment (torn bytes are skipped).
fn records_of(name: &str, path: &Path) -> Result<Vec<Record>, EvidenceError> {
    let bytes = super::read_segment(path)?;
    Ok(scan(&bytes)
        .lines
        .into_iter()
        .filter_map(|(line, _, parsed)| {
            parsed.map(|fields| Record {
                segment: name.to_string(),
                line,
                fields,
            })
        })
        .collect())
}

/// The newest `limit` records of the log in `dir`, newest first.
pub fn list(dir: &Path, limit: usize) -> Result<Vec<Record>, EvidenceError> {
    let mut out = Vec::new();
    for (_, path) in segments(dir)?.iter().rev() {
        if out.len() >= limit {
            break;
        }
        let name = file_name(path);
        let recs = records_of(&name, path)?;
        out.extend(recs.into_iter().rev().take(limit - out.len()));
    }
    Ok(out)
}

/// The record with id `id` (`r000042`; `r42` and `42` name the same record), if there is one.
pub fn show(dir: &Path, id: &str) -> Result<Option<Record>, EvidenceError> {
    let Some(seq) = parse_id(id) else {
        return Ok(None);
    };
    for (_, path) in segments(dir)?.iter().rev() {
        let name = file_name(path);
        let recs = records_of(&name, path)?;
        if let Some(r) = recs.into_iter().find(|r| r.seq() == seq) {
            return Ok(Some(r));
        }
    }
    Ok(None)
}

/// `r000042`, `r42` or `42` → 42.
pub(crate) fn parse_id(id: &str) -> Option<u64> {
    let digits = id.strip_prefix('r').unwrap_or(id);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
