//! The containers layer: each desired container exists and runs, with the desired environment, labels, spec and image.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Finding, Kind, Layer, LayerReport};
use crate::desired::typed::{DesiredService, DesiredState};
use crate::labels;
use crate::observe::snapshot::{Health, ObservedContainer, RunState, Snapshot};
use crate::redact::{self, REDACTED};

/// A value fit to show: `<redacted>` under a secret-like key (even a wrong value).
fn shown(key: &str, value: &str) -> String {
    if redact::is_secret_entry(key, value) {
        REDACTED.to_string()
    } else {
        value.to_string()
    }
}

/// `KEY=value` entries of the container's environment (`Config.Env`), by key.
fn observed_env(c: &ObservedContainer) -> BTreeMap<String, String> {
    c.inspect
        .pointer("/Config/Env")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|e| match e.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (e.to_string(), String::new()),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The service's environment as spindle sets it (keys without a value are not set).
fn desired_env(svc: &DesiredService) -> Vec<(String, String)> {
    svc.environment()
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect()
}

/// The service's own `labels:`.
fn desired_labels(svc: &DesiredService) -> Vec<(String, String)> {
    svc.labels()
}

/// Values of secret-like environment keys and labels the containers hold, so that output can
/// be redacted of them too (a stale password may sit inside another value).
pub fn observed_secrets(snapshot: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for c in &snapshot.containers {
        let env = observed_env(c);
        let all = env.iter().chain(c.labels.iter());
        out.extend(
            all.filter(|(k, v)| redact::is_secret_entry(k, v))
                .map(|(_, v)| v.clone()),
        );
    }
    out
}

/// Compares each desired container with the one observed.
pub fn containers(desired: &DesiredState, snapshot: &Snapshot) -> LayerReport {
    let layer = Layer::Containers;
    let mut findings = Vec::new();
    let mut checked = 0;
    for svc in desired.ordered_services() {
        let base = format!("services.{}", svc.name);
        for number in 1..=svc.replicas {
            checked += 1;
            let name = crate::spec::container_name(&desired.project, svc, number);
            let mut candidates: Vec<&ObservedContainer> = snapshot
                .containers
                .iter()
                .filter(|c| c.service == svc.name && c.number == number)
                .collect();
            // The one by its proper name first (a recreate in flight leaves another beside it).
            candidates.sort_by_key(|c| c.name != name);
            let Some(c) = candidates.first() else {
                findings.push(
                    Finding::new(
                        layer,
                        Kind::Missing,
                        &base,
                        format!(
                            "service {} has no container number {number}: run spindle apply (or spindle plan to see why)",
                            svc.name
                        ),
                    )
                    .container(&name)
                    .expected("a container"),
                );
                continue;
            };
            let at = |f: Finding| f.container(&c.name);

            if !c.is_running() && !crate::plan::completed(desired, svc, c) {
                let actual = match c.state {
                    RunState::Exited => format!("exited with code {}", c.exit_code),
                    other => format!("{other:?}").to_lowercase(),
                };
                findings.push(at(Finding::new(
                    layer,
                    Kind::Contradicted,
                    &base,
                    format!("{} is not running: run spindle apply, and read its logs (docker logs {}) if it stops again", c.name, c.name),
                )
                .expected("running")
                .actual(actual)));
            } else if c.health == Health::Unhealthy {
                findings.push(at(Finding::new(
                    layer,
                    Kind::Contradicted,
                    format!("{base}.healthcheck"),
                    format!("{} fails its healthcheck: read docker inspect {} (State.Health) and its logs", c.name, c.name),
                )
                .expected("healthy")
                .actual("unhealthy")));
            }

            if c.labels.contains_key(labels::MANAGED_BY) {
                checked += 1;
                let actual = c.spec_hash().unwrap_or_default();
                if actual != svc.spec_hash {
                    findings.push(at(Finding::new(
                        layer,
                        Kind::Contradicted,
                        format!("{base}.labels.{}", labels::SPEC_HASH),
                        "the container was created from another definition of the service: run spindle plan to see the difference, spindle apply to converge",
                    )
                    .expected(&svc.spec_hash)
                    .actual(actual)));
                }
            }
            if let Some(id) = snapshot.images.get(&svc.image) {
                checked += 1;
                if !c.image_id.is_empty() && &c.image_id != id {
                    findings.push(at(Finding::new(
                        layer,
                        Kind::Contradicted,
                        format!("{base}.image"),
                        format!("the container runs another image than {} is now: run spindle apply to recreate it", svc.image),
                    )
                    .expected(id)
                    .actual(&c.image_id)));
                }
            }

            let env = observed_env(c);
            for (key, want) in desired_env(svc) {
                checked += 1;
                let path = format!("{base}.environment.{key}");
                match env.get(&key) {
                    None => findings.push(at(Finding::new(
                        layer,
                        Kind::Missing,
                        path,
                        format!("the container has no {key} in its environment: run spindle apply to recreate it"),
                    )
                    .expected(shown(&key, &want)))),
                    Some(have) if *have != want => findings.push(at(Finding::new(
                        layer,
                        Kind::Contradicted,
                        path,
                        format!("the container's {key} differs from the desired state: run spindle apply to recreate it"),
                    )
                    .expected(shown(&key, &want))
                    .actual(shown(&key, have)))),
                    Some(_) => {}
                }
            }
            for (key, want) in desired_labels(svc) {
                checked += 1;
                let path = format!("{base}.labels.{key}");
                match c.labels.get(&key) {
                    None => findings.push(at(Finding::new(
                        layer,
                        Kind::Missing,
                        path,
                        format!("the container has no label {key}: run spindle apply to recreate it"),
                    )
                    .expected(shown(&key, &want)))),
                    Some(have) if *have != want => findings.push(at(Finding::new(
                        layer,
                        Kind::Contradicted,
                        path,
                        format!("the container's label {key} differs from the desired state: run spindle apply to recreate it"),
                    )
                    .expected(shown(&key, &want))
                    .actual(shown(&key, have)))),
                    Some(_) => {}
                }
            }
        }
    }
    // Containers of the project the desired state does not name (warnings).
    for c in &snapshot.containers {
        let wanted = desired
            .services
            .get(&c.service)
            .is_some_and(|s| c.number >= 1 && c.number <= s.replicas);
        if !wanted {
            findings.push(
                Finding::new(
                    layer,
                    Kind::Stale,
                    format!("services.{}", c.service),
                    format!(
                        "{} belongs to the project but not to the desired state: spindle apply --remove-orphans removes it",
                        c.name
                    ),
                )
                .container(&c.name)
                .actual("a container"),
            );
        }
    }
    LayerReport::new(layer, checked, findings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::typed::PullPolicy;
    use crate::observe::snapshot::LiveConfig;
    use crate::verify::Status;
    use serde_json::json;

    fn service(name: &str, model: Value) -> DesiredService {
        DesiredService {
            name: name.into(),
            image: "img:1".into(),
            spec_hash: "hash-1".into(),
            replicas: 1,
            depends_on: vec![],
            has_healthcheck: false,
            pull_policy: PullPolicy::Missing,
            container_name: None,
            on_dependency_change: None,
            pre_recreate: None,
            update: Default::default(),
            probes: Vec::new(),
            model,
        }
    }

    fn desired(services: Vec<DesiredService>) -> DesiredState {
        DesiredState {
            project: "p".into(),
            working_dir: "/d".into(),
            config_files: vec![],
            environment_files: vec![],
            revision: None,
            services: services.into_iter().map(|s| (s.name.clone(), s)).collect(),
            networks: Default::default(),
            volumes: Default::default(),
            model: Value::Null,
        }
    }

    fn container(
        service: &str,
        number: u32,
        env: &[&str],
        labels: &[(&str, &str)],
    ) -> ObservedContainer {
        let mut l: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        l.insert(labels::MANAGED_BY.into(), "spindle".into());
        l.insert(labels::SPEC_HASH.into(), "hash-1".into());
        ObservedContainer {
            id: format!("id-{service}-{number}"),
            name: format!("p-{service}-{number}"),
            service: service.into(),
            number,
            labels: l,
            state: RunState::Running,
            health: Health::None,
            exit_code: 0,
            image_id: "sha256:one".into(),
            started_at: None,
            finished_at: None,
            live: LiveConfig::default(),
            addresses: BTreeMap::new(),
            inspect: json!({"Config": {"Env": env}}),
        }
    }

    fn web() -> DesiredService {
        service(
            "web",
            json!({"environment": {"DB_HOST": "db", "DB_PASSWORD": "right-secret", "UNSET": null, "N": 1},
                   "labels": {"com.example.role": "web"}}),
        )
    }

    fn snapshot(containers: Vec<ObservedContainer>) -> Snapshot {
        Snapshot {
            project: "p".into(),
            containers,
            images: [("img:1".to_string(), "sha256:one".to_string())].into(),
            ..Snapshot::default()
        }
    }

    const GOOD_ENV: &[&str] = &["PATH=/bin", "DB_HOST=db", "DB_PASSWORD=right-secret", "N=1"];
    const GOOD_LABELS: &[(&str, &str)] = &[("com.example.role", "web")];

    fn kinds(r: &LayerReport) -> Vec<(Kind, String)> {
        r.findings
            .iter()
            .map(|f| (f.kind, f.path.clone()))
            .collect()
    }

    /// What, the containers observed, the findings expected.
    type Row = (
        &'static str,
        Vec<ObservedContainer>,
        Vec<(Kind, &'static str)>,
    );

    #[test]
    fn the_containers_table() {
        let rows: Vec<Row> = vec![
            (
                "in sync",
                vec![container("web", 1, GOOD_ENV, GOOD_LABELS)],
                vec![],
            ),
            (
                "no container",
                vec![],
                vec![(Kind::Missing, "services.web")],
            ),
            (
                "an environment key missing",
                vec![container(
                    "web",
                    1,
                    &["DB_PASSWORD=right-secret", "N=1"],
                    GOOD_LABELS,
                )],
                vec![(Kind::Missing, "services.web.environment.DB_HOST")],
            ),
            (
                "an environment value contradicted",
                vec![container(
                    "web",
                    1,
                    &["DB_HOST=db2", "DB_PASSWORD=wrong-secret", "N=1"],
                    GOOD_LABELS,
                )],
                vec![
                    (Kind::Contradicted, "services.web.environment.DB_HOST"),
                    (Kind::Contradicted, "services.web.environment.DB_PASSWORD"),
                ],
            ),
            (
                "a label missing",
                vec![container("web", 1, GOOD_ENV, &[])],
                vec![(Kind::Missing, "services.web.labels.com.example.role")],
            ),
            (
                "a label contradicted",
                vec![container("web", 1, GOOD_ENV, &[("com.example.role", "db")])],
                vec![(Kind::Contradicted, "services.web.labels.com.example.role")],
            ),
            (
                "another spec and another image",
                vec![{
                    let mut c = container("web", 1, GOOD_ENV, GOOD_LABELS);
                    c.labels.insert(labels::SPEC_HASH.into(), "hash-0".into());
                    c.image_id = "sha256:zero".into();
                    c
                }],
                vec![
                    (
                        Kind::Contradicted,
                        "services.web.labels.io.spindle.spec-hash",
                    ),
                    (Kind::Contradicted, "services.web.image"),
                ],
            ),
            (
                "stopped",
                vec![{
                    let mut c = container("web", 1, GOOD_ENV, GOOD_LABELS);
                    c.state = RunState::Exited;
                    c.exit_code = 137;
                    c
                }],
                vec![(Kind::Contradicted, "services.web")],
            ),
            (
                "unhealthy",
                vec![{
                    let mut c = container("web", 1, GOOD_ENV, GOOD_LABELS);
                    c.health = Health::Unhealthy;
                    c
                }],
                vec![(Kind::Contradicted, "services.web.healthcheck")],
            ),
            (
                "an extra container is stale",
                vec![
                    container("web", 1, GOOD_ENV, GOOD_LABELS),
                    container("web", 2, GOOD_ENV, GOOD_LABELS),
                    container("gone", 1, &[], &[]),
                ],
                vec![
                    (Kind::Stale, "services.web"),
                    (Kind::Stale, "services.gone"),
                ],
            ),
        ];
        for (what, observed, want) in rows {
            let r = containers(&desired(vec![web()]), &snapshot(observed));
            let want: Vec<(Kind, String)> = want.iter().map(|(k, p)| (*k, p.to_string())).collect();
            assert_eq!(kinds(&r), want, "{what}");
            assert_eq!(
                r.status == Status::Fail,
                want.iter().any(|(k, _)| k.fails()),
                "{what}"
            );
        }
    }

    #[test]
    fn a_secret_value_is_never_shown_even_a_wrong_one() {
        let observed = vec![container(
            "web",
            1,
            &["DB_HOST=db", "DB_PASSWORD=wrong-secret", "N=1"],
            GOOD_LABELS,
        )];
        let r = containers(&desired(vec![web()]), &snapshot(observed));
        let f = &r.findings[0];
        assert_eq!(f.expected.as_deref(), Some(REDACTED));
        assert_eq!(f.actual.as_deref(), Some(REDACTED));
        assert_eq!(f.container.as_deref(), Some("p-web-1"));
        let text = serde_json::to_string(&r).unwrap();
        assert!(
            !text.contains("right-secret") && !text.contains("wrong-secret"),
            "{text}"
        );
    }

    #[test]
    fn a_plain_value_is_shown_both_ways() {
        let observed = vec![container(
            "web",
            1,
            &["DB_HOST=db2", "DB_PASSWORD=right-secret", "N=1"],
            GOOD_LABELS,
        )];
        let r = containers(&desired(vec![web()]), &snapshot(observed));
        assert_eq!(r.findings[0].expected.as_deref(), Some("db"));
        assert_eq!(r.findings[0].actual.as_deref(), Some("db2"));
    }

    #[test]
    fn observed_secret_values_are_collected_for_redaction() {
        let s = snapshot(vec![container(
            "web",
            1,
            &["DB_PASSWORD=old-secret", "HOST=x"],
            &[],
        )]);
        assert_eq!(observed_secrets(&s), vec!["old-secret".to_string()]);
    }

    #[test]
    fn every_replica_is_checked() {
        let mut svc = web();
        svc.replicas = 2;
        let r = containers(
            &desired(vec![svc]),
            &snapshot(vec![container("web", 1, GOOD_ENV, GOOD_LABELS)]),
        );
        assert_eq!(kinds(&r), vec![(Kind::Missing, "services.web".to_string())]);
        assert_eq!(r.findings[0].container.as_deref(), Some("p-web-2"));
    }
}
