//! Planning: a pure diff of the desired state against the observed one, each action with a reason.

use serde::Serialize;

use crate::desired::typed::DesiredState;
use crate::observe::snapshot::{LiveConfig, Snapshot};

/// What to change, in an order that respects dependencies.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Plan {
    pub project: String,
    pub actions: Vec<Action>,
    /// Containers of services no longer in the desired state (removed only when asked).
    pub orphans: Vec<ContainerRef>,
    /// Services whose containers already match.
    pub in_sync: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
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
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActionKind {
    CreateNetwork {
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
}

impl ActionKind {
    /// A short verb for output (`create`, `recreate`, …).
    pub fn verb(&self) -> &'static str {
        match self {
            Self::CreateNetwork { .. } => "create-network",
            Self::CreateVolume { .. } => "create-volume",
            Self::EnsureImage { .. } => "ensure-image",
            Self::Create { .. } => "create",
            Self::Recreate { .. } => "recreate",
            Self::ResumeRecreate { .. } => "resume-recreate",
            Self::Start { .. } => "start",
            Self::Restart { .. } => "restart",
            Self::Update { .. } => "update",
            Self::Remove { .. } => "remove",
        }
    }

    /// The service the action is about, if any.
    pub fn service(&self) -> Option<&str> {
        match self {
            Self::CreateNetwork { .. } | Self::CreateVolume { .. } => None,
            Self::EnsureImage { service, .. }
            | Self::Create { service, .. }
            | Self::Recreate { service, .. }
            | Self::ResumeRecreate { service, .. } => Some(service),
            Self::Start { container }
            | Self::Restart { container }
            | Self::Update { container, .. }
            | Self::Remove { container } => Some(&container.service),
        }
    }
}

/// Options that change what the plan contains.
#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    pub remove_orphans: bool,
}

/// Diffs desired against observed. Pure: same inputs, same plan.
pub fn plan(desired: &DesiredState, observed: &Snapshot, opts: &PlanOptions) -> Plan {
    let _ = (desired, observed, opts);
    Plan {
        project: desired.project.clone(),
        ..Plan::default()
    }
}
