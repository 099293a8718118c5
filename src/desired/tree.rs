//! The untyped compose tree the loader works on, and key paths that name places in it.

use std::fmt;
use std::sync::Arc;

/// A compose document as the loader sees it between stages: JSON values with insertion order kept.
pub type Tree = serde_json::Value;
/// A mapping node of a [`Tree`].
pub type Map = serde_json::Map<String, Tree>;

/// One step of a [`KeyPath`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Seg {
    /// Shared, so that extending a path (done for every node) does not copy its keys.
    Key(Arc<str>),
    Index(usize),
}

/// A path into a compose tree, printed the way users read it: `services.web.ports[0].published`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KeyPath(Vec<Seg>);

impl KeyPath {
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// Builds a path from dot-separated keys, e.g. `services.web`.
    pub fn parse(dotted: &str) -> Self {
        Self(
            dotted
                .split('.')
                .filter(|s| !s.is_empty())
                .map(|s| Seg::Key(Arc::from(s)))
                .collect(),
        )
    }

    pub fn key(&self, k: impl Into<String>) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Key(Arc::from(k.into())));
        Self(v)
    }

    pub fn index(&self, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        Self(v)
    }

    pub fn segments(&self) -> &[Seg] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn parent(&self) -> Option<Self> {
        if self.0.is_empty() {
            None
        } else {
            Some(Self(self.0[..self.0.len() - 1].to_vec()))
        }
    }

    pub fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Seg::Key(k)) => Some(&**k),
            _ => None,
        }
    }

    /// Matches a compose-go style pattern: dot-separated segments, `*` matches any one
    /// segment (key or index). `services.*.ports.*` matches `services.web.ports[3]`.
    pub fn matches(&self, pattern: &str) -> bool {
        // Lazy and allocation-free: loader stages call this for every node and many patterns,
        // and most candidates are told apart by their length alone.
        if pattern.bytes().filter(|b| *b == b'.').count() + 1 != self.0.len() {
            return false;
        }
        let mut segs = self.0.iter();
        for p in pattern.split('.') {
            let ok = match segs.next() {
                None => false,
                Some(_) if p == "*" => true,
                Some(Seg::Key(k)) => &**k == p,
                Some(Seg::Index(i)) => p.parse::<usize>().ok() == Some(*i),
            };
            if !ok {
                return false;
            }
        }
        segs.next().is_none()
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, s) in self.0.iter().enumerate() {
            match s {
                // A key is input: echoed no longer than an excerpt.
                Seg::Key(k) if i == 0 => write!(f, "{}", super::limits::excerpt(k))?,
                Seg::Key(k) => write!(f, ".{}", super::limits::excerpt(k))?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// One segment of a [`Pattern`].
#[derive(Clone, Debug, PartialEq, Eq)]
enum PatSeg {
    /// `*`: any key or index.
    Any,
    /// `[]`: any sequence index.
    AnyIndex,
    /// A literal key, or an index written as a number.
    Lit(&'static str),
}

/// A compose-go style path pattern (`services.*.ports.[]`), parsed once.
#[derive(Clone, Debug)]
pub struct Pattern(Vec<PatSeg>);

impl Pattern {
    pub fn new(pattern: &'static str) -> Self {
        Self(
            pattern
                .split('.')
                .map(|p| match p {
                    "*" => PatSeg::Any,
                    "[]" => PatSeg::AnyIndex,
                    lit => PatSeg::Lit(lit),
                })
                .collect(),
        )
    }

    pub fn matches(&self, path: &KeyPath) -> bool {
        self.0.len() == path.0.len()
            && self.0.iter().zip(&path.0).all(|(p, s)| match (p, s) {
                (PatSeg::Any, _) | (PatSeg::AnyIndex, Seg::Index(_)) => true,
                (PatSeg::Lit(l), Seg::Key(k)) => **k == **l,
                (PatSeg::Lit(l), Seg::Index(i)) => l.parse::<usize>().ok() == Some(*i),
                (PatSeg::AnyIndex, Seg::Key(_)) => false,
            })
    }
}

/// An ordered list of patterns with a value each, indexed by length: finding the first
/// pattern that matches a path only looks at patterns of the path's length. Loader stages
/// look up every node of a document, so this lookup is on the hot path.
pub struct PatternTable<T: 'static> {
    by_len: Vec<Vec<(Pattern, &'static T)>>,
}

impl<T> PatternTable<T> {
    pub fn new(list: &'static [(&'static str, T)]) -> Self {
        let mut by_len: Vec<Vec<(Pattern, &'static T)>> = Vec::new();
        for (p, v) in list {
            let pat = Pattern::new(p);
            let n = pat.0.len();
            if by_len.len() <= n {
                by_len.resize_with(n + 1, Vec::new);
            }
            by_len[n].push((pat, v));
        }
        Self { by_len }
    }

    /// The value of the first pattern (in list order) that matches `path`.
    pub fn find(&self, path: &KeyPath) -> Option<&'static T> {
        self.by_len
            .get(path.len())?
            .iter()
            .find(|(p, _)| p.matches(path))
            .map(|(_, v)| *v)
    }
}

/// Human name of a tree node's type, for error messages.
pub fn type_name(v: &Tree) -> &'static str {
    match v {
        Tree::Null => "null",
        Tree::Bool(_) => "boolean",
        Tree::Number(_) => "number",
        Tree::String(_) => "string",
        Tree::Array(_) => "sequence",
        Tree::Object(_) => "mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_prints_keys_with_dots_and_indexes_in_brackets() {
        let p = KeyPath::parse("services.web")
            .key("ports")
            .index(0)
            .key("published");
        assert_eq!(p.to_string(), "services.web.ports[0].published");
    }

    #[test]
    fn a_pattern_table_finds_the_first_match_of_the_right_length() {
        static LIST: &[(&str, u8)] = &[
            ("services.*.ports", 1),
            ("services.*.ports.[]", 2),
            ("services.web.ports", 3),
            ("services.*.*", 4),
        ];
        let t = PatternTable::new(LIST);
        let p = KeyPath::parse("services.web.ports");
        assert_eq!(t.find(&p), Some(&1));
        assert_eq!(t.find(&p.index(0)), Some(&2));
        assert_eq!(t.find(&p.key("x")), None);
        assert_eq!(t.find(&KeyPath::parse("services.web.image")), Some(&4));
    }

    #[test]
    fn a_star_matches_any_single_segment() {
        let p = KeyPath::parse("services.web").key("ports").index(3);
        assert!(p.matches("services.*.ports.*"));
        assert!(!p.matches("services.*.ports"));
        assert!(!p.matches("services.*.volumes.*"));
    }
}
