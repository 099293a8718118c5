//! The settings `docker update` can change on a running container, in engine units.

use serde_json::{Map, Value, json};

use super::SpecError;
use super::container::live_host_fields;
use crate::desired::typed::DesiredService;
use crate::observe::snapshot::LiveConfig;

/// The desired live-updatable settings of the service, as the create body sets them (`0` and
/// `""` mean "engine default"; a restart policy of `""` is the engine's `no`).
pub fn live_config(svc: &DesiredService) -> Result<LiveConfig, SpecError> {
    let h = live_host_fields(svc)?;
    let int = |k: &str| h.get(k).and_then(Value::as_i64).unwrap_or(0);
    let restart = h.get("RestartPolicy");
    Ok(LiveConfig {
        nano_cpus: int("NanoCpus"),
        cpu_shares: int("CpuShares"),
        cpu_quota: int("CpuQuota"),
        cpu_period: int("CpuPeriod"),
        cpuset_cpus: h
            .get("CpusetCpus")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        memory: int("Memory"),
        memory_reservation: int("MemoryReservation"),
        memory_swap: int("MemorySwap"),
        pids_limit: int("PidsLimit"),
        restart_policy: match restart
            .and_then(|r| r.get("Name"))
            .and_then(Value::as_str)
            .unwrap_or_default()
        {
            "" => "no".to_string(),
            other => other.to_string(),
        },
        restart_max_retries: restart
            .and_then(|r| r.get("MaximumRetryCount"))
            .and_then(Value::as_i64)
            .unwrap_or(0),
    })
}

/// The live settings as the engine reports them once it applied `desired`: a memory limit
/// without a swap limit gets twice the memory as swap limit (or `-1` on hosts without swap
/// accounting, which `observed` tells), and a pids limit of `0` reads as unlimited.
fn effective(desired: &LiveConfig, observed: &LiveConfig) -> LiveConfig {
    let mut d = desired.clone();
    if d.memory > 0 && d.memory_swap == 0 {
        d.memory_swap = if observed.memory_swap == -1 {
            -1
        } else {
            d.memory * 2
        };
    }
    d
}

fn normalised_pids(p: i64) -> i64 {
    if p <= 0 { 0 } else { p }
}

/// The fields of the live settings that differ, after the engine's normalisation (names are
/// the `LiveConfig` field names). Empty: nothing to update.
pub fn live_differences(desired: &LiveConfig, observed: &LiveConfig) -> Vec<&'static str> {
    let d = effective(desired, observed);
    let o = observed;
    let mut out = Vec::new();
    let mut check = |name: &'static str, same: bool| {
        if !same {
            out.push(name);
        }
    };
    check("nano_cpus", d.nano_cpus == o.nano_cpus);
    check("cpu_shares", d.cpu_shares == o.cpu_shares);
    check("cpu_quota", d.cpu_quota == o.cpu_quota);
    check("cpu_period", d.cpu_period == o.cpu_period);
    check("cpuset_cpus", d.cpuset_cpus == o.cpuset_cpus);
    check("memory", d.memory == o.memory);
    check(
        "memory_reservation",
        d.memory_reservation == o.memory_reservation,
    );
    check(
        "memory_swap",
        d.memory_swap == o.memory_swap || (d.memory == 0 && d.memory_swap == 0),
    );
    check(
        "pids_limit",
        normalised_pids(d.pids_limit) == normalised_pids(o.pids_limit),
    );
    let name = |n: &str| {
        if n.is_empty() {
            "no".to_string()
        } else {
            n.to_string()
        }
    };
    check(
        "restart_policy",
        name(&d.restart_policy) == name(&o.restart_policy),
    );
    check(
        "restart_max_retries",
        d.restart_max_retries == o.restart_max_retries,
    );
    out
}

/// Whether `docker update` can take the container from `observed` to `desired`: the engine
/// reads `0` as "unchanged" for the CPU and memory fields, so removing a limit (or a cpuset)
/// needs a recreate. The pids limit and the restart policy can always be changed.
pub fn live_update_possible(observed: &LiveConfig, desired: &LiveConfig) -> bool {
    let d = effective(desired, observed);
    let removed = |want: i64, have: i64| want == 0 && have != 0;
    !(removed(d.nano_cpus, observed.nano_cpus)
        || removed(d.cpu_shares, observed.cpu_shares)
        || removed(d.cpu_quota, observed.cpu_quota)
        || removed(d.cpu_period, observed.cpu_period)
        || (d.cpuset_cpus.is_empty() && !observed.cpuset_cpus.is_empty())
        || removed(d.memory, observed.memory)
        || removed(d.memory_reservation, observed.memory_reservation)
        // nano CPUs and a CPU quota/period cannot be set together.
        || (d.nano_cpus != 0 && (observed.cpu_quota != 0 || observed.cpu_period != 0))
        || ((d.cpu_quota != 0 || d.cpu_period != 0) && observed.nano_cpus != 0))
}

/// The `POST /containers/{id}/update` body that sets the live settings.
pub fn update_body(live: &LiveConfig) -> Value {
    let mut m = Map::new();
    m.insert("NanoCpus".into(), json!(live.nano_cpus));
    m.insert("CpuShares".into(), json!(live.cpu_shares));
    m.insert("CpuQuota".into(), json!(live.cpu_quota));
    m.insert("CpuPeriod".into(), json!(live.cpu_period));
    m.insert("CpusetCpus".into(), json!(live.cpuset_cpus));
    m.insert("Memory".into(), json!(live.memory));
    m.insert("MemoryReservation".into(), json!(live.memory_reservation));
    // Without an explicit swap limit the engine defaults to twice the memory at create; say so
    // on update too, or raising the memory past the old swap limit is refused.
    let swap = if live.memory > 0 && live.memory_swap == 0 {
        live.memory.saturating_mul(2)
    } else {
        live.memory_swap
    };
    m.insert("MemorySwap".into(), json!(swap));
    // `-1` is "unlimited" on update (`0` would be "unchanged" for older engines).
    m.insert(
        "PidsLimit".into(),
        json!(if live.pids_limit > 0 {
            live.pids_limit
        } else {
            -1
        }),
    );
    m.insert(
        "RestartPolicy".into(),
        json!({"Name": live.restart_policy, "MaximumRetryCount": live.restart_max_retries}),
    );
    Value::Object(m)
}

/// The live settings of a container as its inspect document (`GET /containers/{id}/json`)
/// reports them.
pub fn observed_live(inspect: &Value) -> LiveConfig {
    let h = inspect.get("HostConfig");
    let int = |k: &str| {
        h.and_then(|h| h.get(k))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    let restart = h.and_then(|h| h.get("RestartPolicy"));
    LiveConfig {
        nano_cpus: int("NanoCpus"),
        cpu_shares: int("CpuShares"),
        cpu_quota: int("CpuQuota"),
        cpu_period: int("CpuPeriod"),
        cpuset_cpus: h
            .and_then(|h| h.get("CpusetCpus"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        memory: int("Memory"),
        memory_reservation: int("MemoryReservation"),
        memory_swap: int("MemorySwap"),
        pids_limit: int("PidsLimit"),
        restart_policy: restart
            .and_then(|r| r.get("Name"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        restart_max_retries: restart
            .and_then(|r| r.get("MaximumRetryCount"))
            .and_then(Value::as_i64)
            .unwrap_or(0),
    }
}
