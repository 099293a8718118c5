//! The pre-recreate hook: runs once per service per apply, in the old container (exec) or in a one-off container (run), bounded by its timeout and the stop signal.
//!
//! A hook that does not exit 0 (or times out, or cannot start) blocks the recreate: the caller
//! leaves the old container as it is. A one-off container is removed whatever happened.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::{ApplyError, Ctx};
use crate::desired::hook::{
    ArtifactVars, HookMode, MountSource, PreRecreate, RunSpec, compact_timestamp,
};
use crate::desired::typed::DesiredService;
use crate::labels;
use crate::plan::ContainerRef;
use crate::redact::{self, Redactor};

/// How many lines of the hook's output the evidence keeps.
const TAIL_LINES: usize = 20;
/// At most this many characters of output in the evidence.
const TAIL_CHARS: usize = 2000;
/// How much output is held while the hook runs (the newest bytes).
const KEEP_BYTES: usize = 64 * 1024;
/// How often a running hook looks at the stop signal.
const STOP_POLL: Duration = Duration::from_millis(200);
/// The first line an exec hook's wrapper writes, so that a timed-out hook can be killed.
const PID_MARK: &str = "spindle-hook-pid=";

/// How a hook ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookOutcome {
    /// Exited 0: the recreate proceeds.
    Ok,
    /// Exited non-zero.
    Failed,
    /// Still running at its timeout; it was killed.
    TimedOut,
    /// Could not be started (the old container is not running, the image is missing, …).
    NotStarted,
    /// spindle was shutting down; the hook was killed.
    Interrupted,
}

/// What the evidence records about a hook.
#[derive(Clone, Debug, Serialize)]
pub struct HookRecord {
    pub hook: &'static str,
    /// `exec` (in the old container) or `run` (a one-off container).
    pub mode: &'static str,
    /// The command, secret values redacted.
    pub command: Vec<String>,
    /// The container it ran in: the old container, or the one-off container (removed since).
    pub container: String,
    /// The one-off container's image.
    pub image: Option<String>,
    pub outcome: HookOutcome,
    pub exit_code: Option<i64>,
    /// RFC 3339 UTC.
    pub started: String,
    pub duration_ms: u64,
    pub timeout_ms: u64,
    /// Where the hook's output went (the `artifact` template, filled in).
    pub artifact: Option<String>,
    /// The last lines of its output (stdout and stderr), secret values redacted.
    pub output_tail: String,
    /// Why it did not succeed.
    pub error: Option<String>,
}

impl HookRecord {
    /// The failure in words, for the action's error.
    pub fn failure(&self, service: &str) -> String {
        let why = match self.outcome {
            HookOutcome::Ok => "succeeded".to_string(),
            HookOutcome::Failed => {
                format!("failed: exited with code {}", self.exit_code.unwrap_or(-1))
            }
            HookOutcome::TimedOut => format!(
                "timed out after {} and was killed",
                humantime::format_duration(Duration::from_millis(self.timeout_ms))
            ),
            HookOutcome::NotStarted => "could not start".to_string(),
            HookOutcome::Interrupted => {
                "was interrupted because spindle is shutting down".to_string()
            }
        };
        let detail = self
            .error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        format!(
            "pre-recreate hook ({}) of service {service} {why}{detail}; the recreate is blocked and the old container keeps running",
            self.mode
        )
    }
}

/// The hooks of one apply, by service: each runs at most once, and every recreate of the service
/// shares its result.
#[derive(Default)]
pub struct Runs(Mutex<BTreeMap<String, Arc<OnceCell<HookRecord>>>>);

impl Runs {
    fn cell(&self, service: &str) -> Arc<OnceCell<HookRecord>> {
        match self.0.lock() {
            Ok(mut m) => m.entry(service.to_string()).or_default().clone(),
            Err(_) => Arc::new(OnceCell::new()),
        }
    }
}

/// Runs the service's hook unless an earlier recreate of the service in this apply already did;
/// `Err` when it did not succeed.
pub(crate) async fn run_once(
    ctx: &Ctx<'_>,
    svc: &DesiredService,
    hook: &PreRecreate,
    old: &ContainerRef,
) -> Result<HookRecord, HookRecord> {
    let cell = ctx.hooks.cell(&svc.name);
    let rec = cell
        .get_or_init(|| async { run(ctx, svc, hook, old).await })
        .await
        .clone();
    if rec.outcome == HookOutcome::Ok {
        Ok(rec)
    } else {
        Err(rec)
    }
}

/// How the hook's process ended.
enum End {
    Exited(i64),
    TimedOut,
    Interrupted,
}

async fn run(
    ctx: &Ctx<'_>,
    svc: &DesiredService,
    hook: &PreRecreate,
    old: &ContainerRef,
) -> HookRecord {
    let redactor = &ctx.opts.redactor;
    let now = SystemTime::now();
    let timestamp = compact_timestamp(now);
    let artifact = hook.artifact.as_ref().map(|t| {
        t.render(&ArtifactVars {
            timestamp: &timestamp,
            service: &svc.name,
            project: &ctx.desired.project,
        })
    });
    let mut env = vec![
        "SPINDLE_HOOK=pre-recreate".to_string(),
        format!("SPINDLE_PROJECT={}", ctx.desired.project),
        format!("SPINDLE_SERVICE={}", svc.name),
        format!("SPINDLE_HOOK_TIMESTAMP={timestamp}"),
    ];
    if let Some(a) = &artifact {
        env.push(format!("SPINDLE_ARTIFACT={a}"));
    }
    let mut rec = HookRecord {
        hook: "pre-recreate",
        mode: hook.mode.word(),
        command: hook
            .mode
            .command()
            .iter()
            .map(|a| redact::scrub(&redactor.text(a)))
            .collect(),
        container: old.name.clone(),
        image: None,
        outcome: HookOutcome::NotStarted,
        exit_code: None,
        started: humantime::format_rfc3339_millis(now).to_string(),
        duration_ms: 0,
        timeout_ms: u64::try_from(hook.timeout.as_millis()).unwrap_or(u64::MAX),
        artifact,
        output_tail: String::new(),
        error: None,
    };
    // The secrets of the container an exec hook runs in (its env may hold values rotated out since).
    let mut old_secrets: Vec<String> = Vec::new();
    let t0 = Instant::now();
    if ctx.opts.stop.is_set() {
        rec.outcome = HookOutcome::Interrupted;
    } else {
        let ran = match &hook.mode {
            HookMode::Exec { command } => {
                exec(ctx, old, command, &env, hook.timeout, &mut old_secrets).await
            }
            HookMode::Run(spec) => one_off(ctx, svc, spec, old, env, hook.timeout, &mut rec).await,
        };
        let redactors = [redactor, &Redactor::new(old_secrets)];
        match ran {
            Ok((end, output)) => {
                rec.output_tail = tail(&output, &redactors);
                match end {
                    End::Exited(0) => {
                        rec.outcome = HookOutcome::Ok;
                        rec.exit_code = Some(0);
                    }
                    End::Exited(code) => {
                        rec.outcome = HookOutcome::Failed;
                        rec.exit_code = Some(code);
                    }
                    End::TimedOut => rec.outcome = HookOutcome::TimedOut,
                    End::Interrupted => rec.outcome = HookOutcome::Interrupted,
                }
            }
            Err((error, output)) => {
                rec.output_tail = tail(&output, &redactors);
                let mut message = error.to_string();
                for r in redactors {
                    message = r.text(&message);
                }
                rec.error = Some(redact::scrub(&message));
            }
        }
    }
    rec.duration_ms = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::info!(
        service = %svc.name,
        mode = rec.mode,
        outcome = ?rec.outcome,
        exit_code = ?rec.exit_code,
        duration_ms = rec.duration_ms,
        "pre-recreate hook finished"
    );
    rec
}

type Ran = Result<(End, Vec<u8>), (Box<ApplyError>, Vec<u8>)>;

/// Resolves when the stop signal is set.
async fn stopped(stop: &super::StopSignal) {
    while !stop.is_set() {
        tokio::time::sleep(STOP_POLL).await;
    }
}

/// The newest [`KEEP_BYTES`] of a hook's output, cut only at line starts (so that no line, and
/// no secret in one, is kept in part), and the hook's PID once its wrapper reported it.
#[derive(Debug, Default)]
struct Kept {
    bytes: Vec<u8>,
    /// Set after a cut that found no line start: bytes are dropped up to the next newline.
    mid_line: bool,
    pid: Option<u32>,
}

impl Kept {
    fn push(&mut self, chunk: &[u8]) {
        let chunk = if self.mid_line {
            match chunk.iter().position(|&b| b == b'\n') {
                Some(p) => {
                    self.mid_line = false;
                    &chunk[p + 1..]
                }
                None => return,
            }
        } else {
            chunk
        };
        self.bytes.extend_from_slice(chunk);
        if self.pid.is_none() {
            self.pid = hook_pid(&self.bytes);
        }
        if self.bytes.len() > KEEP_BYTES {
            let cut = self.bytes.len() - KEEP_BYTES;
            match self.bytes[cut..].iter().position(|&b| b == b'\n') {
                Some(p) => {
                    self.bytes.drain(..cut + p + 1);
                }
                None => {
                    self.bytes.clear();
                    self.mid_line = true;
                }
            }
        }
    }
}

/// The command wrapped so that it first reports its PID (to kill it on timeout) and then
/// becomes the command itself.
fn wrapped(command: &[String]) -> Vec<String> {
    let mut cmd = vec![
        "sh".to_string(),
        "-c".to_string(),
        format!("echo \"{PID_MARK}$$\" >&2; exec \"$@\""),
        "spindle-hook".to_string(),
    ];
    cmd.extend(command.iter().cloned());
    cmd
}

async fn exec(
    ctx: &Ctx<'_>,
    old: &ContainerRef,
    command: &[String],
    env: &[String],
    timeout: Duration,
    secrets: &mut Vec<String>,
) -> Ran {
    let fail = |e: ApplyError| Err((Box::new(e), Vec::new()));
    let state = match ctx.engine.inspect_container(&old.id).await {
        Ok(doc) => {
            if let Some(config) = &doc.typed.config {
                let spec = config
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(labels::SPEC))
                    .map(String::as_str);
                secrets.extend(super::hook_secrets::old_secret_values(
                    config.env.as_deref().unwrap_or_default(),
                    spec,
                ));
            }
            doc.typed.state.and_then(|s| s.running).unwrap_or(false)
        }
        Err(e) => return fail(e.into()),
    };
    if !state {
        return fail(ApplyError::Skipped(format!(
            "the old container {} is not running; an exec hook needs it running (use run: for a one-off container)",
            old.name
        )));
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let started = ctx
        .rec
        .write(
            "exec hook",
            &old.name,
            ctx.engine.exec_attached(&old.id, &wrapped(command), env),
        )
        .await;
    let (exec_id, mut output) = match started {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let mut kept = Kept::default();
    let end = loop {
        if ctx.opts.stop.is_set() {
            break Some(End::Interrupted);
        }
        tokio::select! {
            chunk = output.next() => match chunk {
                Some(Ok(bytes)) => kept.push(&bytes),
                Some(Err(e)) => return Err((Box::new(e.into()), kept.bytes)),
                None => break None,
            },
            _ = tokio::time::sleep_until(deadline) => break Some(End::TimedOut),
            _ = stopped(&ctx.opts.stop) => break Some(End::Interrupted),
        }
    };
    drop(output);
    let Kept {
        bytes: buf, pid, ..
    } = kept;
    if let Some(end) = end {
        // Kill the hook's process and its direct children inside the container.
        let killed = match pid {
            Some(pid) => {
                let script = format!(
                    "kill -STOP {pid} 2>/dev/null; for c in $(cat /proc/{pid}/task/*/children 2>/dev/null); do kill -KILL $c; done; kill -KILL {pid}"
                );
                let cmd = vec!["sh".to_string(), "-c".to_string(), script];
                match ctx
                    .rec
                    .write(
                        "kill exec hook",
                        &old.name,
                        ctx.engine.exec_attached(&old.id, &cmd, &[]),
                    )
                    .await
                {
                    Ok((_, out)) => {
                        let _ = tokio::time::timeout(
                            Duration::from_secs(5),
                            out.for_each(|_| async {}),
                        )
                        .await;
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            None => Err(ApplyError::Skipped(
                "its process ID is unknown (the hook needs sh in the container)".into(),
            )),
        };
        return match killed {
            Ok(()) => Ok((end, buf)),
            Err(e) => Err((
                Box::new(ApplyError::Skipped(format!(
                    "{} and could not be killed: {e}",
                    match end {
                        End::Interrupted => "was interrupted",
                        _ => "timed out",
                    }
                ))),
                buf,
            )),
        };
    }
    // The output closed: the exit code follows shortly.
    let settle = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match ctx.engine.inspect_exec(&exec_id).await {
            Ok((false, Some(code))) => return Ok((End::Exited(code), buf)),
            Ok(_) if tokio::time::Instant::now() < settle => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(_) => {
                return Err((
                    Box::new(ApplyError::Skipped(
                        "its output ended but it reported no exit code".into(),
                    )),
                    buf,
                ));
            }
            Err(e) => return Err((Box::new(e.into()), buf)),
        }
    }
}

/// The PID the wrapper reported, from the first line carrying the mark.
fn hook_pid(output: &[u8]) -> Option<u32> {
    let text = String::from_utf8_lossy(output);
    text.lines()
        .find_map(|l| l.trim().strip_prefix(PID_MARK))
        .and_then(|p| p.trim().parse().ok())
}

/// The one-off container's name: `<project>-<service>-pre-recreate`.
pub fn one_off_name(project: &str, service: &str) -> String {
    format!("{project}-{service}-pre-recreate")
}

async fn one_off(
    ctx: &Ctx<'_>,
    svc: &DesiredService,
    spec: &RunSpec,
    old: &ContainerRef,
    mut env: Vec<String>,
    timeout: Duration,
    rec: &mut HookRecord,
) -> Ran {
    let fail = |e: ApplyError| Err((Box::new(e), Vec::new()));
    let project = &ctx.desired.project;
    let name = one_off_name(project, &svc.name);
    rec.container = name.clone();
    // A one-off container left by an interrupted run (kill -9) goes first.
    let selectors = [
        format!("{}={project}", labels::PROJECT),
        format!("{}={}", labels::HOOK, svc.name),
    ];
    let selectors: Vec<&str> = selectors.iter().map(String::as_str).collect();
    match ctx.engine.list_containers(&selectors).await {
        Ok(stale) => {
            for c in stale.into_iter().filter_map(|c| c.id) {
                if let Err(e) = ctx
                    .rec
                    .write("remove container", &name, ctx.engine.remove(&c, true))
                    .await
                {
                    return fail(e);
                }
            }
        }
        Err(e) => return fail(e.into()),
    }
    let image = match &spec.image {
        Some(image) => {
            match ctx.engine.image_id(image).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    if let Err(e) = ctx
                        .rec
                        .write("pull image", image, ctx.engine.pull(image))
                        .await
                    {
                        return fail(e);
                    }
                }
                Err(e) => return fail(e.into()),
            }
            image.clone()
        }
        None => match ctx.engine.inspect_container(&old.id).await {
            Ok(doc) => match doc.typed.image {
                Some(id) => id,
                None => {
                    return fail(ApplyError::Skipped(format!(
                        "the old container {} names no image",
                        old.name
                    )));
                }
            },
            Err(e) => return fail(e.into()),
        },
    };
    rec.image = Some(redact::scrub(&image));
    env.extend(service_env(svc));
    let (body, extra) = one_off_body(ctx, svc, spec, old, &image, &env);
    let id = match ctx
        .rec
        .write(
            "create container",
            &name,
            ctx.engine.create_container(&name, &body),
        )
        .await
    {
        Ok(id) => id,
        Err(e) => return fail(e),
    };
    // From here on the container exists: whatever happens, it is removed at the end.
    let ran = async {
        for net in &extra {
            ctx.rec
                .write(
                    "connect network",
                    &format!("{name} to {net}"),
                    ctx.engine.connect_network(net, &id, &Value::Null),
                )
                .await?;
        }
        ctx.rec
            .write("start container", &name, ctx.engine.start(&id))
            .await?;
        let limit = timeout + Duration::from_secs(5);
        let end = tokio::select! {
            code = ctx.engine.wait_exit(&id, limit) => End::Exited(code?),
            _ = tokio::time::sleep(timeout) => End::TimedOut,
            _ = stopped(&ctx.opts.stop) => End::Interrupted,
        };
        if !matches!(end, End::Exited(_)) {
            let _ = ctx
                .rec
                .write("kill container", &name, ctx.engine.kill(&id, None))
                .await;
        }
        Ok::<End, ApplyError>(end)
    }
    .await;
    let output = ctx.engine.logs_tail(&id, 200).await.unwrap_or_default();
    let removed = if spec.volumes.is_some() {
        ctx.rec
            .write(
                "remove container",
                &name,
                ctx.engine.remove_with_volumes(&id, true),
            )
            .await
    } else {
        // Its volumes are the old container's: never remove them with it.
        ctx.rec
            .write("remove container", &name, ctx.engine.remove(&id, true))
            .await
    };
    match (ran, removed) {
        (Ok(end), Ok(())) => Ok((end, output)),
        (Err(e), _) => Err((Box::new(e), output)),
        (Ok(_), Err(e)) => Err((
            Box::new(ApplyError::Skipped(format!(
                "its one-off container {name} could not be removed: {e}"
            ))),
            output,
        )),
    }
}

/// `KEY=value` entries of the service's own `environment`.
fn service_env(svc: &DesiredService) -> Vec<String> {
    svc.environment()
        .into_iter()
        .filter_map(|(k, v)| Some(format!("{k}={}", v?)))
        .collect()
}

/// The one-off container's create body, and the networks to connect after creating it.
fn one_off_body(
    ctx: &Ctx<'_>,
    svc: &DesiredService,
    spec: &RunSpec,
    old: &ContainerRef,
    image: &str,
    env: &[String],
) -> (Value, Vec<String>) {
    let mut host = serde_json::Map::new();
    match &spec.volumes {
        None => {
            host.insert("VolumesFrom".into(), json!([old.id]));
        }
        Some(mounts) => {
            let list: Vec<Value> = mounts
                .iter()
                .map(|m| {
                    let (kind, source) = match &m.source {
                        MountSource::Volume(key) => (
                            "volume",
                            ctx.desired
                                .volumes
                                .get(key)
                                .map(|v| v.name.clone())
                                .unwrap_or_else(|| key.clone()),
                        ),
                        MountSource::Bind(path) => ("bind", path.to_string_lossy().into_owned()),
                    };
                    json!({"Type": kind, "Source": source, "Target": m.target, "ReadOnly": m.read_only})
                })
                .collect();
            host.insert("Mounts".into(), Value::Array(list));
        }
    }
    let mut nets: Vec<String> = Vec::new();
    if spec.networks {
        if let Some(keys) = svc.model.get("networks").and_then(Value::as_object) {
            nets = keys
                .keys()
                .filter_map(|k| ctx.desired.networks.get(k).map(|n| n.name.clone()))
                .collect();
        }
        if nets.is_empty()
            && let Some(mode) = svc.model.get("network_mode").and_then(Value::as_str)
            && matches!(mode, "host" | "bridge")
        {
            nets.push(mode.to_string());
        }
    }
    let mut nets = nets.into_iter();
    host.insert(
        "NetworkMode".into(),
        json!(nets.next().unwrap_or_else(|| "none".to_string())),
    );
    let body = json!({
        "Image": image,
        "Cmd": spec.command,
        "Env": env,
        "Labels": {
            labels::PROJECT: ctx.desired.project,
            labels::ONEOFF: "True",
            labels::HOOK: svc.name,
            labels::MANAGED_BY: crate::spec::MANAGED_BY_VALUE,
        },
        "HostConfig": Value::Object(host),
    });
    (body, nets.collect())
}

/// The last lines of the output, the PID mark left out, secret values of every redactor redacted.
pub fn tail(output: &[u8], redactors: &[&Redactor]) -> String {
    let text = String::from_utf8_lossy(output);
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().starts_with(PID_MARK))
        .collect();
    // Redact the whole text before cutting it, so that a cut cannot split a secret value.
    let mut clean = kept.join("\n");
    for r in redactors {
        clean = r.text(&clean);
    }
    let clean = redact::scrub(&clean);
    let lines: Vec<&str> = clean.lines().collect();
    let last = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
    let chars = last.chars().count();
    if chars > TAIL_CHARS {
        last.chars().skip(chars - TAIL_CHARS).collect()
    } else {
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_lines_without_the_pid_mark_and_with_secrets_redacted() {
        let r = Redactor::new(["hunter2-very-secret".to_string()]);
        let mut out = format!("{PID_MARK}42\n");
        for i in 0..30 {
            out.push_str(&format!("line {i}\n"));
        }
        out.push_str("password is hunter2-very-secret\n");
        let t = tail(out.as_bytes(), &[&r]);
        assert!(!t.contains(PID_MARK), "{t}");
        assert!(!t.contains("hunter2-very-secret"), "{t}");
        assert!(t.ends_with("password is <redacted>"), "{t}");
        assert_eq!(t.lines().count(), TAIL_LINES);
        assert!(t.starts_with("line 11"), "{t}");
    }

    #[test]
    fn a_long_line_is_cut_to_the_character_budget() {
        let out = "é".repeat(TAIL_CHARS * 2);
        let t = tail(out.as_bytes(), &[&Redactor::default()]);
        assert_eq!(t.chars().count(), TAIL_CHARS);
    }

    #[test]
    fn the_pid_is_read_from_the_mark_line() {
        let cases: [(&str, Option<u32>); 4] = [
            ("spindle-hook-pid=17\nhello\n", Some(17)),
            ("hello\nspindle-hook-pid=9\n", Some(9)),
            ("hello\n", None),
            ("spindle-hook-pid=x\n", None),
        ];
        for (out, want) in cases {
            assert_eq!(hook_pid(out.as_bytes()), want, "{out:?}");
        }
    }

    #[test]
    fn the_wrapper_execs_the_command_with_its_arguments_intact() {
        let cmd = wrapped(&["pg_dump".into(), "a b".into()]);
        assert_eq!(&cmd[..2], ["sh", "-c"]);
        assert!(cmd[2].ends_with("exec \"$@\""));
        assert_eq!(&cmd[3..], ["spindle-hook", "pg_dump", "a b"]);
    }

    #[test]
    fn kept_output_is_bounded_and_cut_only_at_line_starts() {
        let mut kept = Kept::default();
        kept.push(format!("{PID_MARK}42\n").as_bytes());
        let mut line = vec![b'a'; KEEP_BYTES - 10];
        line.extend_from_slice(b"SECRET-HEAD");
        kept.push(&line);
        kept.push(b"SECRET-TAIL\nnext line\n");
        assert!(kept.bytes.len() <= KEEP_BYTES);
        assert_eq!(kept.bytes, b"next line\n", "the cut line is dropped whole");
        assert_eq!(kept.pid, Some(42), "the PID survives the cut");
    }

    #[test]
    fn a_line_longer_than_the_bound_is_dropped_to_its_end() {
        let mut kept = Kept::default();
        kept.push(&vec![b'x'; KEEP_BYTES + 5]);
        assert!(kept.bytes.is_empty());
        kept.push(b"still the same line");
        assert!(kept.bytes.is_empty());
        kept.push(b" end\nfresh\n");
        assert_eq!(kept.bytes, b"fresh\n");
    }
}
