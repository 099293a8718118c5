//! The pure switcher state machine: enter and leave windows, the minimum dwell after a switch, and the pin.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::config::{Mode, Switching};

/// Where the automatic switcher stands. The pin is kept beside it and overrides what it says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The base files; the load is not above the enter threshold.
    Normal,
    /// The base files; the load has been above the enter threshold since `since`.
    Entering { since: Instant },
    /// The switchable profile is on; the load is not below the leave threshold.
    Low,
    /// The switchable profile is on; the load has been below the leave threshold since `since`.
    Leaving { since: Instant },
}

/// What a person asked for (`spindle profile pin`, `POST /profile`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "profile", rename_all = "snake_case")]
pub enum Pin {
    /// No pin: the automatic switcher (or, in manual mode, the base files) decides.
    Unpinned,
    /// The base files only.
    Default,
    /// This spindle.yaml profile.
    Profile(String),
}

/// Why the active profile changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The load stayed above the enter threshold for the enter window.
    Enter,
    /// The load stayed below the leave threshold for the leave window.
    Leave,
    /// A pin was set.
    Pin,
    /// The pin was removed.
    Unpin,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Enter => "enter",
            Cause::Leave => "leave",
            Cause::Pin => "pin",
            Cause::Unpin => "unpin",
        }
    }
}

/// A change of the active profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub cause: Cause,
    pub from: Option<String>,
    pub to: Option<String>,
    /// The readings of the window that caused an automatic switch (‰), oldest first.
    pub window: Vec<u32>,
    pub window_ms: u64,
}

/// The switcher: the automatic phase, the pin, and when the active profile last changed.
#[derive(Clone, Debug)]
pub struct Machine {
    cfg: Switching,
    phase: Phase,
    pin: Pin,
    last_switch: Option<Instant>,
    /// The readings since the current window began (`Entering`/`Leaving`), oldest first.
    window: Vec<u32>,
    /// Changes of the active profile so far, automatic and manual.
    switches: u64,
}

/// Readings kept per window at most (the evidence gets this many, the newest).
const WINDOW_KEEP: usize = 240;

impl Machine {
    pub fn new(cfg: Switching) -> Self {
        Self {
            cfg,
            phase: Phase::Normal,
            pin: Pin::Unpinned,
            last_switch: None,
            window: Vec::new(),
            switches: 0,
        }
    }

    /// A machine that starts pinned (a pin persisted before a restart); not counted as a switch.
    pub fn with_pin(cfg: Switching, pin: Pin) -> Self {
        Self {
            pin,
            ..Self::new(cfg)
        }
    }

    pub fn config(&self) -> &Switching {
        &self.cfg
    }
    pub fn phase(&self) -> Phase {
        self.phase
    }
    pub fn pin(&self) -> &Pin {
        &self.pin
    }
    pub fn switches(&self) -> u64 {
        self.switches
    }

    /// The switchable profile to load on top of the requested ones, if any.
    pub fn active(&self) -> Option<String> {
        match &self.pin {
            Pin::Default => None,
            Pin::Profile(p) => Some(p.clone()),
            Pin::Unpinned => match self.phase {
                Phase::Low | Phase::Leaving { .. } => Some(self.cfg.profile.clone()),
                Phase::Normal | Phase::Entering { .. } => None,
            },
        }
    }

    fn dwell_over(&self, now: Instant) -> bool {
        self.last_switch
            .is_none_or(|at| now.saturating_duration_since(at) >= self.cfg.min_dwell)
    }

    fn push(&mut self, permille: u32) {
        self.window.push(permille);
        if self.window.len() > WINDOW_KEEP {
            self.window.remove(0);
        }
    }

    /// Feeds one reading taken at `now`; returns the change of the active profile it causes.
    pub fn observe(&mut self, now: Instant, permille: u32) -> Option<Decision> {
        if self.cfg.mode == Mode::Manual {
            return None;
        }
        let high = permille > self.cfg.enter_above;
        let low = permille < self.cfg.leave_below;
        let before = self.active();
        let mut cause = None;
        let mut window_ms = 0;
        self.phase = match self.phase {
            Phase::Normal if high => {
                self.window.clear();
                self.push(permille);
                Phase::Entering { since: now }
            }
            Phase::Normal => Phase::Normal,
            Phase::Entering { .. } if !high => {
                self.window.clear();
                Phase::Normal
            }
            Phase::Entering { since } => {
                self.push(permille);
                let held = now.saturating_duration_since(since);
                if held >= self.cfg.enter_for && self.dwell_over(now) {
                    cause = Some(Cause::Enter);
                    window_ms = millis(held);
                    Phase::Low
                } else {
                    Phase::Entering { since }
                }
            }
            Phase::Low if low => {
                self.window.clear();
                self.push(permille);
                Phase::Leaving { since: now }
            }
            Phase::Low => Phase::Low,
            Phase::Leaving { .. } if !low => {
                self.window.clear();
                Phase::Low
            }
            Phase::Leaving { since } => {
                self.push(permille);
                let held = now.saturating_duration_since(since);
                if held >= self.cfg.leave_for && self.dwell_over(now) {
                    cause = Some(Cause::Leave);
                    window_ms = millis(held);
                    Phase::Normal
                } else {
                    Phase::Leaving { since }
                }
            }
        };
        let cause = cause?;
        let window = std::mem::take(&mut self.window);
        let after = self.active();
        if self.pin != Pin::Unpinned {
            // The pin decides what runs; the automatic phase only moves underneath it. The
            // dwell still starts, so unpinning never lands on a switch made a moment ago.
            self.last_switch = Some(now);
            return None;
        }
        self.last_switch = Some(now);
        (before != after).then(|| {
            self.switches += 1;
            Decision {
                cause,
                from: before,
                to: after,
                window,
                window_ms,
            }
        })
    }

    /// A reading could not be taken: the running window is dropped (no switch on stale data).
    pub fn interrupt(&mut self) {
        self.window.clear();
        self.phase = match self.phase {
            Phase::Entering { .. } | Phase::Normal => Phase::Normal,
            Phase::Leaving { .. } | Phase::Low => Phase::Low,
        };
    }

    /// Sets or removes the pin at `now`; returns the change of the active profile it causes.
    pub fn set_pin(&mut self, pin: Pin, now: Instant) -> Option<Decision> {
        if pin == self.pin {
            return None;
        }
        let before = self.active();
        let cause = if pin == Pin::Unpinned {
            Cause::Unpin
        } else {
            Cause::Pin
        };
        self.pin = pin;
        let after = self.active();
        if before == after {
            return None;
        }
        self.last_switch = Some(now);
        self.switches += 1;
        Some(Decision {
            cause,
            from: before,
            to: after,
            window: Vec::new(),
            window_ms: 0,
        })
    }

    /// The phase's name for the state: `normal`, `entering`, `low`, `leaving`.
    pub fn phase_name(&self) -> &'static str {
        match self.phase {
            Phase::Normal => "normal",
            Phase::Entering { .. } => "entering",
            Phase::Low => "low",
            Phase::Leaving { .. } => "leaving",
        }
    }

    /// How long automatic switches stay blocked after the last switch, at `now`.
    pub fn dwell_left(&self, now: Instant) -> Duration {
        self.last_switch
            .map(|at| {
                self.cfg
                    .min_dwell
                    .saturating_sub(now.saturating_duration_since(at))
            })
            .unwrap_or_default()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::config::SourceKind;
    use crate::profile::source::{LoadSource, SyntheticSource};

    const S: Duration = Duration::from_secs(1);

    fn cfg() -> Switching {
        Switching {
            mode: Mode::Auto,
            profile: "low-cpu".into(),
            source: SourceKind::Auto,
            enter_above: 800,
            enter_for: 10 * S,
            leave_below: 400,
            leave_for: 30 * S,
            min_dwell: 60 * S,
            sample_every: S,
            declared: vec!["low-cpu".into(), "other".into()],
        }
    }

    /// Feeds `readings` one second apart from `t`, advancing it; returns every decision with its time offset.
    fn feed(
        m: &mut Machine,
        t: &mut Instant,
        start: Instant,
        readings: &[u32],
    ) -> Vec<(u64, Decision)> {
        let mut source = SyntheticSource::new(readings.iter().copied());
        let mut out = Vec::new();
        for _ in readings {
            *t += S;
            let r = source.sample().unwrap().unwrap();
            if let Some(d) = m.observe(*t, r.permille) {
                out.push((t.duration_since(start).as_secs(), d));
            }
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn load_above_the_threshold_for_the_whole_window_switches_to_the_profile() {
        let start = Instant::now();
        let mut t = start;
        let mut m = Machine::new(cfg());
        let d = feed(&mut m, &mut t, start, &[900; 12]);
        assert_eq!(d.len(), 1);
        let (at, d) = &d[0];
        // First high reading at 1 s opens the window; 10 s later (11 s) it is complete.
        assert_eq!(*at, 11);
        assert_eq!(d.cause, Cause::Enter);
        assert_eq!(d.from, None);
        assert_eq!(d.to.as_deref(), Some("low-cpu"));
        assert_eq!(d.window, vec![900; 11]);
        assert_eq!(d.window_ms, 10_000);
        assert_eq!(m.active().as_deref(), Some("low-cpu"));
        assert_eq!(m.phase(), Phase::Low);
        assert_eq!(m.switches(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn spikes_shorter_than_the_window_do_not_switch() {
        let start = Instant::now();
        let mut t = start;
        let mut m = Machine::new(cfg());
        let mut readings = Vec::new();
        for _ in 0..10 {
            readings.extend([1000; 9]);
            readings.push(500);
        }
        assert!(feed(&mut m, &mut t, start, &readings).is_empty());
        assert_eq!(m.active(), None);
        // A reading exactly at the threshold is not above it.
        assert!(feed(&mut m, &mut t, start, &[800; 30]).is_empty());
        assert_eq!(m.switches(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn load_below_the_leave_threshold_for_the_leave_window_switches_back() {
        let start = Instant::now();
        let mut t = start;
        let mut m = Machine::new(cfg());
        feed(&mut m, &mut t, start, &[900; 11]);
        assert_eq!(m.active().as_deref(), Some("low-cpu"));
        // Past the dwell, between the thresholds: stays.
        assert!(feed(&mut m, &mut t, start, &[600; 70]).is_empty());
        // A dip shorter than the leave window: stays.
        let mut dip = vec![100; 20];
        dip.push(600);
        assert!(feed(&mut m, &mut t, start, &dip).is_empty());
        let d = feed(&mut m, &mut t, start, &[100; 40]);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].1.cause, Cause::Leave);
        assert_eq!(d[0].1.from.as_deref(), Some("low-cpu"));
        assert_eq!(d[0].1.to, None);
        assert_eq!(d[0].1.window_ms, 30_000);
        assert_eq!(m.active(), None);
        assert_eq!(m.switches(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_minimum_dwell_blocks_flapping() {
        let start = Instant::now();
        let mut t = start;
        let mut m = Machine::new(cfg());
        feed(&mut m, &mut t, start, &[900; 11]);
        let switched = t;
        // Idle at once: the leave window (30 s) is over long before the dwell (60 s).
        let d = feed(&mut m, &mut t, start, &[0; 60]);
        assert_eq!(d.len(), 1);
        let left_after = d[0].0 - switched.duration_since(start).as_secs();
        assert_eq!(left_after, 60, "switched back only once the dwell was over");
        // Busy again at once: again blocked until 60 s after the last switch.
        let back = t;
        let d = feed(&mut m, &mut t, start, &[1000; 70]);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].0 - back.duration_since(start).as_secs(), 60);
        assert_eq!(m.switches(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pin_overrides_automatic_decisions_until_unpinned() {
        let start = Instant::now();
        let mut t = start;
        let mut m = Machine::new(cfg());
        t += S;
        let d = m.set_pin(Pin::Default, t);
        assert_eq!(d, None, "pinning what already runs changes nothing");
        // Heavy load while pinned to the base files: no switch.
        assert!(feed(&mut m, &mut t, start, &[1000; 100]).is_empty());
        assert_eq!(m.active(), None);
        assert_eq!(
            m.phase(),
            Phase::Low,
            "the automatic phase moves underneath"
        );
        // Unpin: the automatic decision applies.
        let d = m.set_pin(Pin::Unpinned, t).expect("unpinning switches");
        assert_eq!(d.cause, Cause::Unpin);
        assert_eq!(d.to.as_deref(), Some("low-cpu"));
        // Pin another declared profile, then the base files.
        let d = m
            .set_pin(Pin::Profile("other".into()), t)
            .expect("a pin switches");
        assert_eq!((d.cause, d.to.as_deref()), (Cause::Pin, Some("other")));
        assert!(feed(&mut m, &mut t, start, &[0; 200]).is_empty());
        assert_eq!(m.active().as_deref(), Some("other"));
        let d = m.set_pin(Pin::Default, t).expect("a pin switches");
        assert_eq!((d.from.as_deref(), d.to), (Some("other"), None));
        assert_eq!(m.switches(), 3);
        assert_eq!(
            m.set_pin(Pin::Unpinned, t),
            None,
            "idle: automatic is the base too"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn manual_mode_never_switches_by_itself() {
        let start = Instant::now();
        let mut t = start;
        let mut m = Machine::new(Switching {
            mode: Mode::Manual,
            ..cfg()
        });
        assert!(feed(&mut m, &mut t, start, &[1000; 100]).is_empty());
        assert_eq!(m.active(), None);
        assert!(m.set_pin(Pin::Profile("low-cpu".into()), t).is_some());
        assert_eq!(m.active().as_deref(), Some("low-cpu"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_reading_restarts_the_window() {
        let start = Instant::now();
        let mut t = start;
        let mut m = Machine::new(cfg());
        feed(&mut m, &mut t, start, &[900; 8]);
        m.interrupt();
        assert!(feed(&mut m, &mut t, start, &[900; 8]).is_empty());
        assert_eq!(m.phase_name(), "entering");
        assert_eq!(feed(&mut m, &mut t, start, &[900; 3]).len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_dwell_left_counts_down_from_the_last_switch() {
        let start = Instant::now();
        let mut m = Machine::new(cfg());
        assert_eq!(m.dwell_left(start), Duration::ZERO);
        m.set_pin(Pin::Profile("low-cpu".into()), start);
        assert_eq!(m.dwell_left(start + 10 * S), 50 * S);
        assert_eq!(m.dwell_left(start + 100 * S), Duration::ZERO);
    }
}
