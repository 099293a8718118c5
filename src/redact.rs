//! Recognizes secret-like keys and replaces secret values before text leaves the process.

/// Name fragments that mark a key as secret-like, matched against the key's `_`/`-`/`.`-separated words.
pub const DEFAULT_SECRET_WORDS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "PWD",
    "PASS",
    "SECRET",
    "SECRETS",
    "TOKEN",
    "TOKENS",
    "KEY",
    "KEYS",
    "APIKEY",
    "CREDENTIAL",
    "CREDENTIALS",
    "CREDS",
    "PRIVATE",
    "PASSPHRASE",
    "AUTH",
    "SALT",
    "DSN",
    "CERT",
];

/// Keys that match a secret word but are well known not to hold secrets.
const NOT_SECRET: &[&str] = &["PWD", "OLDPWD"];

/// The replacement for a secret value.
pub const REDACTED: &str = "<redacted>";

/// True when a variable or key name looks like it holds a secret (`DB_ROOT_PASSWORD`, `API_KEY`, `stripeSecretKey`).
pub fn is_secret_key(key: &str) -> bool {
    if is_secret_key_with(key, DEFAULT_SECRET_WORDS) {
        return true;
    }
    let extra = EXTRA_WORDS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    !extra.is_empty() && {
        let words: Vec<&str> = extra.iter().map(String::as_str).collect();
        is_secret_key_with(key, &words)
    }
}

/// Words added to [`DEFAULT_SECRET_WORDS`] by configuration (`spindle.yaml`'s `secret_words`,
/// `SPINDLE_SECRET_WORDS`).
static EXTRA_WORDS: std::sync::RwLock<Vec<String>> = std::sync::RwLock::new(Vec::new());

/// Adds words that mark a key as secret-like, for this process.
pub fn add_secret_words(words: impl IntoIterator<Item = String>) {
    let mut extra = EXTRA_WORDS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for w in words {
        let w = w.trim().to_ascii_uppercase();
        if !w.is_empty() && !extra.contains(&w) {
            extra.push(w);
        }
    }
}

/// [`is_secret_key`] with a configurable word list.
pub fn is_secret_key_with(key: &str, words: &[&str]) -> bool {
    // The shell's working-directory variables share a word with passwords (`DB_PWD`).
    if NOT_SECRET.contains(&key) {
        return false;
    }
    let upper = split_camel(key).to_ascii_uppercase();
    upper
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .any(|w| words.iter().any(|s| s.eq_ignore_ascii_case(w)))
}

/// Inserts `_` at lower-to-upper case boundaries, so camelCase keys split into words.
fn split_camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    let mut prev_lower = false;
    for c in key.chars() {
        if c.is_ascii_uppercase() && prev_lower {
            out.push('_');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_like_keys_are_recognized_by_their_words() {
        for k in [
            "DB_PASSWORD",
            "MYSQL_ROOT_PASSWORD",
            "API_KEY",
            "SECRET_KEY_BASE",
            "GITHUB_TOKEN",
            "aws.secret",
            "stripeSecretKey",
            "SMTP_PASS",
            "private-key",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn configured_words_extend_the_secret_keys() {
        assert!(!is_secret_key("LICENSE_SERIAL"));
        add_secret_words(["serial".to_string()]);
        assert!(is_secret_key("LICENSE_SERIAL"));
    }

    #[test]
    fn ordinary_keys_are_not_secret() {
        for k in [
            "KEYCLOAK_URL",
            "DB_HOST",
            "PASSENGER_COUNT",
            "TOKENIZER_MODE",
            "HTTP_PORT",
            "TZ",
        ] {
            assert!(!is_secret_key(k), "{k}");
        }
    }
}

/// Replaces secret values in text and trees. Built from the values of secret-like variables.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    /// Longest first, so that a secret containing another is replaced whole.
    values: Vec<String>,
}

/// Shorter secrets are only replaced where a whole value equals them, never inside other text.
const MIN_SUBSTRING_LEN: usize = 6;

impl Redactor {
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut values: Vec<String> = values.into_iter().filter(|v| !v.is_empty()).collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Self { values }
    }

    /// Redacts one string: whole-value matches always, embedded matches for longer secrets.
    pub fn text(&self, s: &str) -> String {
        if self.values.iter().any(|v| v == s) {
            return REDACTED.to_string();
        }
        let mut out = s.to_string();
        for v in self.values.iter().filter(|v| v.len() >= MIN_SUBSTRING_LEN) {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), REDACTED);
            }
        }
        out
    }

    /// Redacts a tree in place: values under secret-like keys, and any string holding a secret value.
    pub fn tree(&self, v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, child) in m.iter_mut() {
                    if is_secret_key(k)
                        && matches!(child, serde_json::Value::String(s) if !s.is_empty())
                    {
                        *child = serde_json::Value::String(REDACTED.into());
                    } else {
                        self.tree(child);
                    }
                }
            }
            serde_json::Value::Array(a) => {
                for child in a {
                    // `KEY=value` list entries carry their key in the text.
                    if let serde_json::Value::String(s) = child
                        && let Some((k, val)) = s.split_once('=')
                        && is_secret_key(k)
                        && !val.is_empty()
                    {
                        *s = format!("{k}={REDACTED}");
                        continue;
                    }
                    self.tree(child);
                }
            }
            serde_json::Value::String(s) => *s = self.text(s),
            _ => {}
        }
    }
}

#[cfg(test)]
mod redactor_tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn values_under_secret_keys_and_copies_elsewhere_are_redacted() {
        let r = Redactor::new(["hunter2-long".to_string()]);
        let mut t = json!({"environment": {"DB_PASSWORD": "x", "URL": "mysql://u:hunter2-long@db", "COPY": "hunter2-long", "HOST": "db"},
                           "command": ["--pass=hunter2-long"], "list": ["API_TOKEN=abc", "A=b"]});
        r.tree(&mut t);
        assert_eq!(t["environment"]["DB_PASSWORD"], REDACTED);
        assert_eq!(t["environment"]["URL"], "mysql://u:<redacted>@db");
        assert_eq!(t["environment"]["COPY"], REDACTED);
        assert_eq!(t["environment"]["HOST"], "db");
        assert_eq!(t["command"][0], "--pass=<redacted>");
        assert_eq!(t["list"], json!(["API_TOKEN=<redacted>", "A=b"]));
    }

    #[test]
    fn short_secrets_are_only_redacted_as_whole_values() {
        let r = Redactor::new(["abc".to_string()]);
        assert_eq!(r.text("abc"), REDACTED);
        assert_eq!(r.text("abcdef"), "abcdef");
    }

    proptest! {
        #[test]
        fn a_long_secret_never_survives_redaction(secret in "[a-zA-Z0-9]{6,20}", pre in ".{0,10}", post in ".{0,10}") {
            let r = Redactor::new([secret.clone()]);
            let out = r.text(&format!("{pre}{secret}{post}"));
            prop_assert!(!out.contains(&secret));
        }
    }
}

/// Secret values known to this process, so that every exit path (errors, logs) can scrub them.
static KNOWN: std::sync::RwLock<Vec<String>> = std::sync::RwLock::new(Vec::new());

/// Registers secret values seen while loading the desired state.
pub fn register_secrets(values: impl IntoIterator<Item = String>) {
    let mut known = KNOWN
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for v in values {
        if !v.is_empty() && !known.contains(&v) {
            known.push(v);
        }
    }
}

/// A redactor over every registered secret value.
pub fn registered() -> Redactor {
    let known = KNOWN
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Redactor::new(known.iter().cloned())
}

/// Scrubs text with the registered secrets: the last step before text leaves the process.
pub fn scrub(text: &str) -> String {
    registered().text(text)
}
