//! `spindle evidence verify|list|show`: check the hash chain of the evidence log and read its records.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::Value;
use spindle::evidence::{self, Record, TORN_TAIL};

use super::Format;

#[derive(Args, Debug)]
pub struct EvidenceCmd {
    #[command(subcommand)]
    pub command: EvidenceSub,
}

#[derive(Subcommand, Debug)]
pub enum EvidenceSub {
    /// Recompute every hash and link; exit 1 naming the first broken, missing or edited record.
    Verify(VerifyArgs),
    /// List the newest records, newest first.
    List(ListArgs),
    /// Print one record (by id: r000042, r42 or 42) as JSON.
    Show(ShowArgs),
}

#[derive(Args, Debug)]
pub struct StateDir {
    /// The state directory; the log is in its `evidence/` folder [default: $SPINDLE_STATE_DIR or /var/lib/spindle].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

impl StateDir {
    /// `<state-dir>/evidence`, which must exist: a mistyped directory is an error, not an empty log.
    fn evidence_dir(&self) -> anyhow::Result<PathBuf> {
        let state = self
            .state_dir
            .clone()
            .unwrap_or_else(evidence::default_state_dir);
        let dir = evidence::evidence_dir(&state);
        if !dir.is_dir() {
            anyhow::bail!(
                "no evidence log at {} (is --state-dir right?)",
                dir.display()
            );
        }
        Ok(dir)
    }
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub state: StateDir,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub state: StateDir,
    /// How many records to list.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub limit: usize,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The record's id.
    pub id: String,
    #[command(flatten)]
    pub state: StateDir,
}

pub fn run(cmd: &EvidenceCmd) -> anyhow::Result<ExitCode> {
    match &cmd.command {
        EvidenceSub::Verify(args) => verify(args),
        EvidenceSub::List(args) => list(args),
        EvidenceSub::Show(args) => show(args),
    }
}

fn verify(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let dir = args.state.evidence_dir()?;
    let report = evidence::verify(&dir)?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => {
            for (segment, line, mark) in &report.markers {
                println!(
                    "note: {segment} line {line} marks a torn tail: {} bytes at byte {} of {}, after {}",
                    mark.bytes,
                    mark.offset,
                    mark.segment,
                    if mark.last_good_seq == 0 {
                        "the start of the log".to_string()
                    } else {
                        evidence::record_id(mark.last_good_seq)
                    }
                );
            }
            match &report.problem {
                None => println!(
                    "ok: {} records in {} segments, chain intact{}",
                    report.records,
                    report.segments,
                    match (&report.last_id, &report.last_hash) {
                        (Some(id), Some(hash)) => format!("; last {id} {hash}"),
                        _ => String::new(),
                    }
                ),
                Some(p) => {
                    println!("broken: {} records check out before it", report.records);
                    eprintln!("error: evidence chain broken at {p}");
                }
            }
        }
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn list(args: &ListArgs) -> anyhow::Result<ExitCode> {
    let records = evidence::list(&args.state.evidence_dir()?, args.limit)?;
    match args.format {
        Format::Json => {
            let all: Vec<&serde_json::Map<String, Value>> =
                records.iter().map(|r| &r.fields).collect();
            println!("{}", serde_json::to_string_pretty(&all)?);
        }
        Format::Text => print!("{}", list_text(&records)),
    }
    Ok(ExitCode::SUCCESS)
}

/// The widest line `list` prints, so that it fits an 80-column terminal.
const WIDTH: usize = 80;
/// The widest `TRIGGERS` cell; a longer one ends in `…`.
const TRIGGERS_WIDTH: usize = 16;

/// The `list` table: one row per record under a header, each line at most [`WIDTH`] characters
/// (the last cell is cut with `…` when a line would be longer; `show` prints it whole).
fn list_text(records: &[Record]) -> String {
    let header = ["ID", "STARTED", "TRIGGERS", "CHANGES", "OUTCOME"].map(String::from);
    let rows: Vec<[String; 5]> = records.iter().map(row).collect();
    let mut widths = [0usize; 5];
    for r in std::iter::once(&header).chain(&rows) {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(&fit(cells.join("  ").trim_end(), WIDTH));
        out.push('\n');
    }
    out
}

/// `s` cut to `width` characters, ending in `…` when it was longer.
fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut cut: String = s.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// One `list` row: id, start time (to the second), triggers, number of planned actions, and the
/// outcome (for a record of another kind than `reconcile`, its kind first).
fn row(r: &Record) -> [String; 5] {
    let f = &r.fields;
    let time = ["started", "at", "recorded_at"]
        .iter()
        .find_map(|k| f.get(*k).and_then(Value::as_str))
        .map(to_the_second)
        .unwrap_or_else(|| "-".into());
    if r.kind() == TORN_TAIL {
        let torn = f.get("torn");
        let at = |k: &str| torn.and_then(|t| t.get(k)).map(plain).unwrap_or_default();
        let segment = at("segment");
        let number = segment
            .trim_start_matches("segment-")
            .trim_end_matches(".jsonl");
        return [
            r.id().to_string(),
            time,
            "-".into(),
            "-".into(),
            format!("torn at {number}:{}", at("offset")),
        ];
    }
    let triggers = match f.get("triggers") {
        Some(Value::Array(a)) if !a.is_empty() => {
            fit(&counted(a.iter().map(plain)), TRIGGERS_WIDTH)
        }
        Some(Value::Array(_)) | None => "-".into(),
        Some(other) => fit(&plain(other), TRIGGERS_WIDTH),
    };
    let changes = match f.get("plan") {
        Some(Value::Array(a)) => a.len().to_string(),
        Some(Value::Object(p)) => match p.get("actions") {
            Some(Value::Array(a)) => a.len().to_string(),
            _ => "-".into(),
        },
        _ => "-".into(),
    };
    let outcome = f.get("outcome").or_else(|| f.get("action")).map(plain);
    let outcome = match (r.kind(), outcome) {
        (evidence::DEFAULT_KIND, Some(o)) => o,
        (evidence::DEFAULT_KIND, None) => "-".into(),
        (kind, Some(o)) => format!("{kind}: {o}"),
        (kind, None) => kind.to_string(),
    };
    [r.id().to_string(), time, triggers, changes, outcome]
}

/// `2026-11-30T02:00:03.123Z` as `2026-11-30T02:00:03Z`; other text as it is.
fn to_the_second(t: &str) -> String {
    match (t.find('.'), t.ends_with('Z')) {
        (Some(dot), true) if dot == 19 => format!("{}Z", &t[..dot]),
        _ => t.to_string(),
    }
}

/// Names in order of first appearance, each once, with `(n)` when it came `n` > 1 times:
/// `docker(3),file`.
fn counted(names: impl Iterator<Item = String>) -> String {
    let mut seen: Vec<(String, usize)> = Vec::new();
    for n in names {
        match seen.iter_mut().find(|(s, _)| *s == n) {
            Some((_, count)) => *count += 1,
            None => seen.push((n, 1)),
        }
    }
    seen.iter()
        .map(|(n, c)| {
            if *c > 1 {
                format!("{n}({c})")
            } else {
                n.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A value as one short cell: strings bare; objects by their `kind` or `type`, else compact JSON.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(m) => match m.get("kind").or_else(|| m.get("type")) {
            Some(Value::String(s)) => s.clone(),
            _ => v.to_string(),
        },
        other => other.to_string(),
    }
}

fn show(args: &ShowArgs) -> anyhow::Result<ExitCode> {
    match evidence::show(&args.state.evidence_dir()?, &args.id)? {
        Some(r) => {
            println!("{}", serde_json::to_string_pretty(&r.fields)?);
            Ok(ExitCode::SUCCESS)
        }
        None => anyhow::bail!("no evidence record {}", args.id),
    }
}
