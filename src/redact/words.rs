//! The word list: which variable and key names hold secret values.

/// Name fragments that mark a key as secret-like, matched against the key's `_`/`-`/`.`-separated
/// (and camelCase) words.
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
    "URI",
    "URL",
    "CONNSTR",
    "SIGNATURE",
    "COOKIE",
    "SESSION",
];

/// Fragments that mark a key as secret-like even glued inside a longer word (`MYSQLPASSWORD`,
/// `PGPASSWORD`, `AWSSECRETACCESSKEY`, `REDISCLI_AUTH` has its own word).
const GLUED_WORDS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "TOKEN",
    "APIKEY",
    "ACCESSKEY",
    "PRIVATEKEY",
    "CREDENTIAL",
    "PASSPHRASE",
];

/// Keys that match a secret word but are well known not to hold secrets.
const NOT_SECRET: &[&str] = &["PWD", "OLDPWD"];

/// Words that, glued to a secret word, make an ordinary key (`TOKENIZER_MODE`, `KEYCLOAK_URL`):
/// a whole word of the key that starts with a glued secret word but continues with one of these
/// tails is not secret.
const ORDINARY_TAILS: &[&str] = &["IZER", "IZE", "IZED", "IZATION", "ARY", "ARIES"];

/// Keys named for a URL or connection string (`DATABASE_URL`, `MONGO_URI`, `SENTRY_DSN`). Their
/// whole value is secret, except a value that is plainly a URL without userinfo
/// (`http://api:8080`, see [`is_secret_entry`]); a URL's userinfo password is caught anywhere by
/// its shape anyway.
const URL_WORDS: &[&str] = &["URL", "URI", "DSN", "CONNSTR"];

/// Keys that end in a URL word but name an endpoint, not a credential.
const PUBLIC_URL_PREFIXES: &[&str] = &[
    "KEYCLOAK", "PUBLIC", "BASE", "SITE", "HOME", "CALLBACK", "REDIRECT", "WEBHOOK", "HEALTH",
    "ISSUER", "EXTERNAL", "ROOT", "APP", "FRONTEND", "API", "CDN", "STATIC", "ASSET", "ASSETS",
];

/// True when a variable or key name looks like it holds a secret (`DB_ROOT_PASSWORD`, `API_KEY`,
/// `stripeSecretKey`, `MYSQLPASSWORD`, `DATABASE_URL`).
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

/// A flag is not a secret (`AUTH_ENABLED=true`, `REQUIRE_TOKEN=1`): a key whose value is one of
/// these words is an on/off switch, and replacing every standalone `true` or `1` in output would
/// garble it.
const FLAG_VALUES: &[&str] = &["true", "false", "yes", "no", "on", "off", "0", "1"];

/// True when the value under `key` is a secret: the key is secret-like, the value is not a flag
/// (`true`, `0`, …), and it is not a URL key (`*_URL`, `*_URI`, `*_DSN`) whose value is a URL
/// without userinfo.
pub fn is_secret_entry(key: &str, value: &str) -> bool {
    if value.is_empty()
        || FLAG_VALUES.iter().any(|f| f.eq_ignore_ascii_case(value))
        || !is_secret_key(key)
    {
        return false;
    }
    let upper = split_camel(key).to_ascii_uppercase();
    let last = upper
        .rsplit(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| !w.is_empty())
        .unwrap_or_default();
    if !URL_WORDS.contains(&last)
        || is_secret_key_with(&upper.replace(last, ""), DEFAULT_SECRET_WORDS)
    {
        return true;
    }
    !plain_url(value)
}

/// A `scheme://host...` URL without userinfo.
fn plain_url(value: &str) -> bool {
    let Some((scheme, rest)) = value.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
        && !authority.contains('@')
        && !value.chars().any(char::is_whitespace)
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
    let parts: Vec<&str> = upper
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let url_key = |i: usize| {
        URL_WORDS.contains(&parts[i])
            && !(i > 0 && PUBLIC_URL_PREFIXES.contains(&parts[i - 1]))
            && parts.len() != 1
    };
    parts.iter().enumerate().any(|(i, w)| {
        words.iter().any(|s| s.eq_ignore_ascii_case(w)) && (!URL_WORDS.contains(w) || url_key(i))
    }) || parts.iter().any(|w| glued(w))
}

/// A word holding a secret word glued to others (`MYSQLPASSWORD`), unless the rest makes an
/// ordinary word (`TOKENIZER`).
fn glued(word: &str) -> bool {
    GLUED_WORDS.iter().any(|g| {
        word.match_indices(g).any(|(at, _)| {
            let tail = &word[at + g.len()..];
            !ORDINARY_TAILS.iter().any(|t| tail.starts_with(t))
        })
    })
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
            "MYSQLPASSWORD",
            "PGPASSWORD",
            "REDISCLI_AUTH",
            "DATABASE_URL",
            "SENTRY_DSN",
            "MONGO_URI",
            "MONGODB_CONNSTR",
            "AWSSECRETACCESSKEY",
            "mysqlPassword",
            "SESSION_COOKIE",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn a_url_key_is_secret_unless_its_value_is_a_url_without_userinfo() {
        assert!(is_secret_entry("DATABASE_URL", "postgres://u:pw@db/x"));
        assert!(is_secret_entry("MYSQL_DSN", "u:pw@tcp(db:3306)/x"));
        assert!(!is_secret_entry("REDIS_URL", "redis://cache:6379/0"));
        assert!(is_secret_entry("DB_PASSWORD_URL", "http://x"));
        assert!(is_secret_entry("DB_PASSWORD", "http://x"));
        assert!(!is_secret_entry("DB_PASSWORD", ""));
    }

    #[test]
    fn a_flag_under_a_secret_like_key_is_not_a_secret() {
        for v in ["true", "FALSE", "yes", "no", "on", "off", "0", "1"] {
            assert!(!is_secret_entry("AUTH_ENABLED", v), "{v}");
        }
        assert!(is_secret_entry("AUTH_TOKEN", "2"));
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
            "PWD",
            "OLDPWD",
            "PUBLIC_URL",
            "BASE_URL",
            "URL",
            "TOKENIZERS_PARALLELISM",
            "PASSTHROUGH",
            "KEYBOARD_LAYOUT",
        ] {
            assert!(!is_secret_key(k), "{k}");
        }
    }
}
