//! The HTTP API of `spindle run` against the real Docker engine: health, readiness, auth, metrics, version, status, evidence, pause/resume, and `spindle status` (issue 5, points 6 and 7).
//!
//! Each test owns one compose project (`spindle-h-api-…`) and state dir, runs `spindle run --listen 127.0.0.1:0`
//! (the bound address is read from its log) and talks to it with reqwest. Everything is polled with generous
//! deadlines; nothing asserts a latency.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{SpindleProcess, TestProject, evidence_records, state_dir, wait_for};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(60);
const PREFIX: &str = "spindle-h-api";

/// One service that becomes healthy about 4 s after it starts, so the first reconcile takes a while.
const SLOW_STACK: &str = r#"
services:
  slow:
    image: spindle-test/busybox:1
    command: ["sh", "-c", "sleep 4; touch /tmp/ready; exec /usr/local/bin/idle"]
    init: true
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 1s
      timeout: 1s
      retries: 3
      start_period: 30s
"#;

// --- helpers -----------------------------------------------------------------------------------------------------

/// `(status, body)` of one request; `token` goes in `Authorization: Bearer`.
fn http(method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("a client");
        let mut req = match method {
            "POST" => client.post(url),
            _ => client.get(url),
        };
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    })
}

fn get(base: &str, path: &str) -> (u16, String) {
    http("GET", &format!("{base}{path}"), None, None)
}

fn get_json(base: &str, path: &str) -> (u16, Value) {
    let (code, body) = get(base, path);
    let json = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("GET {path} answered {code} with no JSON ({e}): {body}"));
    (code, json)
}

fn post(base: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, Value) {
    let (code, text) = http("POST", &format!("{base}{path}"), token, body);
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (code, json)
}

/// `http://<addr>` of the API, read from the process's log.
fn api_base(run: &mut SpindleProcess) -> String {
    wait_for("the HTTP API address in the log", DEADLINE, || {
        run.assert_alive();
        let log = run.stderr();
        let at = log.find("HTTP API listening addr=")?;
        let rest = &log[at + "HTTP API listening addr=".len()..];
        let addr: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
        Some(format!("http://{addr}"))
    })
}

fn spawn(p: &TestProject, state: &Path, env: &[(&str, &str)]) -> SpindleProcess {
    let state = state.to_string_lossy().into_owned();
    p.spawn_spindle(
        &["run", "--state-dir", &state, "--listen", "127.0.0.1:0"],
        env,
    )
}

/// Waits until `/readyz` answers 200.
fn wait_ready(run: &mut SpindleProcess, base: &str) {
    wait_for("GET /readyz to answer 200", DEADLINE, || {
        run.assert_alive();
        (get(base, "/readyz").0 == 200).then_some(())
    });
}

/// `spindle token create --state-dir <state>`: the token printed on stdout.
fn create_token(p: &TestProject, state: &Path, name: &str) -> String {
    let state = state.to_string_lossy().into_owned();
    let out = p.spindle(&["token", "create", "--state-dir", &state, "--name", name]);
    common::assert_exit(&out, 0, "spindle token create");
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(token.starts_with("spd_"), "{token}");
    token
}

/// The condition `kind` of `service` in a `/status` document: `(status, reason)`.
fn condition(doc: &Value, service: &str, kind: &str) -> (String, String) {
    let c = doc["services"][service]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
        .unwrap_or_else(|| panic!("no {kind} condition for {service} in {doc:#}"));
    assert!(
        c["lastTransitionTime"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{c}"
    );
    (
        c["status"].as_str().unwrap_or_default().to_string(),
        c["reason"].as_str().unwrap_or_default().to_string(),
    )
}

fn tf(status: &str, reason: &str) -> (String, String) {
    (status.to_string(), reason.to_string())
}

/// The id (`tok-…`) of the first token in `<state>/api-tokens.json`.
fn first_token_id(state: &Path) -> String {
    let tokens: Value = serde_json::from_str(
        &std::fs::read_to_string(state.join("api-tokens.json")).expect("the token file"),
    )
    .expect("token JSON");
    tokens[0]["id"].as_str().expect("a token id").to_string()
}

/// The value of the sample `name` (with `label`, when given) in a Prometheus text scrape.
fn metric(text: &str, name: &str, label: Option<(&str, &str)>) -> Option<f64> {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("the metrics parse");
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .find_map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some(v),
            _ => None,
        })
}

// --- tests -------------------------------------------------------------------------------------------------------

#[test]
fn readyz_is_503_until_the_first_reconcile_has_finished_and_200_after() {
    let p = TestProject::with_prefix(PREFIX, "readyz", "heal");
    p.write("compose.yaml", SLOW_STACK);
    let state = state_dir();
    let mut run = spawn(&p, state.path(), &[]);
    let base = api_base(&mut run);
    let (code, body) = get_json(&base, "/healthz");
    assert_eq!(code, 200, "{body}");
    // The first reconcile waits about 4 s for `slow` to become healthy.
    let (code, body) = get_json(&base, "/readyz");
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["ready"], false);
    assert!(
        body["reason"]
            .as_str()
            .is_some_and(|r| r.contains("first reconcile")),
        "{body}"
    );
    wait_ready(&mut run, &base);
    let (_, body) = get_json(&base, "/readyz");
    assert_eq!(body["engine"], "reachable", "{body}");
    assert_eq!(body["first_reconcile_done"], true, "{body}");
}

#[test]
fn readyz_is_503_while_the_engine_cannot_be_reached() {
    let p = TestProject::with_prefix(PREFIX, "no-engine", "heal");
    let state = state_dir();
    let mut run = spawn(&p, state.path(), &[("DOCKER_HOST", "unix:///nonexistent")]);
    let base = api_base(&mut run);
    assert_eq!(get(&base, "/healthz").0, 200);
    // Still not ready a few looks later: the engine never answers.
    for _ in 0..3 {
        let (code, body) = get_json(&base, "/readyz");
        assert_eq!(code, 503, "{body}");
        assert_eq!(body["engine"], "unreachable", "{body}");
        assert!(
            body["reason"]
                .as_str()
                .is_some_and(|r| r.contains("unix:///nonexistent")),
            "{body}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    run.assert_alive();
}

#[test]
fn mutations_need_a_configured_token_and_refuse_a_missing_or_wrong_one() {
    let p = TestProject::with_prefix(PREFIX, "auth", "heal");
    let state = state_dir();
    let mut run = spawn(&p, state.path(), &[]);
    let base = api_base(&mut run);
    // No token configured: every mutation is refused, and the message says what to do.
    for path in ["/reconcile", "/pause", "/resume", "/profile"] {
        let (code, body) = post(
            &base,
            path,
            Some("spd_anything"),
            Some(r#"{"profile":null}"#),
        );
        assert_eq!(code, 403, "{path}: {body}");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("spindle token create")),
            "{path}: {body}"
        );
    }
    let token = create_token(&p, state.path(), "ci");
    let before = evidence_records(state.path()).len();
    let (code, body) = post(&base, "/reconcile", None, None);
    assert_eq!(code, 401, "missing token: {body}");
    let (code, body) = post(&base, "/reconcile", Some("spd_0000wrong"), None);
    assert_eq!(code, 401, "wrong token: {body}");
    assert!(
        evidence_records(state.path())
            .iter()
            .skip(before)
            .all(|r| r["kind"] != "api"),
        "a refused mutation is not recorded as accepted"
    );
    let (code, body) = post(&base, "/reconcile", Some(&token), None);
    assert_eq!(code, 202, "right token: {body}");
    let record_id = body["record"].as_str().expect("the record id").to_string();
    // The accepted mutation is in the evidence with the token's id, never the token.
    let token_id = first_token_id(state.path());
    let records = evidence_records(state.path());
    let api = records
        .iter()
        .find(|r| r["id"] == record_id.as_str())
        .unwrap_or_else(|| panic!("no record {record_id}"));
    assert_eq!(api["kind"], "api");
    assert_eq!(api["action"], "reconcile");
    assert_eq!(api["actor"], token_id.as_str());
    assert_eq!(api["actor_name"], "ci");
    // No switcher in this stack: /profile says so.
    let (code, body) = post(
        &base,
        "/profile",
        Some(&token),
        Some(r#"{"profile":"low-cpu"}"#),
    );
    assert_eq!(code, 404, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("profile switcher")),
        "{body}"
    );
    // The token is never written anywhere spindle writes.
    run.terminate(Duration::from_secs(30));
    let evidence_text: String = common::evidence_segments(state.path())
        .iter()
        .map(|s| std::fs::read_to_string(s).unwrap_or_default())
        .collect();
    assert!(!evidence_text.contains(&token));
    assert!(!run.stderr().contains(&token));
    assert!(
        !std::fs::read_to_string(state.path().join("api-tokens.json"))
            .unwrap_or_default()
            .contains(&token)
    );
}

#[test]
fn after_a_converge_metrics_version_status_evidence_and_spindle_status_describe_it() {
    let p = TestProject::with_prefix(PREFIX, "converged", "heal");
    let state = state_dir();
    let mut run = spawn(&p, state.path(), &[]);
    let base = api_base(&mut run);
    wait_ready(&mut run, &base);

    // /status: both services ready, nothing pending, not degraded.
    let doc = wait_for("both services Ready in /status", DEADLINE, || {
        let (_, doc) = get_json(&base, "/status");
        let ready = ["web", "idle"].iter().all(|s| {
            doc["services"][s]["conditions"].is_array() && condition(&doc, s, "Ready").0 == "True"
        });
        ready.then_some(doc)
    });
    assert_eq!(doc["project"], p.name());
    assert_eq!(doc["pause"]["state"], "running");
    for s in ["web", "idle"] {
        assert_eq!(
            condition(&doc, s, "Ready"),
            tf("True", "AllReplicasReady"),
            "{s}"
        );
        assert_eq!(
            condition(&doc, s, "Progressing"),
            tf("False", "UpToDate"),
            "{s}"
        );
        assert_eq!(
            condition(&doc, s, "Degraded"),
            tf("False", "AsExpected"),
            "{s}"
        );
    }

    // /version
    let (code, v) = get_json(&base, "/version");
    assert_eq!(code, 200);
    assert_eq!(v["spindle"], env!("CARGO_PKG_VERSION"));
    assert!(
        v["git_revision"].as_str().is_some_and(|r| !r.is_empty()),
        "{v}"
    );
    assert!(v.get("desired_revision").is_some(), "{v}");
    assert_eq!(v["profile"]["switcher"], false, "{v}");
    assert_eq!(v["profile"]["requested"], serde_json::json!([]), "{v}");

    // /metrics, parsed as Prometheus text.
    let (code, text) = get(&base, "/metrics");
    assert_eq!(code, 200);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("the metrics parse");
    let value = |name: &str, label: Option<(&str, &str)>| metric(&text, name, label);
    let converged = value("spindle_reconciles_total", Some(("result", "converged")));
    assert!(converged.is_some_and(|v| v >= 1.0), "{text}");
    assert!(
        value("spindle_actions_total", Some(("kind", "create"))).is_some_and(|v| v >= 2.0),
        "{text}"
    );
    assert!(
        value("spindle_docker_requests_total", Some(("kind", "read"))).is_some_and(|v| v > 0.0),
        "{text}"
    );
    assert!(
        value(
            "spindle_evidence_records_total",
            Some(("kind", "reconcile"))
        )
        .is_some_and(|v| v >= 1.0),
        "{text}"
    );
    assert!(
        value("spindle_last_successful_reconcile_timestamp_seconds", None)
            .is_some_and(|v| v > 1.6e9),
        "{text}"
    );
    for family in [
        "spindle_drift_detected_total",
        "spindle_self_heals_total",
        "spindle_rollbacks_total",
        "spindle_profile_switches_total",
        "spindle_paused",
    ] {
        assert_eq!(value(family, None), Some(0.0), "{family} in:\n{text}");
    }
    let histogram = scrape
        .samples
        .iter()
        .find(|s| s.metric == "spindle_reconcile_duration_seconds")
        .unwrap_or_else(|| panic!("no duration histogram in:\n{text}"));
    match &histogram.value {
        prometheus_parse::Value::Histogram(buckets) => {
            let inf = buckets.iter().find(|b| b.less_than.is_infinite());
            assert!(inf.is_some_and(|b| b.count >= 1.0), "{buckets:?}");
        }
        other => panic!("the duration is not a histogram: {other:?}"),
    }

    // /evidence?limit: the newest records, newest first.
    let (code, ev) = get_json(&base, "/evidence?limit=1");
    assert_eq!(code, 200);
    let one = ev["records"].as_array().expect("records");
    assert_eq!(one.len(), 1, "{ev}");
    let on_disk = evidence_records(state.path());
    assert!(
        on_disk.len() >= 2,
        "the start-up reconcile and the follow-up"
    );
    let (_, ev) = get_json(&base, "/evidence?limit=2");
    let two = ev["records"].as_array().expect("records");
    assert_eq!(two.len(), 2);
    assert!(two[0]["seq"].as_u64() > two[1]["seq"].as_u64(), "{ev}");
    let (code, bad) = get_json(&base, "/evidence?limit=abc");
    assert_eq!(code, 400, "{bad}");
    assert!(
        bad["error"].as_str().is_some_and(|e| e.contains("limit")),
        "a JSON error naming the parameter: {bad}"
    );

    // `spindle status` through the API…
    let api = base.trim_start_matches("http://").to_string();
    let st = state.path().to_string_lossy().into_owned();
    let out = p.spindle(&["status", "--api", &api, "--state-dir", &st]);
    common::assert_exit(&out, 0, "spindle status via the API");
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(table.contains("from the spindle API"), "{table}");
    assert_status_table(&table);
    // …and offline once spindle has stopped.
    run.terminate(Duration::from_secs(30));
    let out = p.spindle(&["status", "--api", &api, "--state-dir", &st]);
    common::assert_exit(&out, 0, "spindle status offline");
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(table.contains("computed offline"), "{table}");
    assert_status_table(&table);
}

/// A `spindle status` table with a row per service, each ready and up to date.
#[track_caller]
fn assert_status_table(table: &str) {
    assert!(table.contains("SERVICE"), "{table}");
    for s in ["web", "idle"] {
        let row = table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(s))
            .unwrap_or_else(|| panic!("no row for {s}:\n{table}"));
        assert!(row.contains("1/1"), "{row}");
        assert!(row.contains("True (AllReplicasReady)"), "{row}");
        assert!(row.contains("False (UpToDate)"), "{row}");
    }
}

#[test]
fn while_paused_drift_is_planned_but_not_repaired_and_resume_repairs_it() {
    let p = TestProject::with_prefix(PREFIX, "pause", "heal");
    let state = state_dir();
    let mut run = spawn(&p, state.path(), &[]);
    let base = api_base(&mut run);
    wait_ready(&mut run, &base);
    wait_for("idle running", DEADLINE, || {
        p.is_running(&p.container_name("idle", 1)).then_some(())
    });
    let token = create_token(&p, state.path(), "ops");
    let (code, body) = post(&base, "/pause", Some(&token), None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["pause"]["state"], "paused", "{body}");

    // Drift: the idle container goes away. spindle notices, plans its creation, applies nothing.
    let idle = p.container_name("idle", 1);
    let out = p.docker(&["rm", "-f", &idle]);
    common::assert_exit(&out, 0, "docker rm -f");
    let paused = wait_for("a paused record planning the create", DEADLINE, || {
        evidence_records(state.path()).into_iter().find(|r| {
            r["outcome"] == "paused"
                && r["plan"]["actions"].as_array().is_some_and(|a| {
                    a.iter()
                        .any(|a| a["kind"]["kind"] == "create" && a["kind"]["service"] == "idle")
                })
        })
    });
    assert!(paused["plan"].is_object());
    assert!(
        p.try_inspect(&idle).is_none(),
        "paused spindle recreated {idle}"
    );
    let (_, doc) = get_json(&base, "/status");
    assert_eq!(doc["pause"]["state"], "paused", "{doc}");
    assert_eq!(
        condition(&doc, "idle", "Ready"),
        tf("False", "ContainersMissing")
    );
    assert_eq!(
        condition(&doc, "idle", "Progressing"),
        tf("False", "Paused")
    );
    let (_, ready) = get_json(&base, "/readyz");
    assert_eq!(ready["paused"], true, "{ready}");

    // The pause survives a restart.
    run.terminate(Duration::from_secs(30));
    drop(run);
    let mut run = spawn(&p, state.path(), &[]);
    let base = api_base(&mut run);
    wait_ready(&mut run, &base);
    let (_, doc) = get_json(&base, "/status");
    assert_eq!(doc["pause"]["state"], "paused", "{doc}");
    assert_eq!(doc["last_reconcile"]["outcome"], "paused", "{doc}");
    assert!(
        p.try_inspect(&idle).is_none(),
        "restarted paused spindle recreated {idle}"
    );

    // Resume: a reconcile runs at once and repairs the drift.
    let (code, body) = post(&base, "/resume", Some(&token), None);
    assert_eq!(code, 200, "{body}");
    wait_for("idle recreated after resume", DEADLINE, || {
        run.assert_alive();
        p.is_running(&idle).then_some(())
    });
    let actions: Vec<String> = evidence_records(state.path())
        .iter()
        .filter(|r| r["kind"] == "api")
        .map(|r| r["action"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(actions, ["pause", "resume"]);
}

// --- POST /profile with a profile switcher ------------------------------------------------------------------------

/// The project prefix of the profile-switching API test.
const PROFILE_PREFIX: &str = "spindle-h-apiprof";
/// The `web` cap of the base files and of the low-cpu profile (`tests/fixtures/stacks/profile`).
const BASE_NANO_CPUS: i64 = 1_000_000_000;
const LOW_NANO_CPUS: i64 = 250_000_000;

fn profile_switches(base: &str) -> f64 {
    let (code, text) = get(base, "/metrics");
    assert_eq!(code, 200, "{text}");
    metric(&text, "spindle_profile_switches_total", None)
        .unwrap_or_else(|| panic!("no spindle_profile_switches_total in:\n{text}"))
}

/// The `api` records of the evidence: `(id, record)`.
fn api_records(state: &Path) -> Vec<Value> {
    evidence_records(state)
        .into_iter()
        .filter(|r| r["kind"] == "api")
        .collect()
}

#[test]
fn a_profile_pinned_and_unpinned_through_the_api_switches_the_running_stack_in_place_and_back() {
    let p = TestProject::with_prefix(PROFILE_PREFIX, "pin", "profile");
    // Manual mode: only the pin decides, whatever the shared machine's load.
    assert!(p.read("spindle.yaml").contains("mode: manual"));
    let state = state_dir();
    let mut run = spawn(&p, state.path(), &[]);
    let base = api_base(&mut run);
    wait_ready(&mut run, &base);
    let id = common::wait_nano_cpus(
        &p,
        &mut run,
        "web",
        BASE_NANO_CPUS,
        "web with its base cap",
        DEADLINE,
    );
    let token = create_token(&p, state.path(), "ops");
    let token_id = first_token_id(state.path());

    let (_, v) = get_json(&base, "/version");
    assert_eq!(v["profile"]["switcher"], true, "{v}");
    assert!(v["profile"]["active"].is_null(), "{v}");
    assert_eq!(v["profile"]["state"]["mode"], "manual", "{v}");
    assert!(v["profile"]["state"]["pinned"].is_null(), "{v}");
    let switches = profile_switches(&base);
    assert_eq!(switches, 0.0);

    // An undeclared name is refused, with the declared ones; nothing changes.
    let (code, body) = post(
        &base,
        "/profile",
        Some(&token),
        Some(r#"{"profile":"turbo"}"#),
    );
    assert_eq!(code, 409, "{body}");
    let msg = body["error"].as_str().unwrap_or_default();
    assert!(
        msg.contains("\"turbo\"") && msg.contains("declared profiles: default, low-cpu"),
        "{body}"
    );
    // Bodies that are not `{"profile": <name or null>}` are refused too (a typo must not unpin).
    for bad in [
        "",
        "{}",
        r#"{"profil":"low-cpu"}"#,
        r#"{"profile":3}"#,
        r#"{"profile":"low-cpu","x":1}"#,
    ] {
        let (code, body) = post(&base, "/profile", Some(&token), Some(bad));
        assert_eq!(code, 400, "{bad}: {body}");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains(r#"{"profile": null}"#)),
            "{bad}: {body}"
        );
    }
    assert!(
        api_records(state.path()).is_empty(),
        "a refusal is no api record"
    );
    assert!(!state.path().join("profile.json").exists());
    let (_, v) = get_json(&base, "/version");
    assert!(v["profile"]["state"]["pinned"].is_null(), "{v}");
    assert_eq!(v["profile"]["state"]["switches"], 0, "{v}");
    assert_eq!(
        common::running_nano_cpus(&p, "web"),
        Some((id.clone(), BASE_NANO_CPUS))
    );

    // Pin low-cpu: recorded with the token's id, applied in place by a `pin` reconcile.
    let (code, body) = post(
        &base,
        "/profile",
        Some(&token),
        Some(r#"{"profile":"low-cpu"}"#),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["pinned"], "low-cpu", "{body}");
    let pin_record = body["record"].as_str().expect("a record id").to_string();
    let pinned = common::wait_nano_cpus(
        &p,
        &mut run,
        "web",
        LOW_NANO_CPUS,
        "web with the pinned low-cpu cap",
        DEADLINE,
    );
    assert_eq!(pinned, id, "the pin is applied in place");
    let api = api_records(state.path());
    assert_eq!(api.len(), 1, "{api:?}");
    assert_eq!(api[0]["id"], pin_record.as_str());
    assert_eq!(api[0]["action"], "profile");
    assert_eq!(api[0]["profile"], "low-cpu");
    assert_eq!(api[0]["actor"], token_id.as_str());
    assert_eq!(api[0]["actor_name"], "ops");
    let (trigger, record) = common::wait_profile_switch(state.path(), "pin", DEADLINE);
    assert_eq!(trigger["to"], "low-cpu", "{trigger}");
    assert!(trigger["from"].is_null(), "{trigger}");
    assert_eq!(record["active_profile"], "low-cpu", "{record}");
    assert!(
        common::only_updates_of("web", &record),
        "{}",
        record["plan"]
    );
    assert!(
        record["seq"].as_u64() > api[0]["seq"].as_u64(),
        "the api record comes before the reconcile it caused"
    );
    for path in ["/version", "/status"] {
        let (_, doc) = get_json(&base, path);
        assert_eq!(doc["profile"]["active"], "low-cpu", "{path}: {doc}");
        assert_eq!(
            doc["profile"]["state"]["pinned"], "low-cpu",
            "{path}: {doc}"
        );
        assert_eq!(
            doc["profile"]["state"]["active"], "low-cpu",
            "{path}: {doc}"
        );
        assert_eq!(
            doc["profile"]["state"]["last_switch"]["cause"], "pin",
            "{path}: {doc}"
        );
    }
    assert_eq!(profile_switches(&base), switches + 1.0);
    assert_eq!(
        spindle::profile::read_pin(state.path())
            .ok()
            .flatten()
            .as_deref(),
        Some("low-cpu"),
        "the pin persists"
    );

    // Unpin: back to the base cap. The base files set `cpus: 1.0`, so this is in place too
    // (docs/profiles.md: only a limit the base files lack forces a recreate).
    let (code, body) = post(&base, "/profile", Some(&token), Some(r#"{"profile":null}"#));
    assert_eq!(code, 200, "{body}");
    assert!(body["pinned"].is_null(), "{body}");
    let back = common::wait_nano_cpus(
        &p,
        &mut run,
        "web",
        BASE_NANO_CPUS,
        "web back to its base cap",
        DEADLINE,
    );
    assert_eq!(back, id, "unpinning is applied in place");
    let (trigger, record) = common::wait_profile_switch(state.path(), "unpin", DEADLINE);
    assert_eq!(trigger["from"], "low-cpu", "{trigger}");
    assert!(trigger["to"].is_null(), "{trigger}");
    assert!(record["active_profile"].is_null(), "{record}");
    assert!(
        common::only_updates_of("web", &record),
        "{}",
        record["plan"]
    );
    let (_, v) = get_json(&base, "/version");
    assert!(v["profile"]["active"].is_null(), "{v}");
    assert!(v["profile"]["state"]["pinned"].is_null(), "{v}");
    assert_eq!(v["profile"]["state"]["active"], "default", "{v}");
    assert_eq!(profile_switches(&base), switches + 2.0);
    let api = api_records(state.path());
    let pins: Vec<&Value> = api.iter().map(|r| &r["profile"]).collect();
    assert_eq!(pins, [&Value::from("low-cpu"), &Value::Null], "{api:?}");
    assert!(api.iter().all(|r| r["actor"] == token_id.as_str()));

    // The token itself is nowhere spindle writes.
    run.terminate(Duration::from_secs(30));
    let evidence_text: String = common::evidence_segments(state.path())
        .iter()
        .map(|s| std::fs::read_to_string(s).unwrap_or_default())
        .collect();
    assert!(!evidence_text.contains(&token));
    assert!(!run.stderr().contains(&token));
}
