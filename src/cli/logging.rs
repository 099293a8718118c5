//! Log output: the level filter (with a ceiling for chatty dependencies) and the scrubbing writer.

use std::io::Write;

use spindle::redact;
use tracing_subscriber::filter::{FilterExt, LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Dependencies whose debug logs carry request and response bodies (a container's `Config.Env`,
/// registry credentials): never below `warn`, whatever `-v` or `SPINDLE_LOG` ask for.
pub const QUIET_TARGETS: &[&str] = &[
    "bollard",
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
    "rustls",
    "tower",
    "tower_http",
    "axum",
];

/// The level `-v` asks for.
fn default_level(verbose: u8, daemon: bool) -> &'static str {
    match verbose {
        0 if daemon => "info",
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    }
}

/// The subscriber spindle logs through: `SPINDLE_LOG` (else the `-v` level), capped at `warn` for
/// [`QUIET_TARGETS`], every line scrubbed of secrets before it reaches `writer`.
pub fn subscriber<W>(
    verbose: u8,
    daemon: bool,
    spindle_log: Option<&str>,
    writer: W,
    ansi: bool,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let default = default_level(verbose, daemon);
    let filter = spindle_log
        .and_then(|s| EnvFilter::try_new(s).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let ceiling = QUIET_TARGETS.iter().fold(
        Targets::new().with_default(LevelFilter::TRACE),
        |t, target| t.with_target(*target, LevelFilter::WARN),
    );
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(Scrubbing(writer))
        .with_ansi(ansi)
        .with_target(false)
        .with_filter(filter.and(ceiling));
    tracing_subscriber::registry().with(layer)
}

/// Wraps a writer maker so that every formatted line passes through [`redact::scrub`].
pub struct Scrubbing<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Scrubbing<M> {
    type Writer = ScrubbingWriter<M::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        ScrubbingWriter(self.0.make_writer())
    }
}

/// Passes log output through the secret scrubber before it reaches the inner writer. The fmt
/// layer writes each event in one call, so a secret is never split across writes.
pub struct ScrubbingWriter<W>(pub W);

impl<W: Write> Write for ScrubbingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(redact::scrub(&text).as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer maker that keeps what is written.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;
        fn make_writer(&'a self) -> Capture {
            self.clone()
        }
    }

    impl Capture {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    #[test]
    fn the_log_writer_scrubs_every_line() {
        redact::register_secrets(["log-writer-secret-1".to_string()]);
        let out = Capture::default();
        let mut w = Scrubbing(out.clone()).make_writer();
        w.write_all(b"env DB_PASSWORD=log-writer-secret-1 and \"log-writer-secret-1\"\n")
            .unwrap();
        assert_eq!(
            out.text(),
            "env DB_PASSWORD=<redacted> and \"<redacted>\"\n"
        );
    }

    #[test]
    fn bollard_debug_logs_are_filtered_at_every_verbosity() {
        for (verbose, spindle_log) in [
            (3, None),
            (2, None),
            (0, Some("trace")),
            (0, Some("bollard=trace,hyper=trace")),
            (0, Some("bollard::docker=trace,h2=debug")),
        ] {
            let out = Capture::default();
            let sub = subscriber(verbose, false, spindle_log, out.clone(), false);
            tracing::subscriber::with_default(sub, || {
                tracing::debug!(target: "bollard::docker", "request body Env=leak");
                tracing::trace!(target: "hyper::proto", "headers leak");
                tracing::debug!(target: "h2::codec", "frame leak");
                tracing::warn!(target: "bollard::docker", "bollard warning kept");
                tracing::debug!(target: "spindle::engine", "spindle debug kept");
            });
            let text = out.text();
            assert!(!text.contains("leak"), "{verbose} {spindle_log:?}: {text}");
            assert!(text.contains("bollard warning kept"), "{text}");
            if verbose >= 2 || spindle_log.is_some_and(|l| l == "trace") {
                assert!(text.contains("spindle debug kept"), "{text}");
            }
        }
    }
}
