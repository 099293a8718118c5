//! The redactor: replaces every form of every secret, and credential shapes, in one pass.

use std::ops::Range;
use std::sync::Arc;

use aho_corasick::AhoCorasick;

use super::{REDACTED, forms, is_secret_entry, shapes};

/// Secrets shorter than this (in characters) are replaced only where they stand delimited: at
/// each end, the text ends, or the neighbouring character or the secret's own edge character is
/// not alphanumeric (`mysql://u:abc12@db`, but not `abc12` inside `xabc12y`).
pub const MIN_SUBSTRING_LEN: usize = 6;

/// Replaces secret values in text and trees. Built from the values of secret-like variables;
/// cheap to clone (the automaton is shared).
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    /// The secrets, longest first.
    values: Vec<String>,
    /// Every form of every secret.
    automaton: AhoCorasick,
    /// For each pattern of the automaton: whether it must stand delimited (a short secret).
    short: Vec<bool>,
}

impl Redactor {
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut values: Vec<String> = values.into_iter().filter(|v| !v.is_empty()).collect();
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        if values.is_empty() {
            return Self::default();
        }
        let mut patterns: Vec<String> = Vec::new();
        let mut short: Vec<bool> = Vec::new();
        for v in &values {
            let is_short = v.chars().count() < MIN_SUBSTRING_LEN;
            for f in forms::forms(v, !is_short) {
                patterns.push(f);
                short.push(is_short);
            }
        }
        // Only an automaton past the crate's internal size limits fails to build; then the raw
        // values alone are tried, so that at least the raw forms are replaced.
        let automaton = AhoCorasick::new(&patterns).or_else(|_| {
            short = values
                .iter()
                .map(|v| v.chars().count() < MIN_SUBSTRING_LEN)
                .collect();
            AhoCorasick::new(&values)
        });
        let automaton = match automaton {
            Ok(a) => a,
            Err(_) => return Self::default(),
        };
        Self {
            inner: Some(Arc::new(Inner {
                values,
                automaton,
                short,
            })),
        }
    }

    /// The secret values this redactor replaces, longest first.
    pub fn values(&self) -> &[String] {
        self.inner.as_ref().map(|i| &i.values[..]).unwrap_or(&[])
    }

    /// True when this redactor knows no secret (credential shapes are still replaced).
    pub fn is_empty(&self) -> bool {
        self.inner.is_none()
    }

    /// Redacts one string: every form of every secret (short ones where delimited) and every
    /// credential shape. Overlapping matches merge into one [`REDACTED`]; a [`REDACTED`] already
    /// in the text is never matched into, so redacting twice changes nothing.
    pub fn text(&self, s: &str) -> String {
        let spans = self.spans(s);
        if spans.is_empty() {
            return s.to_string();
        }
        let mut out = String::with_capacity(s.len());
        let mut at = 0;
        for r in spans {
            out.push_str(&s[at..r.start]);
            out.push_str(REDACTED);
            at = r.end;
        }
        out.push_str(&s[at..]);
        out
    }

    /// The byte ranges to replace, sorted and merged.
    fn spans(&self, s: &str) -> Vec<Range<usize>> {
        let mut spans: Vec<Range<usize>> = shapes::spans(s);
        if let Some(inner) = &self.inner {
            for m in inner.automaton.find_overlapping_iter(s) {
                if !inner.short[m.pattern().as_usize()] || delimited(s, m.start(), m.end()) {
                    spans.push(m.range());
                }
            }
        }
        if spans.is_empty() {
            return spans;
        }
        let markers: Vec<Range<usize>> = s
            .match_indices(REDACTED)
            .map(|(i, m)| i..i + m.len())
            .collect();
        // A match that reaches into a marker without covering it came from an earlier redaction.
        spans.retain(|r| {
            !markers.iter().any(|m| {
                r.start < m.end && m.start < r.end && !(r.start <= m.start && m.end <= r.end)
            })
        });
        spans.sort_by_key(|r| (r.start, std::cmp::Reverse(r.end)));
        let mut merged: Vec<Range<usize>> = Vec::with_capacity(spans.len());
        for r in spans {
            match merged.last_mut() {
                Some(last) if r.start < last.end => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        // A whole marker matched (a secret equal to it) needs no replacing.
        merged.retain(|r| &s[r.clone()] != REDACTED);
        merged
    }

    /// Redacts a tree in place: every string through [`Redactor::text`], and, inside
    /// environment-like maps and lists only (`environment`, `Env`, `args`, `labels`, …), the
    /// values of secret-like keys. spindle's own fields (`key`, `token_id`, …) are never taken
    /// for secrets by their name.
    pub fn tree(&self, v: &mut serde_json::Value) {
        self.walk(v, false);
    }

    fn walk(&self, v: &mut serde_json::Value, env_like: bool) {
        use serde_json::Value;
        match v {
            Value::Object(m) => {
                for (k, child) in m.iter_mut() {
                    if env_like
                        && let Value::String(s) = child
                        && is_secret_entry(k, s)
                    {
                        *s = REDACTED.into();
                    } else {
                        self.walk(child, is_env_container(k));
                    }
                }
            }
            Value::Array(a) => {
                for child in a {
                    // `KEY=value` list entries carry their key in the text.
                    if env_like
                        && let Value::String(s) = child
                        && let Some((k, val)) = s.split_once('=')
                        && is_secret_entry(k, val)
                    {
                        *s = format!("{k}={REDACTED}");
                        continue;
                    }
                    self.walk(child, false);
                }
            }
            Value::String(s) => {
                let clean = self.text(s);
                if clean != *s {
                    *s = clean;
                }
            }
            _ => {}
        }
    }
}

/// Maps and lists whose keys are variable names: their secret-like keys' values are secret.
pub const ENV_CONTAINERS: &[&str] = &[
    "environment",
    "Env",
    "env",
    "args",
    "build_args",
    "labels",
    "Labels",
    "extra_env",
];

fn is_env_container(key: &str) -> bool {
    ENV_CONTAINERS.contains(&key)
}

/// True when the match at `start..end` stands delimited at both ends (see [`MIN_SUBSTRING_LEN`]).
/// A [`REDACTED`] beside the match counts as alphanumeric: it stands for a secret that was glued
/// to it, so redacting again finds what the first pass found.
fn delimited(s: &str, start: usize, end: usize) -> bool {
    let m = &s[start..end];
    let before = if s[..start].ends_with(REDACTED) {
        Some('a')
    } else {
        s[..start].chars().next_back()
    };
    let after = if s[end..].starts_with(REDACTED) {
        Some('a')
    } else {
        s[end..].chars().next()
    };
    let edge = |neighbour: Option<char>, own: Option<char>| match (neighbour, own) {
        (None, _) => true,
        (Some(n), Some(o)) => !n.is_alphanumeric() || !o.is_alphanumeric(),
        (Some(_), None) => false,
    };
    edge(before, m.chars().next()) && edge(after, m.chars().next_back())
}

#[cfg(test)]
impl Redactor {
    /// True when both share one automaton (the registry's cache).
    pub(crate) fn shares_automaton_with(&self, other: &Redactor) -> bool {
        match (&self.inner, &other.inner) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}
