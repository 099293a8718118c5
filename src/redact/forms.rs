//! The forms a secret takes in output: raw, Debug- and JSON-escaped, percent-encoded, base64.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// Every form of `secret` the redactor replaces, the raw one first, without duplicates or empties.
///
/// - raw;
/// - Rust Debug-escaped (`{:?}` without its quotes), and Debug of that (an error printed with
///   `{:?}` inside another `{:?}`);
/// - JSON-escaped (serde's, and Go's, which also escapes `<`, `>`, `&`), and JSON of the
///   Debug form (a `{:?}` error stored in a JSON record);
/// - percent-encoded: every byte outside RFC 3986's unreserved set as `%XX`, in upper and lower
///   case; the same keeping `!'()*` (JavaScript's `encodeURIComponent`); and the form encoding
///   (`+` for a space);
/// - with a `$` in it, each of the above with `$` written `$$` (Compose's escape, which
///   `spindle config` prints);
/// - base64 (standard and URL-safe, with and without padding), at each of the three byte
///   alignments inside a longer encoded text (`user:secret` in an `Authorization: Basic` header):
///   the characters that depend only on the secret's bytes. The shifted alignments are only
///   produced when `embedded` (long secrets); short ones get the whole-value encodings only.
pub fn forms(secret: &str, embedded: bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    add(&mut out, secret.to_string());
    let debug = debug_escape(secret);
    add(&mut out, debug_escape(&debug));
    add(&mut out, json_escape(&debug));
    add(&mut out, debug);
    let json = json_escape(secret);
    add(&mut out, go_json_escape(&json));
    add(&mut out, json);
    // `spindle config` and Compose write a literal `$` as `$$`, so that the file reads back the same.
    if secret.contains('$') {
        for text in out.clone() {
            add(&mut out, text.replace('$', "$$"));
        }
    }
    for (keep, lower) in [("", false), ("", true), ("!'()*", false), ("!'()*", true)] {
        add(&mut out, percent(secret, keep, lower, false));
    }
    add(&mut out, percent(secret, "*", false, true));
    add(&mut out, percent(secret, "*", true, true));
    let bytes = secret.as_bytes();
    for engine in [&STANDARD, &URL_SAFE] {
        add(&mut out, engine.encode(bytes));
    }
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        add(&mut out, engine.encode(bytes));
        if embedded {
            for shift in 0..3 {
                if let Some(core) = base64_core(engine, bytes, shift) {
                    add(&mut out, core);
                }
            }
        }
    }
    out
}

/// Adds `form` to `out` unless it is empty or already there.
fn add(out: &mut Vec<String>, form: String) {
    if !form.is_empty() && !out.contains(&form) {
        out.push(form);
    }
}

/// What `format!("{s:?}")` prints, without the surrounding quotes.
pub fn debug_escape(s: &str) -> String {
    let d = format!("{s:?}");
    d[1..d.len() - 1].to_string()
}

/// A JSON string literal's content, as serde_json writes it.
pub fn json_escape(s: &str) -> String {
    let j = serde_json::to_string(s).unwrap_or_default();
    j.get(1..j.len().saturating_sub(1))
        .unwrap_or_default()
        .to_string()
}

/// Go's `encoding/json` escapes `<`, `>` and `&` besides (Docker's own messages).
fn go_json_escape(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// Percent-encodes every byte outside the unreserved set and `keep`; `form` writes a space as `+`.
fn percent(s: &str, keep: &str, lower: bool, form: bool) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        let c = b as char;
        if b.is_ascii_alphanumeric() || "-._~".contains(c) || (b < 0x80 && keep.contains(c)) {
            out.push(c);
        } else if form && b == b' ' {
            out.push('+');
        } else if lower {
            out.push_str(&format!("%{b:02x}"));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The base64 characters that depend only on `bytes` when they start `shift` bytes into a
/// 3-byte group, whatever comes before and after.
fn base64_core(
    engine: &base64::engine::GeneralPurpose,
    bytes: &[u8],
    shift: usize,
) -> Option<String> {
    let mut padded = vec![0u8; shift];
    padded.extend_from_slice(bytes);
    let enc = engine.encode(&padded);
    // Characters touching the leading filler bytes: none, two, three.
    let skip = [0, 2, 3][shift];
    // The last character of a partial group also holds bits of the following (unknown) byte.
    let drop_tail = usize::from(!padded.len().is_multiple_of(3));
    let end = enc.len().checked_sub(drop_tail)?;
    let core = enc.get(skip..end)?;
    (core.len() >= 4).then(|| core.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_a_secret_is_listed() {
        let f = forms("a\"b c/d", true);
        for want in [
            "a\"b c/d",
            "a\\\"b c/d",
            "a%22b%20c%2Fd",
            "a%22b%20c%2fd",
            "a%22b+c%2Fd",
            "YSJiIGMvZA==",
            "YSJiIGMvZA",
        ] {
            assert!(f.contains(&want.to_string()), "{want} missing from {f:?}");
        }
    }

    #[test]
    fn a_secret_holding_a_dollar_is_also_replaced_with_the_dollar_doubled() {
        // `spindle config` escapes `$` as Compose does: `Pa$sw0rd` prints as `Pa$$sw0rd`.
        let f = forms("Pa$sw0rd-Zq9\"xK7", true);
        for want in ["Pa$$sw0rd-Zq9\"xK7", "Pa$$sw0rd-Zq9\\\"xK7"] {
            assert!(f.contains(&want.to_string()), "{want} missing from {f:?}");
        }
        let r = crate::redact::Redactor::new(["Pa$sw0rd-Zq9xK7".to_string()]);
        assert_eq!(
            r.text("command: [\"--pass=Pa$$sw0rd-Zq9xK7\"]"),
            "command: [\"--pass=<redacted>\"]"
        );
    }

    #[test]
    fn a_base64_core_matches_the_secret_inside_a_longer_encoding() {
        let secret = "s3cr3t-pass";
        for prefix in ["", "u", "us", "user:"] {
            for suffix in ["", "x", "xy", "@host"] {
                let text = STANDARD.encode(format!("{prefix}{secret}{suffix}"));
                assert!(
                    forms(secret, true)
                        .iter()
                        .any(|f| text.contains(f.as_str())),
                    "{prefix}|{suffix}: {text}"
                );
            }
        }
    }

    #[test]
    fn debug_and_json_forms_escape_quotes_backslashes_and_newlines() {
        assert_eq!(debug_escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(json_escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(go_json_escape(&json_escape("<&>")), "\\u003c\\u0026\\u003e");
    }
}
