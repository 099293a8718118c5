//! Health gates: waiting for a container to be ready (its own healthcheck or running state, then
//! the `spindle.yaml` probes that gate its service), and for a service's dependencies to meet their `depends_on` conditions.

use std::time::{Duration, Instant};

use super::{ApplyError, Ctx};
use crate::desired::typed::{Condition, DesiredService};
use crate::health::{self, ProbeOutcome, ProbeSpec};
use crate::labels;
use crate::observe::observed_from_inspect;
use crate::observe::snapshot::{Health, ObservedContainer, RunState};

/// What a container looked like when a gate last checked it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    Healthy,
    /// Running, and the service has no healthcheck.
    Running,
    Starting,
    Unhealthy,
    Exited(i64),
    /// A one-shot that finished with code 0 and is not meant to restart (see [`crate::plan::completed`]).
    Completed,
    Other(String),
}

impl Readiness {
    pub fn of(c: &ObservedContainer, has_healthcheck: bool) -> Self {
        match (c.state, c.health) {
            (RunState::Running, Health::Healthy) => Self::Healthy,
            (RunState::Running, Health::Unhealthy) => Self::Unhealthy,
            (RunState::Running, Health::Starting) => Self::Starting,
            (RunState::Running, Health::None) if has_healthcheck => Self::Starting,
            (RunState::Running, Health::None) => Self::Running,
            (RunState::Exited | RunState::Dead, _) => Self::Exited(c.exit_code),
            (other, _) => Self::Other(format!("{other:?}").to_lowercase()),
        }
    }

    pub fn word(&self) -> String {
        match self {
            Self::Healthy => "healthy".into(),
            Self::Running => "running".into(),
            Self::Starting => "starting".into(),
            Self::Unhealthy => "unhealthy".into(),
            Self::Exited(code) => format!("exited with code {code}"),
            Self::Completed => "completed".into(),
            Self::Other(s) => s.clone(),
        }
    }
}

/// Polling interval: starts short so quick containers are seen quickly, grows to spare the engine.
fn next_interval(i: Duration) -> Duration {
    (i * 2).min(Duration::from_millis(500))
}

async fn inspect(ctx: &Ctx<'_>, id: &str) -> Result<ObservedContainer, ApplyError> {
    let doc = ctx.engine.inspect_container(id).await?;
    Ok(observed_from_inspect(doc.raw)?)
}

/// Waits until the container is healthy (or running, without a healthcheck; or, for a one-shot
/// others wait on with `service_completed_successfully`, finished with code 0). Fails at once
/// when it exits otherwise or turns unhealthy, and after `timeout`.
pub async fn wait_ready(
    ctx: &Ctx<'_>,
    id: &str,
    name: &str,
    svc: &DesiredService,
) -> Result<Readiness, ApplyError> {
    wait_ready_until(ctx, id, name, svc, Instant::now() + ctx.opts.timeout).await
}

/// What the health gate saw when it let a container through.
pub struct Gated {
    pub readiness: Readiness,
    /// The outcomes of the service's gating probes in the round that passed (empty without any).
    pub probes: Vec<ProbeOutcome>,
}

/// The full health gate of a change: [`wait_ready`], then, within the same timeout, the probes
/// that gate the service (`gates:` in `spindle.yaml`) until all of them pass in one round.
/// A probe that never passes fails the gate like a healthcheck that never passes.
pub async fn wait_gated(
    ctx: &Ctx<'_>,
    id: &str,
    name: &str,
    svc: &DesiredService,
) -> Result<Gated, ApplyError> {
    let deadline = Instant::now() + ctx.opts.timeout;
    let readiness = wait_ready_until(ctx, id, name, svc, deadline).await?;
    if svc.probes.is_empty() || readiness == Readiness::Completed {
        return Ok(Gated {
            readiness,
            probes: Vec::new(),
        });
    }
    let probes = wait_probes(ctx, id, name, svc, &svc.probes, deadline).await?;
    Ok(Gated { readiness, probes })
}

/// Polls the probes until all pass in one round; fails at once when the container stops being
/// ready, and at the deadline with the first failing probe of the last round.
async fn wait_probes(
    ctx: &Ctx<'_>,
    id: &str,
    name: &str,
    svc: &DesiredService,
    probes: &[ProbeSpec],
    deadline: Instant,
) -> Result<Vec<ProbeOutcome>, ApplyError> {
    let mut interval = Duration::from_millis(100);
    loop {
        let outcomes = health::run_all(probes).await;
        let Some(failed) = outcomes.iter().find(|o| !o.ok).cloned() else {
            return Ok(outcomes);
        };
        let c = inspect(ctx, id).await?;
        let r = Readiness::of(&c, svc.has_healthcheck);
        if !matches!(r, Readiness::Healthy | Readiness::Running) {
            return Err(ApplyError::NotReady {
                container: name.to_string(),
                wanted: if svc.has_healthcheck {
                    "healthy"
                } else {
                    "running"
                },
                timeout: ctx.opts.timeout,
                detail: format!("{} while its probes ran", r.word()),
            });
        }
        if Instant::now() >= deadline {
            return Err(ApplyError::Probe(Box::new(super::ProbeFailure {
                container: name.to_string(),
                probe: failed.name.clone(),
                class: failed.class.unwrap_or(health::ErrorClass::Other).as_str(),
                timeout: ctx.opts.timeout,
                detail: failed.detail.clone(),
                outcomes,
            })));
        }
        tokio::time::sleep(interval.min(deadline.saturating_duration_since(Instant::now()))).await;
        interval = (interval * 2).min(Duration::from_secs(1));
    }
}

async fn wait_ready_until(
    ctx: &Ctx<'_>,
    id: &str,
    name: &str,
    svc: &DesiredService,
    deadline: Instant,
) -> Result<Readiness, ApplyError> {
    let has_healthcheck = svc.has_healthcheck;
    let mut interval = Duration::from_millis(50);
    loop {
        let c = inspect(ctx, id).await?;
        if crate::plan::completed(ctx.desired, svc, &c) {
            return Ok(Readiness::Completed);
        }
        let r = Readiness::of(&c, has_healthcheck);
        match r {
            Readiness::Healthy | Readiness::Running => return Ok(r),
            Readiness::Unhealthy | Readiness::Exited(_) => {
                return Err(ApplyError::NotReady {
                    container: name.to_string(),
                    wanted: if has_healthcheck {
                        "healthy"
                    } else {
                        "running"
                    },
                    timeout: ctx.opts.timeout,
                    detail: r.word(),
                });
            }
            _ => {}
        }
        if Instant::now() >= deadline {
            return Err(ApplyError::NotReady {
                container: name.to_string(),
                wanted: if has_healthcheck {
                    "healthy"
                } else {
                    "running"
                },
                timeout: ctx.opts.timeout,
                detail: format!("still {}", r.word()),
            });
        }
        tokio::time::sleep(interval).await;
        interval = next_interval(interval);
    }
}

/// Waits until every dependency of `svc` meets its `depends_on` condition, as Compose does
/// before it starts a container.
pub async fn wait_dependencies(ctx: &Ctx<'_>, svc: &DesiredService) -> Result<(), ApplyError> {
    for dep in &svc.depends_on {
        let Some(dsvc) = ctx.desired.services.get(&dep.service) else {
            continue; // optional dependency disabled by profiles
        };
        let wanted = match dep.condition {
            Condition::ServiceStarted => "started",
            Condition::ServiceHealthy => "healthy",
            Condition::ServiceCompletedSuccessfully => "completed successfully",
        };
        if dep.condition == Condition::ServiceHealthy && !dsvc.has_healthcheck {
            return Err(ApplyError::Dependency {
                service: dep.service.clone(),
                wanted,
                detail: "it has no healthcheck; add one or use condition: service_started".into(),
            });
        }
        let deadline = Instant::now() + ctx.opts.timeout;
        let mut interval = Duration::from_millis(50);
        loop {
            let project = format!("{}={}", labels::PROJECT, ctx.desired.project);
            let service = format!("{}={}", labels::SERVICE, dep.service);
            let list = ctx.engine.list_containers(&[&project, &service]).await?;
            let mut states = Vec::new();
            for c in list {
                let Some(id) = c.id else { continue };
                let c = inspect(ctx, &id).await?;
                if c.replaces().is_some() && c.state != RunState::Running {
                    continue;
                }
                states.push(c);
            }
            let met = !states.is_empty()
                && states.iter().all(|c| match dep.condition {
                    Condition::ServiceStarted => c.is_running(),
                    Condition::ServiceHealthy => c.is_running() && c.health == Health::Healthy,
                    Condition::ServiceCompletedSuccessfully => {
                        c.state == RunState::Exited && c.exit_code == 0
                    }
                });
            if met {
                break;
            }
            let failed = states.iter().find(|c| match dep.condition {
                Condition::ServiceCompletedSuccessfully => {
                    c.state == RunState::Exited && c.exit_code != 0
                }
                _ => matches!(c.state, RunState::Exited | RunState::Dead),
            });
            let detail = match (failed, states.first()) {
                (Some(c), _) => Some(Readiness::of(c, dsvc.has_healthcheck).word()),
                _ if Instant::now() >= deadline => Some(
                    states
                        .first()
                        .map(|c| format!("still {}", Readiness::of(c, dsvc.has_healthcheck).word()))
                        .unwrap_or_else(|| "it has no container".into()),
                ),
                _ => None,
            };
            if let Some(detail) = detail {
                return Err(ApplyError::Dependency {
                    service: dep.service.clone(),
                    wanted,
                    detail,
                });
            }
            tokio::time::sleep(interval).await;
            interval = next_interval(interval);
        }
    }
    Ok(())
}
