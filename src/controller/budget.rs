//! Self-heal limits used by the reconciler: a sliding-window restart budget per container, and the grace an unhealthy container gets.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

/// The budget is spent: no restart until `until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exhausted {
    /// When the oldest restart in the window leaves it, freeing one restart.
    pub until: Instant,
    /// The restarts already made within the window.
    pub count: u32,
}

impl std::fmt::Display for Exhausted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "restart budget exhausted: {} restarts within the window",
            self.count
        )
    }
}

/// What is left of one key's budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BudgetState {
    /// Restarts within the window.
    pub used: u32,
    pub remaining: u32,
    /// When the oldest restart in the window leaves it (`None` when none is recorded).
    pub oldest_expires: Option<Instant>,
}

/// At most `max` restarts per `window` for each key (`service#number`), over a sliding window.
#[derive(Clone, Debug)]
pub struct RestartBudget {
    pub max: u32,
    pub window: Duration,
    spent: HashMap<String, VecDeque<Instant>>,
}

impl RestartBudget {
    pub fn new(max: u32, window: Duration) -> Self {
        RestartBudget {
            max,
            window,
            spent: HashMap::new(),
        }
    }

    fn prune(window: Duration, times: &mut VecDeque<Instant>, now: Instant) {
        while let Some(&oldest) = times.front() {
            if now.saturating_duration_since(oldest) >= window {
                times.pop_front();
            } else {
                break;
            }
        }
    }

    /// Records a restart of `key` at `now` if the budget allows it.
    pub fn try_spend(&mut self, key: &str, now: Instant) -> Result<(), Exhausted> {
        let window = self.window;
        let times = self.spent.entry(key.to_string()).or_default();
        Self::prune(window, times, now);
        let count = u32::try_from(times.len()).unwrap_or(u32::MAX);
        if count >= self.max {
            let until = times.front().map_or(now, |&t| t + window);
            return Err(Exhausted { until, count });
        }
        times.push_back(now);
        Ok(())
    }

    /// The budget of `key` as of `now`, without spending.
    pub fn state(&self, key: &str, now: Instant) -> BudgetState {
        let recent: Vec<Instant> = self
            .spent
            .get(key)
            .map(|times| {
                times
                    .iter()
                    .copied()
                    .filter(|&t| now.saturating_duration_since(t) < self.window)
                    .collect()
            })
            .unwrap_or_default();
        let used = u32::try_from(recent.len()).unwrap_or(u32::MAX);
        BudgetState {
            used,
            remaining: self.max.saturating_sub(used),
            oldest_expires: recent.first().map(|&t| t + self.window),
        }
    }

    /// Forgets `key` (its container is gone for good).
    pub fn forget(&mut self, key: &str) {
        self.spent.remove(key);
    }
}

/// Tracks since when each key (`service#number`) has been unhealthy; it counts as unhealthy for
/// self-heal only once that lasted `grace`.
#[derive(Clone, Debug)]
pub struct UnhealthyTracker {
    pub grace: Duration,
    since: HashMap<String, Instant>,
}

impl UnhealthyTracker {
    pub fn new(grace: Duration) -> Self {
        UnhealthyTracker {
            grace,
            since: HashMap::new(),
        }
    }

    /// Records an observation; true when `key` has been unhealthy for at least the grace.
    /// A healthy (or starting) observation clears the key.
    pub fn observe(&mut self, key: &str, unhealthy: bool, now: Instant) -> bool {
        if !unhealthy {
            self.since.remove(key);
            return false;
        }
        let since = *self.since.entry(key.to_string()).or_insert(now);
        now.saturating_duration_since(since) >= self.grace
    }

    /// How long until `key` passes the grace (zero if it has); `None` if it is not unhealthy.
    /// The reconciler can requeue after this.
    pub fn remaining(&self, key: &str, now: Instant) -> Option<Duration> {
        self.since.get(key).map(|&since| {
            self.grace
                .saturating_sub(now.saturating_duration_since(since))
        })
    }

    /// Starts the grace over (after a restart) or forgets the key.
    pub fn reset(&mut self, key: &str) {
        self.since.remove(key);
    }
}
