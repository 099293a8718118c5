//! Probes in the apply health gate (`gates:` in `spindle.yaml`) against the real engine: a passing probe lets a create through, a failing one rolls a recreate back, an unknown service is refused at load.
//!
//! Each test owns one compose project (`spindle-h-gate-…`) with one busybox httpd service published on a
//! free loopback port; `init: true` and a 1 s stop grace keep the stacks quick to stop.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::{TestProject, apply_results, assert_exit, assert_no_panic};
use serde_json::Value;

const PREFIX: &str = "spindle-h-gate";

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local address").port()
}

/// One httpd service `web` serving `dir` on a published loopback port, gated by an HTTP probe of /health.
fn stack(test: &str, port: u16, gates: &str) -> TestProject {
    let p = TestProject::with_prefix(PREFIX, test, "plain");
    p.write("compose.yaml", &compose(port, "/var/www"));
    p.write(
        "spindle.yaml",
        &format!(
            "probes:\n  - name: web-health\n    gates: {gates}\n    http:\n      url: http://127.0.0.1:{port}/health\n      \
             body_contains: ok\n      timeout: 1s\n  - name: verify-only\n    tcp: {{host: 127.0.0.1, port: {port}}}\n"
        ),
    );
    p
}

fn compose(port: u16, dir: &str) -> String {
    format!(
        "services:\n  web:\n    image: spindle-test/busybox:1\n    command: [\"/usr/local/bin/serve\", \"8000\", \"{dir}\"]\n    \
         init: true\n    stop_grace_period: 1s\n    ports:\n      - \"127.0.0.1:{port}:8000\"\n"
    )
}

/// The result of the action on `web` whose verb is `verb`.
fn result<'a>(json: &'a Value, verb: &str) -> &'a Value {
    json["results"]
        .as_array()
        .and_then(|rs| {
            rs.iter().find(|r| {
                r["action"]["kind"]["kind"] == verb
                    && common::action_service(&r["action"]) == Some("web")
            })
        })
        .unwrap_or_else(|| panic!("no {verb} result for web: {json:#}"))
}

#[test]
fn a_service_whose_gating_probe_passes_is_applied_and_the_result_records_the_probe() {
    let port = free_port();
    let p = stack("probe_passes", port, "web");
    let (out, json) = p.spindle_json(&["apply", "--timeout", "30s", "--format", "json"]);
    assert_exit(&out, 0, "spindle apply with a passing gating probe");
    assert_eq!(json["converged"], true, "{json:#}");
    let create = result(&json, "create");
    assert_eq!(create["outcome"], "ok", "{json:#}");
    let probes = create["probes"].as_array().expect("the gating probes");
    assert_eq!(probes.len(), 1, "only the gating probe gates: {json:#}");
    assert_eq!(probes[0]["name"], "web-health");
    assert_eq!(probes[0]["ok"], true);
    assert!(probes[0]["elapsed_ms"].is_u64(), "{json:#}");
    let detail = probes[0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!("GET http://127.0.0.1:{port}/health")),
        "{detail}"
    );
    assert!(p.inspect(&p.container_name("web", 1))["State"]["Running"] == true);
}

#[test]
fn a_recreate_whose_new_container_never_passes_its_gating_probe_is_rolled_back() {
    let port = free_port();
    let p = stack("probe_fails", port, "web");
    let out = p.spindle(&["apply", "--timeout", "30s"]);
    assert_exit(&out, 0, "the first apply");
    let before = p.ids();

    // The new version serves another folder: /health answers 404.
    p.write("compose.yaml", &compose(port, "/etc"));
    let (out, json) = p.spindle_json(&["apply", "--timeout", "6s", "--format", "json"]);
    assert_exit(&out, 1, "spindle apply whose gating probe never passes");
    assert_no_panic(&out, "spindle apply");
    assert_eq!(json["converged"], false, "{json:#}");
    assert!(
        apply_results(&json)
            .iter()
            .any(|(verb, service, outcome)| verb == "recreate"
                && service == "web"
                && outcome == "rolled_back"),
        "{json:#}"
    );
    let recreate = result(&json, "recreate");
    let error = recreate["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("probe web-health") && error.contains("http_status"),
        "the failure names the probe and its class: {error}"
    );
    let probes = recreate["probes"].as_array().expect("the probe outcomes");
    assert_eq!(probes[0]["name"], "web-health");
    assert_eq!(probes[0]["ok"], false);
    assert_eq!(probes[0]["class"], "http_status");

    // The old container is back, same ID, running, and serving through the published port again.
    assert_eq!(
        p.ids(),
        before,
        "the same container as before the failed apply"
    );
    let web = p.container_name("web", 1);
    assert_eq!(p.inspect(&web)["State"]["Running"], true);
    let served = common::wait_for(
        "the old web serving /health",
        Duration::from_secs(30),
        || {
            let out = p.docker(&[
                "exec",
                &web,
                "wget",
                "-q",
                "-O-",
                "http://127.0.0.1:8000/health",
            ]);
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        },
    );
    assert_eq!(served, "ok");
}

#[test]
fn a_probe_that_gates_an_unknown_service_is_refused_at_load_and_nothing_is_created() {
    let p = stack("probe_unknown_service", free_port(), "nope");
    let out = p.spindle(&["apply"]);
    assert_exit(
        &out,
        1,
        "spindle apply with a probe gating an unknown service",
    );
    assert_no_panic(&out, "spindle apply");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("spindle.yaml")
            && stderr.contains("probes[0].gates")
            && stderr.contains("\"nope\""),
        "{stderr}"
    );
    assert!(p.containers().is_empty(), "nothing was created");
    assert!(p.networks().is_empty(), "no network was created");
}
