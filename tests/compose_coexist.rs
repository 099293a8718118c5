//! Compose beside spindle on the real engine: Compose v5 commands run against a stack spindle manages change nothing, and spindle leaves alone what Compose made.
//!
//! The stack (`tests/fixtures/stacks/coexist`) has custom networks with labels, a named volume, an
//! env file and a healthchecked backend with a `restart: true` dependent. "Nothing recreated" is
//! checked on IDs: every container's ID and start time, every network's ID and every volume's
//! creation time are the same before and after.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{
    SpindleProcess, TestProject, assert_exit, describe, docker, evidence_records, plan_actions,
    state_dir, wait_for,
};
use serde_json::Value;

const SERVICES: [&str; 4] = ["db", "backend", "frontend", "worker"];
const ERP: [&str; 5] = ["db", "backend", "worker", "frontend", "gateway"];
const DEADLINE: Duration = Duration::from_secs(180);

/// Network name → ID, and volume name → creation time, of the project.
fn resources(p: &TestProject) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let filter = format!("label=com.docker.compose.project={}", p.name());
    let out = docker(&[
        "network",
        "ls",
        "--no-trunc",
        "--filter",
        &filter,
        "--format",
        "{{.Name}} {{.ID}}",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let networks = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, id)| (n.to_string(), id.to_string()))
        .collect();
    let mut volumes = BTreeMap::new();
    for name in p.volumes() {
        let out = docker(&["volume", "inspect", "--format", "{{.CreatedAt}}", &name]);
        assert!(out.status.success(), "{}", describe(&out));
        volumes.insert(
            name,
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        );
    }
    (networks, volumes)
}

fn assert_ready(p: &TestProject, services: &[&str]) {
    wait_for("every container running and healthy", DEADLINE, || {
        services
            .iter()
            .all(|s| p.is_ready(&p.container_name(s, 1)))
            .then_some(())
    });
}

/// `spindle apply`, then `docker compose up -d`: Compose recreates nothing.
fn apply_then_compose_up(p: &TestProject, services: &[&str], networks_n: usize, volumes_n: usize) {
    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "spindle apply");
    assert_ready(p, services);
    let containers = p.fingerprint();
    assert_eq!(containers.len(), services.len(), "{containers:#?}");
    let (networks, volumes) = resources(p);
    assert_eq!(networks.len(), networks_n, "{networks:?}");
    assert_eq!(volumes.len(), volumes_n, "{volumes:?}");

    let out = p.compose(&["up", "-d", "--wait", "--wait-timeout", "150"]);
    assert_exit(&out, 0, "docker compose up -d after spindle apply");
    assert_eq!(
        p.fingerprint(),
        containers,
        "Compose keeps every container spindle made (same IDs and start times)\n{}",
        describe(&out)
    );
    assert_eq!(
        resources(p),
        (networks, volumes),
        "Compose keeps every network and volume spindle made"
    );
}

#[test]
fn docker_compose_up_after_spindle_apply_recreates_no_container_network_or_volume() {
    let p = TestProject::new("coexist_apply_then_up", "coexist");
    apply_then_compose_up(&p, &SERVICES, 3, 1);
}

#[test]
fn docker_compose_up_after_spindle_apply_of_services_sharing_another_services_namespaces_recreates_nothing()
 {
    let p = TestProject::new("coexist_refs_apply_then_up", "coexist-refs");
    apply_then_compose_up(&p, &["db", "sidecar", "reader"], 1, 1);
}

/// The repository's sample desired state (`desired-state/`) in the project folder, with its
/// `.env` made from `.env.example` and the gateway published on a port of its own.
fn sample(test: &str) -> TestProject {
    let p = TestProject::new(test, "plain");
    std::fs::remove_file(p.path("compose.yaml")).expect("the plain stack has a compose.yaml");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("desired-state");
    for file in [
        "compose.yaml",
        "compose.low-cpu.yaml",
        "spindle.yaml",
        ".env.example",
    ] {
        std::fs::copy(source.join(file), p.path(file)).expect("copy the sample");
    }
    // Secrets are empty in the example (infra/scripts/sample-env.sh fills them on a real host).
    let port = 20_000 + std::process::id() % 20_000;
    let env: String = p
        .read(".env.example")
        .lines()
        .map(|line| match line.split_once('=') {
            Some((key, "")) if !key.starts_with('#') => format!("{key}=test-{}\n", key.len()),
            Some(("HTTP_PUBLISH_PORT", _)) => format!("HTTP_PUBLISH_PORT={port}\n"),
            _ => format!("{line}\n"),
        })
        .collect();
    p.write(".env", &env);
    p
}

#[test]
fn docker_compose_up_after_spindle_apply_of_the_sample_desired_state_recreates_nothing() {
    let p = sample("coexist_sample_apply_then_up");
    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "spindle apply of the sample");
    let before = p.fingerprint();
    let resources_before = resources(&p);
    assert!(before.len() >= 8, "{before:#?}");
    let out = p.compose(&["up", "-d", "--wait", "--wait-timeout", "150"]);
    assert_exit(
        &out,
        0,
        "docker compose up -d of the sample after spindle apply",
    );
    // Compose starts the one-shot `configure` again (`up` starts every stopped container), but
    // recreates nothing, and leaves every running container running.
    let after = p.fingerprint();
    let ids = |f: &BTreeMap<String, (String, String, bool)>| -> Vec<(String, String)> {
        f.iter()
            .map(|(n, (id, _, _))| (n.clone(), id.clone()))
            .collect()
    };
    assert_eq!(
        ids(&after),
        ids(&before),
        "same containers\n{}",
        describe(&out)
    );
    let running = |f: &BTreeMap<String, (String, String, bool)>| {
        f.iter()
            .filter(|(n, _)| before.get(*n).is_some_and(|b| b.2))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(running(&after), running(&before), "running ones untouched");
    assert_eq!(resources(&p), resources_before, "same networks and volumes");
}

#[test]
fn docker_compose_up_after_spindle_apply_of_the_erp_stack_recreates_nothing() {
    let p = TestProject::new("coexist_erp_apply_then_up", "erp");
    apply_then_compose_up(&p, &ERP, 1, 0);
}

/// `docker compose up -d`, then `spindle plan` and `apply`: nothing to do, nothing touched.
fn compose_up_then_plan(p: &TestProject) {
    let out = p.compose(&["up", "-d", "--wait", "--wait-timeout", "150"]);
    assert_exit(&out, 0, "docker compose up -d");
    let containers = p.fingerprint();
    let resources_before = resources(p);

    let (out, plan) = p.spindle_json(&["plan", "--format", "json"]);
    assert_exit(&out, 0, "spindle plan of a stack Compose made");
    assert_eq!(plan_actions(&plan), vec![], "{plan:#}");
    // Settled by Compose's config-hash above; field by field here.
    let (out, plan) = p.spindle_json(&["plan", "--compare-fields", "--format", "json"]);
    assert_exit(
        &out,
        0,
        "spindle plan --compare-fields of a stack Compose made",
    );
    assert_eq!(plan_actions(&plan), vec![], "{plan:#}");

    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "spindle apply of a stack Compose made");
    assert_eq!(p.fingerprint(), containers, "same containers after apply");
    assert_eq!(resources(p), resources_before, "same networks and volumes");
}

#[test]
fn spindle_plan_after_docker_compose_up_plans_nothing() {
    let p = TestProject::new("coexist_up_then_plan", "coexist");
    compose_up_then_plan(&p);
}

#[test]
fn spindle_plan_after_docker_compose_up_of_services_sharing_another_services_namespaces_plans_nothing()
 {
    let p = TestProject::new("coexist_refs_up_then_plan", "coexist-refs");
    compose_up_then_plan(&p);
}

#[test]
fn spindle_plan_after_docker_compose_up_of_the_erp_stack_plans_nothing() {
    let p = TestProject::new("coexist_erp_up_then_plan", "erp");
    compose_up_then_plan(&p);
}

#[test]
fn plan_compare_fields_finds_a_container_carrying_composes_config_hash_that_differs_field_by_field()
{
    let p = TestProject::new("coexist_compare_fields", "plain");
    let out = p.compose(&["up", "--no-start"]);
    assert_exit(&out, 0, "docker compose up --no-start");
    // Replace b's container by one made by hand with the same labels (Compose's config-hash
    // included), network and aliases, but without `init: true`, which the hash cannot show.
    let b = p.container_name("b", 1);
    let info = p.inspect(&b);
    assert_exit(&p.docker(&["rm", "-f", &b]), 0, "docker rm");
    let mut args: Vec<String> = ["create", "--name", &b, "--stop-timeout", "1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let network = format!("{}_default", p.name());
    args.extend(["--network".into(), network.clone()]);
    let aliases = &info["NetworkSettings"]["Networks"][&network]["Aliases"];
    for alias in aliases.as_array().into_iter().flatten() {
        let alias = alias.as_str().unwrap_or_default();
        // The engine adds the short container id itself.
        if !info["Id"].as_str().unwrap_or_default().starts_with(alias) {
            args.extend(["--network-alias".into(), alias.to_string()]);
        }
    }
    for (k, v) in info["Config"]["Labels"].as_object().into_iter().flatten() {
        args.extend([
            "--label".into(),
            format!("{k}={}", v.as_str().unwrap_or_default()),
        ]);
    }
    args.extend([
        "spindle-test/busybox:1".into(),
        "/usr/local/bin/idle".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_exit(&p.docker(&args), 0, "docker create");

    // Compose's config-hash equals the desired service's: the plain plan adopts it, as Compose would.
    let out = p.spindle(&["plan", "--no-start"]);
    assert_exit(&out, 0, "spindle plan --no-start");
    // Field by field, `Init` differs from what spindle would create.
    let (out, plan) =
        p.spindle_json(&["plan", "--no-start", "--compare-fields", "--format", "json"]);
    assert_exit(&out, 2, "spindle plan --no-start --compare-fields");
    assert_eq!(
        plan_actions(&plan),
        vec![("recreate".to_string(), "b".to_string())],
        "{plan:#}"
    );
    let reason = plan["actions"][0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("not created by spindle and differs in:") && reason.contains("Init"),
        "{reason}"
    );
}

/// Sends SIGHUP and waits for the record of the reconcile it causes.
fn reconcile_now(run: &mut SpindleProcess, state: &Path) -> Value {
    let before = evidence_records(state).len();
    assert!(run.signal("HUP"), "SIGHUP could not be sent");
    wait_for("a reconcile record after SIGHUP", DEADLINE, || {
        run.assert_alive();
        let records = evidence_records(state);
        (records.len() > before).then(|| records.last().cloned().unwrap_or_default())
    })
}

fn touches(record: &Value, service: &str) -> Vec<String> {
    plan_actions(&record["plan"])
        .into_iter()
        .filter(|(verb, s)| s == service && matches!(verb.as_str(), "recreate" | "remove"))
        .map(|(verb, _)| verb)
        .collect()
}

#[test]
fn docker_compose_force_recreate_of_a_service_while_spindle_runs_succeeds_and_spindle_keeps_composes_container()
 {
    let p = TestProject::new("coexist_force_recreate", "coexist");
    let state = state_dir();
    let mut run = p.spawn_run(state.path(), &[]);
    wait_for("spindle run to converge the stack", DEADLINE, || {
        run.assert_alive();
        SERVICES
            .iter()
            .all(|s| p.is_ready(&p.container_name(s, 1)))
            .then_some(())
    });
    let spindles_backend = p.id_of("backend");
    let (networks, volumes) = resources(&p);
    let records_before = evidence_records(state.path()).len();

    let out = p.compose(&["up", "-d", "--force-recreate", "backend"]);
    assert_exit(
        &out,
        0,
        "docker compose up -d --force-recreate backend while spindle runs",
    );
    let composes_backend = p.id_of("backend");
    assert_ne!(composes_backend, spindles_backend, "Compose recreated it");
    assert_eq!(
        resources(&p),
        (networks, volumes),
        "Compose recreated no network or volume"
    );

    // spindle reconciles after Compose is done, and again once the stack is ready.
    reconcile_now(&mut run, state.path());
    assert_ready(&p, &SERVICES);
    let last = reconcile_now(&mut run, state.path());
    assert_eq!(
        p.id_of("backend"),
        composes_backend,
        "spindle keeps the container Compose made"
    );
    let records = evidence_records(state.path());
    let fights: Vec<(usize, Vec<String>)> = records
        .iter()
        .enumerate()
        .skip(records_before)
        .map(|(i, r)| (i, touches(r, "backend")))
        .filter(|(_, t)| !t.is_empty())
        .collect();
    assert!(
        fights.is_empty(),
        "spindle recreated or removed backend after Compose did: {fights:?}"
    );
    assert!(
        touches(&last, "backend").is_empty(),
        "the last reconcile leaves backend alone: {last:#}"
    );
    run.assert_alive();
}

/// The documented limit: a container spindle changed in place (here `cpus`, as a profile switch
/// does) keeps the config-hash label of its creation, so the next `docker compose up -d` recreates
/// it, and only it, once; after that Compose and spindle agree again.
#[test]
fn a_container_spindle_updated_in_place_is_recreated_once_by_docker_compose_up_and_nothing_else() {
    let p = TestProject::new("coexist_in_place", "coexist");
    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "spindle apply");
    assert_ready(&p, &SERVICES);
    let worker = p.id_of("worker");
    p.edit(
        "compose.yaml",
        "    command: [\"/usr/local/bin/idle\"]\n",
        "    command: [\"/usr/local/bin/idle\"]\n    cpus: 0.5\n",
    );
    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "spindle apply of a cpus change");
    assert_eq!(p.id_of("worker"), worker, "spindle updates cpus in place");
    let before = p.fingerprint();

    let out = p.compose(&["up", "-d", "--wait", "--wait-timeout", "150"]);
    assert_exit(&out, 0, "docker compose up -d after an in-place update");
    let after = p.fingerprint();
    let changed: Vec<&String> = after
        .iter()
        .filter(|(name, fp)| before.get(*name) != Some(fp))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        changed,
        vec![&p.container_name("worker", 1)],
        "Compose recreates the updated container and nothing else\n{}",
        describe(&out)
    );
    let out = p.compose(&["up", "-d", "--wait", "--wait-timeout", "150"]);
    assert_exit(&out, 0, "docker compose up -d again");
    assert_eq!(p.fingerprint(), after, "once only");
    let out = p.spindle(&["plan"]);
    assert_exit(
        &out,
        0,
        "spindle plan after Compose's recreate plans nothing",
    );
}

/// Whether a record's triggers include a requeue (the reconcile looked again by itself, not on an event).
fn requeued(record: &Value) -> bool {
    record["triggers"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t["kind"] == "requeue"))
}

/// Compose's recreate in flight, made by hand so that it stays in flight as long as the test wants: backend under
/// the temporary name Compose gives a replacement (`<old id 12>_<name>`). Its end (Compose's rename, then start)
/// emits no event spindle listens to, so spindle must look again by itself.
#[test]
fn a_slot_compose_is_recreating_is_looked_at_again_soon_and_the_end_of_the_recreate_is_seen_without_an_event()
 {
    let p = TestProject::new("coexist_in_flight", "coexist");
    let state = state_dir();
    let mut run = p.spawn_run(state.path(), &[]);
    assert_ready(&p, &SERVICES);
    let backend = p.container_name("backend", 1);
    let id = p.id_of("backend");
    let temporary = format!("{}_{backend}", &id[..12]);
    let before = evidence_records(state.path()).len();

    assert_exit(
        &p.docker(&["rename", &backend, &temporary]),
        0,
        "docker rename backend to Compose's temporary name",
    );
    reconcile_now(&mut run, state.path());
    // A reconcile that saw the slot in flight planned nothing for it, and the next one came by itself.
    let (seen_at, seen) = wait_for("a reconcile that saw backend in flight", DEADLINE, || {
        run.assert_alive();
        evidence_records(state.path())
            .into_iter()
            .enumerate()
            .skip(before)
            .find(|(_, r)| r["plan"]["in_flight"][0]["replacement"]["name"] == temporary.as_str())
    });
    assert_eq!(
        seen["plan"]["in_flight"][0]["service"], "backend",
        "{seen:#}"
    );
    assert!(
        plan_actions(&seen["plan"])
            .iter()
            .all(|(_, s)| s != "backend"),
        "nothing is planned for a slot in flight: {seen:#}"
    );
    wait_for("a requeue after the in-flight reconcile", DEADLINE, || {
        run.assert_alive();
        evidence_records(state.path())
            .iter()
            .skip(seen_at + 1)
            .any(requeued)
            .then_some(())
    });

    // "Compose" renames its replacement: no event spindle listens to, and spindle sees it anyway.
    let renamed_at = evidence_records(state.path()).len();
    assert_exit(
        &p.docker(&["rename", &temporary, &backend]),
        0,
        "docker rename backend back",
    );
    let done = wait_for(
        "a requeued reconcile that sees nothing in flight",
        DEADLINE,
        || {
            run.assert_alive();
            evidence_records(state.path())
                .into_iter()
                .skip(renamed_at)
                .find(|r| requeued(r) && r["plan"]["in_flight"].is_null())
        },
    );
    assert!(touches(&done, "backend").is_empty(), "{done:#}");
    assert_eq!(p.id_of("backend"), id, "spindle kept the container");
    let records = evidence_records(state.path());
    let fights: Vec<Vec<String>> = records
        .iter()
        .skip(before)
        .map(|r| touches(r, "backend"))
        .filter(|t| !t.is_empty())
        .collect();
    assert!(
        fights.is_empty(),
        "spindle recreated or removed backend: {fights:?}"
    );
    run.assert_alive();
}
