//! Short port syntax (`[ip:][published:]target[/protocol]`, ranges allowed) to long port mappings, as Docker parses it.

use std::net::IpAddr;

use crate::desired::tree::{Map, Tree};

/// One published port of a short port spec, before it becomes a mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Binding {
    host_ip: String,
    target: u32,
    published: String,
    protocol: String,
}

/// Parses one short port spec into its long mappings, in Docker's order (sorted by
/// `"<target>/<protocol>"` as text, so `9-10` yields 10 before 9).
/// The error text describes what is wrong; the caller adds the key path.
pub(super) fn parse(spec: &str) -> Result<Vec<Tree>, String> {
    let mut bindings = parse_spec(spec)?;
    bindings.sort_by_key(|b| format!("{}/{}", b.target, b.protocol));
    Ok(bindings.into_iter().map(encode).collect())
}

/// The long form compose writes for a parsed binding: empty fields are left out.
fn encode(b: Binding) -> Tree {
    let mut m = Map::new();
    m.insert("mode".into(), Tree::from("ingress"));
    if !b.host_ip.is_empty() {
        m.insert("host_ip".into(), Tree::from(b.host_ip));
    }
    if b.target != 0 {
        m.insert("target".into(), Tree::from(b.target));
    }
    if !b.published.is_empty() {
        m.insert("published".into(), Tree::from(b.published));
    }
    m.insert("protocol".into(), Tree::from(b.protocol));
    Tree::Object(m)
}

/// Splits `ip:published:target`; with more than three colons the leading parts are the (IPv6) address.
fn split_parts(spec: &str) -> (String, &str, &str) {
    let parts: Vec<&str> = spec.split(':').collect();
    match parts.as_slice() {
        [] => (String::new(), "", ""),
        [target] => (String::new(), "", target),
        [published, target] => (String::new(), published, target),
        [ip, published, target] => (ip.to_string(), published, target),
        [ip @ .., published, target] => (ip.join(":"), published, target),
    }
}

fn parse_spec(spec: &str) -> Result<Vec<Binding>, String> {
    let (ip, published, target) = split_parts(spec);
    let (port, proto) = target.split_once('/').unwrap_or((target, ""));
    if port.is_empty() {
        return Err("no container port specified".into());
    }
    let protocol = if proto.is_empty() {
        "tcp".to_string()
    } else {
        proto.to_lowercase()
    };
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err("invalid protocol: use tcp, udp or sctp".into());
    }

    let ip = if ip.starts_with('[') {
        match ip.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(inner) if !inner.contains(['[', ']']) => inner.to_string(),
            _ => return Err(IP_SHAPE.into()),
        }
    } else {
        ip
    };
    if !ip.is_empty() && ip.parse::<IpAddr>().is_err() {
        return Err(IP_SHAPE.into());
    }

    let (start, end) =
        parse_range(port).map_err(|e| format!("invalid container port: {e}; {PORT_SHAPE}"))?;
    let mut host = None;
    if !published.is_empty() {
        let (hstart, hend) = parse_range(published)
            .map_err(|e| format!("invalid published port: {e}; {PORT_SHAPE}"))?;
        // A published range is allowed with a single container port (a range to pick from).
        if end - start != hend - hstart && end != start {
            return Err(
                "the container port range and the published port range differ in size".into(),
            );
        }
        host = Some((hstart, hend));
    }

    let count = end - start + 1;
    Ok((0..count)
        .map(|i| Binding {
            host_ip: ip.clone(),
            target: start + i,
            published: match host {
                None => String::new(),
                Some((hstart, hend)) if count == 1 && hstart != hend => {
                    format!("{}-{hend}", hstart + i)
                }
                Some((hstart, _)) => (hstart + i).to_string(),
            },
            protocol: protocol.clone(),
        })
        .collect())
}

/// What an IP address in a port looks like; error messages never quote the input.
const IP_SHAPE: &str = "invalid IP address: write an IPv4 address or an IPv6 one in brackets ([::1]) before the published port";

/// What a port looks like.
const PORT_SHAPE: &str = "write a number from 0 to 65535, or a range like 8000-8010";

/// `8000` or `8000-8010`; a range whose ends are the same text is a single port.
fn parse_range(text: &str) -> Result<(u32, u32), String> {
    if text.is_empty() {
        return Err("empty port".into());
    }
    let (first, last) = match text.split_once('-') {
        Some((first, last)) => (first, Some(last)),
        None => (text, None),
    };
    let start = parse_number(first)?;
    match last {
        None => Ok((start, start)),
        Some(last) if last == first => Ok((start, start)),
        Some(last) => {
            let end = parse_number(last)?;
            if end < start {
                return Err("range ends before it starts".into());
            }
            Ok((start, end))
        }
    }
}

/// A decimal port number 0–65535 with an optional leading `+`, as Go's `strconv.ParseInt` reads it.
fn parse_number(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix('+').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not a number".into());
    }
    match digits.parse::<u64>() {
        Ok(n) if n <= 65535 => u32::try_from(n).map_err(|_| "out of range (0-65535)".to_string()),
        _ => Err("out of range (0-65535)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    /// Rows checked against `docker-compose config` (v5.6.1).
    fn short_port_specs_expand_to_dockers_long_form() {
        let rows: &[(&str, Tree)] = &[
            (
                "80",
                json!([{"mode":"ingress","target":80,"protocol":"tcp"}]),
            ),
            (
                "8080:80",
                json!([{"mode":"ingress","target":80,"published":"8080","protocol":"tcp"}]),
            ),
            (
                "80/udp",
                json!([{"mode":"ingress","target":80,"protocol":"udp"}]),
            ),
            (
                "80/UDP",
                json!([{"mode":"ingress","target":80,"protocol":"udp"}]),
            ),
            (
                "80/sctp",
                json!([{"mode":"ingress","target":80,"protocol":"sctp"}]),
            ),
            (
                "80/",
                json!([{"mode":"ingress","target":80,"protocol":"tcp"}]),
            ),
            (
                "127.0.0.1:8080:80",
                json!([{"mode":"ingress","host_ip":"127.0.0.1","target":80,"published":"8080","protocol":"tcp"}]),
            ),
            (
                "127.0.0.1::80",
                json!([{"mode":"ingress","host_ip":"127.0.0.1","target":80,"protocol":"tcp"}]),
            ),
            (
                "[::1]:80:80",
                json!([{"mode":"ingress","host_ip":"::1","target":80,"published":"80","protocol":"tcp"}]),
            ),
            (
                "::1:81:81",
                json!([{"mode":"ingress","host_ip":"::1","target":81,"published":"81","protocol":"tcp"}]),
            ),
            (
                "[fe80::1]::53/udp",
                json!([{"mode":"ingress","host_ip":"fe80::1","target":53,"protocol":"udp"}]),
            ),
            (
                "9000-9001:9000-9001",
                json!([
                    {"mode":"ingress","target":9000,"published":"9000","protocol":"tcp"},
                    {"mode":"ingress","target":9001,"published":"9001","protocol":"tcp"}
                ]),
            ),
            (
                "9-10:9-10",
                json!([
                    {"mode":"ingress","target":10,"published":"10","protocol":"tcp"},
                    {"mode":"ingress","target":9,"published":"9","protocol":"tcp"}
                ]),
            ),
            (
                "3000-3001",
                json!([
                    {"mode":"ingress","target":3000,"protocol":"tcp"},
                    {"mode":"ingress","target":3001,"protocol":"tcp"}
                ]),
            ),
            (
                "127.0.0.1:8000-8010:80/UDP",
                json!([{"mode":"ingress","host_ip":"127.0.0.1","target":80,"published":"8000-8010","protocol":"udp"}]),
            ),
            (
                "80-80:80-80",
                json!([{"mode":"ingress","target":80,"published":"80","protocol":"tcp"}]),
            ),
            (
                "0:83",
                json!([{"mode":"ingress","target":83,"published":"0","protocol":"tcp"}]),
            ),
            (
                "+82:80",
                json!([{"mode":"ingress","target":80,"published":"82","protocol":"tcp"}]),
            ),
            (
                "80-80:81",
                json!([{"mode":"ingress","target":81,"published":"80","protocol":"tcp"}]),
            ),
            (
                "08:080",
                json!([{"mode":"ingress","target":80,"published":"8","protocol":"tcp"}]),
            ),
            (
                "1.2.3.4::80-81",
                json!([
                    {"mode":"ingress","host_ip":"1.2.3.4","target":80,"protocol":"tcp"},
                    {"mode":"ingress","host_ip":"1.2.3.4","target":81,"protocol":"tcp"}
                ]),
            ),
            (
                "::80",
                json!([{"mode":"ingress","target":80,"protocol":"tcp"}]),
            ),
            (
                "+80",
                json!([{"mode":"ingress","target":80,"protocol":"tcp"}]),
            ),
            ("0", json!([{"mode":"ingress","protocol":"tcp"}])),
            (
                "0.0.0.0:65535:65535",
                json!([{"mode":"ingress","host_ip":"0.0.0.0","target":65535,"published":"65535","protocol":"tcp"}]),
            ),
        ];
        for (spec, want) in rows {
            let got = parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
            assert_eq!(&Tree::Array(got), want, "{spec}");
        }
    }

    #[test]
    fn malformed_port_specs_are_rejected() {
        for spec in [
            "",
            "abc",
            "80:80:80:80",
            "80/icmp",
            "80:abc",
            "65536",
            "-1",
            "80-70",
            "1-2-3",
            "8000-8001:80-82",
            "80:80-81",
            "[::1:80:80",
            "[::1]x:80:80",
            "999.1.1.1:80:80",
            "localhost:80:80",
            ":",
            "80:",
            "/tcp",
            "fe80::1%eth0:80:80",
            "١٢:80",
            "0x50",
            " 80",
            "1.2.3.4:80",
        ] {
            assert!(parse(spec).is_err(), "{spec:?} should be rejected");
        }
    }
}
