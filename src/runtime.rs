//! State shared between the control loop, the reconciler, the profile switcher and the HTTP API.
//!
//! This file is the contract between those parts; each part owns its own module and reaches the
//! others only through what is declared here.

use std::sync::Arc;

/// The profile switcher as the API, the CLI and the reconciler see it (implemented in `profile`).
pub trait ProfileControl: Send + Sync + std::fmt::Debug {
    /// The switcher's state for `/status`, `/version` and `spindle status`: mode, active profile,
    /// pin, the latest readings. Never holds secrets.
    fn state(&self) -> serde_json::Value;
    /// Pins a spindle.yaml profile (`Some(name)`; `Some("default")` pins the base files without
    /// any switchable profile), or unpins (`None`, back to automatic). An undeclared name is an
    /// error whose message says which names exist. The pin persists in the state directory.
    fn pin(&self, profile: Option<String>) -> Result<(), String>;
    /// The switchable spindle.yaml profile to load on top of the requested ones right now, if any.
    fn active(&self) -> Option<String>;
}

/// A cheap-to-clone handle to the shared state.
#[derive(Clone, Debug, Default)]
pub struct Runtime {
    /// The profile switcher, when `spindle.yaml` declares one.
    pub profile: Option<Arc<dyn ProfileControl>>,
}
