//! Tests of the control loop (in paused tokio time), the error policy, the budgets, and the real trigger sources.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::{Instant, advance, sleep};

use super::*;

#[derive(Debug, thiserror::Error)]
#[error("mock failure")]
struct MockError;

/// One recorded reconcile: when it started and ended (since the test's start), and its triggers.
#[derive(Clone, Debug)]
struct Call {
    start: Duration,
    end: Option<Duration>,
    triggers: Vec<Trigger>,
    saw_stop: bool,
}

#[derive(Clone)]
struct Log {
    t0: Instant,
    calls: Arc<Mutex<Vec<Call>>>,
    busy: Arc<AtomicBool>,
    overlapped: Arc<AtomicBool>,
}

impl Log {
    fn new() -> Self {
        Log {
            t0: Instant::now(),
            calls: Arc::default(),
            busy: Arc::default(),
            overlapped: Arc::default(),
        }
    }
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

struct Mock {
    log: Log,
    delay: Duration,
    script: VecDeque<Result<Next, ()>>,
    then: Result<Next, ()>,
    stop: Option<StopToken>,
}

impl Mock {
    fn new(log: &Log, delay: Duration) -> Self {
        Mock {
            log: log.clone(),
            delay,
            script: VecDeque::new(),
            then: Ok(Next::AwaitChange),
            stop: None,
        }
    }
    fn script(mut self, script: Vec<Result<Next, ()>>, then: Result<Next, ()>) -> Self {
        self.script = script.into();
        self.then = then;
        self
    }
}

impl Reconciler for Mock {
    type Error = MockError;
    fn reconcile(
        &mut self,
        triggers: Vec<Trigger>,
    ) -> impl Future<Output = Result<Next, MockError>> + Send {
        let log = self.log.clone();
        let delay = self.delay;
        let out = self.script.pop_front().unwrap_or(self.then);
        let stop = self.stop.clone();
        async move {
            if log.busy.swap(true, Ordering::SeqCst) {
                log.overlapped.store(true, Ordering::SeqCst);
            }
            let index = {
                let mut calls = log.calls.lock().unwrap();
                calls.push(Call {
                    start: log.t0.elapsed(),
                    end: None,
                    triggers,
                    saw_stop: false,
                });
                calls.len() - 1
            };
            sleep(delay).await;
            {
                let mut calls = log.calls.lock().unwrap();
                calls[index].end = Some(log.t0.elapsed());
                calls[index].saw_stop = stop.is_some_and(|s| s.is_stopping());
            }
            log.busy.store(false, Ordering::SeqCst);
            out.map_err(|()| MockError)
        }
    }
}

fn no_resync() -> ControllerConfig {
    ControllerConfig {
        resync: Duration::ZERO,
        retry: RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        },
        ..ControllerConfig::default()
    }
}

struct Running {
    handle: TriggerHandle,
    stop: Option<oneshot::Sender<()>>,
    join: tokio::task::JoinHandle<Result<(), ControllerError>>,
}

impl Running {
    async fn stop(mut self) -> Result<(), ControllerError> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.join.await.unwrap()
    }
}

fn start(config: ControllerConfig, mock: Mock, sources: Sources) -> Running {
    let handle = sources.handle();
    let (tx, rx) = oneshot::channel::<()>();
    let join = tokio::spawn(run(config, mock, sources, async move {
        let _ = rx.await;
    }));
    Running {
        handle,
        stop: Some(tx),
        join,
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn docker(action: &str, container: &str) -> Trigger {
    Trigger::Docker {
        action: action.into(),
        container: container.into(),
    }
}

#[tokio::test(start_paused = true)]
async fn ten_triggers_during_one_slow_reconcile_cause_exactly_one_follow_up_receiving_them_all() {
    let log = Log::new();
    let r = start(no_resync(), Mock::new(&log, secs(10.0)), Sources::new());
    sleep(secs(1.0)).await;
    let sent = [
        Trigger::Api,
        docker("die", "web-1"),
        docker("die", "web-1"),
        docker("destroy", "db-1"),
        Trigger::Files {
            paths: vec!["compose.yaml".into()],
        },
        Trigger::Files {
            paths: vec![".env".into(), "compose.yaml".into()],
        },
        Trigger::Signal,
        Trigger::Api,
        Trigger::Resync,
        docker("health_status: unhealthy", "web-2"),
    ];
    for t in sent {
        r.handle.trigger(t);
        sleep(secs(0.5)).await;
    }
    sleep(secs(60.0)).await;
    r.stop().await.unwrap();
    let calls = log.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].triggers, vec![Trigger::Startup]);
    assert_eq!(calls[1].start, secs(10.0));
    assert_eq!(
        calls[1].triggers,
        vec![
            Trigger::Api,
            docker("die", "web-1"),
            docker("destroy", "db-1"),
            Trigger::Files {
                paths: vec![".env".into(), "compose.yaml".into()]
            },
            Trigger::Signal,
            Trigger::Resync,
            docker("health_status: unhealthy", "web-2"),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn reconciles_never_overlap_whatever_the_trigger_rate() {
    let log = Log::new();
    let r = start(no_resync(), Mock::new(&log, secs(3.0)), Sources::new());
    for i in 0..200u32 {
        r.handle.trigger(docker("die", &format!("c-{}", i % 7)));
        sleep(Duration::from_millis(137)).await;
    }
    sleep(secs(10.0)).await;
    r.stop().await.unwrap();
    assert!(!log.overlapped.load(Ordering::SeqCst));
    let calls = log.calls();
    // 200 × 137 ms ≈ 27.4 s of triggers, 3 s each reconcile: about 10, never 200.
    assert!((9..=12).contains(&calls.len()), "{}", calls.len());
    for pair in calls.windows(2) {
        assert!(pair[1].start >= pair[0].end.unwrap());
    }
}

#[tokio::test(start_paused = true)]
async fn triggers_arriving_at_the_same_instant_while_idle_join_one_reconcile() {
    let log = Log::new();
    let r = start(no_resync(), Mock::new(&log, secs(1.0)), Sources::new());
    sleep(secs(5.0)).await;
    r.handle.trigger(Trigger::Api);
    r.handle.trigger(Trigger::Signal);
    sleep(secs(5.0)).await;
    r.stop().await.unwrap();
    let calls = log.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].triggers, vec![Trigger::Api, Trigger::Signal]);
}

#[tokio::test(start_paused = true)]
async fn requeue_after_runs_another_reconcile_after_the_duration() {
    let log = Log::new();
    let mock = Mock::new(&log, secs(1.0)).script(
        vec![Ok(Next::RequeueAfter(secs(30.0)))],
        Ok(Next::AwaitChange),
    );
    let r = start(no_resync(), mock, Sources::new());
    sleep(secs(120.0)).await;
    r.stop().await.unwrap();
    let calls = log.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[1].start, secs(31.0));
    assert_eq!(calls[1].triggers, vec![Trigger::Requeue]);
}

#[tokio::test(start_paused = true)]
async fn a_trigger_before_the_requeue_replaces_it() {
    let log = Log::new();
    let mock = Mock::new(&log, secs(1.0)).script(
        vec![Ok(Next::RequeueAfter(secs(30.0)))],
        Ok(Next::AwaitChange),
    );
    let r = start(no_resync(), mock, Sources::new());
    sleep(secs(10.0)).await;
    r.handle.trigger(Trigger::Api);
    sleep(secs(120.0)).await;
    r.stop().await.unwrap();
    let calls = log.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[1].start, secs(10.0));
    assert_eq!(calls[1].triggers, vec![Trigger::Api]);
}

#[test]
fn exponential_backoff_grows_is_capped_and_resets_after_success() {
    let mut p = ExponentialPolicy::new(RetryPolicy {
        min: secs(1.0),
        max: secs(8.0),
        factor: 2.0,
        jitter: false,
        max_attempts: None,
    });
    let delays: Vec<_> = (1..=6).filter_map(|a| p.backoff(&MockError, a)).collect();
    assert_eq!(
        delays,
        [1.0, 2.0, 4.0, 8.0, 8.0, 8.0].map(secs).to_vec(),
        "grows by the factor up to the cap"
    );
    p.reset();
    assert_eq!(p.backoff(&MockError, 1), Some(secs(1.0)));
}

#[test]
fn backoff_stops_after_max_attempts() {
    let mut p = ExponentialPolicy::new(RetryPolicy {
        max_attempts: Some(2),
        jitter: false,
        ..RetryPolicy::default()
    });
    assert!(p.backoff(&MockError, 1).is_some());
    assert!(p.backoff(&MockError, 2).is_some());
    assert_eq!(p.backoff(&MockError, 3), None);
}

#[test]
fn backoff_jitter_stays_between_the_delay_and_twice_it_and_under_the_cap() {
    for _ in 0..200 {
        let mut p = ExponentialPolicy::new(RetryPolicy {
            min: secs(1.0),
            max: secs(10.0),
            factor: 2.0,
            jitter: true,
            max_attempts: None,
        });
        let mut base = secs(1.0);
        for attempt in 1..=8 {
            let d = p.backoff(&MockError, attempt).unwrap();
            assert!(
                d >= base && d <= (base * 2).min(secs(10.0)),
                "{d:?} for {base:?}"
            );
            base = (base * 2).min(secs(10.0));
        }
    }
}

#[test]
fn resync_jitter_stays_within_plus_or_minus_the_fraction() {
    let base = secs(300.0);
    assert_eq!(jittered(base, 0.1, 0.0), secs(270.0));
    assert_eq!(jittered(base, 0.1, 0.5), base);
    assert_eq!(jittered(base, 0.0, 0.9), base);
    assert_eq!(jittered(base, f64::NAN, 0.9), base);
    for _ in 0..1000 {
        let d = resync_delay(&ControllerConfig::default());
        assert!(d >= secs(270.0) && d <= secs(330.0), "{d:?}");
    }
}

#[test]
fn config_validation_refuses_nonsense() {
    assert!(ControllerConfig::default().validate().is_ok());
    let bad_jitter = ControllerConfig {
        resync_jitter: 1.5,
        ..ControllerConfig::default()
    };
    assert!(bad_jitter.validate().is_err());
    let bad_retry = RetryPolicy {
        min: secs(10.0),
        max: secs(1.0),
        ..RetryPolicy::default()
    };
    assert!(bad_retry.validate().is_err());
}

#[tokio::test(start_paused = true)]
async fn failed_reconciles_are_retried_with_growing_backoff_which_resets_after_a_success() {
    let log = Log::new();
    let mock = Mock::new(&log, Duration::ZERO).script(
        vec![Err(()), Err(()), Err(()), Ok(Next::AwaitChange), Err(())],
        Ok(Next::AwaitChange),
    );
    let r = start(no_resync(), mock, Sources::new());
    sleep(secs(100.0)).await;
    r.handle.trigger(Trigger::Api);
    sleep(secs(100.0)).await;
    r.stop().await.unwrap();
    let calls = log.calls();
    let starts: Vec<Duration> = calls.iter().map(|c| c.start).collect();
    // 0 fails → +1 s; 1 fails → +2 s; 3 fails → +4 s; 7 succeeds. 100 (Api) fails → +1 s again.
    assert_eq!(
        starts,
        [0.0, 1.0, 3.0, 7.0, 100.0, 101.0].map(secs).to_vec()
    );
    assert_eq!(calls[1].triggers, vec![Trigger::Retry { attempt: 1 }]);
    assert_eq!(calls[3].triggers, vec![Trigger::Retry { attempt: 3 }]);
    assert_eq!(calls[5].triggers, vec![Trigger::Retry { attempt: 1 }]);
}

#[tokio::test(start_paused = true)]
async fn docker_triggers_wait_for_the_retry_but_a_file_change_cuts_the_backoff_short() {
    let log = Log::new();
    let mut config = no_resync();
    config.retry.min = secs(60.0);
    config.retry.max = secs(600.0);
    let mock =
        Mock::new(&log, Duration::ZERO).script(vec![Err(()), Err(())], Ok(Next::AwaitChange));
    let r = start(config, mock, Sources::new());
    sleep(secs(5.0)).await;
    r.handle.trigger(docker("die", "web-1"));
    sleep(secs(100.0)).await; // the retry at 60 s takes the Docker trigger along; it fails again
    r.handle.trigger(Trigger::Files {
        paths: vec!["compose.yaml".into()],
    });
    sleep(secs(10.0)).await;
    r.stop().await.unwrap();
    let calls = log.calls();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls[1].start, secs(60.0));
    assert_eq!(
        calls[1].triggers,
        vec![docker("die", "web-1"), Trigger::Retry { attempt: 1 }]
    );
    assert_eq!(calls[2].start, secs(105.0));
    assert_eq!(
        calls[2].triggers,
        vec![
            Trigger::Files {
                paths: vec!["compose.yaml".into()]
            },
            Trigger::Retry { attempt: 2 }
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn resync_fires_periodically_with_jitter() {
    let log = Log::new();
    let config = ControllerConfig {
        resync: secs(60.0),
        resync_jitter: 0.1,
        ..ControllerConfig::default()
    };
    let r = start(config, Mock::new(&log, Duration::ZERO), Sources::new());
    sleep(secs(600.0)).await;
    r.stop().await.unwrap();
    let calls = log.calls();
    assert!((9..=12).contains(&calls.len()), "{}", calls.len());
    for pair in calls.windows(2) {
        assert_eq!(pair[1].triggers, vec![Trigger::Resync]);
        let gap = pair[1].start - pair[0].start;
        assert!(gap >= secs(54.0) && gap <= secs(66.0), "{gap:?}");
    }
    let gaps: Vec<_> = calls.windows(2).map(|p| p[1].start - p[0].start).collect();
    assert!(
        gaps.iter().any(|g| *g != gaps[0]),
        "jitter varies the gaps: {gaps:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_the_running_reconcile_and_takes_no_more_triggers() {
    let log = Log::new();
    let sources = Sources::new();
    let mut mock = Mock::new(&log, secs(10.0));
    mock.stop = Some(sources.stop_token());
    let r = start(no_resync(), mock, sources);
    sleep(secs(2.0)).await;
    let handle = r.handle.clone();
    let Running { stop, join, .. } = r;
    let _ = stop.unwrap().send(());
    sleep(secs(1.0)).await;
    handle.trigger(Trigger::Api);
    let started = Instant::now();
    join.await.unwrap().unwrap();
    assert_eq!(
        log.t0.elapsed(),
        secs(10.0),
        "returned when the reconcile ended"
    );
    assert!(started.elapsed() <= secs(7.0));
    let calls = log.calls();
    assert_eq!(calls.len(), 1, "no reconcile after shutdown: {calls:?}");
    assert_eq!(calls[0].end, Some(secs(10.0)));
    assert!(calls[0].saw_stop, "the reconciler could see the stop token");
}

#[tokio::test(start_paused = true)]
async fn shutdown_while_idle_returns_at_once() {
    let log = Log::new();
    let r = start(
        ControllerConfig::default(),
        Mock::new(&log, secs(1.0)),
        Sources::new(),
    );
    sleep(secs(30.0)).await;
    let before = Instant::now();
    r.stop().await.unwrap();
    assert_eq!(before.elapsed(), Duration::ZERO);
    assert_eq!(log.calls().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn plugged_streams_trigger_reconciles() {
    let log = Log::new();
    let (tx, rx) = mpsc::unbounded_channel::<Trigger>();
    let mut rx = rx;
    let stream = stream::poll_fn(move |cx| rx.poll_recv(cx));
    let r = start(
        no_resync(),
        Mock::new(&log, secs(1.0)),
        Sources::new().with(stream),
    );
    sleep(secs(5.0)).await;
    tx.send(Trigger::Signal).unwrap();
    drop(tx); // an ended stream is simply no longer listened to
    sleep(secs(5.0)).await;
    r.handle.trigger(Trigger::Api);
    sleep(secs(5.0)).await;
    r.stop().await.unwrap();
    let triggers: Vec<_> = log.calls().into_iter().map(|c| c.triggers).collect();
    assert_eq!(
        triggers,
        vec![
            vec![Trigger::Startup],
            vec![Trigger::Signal],
            vec![Trigger::Api]
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn restart_budget_refuses_the_fourth_restart_until_the_window_slides() {
    let mut budget = RestartBudget::new(3, secs(600.0));
    let t0 = Instant::now();
    let key = "web#1";
    budget.try_spend(key, Instant::now()).unwrap();
    advance(secs(60.0)).await;
    budget.try_spend(key, Instant::now()).unwrap();
    advance(secs(60.0)).await;
    budget.try_spend(key, Instant::now()).unwrap();
    advance(secs(60.0)).await;
    assert_eq!(
        budget.try_spend(key, Instant::now()),
        Err(Exhausted {
            until: t0 + secs(600.0),
            count: 3
        })
    );
    assert_eq!(budget.state(key, Instant::now()).remaining, 0);
    // Another key has its own budget.
    budget.try_spend("web#2", Instant::now()).unwrap();
    advance(secs(419.0)).await;
    assert!(budget.try_spend(key, Instant::now()).is_err());
    advance(secs(1.0)).await;
    budget.try_spend(key, Instant::now()).unwrap();
    let state = budget.state(key, Instant::now());
    assert_eq!((state.used, state.remaining), (3, 0));
    assert_eq!(state.oldest_expires, Some(t0 + secs(660.0)));
    assert!(budget.try_spend(key, Instant::now()).is_err());
}

#[tokio::test(start_paused = true)]
async fn an_unhealthy_container_counts_only_past_the_grace_and_recovery_resets_it() {
    let mut tracker = UnhealthyTracker::new(secs(30.0));
    let key = "web#1";
    assert!(!tracker.observe(key, true, Instant::now()));
    advance(secs(29.0)).await;
    assert!(!tracker.observe(key, true, Instant::now()));
    assert_eq!(tracker.remaining(key, Instant::now()), Some(secs(1.0)));
    advance(secs(1.0)).await;
    assert!(tracker.observe(key, true, Instant::now()));
    assert!(!tracker.observe(key, false, Instant::now()));
    assert_eq!(tracker.remaining(key, Instant::now()), None);
    advance(secs(1.0)).await;
    assert!(!tracker.observe(key, true, Instant::now()));
    advance(secs(31.0)).await;
    assert!(tracker.observe(key, true, Instant::now()));
    tracker.reset(key);
    assert!(!tracker.observe(key, true, Instant::now()));
}

#[test]
fn watcher_noise_filter_drops_git_internals_and_editor_files_only() {
    for noise in [
        ".git/index",
        ".git/objects/ab/cdef",
        "sub/.git/HEAD",
        ".compose.yaml.swp",
        "compose.yaml.swo",
        "compose.yaml~",
        "4913",
        "dir/4913",
        ".#compose.yaml",
        "#compose.yaml#",
    ] {
        assert!(is_noise(Path::new(noise)), "{noise}");
    }
    for real in [
        "compose.yaml",
        ".env",
        "overrides/compose.override.yaml",
        ".gitignore",
        "configs/nginx.conf",
        "#",
    ] {
        assert!(!is_noise(Path::new(real)), "{real}");
    }
}

async fn next_within(
    stream: &mut (impl Stream<Item = Trigger> + Unpin),
    limit: Duration,
) -> Option<Trigger> {
    tokio::time::timeout(limit, stream.next())
        .await
        .ok()
        .flatten()
}

#[tokio::test]
async fn an_atomic_save_in_the_watched_folder_yields_a_trigger_and_a_swap_file_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let compose = dir.path().join("compose.yaml");
    std::fs::write(&compose, "services: {}\n").unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    let mut stream = Box::pin(watch_folder(dir.path(), Duration::from_millis(200)).unwrap());

    // Noise only: a swap file, vim's probe, git internals.
    std::fs::write(dir.path().join(".compose.yaml.swp"), "x").unwrap();
    std::fs::write(dir.path().join("4913"), "").unwrap();
    std::fs::remove_file(dir.path().join("4913")).unwrap();
    std::fs::write(dir.path().join(".git/index"), "x").unwrap();
    assert_eq!(next_within(&mut stream, secs(1.5)).await, None);

    // An editor's atomic save: write a temporary file, rename it over the original.
    let tmp = dir.path().join(".compose.yaml.tmp123");
    std::fs::write(&tmp, "services: {web: {image: x}}\n").unwrap();
    std::fs::rename(&tmp, &compose).unwrap();
    let trigger = next_within(&mut stream, secs(5.0)).await;
    let Some(Trigger::Files { paths }) = trigger else {
        panic!("no file trigger: {trigger:?}");
    };
    assert!(paths.contains(&PathBuf::from("compose.yaml")), "{paths:?}");

    // The watch still holds after the rename replaced the file.
    std::fs::write(&compose, "services: {web: {image: y}}\n").unwrap();
    let trigger = next_within(&mut stream, secs(5.0)).await;
    assert!(
        matches!(&trigger, Some(Trigger::Files { paths }) if paths.contains(&PathBuf::from("compose.yaml"))),
        "{trigger:?}"
    );
}

/// Removes the test container even when the test fails.
struct ContainerGuard(String);

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &self.0])
            .output();
    }
}

#[test]
fn docker_event_filter_keeps_the_compose_container_actions() {
    for a in [
        "die",
        "destroy",
        "stop",
        "kill",
        "oom",
        "health_status",
        "health_status: unhealthy",
    ] {
        assert!(is_relevant_docker_action(a), "{a}");
    }
    for a in [
        "start",
        "create",
        "exec_create: sh",
        "attach",
        "rename",
        "health",
    ] {
        assert!(!is_relevant_docker_action(a), "{a}");
    }
}

#[tokio::test]
async fn killing_a_project_container_yields_docker_kill_and_die_triggers() {
    let engine = crate::engine::Engine::connect().await.unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let project = format!("spindle-h-controller-{:x}{:x}", std::process::id(), nanos);
    let name = format!("{project}-web-1");
    let _guard = ContainerGuard(name.clone());
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_nanos()).ok());
    let mut stream = Box::pin(docker_events(engine.clone(), &project));
    // Let the event request reach the engine before the container appears.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = std::process::Command::new("docker")
        .args(["run", "-d", "--name", &name, "--label"])
        .arg(format!("{}={project}", crate::labels::PROJECT))
        .arg("spindle-test/busybox:1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new("docker")
        .args(["kill", &name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut seen = Vec::new();
    while !seen.contains(&docker("die", &name)) {
        match next_within(&mut stream, secs(10.0)).await {
            Some(t) => seen.push(t),
            None => panic!("no die event; seen {seen:?}"),
        }
    }
    assert!(seen.contains(&docker("kill", &name)), "{seen:?}");
    assert!(
        seen.iter().all(
            |t| matches!(t, Trigger::Docker { action, .. } if action == "kill" || action == "die")
        ),
        "start and create are not triggers: {seen:?}"
    );

    // A stream that resumes with `since` gets the past events again (what a reconnect relies on).
    let mut replay = Box::pin(engine.events_since(&project, before, &[]));
    let mut replayed = Vec::new();
    while !replayed
        .iter()
        .any(|e: &crate::engine::EngineEvent| e.action == "die")
    {
        match tokio::time::timeout(secs(10.0), replay.next()).await {
            Ok(Some(Ok(e))) => replayed.push(e),
            other => panic!("no replayed die event: {other:?}; seen {replayed:?}"),
        }
    }
}
