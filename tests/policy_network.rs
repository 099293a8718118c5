//! The network rule on the real engine: `network_mode: container:<another stack's container>` is blocked until allowlisted, and a project container attached out of band to a foreign network (`docker network connect`) is disconnected by `spindle apply` and by `spindle run`, the evidence saying why.

mod common;

use std::process::Output;
use std::time::Duration;

use common::{
    SpindleProcess, TestProject, assert_exit, assert_no_panic, docker, evidence_records, state_dir,
    wait_for,
};
use serde_json::Value;

const PREFIX: &str = "spindle-h-polnet";
const DEADLINE: Duration = Duration::from_secs(90);

/// A one-service stack on the test image, with `extra` appended to the service (indented 4 spaces).
fn stack(extra: &str) -> String {
    format!(
        "services:\n  web:\n    image: spindle-test/busybox:1\n    \
         command: [\"/usr/local/bin/serve\", \"8000\"]\n    init: true\n    \
         stop_grace_period: 1s\n{extra}"
    )
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Docker objects made for one test (not labelled for the project), removed on drop. Declare it
/// BEFORE the `TestProject`, so that the project's containers are gone when it runs.
struct Cleanup(Vec<Vec<String>>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for args in &self.0 {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let _ = docker(&args);
        }
    }
}

/// The networks a container is attached to, by name.
fn attached(p: &TestProject, container: &str) -> Vec<String> {
    p.inspect(container)["NetworkSettings"]["Networks"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// The disconnect results of an evidence record: `(reason, outcome)`.
fn disconnects(record: &Value) -> Vec<(String, String)> {
    record["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| common::action_verb(&r["action"]) == "disconnect_network")
        .map(|r| {
            (
                r["action"]["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                r["outcome"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn network_mode_of_another_stacks_container_blocks_apply_until_allowlisted_with_a_reason() {
    let mut cleanup = Cleanup(Vec::new());
    let p = TestProject::with_prefix(PREFIX, "container-mode", "plain");
    // Another stack's container (no project label, so not this project's).
    let foreign = format!("{}-foreign", p.name());
    cleanup
        .0
        .push(vec!["rm".into(), "-f".into(), foreign.clone()]);
    let run = docker(&[
        "run",
        "-d",
        "--init",
        "--name",
        &foreign,
        "spindle-test/busybox:1",
        "/usr/local/bin/idle",
    ]);
    assert!(run.status.success(), "docker run: {}", text(&run));
    p.write(
        "compose.yaml",
        &stack(&format!("    network_mode: \"container:{foreign}\"\n")),
    );

    let out = p.spindle(&["apply"]);
    assert_no_panic(&out, "spindle apply");
    assert_exit(&out, 1, "spindle apply of network_mode container:<foreign>");
    let all = text(&out);
    assert!(
        all.contains("policy external_network: services.web.network_mode:")
            && all.contains(&format!("container:{foreign}"))
            && all.contains("allow_network_mode"),
        "the violation is named with how to allow it:\n{all}"
    );
    assert!(p.containers().is_empty(), "nothing was created:\n{all}");
    let last = evidence_records(p.state_dir()).pop().unwrap_or(Value::Null);
    assert_eq!(last["outcome"], "blocked", "{last:#}");

    p.write(
        "spindle.yaml",
        &format!(
            "policies:\n  networks:\n    allow_network_mode:\n      - service: web\n        \
             network_mode: container:{foreign}\n        reason: the shared VPN sidecar\n"
        ),
    );
    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "spindle apply of the allowlisted network_mode");
    let web = p.container_name("web", 1);
    assert!(p.is_running(&web), "web runs:\n{}", text(&out));
    let mode = p.inspect(&web)["HostConfig"]["NetworkMode"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(mode.starts_with("container:"), "{mode}");
}

#[test]
fn a_container_attached_out_of_band_to_a_foreign_network_is_disconnected_by_apply_with_the_reason_recorded()
 {
    let mut cleanup = Cleanup(Vec::new());
    let p = TestProject::with_prefix(PREFIX, "oob-apply", "plain");
    let foreign = format!("{}-some-net", p.name());
    cleanup
        .0
        .push(vec!["network".into(), "rm".into(), foreign.clone()]);
    p.write("compose.yaml", &stack(""));
    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "the first apply");
    let web = p.container_name("web", 1);
    let id = p.id_of("web");

    let made = docker(&["network", "create", &foreign]);
    assert!(made.status.success(), "docker network create");
    let connected = docker(&["network", "connect", &foreign, &web]);
    assert!(
        connected.status.success(),
        "docker network connect: {}",
        text(&connected)
    );
    assert!(attached(&p, &web).contains(&foreign));

    let reason = format!(
        "attached out of band to network {foreign}, which the desired state does not name for service web"
    );
    let (out, plan) = p.spindle_json(&["plan", "--format", "json"]);
    assert_exit(&out, 2, "spindle plan: a change pending");
    assert_eq!(
        common::plan_actions(&plan),
        [("disconnect_network".to_string(), "web".to_string())],
        "{plan:#}"
    );
    assert_eq!(plan["actions"][0]["reason"], reason.as_str(), "{plan:#}");
    assert_eq!(plan["actions"][0]["kind"]["network"], foreign.as_str());
    let out = p.spindle(&["plan"]);
    assert!(
        text(&out).contains(&format!("disconnect-network {web} from {foreign}")),
        "{}",
        text(&out)
    );

    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "spindle apply disconnects it");
    assert!(
        !attached(&p, &web).contains(&foreign),
        "{:?}",
        attached(&p, &web)
    );
    assert_eq!(p.id_of("web"), id, "the container is kept, not recreated");
    assert!(p.is_running(&web));

    let record = evidence_records(p.state_dir()).pop().unwrap_or(Value::Null);
    assert_eq!(record["outcome"], "converged", "{record:#}");
    assert_eq!(
        disconnects(&record),
        [(reason.clone(), "ok".to_string())],
        "{record:#}"
    );
    let writes: Vec<(String, String)> = record["writes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| {
            (
                w["operation"].as_str().unwrap_or_default().to_string(),
                w["target"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        writes,
        [(
            "disconnect network".to_string(),
            format!("{web} from {foreign}")
        )],
        "one recorded engine write: {record:#}"
    );
    let out = p.spindle(&["plan"]);
    assert_exit(&out, 0, "in sync afterwards");
}

/// `http://<addr>` of the API of a `spindle run --listen 127.0.0.1:0`, read from its log.
fn api_addr(run: &mut SpindleProcess) -> String {
    wait_for("the HTTP API address in the log", DEADLINE, || {
        run.assert_alive();
        let log = run.stderr();
        let at = log.find("HTTP API listening addr=")?;
        let rest = &log[at + "HTTP API listening addr=".len()..];
        Some(rest.chars().take_while(|c| !c.is_whitespace()).collect())
    })
}

#[test]
fn spindle_run_disconnects_a_foreign_network_and_shows_policy_warnings_in_status() {
    let mut cleanup = Cleanup(Vec::new());
    let p = TestProject::with_prefix(PREFIX, "oob-run", "plain");
    let foreign = format!("{}-some-net", p.name());
    cleanup
        .0
        .push(vec!["network".into(), "rm".into(), foreign.clone()]);
    // A port on all interfaces: a warning by default, not a blocker.
    let port = std::net::TcpListener::bind("0.0.0.0:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"));
    p.write(
        "compose.yaml",
        &stack(&format!("    ports: [\"{port}:8000\"]\n")),
    );
    let state = state_dir();
    let state_arg = state.path().to_string_lossy().into_owned();
    let mut run = p.spawn_spindle(
        &[
            "run",
            "--state-dir",
            &state_arg,
            "--listen",
            "127.0.0.1:0",
            "--resync",
            "1s",
        ],
        &[],
    );
    let addr = api_addr(&mut run);
    let web = p.container_name("web", 1);
    wait_for("web running", DEADLINE, || p.is_running(&web).then_some(()));

    // `/status` (through `spindle status`) shows the warning.
    let warning = "policy port_binding: services.web.ports[0]:";
    let status = wait_for("the policy warning in /status", DEADLINE, || {
        run.assert_alive();
        let out = p.spindle(&[
            "status",
            "--api",
            &addr,
            "--state-dir",
            &state_arg,
            "--format",
            "json",
        ]);
        let doc: Value = serde_json::from_slice(&out.stdout).ok()?;
        doc["warnings"][0]
            .as_str()
            .is_some_and(|w| w.starts_with(warning))
            .then_some(doc)
    });
    assert_eq!(status["source"], "api", "{status:#}");
    let converged = evidence_records(state.path())
        .into_iter()
        .find(|r| r["outcome"] == "converged")
        .unwrap_or_else(|| panic!("a converged record"));
    assert!(
        converged["warnings"][0]
            .as_str()
            .is_some_and(|w| w.starts_with(warning)),
        "{converged:#}"
    );

    let id = p.id_of("web");
    let made = docker(&["network", "create", &foreign]);
    assert!(made.status.success(), "docker network create");
    let connected = docker(&["network", "connect", &foreign, &web]);
    assert!(
        connected.status.success(),
        "docker network connect: {}",
        text(&connected)
    );

    let reason = format!(
        "attached out of band to network {foreign}, which the desired state does not name for service web"
    );
    let record = wait_for("a record of the disconnect", DEADLINE, || {
        run.assert_alive();
        evidence_records(state.path())
            .into_iter()
            .find(|r| !disconnects(r).is_empty())
    });
    assert_eq!(
        disconnects(&record),
        [(reason, "ok".to_string())],
        "{record:#}"
    );
    assert_eq!(record["outcome"], "converged", "{record:#}");
    assert!(
        !attached(&p, &web).contains(&foreign),
        "{:?}",
        attached(&p, &web)
    );
    assert_eq!(p.id_of("web"), id, "the container is kept, not recreated");
    run.terminate(Duration::from_secs(30));
}
