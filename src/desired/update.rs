//! `deploy.update_config` of a service: the typed settings that say how its containers are replaced, and the refusal of a `start-first` service that cannot run two containers at once.

use std::time::Duration;

use serde::Serialize;

use super::tree::Tree;

/// How a service's containers are replaced when their spec changes (see docs/updates.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UpdateConfig {
    pub order: UpdateOrder,
    pub failure_action: FailureAction,
    /// How long a new container must stay ready after the switch before the update counts as done
    /// and the old container is removed (0: done as soon as the gate passes).
    pub monitor: Duration,
    /// The wait between the end of one replica's update and the start of the next replica's.
    pub delay: Duration,
    /// How many replicas of the service are updated at once; 0 means all of them.
    pub parallelism: u32,
}

impl Default for UpdateConfig {
    /// spindle's behaviour without `update_config`: stop-first, a failed replica is rolled back,
    /// no monitor, no delay, every replica at once.
    fn default() -> Self {
        Self {
            order: UpdateOrder::StopFirst,
            failure_action: FailureAction::Rollback,
            monitor: Duration::ZERO,
            delay: Duration::ZERO,
            parallelism: 0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    /// Stop the old container, then start the new one (Compose's and spindle's default).
    StopFirst,
    /// Start the new container beside the old one; stop the old one once the new one is ready.
    StartFirst,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureAction {
    /// The failed replica is put back and the service's remaining replicas are not updated.
    Rollback,
    /// Like `rollback` on one host: the failed replica is put back and the update stops.
    Pause,
    /// The failed replica is put back and the other replicas are still updated.
    Continue,
}

impl FailureAction {
    /// Whether a failed replica stops the update of the service's other replicas.
    pub fn stops_update(self) -> bool {
        self != Self::Continue
    }

    pub fn word(self) -> &'static str {
        match self {
            Self::Rollback => "rollback",
            Self::Pause => "pause",
            Self::Continue => "continue",
        }
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// A setting spindle cannot honour as written.
    #[error("deploy.update_config.{key}: {message}")]
    Invalid { key: &'static str, message: String },
    /// `order: start-first` on a service that cannot run two containers at once.
    #[error(
        "deploy.update_config.order: start-first runs the new container beside the old one, but {why}; {fix}, or use order: stop-first"
    )]
    TwoContainersImpossible { why: String, fix: String },
}

fn duration(cfg: &Tree, key: &'static str) -> Result<Duration, UpdateError> {
    let Some(v) = cfg.get(key) else {
        return Ok(Duration::ZERO);
    };
    match crate::spec::units::duration_value(v) {
        Some(ns) if ns >= 0 => Ok(Duration::from_nanos(ns.unsigned_abs())),
        _ => Err(UpdateError::Invalid {
            key,
            message: format!("{v} is not a duration of zero or more; write it like 10s or 1m30s"),
        }),
    }
}

/// Reads `deploy.update_config` of a normalized service, and refuses `order: start-first` where
/// two containers of the service cannot run at once.
pub fn parse(service: &Tree) -> Result<UpdateConfig, UpdateError> {
    let Some(cfg) = service.get("deploy").and_then(|d| d.get("update_config")) else {
        return Ok(UpdateConfig::default());
    };
    let order = match cfg.get("order").and_then(Tree::as_str) {
        None | Some("stop-first") => UpdateOrder::StopFirst,
        Some("start-first") => UpdateOrder::StartFirst,
        Some(_) => {
            return Err(UpdateError::Invalid {
                key: "order",
                message: "is not an order; write start-first or stop-first".into(),
            });
        }
    };
    let failure_action = match cfg.get("failure_action").and_then(Tree::as_str) {
        None | Some("rollback") => FailureAction::Rollback,
        Some("pause") => FailureAction::Pause,
        Some("continue") => FailureAction::Continue,
        Some(_) => {
            return Err(UpdateError::Invalid {
                key: "failure_action",
                message: "is not a failure action; write rollback, pause or continue".into(),
            });
        }
    };
    let parallelism = match cfg.get("parallelism") {
        None => 0,
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| UpdateError::Invalid {
                key: "parallelism",
                message: format!("{v} is not a number of replicas (0 means all at once)"),
            })?,
    };
    let update = UpdateConfig {
        order,
        failure_action,
        monitor: duration(cfg, "monitor")?,
        delay: duration(cfg, "delay")?,
        parallelism,
    };
    if order == UpdateOrder::StartFirst {
        two_containers_possible(service)?;
    }
    Ok(update)
}

/// Fails when a second container of the service would collide with the first: one fixed
/// container name, a fixed published host port, or a fixed IP or MAC address.
fn two_containers_possible(service: &Tree) -> Result<(), UpdateError> {
    if let Some(name) = service.get("container_name").and_then(Tree::as_str) {
        return Err(UpdateError::TwoContainersImpossible {
            why: format!("container_name {name:?} gives the service one fixed container name"),
            fix: "remove container_name (spindle then names containers <project>-<service>-<n>)"
                .into(),
        });
    }
    for (i, p) in service
        .get("ports")
        .and_then(Tree::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let published = match p.get("published") {
            Some(Tree::String(s)) => s.clone(),
            Some(Tree::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        // A range (8000-8010) leaves the engine room for a second container; one port does not.
        if !published.is_empty() && !published.contains('-') {
            return Err(UpdateError::TwoContainersImpossible {
                why: format!("ports[{i}] publishes the fixed host port {published}, which only one container can hold"),
                fix: "drop the published port (reach the service through its network alias), or publish a range such as 8080-8081".into(),
            });
        }
    }
    if let Some(mac) = service.get("mac_address").and_then(Tree::as_str) {
        return Err(UpdateError::TwoContainersImpossible {
            why: format!(
                "mac_address {mac} gives the container a fixed MAC address, which two containers on one network cannot share"
            ),
            fix: "remove mac_address".into(),
        });
    }
    if let Some(nets) = service.get("networks").and_then(Tree::as_object) {
        for (net, cfg) in nets {
            for key in ["ipv4_address", "ipv6_address", "mac_address"] {
                if let Some(ip) = cfg.get(key).and_then(Tree::as_str) {
                    return Err(UpdateError::TwoContainersImpossible {
                        why: format!(
                            "networks.{net}.{key} gives the container the fixed address {ip}, which only one container can hold"
                        ),
                        fix: format!("remove networks.{net}.{key}"),
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(service: Tree) -> Result<UpdateConfig, UpdateError> {
        parse(&service)
    }

    #[test]
    fn a_service_without_update_config_updates_stop_first_with_rollback_and_no_waits() {
        assert_eq!(parsed(json!({"image": "x"})), Ok(UpdateConfig::default()));
        assert_eq!(UpdateConfig::default().order, UpdateOrder::StopFirst);
    }

    #[test]
    fn every_update_config_key_is_read_from_the_normalized_model() {
        let cfg = parsed(json!({"deploy": {"update_config": {
            "order": "start-first", "failure_action": "continue", "monitor": "1m30s",
            "delay": "500ms", "parallelism": 2, "max_failure_ratio": 0.5
        }}}));
        assert_eq!(
            cfg,
            Ok(UpdateConfig {
                order: UpdateOrder::StartFirst,
                failure_action: FailureAction::Continue,
                monitor: Duration::from_secs(90),
                delay: Duration::from_millis(500),
                parallelism: 2,
            })
        );
    }

    #[test]
    fn settings_spindle_cannot_honour_name_their_key() {
        let table = [
            (
                json!({"order": "sideways"}),
                "deploy.update_config.order: is not an order",
            ),
            (
                json!({"failure_action": "retry"}),
                "deploy.update_config.failure_action: is not a failure action",
            ),
            (json!({"monitor": "-1s"}), "deploy.update_config.monitor: "),
            (json!({"delay": "soon"}), "deploy.update_config.delay: "),
            (
                json!({"parallelism": -1}),
                "deploy.update_config.parallelism: ",
            ),
        ];
        for (cfg, want) in table {
            let e = parsed(json!({"deploy": {"update_config": cfg}})).unwrap_err();
            assert!(e.to_string().starts_with(want), "{cfg}: {e}");
        }
    }

    #[test]
    fn start_first_is_refused_where_two_containers_cannot_run_at_once() {
        let sf = json!({"order": "start-first"});
        let table = [
            (json!({"container_name": "web"}), "container_name \"web\""),
            (
                json!({"ports": [{"target": 80, "published": "8080", "protocol": "tcp"}]}),
                "ports[0] publishes the fixed host port 8080",
            ),
            (
                json!({"networks": {"front": {"ipv4_address": "10.5.0.5"}}}),
                "networks.front.ipv4_address",
            ),
            (
                json!({"mac_address": "02:42:ac:11:00:02"}),
                "mac_address 02:42:ac:11:00:02",
            ),
            (
                json!({"networks": {"front": {"mac_address": "02:42:ac:11:00:03"}}}),
                "networks.front.mac_address",
            ),
        ];
        for (mut svc, want) in table {
            svc["deploy"] = json!({"update_config": sf.clone()});
            let e = parsed(svc.clone()).unwrap_err().to_string();
            assert!(
                e.starts_with("deploy.update_config.order: start-first"),
                "{e}"
            );
            assert!(
                e.contains(want) && e.contains("or use order: stop-first"),
                "{svc}: {e}"
            );
        }
    }

    #[test]
    fn start_first_accepts_ephemeral_and_ranged_ports_and_stop_first_accepts_everything() {
        let ports =
            json!([{"target": 80, "protocol": "tcp"}, {"target": 81, "published": "9000-9001"}]);
        let ok = json!({"ports": ports, "deploy": {"update_config": {"order": "start-first"}}});
        assert_eq!(parsed(ok).map(|c| c.order), Ok(UpdateOrder::StartFirst));
        let fixed = json!({
            "container_name": "web",
            "ports": [{"target": 80, "published": "8080"}],
            "deploy": {"update_config": {"order": "stop-first"}}
        });
        assert_eq!(parsed(fixed).map(|c| c.order), Ok(UpdateOrder::StopFirst));
    }
}
