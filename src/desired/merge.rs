//! Merging compose files by the Compose rules: deep mappings, replaced commands, sequences merged by key, `!reset`/`!override`, and `extends` merging.
//!
//! This mirrors the `override` package of compose-go **as built into Compose v5.6.1**
//! (compose-go v2.16.1), which differs from the older copy in `/work/ref/compose-go`. Every
//! difference below was confirmed against `docker-compose -f a.yaml -f b.yaml config`:
//!
//! * Plain sequences (ports, cap_add, gpus, …) append only the overlay entries that are not
//!   deep-equal to an entry already there (`[X] + [X]` gives `[X]`; duplicates inside the
//!   base stay). Identity is strict: `"80"` and `80` are different entries.
//! * `ulimits.<name>` merges deeply when both sides are mappings (`{soft: 1, hard: 2}` +
//!   `{soft: 3}` gives `{soft: 3, hard: 2}`), otherwise the later value replaces.
//! * `logging` must be a mapping on both sides, else merging is an error (the old code
//!   panicked). A null `logging:` in a later file is an error too.
//! * The service rules also apply under the top-level `jobs` section, and
//!   `secrets.*.labels`/`configs.*.labels` merge like the other label lists.
//! * KEY=VALUE lists (environment, labels, annotations, sysctls, build args …) are merged
//!   by key: a later entry replaces the earlier one of the same key in its position.
//!
//! Behaviour worth knowing (all compose's own, reproduced on purpose):
//!
//! * Mapping forms merged into a sequence are turned into sorted `KEY=VALUE` strings with Go's
//!   `%v` formatting: `NUM: 1.0` becomes `NUM=1` and `BIG: 1000000.0` becomes `BIG=1e+06`.
//! * `depends_on: [db]` in a later file resets an earlier `condition: service_healthy` on `db`
//!   to `service_started` (the short form is expanded with defaults before merging).
//! * `networks.*.ipam.config` entries are matched by subnet; base entries whose subnet no
//!   later entry names are *dropped*, and an empty base list yields null (which then fails
//!   validation as "must be a array").
//! * `!reset`/`!override` on a sequence *item* does nothing to the earlier files: compose
//!   records such paths with a bare index (`ports.0`) but walks the tree with bracketed ones
//!   (`ports.[0]`), so they never match. A mapping key literally named `*` under `!reset`
//!   acts as a wildcard and removes every sibling key.
//! * Unicity (duplicate removal by key) only applies under `services`, not `jobs`.
//! * `extra_hosts` are compared as written: `a.com:1.2.3.4` and `a.com=1.2.3.4` both survive a
//!   merge and compose prints the same host twice once both are canonical.
//! * A null in a later file keeps the earlier value, except under the replacing keys
//!   (`command`, `entrypoint`, `healthcheck.test`) and `ulimits.<name>`, where it becomes null.

use std::collections::HashMap;

use super::tree::{KeyPath, Map, Seg, Tree, type_name};

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("cannot override {path}: {reason}")]
    Conflict { path: KeyPath, reason: String },
    #[error("{path}: {reason}")]
    Entry { path: KeyPath, reason: String },
}

fn conflict(path: &KeyPath, reason: impl Into<String>) -> MergeError {
    MergeError::Conflict {
        path: path.clone(),
        reason: reason.into(),
    }
}

fn entry_error(path: &KeyPath, reason: impl Into<String>) -> MergeError {
    MergeError::Entry {
        path: path.clone(),
        reason: reason.into(),
    }
}

/// Merges `overlay` (a later file) onto `base` (the files before it), both raw trees.
pub fn merge(base: Tree, overlay: Tree) -> Result<Tree, MergeError> {
    merge_at(base, overlay, &KeyPath::root())
}

/// Merges a service onto the service it `extends` (compose-go `override.ExtendService`).
///
/// Errors name the service `x`, as compose does; [`extend_named_service`] names the real one.
pub fn extend_service(base: Tree, service: Tree) -> Result<Tree, MergeError> {
    extend_named_service("x", base, service)
}

/// [`extend_service`] for the service called `name`, so that errors carry its path.
pub fn extend_named_service(name: &str, base: Tree, service: Tree) -> Result<Tree, MergeError> {
    let path = KeyPath::root().key("services").key(name);
    let merged = merge_at(base, service, &path)?;
    if merged.is_object() {
        Ok(merged)
    } else {
        Err(conflict(
            &path,
            format!(
                "an extended service must be a mapping, found a {}",
                type_name(&merged)
            ),
        ))
    }
}

/// Removes every path a later file marked `!reset` or `!override` from the accumulated tree.
///
/// Paths are compared the way compose compares them, as strings: a recorded
/// [`Seg::Index`] matches a mapping key spelled as that number but never a sequence item,
/// and a recorded key `*` matches anything. Sequence items are never removed.
pub fn apply_reset_paths(tree: &mut Tree, paths: &[KeyPath]) {
    if paths.is_empty() {
        return;
    }
    let mut here = Vec::new();
    reset_walk(tree, &mut here, paths);
}

fn reset_walk(node: &mut Tree, here: &mut Vec<Seg>, paths: &[KeyPath]) {
    match node {
        Tree::Object(map) => {
            map.retain(|k, _| {
                here.push(Seg::Key(k.as_str().into()));
                let hit = paths.iter().any(|p| reset_matches(p, here));
                here.pop();
                !hit
            });
            for (k, v) in map.iter_mut() {
                here.push(Seg::Key(k.as_str().into()));
                reset_walk(v, here, paths);
                here.pop();
            }
        }
        Tree::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                here.push(Seg::Index(i));
                let hit = paths.iter().any(|p| reset_matches(p, here));
                if !hit {
                    reset_walk(v, here, paths);
                }
                here.pop();
            }
        }
        _ => {}
    }
}

/// compose-go `Path.Matches` between a recorded reset path and a place in the tree.
fn reset_matches(pattern: &KeyPath, here: &[Seg]) -> bool {
    let pat = pattern.segments();
    pat.len() == here.len()
        && pat.iter().zip(here).all(|(p, h)| match (p, h) {
            (Seg::Key(k), _) if &**k == "*" => true,
            (Seg::Key(p), Seg::Key(h)) => p == h,
            // compose walks sequence items as `[i]`; a recorded key can only equal that text
            (Seg::Key(p), Seg::Index(i)) => **p == format!("[{i}]"),
            // compose records sequence items as a bare `i`
            (Seg::Index(i), Seg::Key(h)) => **h == i.to_string(),
            (Seg::Index(_), Seg::Index(_)) => false,
        })
}

/// Removes duplicates that merging sequences can leave (ports, volumes, secrets … by key).
///
/// Of entries sharing a key, the last one wins and takes the place of the first.
pub fn enforce_unicity(tree: &mut Tree) -> Result<(), MergeError> {
    unicity_at(tree, &KeyPath::root())
}

fn unicity_at(node: &mut Tree, path: &KeyPath) -> Result<(), MergeError> {
    match node {
        Tree::Object(map) => {
            for (k, v) in map.iter_mut() {
                unicity_at(v, &path.key(k.as_str()))?;
            }
            Ok(())
        }
        Tree::Array(items) => {
            if let Some(indexer) = unique_indexer(path) {
                let taken = std::mem::take(items);
                *items = unique_entries(taken, indexer, path)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Path patterns

/// Whether `segs` match a dotted pattern where `*` stands for any one segment.
fn segs_match(segs: &[Seg], pattern: &str) -> bool {
    let mut n = 0;
    for (i, p) in pattern.split('.').enumerate() {
        n = i + 1;
        let Some(seg) = segs.get(i) else {
            return false;
        };
        let ok = p == "*"
            || match seg {
                Seg::Key(k) => &**k == p,
                Seg::Index(_) => false,
            };
        if !ok {
            return false;
        }
    }
    n == segs.len()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// The later value replaces the earlier one, even when it is null.
    Replace,
    /// Both sides as `KEY=VALUE` sequences, merged by key.
    KeyValues,
    /// Both sides as sequences, later entries appended unless already present.
    Sequence,
    /// `build`: a string is `{context: …}`; then mappings merge.
    Build,
    /// `depends_on`: short forms become `{condition: service_started, required: true}`.
    DependsOn,
    /// `networks`/`models`: short forms become `{name: null}`.
    AsMapping,
    /// `logging`: options merge only when the drivers agree (or one is unset).
    Logging,
    /// `ulimits.<name>`: mappings merge, anything else replaces.
    Ulimit,
    /// `networks.*.ipam.config`: entries matched by subnet.
    IpamConfig,
}

const TOP_RULES: &[(&str, Rule)] = &[
    ("networks.*.ipam.config", Rule::IpamConfig),
    ("networks.*.labels", Rule::KeyValues),
    ("volumes.*.labels", Rule::KeyValues),
    ("secrets.*.labels", Rule::KeyValues),
    ("configs.*.labels", Rule::KeyValues),
    ("services.*.deploy.labels", Rule::KeyValues),
];

/// Rules under `services.<name>.` and `jobs.<name>.`.
const WORKLOAD_RULES: &[(&str, Rule)] = &[
    ("annotations", Rule::KeyValues),
    ("build", Rule::Build),
    ("build.args", Rule::KeyValues),
    ("build.additional_contexts", Rule::KeyValues),
    ("build.extra_hosts", Rule::Sequence),
    ("build.labels", Rule::KeyValues),
    ("command", Rule::Replace),
    ("depends_on", Rule::DependsOn),
    ("dns", Rule::Sequence),
    ("dns_opt", Rule::Sequence),
    ("dns_search", Rule::Sequence),
    ("entrypoint", Rule::Replace),
    ("env_file", Rule::Sequence),
    ("label_file", Rule::Sequence),
    ("environment", Rule::KeyValues),
    ("extra_hosts", Rule::Sequence),
    ("healthcheck.test", Rule::Replace),
    ("labels", Rule::KeyValues),
    ("volumes.*.volume.labels", Rule::KeyValues),
    ("logging", Rule::Logging),
    ("models", Rule::AsMapping),
    ("networks", Rule::AsMapping),
    ("sysctls", Rule::KeyValues),
    ("tmpfs", Rule::Sequence),
    ("ulimits.*", Rule::Ulimit),
];

fn merge_rule(path: &KeyPath) -> Option<Rule> {
    let segs = path.segments();
    if let Some((_, rule)) = TOP_RULES.iter().find(|(p, _)| segs_match(segs, p)) {
        return Some(*rule);
    }
    let workload =
        matches!(segs.first(), Some(Seg::Key(k)) if &**k == "services" || &**k == "jobs");
    if !workload || segs.len() < 3 {
        return None;
    }
    let rest = segs.get(2..)?;
    WORKLOAD_RULES
        .iter()
        .find(|(p, _)| segs_match(rest, p))
        .map(|(_, r)| *r)
}

#[derive(Clone, Copy, Debug)]
enum Indexer {
    KeyValue,
    Volume,
    Device,
    Expose,
    Mount(&'static str),
    Port,
    EnvFile,
}

const UNIQUE_TOP: &[(&str, Indexer)] = &[
    ("networks.*.labels", Indexer::KeyValue),
    ("networks.*.ipam.options", Indexer::KeyValue),
];

/// Unicity rules under `services.<name>.` (compose applies none under `jobs`).
const UNIQUE_SERVICE: &[(&str, Indexer)] = &[
    ("annotations", Indexer::KeyValue),
    ("build.args", Indexer::KeyValue),
    ("build.additional_contexts", Indexer::KeyValue),
    ("build.platform", Indexer::KeyValue),
    ("build.tags", Indexer::KeyValue),
    ("build.labels", Indexer::KeyValue),
    ("cap_add", Indexer::KeyValue),
    ("cap_drop", Indexer::KeyValue),
    ("devices", Indexer::Device),
    ("configs", Indexer::Mount("")),
    ("deploy.labels", Indexer::KeyValue),
    ("dns", Indexer::KeyValue),
    ("dns_opt", Indexer::KeyValue),
    ("dns_search", Indexer::KeyValue),
    ("environment", Indexer::KeyValue),
    ("env_file", Indexer::EnvFile),
    ("expose", Indexer::Expose),
    ("labels", Indexer::KeyValue),
    ("links", Indexer::KeyValue),
    ("networks.*.aliases", Indexer::KeyValue),
    ("networks.*.link_local_ips", Indexer::KeyValue),
    ("ports", Indexer::Port),
    ("profiles", Indexer::KeyValue),
    ("secrets", Indexer::Mount("/run/secrets")),
    ("sysctls", Indexer::KeyValue),
    ("tmpfs", Indexer::KeyValue),
    ("volumes", Indexer::Volume),
];

fn unique_indexer(path: &KeyPath) -> Option<Indexer> {
    let segs = path.segments();
    if let Some((_, ix)) = UNIQUE_TOP.iter().find(|(p, _)| segs_match(segs, p)) {
        return Some(*ix);
    }
    if !matches!(segs.first(), Some(Seg::Key(k)) if &**k == "services") || segs.len() < 3 {
        return None;
    }
    let rest = segs.get(2..)?;
    UNIQUE_SERVICE
        .iter()
        .find(|(p, _)| segs_match(rest, p))
        .map(|(_, ix)| *ix)
}

// ---------------------------------------------------------------------------------------------
// Merging

/// Merges two values found at `path` by the rules that apply there (compose-go `MergeYaml`).
pub fn merge_at(base: Tree, overlay: Tree, path: &KeyPath) -> Result<Tree, MergeError> {
    if let Some(rule) = merge_rule(path) {
        return merge_by_rule(rule, base, overlay, path);
    }
    match (base, overlay) {
        (base, Tree::Null) => Ok(base),
        (Tree::Object(b), Tree::Object(o)) => Ok(Tree::Object(merge_maps(b, o, path)?)),
        (Tree::Object(_), o) => Err(conflict(
            path,
            format!("a mapping cannot be replaced by a {}", type_name(&o)),
        )),
        (Tree::Array(b), Tree::Array(o)) => Ok(Tree::Array(append_distinct(b, o))),
        (Tree::Array(_), o) => Err(conflict(
            path,
            format!("a sequence cannot be replaced by a {}", type_name(&o)),
        )),
        (_, o) => Ok(o),
    }
}

/// Later keys are merged into earlier ones in place; new keys go last.
fn merge_maps(mut base: Map, overlay: Map, path: &KeyPath) -> Result<Map, MergeError> {
    for (k, v) in overlay {
        match base.get_mut(&k) {
            Some(slot) => {
                let earlier = slot.take();
                *slot = merge_at(earlier, v, &path.key(k.as_str()))?;
            }
            None => {
                base.insert(k, v);
            }
        }
    }
    Ok(base)
}

/// Appends the entries of `overlay` not deep-equal to one already in the result.
fn append_distinct(mut base: Vec<Tree>, overlay: Vec<Tree>) -> Vec<Tree> {
    for v in overlay {
        if !base.contains(&v) {
            base.push(v);
        }
    }
    base
}

fn merge_by_rule(
    rule: Rule,
    base: Tree,
    overlay: Tree,
    path: &KeyPath,
) -> Result<Tree, MergeError> {
    match rule {
        Rule::Replace => Ok(overlay),
        Rule::KeyValues => {
            let mut all = to_sequence(base).unwrap_or_default();
            all.extend(to_sequence(overlay).unwrap_or_default());
            Ok(Tree::Array(unique_entries(all, Indexer::KeyValue, path)?))
        }
        Rule::Sequence => {
            // compose keeps a nil sequence nil: nothing on either side stays null
            match (to_sequence(base), to_sequence(overlay)) {
                (Some(b), o) => Ok(Tree::Array(append_distinct(b, o.unwrap_or_default()))),
                (None, Some(o)) if !o.is_empty() => Ok(Tree::Array(append_distinct(Vec::new(), o))),
                (None, _) => Ok(Tree::Null),
            }
        }
        Rule::Build => match (to_build(base), to_build(overlay)) {
            (b, Some(o)) => Ok(Tree::Object(merge_maps(b.unwrap_or_default(), o, path)?)),
            (Some(b), None) => Ok(Tree::Object(b)),
            (None, None) => Ok(Tree::Object(Map::new())),
        },
        Rule::DependsOn => {
            let defaults = depends_on_defaults();
            let b = as_mapping(base, Some(&defaults), path)?;
            let o = as_mapping(overlay, Some(&defaults), path)?;
            Ok(Tree::Object(merge_maps(b, o, path)?))
        }
        Rule::AsMapping => {
            let b = as_mapping(base, None, path)?;
            let o = as_mapping(overlay, None, path)?;
            Ok(Tree::Object(merge_maps(b, o, path)?))
        }
        Rule::Logging => merge_logging(base, overlay, path),
        Rule::Ulimit => match (base, overlay) {
            (Tree::Object(b), Tree::Object(o)) => Ok(Tree::Object(merge_maps(b, o, path)?)),
            (_, o) => Ok(o),
        },
        Rule::IpamConfig => merge_ipam_config(base, overlay, path),
    }
}

fn depends_on_defaults() -> Map {
    let mut m = Map::new();
    m.insert("condition".into(), Tree::String("service_started".into()));
    m.insert("required".into(), Tree::Bool(true));
    m
}

/// compose's `convertIntoSequence`: a mapping becomes sorted `KEY=VALUE` strings (`KEY` alone
/// for null, one entry per item for a sequence value), a string a one-item sequence.
/// `None` stands for Go's nil slice (an empty mapping, or a value of another type).
fn to_sequence(value: Tree) -> Option<Vec<Tree>> {
    match value {
        Tree::Object(map) => {
            let mut seq: Vec<String> = Vec::new();
            for (k, v) in map {
                match v {
                    Tree::Null => seq.push(k),
                    Tree::Array(items) => {
                        for item in &items {
                            seq.push(format!("{k}={}", go_fmt('v', item)));
                        }
                    }
                    other => seq.push(format!("{k}={}", go_fmt('v', &other))),
                }
            }
            if seq.is_empty() {
                return None;
            }
            seq.sort();
            Some(seq.into_iter().map(Tree::String).collect())
        }
        Tree::Array(items) => Some(items),
        Tree::String(s) => Some(vec![Tree::String(s)]),
        _ => None,
    }
}

fn to_build(value: Tree) -> Option<Map> {
    match value {
        Tree::String(s) => {
            let mut m = Map::new();
            m.insert("context".into(), Tree::String(s));
            Some(m)
        }
        Tree::Object(m) => Some(m),
        _ => None,
    }
}

/// compose's `convertIntoMapping` (null read as an empty mapping).
fn as_mapping(value: Tree, defaults: Option<&Map>, path: &KeyPath) -> Result<Map, MergeError> {
    let fill = || defaults.map_or(Tree::Null, |d| Tree::Object(d.clone()));
    match value {
        Tree::Null => Ok(Map::new()),
        Tree::Object(m) => Ok(m),
        Tree::String(s) => {
            let mut m = Map::new();
            m.insert(s, fill());
            Ok(m)
        }
        Tree::Array(items) => {
            let mut m = Map::new();
            for (i, item) in items.into_iter().enumerate() {
                match item {
                    Tree::String(s) => {
                        m.insert(s, fill());
                    }
                    other => {
                        return Err(conflict(
                            &path.index(i),
                            format!(
                                "a {} cannot name an entry, a string is needed",
                                type_name(&other)
                            ),
                        ));
                    }
                }
            }
            Ok(m)
        }
        other => Err(conflict(
            path,
            format!("a {} cannot be read as a mapping", type_name(&other)),
        )),
    }
}

fn merge_logging(base: Tree, overlay: Tree, path: &KeyPath) -> Result<Tree, MergeError> {
    let Tree::Object(b) = base else {
        return Err(conflict(
            path,
            format!(
                "logging must be a mapping to be merged, found a {}",
                type_name(&base)
            ),
        ));
    };
    let Tree::Object(o) = overlay else {
        return Err(conflict(
            path,
            format!(
                "logging must be a mapping to be merged, found a {}",
                type_name(&overlay)
            ),
        ));
    };
    let (later, earlier) = (o.get("driver"), b.get("driver"));
    if later == earlier || later.is_none() || earlier.is_none() {
        Ok(Tree::Object(merge_maps(b, o, path)?))
    } else {
        Ok(Tree::Object(o))
    }
}

/// An IPAM config entry as a mapping (compose's `convertIntoMapping` without defaults).
fn ipam_entry(value: Tree, path: &KeyPath) -> Result<Map, MergeError> {
    match value {
        Tree::Null => Err(conflict(path, "a null entry cannot be read as a mapping")),
        other => as_mapping(other, None, path),
    }
}

/// Go map lookup: a missing key and a null value both read as nil.
fn subnet(m: &Map) -> Option<&Tree> {
    m.get("subnet").filter(|v| !v.is_null())
}

/// compose's `mergeIPAMConfig`, including its sharing: the base entry being merged is one
/// object that may sit in several result slots, and every slot sees its later changes.
fn merge_ipam_config(base: Tree, overlay: Tree, path: &KeyPath) -> Result<Tree, MergeError> {
    let Tree::Array(configs) = base else {
        return Err(conflict(
            path,
            format!("expected a sequence, found a {}", type_name(&base)),
        ));
    };
    let Tree::Array(overrides) = overlay else {
        return Err(conflict(
            path,
            format!("expected a sequence, found a {}", type_name(&overlay)),
        ));
    };
    let mut out: Vec<Map> = Vec::new();
    for original in configs {
        let mut right = ipam_entry(original, path)?;
        let mut right_slots: Vec<usize> = Vec::new();
        for over in &overrides {
            let left = ipam_entry(over.clone(), path)?;
            if subnet(&left) != subnet(&right) && !out.iter().any(|a| subnet(a) == subnet(&left)) {
                out.push(left);
                continue;
            }
            right = merge_maps(right, left, path)?;
            for &slot in &right_slots {
                if let Some(s) = out.get_mut(slot) {
                    *s = right.clone();
                }
            }
            match out.iter().position(|a| subnet(a) == subnet(&right)) {
                Some(i) => {
                    if let Some(s) = out.get_mut(i) {
                        *s = right.clone();
                    }
                    if !right_slots.contains(&i) {
                        right_slots.push(i);
                    }
                }
                None => {
                    out.push(right.clone());
                    right_slots.push(out.len() - 1);
                }
            }
        }
    }
    if out.is_empty() {
        Ok(Tree::Null)
    } else {
        Ok(Tree::Array(out.into_iter().map(Tree::Object).collect()))
    }
}

// ---------------------------------------------------------------------------------------------
// Unicity

/// Keeps one entry per key; a later entry replaces the earlier one in its position.
fn unique_entries(
    seq: Vec<Tree>,
    indexer: Indexer,
    path: &KeyPath,
) -> Result<Vec<Tree>, MergeError> {
    let mut out: Vec<Tree> = Vec::with_capacity(seq.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, entry) in seq.into_iter().enumerate() {
        let key = index_key(indexer, &entry, &path.index(i))?;
        match seen.get(&key).and_then(|&j| out.get_mut(j)) {
            Some(slot) => *slot = entry,
            None => {
                seen.insert(key, out.len());
                out.push(entry);
            }
        }
    }
    Ok(out)
}

fn index_key(indexer: Indexer, entry: &Tree, path: &KeyPath) -> Result<String, MergeError> {
    match indexer {
        Indexer::KeyValue => match entry {
            Tree::String(s) => Ok(s.split_once('=').map_or(s.as_str(), |(k, _)| k).to_string()),
            other => Err(entry_error(
                path,
                format!("expected a string, found a {}", type_name(other)),
            )),
        },
        Indexer::Volume => match entry {
            Tree::Object(m) => match m.get("target") {
                Some(Tree::String(t)) => Ok(t.clone()),
                _ => Err(entry_error(
                    path,
                    "a service volume needs a string mount target",
                )),
            },
            Tree::String(spec) => volume_target(spec)
                .map_err(|reason| entry_error(path, format!("invalid volume: {reason}"))),
            _ => Ok(String::new()),
        },
        Indexer::Device => match entry {
            Tree::Object(m) => match m.get("target") {
                Some(Tree::String(t)) => Ok(t.clone()),
                _ => Err(entry_error(
                    path,
                    "a service device needs a string mount target",
                )),
            },
            Tree::String(s) => {
                let mut parts = s.split(':');
                let first = parts.next().unwrap_or_default();
                Ok(parts.next().unwrap_or(first).to_string())
            }
            _ => Ok(String::new()),
        },
        Indexer::Expose => match entry {
            Tree::String(s) => Ok(s.clone()),
            Tree::Number(n) if n.is_i64() => Ok(n.to_string()),
            other => Err(entry_error(
                path,
                format!(
                    "an exposed port must be a string or an integer, found a {}",
                    type_name(other)
                ),
            )),
        },
        Indexer::Mount(default_dir) => match entry {
            Tree::String(s) => Ok(format!("{default_dir}/{s}")),
            Tree::Object(m) => match m.get("target") {
                Some(Tree::String(t)) => Ok(t.clone()),
                Some(other) => Err(entry_error(
                    path,
                    format!("target must be a string, found a {}", type_name(other)),
                )),
                None => Ok(format!(
                    "{default_dir}/{}",
                    go_fmt('s', m.get("source").unwrap_or(&Tree::Null))
                )),
            },
            other => Err(entry_error(
                path,
                format!(
                    "expected a string or a mapping, found a {}",
                    type_name(other)
                ),
            )),
        },
        Indexer::Port => match entry {
            Tree::Number(n) if n.is_i64() => Ok(n.to_string()),
            Tree::String(s) => Ok(s.clone()),
            Tree::Object(m) => {
                let Some(target) = m.get("target") else {
                    return Err(entry_error(path, "a service port needs a target port"));
                };
                let field = |name: &str, default: &str| {
                    m.get(name).map_or(default.to_string(), |v| go_fmt('s', v))
                };
                Ok(format!(
                    "{}:{}:{}/{}",
                    field("host_ip", "0.0.0.0"),
                    m.get("published")
                        .map_or_else(|| go_fmt('s', &Tree::Null), |v| go_fmt('s', v)),
                    go_fmt('d', target),
                    field("protocol", "tcp"),
                ))
            }
            _ => Ok(String::new()),
        },
        Indexer::EnvFile => match entry {
            Tree::String(s) => Ok(s.clone()),
            Tree::Object(m) => match m.get("path") {
                Some(Tree::String(p)) => Ok(p.clone()),
                Some(other) => Err(entry_error(
                    path,
                    format!("path must be a string, found a {}", type_name(other)),
                )),
                None => Err(entry_error(path, "an env_file entry needs a path")),
            },
            _ => Ok(String::new()),
        },
    }
}

/// The container path of a short volume spec (the canonical stage's parser, compose-go's
/// `format.ParseVolume`): merging matches volumes by it.
fn volume_target(spec: &str) -> Result<String, String> {
    super::canonical::short_volume_target(spec)
}

// ---------------------------------------------------------------------------------------------
// Go formatting, as compose's `fmt.Sprintf` renders merged values and unicity keys

/// Renders `v` as Go's `fmt` does with verb `%v`, `%s` or `%d` for the value decoded from YAML
/// (`int`, `float64`, `bool`, `string`, `nil`, `[]any`, `map[string]any`), including the
/// `%!s(int=5)` text of a mismatched verb, so that keys compare equal exactly when compose's do.
fn go_fmt(verb: char, v: &Tree) -> String {
    match v {
        Tree::Null => {
            if verb == 'v' {
                "<nil>".into()
            } else {
                format!("%!{verb}(<nil>)")
            }
        }
        Tree::Bool(b) => {
            if verb == 'v' {
                b.to_string()
            } else {
                format!("%!{verb}(bool={b})")
            }
        }
        Tree::Number(n) => {
            if let Some(i) = n.as_i64() {
                if verb == 's' {
                    format!("%!s(int={i})")
                } else {
                    i.to_string()
                }
            } else if let Some(u) = n.as_u64() {
                if verb == 's' {
                    format!("%!s(uint64={u})")
                } else {
                    u.to_string()
                }
            } else {
                let f = go_float(n.as_f64().unwrap_or(f64::NAN));
                if verb == 'v' {
                    f
                } else {
                    format!("%!{verb}(float64={f})")
                }
            }
        }
        Tree::String(s) => {
            if verb == 'd' {
                format!("%!d(string={s})")
            } else {
                s.clone()
            }
        }
        Tree::Array(items) => {
            let inner: Vec<String> = items.iter().map(|e| go_fmt(verb, e)).collect();
            format!("[{}]", inner.join(" "))
        }
        Tree::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .into_iter()
                .map(|k| {
                    let key = go_fmt(verb, &Tree::String(k.clone()));
                    let val = map
                        .get(k.as_str())
                        .map_or_else(String::new, |x| go_fmt(verb, x));
                    format!("{key}:{val}")
                })
                .collect();
            format!("map[{}]", inner.join(" "))
        }
    }
}

/// Go's `%v` of a float64: shortest digits, exponent form below 1e-4 and from 1e+06 on.
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sign = if f < 0.0 { "-" } else { "" };
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        return format!("{sign}{}", f.abs());
    }
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let (head, tail) = digits.split_at(digits.chars().next().map_or(0, char::len_utf8));
    let mut out = format!("{sign}{head}");
    if !tail.is_empty() {
        out.push('.');
        out.push_str(tail);
    }
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    let abs = exp.unsigned_abs();
    if abs < 10 {
        out.push('0');
    }
    out.push_str(&abs.to_string());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn merged(base: Tree, overlay: Tree) -> Tree {
        match merge(base, overlay) {
            Ok(t) => t,
            Err(e) => panic!("merge failed: {e}"),
        }
    }

    /// Merges two `services.web` bodies and returns the merged `services.web`.
    fn merged_web(base: Tree, overlay: Tree) -> Tree {
        let out = merged(
            json!({"services": {"web": base}}),
            json!({"services": {"web": overlay}}),
        );
        out["services"]["web"].clone()
    }

    fn unique(tree: Tree) -> Tree {
        let mut t = tree;
        if let Err(e) = enforce_unicity(&mut t) {
            panic!("unicity failed: {e}");
        }
        t
    }

    fn unique_web(body: Tree) -> Tree {
        unique(json!({"services": {"web": body}}))["services"]["web"].clone()
    }

    #[test]
    fn the_generic_rules_merge_mappings_replace_scalars_and_append_new_sequence_entries() {
        let cases = [
            (
                "scalar replaced",
                json!({"image": "a", "scale": 1}),
                json!({"image": "b"}),
                json!({"image": "b", "scale": 1}),
            ),
            (
                "new key appended",
                json!({"image": "a"}),
                json!({"user": "x"}),
                json!({"image": "a", "user": "x"}),
            ),
            (
                "deep mapping",
                json!({"deploy": {"replicas": 1, "mode": "m"}}),
                json!({"deploy": {"replicas": 2}}),
                json!({"deploy": {"replicas": 2, "mode": "m"}}),
            ),
            (
                "sequence appended",
                json!({"cap_add": ["A"]}),
                json!({"cap_add": ["B"]}),
                json!({"cap_add": ["A", "B"]}),
            ),
            (
                "identical entries once",
                json!({"cap_add": ["A"]}),
                json!({"cap_add": ["A", "B", "B"]}),
                json!({"cap_add": ["A", "B"]}),
            ),
            (
                "base duplicates kept",
                json!({"cap_add": ["A", "A"]}),
                json!({"cap_add": ["A"]}),
                json!({"cap_add": ["A", "A"]}),
            ),
            (
                "deep equality",
                json!({"gpus": [{"driver": "x"}]}),
                json!({"gpus": [{"driver": "x"}, {"driver": "y"}]}),
                json!({"gpus": [{"driver": "x"}, {"driver": "y"}]}),
            ),
            (
                "string and number differ",
                json!({"ports": ["80"]}),
                json!({"ports": [80]}),
                json!({"ports": ["80", 80]}),
            ),
            (
                "null keeps the base",
                json!({"image": "a"}),
                json!({"image": null}),
                json!({"image": "a"}),
            ),
            (
                "scalar replaced by mapping",
                json!({"x-a": 1}),
                json!({"x-a": {"b": 2}}),
                json!({"x-a": {"b": 2}}),
            ),
            (
                "null base replaced",
                json!({"deploy": null}),
                json!({"deploy": {"replicas": 2}}),
                json!({"deploy": {"replicas": 2}}),
            ),
        ];
        for (name, base, overlay, want) in cases {
            assert_eq!(merged_web(base, overlay), want, "{name}");
        }
    }

    #[test]
    fn a_mapping_or_sequence_replaced_by_another_type_is_a_conflict_naming_the_path() {
        let cases = [
            (
                json!({"deploy": {"replicas": 1}}),
                json!({"deploy": ["a"]}),
                "services.web.deploy",
            ),
            (
                json!({"cap_add": ["A"]}),
                json!({"cap_add": "A"}),
                "services.web.cap_add",
            ),
        ];
        for (base, overlay, path) in cases {
            let err = merge(
                json!({"services": {"web": base}}),
                json!({"services": {"web": overlay}}),
            );
            match err {
                Err(MergeError::Conflict { path: p, .. }) => assert_eq!(p.to_string(), path),
                other => panic!("expected a conflict at {path}, got {other:?}"),
            }
        }
    }

    #[test]
    fn command_entrypoint_and_healthcheck_test_are_replaced_even_by_null() {
        let cases = [
            (
                json!({"command": ["a", "b"]}),
                json!({"command": "c"}),
                json!({"command": "c"}),
            ),
            (
                json!({"command": ["a"]}),
                json!({"command": null}),
                json!({"command": null}),
            ),
            (
                json!({"entrypoint": ["a"]}),
                json!({"entrypoint": ["b"]}),
                json!({"entrypoint": ["b"]}),
            ),
            (
                json!({"healthcheck": {"test": ["CMD", "a"], "interval": "1s"}}),
                json!({"healthcheck": {"test": "b"}}),
                json!({"healthcheck": {"test": "b", "interval": "1s"}}),
            ),
        ];
        for (base, overlay, want) in cases {
            assert_eq!(merged_web(base, overlay), want);
        }
    }

    #[test]
    fn key_value_lists_merge_by_key_in_either_form() {
        let cases = [
            (
                "lists",
                json!({"environment": ["FOO=BAR"]}),
                json!({"environment": ["QIX=ZOT", "EMPTY=", "NIL"]}),
                json!({"environment": ["FOO=BAR", "QIX=ZOT", "EMPTY=", "NIL"]}),
            ),
            (
                "mappings sorted",
                json!({"environment": {"FOO": "BAR"}}),
                json!({"environment": {"QIX": "ZOT", "NIL": null, "EMPTY": ""}}),
                json!({"environment": ["FOO=BAR", "EMPTY=", "NIL", "QIX=ZOT"]}),
            ),
            (
                "mixed",
                json!({"environment": {"FOO": "BAR"}}),
                json!({"environment": ["QIX=ZOT"]}),
                json!({"environment": ["FOO=BAR", "QIX=ZOT"]}),
            ),
            (
                "later key wins in place",
                json!({"labels": ["a=1", "b=2"]}),
                json!({"labels": {"a": "3", "c": null}}),
                json!({"labels": ["a=3", "b=2", "c"]}),
            ),
            (
                "numbers as go prints them",
                json!({"environment": {"A": 1}}),
                json!({"environment": {"N": 1.0, "B": 1000000.0, "S": 0.00001, "T": true}}),
                json!({"environment": ["A=1", "B=1e+06", "N=1", "S=1e-05", "T=true"]}),
            ),
            (
                "null side ignored",
                json!({"sysctls": {"a": 1}}),
                json!({"sysctls": null}),
                json!({"sysctls": ["a=1"]}),
            ),
            (
                "annotations",
                json!({"annotations": {"x": "y"}}),
                json!({"annotations": ["x=z"]}),
                json!({"annotations": ["x=z"]}),
            ),
            (
                "deploy labels",
                json!({"deploy": {"labels": {"a": "1"}}}),
                json!({"deploy": {"labels": ["a=2"]}}),
                json!({"deploy": {"labels": ["a=2"]}}),
            ),
            (
                "build args",
                json!({"build": {"args": {"A": 1}}}),
                json!({"build": {"args": {"A": 3}}}),
                json!({"build": {"args": ["A=3"]}}),
            ),
        ];
        for (name, base, overlay, want) in cases {
            assert_eq!(merged_web(base, overlay), want, "{name}");
        }
    }

    #[test]
    fn top_level_labels_merge_by_key_for_networks_volumes_secrets_and_configs() {
        for section in ["networks", "volumes", "secrets", "configs"] {
            let out = merged(
                json!({section: {"x": {"labels": {"a": "1", "b": "1"}}}}),
                json!({section: {"x": {"labels": ["b=2", "c=3"]}}}),
            );
            assert_eq!(
                out[section]["x"]["labels"],
                json!(["a=1", "b=2", "c=3"]),
                "{section}"
            );
        }
    }

    #[test]
    fn sequence_rules_accept_strings_and_mappings_and_drop_repeats() {
        let cases = [
            (
                "dns",
                json!({"dns": "8.8.8.8"}),
                json!({"dns": ["1.1.1.1", "8.8.8.8"]}),
                json!({"dns": ["8.8.8.8", "1.1.1.1"]}),
            ),
            (
                "env_file strings",
                json!({"env_file": "a.env"}),
                json!({"env_file": "b.env"}),
                json!({"env_file": ["a.env", "b.env"]}),
            ),
            (
                "tmpfs",
                json!({"tmpfs": ["/bar", "/foo"]}),
                json!({"tmpfs": "/foo"}),
                json!({"tmpfs": ["/bar", "/foo"]}),
            ),
            (
                "extra_hosts mapping with a list",
                json!({"extra_hosts": {"example.com": "1.2.3.4"}}),
                json!({"extra_hosts": {"localhost": "127.0.0.1", "example.com": ["1.2.3.4", "4.3.2.1"]}}),
                json!({"extra_hosts": ["example.com=1.2.3.4", "example.com=4.3.2.1", "localhost=127.0.0.1"]}),
            ),
            (
                "build extra_hosts",
                json!({"build": {"extra_hosts": ["a=1"]}}),
                json!({"build": {"extra_hosts": ["a=1", "b=2"]}}),
                json!({"build": {"extra_hosts": ["a=1", "b=2"]}}),
            ),
            (
                "nothing stays null",
                json!({"dns": {}}),
                json!({"dns": 5}),
                json!({"dns": null}),
            ),
        ];
        for (name, base, overlay, want) in cases {
            assert_eq!(merged_web(base, overlay), want, "{name}");
        }
    }

    #[test]
    fn depends_on_networks_and_models_merge_as_mappings() {
        let started = json!({"condition": "service_started", "required": true});
        let cases = [
            (
                "lists",
                json!({"depends_on": ["a"]}),
                json!({"depends_on": ["b"]}),
                json!({"depends_on": {"a": started, "b": started}}),
            ),
            (
                "short form resets the condition",
                json!({"depends_on": {"db": {"condition": "service_healthy"}}}),
                json!({"depends_on": ["db"]}),
                json!({"depends_on": {"db": started}}),
            ),
            (
                "long form over short",
                json!({"depends_on": "db"}),
                json!({"depends_on": {"db": {"restart": true}}}),
                json!({"depends_on": {"db": {"condition": "service_started", "required": true, "restart": true}}}),
            ),
            (
                "null base",
                json!({"depends_on": null}),
                json!({"depends_on": ["db"]}),
                json!({"depends_on": {"db": started}}),
            ),
            (
                "networks list keeps mapping details",
                json!({"networks": {"front": {"aliases": ["a"]}}}),
                json!({"networks": ["front", "back"]}),
                json!({"networks": {"front": {"aliases": ["a"]}, "back": null}}),
            ),
            (
                "network aliases append",
                json!({"networks": {"n": {"aliases": ["a1", "a2"]}}}),
                json!({"networks": {"n": {"aliases": ["a3", "a1"]}}}),
                json!({"networks": {"n": {"aliases": ["a1", "a2", "a3"]}}}),
            ),
            (
                "models",
                json!({"models": ["llm"]}),
                json!({"models": {"vision": {"endpoint_var": "V"}}}),
                json!({"models": {"llm": null, "vision": {"endpoint_var": "V"}}}),
            ),
        ];
        for (name, base, overlay, want) in cases {
            assert_eq!(merged_web(base, overlay), want, "{name}");
        }
    }

    #[test]
    fn a_non_string_short_form_entry_cannot_become_a_mapping_key() {
        let err = merge(
            json!({"services": {"web": {"networks": ["a"]}}}),
            json!({"services": {"web": {"networks": [1]}}}),
        );
        match err {
            Err(MergeError::Conflict { path, .. }) => {
                assert_eq!(path.to_string(), "services.web.networks[0]")
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    #[test]
    fn build_strings_become_contexts_before_merging() {
        let cases = [
            (
                json!({"build": "./one"}),
                json!({"build": "./two"}),
                json!({"build": {"context": "./two"}}),
            ),
            (
                json!({"build": "./one"}),
                json!({"build": {"dockerfile": "D"}}),
                json!({"build": {"context": "./one", "dockerfile": "D"}}),
            ),
            (
                json!({"build": {"context": ".", "target": "t"}}),
                json!({"build": "./x"}),
                json!({"build": {"context": "./x", "target": "t"}}),
            ),
            (
                json!({"build": "./one"}),
                json!({"build": null}),
                json!({"build": {"context": "./one"}}),
            ),
            (
                json!({"build": null}),
                json!({"build": "./x"}),
                json!({"build": {"context": "./x"}}),
            ),
        ];
        for (base, overlay, want) in cases {
            assert_eq!(merged_web(base, overlay), want);
        }
    }

    #[test]
    fn logging_options_merge_only_when_the_drivers_agree() {
        let cases = [
            (
                json!({"logging": {"driver": "syslog", "options": {"a": "1"}}}),
                json!({"logging": {"driver": "syslog", "options": {"a": "2"}}}),
                json!({"logging": {"driver": "syslog", "options": {"a": "2"}}}),
            ),
            (
                json!({"logging": {"driver": "local", "options": {"max-size": "1m"}}}),
                json!({"logging": {"driver": "syslog", "options": {"x": "1"}}}),
                json!({"logging": {"driver": "syslog", "options": {"x": "1"}}}),
            ),
            (
                json!({"logging": {"driver": "local", "options": {"max-size": "1m"}}}),
                json!({"logging": {"options": {"max-file": 3}}}),
                json!({"logging": {"driver": "local", "options": {"max-size": "1m", "max-file": 3}}}),
            ),
        ];
        for (base, overlay, want) in cases {
            assert_eq!(merged_web(base, overlay), want);
        }
    }

    #[test]
    fn logging_that_is_not_a_mapping_cannot_be_merged() {
        for (base, overlay) in [
            (json!({"driver": "a"}), json!(null)),
            (json!({"driver": "a"}), json!("x")),
            (json!("x"), json!({"driver": "a"})),
        ] {
            let err = merge(
                json!({"services": {"web": {"logging": base}}}),
                json!({"services": {"web": {"logging": overlay}}}),
            );
            match err {
                Err(MergeError::Conflict { path, .. }) => {
                    assert_eq!(path.to_string(), "services.web.logging")
                }
                other => panic!("expected a conflict, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_ulimit_merges_when_both_are_mappings_and_is_replaced_otherwise() {
        let out = merged_web(
            json!({"ulimits": {"nofile": {"soft": 1, "hard": 2}, "nproc": 5, "core": {"soft": 1, "hard": 1}, "memlock": 1}}),
            json!({"ulimits": {"nofile": {"soft": 3}, "nproc": {"soft": 4, "hard": 6}, "core": 7, "memlock": null}}),
        );
        assert_eq!(
            out,
            json!({"ulimits": {"nofile": {"soft": 3, "hard": 2}, "nproc": {"soft": 4, "hard": 6}, "core": 7, "memlock": null}})
        );
    }

    #[test]
    fn ipam_configs_merge_by_subnet() {
        let net = |config: Tree| json!({"networks": {"n": {"ipam": {"config": config}}}});
        let config = |t: Tree| t["networks"]["n"]["ipam"]["config"].clone();
        let cases = [
            (
                "same subnet merges, new subnet appended",
                json!([{"subnet": "s1", "gateway": "g1", "aux_addresses": {"h1": "1", "h3": "3"}}]),
                json!([{"subnet": "s1", "ip_range": "r", "aux_addresses": {"h1": "1", "h2": "2"}}, {"subnet": "s2"}]),
                json!([{"subnet": "s1", "gateway": "g1", "aux_addresses": {"h1": "1", "h3": "3", "h2": "2"}, "ip_range": "r"}, {"subnet": "s2"}]),
            ),
            (
                "base subnets nobody names are dropped",
                json!([{"subnet": "s1", "gateway": "g"}, {"subnet": "s2"}]),
                json!([{"subnet": "s3"}]),
                json!([{"subnet": "s3"}]),
            ),
            (
                "a second base entry takes over a subnet already added",
                json!([{"subnet": "s1"}, {"subnet": "s2", "gateway": "g2"}]),
                json!([{"subnet": "s2"}]),
                json!([{"subnet": "s2", "gateway": "g2"}]),
            ),
            (
                "an empty base gives null",
                json!([]),
                json!([{"subnet": "s1"}]),
                json!(null),
            ),
            (
                // compose keeps one shared object for the base entry: once placed it follows
                // later merges, so it ends up twice (checked against docker-compose v5.6.1)
                "a placed base entry follows its later merges",
                json!([{"subnet": "s1", "gateway": "g1"}]),
                json!([{"subnet": "s2"}, {"subnet": "s1"}, {"subnet": "s2", "ip_range": "r"}]),
                json!([
                    {"subnet": "s2", "gateway": "g1", "ip_range": "r"},
                    {"subnet": "s2", "gateway": "g1", "ip_range": "r"},
                ]),
            ),
        ];
        for (name, base, overlay, want) in cases {
            assert_eq!(config(merged(net(base), net(overlay))), want, "{name}");
        }
    }

    #[test]
    fn ipam_config_that_is_not_a_sequence_cannot_be_merged() {
        let net = |config: Tree| json!({"networks": {"n": {"ipam": {"config": config}}}});
        for (base, overlay) in [
            (json!([{"subnet": "a"}]), json!(null)),
            (json!({"a": 1}), json!([])),
        ] {
            match merge(net(base), net(overlay)) {
                Err(MergeError::Conflict { path, .. }) => {
                    assert_eq!(path.to_string(), "networks.n.ipam.config")
                }
                other => panic!("expected a conflict, got {other:?}"),
            }
        }
    }

    #[test]
    fn jobs_follow_the_service_merge_rules() {
        let out = merged(
            json!({"jobs": {"backup": {"command": ["a"], "labels": {"a": "1"}, "depends_on": ["db"]}}}),
            json!({"jobs": {"backup": {"command": "b", "labels": ["a=2"], "depends_on": ["cache"]}}}),
        );
        let job = &out["jobs"]["backup"];
        assert_eq!(job["command"], json!("b"));
        assert_eq!(job["labels"], json!(["a=2"]));
        assert_eq!(job["depends_on"].as_object().map(|m| m.len()), Some(2));
    }

    #[test]
    fn the_same_key_outside_a_service_uses_the_generic_rules() {
        let out = merged(
            json!({"x-tool": {"command": ["a"]}}),
            json!({"x-tool": {"command": ["b"]}}),
        );
        assert_eq!(out, json!({"x-tool": {"command": ["a", "b"]}}));
    }

    #[test]
    fn extending_a_service_uses_the_service_rules() {
        let base =
            json!({"image": "a", "command": ["x"], "environment": {"A": "1"}, "ports": ["80:80"]});
        let service =
            json!({"command": "y", "environment": ["B=2"], "ports": ["81:81"], "extends": "base"});
        let out = match extend_service(base, service) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            out,
            json!({"image": "a", "command": "y", "environment": ["A=1", "B=2"], "ports": ["80:80", "81:81"], "extends": "base"})
        );
    }

    #[test]
    fn an_extends_conflict_names_the_service() {
        match extend_named_service("web", json!({"deploy": {}}), json!({"deploy": "x"})) {
            Err(MergeError::Conflict { path, .. }) => {
                assert_eq!(path.to_string(), "services.web.deploy")
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    // ------------------------------------------------------------------------------ unicity

    #[test]
    fn unicity_keeps_the_last_entry_of_a_key_in_the_first_position() {
        let cases = [
            (
                "environment",
                json!({"environment": ["FOO=BAR", "BAR=QIX", "QIX=", "ZOT", "FOO=ZOT", "QIX", "ZOT="]}),
                json!({"environment": ["FOO=ZOT", "BAR=QIX", "QIX", "ZOT="]}),
            ),
            (
                "volumes by target",
                json!({"volumes": [".:/foo", "foo:/bar", "src:/foo", {"type": "bind", "source": "x", "target": "/bar"}]}),
                json!({"volumes": ["src:/foo", {"type": "bind", "source": "x", "target": "/bar"}]}),
            ),
            (
                "short ports as written",
                json!({"ports": ["9080:80", "9081:81", "9080:80", "5000", "6060:6060/udp", "9080:6060/udp", 5000]}),
                json!({"ports": ["9080:80", "9081:81", 5000, "6060:6060/udp", "9080:6060/udp"]}),
            ),
            (
                "long ports by host, published, target and protocol",
                json!({"ports": [
                    {"target": 80, "host_ip": "127.0.0.1", "published": "8080", "protocol": "tcp", "mode": "host"},
                    {"target": 81, "published": "8080", "protocol": "tcp"},
                    {"target": 80, "host_ip": "127.0.0.2", "published": "8080"},
                    {"target": 81, "published": "8080", "mode": "ingress"},
                ]}),
                json!({"ports": [
                    {"target": 80, "host_ip": "127.0.0.1", "published": "8080", "protocol": "tcp", "mode": "host"},
                    {"target": 81, "published": "8080", "mode": "ingress"},
                    {"target": 80, "host_ip": "127.0.0.2", "published": "8080"},
                ]}),
            ),
            (
                "a numeric published port differs from a string one",
                json!({"ports": [{"target": 81, "published": 8081}, {"target": 81, "published": "8081"}]}),
                json!({"ports": [{"target": 81, "published": 8081}, {"target": 81, "published": "8081"}]}),
            ),
            (
                "a short port spelled in full equals the long form",
                json!({"ports": ["0.0.0.0:8080:80/tcp", {"target": 80, "published": "8080", "mode": "host"}]}),
                json!({"ports": [{"target": 80, "published": "8080", "mode": "host"}]}),
            ),
            (
                "secrets by target",
                json!({"secrets": ["foo", "bar", "zot", {"source": "zot", "target": "/run/secrets/foo"}, {"source": "bar"}]}),
                json!({"secrets": [{"source": "zot", "target": "/run/secrets/foo"}, {"source": "bar"}, "zot"]}),
            ),
            (
                "configs by target or slash name",
                json!({"configs": ["c", {"source": "c", "target": "/c", "mode": 1}]}),
                json!({"configs": [{"source": "c", "target": "/c", "mode": 1}]}),
            ),
            (
                "devices by container path",
                json!({"devices": ["/dev/sda:/dev/sda", "/dev/nvme0:/dev/sda", "/dev/sdb", {"source": "/x", "target": "/dev/sdb"}]}),
                json!({"devices": ["/dev/nvme0:/dev/sda", {"source": "/x", "target": "/dev/sdb"}]}),
            ),
            (
                "expose as text",
                json!({"expose": ["80", 80, "81"]}),
                json!({"expose": [80, "81"]}),
            ),
            (
                "env_file by path",
                json!({"env_file": ["bar.env", "foo.env", {"path": "foo.env", "required": true}]}),
                json!({"env_file": ["bar.env", {"path": "foo.env", "required": true}]}),
            ),
            (
                "cap_add",
                json!({"cap_add": ["A", "B", "A"]}),
                json!({"cap_add": ["A", "B"]}),
            ),
            (
                "network aliases",
                json!({"networks": {"n": {"aliases": ["a", "a"], "link_local_ips": ["1", "1"]}}}),
                json!({"networks": {"n": {"aliases": ["a"], "link_local_ips": ["1"]}}}),
            ),
            (
                "build tags and args",
                json!({"build": {"tags": ["t", "t"], "args": ["A=1", "A=2"], "platforms": ["p", "p"]}}),
                json!({"build": {"tags": ["t"], "args": ["A=2"], "platforms": ["p", "p"]}}),
            ),
            (
                "label_file is not deduplicated",
                json!({"label_file": ["l", "l"]}),
                json!({"label_file": ["l", "l"]}),
            ),
            (
                "gpus are not deduplicated",
                json!({"gpus": [{"driver": "x"}, {"driver": "x"}]}),
                json!({"gpus": [{"driver": "x"}, {"driver": "x"}]}),
            ),
        ];
        for (name, body, want) in cases {
            assert_eq!(unique_web(body), want, "{name}");
        }
    }

    #[test]
    fn unicity_applies_to_top_level_network_labels_but_not_to_jobs() {
        let out = unique(json!({
            "networks": {"n": {"labels": ["a=1", "a=2"], "ipam": {"options": ["o=1", "o=2"]}}},
            "jobs": {"j": {"volumes": ["./a:/x", "./b:/x"], "cap_add": ["A", "A"]}},
        }));
        assert_eq!(out["networks"]["n"]["labels"], json!(["a=2"]));
        assert_eq!(out["networks"]["n"]["ipam"]["options"], json!(["o=2"]));
        assert_eq!(out["jobs"]["j"]["volumes"], json!(["./a:/x", "./b:/x"]));
        assert_eq!(out["jobs"]["j"]["cap_add"], json!(["A", "A"]));
    }

    #[test]
    fn unicity_errors_name_the_offending_entry() {
        let cases = [
            (json!({"cap_add": ["A", 1]}), "services.web.cap_add[1]"),
            (
                json!({"volumes": [{"type": "bind", "source": "/a"}]}),
                "services.web.volumes[0]",
            ),
            (json!({"volumes": [""]}), "services.web.volumes[0]"),
            (
                json!({"volumes": ["aa:bb:ro:xx:yy"]}),
                "services.web.volumes[0]",
            ),
            (
                json!({"ports": [{"published": 80}]}),
                "services.web.ports[0]",
            ),
            (
                json!({"env_file": [{"required": true}]}),
                "services.web.env_file[0]",
            ),
            (
                json!({"secrets": [{"source": "a", "target": 1}]}),
                "services.web.secrets[0]",
            ),
            (
                json!({"devices": [{"source": "/a"}]}),
                "services.web.devices[0]",
            ),
            (json!({"expose": [80.5]}), "services.web.expose[0]"),
        ];
        for (body, want) in cases {
            let mut t = json!({"services": {"web": body}});
            match enforce_unicity(&mut t) {
                Err(MergeError::Entry { path, .. }) => assert_eq!(path.to_string(), want),
                other => panic!("expected an entry error at {want}, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_volume_target_is_read_like_compose_reads_a_short_volume() {
        let cases = [
            ("/data", Ok("/data")),
            ("ab", Ok("ab")),
            ("./a:/data", Ok("/data")),
            ("vol:/data:ro", Ok("/data")),
            ("a:b:ro:x", Ok("ro")),
            ("a::b", Ok("b")),
            ("x:/y", Ok("x:/y")),
            ("C:\\data:/data", Ok("/data")),
            ("${A:-x}:/y", Ok("/y")),
            ("${A:-x}", Ok("${A:-x}")),
            ("abc:", Err("empty section between colons")),
            ("a:b:c:d:e", Ok("c:d")),
            ("aa:bb:cc:dd", Err("too many colons")),
            ("", Err("the spec is empty")),
        ];
        for (spec, want) in cases {
            let got = volume_target(spec);
            match want {
                Ok(w) => assert_eq!(got.as_deref(), Ok(w), "{spec}"),
                Err(_) => assert!(got.is_err(), "{spec}: {got:?}"),
            }
        }
    }

    #[test]
    fn floats_print_as_go_prints_them() {
        let cases = [
            (1.0, "1"),
            (1.5, "1.5"),
            (100000.0, "100000"),
            (1000000.0, "1e+06"),
            (1234567.5, "1.2345675e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5e-7, "-2.5e-07"),
            (1e100, "1e+100"),
            (-0.0, "-0"),
        ];
        for (f, want) in cases {
            assert_eq!(go_float(f), want, "{f}");
        }
    }

    #[test]
    fn mismatched_verbs_print_like_go() {
        assert_eq!(go_fmt('s', &json!(8080)), "%!s(int=8080)");
        assert_eq!(go_fmt('s', &json!(null)), "%!s(<nil>)");
        assert_eq!(go_fmt('d', &json!("80")), "%!d(string=80)");
        assert_eq!(
            go_fmt('v', &json!({"b": 1, "a": [1, "x"]})),
            "map[a:[1 x] b:1]"
        );
    }

    // ------------------------------------------------------------------------------ reset

    fn reset(tree: Tree, paths: &[KeyPath]) -> Tree {
        let mut t = tree;
        apply_reset_paths(&mut t, paths);
        t
    }

    #[test]
    fn reset_paths_remove_mapping_keys_at_any_depth() {
        let tree = json!({"services": {"web": {"image": "a", "ports": ["80"], "networks": {"n": {"aliases": ["x"]}}}}});
        let out = reset(
            tree,
            &[
                KeyPath::parse("services.web.ports"),
                KeyPath::parse("services.web.networks.n.aliases"),
            ],
        );
        assert_eq!(
            out,
            json!({"services": {"web": {"image": "a", "networks": {"n": {}}}}})
        );
    }

    #[test]
    fn reset_paths_never_remove_sequence_items() {
        let tree = json!({"services": {"web": {"volumes": ["./x:/x", "./y:/y"]}}});
        let out = reset(
            tree.clone(),
            &[KeyPath::parse("services.web.volumes").index(0)],
        );
        assert_eq!(out, tree);
    }

    #[test]
    fn a_recorded_index_matches_a_mapping_key_spelled_as_that_number() {
        let tree = json!({"x-a": {"0": "zero", "1": "one"}});
        let out = reset(tree, &[KeyPath::parse("x-a").index(0)]);
        assert_eq!(out, json!({"x-a": {"1": "one"}}));
    }

    #[test]
    fn a_reset_key_named_star_removes_every_sibling() {
        let tree = json!({"services": {"web": {"environment": {"A": "1", "B": "2"}}, "db": {"image": "pg"}}});
        let out = reset(tree, &[KeyPath::parse("services.web.environment.*")]);
        assert_eq!(
            out,
            json!({"services": {"web": {"environment": {}}, "db": {"image": "pg"}}})
        );
    }

    #[test]
    fn no_reset_paths_leave_the_tree_alone() {
        let tree = json!({"a": [1, {"b": 2}]});
        assert_eq!(reset(tree.clone(), &[]), tree);
    }

    // ------------------------------------------------------------------------------ properties

    fn key() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "services",
            "jobs",
            "web",
            "networks",
            "volumes",
            "secrets",
            "configs",
            "ports",
            "environment",
            "labels",
            "build",
            "args",
            "logging",
            "driver",
            "ulimits",
            "nofile",
            "ipam",
            "config",
            "subnet",
            "depends_on",
            "models",
            "command",
            "healthcheck",
            "test",
            "extra_hosts",
            "dns",
            "devices",
            "expose",
            "env_file",
            "target",
            "published",
            "host_ip",
            "protocol",
            "source",
            "path",
            "deploy",
            "aliases",
            "*",
            "0",
        ])
        .prop_map(str::to_string)
    }

    fn tree() -> impl Strategy<Value = Tree> {
        let leaf = prop_oneof![
            Just(Tree::Null),
            any::<bool>().prop_map(Tree::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            any::<u64>().prop_map(|u| json!(u)),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Tree::Null, Tree::Number)),
            prop::sample::select(vec![
                "",
                "a",
                "a=b",
                "x:/y",
                "::",
                "${A:-:}",
                "0.0.0.0:80:80/tcp",
                "s1"
            ])
            .prop_map(|s| Tree::String(s.to_string())),
            "[a-z:=$/{}.]{0,8}".prop_map(Tree::String),
        ];
        leaf.prop_recursive(5, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Tree::Array),
                prop::collection::vec((key(), inner), 0..6)
                    .prop_map(|kvs| Tree::Object(kvs.into_iter().collect())),
            ]
        })
    }

    fn paths() -> impl Strategy<Value = Vec<KeyPath>> {
        let seg = prop_oneof![
            key().prop_map(|k| Seg::Key(k.into())),
            (0usize..3).prop_map(Seg::Index)
        ];
        prop::collection::vec(prop::collection::vec(seg, 1..5), 0..4).prop_map(|ps| {
            ps.into_iter()
                .map(|segs| {
                    segs.into_iter().fold(KeyPath::root(), |p, s| match s {
                        Seg::Key(k) => p.key(k.to_string()),
                        Seg::Index(i) => p.index(i),
                    })
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn merging_arbitrary_trees_never_panics(base in tree(), overlay in tree()) {
            let _ = merge(base.clone(), overlay.clone());
            let _ = extend_service(base.clone(), overlay.clone());
            let wrapped = |t: Tree| json!({"services": {"web": t.clone()}, "networks": {"n": {"ipam": {"config": t}}}});
            let _ = merge(wrapped(base), wrapped(overlay));
        }

        #[test]
        fn unicity_and_resets_never_panic(t in tree(), ps in paths()) {
            let mut a = json!({"services": {"web": t.clone()}});
            let _ = enforce_unicity(&mut a);
            let mut b = t;
            let _ = enforce_unicity(&mut b);
            apply_reset_paths(&mut b, &ps);
        }

        #[test]
        fn a_mapping_merged_onto_an_empty_mapping_is_unchanged(t in tree()) {
            let overlay = json!({"x-any": t, "services": {}});
            let out = merge(json!({}), overlay.clone());
            prop_assert_eq!(out.ok(), Some(overlay));
        }

        #[test]
        fn merging_a_null_overlay_keeps_the_base(t in tree()) {
            prop_assert_eq!(merge(t.clone(), Tree::Null).ok(), Some(t));
        }
    }
}
