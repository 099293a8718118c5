//! Network and volume create bodies, with the labels Compose sets on them (Compose's own hash included).

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::{MANAGED_BY_VALUE, SpecContext};
use crate::desired::compose_hash;
use crate::desired::typed::{DesiredNetwork, DesiredVolume, string_entries};
use crate::labels;

fn string_map(v: Option<&Value>) -> Map<String, Value> {
    string_entries(v)
        .into_iter()
        .map(|(k, v)| (k, json!(v.unwrap_or_default())))
        .collect()
}

/// Compose's own hash of the network (`NetworkHash`), which Compose and spindle both write to
/// `com.docker.compose.config-hash`: it changes exactly when the network's configuration
/// changes, and it is the same whichever of the two tools created the network.
pub fn network_config_hash(net: &DesiredNetwork) -> String {
    compose_hash::compose_network_hash(net)
}

/// The hash spindle versions before Compose's own hash wrote on the networks they created
/// (SHA-256 of the network's canonical JSON), still accepted as current for those networks.
pub fn legacy_network_hash(net: &DesiredNetwork) -> String {
    let mut text = String::new();
    crate::desired::hash::canonical_json(&net.model, &mut text);
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Compose's own hash of the volume (`VolumeHash`), written to `com.docker.compose.config-hash`.
pub fn volume_config_hash(vol: &DesiredVolume) -> String {
    compose_hash::compose_volume_hash(vol)
}

fn resource_labels(
    ctx: &SpecContext,
    model: &Value,
    key_label: &str,
    key: &str,
    hash: String,
) -> Value {
    let mut l = string_map(model.get("labels"));
    l.insert(key_label.into(), json!(key));
    l.insert(labels::PROJECT.into(), json!(ctx.project));
    l.insert(labels::VERSION.into(), json!(ctx.compose_version_label));
    l.insert(labels::CONFIG_HASH.into(), json!(hash));
    l.insert(labels::MANAGED_BY.into(), json!(MANAGED_BY_VALUE));
    Value::Object(l)
}

/// The `POST /networks/create` body, as Compose's `createNetwork` builds it.
pub fn network_body(ctx: &SpecContext, net: &DesiredNetwork) -> Value {
    let m = &net.model;
    let mut b = Map::new();
    b.insert("Name".into(), json!(net.name));
    b.insert(
        "Driver".into(),
        json!(m.get("driver").and_then(Value::as_str).unwrap_or_default()),
    );
    let opts = string_map(m.get("driver_opts"));
    if !opts.is_empty() {
        b.insert("Options".into(), Value::Object(opts));
    }
    let flag = |k: &str| m.get(k).and_then(Value::as_bool).unwrap_or(false);
    b.insert("Internal".into(), json!(flag("internal")));
    b.insert("Attachable".into(), json!(flag("attachable")));
    if let Some(v) = m.get("enable_ipv6").and_then(Value::as_bool) {
        b.insert("EnableIPv6".into(), json!(v));
    }
    if let Some(v) = m.get("enable_ipv4").and_then(Value::as_bool) {
        b.insert("EnableIPv4".into(), json!(v));
    }
    if let Some(ipam) = m.get("ipam").and_then(Value::as_object) {
        let driver = ipam
            .get("driver")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let pools = ipam.get("config").and_then(Value::as_array);
        let options = string_map(ipam.get("options"));
        if !driver.is_empty() || pools.is_some_and(|p| !p.is_empty()) || !options.is_empty() {
            let config: Vec<Value> = pools
                .into_iter()
                .flatten()
                .map(|p| {
                    let mut c = Map::new();
                    for (k, f) in [
                        ("subnet", "Subnet"),
                        ("ip_range", "IPRange"),
                        ("gateway", "Gateway"),
                    ] {
                        if let Some(v) = p.get(k).and_then(Value::as_str) {
                            c.insert(f.into(), json!(v));
                        }
                    }
                    let aux = string_map(p.get("aux_addresses"));
                    if !aux.is_empty() {
                        c.insert("AuxiliaryAddresses".into(), Value::Object(aux));
                    }
                    Value::Object(c)
                })
                .collect();
            let mut i = Map::new();
            i.insert("Driver".into(), json!(driver));
            i.insert("Config".into(), json!(config));
            if !options.is_empty() {
                i.insert("Options".into(), Value::Object(options));
            }
            b.insert("IPAM".into(), Value::Object(i));
        }
    }
    b.insert(
        "Labels".into(),
        resource_labels(ctx, m, labels::NETWORK, &net.key, network_config_hash(net)),
    );
    Value::Object(b)
}

/// The `POST /volumes/create` body, as Compose's `createVolume` builds it.
pub fn volume_body(ctx: &SpecContext, vol: &DesiredVolume) -> Value {
    let m = &vol.model;
    let hash = volume_config_hash(vol);
    json!({
        "Name": vol.name,
        "Driver": m.get("driver").and_then(Value::as_str).unwrap_or_default(),
        "DriverOpts": Value::Object(string_map(m.get("driver_opts"))),
        "Labels": resource_labels(ctx, m, labels::VOLUME, &vol.key, hash),
    })
}
