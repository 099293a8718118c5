//! The YAML form of a probe: `- name: gateway`, exactly one of `http: {...}` or `tcp: {...}`, and optionally `gates: <service>`.

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
    /// `gates:`: the service whose apply health gate waits for this probe; `None` is verify-only.
    pub gates: Option<String>,
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
    gates: Option<String>,
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
        if raw.gates.as_deref().is_some_and(|g| g.trim().is_empty()) {
            return Err(format!(
                "probe {name}: gates needs a service name; remove it for a verify-only probe"
            ));
        }
        Ok(ProbeSpec {
            name,
            kind,
            gates: raw.gates,
        })
    }
}

/// Checks that every `gates:` names a service of the project (`declared` holds every service
/// the compose files define, before profiles disable any). The message names the key path.
pub fn check_gates(probes: &[ProbeSpec], declared: &dyn Fn(&str) -> bool) -> Result<(), String> {
    for (i, p) in probes.iter().enumerate() {
        if let Some(service) = &p.gates
            && !declared(service)
        {
            return Err(format!(
                "probes[{i}].gates: probe {} gates service {service:?}, which the compose files do not define; name one of the project's services or remove gates",
                p.name
            ));
        }
    }
    Ok(())
}

/// The probes that gate `service`, in the order `spindle.yaml` lists them.
pub fn gating(probes: &[ProbeSpec], service: &str) -> Vec<ProbeSpec> {
    probes
        .iter()
        .filter(|p| p.gates.as_deref() == Some(service))
        .cloned()
        .collect()
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
                gates: None,
            }]
        );
    }

    #[test]
    fn a_probe_names_the_service_it_gates() {
        let probes = parse("- name: gw\n  gates: gateway\n  tcp: {host: h, port: 1}\n").unwrap();
        assert_eq!(probes[0].gates.as_deref(), Some("gateway"));
        assert!(parse("- name: gw\n  gates: ' '\n  tcp: {host: h, port: 1}\n").is_err());
    }

    #[test]
    fn gates_must_name_a_declared_service() {
        let probes = parse(
            "- name: a\n  tcp: {host: h, port: 1}\n\
             - name: b\n  gates: web\n  tcp: {host: h, port: 1}\n\
             - name: c\n  gates: nope\n  tcp: {host: h, port: 1}\n",
        )
        .unwrap();
        let web = |s: &str| s == "web";
        let none = |_: &str| false;
        type Case<'a> = (&'a [ProbeSpec], &'a dyn Fn(&str) -> bool, Option<&'a str>);
        let cases: [Case; 4] = [
            (&probes[..2], &web, None),
            (&probes[..1], &none, None),
            (&probes, &web, Some("probes[2].gates")),
            (&probes[1..2], &none, Some("probes[0].gates")),
        ];
        for (list, declared, want) in cases {
            match (check_gates(list, declared), want) {
                (Ok(()), None) => {}
                (Err(e), Some(path)) => {
                    assert!(e.starts_with(path), "{e}");
                    assert!(e.contains("remove gates"), "{e}");
                }
                (got, want) => panic!("{got:?} but wanted {want:?}"),
            }
        }
    }

    #[test]
    fn a_service_gets_only_its_own_probes() {
        let probes = parse(
            "- name: a\n  gates: web\n  tcp: {host: h, port: 1}\n\
             - name: b\n  gates: db\n  tcp: {host: h, port: 1}\n\
             - name: c\n  tcp: {host: h, port: 1}\n\
             - name: d\n  gates: web\n  tcp: {host: h, port: 2}\n",
        )
        .unwrap();
        let names =
            |s: &str| -> Vec<String> { gating(&probes, s).into_iter().map(|p| p.name).collect() };
        assert_eq!(names("web"), ["a", "d"]);
        assert_eq!(names("db"), ["b"]);
        assert!(names("cache").is_empty());
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
