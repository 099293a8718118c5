//! Binds model values to compose-go's types and encodes them back the way `encoding/json` prints those types.

use super::EmitError;
use super::scalar::{
    format_duration, go_format_float, go_format_float32, go_parse_bool, go_parse_float,
    go_parse_int, parse_bytes, parse_duration, shell_words,
};
use super::schema::{F, Omit, Ty};
use crate::desired::tree::{KeyPath, Map, Tree, type_name};

/// A decoded value: its JSON form and whether Go considers it the zero value (for `omitempty`).
pub struct Out {
    pub json: Tree,
    pub zero: bool,
}

impl Out {
    fn new(json: Tree, zero: bool) -> Self {
        Self { json, zero }
    }
}

fn invalid(
    path: &KeyPath,
    kind: &'static str,
    _value: &Tree,
    reason: impl Into<String>,
) -> EmitError {
    // Error messages never quote the value (it may be a secret put in the wrong place); the
    // reason says what was expected.
    EmitError::Invalid {
        path: path.clone(),
        kind,
        reason: reason.into(),
    }
}

/// Go `fmt.Sprint` of a scalar model value.
pub fn sprint(v: &Tree) -> String {
    match v {
        Tree::Null => "<nil>".into(),
        Tree::Bool(b) => b.to_string(),
        Tree::String(s) => s.clone(),
        Tree::Number(n) => {
            if n.is_i64() || n.is_u64() {
                n.to_string()
            } else {
                go_format_float(n.as_f64().unwrap_or(0.0))
            }
        }
        Tree::Array(items) => format!(
            "[{}]",
            items.iter().map(sprint).collect::<Vec<_>>().join(" ")
        ),
        Tree::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", sprint(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// A JSON number from a float, as Go would print it (integral values become integers).
pub fn float_json(f: f64) -> Tree {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        return Tree::from(f as i64);
    }
    serde_json::Number::from_f64(f)
        .map(Tree::Number)
        .unwrap_or(Tree::Null)
}

fn float32_json(f: f32) -> Tree {
    let shortest: f64 = go_format_float32(f).parse().unwrap_or(f64::from(f));
    float_json(shortest)
}

/// Decodes a struct: every schema field is considered (absent ones are Go zero values), unknown keys are dropped.
pub fn decode_struct(fields: &[F], v: &Tree, path: &KeyPath) -> Result<Tree, EmitError> {
    let empty = Map::new();
    let input = match v {
        Tree::Object(m) => m,
        Tree::Null => &empty,
        other => return Err(invalid(path, "mapping", other, "expected a mapping")),
    };
    let mut out = Map::new();
    for f in fields {
        // mapstructure falls back to a case-insensitive match of the field name.
        let value = input
            .get(f.name)
            .or_else(|| {
                input
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(f.name))
                    .map(|(_, v)| v)
            })
            .unwrap_or(&Tree::Null);
        let fpath = path.key(f.name);
        match f.omit {
            Omit::Ptr => {
                if !value.is_null() {
                    out.insert(f.name.to_string(), decode(&f.ty, value, &fpath)?.json);
                }
            }
            Omit::Empty => {
                let d = decode(&f.ty, value, &fpath)?;
                if !d.zero {
                    out.insert(f.name.to_string(), d.json);
                }
            }
            Omit::Never => {
                out.insert(f.name.to_string(), decode(&f.ty, value, &fpath)?.json);
            }
            Omit::OptOut => {
                let d = decode(&f.ty, value, &fpath)?;
                if d.json != Tree::Bool(true) {
                    out.insert(f.name.to_string(), d.json);
                }
            }
        }
    }
    Ok(Tree::Object(out))
}

fn expect_str<'a>(v: &'a Tree, path: &KeyPath, kind: &'static str) -> Result<&'a str, EmitError> {
    v.as_str().ok_or_else(|| {
        invalid(
            path,
            kind,
            v,
            format!("expected a string, got a {}", type_name(v)),
        )
    })
}

fn string_value(v: &Tree, path: &KeyPath) -> Result<String, EmitError> {
    match v {
        Tree::String(s) => Ok(s.clone()),
        Tree::Null => Ok(String::new()),
        Tree::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        other => Err(invalid(
            path,
            "string",
            other,
            format!("expected a string, got a {}", type_name(other)),
        )),
    }
}

fn string_array(items: &[String]) -> Tree {
    Tree::Array(items.iter().cloned().map(Tree::String).collect())
}

fn list_or_null(items: Option<Vec<String>>) -> Out {
    match items {
        None => Out::new(Tree::Null, true),
        Some(items) => {
            let zero = items.is_empty();
            Out::new(string_array(&items), zero)
        }
    }
}

fn map_out(m: Map) -> Out {
    let zero = m.is_empty();
    Out::new(Tree::Object(m), zero)
}

fn integer(v: &Tree, path: &KeyPath, signed: bool, bits: u32) -> Result<i128, EmitError> {
    let kind = if signed {
        "integer"
    } else {
        "unsigned integer"
    };
    let n: i128 = match v {
        Tree::Null => 0,
        Tree::Number(n) => {
            if let Some(i) = n.as_i64() {
                i128::from(i)
            } else if let Some(u) = n.as_u64() {
                i128::from(u)
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                if !f.is_finite() || f.abs() > 1.8e19 {
                    return Err(invalid(path, kind, v, "out of range"));
                }
                f.trunc() as i128
            }
        }
        // compose casts strings to signed integers only; unsigned fields given as strings
        // fail to bind (the interpolation stage has already cast the paths it knows).
        Tree::String(s) if signed => go_parse_int(s, 64)
            .map(i128::from)
            .ok_or_else(|| invalid(path, kind, v, "not a number"))?,
        other => {
            return Err(invalid(
                path,
                kind,
                other,
                format!("expected a number, got a {}", type_name(other)),
            ));
        }
    };
    let (min, max) = if signed {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    } else {
        (0, (1i128 << bits) - 1)
    };
    if n < min || n > max {
        return Err(invalid(path, kind, v, "out of range"));
    }
    Ok(n)
}

fn int_json(n: i128) -> Tree {
    if let Ok(i) = i64::try_from(n) {
        Tree::from(i)
    } else {
        Tree::from(u64::try_from(n).unwrap_or(u64::MAX))
    }
}

/// Decodes `v` as `ty` at `path`.
pub fn decode(ty: &Ty, v: &Tree, path: &KeyPath) -> Result<Out, EmitError> {
    match ty {
        Ty::Str => {
            let s = string_value(v, path)?;
            let zero = s.is_empty();
            Ok(Out::new(Tree::String(s), zero))
        }
        Ty::Bool => {
            let b = match v {
                Tree::Null => false,
                Tree::Bool(b) => *b,
                Tree::String(s) => {
                    go_parse_bool(s).ok_or_else(|| invalid(path, "boolean", v, "not a boolean"))?
                }
                other => {
                    return Err(invalid(
                        path,
                        "boolean",
                        other,
                        format!("expected a boolean, got a {}", type_name(other)),
                    ));
                }
            };
            Ok(Out::new(Tree::Bool(b), !b))
        }
        Ty::Int(bits) => {
            let n = integer(v, path, true, *bits)?;
            Ok(Out::new(int_json(n), n == 0))
        }
        Ty::Uint(bits) => {
            let n = integer(v, path, false, *bits)?;
            Ok(Out::new(int_json(n), n == 0))
        }
        Ty::Float32 => {
            let f = match v {
                Tree::Null => 0.0,
                Tree::Number(n) => n.as_f64().unwrap_or(0.0),
                Tree::String(s) => go_parse_float(s)
                    .filter(|f| f.abs() <= f64::from(f32::MAX))
                    .ok_or_else(|| invalid(path, "number", v, "not a number"))?,
                other => {
                    return Err(invalid(
                        path,
                        "number",
                        other,
                        format!("expected a number, got a {}", type_name(other)),
                    ));
                }
            };
            let f = f as f32;
            if !f.is_finite() {
                return Err(invalid(path, "number", v, "out of range"));
            }
            Ok(Out::new(float32_json(f), f == 0.0))
        }
        Ty::Cpus => {
            let f = match v {
                Tree::Null => 0.0,
                Tree::Number(n) => n.as_f64().unwrap_or(0.0),
                Tree::String(s) => {
                    go_parse_float(s).ok_or_else(|| invalid(path, "cpus", v, "not a number"))?
                }
                other => {
                    return Err(invalid(
                        path,
                        "cpus",
                        other,
                        format!("expected a number, got a {}", type_name(other)),
                    ));
                }
            };
            let f = f as f32;
            if !f.is_finite() {
                return Err(invalid(path, "cpus", v, "out of range"));
            }
            Ok(Out::new(float32_json(f), f == 0.0))
        }
        Ty::Duration => {
            if v.is_null() {
                return Ok(Out::new(Tree::String("0s".into()), true));
            }
            let nanos = parse_duration(&sprint(v)).map_err(|r| invalid(path, "duration", v, r))?;
            Ok(Out::new(Tree::String(format_duration(nanos)), nanos == 0))
        }
        Ty::Bytes => {
            let n = match v {
                Tree::Number(n) => n.as_i64().unwrap_or(0),
                Tree::String(s) => parse_bytes(s).map_err(|r| invalid(path, "byte size", v, r))?,
                _ => 0,
            };
            Ok(Out::new(Tree::String(n.to_string()), n == 0))
        }
        Ty::ShellCommand => {
            let words = match v {
                Tree::String(s) => {
                    Some(shell_words(s).map_err(|r| invalid(path, "command", v, r))?)
                }
                Tree::Array(items) => Some(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, e)| expect_str(e, &path.index(i), "command").map(str::to_string))
                        .collect::<Result<Vec<_>, _>>()?,
                ),
                _ => None,
            };
            Ok(list_or_null(words))
        }
        Ty::StringList => match v {
            Tree::Null => Ok(list_or_null(None)),
            Tree::String(s) => Ok(list_or_null(Some(vec![s.clone()]))),
            Tree::Array(items) => Ok(list_or_null(Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, e)| expect_str(e, &path.index(i), "string list").map(str::to_string))
                    .collect::<Result<Vec<_>, _>>()?,
            ))),
            other => Err(invalid(
                path,
                "string list",
                other,
                "expected a string or a list",
            )),
        },
        Ty::StringOrNumberList => match v {
            Tree::Null => Ok(list_or_null(None)),
            Tree::String(s) => Ok(list_or_null(Some(vec![s.clone()]))),
            Tree::Array(items) => Ok(list_or_null(Some(items.iter().map(sprint).collect()))),
            other => Err(invalid(
                path,
                "string list",
                other,
                "expected a string or a list",
            )),
        },
        Ty::Strings => match v {
            Tree::Null => Ok(list_or_null(None)),
            Tree::Array(items) => Ok(list_or_null(Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, e)| string_value(e, &path.index(i)))
                    .collect::<Result<Vec<_>, _>>()?,
            ))),
            other => Err(invalid(path, "list", other, "expected a list")),
        },
        Ty::MappingWithEquals => decode_mapping_with_equals(v, path),
        Ty::Mapping | Ty::Labels => match v {
            Tree::Null => Ok(Out::new(Tree::Null, true)),
            Tree::Object(m) => Ok(map_out(
                m.iter()
                    .map(|(k, e)| {
                        let s = if e.is_null() {
                            String::new()
                        } else {
                            sprint(e)
                        };
                        (k.clone(), Tree::String(s))
                    })
                    .collect(),
            )),
            Tree::Array(items) => Ok(map_out(
                items
                    .iter()
                    .map(|e| {
                        let s = sprint(e);
                        let (k, val) = s.split_once('=').unwrap_or((s.as_str(), ""));
                        (k.to_string(), Tree::String(val.to_string()))
                    })
                    .collect(),
            )),
            other => Err(invalid(
                path,
                "mapping",
                other,
                "expected a mapping or a list",
            )),
        },
        Ty::Options | Ty::StringMap => match v {
            Tree::Null => Ok(Out::new(Tree::Null, true)),
            Tree::Object(m) => {
                let mut out = Map::new();
                for (k, e) in m {
                    let s = match (ty, e) {
                        (_, Tree::Null) => String::new(),
                        (Ty::Options, e) => sprint(e),
                        (_, e) => string_value(e, &path.key(k))?,
                    };
                    out.insert(k.clone(), Tree::String(s));
                }
                Ok(map_out(out))
            }
            other => Err(invalid(path, "mapping", other, "expected a mapping")),
        },
        Ty::MultiOptions => match v {
            Tree::Null => Ok(Out::new(Tree::Null, true)),
            Tree::Object(m) => Ok(map_out(
                m.iter()
                    .map(|(k, e)| {
                        let items = match e {
                            Tree::Array(items) => items.iter().map(sprint).collect(),
                            other => vec![sprint(other)],
                        };
                        (k.clone(), string_array(&items))
                    })
                    .collect(),
            )),
            other => Err(invalid(path, "mapping", other, "expected a mapping")),
        },
        Ty::Hosts => decode_hosts(v, path),
        Ty::Ulimit => decode_ulimit(v, path),
        Ty::FileMode => {
            let n: i64 = match v {
                Tree::Null => return Ok(Out::new(Tree::Null, true)),
                Tree::String(s) => i64::from_str_radix(s, 8)
                    .map_err(|_| invalid(path, "file mode", v, "not an octal number"))?,
                Tree::Number(n) if n.is_i64() => n.as_i64().unwrap_or(0),
                other => return Err(invalid(path, "file mode", other, "expected a number")),
            };
            let text = if n < 0 {
                format!("0-{:o}", n.unsigned_abs())
            } else {
                format!("0{n:o}")
            };
            Ok(Out::new(Tree::String(text), false))
        }
        Ty::DeviceCount => {
            let n: i64 = match v {
                Tree::Null => 0,
                Tree::Number(n) if n.is_i64() => n.as_i64().unwrap_or(0),
                Tree::String(s) if s.eq_ignore_ascii_case("all") => -1,
                Tree::String(s) => go_parse_int(s, 64).ok_or_else(|| {
                    invalid(path, "device count", v, "expected 'all' or a number")
                })?,
                other => return Err(invalid(path, "device count", other, "expected a number")),
            };
            Ok(Out::new(Tree::from(n), n == 0))
        }
        Ty::HealthTest => match v {
            Tree::Null => Ok(list_or_null(None)),
            Tree::String(s) => Ok(list_or_null(Some(vec!["CMD-SHELL".into(), s.clone()]))),
            Tree::Array(items) => Ok(list_or_null(Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, e)| {
                        expect_str(e, &path.index(i), "healthcheck test").map(str::to_string)
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ))),
            other => Err(invalid(
                path,
                "healthcheck test",
                other,
                "expected a string or a list",
            )),
        },
        Ty::Ssh => match v {
            Tree::Null => Ok(list_or_null(None)),
            // The list form is what compose prints; it reads back as ids without paths.
            Tree::Array(items) => Ok(list_or_null(Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, e)| expect_str(e, &path.index(i), "ssh key").map(str::to_string))
                    .collect::<Result<Vec<_>, _>>()?,
            ))),
            Tree::Object(m) => {
                let mut items = Vec::new();
                for (id, p) in m {
                    if !p.is_null() {
                        // compose-go prints `"id": path` here, which is not valid JSON.
                        return Err(invalid(
                            &path.key(id),
                            "ssh key",
                            p,
                            "compose cannot print an ssh key path as JSON",
                        ));
                    }
                    items.push(id.clone());
                }
                Ok(list_or_null(Some(items)))
            }
            other => Err(invalid(path, "ssh config", other, "expected a mapping")),
        },
        Ty::Struct(fields) => Ok(Out::new(decode_struct(fields, v, path)?, false)),
        Ty::Ptr(inner) => {
            if v.is_null() {
                Ok(Out::new(Tree::Null, false))
            } else {
                Ok(Out::new(decode(inner, v, path)?.json, false))
            }
        }
        Ty::Map(inner) => match v {
            Tree::Null => Ok(Out::new(Tree::Null, true)),
            Tree::Object(m) => {
                let mut out = Map::new();
                for (k, e) in m {
                    out.insert(k.clone(), decode(inner, e, &path.key(k))?.json);
                }
                Ok(map_out(out))
            }
            other => Err(invalid(path, "mapping", other, "expected a mapping")),
        },
        Ty::List(inner) => match v {
            Tree::Null => Ok(Out::new(Tree::Null, true)),
            Tree::Array(items) => {
                let out = items
                    .iter()
                    .enumerate()
                    .map(|(i, e)| decode(inner, e, &path.index(i)).map(|o| o.json))
                    .collect::<Result<Vec<_>, _>>()?;
                let zero = out.is_empty();
                Ok(Out::new(Tree::Array(out), zero))
            }
            other => Err(invalid(path, "list", other, "expected a list")),
        },
    }
}

/// `types.MappingWithEquals` as an ordered map of optional values.
pub fn mapping_with_equals(
    v: &Tree,
    path: &KeyPath,
) -> Result<indexmap::IndexMap<String, Option<String>>, EmitError> {
    let mut out = indexmap::IndexMap::new();
    match v {
        Tree::Null => {}
        Tree::Object(m) => {
            for (k, e) in m {
                let val = if e.is_null() { None } else { Some(sprint(e)) };
                out.insert(k.clone(), val);
            }
        }
        Tree::Array(items) => {
            for (i, e) in items.iter().enumerate() {
                let s = sprint(e);
                let (k, val) = match s.split_once('=') {
                    Some((k, val)) => (k, Some(val.to_string())),
                    None => (s.as_str(), None),
                };
                if k.ends_with(char::is_whitespace) {
                    return Err(EmitError::Invalid {
                        path: path.index(i),
                        kind: "environment entry",
                        reason: "variable name has a trailing space".into(),
                    });
                }
                out.insert(k.to_string(), val);
            }
        }
        other => {
            return Err(invalid(
                path,
                "mapping",
                other,
                "expected a mapping or a list",
            ));
        }
    }
    Ok(out)
}

fn decode_mapping_with_equals(v: &Tree, path: &KeyPath) -> Result<Out, EmitError> {
    if v.is_null() {
        return Ok(Out::new(Tree::Null, true));
    }
    let m = mapping_with_equals(v, path)?;
    Ok(map_out(
        m.into_iter()
            .map(|(k, val)| (k, val.map(Tree::String).unwrap_or(Tree::Null)))
            .collect(),
    ))
}

fn decode_hosts(v: &Tree, path: &KeyPath) -> Result<Out, EmitError> {
    let mut hosts: indexmap::IndexMap<String, Vec<String>> = indexmap::IndexMap::new();
    match v {
        Tree::Null => return Ok(list_or_null(None)),
        Tree::Object(m) => {
            for (host, e) in m {
                let ips = match e {
                    Tree::Null => vec![String::new()],
                    Tree::String(s) => vec![s.clone()],
                    Tree::Array(items) => items.iter().map(sprint).collect(),
                    other => {
                        return Err(invalid(
                            &path.key(host),
                            "extra host",
                            other,
                            "expected an address",
                        ));
                    }
                };
                hosts.insert(host.clone(), ips);
            }
        }
        Tree::Array(items) => {
            for (i, e) in items.iter().enumerate() {
                let s = sprint(e);
                let cut = s.split_once('=').or_else(|| s.split_once(':'));
                let Some((host, ip)) = cut else {
                    return Err(invalid(
                        &path.index(i),
                        "extra host",
                        e,
                        "missing IP address",
                    ));
                };
                hosts
                    .entry(host.to_string())
                    .or_default()
                    .extend(ip.split(',').map(str::to_string));
            }
        }
        other => {
            return Err(invalid(
                path,
                "extra hosts",
                other,
                "expected a mapping or a list",
            ));
        }
    }
    let mut list = Vec::new();
    for (host, ips) in hosts {
        if host.is_empty() || host.contains([':', '=']) {
            return Err(EmitError::Invalid {
                path: path.clone(),
                kind: "extra host",
                reason: "bad host name".into(),
            });
        }
        for ip in ips {
            let ip = match ip.strip_prefix('[').and_then(|i| i.strip_suffix(']')) {
                Some(inner) if !inner.is_empty() => inner.to_string(),
                _ => ip,
            };
            list.push(format!("{host}={ip}"));
        }
    }
    list.sort();
    Ok(list_or_null(Some(list)))
}

fn decode_ulimit(v: &Tree, path: &KeyPath) -> Result<Out, EmitError> {
    let as_int = |e: &Tree, p: &KeyPath| -> Result<i64, EmitError> {
        match e {
            Tree::Number(n) if n.is_i64() => Ok(n.as_i64().unwrap_or(0)),
            other => Err(invalid(p, "ulimit", other, "expected an integer")),
        }
    };
    match v {
        Tree::Null => Ok(Out::new(Tree::Null, false)),
        Tree::Number(_) => {
            let single = as_int(v, path)?;
            if single != 0 {
                Ok(Out::new(Tree::from(single), false))
            } else {
                Ok(Out::new(Tree::Object(Map::new()), false))
            }
        }
        Tree::Object(m) => {
            let mut out = Map::new();
            for key in ["soft", "hard"] {
                if let Some(e) = m.get(key) {
                    let n = as_int(e, &path.key(key))?;
                    if n != 0 {
                        out.insert(key.to_string(), Tree::from(n));
                    }
                }
            }
            Ok(Out::new(Tree::Object(out), false))
        }
        other => Err(invalid(
            path,
            "ulimit",
            other,
            "expected a number or a mapping",
        )),
    }
}
