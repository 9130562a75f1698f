//! Parsing strategy spec strings: `name` or `name(key=value,key=value)`.
//!
//! A value may itself contain commas (`weighted-rr(weights=1,1,0.5)`): a piece without `=`
//! continues the value before it.

use scheduler::SpecError;

/// The parameters of one spec, checked against what the strategy accepts.
#[derive(Debug)]
pub struct Params {
    name: String,
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Split `spec` into its name and parameters.
    pub fn parse(spec: &str) -> Result<Params, SpecError> {
        let spec = spec.trim();
        let (name, inner) = match spec.find('(') {
            Some(open) => {
                let Some(inner) = spec[open + 1..].strip_suffix(')') else {
                    return Err(SpecError::new(format!(
                        "strategy '{spec}': missing ')' at the end (expected name(key=value,...))"
                    )));
                };
                (spec[..open].trim(), inner)
            }
            None => (spec, ""),
        };
        if name.is_empty() {
            return Err(SpecError::new(
                "strategy '': a name is required, e.g. work-stealing(steal=half)".to_string(),
            ));
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        for piece in inner.split(',').map(str::trim) {
            match piece.split_once('=') {
                Some((k, v)) => pairs.push((k.trim().to_string(), v.trim().to_string())),
                None if piece.is_empty() && inner.trim().is_empty() => {}
                None => match pairs.last_mut() {
                    Some((_, v)) if !piece.is_empty() => {
                        v.push(',');
                        v.push_str(piece);
                    }
                    _ => {
                        return Err(SpecError::new(format!(
                            "strategy '{name}': expected key=value, got '{piece}'"
                        )))
                    }
                },
            }
        }
        Ok(Params {
            name: name.to_string(),
            pairs,
        })
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
                return Err(self.err(format!("unknown parameter '{k}' ({hint})")));
            }
            if self.pairs[..i].iter().any(|(k2, _)| k2 == k) {
                return Err(self.err(format!("parameter '{k}' is given twice")));
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

    /// One of `choices` (default: the first).
    pub fn choice<'c>(&self, key: &str, choices: &[&'c str]) -> Result<&'c str, SpecError> {
        match self.get(key) {
            None => Ok(choices[0]),
            Some(v) => choices.iter().copied().find(|c| *c == v).ok_or_else(|| {
                self.err(format!(
                    "{key} must be one of {}, got '{v}'",
                    choices.join(", ")
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
                _ => Err(self.err(format!("{key} must be a whole number >= {min}, got '{v}'"))),
            },
        }
    }

    /// An error about this strategy.
    pub fn err(&self, what: String) -> SpecError {
        SpecError::new(format!("strategy '{}': {what}", self.name))
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
        let p = Params::parse("central(chunk=1,chunk=2)").unwrap();
        assert!(p
            .only(&["chunk"])
            .unwrap_err()
            .to_string()
            .contains("twice"));
    }
}
