//! The YAML form of a probe: `- name: gateway` followed by exactly one of `http: {...}` or `tcp: {...}`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The timeout a probe gets when its form names none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// One named probe, as listed under `probes:` in `spindle.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawProbeSpec")]
pub struct ProbeSpec {
    pub name: String,
    pub kind: Probe,
}

/// What a probe checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Http {
        url: String,
        expect_status: u16,
        body_contains: Option<String>,
        insecure_tls: bool,
        timeout: Duration,
    },
    Tcp {
        host: String,
        port: u16,
        timeout: Duration,
    },
}

impl Probe {
    /// The time the whole probe may take.
    pub fn timeout(&self) -> Duration {
        match self {
            Probe::Http { timeout, .. } | Probe::Tcp { timeout, .. } => *timeout,
        }
    }
}

// serde cannot combine `flatten` with `deny_unknown_fields`, so the YAML is read into this strict form first.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProbeSpec {
    name: String,
    #[serde(default)]
    http: Option<RawHttp>,
    #[serde(default)]
    tcp: Option<RawTcp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    url: String,
    #[serde(default = "default_status")]
    expect_status: u16,
    #[serde(default)]
    body_contains: Option<String>,
    #[serde(default)]
    insecure_tls: bool,
    #[serde(default)]
    timeout: Option<RawDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTcp {
    host: String,
    port: u16,
    #[serde(default)]
    timeout: Option<RawDuration>,
}

/// A timeout written as a humantime string (`300ms`, `5s`) or a whole number of seconds.
#[derive(Deserialize, Serialize)]
#[serde(untagged)]
enum RawDuration {
    Seconds(u64),
    Text(String),
}

fn default_status() -> u16 {
    200
}

fn duration(raw: Option<RawDuration>, probe: &str) -> Result<Duration, String> {
    match raw {
        None => Ok(DEFAULT_TIMEOUT),
        Some(RawDuration::Seconds(s)) => Ok(Duration::from_secs(s)),
        Some(RawDuration::Text(t)) => humantime::parse_duration(&t)
            .map_err(|e| format!("probe {probe}: timeout {t:?} is not a duration: {e}")),
    }
    .and_then(|d| {
        if d.is_zero() {
            Err(format!("probe {probe}: timeout must be greater than zero"))
        } else {
            Ok(d)
        }
    })
}

impl TryFrom<RawProbeSpec> for ProbeSpec {
    type Error = String;

    fn try_from(raw: RawProbeSpec) -> Result<Self, String> {
        let name = raw.name;
        if name.trim().is_empty() {
            return Err("a probe needs a non-empty name".to_string());
        }
        let kind = match (raw.http, raw.tcp) {
            (Some(h), None) => {
                if !(100..=599).contains(&h.expect_status) {
                    return Err(format!(
                        "probe {name}: expect_status {} is not an HTTP status",
                        h.expect_status
                    ));
                }
                Probe::Http {
                    url: h.url,
                    expect_status: h.expect_status,
                    body_contains: h.body_contains,
                    insecure_tls: h.insecure_tls,
                    timeout: duration(h.timeout, &name)?,
                }
            }
            (None, Some(t)) => Probe::Tcp {
                host: t.host,
                port: t.port,
                timeout: duration(t.timeout, &name)?,
            },
            (Some(_), Some(_)) => {
                return Err(format!("probe {name}: give either http or tcp, not both"));
            }
            (None, None) => return Err(format!("probe {name}: give one of http or tcp")),
        };
        Ok(ProbeSpec { name, kind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Vec<ProbeSpec>, String> {
        yaml_serde::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn an_http_probe_reads_with_its_defaults() {
        let probes = parse(
            "- name: gateway\n  http: {url: http://127.0.0.1:8080/health, body_contains: ok}\n",
        )
        .unwrap();
        assert_eq!(
            probes,
            vec![ProbeSpec {
                name: "gateway".into(),
                kind: Probe::Http {
                    url: "http://127.0.0.1:8080/health".into(),
                    expect_status: 200,
                    body_contains: Some("ok".into()),
                    insecure_tls: false,
                    timeout: DEFAULT_TIMEOUT,
                },
            }]
        );
    }

    #[test]
    fn a_tcp_probe_reads_with_a_humantime_timeout() {
        let probes =
            parse("- name: db\n  tcp: {host: 127.0.0.1, port: 3306, timeout: 300ms}\n").unwrap();
        assert_eq!(
            probes[0].kind,
            Probe::Tcp {
                host: "127.0.0.1".into(),
                port: 3306,
                timeout: Duration::from_millis(300)
            }
        );
    }

    #[test]
    fn a_timeout_in_whole_seconds_is_accepted() {
        let probes = parse("- name: db\n  tcp: {host: h, port: 1, timeout: 2}\n").unwrap();
        assert_eq!(probes[0].kind.timeout(), Duration::from_secs(2));
    }

    #[test]
    fn an_unknown_key_beside_the_name_is_refused() {
        let err = parse("- name: db\n  tcp: {host: h, port: 1}\n  retries: 3\n").unwrap_err();
        assert!(err.contains("retries"), "{err}");
    }

    #[test]
    fn an_unknown_key_inside_the_http_form_is_refused() {
        let err = parse("- name: gw\n  http: {url: http://x/, expect: 200}\n").unwrap_err();
        assert!(err.contains("expect"), "{err}");
    }

    #[test]
    fn an_unknown_key_inside_the_tcp_form_is_refused() {
        assert!(parse("- name: db\n  tcp: {host: h, port: 1, tls: true}\n").is_err());
    }

    #[test]
    fn a_probe_with_both_forms_is_refused() {
        let err =
            parse("- name: x\n  http: {url: http://x/}\n  tcp: {host: h, port: 1}\n").unwrap_err();
        assert!(err.contains("not both"), "{err}");
    }

    #[test]
    fn a_probe_with_no_form_is_refused() {
        assert!(parse("- name: x\n").is_err());
    }

    #[test]
    fn a_zero_or_malformed_timeout_is_refused() {
        assert!(parse("- name: x\n  tcp: {host: h, port: 1, timeout: 0s}\n").is_err());
        assert!(parse("- name: x\n  tcp: {host: h, port: 1, timeout: soon}\n").is_err());
    }

    #[test]
    fn an_impossible_expected_status_is_refused() {
        assert!(parse("- name: x\n  http: {url: http://x/, expect_status: 42}\n").is_err());
    }
}
