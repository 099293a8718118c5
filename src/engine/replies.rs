//! Engine replies read item by item: when bollard's types cannot read a list reply, the items they
//! can read are kept and the others are named (by kind, ID and service label, never by value).

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::labels;

/// An item of an engine reply that spindle could not read: skipped, and reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    /// `container`, `network` or `volume`.
    pub kind: &'static str,
    /// Its ID as the engine gave it, when that reads as an identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Its name (networks and volumes), when that reads as an identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The Compose service it belongs to (its `com.docker.compose.service` label), when readable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

impl Unreadable {
    /// What can be told of `item` without trusting its shape.
    pub fn of(kind: &'static str, item: &Value) -> Self {
        let labels = item
            .get("Labels")
            .or_else(|| item.pointer("/Config/Labels"));
        Unreadable {
            kind,
            id: item.get("Id").and_then(identifier),
            name: item.get("Name").and_then(identifier),
            service: labels
                .and_then(|l| l.get(labels::SERVICE))
                .and_then(identifier),
        }
    }

    /// `container 0123456789ab (service web)`, for messages.
    pub fn describe(&self) -> String {
        let mut s = self.kind.to_string();
        match (&self.id, &self.name) {
            (_, Some(name)) => s.push_str(&format!(" {name}")),
            (Some(id), None) => s.push_str(&format!(" {}", &id[..id.len().min(12)])),
            (None, None) => s.push_str(" (without a readable ID)"),
        }
        if let Some(svc) = &self.service {
            s.push_str(&format!(" (service {svc})"));
        }
        s
    }
}

/// The items of a list reply that could be read, and those that could not.
#[derive(Debug)]
pub struct Listed<T> {
    pub items: Vec<T>,
    pub unreadable: Vec<Unreadable>,
}

/// Reads the JSON `body` of a list reply item by item: the array at its top, or under `key`.
/// `None` when the body is not JSON or holds no such array (nothing can be told apart).
pub fn per_item<T: DeserializeOwned>(
    kind: &'static str,
    body: &str,
    key: Option<&str>,
) -> Option<Listed<T>> {
    let doc: Value = serde_json::from_str(body).ok()?;
    let array = match key {
        None => doc,
        Some(k) => doc.get(k).cloned().unwrap_or(Value::Array(Vec::new())),
    };
    let Value::Array(entries) = array else {
        return None;
    };
    let mut listed = Listed {
        items: Vec::with_capacity(entries.len()),
        unreadable: Vec::new(),
    };
    for entry in entries {
        let unreadable = Unreadable::of(kind, &entry);
        match serde_json::from_value::<T>(entry) {
            Ok(item) => listed.items.push(item),
            Err(_) => listed.unreadable.push(unreadable),
        }
    }
    Some(listed)
}

/// A string that reads as an engine identifier (letters, digits, `_`, `.`, `-`; at most 128
/// characters); anything else is not echoed.
fn identifier(v: &Value) -> Option<String> {
    let s = v.as_str()?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    ok.then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerSummary, Network, Volume};
    use serde_json::json;

    #[test]
    fn a_list_with_one_malformed_container_keeps_the_others_and_names_it() {
        let body = json!([
            {"Id": "aaaa", "Names": ["/p-web-1"], "Labels": {"com.docker.compose.service": "web"}},
            {"Id": "bbbbbbbbbbbbbbbbbbbb", "Created": "yesterday", "Labels": {"com.docker.compose.service": "db"}},
            {"Id": "cccc", "Created": 1}
        ])
        .to_string();
        let listed = per_item::<ContainerSummary>("container", &body, None).expect("an array");
        let ids: Vec<_> = listed.items.iter().filter_map(|c| c.id.clone()).collect();
        assert_eq!(ids, ["aaaa", "cccc"]);
        assert_eq!(
            listed.unreadable,
            [Unreadable {
                kind: "container",
                id: Some("bbbbbbbbbbbbbbbbbbbb".into()),
                name: None,
                service: Some("db".into()),
            }]
        );
        assert_eq!(
            listed.unreadable[0].describe(),
            "container bbbbbbbbbbbb (service db)"
        );
    }

    #[test]
    fn volumes_are_read_under_their_key_and_networks_at_the_top() {
        let body = json!({"Volumes": [
            {"Name": "good", "Driver": "local", "Mountpoint": "/x", "Labels": {}, "Scope": "local", "Options": {}},
            {"Name": "bad", "Driver": 7}
        ]})
        .to_string();
        let listed = per_item::<Volume>("volume", &body, Some("Volumes")).expect("an array");
        assert_eq!(listed.items.len(), 1);
        assert_eq!(listed.unreadable[0].name.as_deref(), Some("bad"));
        let body = json!([{"Name": "n", "Id": "1"}, {"Name": "m", "Labels": "nope"}]).to_string();
        let listed = per_item::<Network>("network", &body, None).expect("an array");
        assert_eq!(listed.items.len(), 1);
        assert_eq!(listed.unreadable[0].describe(), "network m");
    }

    #[test]
    fn a_value_that_is_not_an_identifier_is_never_echoed() {
        let item = json!({"Id": "s3cr3t value with spaces", "Labels": {"com.docker.compose.service": ["x"]}});
        let u = Unreadable::of("container", &item);
        assert_eq!(u.id, None);
        assert_eq!(u.service, None);
        assert_eq!(u.describe(), "container (without a readable ID)");
    }

    #[test]
    fn a_body_that_is_not_a_json_array_cannot_be_read_item_by_item() {
        assert!(per_item::<ContainerSummary>("container", "not json", None).is_none());
        assert!(per_item::<ContainerSummary>("container", "{\"a\":1}", None).is_none());
    }
}
