//! Turns the normalized model into the JSON Compose prints (`docker compose config --format json`), checking and converting typed fields (durations, sizes, ports) on the way.
//!
//! Order, as compose-go's `ModelToProject` runs it: [`apply_profiles`] on the whole model,
//! then for each remaining service [`resolve_environment`] (or
//! [`resolve_environment_interpolated`]) and [`resolve_labels`], then [`emit`].
//!
//! Every field of compose-go's `types.Project` is described in `schema`: its JSON name,
//! how a model value binds to its Go type (`decode`) and when `encoding/json` leaves it
//! out. Keys the types do not have are dropped, as are `x-` keys below the top level.

mod decode;
pub(crate) mod marshal;
mod project;
mod scalar;
mod schema;
#[cfg(test)]
mod tests;

pub use project::{
    EnvFileEntry, EnvFileReader, FileVars, InterpolatingEnvFileReader, LabelFileReader, Lookup,
    apply_profiles, resolve_environment, resolve_environment_interpolated, resolve_labels,
};

use super::tree::{KeyPath, Map, Tree};

#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    /// Never quotes the value: it may be a secret put in the wrong place.
    #[error("{path}: invalid {kind}: {reason}")]
    Invalid {
        path: KeyPath,
        kind: &'static str,
        reason: String,
    },
    #[error("{path}: refers to service {dependency:?}, which is disabled by profiles")]
    DisabledDependency { path: KeyPath, dependency: String },
    #[error("{path}: cannot read {what} file {file:?}: {reason}")]
    File {
        path: KeyPath,
        what: &'static str,
        file: String,
        reason: String,
    },
}

/// compose-go `ModelToProject` + JSON marshalling of `types.Project`, on a normalized tree,
/// then Compose's `config` escaping of `$` as `$$`: the exact tree `config --format json` prints.
///
/// Profiles and env files are applied beforehand with [`apply_profiles`] and
/// [`resolve_environment`]; this step only binds and prints.
pub fn emit(model: Tree) -> Result<Tree, EmitError> {
    Ok(escape_dollars(emit_project(&model)?))
}

/// The JSON form of the project, before `config`'s `$` escaping.
pub fn emit_project(model: &Tree) -> Result<Tree, EmitError> {
    let empty = Map::new();
    let top = match model {
        Tree::Object(m) => m,
        Tree::Null => &empty,
        other => {
            return Err(EmitError::Invalid {
                path: KeyPath::root(),
                kind: "project",
                reason: format!("expected a mapping, got a {}", tree_type(other)),
            });
        }
    };
    let mut out = Map::new();
    let name = match top.get("name") {
        Some(Tree::String(s)) => s.clone(),
        _ => String::new(),
    };
    out.insert("name".into(), Tree::String(name));

    let services = section(top, "services", |v, path| {
        decode::decode_struct(schema::SERVICE, v, path)
    })?;
    out.insert("services".into(), Tree::Object(services));

    for key in ["networks", "volumes", "secrets", "configs"] {
        let fields = match key {
            "networks" => schema::NETWORK,
            "volumes" => schema::VOLUME,
            _ => schema::FILE_OBJECT,
        };
        let mut entries = section(top, key, |v, path| decode::decode_struct(fields, v, path))?;
        for entry in entries.values_mut() {
            if let Tree::Object(m) = entry {
                let drop_content = match key {
                    "secrets" => true,
                    "configs" => m.contains_key("environment"),
                    _ => false,
                };
                if drop_content {
                    m.shift_remove("content");
                }
            }
        }
        if !entries.is_empty() {
            out.insert(key.into(), Tree::Object(entries));
        }
    }

    for (k, v) in top {
        if k.starts_with("x-") {
            out.insert(k.clone(), v.clone());
        }
    }
    Ok(Tree::Object(out))
}

fn tree_type(v: &Tree) -> String {
    super::tree::type_name(v).to_string()
}

/// Decodes each entry of a top-level mapping section.
fn section(
    top: &Map,
    key: &str,
    each: impl Fn(&Tree, &KeyPath) -> Result<Tree, EmitError>,
) -> Result<Map, EmitError> {
    let path = KeyPath::root().key(key);
    let mut out = Map::new();
    match top.get(key) {
        None | Some(Tree::Null) => {}
        Some(Tree::Object(m)) => {
            for (name, v) in m {
                out.insert(name.clone(), each(v, &path.key(name))?);
            }
        }
        Some(other) => {
            return Err(EmitError::Invalid {
                path,
                kind: "section",
                reason: format!("expected a mapping, got a {}", tree_type(other)),
            });
        }
    }
    Ok(out)
}

/// Doubles every `$` in keys and strings, as `docker compose config` does to its output
/// so that it can be read back without interpolation.
pub fn escape_dollars(v: Tree) -> Tree {
    fn esc(s: String) -> String {
        if s.contains('$') {
            s.replace('$', "$$")
        } else {
            s
        }
    }
    match v {
        Tree::String(s) => Tree::String(esc(s)),
        Tree::Array(items) => Tree::Array(items.into_iter().map(escape_dollars).collect()),
        Tree::Object(m) => Tree::Object(
            m.into_iter()
                .map(|(k, v)| (esc(k), escape_dollars(v)))
                .collect(),
        ),
        other => other,
    }
}
