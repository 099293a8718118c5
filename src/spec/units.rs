//! Engine units from the model's encodings: Go durations to nanoseconds, byte-size strings to bytes.

use serde_json::Value;

/// Parses a Go duration (`1h0m0s`, `1m30s`, `500ms`, `2.5s`, `-1s`) into nanoseconds.
pub fn duration_ns(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_end);
        if num.is_empty() {
            return None;
        }
        let value: f64 = num.parse().ok()?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += value * scale;
        rest = tail;
    }
    if !total.is_finite() || total > i64::MAX as f64 {
        return None;
    }
    let ns = total.round() as i64;
    Some(if neg { -ns } else { ns })
}

/// A duration field of the model (a Go duration string, or a number of nanoseconds).
pub fn duration_value(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => duration_ns(s),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// A byte-size or integer field of the model (`"536870912"`, `1024`).
pub fn int_value(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        _ => None,
    }
}

/// A float field of the model (`0.5`, `"0.50"`).
pub fn float_value(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// Go's `int64(cpus * 1e9)` (truncation toward zero), as Compose computes `NanoCpus`.
pub fn nano_cpus(cpus: f64) -> i64 {
    // compose-go holds both `cpus` and `deploy.resources.limits.cpus` as float32, and Go
    // multiplies in float32 before the conversion.
    ((cpus as f32) * 1e9_f32) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_convert_to_nanoseconds() {
        assert_eq!(duration_ns("1h0m0s"), Some(3_600_000_000_000));
        assert_eq!(duration_ns("1m30s"), Some(90_000_000_000));
        assert_eq!(duration_ns("500ms"), Some(500_000_000));
        assert_eq!(duration_ns("2.5s"), Some(2_500_000_000));
        assert_eq!(duration_ns("0s"), Some(0));
        assert_eq!(duration_ns("0"), Some(0));
        assert_eq!(duration_ns("1us"), Some(1000));
        assert_eq!(duration_ns("-1s"), Some(-1_000_000_000));
        assert_eq!(duration_ns(""), None);
        assert_eq!(duration_ns("5x"), None);
        assert_eq!(duration_ns("s"), None);
    }

    #[test]
    fn cpus_truncate_like_go() {
        assert_eq!(nano_cpus(0.75), 750_000_000);
        assert_eq!(nano_cpus(0.1), 100_000_000);
        assert_eq!(nano_cpus(1.5), 1_500_000_000);
    }
}
