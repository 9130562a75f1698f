//! # grammar — the one spec grammar of schedlab
//!
//! Every string a user writes for schedlab (a strategy `work-stealing(steal=one)`, a workload
//! `lognormal(mean=100us,sigma=1.5)`, a cost model `zero,shared=100ns`, a duration `1.5ms`) is
//! read by the functions of this crate, so the three places that take specs agree on:
//!
//! - **calls**: `name` or `name(arg,arg,...)`; names are ASCII letters, digits, `-` and `_`, and
//!   are compared case-insensitively (they come back lower-cased); arguments are split at commas
//!   outside parentheses and quotes, nesting at most [`MAX_DEPTH`] deep;
//! - **keys**: `key=value`, keys lower-cased, a key given twice is an error everywhere;
//! - **durations**: a decimal number (fraction and exponent allowed: `1.5us`, `1e3ns`) and a unit
//!   `ns`, `us` (`µs`), `ms` or `s`; a bare `0` needs no unit; rounded to the nearest nanosecond;
//! - **errors**: one [`Error`] type whose message is always one line, with user text quoted by
//!   [`quote`]: control characters escaped and long input cut to [`MAX_QUOTED`] characters.
//!
//! This crate depends on no other schedlab crate, so `workloads` and `scheduler` (its cost
//! model) and `strategies` can all use it.
//!
//! ```
//! use grammar::{parse_call, parse_duration, quote};
//!
//! let call = parse_call("Work-Stealing(steal=one, victim=numa)", "strategy").unwrap();
//! assert_eq!(call.name, "work-stealing");
//! assert_eq!(call.args, vec!["steal=one", "victim=numa"]);
//! assert_eq!(parse_duration("1e3ns").unwrap(), 1_000);
//! assert_eq!(parse_duration("0").unwrap(), 0);
//! assert_eq!(parse_duration("1.5us").unwrap(), 1_500);
//! assert!(parse_duration("100").unwrap_err().to_string().contains("unit is required"));
//! assert_eq!(quote("a\nb"), "'a\\nb'");
//! let err = grammar::check_unique_keys(&["local=1ns", "LOCAL=2ns"], "cost model").unwrap_err();
//! assert_eq!(err.to_string(), "cost model: parameter local given twice");
//! ```
#![deny(missing_docs)]

use thiserror::Error;

/// How deeply calls may nest (a `mix` inside a `mix` ...), so hostile input cannot exhaust the
/// stack.
pub const MAX_DEPTH: usize = 16;

/// User text longer than this many characters is cut in error messages.
pub const MAX_QUOTED: usize = 80;

/// A spec longer than this many bytes is refused before it is parsed.
pub const MAX_SPEC_BYTES: usize = 1 << 20;

/// What is wrong with a spec. Every message is one line: user text in it went through
/// [`escape`] or [`quote`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// A duration that is not a number and a unit.
    #[error("'{input}' is not a duration ({reason})")]
    Duration {
        /// The text as given, escaped and cut.
        input: String,
        /// Why it was refused and what is allowed.
        reason: String,
    },
    /// A key given twice.
    #[error("{context}: parameter {param} given twice")]
    DuplicateKey {
        /// The spec it appeared in.
        context: String,
        /// The key (lower-cased, escaped).
        param: String,
    },
    /// A spec that is malformed as a whole (unbalanced parentheses, no name, too long ...).
    #[error("{context}: {message}")]
    Invalid {
        /// The spec or setting it concerns.
        context: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl Error {
    /// A malformed-spec error.
    pub fn invalid(context: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            context: context.into(),
            message: message.into(),
        }
    }
}

/// User text made safe for a one-line message: control characters, quotes and backslashes
/// escaped (`\n`, `\u{1b}`, `\'`), other characters (µ included) kept, and anything past
/// [`MAX_QUOTED`] characters replaced by `...` and the length of what was cut.
///
/// ```
/// assert_eq!(grammar::escape("3µs"), "3µs");
/// assert_eq!(grammar::escape("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
/// let long = "x".repeat(1000);
/// assert_eq!(grammar::escape(&long), format!("{}...(920 more bytes)", "x".repeat(80)));
/// ```
pub fn escape(s: &str) -> String {
    let mut out = String::new();
    let mut cut = None;
    for (n, (i, c)) in s.char_indices().enumerate() {
        if n == MAX_QUOTED {
            cut = Some(s.len() - i);
            break;
        }
        if c.is_control() || c == '\'' || c == '\\' || is_invisible(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if let Some(rest) = cut {
        out.push_str(&format!("...({rest} more bytes)"));
    }
    out
}

/// Characters that are not control characters but still move the cursor or hide text.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// [`escape`]d user text in single quotes, for error messages.
///
/// ```
/// assert_eq!(grammar::quote("fastest"), "'fastest'");
/// assert_eq!(grammar::quote("it's"), "'it\\'s'");
/// ```
pub fn quote(s: &str) -> String {
    format!("'{}'", escape(s))
}

/// Make any message one line: control characters escaped and the whole cut to `max` characters.
/// The last line of defence for messages assembled elsewhere.
///
/// ```
/// assert_eq!(grammar::one_line("bad\ninput", 100), "bad\\ninput");
/// assert_eq!(grammar::one_line("abcdef", 3), "abc...(3 more bytes)");
/// ```
pub fn one_line(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, (i, c)) in s.char_indices().enumerate() {
        if n == max {
            out.push_str(&format!("...({} more bytes)", s.len() - i));
            break;
        }
        if c.is_control() || is_invisible(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A parsed `name(args)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call<'a> {
    /// The name, lower-cased.
    pub name: String,
    /// Top-level comma-separated arguments, trimmed (empty for `name` and `name()`).
    pub args: Vec<&'a str>,
}

/// Split `input` into a name and its top-level arguments. `context` names the setting in errors
/// (e.g. `strategy`, `arrivals`).
pub fn parse_call<'a>(input: &'a str, context: &str) -> Result<Call<'a>, Error> {
    let t = input.trim();
    if t.is_empty() {
        return Err(Error::invalid(context, "empty spec"));
    }
    if t.len() > MAX_SPEC_BYTES {
        return Err(Error::invalid(
            context,
            format!(
                "spec of {} bytes is too long (at most {MAX_SPEC_BYTES})",
                t.len()
            ),
        ));
    }
    let (name, inner) = match t.find('(') {
        None => (t, None),
        Some(open) => {
            if !t.ends_with(')') {
                return Err(Error::invalid(
                    context,
                    format!("{} is missing its closing ')'", quote(t)),
                ));
            }
            (t[..open].trim(), Some(&t[open + 1..t.len() - 1]))
        }
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Error::invalid(
            context,
            format!(
                "{} does not start with a name (letters, digits, '-' and '_'), e.g. name(key=value)",
                quote(t)
            ),
        ));
    }
    let args = match inner {
        None => Vec::new(),
        Some(inner) => split_top_level(inner, ',', context)?,
    };
    Ok(Call {
        name: name.to_ascii_lowercase(),
        args,
    })
}

/// Split at `sep` outside parentheses and quotes, checking balance and depth. An empty input
/// gives no parts; an empty part (a stray comma) is an error.
pub fn split_top_level<'a>(s: &'a str, sep: char, context: &str) -> Result<Vec<&'a str>, Error> {
    if s.trim().is_empty() {
        return Ok(Vec::new());
    }
    if s.len() > MAX_SPEC_BYTES {
        return Err(Error::invalid(
            context,
            format!(
                "spec of {} bytes is too long (at most {MAX_SPEC_BYTES})",
                s.len()
            ),
        ));
    }
    let mut parts = Vec::new();
    let mut nesting = Nesting::default();
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let top = nesting.top_level(c);
        if nesting.depth < 0 {
            return Err(Error::invalid(
                context,
                format!("unbalanced ')' in {}", quote(s)),
            ));
        }
        if nesting.depth > MAX_DEPTH as isize {
            return Err(Error::invalid(
                context,
                format!("nested more than {MAX_DEPTH} deep"),
            ));
        }
        if top && c == sep {
            parts.push(s[start..i].trim());
            start = i + c.len_utf8();
        }
    }
    if nesting.quote.is_some() {
        return Err(Error::invalid(
            context,
            format!("unclosed quote in {}", quote(s)),
        ));
    }
    if nesting.depth != 0 {
        return Err(Error::invalid(
            context,
            format!("unbalanced '(' in {}", quote(s)),
        ));
    }
    parts.push(s[start..].trim());
    if parts.iter().any(|p| p.is_empty()) {
        return Err(Error::invalid(
            context,
            format!("empty argument in {} (stray comma?)", quote(s)),
        ));
    }
    Ok(parts)
}

/// Find `ch` at depth 0 (outside parentheses and quotes).
pub fn find_top_level(s: &str, ch: char) -> Option<usize> {
    let mut nesting = Nesting::default();
    s.char_indices()
        .find(|&(_, c)| nesting.top_level(c) && c == ch)
        .map(|(i, _)| i)
}

/// Split an argument into `(key, value)` at its first top-level `=`: the key lower-cased and
/// trimmed, the value trimmed. `None` for a positional argument.
pub fn key_value(arg: &str) -> Option<(String, &str)> {
    find_top_level(arg, '=').map(|eq| (arg[..eq].trim().to_ascii_lowercase(), arg[eq + 1..].trim()))
}

/// Refuse a key given twice among `args` (keys compared case-insensitively; positional
/// arguments are skipped).
pub fn check_unique_keys(args: &[&str], context: &str) -> Result<(), Error> {
    let keys: Vec<String> = args
        .iter()
        .filter_map(|a| key_value(a).map(|(k, _)| k))
        .collect();
    for (i, k) in keys.iter().enumerate() {
        if keys[..i].contains(k) {
            return Err(Error::DuplicateKey {
                context: context.to_string(),
                param: escape(k),
            });
        }
    }
    Ok(())
}

/// Parenthesis depth and open quote while scanning a spec left to right.
#[derive(Debug, Default)]
struct Nesting {
    /// Open parentheses (negative after an unbalanced `)`).
    depth: isize,
    /// The quote character of an open quoted string.
    quote: Option<char>,
}

impl Nesting {
    /// Take in the next character; true when it stands at the top level (outside quotes and
    /// parentheses) and is not itself a quote or parenthesis.
    fn top_level(&mut self, c: char) -> bool {
        if let Some(q) = self.quote {
            if c == q {
                self.quote = None;
            }
            return false;
        }
        match c {
            '"' | '\'' => self.quote = Some(c),
            '(' => self.depth += 1,
            ')' => self.depth -= 1,
            _ => return self.depth == 0,
        }
        false
    }
}

/// Remove one pair of matching surrounding quotes.
///
/// ```
/// assert_eq!(grammar::unquote("\"my file.csv\""), "my file.csv");
/// assert_eq!(grammar::unquote("plain"), "plain");
/// ```
pub fn unquote(s: &str) -> &str {
    let t = s.trim();
    for q in ['"', '\''] {
        if t.len() >= 2 && t.starts_with(q) && t.ends_with(q) {
            return &t[1..t.len() - 1];
        }
    }
    t
}

/// Parse a duration into nanoseconds: a decimal number (`20`, `1.5`, `.5`, `1e3`, `2.5e-1`), then
/// optional spaces and a unit `ns`, `us` (or `µs`), `ms` or `s`, in any case. A bare zero (`0`,
/// `0.0`) needs no unit; any other bare number is refused, because `100` could mean anything.
/// The value is computed exactly and rounded to the nearest nanosecond (halves up).
///
/// ```
/// use grammar::parse_duration;
/// assert_eq!(parse_duration("50us").unwrap(), 50_000);
/// assert_eq!(parse_duration(" 2.5e-1 s ").unwrap(), 250_000_000);
/// assert_eq!(parse_duration("18446744073709551615ns").unwrap(), u64::MAX);
/// assert!(parse_duration("18446744073709551616ns").is_err());
/// assert!(parse_duration("-5us").unwrap_err().to_string().contains("negative"));
/// ```
pub fn parse_duration(s: &str) -> Result<u64, Error> {
    let t = s.trim();
    let err = |reason: &str| Error::Duration {
        input: escape(t),
        reason: reason.to_string(),
    };
    if t.is_empty() {
        return Err(err("empty; write a number and a unit, e.g. 50us"));
    }
    if t.starts_with('-') {
        return Err(err("must not be negative"));
    }
    let t2 = t.strip_prefix('+').unwrap_or(t);
    let b = t2.as_bytes();
    let mut i = 0;
    // Mantissa digits, kept exactly (leading zeros dropped; at most 38 significant digits).
    let mut mantissa: u128 = 0;
    let mut digits = 0usize;
    let mut exp10: i64 = 0;
    let mut any_digit = false;
    let mut take = |d: u8, frac: bool, mantissa: &mut u128, exp10: &mut i64| {
        if *mantissa == 0 && d == 0 {
            if frac {
                *exp10 -= 1;
            }
            return;
        }
        if digits < 38 {
            *mantissa = *mantissa * 10 + u128::from(d);
            digits += 1;
            if frac {
                *exp10 -= 1;
            }
        } else {
            // Digits beyond 38 significant ones are below the rounding at any unit.
            if !frac {
                *exp10 += 1;
            }
        }
    };
    while i < b.len() && b[i].is_ascii_digit() {
        take(b[i] - b'0', false, &mut mantissa, &mut exp10);
        any_digit = true;
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            take(b[i] - b'0', true, &mut mantissa, &mut exp10);
            any_digit = true;
            i += 1;
        }
    }
    if !any_digit {
        return Err(err("write a number followed by ns, us, ms or s, e.g. 50us"));
    }
    // An exponent: e or E, an optional sign and digits (an 'e' not followed by those is unit text).
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        let negative = j < b.len() && b[j] == b'-';
        if j < b.len() && (b[j] == b'-' || b[j] == b'+') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            let mut e: i64 = 0;
            while j < b.len() && b[j].is_ascii_digit() {
                e = (e * 10 + i64::from(b[j] - b'0')).min(100_000);
                j += 1;
            }
            exp10 += if negative { -e } else { e };
            i = j;
        }
    }
    let unit = t2[i..].trim();
    let scale: i64 = match unit.to_ascii_lowercase().as_str() {
        "ns" => 0,
        "us" | "µs" | "μs" => 3,
        "ms" => 6,
        "s" => 9,
        "" if mantissa == 0 => 0,
        "" => return Err(err("a unit is required: ns, us, ms or s")),
        _ => return Err(err("use ns, us, ms or s")),
    };
    if mantissa == 0 {
        return Ok(0);
    }
    let too_big = || err("too large: at most 18446744073709551615ns, about 584 years");
    let e = exp10 + scale;
    let ns: u128 = if e >= 0 {
        if e > 38 {
            return Err(too_big());
        }
        mantissa
            .checked_mul(10u128.pow(e as u32))
            .ok_or_else(too_big)?
    } else {
        let e = -e;
        if e > 38 {
            0
        } else {
            let div = 10u128.pow(e as u32);
            let (q, r) = (mantissa / div, mantissa % div);
            // Halves round up.
            if r * 2 >= div {
                q + 1
            } else {
                q
            }
        }
    };
    u64::try_from(ns).map_err(|_| too_big())
}

/// Write nanoseconds exactly in the largest unit that divides them (`100us`, `1500us`, `2s`,
/// `7ns`, `0ns`); [`parse_duration`] reads the result back to the same value.
///
/// ```
/// assert_eq!(grammar::format_duration(1_500_000), "1500us");
/// assert_eq!(grammar::parse_duration(&grammar::format_duration(u64::MAX)).unwrap(), u64::MAX);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        for (s, ns) in [
            ("0", 0),
            ("0.0", 0),
            ("0ns", 0),
            ("20ns", 20),
            ("1.5us", 1_500),
            ("2ms", 2_000_000),
            ("1s", 1_000_000_000),
            ("0.25s", 250_000_000),
            (".5us", 500),
            ("3µs", 3_000),
            ("3 MS", 3_000_000),
            ("1e3ns", 1_000),
            ("1E3us", 1_000_000),
            ("2.5e-1s", 250_000_000),
            ("1.5ns", 2),
            ("1.4ns", 1),
            ("0.4ns", 0),
            ("1e-9s", 1),
            ("1e-30s", 0),
            ("+5ns", 5),
            ("18446744073709551615ns", u64::MAX),
            ("18446744073.709551615s", u64::MAX),
            ("00000000000000000000000000000000000000000000000001ns", 1),
        ] {
            assert_eq!(parse_duration(s), Ok(ns), "{s}");
        }
        for s in [
            "",
            "ns",
            "20",
            "1.2.3us",
            "-1ns",
            "5min",
            "99999999999999999999s",
            "18446744073709551616ns",
            "1e30s",
            "1e999999999999s",
            "inf s",
            "NaNs",
            "e3ns",
            ".ns",
            "1e3",
        ] {
            assert!(parse_duration(s).is_err(), "{s}");
        }
    }

    #[test]
    fn errors_stay_on_one_line() {
        let e = parse_duration("1\n2\u{1b}[31m").unwrap_err().to_string();
        assert!(!e.contains('\n') && !e.contains('\u{1b}'), "{e}");
        let e = parse_duration(&"9".repeat(100_000))
            .unwrap_err()
            .to_string();
        assert!(e.len() < 300, "{}", e.len());
    }

    #[test]
    fn calls_split_nested_and_quoted() {
        let c = parse_call("Mix(0.5:constant(1us), 0.5:trace(file=\"a,(b.csv\"))", "t").unwrap();
        assert_eq!(c.name, "mix");
        assert_eq!(
            c.args,
            vec!["0.5:constant(1us)", "0.5:trace(file=\"a,(b.csv\")"]
        );
        for bad in ["mix(a,,b)", "mix(a", "mix(a))", "(a)", "a b(c)", ""] {
            assert!(parse_call(bad, "t").is_err(), "{bad}");
        }
        assert_eq!(parse_call("closed", "t").unwrap().args.len(), 0);
        assert_eq!(parse_call("x()", "t").unwrap().args.len(), 0);
        let deep = format!("a({}{})", "b(".repeat(40), ")".repeat(40));
        assert!(parse_call(&deep, "t")
            .unwrap_err()
            .to_string()
            .contains("nested"));
    }

    #[test]
    fn keys() {
        assert_eq!(key_value(" Mean = 1us "), Some(("mean".to_string(), "1us")));
        assert_eq!(key_value("f(x=1)"), None);
        assert!(check_unique_keys(&["a=1", "b=2", "3"], "t").is_ok());
        assert!(check_unique_keys(&["a=1", "A=2"], "t").is_err());
    }
}
