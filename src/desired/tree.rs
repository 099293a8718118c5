//! The untyped compose tree the loader works on, and key paths that name places in it.

use std::fmt;

/// A compose document as the loader sees it between stages: JSON values with insertion order kept.
pub type Tree = serde_json::Value;
/// A mapping node of a [`Tree`].
pub type Map = serde_json::Map<String, Tree>;

/// One step of a [`KeyPath`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
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
                .map(|s| Seg::Key(s.to_string()))
                .collect(),
        )
    }

    pub fn key(&self, k: impl Into<String>) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.into()));
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
            Some(Seg::Key(k)) => Some(k),
            _ => None,
        }
    }

    /// Matches a compose-go style pattern: dot-separated segments, `*` matches any one
    /// segment (key or index). `services.*.ports.*` matches `services.web.ports[3]`.
    pub fn matches(&self, pattern: &str) -> bool {
        let pat: Vec<&str> = pattern.split('.').collect();
        if pat.len() != self.0.len() {
            return false;
        }
        pat.iter().zip(&self.0).all(|(p, s)| match s {
            _ if *p == "*" => true,
            Seg::Key(k) => k == p,
            Seg::Index(i) => p.parse::<usize>().ok() == Some(*i),
        })
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
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
    fn a_star_matches_any_single_segment() {
        let p = KeyPath::parse("services.web").key("ports").index(3);
        assert!(p.matches("services.*.ports.*"));
        assert!(!p.matches("services.*.ports"));
        assert!(!p.matches("services.*.volumes.*"));
    }
}
