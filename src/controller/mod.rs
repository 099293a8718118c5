//! The control loop: triggers (file changes, Docker events, a jittered resync, SIGHUP), single-flight coalesced reconciles, and the error policy that decides the backoff.

mod budget;
mod policy;
mod sources;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::stream::{self, Stream, StreamExt};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

pub use budget::{BudgetState, Exhausted, RestartBudget, UnhealthyTracker};
pub use policy::{ErrorPolicy, ExponentialPolicy, RetryPolicy};
pub use sources::{
    DOCKER_ACTIONS, docker_events, is_noise, is_relevant_docker_action, shutdown_signal, sighup,
    watch_folder,
};

/// Why a reconcile ran. Triggers only schedule a reconcile; they never carry the data it acts on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    Startup,
    /// Files of the desired-state folder changed. An empty list means "something may have
    /// changed" (the watcher reported an error or asked for a rescan).
    Files {
        paths: Vec<PathBuf>,
    },
    /// A Docker event about one of the project's containers (`die`, `destroy`, `health_status: unhealthy`, …).
    Docker {
        action: String,
        container: String,
    },
    /// The periodic resync.
    Resync,
    /// SIGHUP.
    Signal,
    /// A retry after a failed reconcile.
    Retry {
        attempt: u32,
    },
    /// Asked for through the API.
    Api,
    /// The previous reconcile asked to run again ([`Next::RequeueAfter`]).
    Requeue,
    /// The active switchable profile changed (see docs/profiles.md): `cause` is `enter` or
    /// `leave` (measured load) or `pin` / `unpin`; `from` / `to` are the profiles (`null`: the
    /// base files); the readings are the window that caused it, in per mille.
    Profile {
        cause: String,
        from: Option<String>,
        to: Option<String>,
        source: String,
        readings_permille: Vec<u32>,
        window_ms: u64,
        enter_above_permille: u32,
        leave_below_permille: u32,
    },
}

impl Trigger {
    /// Triggers a person caused (an edit, SIGHUP, the API): they cut a retry backoff short.
    pub fn is_urgent(&self) -> bool {
        matches!(
            self,
            Trigger::Files { .. }
                | Trigger::Signal
                | Trigger::Api
                | Trigger::Startup
                | Trigger::Profile { .. }
        )
    }
}

/// What a reconcile asks for next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Reconcile again after this long even without a trigger.
    RequeueAfter(Duration),
    /// Wait for the next trigger (or the periodic resync).
    AwaitChange,
}

/// One reconcile of the project.
pub trait Reconciler: Send {
    type Error: std::error::Error + Send + Sync + 'static;
    fn reconcile(
        &mut self,
        triggers: Vec<Trigger>,
    ) -> impl std::future::Future<Output = Result<Next, Self::Error>> + Send;
}

/// Errors of the controller and its trigger sources.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("cannot watch {path}")]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
    #[error("cannot install the handler of {signal}")]
    Signal {
        signal: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid controller configuration: {0}")]
    Config(String),
}

/// How the loop is paced.
#[derive(Clone, Debug, PartialEq)]
pub struct ControllerConfig {
    /// The longest time between two reconciles without any trigger. Zero disables the resync.
    pub resync: Duration,
    /// The resync interval varies by ± this fraction of it (0.1: ± 10 %), drawn anew each time.
    pub resync_jitter: f64,
    /// How long file events settle before they trigger (the notify debouncer's timeout).
    pub debounce: Duration,
    /// The backoff of a failed reconcile (used by [`run`]'s default [`ExponentialPolicy`]).
    pub retry: RetryPolicy,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            resync: Duration::from_secs(300),
            resync_jitter: 0.1,
            debounce: Duration::from_millis(300),
            retry: RetryPolicy::default(),
        }
    }
}

impl ControllerConfig {
    /// Checks the numbers (a jitter in 0..1, a retry min ≤ max, a factor ≥ 1).
    pub fn validate(&self) -> Result<(), ControllerError> {
        if !(0.0..1.0).contains(&self.resync_jitter) {
            return Err(ControllerError::Config(format!(
                "resync jitter must be in [0, 1), not {}",
                self.resync_jitter
            )));
        }
        self.retry.validate()
    }
}

/// `base` varied by ± `jitter` × `base`; `unit` in [0, 1) picks where (0.5 → `base`).
pub fn jittered(base: Duration, jitter: f64, unit: f64) -> Duration {
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let factor = 1.0 + jitter * (2.0 * unit - 1.0);
    Duration::try_from_secs_f64(base.as_secs_f64() * factor).unwrap_or(base)
}

fn resync_delay(config: &ControllerConfig) -> Duration {
    jittered(config.resync, config.resync_jitter, rand::random::<f64>())
}

type TriggerStream = Pin<Box<dyn Stream<Item = Trigger> + Send>>;

/// Asks the loop for a reconcile from anywhere (the API, a SIGHUP handler, a test). Cheap to clone.
#[derive(Clone, Debug)]
pub struct TriggerHandle {
    tx: mpsc::UnboundedSender<Trigger>,
}

impl TriggerHandle {
    /// Queues a trigger; it is coalesced with the others. Does nothing once the loop has returned.
    pub fn trigger(&self, trigger: Trigger) {
        let _ = self.tx.send(trigger);
    }
}

/// Tells a reconciler that shutdown was asked for, so it can stop after its current Docker call
/// (never between a recreate and its rollback path). Cheap to clone.
#[derive(Clone, Debug)]
pub struct StopToken {
    rx: watch::Receiver<bool>,
}

impl StopToken {
    pub fn is_stopping(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once shutdown was asked for (or the loop is gone).
    pub async fn stopping(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// The trigger sources the loop listens to: any streams of triggers plus a [`TriggerHandle`] channel.
pub struct Sources {
    streams: Vec<TriggerStream>,
    tx: mpsc::UnboundedSender<Trigger>,
    rx: mpsc::UnboundedReceiver<Trigger>,
    stop_tx: watch::Sender<bool>,
}

impl Default for Sources {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("streams", &self.streams.len())
            .finish_non_exhaustive()
    }
}

impl Sources {
    pub fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let (stop_tx, _) = watch::channel(false);
        Sources {
            streams: Vec::new(),
            tx,
            rx,
            stop_tx,
        }
    }

    /// Adds a stream of triggers ([`watch_folder`], [`docker_events`], [`sighup`], …). A stream
    /// that ends is simply no longer listened to.
    pub fn with(mut self, stream: impl Stream<Item = Trigger> + Send + 'static) -> Self {
        self.add(stream);
        self
    }

    pub fn add(&mut self, stream: impl Stream<Item = Trigger> + Send + 'static) {
        self.streams.push(Box::pin(stream));
    }

    /// A handle to trigger reconciles by hand.
    pub fn handle(&self) -> TriggerHandle {
        TriggerHandle {
            tx: self.tx.clone(),
        }
    }

    /// A token the reconciler can watch to learn that shutdown was asked for.
    pub fn stop_token(&self) -> StopToken {
        StopToken {
            rx: self.stop_tx.subscribe(),
        }
    }

    fn into_parts(self) -> (TriggerStream, watch::Sender<bool>) {
        let Sources {
            mut streams,
            tx,
            mut rx,
            stop_tx,
        } = self;
        // The loop holds no sender: the channel stays open as long as a handle lives.
        drop(tx);
        streams.push(Box::pin(stream::poll_fn(
            move |cx: &mut Context<'_>| -> Poll<Option<Trigger>> { rx.poll_recv(cx) },
        )));
        (Box::pin(stream::select_all(streams)), stop_tx)
    }
}

/// The triggers gathered for the next reconcile, deduplicated.
#[derive(Debug, Default)]
struct Pending {
    triggers: Vec<Trigger>,
}

impl Pending {
    fn push(&mut self, trigger: Trigger) {
        match trigger {
            Trigger::Files { paths } => {
                let existing = self.triggers.iter_mut().find_map(|t| match t {
                    Trigger::Files { paths } => Some(paths),
                    _ => None,
                });
                match existing {
                    Some(existing) => {
                        // An empty list means "anything"; it absorbs the others.
                        if existing.is_empty() || paths.is_empty() {
                            existing.clear();
                        } else {
                            existing.extend(paths);
                            existing.sort();
                            existing.dedup();
                        }
                    }
                    None => {
                        let mut paths = paths;
                        paths.sort();
                        paths.dedup();
                        self.triggers.push(Trigger::Files { paths });
                    }
                }
            }
            Trigger::Retry { attempt } => {
                self.triggers
                    .retain(|t| !matches!(t, Trigger::Retry { .. }));
                self.triggers.push(Trigger::Retry { attempt });
            }
            other => {
                if !self.triggers.contains(&other) {
                    self.triggers.push(other);
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.triggers.is_empty()
    }

    fn take(&mut self) -> Vec<Trigger> {
        std::mem::take(&mut self.triggers)
    }
}

/// A reconcile planned for later: after a requeue, or a retry after a failure.
#[derive(Clone, Copy, Debug)]
enum Deadline {
    Requeue(Instant),
    Retry(Instant, u32),
}

/// Runs the control loop until `shutdown` resolves, with the default [`ExponentialPolicy`] built
/// from `config.retry`.
pub async fn run<R: Reconciler>(
    config: ControllerConfig,
    reconciler: R,
    sources: Sources,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ControllerError> {
    config.validate()?;
    let policy = ExponentialPolicy::new(config.retry.clone());
    run_with_policy(config, reconciler, policy, sources, shutdown).await
}

/// Runs the control loop with a given error policy.
///
/// The first reconcile runs at once with [`Trigger::Startup`]. Reconciles never overlap; the
/// triggers that arrive during one are deduplicated and handed, all together, to exactly one
/// follow-up. See docs/controller.md.
pub async fn run_with_policy<R: Reconciler, P: ErrorPolicy>(
    config: ControllerConfig,
    mut reconciler: R,
    mut policy: P,
    sources: Sources,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ControllerError> {
    config.validate()?;
    let (mut triggers, stop_tx) = sources.into_parts();
    let mut triggers_open = true;
    tokio::pin!(shutdown);

    let mut pending = Pending::default();
    pending.push(Trigger::Startup);
    let mut deadline: Option<Deadline> = None;
    let mut resync_at = next_resync(&config);
    let mut failures: u32 = 0;

    loop {
        // Wait until something is due. During a retry backoff only urgent triggers start a
        // reconcile early; the others wait for the retry and join it.
        while !due(&pending, deadline) {
            let wake = deadline.map(|d| match d {
                Deadline::Requeue(at) | Deadline::Retry(at, _) => at,
            });
            tokio::select! {
                biased;
                () = &mut shutdown => {
                    let _ = stop_tx.send(true);
                    tracing::info!("shutdown asked for while idle; the control loop stops");
                    return Ok(());
                }
                t = triggers.next(), if triggers_open => match t {
                    Some(t) => pending.push(t),
                    None => triggers_open = false,
                },
                () = sleep_until_opt(wake) => {
                    match deadline.take() {
                        Some(Deadline::Requeue(_)) => pending.push(Trigger::Requeue),
                        Some(Deadline::Retry(_, attempt)) => pending.push(Trigger::Retry { attempt }),
                        None => {}
                    }
                }
                () = sleep_until_opt(resync_at) => {
                    pending.push(Trigger::Resync);
                    resync_at = next_resync(&config);
                }
            }
        }
        // Gather whatever else is already queued, so it joins this reconcile.
        while triggers_open {
            match futures_util::FutureExt::now_or_never(triggers.next()) {
                Some(Some(t)) => pending.push(t),
                Some(None) => triggers_open = false,
                None => break,
            }
        }
        if let Some(Deadline::Retry(_, attempt)) = deadline.take() {
            // Cut short by an urgent trigger: this reconcile is the retry.
            pending.push(Trigger::Retry { attempt });
        }

        let batch = pending.take();
        tracing::debug!(triggers = ?batch, "reconcile starts");
        let mut stopping = false;
        let result = {
            let reconcile = reconciler.reconcile(batch);
            tokio::pin!(reconcile);
            loop {
                tokio::select! {
                    biased;
                    r = &mut reconcile => break r,
                    () = &mut shutdown, if !stopping => {
                        stopping = true;
                        let _ = stop_tx.send(true);
                        tracing::info!("shutdown asked for; waiting for the running reconcile to finish");
                    }
                    t = triggers.next(), if triggers_open && !stopping => match t {
                        Some(t) => pending.push(t),
                        None => triggers_open = false,
                    },
                }
            }
        };
        resync_at = next_resync(&config);
        match result {
            Ok(next) => {
                failures = 0;
                policy.reset();
                deadline = match next {
                    Next::RequeueAfter(d) => Some(Deadline::Requeue(Instant::now() + d)),
                    Next::AwaitChange => None,
                };
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                deadline = match policy.backoff(&e, failures) {
                    Some(d) => {
                        tracing::warn!(error = %e, attempt = failures, delay = ?d, "reconcile failed; retrying after a backoff");
                        Some(Deadline::Retry(Instant::now() + d, failures))
                    }
                    None => {
                        tracing::error!(error = %e, attempt = failures, "reconcile failed; no more retries, waiting for a trigger or the resync");
                        None
                    }
                };
            }
        }
        if stopping {
            tracing::info!("the control loop stops");
            return Ok(());
        }
    }
}

fn due(pending: &Pending, deadline: Option<Deadline>) -> bool {
    match deadline {
        Some(Deadline::Retry(..)) => pending.triggers.iter().any(Trigger::is_urgent),
        _ => !pending.is_empty(),
    }
}

fn next_resync(config: &ControllerConfig) -> Option<Instant> {
    if config.resync.is_zero() {
        None
    } else {
        Some(Instant::now() + resync_delay(config))
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
