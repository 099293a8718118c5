//! Values that look like credentials wherever they appear: URL userinfo passwords and known
//! token shapes.

use std::ops::Range;
use std::sync::LazyLock;

/// One regex over every credential shape; the secret part of each match is its `s` group.
static SHAPES: LazyLock<regex::Regex> = LazyLock::new(|| {
    let url = r#"[A-Za-z][A-Za-z0-9+.\-]*://[^\s/?#@:"'\\<>]*:(?P<s>[^\s/?#"'\\<>]+)@"#;
    let tokens = [
        r"\b(?P<s1>gh[pousr]_[A-Za-z0-9]{20,})",
        r"\b(?P<s2>github_pat_[A-Za-z0-9_]{20,})",
        r"\b(?P<s3>glpat-[A-Za-z0-9_\-]{20,})",
        r"\b(?P<s4>xox[abpr]-[A-Za-z0-9\-]{10,})",
        r"\b(?P<s5>AKIA[0-9A-Z]{16})\b",
        r"\b(?P<s6>[sr]k_(?:live|test)_[A-Za-z0-9]{10,})",
        r"\b(?P<s7>eyJ[A-Za-z0-9_\-]{4,}\.eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*)",
        r"(?P<s8>-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z))",
    ];
    regex::Regex::new(&format!("{url}|{}", tokens.join("|"))).expect("credential shapes compile")
});

/// Byte ranges of the credentials in `text`.
pub fn spans(text: &str) -> Vec<Range<usize>> {
    // A cheap test first: most text holds none of the shapes' fixed parts.
    if !["://", "_", "-", "AKIA", "eyJ"]
        .iter()
        .any(|m| text.contains(m))
    {
        return Vec::new();
    }
    SHAPES
        .captures_iter(text)
        .filter_map(|c| c.iter().skip(1).flatten().next().map(|m| m.range()))
        .collect()
}

/// The credentials in `text`, to register as secrets (so their other forms are caught too).
pub fn credentials(text: &str) -> Vec<String> {
    spans(text)
        .into_iter()
        .map(|r| text[r].to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_shapes_are_found_wherever_they_appear() {
        let ghp = format!("ghp_{}", "a1B2".repeat(9));
        let cases = [
            ("mysql://u:abc12@db:3306/x", "abc12"),
            ("see postgres://app:p@ss@db/x now", "p@ss"),
            (&*format!("token {ghp} here"), &*ghp),
            (
                "github_pat_11ABCDEFG0123456789_abcdefghijk",
                "github_pat_11ABCDEFG0123456789_abcdefghijk",
            ),
            ("glpat-abcdefghij0123456789", "glpat-abcdefghij0123456789"),
            ("xoxb-123456-abcdefghij", "xoxb-123456-abcdefghij"),
            ("AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
            ("k=sk_live_abcdefghij123", "sk_live_abcdefghij123"),
            ("sk_test_abcdefghij123", "sk_test_abcdefghij123"),
            (
                "Bearer eyJhbGciOiJI.eyJzdWIiOiIx.sig_-x",
                "eyJhbGciOiJI.eyJzdWIiOiIx.sig_-x",
            ),
            (
                "x -----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY----- y",
                "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\\nMIIE (cut",
                "-----BEGIN PRIVATE KEY-----\\nMIIE (cut",
            ),
        ];
        for (text, secret) in cases {
            assert_eq!(credentials(text), vec![secret.to_string()], "{text}");
        }
    }

    #[test]
    fn ordinary_text_holds_no_credentials() {
        for text in [
            "http://api:8080/health",
            "postgres:16",
            "ghcr.io/org/app@sha256:0123",
            "mysql://u:<redacted>@db",
            "sk_live_short",
            "snake_case_name",
            "user@example.com",
        ] {
            assert!(credentials(text).is_empty(), "{text}");
        }
    }
}
