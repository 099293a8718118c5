//! Benchmark: `spindle::plan::plan` on a 200-service project against a realistic observed snapshot.
//!
//! The desired state is loaded the way `spindle plan` loads it: a compose folder written to a temp
//! dir, `spindle::desired::load`, then `DesiredState::from_project`. The snapshot gives the planner
//! real work; by service index `i`:
//! - `i % 10` in 0..=5: in sync, created by spindle (spec-hash label = the desired hash);
//! - 6: environment changed since creation (another spec hash, older env in inspect) → recreate;
//! - 7: no container → create;
//! - 8: a live limit changed (memory) with the same spec hash → update in place;
//! - 9: in sync, created by `docker compose up` (no spindle label) → compare inspect, adopt.
//!
//! Every container is running, carries Compose's labels and a full inspect document; networks,
//! volumes and images are all present.
//!
//! Run: `cargo bench --bench plan` (criterion; wall time of one thread, which is CPU time for a
//! pure function). `bench/plan-cpu.sh` measures CPU time with getrusage instead: it runs this
//! binary with `PLAN_CPU_ITERS=N` (a plain loop, no criterion) and subtracts a run with 0.
//! `PLAN_SERVICES` changes the number of services (default 200); `PLAN_DUMP=FILE` writes the
//! snapshot (inspect documents included) as JSON instead of benchmarking.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use criterion::Criterion;
use serde_json::{Value, json};
use spindle::desired::typed::{DesiredService, DesiredState};
use spindle::desired::{self, Request};
use spindle::labels;
use spindle::observe::snapshot::{
    Health, LiveConfig, ObservedContainer, ObservedNetwork, ObservedVolume, RunState, Snapshot,
};
use spindle::plan::{self, PlanOptions};

const PROJECT: &str = "bench-plan";
const REVISION: &str = "0123456789abcdef0123456789abcdef01234567";

/// What the snapshot holds for one service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    InSync,
    EnvChanged,
    Missing,
    LiveChanged,
    Adopt,
}

fn case_of(i: usize) -> Case {
    match i % 10 {
        6 => Case::EnvChanged,
        7 => Case::Missing,
        8 => Case::LiveChanged,
        9 => Case::Adopt,
        _ => Case::InSync,
    }
}

// ---------------------------------------------------------------------------------------------
// The desired state: a generated compose folder, loaded like `spindle plan` loads it.
// ---------------------------------------------------------------------------------------------

/// Services in groups of ten: a database and a cache with healthchecks and volumes, then eight
/// backend services that depend on them (half with a healthcheck, some on a second network).
fn compose_yaml(n: usize) -> (String, Vec<String>) {
    let mut names = Vec::with_capacity(n);
    let mut y = String::from(
        "name: bench-plan\n\n\
         x-base: &base\n  init: true\n  restart: unless-stopped\n  stop_grace_period: 5s\n  \
         logging:\n    driver: json-file\n    options:\n      max-size: 10m\n      max-file: \"3\"\n\n\
         x-health: &health\n  interval: 1s\n  timeout: 2s\n  retries: 30\n  start_period: 10s\n\n\
         x-env: &env\n  TZ: ${TZ:-UTC}\n  LOG_LEVEL: ${LOG_LEVEL:-info}\n  APP_ENV: production\n  \
         WORKERS: \"4\"\n\nservices:\n",
    );
    for i in 0..n {
        let g = i / 10 * 10;
        let s = match i % 10 {
            0 => {
                let name = format!("db-{i}");
                y += &format!(
                    "  {name}:\n    <<: *base\n    image: spindle-sample/mariadb:1\n    \
                     command: [\"/usr/local/bin/serve\", \"3306\"]\n    mem_limit: 1g\n    \
                     environment:\n      MARIADB_DATABASE: app_{i}\n      MARIADB_USER: app\n    \
                     volumes:\n      - db-{i}:/var/lib/mysql\n    networks: [back]\n    \
                     healthcheck:\n      <<: *health\n      \
                     test: [\"CMD\", \"wget\", \"-q\", \"-O-\", \"http://127.0.0.1:3306/health\"]\n    \
                     labels:\n      com.example.group: \"g{g}\"\n      com.example.role: database\n"
                );
                name
            }
            1 => {
                let name = format!("cache-{i}");
                y += &format!(
                    "  {name}:\n    <<: *base\n    image: spindle-sample/redis:1\n    \
                     command: [\"/usr/local/bin/serve\", \"6379\"]\n    \
                     volumes:\n      - cache-{i}:/data\n    networks: [back]\n    \
                     healthcheck:\n      <<: *health\n      \
                     test: [\"CMD-SHELL\", \"wget -q -O- http://127.0.0.1:6379/health || exit 1\"]\n    \
                     labels:\n      - com.example.group=g{g}\n      - com.example.role=cache\n"
                );
                name
            }
            kind => {
                let name = format!("app-{i}");
                let networks = if kind % 3 == 0 {
                    "[back, front]"
                } else {
                    "[back]"
                };
                y += &format!(
                    "  {name}:\n    <<: *base\n    image: spindle-sample/erp-backend:1\n    \
                     command: [\"/usr/local/bin/serve\", \"8000\"]\n    hostname: {name}\n    \
                     environment:\n      <<: *env\n      SERVICE_NAME: {name}\n      \
                     DATABASE_URL: mysql://app@db-{g}:3306/app_{g}\n      \
                     CACHE_URL: redis://cache-{c}:6379/{kind}\n      RELEASE: \"2024.12.{kind}\"\n    \
                     expose: [\"8000\"]\n    volumes:\n      - uploads-{g}:/srv/uploads\n    \
                     networks: {networks}\n    \
                     deploy:\n      resources:\n        limits:\n          cpus: \"0.50\"\n          \
                     memory: 256M\n    \
                     depends_on:\n      db-{g}:\n        condition: service_healthy\n        restart: true\n      \
                     cache-{c}:\n        condition: service_started\n    \
                     labels:\n      com.example.group: \"g{g}\"\n      com.example.role: app\n      \
                     traefik.http.routers.{name}.rule: Host(`{name}.example.com`)\n",
                    c = g + 1,
                );
                if kind % 2 == 0 {
                    y += "    healthcheck:\n      <<: *health\n      \
                          test: [\"CMD\", \"wget\", \"-q\", \"-O-\", \"http://127.0.0.1:8000/health\"]\n";
                }
                name
            }
        };
        names.push(s);
    }
    y += "\nnetworks:\n  back:\n  front:\n\nvolumes:\n";
    for g in (0..n).step_by(10) {
        y += &format!("  db-{g}:\n  cache-{}:\n  uploads-{g}:\n", g + 1);
    }
    (y, names)
}

fn load_desired(dir: &Path, n: usize) -> (DesiredState, Vec<String>) {
    let (yaml, names) = compose_yaml(n);
    if let Err(e) = std::fs::write(dir.join("compose.yaml"), yaml) {
        fail(&format!("cannot write the compose file: {e}"));
    }
    let req = Request {
        desired_state: Some(dir.to_path_buf()),
        project_name: Some(PROJECT.to_string()),
        cwd: dir.to_path_buf(),
        ..Request::default()
    };
    let project = desired::load(&req).unwrap_or_else(|e| fail(&format!("load: {e}")));
    let state = DesiredState::from_project(&project, Some(REVISION.to_string()))
        .unwrap_or_else(|e| fail(&format!("typed view: {e}")));
    if state.services.len() != n {
        fail(&format!(
            "expected {n} services, loaded {}",
            state.services.len()
        ));
    }
    (state, names)
}

// ---------------------------------------------------------------------------------------------
// The observed snapshot.
// ---------------------------------------------------------------------------------------------

/// A fake 64-hex-digit ID, stable per seed.
fn fake_id(seed: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(seed.as_bytes()))
}

/// `1s`, `500ms`, `1m30s` → nanoseconds (0 when it cannot tell).
fn duration_ns(s: &str) -> i64 {
    let mut total: i64 = 0;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_alphabetic() {
                unit.push(d);
                chars.next();
            } else {
                break;
            }
        }
        let scale = match unit.as_str() {
            "h" => 3_600e9,
            "m" => 60e9,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            _ => 0.0,
        };
        total += (num.parse::<f64>().unwrap_or(0.0) * scale) as i64;
        num.clear();
    }
    total
}

fn str_i64(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

/// The live settings Docker would report for a container created from the model.
fn live_of(model: &Value) -> LiveConfig {
    let limits = model.pointer("/deploy/resources/limits");
    let cpus = limits
        .and_then(|l| l.get("cpus"))
        .or_else(|| model.get("cpus"))
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let memory = match limits.and_then(|l| l.get("memory")) {
        Some(m) => str_i64(Some(m)),
        None => str_i64(model.get("mem_limit")),
    };
    LiveConfig {
        nano_cpus: (cpus * 1e9) as i64,
        memory,
        restart_policy: model
            .get("restart")
            .and_then(Value::as_str)
            .unwrap_or("no")
            .to_string(),
        ..LiveConfig::default()
    }
}

/// Compose's labels on a container of `svc`, plus spindle's when spindle created it.
fn container_labels(
    d: &DesiredState,
    svc: &DesiredService,
    spec_hash: Option<&str>,
) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    if let Some(Value::Object(user)) = svc.model.get("labels") {
        for (k, v) in user {
            l.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
        }
    }
    let dir = d.working_dir.display().to_string();
    let files: Vec<String> = d
        .config_files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    let depends: Vec<String> = svc
        .depends_on
        .iter()
        .map(|dep| {
            let cond = match dep.condition {
                spindle::desired::typed::Condition::ServiceStarted => "service_started",
                spindle::desired::typed::Condition::ServiceHealthy => "service_healthy",
                spindle::desired::typed::Condition::ServiceCompletedSuccessfully => {
                    "service_completed_successfully"
                }
            };
            format!("{}:{cond}:{}", dep.service, dep.restart)
        })
        .collect();
    l.insert(labels::PROJECT.into(), d.project.clone());
    l.insert(labels::SERVICE.into(), svc.name.clone());
    l.insert(labels::CONTAINER_NUMBER.into(), "1".into());
    l.insert(labels::ONEOFF.into(), "False".into());
    l.insert(labels::CONFIG_FILES.into(), files.join(","));
    l.insert(labels::WORKING_DIR.into(), dir);
    l.insert(labels::DEPENDS_ON.into(), depends.join(","));
    l.insert(
        labels::IMAGE.into(),
        format!("sha256:{}", fake_id(&svc.image)),
    );
    l.insert(labels::VERSION.into(), "5.6.1".into());
    match spec_hash {
        Some(h) => {
            l.insert(labels::CONFIG_HASH.into(), h.to_string());
            l.insert(labels::SPEC_HASH.into(), h.to_string());
            l.insert(labels::REVISION.into(), REVISION.into());
            l.insert(labels::MANAGED_BY.into(), "spindle".into());
        }
        None => {
            // Compose's own config hash: some other digest of the same service.
            l.insert(
                labels::CONFIG_HASH.into(),
                fake_id(&format!("compose:{}", svc.name)),
            );
        }
    }
    l
}

/// A `docker container inspect` document for a container created from `model`.
fn inspect_of(
    d: &DesiredState,
    svc: &DesiredService,
    model: &Value,
    c: &ObservedContainer,
) -> Value {
    let (id, name, live) = (&c.id, &c.name, &c.live);
    let mut env: Vec<String> = model
        .get("environment")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}={s}"),
                    Value::Null => k.clone(),
                    other => format!("{k}={other}"),
                })
                .collect()
        })
        .unwrap_or_default();
    env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    let healthcheck = model.get("healthcheck").map(|h| {
        let ns = |k: &str| h.get(k).and_then(Value::as_str).map_or(0, duration_ns);
        json!({
            "Test": h.get("test").cloned().unwrap_or(Value::Null),
            "Interval": ns("interval"),
            "Timeout": ns("timeout"),
            "StartPeriod": ns("start_period"),
            "Retries": h.get("retries").cloned().unwrap_or(Value::Null),
        })
    });
    let exposed: serde_json::Map<String, Value> = model
        .get("expose")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|p| (format!("{p}/tcp"), json!({})))
                .collect()
        })
        .unwrap_or_default();
    let mounts: Vec<Value> = model
        .get("volumes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|v| {
                    let source = v.get("source").and_then(Value::as_str).unwrap_or_default();
                    let vol = d
                        .volumes
                        .get(source)
                        .map_or(source.to_string(), |x| x.name.clone());
                    json!({
                        "Type": "volume",
                        "Source": vol,
                        "Target": v.get("target").cloned().unwrap_or(Value::Null),
                        "ReadOnly": v.get("read_only").and_then(Value::as_bool).unwrap_or(false),
                        "VolumeOptions": {},
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let networks: serde_json::Map<String, Value> = model
        .get("networks")
        .and_then(Value::as_object)
        .map(|m| {
            m.keys()
                .map(|k| {
                    let net = d.networks.get(k).map_or(k.clone(), |x| x.name.clone());
                    (
                        net.clone(),
                        json!({
                            "Aliases": [name, svc.name],
                            "NetworkID": fake_id(&net),
                            "EndpointID": fake_id(&format!("{id}{net}")),
                            "IPAddress": "172.18.0.2",
                            "IPPrefixLen": 16,
                            "MacAddress": "02:42:ac:12:00:02",
                        }),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let logging = model.get("logging");
    let argv: Vec<Value> = model
        .get("command")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    json!({
        "Id": id,
        "Created": "2026-11-30T01:00:00.000000000Z",
        "Path": argv.first().cloned().unwrap_or(Value::Null),
        "Args": argv.get(1..).unwrap_or_default(),
        "State": {
            "Status": "running", "Running": true, "Paused": false, "Restarting": false,
            "OOMKilled": false, "Dead": false, "Pid": 4242, "ExitCode": 0, "Error": "",
            "StartedAt": "2026-11-30T01:00:01.000000000Z",
            "FinishedAt": "0001-01-01T00:00:00Z",
            "Health": if healthcheck.is_some() {
                json!({"Status": "healthy", "FailingStreak": 0, "Log": []})
            } else { Value::Null },
        },
        "Image": c.image_id,
        "Name": format!("/{name}"),
        "RestartCount": 0,
        "Driver": "overlay2",
        "HostConfig": {
            "Binds": null,
            "NetworkMode": format!("{}_back", d.project),
            "PortBindings": {},
            "RestartPolicy": {"Name": live.restart_policy, "MaximumRetryCount": 0},
            "Init": model.get("init").cloned().unwrap_or(Value::Null),
            "LogConfig": {
                "Type": logging.and_then(|l| l.get("driver")).cloned().unwrap_or(json!("json-file")),
                "Config": logging.and_then(|l| l.get("options")).cloned().unwrap_or(json!({})),
            },
            "Mounts": mounts,
            "NanoCpus": live.nano_cpus,
            "Memory": live.memory,
            "MemoryReservation": live.memory_reservation,
            "MemorySwap": live.memory_swap,
            "CpuShares": live.cpu_shares,
            "PidsLimit": null,
            "ReadonlyRootfs": false,
            "Privileged": false,
            "CapAdd": null,
            "CapDrop": null,
        },
        "Config": {
            "Hostname": model.get("hostname").cloned().unwrap_or_else(|| json!(id.get(..12).unwrap_or(id))),
            "User": "",
            "ExposedPorts": exposed,
            "Env": env,
            "Cmd": model.get("command").cloned().unwrap_or(Value::Null),
            "Entrypoint": model.get("entrypoint").cloned().unwrap_or(Value::Null),
            "Image": svc.image,
            "WorkingDir": "",
            "Labels": c.labels,
            "StopSignal": "SIGTERM",
            "StopTimeout": model.get("stop_grace_period").and_then(Value::as_str)
                .map(|s| duration_ns(s) / 1_000_000_000),
            "Healthcheck": healthcheck,
        },
        "NetworkSettings": {"Networks": networks},
    })
}

fn build_snapshot(d: &DesiredState, names: &[String]) -> Snapshot {
    let mut snap = Snapshot {
        project: d.project.clone(),
        ..Snapshot::default()
    };
    for svc in d.services.values() {
        snap.images
            .insert(svc.image.clone(), format!("sha256:{}", fake_id(&svc.image)));
    }
    for net in d.networks.values() {
        let mut l = BTreeMap::new();
        l.insert(labels::PROJECT.to_string(), d.project.clone());
        l.insert(labels::NETWORK.to_string(), net.key.clone());
        snap.networks.insert(
            net.name.clone(),
            ObservedNetwork {
                id: fake_id(&net.name),
                name: net.name.clone(),
                driver: "bridge".into(),
                labels: l,
                config_hash: None,
            },
        );
    }
    for vol in d.volumes.values() {
        let mut l = BTreeMap::new();
        l.insert(labels::PROJECT.to_string(), d.project.clone());
        l.insert(labels::VOLUME.to_string(), vol.key.clone());
        snap.volumes.insert(
            vol.name.clone(),
            ObservedVolume {
                name: vol.name.clone(),
                driver: "local".into(),
                labels: l,
            },
        );
    }
    for (i, name) in names.iter().enumerate() {
        let Some(svc) = d.services.get(name) else {
            fail(&format!("service {name} is not in the desired state"));
        };
        let case = case_of(i);
        if case == Case::Missing {
            continue;
        }
        // The model the container was created from: the desired one, or an older environment.
        let mut model = svc.model.clone();
        if case == Case::EnvChanged
            && let Some(Value::Object(env)) = model.get_mut("environment")
        {
            env.insert("LOG_LEVEL".into(), json!("debug"));
        }
        let hash = match case {
            Case::EnvChanged => Some(spindle::desired::hash::spec_hash(&model)),
            Case::Adopt => None,
            _ => Some(svc.spec_hash.clone()),
        };
        if case == Case::EnvChanged && hash.as_deref() == Some(svc.spec_hash.as_str()) {
            fail(&format!(
                "{name}: the changed environment left the spec hash as it was"
            ));
        }
        let mut live = live_of(&svc.model);
        if case == Case::LiveChanged {
            // Someone raised the limit by hand (or the file lowered it): update in place.
            live.memory = live.memory.max(1) * 2;
        }
        let cname = format!("{}-{}-1", d.project, svc.name);
        let id = fake_id(&cname);
        let image_id = format!("sha256:{}", fake_id(&svc.image));
        let labels = container_labels(d, svc, hash.as_deref());
        let mut c = ObservedContainer {
            id,
            name: cname,
            service: svc.name.clone(),
            number: 1,
            labels,
            state: RunState::Running,
            health: if svc.has_healthcheck {
                Health::Healthy
            } else {
                Health::None
            },
            exit_code: 0,
            image_id,
            started_at: Some("2026-11-30T01:00:01.000000000Z".into()),
            finished_at: None,
            live,
            addresses: BTreeMap::new(),
            inspect: Value::Null,
        };
        c.inspect = inspect_of(d, svc, &model, &c);
        snap.containers.push(c);
    }
    snap
}

fn fail(msg: &str) -> ! {
    eprintln!("plan bench: {msg}");
    std::process::exit(1);
}

/// Builds the inputs; the temp dir is kept alive for as long as the caller holds it.
fn inputs() -> (tempfile::TempDir, DesiredState, Snapshot) {
    let n = std::env::var("PLAN_SERVICES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200usize);
    let dir = tempfile::tempdir().unwrap_or_else(|e| fail(&format!("temp dir: {e}")));
    let (desired, names) = load_desired(dir.path(), n);
    let snapshot = build_snapshot(&desired, &names);
    (dir, desired, snapshot)
}

fn describe(desired: &DesiredState, snapshot: &Snapshot) {
    let mut cases: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..desired.services.len() {
        *cases.entry(format!("{:?}", case_of(i))).or_default() += 1;
    }
    let p = plan::plan(desired, snapshot, &PlanOptions::default());
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for a in &p.actions {
        *kinds.entry(a.kind.verb()).or_default() += 1;
    }
    eprintln!(
        "plan bench: {} services, {} containers, {} networks, {} volumes; snapshot cases {:?}",
        desired.services.len(),
        snapshot.containers.len(),
        snapshot.networks.len(),
        snapshot.volumes.len(),
        cases,
    );
    eprintln!(
        "plan bench: the plan has {} actions {:?}, {} in sync, {} orphans",
        p.actions.len(),
        kinds,
        p.in_sync.len(),
        p.orphans.len(),
    );
}

fn bench_plan(c: &mut Criterion) {
    let (_dir, desired, snapshot) = inputs();
    describe(&desired, &snapshot);
    let opts = PlanOptions::default();
    let id = format!("plan/{}-services", desired.services.len());
    c.bench_function(&id, |b| {
        b.iter(|| plan::plan(black_box(&desired), black_box(&snapshot), black_box(&opts)))
    });
}

/// `PLAN_CPU_ITERS=N`: build the inputs, plan N times, print the wall time; the CPU time is
/// measured from outside with getrusage (bench/plan-cpu.sh), minus a run with N = 0.
fn cpu_loop(iters: u64) {
    let (_dir, desired, snapshot) = inputs();
    let opts = PlanOptions::default();
    let t0 = Instant::now();
    let mut actions = 0usize;
    for _ in 0..iters {
        actions += black_box(plan::plan(black_box(&desired), black_box(&snapshot), &opts))
            .actions
            .len();
    }
    let wall = t0.elapsed();
    println!(
        "iters {iters} services {} actions-per-plan {} wall-ms-per-plan {:.3}",
        desired.services.len(),
        if iters == 0 {
            0
        } else {
            actions / iters as usize
        },
        if iters == 0 {
            0.0
        } else {
            wall.as_secs_f64() * 1e3 / iters as f64
        },
    );
}

/// `PLAN_DUMP=FILE`: write the snapshot (with each container's inspect document) as JSON, to
/// look at what the planner gets.
fn dump(path: &str) {
    let (_dir, _desired, snapshot) = inputs();
    let mut doc = serde_json::to_value(&snapshot).unwrap_or(Value::Null);
    if let Some(Value::Array(cs)) = doc.get_mut("containers") {
        for (c, o) in cs.iter_mut().zip(&snapshot.containers) {
            if let Value::Object(m) = c {
                m.insert("inspect".into(), o.inspect.clone());
            }
        }
    }
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    if let Err(e) = std::fs::write(path, text) {
        fail(&format!("cannot write {path}: {e}"));
    }
}

fn main() {
    if let Ok(path) = std::env::var("PLAN_DUMP") {
        dump(&path);
        return;
    }
    if let Ok(n) = std::env::var("PLAN_CPU_ITERS") {
        let Ok(iters) = n.parse::<u64>() else {
            fail("PLAN_CPU_ITERS must be a number");
        };
        cpu_loop(iters);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    bench_plan(&mut c);
    c.final_summary();
}
