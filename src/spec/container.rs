//! The container create body, as Compose's `getCreateConfigs` builds it, and container names.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::units::{duration_value, float_value, int_value, nano_cpus};
use super::{MANAGED_BY_VALUE, SpecContext, SpecError};
use crate::desired::compose_hash;
use crate::desired::typed::{DesiredService, string_entries};
use crate::labels;

/// Resolves references to other services' containers (`network_mode: service:x`, `ipc`, `pid`,
/// `volumes_from`, `links`), as Compose resolves them from the containers it observed.
pub trait Peers {
    /// The reference Compose puts after `container:` for the service's first container (by
    /// name): its ID.
    fn first_container(&self, service: &str) -> Option<String>;
    /// The names (without `/`) of the service's containers, for `links`.
    fn container_names(&self, service: &str) -> Vec<String>;
}

/// No other container exists.
pub struct NoPeers;

impl Peers for NoPeers {
    fn first_container(&self, _service: &str) -> Option<String> {
        None
    }
    fn container_names(&self, _service: &str) -> Vec<String> {
        Vec::new()
    }
}

/// `<project>-<service>-<n>`, or the service's `container_name`.
pub fn container_name(project: &str, svc: &DesiredService, number: u32) -> String {
    match &svc.container_name {
        Some(n) if !n.is_empty() => n.clone(),
        _ => format!("{project}-{}-{number}", svc.name),
    }
}

/// Service keys that Compose's create does not read (or that the loader already folded in),
/// and the keys this module translates. Anything else is refused.
const HANDLED: &[&str] = &[
    // not read at create, or folded in by the loader
    "build",
    "pull_policy",
    "scale",
    "profiles",
    "container_name",
    "env_file",
    "label_file",
    "extends",
    "develop",
    "attach",
    "platform",
    "image",
    "depends_on",
    "deploy",
    // translated below
    "annotations",
    "blkio_config",
    "cap_add",
    "cap_drop",
    "cgroup",
    "cgroup_parent",
    "command",
    "configs",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpus",
    "cpuset",
    "device_cgroup_rules",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "entrypoint",
    "environment",
    "expose",
    "external_links",
    "extra_hosts",
    "gpus",
    "group_add",
    "healthcheck",
    "hostname",
    "init",
    "ipc",
    "isolation",
    "labels",
    "links",
    "logging",
    "mac_address",
    "mem_limit",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "network_mode",
    "networks",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "pids_limit",
    "ports",
    "privileged",
    "read_only",
    "restart",
    "runtime",
    "secrets",
    "security_opt",
    "shm_size",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "tty",
    "ulimits",
    "user",
    "userns_mode",
    "uts",
    "volume_driver",
    "volumes",
    "volumes_from",
    "working_dir",
];

/// Keys that change behaviour and that spindle cannot reproduce, with the reason.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "models",
        "Compose runs models through Docker Model Runner; spindle does not",
    ),
    (
        "provider",
        "provider services run an external plugin; spindle does not",
    ),
    (
        "use_api_socket",
        "Compose injects the engine socket and credentials; spindle does not",
    ),
    (
        "post_start",
        "lifecycle hooks are run by Compose after start; spindle does not run them",
    ),
    (
        "pre_stop",
        "lifecycle hooks are run by Compose before stop; spindle does not run them",
    ),
    (
        "credential_spec",
        "credential specs are a Windows feature spindle does not support",
    ),
];

struct Svc<'a> {
    name: &'a str,
    m: &'a Map<String, Value>,
}

impl<'a> Svc<'a> {
    fn get(&self, k: &str) -> Option<&'a Value> {
        self.m.get(k).filter(|v| !v.is_null())
    }
    fn str(&self, k: &str) -> Option<&'a str> {
        self.get(k).and_then(Value::as_str)
    }
    fn string(&self, k: &str) -> String {
        self.str(k).unwrap_or_default().to_string()
    }
    fn bool(&self, k: &str) -> bool {
        self.get(k).and_then(Value::as_bool).unwrap_or(false)
    }
    fn strings(&self, k: &str) -> Option<Vec<String>> {
        self.get(k).and_then(Value::as_array).map(|a| {
            a.iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
    }
    fn int(&self, k: &str) -> Result<i64, SpecError> {
        match self.get(k) {
            None => Ok(0),
            Some(v) => int_value(v).ok_or_else(|| self.invalid(k, "is not a number")),
        }
    }
    fn invalid(&self, key: &str, message: &str) -> SpecError {
        SpecError::Invalid {
            service: self.name.to_string(),
            key: key.to_string(),
            message: message.to_string(),
        }
    }
    fn unsupported(&self, key: &str, why: &'static str) -> SpecError {
        SpecError::Unsupported {
            service: self.name.to_string(),
            key: key.to_string(),
            why,
        }
    }
}

fn svc_of(svc: &DesiredService) -> Result<Svc<'_>, SpecError> {
    let m = svc.model.as_object().ok_or_else(|| SpecError::Invalid {
        service: svc.name.clone(),
        key: String::new(),
        message: "is not a mapping".to_string(),
    })?;
    Ok(Svc { name: &svc.name, m })
}

/// Refuses keys spindle cannot reproduce, naming the first one.
fn check_keys(s: &Svc) -> Result<(), SpecError> {
    for k in s.m.keys() {
        if k.starts_with("x-") || HANDLED.contains(&k.as_str()) {
            continue;
        }
        if let Some((_, why)) = UNSUPPORTED.iter().find(|(u, _)| u == k) {
            return Err(s.unsupported(k, why));
        }
        return Err(s.unsupported(k, "spindle does not know this key"));
    }
    Ok(())
}

/// The service's networks in Compose's priority order (`priority` descending, then key).
pub fn service_networks(svc: &DesiredService) -> Vec<String> {
    let Some(nets) = svc.model.get("networks").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut keys: Vec<(i64, &String)> = nets
        .iter()
        .map(|(k, v)| (v.get("priority").and_then(Value::as_i64).unwrap_or(0), k))
        .collect();
    keys.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    keys.into_iter().map(|(_, k)| k.clone()).collect()
}

/// The `POST /containers/create` body for container `number` of the service.
///
/// `image_id` (the local image's ID) fills the `com.docker.compose.image` label, as Compose does
/// after it resolves the image. `peers` resolves `service:` references.
pub fn container_body(
    ctx: &SpecContext,
    svc: &DesiredService,
    number: u32,
    image_id: Option<&str>,
    peers: &dyn Peers,
) -> Result<Value, SpecError> {
    let s = svc_of(svc)?;
    check_keys(&s)?;

    let mut config = Map::new();
    config.insert("Hostname".into(), json!(s.string("hostname")));
    config.insert("Domainname".into(), json!(s.string("domainname")));
    config.insert("User".into(), json!(s.string("user")));
    config.insert("AttachStdin".into(), json!(false));
    config.insert("AttachStdout".into(), json!(true));
    config.insert("AttachStderr".into(), json!(true));
    config.insert("ExposedPorts".into(), exposed_ports(&s)?);
    config.insert("Tty".into(), json!(s.bool("tty")));
    config.insert("OpenStdin".into(), json!(s.bool("stdin_open")));
    config.insert("StdinOnce".into(), json!(false));
    config.insert("Env".into(), env(&s));
    config.insert("Cmd".into(), command(&s, "command"));
    if let Some(h) = healthcheck(&s)? {
        config.insert("Healthcheck".into(), h);
    }
    config.insert("Image".into(), json!(svc.image));
    config.insert("WorkingDir".into(), json!(s.string("working_dir")));
    config.insert("Entrypoint".into(), command(&s, "entrypoint"));
    if s.str("network_mode") == Some("disabled") {
        config.insert("NetworkDisabled".into(), json!(true));
    }
    config.insert(
        "Labels".into(),
        Value::Object(container_labels(ctx, svc, &s, number, image_id, peers)),
    );
    if let Some(sig) = s.str("stop_signal") {
        config.insert("StopSignal".into(), json!(sig));
    }
    if let Some(v) = s.get("stop_grace_period") {
        let ns =
            duration_value(v).ok_or_else(|| s.invalid("stop_grace_period", "is not a duration"))?;
        config.insert("StopTimeout".into(), json!(ns / 1_000_000_000));
    }

    let mut host = host_config(ctx, &s, peers)?;
    let (network_mode, networking) = network_settings(ctx, svc, &s, number, peers)?;
    host.insert("NetworkMode".into(), json!(network_mode));
    let links = links(ctx, &s, number, peers);
    if !links.is_empty() {
        host.insert("Links".into(), json!(links));
    }

    config.insert("HostConfig".into(), Value::Object(host));
    if let Some(n) = networking {
        config.insert("NetworkingConfig".into(), n);
    }
    Ok(Value::Object(config))
}

/// The service's networks after the primary one, with their endpoint settings, to connect
/// after create (API 1.41 takes one network at create). Empty with `network_mode`.
pub fn extra_networks(
    ctx: &SpecContext,
    svc: &DesiredService,
    number: u32,
    peers: &dyn Peers,
) -> Result<Vec<(String, Value)>, SpecError> {
    let s = svc_of(svc)?;
    if s.get("network_mode").is_some() || ctx.networks.is_empty() {
        return Ok(Vec::new());
    }
    let links = links(ctx, &s, number, peers);
    let mut out = Vec::new();
    for key in service_networks(svc).into_iter().skip(1) {
        let net = network_name(ctx, &s, &key)?;
        out.push((net, endpoint(ctx, svc, &s, number, &key, &links)?));
    }
    Ok(out)
}

fn network_name(ctx: &SpecContext, s: &Svc, key: &str) -> Result<String, SpecError> {
    ctx.networks
        .get(key)
        .cloned()
        .ok_or_else(|| SpecError::UnknownNetwork {
            service: s.name.to_string(),
            network: key.to_string(),
        })
}

fn command(s: &Svc, key: &str) -> Value {
    match s.strings(key) {
        Some(v) => json!(v),
        None => Value::Null,
    }
}

fn env(s: &Svc) -> Value {
    let list: Vec<String> = string_entries(s.get("environment"))
        .into_iter()
        .map(|(k, v)| match v {
            None => k,
            Some(v) => format!("{k}={v}"),
        })
        .collect();
    json!(list)
}

fn healthcheck(s: &Svc) -> Result<Option<Value>, SpecError> {
    let Some(h) = s.get("healthcheck").and_then(Value::as_object) else {
        return Ok(None);
    };
    let dur = |k: &str| -> Result<Option<i64>, SpecError> {
        match h.get(k).filter(|v| !v.is_null()) {
            None => Ok(None),
            Some(v) => duration_value(v)
                .map(Some)
                .ok_or_else(|| s.invalid(&format!("healthcheck.{k}"), "is not a duration")),
        }
    };
    let mut out = Map::new();
    let disabled = h.get("disable").and_then(Value::as_bool).unwrap_or(false);
    let test: Option<Vec<String>> = if disabled {
        Some(vec!["NONE".to_string()])
    } else {
        h.get("test").and_then(Value::as_array).map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect()
        })
    };
    if let Some(t) = test {
        out.insert("Test".into(), json!(t));
    }
    let start_period = dur("start_period")?;
    let start_interval = dur("start_interval")?;
    if start_interval.is_some() && start_period.is_none() {
        return Err(s.invalid(
            "healthcheck.start_interval",
            "requires healthcheck.start_period to be set",
        ));
    }
    for (k, field) in [("interval", "Interval"), ("timeout", "Timeout")] {
        if let Some(ns) = dur(k)?.filter(|n| *n != 0) {
            out.insert(field.into(), json!(ns));
        }
    }
    if let Some(ns) = start_period.filter(|n| *n != 0) {
        out.insert("StartPeriod".into(), json!(ns));
    }
    if let Some(ns) = start_interval.filter(|n| *n != 0) {
        out.insert("StartInterval".into(), json!(ns));
    }
    if let Some(r) = h.get("retries").and_then(Value::as_i64).filter(|r| *r != 0) {
        out.insert("Retries".into(), json!(r));
    }
    Ok(Some(Value::Object(out)))
}

fn container_labels(
    ctx: &SpecContext,
    svc: &DesiredService,
    s: &Svc,
    number: u32,
    image_id: Option<&str>,
    peers: &dyn Peers,
) -> Map<String, Value> {
    let mut l = Map::new();
    for (k, v) in string_entries(s.get("labels")) {
        l.insert(k, json!(v.unwrap_or_default()));
    }
    let join = |ps: &[std::path::PathBuf]| {
        ps.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    l.insert(labels::PROJECT.into(), json!(ctx.project));
    l.insert(labels::SERVICE.into(), json!(svc.name));
    l.insert(labels::VERSION.into(), json!(ctx.compose_version_label));
    l.insert(
        labels::WORKING_DIR.into(),
        json!(ctx.working_dir.display().to_string()),
    );
    l.insert(labels::CONFIG_FILES.into(), json!(join(&ctx.config_files)));
    l.insert(labels::ONEOFF.into(), json!("False"));
    if !ctx.environment_files.is_empty() {
        l.insert(
            "com.docker.compose.project.environment_file".into(),
            json!(join(&ctx.environment_files)),
        );
    }
    if let Some(id) = image_id {
        l.insert(labels::IMAGE.into(), json!(id));
    }
    // Compose's own hash, so that `docker compose up` finds the container up to date.
    let compose_hash =
        compose_hash::service_hash_with_peers(&svc.model, &|p| peers.first_container(p));
    l.insert(labels::CONFIG_HASH.into(), json!(compose_hash));
    l.insert(labels::CONTAINER_NUMBER.into(), json!(number.to_string()));
    let deps: Vec<String> = s
        .get("depends_on")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(dep, cfg)| {
                    format!(
                        "{dep}:{}:{}",
                        cfg.get("condition")
                            .and_then(Value::as_str)
                            .unwrap_or("service_started"),
                        cfg.get("restart").and_then(Value::as_bool).unwrap_or(false)
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    l.insert(labels::DEPENDS_ON.into(), json!(deps.join(",")));
    l.insert(labels::SPEC_HASH.into(), json!(svc.spec_hash));
    if let Some(r) = &ctx.revision {
        l.insert(labels::REVISION.into(), json!(r));
    }
    l.insert(labels::MANAGED_BY.into(), json!(MANAGED_BY_VALUE));
    l
}

/// `8080/tcp` from a port number and protocol.
fn port_key(port: &str, proto: &str) -> String {
    let proto = if proto.is_empty() { "tcp" } else { proto };
    format!("{port}/{}", proto.to_ascii_lowercase())
}

fn exposed_ports(s: &Svc) -> Result<Value, SpecError> {
    let mut set = BTreeSet::new();
    for (i, p) in s
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let target = p
            .get("target")
            .and_then(int_value)
            .ok_or_else(|| s.invalid(&format!("ports[{i}].target"), "is not a port"))?;
        let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("tcp");
        set.insert(port_key(&target.to_string(), proto));
    }
    for (i, e) in s
        .strings("expose")
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let (range, proto) = e.split_once('/').unwrap_or((e.as_str(), "tcp"));
        let bad = || s.invalid(&format!("expose[{i}]"), "is not a port or port range");
        let (a, b) = match range.split_once('-') {
            Some((a, b)) => (a, b),
            None => (range, range),
        };
        let a: u16 = a.trim().parse().map_err(|_| bad())?;
        let b: u16 = b.trim().parse().map_err(|_| bad())?;
        if b < a {
            return Err(bad());
        }
        for p in a..=b {
            set.insert(port_key(&p.to_string(), proto));
        }
    }
    let mut m = Map::new();
    for k in set {
        m.insert(k, json!({}));
    }
    Ok(Value::Object(m))
}

fn port_bindings(s: &Svc) -> Result<Value, SpecError> {
    let mut m = Map::new();
    for (i, p) in s
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let target = p
            .get("target")
            .and_then(int_value)
            .ok_or_else(|| s.invalid(&format!("ports[{i}].target"), "is not a port"))?;
        let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("tcp");
        let host_ip = p.get("host_ip").and_then(Value::as_str).unwrap_or_default();
        let published = match p.get("published") {
            Some(Value::String(x)) => x.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        let entry = m
            .entry(port_key(&target.to_string(), proto))
            .or_insert_with(|| json!([]));
        if let Value::Array(a) = entry {
            a.push(json!({"HostIp": host_ip, "HostPort": published}));
        }
    }
    Ok(Value::Object(m))
}

fn host_config(
    ctx: &SpecContext,
    s: &Svc,
    peers: &dyn Peers,
) -> Result<Map<String, Value>, SpecError> {
    let mut h = Map::new();
    let (binds, mounts) = volumes(ctx, s)?;
    if let Some(a) = s.get("annotations") {
        h.insert("Annotations".into(), a.clone());
    }
    if !binds.is_empty() {
        h.insert("Binds".into(), json!(binds));
    }
    if !mounts.is_empty() {
        h.insert("Mounts".into(), Value::Array(mounts));
    }
    // The Go engine client Compose uses normalises capabilities (`net_admin` → `CAP_NET_ADMIN`),
    // sorted and without duplicates.
    for (key, field) in [("cap_add", "CapAdd"), ("cap_drop", "CapDrop")] {
        if let Some(v) = s.strings(key) {
            let caps: BTreeSet<String> = v.iter().map(|c| normalize_capability(c)).collect();
            h.insert(field.into(), json!(caps));
        }
    }
    if let Some(v) = s.get("init").and_then(Value::as_bool) {
        h.insert("Init".into(), json!(v));
    }
    let ipc = resolve_ns(s, "ipc", peers)?;
    h.insert("IpcMode".into(), json!(ipc));
    h.insert("CgroupnsMode".into(), json!(s.string("cgroup")));
    h.insert("ReadonlyRootfs".into(), json!(s.bool("read_only")));
    h.insert("RestartPolicy".into(), restart_policy(s)?);
    h.insert("ShmSize".into(), json!(s.int("shm_size")?));
    if let Some(v) = s.get("sysctls").and_then(Value::as_object) {
        h.insert("Sysctls".into(), string_map(v));
    }
    h.insert("PortBindings".into(), port_bindings(s)?);
    resources(s, &mut h)?;
    h.insert("VolumeDriver".into(), json!(s.string("volume_driver")));
    if let Some(v) = s.strings("volumes_from") {
        let mut out = Vec::new();
        for entry in v {
            let parts: Vec<&str> = entry.split(':').collect();
            if parts.first() == Some(&"container") {
                out.push(parts.get(1).copied().unwrap_or_default().to_string());
                continue;
            }
            let peer = parts.first().copied().unwrap_or_default();
            let id = peers
                .first_container(peer)
                .ok_or_else(|| SpecError::MissingPeer {
                    service: s.name.to_string(),
                    key: "volumes_from".into(),
                    peer: peer.to_string(),
                })?;
            out.push(id);
        }
        h.insert("VolumesFrom".into(), json!(out));
    }
    if let Some(v) = s.strings("dns") {
        h.insert("Dns".into(), json!(v));
    }
    if let Some(v) = s.strings("dns_search") {
        h.insert("DnsSearch".into(), json!(v));
    }
    if let Some(v) = s.strings("dns_opt") {
        h.insert("DnsOptions".into(), json!(v));
    }
    // The model holds `host=ip`; the engine wants `host:ip`.
    let hosts: Vec<String> = s
        .strings("extra_hosts")
        .unwrap_or_default()
        .into_iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => format!("{k}:{v}"),
            None => e,
        })
        .collect();
    h.insert("ExtraHosts".into(), json!(hosts));
    let (secopts, unconfined) = security_opts(s)?;
    if !secopts.is_empty() {
        h.insert("SecurityOpt".into(), json!(secopts));
    }
    if let Some(v) = s.get("storage_opt").and_then(Value::as_object) {
        h.insert("StorageOpt".into(), string_map(v));
    }
    h.insert("UsernsMode".into(), json!(s.string("userns_mode")));
    h.insert("UTSMode".into(), json!(s.string("uts")));
    h.insert("Privileged".into(), json!(s.bool("privileged")));
    let pid = resolve_ns(s, "pid", peers)?;
    h.insert("PidMode".into(), json!(pid));
    let mut tmpfs = Map::new();
    for t in s.strings("tmpfs").unwrap_or_default() {
        let (k, v) = t.split_once(':').unwrap_or((t.as_str(), ""));
        tmpfs.insert(k.to_string(), json!(v));
    }
    h.insert("Tmpfs".into(), Value::Object(tmpfs));
    h.insert("Isolation".into(), json!(s.string("isolation")));
    h.insert("Runtime".into(), json!(s.string("runtime")));
    let log = match s.get("logging").and_then(Value::as_object) {
        Some(l) => {
            let mut o = Map::new();
            o.insert(
                "Type".into(),
                json!(l.get("driver").and_then(Value::as_str).unwrap_or_default()),
            );
            if let Some(opts) = l.get("options").and_then(Value::as_object) {
                o.insert("Config".into(), string_map(opts));
            }
            Value::Object(o)
        }
        None => json!({"Type": ""}),
    };
    h.insert("LogConfig".into(), log);
    if let Some(v) = s.strings("group_add") {
        h.insert("GroupAdd".into(), json!(v));
    }
    h.insert("OomScoreAdj".into(), json!(s.int("oom_score_adj")?));
    if unconfined {
        h.insert("MaskedPaths".into(), json!([]));
        h.insert("ReadonlyPaths".into(), json!([]));
    }
    Ok(h)
}

fn normalize_capability(c: &str) -> String {
    let c = c.trim().to_ascii_uppercase();
    if c == "ALL" || c.starts_with("CAP_") {
        c
    } else {
        format!("CAP_{c}")
    }
}

fn string_map(o: &Map<String, Value>) -> Value {
    let mut m = Map::new();
    for (k, v) in o {
        let v = match v {
            Value::String(x) => x.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        m.insert(k.clone(), json!(v));
    }
    Value::Object(m)
}

/// `service:x` → `container:<id of x's first container>`; other values pass through.
fn resolve_ns(s: &Svc, key: &str, peers: &dyn Peers) -> Result<String, SpecError> {
    let v = s.string(key);
    match v.strip_prefix("service:") {
        Some(peer) => peers
            .first_container(peer)
            .map(|id| format!("container:{id}"))
            .ok_or_else(|| SpecError::MissingPeer {
                service: s.name.to_string(),
                key: key.to_string(),
                peer: peer.to_string(),
            }),
        None => Ok(v),
    }
}

fn security_opts(s: &Svc) -> Result<(Vec<String>, bool), SpecError> {
    let mut out = Vec::new();
    let mut unconfined = false;
    for opt in s.strings("security_opt").unwrap_or_default() {
        if opt == "systempaths=unconfined" {
            unconfined = true;
            continue;
        }
        let (k, v) = match opt.split_once('=') {
            Some(kv) => kv,
            None if opt == "no-new-privileges" => (opt.as_str(), ""),
            None => opt
                .split_once(':')
                .ok_or_else(|| s.invalid("security_opt", "is not key=value or key:value"))?,
        };
        if k == "seccomp" && v != "unconfined" && v != "builtin" {
            return Err(s.unsupported(
                "security_opt",
                "a seccomp profile file is inlined by Compose at create; spindle does not read it",
            ));
        }
        out.push(opt.clone());
    }
    Ok((out, unconfined))
}

fn restart_policy(s: &Svc) -> Result<Value, SpecError> {
    let map = |c: &str| -> String {
        match c {
            "none" | "no" => "no",
            "on-failure" => "on-failure",
            "unless-stopped" => "unless-stopped",
            "any" | "always" => "always",
            other => other,
        }
        .to_string()
    };
    let mut name = String::new();
    let mut count: i64 = 0;
    if let Some(r) = s.str("restart").filter(|r| !r.is_empty()) {
        let (n, num) = r.split_once(':').unwrap_or((r, ""));
        name = map(n);
        count = num.parse().unwrap_or(0);
    }
    if let Some(rp) = s
        .get("deploy")
        .and_then(|d| d.get("restart_policy"))
        .filter(|v| !v.is_null())
    {
        name = map(rp.get("condition").and_then(Value::as_str).unwrap_or(""));
        count = rp.get("max_attempts").and_then(Value::as_i64).unwrap_or(0);
    }
    Ok(json!({"Name": name, "MaximumRetryCount": count}))
}

fn resources(s: &Svc, h: &mut Map<String, Value>) -> Result<(), SpecError> {
    h.insert("CgroupParent".into(), json!(s.string("cgroup_parent")));
    let mut memory = s.int("mem_limit")?;
    h.insert("MemorySwap".into(), json!(s.int("memswap_limit")?));
    let swappiness = s.int("mem_swappiness")?;
    if swappiness != 0 {
        h.insert("MemorySwappiness".into(), json!(swappiness));
    }
    let mut reservation = s.int("mem_reservation")?;
    h.insert("OomKillDisable".into(), json!(s.bool("oom_kill_disable")));
    h.insert("CpuCount".into(), json!(s.int("cpu_count")?));
    h.insert("CpuPeriod".into(), json!(s.int("cpu_period")?));
    h.insert("CpuQuota".into(), json!(s.int("cpu_quota")?));
    h.insert("CpuRealtimePeriod".into(), json!(s.int("cpu_rt_period")?));
    h.insert("CpuRealtimeRuntime".into(), json!(s.int("cpu_rt_runtime")?));
    h.insert("CpuShares".into(), json!(s.int("cpu_shares")?));
    let cpus = match s.get("cpus") {
        Some(v) => float_value(v).ok_or_else(|| s.invalid("cpus", "is not a number"))?,
        None => 0.0,
    };
    let mut nano = nano_cpus(cpus);
    let percent = match s.get("cpu_percent") {
        Some(v) => float_value(v).ok_or_else(|| s.invalid("cpu_percent", "is not a number"))?,
        None => 0.0,
    };
    h.insert("CpuPercent".into(), json!((percent * 100.0) as i64));
    h.insert("CpusetCpus".into(), json!(s.string("cpuset")));
    if let Some(v) = s.strings("device_cgroup_rules") {
        h.insert("DeviceCgroupRules".into(), json!(v));
    }
    let mut pids = s.int("pids_limit")?;
    blkio(s, h)?;
    let mut device_requests = Vec::new();
    if let Some(res) = s.get("deploy").and_then(|d| d.get("resources")) {
        if let Some(l) = res.get("limits").filter(|v| !v.is_null()) {
            if let Some(m) = l.get("memory").and_then(int_value).filter(|m| *m != 0) {
                memory = m;
            }
            if let Some(c) = l.get("cpus").and_then(float_value).filter(|c| *c != 0.0) {
                nano = nano_cpus(c);
            }
            if let Some(p) = l.get("pids").and_then(int_value).filter(|p| *p > 0) {
                pids = p;
            }
        }
        if let Some(r) = res.get("reservations").filter(|v| !v.is_null()) {
            if let Some(m) = r.get("memory").and_then(int_value).filter(|m| *m != 0) {
                reservation = m;
            }
            for d in r
                .get("devices")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                device_requests.push(json!({
                    "Driver": d.get("driver").and_then(Value::as_str).unwrap_or_default(),
                    "Count": d.get("count").and_then(Value::as_i64).unwrap_or(0),
                    "DeviceIDs": d.get("device_ids").cloned().unwrap_or(Value::Null),
                    "Capabilities": [d.get("capabilities").cloned().unwrap_or(json!([]))],
                    "Options": d.get("options").cloned().unwrap_or(Value::Null),
                }));
            }
        }
    }
    h.insert("Memory".into(), json!(memory));
    h.insert("MemoryReservation".into(), json!(reservation));
    h.insert("NanoCpus".into(), json!(nano));
    if pids != 0 {
        h.insert("PidsLimit".into(), json!(pids));
    }
    let mut devices = Vec::new();
    let mut cdi = Vec::new();
    for (i, d) in s
        .get("devices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let src = d.get("source").and_then(Value::as_str).unwrap_or_default();
        let dst = d.get("target").and_then(Value::as_str).unwrap_or_default();
        if src.is_empty() {
            return Err(s.invalid(&format!("devices[{i}]"), "has no source"));
        }
        if src == dst && is_cdi_name(src) {
            cdi.push(src.to_string());
            continue;
        }
        devices.push(json!({
            "PathOnHost": src,
            "PathInContainer": dst,
            "CgroupPermissions": d.get("permissions").and_then(Value::as_str).unwrap_or_default(),
        }));
    }
    if !devices.is_empty() {
        h.insert("Devices".into(), json!(devices));
    }
    if !cdi.is_empty() {
        device_requests.push(json!({"Driver": "cdi", "DeviceIDs": cdi}));
    }
    for g in s
        .get("gpus")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut caps: Vec<Value> = g
            .get("capabilities")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        caps.push(json!("gpu"));
        device_requests.push(json!({
            "Driver": g.get("driver").and_then(Value::as_str).unwrap_or_default(),
            "Count": g.get("count").and_then(Value::as_i64).unwrap_or(0),
            "DeviceIDs": g.get("device_ids").cloned().unwrap_or(Value::Null),
            "Capabilities": [caps],
            "Options": g.get("options").cloned().unwrap_or(Value::Null),
        }));
    }
    if !device_requests.is_empty() {
        h.insert("DeviceRequests".into(), json!(device_requests));
    }
    if let Some(u) = s.get("ulimits").and_then(Value::as_object) {
        let mut list = Vec::new();
        for (name, v) in u {
            let single = v.as_i64().unwrap_or(0);
            let soft = v.get("soft").and_then(Value::as_i64).filter(|x| *x != 0);
            let hard = v.get("hard").and_then(Value::as_i64).filter(|x| *x != 0);
            list.push(json!({
                "Name": name,
                "Hard": hard.unwrap_or(single),
                "Soft": soft.unwrap_or(single),
            }));
        }
        h.insert("Ulimits".into(), json!(list));
    }
    Ok(())
}

/// A CDI device name: `vendor.com/class=name`.
fn is_cdi_name(s: &str) -> bool {
    match s.split_once('=') {
        Some((kind, name)) => kind.contains('/') && !name.is_empty() && !kind.starts_with('/'),
        None => false,
    }
}

fn blkio(s: &Svc, h: &mut Map<String, Value>) -> Result<(), SpecError> {
    let Some(b) = s.get("blkio_config") else {
        return Ok(());
    };
    // compose-go's model spells the device entries' keys `Path`, `Weight` and `Rate` (its structs
    // carry no JSON names); the lower-case spelling is accepted too.
    let entry = |d: &'_ Value, k: &str| -> Option<Value> {
        let upper = format!("{}{}", k[..1].to_ascii_uppercase(), &k[1..]);
        d.get(&upper).or_else(|| d.get(k)).cloned()
    };
    let path = |d: &Value| -> String {
        entry(d, "path")
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    if let Some(w) = b.get("weight").and_then(Value::as_i64) {
        h.insert("BlkioWeight".into(), json!(w));
    }
    if let Some(list) = b.get("weight_device").and_then(Value::as_array) {
        let v: Vec<Value> = list
            .iter()
            .map(|d| json!({"Path": path(d), "Weight": entry(d, "weight").as_ref().and_then(int_value).unwrap_or(0)}))
            .collect();
        h.insert("BlkioWeightDevice".into(), json!(v));
    }
    for (key, field) in [
        ("device_read_bps", "BlkioDeviceReadBps"),
        ("device_read_iops", "BlkioDeviceReadIOps"),
        ("device_write_bps", "BlkioDeviceWriteBps"),
        ("device_write_iops", "BlkioDeviceWriteIOps"),
    ] {
        if let Some(list) = b.get(key).and_then(Value::as_array) {
            let mut v = Vec::new();
            for d in list {
                let rate = entry(d, "rate")
                    .as_ref()
                    .and_then(int_value)
                    .ok_or_else(|| s.invalid(&format!("blkio_config.{key}"), "has no rate"))?;
                v.push(json!({"Path": path(d), "Rate": rate}));
            }
            h.insert(field.into(), json!(v));
        }
    }
    Ok(())
}

/// Binds (legacy strings) and Mounts, split as Compose splits them.
fn volumes(ctx: &SpecContext, s: &Svc) -> Result<(Vec<String>, Vec<Value>), SpecError> {
    let mut binds = Vec::new();
    let mut mounts = Vec::new();
    let mut targets = BTreeSet::new();
    for (i, v) in s
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let path = format!("volumes[{i}]");
        let ty = v.get("type").and_then(Value::as_str).unwrap_or("volume");
        let source = v.get("source").and_then(Value::as_str).unwrap_or_default();
        let target = v.get("target").and_then(Value::as_str).unwrap_or_default();
        let ro = v.get("read_only").and_then(Value::as_bool).unwrap_or(false);
        targets.insert(target.to_string());
        let bind = v.get("bind").filter(|b| b.is_object());
        let vol = v.get("volume").filter(|b| b.is_object());
        let mut mount = Map::new();
        match ty {
            "bind" => {
                if !source.starts_with('/') {
                    return Err(s.invalid(&path, "bind source is not an absolute path"));
                }
                let create = bind
                    .and_then(|b| b.get("create_host_path"))
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                let propagation = bind
                    .and_then(|b| b.get("propagation"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let recursive = bind
                    .and_then(|b| b.get("recursive"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let selinux = bind
                    .and_then(|b| b.get("selinux"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let needs_mount =
                    bind.is_some() && (!create || !propagation.is_empty() || !recursive.is_empty());
                if !needs_mount {
                    let mut opts = vec![if ro { "ro" } else { "rw" }.to_string()];
                    if !selinux.is_empty() {
                        opts.push(selinux.to_string());
                    }
                    binds.push(format!("{source}:{target}:{}", opts.join(",")));
                    continue;
                }
                mount.insert("Type".into(), json!("bind"));
                mount.insert("Source".into(), json!(source));
                let mut bo = Map::new();
                if !propagation.is_empty() {
                    bo.insert("Propagation".into(), json!(propagation));
                }
                match recursive {
                    "disabled" => {
                        bo.insert("NonRecursive".into(), json!(true));
                    }
                    "writable" => {
                        bo.insert("ReadOnlyNonRecursive".into(), json!(true));
                    }
                    "readonly" => {
                        bo.insert("ReadOnlyForceRecursive".into(), json!(true));
                    }
                    _ => {}
                }
                if create {
                    bo.insert("CreateMountpoint".into(), json!(true));
                }
                mount.insert("BindOptions".into(), Value::Object(bo));
            }
            "volume" => {
                let docker_name = if source.is_empty() {
                    String::new()
                } else {
                    ctx.volumes
                        .get(source)
                        .cloned()
                        .unwrap_or_else(|| source.to_string())
                };
                let labels = vol
                    .and_then(|o| o.get("labels"))
                    .filter(|l| l.as_object().is_some_and(|o| !o.is_empty()));
                let subpath = vol
                    .and_then(|o| o.get("subpath"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let nocopy = vol
                    .and_then(|o| o.get("nocopy"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let project_volume = !source.is_empty() && ctx.volumes.contains_key(source);
                if project_volume && labels.is_none() && subpath.is_empty() && !nocopy {
                    binds.push(format!(
                        "{docker_name}:{target}:{}",
                        if ro { "ro" } else { "rw" }
                    ));
                    continue;
                }
                mount.insert("Type".into(), json!("volume"));
                mount.insert("Source".into(), json!(docker_name));
                if vol.is_some() {
                    let mut vo = Map::new();
                    if nocopy {
                        vo.insert("NoCopy".into(), json!(true));
                    }
                    if !subpath.is_empty() {
                        vo.insert("Subpath".into(), json!(subpath));
                    }
                    if let Some(l) = labels {
                        vo.insert("Labels".into(), l.clone());
                    }
                    mount.insert("VolumeOptions".into(), Value::Object(vo));
                }
            }
            "tmpfs" => {
                mount.insert("Type".into(), json!("tmpfs"));
                mount.insert("Source".into(), json!(source));
                if let Some(t) = v.get("tmpfs").filter(|t| t.is_object()) {
                    let mut to = Map::new();
                    if let Some(size) = t.get("size").and_then(int_value).filter(|x| *x != 0) {
                        to.insert("SizeBytes".into(), json!(size));
                    }
                    if let Some(mode) = t.get("mode").and_then(int_value).filter(|x| *x != 0) {
                        to.insert("Mode".into(), json!(mode));
                    }
                    mount.insert("TmpfsOptions".into(), Value::Object(to));
                }
            }
            "npipe" => return Err(s.unsupported(&path, "named pipes are a Windows feature")),
            "image" => {
                return Err(s.unsupported(&path, "image mounts need Docker Engine 28 (API 1.48)"));
            }
            "cluster" => return Err(s.unsupported(&path, "cluster volumes are a swarm feature")),
            _ => return Err(s.invalid(&path, "has an unknown type")),
        }
        mount.insert("Target".into(), json!(target));
        if ro {
            mount.insert("ReadOnly".into(), json!(true));
        }
        if let Some(c) = v.get("consistency").and_then(Value::as_str) {
            mount.insert("Consistency".into(), json!(c));
        }
        mounts.push(Value::Object(mount));
    }
    // Secrets, then configs, with file sources: read-only bind mounts (targets already taken
    // by volumes win, as in Compose).
    for (kind, base, section) in [
        ("secrets", "/run/secrets/", &ctx.secrets),
        ("configs", "/", &ctx.configs),
    ] {
        for (i, r) in s
            .get(kind)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let path = format!("{kind}[{i}]");
            let src = r.get("source").and_then(Value::as_str).unwrap_or_default();
            let target = match r.get("target").and_then(Value::as_str) {
                None | Some("") => format!("{base}{src}"),
                Some(t) if t.starts_with('/') => t.to_string(),
                Some(t) => format!("{base}{t}"),
            };
            let def = section
                .get(src)
                .ok_or_else(|| s.invalid(&path, "refers to an undefined top-level entry"))?;
            if def
                .get("external")
                .and_then(Value::as_bool)
                .unwrap_or(false)
            {
                return Err(s.unsupported(&path, "external secrets and configs are swarm-only"));
            }
            if def.get("driver").is_some() || def.get("template_driver").is_some() {
                return Err(s.unsupported(&path, "secret and config drivers are swarm-only"));
            }
            if def.get("environment").is_some() || def.get("content").is_some() {
                return Err(s.unsupported(
                    &path,
                    "Compose copies environment- and content-sourced files into the container after create; spindle does not",
                ));
            }
            let Some(file) = def.get("file").and_then(Value::as_str) else {
                return Err(s.invalid(&path, "has no file"));
            };
            if targets.contains(&target) {
                continue;
            }
            targets.insert(target.clone());
            let mut mount = Map::new();
            mount.insert("Type".into(), json!("bind"));
            mount.insert("Source".into(), json!(file));
            mount.insert("Target".into(), json!(target));
            mount.insert("ReadOnly".into(), json!(true));
            if kind == "secrets" {
                // Compose asks for `create_host_path: false` on secrets: empty bind options.
                mount.insert("BindOptions".into(), json!({}));
            }
            mounts.push(Value::Object(mount));
        }
    }
    Ok((binds, mounts))
}

fn links(ctx: &SpecContext, s: &Svc, number: u32, peers: &dyn Peers) -> Vec<String> {
    let mut out = Vec::new();
    for raw in s.strings("links").unwrap_or_default() {
        let (svc, alias) = match raw.split_once(':') {
            Some((a, b)) => (a.to_string(), b.to_string()),
            None => (raw.clone(), raw.clone()),
        };
        for c in peers.container_names(&svc) {
            out.push(format!("{c}:{alias}"));
            out.push(format!("{c}:{svc}-{number}"));
            out.push(format!("{c}:{}-{svc}-{number}", ctx.project));
        }
    }
    for raw in s.strings("external_links").unwrap_or_default() {
        let (ext, alias) = match raw.split_once(':') {
            Some((a, b)) => (a.to_string(), b.to_string()),
            None => (raw.clone(), raw.clone()),
        };
        out.push(format!("{ext}:{alias}"));
    }
    out
}

fn network_settings(
    ctx: &SpecContext,
    svc: &DesiredService,
    s: &Svc,
    number: u32,
    peers: &dyn Peers,
) -> Result<(String, Option<Value>), SpecError> {
    if s.get("network_mode").is_some() {
        return Ok((resolve_ns(s, "network_mode", peers)?, None));
    }
    if ctx.networks.is_empty() {
        return Ok(("none".to_string(), None));
    }
    let primary = service_networks(svc)
        .into_iter()
        .next()
        .unwrap_or_else(|| "default".to_string());
    let links = links(ctx, s, number, peers);
    let name = network_name(ctx, s, &primary)?;
    let mut ep = endpoint(ctx, svc, s, number, &primary, &links)?;
    // The service-level mac_address goes to the primary endpoint when that has none.
    if let (Some(mac), Value::Object(o)) = (s.str("mac_address"), &mut ep)
        && !o.contains_key("MacAddress")
    {
        o.insert("MacAddress".into(), json!(mac));
    }
    let mut endpoints = Map::new();
    endpoints.insert(name.clone(), ep);
    Ok((name, Some(json!({"EndpointsConfig": endpoints}))))
}

fn endpoint(
    ctx: &SpecContext,
    svc: &DesiredService,
    s: &Svc,
    number: u32,
    key: &str,
    links: &[String],
) -> Result<Value, SpecError> {
    let cfg = s
        .get("networks")
        .and_then(|n| n.get(key))
        .and_then(Value::as_object);
    let mut aliases = vec![container_name(&ctx.project, svc, number), svc.name.clone()];
    let mut ep = Map::new();
    if let Some(c) = cfg {
        if let Some(a) = c.get("aliases").and_then(Value::as_array) {
            aliases.extend(a.iter().filter_map(Value::as_str).map(str::to_string));
        }
        let mut ipam = Map::new();
        // Compose also puts the static addresses in the endpoint's `IPAddress` and (sic)
        // `IPv6Gateway`, which the engine shows until the container starts.
        if let Some(v4) = c.get("ipv4_address").and_then(Value::as_str) {
            ipam.insert("IPv4Address".into(), json!(v4));
            ep.insert("IPAddress".into(), json!(v4));
        }
        if let Some(v6) = c.get("ipv6_address").and_then(Value::as_str) {
            ipam.insert("IPv6Address".into(), json!(v6));
            ep.insert("IPv6Gateway".into(), json!(v6));
        }
        if let Some(ll) = c.get("link_local_ips").and_then(Value::as_array) {
            ipam.insert("LinkLocalIPs".into(), Value::Array(ll.clone()));
        }
        ep.insert("IPAMConfig".into(), Value::Object(ipam));
        if let Some(mac) = c.get("mac_address").and_then(Value::as_str) {
            ep.insert("MacAddress".into(), json!(mac));
        }
        if c.get("interface_name").is_some() {
            return Err(SpecError::Unsupported {
                service: s.name.to_string(),
                key: format!("networks.{key}.interface_name"),
                why: "interface_name requires Docker Engine 28.1 (API 1.49)",
            });
        }
        if let Some(o) = c
            .get("driver_opts")
            .and_then(Value::as_object)
            .map(string_map)
        {
            ep.insert("DriverOpts".into(), o);
        }
        if let Some(p) = c.get("gw_priority").and_then(Value::as_i64) {
            ep.insert("GwPriority".into(), json!(p));
        }
    }
    ep.insert("Aliases".into(), json!(aliases));
    if !links.is_empty() {
        ep.insert("Links".into(), json!(links));
    }
    Ok(Value::Object(ep))
}

/// The `HostConfig` resource fields and restart policy of the service (what `docker update`
/// can change is a subset).
pub(super) fn live_host_fields(svc: &DesiredService) -> Result<Map<String, Value>, SpecError> {
    let s = svc_of(svc)?;
    let mut h = Map::new();
    resources(&s, &mut h)?;
    h.insert("RestartPolicy".into(), restart_policy(&s)?);
    Ok(h)
}
