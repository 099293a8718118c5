//! Reads compose YAML the way Compose does: anchors, merge keys, `x-` extensions, and the `!reset`/`!override` tags.

use std::path::{Path, PathBuf};

use yaml_serde::Value as Yaml;

use super::tree::{KeyPath, Map, Seg, Tree};

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

/// Parses every document of a compose file.
pub fn parse_file(file: &Path, text: &str) -> Result<Vec<Document>, YamlError> {
    let mut docs = Vec::new();
    for de in yaml_serde::Deserializer::from_str(text) {
        let value: Yaml = serde::Deserialize::deserialize(de).map_err(|e| syntax(file, &e))?;
        if value.is_null() {
            continue;
        }
        docs.push(convert_document(file, value)?);
    }
    Ok(docs)
}

fn syntax(file: &Path, e: &yaml_serde::Error) -> YamlError {
    let message = e.to_string();
    // yaml_serde appends " at line L column C" to its messages; the location is reported separately.
    let message = match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message,
    };
    match e.location() {
        Some(loc) => YamlError::Syntax {
            file: file.to_path_buf(),
            line: loc.line(),
            column: loc.column(),
            message,
        },
        None => YamlError::Invalid {
            file: file.to_path_buf(),
            message,
        },
    }
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
    value.apply_merge().map_err(|e| YamlError::Invalid {
        file: file.to_path_buf(),
        message: format!("invalid merge key (<<): {e}"),
    })?;
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

/// The key segments of a path, for callers that only deal in mapping paths.
pub fn keys(path: &KeyPath) -> impl Iterator<Item = &str> {
    path.segments().iter().filter_map(|s| match s {
        Seg::Key(k) => Some(k.as_str()),
        Seg::Index(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(text: &str) -> Document {
        let mut docs = parse_file(Path::new("compose.yaml"), text).expect("parses");
        assert_eq!(docs.len(), 1);
        docs.remove(0)
    }

    #[test]
    fn merge_keys_take_the_anchor_and_keep_local_keys_first() {
        let d = one(
            "x-base: &b\n  image: a\n  restart: always\nservices:\n  web:\n    <<: *b\n    image: b\n",
        );
        assert_eq!(
            d.tree["services"]["web"],
            json!({"image": "b", "restart": "always"})
        );
        assert_eq!(d.tree["x-base"]["image"], "a");
    }

    #[test]
    fn a_reset_tag_removes_the_key_and_is_recorded() {
        let d = one("services:\n  web:\n    ports: !reset []\n    image: x\n");
        assert_eq!(d.tree["services"]["web"], json!({"image": "x"}));
        assert_eq!(
            d.markers,
            vec![(KeyPath::parse("services.web.ports"), Marker::Reset)]
        );
    }

    #[test]
    fn an_override_tag_keeps_the_value_and_is_recorded() {
        let d = one("services:\n  web:\n    ports: !override [\"80:80\"]\n");
        assert_eq!(d.tree["services"]["web"]["ports"], json!(["80:80"]));
        assert_eq!(
            d.markers,
            vec![(KeyPath::parse("services.web.ports"), Marker::Override)]
        );
    }

    #[test]
    fn a_syntax_error_names_file_line_and_column() {
        let e = parse_file(
            Path::new("compose.yaml"),
            "services:\n  web:\n    image: [a\n",
        )
        .expect_err("must fail");
        let msg = e.to_string();
        assert!(msg.starts_with("compose.yaml: line "), "{msg}");
        assert!(msg.contains("column"), "{msg}");
    }

    #[test]
    fn a_non_string_key_is_refused_with_its_path() {
        let e = parse_file(
            Path::new("c.yaml"),
            "services:\n  web:\n    labels:\n      1: x\n",
        )
        .expect_err("must fail");
        assert!(e.to_string().contains("services.web.labels"), "{e}");
    }

    #[test]
    fn an_unknown_tag_is_refused() {
        assert!(parse_file(Path::new("c.yaml"), "services: !foo {}\n").is_err());
    }

    #[test]
    fn empty_documents_are_skipped_and_several_documents_are_kept() {
        let docs = parse_file(
            Path::new("c.yaml"),
            "---\n---\nservices: {}\n---\nname: x\n",
        )
        .unwrap();
        assert_eq!(docs.len(), 2);
    }

    #[test]
    fn a_scalar_document_is_refused() {
        assert!(parse_file(Path::new("c.yaml"), "just a string\n").is_err());
    }
}
