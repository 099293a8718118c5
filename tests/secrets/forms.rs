//! The forms a secret can take in text (raw, Debug, JSON, percent, base64) and a checker that finds them.
//!
//! A secret of 6 characters or more is a leak wherever any of its forms appears. A shorter one is a leak only
//! where a form appears *delimited*: the character before and the one after it (when there are any) are not
//! alphanumeric. That is the promise of issue 10 ("a short secret is redacted wherever it appears next to a
//! delimiter"): a 2-character secret inside a longer word cannot be told from the word. The generated short
//! secrets also hold at least one non-ASCII character, so that a delimited occurrence is never incidental.

use std::fmt::Write as _;

/// Secrets shorter than this (in characters) are only searched for where they stand between delimiters.
pub const SHORT: usize = 6;

/// One form of a secret: its name and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Form {
    pub name: &'static str,
    pub text: String,
}

/// Every form of `secret` worth searching for (raw; Debug- and JSON-escaped, also twice; `$` doubled; percent-encoded; base64),
/// without duplicates (an alphanumeric secret's Debug, JSON and
/// percent forms are the secret itself).
pub fn forms(secret: &str) -> Vec<Form> {
    let candidates = [
        ("raw", secret.to_string()),
        ("debug", escape_debug(secret)),
        ("json", escape_json(secret)),
        ("percent", percent(secret, |b| !is_unreserved(b), true)),
        (
            "percent-lower",
            percent(secret, |b| !is_unreserved(b), false),
        ),
        (
            "percent-userinfo",
            percent(secret, is_userinfo_encoded, true),
        ),
        ("base64", base64(secret.as_bytes(), STD, true)),
        ("base64-unpadded", base64(secret.as_bytes(), STD, false)),
        ("base64url", base64(secret.as_bytes(), URL_SAFE, true)),
        (
            "base64url-unpadded",
            base64(secret.as_bytes(), URL_SAFE, false),
        ),
    ];
    // An escaped copy escaped once more: a `{:?}` error message inside a JSON record, a JSON body in a Debug log.
    let (debug, json) = (&candidates[1].1, &candidates[2].1);
    let nested = [
        ("json-of-debug", escape_json(debug)),
        ("debug-of-json", escape_debug(json)),
        ("json-of-json", escape_json(json)),
        ("debug-of-debug", escape_debug(debug)),
        // `spindle config` writes a literal `$` as `$$` (Compose's escape).
        ("dollars-doubled", secret.replace('$', "$$")),
        ("json-dollars-doubled", json.replace('$', "$$")),
    ];
    let mut out: Vec<Form> = Vec::new();
    for (name, text) in candidates.into_iter().chain(nested) {
        if !text.is_empty() && !out.iter().any(|f| f.text == text) {
            out.push(Form { name, text });
        }
    }
    out
}

fn escape_json(s: &str) -> String {
    let json = serde_json::to_string(s).expect("a string serializes");
    json[1..json.len() - 1].to_string()
}

fn escape_debug(s: &str) -> String {
    let debug = format!("{s:?}");
    debug[1..debug.len() - 1].to_string()
}

/// One leak: which form of the secret, where, and the text around it.
#[derive(Clone, Debug)]
pub struct Leak {
    pub form: &'static str,
    pub at: usize,
    pub context: String,
}

/// Every occurrence of a form of `secret` in `haystack` that counts as a leak (see the module's rule).
pub fn find_leaks(haystack: &str, secret: &str) -> Vec<Leak> {
    let short = secret.chars().count() < SHORT;
    let mut leaks = Vec::new();
    for form in forms(secret) {
        for (at, _) in haystack.match_indices(form.text.as_str()) {
            let end = at + form.text.len();
            if short && !delimited(haystack, at, end) {
                continue;
            }
            leaks.push(Leak {
                form: form.name,
                at,
                context: context(haystack, at, end),
            });
        }
    }
    leaks
}

/// True when the characters just before `at` and just after `end` are not alphanumeric (or absent).
fn delimited(text: &str, at: usize, end: usize) -> bool {
    let before = text[..at].chars().next_back();
    let after = text[end..].chars().next();
    !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
}

/// Up to 60 characters either side of a match, for the failure message.
fn context(text: &str, at: usize, end: usize) -> String {
    let start = text[..at]
        .char_indices()
        .rev()
        .nth(59)
        .map_or(0, |(i, _)| i);
    let stop = text[end..]
        .char_indices()
        .nth(60)
        .map_or(text.len(), |(i, _)| end + i);
    format!("{:?}", &text[start..stop])
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The WHATWG URL userinfo percent-encode set (what the `url` crate writes for a password).
fn is_userinfo_encoded(b: u8) -> bool {
    !(0x21..=0x7e).contains(&b)
        || matches!(
            b,
            b'"' | b'#'
                | b'<'
                | b'>'
                | b'?'
                | b'`'
                | b'{'
                | b'}'
                | b'/'
                | b':'
                | b';'
                | b'='
                | b'@'
                | b'['
                | b'\\'
                | b']'
                | b'^'
                | b'|'
                | b'%'
        )
}

/// Percent-encodes the bytes `encode` selects, with upper- or lowercase hex digits.
pub fn percent(s: &str, encode: impl Fn(u8) -> bool, upper: bool) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if encode(b) {
            if upper {
                let _ = write!(out, "%{b:02X}");
            } else {
                let _ = write!(out, "%{b:02x}");
            }
        } else {
            out.push(b as char);
        }
    }
    out
}

/// Percent-encodes every byte but the unreserved ones: how the test writes a secret into a URL.
pub fn percent_all(s: &str) -> String {
    percent(s, |b| !is_unreserved(b), true)
}

const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64 of `bytes` with `alphabet`, padded with `=` or not.
pub fn base64(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= n {
                out.push(alphabet[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_reference_vectors() {
        for (input, padded, unpadded) in [
            ("", "", ""),
            ("f", "Zg==", "Zg"),
            ("fo", "Zm8=", "Zm8"),
            ("foo", "Zm9v", "Zm9v"),
            ("foob", "Zm9vYg==", "Zm9vYg"),
            ("héllo wörld", "aMOpbGxvIHfDtnJsZA==", "aMOpbGxvIHfDtnJsZA"),
        ] {
            assert_eq!(base64(input.as_bytes(), STD, true), padded);
            assert_eq!(base64(input.as_bytes(), STD, false), unpadded);
        }
        assert_eq!(base64(&[0xfb, 0xff], URL_SAFE, true), "-_8=");
        assert_eq!(base64(&[0xfb, 0xff], STD, true), "+/8=");
    }

    #[test]
    fn the_forms_of_a_quoted_secret_include_its_escaped_and_encoded_copies() {
        let names: Vec<(&str, String)> = forms("tok\"val\\1")
            .into_iter()
            .map(|f| (f.name, f.text))
            .collect();
        assert!(names.contains(&("debug", "tok\\\"val\\\\1".to_string())));
        assert!(names.contains(&("percent", "tok%22val%5C1".to_string())));
        assert!(names.contains(&("percent-lower", "tok%22val%5c1".to_string())));
        // JSON and Debug agree here, so only one of them is kept.
        assert!(!names.iter().any(|(n, _)| *n == "json"));
        // A `{:?}` message inside a JSON record.
        assert!(names.contains(&("json-of-debug", r#"tok\\\"val\\\\1"#.to_string())));
    }

    #[test]
    fn a_short_secret_leaks_only_between_delimiters() {
        assert_eq!(find_leaks("mysql://u:abc12@db", "abc12").len(), 1);
        assert!(find_leaks("xabc12y", "abc12").is_empty());
        assert_eq!(find_leaks("abc12", "abc12").len(), 1);
        // A long secret leaks anywhere.
        assert_eq!(find_leaks("xabcdef12y", "abcdef12").len(), 1);
    }
}
