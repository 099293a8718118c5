//! One reconcile of a project, as the control loop runs it: load, observe, plan, self-heal, apply, and one evidence record.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::time::Instant;
use tracing::{Instrument, info, info_span, warn};

use crate::apply;
use crate::controller::{Next, Reconciler, RestartBudget, Trigger, UnhealthyTracker};
use crate::desired::{self, typed::DesiredState};
use crate::engine::Engine;
use crate::evidence::EvidenceLog;
use crate::observe::{
    self,
    seen::LastSeen,
    snapshot::{Health, Snapshot},
};
use crate::plan::{self, Action, ActionKind, ContainerRef, PlanOptions};
use crate::redact::{self, Redactor};
use crate::runtime::{LastReconcile, Runtime};
use crate::status;

/// The evidence log, shared with the HTTP API (which appends a record for each accepted mutation);
/// the mutex keeps the hash chain in order.
pub type SharedEvidence = std::sync::Arc<std::sync::Mutex<EvidenceLog>>;

/// What a reconcile leaves for the metrics and `/status` (set by `run_once`).
#[derive(Debug, Default)]
struct View {
    facts: Option<status::Facts>,
    actions: Vec<(String, String)>,
    drift: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("desired state: {0}")]
    Desired(String),
    #[error("observe: {0}")]
    Observe(#[from] observe::ObserveError),
    #[error("evidence: {0}")]
    Evidence(#[from] crate::evidence::EvidenceError),
    #[error("not converged: {0}")]
    NotConverged(String),
    #[error(transparent)]
    Intent(#[from] crate::intent::IntentError),
}

/// Settings of the self-heal and apply steps.
#[derive(Clone, Debug)]
pub struct Settings {
    pub apply_timeout: Duration,
    /// How many engine writes an apply runs at once; 0: no bound (see [`apply::Options`]).
    pub parallelism: usize,
    /// How long a container may stay unhealthy before spindle restarts it.
    pub unhealthy_grace: Duration,
    /// At most this many restarts of one container per `restart_window`.
    pub restart_budget: u32,
    pub restart_window: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            apply_timeout: Duration::from_secs(120),
            parallelism: 0,
            unhealthy_grace: Duration::from_secs(60),
            restart_budget: 3,
            restart_window: Duration::from_secs(600),
        }
    }
}

/// Whether a trigger asks for every container to be inspected: the first reconcile, the periodic
/// resync, SIGHUP, the API and a retry look at what the list call cannot show (a `docker update`
/// nobody saw); the others trust the list where it settles a container (see [`observe::listed`]),
/// except for the containers Docker events name, which are inspected.
fn inspects_all(t: &Trigger) -> bool {
    matches!(
        t,
        Trigger::Startup | Trigger::Resync | Trigger::Signal | Trigger::Api | Trigger::Retry { .. }
    )
}

/// How soon to look again when someone else is changing a container right now (a removal, or
/// Compose's recreate in flight): the rest of that change may emit no event spindle listens to.
pub const LOOK_AGAIN_SOON: Duration = Duration::from_millis(200);

/// The longest wait between looks at a slot that stays in flight (a Compose killed halfway).
pub const IN_FLIGHT_MAX_WAIT: Duration = Duration::from_secs(30);

/// What follows an apply that converged. Finishing an interrupted recreate may have put the old
/// container back with the change still pending, and a dependency that changed during the apply
/// (a start gave it another address) has dependents to follow: both look again at once. A slot
/// someone else is recreating ([`plan::Plan::in_flight`]) is looked at again soon, after
/// [`LOOK_AGAIN_SOON`] doubled for each reconcile in a row that found one (`streak`, from 1), at
/// most [`IN_FLIGHT_MAX_WAIT`]; unhealthy containers in their grace period (`waiting`) too.
fn after_converged(
    plan: &plan::Plan,
    unfollowed: bool,
    waiting: Option<Duration>,
    streak: u32,
) -> Next {
    if unfollowed
        || plan
            .actions
            .iter()
            .any(|a| matches!(a.kind, ActionKind::ResumeRecreate { .. }))
    {
        return Next::RequeueAfter(Duration::ZERO);
    }
    let in_flight = (!plan.in_flight.is_empty()).then(|| {
        let doublings = streak.saturating_sub(1).min(16);
        LOOK_AGAIN_SOON
            .saturating_mul(1 << doublings)
            .min(IN_FLIGHT_MAX_WAIT)
    });
    match waiting.into_iter().chain(in_flight).min() {
        Some(d) => Next::RequeueAfter(d),
        None => Next::AwaitChange,
    }
}

/// Reconciles one project; owns what must survive between reconciles (budgets, the evidence log).
pub struct ProjectReconciler {
    request: desired::Request,
    engine: Engine,
    evidence: SharedEvidence,
    settings: Settings,
    budget: RestartBudget,
    unhealthy: UnhealthyTracker,
    /// Services spindle stopped healing, with the reason.
    degraded: BTreeMap<String, String>,
    count: u64,
    stop: apply::StopSignal,
    runtime: Runtime,
    view: View,
    /// The inputs hash of the previous reconcile that loaded (drift: the host changed, not the files).
    last_inputs: Option<String>,
    /// The recovery rule's memory: the container id and addresses last seen per slot.
    memory: crate::seen::Memory,
    /// How many reconciles in a row found a slot someone else is recreating.
    in_flight_streak: u32,
}

impl ProjectReconciler {
    pub fn new(
        request: desired::Request,
        engine: Engine,
        evidence: EvidenceLog,
        settings: Settings,
        stop: apply::StopSignal,
    ) -> Self {
        let evidence = std::sync::Arc::new(std::sync::Mutex::new(evidence));
        Self::new_shared(request, engine, evidence, settings, stop)
    }

    /// [`ProjectReconciler::new`] with an evidence log shared with the API.
    pub fn new_shared(
        request: desired::Request,
        engine: Engine,
        evidence: SharedEvidence,
        settings: Settings,
        stop: apply::StopSignal,
    ) -> Self {
        Self {
            request,
            engine,
            budget: RestartBudget::new(settings.restart_budget, settings.restart_window),
            unhealthy: UnhealthyTracker::new(settings.unhealthy_grace),
            evidence,
            settings,
            degraded: BTreeMap::new(),
            count: 0,
            stop,
            runtime: Runtime::default(),
            view: View::default(),
            last_inputs: None,
            memory: crate::seen::Memory::default(),
            in_flight_streak: 0,
        }
    }

    /// Keeps the recovery rule's memory in `state_dir` (`last-seen-<project>.json`), so that a
    /// restart of spindle does not forget which containers it last saw.
    pub fn with_state_dir(mut self, state_dir: &std::path::Path) -> Self {
        self.memory = crate::seen::Memory::in_dir(state_dir);
        self
    }

    /// Feeds the metrics, the status board and the pause state of `runtime` (a default one otherwise).
    pub fn with_runtime(mut self, runtime: Runtime) -> Self {
        self.runtime = runtime;
        self
    }

    async fn run_once(
        &mut self,
        triggers: &[Trigger],
        record: &mut Map<String, Value>,
    ) -> Result<Next, ReconcileError> {
        // Level-triggered: the whole desired state and the whole host, every time.
        let mut request = self.request.clone();
        if let Some(control) = &self.runtime.profile {
            let active = control.active();
            record.insert("active_profile".into(), json!(active));
            if let Some(p) = active.filter(|p| !request.profiles.contains(p)) {
                // Adding a profile must not drop the ones COMPOSE_PROFILES asks for.
                if request.profiles.is_empty()
                    && let Some(env) = request.shell_env.get("COMPOSE_PROFILES")
                {
                    request.profiles = env
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect();
                }
                request.profiles.push(p);
            }
        }
        let project = match desired::load(&request) {
            Ok(p) => p,
            Err(e) => {
                let msg = redact::scrub(&e.to_string());
                record.insert("outcome".into(), "invalid-desired-state".into());
                record.insert("error".into(), msg.clone().into());
                warn!(error = %msg, "desired state does not load; the host is left as it is");
                // Bad input does not fix itself: wait for the next file change, no retry storm.
                return Ok(Next::AwaitChange);
            }
        };
        let redactor = Redactor::new(project.secret_values.clone());
        let revision = desired::revision::revision(&project.working_dir);
        let inputs = crate::record::insert_loaded(record, &project, revision.as_deref());
        let same_inputs = self.last_inputs.as_deref() == Some(inputs.as_str());
        self.last_inputs = Some(inputs);
        let desired = match DesiredState::from_project(&project, revision) {
            Ok(d) => d,
            Err(e) => {
                // Bad input (an invalid `x-spindle` setting, a service without image) is treated
                // like a load error: recorded, and nothing is retried until the files change.
                let msg = redact::scrub(&e.to_string());
                record.insert("outcome".into(), "invalid-desired-state".into());
                record.insert("error".into(), msg.clone().into());
                warn!(error = %msg, "desired state is invalid; the host is left as it is");
                return Ok(Next::AwaitChange);
            }
        };
        let live_of = |s: &desired::typed::DesiredService| crate::spec::live_config(s).ok();
        let named: Vec<String> = triggers
            .iter()
            .filter_map(|t| match t {
                Trigger::Docker { container, .. } => Some(container.clone()),
                _ => None,
            })
            .collect();
        let depth = if triggers.iter().any(inspects_all) {
            observe::Depth::Full
        } else {
            observe::Depth::Listed {
                live: &live_of,
                inspect: &named,
            }
        };
        let snapshot = observe::snapshot_with(&self.engine, &desired, depth).await?;
        let last_seen = self.memory.get(&desired.project).await;
        let mut plan = plan::plan(
            &desired,
            &snapshot,
            &PlanOptions {
                remove_orphans: false,
                redactor: redactor.clone(),
                last_seen: last_seen.clone(),
                compare_fields: false,
            },
        );
        let planned = LastSeen::of(&snapshot);
        // Policies are checked before every apply; a violation in mode `enforce` blocks it, one
        // in mode `warn` is only reported (both are recorded and shown in `/status`).
        let findings = crate::policy::findings(&desired, &project);
        plan.blockers.extend(findings.blockers);
        plan.warnings.extend(findings.warnings);
        self.runtime.board.set_warnings(plan.warnings.clone());
        self.view.drift = same_inputs && !plan.is_empty();
        if self.runtime.pause.is_paused() {
            // Paused: observe and plan, apply nothing, and say so (the plan stays visible).
            let pending = pending_by_service(plan.actions.iter());
            self.view.facts = Some(status::facts(
                &desired,
                &snapshot,
                &self.degraded,
                &pending,
                true,
            ));
            record.insert(
                "plan".into(),
                serde_json::to_value(&plan).unwrap_or(Value::Null),
            );
            record.insert("services".into(), self.services(&desired, &snapshot));
            crate::record::insert_warnings(record, &plan);
            record.insert("outcome".into(), "paused".into());
            info!(
                actions = plan.actions.len(),
                "paused: the plan is recorded, nothing is applied"
            );
            return Ok(Next::AwaitChange);
        }
        let waiting = self.self_heal(&desired, &snapshot, &mut plan);
        let opts = apply::Options {
            timeout: self.settings.apply_timeout,
            parallelism: self.settings.parallelism,
            redactor: redactor.clone(),
            stop: self.stop.clone(),
            no_start: false,
        };
        // No engine write without its intent on record: when the intent cannot be appended
        // (disk full, unwritable or locked log) the reconcile fails here, host untouched.
        if crate::intent::writes(&plan) {
            let appended = {
                let mut log = crate::evidence::lock_shared(&self.evidence);
                crate::intent::record(&mut log, &plan, &redact::registered())
            };
            match appended {
                Ok(a) => {
                    self.runtime.metrics.evidence_appended(crate::intent::KIND);
                    record.insert("intent".into(), a.id.into());
                }
                Err(e) => {
                    record.insert(
                        "plan".into(),
                        serde_json::to_value(&plan).unwrap_or(Value::Null),
                    );
                    return Err(e.into());
                }
            }
        }
        let report = apply::apply(
            &self.engine,
            &desired,
            &project.model,
            &plan,
            &opts,
            &apply::Quiet,
        )
        .await;
        for r in &report.results {
            info!(
                action = r.action.kind.verb(),
                service = r.action.kind.service().unwrap_or(""),
                outcome = ?r.outcome,
                elapsed_ms = r.elapsed_ms,
                "action finished"
            );
        }
        // Final state of each service, as the engine reports it after the changes.
        let after = if plan.is_empty() {
            snapshot
        } else {
            observe::snapshot(&self.engine, &desired).await?
        };
        let outcome =
            crate::record::insert_applied(record, &plan, &report, self.services(&desired, &after));
        // The recovery rule's memory moves on to what is there now, except for the changes whose
        // dependents have not followed yet (a blocked apply changed nothing: nothing moves on).
        let unfollowed = if outcome == crate::record::Outcome::Blocked {
            Vec::new()
        } else {
            let now = LastSeen::of(&after);
            self.memory
                .advance(&desired, &last_seen, &planned, &plan, &report, &now)
                .await
        };
        self.view.actions = report
            .results
            .iter()
            .map(|r| (r.action.kind.verb().to_string(), outcome_name(r.outcome)))
            .collect();
        let pending = pending_by_service(
            report
                .results
                .iter()
                .filter(|r| r.outcome != apply::Outcome::Ok)
                .map(|r| &r.action),
        );
        self.view.facts = Some(status::facts(
            &desired,
            &after,
            &self.degraded,
            &pending,
            false,
        ));
        let failed = crate::record::failures(&report);
        if outcome == crate::record::Outcome::Blocked {
            return Ok(Next::AwaitChange);
        }
        if !report.converged
            && !failed.is_empty()
            && failed.iter().all(|f| f.contains(apply::BEING_REMOVED))
        {
            // Someone is removing a container right now: its `destroy` will follow; look again
            // soon instead of backing off as if spindle had failed.
            return Ok(Next::RequeueAfter(LOOK_AGAIN_SOON));
        }
        if !report.converged {
            let msg = failed.join("; ");
            record.insert("error".into(), msg.clone().into());
            return Err(ReconcileError::NotConverged(msg));
        }
        self.in_flight_streak = if plan.in_flight.is_empty() {
            0
        } else {
            self.in_flight_streak.saturating_add(1)
        };
        Ok(after_converged(
            &plan,
            !unfollowed.is_empty(),
            waiting,
            self.in_flight_streak,
        ))
    }

    /// Restarts containers unhealthy for longer than the grace period, within the budget; past
    /// the budget the service is marked degraded and left alone. Returns when to look again
    /// for containers still inside their grace period.
    fn self_heal(
        &mut self,
        desired: &DesiredState,
        snapshot: &Snapshot,
        plan: &mut plan::Plan,
    ) -> Option<Duration> {
        let now = Instant::now();
        let mut next: Option<Duration> = None;
        // Starting a container that keeps stopping is budgeted like a restart: no start storms.
        let mut refused = std::collections::BTreeSet::new();
        for a in &plan.actions {
            if let ActionKind::Start { container } = &a.kind {
                let key = format!("{}#{}", container.service, container.number);
                if self.budget.try_spend(&key, now).is_err() {
                    refused.insert(a.id);
                    let reason = format!(
                        "keeps stopping; the restart budget ({} per {}s) is spent, so spindle stops starting it",
                        self.settings.restart_budget,
                        self.settings.restart_window.as_secs()
                    );
                    if self
                        .degraded
                        .insert(container.service.clone(), reason.clone())
                        .is_none()
                    {
                        warn!(service = %container.service, %reason, "service degraded");
                    }
                }
            }
        }
        if !refused.is_empty() {
            plan.remove_actions(&refused);
        }
        let touched: Vec<String> = plan
            .actions
            .iter()
            .filter_map(|a| a.kind.service().map(str::to_string))
            .collect();
        for c in &snapshot.containers {
            if !desired.services.contains_key(&c.service) {
                continue;
            }
            let key = format!("{}#{}", c.service, c.number);
            let unhealthy = c.is_running() && c.health == Health::Unhealthy;
            let past_grace = self.unhealthy.observe(&key, unhealthy, now);
            if !unhealthy {
                continue;
            }
            if !past_grace {
                let d = self.settings.unhealthy_grace.min(Duration::from_secs(30));
                next = Some(next.map_or(d, |n| n.min(d)));
                continue;
            }
            if touched.contains(&c.service) {
                continue;
            }
            match self.budget.try_spend(&key, now) {
                Ok(()) => {
                    let id = plan.actions.len();
                    plan.actions.push(Action {
                        id,
                        kind: ActionKind::Restart {
                            container: ContainerRef {
                                id: c.id.clone(),
                                name: c.name.clone(),
                                service: c.service.clone(),
                                number: c.number,
                            },
                        },
                        reason: format!(
                            "unhealthy for longer than {}s",
                            self.settings.unhealthy_grace.as_secs()
                        ),
                        diff: None,
                        after: Vec::new(),
                        follows: Vec::new(),
                    });
                }
                Err(_) => {
                    let reason = format!(
                        "unhealthy; the restart budget ({} per {}s) is spent, so spindle stops restarting it",
                        self.settings.restart_budget,
                        self.settings.restart_window.as_secs()
                    );
                    if self
                        .degraded
                        .insert(c.service.clone(), reason.clone())
                        .is_none()
                    {
                        warn!(service = %c.service, %reason, "service degraded");
                    }
                }
            }
        }
        // A service that is healthy again is no longer degraded.
        let healthy: Vec<String> = self
            .degraded
            .keys()
            .filter(|s| {
                snapshot
                    .containers
                    .iter()
                    .filter(|c| &c.service == *s)
                    .all(|c| c.is_running() && c.health != Health::Unhealthy)
            })
            .cloned()
            .collect();
        for s in healthy {
            self.degraded.remove(&s);
        }
        next
    }

    /// `{service: {state, containers: [...], reason?}}` for the evidence.
    fn services(&self, desired: &DesiredState, snap: &Snapshot) -> Value {
        crate::record::services(desired, snap, &self.degraded)
    }
}

/// How many actions touch each service.
fn pending_by_service<'a>(actions: impl Iterator<Item = &'a Action>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for a in actions {
        if let Some(s) = a.kind.service() {
            *out.entry(s.to_string()).or_insert(0) += 1;
        }
    }
    out
}

/// An action outcome as the evidence writes it (`ok`, `failed`, `rolled_back`, `skipped`).
fn outcome_name(o: apply::Outcome) -> String {
    serde_json::to_value(o)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{o:?}").to_lowercase())
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

impl ProjectReconciler {
    /// The one place after each reconcile that feeds the metrics and the status board.
    fn feed_runtime(
        &mut self,
        outcome: String,
        error: Option<String>,
        record: &str,
        took: Duration,
    ) {
        let view = std::mem::take(&mut self.view);
        let m = &self.runtime.metrics;
        m.evidence_appended(crate::evidence::DEFAULT_KIND);
        m.observe_reconcile(&crate::metrics::ReconcileSummary {
            outcome: outcome.clone(),
            duration_secs: took.as_secs_f64(),
            actions: view.actions,
            drift: view.drift,
        });
        let board = &self.runtime.board;
        let services = view.facts.map(|f| {
            let previous = board.services();
            status::compute(&f, previous.as_ref(), &now_rfc3339())
        });
        board.finished(
            LastReconcile {
                record: record.to_string(),
                outcome,
                finished: now_rfc3339(),
                error,
            },
            services,
        );
    }
}

impl Reconciler for ProjectReconciler {
    type Error = ReconcileError;

    async fn reconcile(&mut self, triggers: Vec<Trigger>) -> Result<Next, ReconcileError> {
        self.count += 1;
        let span = info_span!(
            "reconcile",
            n = self.count,
            triggers = %triggers.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join(","),
        );
        let started = now_rfc3339();
        let clock = std::time::Instant::now();
        self.view = View::default();
        let mut record = Map::new();
        record.insert("started".into(), started.into());
        record.insert(
            "triggers".into(),
            serde_json::to_value(&triggers).unwrap_or(Value::Null),
        );
        let result = self
            .run_once(&triggers, &mut record)
            .instrument(span.clone())
            .await;
        record.insert("finished".into(), now_rfc3339().into());
        if let Err(e) = &result {
            record
                .entry("outcome")
                .or_insert_with(|| Value::from("error"));
            record
                .entry("error")
                .or_insert_with(|| Value::from(redact::scrub(&e.to_string())));
        }
        // The record is written (and fsynced) before the next reconcile can start.
        let outcome = record
            .get("outcome")
            .and_then(Value::as_str)
            .unwrap_or("error")
            .to_string();
        let error = record
            .get("error")
            .and_then(Value::as_str)
            .map(str::to_string);
        let appended = match crate::evidence::lock_shared(&self.evidence)
            .append(record, &redact::registered())
        {
            Ok(a) => a,
            // The reconcile's own error (an unrecorded intent: nothing changed) says more.
            Err(e) if result.is_err() => {
                warn!(error = %redact::scrub(&e.to_string()), "the record of a failed reconcile cannot be written");
                return result;
            }
            Err(e) => return Err(e.into()),
        };
        self.feed_runtime(outcome, error, &appended.id, clock.elapsed());
        let _guard = span.enter();
        match &result {
            Ok(next) => info!(record = %appended.id, ?next, "reconcile finished"),
            Err(e) => {
                warn!(record = %appended.id, error = %redact::scrub(&e.to_string()), "reconcile failed")
            }
        }
        drop(_guard);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_resync_sighup_the_api_and_a_retry_inspect_every_container_the_rest_trust_the_list() {
        let full = [
            Trigger::Startup,
            Trigger::Resync,
            Trigger::Signal,
            Trigger::Api,
            Trigger::Retry { attempt: 1 },
        ];
        for t in &full {
            assert!(inspects_all(t), "{t:?}");
        }
        let listed = [
            Trigger::Files { paths: Vec::new() },
            Trigger::Docker {
                action: "die".into(),
                container: "p-web-1".into(),
            },
            Trigger::Requeue,
        ];
        for t in &listed {
            assert!(!inspects_all(t), "{t:?}");
        }
    }

    fn in_flight_plan() -> plan::Plan {
        plan::Plan {
            project: "p".into(),
            in_flight: vec![plan::InFlight {
                service: "backend".into(),
                number: 1,
                replacement: ContainerRef {
                    id: "fedcba9876543210".into(),
                    name: "0123456789ab_p-backend-1".into(),
                    service: "backend".into(),
                    number: 1,
                },
            }],
            ..plan::Plan::default()
        }
    }

    #[test]
    fn a_plan_with_a_recreate_in_flight_looks_again_soon_not_at_the_next_change() {
        let p = in_flight_plan();
        assert!(p.actions.is_empty());
        assert_eq!(
            after_converged(&p, false, None, 1),
            Next::RequeueAfter(LOOK_AGAIN_SOON)
        );
        // An unhealthy container's grace period does not delay it, nor does it the other way.
        assert_eq!(
            after_converged(&p, false, Some(Duration::from_secs(30)), 1),
            Next::RequeueAfter(LOOK_AGAIN_SOON)
        );
        assert_eq!(
            after_converged(&p, false, Some(Duration::from_millis(50)), 1),
            Next::RequeueAfter(Duration::from_millis(50))
        );
        // Dependents to follow go first.
        assert_eq!(
            after_converged(&p, true, None, 1),
            Next::RequeueAfter(Duration::ZERO)
        );
    }

    #[test]
    fn a_slot_that_stays_in_flight_is_looked_at_less_and_less_often_up_to_the_maximum() {
        let p = in_flight_plan();
        let waits: Vec<Next> = (1..=10)
            .map(|s| after_converged(&p, false, None, s))
            .collect();
        let ms = |m| Next::RequeueAfter(Duration::from_millis(m));
        assert_eq!(
            waits,
            vec![
                ms(200),
                ms(400),
                ms(800),
                ms(1600),
                ms(3200),
                ms(6400),
                ms(12800),
                ms(25600),
                Next::RequeueAfter(IN_FLIGHT_MAX_WAIT),
                Next::RequeueAfter(IN_FLIGHT_MAX_WAIT),
            ]
        );
        assert_eq!(
            after_converged(&p, false, None, u32::MAX),
            Next::RequeueAfter(IN_FLIGHT_MAX_WAIT)
        );
    }

    #[test]
    fn a_plan_with_nothing_in_flight_awaits_the_next_change() {
        assert_eq!(
            after_converged(&plan::Plan::default(), false, None, 0),
            Next::AwaitChange
        );
    }
}
