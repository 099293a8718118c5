//! Trigger sources: the desired-state folder watcher, the project's Docker events (reconnecting with `since`), SIGHUP, and the shutdown signals.

use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use futures_util::stream::{Stream, StreamExt};
use notify_debouncer_full::notify::{self, EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, new_debouncer};
use tokio::sync::mpsc;

use super::{ControllerError, Trigger};
use crate::engine::Engine;

/// A stream fed by a background task or watcher; dropping it stops the feeder.
struct Fed<G> {
    rx: mpsc::UnboundedReceiver<Trigger>,
    _guard: G,
}

impl<G: Unpin> Stream for Fed<G> {
    type Item = Trigger;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Trigger>> {
        self.rx.poll_recv(cx)
    }
}

/// Aborts its task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Whether a path inside the watched folder is noise that must not trigger a reconcile:
/// anything under a `.git` directory, editor swap and backup files (`*.swp`, `*.swo`, `*.swx`,
/// `*~`), vim's write probe `4913`, and emacs lock and autosave files (`.#*`, `#*#`).
pub fn is_noise(path: &Path) -> bool {
    if path
        .components()
        .any(|c| c == Component::Normal(".git".as_ref()))
    {
        return true;
    }
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name == "4913"
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swo")
        || name.ends_with(".swx")
        || name.starts_with(".#")
        || (name.starts_with('#') && name.ends_with('#') && name.len() > 1)
}

fn relative(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}

/// Watches `dir` recursively (the folder, not single files, so that editors' atomic saves —
/// write a temporary file, rename it over the original — are seen) and yields one
/// [`Trigger::Files`] per debounced batch of relevant changes, with paths relative to `dir`.
/// Access events and [`is_noise`] paths are dropped; a watcher error or a rescan request yields
/// `Files { paths: [] }` ("anything may have changed").
pub fn watch_folder(
    dir: &Path,
    debounce: Duration,
) -> Result<impl Stream<Item = Trigger> + Send + 'static, ControllerError> {
    let root = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let (tx, rx) = mpsc::unbounded_channel();
    let handler_root = root.clone();
    let handler = move |result: DebounceEventResult| {
        let trigger = match result {
            Ok(events) => {
                let mut paths = Vec::new();
                let mut rescan = false;
                for event in events {
                    if event.need_rescan() {
                        rescan = true;
                        continue;
                    }
                    if matches!(event.kind, EventKind::Access(_)) {
                        continue;
                    }
                    for p in &event.paths {
                        let rel = relative(&handler_root, p);
                        if !is_noise(&rel) {
                            paths.push(rel);
                        }
                    }
                }
                if rescan {
                    Some(Trigger::Files { paths: Vec::new() })
                } else if paths.is_empty() {
                    None
                } else {
                    paths.sort();
                    paths.dedup();
                    Some(Trigger::Files { paths })
                }
            }
            Err(errors) => {
                for e in &errors {
                    tracing::warn!(error = %e, "the desired-state watcher reported an error");
                }
                Some(Trigger::Files { paths: Vec::new() })
            }
        };
        if let Some(t) = trigger {
            let _ = tx.send(t);
        }
    };
    let watch_err = |source: notify::Error| ControllerError::Watch {
        path: root.clone(),
        source,
    };
    let mut debouncer = new_debouncer(debounce, None, handler).map_err(watch_err)?;
    debouncer
        .watch(&root, RecursiveMode::Recursive)
        .map_err(watch_err)?;
    Ok(Fed {
        rx,
        _guard: debouncer,
    })
}

/// The container actions that trigger a reconcile (`health_status` also as `health_status: …`).
pub const DOCKER_ACTIONS: &[&str] = &["die", "destroy", "stop", "kill", "oom", "health_status"];

/// The actions the engine streams to spindle: the triggers, and `update`, which tells the engine
/// client that a container's live settings left its labels (`docker update`). Nothing else is
/// sent, so an idle stack's healthcheck execs cost spindle nothing.
const STREAMED_ACTIONS: &[&str] = &[
    "die",
    "destroy",
    "stop",
    "kill",
    "oom",
    "health_status",
    "update",
];

/// Whether a container event action is one of [`DOCKER_ACTIONS`].
pub fn is_relevant_docker_action(action: &str) -> bool {
    DOCKER_ACTIONS.contains(&action) || action.starts_with("health_status:")
}

/// The project's container events that matter (see [`DOCKER_ACTIONS`]) as triggers, with the
/// container's name. When the event stream fails or ends, it reconnects after a jittered
/// exponential backoff (0.5 s up to 30 s, reset by the next event) and resumes from the time of
/// the last event seen, so that nothing in between is lost (an event seen twice is dropped).
/// Call it within a tokio runtime: a task feeds the stream, and stops when the stream is dropped.
pub fn docker_events(
    engine: Engine,
    project: &str,
) -> impl Stream<Item = Trigger> + Send + 'static {
    let project = project.to_string();
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let backoff = ExponentialBuilder::new()
            .with_min_delay(Duration::from_millis(500))
            .with_max_delay(Duration::from_secs(30))
            .with_jitter()
            .without_max_times();
        let mut delays = backoff.build();
        // The first connection starts now; later ones resume from the last event seen.
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .and_then(|d| i64::try_from(d.as_nanos()).ok());
        let mut last: Option<Seen> = None;
        loop {
            let since = last.as_ref().map(|l| l.0).or(start);
            let mut events = Box::pin(engine.events_since(&project, since, STREAMED_ACTIONS));
            loop {
                match events.next().await {
                    Some(Ok(ev)) => {
                        delays = backoff.build();
                        if replayed(last.as_ref(), &ev) {
                            continue;
                        }
                        last = Some((ev.time_nano, ev.id.clone(), ev.action.clone()));
                        if ev.kind != "container" || !is_relevant_docker_action(&ev.action) {
                            continue;
                        }
                        // One-off containers (pre-recreate hooks, `compose run`) are not the project's state.
                        if ev
                            .attributes
                            .get(crate::labels::ONEOFF)
                            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
                        {
                            continue;
                        }
                        let container = ev
                            .attributes
                            .get("name")
                            .cloned()
                            .unwrap_or_else(|| ev.id.clone());
                        let trigger = Trigger::Docker {
                            action: ev.action,
                            container,
                        };
                        if tx.send(trigger).is_err() {
                            return;
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "the Docker event stream failed; reconnecting");
                        break;
                    }
                    None => {
                        tracing::debug!("the Docker event stream ended; reconnecting");
                        break;
                    }
                }
            }
            if tx.is_closed() {
                return;
            }
            let delay = delays.next().unwrap_or(Duration::from_secs(30));
            tokio::time::sleep(delay).await;
        }
    });
    Fed {
        rx,
        _guard: AbortOnDrop(task.abort_handle()),
    }
}

/// The last event seen: its time, object ID and action.
type Seen = (i64, String, String);

/// Whether `ev` was already seen, the stream having resumed from the time of `last` (the engine
/// sends again what happened at that very time).
fn replayed(last: Option<&Seen>, ev: &crate::engine::EngineEvent) -> bool {
    match last {
        Some((t, id, action)) => {
            ev.time_nano < *t || (ev.time_nano == *t && ev.id == *id && ev.action == *action)
        }
        None => false,
    }
}

/// SIGHUP as [`Trigger::Signal`], one per signal received.
pub fn sighup() -> Result<impl Stream<Item = Trigger> + Send + 'static, ControllerError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).map_err(|source| ControllerError::Signal {
        signal: "SIGHUP",
        source,
    })?;
    Ok(futures_util::stream::poll_fn(move |cx| {
        hup.poll_recv(cx).map(|o| o.map(|()| Trigger::Signal))
    }))
}

/// Resolves on the first SIGTERM or SIGINT. If a handler cannot be installed, the other one
/// still works (and the failure is logged).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    let (mut term, mut int) = match (term, int) {
        (Ok(t), Ok(i)) => (Some(t), Some(i)),
        (t, i) => {
            if let Err(e) = &t {
                tracing::error!(error = %e, "cannot install the SIGTERM handler");
            }
            if let Err(e) = &i {
                tracing::error!(error = %e, "cannot install the SIGINT handler");
            }
            (t.ok(), i.ok())
        }
    };
    let term_fut = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    let int_fut = async {
        match int.as_mut() {
            Some(i) => {
                i.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = term_fut => tracing::info!("SIGTERM received"),
        () = int_fut => tracing::info!("SIGINT received"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineEvent;

    fn ev(time_nano: i64, id: &str, action: &str) -> EngineEvent {
        EngineEvent {
            kind: "container".into(),
            action: action.into(),
            id: id.into(),
            attributes: Default::default(),
            time_nano,
        }
    }

    #[test]
    fn events_replayed_after_a_reconnect_are_dropped_and_new_ones_kept() {
        let last: Seen = (100, "a".into(), "die".into());
        assert!(!replayed(None, &ev(1, "a", "die")));
        assert!(replayed(Some(&last), &ev(99, "b", "die")));
        assert!(replayed(Some(&last), &ev(100, "a", "die")));
        assert!(!replayed(Some(&last), &ev(100, "a", "destroy")));
        assert!(!replayed(Some(&last), &ev(100, "b", "die")));
        assert!(!replayed(Some(&last), &ev(101, "a", "die")));
    }
}
