//! Compose v5's own configuration hash (`com.docker.compose.config-hash`) of services, networks and volumes, computed exactly as Compose computes it.
//!
//! Compose (`pkg/compose/hash.go`) hashes with SHA-256 the Go `json.Marshal` of compose-go's
//! types as `up` holds them when it creates a resource:
//!
//! - **Service** (`ServiceHash`): the `types.ServiceConfig` with its environment resolved and
//!   `env_file` dropped (which is what spindle's emitted model holds), then `build`,
//!   `pull_policy`, `scale`, `deploy.replicas`, `depends_on` and `profiles` cleared. At create,
//!   Compose first replaces `service:` references (`network_mode`, `ipc`, `pid`,
//!   `volumes_from`) by `container:<ID>` of the referenced service's first container, so the
//!   hash of such a service depends on that container: use [`service_hash_with_peers`].
//! - **Network** (`NetworkHash`): the `types.NetworkConfig` (its `name` is the Docker name).
//! - **Volume** (`VolumeHash`): the `types.VolumeConfig`, with an empty `driver` read as `local`.
//!
//! Labels Compose adds itself (`CustomLabels`) and `x-` extensions are not part of the JSON
//! (`json:"-"`), nor is a service's name. The byte form is [`super::emit::marshal`]'s.
//!
//! spindle writes these hashes into the resources it creates, so that a later `docker compose up`
//! finds them up to date, and adopts a Compose-made container whose label equals the hash of the
//! desired service without comparing it field by field.

use sha2::{Digest, Sha256};

use super::emit::marshal;
use super::tree::Tree;
use super::typed::{DesiredNetwork, DesiredService, DesiredVolume};

/// The keys `ServiceHash` clears before hashing (`deploy.replicas` too).
const CLEARED: &[&str] = &["build", "pull_policy", "scale", "depends_on", "profiles"];

/// Compose's hash of a desired service whose `service:` references need no container (or
/// when spindle has none to offer): see [`service_hash`].
pub fn compose_service_hash(svc: &DesiredService) -> String {
    service_hash(&svc.model)
}

/// Compose's `ServiceHash` of an emitted service, `service:` references hashed as written (as
/// Compose does when the referenced container does not exist).
pub fn service_hash(service: &Tree) -> String {
    service_hash_with_peers(service, &|_| None)
}

/// Compose's `ServiceHash` of an emitted service at create time: `service:x` in `network_mode`,
/// `ipc` and `pid` becomes `container:<id>`, a `volumes_from` entry `x[:mode]` becomes `<id>`
/// and `container:name[:mode]` becomes `name`, where `first_container(x)` is the ID of service
/// `x`'s first container (Compose's `containers.sorted()[0]`). Like Compose, the resolution stops
/// at the first reference that has no container and hashes what it has resolved so far.
pub fn service_hash_with_peers(
    service: &Tree,
    first_container: &dyn Fn(&str) -> Option<String>,
) -> String {
    sha256_hex(&service_hash_input(service, first_container))
}

/// The bytes [`service_hash_with_peers`] hashes: the Go JSON of the service as Compose holds it.
pub fn service_hash_input(
    service: &Tree,
    first_container: &dyn Fn(&str) -> Option<String>,
) -> String {
    let mut s = service.clone();
    if let Tree::Object(m) = &mut s {
        for k in CLEARED {
            m.shift_remove(*k);
        }
        if let Some(Tree::Object(deploy)) = m.get_mut("deploy") {
            deploy.shift_remove("replicas");
        }
        resolve_references(m, first_container);
    }
    marshal::service(&s)
}

/// Whether the service's hash depends on another service's container (`service:x` in
/// `network_mode`, `ipc` or `pid`, or a `volumes_from` entry naming a service): then only
/// [`service_hash_with_peers`], with the peers' container ids, gives Compose's hash.
pub fn references_peers(service: &Tree) -> bool {
    let from_service = service
        .get("volumes_from")
        .and_then(Tree::as_array)
        .is_some_and(|entries| {
            entries
                .iter()
                .any(|e| e.as_str().is_some_and(|t| !t.starts_with("container:")))
        });
    from_service
        || ["network_mode", "ipc", "pid"].iter().any(|k| {
            service
                .get(*k)
                .and_then(Tree::as_str)
                .is_some_and(|m| m.starts_with("service:"))
        })
}

/// `resolveVolumeFrom` then `resolveSharedNamespaces` of Compose's convergence.
fn resolve_references(
    m: &mut serde_json::Map<String, Tree>,
    first_container: &dyn Fn(&str) -> Option<String>,
) {
    if let Some(Tree::Array(entries)) = m.get_mut("volumes_from") {
        for entry in entries.iter_mut() {
            let Some(text) = entry.as_str() else { continue };
            let mut parts = text.split(':');
            let head = parts.next().unwrap_or_default();
            let resolved = if head == "container" {
                parts.next().unwrap_or_default().to_string()
            } else {
                match first_container(head) {
                    Some(id) => id,
                    None => return,
                }
            };
            *entry = Tree::String(resolved);
        }
    }
    for key in ["network_mode", "ipc", "pid"] {
        let Some(Tree::String(mode)) = m.get(key) else {
            continue;
        };
        let Some(peer) = mode.strip_prefix("service:") else {
            continue;
        };
        match first_container(peer) {
            Some(id) => {
                m.insert(key.into(), Tree::String(format!("container:{id}")));
            }
            None => return,
        }
    }
}

/// Compose's `NetworkHash` of an emitted network.
pub fn network_hash(network: &Tree) -> String {
    sha256_hex(&network_hash_input(network))
}

/// The bytes [`network_hash`] hashes.
pub fn network_hash_input(network: &Tree) -> String {
    marshal::network(network)
}

/// Compose's `NetworkHash` of a desired network.
pub fn compose_network_hash(net: &DesiredNetwork) -> String {
    network_hash(&net.model)
}

/// Compose's `VolumeHash` of an emitted volume (`driver` defaults to `local`).
pub fn volume_hash(volume: &Tree) -> String {
    sha256_hex(&volume_hash_input(volume))
}

/// The bytes [`volume_hash`] hashes.
pub fn volume_hash_input(volume: &Tree) -> String {
    let mut v = volume.clone();
    if let Tree::Object(m) = &mut v {
        let empty = m
            .get("driver")
            .and_then(Tree::as_str)
            .is_none_or(str::is_empty);
        if empty {
            // `driver` sits second in `types.VolumeConfig`; the marshaller orders by the schema.
            m.insert("driver".into(), Tree::String("local".into()));
        }
    }
    marshal::volume(&v)
}

/// Compose's `VolumeHash` of a desired volume.
pub fn compose_volume_hash(vol: &DesiredVolume) -> String {
    volume_hash(&vol.model)
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Hashes Compose v5.6.1 wrote (`docker compose -p hashexpa up --no-start` of a stack with a
    /// network `front: {}` and a volume `data: {}`).
    #[test]
    fn network_and_volume_hashes_equal_the_labels_compose_wrote() {
        assert_eq!(
            network_hash(&json!({"name": "hashexpa_front", "ipam": {}})),
            "9eabbe1f346149018b24619030272924a67bfe7f963d0c28b8f2a66088670ad7"
        );
        assert_eq!(
            volume_hash(&json!({"name": "hashexpa_data"})),
            "5f5e3bb0c3c4527946a21b7467d9bda6ddd3332d0a230e9d7cae752ef40fa27c"
        );
        assert_eq!(
            volume_hash(&json!({"name": "hashexpa_data", "driver": ""})),
            volume_hash(&json!({"name": "hashexpa_data", "driver": "local"}))
        );
    }

    #[test]
    fn the_service_hash_leaves_out_what_compose_clears() {
        let base = json!({
            "command": null,
            "entrypoint": null,
            "image": "busybox",
            "networks": {"default": null},
            "deploy": {"resources": {}, "placement": {}}
        });
        let mut noisy = base.clone();
        noisy["profiles"] = json!(["x"]);
        noisy["build"] = json!({"context": "."});
        noisy["depends_on"] = json!({"db": {"condition": "service_started", "required": true}});
        noisy["pull_policy"] = json!("always");
        noisy["scale"] = json!(3);
        noisy["deploy"]["replicas"] = json!(3);
        assert_eq!(service_hash(&noisy), service_hash(&base));
        let mut changed = base.clone();
        changed["image"] = json!("busybox:2");
        assert_ne!(service_hash(&changed), service_hash(&base));
    }

    proptest::proptest! {
        /// Go marshals structs in declaration order and maps sorted, so the order the model
        /// holds keys in never changes the hash; a changed value always does.
        #[test]
        fn key_order_never_changes_the_hash_and_a_value_does(
            env in proptest::collection::btree_map("[A-Z_]{1,6}", "[a-z<&>]{0,4}", 1..6),
            seed in 0usize..1000,
        ) {
            let rotate = |pairs: Vec<(String, Tree)>| -> serde_json::Map<String, Tree> {
                let n = pairs.len().max(1);
                let mut pairs = pairs;
                pairs.rotate_left(seed % n);
                pairs.into_iter().collect()
            };
            let fields: Vec<(String, Tree)> = vec![
                ("image".into(), json!("busybox")),
                ("command".into(), json!(["sleep", "1"])),
                ("entrypoint".into(), Tree::Null),
                ("environment".into(), json!(env)),
                ("labels".into(), json!({"b": "1", "a": "2"})),
                ("networks".into(), json!({"z": null, "a": {"aliases": ["x"]}})),
            ];
            let straight: serde_json::Map<String, Tree> = fields.iter().cloned().collect();
            let mut shuffled_fields = fields.clone();
            for (_, v) in &mut shuffled_fields {
                if let Tree::Object(m) = v {
                    *v = Tree::Object(rotate(m.clone().into_iter().collect()));
                }
            }
            let shuffled = rotate(shuffled_fields);
            let a = service_hash(&Tree::Object(straight.clone()));
            proptest::prop_assert_eq!(&a, &service_hash(&Tree::Object(shuffled)));
            let mut changed = straight;
            changed["image"] = json!("busybox:2");
            proptest::prop_assert_ne!(a, service_hash(&Tree::Object(changed)));
        }
    }

    #[test]
    fn service_references_become_container_ids_as_compose_resolves_them() {
        let s = json!({
            "command": null,
            "entrypoint": null,
            "image": "busybox",
            "network_mode": "service:db",
            "ipc": "service:db",
            "volumes_from": ["db", "db:ro", "container:other:ro"]
        });
        let input = service_hash_input(&s, &|p| (p == "db").then(|| "abc".to_string()));
        assert_eq!(
            input,
            r#"{"command":null,"entrypoint":null,"image":"busybox","ipc":"container:abc","network_mode":"container:abc","volumes_from":["abc","abc","other"]}"#
        );
        // Without the container, Compose hashes the references as written.
        assert_eq!(
            service_hash_input(&s, &|_| None),
            r#"{"command":null,"entrypoint":null,"image":"busybox","ipc":"service:db","network_mode":"service:db","volumes_from":["db","db:ro","container:other:ro"]}"#
        );
    }
}
