//! Recognizes secrets and replaces every form of them before text leaves the process.
//!
//! - `words`: which key names hold secrets (the word list);
//! - `forms`: the forms a secret takes in output (raw, escaped, percent-encoded, base64);
//! - `shapes`: values that look like credentials wherever they appear;
//! - `redactor`: the one-pass replacement over text and JSON trees;
//! - here: the process-wide registry every exit path scrubs with.

mod forms;
mod redactor;
mod serde_message;
mod shapes;
mod words;

#[cfg(test)]
mod tests;

pub use forms::{debug_escape, forms, json_escape};
pub use redactor::{ENV_CONTAINERS, MIN_SUBSTRING_LEN, Redactor};
pub use serde_message::serde_message;
pub use shapes::credentials;
pub use words::{
    DEFAULT_SECRET_WORDS, add_secret_words, is_secret_entry, is_secret_key, is_secret_key_with,
};

/// The replacement for a secret value.
pub const REDACTED: &str = "<redacted>";

/// Secret values known to this process, and the redactor built from them (rebuilt only after a
/// new value is registered).
struct Registry {
    values: Vec<String>,
    redactor: Option<Redactor>,
}

static KNOWN: std::sync::RwLock<Registry> = std::sync::RwLock::new(Registry {
    values: Vec::new(),
    redactor: None,
});

/// Registers secret values seen while loading the desired state (or observing containers), so
/// that every exit path (errors, logs, records) scrubs them.
pub fn register_secrets(values: impl IntoIterator<Item = String>) {
    let mut known = KNOWN
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for v in values {
        if !v.is_empty() && !known.values.contains(&v) {
            known.values.push(v);
            known.redactor = None;
        }
    }
}

/// A redactor over every registered secret value (cached: cheap to call per line).
pub fn registered() -> Redactor {
    {
        let known = KNOWN
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(r) = &known.redactor {
            return r.clone();
        }
    }
    let mut known = KNOWN
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let values = known.values.clone();
    known
        .redactor
        .get_or_insert_with(|| Redactor::new(values))
        .clone()
}

/// Scrubs text with the registered secrets and credential shapes: the last step before text
/// leaves the process.
pub fn scrub(text: &str) -> String {
    registered().text(text)
}

/// Scrubs echoed input and truncates it to `max` characters (marking the cut with `…`), for the
/// few messages that must quote what they read. Scrubbing comes first, so a cut never leaves a
/// secret's prefix behind.
pub fn echo(input: &str, max: usize) -> String {
    let clean = scrub(input);
    let mut cut: String = clean.chars().take(max).collect();
    if cut.len() < clean.len() {
        cut.push('…');
    }
    cut
}
