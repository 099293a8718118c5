//! The spec hash: a stable fingerprint of everything in a service that needs a new container when it changes.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::tree::Tree;

/// Service keys left out of the spec hash, and why:
/// - `scale`, `deploy.replicas`: the number of containers, not their shape;
/// - `depends_on`, `profiles`, `pull_policy`, `build`, `develop`: how and when spindle acts, not what runs;
/// - live-updatable limits (see [`LIVE_KEYS`]): applied in place, without a recreate;
/// - `deploy.update_config`, `deploy.rollback_config`: how a container is replaced, not what runs
///   (a new `order` applies to the next recreate and does not cause one).
pub const EXCLUDED_KEYS: &[&str] = &[
    "scale",
    "depends_on",
    "profiles",
    "pull_policy",
    "build",
    "develop",
];

/// Settings Docker can change on a running container (`docker update`); compared separately.
pub const LIVE_KEYS: &[&str] = &[
    "cpus",
    "cpu_shares",
    "cpu_quota",
    "cpu_period",
    "cpuset",
    "mem_limit",
    "mem_reservation",
    "memswap_limit",
    "pids_limit",
    "restart",
];

/// The spec hash of every service of an emitted model.
pub fn service_hashes(model: &Tree) -> BTreeMap<String, String> {
    model
        .get("services")
        .and_then(Tree::as_object)
        .map(|services| {
            services
                .iter()
                .map(|(name, s)| (name.clone(), spec_hash(s)))
                .collect()
        })
        .unwrap_or_default()
}

/// SHA-256 over the canonical JSON (sorted keys) of the service without the excluded keys.
pub fn spec_hash(service: &Tree) -> String {
    let mut s = service.clone();
    if let Tree::Object(m) = &mut s {
        for k in EXCLUDED_KEYS.iter().chain(LIVE_KEYS) {
            m.remove(*k);
        }
        if let Some(Tree::Object(deploy)) = m.get_mut("deploy") {
            deploy.remove("replicas");
            deploy.remove("resources");
            deploy.remove("restart_policy");
            deploy.remove("update_config");
            deploy.remove("rollback_config");
            // Compose adds an empty `placement` to any `deploy`; it has no effect on one host,
            // so a resource-only `deploy` (a profile's limits) leaves the hash alone.
            if deploy
                .get("placement")
                .is_some_and(|p| p.as_object().is_some_and(|o| o.is_empty()))
            {
                deploy.remove("placement");
            }
            if deploy.is_empty() {
                m.remove("deploy");
            }
        }
    }
    let mut text = String::new();
    canonical_json(&s, &mut text);
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// JSON with object keys sorted, so that key order never changes the hash.
pub fn canonical_json(v: &Tree, out: &mut String) {
    match v {
        Tree::Object(m) => {
            let sorted: BTreeMap<&String, &Tree> = m.iter().collect();
            out.push('{');
            for (i, (k, v)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Tree::String(k.clone()).to_string());
                out.push(':');
                canonical_json(v, out);
            }
            out.push('}');
        }
        Tree::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_change_the_hash() {
        let a = json!({"image": "x", "environment": {"A": "1", "B": "2"}});
        let b = json!({"environment": {"B": "2", "A": "1"}, "image": "x"});
        assert_eq!(spec_hash(&a), spec_hash(&b));
    }

    #[test]
    fn scale_and_live_limits_do_not_change_the_hash_but_the_image_does() {
        let a = json!({"image": "x", "scale": 1, "cpus": 0.5, "deploy": {"replicas": 1}});
        let b = json!({"image": "x", "scale": 3, "cpus": 1.0});
        assert_eq!(spec_hash(&a), spec_hash(&b));
        assert_ne!(spec_hash(&a), spec_hash(&json!({"image": "y"})));
    }

    #[test]
    fn resource_limits_under_deploy_do_not_change_the_hash() {
        let a = json!({"image": "x"});
        let b = json!({"image": "x", "deploy": {"placement": {}, "resources": {"limits": {"cpus": 0.5}}}});
        assert_eq!(spec_hash(&a), spec_hash(&b));
        let c = json!({"image": "x", "deploy": {"placement": {"constraints": ["a"]}}});
        assert_ne!(spec_hash(&a), spec_hash(&c));
    }

    #[test]
    fn the_update_order_and_its_settings_do_not_change_the_hash() {
        let a = json!({"image": "x", "deploy": {"placement": {}}});
        let b = json!({"image": "x", "deploy": {"placement": {}, "update_config": {"order": "start-first", "monitor": "5s"}, "rollback_config": {"parallelism": 1}}});
        assert_eq!(spec_hash(&a), spec_hash(&b));
    }

    proptest! {
        #[test]
        fn the_hash_is_64_hex_digits_for_any_environment(k in "[A-Z_]{1,8}", v in ".*") {
            let h = spec_hash(&json!({"environment": {k: v}}));
            prop_assert_eq!(h.len(), 64);
            prop_assert!(h.chars().all(|c| c.is_ascii_hexdigit()));
        }
    }
}
