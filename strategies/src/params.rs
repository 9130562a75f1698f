//! Parsing strategy spec strings: `name` or `name(key=value,key=value)`, in the shared grammar
//! of the `grammar` crate (the one workloads and the cost model use): names and keys are
//! case-insensitive, arguments split at commas outside parentheses and quotes, a key may be given
//! once, user text in errors is quoted and cut.
//!
//! A value may itself contain commas (`weighted-rr(weights=1,1,0.5)`): a piece without `=`
//! continues the value before it.

use grammar::quote;
use scheduler::SpecError;

/// The parameters of one spec, checked against what the strategy accepts.
#[derive(Debug)]
pub struct Params {
    name: String,
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Split `spec` into its name (lower-cased) and parameters (keys lower-cased).
    pub fn parse(spec: &str) -> Result<Params, SpecError> {
        let spec = spec.trim();
        if spec.is_empty() || spec.starts_with('(') {
            return Err(SpecError::new(format!(
                "strategy {}: a name is required, e.g. work-stealing(steal=half)",
                quote(spec)
            )));
        }
        if spec.contains('(') && !spec.ends_with(')') {
            return Err(SpecError::new(format!(
                "strategy {}: missing ')' at the end (expected name(key=value,...))",
                quote(spec)
            )));
        }
        let call = grammar::parse_call(spec, "strategy")?;
        let name = call.name;
        let mut pairs: Vec<(String, String)> = Vec::new();
        for piece in call.args {
            match grammar::key_value(piece) {
                Some((k, v)) => {
                    if pairs.iter().any(|(k2, _)| *k2 == k) {
                        return Err(SpecError::new(format!(
                            "strategy '{name}': parameter {} is given twice",
                            quote(&k)
                        )));
                    }
                    pairs.push((k, v.to_string()))
                }
                None => match pairs.last_mut() {
                    Some((_, v)) => {
                        v.push(',');
                        v.push_str(piece);
                    }
                    None => {
                        return Err(SpecError::new(format!(
                            "strategy '{name}': expected key=value, got {}",
                            quote(piece)
                        )))
                    }
                },
            }
        }
        Ok(Params { name, pairs })
    }

    /// The strategy name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reject keys other than `allowed` and repeated keys.
    pub fn only(&self, allowed: &[&str]) -> Result<(), SpecError> {
        for (i, (k, _)) in self.pairs.iter().enumerate() {
            if !allowed.contains(&k.as_str()) {
                let hint = if allowed.is_empty() {
                    "it takes no parameters".to_string()
                } else {
                    format!("allowed: {}", allowed.join(", "))
                };
                return Err(self.err(format!("unknown parameter {} ({hint})", quote(k))));
            }
            if self.pairs[..i].iter().any(|(k2, _)| k2 == k) {
                return Err(self.err(format!("parameter {} is given twice", quote(k))));
            }
        }
        Ok(())
    }

    /// The raw value of `key`, if given.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// One of `choices` (default: the first), compared case-insensitively.
    pub fn choice<'c>(&self, key: &str, choices: &[&'c str]) -> Result<&'c str, SpecError> {
        match self.get(key) {
            None => Ok(choices[0]),
            Some(v) => choices
                .iter()
                .copied()
                .find(|c| c.eq_ignore_ascii_case(v))
                .ok_or_else(|| {
                    self.err(format!(
                        "{key} must be one of {}, got {}",
                        choices.join(", "),
                        quote(v)
                    ))
                }),
        }
    }

    /// A whole number ≥ `min` (default `default`).
    pub fn count(&self, key: &str, default: usize, min: usize) -> Result<usize, SpecError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n >= min => Ok(n),
                _ => Err(self.err(format!(
                    "{key} must be a whole number >= {min}, got {}",
                    quote(v)
                ))),
            },
        }
    }

    /// An error about this strategy.
    pub fn err(&self, what: String) -> SpecError {
        SpecError::new(format!("strategy {}: {what}", quote(&self.name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_stay_in_one_value() {
        let p = Params::parse("weighted-rr(weights=1, 1,0.5)").unwrap();
        assert_eq!(p.name(), "weighted-rr");
        assert_eq!(p.get("weights"), Some("1,1,0.5"));
        let p = Params::parse("work-stealing(victim=numa,steal=one)").unwrap();
        assert_eq!(p.get("steal"), Some("one"));
        assert!(Params::parse("spt()").unwrap().only(&[]).is_ok());
    }

    #[test]
    fn malformed_specs_are_named() {
        assert!(Params::parse("central(chunk=2")
            .unwrap_err()
            .to_string()
            .contains("')'"));
        assert!(Params::parse("central(2)")
            .unwrap_err()
            .to_string()
            .contains("key=value"));
        assert!(Params::parse("(x=1)")
            .unwrap_err()
            .to_string()
            .contains("name"));
        // Duplicate keys are refused by the parser, whatever the strategy (as in every spec).
        for dup in ["central(chunk=1,chunk=2)", "central(chunk=1,CHUNK=2)"] {
            assert!(Params::parse(dup)
                .unwrap_err()
                .to_string()
                .contains("twice"));
        }
        let p = Params::parse("Work-Stealing(Victim=NUMA)").unwrap();
        assert_eq!(p.name(), "work-stealing");
        assert_eq!(p.choice("victim", &["random", "numa"]).unwrap(), "numa");
        let long = format!("central(chunk={})", "\n".repeat(10_000));
        let err = Params::parse(&long)
            .unwrap()
            .count("chunk", 1, 1)
            .unwrap_err()
            .to_string();
        assert!(err.len() < 300 && !err.contains('\n'), "{err}");
    }
}
