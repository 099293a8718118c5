//! Harness for the real-engine integration tests: a `TestProject` guard per test that owns a compose project.
//!
//! Every test gets its own project name (`spindle-t-<test>-<random>`, the prefix overridable through
//! `SPINDLE_TEST_PROJECT_PREFIX`) and a temporary copy of one stack from `tests/fixtures/stacks/`, which the test
//! may edit. The guard runs `spindle`, Compose v5 and `docker` against that project and, when dropped (also after
//! a panic), removes every container, network and volume labelled `com.docker.compose.project=<project>`.
//!
//! Environment:
//! - `SPINDLE_COMPOSE_BIN`: the Compose v5 binary (default `docker-compose` on PATH; it must report v5).
//! - `SPINDLE_TEST_PROJECT_PREFIX`: the project-name prefix (default `spindle-t`).
//! - `DOCKER_HOST`: as for the docker CLI.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Compose's project label, by which every resource of a test project is found.
pub const PROJECT_LABEL: &str = "com.docker.compose.project";
/// Compose's service label.
pub const SERVICE_LABEL: &str = "com.docker.compose.service";
/// How long one `spindle`, `docker-compose` or `docker` command may run before the test fails.
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(180);

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the offline test images once per test binary (the script is idempotent and quick when up to date).
pub fn ensure_test_images() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let result = BUILT.get_or_init(|| {
        let script = manifest_dir().join("infra/scripts/build-test-images.sh");
        let mut command = Command::new("bash");
        command.arg(&script).current_dir(manifest_dir());
        match run_with_deadline(command, Duration::from_secs(300)) {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(format!("{} failed:\n{}", script.display(), describe(&out))),
            Err(e) => Err(format!("{} could not run: {e}", script.display())),
        }
    });
    if let Err(message) = result {
        panic!("the offline test images are not available: {message}");
    }
}

/// The Compose v5 binary, checked once per test binary.
pub fn compose_bin() -> &'static str {
    static BIN: OnceLock<Result<String, String>> = OnceLock::new();
    let result = BIN.get_or_init(|| {
        let bin = std::env::var("SPINDLE_COMPOSE_BIN").unwrap_or_else(|_| "docker-compose".to_string());
        let mut command = Command::new(&bin);
        command.arg("version");
        let out = run_with_deadline(command, Duration::from_secs(60))
            .map_err(|e| format!("cannot run `{bin} version` ({e}); set SPINDLE_COMPOSE_BIN to a Compose v5 binary"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        // v2+ prints `Docker Compose version v5.6.1`; v1 prints `docker-compose version 1.29.2, …`.
        let is_v5 = stdout.lines().any(|line| {
            line.split_once("Docker Compose version ")
                .is_some_and(|(_, v)| v.trim().trim_start_matches('v').starts_with("5."))
        });
        if out.status.success() && is_v5 {
            Ok(bin)
        } else {
            Err(format!(
                "`{bin}` is not Docker Compose v5 (`{bin} version` said {:?}); set SPINDLE_COMPOSE_BIN \
                 (infra/scripts/env.sh does)",
                stdout.trim()
            ))
        }
    });
    match result {
        Ok(bin) => bin,
        Err(message) => panic!("{message}"),
    }
}

/// Runs a command to completion, killing it (and failing) after `deadline`.
pub fn run_with_deadline(mut command: Command, deadline: Duration) -> Result<Output, String> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child: Child = command
        .spawn()
        .map_err(|e| format!("spawn {command:?}: {e}"))?;
    let mut stdout_pipe = child.stdout.take();
    let mut stderr_pipe = child.stderr.take();
    let stdout_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(pipe) = stdout_pipe.as_mut() {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    });
    let stderr_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(pipe) = stderr_pipe.as_mut() {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let stdout = stdout_reader.join().unwrap_or_default();
                let stderr = stderr_reader.join().unwrap_or_default();
                return Err(format!(
                    "{command:?} still running after {deadline:?}; killed.\nstdout:\n{}\nstderr:\n{}",
                    String::from_utf8_lossy(&stdout),
                    String::from_utf8_lossy(&stderr)
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("wait for {command:?}: {e}")),
        }
    };
    Ok(Output {
        status,
        stdout: stdout_reader.join().unwrap_or_default(),
        stderr: stderr_reader.join().unwrap_or_default(),
    })
}

/// Exit status, stdout and stderr of a finished command, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit status: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts the exit status of `what`, showing its output otherwise.
#[track_caller]
pub fn assert_exit(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: expected exit status {code}\n{}",
        describe(out)
    );
}

/// Asserts that a failing spindle run failed cleanly: no panic and no backtrace.
#[track_caller]
pub fn assert_no_panic(out: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{what} panicked\n{}",
        describe(out)
    );
}

/// Parses stdout as one JSON document.
#[track_caller]
pub fn stdout_json(out: &Output, what: &str) -> Value {
    match serde_json::from_slice(&out.stdout) {
        Ok(value) => value,
        Err(e) => panic!(
            "{what}: stdout is not one JSON document ({e})\n{}",
            describe(out)
        ),
    }
}

/// A random 24-bit number, without a crate: std's per-process random hash keys plus the clock and a counter.
fn random_suffix() -> u32 {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.write_u32(std::process::id());
    (hasher.finish() & 0xff_ffff) as u32
}

/// A compose project on the real engine, torn down on drop.
pub struct TestProject {
    name: String,
    dir: tempfile::TempDir,
    /// `SPINDLE_STATE_DIR` of every spindle this project runs: evidence never goes to /var/lib/spindle.
    state: tempfile::TempDir,
}

impl TestProject {
    /// A new project named after `test`, holding a copy of `tests/fixtures/stacks/<stack>/`.
    pub fn new(test: &str, stack: &str) -> Self {
        let prefix = std::env::var("SPINDLE_TEST_PROJECT_PREFIX")
            .unwrap_or_else(|_| "spindle-t".to_string());
        Self::with_prefix(&prefix, test, stack)
    }

    /// Like [`TestProject::new`], with the project-name prefix given (`spindle-h-<helper>`).
    pub fn with_prefix(prefix: &str, test: &str, stack: &str) -> Self {
        ensure_test_images();
        let mut slug: String = test
            .chars()
            .map(|c| match c.to_ascii_lowercase() {
                c @ ('a'..='z' | '0'..='9' | '-') => c,
                _ => '-',
            })
            .collect();
        slug.truncate(32);
        let name = format!(
            "{prefix}-{}-{:06x}",
            slug.trim_matches('-'),
            random_suffix()
        );
        let dir = tempfile::Builder::new()
            .prefix("spindle-it-")
            .tempdir()
            .expect("a temporary folder can be created");
        let source = manifest_dir().join("tests/fixtures/stacks").join(stack);
        assert!(source.is_dir(), "no fixture stack at {}", source.display());
        copy_dir(&source, dir.path());
        let state = tempfile::Builder::new()
            .prefix("spindle-it-state-")
            .tempdir()
            .expect("a temporary folder can be created");
        TestProject { name, dir, state }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The state directory `spindle` gets as `SPINDLE_STATE_DIR` (an explicit `--state-dir` wins).
    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// `<project>-<service>-<number>`.
    pub fn container_name(&self, service: &str, number: u32) -> String {
        format!("{}-{service}-{number}", self.name)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    pub fn write(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
        }
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {rel}: {e}"));
    }

    /// Replaces the one occurrence of `from` in file `rel` with `to`.
    #[track_caller]
    pub fn edit(&self, rel: &str, from: &str, to: &str) {
        let text = self.read(rel);
        assert_eq!(
            text.matches(from).count(),
            1,
            "{rel} must contain {from:?} exactly once to be edited:\n{text}"
        );
        self.write(rel, &text.replacen(from, to, 1));
    }

    /// Runs `spindle -p <project> --desired-state <dir> <args>` in the project folder.
    pub fn spindle(&self, args: &[&str]) -> Output {
        run_with_deadline(self.spindle_command(args), COMMAND_DEADLINE)
            .unwrap_or_else(|e| panic!("spindle {args:?}: {e}"))
    }

    /// The `spindle` command of [`TestProject::spindle`], not yet run: this project's name, folder
    /// and state dir, a free API port, and none of the caller's Compose variables.
    pub fn spindle_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_spindle"));
        command
            .arg("-p")
            .arg(&self.name)
            .arg("--desired-state")
            .arg(self.dir())
            .args(args)
            .current_dir(self.dir())
            .env("SPINDLE_STATE_DIR", self.state_dir())
            // A free port unless the test says otherwise: the default port must bind, and tests run at once.
            .env("SPINDLE_LISTEN", "127.0.0.1:0");
        for key in [
            "SPINDLE_DESIRED_STATE",
            "COMPOSE_PROJECT_NAME",
            "COMPOSE_FILE",
            "COMPOSE_PROFILES",
            "COMPOSE_ENV_FILES",
        ] {
            command.env_remove(key);
        }
        command
    }

    /// Runs spindle with `args` (which should include `--format json`) and parses its stdout.
    #[track_caller]
    pub fn spindle_json(&self, args: &[&str]) -> (Output, Value) {
        let out = self.spindle(args);
        let json = stdout_json(&out, &format!("spindle {}", args.join(" ")));
        (out, json)
    }

    /// Runs Compose v5 as `<compose> -p <project> <args>` in the project folder.
    pub fn compose(&self, args: &[&str]) -> Output {
        let mut command = Command::new(compose_bin());
        command
            .arg("-p")
            .arg(&self.name)
            .args(args)
            .current_dir(self.dir());
        for key in [
            "COMPOSE_PROJECT_NAME",
            "COMPOSE_FILE",
            "COMPOSE_PROFILES",
            "COMPOSE_ENV_FILES",
        ] {
            command.env_remove(key);
        }
        run_with_deadline(command, COMMAND_DEADLINE)
            .unwrap_or_else(|e| panic!("compose {args:?}: {e}"))
    }

    /// Runs the docker CLI.
    pub fn docker(&self, args: &[&str]) -> Output {
        docker(args)
    }

    /// `docker inspect` of one container (name or ID).
    #[track_caller]
    pub fn inspect(&self, container: &str) -> Value {
        self.try_inspect(container)
            .unwrap_or_else(|| panic!("container {container} of {} does not exist", self.name))
    }

    /// `docker inspect` of one container, `None` when it does not exist.
    pub fn try_inspect(&self, container: &str) -> Option<Value> {
        let out = docker(&["container", "inspect", container]);
        if !out.status.success() {
            return None;
        }
        let mut all: Vec<Value> = serde_json::from_slice(&out.stdout).ok()?;
        if all.is_empty() {
            None
        } else {
            Some(all.swap_remove(0))
        }
    }

    /// Every container of the project (also stopped ones) as `(name, full id)`, sorted by name.
    pub fn containers(&self) -> Vec<(String, String)> {
        let filter = format!("label={PROJECT_LABEL}={}", self.name);
        let out = docker(&[
            "ps",
            "-a",
            "--no-trunc",
            "--filter",
            &filter,
            "--format",
            "{{.Names}}\t{{.ID}}",
        ]);
        assert!(out.status.success(), "docker ps failed\n{}", describe(&out));
        let mut list: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| {
                let (name, id) = line.split_once('\t')?;
                Some((name.to_string(), id.to_string()))
            })
            .collect();
        list.sort();
        list
    }

    /// Container name → ID.
    pub fn ids(&self) -> BTreeMap<String, String> {
        self.containers().into_iter().collect()
    }

    /// The ID of `<project>-<service>-1`.
    #[track_caller]
    pub fn id_of(&self, service: &str) -> String {
        let name = self.container_name(service, 1);
        self.ids().remove(&name).unwrap_or_else(|| {
            panic!(
                "no container {name}; the project has {:?}",
                self.containers()
            )
        })
    }

    /// Name → (ID, State.StartedAt, State.Running) of every container: what "untouched" compares.
    pub fn fingerprint(&self) -> BTreeMap<String, (String, String, bool)> {
        self.containers()
            .into_iter()
            .map(|(name, id)| {
                let state = self
                    .try_inspect(&id)
                    .map(|v| v["State"].clone())
                    .unwrap_or(Value::Null);
                let started = state["StartedAt"].as_str().unwrap_or_default().to_string();
                let running = state["Running"].as_bool().unwrap_or(false);
                (name, (id, started, running))
            })
            .collect()
    }

    /// Names of the project's networks.
    pub fn networks(&self) -> Vec<String> {
        self.labelled("network")
    }

    /// Names of the project's volumes.
    pub fn volumes(&self) -> Vec<String> {
        self.labelled("volume")
    }

    fn labelled(&self, kind: &str) -> Vec<String> {
        let filter = format!("label={PROJECT_LABEL}={}", self.name);
        let out = docker(&[kind, "ls", "--filter", &filter, "--format", "{{.Name}}"]);
        let mut list: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .filter(|s| !s.is_empty())
            .collect();
        list.sort();
        list
    }

    /// Waits until the container's health status is `healthy` (or its state is running, without a healthcheck).
    #[track_caller]
    pub fn wait_ready(&self, container: &str, timeout: Duration) -> Value {
        let started = Instant::now();
        loop {
            let info = self.inspect(container);
            let state = &info["State"];
            let ready = match state["Health"]["Status"].as_str() {
                Some(status) => status == "healthy",
                None => state["Running"].as_bool() == Some(true),
            };
            if ready {
                return info;
            }
            if started.elapsed() > timeout {
                panic!("{container} not ready after {timeout:?}; state: {state:#}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs `f` while a background thread polls `docker inspect` of every project container, so that health logs
    /// (Docker keeps only the last five probes) and start times of short-lived containers are not lost.
    pub fn record_while<R>(&self, f: impl FnOnce() -> R) -> (R, Recording) {
        let stop = AtomicBool::new(false);
        let mut recording = Recording::default();
        let result = std::thread::scope(|scope| {
            let poller = scope.spawn(|| {
                let mut rec = Recording::default();
                loop {
                    let done = stop.load(Ordering::Relaxed);
                    self.poll_into(&mut rec);
                    if done {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(250));
                }
                rec
            });
            let result = f();
            stop.store(true, Ordering::Relaxed);
            recording = poller.join().unwrap_or_default();
            result
        });
        // One last look, so the final state is in too.
        self.poll_into(&mut recording);
        (result, recording)
    }

    fn poll_into(&self, rec: &mut Recording) {
        let ids: Vec<String> = self.containers().into_iter().map(|(_, id)| id).collect();
        if ids.is_empty() {
            return;
        }
        let mut args = vec!["container", "inspect"];
        args.extend(ids.iter().map(String::as_str));
        // Some may vanish between ps and inspect: docker then prints the others and exits non-zero.
        let out = docker(&args);
        let Ok(all) = serde_json::from_slice::<Vec<Value>>(&out.stdout) else {
            return;
        };
        for info in all {
            rec.merge(&info);
        }
    }
}

impl Drop for TestProject {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let filter = format!("label={PROJECT_LABEL}={}", self.name);
            let out = docker(&["ps", "-a", "--filter", &filter]);
            eprintln!(
                "project {} at the failure (files in {}):\n{}",
                self.name,
                self.dir().display(),
                String::from_utf8_lossy(&out.stdout)
            );
        }
        // Containers by label, and by name in case one was created without labels.
        let mut ids: BTreeSet<String> = self.containers().into_iter().map(|(_, id)| id).collect();
        let by_name = docker(&[
            "ps",
            "-a",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("name=^{}-", self.name),
        ]);
        ids.extend(
            String::from_utf8_lossy(&by_name.stdout)
                .lines()
                .map(str::to_string),
        );
        ids.retain(|id| !id.is_empty());
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(ids.iter().map(String::as_str));
            let _ = docker(&args);
        }
        let mut networks = self.networks();
        networks.push(format!("{}_default", self.name));
        for network in networks {
            let _ = docker(&["network", "rm", &network]);
        }
        let volumes = self.volumes();
        if !volumes.is_empty() {
            let mut args = vec!["volume", "rm", "-f"];
            args.extend(volumes.iter().map(String::as_str));
            let _ = docker(&args);
        }
    }
}

/// Runs the docker CLI (stdout and stderr captured).
pub fn docker(args: &[&str]) -> Output {
    let mut command = Command::new("docker");
    command.args(args);
    run_with_deadline(command, COMMAND_DEADLINE).unwrap_or_else(|e| panic!("docker {args:?}: {e}"))
}

fn copy_dir(from: &Path, to: &Path) {
    let entries =
        std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("read {}: {e}", from.display()));
        let target = to.join(entry.file_name());
        let kind = entry
            .file_type()
            .unwrap_or_else(|e| panic!("stat {}: {e}", entry.path().display()));
        if kind.is_dir() {
            std::fs::create_dir_all(&target)
                .unwrap_or_else(|e| panic!("mkdir {}: {e}", target.display()));
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("copy {}: {e}", target.display()));
        }
    }
}

/// One healthcheck probe, times in nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    pub start: i128,
    pub end: i128,
    pub exit_code: i64,
}

/// What `record_while` saw of one container.
#[derive(Clone, Debug, Default)]
pub struct SeenContainer {
    pub name: String,
    pub service: String,
    /// Every `State.StartedAt` seen (a restart adds one), nanoseconds since the epoch.
    pub started_at: BTreeSet<i128>,
    /// The union of every health log seen, by probe start.
    pub probes: BTreeMap<i128, Probe>,
}

impl SeenContainer {
    /// When the container first became healthy: the end of its first successful probe.
    pub fn first_healthy(&self) -> Option<i128> {
        self.probes
            .values()
            .find(|p| p.exit_code == 0)
            .map(|p| p.end)
    }
}

/// Containers seen by `record_while`, by ID.
#[derive(Clone, Debug, Default)]
pub struct Recording {
    pub containers: BTreeMap<String, SeenContainer>,
}

impl Recording {
    fn merge(&mut self, info: &Value) {
        let Some(id) = info["Id"].as_str() else {
            return;
        };
        let seen = self.containers.entry(id.to_string()).or_default();
        seen.name = info["Name"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string();
        seen.service = info["Config"]["Labels"][SERVICE_LABEL]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if let Some(t) = info["State"]["StartedAt"].as_str().and_then(parse_time)
            && t > 0
        {
            seen.started_at.insert(t);
        }
        if let Some(log) = info["State"]["Health"]["Log"].as_array() {
            for entry in log {
                let (Some(start), Some(end)) = (
                    entry["Start"].as_str().and_then(parse_time),
                    entry["End"].as_str().and_then(parse_time),
                ) else {
                    continue;
                };
                let exit_code = entry["ExitCode"].as_i64().unwrap_or(-1);
                seen.probes.insert(
                    start,
                    Probe {
                        start,
                        end,
                        exit_code,
                    },
                );
            }
        }
    }

    /// The container seen with this ID.
    pub fn get(&self, id: &str) -> Option<&SeenContainer> {
        self.containers.get(id)
    }
}

/// Parses an RFC 3339 time as Docker prints it (`2026-11-30T01:44:03.123456789Z`, or with an offset) to
/// nanoseconds since the Unix epoch. Docker's zero time (`0001-01-01T00:00:00Z`) gives a negative number.
pub fn parse_time(text: &str) -> Option<i128> {
    let text = text.trim();
    let (date, rest) = text.split_once('T')?;
    let mut date_parts = date.split('-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: i64 = date_parts.next()?.parse().ok()?;
    let day: i64 = date_parts.next()?.parse().ok()?;
    // Split off the zone: `Z`, or the last `+`/`-`.
    let (clock, offset_secs) = if let Some(clock) = rest.strip_suffix('Z') {
        (clock, 0i64)
    } else {
        let at = rest.rfind(['+', '-'])?;
        let (clock, zone) = rest.split_at(at);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (h, m) = zone[1..].split_once(':')?;
        (
            clock,
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60),
        )
    };
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut hms_parts = hms.split(':');
    let hour: i64 = hms_parts.next()?.parse().ok()?;
    let minute: i64 = hms_parts.next()?.parse().ok()?;
    let second: i64 = hms_parts.next()?.parse().ok()?;
    let mut nanos: i64 = 0;
    if !fraction.is_empty() {
        let digits: String = fraction.chars().take(9).collect();
        nanos = digits.parse::<i64>().ok()? * 10i64.pow(9 - digits.len() as u32);
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    Some(secs as i128 * 1_000_000_000 + nanos as i128)
}

/// The `kind` tag of a plan action (`create`, `recreate`, `update`, …).
pub fn action_verb(action: &Value) -> &str {
    action["kind"]["kind"].as_str().unwrap_or_default()
}

/// The service a plan action is about, wherever its kind keeps it.
pub fn action_service(action: &Value) -> Option<&str> {
    let kind = &action["kind"];
    kind["service"]
        .as_str()
        .or_else(|| kind["container"]["service"].as_str())
        .or_else(|| kind["old"]["service"].as_str())
        .or_else(|| kind["new"]["service"].as_str())
}

/// `(verb, service)` of every action of a plan (`plan --format json`).
pub fn plan_actions(plan: &Value) -> Vec<(String, String)> {
    plan["actions"]
        .as_array()
        .map(|actions| {
            actions
                .iter()
                .map(|a| {
                    (
                        action_verb(a).to_string(),
                        action_service(a).unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `(verb, service, outcome)` of every result of an apply (`apply --format json`).
pub fn apply_results(result: &Value) -> Vec<(String, String, String)> {
    result["results"]
        .as_array()
        .map(|results| {
            results
                .iter()
                .map(|r| {
                    (
                        action_verb(&r["action"]).to_string(),
                        action_service(&r["action"]).unwrap_or_default().to_string(),
                        r["outcome"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn docker_times_parse_to_epoch_nanoseconds() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_time("1970-01-01T00:00:01.5Z"), Some(1_500_000_000));
        assert_eq!(
            parse_time("2026-11-30T01:44:03.123456789Z"),
            parse_time("2026-11-30T02:44:03.123456789+01:00")
        );
        assert_eq!(
            parse_time("2000-03-01T00:00:00Z"),
            Some(951_868_800 * 1_000_000_000)
        );
        assert!(parse_time("0001-01-01T00:00:00Z").is_some_and(|t| t < 0));
        assert_eq!(parse_time("garbage"), None);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Long-running spindle processes (`spindle run`, an `apply` to be killed) and the evidence they leave.
// They live in a module of their own so that they may follow the unit tests above.

#[allow(unused_imports)]
pub use spindle_process::*;

mod spindle_process {
    use super::*;

    /// A spindle child process running in the background, its stderr going to a file that can be read at any time.
    ///
    /// Dropping the guard stops the process: SIGTERM, then SIGKILL if it has not exited after 15 s. Declare it AFTER
    /// the `TestProject` (and the state dir) so that it is dropped first: a `spindle run` still alive while the
    /// project is torn down would recreate what the teardown removes.
    pub struct SpindleProcess {
        child: Child,
        args: Vec<String>,
        log_dir: tempfile::TempDir,
        status: Option<std::process::ExitStatus>,
    }

    impl SpindleProcess {
        pub fn pid(&self) -> u32 {
            self.child.id()
        }

        fn log_path(&self) -> PathBuf {
            self.log_dir.path().join("stderr.log")
        }

        /// Everything the process wrote to stderr so far.
        pub fn stderr(&self) -> String {
            String::from_utf8_lossy(&self.stderr_bytes()).into_owned()
        }

        /// Everything the process wrote to stderr so far, as bytes.
        pub fn stderr_bytes(&self) -> Vec<u8> {
            std::fs::read(self.log_path()).unwrap_or_default()
        }

        /// The last `n` lines of stderr, for failure messages.
        pub fn stderr_tail(&self, n: usize) -> String {
            let text = self.stderr();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }

        /// Sends a signal by name (`TERM`, `INT`, `HUP`) through kill(1); false if the process is gone.
        pub fn signal(&mut self, name: &str) -> bool {
            if self.try_status().is_some() {
                return false;
            }
            Command::new("kill")
                .arg("-s")
                .arg(name)
                .arg(self.child.id().to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        }

        /// `kill -9`: no chance to clean up.
        pub fn kill9(&mut self) {
            let _ = self.child.kill();
            if let Ok(status) = self.child.wait() {
                self.status = Some(status);
            }
        }

        /// The exit status if the process has exited.
        pub fn try_status(&mut self) -> Option<std::process::ExitStatus> {
            if self.status.is_none()
                && let Ok(Some(status)) = self.child.try_wait()
            {
                self.status = Some(status);
            }
            self.status
        }

        /// Waits up to `timeout` for the process to exit.
        pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
            let started = Instant::now();
            loop {
                if let Some(status) = self.try_status() {
                    return Some(status);
                }
                if started.elapsed() > timeout {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }

        /// SIGTERM, then waits up to `timeout` for the exit; panics (showing stderr) if it does not exit in time.
        #[track_caller]
        pub fn terminate(&mut self, timeout: Duration) -> std::process::ExitStatus {
            self.signal("TERM");
            match self.wait_exit(timeout) {
                Some(status) => status,
                None => panic!(
                    "spindle {:?} did not exit within {timeout:?} of SIGTERM; stderr:\n{}",
                    self.args,
                    self.stderr_tail(60)
                ),
            }
        }

        /// Panics (showing stderr) if the process has exited.
        #[track_caller]
        pub fn assert_alive(&mut self) {
            if let Some(status) = self.try_status() {
                panic!(
                    "spindle {:?} exited early with {status}; stderr:\n{}",
                    self.args,
                    self.stderr_tail(80)
                );
            }
        }
    }

    impl Drop for SpindleProcess {
        fn drop(&mut self) {
            if self.try_status().is_none() {
                self.signal("TERM");
                if self.wait_exit(Duration::from_secs(15)).is_none() {
                    self.kill9();
                }
            }
            if std::thread::panicking() {
                eprintln!(
                    "spindle {:?} (pid {}, {:?}) stderr, last lines:\n{}",
                    self.args,
                    self.child.id(),
                    self.status,
                    self.stderr_tail(120)
                );
            }
        }
    }

    impl TestProject {
        /// Starts `spindle -v -p <project> --desired-state <dir> <args>` in the background; `env` is added to its
        /// environment.
        pub fn spawn_spindle(&self, args: &[&str], env: &[(&str, &str)]) -> SpindleProcess {
            let log_dir = tempfile::Builder::new()
                .prefix("spindle-it-log-")
                .tempdir()
                .expect("a temporary folder can be created");
            let log_path = log_dir.path().join("stderr.log");
            let log = std::fs::File::create(&log_path)
                .unwrap_or_else(|e| panic!("create {}: {e}", log_path.display()));
            let mut command = Command::new(env!("CARGO_BIN_EXE_spindle"));
            command
                .arg("-v")
                .arg("-p")
                .arg(&self.name)
                .arg("--desired-state")
                .arg(self.dir())
                .args(args)
                .current_dir(self.dir())
                .env("SPINDLE_STATE_DIR", self.state_dir())
                // A free port unless the test says otherwise: the default port must bind.
                .env("SPINDLE_LISTEN", "127.0.0.1:0")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log);
            for key in [
                "SPINDLE_DESIRED_STATE",
                "COMPOSE_PROJECT_NAME",
                "COMPOSE_FILE",
                "COMPOSE_PROFILES",
                "COMPOSE_ENV_FILES",
            ] {
                command.env_remove(key);
            }
            for (key, value) in env {
                command.env(key, value);
            }
            let child = command
                .spawn()
                .unwrap_or_else(|e| panic!("spawn spindle {args:?}: {e}"));
            SpindleProcess {
                child,
                args: args.iter().map(|s| s.to_string()).collect(),
                log_dir,
                status: None,
            }
        }

        /// Starts `spindle run --state-dir <state> <extra>` in the background.
        pub fn spawn_run(&self, state: &Path, extra: &[&str]) -> SpindleProcess {
            let state = state.to_string_lossy().into_owned();
            let mut args = vec!["run", "--state-dir", state.as_str()];
            args.extend_from_slice(extra);
            self.spawn_spindle(&args, &[])
        }

        /// `State.Running` of a container by name or ID (false when it does not exist).
        pub fn is_running(&self, container: &str) -> bool {
            self.try_inspect(container)
                .is_some_and(|info| info["State"]["Running"].as_bool() == Some(true))
        }

        /// Running, and healthy when the container has a healthcheck.
        pub fn is_ready(&self, container: &str) -> bool {
            self.try_inspect(container).is_some_and(|info| {
                let state = &info["State"];
                state["Running"].as_bool() == Some(true)
                    && state["Health"]["Status"]
                        .as_str()
                        .is_none_or(|s| s == "healthy")
            })
        }

        /// The project's containers as `(name, service label, container-number label)`.
        pub fn slots(&self) -> Vec<(String, String, String)> {
            let filter = format!("label={PROJECT_LABEL}={}", self.name);
            let format = format!(
                "{{{{.Names}}}}\t{{{{.Label \"{SERVICE_LABEL}\"}}}}\t{{{{.Label \"com.docker.compose.container-number\"}}}}"
            );
            let out = docker(&["ps", "-a", "--filter", &filter, "--format", &format]);
            let mut list: Vec<(String, String, String)> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|line| {
                    let mut parts = line.split('\t');
                    Some((
                        parts.next()?.to_string(),
                        parts.next()?.to_string(),
                        parts.next()?.to_string(),
                    ))
                })
                .collect();
            list.sort();
            list
        }
    }

    /// A fresh state directory for `spindle run`.
    pub fn state_dir() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("spindle-state-")
            .tempdir()
            .expect("a temporary folder can be created")
    }

    /// `(container id, HostConfig.NanoCpus)` of the running container #1 of `service`.
    pub fn running_nano_cpus(p: &TestProject, service: &str) -> Option<(String, i64)> {
        let info = p.try_inspect(&p.container_name(service, 1))?;
        (info["State"]["Running"].as_bool() == Some(true)).then_some(())?;
        Some((
            info["Id"].as_str()?.to_string(),
            info["HostConfig"]["NanoCpus"].as_i64()?,
        ))
    }

    /// Waits (while `run` stays alive) until container #1 of `service` runs with `want` NanoCpus;
    /// returns its container id.
    #[track_caller]
    pub fn wait_nano_cpus(
        p: &TestProject,
        run: &mut SpindleProcess,
        service: &str,
        want: i64,
        what: &str,
        timeout: Duration,
    ) -> String {
        wait_for(what, timeout, || {
            run.assert_alive();
            running_nano_cpus(p, service)
                .filter(|(_, n)| *n == want)
                .map(|(id, _)| id)
        })
    }

    /// Waits for a finished reconcile record whose triggers hold a `profile` trigger of `cause`
    /// (`enter`, `leave`, `pin`, `unpin`); returns `(trigger, record)`.
    #[track_caller]
    pub fn wait_profile_switch(state: &Path, cause: &str, timeout: Duration) -> (Value, Value) {
        wait_for(
            &format!("a finished reconcile with a `{cause}` profile trigger"),
            timeout,
            || {
                evidence_records(state).into_iter().find_map(|r| {
                    let t = r["triggers"]
                        .as_array()?
                        .iter()
                        .find(|t| t["kind"] == "profile" && t["cause"] == cause)?
                        .clone();
                    r["outcome"].is_string().then_some((t, r))
                })
            },
        )
    }

    /// Polls `probe` every 200 ms until it returns `Some`, panicking with `what` (and the last `detail`) after
    /// `timeout`.
    #[track_caller]
    pub fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
        let started = Instant::now();
        loop {
            if let Some(value) = probe() {
                return value;
            }
            if started.elapsed() > timeout {
                panic!("timed out after {timeout:?} waiting for {what}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The evidence segments of a state dir (`<state>/evidence/segment-*.jsonl`), in order.
    pub fn evidence_segments(state: &Path) -> Vec<PathBuf> {
        let dir = state.join("evidence");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut segments: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("segment-") && n.ends_with(".jsonl"))
            })
            .collect();
        segments.sort();
        segments
    }

    /// Every complete evidence record of a state dir, oldest first (a torn or unparsable line is
    /// skipped), without the `intent` records an apply writes before its first engine write
    /// (`tests/state_dir.rs` reads those): one record per reconcile or apply.
    pub fn evidence_records(state: &Path) -> Vec<Value> {
        all_evidence_records(state)
            .into_iter()
            .filter(|r| r["kind"] != "intent")
            .collect()
    }

    /// Every complete evidence record of a state dir, intent records included, oldest first.
    pub fn all_evidence_records(state: &Path) -> Vec<Value> {
        evidence_segments(state)
            .iter()
            .flat_map(|path| {
                std::fs::read_to_string(path)
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                    .filter(Value::is_object)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The final-state entry of `service` in a record's `services` (an object keyed by service, or an array of
    /// objects naming it in `name` or `service`).
    pub fn record_service<'a>(record: &'a Value, service: &str) -> Option<&'a Value> {
        match &record["services"] {
            Value::Object(map) => map.get(service),
            Value::Array(list) => list.iter().find(|s| {
                s["name"].as_str() == Some(service) || s["service"].as_str() == Some(service)
            }),
            _ => None,
        }
    }

    /// `Some(reason)` when a service entry is marked degraded (`degraded: true` beside a reason field,
    /// `degraded: "<reason>"`, `degraded: {reason: …}`, or `state`/`status: "degraded"` beside a reason). The
    /// reason is empty when the entry is degraded but names none.
    pub fn degraded_reason(entry: &Value) -> Option<String> {
        let reason_field = || {
            ["reason", "degraded_reason", "detail", "message"]
                .iter()
                .find_map(|k| entry[*k].as_str().filter(|s| !s.is_empty()))
                .unwrap_or_default()
                .to_string()
        };
        match &entry["degraded"] {
            Value::Bool(true) => return Some(reason_field()),
            Value::String(s) if !s.is_empty() => return Some(s.clone()),
            Value::Object(o) => {
                let inner = ["reason", "detail", "message"]
                    .iter()
                    .find_map(|k| o.get(*k).and_then(Value::as_str))
                    .map(str::to_string)
                    .unwrap_or_else(|| Value::Object(o.clone()).to_string());
                return Some(inner);
            }
            _ => {}
        }
        let state = entry["state"]
            .as_str()
            .or_else(|| entry["status"].as_str())
            .unwrap_or_default();
        state.eq_ignore_ascii_case("degraded").then(reason_field)
    }

    /// Every file under `dir` (recursively) whose bytes contain `needle`.
    pub fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(current) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&current) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() {
                    stack.push(path);
                } else if kind.is_file()
                    && std::fs::read(&path)
                        .is_ok_and(|bytes| contains_bytes(&bytes, needle.as_bytes()))
                {
                    found.push(path);
                }
            }
        }
        found.sort();
        found
    }

    /// Every regular file under `dir`, recursively.
    pub fn all_files(dir: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(current) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&current) else {
                continue;
            };
            for entry in entries.flatten() {
                match entry.file_type() {
                    Ok(kind) if kind.is_dir() => stack.push(entry.path()),
                    Ok(kind) if kind.is_file() => found.push(entry.path()),
                    _ => {}
                }
            }
        }
        found.sort();
        found
    }

    /// True when `needle` occurs in `haystack`.
    pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
        needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
    }

    /// A random lowercase hex string of `len` characters (for test secrets and names).
    pub fn random_hex(len: usize) -> String {
        let mut out = String::new();
        while out.len() < len {
            out.push_str(&format!("{:06x}", random_suffix()));
        }
        out.truncate(len);
        out
    }
}

/// True when a reconcile record's plan touches `service` and only with in-place `update` actions.
pub fn only_updates_of(service: &str, record: &Value) -> bool {
    let actions = record["plan"]["actions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mine: Vec<&Value> = actions
        .iter()
        .filter(|a| a["kind"]["container"]["service"] == service || a["kind"]["service"] == service)
        .collect();
    !mine.is_empty() && mine.iter().all(|a| a["kind"]["kind"] == "update")
}

/// A fake spindle API, served by this process on a free loopback port, that answers every request
/// with `doc` as JSON (and closes the connection); returns its address.
pub fn fake_json_api(doc: Value) -> std::net::SocketAddr {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = listener.local_addr().expect("a bound address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let body = doc.to_string();
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    addr
}
