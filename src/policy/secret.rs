//! Tells placeholder values from real-looking secrets in `.env.example`.

/// True for values that obviously stand in for a secret: empty, `changeme`, `<…>`, `${…}`, `xxx…`, `example`, ….
pub fn is_placeholder(value: &str) -> bool {
    let v = value.trim().trim_matches(|c| c == '"' || c == '\'');
    let lower = v.to_ascii_lowercase();
    if lower.is_empty() {
        return true;
    }
    if (v.starts_with('<') && v.ends_with('>')) || (v.starts_with("${") && v.ends_with('}')) {
        return true;
    }
    if lower.starts_with("xxx") || lower.chars().all(|c| c == '*' || c == '.') {
        return true;
    }
    if lower.starts_with("your") || lower.ends_with("here") {
        return true;
    }
    if matches!(
        lower.as_str(),
        "secret" | "password" | "none" | "null" | "todo"
    ) {
        return true;
    }
    [
        "changeme",
        "change-me",
        "change_me",
        "example",
        "placeholder",
        "replace-me",
        "replace_me",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

/// True when a value looks like a real secret: at least 8 characters mixing character classes,
/// or high Shannon entropy.
pub fn looks_real(value: &str) -> bool {
    let v = value.trim();
    let len = v.chars().count();
    if len < 8 {
        return false;
    }
    let classes = [
        v.chars().any(|c| c.is_lowercase()),
        v.chars().any(|c| c.is_uppercase()),
        v.chars().any(|c| c.is_numeric()),
        v.chars().any(|c| !c.is_alphanumeric()),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    classes >= 2 || entropy(v) >= 3.0
}

/// Shannon entropy in bits per character.
fn entropy(s: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    let mut n = 0usize;
    for c in s.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    let n = n as f64;
    counts
        .values()
        .map(|&k| {
            let p = k as f64 / n;
            -p * p.log2()
        })
        .sum()
}
