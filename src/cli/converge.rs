//! `spindle plan` and `spindle apply`: load, observe, plan, and (for apply) converge, with text or JSON output.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::{Map, Value, json};
use spindle::apply::{self, ActionResult, Outcome, Progress};
use spindle::desired::{self, typed::DesiredState};
use spindle::engine::Engine;
use spindle::evidence::{self, EvidenceLog};
use spindle::observe::seen::LastSeen;
use spindle::observe::snapshot::Snapshot;
use spindle::plan::{self, Action, Plan, PlanOptions};
use spindle::redact::{self, Redactor};
use spindle::{lock, observe, record};

use super::{Format, Global, request};

/// Exit status of `plan` when changes are pending.
const PENDING: u8 = 2;

#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Plan the removal of containers of services no longer in the desired state.
    #[arg(long)]
    pub remove_orphans: bool,
    /// Plan as `apply --no-start` would: stopped containers are not planned to start.
    #[arg(long)]
    pub no_start: bool,
    /// Inspect every container, also those the list call settles: finds a resource limit changed
    /// with `docker update` since the container was created (see docs/architecture.md).
    #[arg(long)]
    pub inspect_all: bool,
    /// Diagnostic: compare every container spindle did not create with its service field by
    /// field, also when Compose's config-hash label already settles it (implies --inspect-all;
    /// see docs/cli.md).
    #[arg(long)]
    pub compare_fields: bool,
    /// The state dir of the `spindle run` or `apply` that manages the project, whose memory of
    /// the containers (the recovery rule) shows follows still due (default: $SPINDLE_STATE_DIR
    /// or /var/lib/spindle). Read only.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct ApplyArgs {
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Remove containers of services no longer in the desired state.
    #[arg(long)]
    pub remove_orphans: bool,
    /// Inspect every container, also those the list call settles: finds a resource limit changed
    /// with `docker update` since the container was created (see docs/architecture.md).
    #[arg(long)]
    pub inspect_all: bool,
    /// Diagnostic: compare every container spindle did not create with its service field by
    /// field, also when Compose's config-hash label already settles it (implies --inspect-all;
    /// see docs/cli.md).
    #[arg(long)]
    pub compare_fields: bool,
    /// How long a container may take to become healthy (or running) before its change is rolled back (Go-style duration: 90s, 2m).
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// How many engine writes (create, start, stop, …) run at once; 0 sets no bound, as Compose
    /// does by default. Health gates and dependency waits never take a slot.
    #[arg(long, default_value_t = 0)]
    pub parallelism: usize,
    /// Where the evidence record of this apply is appended (default: $SPINDLE_STATE_DIR or /var/lib/spindle).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Write no evidence record (development only: the change then leaves no proof).
    #[arg(long, conflicts_with = "state_dir")]
    pub no_evidence: bool,
    /// Create containers without starting them, as `docker compose up --no-start`: no start,
    /// no dependency wait, no health gate; stopped containers stay stopped.
    #[arg(long)]
    pub no_start: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    spindle::spec::units::duration_ns(s)
        .and_then(|ns| u64::try_from(ns).ok())
        .map(Duration::from_nanos)
        .ok_or_else(|| format!("{s:?} is not a duration; write it like 90s, 2m or 1m30s"))
}

/// The loaded desired state and what output needs from it.
struct Loaded {
    desired: DesiredState,
    model: serde_json::Value,
    redactor: Redactor,
    /// Policy violations: those in mode `enforce` block apply, those in mode `warn` are reported.
    findings: spindle::policy::Findings,
    /// The record fields of the loaded project: `project`, `revision`, `profile`.
    head: Map<String, Value>,
}

fn load(g: &Global) -> anyhow::Result<Loaded> {
    let project = desired::load(&request(g)?)?;
    for w in &project.warnings {
        tracing::warn!("{w}");
    }
    let revision = desired::revision::revision(&project.working_dir);
    let mut head = Map::new();
    record::insert_loaded(&mut head, &project, revision.as_deref());
    let desired = DesiredState::from_project(&project, revision)?;
    let findings = spindle::policy::findings(&desired, &project);
    Ok(Loaded {
        desired,
        findings,
        head,
        model: project.model.clone(),
        redactor: Redactor::new(project.secret_values.clone()),
    })
}

async fn observe_and_plan(
    engine: &Engine,
    l: &Loaded,
    remove_orphans: bool,
    no_start: bool,
    last_seen: &LastSeen,
    inspect_all: bool,
    compare_fields: bool,
) -> anyhow::Result<(Snapshot, Plan)> {
    let snapshot = observe_project(engine, l, inspect_all || compare_fields).await?;
    let plan = plan_of(
        l,
        &snapshot,
        remove_orphans,
        no_start,
        last_seen,
        compare_fields,
    );
    Ok((snapshot, plan))
}

/// The project's snapshot: the list call settles the containers it can (docs/architecture.md,
/// "The list-call rule"); `inspect_all` inspects every one.
async fn observe_project(
    engine: &Engine,
    l: &Loaded,
    inspect_all: bool,
) -> anyhow::Result<Snapshot> {
    let live_of = |s: &desired::typed::DesiredService| spindle::spec::live_config(s).ok();
    let depth = if inspect_all {
        observe::Depth::Full
    } else {
        observe::Depth::Listed {
            live: &live_of,
            inspect: &[],
        }
    };
    Ok(observe::snapshot_with(engine, &l.desired, depth).await?)
}

fn plan_of(
    l: &Loaded,
    snapshot: &Snapshot,
    remove_orphans: bool,
    no_start: bool,
    last_seen: &LastSeen,
    compare_fields: bool,
) -> Plan {
    let mut plan = plan::plan(
        &l.desired,
        snapshot,
        &PlanOptions {
            remove_orphans,
            redactor: l.redactor.clone(),
            last_seen: last_seen.clone(),
            compare_fields,
        },
    );
    plan.blockers.extend(l.findings.blockers.iter().cloned());
    plan.warnings.extend(l.findings.warnings.iter().cloned());
    if no_start {
        plan = plan.without_starts();
    }
    plan
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub fn plan_cmd(g: &Global, args: &PlanArgs) -> anyhow::Result<ExitCode> {
    // Bad input fails here, before the engine is contacted.
    let loaded = load(g)?;
    // The recovery rule's memory of `spindle run` and `spindle apply` (read only): the plan shows
    // the dependents that follow a replacement they have not followed yet.
    let last_seen = spindle::seen::load_or_nothing(
        &args
            .state_dir
            .clone()
            .unwrap_or_else(evidence::default_state_dir),
        &loaded.desired.project,
    );
    let plan = runtime()?
        .block_on(async {
            let engine = Engine::connect().await?;
            observe_and_plan(
                &engine,
                &loaded,
                args.remove_orphans,
                args.no_start,
                &last_seen,
                args.inspect_all,
                args.compare_fields,
            )
            .await
        })?
        .1;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
        _ => print!("{}", plan_text(&plan)),
    }
    if !plan.blockers.is_empty() {
        return Ok(ExitCode::from(1));
    }
    Ok(if plan.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(PENDING)
    })
}

pub fn apply_cmd(g: &Global, args: &ApplyArgs) -> anyhow::Result<ExitCode> {
    // Evidence is the proof of every change: without a writable log nothing on the host is touched.
    let mut log = if args.no_evidence {
        tracing::warn!("--no-evidence: this apply writes no evidence record");
        None
    } else {
        Some(open_evidence(args.state_dir.as_ref())?)
    };
    let mut body = Map::new();
    body.insert("started".into(), now_rfc3339().into());
    body.insert("triggers".into(), json!([cli_trigger(args)]));
    let result = apply_recorded(g, args, &mut body, log.as_mut());
    body.insert("finished".into(), now_rfc3339().into());
    if let Err(e) = &result {
        body.entry("outcome")
            .or_insert_with(|| Value::from("error"));
        body.entry("error")
            .or_insert_with(|| Value::from(redact::scrub(&format!("{e:#}"))));
    }
    if let Some(log) = log.as_mut() {
        let appended = log.append(body, &redact::registered()).with_context(|| {
            format!(
                "cannot append the evidence record of this apply to {}",
                log.dir().display()
            )
        });
        match (appended, &result) {
            (Ok(a), _) => {
                tracing::info!(record = %a.id, dir = %log.dir().display(), "evidence recorded")
            }
            // The apply's own error (an unrecorded intent: nothing changed) says more.
            (Err(e), Err(_)) => tracing::error!(error = %redact::scrub(&format!("{e:#}"))),
            (Err(e), Ok(_)) => return Err(e),
        }
    }
    result
}

/// Opens the evidence log in the state directory, or says which directory failed and how to choose another.
fn open_evidence(state_dir: Option<&PathBuf>) -> anyhow::Result<EvidenceLog> {
    let state_dir = state_dir
        .cloned()
        .unwrap_or_else(evidence::default_state_dir);
    let dir = evidence::evidence_dir(&state_dir);
    // The state dir itself is checked (owner, mode, no link) before the log inside it is opened.
    let opened = spindle::statedir::StateDir::open(&state_dir)
        .map_err(anyhow::Error::from)
        .and_then(|_| Ok(EvidenceLog::open(&dir)?));
    opened.with_context(|| {
        format!(
            "cannot write the evidence log in {}: spindle apply records every change there and changes nothing without it; \
             give a writable state directory with --state-dir DIR or SPINDLE_STATE_DIR (or, for development only, pass --no-evidence)",
            dir.display()
        )
    })
}

/// The trigger of a one-shot apply: the command, its options, and who ran it when the environment says so.
fn cli_trigger(args: &ApplyArgs) -> Value {
    let user = ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
    json!({
        "kind": "cli",
        "command": "apply",
        "user": user,
        "remove_orphans": args.remove_orphans,
        "no_start": args.no_start,
    })
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// Loads, plans and applies, filling `body` with what the evidence record says about it.
fn apply_recorded(
    g: &Global,
    args: &ApplyArgs,
    body: &mut Map<String, Value>,
    mut log: Option<&mut EvidenceLog>,
) -> anyhow::Result<ExitCode> {
    let loaded = match load(g) {
        Ok(l) => l,
        Err(e) => {
            body.insert("outcome".into(), "invalid-desired-state".into());
            body.insert("error".into(), redact::scrub(&format!("{e:#}")).into());
            return Err(e);
        }
    };
    body.extend(loaded.head.clone());
    let state_dir = (!args.no_evidence).then(|| {
        args.state_dir
            .clone()
            .unwrap_or_else(evidence::default_state_dir)
    });
    let _lock = lock::acquire(
        &lock::dir_for(state_dir.as_deref())?,
        &loaded.desired.project,
    )?;
    // The recovery rule's memory, shared with `spindle run` (none with --no-evidence).
    let memory = state_dir.map(|dir| {
        let seen = spindle::seen::load_or_nothing(&dir, &loaded.desired.project);
        (dir, seen)
    });
    let mut intents: Vec<Value> = Vec::new();
    let mut last_seen = memory.as_ref().map(|m| m.1.clone()).unwrap_or_default();
    let (plan, report, services) = runtime()?.block_on(async {
        let engine = Engine::connect().await?;
        let opts = apply::Options {
            timeout: args.timeout,
            parallelism: args.parallelism,
            redactor: loaded.redactor.clone(),
            stop: apply::StopSignal::never(),
            no_start: args.no_start,
        };
        let progress = Lines::new(args.format == Format::Text);
        // Finishing an interrupted recreate may put the old container back; the change it was
        // making is then still pending, so plan again (a bounded number of times). The report
        // keeps the results and writes of every round.
        let mut round = 0;
        let mut earlier = (Vec::new(), Vec::new());
        // The previous round's observation, plan and report, to move the memory on from.
        let mut previous: Option<(LastSeen, Plan, apply::Report)> = None;
        let (snapshot, plan, mut report) = loop {
            round += 1;
            let snapshot =
                observe_project(&engine, &loaded, args.inspect_all || args.compare_fields).await?;
            if let Some((planned, plan, report)) = previous.take() {
                last_seen = spindle::seen::advance(
                    &last_seen,
                    &spindle::seen::Shape::of(&loaded.desired),
                    &planned,
                    &plan,
                    &report,
                    &LastSeen::of(&snapshot),
                )
                .seen;
            }
            let plan = plan_of(
                &loaded,
                &snapshot,
                args.remove_orphans,
                args.no_start,
                &last_seen,
                args.compare_fields,
            );
            // No engine write without its intent on record (the plan's hash and actions).
            if let Some(log) = log.as_mut()
                && spindle::intent::writes(&plan)
            {
                let a = spindle::intent::record(log, &plan, &redact::registered())?;
                intents.push(a.id.into());
            }
            let report = apply::apply(
                &engine,
                &loaded.desired,
                &loaded.model,
                &plan,
                &opts,
                &progress,
            )
            .await;
            let resumed = plan
                .actions
                .iter()
                .any(|a| matches!(a.kind, plan::ActionKind::ResumeRecreate { .. }));
            if !resumed || !report.converged || round >= 3 {
                break (snapshot, plan, report);
            }
            earlier.0.extend(report.results.clone());
            earlier.1.extend(report.write_log.clone());
            previous = Some((LastSeen::of(&snapshot), plan, report));
        };
        let planned = LastSeen::of(&snapshot);
        progress.finish();
        report.results.splice(0..0, earlier.0);
        report.write_log.splice(0..0, earlier.1);
        // The final state of each service, as the engine reports it after the changes.
        let after = if report.results.is_empty() {
            Ok(snapshot)
        } else {
            observe::snapshot(&engine, &loaded.desired).await
        };
        // The memory moves on to the final observation, except for changes not followed yet (a
        // blocked apply changed nothing).
        if let (Some((dir, seen)), Ok(after)) = (&memory, &after)
            && report.blockers.is_empty()
        {
            let adv = spindle::seen::advance(
                &last_seen,
                &spindle::seen::Shape::of(&loaded.desired),
                &planned,
                &plan,
                &report,
                &LastSeen::of(after),
            );
            if adv.seen != *seen {
                spindle::seen::save_off_runtime(
                    dir.clone(),
                    loaded.desired.project.clone(),
                    adv.seen,
                )
                .await;
            }
        }
        let services = match after {
            Ok(after) => record::services(&loaded.desired, &after, &Default::default()),
            Err(e) => json!({"error": redact::scrub(&e.to_string())}),
        };
        anyhow::Ok((plan, report, services))
    })?;
    if !intents.is_empty() {
        body.insert("intent".into(), Value::Array(intents));
    }
    record::insert_applied(body, &plan, &report, services);
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        _ => print!("{}", apply_summary(&plan, &report)),
    }
    Ok(if report.converged {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn action_line(a: &Action) -> String {
    let what = match &a.kind {
        plan::ActionKind::CreateNetwork { name, .. }
        | plan::ActionKind::RecreateNetwork { name, .. } => format!("network {name}"),
        plan::ActionKind::CreateVolume { name, .. } => format!("volume {name}"),
        plan::ActionKind::EnsureImage { image, .. } => format!("image {image}"),
        plan::ActionKind::Create { service, number }
        | plan::ActionKind::Recreate {
            service, number, ..
        }
        | plan::ActionKind::ResumeRecreate {
            service, number, ..
        } => format!("{service} #{number}"),
        plan::ActionKind::Start { container }
        | plan::ActionKind::Restart { container }
        | plan::ActionKind::Update { container, .. }
        | plan::ActionKind::Remove { container } => container.name.clone(),
        plan::ActionKind::DisconnectNetwork { container, network } => {
            format!("{} from {network}", container.name)
        }
    };
    format!("{:<15} {what}", a.kind.verb())
}

fn plan_text(p: &Plan) -> String {
    let mut out = String::new();
    if p.is_empty() {
        out.push_str(&format!("project {}: in sync\n", p.project));
    } else {
        out.push_str(&format!(
            "project {}: {} action(s) pending\n",
            p.project,
            p.actions.len()
        ));
    }
    for a in &p.actions {
        out.push_str(&format!("  {}  ({})\n", action_line(a), a.reason));
        if let Some(d) = &a.diff {
            for l in d.lines() {
                out.push_str(&format!("      {l}\n"));
            }
        }
    }
    for o in &p.orphans {
        out.push_str(&format!(
            "  orphan          {} (service {} is not in the desired state; --remove-orphans removes it)\n",
            o.name, o.service
        ));
    }
    for b in &p.blockers {
        out.push_str(&format!("  blocked: {b}\n"));
    }
    for w in &p.warnings {
        out.push_str(&format!("  warning: {w}\n"));
    }
    if !p.in_sync.is_empty() {
        out.push_str(&format!("  in sync: {}\n", p.in_sync.join(", ")));
    }
    out
}

fn apply_summary(plan: &Plan, r: &apply::Report) -> String {
    let mut out = String::new();
    for b in &r.blockers {
        out.push_str(&format!("blocked: {b}\n"));
    }
    for w in &plan.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    if plan.is_empty() && r.blockers.is_empty() {
        out.push_str(&format!("project {}: in sync, nothing to do\n", r.project));
        return out;
    }
    let failed: Vec<&ActionResult> = r.failed().collect();
    if r.converged {
        out.push_str(&format!(
            "project {}: converged ({} action(s), {} engine write(s), {:.1}s)\n",
            r.project,
            r.results.len(),
            r.writes,
            r.elapsed_ms as f64 / 1000.0
        ));
    } else {
        out.push_str(&format!("project {}: NOT converged\n", r.project));
        for f in failed {
            out.push_str(&format!(
                "  {} {}: {}\n",
                match f.outcome {
                    Outcome::RolledBack => "rolled back",
                    _ => "failed",
                },
                action_line(&f.action),
                f.error.as_deref().unwrap_or("")
            ));
        }
        let skipped = r
            .results
            .iter()
            .filter(|x| x.outcome == Outcome::Skipped)
            .count();
        if skipped > 0 {
            out.push_str(&format!(
                "  {skipped} action(s) skipped because of the failures above\n"
            ));
        }
    }
    out
}

/// One line per finished action on stderr, with a live spinner per running action on a terminal.
struct Lines {
    enabled: bool,
    bars: Option<MultiProgress>,
    running: Mutex<Vec<(usize, ProgressBar)>>,
}

impl Lines {
    fn new(enabled: bool) -> Self {
        let tty = enabled && std::io::stderr().is_terminal();
        Self {
            enabled,
            bars: tty.then(MultiProgress::new),
            running: Mutex::new(Vec::new()),
        }
    }

    fn finish(&self) {
        if let Some(m) = &self.bars {
            let _ = m.clear();
        }
    }
}

impl Progress for Lines {
    fn started(&self, a: &Action) {
        let Some(m) = &self.bars else { return };
        let bar = m.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(action_line(a));
        bar.enable_steady_tick(Duration::from_millis(120));
        if let Ok(mut r) = self.running.lock() {
            r.push((a.id, bar));
        }
    }

    fn finished(&self, r: &ActionResult) {
        if !self.enabled {
            return;
        }
        if let Ok(mut running) = self.running.lock()
            && let Some(i) = running.iter().position(|(id, _)| *id == r.action.id)
        {
            let (_, bar) = running.remove(i);
            bar.finish_and_clear();
        }
        let mark = match r.outcome {
            Outcome::Ok => "ok",
            Outcome::Failed => "FAILED",
            Outcome::RolledBack => "ROLLED BACK",
            Outcome::Skipped => "skipped",
        };
        let detail = r
            .error
            .clone()
            .or_else(|| r.readiness.clone())
            .unwrap_or_else(|| r.action.reason.clone());
        let line = format!(
            "{:<11} {}  {:.1}s  ({detail})",
            mark,
            action_line(&r.action),
            r.elapsed_ms as f64 / 1000.0
        );
        match &self.bars {
            Some(m) => {
                let _ = m.println(spindle::redact::scrub(&line));
            }
            None => eprintln!("{}", spindle::redact::scrub(&line)),
        }
    }
}
