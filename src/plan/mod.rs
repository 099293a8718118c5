//! Planning: a pure diff of the desired state against the observed one, each action with a reason.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::desired::compose_hash;
use crate::desired::tree::Tree;
use crate::desired::typed::{Condition, DependentAction, DesiredService, DesiredState, PullPolicy};
use crate::labels;
use crate::observe::seen::LastSeen;
use crate::observe::snapshot::{LiveConfig, ObservedContainer, RunState, Snapshot};
use crate::redact::Redactor;
use crate::spec;

pub mod follow;

pub use follow::{Follow, FollowCause};

/// What to change, in an order that respects dependencies.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Plan {
    pub project: String,
    pub actions: Vec<Action>,
    /// Containers of services no longer in the desired state (removed only when asked).
    pub orphans: Vec<ContainerRef>,
    /// Services whose containers already match.
    pub in_sync: Vec<String>,
    /// Problems that forbid applying this plan (a missing external network, …).
    pub blockers: Vec<String>,
    /// Things the operator should know that block nothing: violations of policies in mode `warn`,
    /// a container spindle leaves alone, …
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Slots someone else is changing right now (Compose recreating a container): nothing is
    /// planned for them, and whoever applies the plan looks again shortly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_flight: Vec<InFlight>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// The plan without the actions that start a container (`start`, and `restart`, which starts
    /// a stopped one), for `--no-start` (containers are created, or left, stopped, as
    /// `docker compose up --no-start` leaves them).
    pub fn without_starts(mut self) -> Self {
        let starts: BTreeSet<usize> = self
            .actions
            .iter()
            .filter(|a| {
                matches!(
                    a.kind,
                    ActionKind::Start { .. } | ActionKind::Restart { .. }
                )
            })
            .map(|a| a.id)
            .collect();
        self.remove_actions(&starts);
        self
    }

    /// Drops the given actions, renumbering the rest and their waits.
    pub fn remove_actions(&mut self, drop: &BTreeSet<usize>) {
        let mut new_id = BTreeMap::new();
        let kept: Vec<Action> = std::mem::take(&mut self.actions)
            .into_iter()
            .filter(|a| !drop.contains(&a.id))
            .collect();
        for (i, a) in kept.iter().enumerate() {
            new_id.insert(a.id, i);
        }
        self.actions = kept
            .into_iter()
            .map(|mut a| {
                a.id = new_id.get(&a.id).copied().unwrap_or(a.id);
                a.after = a
                    .after
                    .iter()
                    .filter_map(|x| new_id.get(x).copied())
                    .collect();
                a
            })
            .collect();
    }
}

/// A slot left to someone else's change in flight, with the container that shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InFlight {
    pub service: String,
    pub number: u32,
    /// Compose's replacement, under its temporary name `<old id 12>_<name>`.
    pub replacement: ContainerRef,
}

/// A container named in a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContainerRef {
    pub id: String,
    pub name: String,
    pub service: String,
    pub number: u32,
}

/// One step of a plan.
#[derive(Clone, Debug, Serialize)]
pub struct Action {
    /// Index in `Plan::actions`.
    pub id: usize,
    pub kind: ActionKind,
    /// Why, in words (`image changed`, `environment.DB_HOST changed`, `container missing`).
    pub reason: String,
    /// A unified diff of the normalized service (observed → desired), secrets redacted.
    pub diff: Option<String>,
    /// Actions that must finish (and pass their gate) before this one starts.
    pub after: Vec<usize>,
    /// The dependencies this action follows (`depends_on: {dep: {restart: true}}`), each with
    /// what happened to it; empty for an action that follows nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub follows: Vec<Follow>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActionKind {
    CreateNetwork {
        key: String,
        name: String,
    },
    /// A network whose configuration changed: disconnect its containers, remove it, create it
    /// anew. The services on it are recreated after it.
    RecreateNetwork {
        key: String,
        name: String,
    },
    CreateVolume {
        key: String,
        name: String,
    },
    /// Make sure the image is present (pull by policy); fails the service before anything is stopped.
    EnsureImage {
        service: String,
        image: String,
    },
    Create {
        service: String,
        number: u32,
    },
    /// Replace a container: create the new one beside the old, swap, health-gate, remove the old.
    Recreate {
        service: String,
        number: u32,
        old: ContainerRef,
    },
    /// Finish a recreate a previous run left in flight (the new container exists).
    ResumeRecreate {
        service: String,
        number: u32,
        old: Option<ContainerRef>,
        new: ContainerRef,
    },
    Start {
        container: ContainerRef,
    },
    Restart {
        container: ContainerRef,
    },
    /// Change live settings without recreating.
    Update {
        container: ContainerRef,
        live: LiveConfig,
    },
    /// Remove a container: scaled down, orphaned, or a duplicate.
    Remove {
        container: ContainerRef,
    },
    /// Disconnect a container from a network (by Docker name) that the desired state does not
    /// give its service: it was attached out of band.
    DisconnectNetwork {
        container: ContainerRef,
        network: String,
    },
}

impl ActionKind {
    /// A short verb for output (`create`, `recreate`, …).
    pub fn verb(&self) -> &'static str {
        match self {
            Self::CreateNetwork { .. } => "create-network",
            Self::RecreateNetwork { .. } => "recreate-network",
            Self::CreateVolume { .. } => "create-volume",
            Self::EnsureImage { .. } => "ensure-image",
            Self::Create { .. } => "create",
            Self::Recreate { .. } => "recreate",
            Self::ResumeRecreate { .. } => "resume-recreate",
            Self::Start { .. } => "start",
            Self::Restart { .. } => "restart",
            Self::Update { .. } => "update",
            Self::Remove { .. } => "remove",
            Self::DisconnectNetwork { .. } => "disconnect-network",
        }
    }

    /// The service the action is about, if any.
    pub fn service(&self) -> Option<&str> {
        match self {
            Self::CreateNetwork { .. }
            | Self::RecreateNetwork { .. }
            | Self::CreateVolume { .. } => None,
            Self::EnsureImage { service, .. }
            | Self::Create { service, .. }
            | Self::Recreate { service, .. }
            | Self::ResumeRecreate { service, .. } => Some(service),
            Self::Start { container }
            | Self::Restart { container }
            | Self::Update { container, .. }
            | Self::Remove { container }
            | Self::DisconnectNetwork { container, .. } => Some(&container.service),
        }
    }
}

/// Options that change what the plan contains.
#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    pub remove_orphans: bool,
    /// Redacts secret values in diffs and in the spec label.
    pub redactor: Redactor,
    /// The container id and addresses spindle last saw per slot (kept in the state directory):
    /// a slot whose container changed since makes its `restart: true` dependents follow. Empty
    /// (the default) means nothing was seen yet: nothing follows an out-of-band change.
    pub last_seen: LastSeen,
    /// Compares every container spindle did not create (no `io.spindle.*` labels) with the desired
    /// service field by field, also when its `com.docker.compose.config-hash` equals Compose's
    /// hash of that service (which otherwise settles it): a diagnostic for adoption
    /// (`spindle plan --compare-fields`). Needs full inspect documents in the snapshot.
    pub compare_fields: bool,
}

/// The document stored in a container's `io.spindle.spec` label and diffed by the planner:
/// the normalized service as pretty JSON with sorted keys and secrets redacted.
pub fn spec_document(svc: &DesiredService, redactor: &Redactor) -> String {
    let mut model = svc.model.clone();
    redactor.tree(&mut model);
    pretty_sorted(&model)
}

fn pretty_sorted(v: &Tree) -> String {
    fn sort(v: &Tree) -> Tree {
        match v {
            Tree::Object(m) => {
                let sorted: BTreeMap<&String, Tree> = m.iter().map(|(k, v)| (k, sort(v))).collect();
                Tree::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            Tree::Array(a) => Tree::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string_pretty(&sort(v)).unwrap_or_default()
}

/// Top-level keys whose values differ between two spec documents.
fn changed_keys(old: &Tree, new: &Tree) -> Vec<String> {
    let empty = serde_json::Map::new();
    let (o, n) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    let keys: BTreeSet<&String> = o.keys().chain(n.keys()).collect();
    keys.into_iter()
        .filter(|k| o.get(*k) != n.get(*k))
        .cloned()
        .collect()
}

fn unified_diff(old: &str, new: &str, name: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(2)
        .header(&format!("{name} (running)"), &format!("{name} (desired)"))
        .to_string()
}

/// Builds plans; holds the inputs so the helpers stay small.
struct Planner<'a> {
    desired: &'a DesiredState,
    observed: &'a Snapshot,
    opts: &'a PlanOptions,
    plan: Plan,
    /// Actions of each service, so later services can wait for them.
    by_service: BTreeMap<String, Vec<usize>>,
    /// Actions every service waits for (networks, volumes, orphan removal).
    foundation: Vec<usize>,
    /// Services whose containers moved (recreated by this plan, re-created, replaced out of
    /// band, readdressed): their `restart: true` dependents follow.
    moved: BTreeMap<String, Vec<Follow>>,
    /// Networks (by key) being recreated in this plan: their services must follow.
    recreated_networks: BTreeSet<String>,
}

impl<'a> Planner<'a> {
    fn push(
        &mut self,
        kind: ActionKind,
        reason: String,
        diff: Option<String>,
        after: Vec<usize>,
    ) -> usize {
        let id = self.plan.actions.len();
        if let Some(s) = kind.service() {
            self.by_service.entry(s.to_string()).or_default().push(id);
        }
        let mut after = after;
        after.sort_unstable();
        after.dedup();
        self.plan.actions.push(Action {
            id,
            kind,
            reason,
            diff,
            after,
            follows: Vec::new(),
        });
        id
    }

    /// What an action of `svc` must wait for: the foundation, and every action of its dependencies.
    fn prerequisites(&self, svc: &DesiredService) -> Vec<usize> {
        let mut after = self.foundation.clone();
        for d in &svc.depends_on {
            if let Some(ids) = self.by_service.get(&d.service) {
                after.extend(ids);
            }
        }
        after
    }

    fn resources(&mut self) {
        for n in self.desired.networks.values() {
            if n.external {
                if !self.observed.external_networks.contains(&n.name) {
                    self.plan.blockers.push(format!(
                        "network {} is declared external but does not exist: create it first (docker network create {})",
                        n.name, n.name
                    ));
                }
                continue;
            }
            if let Some(seen) = self.observed.networks.get(&n.name) {
                // Compose's hash, which Compose and spindle both write; a network without one
                // (made by hand) is left alone, as Compose leaves it. A network an earlier
                // spindle made carries spindle's old hash, which counts as current.
                let want = spec::network_config_hash(n);
                let changed = seen.config_hash.as_ref().is_some_and(|h| {
                    *h != want
                        && !(seen.labels.contains_key(labels::MANAGED_BY)
                            && *h == spec::legacy_network_hash(n))
                });
                if changed {
                    let id = self.push(
                        ActionKind::RecreateNetwork {
                            key: n.key.clone(),
                            name: n.name.clone(),
                        },
                        "network configuration changed".into(),
                        None,
                        Vec::new(),
                    );
                    self.foundation.push(id);
                    self.recreated_networks.insert(n.key.clone());
                }
            } else {
                let id = self.push(
                    ActionKind::CreateNetwork {
                        key: n.key.clone(),
                        name: n.name.clone(),
                    },
                    "network missing".into(),
                    None,
                    Vec::new(),
                );
                self.foundation.push(id);
            }
        }
        for v in self.desired.volumes.values() {
            if v.external {
                if !self.observed.external_volumes.contains(&v.name) {
                    self.plan.blockers.push(format!(
                        "volume {} is declared external but does not exist: create it first (docker volume create {})",
                        v.name, v.name
                    ));
                }
                continue;
            }
            if !self.observed.volumes.contains_key(&v.name) {
                let id = self.push(
                    ActionKind::CreateVolume {
                        key: v.key.clone(),
                        name: v.name.clone(),
                    },
                    "volume missing".into(),
                    None,
                    Vec::new(),
                );
                self.foundation.push(id);
            }
        }
    }

    fn orphans(&mut self) {
        let mut orphans: Vec<ContainerRef> = self
            .observed
            .containers
            .iter()
            .filter(|c| !self.desired.services.contains_key(&c.service))
            .map(container_ref)
            .collect();
        orphans.sort_by(|a, b| a.name.cmp(&b.name));
        if self.opts.remove_orphans {
            for o in &orphans {
                let id = self.push(
                    ActionKind::Remove {
                        container: o.clone(),
                    },
                    format!(
                        "orphan: service {} is no longer in the desired state",
                        o.service
                    ),
                    None,
                    Vec::new(),
                );
                self.foundation.push(id);
            }
        }
        self.plan.orphans = orphans;
    }

    fn service(&mut self, svc: &'a DesiredService) {
        let mut containers: Vec<&ObservedContainer> = self
            .observed
            .containers
            .iter()
            .filter(|c| c.service == svc.name)
            .collect();
        containers.sort_by(|a, b| (a.number, &a.name).cmp(&(b.number, &b.name)));
        let prereq = self.prerequisites(svc);
        let mut image_action: Option<usize> = None;
        // Containers about to be created need their image: pulled when missing (or always,
        // with `pull_policy: always`), before anything of the service is stopped.
        let image_present = self.observed.images.contains_key(&svc.image);
        let mut ensure_image = |p: &mut Self| -> Option<usize> {
            if image_present && svc.pull_policy != PullPolicy::Always {
                return None;
            }
            Some(*image_action.get_or_insert_with(|| {
                p.push(
                    ActionKind::EnsureImage {
                        service: svc.name.clone(),
                        image: svc.image.clone(),
                    },
                    if image_present {
                        format!("pull_policy always: pull {}", svc.image)
                    } else {
                        format!("image {} is not present", svc.image)
                    },
                    None,
                    Vec::new(),
                )
            }))
        };
        let mut in_sync = true;

        // Replacements left in flight by an interrupted recreate are finished first.
        // A replacement is in flight while the container it replaces still exists or it does
        // not yet carry the service's name; afterwards its `replaces` label is just history.
        let project = &self.desired.project;
        let replacements: Vec<&ObservedContainer> = containers
            .iter()
            .copied()
            .filter(|c| {
                c.replaces().is_some_and(|old| {
                    containers.iter().any(|o| o.id == old)
                        || c.name != spec::container_name(project, svc, c.number)
                })
            })
            .collect();
        let replaced_ids: BTreeSet<&str> =
            replacements.iter().filter_map(|c| c.replaces()).collect();
        let mut resumed: BTreeSet<u32> = BTreeSet::new();
        // The slots this plan replaces, and why (their dependents follow).
        let mut replaced: BTreeMap<u32, FollowCause> = BTreeMap::new();
        for new in &replacements {
            if !resumed.insert(new.number) {
                // Two replacements for one slot: finish the first, drop the other.
                self.push(
                    ActionKind::Remove {
                        container: container_ref(new),
                    },
                    format!(
                        "a second interrupted replacement for {} #{}",
                        svc.name, new.number
                    ),
                    None,
                    prereq.clone(),
                );
                continue;
            }
            let old = containers
                .iter()
                .find(|c| Some(c.id.as_str()) == new.replaces())
                .map(|c| container_ref(c));
            self.push(
                ActionKind::ResumeRecreate {
                    service: svc.name.clone(),
                    number: new.number,
                    old,
                    new: container_ref(new),
                },
                "an earlier recreate was interrupted".into(),
                None,
                prereq.clone(),
            );
            replaced.insert(new.number, FollowCause::RecreatedByPlan);
            in_sync = false;
        }
        let current: Vec<&ObservedContainer> = containers
            .iter()
            .copied()
            .filter(|c| {
                !replacements.iter().any(|r| r.id == c.id) && !replaced_ids.contains(c.id.as_str())
            })
            .collect();
        // A container without a usable number label (missing, not a number, or 0: Compose
        // numbers from 1) holds no slot: it is never removed as scaled down nor counted as a
        // replica. It is left alone, with a warning.
        let (unnumbered, current): (Vec<&ObservedContainer>, Vec<&ObservedContainer>) =
            current.into_iter().partition(|c| c.number == 0);
        for c in &unnumbered {
            let warning = unnumbered_warning(c);
            self.plan.warnings.push(self.opts.redactor.text(&warning));
        }

        // The dependencies the service follows (`restart: true`, or x-spindle) whose containers moved.
        let follows = follow::follows_of(svc, &self.moved);
        let moved_dependency = follow::reason(svc, &follows);
        let moved_network = spec::service_networks(svc)
            .into_iter()
            .find(|k| self.recreated_networks.contains(k))
            .map(|k| format!("network {k} is recreated"));
        let desired_live = match spec::live_config(svc) {
            Ok(l) => l,
            Err(e) => {
                self.plan.blockers.push(e.to_string());
                return;
            }
        };
        let desired_doc = spec_document(svc, &self.opts.redactor);
        for number in 1..=svc.replicas {
            if replacements.iter().any(|r| r.number == number) {
                continue;
            }
            let mut same: Vec<&ObservedContainer> = current
                .iter()
                .copied()
                .filter(|c| c.number == number)
                .collect();
            // Compose is recreating this slot (it names the new container `<old id>_<name>`
            // until the old one is gone): leave the slot to it, and say so in `in_flight`.
            let expected_name = spec::container_name(&self.desired.project, svc, number);
            if let Some(tmp) = same
                .iter()
                .find(|c| compose_recreate_in_flight(&c.name, &expected_name))
            {
                self.plan.in_flight.push(InFlight {
                    service: svc.name.clone(),
                    number,
                    replacement: container_ref(tmp),
                });
                in_sync = false;
                continue;
            }
            // Keep the best of duplicates: running first, then in sync, then the oldest name.
            same.sort_by_key(|c| {
                (
                    !c.is_running(),
                    c.spec_hash() != Some(svc.spec_hash.as_str()),
                )
            });
            for dup in same.iter().skip(1) {
                self.push(
                    ActionKind::Remove {
                        container: container_ref(dup),
                    },
                    format!("duplicate container for {} #{number}", svc.name),
                    None,
                    prereq.clone(),
                );
                in_sync = false;
            }
            let Some(c) = same.first().copied() else {
                let name = spec::container_name(project, svc, number);
                if let Some(u) = unnumbered.iter().find(|u| u.name == name) {
                    self.plan.warnings.push(format!(
                        "{} #{number} is not created: container {} holds its name",
                        svc.name, u.name
                    ));
                    in_sync = false;
                    continue;
                }
                let img = ensure_image(self);
                let mut after = prereq.clone();
                after.extend(img);
                self.push(
                    ActionKind::Create {
                        service: svc.name.clone(),
                        number,
                    },
                    "container missing".into(),
                    None,
                    after,
                );
                replaced.insert(number, FollowCause::RecreatedBySelfHeal);
                in_sync = false;
                continue;
            };
            // One verdict per container: recreate, restart (a dependent that asked for it),
            // or keep it and fix what can be fixed in place.
            let moved = moved_network.clone().or_else(|| moved_dependency.clone());
            let restart_instead = moved_network.is_none()
                && moved_dependency.is_some()
                && svc.dependent_action() == DependentAction::Restart;
            let live_fields = spec::live_differences(&desired_live, &c.live);
            let live_in_place =
                !live_fields.is_empty() && spec::live_update_possible(&c.live, &desired_live);
            let recreate = match self.compare(svc, number, c, &desired_doc) {
                Comparison::Recreate { reason, diff } => Some((reason, diff)),
                Comparison::Same if moved.is_some() && !restart_instead => {
                    moved.clone().map(|r| (r, None))
                }
                Comparison::Same if !live_fields.is_empty() && !live_in_place => Some((
                    format!(
                        "live settings differ and cannot be changed in place: {}",
                        live_changes(&c.live, &desired_live)
                    ),
                    None,
                )),
                Comparison::Same => None,
            };
            in_sync &= recreate.is_none() && moved.is_none() && live_fields.is_empty();
            if let Some((reason, diff)) = recreate {
                let img = ensure_image(self);
                let mut after = prereq.clone();
                after.extend(img);
                let id = self.push(
                    ActionKind::Recreate {
                        service: svc.name.clone(),
                        number,
                        old: container_ref(c),
                    },
                    reason,
                    diff,
                    after,
                );
                // Whatever the reason, the new container follows the moved dependencies.
                self.plan.actions[id].follows = follows.clone();
                replaced.insert(number, FollowCause::RecreatedByPlan);
                continue;
            }
            in_sync &= !self.disconnect_foreign(svc, c);
            if let (true, Some(reason)) = (restart_instead, moved) {
                let id = self.push(
                    ActionKind::Restart {
                        container: container_ref(c),
                    },
                    reason,
                    None,
                    prereq.clone(),
                );
                self.plan.actions[id].follows = follows.clone();
                continue;
            }
            if live_in_place {
                self.push(
                    ActionKind::Update {
                        container: container_ref(c),
                        live: desired_live.clone(),
                    },
                    format!(
                        "live settings differ: {}",
                        live_changes(&c.live, &desired_live)
                    ),
                    None,
                    prereq.clone(),
                );
            }
            if !c.is_running() && !completed(self.desired, svc, c) {
                self.push(
                    ActionKind::Start {
                        container: container_ref(c),
                    },
                    format!("container is {}", state_word(c)),
                    None,
                    prereq.clone(),
                );
                in_sync = false;
            }
        }
        // Scale down: the highest numbers go first.
        let mut extra: Vec<&ObservedContainer> = current
            .iter()
            .copied()
            .filter(|c| c.number > svc.replicas)
            .collect();
        extra.sort_by_key(|c| std::cmp::Reverse(c.number));
        for c in extra {
            self.push(
                ActionKind::Remove {
                    container: container_ref(c),
                },
                format!("scaled down to {}", svc.replicas),
                None,
                prereq.clone(),
            );
            in_sync = false;
        }
        // Dependents declared with `restart: true` follow once this service is back (they are
        // planned later, since services are planned in dependency order): the slots this plan
        // replaces, and those whose container changed since it was last seen.
        let moved = follow::moved(svc, &current, &replaced, &self.opts.last_seen);
        if !moved.is_empty() {
            self.moved.insert(svc.name.clone(), moved);
        }
        if in_sync {
            self.plan.in_sync.push(svc.name.clone());
        }
    }

    /// Decides whether a container must be replaced.
    fn compare(
        &self,
        svc: &DesiredService,
        number: u32,
        c: &ObservedContainer,
        desired_doc: &str,
    ) -> Comparison {
        let image_changed = self
            .observed
            .images
            .get(&svc.image)
            .is_some_and(|id| *id != c.image_id);
        match c.spec_hash() {
            Some(h) if h == svc.spec_hash => {
                if let Some(drift) = self.out_of_band(svc, number, c) {
                    Comparison::Recreate {
                        reason: drift,
                        diff: None,
                    }
                } else if image_changed {
                    Comparison::Recreate {
                        reason: format!("image {} now resolves to a different image ID", svc.image),
                        diff: None,
                    }
                } else {
                    Comparison::Same
                }
            }
            Some(_) => {
                let old_doc = c.labels.get(labels::SPEC).cloned().unwrap_or_default();
                let mut old: Tree = serde_json::from_str(&old_doc).unwrap_or(Tree::Null);
                // The label was redacted with the secrets and word list of the spindle that created the
                // container; the diff shows it redacted with today's too.
                self.opts.redactor.tree(&mut old);
                let new: Tree = serde_json::from_str(desired_doc).unwrap_or(Tree::Null);
                let keys = changed_keys(&old, &new);
                let reason = if keys.is_empty() {
                    "spec changed (a secret value changed)".to_string()
                } else {
                    format!("spec changed: {}", keys.join(", "))
                };
                let old_pretty = if old.is_null() {
                    String::new()
                } else {
                    pretty_sorted(&old)
                };
                Comparison::Recreate {
                    reason,
                    diff: Some(unified_diff(&old_pretty, desired_doc, &svc.name)),
                }
            }
            None => {
                // A container spindle did not create (`docker compose up`). Compose's own hash
                // equal to the desired service's settles it, as it settles it for Compose
                // (unless `compare_fields` asks for the comparison anyway); otherwise it is
                // adopted when it matches field by field.
                let peers = SnapshotPeers(self.observed);
                let want = compose_hash::service_hash_with_peers(&svc.model, &|s| {
                    spec::Peers::first_container(&peers, s)
                });
                if !self.opts.compare_fields
                    && c.compose_hash() == Some(want.as_str())
                    && !image_changed
                {
                    return match self.out_of_band(svc, number, c) {
                        Some(drift) => Comparison::Recreate {
                            reason: drift,
                            diff: None,
                        },
                        None => Comparison::Same,
                    };
                }
                let diffs = self.adoption_diff(svc, number, c);
                if diffs.is_empty() && !image_changed {
                    Comparison::Same
                } else {
                    let mut fields = diffs;
                    if image_changed {
                        fields.push("image".into());
                    }
                    Comparison::Recreate {
                        reason: format!(
                            "not created by spindle and differs in: {}",
                            fields.join(", ")
                        ),
                        diff: None,
                    }
                }
            }
        }
    }
}

impl Planner<'_> {
    /// Changes made behind spindle's back that its labels cannot show: a renamed container, or
    /// one disconnected from a network of its service.
    fn out_of_band(
        &self,
        svc: &DesiredService,
        number: u32,
        c: &ObservedContainer,
    ) -> Option<String> {
        let name = spec::container_name(&self.desired.project, svc, number);
        if c.name != name {
            return Some(format!("renamed out of band to {} (want {name})", c.name));
        }
        if svc.model.get("network_mode").is_some() {
            return None;
        }
        let joined = c
            .inspect
            .pointer("/NetworkSettings/Networks")?
            .as_object()?;
        let missing: Vec<&str> = spec::service_networks(svc)
            .iter()
            .filter_map(|k| self.desired.networks.get(k))
            .map(|n| n.name.as_str())
            .filter(|n| !joined.contains_key(*n))
            .collect();
        (!missing.is_empty())
            .then(|| format!("disconnected out of band from {}", missing.join(", ")))
    }

    /// Key paths where a container spindle did not create differs from what spindle would create.
    fn adoption_diff(
        &self,
        svc: &DesiredService,
        number: u32,
        c: &ObservedContainer,
    ) -> Vec<String> {
        let ctx = spec::SpecContext::from_desired(self.desired, Some(&self.desired.model));
        let peers = SnapshotPeers(self.observed);
        let image_id = self.observed.images.get(&svc.image).map(String::as_str);
        let body = spec::container_body(&ctx, svc, number, image_id, &peers)
            .and_then(|b| Ok((b, spec::extra_networks(&ctx, svc, number, &peers)?)));
        match body {
            Ok((body, extra)) => {
                spec::adoption_diff(&spec::with_all_networks(&body, &extra), &c.inspect)
            }
            Err(e) => vec![e.to_string()],
        }
    }
}

/// Whether `name` is the temporary name Compose gives a container's replacement while it
/// recreates it (`pkg/compose/reconcile.go`: the old container's ID cut to 12 characters, `_`,
/// the container's name), which Compose renames once it has removed the old container.
pub fn compose_recreate_in_flight(name: &str, expected_name: &str) -> bool {
    name.strip_suffix(expected_name)
        .and_then(|prefix| prefix.strip_suffix('_'))
        .is_some_and(|id| id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Resolves `service:` references from the observed containers.
struct SnapshotPeers<'a>(&'a Snapshot);

impl spec::Peers for SnapshotPeers<'_> {
    fn first_container(&self, service: &str) -> Option<String> {
        self.0
            .containers
            .iter()
            .filter(|c| c.service == service && c.replaces().is_none())
            .min_by_key(|c| c.number)
            .map(|c| c.id.clone())
    }
    fn container_names(&self, service: &str) -> Vec<String> {
        self.0
            .containers
            .iter()
            .filter(|c| c.service == service)
            .map(|c| c.name.clone())
            .collect()
    }
}

enum Comparison {
    Same,
    Recreate {
        reason: String,
        diff: Option<String>,
    },
}

/// Why a container without a usable number label is left alone.
fn unnumbered_warning(c: &ObservedContainer) -> String {
    let label = match c.labels.get(labels::CONTAINER_NUMBER) {
        None => format!("has no {} label", labels::CONTAINER_NUMBER),
        Some(v) => format!("has an invalid {} label {v:?}", labels::CONTAINER_NUMBER),
    };
    format!(
        "container {} of service {} {label}: spindle leaves it alone (it is neither a replica nor \
         removed as scaled down); remove it, or recreate it with Compose or spindle",
        c.name, c.service
    )
}

fn container_ref(c: &ObservedContainer) -> ContainerRef {
    ContainerRef {
        id: c.id.clone(),
        name: c.name.clone(),
        service: c.service.clone(),
        number: c.number,
    }
}

/// A one-shot container that finished successfully and is not meant to restart: its service is
/// what another service waits for with `condition: service_completed_successfully` (a
/// migration, a configurator). Any other stopped container is started again.
pub fn completed(desired: &DesiredState, svc: &DesiredService, c: &ObservedContainer) -> bool {
    let one_shot = desired.services.values().any(|s| {
        s.depends_on.iter().any(|d| {
            d.service == svc.name && d.condition == Condition::ServiceCompletedSuccessfully
        })
    });
    one_shot
        && c.state == RunState::Exited
        && c.exit_code == 0
        && matches!(c.live.restart_policy.as_str(), "" | "no" | "on-failure")
}

fn state_word(c: &ObservedContainer) -> String {
    match c.state {
        RunState::Exited => format!("exited with code {}", c.exit_code),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// `nano_cpus 500000000 → 250000000, memory …` for an update's reason.
fn live_changes(old: &LiveConfig, new: &LiveConfig) -> String {
    spec::live_differences(new, old)
        .into_iter()
        .map(|f| format!("{f} {} → {}", old.field(f), new.field(f)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Diffs desired against observed. Pure: same inputs, same plan.
pub fn plan(desired: &DesiredState, observed: &Snapshot, opts: &PlanOptions) -> Plan {
    let mut p = Planner {
        desired,
        observed,
        opts,
        plan: Plan {
            project: desired.project.clone(),
            ..Plan::default()
        },
        by_service: BTreeMap::new(),
        foundation: Vec::new(),
        moved: BTreeMap::new(),
        recreated_networks: BTreeSet::new(),
    };
    p.orphans();
    p.resources();
    for svc in desired.ordered_services() {
        p.service(svc);
    }
    p.plan
}

mod drift;
#[cfg(test)]
mod tests;
