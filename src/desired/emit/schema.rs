//! The shape of compose-go's `types.Project` as the emitter needs it: each field's JSON name, decoded kind and omission rule.

/// How a field is decoded from the model and encoded to JSON.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    /// `string`; integers are formatted, null is "".
    Str,
    /// `bool`; strings go through compose's boolean cast.
    Bool,
    /// Signed integer of the given bit size.
    Int(u32),
    /// Unsigned integer of the given bit size.
    Uint(u32),
    /// `float32`.
    Float32,
    /// `types.Duration`: Go duration string.
    Duration,
    /// `types.UnitBytes`: byte count printed as a string.
    Bytes,
    /// `types.NanoCPUs`.
    Cpus,
    /// `types.ShellCommand`: a string is split like a shell would.
    ShellCommand,
    /// `types.StringList`: a string or a list of strings.
    StringList,
    /// `types.StringOrNumberList`.
    StringOrNumberList,
    /// `[]string`.
    Strings,
    /// `types.MappingWithEquals`: values may be null.
    MappingWithEquals,
    /// `types.Mapping`.
    Mapping,
    /// `types.Labels`.
    Labels,
    /// `types.Options`.
    Options,
    /// `types.MultiOptions`.
    MultiOptions,
    /// `map[string]string`.
    StringMap,
    /// `types.HostsList`.
    Hosts,
    /// `*types.UlimitsConfig`.
    Ulimit,
    /// `types.FileMode`: octal string.
    FileMode,
    /// `types.DeviceCount`.
    DeviceCount,
    /// `types.HealthCheckTest`.
    HealthTest,
    /// `types.SSHConfig`.
    Ssh,
    /// A struct with the given fields.
    Struct(&'static [F]),
    /// `map[string]T`.
    Map(&'static Ty),
    /// `[]T`.
    List(&'static Ty),
    /// `*T` as a map or list element: null stays null.
    Ptr(&'static Ty),
}

/// When a field is left out of the JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Omit {
    /// `omitempty` on a value type: left out when zero.
    Empty,
    /// `omitempty` on a pointer: left out when absent or null.
    Ptr,
    /// No `omitempty` (or a struct value, which `omitempty` never drops).
    Never,
    /// `omitzero` on `types.OptOut`: left out when true.
    OptOut,
}

/// One struct field.
#[derive(Debug, Clone, Copy)]
pub struct F {
    pub name: &'static str,
    pub ty: Ty,
    pub omit: Omit,
}

const fn e(name: &'static str, ty: Ty) -> F {
    F {
        name,
        ty,
        omit: Omit::Empty,
    }
}
const fn p(name: &'static str, ty: Ty) -> F {
    F {
        name,
        ty,
        omit: Omit::Ptr,
    }
}
const fn n(name: &'static str, ty: Ty) -> F {
    F {
        name,
        ty,
        omit: Omit::Never,
    }
}
const fn z(name: &'static str, ty: Ty) -> F {
    F {
        name,
        ty,
        omit: Omit::OptOut,
    }
}

use Ty::*;

const INT: Ty = Int(64);

pub const FILE_REF: &[F] = &[
    e("source", Str),
    e("target", Str),
    e("uid", Str),
    e("gid", Str),
    p("mode", FileMode),
];

const ULIMITS: Ty = Map(&Ulimit);

pub const BUILD: &[F] = &[
    e("context", Str),
    e("dockerfile", Str),
    e("dockerfile_inline", Str),
    e("entitlements", Strings),
    e("args", MappingWithEquals),
    e("provenance", Str),
    e("sbom", Str),
    e("ssh", Ssh),
    e("labels", Labels),
    e("cache_from", StringList),
    e("cache_to", StringList),
    e("no_cache", Bool),
    e("no_cache_filter", StringList),
    e("additional_contexts", Mapping),
    e("pull", Bool),
    e("extra_hosts", Hosts),
    e("isolation", Str),
    e("network", Str),
    e("target", Str),
    e("secrets", List(&Struct(FILE_REF))),
    e("shm_size", Bytes),
    e("tags", StringList),
    e("ulimits", ULIMITS),
    e("platforms", StringList),
    e("privileged", Bool),
];

pub const HOOK: &[F] = &[
    n("command", ShellCommand),
    e("image", Str),
    e("user", Str),
    e("privileged", Bool),
    e("working_dir", Str),
    e("environment", MappingWithEquals),
    e("per_replica", Bool),
];

const TRIGGER: &[F] = &[
    n("path", Str),
    n("action", Str),
    e("target", Str),
    n("exec", Struct(HOOK)),
    e("include", Strings),
    e("ignore", Strings),
    e("initial_sync", Bool),
];

const DEVELOP: &[F] = &[e("watch", List(&Struct(TRIGGER)))];

const WEIGHT_DEVICE: &[F] = &[n("Path", Str), n("Weight", Uint(16))];
const THROTTLE_DEVICE: &[F] = &[n("Path", Str), n("Rate", Bytes)];

const BLKIO: &[F] = &[
    e("weight", Uint(16)),
    e("weight_device", List(&Struct(WEIGHT_DEVICE))),
    e("device_read_bps", List(&Struct(THROTTLE_DEVICE))),
    e("device_read_iops", List(&Struct(THROTTLE_DEVICE))),
    e("device_write_bps", List(&Struct(THROTTLE_DEVICE))),
    e("device_write_iops", List(&Struct(THROTTLE_DEVICE))),
];

const CREDENTIAL_SPEC: &[F] = &[e("config", Str), e("file", Str), e("registry", Str)];

const DEPENDENCY: &[F] = &[e("condition", Str), e("restart", Bool), n("required", Bool)];

const DEVICE_REQUEST: &[F] = &[
    e("capabilities", Strings),
    e("driver", Str),
    e("count", DeviceCount),
    e("device_ids", Strings),
    e("options", Mapping),
];

const DISCRETE_RESOURCE: &[F] = &[n("kind", Str), n("value", INT)];
const GENERIC_RESOURCE: &[F] = &[p("discrete_resource_spec", Struct(DISCRETE_RESOURCE))];

const RESOURCE: &[F] = &[
    e("cpus", Cpus),
    e("memory", Bytes),
    e("pids", INT),
    e("devices", List(&Struct(DEVICE_REQUEST))),
    e("generic_resources", List(&Struct(GENERIC_RESOURCE))),
];

const RESOURCES: &[F] = &[
    p("limits", Struct(RESOURCE)),
    p("reservations", Struct(RESOURCE)),
];

const UPDATE_CONFIG: &[F] = &[
    p("parallelism", Uint(64)),
    e("delay", Duration),
    e("failure_action", Str),
    e("monitor", Duration),
    e("max_failure_ratio", Float32),
    e("order", Str),
];

const RESTART_POLICY: &[F] = &[
    e("condition", Str),
    p("delay", Duration),
    p("max_attempts", Uint(64)),
    p("window", Duration),
];

const PLACEMENT_PREFERENCE: &[F] = &[e("spread", Str)];

const PLACEMENT: &[F] = &[
    e("constraints", Strings),
    e("preferences", List(&Struct(PLACEMENT_PREFERENCE))),
    e("max_replicas_per_node", Uint(64)),
];

const DEPLOY: &[F] = &[
    e("mode", Str),
    p("replicas", INT),
    e("labels", Labels),
    p("update_config", Struct(UPDATE_CONFIG)),
    p("rollback_config", Struct(UPDATE_CONFIG)),
    n("resources", Struct(RESOURCES)),
    p("restart_policy", Struct(RESTART_POLICY)),
    n("placement", Struct(PLACEMENT)),
    e("endpoint_mode", Str),
];

const DEVICE_MAPPING: &[F] = &[e("source", Str), e("target", Str), e("permissions", Str)];

const PROVIDER: &[F] = &[e("type", Str), e("options", MultiOptions)];

const ENV_FILE: &[F] = &[e("path", Str), z("required", Bool), e("format", Str)];

const EXTENDS: &[F] = &[e("file", Str), e("service", Str)];

const HEALTHCHECK: &[F] = &[
    e("test", HealthTest),
    p("timeout", Duration),
    p("interval", Duration),
    p("retries", Uint(64)),
    p("start_period", Duration),
    p("start_interval", Duration),
    e("disable", Bool),
];

const LOGGING: &[F] = &[e("driver", Str), e("options", Options)];

const SERVICE_MODEL: &[F] = &[e("endpoint_var", Str), e("model_var", Str)];

const SERVICE_NETWORK: &[F] = &[
    e("aliases", Strings),
    e("driver_opts", Options),
    e("gw_priority", INT),
    e("interface_name", Str),
    e("ipv4_address", Str),
    e("ipv6_address", Str),
    e("link_local_ips", Strings),
    e("mac_address", Str),
    e("priority", INT),
];

const PORT: &[F] = &[
    e("name", Str),
    e("mode", Str),
    e("host_ip", Str),
    e("target", Uint(32)),
    e("published", Str),
    e("protocol", Str),
    e("app_protocol", Str),
];

const VOLUME_BIND: &[F] = &[
    e("selinux", Str),
    e("propagation", Str),
    z("create_host_path", Bool),
    e("recursive", Str),
];
const VOLUME_VOLUME: &[F] = &[e("labels", Mapping), e("nocopy", Bool), e("subpath", Str)];
const VOLUME_TMPFS: &[F] = &[e("size", Bytes), e("mode", Uint(32))];
const VOLUME_IMAGE: &[F] = &[e("subpath", Str)];

const SERVICE_VOLUME: &[F] = &[
    e("type", Str),
    e("source", Str),
    e("target", Str),
    e("read_only", Bool),
    e("consistency", Str),
    p("bind", Struct(VOLUME_BIND)),
    p("volume", Struct(VOLUME_VOLUME)),
    p("tmpfs", Struct(VOLUME_TMPFS)),
    p("image", Struct(VOLUME_IMAGE)),
];

pub const SERVICE: &[F] = &[
    e("profiles", Strings),
    e("annotations", Mapping),
    p("attach", Bool),
    p("build", Struct(BUILD)),
    p("develop", Struct(DEVELOP)),
    p("blkio_config", Struct(BLKIO)),
    e("cap_add", Strings),
    e("cap_drop", Strings),
    e("cgroup_parent", Str),
    e("cgroup", Str),
    e("cpu_count", INT),
    e("cpu_percent", Float32),
    e("cpu_period", INT),
    e("cpu_quota", INT),
    e("cpu_rt_period", INT),
    e("cpu_rt_runtime", INT),
    e("cpus", Float32),
    e("cpuset", Str),
    e("cpu_shares", INT),
    n("command", ShellCommand),
    e("configs", List(&Struct(FILE_REF))),
    e("container_name", Str),
    p("credential_spec", Struct(CREDENTIAL_SPEC)),
    e("depends_on", Map(&Struct(DEPENDENCY))),
    p("deploy", Struct(DEPLOY)),
    e("device_cgroup_rules", Strings),
    e("devices", List(&Struct(DEVICE_MAPPING))),
    e("dns", StringList),
    e("dns_opt", Strings),
    e("dns_search", StringList),
    e("dockerfile", Str),
    e("domainname", Str),
    n("entrypoint", ShellCommand),
    p("provider", Struct(PROVIDER)),
    e("environment", MappingWithEquals),
    e("env_file", List(&Struct(ENV_FILE))),
    e("expose", StringOrNumberList),
    p("extends", Struct(EXTENDS)),
    e("external_links", Strings),
    e("extra_hosts", Hosts),
    e("group_add", Strings),
    e("gpus", List(&Struct(DEVICE_REQUEST))),
    e("hostname", Str),
    p("healthcheck", Struct(HEALTHCHECK)),
    e("image", Str),
    p("init", Bool),
    e("ipc", Str),
    e("isolation", Str),
    e("labels", Labels),
    e("label_file", Strings),
    e("links", Strings),
    p("logging", Struct(LOGGING)),
    e("log_driver", Str),
    e("log_opt", StringMap),
    e("mem_limit", Bytes),
    e("mem_reservation", Bytes),
    e("memswap_limit", Bytes),
    e("mem_swappiness", Bytes),
    e("mac_address", Str),
    e("models", Map(&Ptr(&Struct(SERVICE_MODEL)))),
    e("net", Str),
    e("network_mode", Str),
    e("networks", Map(&Ptr(&Struct(SERVICE_NETWORK)))),
    e("oom_kill_disable", Bool),
    e("oom_score_adj", INT),
    e("pid", Str),
    e("pids_limit", INT),
    e("platform", Str),
    e("ports", List(&Struct(PORT))),
    e("privileged", Bool),
    e("pull_policy", Str),
    e("read_only", Bool),
    e("restart", Str),
    e("runtime", Str),
    p("scale", INT),
    e("secrets", List(&Struct(FILE_REF))),
    e("security_opt", Strings),
    e("shm_size", Bytes),
    e("stdin_open", Bool),
    p("stop_grace_period", Duration),
    e("stop_signal", Str),
    e("storage_opt", StringMap),
    e("sysctls", Mapping),
    e("tmpfs", StringList),
    e("tty", Bool),
    e("ulimits", ULIMITS),
    e("use_api_socket", Bool),
    e("user", Str),
    e("userns_mode", Str),
    e("uts", Str),
    e("volume_driver", Str),
    e("volumes", List(&Struct(SERVICE_VOLUME))),
    e("volumes_from", Strings),
    e("working_dir", Str),
    e("pre_start", List(&Struct(HOOK))),
    e("post_start", List(&Struct(HOOK))),
    e("pre_stop", List(&Struct(HOOK))),
];

const IPAM_POOL: &[F] = &[
    e("subnet", Str),
    e("gateway", Str),
    e("ip_range", Str),
    e("aux_addresses", Mapping),
];

const IPAM: &[F] = &[
    e("driver", Str),
    e("config", List(&Ptr(&Struct(IPAM_POOL)))),
    e("options", Options),
];

pub const NETWORK: &[F] = &[
    e("name", Str),
    e("driver", Str),
    e("driver_opts", Options),
    n("ipam", Struct(IPAM)),
    e("external", Bool),
    e("internal", Bool),
    e("attachable", Bool),
    e("labels", Labels),
    p("enable_ipv4", Bool),
    p("enable_ipv6", Bool),
];

pub const VOLUME: &[F] = &[
    e("name", Str),
    e("driver", Str),
    e("driver_opts", Options),
    e("external", Bool),
    e("labels", Labels),
];

/// `types.FileObjectConfig`, shared by secrets and configs.
pub const FILE_OBJECT: &[F] = &[
    e("name", Str),
    e("file", Str),
    e("environment", Str),
    e("content", Str),
    e("external", Bool),
    e("labels", Labels),
    e("driver", Str),
    e("driver_opts", StringMap),
    e("template_driver", Str),
];
