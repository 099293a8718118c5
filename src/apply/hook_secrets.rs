//! The secrets of the container an `exec` hook runs in, so that its output is redacted of them too.
//!
//! An `exec` hook runs in the old container, whose environment may hold values the desired state no longer has (a
//! rotated password): the redactor built from today's secrets would let them through. They are read from the
//! container itself: the values of its secret-like keys, and of the keys its `io.spindle.spec` label shows as
//! `<redacted>` (the ones spindle knew to be secret when it created the container, whatever their name).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::redact::{self, REDACTED};

/// Secret values of a container's `KEY=value` environment, given its `io.spindle.spec` label (if any).
pub fn old_secret_values(env: &[String], spec_label: Option<&str>) -> Vec<String> {
    let redacted_keys: BTreeSet<String> = spec_label
        .and_then(|l| serde_json::from_str::<Value>(l).ok())
        .and_then(|spec| spec.get("environment").and_then(Value::as_object).cloned())
        .map(|env| {
            env.into_iter()
                .filter(|(_, v)| v.as_str() == Some(REDACTED))
                .map(|(k, _)| k)
                .collect()
        })
        .unwrap_or_default();
    env.iter()
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, v)| !v.is_empty() && (redact::is_secret_key(k) || redacted_keys.contains(*k)))
        .map(|(_, v)| v.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_containers_secret_keys_and_the_keys_its_label_redacted_give_its_secrets() {
        let env = [
            "DB_PASSWORD=old-pass-1".to_string(),
            "APP_SETTING=old-token-2".to_string(),
            "TZ=UTC".to_string(),
            "API_TOKEN=".to_string(),
        ];
        let label = r#"{"environment": {"APP_SETTING": "<redacted>", "DB_PASSWORD": "<redacted>", "TZ": "UTC"}}"#;
        assert_eq!(
            old_secret_values(&env, Some(label)),
            ["old-pass-1", "old-token-2"]
        );
        // Without a label (a container Compose created), the key names alone decide.
        assert_eq!(old_secret_values(&env, None), ["old-pass-1"]);
        assert_eq!(old_secret_values(&env, Some("not json")), ["old-pass-1"]);
    }
}
