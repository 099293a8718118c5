//! The error policy: how long to wait before retrying a failed reconcile (exponential, jittered, capped; backon).

use std::error::Error;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

use super::ControllerError;

/// Decides, apart from the reconcile itself, whether and when a failed reconcile is retried.
pub trait ErrorPolicy: Send {
    /// The delay before retry number `attempt` (1 for the first failure in a row), or `None` to
    /// stop retrying (the loop then waits for a trigger or the resync).
    fn backoff(&mut self, err: &dyn Error, attempt: u32) -> Option<Duration>;

    /// Called after every successful reconcile: the next failure starts from the minimum again.
    fn reset(&mut self) {}
}

/// The retry parameters of [`ExponentialPolicy`].
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// The first delay.
    pub min: Duration,
    /// The cap: no delay is ever longer, jitter included.
    pub max: Duration,
    /// Each delay is the previous one times this.
    pub factor: f32,
    /// Adds backon's jitter: a random extra of up to 100 % of the delay (then capped at `max`).
    pub jitter: bool,
    /// Stop retrying after this many failures in a row; `None` retries forever.
    pub max_attempts: Option<u32>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            min: Duration::from_secs(1),
            max: Duration::from_secs(120),
            factor: 2.0,
            jitter: true,
            max_attempts: None,
        }
    }
}

impl RetryPolicy {
    pub fn validate(&self) -> Result<(), ControllerError> {
        if self.min.is_zero() || self.min > self.max {
            return Err(ControllerError::Config(format!(
                "retry needs 0 < min <= max, not min {:?} and max {:?}",
                self.min, self.max
            )));
        }
        if !self.factor.is_finite() || self.factor < 1.0 {
            return Err(ControllerError::Config(format!(
                "retry factor must be at least 1, not {}",
                self.factor
            )));
        }
        Ok(())
    }

    fn builder(&self) -> ExponentialBuilder {
        let mut b = ExponentialBuilder::new()
            .with_min_delay(self.min)
            .with_max_delay(self.max)
            .with_factor(self.factor);
        b = match self.max_attempts {
            Some(n) => b.with_max_times(usize::try_from(n).unwrap_or(usize::MAX)),
            None => b.without_max_times(),
        };
        if self.jitter {
            b = b.with_jitter();
        }
        b
    }
}

/// The default error policy: backon's exponential delays with jitter, capped at `max`, reset
/// after a success.
#[derive(Debug)]
pub struct ExponentialPolicy {
    policy: RetryPolicy,
    delays: ExponentialBackoff,
}

impl ExponentialPolicy {
    pub fn new(policy: RetryPolicy) -> Self {
        let delays = policy.builder().build();
        ExponentialPolicy { policy, delays }
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }
}

impl ErrorPolicy for ExponentialPolicy {
    fn backoff(&mut self, _err: &dyn Error, _attempt: u32) -> Option<Duration> {
        // backon's jitter may add up to the delay itself; the cap holds anyway.
        self.delays.next().map(|d| d.min(self.policy.max))
    }

    fn reset(&mut self) {
        self.delays = self.policy.builder().build();
    }
}
