//! Scalar grammars compose-go applies while binding the model: Go durations, byte sizes, numbers, booleans and shell words.

/// Parses a duration the way compose-go does (Go's grammar plus `d` and `w` units); returns nanoseconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let mut s = text;
    let mut neg = false;
    if let Some(rest) = s.strip_prefix('-') {
        neg = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err("not a duration".into());
    }
    const LIMIT: u128 = 1 << 63;
    let mut total: u128 = 0;
    while !s.is_empty() {
        let first = s.as_bytes().first().copied().unwrap_or(0);
        if !(first == b'.' || first.is_ascii_digit()) {
            return Err("not a duration".into());
        }
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, rest) = s.split_at(int_len);
        let mut whole: u128 = 0;
        for c in int_part.bytes() {
            whole = whole * 10 + u128::from(c - b'0');
            if whole > LIMIT {
                return Err("duration out of range".into());
            }
        }
        s = rest;
        let mut frac: u128 = 0;
        let mut scale: f64 = 1.0;
        let mut post = false;
        if let Some(rest) = s.strip_prefix('.') {
            let frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            let (frac_part, rest) = rest.split_at(frac_len);
            let mut overflow = false;
            for c in frac_part.bytes() {
                if overflow {
                    continue;
                }
                let next = frac * 10 + u128::from(c - b'0');
                if next > LIMIT {
                    overflow = true;
                    continue;
                }
                frac = next;
                scale *= 10.0;
            }
            post = frac_len > 0;
            s = rest;
        }
        if int_len == 0 && !post {
            return Err("not a duration".into());
        }
        let unit_len = s
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map(|(i, _)| i)
            .unwrap_or(s.len());
        if unit_len == 0 {
            return Err("missing unit in duration".into());
        }
        let (unit, rest) = s.split_at(unit_len);
        s = rest;
        let mult: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "d" => 24 * 3_600 * 1_000_000_000,
            "w" => 7 * 24 * 3_600 * 1_000_000_000,
            _ => return Err("unknown unit in duration".into()),
        };
        if whole > LIMIT / mult {
            return Err("duration out of range".into());
        }
        let mut v = whole * mult;
        if frac > 0 {
            v += (frac as f64 * (mult as f64 / scale)) as u128;
            if v > LIMIT {
                return Err("duration out of range".into());
            }
        }
        total += v;
        if total > LIMIT {
            return Err("duration out of range".into());
        }
    }
    if neg {
        Ok((total as i128).wrapping_neg() as i64)
    } else if total > LIMIT - 1 {
        Err("duration out of range".into())
    } else {
        Ok(total as i64)
    }
}

/// Formats nanoseconds as Go's `time.Duration.String` does: `1m30s`, `1.5s`, `500ms`, `0s`.
pub fn format_duration(nanos: i64) -> String {
    let neg = nanos < 0;
    let mut u = nanos.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (prec, unit) = match u {
            0 => return "0s".into(),
            1..=999 => (0, "ns"),
            1_000..=999_999 => (3, "\u{b5}s"),
            _ => (6, "ms"),
        };
        let (frac, whole) = frac_part(u, prec);
        out.push_str(&whole.to_string());
        out.push_str(&frac);
        out.push_str(unit);
    } else {
        let (frac, secs) = frac_part(u, 9);
        u = secs;
        let s = u % 60;
        u /= 60;
        if u > 0 {
            let m = u % 60;
            u /= 60;
            if u > 0 {
                out.push_str(&format!("{u}h"));
            }
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&format!("{s}{frac}s"));
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// Splits `v` into its last `prec` decimal digits (as `.ddd`, trailing zeros dropped) and the rest.
fn frac_part(v: u64, prec: u32) -> (String, u64) {
    let div = 10u64.pow(prec);
    let frac = v % div;
    let whole = v / div;
    if frac == 0 {
        return (String::new(), whole);
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    (format!(".{}", digits.trim_end_matches('0')), whole)
}

/// compose-go `UnitBytes` from a string: a plain integer, else go-units `RAMInBytes`.
pub fn parse_bytes(text: &str) -> Result<i64, String> {
    if let Some(n) = go_parse_int(text, 64) {
        return Ok(n);
    }
    let sep = text.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ');
    let Some(sep) = sep else {
        return Err("not a size".into());
    };
    let (num, sfx) = if text.as_bytes().get(sep) == Some(&b' ') {
        (&text[..sep], &text[sep + 1..])
    } else {
        (&text[..sep + 1], &text[sep + 1..])
    };
    let size = go_parse_float(num).ok_or_else(|| "not a size".to_string())?;
    if size < 0.0 {
        return Err("negative size".into());
    }
    if sfx.is_empty() {
        return Ok(size as i64);
    }
    let lower = sfx.to_ascii_lowercase();
    let bad = || Err("invalid size suffix".to_string());
    if sfx.len() > 3 {
        return bad();
    }
    let b = lower.as_bytes();
    if b.first() == Some(&b'b') {
        return if b.len() > 1 { bad() } else { Ok(size as i64) };
    }
    let mult: f64 = match b.first() {
        Some(b'k') => 1024.0,
        Some(b'm') => 1024.0 * 1024.0,
        Some(b'g') => 1024.0 * 1024.0 * 1024.0,
        Some(b't') => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        Some(b'p') => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return bad(),
    };
    if (b.len() == 2 && b.get(1) != Some(&b'b')) || (b.len() == 3 && &lower[1..] != "ib") {
        return bad();
    }
    Ok((size * mult) as i64)
}

/// Go `strconv.ParseInt(s, 10, bits)`: optional sign, ASCII digits only, range-checked.
pub fn go_parse_int(text: &str, bits: u32) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n: i128 = text.parse().ok()?;
    let max = (1i128 << (bits - 1)) - 1;
    let min = -(1i128 << (bits - 1));
    if n < min || n > max {
        return None;
    }
    i64::try_from(n).ok()
}

/// Go `strconv.ParseFloat(s, 64)` for the decimal forms compose files use (also `inf`, `nan`, hex is not supported).
pub fn go_parse_float(text: &str) -> Option<f64> {
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    if body.is_empty() || body.contains('_') {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        return text.to_ascii_lowercase().parse().ok();
    }
    if !body
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    let v: f64 = text.parse().ok()?;
    if v.is_infinite() {
        return None;
    }
    Some(v)
}

/// compose's boolean cast for strings (YAML 1.1 spellings accepted).
pub fn go_parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "y" | "yes" | "on" => Some(true),
        "false" | "n" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Go's `fmt.Sprint` of a float64 (`%v`): shortest digits, exponent form below 1e-4 and from 1e6.
pub fn go_format_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{f:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

/// Go's `fmt.Sprint` of a float32 value.
pub fn go_format_float32(f: f32) -> String {
    // Shortest float32 digits, re-read as f64 so formatting rules match.
    let shortest: f64 = format!("{f:e}").parse().unwrap_or(f64::from(f));
    go_format_float(shortest)
}

/// Splits a command line the way `go-shellwords` does with no expansion: quotes and
/// backslashes are removed, `$(..)` and backticks are kept whole, and parsing stops at
/// an unquoted `;`, `&`, `|`, `<` or `>`.
pub fn shell_words(line: &str) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut buf = String::new();
    let mut got = false;
    let (mut escaped, mut dq, mut sq, mut bq, mut dollar) = (false, false, false, false, false);
    let mut prev: Option<char> = None;
    for r in line.chars() {
        let last = prev;
        prev = Some(r);
        if escaped {
            buf.push(r);
            escaped = false;
            got = true;
            continue;
        }
        if r == '\\' {
            if sq {
                buf.push(r);
            } else {
                escaped = true;
            }
            continue;
        }
        if matches!(r, ' ' | '\t' | '\r' | '\n') {
            if sq || dq || bq || dollar {
                buf.push(r);
            } else if got {
                args.push(std::mem::take(&mut buf));
                got = false;
            }
            continue;
        }
        match r {
            '`' if !sq && !dq && !dollar => bq = !bq,
            '(' if !sq && !dq && !bq && last == Some('$') => dollar = true,
            ')' if !sq && !dq && !bq && dollar => dollar = false,
            '"' if !sq && !dollar => {
                dq = !dq;
                got = true;
                continue;
            }
            '\'' if !dq && !dollar => {
                sq = !sq;
                got = true;
                continue;
            }
            ';' | '&' | '|' | '<' | '>' if !(sq || dq || bq || dollar) => break,
            _ => {}
        }
        got = true;
        buf.push(r);
    }
    if escaped || sq || dq || bq || dollar {
        return Err("unterminated quote or escape".into());
    }
    if got {
        args.push(buf);
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        let table = [
            ("1m30s", "1m30s"),
            ("90s", "1m30s"),
            ("10s", "10s"),
            ("2m", "2m0s"),
            ("1h", "1h0m0s"),
            ("1.5s", "1.5s"),
            ("500ms", "500ms"),
            ("1500us", "1.5ms"),
            ("1d", "24h0m0s"),
            ("1w", "168h0m0s"),
            ("0", "0s"),
            ("0s", "0s"),
            ("-1s", "-1s"),
            ("100ns", "100ns"),
            ("2\u{b5}s", "2\u{b5}s"),
            (".5s", "500ms"),
            ("1h2m3s4ms", "1h2m3.004s"),
            // Checked against compose v5.6.1.
            ("1.5h", "1h30m0s"),
            ("2d", "48h0m0s"),
            ("1w2d", "216h0m0s"),
            ("+5s", "5s"),
            ("1us", "1\u{b5}s"),
            ("1000000h", "1000000h0m0s"),
            ("0.000000001s", "1ns"),
            ("1.0000000005s", "1s"),
            ("3ns", "3ns"),
            ("59.9999999999s", "59.999999999s"),
        ];
        for (input, want) in table {
            let d = parse_duration(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(format_duration(d), want, "{input}");
        }
    }

    #[test]
    fn malformed_durations_are_rejected() {
        for bad in [
            "",
            "10",
            "1x",
            "s",
            ".s",
            "-",
            "1.5",
            "99999999999h",
            "1s2",
            "1e3s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_follow_go_units() {
        let table = [
            ("1024", 1024),
            ("512M", 536_870_912),
            ("1g", 1_073_741_824),
            ("10m", 10_485_760),
            ("12mb", 12_582_912),
            ("1KiB", 1024),
            ("1.5k", 1536),
            ("100b", 100),
            ("2 GB", 2_147_483_648),
            // Checked against compose v5.6.1.
            ("1kb", 1024),
            ("0.5g", 536_870_912),
            ("1p", 1_125_899_906_842_624),
            ("1.5", 1),
            ("+5", 5),
            ("-5", -5),
            ("5 ", 5),
            ("1KIB", 1024),
        ];
        for (input, want) in table {
            assert_eq!(parse_bytes(input), Ok(want), "{input}");
        }
        for bad in [
            "", "abc", "1x", "1mbb", "1kx", "-1k", "1bb", "1.2.3m", "0x10",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shell_words_split_like_go_shellwords() {
        let table: [(&str, &[&str]); 6] = [
            ("echo a && echo b", &["echo", "a"]),
            (
                "echo `date` $(x y) \"q\\\"r\" 'it''s' a\\ b",
                &["echo", "`date`", "$(x y)", "q\"r", "its", "a b"],
            ),
            ("sh -c 'a; b' > f", &["sh", "-c", "a; b"]),
            ("", &[]),
            ("a\tb\nc", &["a", "b", "c"]),
            ("x=\"$(y)\" a>b", &["x=$(y)", "a"]),
        ];
        for (input, want) in table {
            let want: Vec<String> = want.iter().map(|w| w.to_string()).collect();
            assert_eq!(shell_words(input), Ok(want), "{input}");
        }
        assert!(shell_words("'open").is_err());
    }

    #[test]
    fn floats_print_like_go_sprint() {
        assert_eq!(go_format_float(1.0), "1");
        assert_eq!(go_format_float(0.5), "0.5");
        assert_eq!(go_format_float(1e21), "1e+21");
        assert_eq!(go_format_float(1e6), "1e+06");
        assert_eq!(go_format_float(123456.0), "123456");
        assert_eq!(go_format_float(1234567.5), "1.2345675e+06");
        assert_eq!(go_format_float(0.0001), "0.0001");
        assert_eq!(go_format_float(0.00001), "1e-05");
        assert_eq!(go_format_float32(0.1), "0.1");
    }
}
