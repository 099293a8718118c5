//! The stop-first recreate (`deploy.update_config.order: stop-first`, the default): the replacement is created beside the old container, the old one is stopped and renamed, the new one takes its name and starts, and rollback undoes exactly the steps taken.

use serde_json::Value;

use super::gate::{wait_gated, wait_ready};
use super::ops::{Failure, Res, connect_extra, create_replacement, created, gated};
use super::{ApplyError, Ctx};
use crate::desired::typed::DesiredService;
use crate::plan::ContainerRef;

/// How far a recreate got; rollback undoes exactly the steps taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Swap {
    /// The new container exists beside the old one, under a temporary name.
    Created,
    /// The old container is stopped.
    OldStopped,
    /// The old container carries the temporary "old" name.
    OldRenamed,
    /// The new container carries the service's name.
    NewRenamed,
    /// The new container was started.
    NewStarted,
}

fn old_name(name: &str) -> String {
    format!("{name}-old")
}

/// Steps 1 to 4 of a stop-first recreate, with rollback.
pub(super) async fn swap(
    ctx: &Ctx<'_>,
    svc: &DesiredService,
    name: &str,
    old: &ContainerRef,
    body: &Value,
    extra: &[(String, Value)],
) -> Res {
    // 1. The replacement is created while the old container still runs: a bad image or
    //    configuration fails here, before anything is stopped.
    let (tmp, new_id) = create_replacement(ctx, name, body).await?;
    let mut step = Swap::Created;
    let swapped = async {
        connect_extra(ctx, &new_id, &tmp, extra).await?;
        // 2. Stop the old one (its own stop signal and grace period), take its name, start the new one.
        ctx.rec
            .write("stop container", &old.name, ctx.engine.stop(&old.id, None))
            .await?;
        step = Swap::OldStopped;
        ctx.rec
            .write(
                "rename container",
                &old.name,
                ctx.engine.rename(&old.id, &old_name(name)),
            )
            .await?;
        step = Swap::OldRenamed;
        ctx.rec
            .write("rename container", &tmp, ctx.engine.rename(&new_id, name))
            .await?;
        step = Swap::NewRenamed;
        if ctx.opts.no_start {
            return Ok(None);
        }
        ctx.rec
            .write("start container", name, ctx.engine.start(&new_id))
            .await?;
        step = Swap::NewStarted;
        // 3. Health gate: the container's own readiness, then the probes that gate the service;
        //    then `update_config.monitor`, while the old container can still be put back.
        let g = wait_gated(ctx, &new_id, name, svc).await?;
        super::rollout::monitor(ctx, &new_id, name, svc).await?;
        Ok(Some(g))
    }
    .await;
    match swapped {
        Ok(r) => {
            // 4. Only now is the old container removed.
            ctx.rec
                .write(
                    "remove container",
                    &old_name(name),
                    ctx.engine.remove(&old.id, true),
                )
                .await?;
            match r {
                Some(r) => gated(r),
                None => created(),
            }
        }
        Err(error) => {
            // The old container is put back on its own readiness: its probes do not gate a rollback.
            let restored = rollback(ctx, svc, name, &new_id, old, step).await;
            Err(Failure {
                hook: None,
                error: match (restored, error) {
                    (Ok(()), error) => error,
                    // A failed probe keeps its outcomes for the result.
                    (Err(e), ApplyError::Probe(mut f)) => {
                        f.detail = format!("{}; and the rollback failed too: {e}", f.detail);
                        ApplyError::Probe(f)
                    }
                    (Err(e), error) => {
                        ApplyError::Skipped(format!("{error}; and the rollback failed too: {e}"))
                    }
                },
                rolled_back: true,
            })
        }
    }
}

/// Removes the replacement and puts the old container back, name and state.
async fn rollback(
    ctx: &Ctx<'_>,
    svc: &DesiredService,
    name: &str,
    new_id: &str,
    old: &ContainerRef,
    step: Swap,
) -> Result<(), ApplyError> {
    if step >= Swap::NewStarted {
        let _ = ctx
            .rec
            .write("stop container", name, ctx.engine.stop(new_id, Some(2)))
            .await;
    }
    ctx.rec
        .write("remove container", name, ctx.engine.remove(new_id, true))
        .await?;
    if step >= Swap::OldRenamed {
        ctx.rec
            .write(
                "rename container",
                &old_name(name),
                ctx.engine.rename(&old.id, &old.name),
            )
            .await?;
    }
    if step >= Swap::OldStopped {
        ctx.rec
            .write("start container", &old.name, ctx.engine.start(&old.id))
            .await?;
        wait_ready(ctx, &old.id, &old.name, svc).await?;
    }
    Ok(())
}
