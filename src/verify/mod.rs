//! `spindle verify`: checks the four layers of truth (repo, host input, running containers, app readback) and reports findings.
//!
//! The checks are pure functions over file contents, a [`GitView`](host::GitView), an observed
//! [`Snapshot`](crate::observe::snapshot::Snapshot) and probe outcomes; only `git` (the git
//! command), the engine and the probes touch the outside, and the CLI drives them.
//!
//! Severity: `stale` is a warning (the layer still passes); every other kind fails its layer,
//! and any failed layer fails the report (exit 1). See docs/verify.md.

pub mod containers;
pub mod git;
pub mod host;
pub mod readback;
pub mod repo;

use serde::Serialize;

use crate::health::ErrorClass;

/// Keys of env files that Compose itself reads (`COMPOSE_PROJECT_NAME`, `COMPOSE_PROFILES`, …):
/// they are used without any compose file naming them.
pub const COMPOSE_PREFIX: &str = "COMPOSE_";

/// The four layers, in the order they are checked and reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// `.env.example` and the compose files, as committed.
    RepoTruth,
    /// The env files and compose files on this host, against `.env.example` and the git revision.
    HostInput,
    /// The running containers against the interpolated desired state.
    Containers,
    /// The application itself, through the probes of `spindle.yaml`.
    AppReadback,
}

/// What a finding says about its place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The truth names something that is not there.
    Missing,
    /// Something is there that the truth does not name (a warning: it does not fail).
    Stale,
    /// It is there, but differs from the truth.
    Contradicted,
    /// It cannot be reached (a probe, the engine).
    Unreachable,
    /// A file of the truth cannot be read (it does not parse).
    Invalid,
    /// It cannot be checked against a revision (no git work tree, no commit, no git).
    Unverifiable,
    /// A secret is where it must not be (an env file tracked by git).
    Exposed,
}

impl Kind {
    /// Whether a finding of this kind fails its layer.
    pub fn fails(self) -> bool {
        !matches!(self, Kind::Stale)
    }
}

/// The outcome of a finding, a layer or the whole report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    /// A finding that does not fail (`stale`).
    Warn,
    Fail,
    /// A layer with nothing to check (no probes declared).
    Skipped,
}

/// One thing that differs from the truth. Values are redacted before they get here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub layer: Layer,
    pub kind: Kind,
    /// `fail` or `warn`.
    pub status: Status,
    /// Where: `services.backend.environment.DB_HOST`, `.env:DB_PASSWORD`, `compose.yaml`, `probes.gateway`.
    pub path: String,
    /// The container, for the containers layer.
    pub container: Option<String>,
    pub expected: Option<String>,
    pub actual: Option<String>,
    /// The probe's error class, for the app readback layer.
    pub class: Option<ErrorClass>,
    /// What is wrong and what to do.
    pub message: String,
}

impl Finding {
    pub fn new(
        layer: Layer,
        kind: Kind,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            layer,
            kind,
            status: if kind.fails() {
                Status::Fail
            } else {
                Status::Warn
            },
            path: path.into(),
            container: None,
            expected: None,
            actual: None,
            class: None,
            message: message.into(),
        }
    }

    pub fn expected(mut self, v: impl Into<String>) -> Self {
        self.expected = Some(v.into());
        self
    }

    pub fn actual(mut self, v: impl Into<String>) -> Self {
        self.actual = Some(v.into());
        self
    }

    pub fn container(mut self, name: impl Into<String>) -> Self {
        self.container = Some(name.into());
        self
    }

    pub fn class(mut self, class: ErrorClass) -> Self {
        self.class = Some(class);
        self
    }
}

/// The outcome of one layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LayerReport {
    pub layer: Layer,
    /// `pass`, `fail` or `skipped`.
    pub status: Status,
    /// How many things were compared (keys, files, containers, probes).
    pub checked: usize,
    /// Why a layer was skipped.
    pub note: Option<String>,
    pub findings: Vec<Finding>,
}

impl LayerReport {
    /// A checked layer: it fails when any finding fails.
    pub fn new(layer: Layer, checked: usize, findings: Vec<Finding>) -> Self {
        let status = if findings.iter().any(|f| f.kind.fails()) {
            Status::Fail
        } else {
            Status::Pass
        };
        Self {
            layer,
            status,
            checked,
            note: None,
            findings,
        }
    }

    /// A layer with nothing to check.
    pub fn skipped(layer: Layer, note: impl Into<String>) -> Self {
        Self {
            layer,
            status: Status::Skipped,
            checked: 0,
            note: Some(note.into()),
            findings: Vec::new(),
        }
    }
}

/// The whole verification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub project: String,
    /// The desired-state folder (the project directory).
    pub desired_state: String,
    /// The git revision of the folder (`<commit>`, `-dirty` when files differ), when known.
    pub revision: Option<String>,
    /// `pass` or `fail`.
    pub status: Status,
    /// Findings that fail.
    pub failures: usize,
    /// Findings that only warn (`stale`).
    pub warnings: usize,
    pub layers: Vec<LayerReport>,
}

impl Report {
    pub fn new(
        project: String,
        desired_state: String,
        revision: Option<String>,
        layers: Vec<LayerReport>,
    ) -> Self {
        let all = || layers.iter().flat_map(|l| &l.findings);
        let failures = all().filter(|f| f.kind.fails()).count();
        let warnings = all().filter(|f| !f.kind.fails()).count();
        let status = if layers.iter().any(|l| l.status == Status::Fail) {
            Status::Fail
        } else {
            Status::Pass
        };
        Self {
            project,
            desired_state,
            revision,
            status,
            failures,
            warnings,
            layers,
        }
    }

    pub fn passed(&self) -> bool {
        self.status == Status::Pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_stale_findings_leave_a_layer_passing() {
        let stale = Finding::new(Layer::HostInput, Kind::Stale, ".env:X", "m");
        assert_eq!(stale.status, Status::Warn);
        let layer = LayerReport::new(Layer::HostInput, 1, vec![stale.clone()]);
        assert_eq!(layer.status, Status::Pass);
        for kind in [
            Kind::Missing,
            Kind::Contradicted,
            Kind::Unreachable,
            Kind::Invalid,
            Kind::Unverifiable,
            Kind::Exposed,
        ] {
            let f = Finding::new(Layer::HostInput, kind, ".env:X", "m");
            assert_eq!(f.status, Status::Fail, "{kind:?}");
            let layer = LayerReport::new(Layer::HostInput, 1, vec![stale.clone(), f]);
            assert_eq!(layer.status, Status::Fail, "{kind:?}");
            let report = Report::new("p".into(), "/d".into(), None, vec![layer]);
            assert!(!report.passed());
            assert_eq!((report.failures, report.warnings), (1, 1));
        }
    }

    #[test]
    fn a_skipped_layer_does_not_fail_the_report() {
        let report = Report::new(
            "p".into(),
            "/d".into(),
            None,
            vec![
                LayerReport::new(Layer::RepoTruth, 3, vec![]),
                LayerReport::skipped(Layer::AppReadback, "no probes"),
            ],
        );
        assert!(report.passed());
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["status"], "pass");
        assert_eq!(json["layers"][1]["status"], "skipped");
        assert_eq!(json["layers"][0]["layer"], "repo_truth");
    }
}
