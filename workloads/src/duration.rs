//! Durations as text: `50us`, `1.5ms`, `200ns`, `2s`, always with a unit, always in nanoseconds.

use crate::error::{quote, SpecError};

const UNITS: &str = "use ns, us, ms or s";

/// Parse a duration with a unit (`ns`, `us` (or `µs`), `ms`, `s`) into nanoseconds.
///
/// The number may have a fraction (`1.5ms`); the result is rounded to the nearest nanosecond. A bare
/// number is refused: a unit is required, because `100` could mean anything.
///
/// ```
/// use workloads::parse_duration;
/// assert_eq!(parse_duration("50us").unwrap(), 50_000);
/// assert_eq!(parse_duration("1.5ms").unwrap(), 1_500_000);
/// assert_eq!(parse_duration(" 2s ").unwrap(), 2_000_000_000);
/// assert!(parse_duration("100").unwrap_err().to_string().contains("unit is required"));
/// assert!(parse_duration("-5us").is_err());
/// ```
pub fn parse_duration(s: &str) -> Result<u64, SpecError> {
    let err = |reason: &str| SpecError::Duration {
        input: s.trim().to_string(),
        reason: reason.to_string(),
    };
    let t = s.trim();
    if t.is_empty() {
        return Err(err("empty; write a number and a unit, e.g. 50us"));
    }
    let split = t
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_digit() || matches!(c, '.' | '+' | '-' | 'e' | 'E')))
        .map(|(i, _)| i)
        .unwrap_or(t.len());
    // An exponent 'e' directly followed by a unit letter is ambiguous; treat trailing e/E as unit text.
    let (mut num, mut unit) = t.split_at(split);
    while num.ends_with(['e', 'E']) {
        let cut = num.len() - 1;
        unit = &t[cut..];
        num = &t[..cut];
    }
    let unit = unit.trim();
    if num.is_empty() {
        return Err(err("write a number followed by ns, us, ms or s, e.g. 50us"));
    }
    if unit.is_empty() {
        return Err(err("a unit is required: ns, us, ms or s"));
    }
    let scale: f64 = match unit.to_ascii_lowercase().as_str() {
        "ns" => 1.0,
        "us" | "µs" | "μs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => return Err(err(UNITS)),
    };
    let value: f64 = num
        .parse()
        .map_err(|_| err("write a number followed by ns, us, ms or s, e.g. 50us"))?;
    if !value.is_finite() {
        return Err(err("must be finite"));
    }
    if value < 0.0 {
        return Err(err("must not be negative"));
    }
    let ns = (value * scale).round();
    // 2^64 is exactly representable; anything at or above it does not fit.
    if ns >= 18_446_744_073_709_551_616.0 {
        return Err(err("too large: at most about 18446744073s"));
    }
    Ok(ns as u64)
}

/// Write nanoseconds exactly, in the largest unit that divides them: `100us`, `1500us`, `2s`, `7ns`.
///
/// The result parses back to the same value with [`parse_duration`].
///
/// ```
/// use workloads::{format_duration, parse_duration};
/// assert_eq!(format_duration(100_000), "100us");
/// assert_eq!(format_duration(1_500_000), "1500us");
/// assert_eq!(format_duration(0), "0ns");
/// assert_eq!(parse_duration(&format_duration(123_456_789)).unwrap(), 123_456_789);
/// ```
pub fn format_duration(ns: u64) -> String {
    if ns == 0 {
        return "0ns".to_string();
    }
    for (scale, unit) in [(1_000_000_000, "s"), (1_000_000, "ms"), (1_000, "us")] {
        if ns % scale == 0 {
            return format!("{}{unit}", ns / scale);
        }
    }
    format!("{ns}ns")
}

/// Write nanoseconds for humans, with about four significant digits: `120.5us`, `1.5ms`, `2.35s`.
///
/// ```
/// use workloads::format_ns;
/// assert_eq!(format_ns(120_500.0), "120.5us");
/// assert_eq!(format_ns(100_000.0), "100us");
/// assert_eq!(format_ns(999.0), "999ns");
/// assert_eq!(format_ns(2_345_678_901.0), "2.346s");
/// assert_eq!(format_ns(0.25), "0.25ns");
/// ```
pub fn format_ns(ns: f64) -> String {
    if !ns.is_finite() {
        return if ns.is_nan() {
            "NaN".into()
        } else if ns > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let sign = if ns < 0.0 { "-" } else { "" };
    let a = ns.abs();
    if a == 0.0 {
        return "0ns".into();
    }
    let (scale, unit) = if a >= 1e9 {
        (1e9, "s")
    } else if a >= 1e6 {
        (1e6, "ms")
    } else if a >= 1e3 {
        (1e3, "us")
    } else {
        (1.0, "ns")
    };
    let v = a / scale;
    let digits = v.log10().floor() as i32;
    let decimals = (3 - digits).clamp(0, 6) as usize;
    let mut text = format!("{v:.decimals$}");
    if text.contains('.') {
        while text.ends_with('0') {
            text.pop();
        }
        if text.ends_with('.') {
            text.pop();
        }
    }
    format!("{sign}{text}{unit}")
}

pub(crate) fn quoted_duration_error(context: &str, param: &str, value: &str) -> SpecError {
    SpecError::param(
        context,
        param,
        quote(value.trim()),
        "a duration with a unit (ns, us, ms or s)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_fractions() {
        assert_eq!(parse_duration("200ns").unwrap(), 200);
        assert_eq!(parse_duration("0.1us").unwrap(), 100);
        assert_eq!(parse_duration("1e3us").unwrap(), 1_000_000);
        assert_eq!(parse_duration("3 ms").unwrap(), 3_000_000);
        assert_eq!(parse_duration("5µs").unwrap(), 5_000);
        assert!(parse_duration("12xs")
            .unwrap_err()
            .to_string()
            .contains("use ns, us, ms or s"));
        assert!(parse_duration("inf s").is_err());
        assert!(parse_duration("nanus").is_err());
        assert!(parse_duration("1e30s").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("us").is_err());
    }

    #[test]
    fn human_format() {
        assert_eq!(format_ns(1_500_000.0), "1.5ms");
        assert_eq!(format_ns(-2_000.0), "-2us");
        assert_eq!(format_ns(f64::NAN), "NaN");
    }
}
