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
        Format::Text => {
            let rows: Vec<[String; 6]> = records.iter().map(row).collect();
            let header =
                ["ID", "KIND", "STARTED", "TRIGGERS", "CHANGES", "OUTCOME"].map(String::from);
            let mut widths = [0usize; 6];
            for r in std::iter::once(&header).chain(&rows) {
                for (w, c) in widths.iter_mut().zip(r) {
                    *w = (*w).max(c.chars().count());
                }
            }
            for r in std::iter::once(&header).chain(&rows) {
                let cells: Vec<String> = r
                    .iter()
                    .zip(widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                println!("{}", cells.join("  ").trim_end());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One `list` row: id, kind, start time, triggers, number of planned actions, outcome.
fn row(r: &Record) -> [String; 6] {
    let f = &r.fields;
    if r.kind() == TORN_TAIL {
        let torn = f.get("torn");
        let at = |k: &str| torn.and_then(|t| t.get(k)).map(plain).unwrap_or_default();
        return [
            r.id().to_string(),
            r.kind().to_string(),
            r.str("recorded_at").to_string(),
            "-".into(),
            "-".into(),
            format!("torn tail at byte {} of {}", at("offset"), at("segment")),
        ];
    }
    let triggers = match f.get("triggers") {
        Some(Value::Array(a)) if !a.is_empty() => a.iter().map(plain).collect::<Vec<_>>().join(","),
        Some(Value::Array(_)) | None => "-".into(),
        Some(other) => plain(other),
    };
    let changes = match f.get("plan") {
        Some(Value::Array(a)) => a.len().to_string(),
        Some(Value::Object(p)) => match p.get("actions") {
            Some(Value::Array(a)) => a.len().to_string(),
            _ => "-".into(),
        },
        _ => "-".into(),
    };
    let outcome = f.get("outcome").map(plain).unwrap_or_else(|| "-".into());
    let started = f.get("started").map(plain).unwrap_or_else(|| "-".into());
    [
        r.id().to_string(),
        r.kind().to_string(),
        started,
        triggers,
        changes,
        outcome,
    ]
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
