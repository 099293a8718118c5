//! A linear pre-scan of YAML nesting depth, run before the parser (whose scanner is quadratic in
//! the depth of nested flow collections: 100,000 levels of `[` took 29 s).
//!
//! It follows libyaml's lexical rules closely enough to skip what cannot nest: comments, quoted
//! scalars, block scalars and plain scalars (where `[` is literal in block context). The depth of
//! a point is the block nesting of its line (indentation levels and compact `- ` entries) plus the
//! flow collections open there.

/// Where the nesting first goes deeper than `limit`: `Some(line)` (1-based), else `None`.
pub fn too_deep_at(text: &str, limit: usize) -> Option<usize> {
    Scan::new(text.as_bytes(), limit).run()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between tokens: the next non-blank character starts one.
    Token,
    /// Inside a plain scalar.
    Plain,
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
    line: usize,
    limit: usize,
    flow: usize,
    /// Indentation columns of the enclosing block lines.
    indents: Vec<usize>,
    /// Block depth of the current line.
    block: usize,
    /// Indentation of the line the current plain scalar began on (for its continuation lines).
    plain_indent: usize,
    /// Where the current line begins, and its indentation once known.
    bol: usize,
    bol_indent: Option<usize>,
}

fn blank(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn flow_indicator(c: u8) -> bool {
    matches!(c, b',' | b'[' | b']' | b'{' | b'}')
}

impl<'a> Scan<'a> {
    fn new(b: &'a [u8], limit: usize) -> Self {
        Scan {
            b,
            i: 0,
            line: 1,
            limit,
            flow: 0,
            indents: Vec::new(),
            block: 0,
            plain_indent: 0,
            bol: 0,
            bol_indent: None,
        }
    }

    fn at(&self, k: usize) -> u8 {
        self.b.get(self.i + k).copied().unwrap_or(b'\n')
    }

    fn too_deep(&self) -> bool {
        self.block + self.flow > self.limit
    }

    /// Consumes a line break at `i` (counting lines).
    fn newline(&mut self) {
        self.i += 1;
        self.line += 1;
        self.bol = self.i;
        self.bol_indent = None;
    }

    /// The column of the first non-space character of the line starting at `i`, and whether
    /// the line holds nothing but blanks or a comment.
    fn indentation(&self) -> (usize, bool) {
        let mut k = self.i;
        while k < self.b.len() && self.b[k] == b' ' {
            k += 1;
        }
        let c = self.b.get(k).copied().unwrap_or(b'\n');
        (k - self.i, matches!(c, b'\n' | b'\r' | b'#'))
    }

    /// Called at the start of each line in block context outside any scalar: updates the block depth.
    fn block_line(&mut self) -> bool {
        let (col, empty) = self.indentation();
        if empty || self.flow > 0 {
            return false;
        }
        while self.indents.last().is_some_and(|&top| top >= col) {
            self.indents.pop();
        }
        self.indents.push(col);
        // Compact entries: `- - - x` nests one sequence per dash.
        let mut k = self.i + col;
        let mut dashes = 0;
        while self.b.get(k) == Some(&b'-') && self.b.get(k + 1).is_none_or(|&c| blank(c)) {
            dashes += 1;
            k += 1;
            while self.b.get(k) == Some(&b' ') {
                k += 1;
            }
        }
        self.block = self.indents.len() + dashes;
        self.too_deep()
    }

    fn run(mut self) -> Option<usize> {
        let mut state = State::Token;
        let mut line_start = true;
        while self.i < self.b.len() {
            if line_start {
                line_start = false;
                let (col, empty) = self.indentation();
                let continues_plain =
                    state == State::Plain && (self.flow > 0 || empty || col > self.plain_indent);
                if !continues_plain {
                    state = State::Token;
                    if self.block_line() {
                        return Some(self.line);
                    }
                }
                // A directive, or a document marker, at column 0.
                let rest = &self.b[self.i..];
                if rest.starts_with(b"%") && self.flow == 0 {
                    self.skip_line();
                    line_start = true;
                    continue;
                }
                if (rest.starts_with(b"---") || rest.starts_with(b"..."))
                    && rest.get(3).is_none_or(|&c| blank(c))
                {
                    self.i += 3;
                    state = State::Token;
                    continue;
                }
            }
            let c = self.b[self.i];
            if c == b'\n' {
                self.newline();
                line_start = true;
                continue;
            }
            match state {
                State::Plain => {
                    if blank(c) && self.at(1) == b'#' {
                        self.skip_line();
                        line_start = true;
                        state = State::Token;
                        continue;
                    }
                    if c == b':'
                        && (blank(self.at(1)) || (self.flow > 0 && flow_indicator(self.at(1))))
                    {
                        self.i += 1;
                        state = State::Token;
                        continue;
                    }
                    if self.flow > 0 && flow_indicator(c) {
                        state = State::Token;
                        continue; // handled as a token below
                    }
                    self.i += 1;
                }
                State::Token => {
                    if blank(c) {
                        self.i += 1;
                        continue;
                    }
                    match c {
                        b'#' => {
                            self.skip_line();
                            line_start = true;
                        }
                        b'[' | b'{' => {
                            self.flow += 1;
                            self.i += 1;
                            if self.too_deep() {
                                return Some(self.line);
                            }
                        }
                        b']' | b'}' => {
                            self.flow = self.flow.saturating_sub(1);
                            self.i += 1;
                        }
                        b',' => self.i += 1,
                        b'\'' | b'"' => self.quoted(c),
                        b'|' | b'>' if self.flow == 0 => {
                            self.block_scalar();
                            line_start = true;
                        }
                        b'-' | b'?' | b':' if blank(self.at(1)) => self.i += 1,
                        b'?' | b':' if self.flow > 0 => self.i += 1,
                        b'&' | b'*' | b'!' => {
                            // Anchor, alias or tag: up to a blank (or a flow indicator in flow context).
                            self.i += 1;
                            while self.i < self.b.len()
                                && !blank(self.b[self.i])
                                && !(self.flow > 0 && flow_indicator(self.b[self.i]))
                            {
                                self.i += 1;
                            }
                        }
                        _ => {
                            state = State::Plain;
                            self.plain_indent = self.line_indent();
                            self.i += 1;
                        }
                    }
                }
            }
        }
        None
    }

    /// The indentation of the line holding `i` (computed once per line).
    fn line_indent(&mut self) -> usize {
        let bol = self.bol;
        *self
            .bol_indent
            .get_or_insert_with(|| self.b[bol..].iter().take_while(|&&c| c == b' ').count())
    }

    fn skip_line(&mut self) {
        while self.i < self.b.len() && self.b[self.i] != b'\n' {
            self.i += 1;
        }
    }

    /// A quoted scalar starting at `i` with quote `q`; leaves `i` after its closing quote.
    fn quoted(&mut self, q: u8) {
        self.i += 1;
        while self.i < self.b.len() {
            let c = self.b[self.i];
            if c == b'\n' {
                self.newline();
                continue;
            }
            if q == b'"' && c == b'\\' {
                self.i += 1;
                if self.i < self.b.len() && self.b[self.i] == b'\n' {
                    self.newline();
                } else {
                    self.i += 1;
                }
                continue;
            }
            if c == q {
                if q == b'\'' && self.at(1) == b'\'' {
                    self.i += 2;
                    continue;
                }
                self.i += 1;
                return;
            }
            self.i += 1;
        }
    }

    /// A block scalar whose header is at `i`: skips the header and every line more indented than
    /// the header's line (and blank lines); leaves `i` at the start of the next line.
    fn block_scalar(&mut self) {
        let indent = self.line_indent();
        self.skip_line();
        while self.i < self.b.len() {
            self.newline();
            let (col, _) = self.indentation();
            let rest = &self.b[self.i + col..];
            let empty = rest.first().is_none_or(|&c| c == b'\n' || c == b'\r');
            if !empty && col <= indent {
                return;
            }
            self.skip_line();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(n: usize) -> String {
        format!("a: {}{}\n", "[".repeat(n), "]".repeat(n))
    }

    #[test]
    fn flow_nesting_is_measured_and_refused_past_the_limit() {
        assert_eq!(too_deep_at(&nested(10), 11), None);
        assert_eq!(too_deep_at(&nested(11), 11), Some(1));
        assert_eq!(too_deep_at(&format!("x: 1\n{}", nested(300)), 256), Some(2));
    }

    #[test]
    fn brackets_in_quoted_block_and_plain_scalars_and_comments_do_not_count() {
        let text = format!(
            "a: \"{o}\"\nb: '{o}'' {o}'\nc: |\n  {o}\n  \"\nd: >-\n\n  {o}\ne: echo {o}\n# {o}\nf: [x, \"]]]\", y] # {o}\ng: \"a\\\"{o}\"\n",
            o = "[".repeat(300)
        );
        assert_eq!(too_deep_at(&text, 10), None, "{text}");
    }

    #[test]
    fn a_quote_inside_a_plain_scalar_does_not_hide_the_nesting_after_it() {
        let text = format!(
            "a: it's\nb: say \"hi\nc: {}\n",
            nested(50).trim_start_matches("a: ")
        );
        assert_eq!(too_deep_at(&text, 20), Some(3));
        let flow = format!("a: [x\"y, {}]\n", "[".repeat(50));
        assert_eq!(too_deep_at(&flow, 20), Some(1));
    }

    #[test]
    fn a_closing_bracket_in_a_string_does_not_cancel_an_opening_one() {
        let text = format!("a: {}\n", "[ \"]\", ".repeat(50));
        assert_eq!(too_deep_at(&text, 20), Some(1));
    }

    #[test]
    fn block_nesting_counts_indentation_and_compact_entries() {
        let mut text = String::new();
        for d in 0..30 {
            text.push_str(&format!("{}k{d}:\n", " ".repeat(d)));
        }
        assert_eq!(too_deep_at(&text, 40), None);
        assert_eq!(too_deep_at(&text, 20), Some(21));
        let dashes = format!("{}x\n", "- ".repeat(30));
        assert_eq!(too_deep_at(&dashes, 20), Some(1));
        assert_eq!(too_deep_at(&dashes, 40), None);
    }

    #[test]
    fn a_real_compose_file_is_shallow() {
        let text = "services:\n  web:\n    image: nginx\n    command: [\"sh\", \"-c\", \"echo [ok]\"]\n    environment:\n      - A=1\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n";
        assert_eq!(too_deep_at(text, 6), None);
        assert_eq!(too_deep_at(text, 3), Some(4));
    }

    #[test]
    fn a_document_marker_does_not_hide_the_flow_after_it() {
        let text = format!("---\n--- {}\n", "[".repeat(50));
        assert_eq!(too_deep_at(&text, 20), Some(2));
    }

    #[test]
    fn one_hundred_thousand_levels_are_refused_at_the_first_line_past_the_limit() {
        assert_eq!(too_deep_at(&nested(100_000), 256), Some(1));
    }
}
