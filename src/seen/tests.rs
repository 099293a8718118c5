//! Table tests of the recovery rule's memory: how it advances after a reconcile, and its file.

use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use super::*;
use crate::apply::ActionResult;
use crate::plan::{Action, ContainerRef, Follow, FollowCause};

/// backend ← frontend (restart: true); db has no follower; one container each.
fn desired() -> Shape {
    Shape {
        replicas: ["db", "backend", "frontend"]
            .into_iter()
            .map(|s| (s.to_string(), 1))
            .collect(),
        followed: BTreeSet::from(["backend".to_string()]),
    }
}

fn seen(entries: &[(&str, &str, &str)]) -> LastSeen {
    LastSeen {
        slots: entries
            .iter()
            .map(|(service, id, ip)| {
                (
                    Slot::new(service, 1),
                    SeenContainer {
                        id: id.to_string(),
                        // Attached to p_default; an empty address is a stopped container.
                        addresses: BTreeMap::from([("p_default".to_string(), ip.to_string())]),
                    },
                )
            })
            .collect(),
    }
}

fn cref(service: &str) -> ContainerRef {
    ContainerRef {
        id: format!("id-{service}"),
        name: format!("p-{service}-1"),
        service: service.into(),
        number: 1,
    }
}

fn action(id: usize, kind: ActionKind, follows: bool) -> Action {
    Action {
        id,
        kind,
        reason: String::new(),
        diff: None,
        after: Vec::new(),
        follows: if follows {
            vec![Follow {
                dependency: "backend".into(),
                container: "backend-1".into(),
                cause: FollowCause::RecreatedByPlan,
            }]
        } else {
            Vec::new()
        },
    }
}

fn recreate(service: &str) -> ActionKind {
    ActionKind::Recreate {
        service: service.into(),
        number: 1,
        old: cref(service),
    }
}

/// A plan of `actions` and a report where each ended as given.
fn applied(actions: Vec<(Action, Outcome)>) -> (Plan, Report) {
    let plan = Plan {
        project: "p".into(),
        actions: actions.iter().map(|(a, _)| a.clone()).collect(),
        ..Plan::default()
    };
    let report = Report {
        project: "p".into(),
        converged: actions.iter().all(|(_, o)| *o == Outcome::Ok),
        results: actions
            .into_iter()
            .map(|(action, outcome)| ActionResult {
                action,
                outcome,
                error: None,
                started_ms: 0,
                elapsed_ms: 0,
                readiness: None,
                hook: None,
                probes: Vec::new(),
            })
            .collect(),
        writes: 0,
        write_log: Vec::new(),
        blockers: Vec::new(),
        elapsed_ms: 0,
    };
    (plan, report)
}

struct Case {
    what: &'static str,
    old: LastSeen,
    planned: LastSeen,
    actions: Vec<(Action, Outcome)>,
    now: LastSeen,
    want: LastSeen,
    pending: &'static [&'static str],
}

#[test]
fn the_memory_moves_on_only_past_changes_whose_dependents_followed() {
    let b1 = ("backend", "B1", "172.18.0.3");
    let b2 = ("backend", "B2", "172.18.0.7");
    let b1_moved = ("backend", "B1", "172.18.0.9");
    let f1 = ("frontend", "F1", "172.18.0.4");
    let f2 = ("frontend", "F2", "172.18.0.5");
    let cases = vec![
        Case {
            what: "nothing seen yet: everything is recorded, nothing is pending",
            old: LastSeen::default(),
            planned: seen(&[b2, f1]),
            actions: vec![],
            now: seen(&[b2, f1]),
            want: seen(&[b2, f1]),
            pending: &[],
        },
        Case {
            what: "nothing changed",
            old: seen(&[b1, f1]),
            planned: seen(&[b1, f1]),
            actions: vec![],
            now: seen(&[b1, f1]),
            want: seen(&[b1, f1]),
            pending: &[],
        },
        Case {
            what: "replaced out of band, seen when planning, frontend followed",
            old: seen(&[b1, f1]),
            planned: seen(&[b2, f1]),
            actions: vec![(action(0, recreate("frontend"), true), Outcome::Ok)],
            now: seen(&[b2, f2]),
            want: seen(&[b2, f2]),
            pending: &[],
        },
        Case {
            what: "replaced out of band, the follow was rolled back",
            old: seen(&[b1, f1]),
            planned: seen(&[b2, f1]),
            actions: vec![(action(0, recreate("frontend"), true), Outcome::RolledBack)],
            now: seen(&[b2, f1]),
            want: seen(&[b1, f1]),
            pending: &["backend-1"],
        },
        Case {
            what: "recreated by this plan and followed",
            old: seen(&[b1, f1]),
            planned: seen(&[b1, f1]),
            actions: vec![
                (action(0, recreate("backend"), false), Outcome::Ok),
                (action(1, recreate("frontend"), true), Outcome::Ok),
            ],
            now: seen(&[b2, f2]),
            want: seen(&[b2, f2]),
            pending: &[],
        },
        Case {
            what: "recreated by this plan, the follow skipped",
            old: seen(&[b1, f1]),
            planned: seen(&[b1, f1]),
            actions: vec![
                (action(0, recreate("backend"), false), Outcome::Ok),
                (action(1, recreate("frontend"), true), Outcome::Skipped),
            ],
            now: seen(&[b2, f1]),
            want: seen(&[b1, f1]),
            pending: &["backend-1"],
        },
        Case {
            what: "started during the apply with another address: not known when planning",
            old: seen(&[b1, f1]),
            planned: seen(&[("backend", "B1", ""), f1]),
            actions: vec![(
                action(
                    0,
                    ActionKind::Start {
                        container: cref("backend"),
                    },
                    false,
                ),
                Outcome::Ok,
            )],
            now: seen(&[b1_moved, f1]),
            want: seen(&[b1, f1]),
            pending: &["backend-1"],
        },
        Case {
            what: "stopped now: the last address is kept",
            old: seen(&[b1, f1]),
            planned: seen(&[("backend", "B1", ""), f1]),
            actions: vec![],
            now: seen(&[("backend", "B1", ""), f1]),
            want: seen(&[b1, f1]),
            pending: &[],
        },
        Case {
            what: "a service nobody follows moves on at once",
            old: seen(&[("db", "D1", "172.18.0.2")]),
            planned: seen(&[("db", "D1", "172.18.0.2")]),
            actions: vec![],
            now: seen(&[("db", "D2", "172.18.0.8")]),
            want: seen(&[("db", "D2", "172.18.0.8")]),
            pending: &[],
        },
        Case {
            what: "a slot without a container now keeps what was seen; an orphan is forgotten",
            old: seen(&[b1, f1, ("gone", "G1", "172.18.0.6")]),
            planned: seen(&[f1]),
            actions: vec![],
            now: seen(&[f1, ("gone", "G1", "172.18.0.6")]),
            want: seen(&[b1, f1]),
            pending: &[],
        },
    ];
    let d = desired();
    for c in cases {
        let (plan, report) = applied(c.actions);
        let got = advance(&c.old, &d, &c.planned, &plan, &report, &c.now);
        assert_eq!(got.seen, c.want, "{}", c.what);
        let pending: Vec<String> = got.pending.iter().map(Slot::label).collect();
        assert_eq!(pending, c.pending, "{}", c.what);
    }
}

#[test]
fn slots_above_the_scale_are_forgotten() {
    let d = desired();
    let mut now = seen(&[("backend", "B1", "")]);
    now.slots.insert(
        Slot::new("backend", 2),
        SeenContainer {
            id: "B2".into(),
            addresses: BTreeMap::new(),
        },
    );
    let (plan, report) = applied(vec![]);
    let got = advance(&LastSeen::default(), &d, &now, &plan, &report, &now);
    assert_eq!(got.seen, seen(&[("backend", "B1", "")]));
}

#[test]
fn the_file_round_trips_and_is_written_0600() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = path(dir.path(), "erp");
    assert_eq!(
        path.file_name().and_then(|n| n.to_str()),
        Some("last-seen-erp.json")
    );
    let memory = seen(&[("backend", "B1", "172.18.0.3"), ("frontend", "F1", "")]);
    save(&path, "erp", &memory).expect("the file is written");
    let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode.ok(), Some(0o600));
    assert_eq!(load(&path, "erp").ok(), Some(memory.clone()));
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["project"], "erp");
    assert_eq!(
        doc["containers"][0],
        json!({"service": "backend", "number": 1, "id": "B1", "addresses": {"p_default": "172.18.0.3"}})
    );
    // Written again (changed), it stays 0600 and leaves no temporary behind.
    save(&path, "erp", &seen(&[("backend", "B2", "")])).expect("rewritten");
    let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode.ok(), Some(0o600));
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .map(|r| {
            r.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(names, vec!["last-seen-erp.json".to_string()]);
}

#[test]
fn a_missing_file_is_nothing_seen_and_a_corrupt_one_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = path(dir.path(), "erp");
    assert_eq!(load(&path, "erp").ok(), Some(LastSeen::default()));
    let bad = [
        (
            "{\"version\": 1, \"project\": \"erp\", \"containers\": [",
            "EOF",
        ),
        ("[]", "invalid length"),
        (
            "{\"version\": 2, \"project\": \"erp\", \"containers\": []}",
            "version 2, this spindle reads 1",
        ),
        (
            "{\"version\": 1, \"project\": \"crm\", \"containers\": []}",
            "it is project crm's",
        ),
        (
            "{\"version\": 1, \"project\": \"erp\", \"containers\": [{\"service\": \"a\", \"number\": \"x\", \"id\": \"i\"}]}",
            "invalid type",
        ),
    ];
    for (text, says) in bad {
        std::fs::write(&path, text).expect("written");
        let err = load(&path, "erp")
            .err()
            .map(|e| e.chain())
            .unwrap_or_default();
        assert!(
            err.contains(&path.display().to_string())
                && err.contains("not a last-seen file of project erp")
                && err.contains(says),
            "{text}: {err}"
        );
    }
}
