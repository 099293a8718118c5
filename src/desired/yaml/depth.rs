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

#[derive(Clone, Copy)]
struct Indent {
    col: usize,
    dash: bool,
    levels: usize,
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
    /// The enclosing block lines: their column, whether they begin with `- `, and how many
    /// levels each opens.
    indents: Vec<Indent>,
    /// Block depth of the current line.
    block: usize,
    /// The column of the block collection holding the current plain scalar: a later line
    /// continues the scalar only when indented past it (libyaml's rule).
    plain_indent: usize,
    /// The column of the block collection holding what comes next on this line (the line's
    /// indentation, the last `- `, or the last key), and where the last token began.
    container_col: usize,
    token_col: usize,
    /// Where the current line begins.
    bol: usize,
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
            container_col: 0,
            token_col: 0,
            bol: 0,
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
        // Compact entries: `- - - x` nests one sequence per dash, and `- key: v` a mapping in
        // the last one.
        let mut k = self.i + col;
        let mut dashes = 0;
        while self.b.get(k) == Some(&b'-') && self.b.get(k + 1).is_none_or(|&c| blank(c)) {
            dashes += 1;
            k += 1;
            while self.b.get(k) == Some(&b' ') {
                k += 1;
            }
        }
        let dash = dashes > 0;
        // A sequence may sit at the column of the key that holds it (`a:` then `- x`): it is
        // nested in that key's line, not its sibling.
        while self
            .indents
            .last()
            .is_some_and(|top| top.col > col || (top.col == col && (top.dash || !dash)))
        {
            self.indents.pop();
        }
        let levels = if dash {
            dashes + usize::from(self.has_key(k))
        } else {
            1
        };
        self.indents.push(Indent { col, dash, levels });
        self.block = self.indents.iter().map(|i| i.levels).sum();
        self.too_deep()
    }

    /// Whether the line from `k` holds a mapping key (`key: ` or `key:` at its end), by a
    /// look that errs towards yes.
    fn has_key(&self, k: usize) -> bool {
        let end = self.b[k..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(self.b.len(), |p| k + p);
        let line = &self.b[k..end];
        line.windows(2).any(|w| w[0] == b':' && blank(w[1]))
            || line.trim_ascii_end().ends_with(b":")
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
                    self.container_col = col;
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
                        // The scalar was a key: what follows is held by its mapping.
                        if self.flow == 0 {
                            self.container_col = self.token_col;
                        }
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
                        b'\'' | b'"' => {
                            self.token_col = self.i - self.bol;
                            self.quoted(c);
                        }
                        b'|' | b'>' if self.flow == 0 => {
                            self.block_scalar();
                            line_start = true;
                        }
                        b'-' if blank(self.at(1)) => {
                            if self.flow == 0 {
                                self.container_col = self.i - self.bol;
                            }
                            self.i += 1;
                        }
                        b':' if blank(self.at(1)) => {
                            // After a quoted key: what follows is held by its mapping.
                            if self.flow == 0 {
                                self.container_col = self.token_col;
                            }
                            self.i += 1;
                        }
                        b'?' if blank(self.at(1)) => self.i += 1,
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
                            self.token_col = self.i - self.bol;
                            self.plain_indent = self.container_col;
                            self.i += 1;
                        }
                    }
                }
            }
        }
        None
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

    /// A block scalar whose header (`|` or `>`, then an indentation and a chomping indicator) is
    /// at `i`: skips the header and the content lines, whose indentation is the indicator's past
    /// the holding collection, else that of the first non-empty line (libyaml's rules); leaves
    /// `i` at the start of the next line.
    fn block_scalar(&mut self) {
        let parent = self.container_col;
        let mut content: Option<usize> = None;
        for k in 1..=2 {
            match self.at(k) {
                d @ b'1'..=b'9' => content = Some(parent + usize::from(d - b'0')),
                b'+' | b'-' => {}
                _ => break,
            }
        }
        self.skip_line();
        while self.i < self.b.len() {
            self.newline();
            let (col, _) = self.indentation();
            let rest = &self.b[self.i + col..];
            let empty = rest.first().is_none_or(|&c| c == b'\n' || c == b'\r');
            if !empty {
                match content {
                    None if col > parent => content = Some(col),
                    Some(indent) if col >= indent => {}
                    _ => return,
                }
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
    fn a_sequence_at_the_column_of_its_key_and_compact_mappings_count_every_level() {
        // map a, seq, map b, seq, map c, seq: six levels at `d`.
        let text = "a:\n- b:\n  - c:\n    - d\n";
        assert_eq!(too_deep_at(text, 6), None);
        assert_eq!(too_deep_at(text, 5), Some(4));
        assert_eq!(too_deep_at(text, 4), Some(3));
        assert_eq!(too_deep_at(text, 2), Some(2));
    }

    proptest::proptest! {
        /// Whatever a document nests, the pre-scan sees at least as deep, in the block style
        /// yaml_serde writes and in flow style (JSON).
        #[test]
        fn the_pre_scan_never_sees_shallower_than_the_document(v in nested_value()) {
            let depth = value_depth(&v);
            for text in [yaml_serde::to_string(&v).expect("yaml"), serde_json::to_string(&v).expect("json")] {
                proptest::prop_assert!(too_deep_at(&text, depth - 1).is_some(), "depth {depth} unseen in\n{text}");
            }
        }

        /// The pre-scan reads anything without panicking.
        #[test]
        fn any_text_is_scanned(text in "[-\\[\\]{}:#'\" |>a\n,!&*?]{0,200}") {
            let _ = too_deep_at(&text, 3);
        }
    }

    fn value_depth(v: &serde_json::Value) -> usize {
        match v {
            serde_json::Value::Array(a) => 1 + a.iter().map(value_depth).max().unwrap_or(0),
            serde_json::Value::Object(m) => 1 + m.values().map(value_depth).max().unwrap_or(0),
            _ => 0,
        }
    }

    fn nested_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            "[-\\[\\]{}:#'\" a,|>\n]{0,12}".prop_map(serde_json::Value::String),
            any::<i32>().prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(8, 64, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 1..4).prop_map(serde_json::Value::Array),
                proptest::collection::btree_map("[a-z:#\\[ ]{1,6}", inner, 1..4)
                    .prop_map(|m| { serde_json::Value::Object(m.into_iter().collect()) }),
            ]
        })
        .prop_filter("a collection", |v| v.is_array() || v.is_object())
    }

    #[test]
    fn one_hundred_thousand_levels_are_refused_at_the_first_line_past_the_limit() {
        assert_eq!(too_deep_at(&nested(100_000), 256), Some(1));
    }
}
