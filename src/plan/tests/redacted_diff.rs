//! Planner tests of the diff's redaction: the running side comes from a label an older spindle wrote, and is redacted again.

use super::*;

#[test]
fn a_secret_left_raw_in_an_old_spec_label_is_redacted_in_the_diff() {
    let d = erp();
    let mut o = converged(&d);
    let backend = o
        .containers
        .iter_mut()
        .find(|c| c.service == "backend")
        .expect("a backend container");
    // Written by a spindle whose word list or secrets did not cover these values.
    backend.labels.insert(
        labels::SPEC.to_string(),
        json!({"image": "img/backend:0", "environment": {"DB_PASSWORD": "old-raw-secret-1", "NOTE": "known-secret-22"}})
            .to_string(),
    );
    backend
        .labels
        .insert(labels::SPEC_HASH.to_string(), "older".to_string());
    let opts = PlanOptions {
        redactor: Redactor::new(["known-secret-22".to_string()]),
        ..PlanOptions::default()
    };
    let p = plan(&d, &o, &opts);
    let diff = p
        .actions
        .iter()
        .find_map(|a| a.diff.clone())
        .expect("the recreate of backend shows a diff");
    assert!(diff.contains("\"DB_PASSWORD\": \"<redacted>\""), "{diff}");
    assert!(!diff.contains("old-raw-secret-1"), "{diff}");
    assert!(!diff.contains("known-secret-22"), "{diff}");
}
