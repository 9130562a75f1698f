//! The shared grammar of every spec string: `name`, or `name(arg,arg,...)` where an arg is a positional
//! value or `key=value`, values may nest further calls (`mix(0.5:constant(1us),...)`) and may be quoted
//! (`trace(file="my data.csv")`).

use crate::duration::{parse_duration, quoted_duration_error};
use crate::error::{quote, SpecError};

/// How deeply specs may nest (a `mix` inside a `mix` ...), so hostile input cannot exhaust the stack.
pub(crate) const MAX_DEPTH: usize = grammar::MAX_DEPTH;

/// A parsed `name(args)` (name lower-cased), from the shared grammar.
pub(crate) use grammar::Call;

/// Split `input` into a name and its top-level arguments. `context` names the setting in errors.
pub(crate) fn parse_call<'a>(input: &'a str, context: &str) -> Result<Call<'a>, SpecError> {
    Ok(grammar::parse_call(input, context)?)
}

pub(crate) use grammar::{find_top_level, unquote};

/// The named parameters of one call, checked against what the spec allows.
pub(crate) struct Params<'a> {
    context: &'static str,
    values: Vec<(&'static str, &'a str)>,
}

impl<'a> Params<'a> {
    /// Assign positional args to `positional` in order and keyword args by name; reject unknown keys,
    /// duplicates and too many positionals.
    pub fn collect(
        call: &Call<'a>,
        context: &'static str,
        allowed: &[&'static str],
        positional: &[&'static str],
    ) -> Result<Self, SpecError> {
        let mut values: Vec<(&'static str, &'a str)> = Vec::new();
        let mut seen_keyword = false;
        for (i, arg) in call.args.iter().enumerate() {
            let (key, value) = match find_top_level(arg, '=') {
                Some(eq) => (Some(arg[..eq].trim()), arg[eq + 1..].trim()),
                None => (None, *arg),
            };
            let name = match key {
                Some(k) => {
                    seen_keyword = true;
                    let lower = k.to_ascii_lowercase();
                    *allowed.iter().find(|a| **a == lower).ok_or_else(|| {
                        SpecError::UnknownParameter {
                            context: context.to_string(),
                            param: grammar::escape(k),
                            allowed: allowed.join(", "),
                        }
                    })?
                }
                None => {
                    if seen_keyword {
                        return Err(SpecError::invalid(
                            context,
                            format!("positional value {} after key=value parameters", quote(arg)),
                        ));
                    }
                    *positional.get(i).ok_or_else(|| {
                        SpecError::invalid(
                            context,
                            format!(
                                "too many values without a name: {} (name them, allowed: {})",
                                quote(arg),
                                allowed.join(", ")
                            ),
                        )
                    })?
                }
            };
            if value.is_empty() {
                return Err(SpecError::param(context, name, "nothing", "given a value"));
            }
            if values.iter().any(|(n, _)| *n == name) {
                return Err(grammar::Error::DuplicateKey {
                    context: context.to_string(),
                    param: name.to_string(),
                }
                .into());
            }
            values.push((name, value));
        }
        Ok(Params { context, values })
    }

    pub fn has(&self, name: &str) -> bool {
        self.values.iter().any(|(n, _)| *n == name)
    }

    pub fn raw(&self, name: &str) -> Option<&'a str> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    pub fn missing(&self, name: &str, hint: &str) -> SpecError {
        SpecError::MissingParameter {
            context: self.context.to_string(),
            param: name.to_string(),
            hint: hint.to_string(),
        }
    }

    /// A finite number, if given.
    pub fn number(&self, name: &str) -> Result<Option<f64>, SpecError> {
        self.raw(name)
            .map(|v| parse_number(self.context, name, v))
            .transpose()
    }

    /// A duration with a unit, if given; at most [`MAX_SAMPLE_NS`](crate::MAX_SAMPLE_NS) (2^53 ns,
    /// about 104 days), the largest cost a task set holds exactly.
    pub fn duration(&self, name: &str) -> Result<Option<u64>, SpecError> {
        let Some(v) = self.raw(name) else {
            return Ok(None);
        };
        let ns = parse_duration(v).map_err(|_| quoted_duration_error(self.context, name, v))?;
        if ns > crate::MAX_SAMPLE_NS {
            return Err(SpecError::param(
                self.context,
                name,
                quote(v.trim()),
                "at most 9007199254740992ns (2^53 ns, about 104 days)",
            ));
        }
        Ok(Some(ns))
    }

    pub fn require_number(&self, name: &str, hint: &str) -> Result<f64, SpecError> {
        self.number(name)?.ok_or_else(|| self.missing(name, hint))
    }

    pub fn require_duration(&self, name: &str, hint: &str) -> Result<u64, SpecError> {
        self.duration(name)?.ok_or_else(|| self.missing(name, hint))
    }
}

/// Parse a finite number for parameter `param` of `context`.
pub(crate) fn parse_number(context: &str, param: &str, v: &str) -> Result<f64, SpecError> {
    match v.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(SpecError::param(
            context,
            param,
            quote(v.trim()),
            "a finite number",
        )),
    }
}

/// Check `x > 0` for a parameter.
pub(crate) fn positive(context: &str, param: &str, x: f64) -> Result<f64, SpecError> {
    if x > 0.0 {
        Ok(x)
    } else {
        Err(SpecError::param(context, param, num(x), "> 0"))
    }
}

/// Write a number so that it parses back exactly, short for everyday values (`1.5`, `2`) and in
/// exponent form for very large or small ones (`1e-300`).
pub(crate) fn num(x: f64) -> String {
    let a = x.abs();
    if a == 0.0 || (1e-5..1e16).contains(&a) || !a.is_finite() {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_nested_and_quoted() {
        let c = parse_call("mix(0.5:constant(1us), 0.5:trace(file=\"a,(b.csv\"))", "t").unwrap();
        assert_eq!(c.name, "mix");
        assert_eq!(
            c.args,
            vec!["0.5:constant(1us)", "0.5:trace(file=\"a,(b.csv\")"]
        );
        assert!(parse_call("mix(a,,b)", "t").is_err());
        assert!(parse_call("mix(a", "t").is_err());
        assert!(parse_call("mix(a))", "t").is_err());
        assert!(parse_call("(a)", "t").is_err());
        assert_eq!(parse_call("closed", "t").unwrap().args.len(), 0);
        assert_eq!(parse_call("x()", "t").unwrap().args.len(), 0);
    }

    #[test]
    fn numbers_round_trip() {
        for x in [1.5, 2.0, 1e-300, 1e200, -0.25, 0.0, 123456.789, 3e-6] {
            assert_eq!(num(x).parse::<f64>().unwrap(), x);
        }
        assert_eq!(num(2.0), "2");
        assert_eq!(num(1e-300), "1e-300");
    }
}
