//! `spindle status` against an API that is not the spindle it expects.

use super::*;

// --- spindle status ------------------------------------------------------------------------------------------------------

#[test]
fn spindle_status_refuses_a_spindle_that_serves_another_project_or_state_dir() {
    let p = TestProject::with_prefix(PREFIX, "whoami", "heal");
    let state = state_dir();
    let st = state.path().to_string_lossy().into_owned();
    let canonical = std::fs::canonicalize(state.path()).unwrap();
    let other = state_dir();
    let doc = |project: &str, dir: &Path| {
        serde_json::json!({
            "project": project, "state_dir": dir, "source": "api",
            "pause": {"state": "running"}, "services": null, "warnings": [],
        })
    };
    for (what, answer) in [
        ("another project", doc("someone-else", &canonical)),
        ("another state dir", doc(p.name(), other.path())),
        (
            "no state dir",
            serde_json::json!({"project": p.name(), "services": null}),
        ),
    ] {
        let api = common::fake_json_api(answer).to_string();
        let out = p.spindle(&["status", "--api", &api, "--state-dir", &st]);
        assert_exit(&out, 1, what);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&api)
                && err.contains("is not this project's")
                && err.contains("--state-dir"),
            "{what}: {err}"
        );
        assert!(
            out.stdout.is_empty(),
            "{what}: nothing of the other spindle is printed"
        );
    }
    // The spindle it expects.
    let api = common::fake_json_api(doc(p.name(), &canonical)).to_string();
    let out = p.spindle(&["status", "--api", &api, "--state-dir", &st]);
    assert_exit(&out, 0, "the expected spindle");
    assert!(String::from_utf8_lossy(&out.stdout).contains("from the spindle API"));
}

#[test]
fn status_and_version_name_the_project_and_the_canonical_state_dir() {
    let p = TestProject::with_prefix(PREFIX, "identity", "heal");
    let state = state_dir();
    let mut run = spawn(&p, state.path(), &[], &[NO_ENGINE]);
    let port = api_port(&mut run);
    let canonical = std::fs::canonicalize(state.path()).unwrap();
    for path in ["/status", "/version"] {
        let (code, body) = get(port, path, None);
        assert_eq!(code, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["project"], p.name(), "{path}: {v}");
        assert_eq!(
            v["state_dir"],
            canonical.to_string_lossy().as_ref(),
            "{path}: {v}"
        );
    }
}
