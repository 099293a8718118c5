//! The `host_access` rule: a service gets no part of the host (privileged mode, host namespaces, capabilities beyond Docker's defaults, unconfined security options, devices, sensitive binds) unless allowlisted for it with a reason.

use std::path::Path;

use super::rooted_clean as clean;
use super::sensitive::{run_alias, sensitive};

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
            "bind" => under(
                &run_alias(&clean(Path::new(g))),
                &run_alias(&clean(Path::new(a))),
            ),
            _ => a == g,
        },
    }
}

/// `p` is `root` or inside it.
fn under(p: &Path, root: &Path) -> bool {
    clean(p).starts_with(clean(root))
}

/// One finding before the allowlist: the accesses it needs (all of them must be granted), where,
/// and why.
struct Finding {
    grants: Vec<String>,
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
            grants: vec!["privileged".into()],
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
                grants: vec![(*key).into()],
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
            grants: vec![format!("cap_add:{c}")],
            path: format!("{}[{i}]", at("cap_add")),
            why,
        });
    }
    for (i, opt) in strings(model.get("security_opt")) {
        if let Some((k, why)) = unconfined(&opt) {
            out.push(Finding {
                grants: vec![format!("security_opt:{k}")],
                path: format!("{}[{i}]", at("security_opt")),
                why: format!("`{}` {why}", opt.trim()),
            });
        }
    }
    if let Some(Tree::Array(devices)) = model.get("devices") {
        for i in 0..devices.len() {
            out.push(Finding {
                grants: vec!["devices".into()],
                path: format!("{}[{i}]", at("devices")),
                why: "a host device is passed into the container".into(),
            });
        }
    }
    for (i, _) in strings(model.get("device_cgroup_rules")) {
        out.push(Finding {
            grants: vec!["device_cgroup_rules".into()],
            path: format!("{}[{i}]", at("device_cgroup_rules")),
            why: "a device cgroup rule lets the container open host devices".into(),
        });
    }
    if let Some(Tree::Array(mounts)) = model.get("volumes") {
        for (i, m) in mounts.iter().enumerate() {
            let Some(src) = m.get("source").and_then(Tree::as_str) else {
                continue;
            };
            match m.get("type").and_then(Tree::as_str) {
                Some("bind") => out.extend(bind_finding(
                    src,
                    format!("{}[{i}].source", at("volumes")),
                    |why| format!("the bind of `{src}` {why}"),
                    state_dir,
                )),
                Some("volume") => out.extend(volume_finding(
                    desired,
                    src,
                    format!("{}[{i}]", at("volumes")),
                    state_dir,
                )),
                _ => {}
            }
        }
    }
    out.extend(container_refs(name, model));
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
            else {
                continue;
            };
            out.extend(bind_finding(
                file,
                format!("{}[{i}]", at(section)),
                |why| {
                    format!(
                        "`{section}.{key}.file` mounts `{file}` into the container, which {why}"
                    )
                },
                state_dir,
            ));
        }
    }
    out
}

/// The finding of a bind of the host path `source` (relative ones are the `paths` rule's), if
/// any form of it is sensitive; `say` words the reason.
fn bind_finding(
    source: &str,
    path: String,
    say: impl FnOnce(&str) -> String,
    state_dir: Option<&Path>,
) -> Option<Finding> {
    if !source.starts_with('/') {
        return None;
    }
    let (grants, why) = sensitive(Path::new(source), state_dir)?;
    Some(Finding {
        grants,
        path,
        why: say(&why),
    })
}

/// The finding of a mount of the project's volume `key`, when its `driver_opts` take something
/// from the host: a sensitive bind (`o: bind`), or any other local `device:`.
fn volume_finding(
    desired: &DesiredState,
    key: &str,
    path: String,
    state_dir: Option<&Path>,
) -> Option<Finding> {
    match volume_mount(desired, key)? {
        VolumeMount::Bind(device) => bind_finding(
            &device,
            path,
            |why| {
                format!("the bind of `{device}` (volume `{key}` binds it with driver_opts) {why}")
            },
            state_dir,
        ),
        VolumeMount::Device { device, fs } => Some(Finding {
            grants: vec![format!("volume_device:{key}")],
            path,
            why: format!(
                "volume `{key}` mounts the host's `{device}` (driver_opts type `{fs}`) into the \
                 container: a host disk or file system is read and written past every other \
                 check"
            ),
        }),
    }
}

/// What a top-level volume's `driver_opts` take from the host.
enum VolumeMount {
    /// `o: bind` (or `rbind`) of the host path `device:`.
    Bind(String),
    /// A file system mounted from `device:` by the local driver (a block device, an image
    /// file, an overlay of host folders, …).
    Device { device: String, fs: String },
}

/// File system types of the local driver whose `device:` takes nothing from the host: memory
/// (`tmpfs`, `ramfs`) and remote shares (`nfs`, `cifs`, …), which reach another machine.
const NOT_FROM_HOST: &[&str] = &["tmpfs", "ramfs", "nfs", "nfs4", "cifs", "smb3"];

/// What the project's volume `key` takes from the host through its `driver_opts`, if anything.
fn volume_mount(desired: &DesiredState, key: &str) -> Option<VolumeMount> {
    let v = desired.model.get("volumes")?.get(key)?;
    let opts = v.get("driver_opts")?;
    let device = opts.get("device").and_then(Tree::as_str)?.to_string();
    let o = opts.get("o").and_then(Tree::as_str).unwrap_or_default();
    if o.split(',').any(|x| matches!(x.trim(), "bind" | "rbind")) {
        return Some(VolumeMount::Bind(device));
    }
    let local = v
        .get("driver")
        .and_then(Tree::as_str)
        .is_none_or(|d| d.trim() == "local");
    let fs = opts
        .get("type")
        .and_then(Tree::as_str)
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if !local || NOT_FROM_HOST.contains(&fs.as_str()) {
        return None;
    }
    Some(VolumeMount::Device { device, fs })
}

/// `volumes_from`, `pid` and `ipc` references to a container outside the project
/// (`container:<name>`): the service takes over that container's mounts or joins its
/// namespaces, which no policy of this project has checked. (`service:<name>` and a bare
/// service name stay inside the project, whose own services are checked.)
fn container_refs(name: &str, model: &Tree) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, v) in strings(model.get("volumes_from")) {
        let Some(rest) = v.trim().strip_prefix("container:") else {
            continue;
        };
        let other = rest
            .strip_suffix(":ro")
            .or_else(|| rest.strip_suffix(":rw"))
            .unwrap_or(rest);
        out.push(Finding {
            grants: vec![format!("volumes_from:container:{other}")],
            path: format!("services.{name}.volumes_from[{i}]"),
            why: format!(
                "`volumes_from: container:{other}` mounts every volume and bind of a container \
                 outside this project (a Docker socket, a host folder, …), which no policy of \
                 this project has checked"
            ),
        });
    }
    for (key, why) in [
        (
            "pid",
            "sees and can signal its processes, reads their environment and reaches their \
             files through /proc",
        ),
        ("ipc", "shares its shared memory and semaphores"),
    ] {
        let Some(other) = model
            .get(key)
            .and_then(Tree::as_str)
            .and_then(|v| v.trim().strip_prefix("container:"))
        else {
            continue;
        };
        out.push(Finding {
            grants: vec![format!("{key}:container:{other}")],
            path: format!("services.{name}.{key}"),
            why: format!(
                "`{key}: container:{other}` joins the {key} namespace of a container outside \
                 this project: the service {why}"
            ),
        });
    }
    out
}

/// The host paths the `x-spindle.pre-recreate` one-off container of `s` binds, by index.
pub(super) fn hook_binds(s: &crate::desired::typed::DesiredService) -> Vec<(usize, &Path)> {
    hook_mounts(s)
        .into_iter()
        .filter_map(|(i, m)| match m {
            crate::desired::hook::MountSource::Bind(p) => Some((i, p.as_path())),
            crate::desired::hook::MountSource::Volume(_) => None,
        })
        .collect()
}

/// What the `x-spindle.pre-recreate` one-off container of `s` mounts, by index.
fn hook_mounts(
    s: &crate::desired::typed::DesiredService,
) -> Vec<(usize, &crate::desired::hook::MountSource)> {
    use crate::desired::hook::HookMode;
    let Some(HookMode::Run(spec)) = s.pre_recreate.as_ref().map(|p| &p.mode) else {
        return Vec::new();
    };
    spec.volumes
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, m)| (i, &m.source))
        .collect()
}

/// The grants in `grants` that no allowlist entry for `service` covers, and the reasons of the
/// entries that cover the others.
fn missing<'a>(
    cfg: &'a PolicyConfig,
    service: &str,
    grants: &'a [String],
) -> (Vec<&'a str>, Vec<&'a str>) {
    let mut missing = Vec::new();
    let mut reasons = Vec::new();
    for g in grants {
        match cfg.host_access_allowed(service, g) {
            Some(r) if !reasons.contains(&r) => reasons.push(r),
            Some(_) => {}
            None => missing.push(g.as_str()),
        }
    }
    (missing, reasons)
}

/// `"a"`, or `["a", "b"]` for several accesses.
fn access_yaml(grants: &[&str]) -> String {
    match grants {
        [one] => format!("\"{one}\""),
        many => format!(
            "[{}]",
            many.iter()
                .map(|g| format!("\"{g}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
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
    use crate::desired::hook::MountSource;
    for (name, s) in &desired.services {
        let mut found = service_findings(desired, name, &s.model, state_dir);
        for (i, m) in hook_mounts(s) {
            let path = format!("services.{name}.x-spindle.pre-recreate.volumes[{i}]");
            found.extend(match m {
                MountSource::Bind(source) => {
                    let shown = source.display().to_string();
                    bind_finding(
                        &shown,
                        path,
                        |why| format!("the pre-recreate hook's bind of `{shown}` {why}"),
                        state_dir,
                    )
                }
                MountSource::Volume(key) => volume_finding(desired, key, path, state_dir),
            });
        }
        for f in found {
            let (missing, reasons) = missing(cfg, name, &f.grants);
            if missing.is_empty() {
                allowed.push(format!(
                    "policy host_access: {}: `{}` allowed for service {name} ({})",
                    f.path,
                    f.grants.join("`, `"),
                    reasons.join("; ")
                ));
                continue;
            }
            out.push(Violation {
                policy: PolicyKind::HostAccess,
                mode: cfg.host_access.mode,
                path: f.path,
                message: format!(
                    "{}; remove it, or allow it for this service in spindle.yaml with \
                     `policies.host_access.allow: [{{service: {name}, access: {}, reason: …}}]`",
                    f.why,
                    access_yaml(&missing)
                ),
            });
        }
    }
}
