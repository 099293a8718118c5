//! The sample stack's `low-cpu` profile is resource-only: switching to it is planned as in-place updates.

use std::path::PathBuf;

use crate::desired::typed::DesiredState;
use crate::desired::{Request, load};
use crate::spec::{live_config, live_differences, live_update_possible};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sample(profiles: &[&str]) -> DesiredState {
    let req = Request {
        desired_state: Some(root().join("desired-state")),
        env_files: vec![root().join("src/spec/fixtures/sample.env")],
        project_name: Some("spindle-h-profile-sample".into()),
        profiles: profiles.iter().map(|p| p.to_string()).collect(),
        cwd: root(),
        ..Request::default()
    };
    let p = load(&req).unwrap_or_else(|e| panic!("the sample loads: {e}"));
    DesiredState::from_project(&p, None).unwrap_or_else(|e| panic!("typed view: {e}"))
}

#[test]
fn switching_the_sample_to_low_cpu_changes_only_live_settings() {
    let base = sample(&[]);
    let low = sample(&["low-cpu"]);
    let mut updated = Vec::new();
    for (name, b) in &base.services {
        let l = &low.services[name];
        // Same spec hash: the planner never recreates for the switch.
        assert_eq!(
            b.spec_hash, l.spec_hash,
            "{name}: low-cpu changes more than resources"
        );
        let before = live_config(b).unwrap_or_default();
        let after = live_config(l).unwrap_or_default();
        if !live_differences(&after, &before).is_empty() {
            assert!(
                live_update_possible(&before, &after),
                "{name}: docker update cannot apply {:?}",
                live_differences(&after, &before)
            );
            updated.push(name.clone());
        }
    }
    // Every service that runs gets a cap (db-console is in the `debug` Compose profile only).
    let want: Vec<String> = low.services.keys().cloned().collect();
    assert_eq!(updated, want);
}
