//! The `host_access` rule: a service gets no part of the host (privileged mode, host namespaces, capabilities beyond Docker's defaults, unconfined security options, devices, sensitive binds) unless allowlisted for it with a reason.

use std::path::Path;

use super::rooted_clean as clean;

use crate::desired::tree::Tree;
use crate::desired::typed::DesiredState;

use super::{PolicyConfig, PolicyKind, Violation};

/// Docker's default capability set (moby `oci/caps/defaults.go`): adding one of these changes nothing.
const DEFAULT_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Namespace keys whose value `host` shares the host's namespace.
const HOST_NAMESPACES: &[(&str, &str)] = &[
    (
        "pid",
        "sees and can signal every process of the host (and read their environment)",
    ),
    (
        "ipc",
        "shares the host's shared memory and semaphores with every host process",
    ),
    (
        "userns_mode",
        "leaves user-namespace remapping off: root in the container is root on the host",
    ),
    (
        "uts",
        "shares the host's hostname and can change it for the whole host",
    ),
    (
        "network_mode",
        "shares the host's network stack: it reaches every host interface, every local-only \
         service and every other stack's published port",
    ),
    (
        "cgroup",
        "shares the host's cgroup namespace and sees every container's cgroup",
    ),
];

/// Host paths whose bind gives a container power over the host, and why.
const SENSITIVE: &[(&str, &str)] = &[
    (
        "/etc",
        "the host's configuration (users, sudoers, cron, systemd units)",
    ),
    (
        "/var/run/docker.sock",
        "the Docker socket: whoever reaches it controls every container and the host",
    ),
    (
        "/run/docker.sock",
        "the Docker socket: whoever reaches it controls every container and the host",
    ),
    ("/proc", "the host's kernel and process interfaces"),
    ("/sys", "the host's kernel and device interfaces"),
    ("/boot", "the host's kernel and boot loader"),
    ("/dev", "the host's devices"),
    ("/root", "root's home (keys and credentials)"),
    (
        "/var/lib/docker",
        "the engine's data: every container's files, volumes and secrets",
    ),
];

/// The name of a capability as Docker compares it: upper case, without `CAP_`.
fn cap_name(c: &str) -> String {
    let up = c.trim().to_ascii_uppercase();
    up.strip_prefix("CAP_").map(str::to_string).unwrap_or(up)
}

/// True when the allowlist access `allowed` covers the finding `grant`: the same access
/// (capabilities compared as Docker does), its whole family (`cap_add`, `security_opt`,
/// `bind`, …), or for `bind:<path>` a path at or above the bind's source.
pub(super) fn covers(allowed: &str, grant: &str) -> bool {
    let allowed = allowed.trim();
    let (af, av) = match allowed.split_once(':') {
        Some((f, v)) => (f.trim(), Some(v.trim())),
        None => (allowed, None),
    };
    let (gf, gv) = match grant.split_once(':') {
        Some((f, v)) => (f, Some(v)),
        None => (grant, None),
    };
    if !af.eq_ignore_ascii_case(gf) {
        return false;
    }
    match (av, gv) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(g)) => match gf {
            "cap_add" => cap_name(a) == cap_name(g),
            "security_opt" => a.eq_ignore_ascii_case(g),
            "bind" => under(Path::new(g), Path::new(a)),
            _ => a == g,
        },
    }
}

/// `p` is `root` or inside it.
fn under(p: &Path, root: &Path) -> bool {
    clean(p).starts_with(clean(root))
}

/// Why a bind of `source` is sensitive, or `None`. A source is sensitive when it is `/`, or
/// at, under or above one of the sensitive paths (binding `/var/run` exposes the socket), or
/// the state dir; the source and the path it resolves to through symbolic links are checked.
pub(super) fn sensitive(source: &Path, state_dir: Option<&Path>) -> Option<String> {
    let mut forms = vec![clean(source)];
    if let Ok(real) = std::fs::canonicalize(source)
        && !forms.contains(&real)
    {
        forms.push(real);
    }
    let mut state_forms = Vec::new();
    if let Some(d) = state_dir.and_then(|d| std::path::absolute(d).ok()) {
        if let Ok(real) = std::fs::canonicalize(&d) {
            state_forms.push(real);
        }
        state_forms.push(clean(&d));
    }
    for f in &forms {
        let shown = if f == &forms[0] {
            String::new()
        } else {
            format!(" (through symbolic links: `{}`)", f.display())
        };
        if f == Path::new("/") {
            return Some(format!("is the host's whole file system{shown}"));
        }
        for (s, why) in SENSITIVE {
            let s = Path::new(s);
            if f.starts_with(s) {
                return Some(format!("is {why}{shown}"));
            }
            if s.starts_with(f) {
                return Some(format!("holds `{}`, {why}{shown}", s.display()));
            }
        }
        for s in &state_forms {
            if f.starts_with(s) || s.starts_with(f) {
                return Some(format!(
                    "holds spindle's own state dir (evidence, tokens, locks): the service could \
                     rewrite what spindle records and trusts{shown}"
                ));
            }
        }
    }
    None
}

/// One finding before the allowlist: the access it needs, where, and why.
struct Finding {
    grant: String,
    path: String,
    why: String,
}

fn strings(v: Option<&Tree>) -> Vec<(usize, String)> {
    match v {
        Some(Tree::Array(a)) => a
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.as_str().map(|s| (i, s.to_string())))
            .collect(),
        _ => Vec::new(),
    }
}

/// Why a `security_opt` entry turns a confinement off, or `None`.
fn unconfined(opt: &str) -> Option<(String, &'static str)> {
    let opt = opt.trim();
    let (k, v) = opt.split_once([':', '='])?;
    let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
    let why = match (k.as_str(), v.as_str()) {
        ("seccomp", "unconfined") => {
            "turns seccomp off: every system call reaches the host's kernel"
        }
        ("apparmor", "unconfined") => "turns AppArmor confinement off",
        ("label", "disable") => "turns SELinux labelling off",
        ("systempaths", "unconfined") => {
            "unmasks /proc and /sys paths Docker hides (kernel memory, sysrq, …)"
        }
        _ => return None,
    };
    Some((k, why))
}

fn service_findings(
    desired: &DesiredState,
    name: &str,
    model: &Tree,
    state_dir: Option<&Path>,
) -> Vec<Finding> {
    let at = |k: &str| format!("services.{name}.{k}");
    let mut out = Vec::new();
    if model.get("privileged").and_then(Tree::as_bool) == Some(true) {
        out.push(Finding {
            grant: "privileged".into(),
            path: at("privileged"),
            why: "`privileged: true` gives the container every capability and every device of \
                  the host, and turns off seccomp and AppArmor: it is root on the host"
                .into(),
        });
    }
    for (key, why) in HOST_NAMESPACES {
        if model
            .get(key)
            .and_then(Tree::as_str)
            .is_some_and(|v| v.trim() == "host")
        {
            out.push(Finding {
                grant: (*key).into(),
                path: at(key),
                why: format!("`{key}: host` {why}"),
            });
        }
    }
    for (i, cap) in strings(model.get("cap_add")) {
        let c = cap_name(&cap);
        if DEFAULT_CAPS.contains(&c.as_str()) {
            continue;
        }
        let why = if c == "ALL" {
            "`cap_add: ALL` gives the container every capability: it is root on the host".into()
        } else {
            format!("capability `{c}` is beyond Docker's default set")
        };
        out.push(Finding {
            grant: format!("cap_add:{c}"),
            path: format!("{}[{i}]", at("cap_add")),
            why,
        });
    }
    for (i, opt) in strings(model.get("security_opt")) {
        if let Some((k, why)) = unconfined(&opt) {
            out.push(Finding {
                grant: format!("security_opt:{k}"),
                path: format!("{}[{i}]", at("security_opt")),
                why: format!("`{}` {why}", opt.trim()),
            });
        }
    }
    if let Some(Tree::Array(devices)) = model.get("devices") {
        for i in 0..devices.len() {
            out.push(Finding {
                grant: "devices".into(),
                path: format!("{}[{i}]", at("devices")),
                why: "a host device is passed into the container".into(),
            });
        }
    }
    for (i, _) in strings(model.get("device_cgroup_rules")) {
        out.push(Finding {
            grant: "device_cgroup_rules".into(),
            path: format!("{}[{i}]", at("device_cgroup_rules")),
            why: "a device cgroup rule lets the container open host devices".into(),
        });
    }
    if let Some(Tree::Array(mounts)) = model.get("volumes") {
        for (i, m) in mounts.iter().enumerate() {
            let kind = m.get("type").and_then(Tree::as_str);
            let (source, path, what) = match kind {
                Some("bind") => {
                    let Some(src) = m.get("source").and_then(Tree::as_str) else {
                        continue;
                    };
                    (
                        src.to_string(),
                        format!("{}[{i}].source", at("volumes")),
                        String::new(),
                    )
                }
                Some("volume") => {
                    let Some(key) = m.get("source").and_then(Tree::as_str) else {
                        continue;
                    };
                    let Some(device) = bind_device(desired, key) else {
                        continue;
                    };
                    (
                        device,
                        format!("{}[{i}]", at("volumes")),
                        format!(" (volume `{key}` binds it with driver_opts)"),
                    )
                }
                _ => continue,
            };
            if !source.starts_with('/') {
                continue;
            }
            if let Some(why) = sensitive(Path::new(&source), state_dir) {
                out.push(Finding {
                    grant: format!("bind:{}", clean(Path::new(&source)).display()),
                    path,
                    why: format!("the bind of `{source}`{what} {why}"),
                });
            }
        }
    }
    for section in ["secrets", "configs"] {
        let Some(Tree::Array(refs)) = model.get(section) else {
            continue;
        };
        for (i, r) in refs.iter().enumerate() {
            let key = match r {
                Tree::String(k) => Some(k.as_str()),
                other => other.get("source").and_then(Tree::as_str),
            };
            let Some(key) = key else { continue };
            let Some(file) = desired
                .model
                .get(section)
                .and_then(|t| t.get(key))
                .and_then(|d| d.get("file"))
                .and_then(Tree::as_str)
                .filter(|f| f.starts_with('/'))
            else {
                continue;
            };
            if let Some(why) = sensitive(Path::new(file), state_dir) {
                out.push(Finding {
                    grant: format!("bind:{}", clean(Path::new(file)).display()),
                    path: format!("{}[{i}]", at(section)),
                    why: format!(
                        "`{section}.{key}.file` mounts `{file}` into the container, which {why}"
                    ),
                });
            }
        }
    }
    out
}

/// The host paths the `x-spindle.pre-recreate` one-off container of `s` binds, by index.
pub(super) fn hook_binds(s: &crate::desired::typed::DesiredService) -> Vec<(usize, &Path)> {
    use crate::desired::hook::{HookMode, MountSource};
    let Some(HookMode::Run(spec)) = s.pre_recreate.as_ref().map(|p| &p.mode) else {
        return Vec::new();
    };
    spec.volumes
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, m)| match &m.source {
            MountSource::Bind(p) => Some((i, p.as_path())),
            MountSource::Volume(_) => None,
        })
        .collect()
}

/// The host path a top-level volume binds (`driver_opts` with `o: bind` and `device:`), if any.
fn bind_device(desired: &DesiredState, key: &str) -> Option<String> {
    let v = desired.model.get("volumes")?.get(key)?;
    let opts = v.get("driver_opts")?;
    let o = opts.get("o").and_then(Tree::as_str)?;
    if !o
        .split(',')
        .any(|x| x.trim() == "bind" || x.trim() == "rbind")
    {
        return None;
    }
    opts.get("device")
        .and_then(Tree::as_str)
        .map(str::to_string)
}

/// Adds the violations to `out`, and to `allowed` one line per finding an allowlist entry lets
/// through (`policy host_access: <path>: allowed (<reason>)`).
pub(super) fn check(
    desired: &DesiredState,
    cfg: &PolicyConfig,
    state_dir: Option<&Path>,
    out: &mut Vec<Violation>,
    allowed: &mut Vec<String>,
) {
    for (name, s) in &desired.services {
        let mut found = service_findings(desired, name, &s.model, state_dir);
        for (i, source) in hook_binds(s) {
            if let Some(why) = sensitive(source, state_dir) {
                found.push(Finding {
                    grant: format!("bind:{}", clean(source).display()),
                    path: format!("services.{name}.x-spindle.pre-recreate.volumes[{i}]"),
                    why: format!(
                        "the pre-recreate hook's bind of `{}` {why}",
                        source.display()
                    ),
                });
            }
        }
        for f in found {
            if let Some(reason) = cfg.host_access_allowed(name, &f.grant) {
                allowed.push(format!(
                    "policy host_access: {}: `{}` allowed for service {name} ({reason})",
                    f.path, f.grant
                ));
                continue;
            }
            out.push(Violation {
                policy: PolicyKind::HostAccess,
                mode: cfg.host_access.mode,
                path: f.path,
                message: format!(
                    "{}; remove it, or allow it for this service in spindle.yaml with \
                     `policies.host_access.allow: [{{service: {name}, access: \"{}\", reason: …}}]`",
                    f.why, f.grant
                ),
            });
        }
    }
}
