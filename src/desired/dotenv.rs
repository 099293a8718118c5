//! Parses `.env` files with the grammar Docker Compose uses (quotes, escapes, `export`, comments, multi-line values).
//!
//! The grammar follows compose-go's `dotenv` parser as Compose v5 runs it:
//! - a UTF-8 byte order mark is skipped; blank lines and lines starting with `#` are skipped;
//! - a statement is `[export ]KEY=value` or `KEY: value`; a `KEY` alone on its line takes its
//!   value from the lookup and is left out when the lookup has none;
//! - keys are letters, digits, `_`, `.`, `-`, `[`, `]` (blanks inside a key are refused);
//! - unquoted values run to the end of the line, lose everything from the first ` #` and their
//!   trailing whitespace, and are interpolated;
//! - single-quoted values are literal (only `\'` is unescaped); double-quoted values may span
//!   lines, understand `\a \b \f \n \r \t \v \" \\ \$` and octal `\0NNN`, and are interpolated;
//!   parsing resumes right after the closing quote;
//! - interpolation resolves a name through `lookup` first, then through the keys defined earlier
//!   in the same file (compose-go gives the caller's environment precedence).

use indexmap::IndexMap;

use super::interpolate::{InterpolateError, interpolate_str};

#[derive(Debug, thiserror::Error)]
pub enum DotenvError {
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
}

/// Parses the text of an env file. `lookup` resolves variables referenced by values
/// (`${A}`) and bare keys with no `=`; variables defined earlier in the file are used when
/// `lookup` has no value for a name (the precedence compose-go uses).
pub fn parse(
    content: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<IndexMap<String, String>, DotenvError> {
    let src = content.strip_prefix('\u{FEFF}').unwrap_or(content);
    let mut parser = Parser { line: 1 };
    let mut out = IndexMap::new();
    let mut cut = src;
    loop {
        cut = parser.statement_start(cut);
        if cut.is_empty() {
            break;
        }
        let key_line = parser.line;
        let (key, rest, inherited) = parser.locate_key(cut)?;
        if key.contains(' ') {
            return Err(syntax(key_line, "key cannot contain a space"));
        }
        if inherited {
            if let Some(v) = lookup(&key) {
                out.insert(key, v);
            }
            cut = rest;
            continue;
        }
        let (value, rest) = parser.extract_value(rest, &key, key_line, &out, lookup)?;
        out.insert(key, value);
        cut = rest;
    }
    Ok(out)
}

fn syntax(line: usize, message: impl Into<String>) -> DotenvError {
    DotenvError::Syntax {
        line,
        message: message.into(),
    }
}

/// Blanks that separate tokens on a line (Go's `unicode.IsSpace` minus the line feed).
fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\u{0B}' | '\u{0C}' | '\r' | ' ' | '\u{85}' | '\u{A0}'
    )
}

struct Parser {
    line: usize,
}

impl Parser {
    /// Skips blanks, blank lines and comment lines; returns the text from the next statement on,
    /// or `""` at the end of the input.
    fn statement_start<'a>(&mut self, mut src: &'a str) -> &'a str {
        loop {
            let Some((pos, c)) = src.char_indices().find(|&(_, c)| {
                if c == '\n' {
                    self.line += 1;
                }
                !c.is_whitespace()
            }) else {
                return "";
            };
            src = src.get(pos..).unwrap_or("");
            if c != '#' {
                return src;
            }
            match src.find('\n') {
                Some(nl) => src = src.get(nl..).unwrap_or(""),
                None => return "",
            }
        }
    }

    /// Reads the key of the statement at the start of `src`. Returns the key, the text after
    /// its separator (leading blanks removed) and whether the key stands alone on its line.
    fn locate_key<'a>(&mut self, src: &'a str) -> Result<(String, &'a str, bool), DotenvError> {
        let mut s = src;
        if let Some(after) = s.strip_prefix("export")
            && after.starts_with(['\t', '\n', '\u{0C}', '\r', ' '])
        {
            s = after.trim_start_matches(is_space);
        }
        if s.is_empty() {
            return Err(syntax(
                self.line,
                "export must be followed by a variable name",
            ));
        }
        let mut key = "";
        let mut offset = 0;
        let mut inherited = false;
        for (i, c) in s.char_indices() {
            if is_space(c) {
                continue;
            }
            match c {
                '=' | ':' | '\n' => {
                    key = s.get(..i).unwrap_or("");
                    offset = i + 1;
                    inherited = c == '\n';
                    break;
                }
                '_' | '.' | '-' | '[' | ']' => {}
                c if c.is_alphabetic() || c.is_numeric() => {}
                c => {
                    return Err(syntax(
                        self.line,
                        format!(
                            "unexpected character {:?} in variable name {:?}",
                            c.to_string(),
                            s.get(..i).unwrap_or("").trim_end()
                        ),
                    ));
                }
            }
        }
        if inherited && !key.contains(' ') {
            self.line += 1;
        }
        let key = key.trim_end_matches(char::is_whitespace).to_string();
        let rest = s.get(offset..).unwrap_or("").trim_start_matches(is_space);
        Ok((key, rest, inherited))
    }

    /// Reads the value at the start of `src`; returns it and the text after it.
    fn extract_value<'a>(
        &mut self,
        src: &'a str,
        key: &str,
        key_line: usize,
        defined: &IndexMap<String, String>,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(String, &'a str), DotenvError> {
        let quote = match src.chars().next() {
            Some(q @ ('"' | '\'')) => q,
            _ => {
                let (line, rest) = src.split_once('\n').unwrap_or((src, ""));
                self.line += 1;
                let value = line.split(" #").next().unwrap_or("");
                let value = value.trim_end_matches(char::is_whitespace);
                let value = expand(value, key, key_line, defined, lookup)?;
                return Ok((value, rest));
            }
        };
        let start_line = self.line;
        let body = src.get(1..).unwrap_or("");
        let mut chars = String::new();
        let mut escaped = false;
        for (i, c) in body.char_indices() {
            if c == '\n' {
                self.line += 1;
            }
            if c != quote {
                if !escaped && c == '\\' {
                    escaped = true;
                    continue;
                }
                if escaped {
                    escaped = false;
                    chars.push('\\');
                }
                chars.push(c);
                continue;
            }
            if escaped {
                escaped = false;
                chars.push(c);
                continue;
            }
            let rest = body.get(i + 1..).unwrap_or("");
            let value = if quote == '"' {
                expand(&unescape(&chars), key, key_line, defined, lookup)?
            } else {
                chars
            };
            return Ok((value, rest));
        }
        Err(syntax(
            start_line,
            format!("unterminated quoted value for {key}"),
        ))
    }
}

/// Interpolates a value: the caller's lookup first, then the keys defined earlier in the file.
fn expand(
    value: &str,
    key: &str,
    line: usize,
    defined: &IndexMap<String, String>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, DotenvError> {
    let resolve = |name: &str| lookup(name).or_else(|| defined.get(name).cloned());
    interpolate_str(value, &resolve).map_err(|e| {
        let message = match e {
            InterpolateError::InvalidTemplate { reason, .. } => {
                format!("invalid interpolation format in the value of {key}: {reason}")
            }
            other => format!("value of {key}: {other}"),
        };
        syntax(line, message)
    })
}

/// Expands the backslash escapes of a double-quoted value. `\$` becomes `$$`, which the
/// interpolation that follows turns into a literal `$`. Unknown escapes are kept as written.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let simple = match it.peek() {
            Some('a') => Some("\u{07}"),
            Some('b') => Some("\u{08}"),
            Some('f') => Some("\u{0C}"),
            Some('n') => Some("\n"),
            Some('r') => Some("\r"),
            Some('t') => Some("\t"),
            Some('v') => Some("\u{0B}"),
            Some('"') => Some("\""),
            Some('\\') => Some("\\"),
            Some('$') => Some("$$"),
            Some('c') => Some("\\c"),
            _ => None,
        };
        if let Some(rep) = simple {
            it.next();
            out.push_str(rep);
            continue;
        }
        if it.peek() != Some(&'0') {
            out.push('\\');
            continue;
        }
        it.next();
        let mut digits = String::new();
        while digits.len() < 3 {
            match it.peek() {
                Some(d) if d.is_ascii_digit() => {
                    digits.push(*d);
                    it.next();
                }
                _ => break,
            }
        }
        let octal = (digits.len() == 3)
            .then(|| u32::from_str_radix(&digits, 8).ok())
            .flatten()
            .filter(|v| *v <= 255)
            .and_then(char::from_u32);
        match octal {
            Some(ch) => out.push(ch),
            // Like compose-go, a failed octal escape loses its `0`: `\0189` reads `\189`.
            None => {
                out.push('\\');
                out.push_str(&digits);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "PRESET").then(|| "fromenv".to_string())
    }

    fn pairs(content: &str) -> Vec<(String, String)> {
        match parse(content, &env) {
            Ok(m) => m.into_iter().collect(),
            Err(e) => panic!("{content:?} failed: {e}"),
        }
    }

    fn own(rows: &[(&str, &str)]) -> Vec<(String, String)> {
        rows.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_branch_of_the_env_file_grammar_reads_like_compose() {
        // Each row was checked against Compose v5 (`env_file:` shows the parsed values).
        let rows: &[(&str, &[(&str, &str)])] = &[
            ("", &[]),
            ("\n\n  \n", &[]),
            ("# only a comment", &[]),
            ("A=1", &[("A", "1")]),
            ("A=1\nB=2\n", &[("A", "1"), ("B", "2")]),
            (
                "  # indented comment\n\n\n   A  =  v  \nB :w\n",
                &[("A", "v"), ("B", "w")],
            ),
            ("A: yaml style\n", &[("A", "yaml style")]),
            ("\u{FEFF}A=1\n", &[("A", "1")]),
            ("A=\n", &[("A", "")]),
            ("A=1\r\nB=\"q\"\r\nC\r\n", &[("A", "1"), ("B", "q")]),
            // export
            ("export A=1\nexport  B: 2\n", &[("A", "1"), ("B", "2")]),
            (
                "export\tA=1\nexportB=2\nexport=3\n",
                &[("A", "1"), ("exportB", "2"), ("export", "3")],
            ),
            // keys
            ("1X=3\n", &[("1X", "3")]),
            ("ÄBC=1\na.b-c[0]=2\n", &[("ÄBC", "1"), ("a.b-c[0]", "2")]),
            ("A\tB=1\n", &[("A\tB", "1")]),
            ("A=1\nA=2\nB=$A\n", &[("A", "2"), ("B", "2")]),
            // bare keys
            ("PRESET\n", &[("PRESET", "fromenv")]),
            ("MISSING\nA=1\n", &[("A", "1")]),
            (
                "PRESET\nPRESET=file\nC=$PRESET\n",
                &[("PRESET", "file"), ("C", "fromenv")],
            ),
            // a last line with no separator and no newline becomes the value of an empty key
            ("FOO=1\nBAR", &[("FOO", "1"), ("", "BAR")]),
            ("export", &[("", "export")]),
            // unquoted values and inline comments
            (
                "A= #c\nB=x #c #d\nC=x#y\nD=  spaced  \n",
                &[("A", "#c"), ("B", "x"), ("C", "x#y"), ("D", "spaced")],
            ),
            ("A=x\t#c\nC=a b  c \n", &[("A", "x\t#c"), ("C", "a b  c")]),
            ("A=\\$B\n", &[("A", "\\")]),
            ("A=\\n\n", &[("A", "\\n")]),
            // single quotes
            (
                "A='x\\'y'\nB='${PRESET}'\n",
                &[("A", "x'y"), ("B", "${PRESET}")],
            ),
            ("A='a\nb'\nB=''\n", &[("A", "a\nb"), ("B", "")]),
            ("A='a\\\\b\\n'\n", &[("A", "a\\\\b\\n")]),
            // double quotes
            ("C=\"\"\n", &[("C", "")]),
            (
                "A=\"x\" B=y\nC=\"multi\nline\"\n",
                &[("A", "x"), ("B", "y"), ("C", "multi\nline")],
            ),
            (
                "A=\"x\"junk\nB=\"y\"   # c\nC=\"a#b\"\n",
                &[("A", "x"), ("B", "y"), ("C", "a#b")],
            ),
            ("A=\"\\$x\"\n", &[("A", "$x")]),
            (
                "A=\"a\\nb\\tc\\\\d\\0123\\0189\\q\"\n",
                &[("A", "a\nb\tc\\dS\\189\\q")],
            ),
            ("A=\"\\0000\\0377\"\n", &[("A", "\u{0}\u{FF}")]),
            (
                "A=\"\\a\\b\\f\\r\\v\\c\\0\\012\\0400\"\n",
                &[("A", "\u{7}\u{8}\u{C}\r\u{B}\\c\\\\12\\400")],
            ),
            ("A=\"say \\\"hi\\\"\"\n", &[("A", "say \"hi\"")]),
            ("A=\"it\\'s\"\n", &[("A", "it\\'s")]),
            ("A=\"\\\\n\"\n", &[("A", "\\n")]),
            // more rows checked against Compose v5
            ("export\nA=1\n", &[("A", "1")]),
            ("export PRESET\nexport MISSING\n", &[("PRESET", "fromenv")]),
            ("A=\"${PRESET:+set}-${NOPE-def}\"\n", &[("A", "set-def")]),
            ("A=$PRESET#x $PRESET\n", &[("A", "fromenv#x fromenv")]),
            ("#c\n#c2\n\nX==y\n", &[("X", "=y")]),
            ("X=a=b\nY::z\n", &[("X", "a=b"), ("Y", ":z")]),
            (" A=1", &[("A", "1")]),
            ("A:=1\n", &[("A", "=1")]),
            ("A.=1\n", &[("A.", "1")]),
            // interpolation: the caller's lookup first, then earlier keys
            (
                "A=\"${PRESET}\"\nB=\"$$x\"\nC=$$y\nD=${X:-def}\nX=1\nE=${X:-def}\n",
                &[
                    ("A", "fromenv"),
                    ("B", "$x"),
                    ("C", "$y"),
                    ("D", "def"),
                    ("X", "1"),
                    ("E", "1"),
                ],
            ),
            (
                "A=1\nB=${A}\nPRESET=file\nC=${PRESET}\n",
                &[("A", "1"), ("B", "1"), ("PRESET", "file"), ("C", "fromenv")],
            ),
        ];
        for (content, want) in rows {
            assert_eq!(pairs(content), own(want), "content {content:?}");
        }
    }

    #[test]
    fn syntax_errors_carry_the_line_and_never_the_value() {
        let rows: &[(&str, usize, &str)] = &[
            ("A B=1\n", 1, "key cannot contain a space"),
            ("A=1\n\nBAD KEY\n", 3, "key cannot contain a space"),
            (
                "A=1\n\n\nBA%D=secret\n",
                4,
                "unexpected character \"%\" in variable name \"BA\"",
            ),
            (
                "A$=secret\n",
                1,
                "unexpected character \"$\" in variable name \"A\"",
            ),
            (
                "A=\"unterminated secret\nB=2\n",
                1,
                "unterminated quoted value for A",
            ),
            (
                "A=1\nB='unterminated secret\n\n",
                2,
                "unterminated quoted value for B",
            ),
            ("export  ", 1, "export must be followed by a variable name"),
            (
                "A=\"a\\\\\"b\"\n",
                1,
                "unexpected character \"\\\"\" in variable name \"b\"",
            ),
            (
                "A='it''s'\n",
                1,
                "unexpected character \"'\" in variable name \"\"",
            ),
            (
                "A=1\nB=\"${\"\n",
                2,
                "invalid interpolation format in the value of B",
            ),
            (
                "A=${UNDEF:?oops}\n",
                1,
                "value of A: required variable UNDEF is missing a value: oops",
            ),
        ];
        for (content, line, start) in rows {
            match parse(content, &env) {
                Err(DotenvError::Syntax { line: l, message }) => {
                    assert_eq!(l, *line, "line for {content:?}");
                    assert!(message.starts_with(start), "{content:?}: {message}");
                    assert!(!message.contains("secret"), "{content:?}: {message}");
                }
                Ok(m) => panic!("{content:?} parsed as {m:?}"),
            }
        }
    }
}
