//! Durations as text: `50us`, `1.5ms`, `200ns`, `2s`, always with a unit, always in nanoseconds.

use crate::error::{quote, SpecError};

/// Parse a duration with a unit (`ns`, `us` (or `µs`), `ms`, `s`) into nanoseconds.
///
/// The number may have a fraction or an exponent (`1.5ms`, `1e3ns`); the result is rounded to the
/// nearest nanosecond. A bare number other than zero is refused: a unit is required, because `100`
/// could mean anything. This is the grammar of the `grammar` crate, shared with the strategies and
/// the simulator's cost model.
///
/// ```
/// use workloads::parse_duration;
/// assert_eq!(parse_duration("50us").unwrap(), 50_000);
/// assert_eq!(parse_duration("1.5ms").unwrap(), 1_500_000);
/// assert_eq!(parse_duration(" 2s ").unwrap(), 2_000_000_000);
/// assert!(parse_duration("100").unwrap_err().to_string().contains("unit is required"));
/// assert!(parse_duration("-5us").is_err());
/// assert_eq!(parse_duration("1e3ns").unwrap(), 1_000);
/// assert_eq!(parse_duration("0").unwrap(), 0);
/// ```
pub fn parse_duration(s: &str) -> Result<u64, SpecError> {
    grammar::parse_duration(s).map_err(SpecError::from)
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
    grammar::format_duration(ns)
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
