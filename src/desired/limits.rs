//! Input limits of the loader: the size of every file it reads and the nesting depth of YAML, both
//! checked before parsing (defaults 10 MiB and 256 levels; `SPINDLE_MAX_INPUT_BYTES` and
//! `SPINDLE_MAX_INPUT_DEPTH` raise or lower them, see docs/compose-compatibility.md).
//!
//! The limits are the operator's, not the repository's: they come from spindle's environment,
//! never from `spindle.yaml`, so a hostile checkout cannot lift them. They hold for the duration
//! of one load on the loading thread ([`scoped`]); reads outside a load use the process
//! environment, else the defaults.

use std::cell::Cell;
use std::io::Read;
use std::path::Path;

use super::load::Environment;

/// The default most bytes of one input file.
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// The default deepest nesting of a YAML file (block levels plus flow collections).
pub const DEFAULT_MAX_DEPTH: usize = 256;
/// The variable that sets [`Limits::max_bytes`].
pub const BYTES_VAR: &str = "SPINDLE_MAX_INPUT_BYTES";
/// The variable that sets [`Limits::max_depth`].
pub const DEPTH_VAR: &str = "SPINDLE_MAX_INPUT_DEPTH";
/// The most characters of an input value an error message echoes.
pub const EXCERPT_CHARS: usize = 80;

#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("larger than the input limit of {limit} bytes; raise {BYTES_VAR} to load it")]
    TooLarge { limit: u64 },
    #[error("{var} must be a whole number greater than 0")]
    Setting { var: &'static str },
    #[error("not a regular file (a pipe, socket or device could block the loader); use a file")]
    NotAFile,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: DEFAULT_MAX_BYTES,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

impl Limits {
    /// The limits `env` sets (the defaults for what it does not); a value that is not a whole
    /// number above 0 is an error naming the variable.
    pub fn from_env(env: &Environment) -> Result<Self, LimitError> {
        fn get<T: std::str::FromStr + PartialOrd + Default>(
            env: &Environment,
            var: &'static str,
            default: T,
        ) -> Result<T, LimitError> {
            match env.get(var).map(|v| v.trim()).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(v) => v
                    .parse::<T>()
                    .ok()
                    .filter(|n| *n > T::default())
                    .ok_or(LimitError::Setting { var }),
            }
        }
        Ok(Limits {
            max_bytes: get(env, BYTES_VAR, DEFAULT_MAX_BYTES)?,
            max_depth: get(env, DEPTH_VAR, DEFAULT_MAX_DEPTH)?,
        })
    }

    fn from_process_env() -> Self {
        let env: Environment = [BYTES_VAR, DEPTH_VAR]
            .into_iter()
            .filter_map(|k| Some((k.to_string(), std::env::var(k).ok()?)))
            .collect();
        Self::from_env(&env).unwrap_or_default()
    }
}

thread_local! {
    static CURRENT: Cell<Option<Limits>> = const { Cell::new(None) };
}

/// Runs `f` with `limits` in force on this thread (restored afterwards, also on a panic).
pub fn scoped<R>(limits: Limits, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Limits>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.replace(Some(limits))));
    f()
}

/// The limits in force on this thread.
pub fn current() -> Limits {
    CURRENT
        .with(Cell::get)
        .unwrap_or_else(Limits::from_process_env)
}

/// `O_NONBLOCK` (Linux): opening a named pipe does not wait for a writer.
const O_NONBLOCK: i32 = 0o4000;

/// `std::fs::read_to_string`, refusing a file larger than the size limit before reading it (and
/// stopping at the limit should it grow meanwhile). A refusal is an I/O error of kind
/// `FileTooLarge` whose message says how to raise the limit. Only regular files and `/dev/null`
/// are read: a named pipe, socket or device is refused without waiting on it.
pub fn read_to_string(path: &Path) -> std::io::Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let limit = current().max_bytes;
    let too_large = || {
        std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            LimitError::TooLarge { limit },
        )
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() && path != Path::new("/dev/null") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            LimitError::NotAFile,
        ));
    }
    if meta.len() > limit {
        return Err(too_large());
    }
    let mut text = String::new();
    file.take(limit.saturating_add(1))
        .read_to_string(&mut text)?;
    if text.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(text)
}

/// At most [`EXCERPT_CHARS`] characters of `s`, with `…` when it was longer.
pub fn excerpt(s: &str) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(EXCERPT_CHARS) {
        None => s.into(),
        Some((at, _)) => format!("{}…", &s[..at]).into(),
    }
}

/// `message` with every quoted part (`"…"` or `` `…` ``) longer than an excerpt cut to one: for
/// parser messages that quote the input.
pub fn shorten_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(1024));
    let mut rest = message;
    while let Some(open) = rest.find(['"', '`']) {
        let q = rest[open..].chars().next().unwrap_or('"');
        out.push_str(&rest[..=open]);
        let body = &rest[open + 1..];
        match body.find(q) {
            Some(close) => {
                out.push_str(&excerpt(&body[..close]));
                out.push(q);
                rest = &body[close + 1..];
            }
            None => {
                out.push_str(&excerpt(body));
                return out;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Environment {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_limits_default_to_ten_mebibytes_and_256_levels_and_the_environment_sets_them() {
        assert_eq!(
            Limits::from_env(&env(&[])).expect("defaults"),
            Limits {
                max_bytes: 10 * 1024 * 1024,
                max_depth: 256
            }
        );
        assert_eq!(
            Limits::from_env(&env(&[(BYTES_VAR, "100"), (DEPTH_VAR, " 7 ")])).expect("set"),
            Limits {
                max_bytes: 100,
                max_depth: 7
            }
        );
    }

    #[test]
    fn a_limit_that_is_not_a_positive_number_is_an_error_naming_the_variable() {
        for bad in ["0", "-1", "ten", "1.5"] {
            let e = Limits::from_env(&env(&[(DEPTH_VAR, bad)])).expect_err(bad);
            assert!(e.to_string().starts_with(DEPTH_VAR), "{e}");
            assert!(!e.to_string().contains(bad) || bad == "0", "{e}");
        }
    }

    #[test]
    fn a_file_over_the_size_limit_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("big");
        std::fs::write(&path, "x".repeat(101)).expect("write");
        let small = Limits {
            max_bytes: 100,
            max_depth: 10,
        };
        let e = scoped(small, || read_to_string(&path)).expect_err("too large");
        assert_eq!(e.kind(), std::io::ErrorKind::FileTooLarge);
        assert!(e.to_string().contains("100 bytes"), "{e}");
        assert!(e.to_string().contains(BYTES_VAR), "{e}");
        std::fs::write(&path, "x".repeat(100)).expect("write");
        assert_eq!(
            scoped(small, || read_to_string(&path))
                .expect("at the limit")
                .len(),
            100
        );
    }

    #[test]
    fn a_named_pipe_or_a_device_is_refused_without_waiting_for_it() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        for path in [fifo.as_path(), Path::new("/dev/zero")] {
            let e = read_to_string(path).expect_err("not a file");
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
            assert!(e.to_string().starts_with("not a regular file"), "{e}");
        }
        assert_eq!(read_to_string(Path::new("/dev/null")).expect("empty"), "");
    }

    #[test]
    fn scoped_limits_end_with_their_scope() {
        let small = Limits {
            max_bytes: 1,
            max_depth: 1,
        };
        scoped(small, || assert_eq!(current(), small));
        assert_ne!(current(), small);
    }

    #[test]
    fn an_excerpt_keeps_80_characters_and_marks_the_cut() {
        assert_eq!(excerpt("short"), "short");
        let long = "é".repeat(200);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), 81);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn quoted_input_in_a_parser_message_is_cut_to_an_excerpt() {
        let long = "v".repeat(500);
        let msg = format!("invalid type: string \"{long}\", expected u64; unknown field `{long}`");
        let short = shorten_quoted(&msg);
        assert!(short.len() < 250, "{short}");
        assert!(short.starts_with("invalid type: string \"vvv"), "{short}");
        assert!(
            short.contains("…\", expected u64; unknown field `vvv"),
            "{short}"
        );
        assert_eq!(shorten_quoted("no quotes"), "no quotes");
        assert_eq!(shorten_quoted("a \"b\" c"), "a \"b\" c");
    }
}
