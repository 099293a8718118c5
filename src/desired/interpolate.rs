//! Compose variable interpolation: `$VAR`, `${VAR}`, `:-`, `-`, `:?`, `?`, `:+`, `+`, nesting and `$$`.
//!
//! The grammar follows compose-go's `template` package as Compose v5 runs it:
//! - `$$` is a literal `$`; a `$` followed by anything that does not start a variable name or a
//!   `{` (a digit, a space, the end of the string, ...) is kept as is.
//! - `$NAME` and `${NAME}` take the value of `NAME` (empty when unset). Names are
//!   `[_A-Za-z][_A-Za-z0-9]*` (plus the two non-ASCII letters Go's case folding maps onto ASCII).
//! - `${NAME<op>arg}` with `<op>` one of `:-`, `-`, `:+`, `+`, `:?`, `?`. The braced form ends at
//!   the last `}` of the line; the operand is cut at the first `}` that balances the opening
//!   brace, and whatever follows it up to that last `}` is interpolated and appended.
//! - any other `${` is an invalid template.
//!
//! After interpolation, [`interpolate_tree`] casts the string values found at the places Compose
//! casts (ports' targets, booleans, counts, `cpus`, ...) exactly as compose-go's loader does: every
//! string at such a place is cast, whether it contained a variable or not.

use super::tree::{KeyPath, Tree};

#[derive(Debug, thiserror::Error)]
pub enum InterpolateError {
    #[error("required variable {variable} is missing a value{}", colon_message(.message))]
    Required { variable: String, message: String },
    #[error("invalid interpolation format: {reason}")]
    InvalidTemplate { template: String, reason: String },
    #[error("failed to cast to expected type: the value is not {expected}")]
    Cast { expected: &'static str },
    #[error("{path}: {source}")]
    At {
        path: KeyPath,
        #[source]
        source: Box<InterpolateError>,
    },
}

fn colon_message(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

/// Interpolates one string.
pub fn interpolate_str(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolateError> {
    substitute(input, lookup, 0)
}

/// Whether `c` may start a variable name. Go's case-insensitive `[_a-z]` also matches the long s
/// (U+017F, folds to `s`) and the Kelvin sign (U+212A, folds to `k`).
fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic() || c == '\u{17F}' || c == '\u{212A}'
}

fn is_name_char(c: char) -> bool {
    is_name_start(c) || c.is_ascii_digit()
}

/// Byte index just past the variable name starting at `start` (which must hold a name start).
fn name_end(s: &str, start: usize) -> usize {
    let tail = s.get(start..).unwrap_or("");
    match tail.char_indices().find(|&(_, c)| !is_name_char(c)) {
        Some((off, _)) => start + off,
        None => s.len(),
    }
}

/// The operators of the braced form, as they appear after the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    DefaultIfUnsetOrEmpty,
    DefaultIfUnset,
    AltIfSetAndNonEmpty,
    AltIfSet,
    RequiredNonEmpty,
    Required,
}

/// Reads the operator at `at`, returning it with its length in bytes.
fn read_op(s: &str, at: usize) -> Option<(Op, usize)> {
    let b = s.as_bytes();
    let one = |c: u8| match c {
        b'-' => Some(Op::DefaultIfUnset),
        b'+' => Some(Op::AltIfSet),
        b'?' => Some(Op::Required),
        _ => None,
    };
    match b.get(at)? {
        b':' => {
            let op = match one(*b.get(at + 1)?)? {
                Op::DefaultIfUnset => Op::DefaultIfUnsetOrEmpty,
                Op::AltIfSet => Op::AltIfSetAndNonEmpty,
                _ => Op::RequiredNonEmpty,
            };
            Some((op, 2))
        }
        c => one(*c).map(|op| (op, 1)),
    }
}

/// Index of the `}` that balances the `{` of `sub` (which starts with `${`), counting braces
/// the way compose-go does: the character after every `{` is skipped.
fn balancing_brace(sub: &[u8]) -> Option<usize> {
    let mut open: isize = 0;
    let mut i = 0;
    while i < sub.len() {
        match sub.get(i) {
            Some(b'}') => {
                open -= 1;
                if open == 0 {
                    return Some(i);
                }
            }
            Some(b'{') => {
                open += 1;
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn invalid(template: &str, reason: &str) -> InterpolateError {
    InterpolateError::InvalidTemplate {
        template: template.to_string(),
        reason: reason.to_string(),
    }
}

/// How deeply templates may nest in defaults and messages (`${A:-${B:-...}}`) before the
/// template is refused; Go's growable stacks have no such limit, ours keeps deep input from
/// overflowing the stack.
const MAX_NESTING: usize = 128;

/// The last `}` of the current line, remembered while a template is scanned left to right.
struct LineCache {
    from: usize,
    line_end: usize,
    last_close: Option<usize>,
}

impl LineCache {
    /// Index of the last `}` at or after `at` on the line holding `at`.
    fn last_close(cache: &mut Option<Self>, s: &str, at: usize) -> Option<usize> {
        let fresh = match cache {
            Some(c) if c.from <= at && at <= c.line_end => None,
            _ => {
                let tail = s.get(at..).unwrap_or("");
                let line_end = at + tail.find('\n').unwrap_or(tail.len());
                let last_close = s
                    .get(at..line_end)
                    .and_then(|l| l.rfind('}'))
                    .map(|o| at + o);
                Some(LineCache {
                    from: at,
                    line_end,
                    last_close,
                })
            }
        };
        if let Some(c) = fresh {
            *cache = Some(c);
        }
        cache
            .as_ref()
            .and_then(|c| c.last_close)
            .filter(|close| *close >= at)
    }
}

fn substitute(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    depth: usize,
) -> Result<String, InterpolateError> {
    if depth > MAX_NESTING {
        return Err(invalid(s, "templates are nested too deeply"));
    }
    let mut out = String::with_capacity(s.len());
    let mut lines = None;
    // compose-go interpolates the text after an operand's closing brace (up to the last `}` of
    // the line) as a template of its own; errors there name that text.
    let mut region: Option<(usize, usize)> = None;
    let mut i = 0;
    while let Some(off) = s.get(i..).and_then(|t| t.find('$')) {
        let dollar = i + off;
        out.push_str(s.get(i..dollar).unwrap_or(""));
        let next = s.get(dollar + 1..).and_then(|t| t.chars().next());
        match next {
            Some('$') => {
                out.push('$');
                i = dollar + 2;
            }
            Some(c) if is_name_start(c) => {
                let end = name_end(s, dollar + 1);
                let name = s.get(dollar + 1..end).unwrap_or("");
                out.push_str(&lookup(name).unwrap_or_default());
                i = end;
            }
            Some('{') => {
                let label = match region {
                    Some((a, b)) if dollar <= b => s.get(a..=b).unwrap_or(s),
                    _ => s,
                };
                let step = braced(s, dollar, lookup, depth, &mut lines).map_err(|e| match e {
                    BracedError::Invalid(reason) => invalid(label, reason),
                    BracedError::Other(e) => e,
                })?;
                out.push_str(&step.value);
                i = step.next;
                if step.rest.is_some() {
                    region = step.rest;
                }
            }
            _ => {
                out.push('$');
                i = dollar + 1;
            }
        }
    }
    out.push_str(s.get(i..).unwrap_or(""));
    Ok(out)
}

enum BracedError {
    Invalid(&'static str),
    Other(InterpolateError),
}

struct Braced {
    value: String,
    /// Where scanning resumes.
    next: usize,
    /// The text after the operand's closing brace, to be scanned next, if any.
    rest: Option<(usize, usize)>,
}

/// The parts of a braced template: `${name}` or `${name<op>arg}`, and where scanning resumes.
struct BracedParts<'a> {
    name: &'a str,
    /// The operator and its operand, when there is one.
    op: Option<(Op, &'a str)>,
    /// Where scanning resumes.
    next: usize,
    /// The text after the operand's closing brace, to be scanned next, if any.
    rest: Option<(usize, usize)>,
}

/// Reads the braced template whose `$` is at `dollar`, without expanding it.
fn parse_braced<'a>(
    s: &'a str,
    dollar: usize,
    lines: &mut Option<LineCache>,
) -> Result<BracedParts<'a>, &'static str> {
    let name_start = dollar + 2;
    match s.get(name_start..).and_then(|t| t.chars().next()) {
        Some(c) if is_name_start(c) => {}
        Some('}') => return Err("empty variable name in ${}"),
        None => return Err("${ is not closed"),
        Some(_) => return Err("${ must be followed by a variable name"),
    }
    let end = name_end(s, name_start);
    let name = s.get(name_start..end).unwrap_or("");
    if s.as_bytes().get(end) == Some(&b'}') {
        return Ok(BracedParts {
            name,
            op: None,
            next: end + 1,
            rest: None,
        });
    }
    let Some((op, op_len)) = read_op(s, end) else {
        return Err("a variable name in ${...} must be followed by } or one of :- - :+ + :? ?");
    };
    let arg_start = end + op_len;
    let Some(match_end) = LineCache::last_close(lines, s, arg_start) else {
        return Err("${ is not closed on its line");
    };
    let sub = s.get(dollar..=match_end).unwrap_or("");
    let (arg_end, rest) = match balancing_brace(sub.as_bytes()) {
        Some(close) if dollar + close >= arg_start && dollar + close < match_end => {
            (dollar + close, Some((dollar + close + 1, match_end)))
        }
        _ => (match_end, None),
    };
    let arg = s.get(arg_start..arg_end).unwrap_or("");
    let next = match rest {
        Some((start, _)) => start,
        None => match_end + 1,
    };
    Ok(BracedParts {
        name,
        op: Some((op, arg)),
        next,
        rest,
    })
}

/// Expands the braced template whose `$` is at `dollar`.
fn braced(
    s: &str,
    dollar: usize,
    lookup: &dyn Fn(&str) -> Option<String>,
    depth: usize,
    lines: &mut Option<LineCache>,
) -> Result<Braced, BracedError> {
    let parts = parse_braced(s, dollar, lines).map_err(BracedError::Invalid)?;
    let value = match parts.op {
        None => lookup(parts.name).unwrap_or_default(),
        Some((op, arg)) => {
            apply(op, parts.name, arg, lookup, depth + 1).map_err(BracedError::Other)?
        }
    };
    Ok(Braced {
        value,
        next: parts.next,
        rest: parts.rest,
    })
}

/// A variable a template reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub name: String,
    /// True when the template has no default for it: `$A`, `${A}`, `${A:?msg}`, `${A?msg}`.
    /// False for `${A:-x}`, `${A-x}`, `${A:+x}`, `${A+x}`, and for every variable inside an
    /// operand (it is read only in some cases).
    pub required: bool,
}

/// The variables a template reads, without expanding it: the template's own in order, then
/// those inside operands (the same grammar as [`interpolate_str`]; `$$` is not a reference).
pub fn references(input: &str) -> Result<Vec<Reference>, InterpolateError> {
    let mut out = Vec::new();
    scan(input, false, 0, &mut out)?;
    Ok(out)
}

fn scan(
    s: &str,
    optional: bool,
    depth: usize,
    out: &mut Vec<Reference>,
) -> Result<(), InterpolateError> {
    if depth > MAX_NESTING {
        return Err(invalid(s, "templates are nested too deeply"));
    }
    let mut lines = None;
    let mut push = |name: &str, required: bool| {
        out.push(Reference {
            name: name.to_string(),
            required,
        })
    };
    let mut nested = Vec::new();
    let mut i = 0;
    while let Some(off) = s.get(i..).and_then(|t| t.find('$')) {
        let dollar = i + off;
        match s.get(dollar + 1..).and_then(|t| t.chars().next()) {
            Some('$') => i = dollar + 2,
            Some(c) if is_name_start(c) => {
                let end = name_end(s, dollar + 1);
                push(s.get(dollar + 1..end).unwrap_or(""), !optional);
                i = end;
            }
            Some('{') => {
                let parts = match parse_braced(s, dollar, &mut lines) {
                    Ok(p) => p,
                    // An operand is expanded only in some cases, and Compose accepts a bad
                    // template there until it is; what could be read before it stands.
                    Err(_) if depth > 0 => break,
                    Err(reason) => return Err(invalid(s, reason)),
                };
                match parts.op {
                    None => push(parts.name, !optional),
                    Some((op, arg)) => {
                        let required =
                            !optional && matches!(op, Op::Required | Op::RequiredNonEmpty);
                        push(parts.name, required);
                        nested.push(arg);
                    }
                }
                i = parts.next;
            }
            _ => i = dollar + 1,
        }
    }
    for arg in nested {
        scan(arg, true, depth + 1, out)?;
    }
    Ok(())
}

/// Every variable the string values (never keys) of a compose document read, with the key path
/// of the value.
pub fn tree_references(tree: &Tree) -> Result<Vec<(KeyPath, Reference)>, InterpolateError> {
    let mut out = Vec::new();
    collect(tree, &KeyPath::root(), &mut out)?;
    Ok(out)
}

fn collect(
    node: &Tree,
    path: &KeyPath,
    out: &mut Vec<(KeyPath, Reference)>,
) -> Result<(), InterpolateError> {
    match node {
        Tree::String(s) => {
            let refs = references(s).map_err(|e| InterpolateError::At {
                path: path.clone(),
                source: Box::new(e),
            })?;
            out.extend(refs.into_iter().map(|r| (path.clone(), r)));
        }
        Tree::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect(item, &path.index(i), out)?;
            }
        }
        Tree::Object(map) => {
            for (k, v) in map {
                collect(v, &path.key(k.as_str()), out)?;
            }
        }
        Tree::Null | Tree::Bool(_) | Tree::Number(_) => {}
    }
    Ok(())
}

fn apply(
    op: Op,
    name: &str,
    arg: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    depth: usize,
) -> Result<String, InterpolateError> {
    let value = lookup(name);
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    let nested = |text: &str| substitute(text, lookup, depth);
    match op {
        Op::DefaultIfUnsetOrEmpty if non_empty => Ok(value.unwrap_or_default()),
        Op::DefaultIfUnsetOrEmpty => nested(arg),
        Op::DefaultIfUnset => match value {
            Some(v) => Ok(v),
            None => nested(arg),
        },
        Op::AltIfSetAndNonEmpty if non_empty => nested(arg),
        Op::AltIfSetAndNonEmpty => Ok(value.unwrap_or_default()),
        Op::AltIfSet => match value {
            Some(_) => nested(arg),
            None => Ok(String::new()),
        },
        Op::RequiredNonEmpty if non_empty => Ok(value.unwrap_or_default()),
        Op::Required if value.is_some() => Ok(value.unwrap_or_default()),
        Op::RequiredNonEmpty | Op::Required => Err(InterpolateError::Required {
            variable: name.to_string(),
            message: nested(arg)?,
        }),
    }
}

/// The type a value at some place of a compose document is cast to after interpolation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cast {
    Int,
    Float,
    Float32,
    Bool,
}

/// compose-go's `interpolateTypeCastMapping`. `*` matches any key or list index, `[]` any list
/// index.
static CASTS: &[(&str, Cast)] = &[
    ("services.*.cpu_count", Cast::Int),
    ("services.*.cpu_percent", Cast::Float),
    ("services.*.cpu_period", Cast::Int),
    ("services.*.cpu_quota", Cast::Int),
    ("services.*.cpu_rt_period", Cast::Int),
    ("services.*.cpu_rt_runtime", Cast::Int),
    ("services.*.cpus", Cast::Float32),
    ("services.*.cpu_shares", Cast::Int),
    ("services.*.init", Cast::Bool),
    ("services.*.depends_on.*.required", Cast::Bool),
    ("services.*.depends_on.*.restart", Cast::Bool),
    ("services.*.deploy.replicas", Cast::Int),
    ("services.*.deploy.update_config.parallelism", Cast::Int),
    (
        "services.*.deploy.update_config.max_failure_ratio",
        Cast::Float,
    ),
    ("services.*.deploy.rollback_config.parallelism", Cast::Int),
    (
        "services.*.deploy.rollback_config.max_failure_ratio",
        Cast::Float,
    ),
    ("services.*.deploy.restart_policy.max_attempts", Cast::Int),
    (
        "services.*.deploy.placement.max_replicas_per_node",
        Cast::Int,
    ),
    ("services.*.healthcheck.retries", Cast::Int),
    ("services.*.healthcheck.disable", Cast::Bool),
    ("services.*.oom_kill_disable", Cast::Bool),
    ("services.*.oom_score_adj", Cast::Int),
    ("services.*.pids_limit", Cast::Int),
    ("services.*.ports.[].target", Cast::Int),
    ("services.*.privileged", Cast::Bool),
    ("services.*.read_only", Cast::Bool),
    ("services.*.scale", Cast::Int),
    ("services.*.stdin_open", Cast::Bool),
    ("services.*.tty", Cast::Bool),
    ("services.*.ulimits.*", Cast::Int),
    ("services.*.ulimits.*.hard", Cast::Int),
    ("services.*.ulimits.*.soft", Cast::Int),
    ("services.*.volumes.[].read_only", Cast::Bool),
    ("services.*.volumes.[].volume.nocopy", Cast::Bool),
    ("networks.*.external", Cast::Bool),
    ("networks.*.internal", Cast::Bool),
    ("networks.*.attachable", Cast::Bool),
    ("networks.*.enable_ipv4", Cast::Bool),
    ("networks.*.enable_ipv6", Cast::Bool),
    ("volumes.*.external", Cast::Bool),
    ("secrets.*.external", Cast::Bool),
    ("configs.*.external", Cast::Bool),
];

static CAST_TABLE: std::sync::LazyLock<super::tree::PatternTable<Cast>> =
    std::sync::LazyLock::new(|| super::tree::PatternTable::new(CASTS));

fn cast_for(path: &KeyPath) -> Option<Cast> {
    CAST_TABLE.find(path).copied()
}

/// Parses an integer the way Go's `strconv.ParseInt(s, 10, 64)` does: optional sign, ASCII
/// digits only.
fn parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>().ok()
}

/// Whether the underscores of `s` sit between digits (or after a base prefix), the only places
/// Go's `strconv.ParseFloat` accepts them.
fn underscores_ok(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let b = s.as_bytes();
    let (hex, start, mut saw) = match (b.first(), b.get(1).map(|c| c.to_ascii_lowercase())) {
        (Some(b'0'), Some(p @ (b'b' | b'o' | b'x'))) => (p == b'x', 2, b'0'),
        _ => (false, 0, b'^'),
    };
    for &c in b.iter().skip(start) {
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else if saw == b'_' {
            return false;
        } else {
            saw = b'!';
        }
    }
    saw != b'_'
}

/// Parses a hexadecimal float (`0x1.8p3`) without its sign; the binary exponent is required.
fn parse_hex_float(s: &str) -> Option<f64> {
    let (mantissa, exp) = s.split_once(['p', 'P'])?;
    let exp: i32 = {
        let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        exp.parse().unwrap_or(if exp.starts_with('-') {
            i32::MIN / 2
        } else {
            i32::MAX / 2
        })
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut value = 0f64;
    for c in int.chars().chain(frac.chars()) {
        value = value * 16.0 + f64::from(c.to_digit(16)?);
    }
    let frac_bits = i32::try_from(frac.len()).ok()?.checked_mul(4)?;
    Some(value * 2f64.powi(exp.saturating_sub(frac_bits)))
}

/// Parses a float the way Go's `strconv.ParseFloat` does (decimal or `0x` hexadecimal, digit
/// separators `_`). Values JSON cannot carry (infinities, NaN, out of range) are refused.
fn parse_float(s: &str) -> Option<f64> {
    if s.contains('_') && !underscores_ok(s) {
        return None;
    }
    let cleaned: String = s.chars().filter(|c| *c != '_').collect();
    let negative = cleaned.starts_with('-');
    let body = cleaned.strip_prefix(['+', '-']).unwrap_or(&cleaned);
    let value = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        parse_hex_float(hex)?
    } else {
        let decimal = !body.is_empty()
            && body
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
        if !decimal {
            return None;
        }
        body.parse::<f64>().ok()?
    };
    let value = if negative { -value } else { value };
    value.is_finite().then_some(value)
}

fn cast(value: String, cast: Cast) -> Result<Tree, InterpolateError> {
    let fail = |expected| InterpolateError::Cast { expected };
    match cast {
        Cast::Int => parse_int(&value).map(Tree::from).ok_or(fail("an integer")),
        Cast::Float => parse_float(&value)
            .and_then(serde_json::Number::from_f64)
            .map(Tree::Number)
            .ok_or(fail("a number")),
        Cast::Float32 => parse_float(&value)
            .map(|f| f as f32)
            .filter(|f| f.is_finite())
            // Go prints a float32 with its shortest float32 digits: go through them.
            .and_then(|f| f.to_string().parse::<f64>().ok())
            .and_then(serde_json::Number::from_f64)
            .map(Tree::Number)
            .ok_or(fail("a number")),
        Cast::Bool => match value.to_lowercase().as_str() {
            "true" | "y" | "yes" | "on" => Ok(Tree::Bool(true)),
            "false" | "n" | "no" | "off" => Ok(Tree::Bool(false)),
            _ => Err(fail("a boolean")),
        },
    }
}

/// Interpolates every string value (never keys) of a compose document in place, then casts
/// the values Compose casts after interpolation (ports, booleans, numbers) to their types.
pub fn interpolate_tree(
    tree: &mut Tree,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), InterpolateError> {
    walk(tree, &KeyPath::root(), lookup)
}

fn walk(
    node: &mut Tree,
    path: &KeyPath,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), InterpolateError> {
    let at = |e: InterpolateError| InterpolateError::At {
        path: path.clone(),
        source: Box::new(e),
    };
    match node {
        Tree::String(s) => {
            let value = substitute(s, lookup, 0).map_err(at)?;
            *node = match cast_for(path) {
                Some(c) => cast(value, c).map_err(at)?,
                None => Tree::String(value),
            };
        }
        Tree::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &path.index(i), lookup)?;
            }
        }
        Tree::Object(map) => {
            for (k, v) in map.iter_mut() {
                walk(v, &path.key(k.as_str()), lookup)?;
            }
        }
        Tree::Null | Tree::Bool(_) | Tree::Number(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// SET=val, EMPTY is set and empty, everything else is unset.
    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("val".into()),
            "EMPTY" => Some(String::new()),
            "ſ" => Some("long-s".into()),
            _ => None,
        }
    }

    fn run(input: &str) -> Result<String, InterpolateError> {
        interpolate_str(input, &env)
    }

    #[test]
    fn every_branch_of_the_template_grammar_expands_like_compose() {
        let rows: &[(&str, &str)] = &[
            // plain text and lone dollars
            ("", ""),
            ("plain text", "plain text"),
            ("a$", "a$"),
            ("$", "$"),
            ("$1", "$1"),
            ("x$-y", "x$-y"),
            ("$ x", "$ x"),
            ("$}", "$}"),
            ("$.SET", "$.SET"),
            // escapes
            ("$$", "$"),
            ("$$SET", "$SET"),
            ("$${SET}", "${SET}"),
            ("$$$SET", "$val"),
            ("$$$$", "$$"),
            // named
            ("$SET", "val"),
            ("$SET-x", "val-x"),
            ("$SET$SET", "valval"),
            ("$SETX", ""),
            ("$UNSET", ""),
            ("${SET}", "val"),
            ("${SET}x", "valx"),
            ("${UNSET}", ""),
            ("$set", ""),
            ("$ſ", "long-s"),
            ("é$SET", "éval"),
            // :- and -
            ("${UNSET:-d}", "d"),
            ("${EMPTY:-d}", "d"),
            ("${SET:-d}", "val"),
            ("${UNSET-d}", "d"),
            ("${EMPTY-d}", ""),
            ("${SET-d}", "val"),
            ("${SET:-}", "val"),
            ("${UNSET:-}", ""),
            ("${UNSET:-a:-b}", "a:-b"),
            ("${UNSET-a?b}", "a?b"),
            ("${UNSET:-$}", "$"),
            ("${UNSET:-$$}", "$"),
            // :+ and +
            ("${SET:+a}", "a"),
            ("${EMPTY:+a}", ""),
            ("${UNSET:+a}", ""),
            ("${SET+a}", "a"),
            ("${EMPTY+a}", "a"),
            ("${UNSET+a}", ""),
            ("${SET:+$SET-alt}", "val-alt"),
            // ? and :? when satisfied
            ("${SET:?m}", "val"),
            ("${SET?m}", "val"),
            ("${EMPTY?m}", ""),
            // nesting
            ("${UNSET:-${EMPTY:-x}}", "x"),
            ("${UNSET:-${SET}}", "val"),
            ("${UNSET:-${UNSET2:-${SET}}}", "val"),
            ("${UNSET:-a}-${SET}", "a-val"),
            ("${UNSET:-x}y}", "xy}"),
            ("${UNSET:-{}}x}", "{}}x"),
            ("${UNSET:-{x}", "{x"),
            ("${SET:-x}-$SET", "val-val"),
            ("${UNSET:-x}\n${UNSET:-y}", "x\ny"),
            ("${UNSET:-x} and ${SET}", "x and val"),
        ];
        for (input, want) in rows {
            match run(input) {
                Ok(got) => assert_eq!(&got, want, "input {input:?}"),
                Err(e) => panic!("input {input:?} failed: {e}"),
            }
        }
    }

    #[test]
    fn malformed_braces_are_invalid_templates() {
        let rows = [
            "${",
            "${}",
            "${A B}",
            "${A:x}",
            "${1}",
            "${-}",
            "${SET:-x",
            "${SET",
            "a ${UNSET:-x\ny}",
            "ok $SET then ${",
            "${UNSET:-${}}",
        ];
        for input in rows {
            match run(input) {
                Err(InterpolateError::InvalidTemplate { .. }) => {}
                other => panic!("input {input:?}: expected an invalid template, got {other:?}"),
            }
        }
    }

    #[test]
    fn an_invalid_template_names_the_text_compose_names() {
        let rows = [
            ("${U:-a}${}}", "${}}"),
            ("${U:-a}}${", "${U:-a}}${"),
            ("x ${U:-${}}", "${}"),
            ("ok ${", "ok ${"),
        ];
        for (input, template) in rows {
            match run(input) {
                Err(InterpolateError::InvalidTemplate { template: t, .. }) => {
                    assert_eq!(t, template, "input {input:?}")
                }
                other => panic!("input {input:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn many_templates_on_one_line_are_expanded_without_deep_recursion() {
        let input = "${UNSET:-x}".repeat(50_000);
        assert_eq!(run(&input).unwrap(), "x".repeat(50_000));
    }

    #[test]
    fn absurdly_deep_nesting_is_refused_instead_of_overflowing_the_stack() {
        let input = format!("{}x{}", "${UNSET:-".repeat(20_000), "}".repeat(20_000));
        assert!(matches!(
            run(&input),
            Err(InterpolateError::InvalidTemplate { .. })
        ));
        let ok = format!("{}x{}", "${UNSET:-".repeat(100), "}".repeat(100));
        assert_eq!(run(&ok).unwrap(), "x");
    }

    #[test]
    fn an_invalid_template_inside_an_unused_default_is_not_noticed() {
        assert_eq!(run("${SET:-${}").unwrap(), "val");
    }

    #[test]
    fn a_required_variable_reports_its_name_and_the_interpolated_message() {
        let rows: &[(&str, &str, &str)] = &[
            ("${UNSET:?boom $SET}", "UNSET", "boom val"),
            ("${EMPTY:?must be set}", "EMPTY", "must be set"),
            ("${UNSET?}", "UNSET", ""),
            ("${UNSET:-${UNSET2:?inner}}", "UNSET2", "inner"),
            ("$SET ${UNSET?a:-b}", "UNSET", "a:-b"),
        ];
        for (input, var, msg) in rows {
            match run(input) {
                Err(InterpolateError::Required { variable, message }) => {
                    assert_eq!(
                        (&variable[..], &message[..]),
                        (*var, *msg),
                        "input {input:?}"
                    );
                }
                other => panic!("input {input:?}: expected a required error, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_required_error_reads_like_compose() {
        let e = run("${EMPTY:?}").unwrap_err();
        assert_eq!(e.to_string(), "required variable EMPTY is missing a value");
        let e = run("${EMPTY:?set it}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "required variable EMPTY is missing a value: set it"
        );
    }

    #[test]
    fn the_tree_is_interpolated_in_values_but_not_in_keys() {
        let mut t = json!({
            "services": {"$SET": {"image": "img:${SET}", "command": ["a", "$SET", 3, true, null]}},
            "name": "${UNSET:-proj}",
        });
        interpolate_tree(&mut t, &env).unwrap();
        assert_eq!(
            t,
            json!({
                "services": {"$SET": {"image": "img:val", "command": ["a", "val", 3, true, null]}},
                "name": "proj",
            })
        );
    }

    #[test]
    fn errors_in_the_tree_name_the_path() {
        let mut t = json!({"services": {"web": {"ports": [{"target": "${"}]}}});
        let e = interpolate_tree(&mut t, &env).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("services.web.ports[0].target: invalid interpolation"),
            "{e}"
        );
        let mut t = json!({"services": {"web": {"image": "${UNSET:?no image}"}}});
        let e = interpolate_tree(&mut t, &env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "services.web.image: required variable UNSET is missing a value: no image"
        );
    }

    #[test]
    fn strings_at_typed_places_are_cast_after_interpolation() {
        let lookup = |n: &str| match n {
            "PORT" => Some("8080".to_string()),
            "RO" => Some("yes".to_string()),
            _ => None,
        };
        let mut t = json!({
            "services": {"web": {
                "ports": [{"target": "$PORT", "published": "$PORT"}, {"target": 80}],
                "read_only": "$RO",
                "tty": "False",
                "init": "off",
                "cpus": "1.1",
                "cpu_percent": "12.5",
                "cpu_shares": "-3",
                "scale": "+2",
                "ulimits": {"nproc": "65535", "nofile": {"soft": "1", "hard": "2"}},
                "volumes": [{"read_only": "true", "volume": {"nocopy": "n"}}, "a:b"],
                "deploy": {"replicas": "3", "update_config": {"max_failure_ratio": "0.5"}},
                "healthcheck": {"retries": "4", "disable": "Y"},
                "depends_on": {"db": {"required": "false", "restart": "true"}},
                "environment": {"read_only": "true"},
            }},
            "networks": {"n": {"external": "true", "internal": "false", "enable_ipv6": "on"}},
            "volumes": {"v": {"external": "TRUE"}},
            "secrets": {"s": {"external": "no"}},
            "configs": {"c": {"external": "yes"}},
        });
        interpolate_tree(&mut t, &lookup).unwrap();
        let web = &t["services"]["web"];
        assert_eq!(
            web["ports"],
            json!([{"target": 8080, "published": "8080"}, {"target": 80}])
        );
        assert_eq!(web["read_only"], json!(true));
        assert_eq!(web["tty"], json!(false));
        assert_eq!(web["init"], json!(false));
        assert_eq!(web["cpus"], json!(1.1));
        assert_eq!(web["cpu_percent"], json!(12.5));
        assert_eq!(web["cpu_shares"], json!(-3));
        assert_eq!(web["scale"], json!(2));
        assert_eq!(
            web["ulimits"],
            json!({"nproc": 65535, "nofile": {"soft": 1, "hard": 2}})
        );
        assert_eq!(
            web["volumes"],
            json!([{"read_only": true, "volume": {"nocopy": false}}, "a:b"])
        );
        assert_eq!(
            web["deploy"],
            json!({"replicas": 3, "update_config": {"max_failure_ratio": 0.5}})
        );
        assert_eq!(web["healthcheck"], json!({"retries": 4, "disable": true}));
        assert_eq!(
            web["depends_on"],
            json!({"db": {"required": false, "restart": true}})
        );
        assert_eq!(web["environment"], json!({"read_only": "true"}));
        assert_eq!(
            t["networks"],
            json!({"n": {"external": true, "internal": false, "enable_ipv6": true}})
        );
        assert_eq!(t["volumes"], json!({"v": {"external": true}}));
        assert_eq!(t["secrets"], json!({"s": {"external": false}}));
        assert_eq!(t["configs"], json!({"c": {"external": true}}));
    }

    #[test]
    fn a_value_that_cannot_be_cast_is_an_error_naming_the_path_but_not_the_value() {
        let rows = [
            (
                json!({"services": {"w": {"ports": [{"target": "http"}]}}}),
                "services.w.ports[0].target",
                "an integer",
            ),
            (
                json!({"services": {"w": {"read_only": "maybe"}}}),
                "services.w.read_only",
                "a boolean",
            ),
            (
                json!({"services": {"w": {"cpus": "lots"}}}),
                "services.w.cpus",
                "a number",
            ),
            (
                json!({"services": {"w": {"cpus": "inf"}}}),
                "services.w.cpus",
                "a number",
            ),
            (
                json!({"services": {"w": {"scale": "1.5"}}}),
                "services.w.scale",
                "an integer",
            ),
            (
                json!({"services": {"w": {"scale": ""}}}),
                "services.w.scale",
                "an integer",
            ),
            (
                json!({"services": {"w": {"pids_limit": "99999999999999999999"}}}),
                "services.w.pids_limit",
                "an integer",
            ),
        ];
        for (mut t, path, expected) in rows {
            let e = interpolate_tree(&mut t, &env).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("{path}: failed to cast to expected type: the value is not {expected}")
            );
        }
    }

    #[test]
    fn numbers_are_read_with_go_strconv_rules() {
        // Checked against Compose v5 (`scale` is an int, `cpus` a float32).
        let floats: &[(&str, Option<f64>)] = &[
            ("1.1", Some(1.1)),
            ("1_0", Some(10.0)),
            ("1e1_0", Some(1e10)),
            ("0x1p-2", Some(0.25)),
            ("0x1.8p1", Some(3.0)),
            ("-0X10P0", Some(-16.0)),
            (".5", Some(0.5)),
            ("5.", Some(5.0)),
            ("+2e3", Some(2000.0)),
            ("0x1", None),
            ("0x10", None),
            ("1__0", None),
            ("1_e1", None),
            ("_1", None),
            ("1_", None),
            (" 5", None),
            ("inf", None),
            ("NaN", None),
            ("1e400", None),
            ("", None),
            (".", None),
            ("1e", None),
        ];
        for (input, want) in floats {
            assert_eq!(parse_float(input), *want, "float {input:?}");
        }
        let ints: &[(&str, Option<i64>)] = &[
            ("42", Some(42)),
            ("+7", Some(7)),
            ("-3", Some(-3)),
            ("007", Some(7)),
            ("1_0", None),
            (" 5", None),
            ("0x10", None),
            ("1e3", None),
            ("5.", None),
            ("-", None),
            ("9223372036854775808", None),
        ];
        for (input, want) in ints {
            assert_eq!(parse_int(input), *want, "int {input:?}");
        }
    }

    #[test]
    fn cpus_is_a_float32_and_refuses_what_float32_cannot_hold() {
        let mut t = json!({"services": {"w": {"cpus": "1e39", "cpu_percent": "1e39"}}});
        let e = interpolate_tree(&mut t, &env).unwrap_err();
        assert!(e.to_string().starts_with("services.w.cpus: "), "{e}");
        let mut t = json!({"services": {"w": {"cpus": "0.3", "cpu_percent": "1e39"}}});
        interpolate_tree(&mut t, &env).unwrap();
        assert_eq!(t["services"]["w"]["cpus"], json!(0.3));
        assert_eq!(t["services"]["w"]["cpu_percent"], json!(1e39));
    }

    #[test]
    fn a_ports_target_under_a_mapping_key_is_not_cast() {
        // compose-go's `[]` only matches list items.
        let mut t = json!({"services": {"w": {"ports": {"x": {"target": "80"}}}}});
        interpolate_tree(&mut t, &env).unwrap();
        assert_eq!(t["services"]["w"]["ports"]["x"]["target"], json!("80"));
    }

    fn refs(input: &str) -> Vec<(String, bool)> {
        references(input)
            .unwrap()
            .into_iter()
            .map(|r| (r.name, r.required))
            .collect()
    }

    #[test]
    fn references_tell_variables_without_a_default_from_those_with_one() {
        let own = |v: &[(&str, bool)]| -> Vec<(String, bool)> {
            v.iter().map(|(n, r)| (n.to_string(), *r)).collect()
        };
        let rows: &[(&str, &[(&str, bool)])] = &[
            ("plain", &[]),
            ("$$A and $${B}", &[]),
            ("$A", &[("A", true)]),
            ("${A}", &[("A", true)]),
            ("x${A}y$B", &[("A", true), ("B", true)]),
            ("${A:-d}", &[("A", false)]),
            ("${A-d}", &[("A", false)]),
            ("${A:+alt}", &[("A", false)]),
            ("${A+alt}", &[("A", false)]),
            ("${A:?msg}", &[("A", true)]),
            ("${A?msg}", &[("A", true)]),
            ("${A:-${B}}", &[("A", false), ("B", false)]),
            ("${A:-$B}-$C", &[("A", false), ("C", true), ("B", false)]),
            (
                "redis://:${P:?unset}@h:${PORT:-6379}/0",
                &[("P", true), ("PORT", false)],
            ),
            ("${A:?need ${B}}", &[("A", true), ("B", false)]),
            ("$1 $ x", &[]),
        ];
        for (input, want) in rows {
            assert_eq!(refs(input), own(want), "{input}");
        }
    }

    #[test]
    fn references_refuse_an_invalid_template_like_interpolation() {
        assert!(references("${}").is_err());
        assert!(references("${A").is_err());
        assert!(references("${A!x}").is_err());
        // Inside an operand (expanded only in some cases) it is not an error, as in Compose.
        assert_eq!(
            refs("${A:-$B ${}}"),
            vec![("A".into(), false), ("B".into(), false)]
        );
    }

    #[test]
    fn tree_references_walk_values_but_not_keys() {
        let tree = json!({"services": {"web": {"image": "x:${TAG:-1}", "environment": {"$KEY": "${V}"},
                          "command": ["a", "$C"]}}});
        let found: Vec<(String, String, bool)> = tree_references(&tree)
            .unwrap()
            .into_iter()
            .map(|(p, r)| (p.to_string(), r.name, r.required))
            .collect();
        assert_eq!(
            found,
            vec![
                ("services.web.image".into(), "TAG".into(), false),
                ("services.web.environment.$KEY".into(), "V".into(), true),
                ("services.web.command[1]".into(), "C".into(), true),
            ]
        );
    }

    proptest::proptest! {
        /// Every variable interpolation looks up is one `references` reports.
        #[test]
        fn references_cover_every_lookup(input in "[a-zA-Z_${}:?+\\-]{0,24}") {
            let seen = std::cell::RefCell::new(Vec::new());
            let lookup = |n: &str| { seen.borrow_mut().push(n.to_string()); None };
            if interpolate_str(&input, &lookup).is_ok() {
                let names: Vec<String> = references(&input).unwrap().into_iter().map(|r| r.name).collect();
                for n in seen.borrow().iter() {
                    proptest::prop_assert!(names.contains(n), "{input}: {n} not in {names:?}");
                }
            }
        }
    }
}
