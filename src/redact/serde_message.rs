//! Serde's error messages without the values they quote: the value may be a secret put in the wrong place.

use std::sync::LazyLock;

/// A serde message with its quoted values replaced by their kind: `invalid type: string "…"`
/// becomes `invalid type: a string`, ``invalid value: integer `70000` `` becomes
/// `invalid value: an integer`, ``unknown variant `…` `` becomes `unknown variant`. Field names
/// (``missing field `Image` ``, ``unknown field `x` ``) are kept: they are keys, not values.
pub fn serde_message(msg: &str) -> String {
    static QUOTED: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(
            r#"(string|byte array) "(?:[^"\\]|\\.)*"|(integer|floating point|character|unit variant|variant) `[^`]*`|unknown variant `[^`]*`"#,
        )
        .expect("the pattern compiles")
    });
    QUOTED
        .replace_all(msg, |c: &regex::Captures<'_>| match c.get(1).or(c.get(2)) {
            Some(kind) if kind.as_str().starts_with(['a', 'e', 'i', 'o', 'u']) => {
                format!("an {}", kind.as_str())
            }
            Some(kind) => format!("a {}", kind.as_str()),
            None => "unknown variant".to_string(),
        })
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::serde_message;

    #[test]
    fn serde_messages_lose_their_values_and_keep_their_field_names() {
        for (msg, want) in [
            (
                r#"probes[0].port: invalid type: string "tok\"val-123456", expected u16"#,
                "probes[0].port: invalid type: a string, expected u16",
            ),
            (
                "policies.x.mode: unknown variant `hunter2`, expected `warn` or `enforce`",
                "policies.x.mode: unknown variant, expected `warn` or `enforce`",
            ),
            (
                "invalid value: integer `123456`, expected a port",
                "invalid value: an integer, expected a port",
            ),
            ("missing field `Image`", "missing field `Image`"),
            (
                "unknown field `Imagee`, expected one of `Image`, `Cmd`",
                "unknown field `Imagee`, expected one of `Image`, `Cmd`",
            ),
        ] {
            assert_eq!(serde_message(msg), want);
        }
    }
}
