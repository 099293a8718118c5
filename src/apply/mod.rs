//! Applying a plan: runs its actions as a dependency graph, with a bound on concurrent engine writes, health gates, safe recreates and rollback.
//!
//! An action starts as soon as every action it waits for (`after`) succeeded. Every engine write
//! goes through [`Recorder`], which holds one of the `--parallelism` write slots for the duration
//! of the call only, and keeps a result value per write (operation, target, start, duration,
//! outcome, error) for the output and the evidence. Waiting (health gates, `depends_on`
//! conditions, probes) holds no slot, so a hundred gates wait side by side as they do in Compose.

mod gate;
pub mod hook;
mod hook_secrets;
mod ops;
mod rollout;
mod startfirst;
mod stopfirst;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::Serialize;

use crate::desired::typed::DesiredState;
use crate::engine::Engine;
use crate::plan::{Action, Plan};
use crate::redact::Redactor;
use crate::spec::SpecContext;

pub use gate::Readiness;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{0}")]
    Engine(#[from] crate::engine::EngineError),
    #[error("{0}")]
    Spec(#[from] crate::spec::SpecError),
    #[error("{0}")]
    Observe(#[from] crate::observe::ObserveError),
    #[error("image {image} is not present and {why}")]
    Image { image: String, why: String },
    #[error("{container} did not become {wanted} within {}s: {detail}", timeout.as_secs())]
    NotReady {
        container: String,
        wanted: &'static str,
        timeout: Duration,
        detail: String,
    },
    #[error("dependency {service} is not {wanted}: {detail}")]
    Dependency {
        service: String,
        wanted: &'static str,
        detail: String,
    },
    #[error("skipped: {0}")]
    Skipped(String),
    #[error("{0} is being removed by someone else; spindle looks again shortly")]
    BeingRemoved(String),
    /// A pre-recreate hook did not succeed (the text names the service and the hook).
    #[error("{0}")]
    Hook(String),
    /// A probe that gates the service (`gates:` in `spindle.yaml`) did not pass in time.
    #[error("{} did not pass probe {} within {}s: {}: {}", .0.container, .0.probe, .0.timeout.as_secs(), .0.class, .0.detail)]
    Probe(Box<ProbeFailure>),
}

/// What [`ApplyError::Probe`] tells: the container, the first probe still failing and every outcome.
#[derive(Debug)]
pub struct ProbeFailure {
    pub container: String,
    pub probe: String,
    /// The probe's error class (`connection_refused`, `http_status`, …).
    pub class: &'static str,
    pub timeout: Duration,
    pub detail: String,
    /// Every gating probe's outcome in the last round.
    pub outcomes: Vec<crate::health::ProbeOutcome>,
}

impl ApplyError {
    /// The gating probes' outcomes a failure carries (empty unless a probe failed the gate).
    pub fn probe_outcomes(&self) -> &[crate::health::ProbeOutcome] {
        match self {
            ApplyError::Probe(f) => &f.outcomes,
            _ => &[],
        }
    }
}

/// The text of [`ApplyError::BeingRemoved`], for callers that only see rendered results.
pub const BEING_REMOVED: &str = "is being removed by someone else";

/// How an action ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Failed,
    /// The change failed and the previous container was put back.
    RolledBack,
    /// Not run, because an action it waits for did not succeed.
    Skipped,
}

/// One engine write and how it went.
#[derive(Clone, Debug, Serialize)]
pub struct WriteRecord {
    pub operation: &'static str,
    pub target: String,
    /// Milliseconds since the apply started.
    pub started_ms: u64,
    pub elapsed_ms: u64,
    pub ok: bool,
    pub error: Option<String>,
}

/// The result of one action.
#[derive(Clone, Debug, Serialize)]
pub struct ActionResult {
    pub action: Action,
    pub outcome: Outcome,
    pub error: Option<String>,
    pub started_ms: u64,
    pub elapsed_ms: u64,
    /// What the health gate saw last (`healthy`, `running`, `exited 0`).
    pub readiness: Option<String>,
    /// The pre-recreate hook this action ran or waited for (`x-spindle.pre-recreate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook: Option<hook::HookRecord>,
    /// The outcomes of the `spindle.yaml` probes that gated this action (`gates:`): the round
    /// that passed, or the last round before the gate gave up. URLs are shown without
    /// credentials or query.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<crate::health::ProbeOutcome>,
}

/// What an apply did.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub project: String,
    pub converged: bool,
    pub results: Vec<ActionResult>,
    /// Engine write calls made (0 on a no-op).
    pub writes: u64,
    pub write_log: Vec<WriteRecord>,
    pub blockers: Vec<String>,
    pub elapsed_ms: u64,
}

impl Report {
    pub fn failed(&self) -> impl Iterator<Item = &ActionResult> {
        self.results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Failed | Outcome::RolledBack))
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    /// How long a container may take to become healthy (or running) before its change is rolled back.
    pub timeout: Duration,
    /// How many engine writes run at once; 0 sets no bound (Compose's default). Waits (health
    /// gates, `depends_on` conditions, probes) never count against it.
    pub parallelism: usize,
    pub redactor: Redactor,
    /// Asked between actions: once it says stop, no new action starts (running ones finish,
    /// so no recreate is left without its rollback path).
    pub stop: StopSignal,
    /// Create (and recreate) containers without starting them, as `docker compose up --no-start`:
    /// no dependency wait, no start, no health gate. Drop the plan's `start` actions with
    /// [`crate::plan::Plan::without_starts`].
    pub no_start: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(120),
            parallelism: 0,
            redactor: Redactor::default(),
            stop: StopSignal::never(),
            no_start: false,
        }
    }
}

/// Whether the process is shutting down.
#[derive(Clone)]
pub struct StopSignal(std::sync::Arc<dyn Fn() -> bool + Send + Sync>);

impl StopSignal {
    pub fn never() -> Self {
        Self(std::sync::Arc::new(|| false))
    }

    pub fn new(f: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        Self(std::sync::Arc::new(f))
    }

    pub fn is_set(&self) -> bool {
        (self.0)()
    }
}

impl std::fmt::Debug for StopSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StopSignal({})", self.is_set())
    }
}

/// Called as actions start and finish, for progress output.
pub trait Progress: Sync {
    fn started(&self, _action: &Action) {}
    fn finished(&self, _result: &ActionResult) {}
}

/// No progress output.
pub struct Quiet;
impl Progress for Quiet {}

/// Keeps every write's result value and bounds how many writes run at once; shared by
/// concurrently running actions.
pub struct Recorder {
    start: Instant,
    log: Mutex<Vec<WriteRecord>>,
    redactor: Redactor,
    /// The write slots (`--parallelism`); `None`: no bound.
    slots: Option<tokio::sync::Semaphore>,
}

impl Recorder {
    fn new(redactor: Redactor, parallelism: usize) -> Self {
        Self {
            start: Instant::now(),
            log: Mutex::new(Vec::new()),
            redactor,
            slots: (parallelism > 0).then(|| tokio::sync::Semaphore::new(parallelism)),
        }
    }

    fn ms(&self, t: Instant) -> u64 {
        u64::try_from(t.duration_since(self.start).as_millis()).unwrap_or(u64::MAX)
    }

    /// Runs one engine write in a write slot and records it (its start is when it got the slot).
    pub async fn write<T, F>(
        &self,
        operation: &'static str,
        target: &str,
        f: F,
    ) -> Result<T, ApplyError>
    where
        F: std::future::Future<Output = Result<T, crate::engine::EngineError>>,
    {
        // The semaphore is never closed; a closed one would only lift the bound.
        let _slot = match &self.slots {
            Some(s) => s.acquire().await.ok(),
            None => None,
        };
        let t0 = Instant::now();
        let r = f.await;
        let rec = WriteRecord {
            operation,
            target: target.to_string(),
            started_ms: self.ms(t0),
            elapsed_ms: u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX),
            ok: r.is_ok(),
            error: r.as_ref().err().map(|e| self.redactor.text(&e.to_string())),
        };
        if let Ok(mut log) = self.log.lock() {
            log.push(rec);
        }
        r.map_err(ApplyError::from)
    }

    fn take(&self) -> Vec<WriteRecord> {
        self.log
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }
}

/// Everything an action needs to run.
pub(crate) struct Ctx<'a> {
    pub engine: &'a Engine,
    pub desired: &'a DesiredState,
    pub spec: SpecContext,
    pub opts: &'a Options,
    pub rec: Recorder,
    /// Each service's pre-recreate hook runs at most once per apply.
    pub hooks: hook::Runs,
    /// Each service's rolling update (`deploy.update_config`) in this apply.
    pub rollouts: rollout::Rollouts,
}

/// Runs the plan. Actions start once every action they wait for succeeded (however many that
/// is: only their engine writes queue for the write slots); an action whose prerequisite failed
/// is skipped. Never panics on engine errors: each ends as a result value.
pub async fn apply(
    engine: &Engine,
    desired: &DesiredState,
    model: &serde_json::Value,
    plan: &Plan,
    opts: &Options,
    progress: &dyn Progress,
) -> Report {
    let t0 = Instant::now();
    let before = engine.requests();
    let ctx = Ctx {
        engine,
        desired,
        spec: SpecContext::from_desired(desired, Some(model)),
        opts,
        rec: Recorder::new(opts.redactor.clone(), opts.parallelism),
        hooks: hook::Runs::default(),
        rollouts: rollout::Rollouts::default(),
    };
    let mut results: BTreeMap<usize, ActionResult> = BTreeMap::new();
    if !plan.blockers.is_empty() {
        return Report {
            project: plan.project.clone(),
            converged: false,
            results: Vec::new(),
            writes: 0,
            write_log: Vec::new(),
            blockers: plan.blockers.clone(),
            elapsed_ms: 0,
        };
    }

    let mut pending: Vec<&Action> = plan.actions.iter().collect();
    let mut running = FuturesUnordered::new();
    let mut ok: BTreeSet<usize> = BTreeSet::new();
    let mut done: BTreeSet<usize> = BTreeSet::new();
    loop {
        // Skip what can no longer run; start everything that is ready.
        let mut i = 0;
        while i < pending.len() {
            let a = pending[i];
            if let Some(bad) = a.after.iter().find(|p| done.contains(p) && !ok.contains(p)) {
                let why = plan
                    .actions
                    .get(*bad)
                    .map(|b| {
                        format!(
                            "{} {} did not succeed",
                            b.kind.verb(),
                            b.kind.service().unwrap_or("")
                        )
                    })
                    .unwrap_or_default();
                let r = ActionResult {
                    action: a.clone(),
                    outcome: Outcome::Skipped,
                    error: Some(why),
                    started_ms: ctx.rec.ms(Instant::now()),
                    elapsed_ms: 0,
                    readiness: None,
                    hook: None,
                    probes: Vec::new(),
                };
                progress.finished(&r);
                results.insert(a.id, r);
                done.insert(a.id);
                pending.remove(i);
                continue;
            }
            if opts.stop.is_set() {
                let r = ActionResult {
                    action: a.clone(),
                    outcome: Outcome::Skipped,
                    error: Some("spindle is shutting down".into()),
                    started_ms: ctx.rec.ms(Instant::now()),
                    elapsed_ms: 0,
                    readiness: None,
                    hook: None,
                    probes: Vec::new(),
                };
                progress.finished(&r);
                results.insert(a.id, r);
                done.insert(a.id);
                pending.remove(i);
                continue;
            }
            let ready = a.after.iter().all(|p| ok.contains(p));
            if ready {
                pending.remove(i);
                progress.started(a);
                let ctx = &ctx;
                running.push(async move {
                    let started = Instant::now();
                    let out = ops::run(ctx, a).await;
                    (a, started, out)
                });
                continue;
            }
            i += 1;
        }
        let Some((a, started, out)) = running.next().await else {
            break;
        };
        let (outcome, error, readiness, hook, probes) = match out {
            Ok(ops::Done {
                readiness,
                hook,
                probes,
            }) => (Outcome::Ok, None, readiness, hook.map(|h| *h), probes),
            Err(ops::Failure {
                error,
                rolled_back,
                hook,
            }) => (
                if rolled_back {
                    Outcome::RolledBack
                } else {
                    Outcome::Failed
                },
                Some(opts.redactor.text(&error.to_string())),
                None,
                hook.map(|h| *h),
                error.probe_outcomes().to_vec(),
            ),
        };
        if outcome == Outcome::Ok {
            ok.insert(a.id);
        }
        done.insert(a.id);
        let r = ActionResult {
            action: a.clone(),
            outcome,
            error,
            started_ms: ctx.rec.ms(started),
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            readiness,
            hook,
            probes: probes
                .into_iter()
                .map(|mut p| {
                    p.detail = opts.redactor.text(&p.detail);
                    p
                })
                .collect(),
        };
        progress.finished(&r);
        results.insert(a.id, r);
    }
    let results: Vec<ActionResult> = results.into_values().collect();
    let converged = results.iter().all(|r| r.outcome == Outcome::Ok);
    Report {
        project: plan.project.clone(),
        converged,
        results,
        writes: engine.requests().since(before).writes,
        write_log: ctx.rec.take(),
        blockers: Vec::new(),
        elapsed_ms: u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}
