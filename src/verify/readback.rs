//! The app readback layer: the outcomes of the probes `spindle.yaml` declares, as findings.

use super::{Finding, Kind, Layer, LayerReport};
use crate::health::{ErrorClass, Probe, ProbeOutcome, ProbeSpec, redact_url};

/// What a probe expects, fit to show.
fn expectation(spec: &ProbeSpec) -> String {
    match &spec.kind {
        Probe::Http {
            url,
            expect_status,
            body_contains,
            ..
        } => {
            let url = redact_url(url);
            match body_contains {
                Some(b) => format!("GET {url}: status {expect_status}, body containing {b:?}"),
                None => format!("GET {url}: status {expect_status}"),
            }
        }
        Probe::Tcp { host, port, .. } => format!("tcp {host}:{port}: a connection"),
    }
}

fn advice(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::ConnectionRefused => {
            "nothing listens there: check that the service publishing it runs and publishes that port"
        }
        ErrorClass::DnsFailed => "the host name does not resolve: fix the probe's host or the DNS",
        ErrorClass::TlsVerifyFailed => {
            "the server's certificate was rejected: fix the certificate (insecure_tls: true skips the check, for triage only)"
        }
        ErrorClass::Timeout => {
            "no complete answer in time: check the service's health and load, or raise the probe's timeout"
        }
        ErrorClass::HttpStatus => "the application answered with another status: read its logs",
        ErrorClass::BodyMismatch => {
            "the application answered without the expected text: read its logs"
        }
        ErrorClass::Other => "the probe failed: read the detail",
    }
}

/// One finding per failed probe. `outcomes` are in the order of `specs` (as `health::run_all`
/// returns them); a layer without probes is skipped.
pub fn readback(specs: &[ProbeSpec], outcomes: &[ProbeOutcome]) -> LayerReport {
    let layer = Layer::AppReadback;
    if specs.is_empty() {
        return LayerReport::skipped(layer, "no probes declared in spindle.yaml");
    }
    let mut findings = Vec::new();
    for (spec, out) in specs.iter().zip(outcomes) {
        if out.ok {
            continue;
        }
        let class = out.class.unwrap_or(ErrorClass::Other);
        let kind = match class {
            ErrorClass::HttpStatus | ErrorClass::BodyMismatch => Kind::Contradicted,
            _ => Kind::Unreachable,
        };
        findings.push(
            Finding::new(
                layer,
                kind,
                format!("probes.{}", spec.name),
                format!(
                    "probe {} failed ({}): {}",
                    spec.name,
                    class.as_str(),
                    advice(class)
                ),
            )
            .expected(expectation(spec))
            .actual(out.detail.clone())
            .class(class),
        );
    }
    LayerReport::new(layer, specs.len(), findings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::Status;
    use std::time::Duration;

    fn http(name: &str) -> ProbeSpec {
        ProbeSpec {
            name: name.into(),
            kind: Probe::Http {
                url: "http://u:pw@127.0.0.1:8080/health?token=t".into(),
                expect_status: 200,
                body_contains: Some("ok".into()),
                insecure_tls: false,
                timeout: Duration::from_secs(1),
            },
            gates: None,
        }
    }

    fn outcome(name: &str, class: Option<ErrorClass>) -> ProbeOutcome {
        ProbeOutcome {
            name: name.into(),
            ok: class.is_none(),
            class,
            detail: "GET http://127.0.0.1:8080/health: detail".into(),
            elapsed_ms: 1,
        }
    }

    #[test]
    fn every_error_class_maps_to_a_kind_that_fails() {
        let rows = [
            (ErrorClass::ConnectionRefused, Kind::Unreachable),
            (ErrorClass::DnsFailed, Kind::Unreachable),
            (ErrorClass::TlsVerifyFailed, Kind::Unreachable),
            (ErrorClass::Timeout, Kind::Unreachable),
            (ErrorClass::Other, Kind::Unreachable),
            (ErrorClass::HttpStatus, Kind::Contradicted),
            (ErrorClass::BodyMismatch, Kind::Contradicted),
        ];
        for (class, kind) in rows {
            let r = readback(&[http("gw")], &[outcome("gw", Some(class))]);
            assert_eq!(r.status, Status::Fail, "{class:?}");
            let f = &r.findings[0];
            assert_eq!(
                (f.kind, f.class, f.path.as_str()),
                (kind, Some(class), "probes.gw")
            );
            assert!(f.message.contains(class.as_str()));
        }
    }

    #[test]
    fn passing_probes_pass_and_none_declared_is_skipped() {
        let r = readback(
            &[http("a"), http("b")],
            &[outcome("a", None), outcome("b", None)],
        );
        assert_eq!((r.status, r.checked), (Status::Pass, 2));
        assert_eq!(readback(&[], &[]).status, Status::Skipped);
    }

    #[test]
    fn the_expectation_shows_no_url_credentials() {
        let r = readback(&[http("gw")], &[outcome("gw", Some(ErrorClass::Timeout))]);
        let e = r.findings[0].expected.clone().unwrap();
        assert_eq!(
            e,
            "GET http://127.0.0.1:8080/health: status 200, body containing \"ok\""
        );
    }
}
