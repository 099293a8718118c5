//! The API's request guards as pure rules: which `Host` it answers to, how big a body each route takes, when reads need a token.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::http::Method;

/// The most body bytes a `POST` (a mutation: small JSON) may carry.
pub const MUTATION_BODY_LIMIT: usize = 16 * 1024;
/// The most body bytes any other request (a read) may carry.
pub const READ_BODY_LIMIT: usize = 1024;

/// The routes that need the bearer token when reads are guarded (`--api-read-auth`).
/// `/healthz` and `/readyz` are never guarded: liveness and readiness checks carry no token.
pub const GUARDED_READS: &[&str] = &["/status", "/evidence", "/metrics", "/version"];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GuardError {
    #[error(
        "--api-host (or SPINDLE_API_HOSTS): entry {index} is not a host name; write a DNS name or an IP address, optionally with :PORT"
    )]
    BadHostName { index: usize },
}

/// How `spindle run` serves its API: limits, timeouts and the accepted `Host` names.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The most connections held open at once (`--api-max-connections`).
    pub max_connections: usize,
    /// The request head must arrive within this time after the connection starts waiting for it
    /// (`--api-header-timeout`); this is also how long a kept-alive connection may idle.
    pub header_timeout: Duration,
    /// Reading the body and answering must end within this time (`--api-request-timeout`).
    pub request_timeout: Duration,
    /// A connection that moves no byte for this long while no request is handled is closed
    /// (`--api-idle-timeout`): a client that stops reading its answer.
    pub idle_timeout: Duration,
    /// Further names the `Host` header may carry (`--api-host`).
    pub hosts: Vec<String>,
    /// `--api-read-auth`: `None` decides by the address (on beyond loopback).
    pub read_auth: Option<bool>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_connections: 64,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            hosts: Vec::new(),
            read_auth: None,
        }
    }
}

/// Whether reads need the token: as asked, else on exactly when the API is bound beyond loopback
/// (an unspecified address such as `0.0.0.0` is beyond loopback).
pub fn read_auth(asked: Option<bool>, bound: SocketAddr) -> bool {
    asked.unwrap_or(!bound.ip().is_loopback())
}

/// Whether `path` is a read that [`read_auth`] guards.
pub fn is_guarded_read(method: &Method, path: &str) -> bool {
    (method == Method::GET || method == Method::HEAD) && GUARDED_READS.contains(&path)
}

/// The mutation routes (`POST`), each with the action name its log lines and evidence use.
pub const MUTATIONS: &[(&str, &str)] = &[
    ("/reconcile", "reconcile"),
    ("/profile", "profile"),
    ("/pause", "pause"),
    ("/resume", "resume"),
];

/// The action of a mutation route, checked for its bearer token from the request head before a
/// byte of its body is read; `None` for every other request.
pub fn mutation(method: &Method, path: &str) -> Option<&'static str> {
    if method != Method::POST {
        return None;
    }
    MUTATIONS.iter().find(|(p, _)| *p == path).map(|(_, a)| *a)
}

/// The most body bytes a request with `method` may carry.
pub fn body_limit(method: &Method) -> usize {
    if method == Method::POST {
        MUTATION_BODY_LIMIT
    } else {
        READ_BODY_LIMIT
    }
}

/// The host of `host[:port]` (`[v6]` or `[v6]:port` for IPv6), lower-cased and without a
/// trailing dot; `None` when the text is not of that shape (a port must be a number to 65535).
fn parse_authority(text: &str) -> Option<String> {
    let text = text.trim();
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        inner.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (inner.to_string(), port)
    } else {
        match text.split_once(':') {
            Some((h, p)) if !p.contains(':') => (h.to_string(), Some(p)),
            Some(_) => return None,
            None => (text.to_string(), None),
        }
    };
    match port {
        None => {}
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u16>().ok()?;
        }
        Some(_) => return None,
    }
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let name_like = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_' || b == b':');
    (!host.is_empty() && name_like).then_some(host)
}

/// Which `Host` values the API answers to. DNS rebinding makes a browser send the attacker's
/// name as `Host`; only names the operator chose, `localhost` and IP literals (which cannot be
/// rebound) pass.
#[derive(Clone, Debug)]
pub struct HostPolicy {
    bound: SocketAddr,
    names: Vec<String>,
}

impl HostPolicy {
    /// The policy of an API bound at `bound`, also answering to each of `extra` (`name`; a
    /// `:port` after it is allowed and ignored).
    pub fn new(bound: SocketAddr, extra: &[String]) -> Result<Self, GuardError> {
        let names = extra
            .iter()
            .enumerate()
            .map(|(i, e)| parse_authority(e).ok_or(GuardError::BadHostName { index: i + 1 }))
            .collect::<Result<_, _>>()?;
        Ok(HostPolicy { bound, names })
    }

    /// Whether a request whose `Host` (or absolute URI's authority) is `host` may be answered,
    /// on a connection that reached this host at `local`.
    ///
    /// Passes: the bound IP, the IP the connection reached, any loopback IP, `localhost`, and
    /// every configured name. The port is not compared: rebinding is about the name (a browser
    /// sends the name of the page's URL), and a published or proxied port may differ from the
    /// bound one.
    pub fn allows(&self, host: &str, local: IpAddr) -> bool {
        let Some(host) = parse_authority(host) else {
            return false;
        };
        match host.parse::<IpAddr>() {
            Ok(ip) => {
                let ip = canonical(ip);
                ip.is_loopback()
                    || ip == canonical(local)
                    || (!self.bound.ip().is_unspecified() && ip == canonical(self.bound.ip()))
                    || self.names.contains(&host)
            }
            Err(_) => host == "localhost" || self.names.contains(&host),
        }
    }
}

/// An IPv4-mapped IPv6 address as IPv4, so that both spellings compare equal.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(bound: &str, extra: &[&str]) -> HostPolicy {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        HostPolicy::new(bound.parse().unwrap(), &extra).unwrap()
    }

    #[test]
    fn only_the_bound_address_localhost_loopback_and_configured_names_pass_the_host_check() {
        let lo = policy("127.0.0.1:9477", &[]);
        let any = policy(
            "0.0.0.0:9477",
            &["spindle.internal", "Proxy.Example.com:8443"],
        );
        let v6 = policy("[::1]:9477", &[]);
        let local4: IpAddr = "127.0.0.1".parse().unwrap();
        let lan: IpAddr = "192.168.1.5".parse().unwrap();
        let cases: &[(&HostPolicy, &str, IpAddr, bool)] = &[
            (&lo, "127.0.0.1:9477", local4, true),
            (&lo, "127.0.0.1", local4, true),
            (&lo, "localhost:9477", local4, true),
            (&lo, "LOCALHOST.", local4, true),
            (&lo, "[::1]:9477", local4, true),
            (&lo, "[::1]", local4, true),
            (&lo, "127.0.0.2:9477", local4, true),
            // DNS rebinding: the attacker's name, with or without our port.
            (&lo, "evil.example:9477", local4, false),
            (&lo, "evil.example", local4, false),
            (&lo, "localhost.evil.example", local4, false),
            (&lo, "127.0.0.1.evil.example", local4, false),
            // The port is not compared (a published or proxied port may differ).
            (&lo, "localhost:80", local4, true),
            (&lo, "127.0.0.1:9999", local4, true),
            // Not an authority at all.
            (&lo, "", local4, false),
            (&lo, "localhost:", local4, false),
            (&lo, "localhost:x", local4, false),
            (&lo, "a:b:c", local4, false),
            (&lo, "[::1", local4, false),
            (&lo, "[nothex]:9477", local4, false),
            (&lo, "local host", local4, false),
            (&lo, "user@localhost", local4, false),
            // Configured names are ignored unless configured.
            (&lo, "spindle.internal:9477", local4, false),
            // Bound to every interface: the address the connection reached passes, and the names.
            (&any, "192.168.1.5:9477", lan, true),
            (&any, "192.168.1.6:9477", lan, false),
            (&any, "0.0.0.0:9477", lan, false),
            (&any, "spindle.internal", lan, true),
            (&any, "spindle.internal:9477", lan, true),
            (&any, "SPINDLE.internal.:9477", lan, true),
            (&any, "spindle.internal:80", lan, true),
            (&any, "proxy.example.com:8443", lan, true),
            (&any, "proxy.example.com", lan, true),
            (&any, "evil.example:9477", lan, false),
            // IPv6 binding and IPv4-mapped spellings.
            (&v6, "[::1]:9477", "::1".parse().unwrap(), true),
            (&v6, "localhost:9477", "::1".parse().unwrap(), true),
            (&any, "[::ffff:192.168.1.5]:9477", lan, true),
        ];
        for (p, host, local, want) in cases {
            assert_eq!(p.allows(host, *local), *want, "{host:?} via {local}");
        }
    }

    #[test]
    fn a_configured_host_name_that_is_not_a_name_is_refused_by_position() {
        for (extra, bad) in [
            (vec!["ok.example", "bad name"], 2),
            (vec![""], 1),
            (vec!["x:99999"], 1),
            (vec!["ok", "ok2", "a/b"], 3),
        ] {
            let extra: Vec<String> = extra.into_iter().map(String::from).collect();
            let err = HostPolicy::new("0.0.0.0:1".parse().unwrap(), &extra).unwrap_err();
            assert_eq!(err, GuardError::BadHostName { index: bad });
        }
    }

    #[test]
    fn reads_need_the_token_by_default_exactly_when_the_api_is_bound_beyond_loopback() {
        let cases = [
            (None, "127.0.0.1:9477", false),
            (None, "[::1]:9477", false),
            (None, "0.0.0.0:9477", true),
            (None, "[::]:9477", true),
            (None, "10.0.0.5:9477", true),
            (Some(true), "127.0.0.1:9477", true),
            (Some(false), "0.0.0.0:9477", false),
        ];
        for (asked, bound, want) in cases {
            assert_eq!(
                read_auth(asked, bound.parse().unwrap()),
                want,
                "{asked:?} {bound}"
            );
        }
    }

    #[test]
    fn body_limits_and_guarded_reads_follow_the_route_table() {
        assert_eq!(body_limit(&Method::POST), MUTATION_BODY_LIMIT);
        assert_eq!(body_limit(&Method::GET), READ_BODY_LIMIT);
        for path in GUARDED_READS {
            assert!(is_guarded_read(&Method::GET, path), "{path}");
        }
        for path in ["/healthz", "/readyz", "/reconcile", "/nope"] {
            assert!(!is_guarded_read(&Method::GET, path), "{path}");
        }
        assert!(!is_guarded_read(&Method::POST, "/status"));
    }

    #[test]
    fn every_mutation_route_and_only_those_are_checked_for_a_token_at_the_head() {
        for (method, path, want) in [
            (Method::POST, "/reconcile", Some("reconcile")),
            (Method::POST, "/profile", Some("profile")),
            (Method::POST, "/pause", Some("pause")),
            (Method::POST, "/resume", Some("resume")),
            (Method::GET, "/reconcile", None),
            (Method::PUT, "/pause", None),
            (Method::POST, "/reconcile/", None),
            (Method::POST, "/status", None),
            (Method::POST, "/nope", None),
            (Method::GET, "/healthz", None),
        ] {
            assert_eq!(mutation(&method, path), want, "{method} {path}");
        }
    }
}
