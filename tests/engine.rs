//! The engine connection and the observe snapshot against the real Docker engine.
//!
//! Each test uses its own project name (`spindle-h-engine-<random>`) and a guard that removes
//! every container, network and volume carrying that project label, even when the test fails.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use spindle::desired::typed::{
    DesiredNetwork, DesiredService, DesiredState, DesiredVolume, PullPolicy,
};
use spindle::engine::{Engine, EngineError, EngineOptions, MIN_API_VERSION};
use spindle::observe::snapshot::{Health, RunState};

const IMAGE: &str = "spindle-test/busybox:1";
const PROJECT_LABEL: &str = "com.docker.compose.project";

/// A test project: a unique name, and cleanup of everything labelled with it on drop.
struct Project {
    name: String,
}

impl Project {
    fn new(what: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "spindle-h-engine-{what}-{:x}{:x}{}",
            std::process::id(),
            nanos,
            N.fetch_add(1, Ordering::Relaxed)
        );
        Self { name }
    }

    fn label(&self) -> String {
        format!("{PROJECT_LABEL}={}", self.name)
    }

    /// `docker run -d` (or `create` when `start` is false) a container of this project.
    fn container(&self, service: &str, number: u32, extra: &[&str], start: bool) -> String {
        let name = format!("{}-{service}-{number}", self.name);
        let mut cmd = Command::new("docker");
        cmd.arg(if start { "run" } else { "create" });
        if start {
            cmd.arg("-d");
        }
        cmd.args(["--name", &name, "--label", &self.label()])
            .args([
                "--label",
                &format!("com.docker.compose.service={service}"),
                "--label",
                &format!("com.docker.compose.container-number={number}"),
            ])
            .args(extra);
        let out = cmd.output().expect("docker runs");
        assert!(
            out.status.success(),
            "docker {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn docker(&self, args: &[&str]) -> String {
        let out = Command::new("docker")
            .args(args)
            .output()
            .expect("docker runs");
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn desired(&self, services: &[(&str, &str)]) -> DesiredState {
        DesiredState {
            model: serde_json::Value::Null,
            project: self.name.clone(),
            working_dir: std::env::temp_dir(),
            config_files: Vec::new(),
            environment_files: Vec::new(),
            revision: None,
            services: services
                .iter()
                .map(|(name, image)| {
                    (
                        name.to_string(),
                        DesiredService {
                            name: name.to_string(),
                            image: image.to_string(),
                            spec_hash: String::new(),
                            replicas: 1,
                            depends_on: Vec::new(),
                            has_healthcheck: false,
                            pull_policy: PullPolicy::Missing,
                            container_name: None,
                            on_dependency_change: None,
                            pre_recreate: None,
                            update: Default::default(),
                            probes: Vec::new(),
                            model: json!({"image": image}),
                        },
                    )
                })
                .collect(),
            networks: BTreeMap::new(),
            volumes: BTreeMap::new(),
        }
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let filter = format!("label={}", self.label());
        let list = |args: &[&str]| -> Vec<String> {
            Command::new("docker")
                .args(args)
                .output()
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .split_whitespace()
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let remove = |cmd: &[&str], ids: Vec<String>| {
            if !ids.is_empty() {
                let _ = Command::new("docker").args(cmd).args(&ids).output();
            }
        };
        remove(
            &["rm", "-f", "-v"],
            list(&["ps", "-aq", "--filter", &filter]),
        );
        remove(
            &["network", "rm"],
            list(&["network", "ls", "-q", "--filter", &filter]),
        );
        remove(
            &["volume", "rm", "-f"],
            list(&["volume", "ls", "-q", "--filter", &filter]),
        );
    }
}

async fn engine() -> Engine {
    match Engine::connect().await {
        Ok(e) => e,
        Err(e) => panic!("{e}"),
    }
}

/// Polls until the container reports the health status, or panics after `limit`.
fn wait_health(project: &Project, name: &str, status: &str, limit: Duration) {
    let start = Instant::now();
    loop {
        let h = project.docker(&["inspect", "-f", "{{.State.Health.Status}}", name]);
        if h == status {
            return;
        }
        assert!(start.elapsed() < limit, "{name} is {h}, not {status}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test]
async fn connect_negotiates_an_api_version_docker_20_10_speaks() {
    let e = engine().await;
    let v = e.api_version();
    assert!(v >= MIN_API_VERSION, "{v:?}");
    // The engine here is Docker 20.10: the client must have come down to its API.
    let server = Command::new("docker")
        .args(["version", "-f", "{{.Server.APIVersion}}"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    assert_eq!(format!("{}.{}", v.0, v.1), server);
    // The ping and the version are the only requests, and both are reads.
    assert_eq!(e.requests().writes, 0);
    assert_eq!(e.requests().reads, 2);
    assert!(e.address().starts_with("unix://") || e.address().starts_with("tcp://"));
}

async fn assert_unreachable(host: &str) {
    let start = Instant::now();
    let r = Engine::connect_with(EngineOptions {
        host: Some(host.to_string()),
        ..Default::default()
    })
    .await;
    let elapsed = start.elapsed();
    let err = match r {
        Ok(_) => panic!("{host} connected"),
        Err(e) => e,
    };
    assert!(err.is_unreachable(), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(host), "{text}");
    assert!(text.contains("is the Docker daemon running?"), "{text}");
    assert!(text.contains("DOCKER_HOST"), "{text}");
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}

#[tokio::test]
async fn a_missing_unix_socket_is_a_quick_clear_error() {
    assert_unreachable("unix:///nonexistent.sock").await;
}

#[tokio::test]
async fn a_refused_tcp_address_is_a_quick_clear_error() {
    assert_unreachable("tcp://127.0.0.1:1").await;
}

/// Run in a child process by the next test, with `DOCKER_HOST` set (the environment is
/// process-wide, so it is never changed in this one).
#[tokio::test]
async fn docker_host_child() {
    if std::env::var_os("SPINDLE_ENGINE_TEST_CHILD").is_none() {
        return;
    }
    match Engine::connect().await {
        Ok(_) => panic!("connected despite DOCKER_HOST"),
        Err(e) => println!("CHILD-ERROR: {e}"),
    }
}

#[test]
fn docker_host_names_the_engine_to_connect_to() {
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new(exe)
        .args(["--exact", "docker_host_child", "--nocapture"])
        .env("SPINDLE_ENGINE_TEST_CHILD", "1")
        .env("DOCKER_HOST", "tcp://127.0.0.1:1")
        .output()
        .expect("child runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("CHILD-ERROR: cannot reach the docker engine at tcp://127.0.0.1:1"),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_snapshot_sees_the_project_s_containers_with_state_health_and_number() {
    let p = Project::new("snap");
    let health = [
        "--health-cmd",
        "wget -q -O- http://127.0.0.1:8080/health",
        "--health-interval",
        "1s",
    ];
    let mut web_args: Vec<&str> = health.to_vec();
    web_args.extend([
        "--cpus",
        "0.5",
        "--restart",
        "always",
        IMAGE,
        "serve",
        "8080",
    ]);
    p.container("web", 1, &web_args, true);
    p.container("web", 2, &web_args, true);
    p.container("job", 1, &[IMAGE, "sh", "-c", "exit 3"], true);
    p.container("late", 1, &[IMAGE], false);
    // A one-off (`docker compose run`) container is not part of the project's services.
    p.container(
        "web",
        3,
        &["--label", "com.docker.compose.oneoff=True", IMAGE],
        false,
    );
    p.docker(&[
        "network",
        "create",
        "--label",
        &p.label(),
        &format!("{}_default", p.name),
    ]);
    p.docker(&[
        "volume",
        "create",
        "--label",
        &p.label(),
        &format!("{}_data", p.name),
    ]);
    // Another project's container stays invisible.
    let other = Project::new("other");
    other.container("web", 1, &[IMAGE], false);
    wait_health(
        &p,
        &format!("{}-web-1", p.name),
        "healthy",
        Duration::from_secs(20),
    );
    wait_health(
        &p,
        &format!("{}-web-2", p.name),
        "healthy",
        Duration::from_secs(20),
    );
    p.docker(&["wait", &format!("{}-job-1", p.name)]);

    let e = engine().await;
    let mut desired = p.desired(&[("web", IMAGE), ("ghost", "spindle-test/absent:9")]);
    let ext_net = format!("{}_default", p.name);
    desired.networks.insert(
        "outside".into(),
        DesiredNetwork {
            key: "outside".into(),
            name: ext_net.clone(),
            external: true,
            model: json!({}),
        },
    );
    desired.volumes.insert(
        "gone".into(),
        DesiredVolume {
            key: "gone".into(),
            name: format!("{}_nowhere", p.name),
            external: true,
            model: json!({}),
        },
    );
    let before = e.requests();
    let snap = match spindle::observe::snapshot(&e, &desired).await {
        Ok(s) => s,
        Err(err) => panic!("{err}"),
    };
    let used = e.requests().since(before);
    assert_eq!(used.writes, 0, "a snapshot only reads");
    assert!(used.reads >= 4 + 3, "{used:?}");

    let seen: Vec<(String, u32, RunState, Health)> = snap
        .containers
        .iter()
        .map(|c| (c.service.clone(), c.number, c.state, c.health))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("job".into(), 1, RunState::Exited, Health::None),
            ("late".into(), 1, RunState::Created, Health::None),
            ("web".into(), 1, RunState::Running, Health::Healthy),
            ("web".into(), 2, RunState::Running, Health::Healthy),
        ]
    );
    let job = &snap.containers[0];
    assert_eq!(job.exit_code, 3);
    assert!(job.finished_at.is_some());
    let web = &snap.containers[2];
    assert_eq!(web.name, format!("{}-web-1", p.name));
    assert_eq!(web.live.nano_cpus, 500_000_000);
    assert_eq!(web.live.restart_policy, "always");
    assert!(web.started_at.is_some());
    assert_eq!(web.inspect["State"]["Health"]["Status"], "healthy");
    let busybox_id = p.docker(&["image", "inspect", "-f", "{{.Id}}", IMAGE]);
    assert_eq!(web.image_id, busybox_id);

    assert_eq!(snap.images.get(IMAGE), Some(&busybox_id));
    assert!(!snap.images.contains_key("spindle-test/absent:9"));
    assert_eq!(snap.networks.keys().collect::<Vec<_>>(), vec![&ext_net]);
    assert_eq!(snap.networks[&ext_net].driver, "bridge");
    assert_eq!(snap.networks[&ext_net].config_hash, None);
    assert_eq!(
        snap.volumes.keys().cloned().collect::<Vec<_>>(),
        vec![format!("{}_data", p.name)]
    );
    assert_eq!(snap.external_networks, vec![ext_net]);
    assert!(snap.external_volumes.is_empty());
}

#[tokio::test]
async fn writes_are_counted_apart_from_reads_and_do_what_they_say() {
    let p = Project::new("write");
    let e = engine().await;
    let start = e.requests();

    let net = format!("{}_net", p.name);
    let labels = json!({PROJECT_LABEL: p.name});
    let net_id = e
        .create_network(&json!({"Name": net, "Driver": "bridge", "Labels": labels}))
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert!(!net_id.is_empty());
    let vol = e
        .create_volume(&json!({"Name": format!("{}_data", p.name), "Labels": labels}))
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(vol, format!("{}_data", p.name));

    let name = format!("{}-app-1", p.name);
    let body = json!({
        "Image": IMAGE,
        "Cmd": ["serve", "8080"],
        "Env": ["GREETING=hello"],
        "Labels": {PROJECT_LABEL: p.name, "com.docker.compose.service": "app", "com.docker.compose.container-number": "1"},
        "HostConfig": {"NanoCpus": 250_000_000, "Memory": 64 << 20, "RestartPolicy": {"Name": "no"},
                       "Binds": [format!("{vol}:/data")]},
    });
    let id = e
        .create_container(&name, &body)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    e.connect_network(&net, &id, &json!({"Aliases": ["app"]}))
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    e.start(&id).await.unwrap_or_else(|err| panic!("{err}"));
    e.update(
        &id,
        &json!({"Memory": 96 << 20, "MemorySwap": 192 << 20, "RestartPolicy": {"Name": "unless-stopped"}}),
    )
    .await
    .unwrap_or_else(|err| panic!("{err}"));
    let renamed = format!("{name}-old");
    e.rename(&id, &renamed)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    e.restart(&id, Some(1))
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let writes = e.requests().since(start).writes;
    assert_eq!(
        writes, 8,
        "network, volume, create, connect, start, update, rename, restart"
    );

    let inspected = e
        .inspect_container(&id)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let c = spindle::observe::observed_from_inspect(inspected.raw.clone())
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(c.name, renamed);
    assert_eq!(c.state, RunState::Running);
    assert_eq!(c.live.memory, 96 << 20);
    assert_eq!(c.live.nano_cpus, 250_000_000);
    assert_eq!(c.live.restart_policy, "unless-stopped");
    assert!(
        inspected.raw["NetworkSettings"]["Networks"]
            .get(&net)
            .is_some(),
        "{}",
        inspected.raw["NetworkSettings"]
    );
    assert_eq!(
        inspected.typed.id.as_deref(),
        Some(id.as_str()),
        "typed and raw agree"
    );

    let reads_before = e.requests();
    e.kill(&id, None)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let code = e
        .wait_exit(&id, Duration::from_secs(10))
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(code, 137);
    e.stop(&id, Some(1))
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    e.remove(&id, false)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    e.remove_network(&net)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let used = e.requests().since(reads_before);
    assert_eq!(
        used,
        spindle::engine::RequestCounts {
            reads: 1,
            writes: 4
        }
    );
    assert!(
        e.inspect_container(&id)
            .await
            .is_err_and(|e| e.is_not_found()),
        "removed"
    );
}

#[tokio::test]
async fn engine_errors_are_classified_and_name_the_operation_and_target() {
    let p = Project::new("errors");
    let e = engine().await;

    let missing = format!("{}-nothing-1", p.name);
    let err = e.inspect_container(&missing).await.expect_err("not found");
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(err.status(), Some(404));
    assert!(
        err.to_string()
            .starts_with(&format!("inspect container {missing}: not found")),
        "{err}"
    );
    assert_eq!(e.image_id("spindle-test/absent:9").await.ok(), Some(None));
    assert!(
        spindle::engine::optional(e.inspect_network(&missing).await).is_ok_and(|n| n.is_none())
    );

    let name = format!("{}-dup-1", p.name);
    let body = json!({"Image": IMAGE, "Labels": {PROJECT_LABEL: p.name}});
    e.create_container(&name, &body)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let err = e
        .create_container(&name, &body)
        .await
        .expect_err("conflict");
    assert!(err.is_conflict(), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("create container {name}: conflict"))
    );

    // An image that is not present is a 404 on create.
    let err = e
        .create_container(
            &format!("{}-noimage-1", p.name),
            &json!({"Image": "spindle-test/absent:9", "Labels": {PROJECT_LABEL: p.name}}),
        )
        .await
        .expect_err("no image");
    assert!(err.is_not_found(), "{err:?}");

    // Environment values never reach an error, even when the engine echoes them.
    let err = e
        .create_container(
            &format!("{}-env-1", p.name),
            &json!({"Image": IMAGE, "Env": ["=s3cr3t-value-xyz"], "Labels": {PROJECT_LABEL: p.name}}),
        )
        .await
        .expect_err("invalid env");
    let text = err.to_string();
    assert!(!text.contains("s3cr3t-value-xyz"), "{text}");
    assert!(text.contains("<redacted>"), "{text}");

    // A body field the client model does not know is refused before any request.
    let writes = e.requests().writes;
    let err = e
        .create_container(
            &format!("{}-bad-1", p.name),
            &json!({"Image": IMAGE, "HostConfig": {"Bogus": true}}),
        )
        .await
        .expect_err("invalid body");
    assert!(matches!(err, EngineError::InvalidBody { .. }), "{err:?}");
    assert_eq!(e.requests().writes, writes);

    // No registry here: a pull fails, classified and naming the image.
    let start = Instant::now();
    let err = e
        .pull("spindle-test/absent:9")
        .await
        .expect_err("no registry");
    assert!(err.is_pull_failure(), "{err:?}");
    assert!(
        err.to_string().starts_with("pull spindle-test/absent:9: "),
        "{err}"
    );
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn every_call_is_bounded_by_its_timeout() {
    let p = Project::new("timeout");
    let e = engine().await;
    let id = p.container("idle", 1, &[IMAGE], true);
    let start = Instant::now();
    let err = e
        .wait_exit(&id, Duration::from_millis(300))
        .await
        .expect_err("still running");
    assert!(err.is_timeout(), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_eq!(
        err.to_string(),
        format!("wait for container {id}: timed out after 300ms")
    );
    let quick = e.clone().with_timeout(Duration::from_nanos(1));
    let err = quick.list_containers(&[&p.label()]).await.err();
    assert!(err.is_some_and(|e| e.is_timeout()));
}

#[tokio::test]
async fn the_inspect_document_keeps_what_the_engine_sent() {
    let p = Project::new("raw");
    let id = p.container(
        "web",
        1,
        &[
            "--memory",
            "64m",
            "-e",
            "A=b",
            "-p",
            "127.0.0.1::8080",
            IMAGE,
        ],
        true,
    );
    let e = engine().await;
    let ours = e
        .inspect_container(&id)
        .await
        .unwrap_or_else(|err| panic!("{err}"))
        .raw;
    let cli: serde_json::Value =
        serde_json::from_str(&p.docker(&["inspect", &id])).expect("docker inspect prints JSON");
    let theirs = &cli[0];
    for path in [
        "/Id",
        "/Name",
        "/Image",
        "/State/Status",
        "/State/StartedAt",
        "/Config/Env",
        "/Config/Labels",
        "/Config/Cmd",
        "/HostConfig/Memory",
        "/HostConfig/PortBindings",
        "/HostConfig/RestartPolicy",
        "/NetworkSettings/Ports",
        "/NetworkSettings/Networks/bridge/IPAddress",
        "/Mounts",
    ] {
        assert_eq!(ours.pointer(path), theirs.pointer(path), "{path}");
    }
}

#[tokio::test]
async fn events_of_the_project_arrive_as_they_happen() {
    use futures_util::StreamExt;
    let p = Project::new("events");
    let e = engine().await;
    let mut events = Box::pin(e.events(&p.name));
    let id = p.container("web", 1, &[IMAGE], true);
    let mut actions = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !actions.contains(&"start".to_string()) && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), events.next()).await {
            Ok(Some(Ok(ev))) => {
                assert_eq!(ev.id, id);
                assert_eq!(ev.kind, "container");
                assert_eq!(
                    ev.attributes.get(PROJECT_LABEL).map(String::as_str),
                    Some(p.name.as_str())
                );
                actions.push(ev.action);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(actions, vec!["create".to_string(), "start".to_string()]);
}

#[tokio::test]
async fn a_filtered_event_stream_brings_only_the_actions_asked_for_and_no_healthcheck_execs() {
    use futures_util::StreamExt;
    let p = Project::new("events-filtered");
    let e = engine().await;
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_nanos()).ok());
    let mut events = Box::pin(e.events_since(&p.name, since, &["health_status", "die"]));
    // A healthcheck every 200 ms: a stream filtered only by label would carry its
    // exec_create/exec_start/exec_die events, many a second.
    let id = p.container(
        "web",
        1,
        &[
            "--health-cmd",
            "true",
            "--health-interval",
            "200ms",
            "--stop-timeout",
            "1",
            IMAGE,
        ],
        true,
    );
    let mut actions = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !actions
        .iter()
        .any(|a: &String| a.starts_with("health_status"))
        && Instant::now() < deadline
    {
        if let Ok(Some(Ok(ev))) = tokio::time::timeout(Duration::from_secs(10), events.next()).await
        {
            assert_eq!(ev.id, id);
            actions.push(ev.action);
        }
    }
    p.docker(&["kill", &id]);
    while !actions.contains(&"die".to_string()) && Instant::now() < deadline {
        if let Ok(Some(Ok(ev))) = tokio::time::timeout(Duration::from_secs(10), events.next()).await
        {
            actions.push(ev.action);
        }
    }
    assert!(
        actions.iter().any(|a| a == "health_status: healthy"),
        "health_status matches its `health_status: …` actions: {actions:?}"
    );
    assert!(actions.contains(&"die".to_string()), "{actions:?}");
    assert!(
        actions
            .iter()
            .all(|a| a == "die" || a.starts_with("health_status")),
        "only the actions asked for arrive (no create, start, kill or exec_*): {actions:?}"
    );
}
