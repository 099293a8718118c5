//! A service's rolling update within one apply: `deploy.update_config`'s `parallelism` (replicas
//! updated at once), `delay` (between replicas) and `failure_action` (whether a failed replica
//! stops the others), and `monitor` (how long a new container must stay ready after the switch).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Duration, Instant};

use super::gate::Readiness;
use super::{ApplyError, Ctx};
use crate::desired::typed::DesiredService;
use crate::desired::update::UpdateConfig;
use crate::observe::observed_from_inspect;

/// The rolling updates of one apply, by service.
#[derive(Default)]
pub struct Rollouts(Mutex<BTreeMap<String, Arc<Rollout>>>);

/// One service's rolling update.
pub struct Rollout {
    service: String,
    config: UpdateConfig,
    permits: Arc<Semaphore>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// When the last replica's update finished (the next one waits `delay` after it).
    last_finished: Option<Instant>,
    /// Set once a failed replica stopped the update: why.
    stopped: Option<String>,
}

/// A replica's turn to be updated: holds one of the service's `parallelism` permits.
pub struct Turn {
    rollout: Arc<Rollout>,
    _permit: OwnedSemaphorePermit,
}

impl Rollouts {
    fn rollout(&self, service: &str, config: &UpdateConfig) -> Arc<Rollout> {
        let make = || {
            Arc::new(Rollout {
                service: service.to_string(),
                config: config.clone(),
                permits: Arc::new(Semaphore::new(match config.parallelism {
                    0 => Semaphore::MAX_PERMITS,
                    n => usize::try_from(n).unwrap_or(Semaphore::MAX_PERMITS),
                })),
                state: Mutex::new(State::default()),
            })
        };
        match self.0.lock() {
            Ok(mut m) => m.entry(service.to_string()).or_insert_with(make).clone(),
            Err(_) => make(),
        }
    }

    /// Waits for the replica's turn: a free permit, then `delay` after the previous replica's
    /// update finished. Refuses when a failed replica already stopped the service's update.
    pub async fn enter(&self, service: &str, config: &UpdateConfig) -> Result<Turn, ApplyError> {
        let rollout = self.rollout(service, config);
        rollout.check()?;
        let permit = rollout
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApplyError::Skipped(format!("the update of {service} was closed")))?;
        let last = rollout.state.lock().ok().and_then(|s| s.last_finished);
        if let Some(last) = last {
            tokio::time::sleep_until(last + rollout.config.delay).await;
        }
        rollout.check()?;
        Ok(Turn {
            rollout,
            _permit: permit,
        })
    }
}

impl Rollout {
    fn check(&self) -> Result<(), ApplyError> {
        match self.state.lock().ok().and_then(|s| s.stopped.clone()) {
            Some(why) => Err(ApplyError::Skipped(why)),
            None => Ok(()),
        }
    }
}

impl Turn {
    /// Ends the replica's turn; a failure stops the service's update unless `failure_action` is
    /// `continue`.
    pub fn finish(self, replica: &str, ok: bool) {
        let r = &self.rollout;
        if let Ok(mut s) = r.state.lock() {
            s.last_finished = Some(Instant::now());
            if !ok && r.config.failure_action.stops_update() && s.stopped.is_none() {
                s.stopped = Some(format!(
                    "the update of {} stopped after {replica} failed (failure_action: {})",
                    r.service,
                    r.config.failure_action.word()
                ));
            }
        }
    }
}

/// Watches a new container for `monitor` after the switch: it must stay ready (healthy, or
/// running without a healthcheck) the whole time, or the update fails while its old container
/// still exists to go back to.
pub async fn monitor(
    ctx: &Ctx<'_>,
    id: &str,
    name: &str,
    svc: &DesiredService,
) -> Result<(), ApplyError> {
    let period = svc.update.monitor;
    if period.is_zero() {
        return Ok(());
    }
    let end = Instant::now() + period;
    loop {
        let doc = ctx.engine.inspect_container(id).await?;
        let c = observed_from_inspect(doc.raw)?;
        let r = Readiness::of(&c, svc.has_healthcheck);
        if !matches!(r, Readiness::Healthy | Readiness::Running) {
            return Err(ApplyError::NotReady {
                container: name.to_string(),
                wanted: if svc.has_healthcheck {
                    "healthy"
                } else {
                    "running"
                },
                timeout: period,
                detail: format!("{} during the monitor period", r.word()),
            });
        }
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        tokio::time::sleep((end - now).min(Duration::from_millis(500))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::update::{FailureAction, UpdateOrder};

    fn config(parallelism: u32, delay_s: u64, failure_action: FailureAction) -> UpdateConfig {
        UpdateConfig {
            order: UpdateOrder::StartFirst,
            failure_action,
            monitor: Duration::ZERO,
            delay: Duration::from_secs(delay_s),
            parallelism,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn parallelism_one_lets_one_replica_update_at_a_time() {
        let rollouts = Rollouts::default();
        let cfg = config(1, 0, FailureAction::Rollback);
        let first = rollouts.enter("web", &cfg).await.expect("first turn");
        let second = tokio::time::timeout(Duration::from_secs(3600), rollouts.enter("web", &cfg));
        assert!(
            second.await.is_err(),
            "a second replica waits while the first updates"
        );
        // Another service has its own rollout.
        let other = rollouts.enter("db", &cfg).await.expect("db's own turn");
        first.finish("web-1", true);
        rollouts
            .enter("web", &cfg)
            .await
            .expect("the next replica's turn")
            .finish("web-2", true);
        other.finish("db-1", true);
    }

    #[tokio::test(start_paused = true)]
    async fn parallelism_zero_updates_every_replica_at_once() {
        let rollouts = Rollouts::default();
        let cfg = config(0, 30, FailureAction::Rollback);
        let turns: Vec<Turn> =
            futures_util::future::join_all((0..5).map(|_| rollouts.enter("web", &cfg)))
                .await
                .into_iter()
                .map(|t| t.expect("a turn"))
                .collect();
        assert_eq!(turns.len(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn delay_separates_the_end_of_one_replica_from_the_start_of_the_next() {
        let rollouts = Rollouts::default();
        let cfg = config(1, 30, FailureAction::Rollback);
        let t0 = Instant::now();
        rollouts
            .enter("web", &cfg)
            .await
            .expect("first")
            .finish("web-1", true);
        assert_eq!(Instant::now(), t0, "the first replica does not wait");
        tokio::time::advance(Duration::from_secs(5)).await;
        let finished = t0;
        rollouts
            .enter("web", &cfg)
            .await
            .expect("second")
            .finish("web-2", true);
        assert!(Instant::now() >= finished + Duration::from_secs(30));
        assert!(Instant::now() < finished + Duration::from_secs(31));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_replica_stops_the_update_under_rollback_and_pause() {
        for action in [FailureAction::Rollback, FailureAction::Pause] {
            let rollouts = Rollouts::default();
            let cfg = config(1, 0, action);
            rollouts
                .enter("web", &cfg)
                .await
                .expect("first")
                .finish("app-web-1", false);
            let err = rollouts
                .enter("web", &cfg)
                .await
                .err()
                .expect("the update stopped");
            let text = err.to_string();
            assert!(
                text.contains("the update of web stopped after app-web-1 failed")
                    && text.contains(action.word()),
                "{text}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_replica_waiting_for_its_turn_is_refused_once_the_running_one_fails() {
        let rollouts = Rollouts::default();
        let cfg = config(1, 0, FailureAction::Rollback);
        let first = rollouts.enter("web", &cfg).await.expect("first");
        let (waiting, ()) = tokio::join!(rollouts.enter("web", &cfg), async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            first.finish("app-web-1", false);
        });
        assert!(waiting.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn continue_keeps_updating_after_a_failed_replica() {
        let rollouts = Rollouts::default();
        let cfg = config(1, 0, FailureAction::Continue);
        rollouts
            .enter("web", &cfg)
            .await
            .expect("first")
            .finish("app-web-1", false);
        rollouts
            .enter("web", &cfg)
            .await
            .expect("second still updates")
            .finish("app-web-2", true);
    }
}
