//! Reads compose YAML the way Compose does: anchors, merge keys, `x-` extensions, and the `!reset`/`!override` tags.

use std::path::{Path, PathBuf};

use yaml_serde::Value as Yaml;

use super::tree::{KeyPath, Map, Tree};

pub mod depth;

#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    #[error("{file}: line {line}, column {column}: {message}")]
    Syntax {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: {message}")]
    Invalid { file: PathBuf, message: String },
    #[error("{file}: {path}: {message}")]
    At {
        file: PathBuf,
        path: KeyPath,
        message: String,
    },
    #[error(
        "{file}: line {line}: nested deeper than the input limit of {limit} levels; raise {} to load it",
        super::limits::DEPTH_VAR
    )]
    TooDeep {
        file: PathBuf,
        line: usize,
        limit: usize,
    },
}

/// How a later file asks to treat a path of the files before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    /// `!reset`: drop whatever the earlier files set here, and set nothing.
    Reset,
    /// `!override`: drop whatever the earlier files set here, and use this value as is.
    Override,
}

/// One YAML document of a compose file, converted to a [`Tree`].
#[derive(Debug)]
pub struct Document {
    pub tree: Tree,
    /// Paths marked `!reset` or `!override`, relative to the document root.
    pub markers: Vec<(KeyPath, Marker)>,
}

/// Most nodes a document may expand to once aliases are followed (a "billion laughs" guard).
const MAX_NODES: usize = 1_000_000;

/// Refuses `text` when it nests deeper than the depth limit ([`super::limits`]), in time linear
/// in its length and before any parsing.
pub fn check_depth(file: &Path, text: &str) -> Result<(), YamlError> {
    let limit = super::limits::current().max_depth;
    match depth::too_deep_at(text, limit) {
        None => Ok(()),
        Some(line) => Err(YamlError::TooDeep {
            file: file.to_path_buf(),
            line,
            limit,
        }),
    }
}

/// Parses every document of a compose file (after [`check_depth`]).
pub fn parse_file(file: &Path, text: &str) -> Result<Vec<Document>, YamlError> {
    check_depth(file, text)?;
    let mut docs = Vec::new();
    for de in yaml_serde::Deserializer::from_str(text) {
        let value: Yaml = serde::de::DeserializeSeed::deserialize(NodeSeed { src: text }, de)
            .map_err(|e| syntax(file, &e))?;
        if value.is_null() {
            continue;
        }
        docs.push(convert_document(file, value)?);
    }
    Ok(docs)
}

/// The last non-empty top-level `name:` of a file's documents, read without building the
/// documents (Compose reads it before anything else, to interpolate `COMPOSE_PROJECT_NAME`).
/// Errors are left for the full parse to report.
pub fn top_level_name(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Named {
        name: Option<yaml_serde::Value>,
    }
    if !text.contains("name")
        || depth::too_deep_at(text, super::limits::current().max_depth).is_some()
    {
        return None;
    }
    let mut found = None;
    for de in yaml_serde::Deserializer::from_str(text) {
        match <Option<Named> as serde::Deserialize>::deserialize(de) {
            Ok(Some(Named {
                name: Some(Yaml::String(n)),
            })) if !n.is_empty() => found = Some(n),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    found
}

fn syntax(file: &Path, e: &yaml_serde::Error) -> YamlError {
    let text = super::limits::shorten_quoted(&e.to_string());
    let Some(at) = e.location().map(|l| (l.line(), l.column())) else {
        return YamlError::Invalid {
            file: file.to_path_buf(),
            message: text,
        };
    };
    let (line, column, message) = locate(&text, &format!("{e:?}"), at);
    YamlError::Syntax {
        file: file.to_path_buf(),
        line,
        column,
        message,
    }
}

/// Where a syntax error is reported, and its message without locations. libyaml's message reads
/// `<problem> at line L column C[, <context>[ at line L2 column C2]]`: the problem is where the
/// parser gave up, the context the construct it was reading (a flow sequence, a quoted scalar,
/// a block mapping, …). The error names both places; an unclosed flow collection or quote is
/// reported at the line where it began, since that is where the fix is (an unclosed `[` on
/// line 5 is only noticed lines later), a broken block where the parser gave up. `debug` is the error's `Debug` text, which alone tells a context
/// that began at line 1, column 1 (not printed in the message) from one that began where the
/// parser gave up. `gave_up` is the problem's location (line, column).
fn locate(text: &str, debug: &str, gave_up: (usize, usize)) -> (usize, usize, String) {
    let (problem, context) = match text.split_once(", ") {
        Some((p, c)) if p.contains(" at line ") || p.contains(" at position ") => (p, Some(c)),
        _ => (text, None),
    };
    let strip = |s: &str| -> String {
        s.find(" at line ")
            .or_else(|| s.find(" at position "))
            .map_or(s, |i| &s[..i])
            .to_string()
    };
    let problem = strip(problem);
    let Some(context) = context else {
        return (gave_up.0, gave_up.1, problem);
    };
    let began = mark_after(context, " at line ").or_else(|| {
        // The message omits the context's mark when it equals the problem's, or when it is the
        // very start of the file; `Debug` prints it in the first case only.
        (!debug.contains("context_mark")).then_some((1, 1))
    });
    let context = strip(context);
    match began {
        // A block mapping or sequence spans many lines and its broken line is usually where the
        // parser gave up (a wrong indentation): that leads, and the block's start is named too.
        Some((line, column)) if (line, column) != gave_up && context.contains(" block ") => (
            gave_up.0,
            gave_up.1,
            format!("{problem} {context} that begins at line {line}, column {column}"),
        ),
        // An unclosed `[`, `{` or quote: where it was opened leads.
        Some((line, column)) if (line, column) != gave_up => (
            line,
            column,
            format!(
                "{problem} {context} that begins here; the parser gave up at line {}, column {}",
                gave_up.0, gave_up.1
            ),
        ),
        _ => (gave_up.0, gave_up.1, format!("{problem} {context}")),
    }
}

/// The `line L column C` after `marker` in `s`.
fn mark_after(s: &str, marker: &str) -> Option<(usize, usize)> {
    let rest = &s[s.find(marker)? + marker.len()..];
    let (line, rest) = rest.split_once(" column ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((line.trim().parse().ok()?, column.parse().ok()?))
}

fn convert_document(file: &Path, mut value: Yaml) -> Result<Document, YamlError> {
    let mut markers = Vec::new();
    let mut budget = MAX_NODES;
    strip_tags(&mut value, &KeyPath::root(), &mut markers, &mut budget).map_err(|message| {
        YamlError::Invalid {
            file: file.to_path_buf(),
            message,
        }
    })?;
    // `apply_merge` resolves one level of merge keys per pass: a merged-in mapping that has
    // merge keys of its own (an anchor built from anchors) needs another pass.
    for _ in 0..MAX_MERGE_DEPTH {
        value.apply_merge().map_err(|e| YamlError::Invalid {
            file: file.to_path_buf(),
            message: format!("invalid merge key (<<): {e}"),
        })?;
        if !has_merge_key(&value) {
            break;
        }
    }
    let tree = to_tree(value, &KeyPath::root()).map_err(|(path, message)| YamlError::At {
        file: file.to_path_buf(),
        path,
        message,
    })?;
    if !tree.is_object() {
        return Err(YamlError::Invalid {
            file: file.to_path_buf(),
            message: "top-level object must be a mapping".into(),
        });
    }
    Ok(Document { tree, markers })
}

/// How deeply merge keys may nest (an anchor merging an anchor merging …).
const MAX_MERGE_DEPTH: usize = 64;

fn has_merge_key(v: &Yaml) -> bool {
    match v {
        Yaml::Mapping(m) => m.contains_key("<<") || m.values().any(has_merge_key),
        Yaml::Sequence(s) => s.iter().any(has_merge_key),
        Yaml::Tagged(t) => has_merge_key(&t.value),
        _ => false,
    }
}

/// Builds a [`Yaml`] value like `yaml_serde`'s own, but resolves plain (unquoted) scalars
/// the way Go's YAML library does where the two differ: YAML 1.1 integers (`0755` is octal,
/// `1_000` is a thousand, `0b101` is binary) and timestamps (`2024-01-01` becomes a Go time).
/// A plain scalar is told from a quoted one by where its text sits in the source.
struct NodeSeed<'s> {
    src: &'s str,
}

impl<'de, 's> serde::de::DeserializeSeed<'de> for NodeSeed<'s> {
    type Value = Yaml;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Yaml, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, 's> serde::de::Visitor<'de> for NodeSeed<'s> {
    type Value = Yaml;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Yaml, E> {
        Ok(Yaml::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Yaml, E> {
        Ok(Yaml::Number(i.into()))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Yaml, E> {
        Ok(Yaml::Number(u.into()))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Yaml, E> {
        Ok(Yaml::Number(f.into()))
    }
    fn visit_unit<E>(self) -> Result<Yaml, E> {
        Ok(Yaml::Null)
    }
    fn visit_none<E>(self) -> Result<Yaml, E> {
        Ok(Yaml::Null)
    }
    fn visit_str<E>(self, s: &str) -> Result<Yaml, E> {
        Ok(Yaml::String(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Yaml, E> {
        Ok(Yaml::String(s))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Yaml, E> {
        if is_plain(self.src, s)
            && let Some(v) = go_plain_scalar(s)
        {
            return Ok(v);
        }
        Ok(Yaml::String(s.to_string()))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Yaml, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(NodeSeed { src: self.src })? {
            out.push(v);
        }
        Ok(Yaml::Sequence(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Yaml, A::Error> {
        let mut out = yaml_serde::Mapping::new();
        while let Some(k) = map.next_key_seed(NodeSeed { src: self.src })? {
            let v = map.next_value_seed(NodeSeed { src: self.src })?;
            out.insert(k, v);
        }
        Ok(Yaml::Mapping(out))
    }
    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<Yaml, A::Error> {
        use serde::de::VariantAccess;
        let (tag, contents): (String, _) = data.variant()?;
        let value = contents.newtype_variant_seed(NodeSeed { src: self.src })?;
        let tag = if tag.is_empty() { "!".to_string() } else { tag };
        Ok(Yaml::Tagged(Box::new(yaml_serde::value::TaggedValue {
            tag: yaml_serde::value::Tag::new(tag),
            value,
        })))
    }
}

/// True when `s` is a slice of `src` not preceded by a quote: a plain scalar.
fn is_plain(src: &str, s: &str) -> bool {
    let start = src.as_ptr() as usize;
    let at = s.as_ptr() as usize;
    if at < start || at + s.len() > start + src.len() {
        return false;
    }
    let offset = at - start;
    !matches!(
        src.as_bytes().get(offset.wrapping_sub(1)),
        Some(b'"' | b'\'')
    )
}

/// Go's YAML resolution of a plain scalar that `yaml_serde` keeps as a string.
fn go_plain_scalar(s: &str) -> Option<Yaml> {
    let first = s.chars().next()?;
    if !(first.is_ascii_digit() || first == '-' || first == '+' || first == '.') {
        return None;
    }
    if let Some(t) = go_timestamp(s) {
        return Some(Yaml::String(t));
    }
    let plain = s.replace('_', "");
    if let Some(i) = go_parse_int(&plain) {
        return Some(Yaml::Number(i.into()));
    }
    if is_yaml_style_float(&plain) {
        let f: f64 = plain.parse().ok()?;
        return Some(Yaml::Number(f.into()));
    }
    None
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`, the floats Go's YAML accepts.
fn is_yaml_style_float(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
        None => digits(mantissa),
    };
    let exp_ok = match exp {
        None => true,
        Some(e) => digits(e.strip_prefix(['-', '+']).unwrap_or(e)),
    };
    mantissa_ok && exp_ok
}

/// Go's `strconv.ParseInt(s, 0, 64)`: optional sign, then `0x`, `0o`, `0b` or a leading `0` (octal).
fn go_parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string())
    } else {
        (10, lower)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i64::from_str_radix(&digits, radix).ok()?;
    Some(if neg { -v } else { v })
}

/// A YAML timestamp as Go prints a `time.Time` (`2024-01-01 00:00:00 +0000 UTC`).
/// Handles dates, and date-times in UTC (`Z`) or without a zone; other forms stay strings.
fn go_timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let (date, time) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(s[i + 1..].trim_start())),
        None => (s, None),
    };
    let mut parts = date.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let num = |p: &str, max: u32| -> Option<u32> {
        if p.is_empty() || p.len() > 2 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        p.parse().ok().filter(|v| *v <= max)
    };
    let (m, d) = (num(m, 12)?, num(d, 31)?);
    if m == 0 || d == 0 {
        return None;
    }
    let mut zone = "+0000 UTC".to_string();
    let (hh, mm, ss, frac) = match time {
        None => (0, 0, 0, String::new()),
        Some(t) => {
            let t = match t.strip_suffix(['Z', 'z']) {
                Some(t) => t,
                None => match t.rfind(['+', '-']) {
                    Some(i) => {
                        let (h, m) = t[i + 1..].split_once(':').unwrap_or((&t[i + 1..], "00"));
                        let (h, m) = (num(h, 23)?, num(m, 59)?);
                        let sign = &t[i..i + 1];
                        zone = format!("{sign}{h:02}{m:02} {sign}{h:02}{m:02}");
                        if h == 0 && m == 0 {
                            zone = "+0000 +0000".into();
                        }
                        t[..i].trim_end()
                    }
                    None => t,
                },
            };
            let (hms, frac) = match t.split_once('.') {
                Some((a, f)) if !f.is_empty() && f.bytes().all(|c| c.is_ascii_digit()) => {
                    (a, f.trim_end_matches('0').to_string())
                }
                Some(_) => return None,
                None => (t, String::new()),
            };
            let mut p = hms.split(':');
            let (h, mi, se) = (p.next()?, p.next()?, p.next()?);
            if p.next().is_some() {
                return None;
            }
            (num(h, 23)?, num(mi, 59)?, num(se, 60)?, frac)
        }
    };
    let frac = if frac.is_empty() {
        String::new()
    } else {
        format!(".{frac}")
    };
    Some(format!(
        "{y}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02}{frac} {zone}"
    ))
}

/// Records and removes `!reset`/`!override` tags. A merge key (`<<`) segment is left out of
/// the recorded path, since after merging its keys sit on the mapping itself.
fn strip_tags(
    v: &mut Yaml,
    path: &KeyPath,
    markers: &mut Vec<(KeyPath, Marker)>,
    budget: &mut usize,
) -> Result<(), String> {
    *budget = budget
        .checked_sub(1)
        .ok_or_else(|| "document is too large once its aliases are expanded".to_string())?;
    match v {
        Yaml::Tagged(t) => {
            let tag = t.tag.to_string();
            match tag.as_str() {
                "!reset" => {
                    markers.push((path.clone(), Marker::Reset));
                    *v = Yaml::Null;
                    Ok(())
                }
                "!override" => {
                    markers.push((path.clone(), Marker::Override));
                    let inner = std::mem::replace(&mut t.value, Yaml::Null);
                    *v = inner;
                    // Tags nested under an override node are still honoured.
                    strip_tags(v, path, markers, budget)
                }
                other => Err(format!("{path}: unsupported YAML tag {other}")),
            }
        }
        Yaml::Mapping(m) => {
            // Drop keys whose value is `!reset`: Compose treats them as absent.
            let mut reset_keys = Vec::new();
            for (k, child) in m.iter_mut() {
                let child_path = match k.as_str() {
                    Some("<<") => path.clone(),
                    Some(key) => path.key(key),
                    None => path.key(yaml_key_text(k)),
                };
                let was_reset = matches!(child, Yaml::Tagged(t) if t.tag == "!reset");
                strip_tags(child, &child_path, markers, budget)?;
                if was_reset {
                    reset_keys.push(k.clone());
                }
            }
            for k in reset_keys {
                m.remove(&k);
            }
            Ok(())
        }
        Yaml::Sequence(s) => {
            let mut keep = Vec::with_capacity(s.len());
            for (i, mut child) in std::mem::take(s).into_iter().enumerate() {
                let was_reset = matches!(&child, Yaml::Tagged(t) if t.tag == "!reset");
                strip_tags(&mut child, &path.index(i), markers, budget)?;
                if !was_reset {
                    keep.push(child);
                }
            }
            *s = keep;
            Ok(())
        }
        _ => Ok(()),
    }
}

fn yaml_key_text(k: &Yaml) -> String {
    match k {
        Yaml::String(s) => s.clone(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Null => "null".into(),
        _ => "<complex key>".into(),
    }
}

fn to_tree(v: Yaml, path: &KeyPath) -> Result<Tree, (KeyPath, String)> {
    Ok(match v {
        Yaml::Null => Tree::Null,
        Yaml::Bool(b) => Tree::Bool(b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Tree::from(i)
            } else if let Some(u) = n.as_u64() {
                Tree::from(u)
            } else {
                match n.as_f64().and_then(serde_json::Number::from_f64) {
                    Some(f) => Tree::Number(f),
                    // NaN and infinities have no JSON form; keep their YAML spelling.
                    None => Tree::String(n.to_string()),
                }
            }
        }
        Yaml::String(s) => Tree::String(s),
        Yaml::Sequence(s) => Tree::Array(
            s.into_iter()
                .enumerate()
                .map(|(i, c)| to_tree(c, &path.index(i)))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Mapping(m) => {
            let mut out = Map::new();
            for (k, c) in m {
                let key = match k {
                    Yaml::String(s) => s,
                    other => {
                        return Err((
                            path.clone(),
                            format!(
                                "non-string key {}: quote it to make it a string",
                                yaml_key_text(&other)
                            ),
                        ));
                    }
                };
                let child = to_tree(c, &path.key(key.as_str()))?;
                out.insert(key, child);
            }
            Tree::Object(out)
        }
        Yaml::Tagged(t) => to_tree(t.value, path)?,
    })
}

/// True when `path` starts with `prefix`.
pub fn has_prefix(path: &KeyPath, prefix: &KeyPath) -> bool {
    path.segments().len() >= prefix.segments().len()
        && path.segments()[..prefix.segments().len()] == *prefix.segments()
}

#[cfg(test)]
mod tests;
