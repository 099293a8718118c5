//! Evidence: every reconcile appended as one record to JSON Lines segments, fsynced and chained by SHA-256, with secrets redacted; verify, list and show.
//!
//! The format is specified in `docs/evidence.md`; this module is its only writer.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::redact::Redactor;
use crate::statedir::{Access, StateDir, StateDirError, open_checked, read_checked};

mod canonical;
mod read;
mod verify;

pub use canonical::{canonical_json, record_hash};
pub use read::{Record, list, show};
pub use verify::{Problem, ProblemKind, TornMark, VerifyReport, verify};

/// The `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The `kind` of the marker record that continues the chain after a torn tail.
pub const TORN_TAIL: &str = "torn-tail";

/// The `kind` a record gets when its body names none.
pub const DEFAULT_KIND: &str = "reconcile";

/// Default size at which a segment is closed and the next one started.
pub const DEFAULT_MAX_SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

/// How long an append waits for another process to finish its append (the lock is held for one
/// write and fsync). The wait never holds a runtime thread: see [`off_runtime`].
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Fields the log sets on every record; a body's own values for them are replaced.
pub const LOG_FIELDS: &[&str] = &["seq", "id", "kind", "prev_hash", "hash"];

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the evidence log {path} stayed locked by another process for {waited:?}; nothing was recorded. Is a spindle stuck writing it? (`fuser {path}/.lock` names the holder)"
    )]
    Busy {
        path: PathBuf,
        waited: std::time::Duration,
    },
    #[error(transparent)]
    State(#[from] StateDirError),
    #[error(
        "a record body may not claim kind {TORN_TAIL:?}: only the log writes torn-tail markers"
    )]
    ReservedKind,
    #[error("cannot serialize an evidence record: {0}")]
    Serialize(#[source] serde_json::Error),
    #[error(
        "{segment} line {line}: the last record has no valid seq and hash; run `spindle evidence verify`"
    )]
    Damaged { segment: String, line: usize },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EvidenceError + '_ {
    move |source| EvidenceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The state directory: `$SPINDLE_STATE_DIR`, or `/var/lib/spindle`.
pub fn default_state_dir() -> PathBuf {
    match std::env::var_os("SPINDLE_STATE_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from("/var/lib/spindle"),
    }
}

/// The evidence directory inside a state directory: `<state-dir>/evidence`.
pub fn evidence_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("evidence")
}

/// The file name of segment `n`: `segment-000001.jsonl`.
pub fn segment_name(n: u64) -> String {
    format!("segment-{n:06}.jsonl")
}

/// The record id of sequence number `seq`: `r000042`.
pub fn record_id(seq: u64) -> String {
    format!("r{seq:06}")
}

/// Parses `segment-000001.jsonl` into 1.
fn segment_number(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("segment-")?.strip_suffix(".jsonl")?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The bytes of a segment, opened without following a link and checked like every state-dir file.
pub(crate) fn read_segment(path: &Path) -> Result<Vec<u8>, EvidenceError> {
    read_checked(path)?.ok_or_else(|| {
        io(path)(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the segment vanished",
        ))
    })
}

/// Runs blocking work (a lock wait, a write and fsync) without holding a runtime thread: on a
/// multi-thread tokio runtime the worker hands its other tasks to another thread first
/// (`block_in_place`); elsewhere (a plain thread, `spawn_blocking`) it simply runs.
pub fn off_runtime<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Locks a log shared between tasks (the reconciler and the API), off the runtime threads.
pub fn lock_shared(log: &std::sync::Mutex<EvidenceLog>) -> std::sync::MutexGuard<'_, EvidenceLog> {
    off_runtime(|| log.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The segments in `dir`, oldest first, as (number, path); the folder is checked first.
pub(crate) fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, EvidenceError> {
    let mut out = Vec::new();
    if StateDir::existing(dir)?.is_none() {
        return Ok(out);
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        if let Some(n) = entry.file_name().to_str().and_then(segment_number) {
            out.push((n, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// How to open the log.
#[derive(Clone, Debug)]
pub struct Options {
    /// A segment that would grow past this size is closed and the next one started (a record is never split).
    pub max_segment_bytes: u64,
    /// How long an append waits for another process holding `.lock` before it fails.
    pub lock_wait: std::time::Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_segment_bytes: DEFAULT_MAX_SEGMENT_BYTES,
            lock_wait: LOCK_WAIT,
        }
    }
}

/// The chain state after the last good record.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Head {
    seq: u64,
    hash: String,
}

/// A torn tail found by scanning a segment: everything after the last complete record line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tail {
    /// Byte offset where the torn bytes begin.
    pub offset: u64,
    /// How many torn bytes there are.
    pub len: u64,
    /// SHA-256 of the torn bytes.
    pub sha256: String,
}

/// One line of a segment: (1-based line number, its bytes without the newline, the object it parses as).
pub(crate) type Line = (usize, Vec<u8>, Option<Map<String, Value>>);

/// A segment split into its record lines and its torn tail.
pub(crate) struct Scanned {
    pub lines: Vec<Line>,
    pub tail: Option<Tail>,
}

/// True when a parsed line can stand as a record: an object with an integer `seq` and a string `hash`.
fn is_record(m: &Map<String, Value>) -> bool {
    m.get("seq").and_then(Value::as_u64).is_some()
        && m.get("hash").and_then(Value::as_str).is_some()
}

/// Splits a segment's bytes: the torn tail is everything after the last newline-terminated line that is a record.
pub(crate) fn scan(bytes: &[u8]) -> Scanned {
    let mut lines = Vec::new();
    let mut start = 0usize;
    let mut good_end = 0usize;
    let mut good_lines = 0usize;
    while let Some(pos) = bytes
        .get(start..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
    {
        let end = start + pos;
        let line = &bytes[start..end];
        let parsed = serde_json::from_slice::<Value>(line)
            .ok()
            .and_then(|v| match v {
                Value::Object(m) => Some(m),
                _ => None,
            });
        if parsed.as_ref().is_some_and(is_record) {
            good_end = end + 1;
            good_lines = lines.len() + 1;
        }
        lines.push((lines.len() + 1, line.to_vec(), parsed));
        start = end + 1;
    }
    // Lines past the last record belong to the tail.
    lines.truncate(good_lines);
    Scanned {
        lines,
        tail: tail_after(bytes, good_end),
    }
}

/// The torn tail: the bytes after `good_end`, if any.
fn tail_after(bytes: &[u8], good_end: usize) -> Option<Tail> {
    (good_end < bytes.len()).then(|| Tail {
        offset: good_end as u64,
        len: (bytes.len() - good_end) as u64,
        sha256: hex::encode(Sha256::digest(&bytes[good_end..])),
    })
}

/// [`scan`] for the chain head only: the last record line (with its line number) and the torn
/// tail, found from the end, so that opening the log does not parse every record of its newest
/// segment (up to 8 MiB of JSON for each one-shot `spindle apply`).
pub(crate) fn scan_last(bytes: &[u8]) -> Scanned {
    let mut end = bytes.iter().rposition(|&b| b == b'\n');
    while let Some(e) = end {
        let start = bytes[..e]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        let line = &bytes[start..e];
        let parsed = serde_json::from_slice::<Value>(line)
            .ok()
            .and_then(|v| match v {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .filter(is_record);
        if let Some(m) = parsed {
            let number = bytes[..start].iter().filter(|&&b| b == b'\n').count() + 1;
            return Scanned {
                lines: vec![(number, line.to_vec(), Some(m))],
                tail: tail_after(bytes, e + 1),
            };
        }
        end = start.checked_sub(1);
    }
    Scanned {
        lines: Vec::new(),
        tail: tail_after(bytes, 0),
    }
}

/// The append-only log in `<state-dir>/evidence/`.
pub struct EvidenceLog {
    dir: PathBuf,
    /// The checked evidence folder (0700, ours): every file is opened through it.
    state: StateDir,
    options: Options,
    head: Head,
    /// The segment appends go to: (number, open file, current size); `None` until the first append needs one.
    current: Option<(u64, File, u64)>,
    /// The number of the newest segment on disk (0 when there is none).
    newest: u64,
    /// The torn tail found by `open`, if any (already marked).
    torn: Option<TornMark>,
    /// A write failed: the file may end in a partial line, so the next append recovers first.
    stale: bool,
    /// `.lock`: held (flock) only while one record is appended, so several processes (a `spindle run` and a
    /// `spindle apply` of other projects) can share the log; each re-reads the chain head under it.
    lock: File,
}

/// What `append` returns: the record's id and hash.
#[derive(Clone, Debug)]
pub struct Appended {
    pub id: String,
    pub hash: String,
}

impl EvidenceLog {
    /// Opens (creating) the log in `dir` (the evidence directory, see [`evidence_dir`]); detects a torn last
    /// line left by a crash and, if there is one, writes the torn-tail marker as the first record of a new segment.
    pub fn open(dir: &Path) -> Result<Self, EvidenceError> {
        Self::open_with(dir, Options::default())
    }

    /// [`EvidenceLog::open`] with options.
    pub fn open_with(dir: &Path, options: Options) -> Result<Self, EvidenceError> {
        let fresh = !dir.is_dir();
        let state = StateDir::open(dir)?;
        if fresh && let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
        let lock = state.open_file(".lock", Access::Lock)?;
        let mut log = Self {
            dir: dir.to_path_buf(),
            state,
            options,
            head: Head {
                seq: 0,
                hash: GENESIS.to_string(),
            },
            current: None,
            newest: 0,
            torn: None,
            stale: false,
            lock,
        };
        log.locked(Self::recover)?;
        Ok(log)
    }

    /// Runs `f` holding the exclusive lock on `.lock`, waiting up to `lock_wait` for another
    /// writer; the wait and the write never hold a runtime thread ([`off_runtime`]).
    fn locked<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, EvidenceError>,
    ) -> Result<T, EvidenceError> {
        off_runtime(|| {
            let started = std::time::Instant::now();
            loop {
                match self.lock.try_lock() {
                    Ok(()) => break,
                    Err(std::fs::TryLockError::WouldBlock)
                        if started.elapsed() < self.options.lock_wait =>
                    {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    Err(std::fs::TryLockError::WouldBlock) => {
                        return Err(EvidenceError::Busy {
                            path: self.dir.clone(),
                            waited: self.options.lock_wait,
                        });
                    }
                    Err(std::fs::TryLockError::Error(e)) => {
                        return Err(io(&self.dir.join(".lock"))(e));
                    }
                }
            }
            let result = f(self);
            let _ = self.lock.unlock();
            result
        })
    }

    /// Under the lock, before an append: when another process appended since (a new segment, or the current
    /// one grew), or a write of ours failed, reads the chain head from disk again.
    fn refresh(&mut self) -> Result<(), EvidenceError> {
        let newest = segments(&self.dir)?.last().map_or(0, |(n, _)| *n);
        let unchanged = !self.stale
            && match &self.current {
                Some((n, file, size)) => {
                    let path = self.dir.join(segment_name(*n));
                    newest == *n && file.metadata().map_err(io(&path))?.len() == *size
                }
                None => newest == 0,
            };
        if unchanged { Ok(()) } else { self.recover() }
    }

    /// Reads the chain head from disk and, when the newest segment ends in a torn tail, writes the marker
    /// (in a new segment). Runs on open, and before the next append after a failed write.
    fn recover(&mut self) -> Result<(), EvidenceError> {
        let segs = segments(&self.dir)?;
        self.current = None;
        self.newest = segs.last().map_or(0, |(n, _)| *n);
        self.head = Head {
            seq: 0,
            hash: GENESIS.to_string(),
        };
        // The chain head is the last record of the newest segment that has one. A crash can leave the newest
        // segment empty (created, nothing written yet): the torn tail is looked for in the newest non-empty one.
        let mut torn: Option<(u64, Tail)> = None;
        let mut empty_newest: Option<(u64, PathBuf)> = None;
        let mut tail_checked = false;
        for (n, path) in segs.iter().rev() {
            let bytes = read_segment(path)?;
            if bytes.is_empty() && !tail_checked {
                if Some(*n) == segs.last().map(|(last, _)| *last) {
                    empty_newest = Some((*n, path.clone()));
                }
                continue;
            }
            let scanned = scan_last(&bytes);
            if !tail_checked {
                tail_checked = true;
                torn = scanned.tail.clone().map(|t| (*n, t));
            }
            if let Some((line, _, Some(m))) = scanned.lines.last() {
                let seq = m.get("seq").and_then(Value::as_u64);
                let hash = m.get("hash").and_then(Value::as_str);
                let (Some(seq), Some(hash)) = (seq, hash) else {
                    return Err(EvidenceError::Damaged {
                        segment: segment_name(*n),
                        line: *line,
                    });
                };
                self.head = Head {
                    seq,
                    hash: hash.to_string(),
                };
                break;
            }
        }
        match torn {
            Some((n, tail)) => {
                let mark = TornMark {
                    segment: segment_name(n),
                    offset: tail.offset,
                    bytes: tail.len,
                    sha256: tail.sha256,
                    last_good_seq: self.head.seq,
                    last_good_hash: self.head.hash.clone(),
                };
                // The marker opens a segment of its own; an empty newest segment already is one.
                if let Some((n, path)) = &empty_newest {
                    let file = open_checked(path, Access::Append)?;
                    self.current = Some((*n, file, 0));
                }
                self.write_marker(&mark)?;
                self.torn = Some(mark);
            }
            None => {
                if let Some((n, path)) = segs.last() {
                    let file = open_checked(path, Access::Append)?;
                    let size = file.metadata().map_err(io(path))?.len();
                    self.current = Some((*n, file, size));
                }
            }
        }
        self.stale = false;
        Ok(())
    }

    /// The evidence directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The torn tail `open` (or the recovery after a failed write) found and marked, if any.
    pub fn torn_tail(&self) -> Option<&TornMark> {
        self.torn.as_ref()
    }

    /// The sequence number and hash of the last record (0 and [`GENESIS`] for an empty log).
    pub fn head(&self) -> (u64, &str) {
        (self.head.seq, &self.head.hash)
    }

    /// Appends one record: `body` is a JSON object describing the reconcile; the log adds
    /// `seq`, `id`, `prev_hash` and `hash`, redacts it once more, writes and fsyncs it.
    pub fn append(
        &mut self,
        body: serde_json::Map<String, serde_json::Value>,
        redactor: &Redactor,
    ) -> Result<Appended, EvidenceError> {
        if body.get("kind").and_then(Value::as_str) == Some(TORN_TAIL) {
            return Err(EvidenceError::ReservedKind);
        }
        let kind = match body.get("kind") {
            Some(Value::String(k)) if !k.is_empty() => k.clone(),
            _ => DEFAULT_KIND.to_string(),
        };
        self.locked(|log| {
            log.refresh()?;
            log.write_record(kind, body, redactor)
        })
    }

    fn write_marker(&mut self, mark: &TornMark) -> Result<Appended, EvidenceError> {
        let mut body = Map::new();
        body.insert(
            "recorded_at".into(),
            Value::String(
                humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            ),
        );
        body.insert(
            "torn".into(),
            serde_json::to_value(mark).map_err(EvidenceError::Serialize)?,
        );
        // The marker is the first record of its segment (`recover` has set `current` to an empty one or
        // to none, so that a new one is created): the torn segment is never written again.
        self.write_record(TORN_TAIL.to_string(), body, &Redactor::default())
    }

    fn write_record(
        &mut self,
        kind: String,
        body: Map<String, Value>,
        redactor: &Redactor,
    ) -> Result<Appended, EvidenceError> {
        let seq = self.head.seq + 1;
        let id = record_id(seq);
        let mut record = Map::new();
        record.insert("seq".into(), Value::from(seq));
        record.insert("id".into(), Value::String(id.clone()));
        record.insert("kind".into(), Value::String(kind));
        record.insert("prev_hash".into(), Value::String(self.head.hash.clone()));
        for (k, v) in body {
            if !LOG_FIELDS.contains(&k.as_str()) {
                record.insert(k, v);
            }
        }
        let mut value = Value::Object(record);
        redactor.tree(&mut value);
        canonical::stabilize_floats(&mut value);
        let Value::Object(mut record) = value else {
            return Err(EvidenceError::ReservedKind);
        };
        // The log's own fields survive redaction unchanged (a secret equal to "1" must not break the chain).
        record.insert("seq".into(), Value::from(seq));
        record.insert("id".into(), Value::String(id.clone()));
        record.insert("prev_hash".into(), Value::String(self.head.hash.clone()));
        let hash = record_hash(&record);
        record.insert("hash".into(), Value::String(hash.clone()));
        let mut line = serde_json::to_vec(&record).map_err(EvidenceError::Serialize)?;
        line.push(b'\n');
        if let Err(e) = self.write_line(&line) {
            // The line may be partly written, or written but not durable: rescan before the next append.
            self.stale = true;
            self.current = None;
            return Err(e);
        }
        self.head = Head {
            seq,
            hash: hash.clone(),
        };
        Ok(Appended { id, hash })
    }

    /// Writes one line to the current segment (rotating first when it would grow too big) and fsyncs it.
    fn write_line(&mut self, line: &[u8]) -> Result<(), EvidenceError> {
        let len = line.len() as u64;
        let rotate = match &self.current {
            None => true,
            Some((_, _, size)) => *size > 0 && size + len > self.options.max_segment_bytes,
        };
        if rotate {
            let n = self.newest + 1;
            let path = self.dir.join(segment_name(n));
            let file = self.state.open_file(&segment_name(n), Access::AppendNew)?;
            file.sync_all().map_err(io(&path))?;
            self.state.sync()?;
            self.newest = n;
            self.current = Some((n, file, 0));
        }
        let Some((n, file, size)) = self.current.as_mut() else {
            return Ok(());
        };
        let path = self.dir.join(segment_name(*n));
        file.write_all(line)
            .and_then(|()| file.sync_all())
            .map_err(io(&path))?;
        *size += len;
        Ok(())
    }
}

/// Fsyncs a folder, opened without following a link.
fn sync_dir(dir: &Path) -> Result<(), EvidenceError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

#[cfg(test)]
mod tests;
