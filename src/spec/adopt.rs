//! Field-by-field comparison of a container's inspect document with the create body spindle
//! would send, to adopt containers Compose created without recreating them.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::labels;

/// Labels that legitimately differ between Compose's containers and spindle's: Compose's own
/// hash (the planner settles adoption by it before comparing fields, and when it differs the
/// fields decide: a container Compose made from an older file version that equals the desired
/// one field by field is still adoptable), the image digest (the planner compares image IDs),
/// the tool version, and spindle's own labels.
const IGNORED_LABELS: &[&str] = &[
    labels::CONFIG_HASH,
    labels::IMAGE,
    labels::VERSION,
    labels::SPEC_HASH,
    labels::REVISION,
    labels::MANAGED_BY,
    labels::REPLACES,
    "com.docker.compose.replace",
    "com.docker.compose.project.environment_file",
];

/// Mount options that engines older than the API that introduced them silently drop.
const ENGINE_DROPPED_MOUNT_OPTIONS: &[&str] = &[
    "CreateMountpoint",
    "Subpath",
    "ReadOnlyNonRecursive",
    "ReadOnlyForceRecursive",
];

/// The body with every network the service joins in `NetworkingConfig.EndpointsConfig` (the
/// shape API 1.44 accepts), for [`adoption_diff`] to check all of them.
pub fn with_all_networks(body: &Value, extra: &[(String, Value)]) -> Value {
    let mut b = body.clone();
    if let Some(eps) = b
        .get_mut("NetworkingConfig")
        .and_then(|n| n.get_mut("EndpointsConfig"))
        .and_then(Value::as_object_mut)
    {
        for (name, ep) in extra {
            eps.insert(name.clone(), ep.clone());
        }
    }
    b
}

/// Key paths (never values: they may be secrets) where the container's inspect document
/// (`GET /containers/{id}/json`) disagrees with `desired_body`. Empty: adoptable as is.
///
/// Only what the body sets is compared; what the engine fills in when the body leaves it empty
/// (the image's command, working dir, user, healthcheck timings, the daemon's log driver, IPC
/// mode, shm size, …) is accepted. Values the image adds (environment, labels, exposed ports)
/// are accepted too; [`adoption_diff_with_image`] checks them against the image instead.
/// Networks in the body's `EndpointsConfig` must all be joined (see [`with_all_networks`]).
pub fn adoption_diff(desired_body: &Value, inspect: &Value) -> Vec<String> {
    adoption_diff_with_image(desired_body, inspect, None)
}

/// [`adoption_diff`], with the image's inspect document (`GET /images/{id}/json`): values in
/// the container that neither the body nor the image explains are reported too.
pub fn adoption_diff_with_image(
    desired_body: &Value,
    inspect: &Value,
    image: Option<&Value>,
) -> Vec<String> {
    let mut d = Diff {
        out: Vec::new(),
        image: image.and_then(|i| i.get("Config").or_else(|| i.get("ContainerConfig"))),
    };
    let null = Value::Null;
    let cfg = inspect.get("Config").unwrap_or(&null);
    let host_in = inspect.get("HostConfig").unwrap_or(&null);
    let b = desired_body;
    let host = b.get("HostConfig").unwrap_or(&null);

    d.config(b, cfg, inspect);
    d.host(host, host_in, inspect);
    d.networks(b, inspect);
    d.out
}

struct Diff<'a> {
    out: Vec<String>,
    image: Option<&'a Value>,
}

fn is_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(Value::Bool(b)) => !b,
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| match x {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn set(v: Option<&Value>) -> BTreeSet<String> {
    strings(v).into_iter().collect()
}

fn int(v: Option<&Value>) -> i64 {
    v.and_then(Value::as_i64).unwrap_or(0)
}

/// `KEY=VALUE` list → key → the whole entry.
fn env_map(v: Option<&Value>) -> BTreeMap<String, String> {
    strings(v)
        .into_iter()
        .map(|e| {
            let k = e.split_once('=').map(|(k, _)| k).unwrap_or(&e).to_string();
            (k, e)
        })
        .collect()
}

fn obj(v: Option<&Value>) -> Map<String, Value> {
    v.and_then(Value::as_object).cloned().unwrap_or_default()
}

impl Diff<'_> {
    fn report(&mut self, path: impl Into<String>) {
        self.out.push(path.into());
    }

    fn image_field(&self, k: &str) -> Option<&Value> {
        self.image.and_then(|i| i.get(k))
    }

    /// Equal when the body sets a value; when it does not, the container's value must be the
    /// image's (checked only when the image is known) or empty.
    fn defaulted(&mut self, path: &str, want: Option<&Value>, have: Option<&Value>, k: &str) {
        if !is_empty(want) {
            if want != have {
                self.report(path);
            }
            return;
        }
        if self.image.is_some() && !is_empty(have) && have != self.image_field(k) {
            self.report(path);
        }
    }

    fn config(&mut self, b: &Value, cfg: &Value, inspect: &Value) {
        if b.get("Image") != cfg.get("Image") {
            self.report("Config.Image");
        }
        if let Some(id) = b
            .get("Labels")
            .and_then(|l| l.get(labels::IMAGE))
            .and_then(Value::as_str)
            && inspect.get("Image").and_then(Value::as_str) != Some(id)
        {
            self.report("Image");
        }
        for k in ["Hostname", "Domainname"] {
            if !is_empty(b.get(k)) && b.get(k) != cfg.get(k) {
                self.report(format!("Config.{k}"));
            }
        }
        for k in ["User", "WorkingDir", "StopSignal"] {
            self.defaulted(&format!("Config.{k}"), b.get(k), cfg.get(k), k);
        }
        for k in ["Tty", "OpenStdin"] {
            if b.get(k).and_then(Value::as_bool).unwrap_or(false)
                != cfg.get(k).and_then(Value::as_bool).unwrap_or(false)
            {
                self.report(format!("Config.{k}"));
            }
        }
        if b.get("StopTimeout").and_then(Value::as_i64)
            != cfg.get("StopTimeout").and_then(Value::as_i64)
        {
            self.report("Config.StopTimeout");
        }
        // Entrypoint: set (even to []) must match; unset takes the image's.
        match b.get("Entrypoint") {
            Some(Value::Array(want)) => {
                let have = strings(cfg.get("Entrypoint"));
                if strings(Some(&Value::Array(want.clone()))) != have {
                    self.report("Config.Entrypoint");
                }
            }
            _ => {
                if self.image.is_some()
                    && strings(cfg.get("Entrypoint")) != strings(self.image_field("Entrypoint"))
                {
                    self.report("Config.Entrypoint");
                }
            }
        }
        // Cmd: unset takes the image's, unless an entrypoint is set.
        // An empty command (`command: []`, `command: ""`) is no command: the engine takes the image's.
        match b.get("Cmd") {
            Some(Value::Array(a)) if !a.is_empty() => {
                if strings(b.get("Cmd")) != strings(cfg.get("Cmd")) {
                    self.report("Config.Cmd");
                }
            }
            _ => {
                let entrypoint_set =
                    matches!(b.get("Entrypoint"), Some(Value::Array(a)) if !a.is_empty());
                if entrypoint_set {
                    if !strings(cfg.get("Cmd")).is_empty() {
                        self.report("Config.Cmd");
                    }
                } else if self.image.is_some()
                    && strings(cfg.get("Cmd")) != strings(self.image_field("Cmd"))
                {
                    self.report("Config.Cmd");
                }
            }
        }
        // Environment, by key; the image adds its own.
        let want = env_map(b.get("Env"));
        let have = env_map(cfg.get("Env"));
        let from_image = env_map(self.image_field("Env"));
        for (k, e) in &want {
            if have.get(k) != Some(e) {
                self.report(format!("Config.Env.{k}"));
            }
        }
        if self.image.is_some() {
            for (k, e) in &have {
                if !want.contains_key(k) && from_image.get(k) != Some(e) {
                    self.report(format!("Config.Env.{k}"));
                }
            }
        }
        // Labels.
        let want = obj(b.get("Labels"));
        let have = obj(cfg.get("Labels"));
        let image_labels = obj(self.image_field("Labels"));
        for (k, v) in &want {
            if IGNORED_LABELS.contains(&k.as_str()) {
                continue;
            }
            let same = if k == labels::DEPENDS_ON {
                let split = |v: Option<&Value>| -> BTreeSet<String> {
                    v.and_then(Value::as_str)
                        .unwrap_or_default()
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                };
                split(Some(v)) == split(have.get(k))
            } else {
                have.get(k) == Some(v)
            };
            if !same {
                self.report(format!("Config.Labels.{k}"));
            }
        }
        if self.image.is_some() {
            for (k, v) in &have {
                if !want.contains_key(k)
                    && !IGNORED_LABELS.contains(&k.as_str())
                    && image_labels.get(k) != Some(v)
                {
                    self.report(format!("Config.Labels.{k}"));
                }
            }
        }
        // Exposed ports; the image adds its own.
        let want = obj(b.get("ExposedPorts"));
        let have = obj(cfg.get("ExposedPorts"));
        let image_ports = obj(self.image_field("ExposedPorts"));
        for k in want.keys() {
            if !have.contains_key(k) {
                self.report(format!("Config.ExposedPorts.{k}"));
            }
        }
        if self.image.is_some() {
            for k in have.keys() {
                if !want.contains_key(k) && !image_ports.contains_key(k) {
                    self.report(format!("Config.ExposedPorts.{k}"));
                }
            }
        }
        self.healthcheck(b.get("Healthcheck"), cfg.get("Healthcheck"));
    }

    fn healthcheck(&mut self, want: Option<&Value>, have: Option<&Value>) {
        let image = self.image_field("Healthcheck").cloned();
        let Some(want) = want.filter(|v| !v.is_null()) else {
            if let Some(img) = image
                && have != Some(&img)
                && !is_empty(have)
            {
                self.report("Config.Healthcheck");
            }
            return;
        };
        if strings(want.get("Test")) != strings(have.and_then(|h| h.get("Test")))
            && !is_empty(want.get("Test"))
        {
            self.report("Config.Healthcheck.Test");
        }
        for k in [
            "Interval",
            "Timeout",
            "StartPeriod",
            "StartInterval",
            "Retries",
        ] {
            // Engines before API 1.44 drop `StartInterval`.
            if k == "StartInterval" && have.and_then(|h| h.get(k)).is_none() {
                continue;
            }
            let w = int(want.get(k));
            let h = int(have.and_then(|h| h.get(k)));
            let from_image = int(image.as_ref().and_then(|i| i.get(k)));
            let ok = if w != 0 {
                w == h
            } else {
                h == 0 || (self.image.is_none() || h == from_image)
            };
            if !ok {
                self.report(format!("Config.Healthcheck.{k}"));
            }
        }
    }

    fn host(&mut self, b: &Value, h: &Value, inspect: &Value) {
        let eq_sets = |d: &mut Self, k: &str| {
            if set(b.get(k)) != set(h.get(k)) {
                d.report(format!("HostConfig.{k}"));
            }
        };
        // Capabilities: the engine stores them upper-case with the `CAP_` prefix.
        let caps = |v: Option<&Value>| -> BTreeSet<String> {
            strings(v)
                .into_iter()
                .map(|c| {
                    let c = c.to_ascii_uppercase();
                    if c == "ALL" || c.starts_with("CAP_") {
                        c
                    } else {
                        format!("CAP_{c}")
                    }
                })
                .collect()
        };
        for k in ["CapAdd", "CapDrop"] {
            if caps(b.get(k)) != caps(h.get(k)) {
                self.report(format!("HostConfig.{k}"));
            }
        }
        // The engine adds `label=disable` to a privileged container's options, and to one that
        // shares the host's PID or IPC namespace.
        let mut have_secopt = set(h.get("SecurityOpt"));
        let shares_host = |k: &str| h.get(k).and_then(Value::as_str) == Some("host");
        let engine_disables_labels = h.get("Privileged").and_then(Value::as_bool) == Some(true)
            || shares_host("PidMode")
            || shares_host("IpcMode");
        if engine_disables_labels && !set(b.get("SecurityOpt")).contains("label=disable") {
            have_secopt.remove("label=disable");
        }
        if set(b.get("SecurityOpt")) != have_secopt {
            self.report("HostConfig.SecurityOpt");
        }
        for k in [
            "Binds",
            "Dns",
            "DnsSearch",
            "DnsOptions",
            "ExtraHosts",
            "GroupAdd",
            "DeviceCgroupRules",
            "VolumesFrom",
        ] {
            eq_sets(self, k);
        }
        // Plain values where empty and the engine's empty agree.
        for k in [
            "NetworkMode",
            "PidMode",
            "UTSMode",
            "UsernsMode",
            "VolumeDriver",
            "CgroupParent",
            "CpusetCpus",
        ] {
            let w = b.get(k).and_then(Value::as_str).unwrap_or_default();
            let v = h.get(k).and_then(Value::as_str).unwrap_or_default();
            if w != v {
                self.report(format!("HostConfig.{k}"));
            }
        }
        // Values the daemon fills in when the body leaves them empty.
        for k in ["IpcMode", "CgroupnsMode", "Isolation", "Runtime", "ShmSize"] {
            if !is_empty(b.get(k)) && b.get(k) != h.get(k) {
                self.report(format!("HostConfig.{k}"));
            }
        }
        for k in ["Privileged", "ReadonlyRootfs", "OomKillDisable"] {
            if b.get(k).and_then(Value::as_bool).unwrap_or(false)
                != h.get(k).and_then(Value::as_bool).unwrap_or(false)
            {
                self.report(format!("HostConfig.{k}"));
            }
        }
        if b.get("Init").and_then(Value::as_bool).unwrap_or(false)
            != h.get("Init").and_then(Value::as_bool).unwrap_or(false)
        {
            self.report("HostConfig.Init");
        }
        for k in [
            "Memory",
            "MemoryReservation",
            "NanoCpus",
            "CpuShares",
            "CpuQuota",
            "CpuPeriod",
            "CpuRealtimePeriod",
            "CpuRealtimeRuntime",
            "CpuCount",
            "OomScoreAdj",
        ] {
            if int(b.get(k)) != int(h.get(k)) {
                self.report(format!("HostConfig.{k}"));
            }
        }
        // `CpuPercent` is a Windows setting: the engine on Linux stores 0 whatever was asked. A
        // block-I/O weight is stored as 0 (with a warning) where the kernel cannot apply it.
        for k in ["CpuPercent", "BlkioWeight"] {
            if int(h.get(k)) != 0 && int(b.get(k)) != int(h.get(k)) {
                self.report(format!("HostConfig.{k}"));
            }
        }
        // Swap: unset with a memory limit reads as twice the memory, or -1 without swap
        // accounting.
        let mem = int(b.get("Memory"));
        let swap = int(b.get("MemorySwap"));
        let have_swap = int(h.get("MemorySwap"));
        let swap_ok = if swap != 0 {
            swap == have_swap
        } else if mem > 0 {
            have_swap == mem.saturating_mul(2) || have_swap == -1 || have_swap == 0
        } else {
            have_swap == 0 || have_swap == -1
        };
        if !swap_ok {
            self.report("HostConfig.MemorySwap");
        }
        let pids = |v: Option<&Value>| int(v).max(0);
        if pids(b.get("PidsLimit")) != pids(h.get("PidsLimit")) {
            self.report("HostConfig.PidsLimit");
        }
        if int(b.get("MemorySwappiness")) != 0
            && int(b.get("MemorySwappiness")) != int(h.get("MemorySwappiness"))
        {
            self.report("HostConfig.MemorySwappiness");
        }
        // Restart policy: "" is the engine's "no".
        let name = |v: Option<&Value>| -> String {
            match v
                .and_then(|r| r.get("Name"))
                .and_then(Value::as_str)
                .unwrap_or_default()
            {
                "" => "no".to_string(),
                n => n.to_string(),
            }
        };
        if name(b.get("RestartPolicy")) != name(h.get("RestartPolicy")) {
            self.report("HostConfig.RestartPolicy.Name");
        }
        if int(b
            .get("RestartPolicy")
            .and_then(|r| r.get("MaximumRetryCount")))
            != int(h
                .get("RestartPolicy")
                .and_then(|r| r.get("MaximumRetryCount")))
        {
            self.report("HostConfig.RestartPolicy.MaximumRetryCount");
        }
        // Maps.
        for k in ["Sysctls", "Tmpfs", "StorageOpt"] {
            if obj(b.get(k)) != obj(h.get(k)) {
                self.report(format!("HostConfig.{k}"));
            }
        }
        // Log config: an empty type is the daemon's default driver.
        let want_log = b.get("LogConfig");
        let want_type = want_log
            .and_then(|l| l.get("Type"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !want_type.is_empty() {
            let have_log = h.get("LogConfig");
            if have_log.and_then(|l| l.get("Type")).and_then(Value::as_str) != Some(want_type) {
                self.report("HostConfig.LogConfig.Type");
            }
            // The daemon adds its default options when the driver is its default one.
            let have_opts = obj(have_log.and_then(|l| l.get("Config")));
            for (k, v) in obj(want_log.and_then(|l| l.get("Config"))) {
                if have_opts.get(&k) != Some(&v) {
                    self.report(format!("HostConfig.LogConfig.Config.{k}"));
                }
            }
        }
        // Ports.
        let bindings = |v: Option<&Value>| -> BTreeMap<String, BTreeSet<(String, String)>> {
            obj(v)
                .into_iter()
                .map(|(k, list)| {
                    let s = list
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|p| {
                            let f = |k: &str| {
                                p.get(k)
                                    .and_then(Value::as_str)
                                    .unwrap_or_default()
                                    .to_string()
                            };
                            (f("HostIp"), f("HostPort"))
                        })
                        .collect();
                    (k, s)
                })
                .collect()
        };
        let want = bindings(b.get("PortBindings"));
        let have = bindings(h.get("PortBindings"));
        for k in want.keys().chain(have.keys()).collect::<BTreeSet<_>>() {
            if want.get(k) != have.get(k) {
                self.report(format!("HostConfig.PortBindings.{k}"));
            }
        }
        // Mounts, as sets of their identifying fields. Options an older engine does not know
        // (`CreateMountpoint` before API 1.42, the recursive read-only ones before 1.44,
        // `Subpath` before 1.45) are dropped by it: one the container's mount lacks is not
        // compared.
        let have_mounts: Vec<&Value> = h
            .get("Mounts")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let dropped_by_engine = |m: &Value, section: &str, key: &str| -> bool {
            ENGINE_DROPPED_MOUNT_OPTIONS.contains(&key)
                && !have_mounts.iter().any(|hm| {
                    hm.get("Target") == m.get("Target")
                        && hm.get(section).and_then(|o| o.get(key)).is_some()
                })
        };
        let want: BTreeSet<String> = b
            .get("Mounts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|m| mount_key(m, &|section, key| dropped_by_engine(m, section, key)))
            .collect();
        let have: BTreeSet<String> = have_mounts
            .iter()
            .map(|m| mount_key(m, &|_, _| false))
            .collect();
        if want != have {
            self.report("HostConfig.Mounts");
        }
        // Devices and device requests, ulimits.
        let canon = |v: Option<&Value>| -> BTreeSet<String> {
            v.and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|x| {
                    let mut s = String::new();
                    crate::desired::hash::canonical_json(x, &mut s);
                    s
                })
                .collect()
        };
        for k in ["Devices", "Ulimits"] {
            if canon(b.get(k)) != canon(h.get(k)) {
                self.report(format!("HostConfig.{k}"));
            }
        }
        let requests =
            |v: Option<&Value>| -> usize { v.and_then(Value::as_array).map_or(0, Vec::len) };
        if requests(b.get("DeviceRequests")) != requests(h.get("DeviceRequests")) {
            self.report("HostConfig.DeviceRequests");
        }
        // Links: the engine stores `/container:/self/alias`.
        let links = |v: Option<&Value>| -> BTreeSet<String> {
            strings(v)
                .into_iter()
                .map(|l| {
                    let (a, b) = l.split_once(':').unwrap_or((&l, ""));
                    let alias = b.rsplit('/').next().unwrap_or(b);
                    format!("{}:{alias}", a.trim_start_matches('/'))
                })
                .collect()
        };
        // On a user-defined network the engine keeps the links on the endpoint, not here.
        let mut have_links = links(h.get("Links"));
        for ep in obj(inspect
            .get("NetworkSettings")
            .and_then(|n| n.get("Networks")))
        .values()
        {
            have_links.extend(links(ep.get("Links")));
        }
        if links(b.get("Links")) != have_links {
            self.report("HostConfig.Links");
        }
        for k in ["MaskedPaths", "ReadonlyPaths"] {
            if let Some(Value::Array(a)) = b.get(k)
                && a.is_empty()
                && !is_empty(h.get(k))
            {
                self.report(format!("HostConfig.{k}"));
            }
        }
    }

    fn networks(&mut self, b: &Value, inspect: &Value) {
        let Some(eps) = b
            .get("NetworkingConfig")
            .and_then(|n| n.get("EndpointsConfig"))
            .and_then(Value::as_object)
        else {
            return;
        };
        let have = obj(inspect
            .get("NetworkSettings")
            .and_then(|n| n.get("Networks")));
        for (name, ep) in eps {
            let Some(h) = have.get(name) else {
                self.report(format!("NetworkSettings.Networks.{name}"));
                continue;
            };
            let have_aliases = set(h.get("Aliases"));
            if !set(ep.get("Aliases")).is_subset(&have_aliases) {
                self.report(format!("NetworkSettings.Networks.{name}.Aliases"));
            }
            for k in ["IPv4Address", "IPv6Address"] {
                let w = ep.get("IPAMConfig").and_then(|i| i.get(k));
                if !is_empty(w) && w != h.get("IPAMConfig").and_then(|i| i.get(k)) {
                    self.report(format!("NetworkSettings.Networks.{name}.IPAMConfig.{k}"));
                }
            }
            let mac = ep.get("MacAddress");
            if !is_empty(mac) && mac != h.get("MacAddress") {
                self.report(format!("NetworkSettings.Networks.{name}.MacAddress"));
            }
        }
    }
}

/// A mount's identifying fields as one string; options for which `skip(section, key)` holds are
/// left out, as are empty ones.
fn mount_key(m: &Value, skip: &dyn Fn(&str, &str) -> bool) -> String {
    let f = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or_default();
    let ro = m.get("ReadOnly").and_then(Value::as_bool).unwrap_or(false);
    let opts = |section: &str| {
        m.get(section)
            .and_then(Value::as_object)
            .map(|o| {
                o.iter()
                    .filter(|(k, v)| !is_empty(Some(v)) && !skip(section, k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<BTreeMap<_, _>>()
            })
            .unwrap_or_default()
    };
    format!(
        "{}|{}|{}|{ro}|{:?}|{:?}|{:?}",
        f("Type"),
        f("Source"),
        f("Target"),
        opts("BindOptions"),
        opts("VolumeOptions"),
        opts("TmpfsOptions")
    )
}
