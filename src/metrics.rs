//! The Prometheus metrics of `spindle run` (prometheus-client registry), fed by the reconciler and read by `GET /metrics`.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::engine::RequestCounts;

type Labels = Vec<(&'static str, String)>;

/// What one reconcile did, as the metrics count it.
#[derive(Clone, Debug, Default)]
pub struct ReconcileSummary {
    /// The evidence outcome (`in-sync`, `converged`, `failed`, `blocked`, `paused`, …).
    pub outcome: String,
    pub duration_secs: f64,
    /// `(verb, outcome)` of every action run (`("recreate", "rolled_back")`).
    pub actions: Vec<(String, String)>,
    /// The host differed from a desired state that had not changed since the previous reconcile.
    pub drift: bool,
}

/// Every metric spindle exports. Names are listed in docs/api.md.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<Labels, Counter>,
    duration: Histogram,
    actions: Family<Labels, Counter>,
    drift: Counter,
    self_heals: Counter,
    rollbacks: Counter,
    evidence: Family<Labels, Counter>,
    profile_switches: Counter,
    docker_requests: Family<Labels, Counter>,
    last_success: Gauge<f64, AtomicU64>,
    paused: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let reconciles = Family::<Labels, Counter>::default();
        let duration = Histogram::new(exponential_buckets(0.01, 2.0, 16));
        let actions = Family::<Labels, Counter>::default();
        let drift = Counter::default();
        let self_heals = Counter::default();
        let rollbacks = Counter::default();
        let evidence = Family::<Labels, Counter>::default();
        let profile_switches = Counter::default();
        let docker_requests = Family::<Labels, Counter>::default();
        let last_success = Gauge::<f64, AtomicU64>::default();
        let paused = Gauge::default();
        registry.register(
            "spindle_reconciles",
            "Reconciles by result (the evidence outcome)",
            reconciles.clone(),
        );
        registry.register(
            "spindle_reconcile_duration_seconds",
            "How long reconciles took",
            duration.clone(),
        );
        registry.register(
            "spindle_actions",
            "Actions run, by kind and outcome",
            actions.clone(),
        );
        registry.register(
            "spindle_drift_detected",
            "Reconciles that found the host differing from an unchanged desired state",
            drift.clone(),
        );
        registry.register(
            "spindle_self_heals",
            "Actions that repaired drift (succeeded, desired state unchanged)",
            self_heals.clone(),
        );
        registry.register(
            "spindle_rollbacks",
            "Changes rolled back because the new container did not become healthy",
            rollbacks.clone(),
        );
        registry.register(
            "spindle_evidence_records",
            "Evidence records appended, by kind",
            evidence.clone(),
        );
        registry.register(
            "spindle_profile_switches",
            "Profile switches done by the profile switcher",
            profile_switches.clone(),
        );
        registry.register(
            "spindle_docker_requests",
            "Docker Engine API requests, by kind (read or write)",
            docker_requests.clone(),
        );
        registry.register(
            "spindle_last_successful_reconcile_timestamp_seconds",
            "Unix time of the last reconcile that ended in sync or converged",
            last_success.clone(),
        );
        registry.register(
            "spindle_paused",
            "1 while the loop is paused (observes and plans, applies nothing)",
            paused.clone(),
        );
        Metrics {
            registry,
            reconciles,
            duration,
            actions,
            drift,
            self_heals,
            rollbacks,
            evidence,
            profile_switches,
            docker_requests,
            last_success,
            paused,
        }
    }

    /// Counts one finished reconcile.
    pub fn observe_reconcile(&self, s: &ReconcileSummary) {
        self.reconciles
            .get_or_create(&vec![("result", s.outcome.clone())])
            .inc();
        self.duration.observe(s.duration_secs.max(0.0));
        for (verb, outcome) in &s.actions {
            self.actions
                .get_or_create(&vec![("kind", verb.clone()), ("outcome", outcome.clone())])
                .inc();
            if outcome == "rolled_back" {
                self.rollbacks.inc();
            }
            if s.drift && outcome == "ok" {
                self.self_heals.inc();
            }
        }
        if s.drift {
            self.drift.inc();
        }
        if matches!(s.outcome.as_str(), "in-sync" | "converged") {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or_default();
            self.last_success.set(now);
        }
    }

    /// Counts one appended evidence record.
    pub fn evidence_appended(&self, kind: &str) {
        self.evidence
            .get_or_create(&vec![("kind", kind.to_string())])
            .inc();
    }

    /// Brings the numbers kept elsewhere (the engine's request counters, the switcher's count,
    /// the pause state) up to date; called before each encode.
    pub fn refresh(&self, requests: Option<RequestCounts>, switches: u64, paused: bool) {
        if let Some(r) = requests {
            for (kind, total) in [("read", r.reads), ("write", r.writes)] {
                let c = self
                    .docker_requests
                    .get_or_create(&vec![("kind", kind.to_string())]);
                let seen = c.get();
                if total > seen {
                    c.inc_by(total - seen);
                }
            }
        }
        let seen = self.profile_switches.get();
        if switches > seen {
            self.profile_switches.inc_by(switches - seen);
        }
        self.paused.set(i64::from(paused));
    }

    /// The OpenMetrics text exposition (what Prometheus asks for first).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// The classic Prometheus text format (0.0.4), for clients that do not ask for OpenMetrics.
    pub fn encode_text(&self) -> String {
        openmetrics_to_text(&self.encode())
    }
}

/// Content type of [`Metrics::encode`].
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of [`Metrics::encode_text`].
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// OpenMetrics → Prometheus text 0.0.4: a counter family `x` is described as `x_total` (its
/// samples' name), and `# EOF` and `# UNIT` lines are dropped. Samples are unchanged.
pub fn openmetrics_to_text(open: &str) -> String {
    let counters: std::collections::BTreeSet<&str> = open
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open.len());
    for line in open.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(rewritten.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_names_counter_families_after_their_samples() {
        let open =
            "# HELP a_b Help.\n# TYPE a_b counter\na_b_total 1\n# TYPE g gauge\ng 2\n# EOF\n";
        assert_eq!(
            openmetrics_to_text(open),
            "# HELP a_b_total Help.\n# TYPE a_b_total counter\na_b_total 1\n# TYPE g gauge\ng 2\n"
        );
    }

    #[test]
    fn a_reconcile_is_counted_by_result_and_its_actions_by_kind() {
        let m = Metrics::new();
        m.observe_reconcile(&ReconcileSummary {
            outcome: "converged".into(),
            duration_secs: 0.5,
            actions: vec![
                ("start".into(), "ok".into()),
                ("recreate".into(), "rolled_back".into()),
            ],
            drift: true,
        });
        m.refresh(
            Some(RequestCounts {
                reads: 7,
                writes: 2,
            }),
            3,
            true,
        );
        let text = m.encode();
        for line in [
            "spindle_reconciles_total{result=\"converged\"} 1",
            "spindle_actions_total{kind=\"start\",outcome=\"ok\"} 1",
            "spindle_rollbacks_total 1",
            "spindle_self_heals_total 1",
            "spindle_drift_detected_total 1",
            "spindle_docker_requests_total{kind=\"read\"} 7",
            "spindle_profile_switches_total 3",
            "spindle_paused 1",
            "spindle_reconcile_duration_seconds_count 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing in:\n{text}"
            );
        }
    }
}
