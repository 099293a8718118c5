//! One plan action against the engine: create, the recreate swap with its rollback, resume, start, restart, update, remove.

use std::collections::BTreeMap;

use serde_json::Value;

use super::gate::{Gated, Readiness, wait_dependencies, wait_gated, wait_ready};
use super::hook::{self, HookRecord};
use super::{ApplyError, Ctx};
use crate::desired::typed::{DesiredService, PullPolicy};
use crate::desired::update::UpdateOrder;
use crate::health::ProbeOutcome;
use crate::labels;
use crate::plan::{Action, ActionKind, ContainerRef, spec_document};
use crate::spec::{self, Peers};

/// A finished action.
pub struct Done {
    pub readiness: Option<String>,
    /// The pre-recreate hook the action ran or waited for.
    pub hook: Option<Box<HookRecord>>,
    /// The gating probes' outcomes (see [`wait_gated`]).
    pub probes: Vec<ProbeOutcome>,
}

/// A failed action, and whether the previous state was put back.
pub struct Failure {
    pub error: ApplyError,
    pub rolled_back: bool,
    pub hook: Option<Box<HookRecord>>,
}

impl From<ApplyError> for Failure {
    fn from(error: ApplyError) -> Self {
        Self {
            error,
            rolled_back: false,
            hook: None,
        }
    }
}

pub(super) type Res = Result<Done, Failure>;

fn done(readiness: Option<Readiness>) -> Res {
    Ok(Done {
        readiness: readiness.map(|r| r.word()),
        hook: None,
        probes: Vec::new(),
    })
}

pub(super) fn gated(g: Gated) -> Res {
    Ok(Done {
        readiness: Some(g.readiness.word()),
        hook: None,
        probes: g.probes,
    })
}

fn service<'a>(ctx: &'a Ctx<'_>, name: &str) -> Result<&'a DesiredService, Failure> {
    ctx.desired.services.get(name).ok_or_else(|| {
        Failure::from(ApplyError::Skipped(format!(
            "service {name} is not in the desired state"
        )))
    })
}

pub async fn run(ctx: &Ctx<'_>, action: &Action) -> Res {
    match &action.kind {
        ActionKind::CreateNetwork { key, name } => {
            let Some(net) = ctx.desired.networks.get(key) else {
                return Err(ApplyError::Skipped(format!("network {key} is not desired")).into());
            };
            let body = spec::network_body(&ctx.spec, net);
            ctx.rec
                .write("create network", name, ctx.engine.create_network(&body))
                .await?;
            done(None)
        }
        ActionKind::RecreateNetwork { key, name } => {
            let Some(net) = ctx.desired.networks.get(key) else {
                return Err(ApplyError::Skipped(format!("network {key} is not desired")).into());
            };
            // The containers on it are recreated after this action; until then they lose it.
            let attached = ctx
                .engine
                .inspect_network(name)
                .await
                .map_err(ApplyError::from)?;
            for id in attached.containers.unwrap_or_default().into_keys() {
                ctx.rec
                    .write(
                        "disconnect network",
                        &format!("{id} from {name}"),
                        ctx.engine.disconnect_network(name, &id),
                    )
                    .await?;
            }
            ctx.rec
                .write("remove network", name, ctx.engine.remove_network(name))
                .await?;
            let body = spec::network_body(&ctx.spec, net);
            ctx.rec
                .write("create network", name, ctx.engine.create_network(&body))
                .await?;
            done(None)
        }
        ActionKind::CreateVolume { key, name } => {
            let Some(vol) = ctx.desired.volumes.get(key) else {
                return Err(ApplyError::Skipped(format!("volume {key} is not desired")).into());
            };
            let body = spec::volume_body(&ctx.spec, vol);
            ctx.rec
                .write("create volume", name, ctx.engine.create_volume(&body))
                .await?;
            done(None)
        }
        ActionKind::EnsureImage { service: s, image } => {
            ensure_image(ctx, service(ctx, s)?, image).await
        }
        ActionKind::Create { service: s, number } => create(ctx, service(ctx, s)?, *number).await,
        ActionKind::Recreate {
            service: s,
            number,
            old,
        } => recreate(ctx, service(ctx, s)?, *number, old).await,
        ActionKind::ResumeRecreate {
            service: s,
            number,
            old,
            new,
        } => resume(ctx, service(ctx, s)?, *number, old.as_ref(), new).await,
        ActionKind::Start { container } => {
            let svc = service(ctx, &container.service)?;
            wait_dependencies(ctx, svc).await?;
            ctx.rec
                .write(
                    "start container",
                    &container.name,
                    ctx.engine.start(&container.id),
                )
                .await
                .or_else(|e| match e {
                    // Someone else started it first (Compose finishing its recreate): fine.
                    ApplyError::Engine(ref inner) if inner.status() == Some(304) => Ok(()),
                    // `docker rm -f` kills first: the container looks stopped until it is gone.
                    ApplyError::Engine(ref inner)
                        if inner.is_not_found()
                            || (inner.is_conflict() && inner.to_string().contains("removal")) =>
                    {
                        Err(ApplyError::BeingRemoved(container.name.clone()))
                    }
                    other => Err(other),
                })?;
            gated(wait_gated(ctx, &container.id, &container.name, svc).await?)
        }
        ActionKind::Restart { container } => {
            let svc = service(ctx, &container.service)?;
            wait_dependencies(ctx, svc).await?;
            ctx.rec
                .write(
                    "restart container",
                    &container.name,
                    ctx.engine.restart(&container.id, None),
                )
                .await?;
            gated(wait_gated(ctx, &container.id, &container.name, svc).await?)
        }
        ActionKind::Update { container, live } => {
            let body = spec::update_body(live);
            ctx.rec
                .write(
                    "update container",
                    &container.name,
                    ctx.engine.update(&container.id, &body),
                )
                .await?;
            done(None)
        }
        ActionKind::Remove { container } => {
            remove(ctx, container).await?;
            done(None)
        }
        ActionKind::DisconnectNetwork { container, network } => {
            let target = format!("{} from {network}", container.name);
            ctx.rec
                .write(
                    "disconnect network",
                    &target,
                    ctx.engine.disconnect_network(network, &container.id),
                )
                .await?;
            done(None)
        }
    }
}

async fn remove(ctx: &Ctx<'_>, c: &ContainerRef) -> Result<(), ApplyError> {
    // Stop first so the container's stop signal and grace period are honoured; named volumes stay.
    match ctx
        .rec
        .write("stop container", &c.name, ctx.engine.stop(&c.id, None))
        .await
    {
        Err(ApplyError::Engine(e)) if e.is_not_found() => return Ok(()),
        other => other?,
    }
    ctx.rec
        .write("remove container", &c.name, ctx.engine.remove(&c.id, true))
        .await
}

async fn ensure_image(ctx: &Ctx<'_>, svc: &DesiredService, image: &str) -> Res {
    let present = ctx.engine.image_id(image).await.map_err(ApplyError::from)?;
    match (svc.pull_policy, present) {
        (PullPolicy::Always, Some(_)) => {
            // A registry outage must not take a running host down: keep the local image.
            match ctx
                .rec
                .write("pull image", image, ctx.engine.pull(image))
                .await
            {
                Ok(()) => Ok(Done {
                    readiness: Some("pulled".into()),
                    hook: None,
                    probes: Vec::new(),
                }),
                Err(e) => Ok(Done {
                    readiness: Some(format!(
                        "pull failed, using the local image: {}",
                        ctx.opts.redactor.text(&e.to_string())
                    )),
                    hook: None,
                    probes: Vec::new(),
                }),
            }
        }
        (_, Some(_)) => done(None),
        (PullPolicy::Never | PullPolicy::Build, None) => Err(ApplyError::Image {
            image: image.to_string(),
            why: format!(
                "pull_policy is {}; load or build it on this host",
                if svc.pull_policy == PullPolicy::Never {
                    "never"
                } else {
                    "build"
                }
            ),
        }
        .into()),
        (PullPolicy::Missing | PullPolicy::Always, None) => {
            ctx.rec
                .write("pull image", image, ctx.engine.pull(image))
                .await
                .map_err(|e| ApplyError::Image {
                    image: image.to_string(),
                    why: format!("cannot be pulled: {e}"),
                })?;
            match ctx.engine.image_id(image).await.map_err(ApplyError::from)? {
                Some(_) => Ok(Done {
                    readiness: Some("pulled".into()),
                    hook: None,
                    probes: Vec::new(),
                }),
                None => Err(ApplyError::Image {
                    image: image.to_string(),
                    why: "is still missing after the pull".into(),
                }
                .into()),
            }
        }
    }
}

/// The project's containers by service, to resolve `service:` references in bodies.
struct LivePeers {
    by_service: BTreeMap<String, Vec<(u32, String, String)>>,
}

impl Peers for LivePeers {
    fn first_container(&self, service: &str) -> Option<String> {
        self.by_service
            .get(service)
            .and_then(|v| v.iter().min())
            .map(|(_, id, _)| id.clone())
    }
    fn container_names(&self, service: &str) -> Vec<String> {
        self.by_service
            .get(service)
            .map(|v| v.iter().map(|(_, _, n)| n.clone()).collect())
            .unwrap_or_default()
    }
}

async fn peers(ctx: &Ctx<'_>) -> Result<LivePeers, ApplyError> {
    let project = format!("{}={}", labels::PROJECT, ctx.desired.project);
    let list = ctx.engine.list_containers(&[&project]).await?;
    let mut by_service: BTreeMap<String, Vec<(u32, String, String)>> = BTreeMap::new();
    for c in list {
        let labels = c.labels.unwrap_or_default();
        let (Some(svc), Some(id)) = (labels.get(labels::SERVICE), c.id) else {
            continue;
        };
        if labels.contains_key(labels::REPLACES) {
            continue;
        }
        let number = labels
            .get(labels::CONTAINER_NUMBER)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let name = c
            .names
            .and_then(|n| n.first().cloned())
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string();
        by_service
            .entry(svc.clone())
            .or_default()
            .push((number, id, name));
    }
    Ok(LivePeers { by_service })
}

/// Builds the create body with spindle's bookkeeping labels.
async fn body(
    ctx: &Ctx<'_>,
    svc: &DesiredService,
    number: u32,
    replaces: Option<&str>,
) -> Result<(Value, Vec<(String, Value)>), ApplyError> {
    let peers = peers(ctx).await?;
    let image_id = ctx.engine.image_id(&svc.image).await?;
    let mut body = spec::container_body(&ctx.spec, svc, number, image_id.as_deref(), &peers)?;
    let extra = spec::extra_networks(&ctx.spec, svc, number, &peers)?;
    if let Some(Value::Object(l)) = body.get_mut("Labels") {
        l.insert(
            labels::SPEC.into(),
            spec_document(svc, &ctx.opts.redactor).into(),
        );
        if let Some(old) = replaces {
            l.insert(labels::REPLACES.into(), old.into());
        }
    }
    Ok((body, extra))
}

pub(super) async fn connect_extra(
    ctx: &Ctx<'_>,
    id: &str,
    name: &str,
    extra: &[(String, Value)],
) -> Result<(), ApplyError> {
    for (net, endpoint) in extra {
        ctx.rec
            .write(
                "connect network",
                &format!("{name} to {net}"),
                ctx.engine.connect_network(net, id, endpoint),
            )
            .await?;
    }
    Ok(())
}

async fn create(ctx: &Ctx<'_>, svc: &DesiredService, number: u32) -> Res {
    if !ctx.opts.no_start {
        wait_dependencies(ctx, svc).await?;
    }
    let name = spec::container_name(&ctx.desired.project, svc, number);
    let (body, extra) = body(ctx, svc, number, None).await?;
    let id = ctx
        .rec
        .write(
            "create container",
            &name,
            ctx.engine.create_container(&name, &body),
        )
        .await?;
    connect_extra(ctx, &id, &name, &extra).await?;
    if ctx.opts.no_start {
        return created();
    }
    ctx.rec
        .write("start container", &name, ctx.engine.start(&id))
        .await?;
    gated(wait_gated(ctx, &id, &name, svc).await?)
}

/// A container created and left stopped (`--no-start`).
pub(super) fn created() -> Res {
    Ok(Done {
        readiness: Some("created".into()),
        hook: None,
        probes: Vec::new(),
    })
}

fn next_name(name: &str) -> String {
    format!("{name}-next")
}

/// Creates the replacement of container `name` beside it, under its temporary name
/// ([`next_name`]): the first step of either recreate order. Returns that name and the new id.
pub(super) async fn create_replacement(
    ctx: &Ctx<'_>,
    name: &str,
    body: &Value,
) -> Result<(String, String), ApplyError> {
    let tmp = next_name(name);
    let id = ctx
        .rec
        .write(
            "create container",
            &tmp,
            ctx.engine.create_container(&tmp, body),
        )
        .await?;
    Ok((tmp, id))
}

async fn recreate(ctx: &Ctx<'_>, svc: &DesiredService, number: u32, old: &ContainerRef) -> Res {
    if !ctx.opts.no_start {
        wait_dependencies(ctx, svc).await?;
    }
    // `deploy.update_config`: this replica's turn (parallelism, delay, a failure that stopped the update).
    let turn = ctx.rollouts.enter(&svc.name, &svc.update).await?;
    let out = replace(ctx, svc, number, old).await;
    turn.finish(&old.name, out.is_ok());
    out
}

async fn replace(ctx: &Ctx<'_>, svc: &DesiredService, number: u32, old: &ContainerRef) -> Res {
    let name = spec::container_name(&ctx.desired.project, svc, number);
    let (body, extra) = body(ctx, svc, number, Some(&old.id)).await?;
    // 0. The pre-recreate hook (once per service per apply): when it does not succeed, nothing
    //    has been created or stopped, and the old container keeps running as it is.
    let hook = match &svc.pre_recreate {
        None => None,
        Some(h) => match hook::run_once(ctx, svc, h, old).await {
            Ok(rec) => Some(Box::new(rec)),
            Err(rec) => {
                return Err(Failure {
                    error: ApplyError::Hook(rec.failure(&svc.name)),
                    rolled_back: false,
                    hook: Some(Box::new(rec)),
                });
            }
        },
    };
    // The hook's record goes with the recreate's result, whichever way it ends.
    // `--no-start` starts nothing, so there is no overlap to make: a start-first service is
    // swapped stop-first, its replacement left created.
    let swapped = match (svc.update.order, ctx.opts.no_start) {
        (UpdateOrder::StartFirst, false) => {
            super::startfirst::replace(ctx, svc, &name, old, &body, &extra).await
        }
        _ => super::stopfirst::swap(ctx, svc, &name, old, &body, &extra).await,
    };
    match swapped {
        Ok(done) => Ok(Done { hook, ..done }),
        Err(failure) => Err(Failure { hook, ..failure }),
    }
}

/// Finishes what an interrupted recreate left: keeps the replacement when it is ready,
/// otherwise puts the old container back. Either way one container per slot remains.
async fn resume(
    ctx: &Ctx<'_>,
    svc: &DesiredService,
    number: u32,
    old: Option<&ContainerRef>,
    new: &ContainerRef,
) -> Res {
    let name = spec::container_name(&ctx.desired.project, svc, number);
    let doc = ctx
        .engine
        .inspect_container(&new.id)
        .await
        .map_err(ApplyError::from)?;
    let current = crate::observe::observed_from_inspect(doc.raw).map_err(ApplyError::from)?;
    let ready = crate::plan::completed(ctx.desired, svc, &current)
        || matches!(
            Readiness::of(&current, svc.has_healthcheck),
            Readiness::Healthy | Readiness::Running | Readiness::Starting
        );
    match old {
        Some(old) if !ready => {
            ctx.rec
                .write(
                    "remove container",
                    &new.name,
                    ctx.engine.remove(&new.id, true),
                )
                .await?;
            if old.name != name {
                ctx.rec
                    .write(
                        "rename container",
                        &old.name,
                        ctx.engine.rename(&old.id, &name),
                    )
                    .await?;
            }
            ctx.rec
                .write("start container", &name, ctx.engine.start(&old.id))
                .await
                .or_else(|e| match e {
                    // Already running is fine.
                    ApplyError::Engine(ref inner) if inner.status() == Some(304) => Ok(()),
                    other => Err(other),
                })?;
            let r = wait_ready(ctx, &old.id, &name, svc).await?;
            Ok(Done {
                readiness: Some(format!("previous container restored, {}", r.word())),
                hook: None,
                probes: Vec::new(),
            })
        }
        _ => {
            if !current.is_running() {
                ctx.rec
                    .write("start container", &new.name, ctx.engine.start(&new.id))
                    .await?;
            }
            let r = wait_gated(ctx, &new.id, &new.name, svc).await?;
            if let Some(old) = old {
                // Stopped first: after a start-first interruption it still runs and serves.
                remove(ctx, old).await?;
            }
            if new.name != name {
                ctx.rec
                    .write(
                        "rename container",
                        &new.name,
                        ctx.engine.rename(&new.id, &name),
                    )
                    .await?;
            }
            gated(r)
        }
    }
}
