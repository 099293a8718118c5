//! The start-first recreate (`deploy.update_config.order: start-first`): the new container starts
//! beside the old one and joins the same networks and aliases, the old one is stopped only once
//! the new one passed its gate, and removed once the new one stayed ready through `monitor`.
//!
//! Names: during the overlap the new container is `<name>-next` (it already answers to the
//! service name and to `<name>` as network aliases); it takes `<name>` after the old one is gone.
//! Every step is recoverable from labels alone: the new container carries `io.spindle.replaces`,
//! so an interrupted run leaves a replacement the planner resumes (`ops::resume`).

use serde_json::Value;

use super::gate::{wait_gated, wait_ready};
use super::ops::{Failure, Res, connect_extra, create_replacement, gated};
use super::rollout::monitor;
use super::{ApplyError, Ctx};
use crate::desired::typed::DesiredService;
use crate::plan::ContainerRef;

/// How far a start-first recreate got. Up to `OldStopped` the old container exists and a failure
/// puts it back exactly; from `OldRemoved` on the only way is forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Overlap {
    /// The new container exists as `<name>-next`, not started; the old one serves alone.
    Created,
    /// Both run: the service's aliases resolve to both.
    NewStarted,
    /// The new one passed its gate and the old one is being stopped or is stopped (kept, to go
    /// back to while the new one is monitored).
    OldStopped,
    /// The new one stayed ready through `monitor`; the old one is removed.
    OldRemoved,
    /// The new one carries the service's name: done.
    Renamed,
}

/// What the start-first rollback does from a step: the exact inverse of the steps taken.
pub(super) fn undo(step: Overlap) -> &'static [Undo] {
    match step {
        Overlap::Created => &[Undo::RemoveNew],
        Overlap::NewStarted => &[Undo::StopNew, Undo::RemoveNew],
        Overlap::OldStopped => &[Undo::StartOld, Undo::StopNew, Undo::RemoveNew],
        // The old container is gone: nothing to go back to.
        Overlap::OldRemoved | Overlap::Renamed => &[],
    }
}

/// One step of a start-first rollback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Undo {
    /// Start the old container again and wait until it is ready (it serves before the new one goes).
    StartOld,
    StopNew,
    RemoveNew,
}

/// Runs the start-first recreate of one container with its rollback.
pub(super) async fn replace(
    ctx: &Ctx<'_>,
    svc: &DesiredService,
    name: &str,
    old: &ContainerRef,
    body: &Value,
    extra: &[(String, Value)],
) -> Res {
    // A bad image or configuration fails here, before anything else happens.
    let (tmp, new_id) = create_replacement(ctx, name, body).await?;
    let mut step = Overlap::Created;
    let switched = async {
        connect_extra(ctx, &new_id, &tmp, extra).await?;
        ctx.rec
            .write("start container", &tmp, ctx.engine.start(&new_id))
            .await?;
        step = Overlap::NewStarted;
        // The old one keeps serving while the new one passes its gate.
        let g = wait_gated(ctx, &new_id, &tmp, svc).await?;
        // Set before the call: a stop that fails half-way is undone by starting the old one.
        step = Overlap::OldStopped;
        ctx.rec
            .write("stop container", &old.name, ctx.engine.stop(&old.id, None))
            .await?;
        monitor(ctx, &new_id, &tmp, svc).await?;
        Ok::<_, ApplyError>(g)
    }
    .await;
    let g = match switched {
        Ok(g) => g,
        Err(error) => {
            let restored = rollback(ctx, svc, &tmp, &new_id, old, step).await;
            return Err(Failure {
                hook: None,
                error: match (restored, error) {
                    (Ok(()), error) => error,
                    (Err(e), ApplyError::Probe(mut f)) => {
                        f.detail = format!("{}; and the rollback failed too: {e}", f.detail);
                        ApplyError::Probe(f)
                    }
                    (Err(e), error) => {
                        ApplyError::Skipped(format!("{error}; and the rollback failed too: {e}"))
                    }
                },
                rolled_back: true,
            });
        }
    };
    // From here on there is no way back; an interruption is finished by the next reconcile.
    let finished = async {
        ctx.rec
            .write(
                "remove container",
                &old.name,
                ctx.engine.remove(&old.id, true),
            )
            .await?;
        step = Overlap::OldRemoved;
        ctx.rec
            .write("rename container", &tmp, ctx.engine.rename(&new_id, name))
            .await?;
        step = Overlap::Renamed;
        Ok::<_, ApplyError>(())
    }
    .await;
    if let Err(e) = finished {
        tracing::warn!(container = %tmp, ?step, error = %e, "start-first recreate stopped after the switch; the next reconcile finishes it");
        return Err(e.into());
    }
    gated(g)
}

/// Undoes exactly the steps taken: the old container serves again before the new one goes.
async fn rollback(
    ctx: &Ctx<'_>,
    svc: &DesiredService,
    tmp: &str,
    new_id: &str,
    old: &ContainerRef,
    step: Overlap,
) -> Result<(), ApplyError> {
    for u in undo(step) {
        match u {
            Undo::StartOld => {
                ctx.rec
                    .write("start container", &old.name, ctx.engine.start(&old.id))
                    .await?;
                wait_ready(ctx, &old.id, &old.name, svc).await?;
            }
            Undo::StopNew => {
                // Best effort: the removal below forces it anyway.
                let _ = ctx
                    .rec
                    .write("stop container", tmp, ctx.engine.stop(new_id, Some(2)))
                    .await;
            }
            Undo::RemoveNew => {
                ctx.rec
                    .write("remove container", tmp, ctx.engine.remove(new_id, true))
                    .await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollback_never_touches_the_old_container_before_it_was_stopped() {
        for step in [Overlap::Created, Overlap::NewStarted] {
            assert!(!undo(step).contains(&Undo::StartOld), "{step:?}");
            assert_eq!(undo(step).last(), Some(&Undo::RemoveNew), "{step:?}");
        }
    }

    #[test]
    fn a_rollback_after_the_old_one_stopped_starts_it_before_the_new_one_goes() {
        assert_eq!(
            undo(Overlap::OldStopped),
            &[Undo::StartOld, Undo::StopNew, Undo::RemoveNew]
        );
    }

    #[test]
    fn there_is_no_rollback_once_the_old_container_is_removed() {
        assert!(undo(Overlap::OldRemoved).is_empty());
        assert!(undo(Overlap::Renamed).is_empty());
    }

    #[test]
    fn a_created_replacement_that_never_started_is_only_removed() {
        assert_eq!(undo(Overlap::Created), &[Undo::RemoveNew]);
    }
}
