//! `deploy.update_config` against the real engine: start-first keeps a service answering through its
//! alias while it is recreated, stop-first shows the gap, a start-first replacement that fails its
//! gate or its monitor period is undone with the old container serving, and every stage of an
//! interrupted start-first recreate is finished or undone by the next apply from labels alone.
//!
//! The stack is `tests/fixtures/stacks/updates/`; the client is its `client.sh` in a busybox
//! container on the project network (no published port: a published port cannot use the alias).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestProject, apply_results, assert_exit, assert_no_panic, describe, plan_actions};
use serde_json::Value;

#[track_caller]
fn apply_ok(p: &TestProject) {
    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "spindle apply");
}

/// `docker <args>` that must succeed; its trimmed stdout.
#[track_caller]
fn docker_ok(p: &TestProject, args: &[&str]) -> String {
    let out = p.docker(args);
    assert!(out.status.success(), "docker {args:?}: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The containers of one service of the project: (name, ID, running).
fn service_containers(p: &TestProject, service: &str) -> Vec<(String, String, bool)> {
    let project = format!("label=com.docker.compose.project={}", p.name());
    let label = format!("label=com.docker.compose.service={service}");
    let out = p.docker(&[
        "ps",
        "-a",
        "--no-trunc",
        "--filter",
        &project,
        "--filter",
        &label,
        "--format",
        "{{.Names}} {{.ID}} {{.State}}",
    ]);
    let mut all: Vec<(String, String, bool)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((
                f.next()?.to_string(),
                f.next()?.to_string(),
                f.next()? == "running",
            ))
        })
        .collect();
    all.sort();
    all
}

/// What the alias client counted (see client.sh).
#[derive(Debug)]
struct Counts {
    requests: u64,
    failures: u64,
    max_addresses: u64,
    line: String,
}

/// The alias client: a busybox container on the project network running client.sh.
struct Client {
    name: String,
}

impl Client {
    /// Starts requesting `target` and returns once a first request was answered.
    fn start(p: &TestProject, target: &str) -> Self {
        let name = format!("{}-client-{target}", p.name());
        let script = format!("{}:/client.sh:ro", p.path("client.sh").display());
        let network = format!("{}_default", p.name());
        docker_ok(
            p,
            &[
                "run",
                "-d",
                "--name",
                &name,
                "--network",
                &network,
                "-v",
                &script,
                "spindle-test/busybox:1",
                "sh",
                "/client.sh",
                target,
                "8000",
            ],
        );
        let client = Client { name };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !p
            .docker(&["exec", &client.name, "test", "-e", "/tmp/started"])
            .status
            .success()
        {
            assert!(
                Instant::now() < deadline,
                "the client of {target} never got an answer"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        client
    }

    /// Stops the loop and reads its counts.
    fn stop(self, p: &TestProject) -> Counts {
        docker_ok(p, &["exec", &self.name, "touch", "/tmp/stop"]);
        docker_ok(p, &["wait", &self.name]);
        let line = docker_ok(p, &["logs", &self.name]);
        let field = |k: &str| -> u64 {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(&format!("{k}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {k} in the client's output {line:?}"))
        };
        Counts {
            requests: field("requests"),
            failures: field("failures"),
            max_addresses: field("max_addresses"),
            line: line.clone(),
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = common::docker(&["rm", "-f", &self.name]);
    }
}

/// Position of the first write `operation` on `target` in the apply's write log.
fn write_index(result: &Value, operation: &str, target: &str) -> Option<usize> {
    result["write_log"]
        .as_array()?
        .iter()
        .position(|w| w["operation"] == operation && w["target"] == target && w["ok"] == true)
}

#[test]
fn a_client_of_a_start_first_service_sees_no_failed_request_through_a_recreate_and_a_stop_first_client_sees_the_gap()
 {
    let p = TestProject::new("zero-downtime", "updates");
    apply_ok(&p);
    let web = p.container_name("web", 1);
    let legacy = p.container_name("legacy", 1);
    let (old_web, old_legacy) = (p.id_of("web"), p.id_of("legacy"));

    let web_client = Client::start(&p, "web");
    let legacy_client = Client::start(&p, "legacy");
    p.edit("compose.yaml", "WEB_RELEASE: \"1\"", "WEB_RELEASE: \"2\"");
    p.edit(
        "compose.yaml",
        "LEGACY_RELEASE: \"1\"",
        "LEGACY_RELEASE: \"2\"",
    );
    let (out, result) = p.spindle_json(&["apply", "--format", "json"]);
    assert_exit(&out, 0, "spindle apply of both new releases");
    let web_counts = web_client.stop(&p);
    let legacy_counts = legacy_client.stop(&p);
    eprintln!("start-first web: {}", web_counts.line);
    eprintln!("stop-first legacy: {}", legacy_counts.line);

    // start-first: the new container started (as <name>-next) before the old one was stopped.
    let next = format!("{web}-next");
    let started = write_index(&result, "start container", &next);
    let stopped = write_index(&result, "stop container", &web);
    assert!(
        started.is_some() && stopped.is_some() && started < stopped,
        "web: start of {next} before the stop of {web}: {:#}",
        result["write_log"]
    );
    // stop-first: the old one stopped before the new one started.
    let stopped = write_index(&result, "stop container", &legacy);
    let started = write_index(&result, "start container", &legacy);
    assert!(
        stopped.is_some() && started.is_some() && stopped < started,
        "legacy: stop before start: {:#}",
        result["write_log"]
    );

    assert!(web_counts.requests > 0 && legacy_counts.requests > 0);
    assert_eq!(
        web_counts.failures, 0,
        "start-first: no request failed ({})",
        web_counts.line
    );
    assert_eq!(
        web_counts.max_addresses, 2,
        "start-first: the alias resolved to both containers during the overlap ({})",
        web_counts.line
    );
    assert!(
        legacy_counts.failures > 0,
        "stop-first: the client saw the gap ({})",
        legacy_counts.line
    );
    assert_eq!(legacy_counts.max_addresses, 1, "{}", legacy_counts.line);

    // One container each, new, under the service's canonical name, and nothing left to do.
    for (service, name, old) in [("web", &web, &old_web), ("legacy", &legacy, &old_legacy)] {
        let now = service_containers(&p, service);
        assert_eq!(now.len(), 1, "{service}: {now:?}");
        assert_eq!(&now[0].0, name);
        assert_ne!(&now[0].1, old, "{service} was recreated");
        assert!(now[0].2, "{service} runs");
    }
    assert_exit(&p.spindle(&["plan"]), 0, "plan after the update");
}

#[test]
fn a_start_first_replacement_that_never_becomes_healthy_is_removed_and_the_old_container_never_stops()
 {
    let p = TestProject::new("start-first-rollback", "updates");
    apply_ok(&p);
    let web = p.container_name("web", 1);
    let before = p.inspect(&web);

    // The new server listens on 8001; the healthcheck asks 8000 and never passes.
    p.edit(
        "compose.yaml",
        "    command: [\"/usr/local/bin/serve\", \"8000\"]\n    init: true\n    stop_grace_period: 1s\n    environment:\n      WEB_RELEASE",
        "    command: [\"/usr/local/bin/serve\", \"8001\"]\n    init: true\n    stop_grace_period: 1s\n    environment:\n      WEB_RELEASE",
    );
    let (out, result) = p.spindle_json(&["apply", "--timeout", "8s", "--format", "json"]);
    assert_exit(
        &out,
        1,
        "spindle apply of a replacement that never becomes healthy",
    );
    assert_no_panic(&out, "spindle apply");
    assert!(
        apply_results(&result)
            .iter()
            .any(|(verb, svc, outcome)| verb == "recreate"
                && svc == "web"
                && outcome == "rolled_back"),
        "{result:#}"
    );
    // The old container was never stopped: not in the write log, same start time, same ID.
    assert_eq!(
        write_index(&result, "stop container", &web),
        None,
        "{:#}",
        result["write_log"]
    );
    let after = p.inspect(&web);
    assert_eq!(after["Id"], before["Id"]);
    assert_eq!(after["State"]["StartedAt"], before["State"]["StartedAt"]);
    assert_eq!(after["State"]["Running"], true);
    let now = service_containers(&p, "web");
    assert_eq!(now.len(), 1, "the replacement is gone: {now:?}");
}

/// `spindle apply --format json` started in the background.
fn spawn_apply(p: &TestProject) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_spindle"))
        .arg("-p")
        .arg(p.name())
        .arg("--desired-state")
        .arg(p.dir())
        .args(["apply", "--timeout", "60s", "--format", "json"])
        .current_dir(p.dir())
        .env("SPINDLE_STATE_DIR", p.state_dir())
        .env_remove("SPINDLE_DESIRED_STATE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spindle apply starts")
}

#[test]
fn a_start_first_replacement_that_fails_during_its_monitor_period_is_rolled_back_to_the_old_container()
 {
    let p = TestProject::new("start-first-monitor", "updates");
    apply_ok(&p);
    let web = p.container_name("web", 1);
    let old = p.id_of("web");
    std::fs::create_dir_all(p.path("trigger")).expect("trigger folder");

    // The new server passes its gate, then exits once the test drops trigger/die: the monitor
    // period (10 minutes) is when it does.
    p.edit(
        "compose.yaml",
        "    command: [\"/usr/local/bin/serve\", \"8000\"]\n    init: true\n    stop_grace_period: 1s\n    environment:\n      WEB_RELEASE",
        "    command: [\"sh\", \"-c\", \"httpd -p 8000 -h /var/www; until [ -e /trigger/die ]; do sleep 0.2; done; exit 3\"]\n    volumes: [\"./trigger:/trigger\"]\n    init: true\n    stop_grace_period: 1s\n    environment:\n      WEB_RELEASE",
    );
    p.edit(
        "compose.yaml",
        "        order: start-first\n",
        "        order: start-first\n        monitor: 10m\n",
    );
    let child = spawn_apply(&p);
    // The switch: the old container is stopped once the new one passed its gate.
    let deadline = Instant::now() + Duration::from_secs(120);
    while p.inspect(&old)["State"]["Running"] == true {
        assert!(
            Instant::now() < deadline,
            "the old container was never stopped"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::fs::write(p.path("trigger/die"), "").expect("trigger");
    let out = child.wait_with_output().expect("spindle apply ends");
    assert_exit(
        &out,
        1,
        "spindle apply whose replacement fails while monitored",
    );
    let result: Value = serde_json::from_slice(&out.stdout).expect("apply prints JSON");
    let failed: Vec<&Value> = result["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["outcome"] == "rolled_back")
        .collect();
    assert_eq!(failed.len(), 1, "{result:#}");
    assert!(
        failed[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("monitor period")),
        "{:#}",
        failed[0]
    );
    // The old container serves again under its name; the replacement is gone.
    let now = service_containers(&p, "web");
    assert_eq!(now, vec![(web.clone(), old.clone(), true)]);
    p.wait_ready(&web, Duration::from_secs(60));
}

/// Creates a replacement for `old` as an interrupted start-first recreate leaves it: the old
/// one's labels plus `io.spindle.replaces=<old id>`, named `<name>-next`, a passing healthcheck.
fn fake_replacement(p: &TestProject, old: &str, name: &str) -> String {
    let info = p.inspect(old);
    let mut args: Vec<String> = vec!["create".into(), "--name".into(), format!("{name}-next")];
    if let Some(labels) = info["Config"]["Labels"].as_object() {
        for (k, v) in labels.iter().filter(|(k, _)| *k != "io.spindle.replaces") {
            args.push("--label".into());
            args.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    for a in [
        "--label".to_string(),
        format!("io.spindle.replaces={old}"),
        "--init".into(),
        "--network".into(),
        format!("{}_default", p.name()),
        "--network-alias".into(),
        "web".into(),
        "--health-cmd".into(),
        "true".into(),
        "--health-interval".into(),
        "1s".into(),
        "spindle-test/busybox:1".into(),
        "/usr/local/bin/serve".into(),
        "8000".into(),
    ] {
        args.push(a);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    docker_ok(p, &refs)
}

#[test]
fn every_stage_of_an_interrupted_start_first_recreate_is_finished_or_undone_by_the_next_apply() {
    let p = TestProject::new("start-first-resume", "updates");
    apply_ok(&p);
    let name = p.container_name("web", 1);
    // (stage, what the interrupted run left, whether the next apply keeps the new container)
    let stages: [(&str, &[&str], bool); 4] = [
        ("created", &[], false),
        ("new started", &["start-new"], true),
        ("old stopped", &["start-new", "stop-old"], true),
        ("old removed", &["start-new", "remove-old"], true),
    ];
    for (stage, steps, keeps_new) in stages {
        let old = p.id_of("web");
        let new = fake_replacement(&p, &old, &name);
        for step in steps {
            let args: Vec<&str> = match *step {
                "start-new" => vec!["start", &new],
                "stop-old" => vec!["stop", "-t", "1", &old],
                _ => vec!["rm", "-f", &old],
            };
            docker_ok(&p, &args);
        }
        let (out, plan) = p.spindle_json(&["plan", "--format", "json"]);
        assert_exit(&out, 2, &format!("{stage}: plan with a recreate in flight"));
        assert!(
            plan_actions(&plan)
                .iter()
                .any(|(verb, svc)| verb == "resume_recreate" && svc == "web"),
            "{stage}: {plan:#}"
        );
        apply_ok(&p);
        let kept = if keeps_new { &new } else { &old };
        assert_eq!(
            service_containers(&p, "web"),
            vec![(name.clone(), kept.clone(), true)],
            "{stage}: one container for web #1 under its name"
        );
    }
}

/// Replaces web's healthcheck with one that passes once `trigger/ok` exists in the project folder.
fn gate_web_on_a_trigger_file(p: &TestProject) {
    std::fs::create_dir_all(p.path("trigger")).expect("trigger folder");
    p.edit(
        "compose.yaml",
        "    healthcheck: *health\n    deploy:\n      update_config:\n        order: start-first\n",
        "    volumes: [\"./trigger:/trigger\"]\n    healthcheck:\n      test: [\"CMD\", \"test\", \"-e\", \"/trigger/ok\"]\n      \
         interval: 1s\n      timeout: 2s\n      retries: 600\n    deploy:\n      update_config:\n        order: start-first\n",
    );
}

/// Waits until `cond` holds, polling every 200 ms for up to two minutes.
#[track_caller]
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_start_first_apply_killed_while_both_containers_run_is_finished_by_the_next_apply() {
    let p = TestProject::new("start-first-kill-overlap", "updates");
    apply_ok(&p);
    let web = p.container_name("web", 1);
    let old = p.id_of("web");
    let next = format!("{web}-next");
    gate_web_on_a_trigger_file(&p);

    let mut child = spawn_apply(&p);
    wait_for("the replacement runs beside the old container", || {
        p.try_inspect(&next)
            .is_some_and(|c| c["State"]["Running"] == true)
    });
    child.kill().expect("kill -9 of spindle apply");
    let _ = child.wait();
    // Killed mid-overlap: both run, the old one was never stopped.
    let new = p.inspect(&next)["Id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(service_containers(&p, "web"), {
        let mut v = vec![
            (web.clone(), old.clone(), true),
            (next.clone(), new.clone(), true),
        ];
        v.sort();
        v
    });

    std::fs::write(p.path("trigger/ok"), "").expect("trigger");
    apply_ok(&p);
    assert_eq!(
        service_containers(&p, "web"),
        vec![(web.clone(), new, true)],
        "the replacement, under the service's name, alone"
    );
    assert_exit(&p.spindle(&["plan"]), 0, "plan after finishing");
}

#[test]
fn a_start_first_apply_killed_during_the_monitor_period_is_finished_by_the_next_apply() {
    let p = TestProject::new("start-first-kill-monitor", "updates");
    apply_ok(&p);
    let web = p.container_name("web", 1);
    let old = p.id_of("web");
    p.edit("compose.yaml", "WEB_RELEASE: \"1\"", "WEB_RELEASE: \"2\"");
    p.edit(
        "compose.yaml",
        "        order: start-first\n",
        "        order: start-first\n        monitor: 10m\n",
    );

    let mut child = spawn_apply(&p);
    wait_for("the old container is stopped (the monitor period)", || {
        p.inspect(&old)["State"]["Running"] == false
    });
    child.kill().expect("kill -9 of spindle apply");
    let _ = child.wait();

    apply_ok(&p);
    let now = service_containers(&p, "web");
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!(now[0].0, web);
    assert_ne!(now[0].1, old, "the replacement was kept");
    assert!(now[0].2);
    assert_exit(&p.spindle(&["plan"]), 0, "plan after finishing");
}

#[test]
fn a_failed_replica_stops_the_other_replicas_under_rollback_and_not_under_continue() {
    let p = TestProject::new("failure-action", "updates");
    p.edit(
        "compose.yaml",
        "    deploy:\n      update_config:\n        order: start-first\n",
        "    deploy:\n      replicas: 2\n      update_config:\n        order: start-first\n        parallelism: 1\n",
    );
    apply_ok(&p);
    let before = service_containers(&p, "web");
    assert_eq!(before.len(), 2);
    // The new server listens on 8001; the healthcheck asks 8000 and never passes.
    p.edit(
        "compose.yaml",
        "    command: [\"/usr/local/bin/serve\", \"8000\"]\n    init: true\n    stop_grace_period: 1s\n    environment:\n      WEB_RELEASE",
        "    command: [\"/usr/local/bin/serve\", \"8001\"]\n    init: true\n    stop_grace_period: 1s\n    environment:\n      WEB_RELEASE",
    );
    let recreates = |result: &Value| -> Vec<(String, String)> {
        result["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| common::action_verb(&r["action"]) == "recreate")
            .map(|r| {
                (
                    r["outcome"].as_str().unwrap_or_default().to_string(),
                    r["error"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };

    // failure_action: rollback (the default): the first replica is put back, the second is not tried.
    let (out, result) = p.spindle_json(&["apply", "--timeout", "6s", "--format", "json"]);
    assert_exit(&out, 1, "apply with rollback");
    let mut outcomes = recreates(&result);
    outcomes.sort();
    assert_eq!(outcomes.len(), 2, "{result:#}");
    assert_eq!(outcomes[1].0, "rolled_back", "{result:#}");
    assert_eq!(outcomes[0].0, "failed", "{result:#}");
    assert!(
        outcomes[0].1.contains("the update of web stopped after")
            && outcomes[0].1.contains("failure_action: rollback"),
        "{result:#}"
    );
    assert_eq!(service_containers(&p, "web"), before);

    // failure_action: continue: both replicas are tried, both put back.
    p.edit(
        "compose.yaml",
        "        parallelism: 1\n",
        "        parallelism: 1\n        failure_action: continue\n",
    );
    let (out, result) = p.spindle_json(&["apply", "--timeout", "6s", "--format", "json"]);
    assert_exit(&out, 1, "apply with continue");
    let outcomes = recreates(&result);
    assert_eq!(outcomes.len(), 2, "{result:#}");
    assert!(
        outcomes.iter().all(|(o, _)| o == "rolled_back"),
        "{result:#}"
    );
    assert_eq!(service_containers(&p, "web"), before);
}

#[test]
fn a_stop_first_replacement_that_fails_during_its_monitor_period_is_rolled_back_to_the_old_container()
 {
    let p = TestProject::new("stop-first-monitor", "updates");
    apply_ok(&p);
    let legacy = p.container_name("legacy", 1);
    let set_aside = format!("{legacy}-old");
    let old = p.id_of("legacy");
    std::fs::create_dir_all(p.path("trigger")).expect("trigger folder");
    p.edit(
        "compose.yaml",
        "    command: [\"/usr/local/bin/serve\", \"8000\"]\n    init: true\n    stop_grace_period: 1s\n    environment:\n      LEGACY_RELEASE",
        "    command: [\"sh\", \"-c\", \"httpd -p 8000 -h /var/www; until [ -e /trigger/die ]; do sleep 0.2; done; exit 3\"]\n    volumes: [\"./trigger:/trigger\"]\n    init: true\n    stop_grace_period: 1s\n    environment:\n      LEGACY_RELEASE",
    );
    p.edit(
        "compose.yaml",
        "        order: stop-first\n",
        "        order: stop-first\n        monitor: 10m\n",
    );
    let child = spawn_apply(&p);
    // The swap: the old container set aside, the new one under the name and healthy.
    wait_for(
        "the new container is healthy and the old one set aside",
        || {
            p.try_inspect(&set_aside).is_some()
                && p.try_inspect(&legacy)
                    .is_some_and(|c| c["State"]["Health"]["Status"] == "healthy")
        },
    );
    // The gate looks at least every 500 ms: well past it, the monitor period runs.
    std::thread::sleep(Duration::from_secs(3));
    std::fs::write(p.path("trigger/die"), "").expect("trigger");
    let out = child.wait_with_output().expect("spindle apply ends");
    assert_exit(
        &out,
        1,
        "spindle apply whose replacement fails while monitored",
    );
    let result: Value = serde_json::from_slice(&out.stdout).expect("apply prints JSON");
    let failed: Vec<&Value> = result["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["outcome"] == "rolled_back")
        .collect();
    assert_eq!(failed.len(), 1, "{result:#}");
    assert!(
        failed[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("monitor period")),
        "{:#}",
        failed[0]
    );
    // The old container is back under its name and runs; the replacement is gone.
    assert_eq!(
        service_containers(&p, "legacy"),
        vec![(legacy.clone(), old.clone(), true)]
    );
    p.wait_ready(&legacy, Duration::from_secs(60));
}
