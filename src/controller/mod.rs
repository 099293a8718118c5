//! The control loop: triggers (file changes, Docker events, a jittered resync, SIGHUP), single-flight coalesced reconciles, and the error policy that decides the backoff.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// Why a reconcile ran. Triggers only schedule a reconcile; they never carry the data it acts on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    Startup,
    /// Files of the desired-state folder changed.
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
