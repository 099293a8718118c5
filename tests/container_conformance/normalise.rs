//! What the container-conformance harness compares: the part of a `docker inspect` document a compose file
//! decides, with what must differ between two projects normalised away, and every exception in one place.
//!
//! Each exception is listed, with its reason, in `docs/compose-compatibility.md` ("Container conformance").

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Compose's hash label. It is not compared across the two projects: the hash covers the project name wherever
/// the file interpolates it (`container_name: db-${COMPOSE_PROJECT_NAME}`) and the container ids that `service:`
/// references resolve to, which differ between P1 and P2. Adoption direction 2 checks it exactly instead: Compose
/// recomputes it for spindle's project and recreates any container whose label differs.
const CONFIG_HASH_LABEL: &str = "com.docker.compose.config-hash";

/// spindle's own labels (`io.spindle.spec-hash`, `io.spindle.spec`, …) start with this; Compose sets none.
const SPINDLE_LABEL_PREFIX: &str = "io.spindle.";

/// Arrays that Compose builds by iterating a Go map (the environment, extra hosts, ulimits, mounts), so their order
/// differs from one run of Compose to the next and the engine does not depend on it: they are compared as sorted
/// lists.
const UNORDERED: &[&str] = &[
    "Config.Env",
    "HostConfig.Binds",
    "HostConfig.ExtraHosts",
    "HostConfig.Links",
    "HostConfig.Mounts",
    "HostConfig.Ulimits",
    "Mounts",
];

/// Endpoint fields compared as sorted lists: Compose lists links to a scaled service's containers in the engine's
/// list order (newest first), and creates the replicas concurrently, so that order is not reproducible.
const UNORDERED_ENDPOINT: &[&str] = &["Links"];

/// Labels whose value is a comma-separated list Compose builds from a Go map (random order): compared sorted.
const UNORDERED_LABELS: &[&str] = &["com.docker.compose.depends_on"];

/// Top-level fields of the inspect document that are compared. Left out: `Id`, `Created` (ids and creation
/// times), `State` (both are created, not started), `GraphDriver` and `*Path` (the engine's own storage paths,
/// derived from the id) and `NetworkSettings` outside `Networks` (runtime addresses, empty before start).
const COMPARED: &[&str] = &[
    "Name",
    "Path",
    "Args",
    "Image",
    "Config",
    "HostConfig",
    "Mounts",
    "Platform",
    "Driver",
    "AppArmorProfile",
];

/// Which tool made a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Compose,
    Spindle,
}

/// Strings that name the same thing under different names in the two projects: ids (of containers and networks),
/// the project name, anonymous volume names. Longest first, so that a full id wins over its short form.
#[derive(Default)]
pub struct Renames {
    pairs: Vec<(String, String)>,
}

impl Renames {
    pub fn add(&mut self, from: &str, to: &str) {
        if !from.is_empty() {
            self.pairs.push((from.to_string(), to.to_string()));
        }
    }

    /// A container's full id and its 12-character short form (the default hostname and alias).
    pub fn add_id(&mut self, id: &str, to: &str) {
        self.add(id, to);
        if id.len() > 12 {
            self.add(&id[..12], to);
        }
    }

    fn finish(&mut self) {
        self.pairs
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
    }

    fn apply(&self, s: &str) -> String {
        let mut out = s.to_string();
        for (from, to) in &self.pairs {
            if out.contains(from.as_str()) {
                out = out.replace(from.as_str(), to);
            }
        }
        out
    }
}

/// The compared part of one container's inspect document, normalised.
pub fn comparable(inspect: &Value, tool: Tool, renames: &mut Renames) -> Value {
    renames.finish();
    let mut out = Map::new();
    for key in COMPARED {
        if let Some(v) = inspect.get(*key) {
            out.insert((*key).to_string(), v.clone());
        }
    }
    // The endpoint settings of every network: aliases, IPAM config, MAC address, links, driver options.
    if let Some(networks) = inspect.pointer("/NetworkSettings/Networks") {
        out.insert("Networks".into(), networks.clone());
    }
    let mut doc = rename(&Value::Object(out), renames);
    exceptions(&mut doc, tool);
    doc
}

fn rename(v: &Value, renames: &Renames) -> Value {
    match v {
        Value::String(s) => Value::String(renames.apply(s)),
        Value::Array(a) => Value::Array(a.iter().map(|x| rename(x, renames)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (renames.apply(k), rename(x, renames)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Every exception, in one place.
fn exceptions(doc: &mut Value, tool: Tool) {
    if let Some(Value::Object(labels)) = doc.pointer_mut("/Config/Labels") {
        if tool == Tool::Spindle {
            labels.retain(|k, _| !k.starts_with(SPINDLE_LABEL_PREFIX));
        }
        if let Some(hash) = labels.get_mut(CONFIG_HASH_LABEL) {
            *hash = Value::String("<config-hash: checked by adoption direction 2>".into());
        }
        for key in UNORDERED_LABELS {
            if let Some(Value::String(s)) = labels.get_mut(*key) {
                let mut parts: Vec<&str> = s.split(',').collect();
                parts.sort_unstable();
                *s = parts.join(",");
            }
        }
    }
    for path in UNORDERED {
        let pointer = format!("/{}", path.replace('.', "/"));
        if let Some(Value::Array(a)) = doc.pointer_mut(&pointer) {
            a.sort_by_key(Value::to_string);
        }
    }
    // Endpoint ids are the engine's (empty before start, but named for when the harness compares started ones).
    if let Some(Value::Object(nets)) = doc.get_mut("Networks") {
        for ep in nets.values_mut() {
            if let Value::Object(ep) = ep {
                ep.remove("EndpointID");
                ep.remove("NetworkID");
                for key in UNORDERED_ENDPOINT {
                    if let Some(Value::Array(a)) = ep.get_mut(*key) {
                        a.sort_by_key(Value::to_string);
                    }
                }
            }
        }
    }
}

/// Every difference between two JSON trees, as `path: compose … | spindle …` lines.
pub fn differences(path: &str, left: Option<&Value>, right: Option<&Value>, out: &mut Vec<String>) {
    match (left, right) {
        (Some(Value::Object(l)), Some(Value::Object(r))) => {
            let mut keys: BTreeMap<&str, ()> = BTreeMap::new();
            for key in l.keys().chain(r.keys()) {
                keys.insert(key, ());
            }
            for key in keys.keys() {
                let child = if path.is_empty() {
                    (*key).to_string()
                } else {
                    format!("{path}.{key}")
                };
                differences(&child, l.get(*key), r.get(*key), out);
            }
        }
        (Some(Value::Array(l)), Some(Value::Array(r))) if l.len() == r.len() => {
            for index in 0..l.len() {
                differences(&format!("{path}[{index}]"), l.get(index), r.get(index), out);
            }
        }
        (l, r) if l == r => {}
        (l, r) => {
            let show =
                |v: Option<&Value>| v.map_or_else(|| "<absent>".to_string(), Value::to_string);
            let shown = if path.is_empty() { "<root>" } else { path };
            out.push(format!(
                "  {shown}: compose {} | spindle {}",
                show(l),
                show(r)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_and_project_names_are_renamed_in_keys_and_values_and_spindle_labels_are_dropped() {
        let mut r = Renames::default();
        r.add("p2", "<project>");
        r.add_id("0123456789abcdef0123", "<container web-1>");
        let doc = json!({
            "Name": "/p2-web-1",
            "Config": {"Hostname": "0123456789ab", "Labels": {"io.spindle.spec-hash": "x", "a": "b",
                "com.docker.compose.depends_on": "z:service_started:false,a:service_started:false"}},
            "HostConfig": {"NetworkMode": "container:0123456789abcdef0123"},
            "NetworkSettings": {"Networks": {"p2_default": {"Aliases": ["p2-web-1"], "NetworkID": "n"}}}
        });
        let got = comparable(&doc, Tool::Spindle, &mut r);
        assert_eq!(
            got,
            json!({
                "Name": "/<project>-web-1",
                "Config": {"Hostname": "<container web-1>", "Labels": {"a": "b",
                    "com.docker.compose.depends_on": "a:service_started:false,z:service_started:false"}},
                "HostConfig": {"NetworkMode": "container:<container web-1>"},
                "Networks": {"<project>_default": {"Aliases": ["<project>-web-1"]}}
            })
        );
    }

    #[test]
    fn differences_are_listed_by_path() {
        let mut out = Vec::new();
        differences(
            "",
            Some(&json!({"Config": {"Cmd": ["a"], "Env": ["X=1"]}})),
            Some(&json!({"Config": {"Cmd": [], "Env": ["X=1"]}})),
            &mut out,
        );
        assert_eq!(
            out,
            vec!["  Config.Cmd: compose [\"a\"] | spindle []".to_string()]
        );
    }
}
