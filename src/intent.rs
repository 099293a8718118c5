//! The intent record: before the first engine write of an apply, the plan's hash and its actions are appended to the evidence log; without that record nothing is changed.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::evidence::{Appended, EvidenceError, EvidenceLog, canonical_json};
use crate::plan::Plan;
use crate::redact::Redactor;

/// The `kind` of an intent record.
pub const KIND: &str = "intent";

#[derive(Debug, thiserror::Error)]
pub enum IntentError {
    #[error(
        "cannot record the intent of this apply in the evidence log {dir}, so nothing on the host was changed; free space or fix the state dir, then run again"
    )]
    Append {
        dir: String,
        #[source]
        source: EvidenceError,
    },
}

/// True when applying `plan` would write to the engine (it has actions and nothing blocks it).
pub fn writes(plan: &Plan) -> bool {
    !plan.is_empty() && plan.blockers.is_empty()
}

/// SHA-256 (hex) of the plan's canonical JSON (as `docs/evidence.md` defines it).
pub fn plan_hash(plan: &Plan) -> String {
    let v = serde_json::to_value(plan).unwrap_or(Value::Null);
    hex::encode(Sha256::digest(canonical_json(&v).as_bytes()))
}

/// The body of the intent record of `plan`.
pub fn body(plan: &Plan) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("kind".into(), KIND.into());
    m.insert(
        "at".into(),
        humantime::format_rfc3339_millis(std::time::SystemTime::now())
            .to_string()
            .into(),
    );
    m.insert("project".into(), plan.project.clone().into());
    m.insert("plan_hash".into(), plan_hash(plan).into());
    m.insert("actions".into(), json!(plan.actions));
    m
}

/// Appends the intent record of `plan` (redacted like every record); the caller applies nothing
/// when this fails.
pub fn record(
    log: &mut EvidenceLog,
    plan: &Plan,
    redactor: &Redactor,
) -> Result<Appended, IntentError> {
    log.append(body(plan), redactor)
        .map_err(|source| IntentError::Append {
            dir: log.dir().display().to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_intent_record_carries_the_plan_hash_and_its_actions_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = EvidenceLog::open(dir.path()).unwrap();
        let plan = Plan {
            project: "erp".into(),
            ..Plan::default()
        };
        let a = record(&mut log, &plan, &Redactor::default()).unwrap();
        let r = crate::evidence::show(dir.path(), &a.id).unwrap().unwrap();
        assert_eq!(r.kind(), KIND);
        assert_eq!(r.str("plan_hash"), plan_hash(&plan));
        assert_eq!(r.fields["actions"], json!([]));
        let v = crate::evidence::verify(dir.path()).unwrap();
        assert!(v.problem.is_none(), "{:?}", v.problem);
        assert_eq!(v.records, 1);
    }
}
