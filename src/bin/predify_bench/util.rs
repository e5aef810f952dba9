//! Timing, memory and JSON helpers.

use std::time::Instant;

/// Peak resident set size of this process (`VmHWM` in `/proc/self/status`), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Median of a non-empty list (mean of the middle two for an even length).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = s.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

/// Time `f` the way the op-level table does (the same rule as `scripts/bench_reference.py`):
/// one call; if it took under 5 s it was a warm-up and `reps` more calls (5 under 1 s, else 3)
/// are timed; the result is the median of the timed calls and their number.
pub fn time_op<T, E>(mut f: impl FnMut() -> Result<T, E>) -> Result<(f64, usize, T), E> {
    let t = Instant::now();
    let mut out = f()?;
    let first = t.elapsed().as_secs_f64();
    if first >= 5.0 {
        return Ok((first, 1, out));
    }
    let reps = if first < 1.0 { 5 } else { 3 };
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        out = f()?;
        times.push(t.elapsed().as_secs_f64());
    }
    Ok((median(&times), reps, out))
}

/// A JSON number (non-finite values as `null`).
pub fn num(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".into()
    }
}

/// A JSON array of numbers.
pub fn nums(v: &[f64]) -> String {
    format!("[{}]", v.iter().map(|x| num(*x)).collect::<Vec<_>>().join(","))
}

/// A JSON string (the bench's strings are plain ASCII apart from quotes and backslashes).
pub fn string(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// The number after `"key":` in a flat JSON object written by this binary.
pub fn field(json: &str, key: &str) -> Option<f64> {
    let pat = format!("\"{key}\":");
    let rest = &json[json.find(&pat)? + pat.len()..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

/// Bytes as MiB.
pub fn mib(b: f64) -> f64 {
    b / (1024.0 * 1024.0)
}
