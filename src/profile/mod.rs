//! Profiles and automatic low-CPU switching: the `switching:` config, load sources, the switcher state machine, the persisted pin and the sampler task.
//!
//! See docs/profiles.md. [`ProfileSwitch`] implements [`crate::runtime::ProfileControl`]: the
//! reconciler asks it which switchable profile to load, the API and the CLI pin through it (the
//! CLI through the pin file, which the sampler re-reads every tick).

pub mod config;
pub mod machine;
pub mod source;

use std::collections::VecDeque;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::time::Instant;

pub use config::{DEFAULT_PROFILE, Mode, SourceKind, Switching, SwitchingConfig};
pub use machine::{Cause, Decision, Machine, Phase, Pin};
pub use source::{LoadSource, Reading};

use crate::controller::Trigger;

/// Where a switch sends its reconcile request (in `spindle run`: a [`crate::controller::TriggerHandle`]).
pub type Notify = Box<dyn Fn(Trigger) + Send + Sync>;

/// The file in the state directory that holds the pin.
pub const PIN_FILE: &str = "profile.json";

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{key}: {message}")]
    Config { key: String, message: String },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unexpected load data: {0}")]
    Parse(String),
    #[error("{path} is not a pin file ({message}); remove it or run `spindle profile unpin`")]
    PinFile { path: PathBuf, message: String },
    #[error("unknown profile {name:?}; declared profiles: {declared}")]
    Unknown { name: String, declared: String },
}

/// The pin file of a state directory.
pub fn pin_path(state_dir: &Path) -> PathBuf {
    state_dir.join(PIN_FILE)
}

/// The pinned name in `<state-dir>/profile.json` (`None`: no file, or not pinned).
pub fn read_pin(state_dir: &Path) -> Result<Option<String>, ProfileError> {
    let path = pin_path(state_dir);
    let text = match crate::statefile::read(&path) {
        Ok(Some(t)) => String::from_utf8_lossy(&t).into_owned(),
        Ok(None) => return Ok(None),
        Err(source) => return Err(ProfileError::Read { path, source }),
    };
    let v: Value = serde_json::from_str(&text).map_err(|e| ProfileError::PinFile {
        path: path.clone(),
        message: e.to_string(),
    })?;
    match v.get("pinned") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ProfileError::PinFile {
            path,
            message: "`pinned` must be a profile name or null".into(),
        }),
    }
}

/// Writes the pin atomically (a temporary file, fsynced, renamed over `profile.json`).
pub fn write_pin(state_dir: &Path, pinned: Option<&str>) -> Result<(), ProfileError> {
    let path = pin_path(state_dir);
    let err = |source| ProfileError::Write {
        path: path.clone(),
        source,
    };
    let body =
        serde_json::to_string_pretty(&json!({ "pinned": pinned })).unwrap_or_default() + "\n";
    crate::statefile::write_atomic(&path, body.as_bytes()).map_err(err)
}

/// The pin a name asks for: `None` unpins, `default` is the base files, else a declared profile.
pub fn parse_pin(name: Option<&str>, declared: &[String]) -> Result<Pin, ProfileError> {
    match name {
        None => Ok(Pin::Unpinned),
        Some(DEFAULT_PROFILE) => Ok(Pin::Default),
        Some(n) if declared.iter().any(|d| d == n) => Ok(Pin::Profile(n.to_string())),
        Some(n) => {
            let mut all = vec![DEFAULT_PROFILE.to_string()];
            all.extend(declared.iter().cloned());
            Err(ProfileError::Unknown {
                name: n.to_string(),
                declared: all.join(", "),
            })
        }
    }
}

fn pin_name(pin: &Pin) -> Option<&str> {
    match pin {
        Pin::Unpinned => None,
        Pin::Default => Some(DEFAULT_PROFILE),
        Pin::Profile(p) => Some(p),
    }
}

/// The latest readings kept for the state.
const RECENT: usize = 12;

#[derive(Debug)]
struct Inner {
    machine: Machine,
    source: &'static str,
    recent: VecDeque<u32>,
    latest_at: Option<String>,
    last_error: Option<String>,
    last_switch: Option<Value>,
}

/// The running switcher: the machine, the pin file, and the way to ask for a reconcile.
pub struct ProfileSwitch {
    inner: Mutex<Inner>,
    state_dir: PathBuf,
    trigger: Mutex<Option<Notify>>,
}

impl std::fmt::Debug for ProfileSwitch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfileSwitch")
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

impl ProfileSwitch {
    /// A switcher for `cfg` with readings from a source called `source`; the pin is read from
    /// `<state_dir>/profile.json` (a pin that names no declared profile is ignored, with a warning).
    pub fn new(cfg: Switching, source: &'static str, state_dir: &Path) -> Self {
        let pin = match read_pin(state_dir).and_then(|p| parse_pin(p.as_deref(), &cfg.declared)) {
            Ok(pin) => pin,
            Err(e) => {
                tracing::warn!(error = %e, "the pin is ignored");
                Pin::Unpinned
            }
        };
        let machine = Machine::with_pin(cfg, pin);
        Self {
            inner: Mutex::new(Inner {
                machine,
                source,
                recent: VecDeque::new(),
                latest_at: None,
                last_error: None,
                last_switch: None,
            }),
            state_dir: state_dir.to_path_buf(),
            trigger: Mutex::new(None),
        }
    }

    /// Where switches send their reconcile requests.
    pub fn attach(&self, notify: Notify) {
        *lock(&self.trigger) = Some(notify);
    }

    fn trigger_for(&self, inner: &mut Inner, d: &Decision) {
        let cfg = inner.machine.config();
        let readings = if d.window.is_empty() {
            inner.recent.back().copied().into_iter().collect()
        } else {
            d.window.clone()
        };
        let trigger = Trigger::Profile {
            cause: d.cause.as_str().to_string(),
            from: d.from.clone(),
            to: d.to.clone(),
            source: inner.source.to_string(),
            readings_permille: readings,
            window_ms: d.window_ms,
            enter_above_permille: cfg.enter_above,
            leave_below_permille: cfg.leave_below,
        };
        tracing::info!(
            cause = d.cause.as_str(),
            from = d.from.as_deref().unwrap_or(DEFAULT_PROFILE),
            to = d.to.as_deref().unwrap_or(DEFAULT_PROFILE),
            "profile switch"
        );
        inner.last_switch = Some(json!({
            "cause": d.cause.as_str(),
            "from": d.from,
            "to": d.to,
            "at": now_rfc3339(),
        }));
        if let Some(notify) = lock(&self.trigger).as_ref() {
            notify(trigger);
        }
    }

    /// Applies the pin file if it changed (the CLI writes it while spindle runs).
    pub fn sync_pin_file(&self) {
        let mut inner = lock(&self.inner);
        let pin = match read_pin(&self.state_dir)
            .and_then(|p| parse_pin(p.as_deref(), &inner.machine.config().declared))
        {
            Ok(p) => p,
            Err(e) => {
                let msg = e.to_string();
                if inner.last_error.as_deref() != Some(msg.as_str()) {
                    tracing::warn!(error = %msg, "the pin file is ignored");
                    inner.last_error = Some(msg);
                }
                return;
            }
        };
        if let Some(d) = inner.machine.set_pin(pin, Instant::now()) {
            self.trigger_for(&mut inner, &d);
        }
    }

    /// Feeds one reading (or a failed one) to the machine.
    pub fn observe(&self, reading: Result<Option<Reading>, ProfileError>) {
        let mut inner = lock(&self.inner);
        match reading {
            Ok(Some(r)) => {
                inner.recent.push_back(r.permille);
                if inner.recent.len() > RECENT {
                    inner.recent.pop_front();
                }
                inner.latest_at = Some(now_rfc3339());
                inner.last_error = None;
                if let Some(d) = inner.machine.observe(Instant::now(), r.permille) {
                    self.trigger_for(&mut inner, &d);
                }
            }
            Ok(None) => {}
            Err(e) => {
                let msg = e.to_string();
                if inner.last_error.as_deref() != Some(msg.as_str()) {
                    tracing::warn!(error = %msg, "no load reading; the switch window restarts");
                }
                inner.last_error = Some(msg);
                inner.machine.interrupt();
            }
        }
    }

    /// Samples `source` every `sample_every` until `shutdown` resolves, re-reading the pin file each tick.
    pub async fn sample(
        self: Arc<Self>,
        mut source: Box<dyn LoadSource>,
        shutdown: impl Future<Output = ()>,
    ) {
        let every = lock(&self.inner).machine.config().sample_every;
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = ticks.tick() => {}
            }
            self.sync_pin_file();
            let reading = source.sample();
            self.observe(reading);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

impl crate::runtime::ProfileControl for ProfileSwitch {
    fn state(&self) -> Value {
        let inner = lock(&self.inner);
        let m = &inner.machine;
        let cfg = m.config();
        let latest = inner.recent.back().copied();
        json!({
            "mode": cfg.mode,
            "profile": cfg.profile,
            "active": m.active().unwrap_or_else(|| DEFAULT_PROFILE.to_string()),
            "pinned": pin_name(m.pin()),
            "phase": m.phase_name(),
            "source": inner.source,
            "latest": latest.map(|p| json!({"permille": p, "percent": f64::from(p) / 10.0, "at": inner.latest_at})),
            "recent_permille": inner.recent,
            "enter": {"above_permille": cfg.enter_above, "for_ms": cfg.enter_for.as_millis() as u64},
            "leave": {"below_permille": cfg.leave_below, "for_ms": cfg.leave_for.as_millis() as u64},
            "min_dwell_ms": cfg.min_dwell.as_millis() as u64,
            "dwell_left_ms": m.dwell_left(Instant::now()).as_millis() as u64,
            "sample_every_ms": cfg.sample_every.as_millis() as u64,
            "switches": m.switches(),
            "last_switch": inner.last_switch,
            "error": inner.last_error,
        })
    }

    fn pin(&self, profile: Option<String>) -> Result<(), crate::runtime::PinError> {
        use crate::runtime::PinError;
        let mut inner = lock(&self.inner);
        let pin = parse_pin(profile.as_deref(), &inner.machine.config().declared)
            .map_err(|e| PinError::Unknown(e.to_string()))?;
        write_pin(&self.state_dir, pin_name(&pin)).map_err(|e| {
            let mut msg = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                msg.push_str(&format!(": {c}"));
                cause = c.source();
            }
            PinError::Persist(msg)
        })?;
        if let Some(d) = inner.machine.set_pin(pin, Instant::now()) {
            self.trigger_for(&mut inner, &d);
        }
        Ok(())
    }

    fn active(&self) -> Option<String> {
        lock(&self.inner).machine.active()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::ProfileControl;
    use std::time::Duration;

    fn cfg() -> Switching {
        Switching {
            mode: Mode::Auto,
            profile: "low-cpu".into(),
            source: SourceKind::Auto,
            enter_above: 800,
            enter_for: Duration::from_secs(2),
            leave_below: 400,
            leave_for: Duration::from_secs(3),
            min_dwell: Duration::from_secs(1),
            sample_every: Duration::from_millis(500),
            declared: vec!["low-cpu".into()],
        }
    }

    fn collect(switch: &ProfileSwitch) -> Arc<Mutex<Vec<Trigger>>> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        switch.attach(Box::new(move |t| sink.lock().unwrap().push(t)));
        seen
    }

    #[test]
    fn the_pin_file_round_trips_and_a_missing_file_means_unpinned() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_pin(dir.path()).unwrap(), None);
        write_pin(dir.path(), Some("low-cpu")).unwrap();
        assert_eq!(read_pin(dir.path()).unwrap().as_deref(), Some("low-cpu"));
        write_pin(dir.path(), None).unwrap();
        assert_eq!(read_pin(dir.path()).unwrap(), None);
        std::fs::write(pin_path(dir.path()), "{").unwrap();
        assert!(matches!(
            read_pin(dir.path()),
            Err(ProfileError::PinFile { .. })
        ));
        std::fs::write(pin_path(dir.path()), r#"{"pinned": 3}"#).unwrap();
        assert!(matches!(
            read_pin(dir.path()),
            Err(ProfileError::PinFile { .. })
        ));
    }

    #[test]
    fn an_undeclared_pin_names_the_declared_profiles() {
        let e = parse_pin(Some("turbo"), &["low-cpu".into()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown profile \"turbo\"; declared profiles: default, low-cpu"
        );
        assert_eq!(parse_pin(Some("default"), &[]).unwrap(), Pin::Default);
        assert_eq!(parse_pin(None, &[]).unwrap(), Pin::Unpinned);
    }

    #[tokio::test(start_paused = true)]
    async fn the_sampler_switches_on_synthetic_load_and_asks_for_reconciles_with_the_readings() {
        let dir = tempfile::tempdir().unwrap();
        let switch = Arc::new(ProfileSwitch::new(cfg(), "synthetic", dir.path()));
        let seen = collect(&switch);
        let mut readings = vec![900u32; 8];
        readings.extend([100; 12]);
        let src = Box::new(source::SyntheticSource::new(readings));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(switch.clone().sample(src, async move {
            let _ = rx.await;
        }));
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(switch.active().as_deref(), Some("low-cpu"));
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(switch.active(), None);
        let _ = tx.send(());
        task.await.unwrap();
        let state = switch.state();
        assert_eq!(state["switches"], 2);
        assert_eq!(state["active"], "default");
        assert_eq!(state["mode"], "auto");
        assert_eq!(state["latest"]["permille"], 100);
        let triggers = seen.lock().unwrap().clone();
        assert_eq!(triggers.len(), 2, "{triggers:?}");
        match &triggers[0] {
            Trigger::Profile {
                cause,
                to,
                readings_permille,
                ..
            } => {
                assert_eq!(cause, "enter");
                assert_eq!(to.as_deref(), Some("low-cpu"));
                assert!(
                    readings_permille.iter().all(|r| *r == 900) && readings_permille.len() >= 4
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_pin_written_to_the_file_is_noticed_within_a_tick_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let switch = ProfileSwitch::new(cfg(), "synthetic", dir.path());
        let seen = collect(&switch);
        write_pin(dir.path(), Some("low-cpu")).unwrap();
        switch.sync_pin_file();
        assert_eq!(switch.active().as_deref(), Some("low-cpu"));
        assert_eq!(switch.state()["pinned"], "low-cpu");
        // A new switcher (a restart) starts pinned.
        let again = ProfileSwitch::new(cfg(), "synthetic", dir.path());
        assert_eq!(again.active().as_deref(), Some("low-cpu"));
        assert_eq!(
            again.state()["switches"],
            0,
            "starting pinned is not a switch"
        );
        // Pinning through the control writes the file.
        match switch.pin(Some("nope".into())) {
            Err(crate::runtime::PinError::Unknown(m)) => {
                assert!(m.contains("default, low-cpu"), "{m}")
            }
            other => panic!("an undeclared name is Unknown, not {other:?}"),
        }
        switch.pin(Some("default".into())).unwrap();
        assert_eq!(read_pin(dir.path()).unwrap().as_deref(), Some("default"));
        assert_eq!(switch.active(), None);
        switch.pin(None).unwrap();
        assert_eq!(read_pin(dir.path()).unwrap(), None);
        let t = seen.lock().unwrap().clone();
        assert_eq!(
            t.len(),
            2,
            "pin low-cpu, pin default; unpin changes nothing: {t:?}"
        );
        assert_eq!(switch.state()["switches"], 2);
    }
}

#[cfg(test)]
mod sample_tests;
