//! Pause and resume of the control loop: an explicit state, persisted in the state directory so a restart stays paused.
//!
//! While paused the loop keeps observing and planning on every trigger but applies nothing; its
//! evidence records say `outcome: "paused"` and keep the plan (like Flux's suspend, with visibility).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// The file in the state directory that holds the pause state.
pub const PAUSE_FILE: &str = "pause.json";

#[derive(Debug, thiserror::Error)]
pub enum PauseError {
    #[error("cannot read {path}; delete it to resume, or fix its JSON")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not a pause state (expected {{\"state\":\"running\"}} or {{\"state\":\"paused\",…}}); delete it to resume"
    )]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Whether the loop applies changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PauseState {
    /// Observe, plan and apply (the normal state).
    #[default]
    Running,
    /// Observe and plan, apply nothing.
    Paused {
        /// RFC 3339 time of the pause.
        since: String,
        /// The id of the API token that paused the loop.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
}

impl PauseState {
    pub fn is_paused(&self) -> bool {
        matches!(self, PauseState::Paused { .. })
    }
}

/// What a pause or resume request did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    Changed,
    /// Already in the asked-for state.
    Unchanged,
}

/// The pause state of one `spindle run`, shared between the API and the reconciler.
#[derive(Debug, Default)]
pub struct Pause {
    /// `None`: kept in memory only (tests, no state directory).
    path: Option<PathBuf>,
    state: Mutex<PauseState>,
}

impl Pause {
    /// Loads the state persisted in `state_dir` (running when there is no file).
    pub fn load(state_dir: &Path) -> Result<Self, PauseError> {
        let path = state_dir.join(PAUSE_FILE);
        let state = read_state(&path)?;
        Ok(Pause {
            path: Some(path),
            state: Mutex::new(state),
        })
    }

    pub fn current(&self) -> PauseState {
        self.lock().clone()
    }

    pub fn is_paused(&self) -> bool {
        self.lock().is_paused()
    }

    /// Pauses (persisting first, so a crash right after still comes back paused).
    pub fn pause(&self, since: String, by: Option<String>) -> Result<Transition, PauseError> {
        let mut state = self.lock();
        if state.is_paused() {
            return Ok(Transition::Unchanged);
        }
        let next = PauseState::Paused { since, by };
        self.persist(&next)?;
        *state = next;
        Ok(Transition::Changed)
    }

    pub fn resume(&self) -> Result<Transition, PauseError> {
        let mut state = self.lock();
        if !state.is_paused() {
            return Ok(Transition::Unchanged);
        }
        self.persist(&PauseState::Running)?;
        *state = PauseState::Running;
        Ok(Transition::Changed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PauseState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn persist(&self, state: &PauseState) -> Result<(), PauseError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        write_state(path, state)
    }
}

/// The state persisted at `path` (running when the file does not exist).
pub fn read_state(path: &Path) -> Result<PauseState, PauseError> {
    match crate::statefile::read(path) {
        Ok(Some(bytes)) => serde_json::from_slice(&bytes).map_err(|source| PauseError::Parse {
            path: path.to_path_buf(),
            source,
        }),
        Ok(None) => Ok(PauseState::Running),
        Err(source) => Err(PauseError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes atomically: a temporary file beside it, fsynced, renamed over it.
fn write_state(path: &Path, state: &PauseState) -> Result<(), PauseError> {
    let err = |source| PauseError::Write {
        path: path.to_path_buf(),
        source,
    };
    let text = serde_json::to_vec(state).unwrap_or_default();
    crate::statefile::write_atomic(path, &text).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_survives_a_reload_and_a_resume_clears_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = Pause::load(dir.path()).unwrap();
        assert_eq!(p.current(), PauseState::Running);
        assert_eq!(
            p.pause("2026-01-01T00:00:00Z".into(), Some("t1".into()))
                .unwrap(),
            Transition::Changed
        );
        assert_eq!(
            p.pause("later".into(), None).unwrap(),
            Transition::Unchanged
        );
        let again = Pause::load(dir.path()).unwrap();
        assert!(again.is_paused());
        assert_eq!(again.resume().unwrap(), Transition::Changed);
        assert_eq!(again.resume().unwrap(), Transition::Unchanged);
        assert!(!Pause::load(dir.path()).unwrap().is_paused());
    }

    #[test]
    fn a_garbled_pause_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(PAUSE_FILE), "{nope").unwrap();
        let e = Pause::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains(PAUSE_FILE), "{e}");
    }
}
