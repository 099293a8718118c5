//! State shared between the control loop, the reconciler, the profile switcher and the HTTP API.
//!
//! This file is the contract between those parts; each part owns its own module and reaches the
//! others only through what is declared here.

use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::metrics::Metrics;
use crate::pause::Pause;
use crate::status::ServicesStatus;

/// The profile switcher as the API, the CLI and the reconciler see it (implemented in `profile`).
pub trait ProfileControl: Send + Sync + std::fmt::Debug {
    /// The switcher's state for `/status`, `/version` and `spindle status`: mode, active profile,
    /// pin, the latest readings. Never holds secrets.
    fn state(&self) -> serde_json::Value;
    /// Pins a spindle.yaml profile (`Some(name)`; `Some("default")` pins the base files without
    /// any switchable profile), or unpins (`None`, back to automatic). An undeclared name is an
    /// error whose message says which names exist. The pin persists in the state directory; when
    /// it cannot be written, nothing changes.
    fn pin(&self, profile: Option<String>) -> Result<(), PinError>;
    /// The switchable spindle.yaml profile to load on top of the requested ones right now, if any.
    fn active(&self) -> Option<String>;
}

/// Why a pin was refused.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// The name is not a declared profile (the caller's mistake); the message lists the names.
    #[error("{0}")]
    Unknown(String),
    /// The pin file could not be written (spindle's problem); the pin did not change.
    #[error("{0}")]
    Persist(String),
}

/// A cheap-to-clone handle to the shared state.
#[derive(Clone, Debug, Default)]
pub struct Runtime {
    /// The profile switcher, when `spindle.yaml` declares one.
    pub profile: Option<Arc<dyn ProfileControl>>,
    /// The Prometheus metrics (fed by the reconciler, read by `GET /metrics`).
    pub metrics: Arc<Metrics>,
    /// Running or paused (set by the API, obeyed by the reconciler, persisted in the state dir).
    pub pause: Arc<Pause>,
    /// What the last reconcile found (for `GET /status` and `GET /readyz`).
    pub board: Arc<Board>,
}

/// The last reconcile as `/status` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct LastReconcile {
    /// The evidence record id.
    pub record: String,
    pub outcome: String,
    pub finished: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct BoardState {
    /// Reconciles finished since the process started.
    pub reconciles: u64,
    pub last: Option<LastReconcile>,
    /// The conditions of every service, after the last reconcile that got as far as observing.
    pub services: Option<ServicesStatus>,
    /// Violations of policies in mode `warn`, from the last reconcile that loaded the desired state.
    pub warnings: Vec<String>,
    /// The git revision of the desired-state folder, as the last reconcile that loaded it read
    /// it (`GET /version` shows it; the API never runs git itself).
    pub desired_revision: Option<String>,
}

/// Written by the reconciler after each reconcile, read by the API.
#[derive(Debug, Default)]
pub struct Board {
    state: Mutex<BoardState>,
}

impl Board {
    pub fn snapshot(&self) -> BoardState {
        self.lock().clone()
    }

    /// True once the first reconcile has finished (whatever its outcome).
    pub fn first_reconcile_done(&self) -> bool {
        self.lock().reconciles > 0
    }

    /// Records a finished reconcile; `services` is `None` when it did not get as far as observing.
    pub fn finished(&self, last: LastReconcile, services: Option<ServicesStatus>) {
        let mut s = self.lock();
        s.reconciles += 1;
        s.last = Some(last);
        if services.is_some() {
            s.services = services;
        }
    }

    /// Replaces the policy warnings (each reconcile that loads the desired state sets them).
    pub fn set_warnings(&self, warnings: Vec<String>) {
        self.lock().warnings = warnings;
    }

    /// Replaces the desired-state revision (each reconcile that loads the desired state sets it).
    pub fn set_revision(&self, revision: Option<String>) {
        self.lock().desired_revision = revision;
    }

    /// The desired-state revision the last reconcile that loaded read.
    pub fn revision(&self) -> Option<String> {
        self.lock().desired_revision.clone()
    }

    /// The conditions computed last (to keep their transition times).
    pub fn services(&self) -> Option<ServicesStatus> {
        self.lock().services.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BoardState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
