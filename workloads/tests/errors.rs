//! Every invalid spec is an error (never a panic) whose one-line message names the problem.

use workloads::{parse_duration, parse_speeds, Arrivals, Distribution, Kind};

/// (spec, words the message must contain)
const BAD_DISTRIBUTIONS: &[(&str, &[&str])] = &[
    (
        "lognorm(mean=1us,sigma=1)",
        &["unknown distribution 'lognorm'", "known: constant, uniform"],
    ),
    (
        "lognormal(mean=100us,sigma=-1)",
        &["lognormal: parameter sigma must be > 0, got -1"],
    ),
    ("lognormal(mean=100us,sigma=0)", &["sigma", "> 0"]),
    ("lognormal(mean=100us)", &["missing parameter sigma"]),
    ("lognormal(mean=100us,mu=2,sigma=1)", &["either mean", "mu"]),
    ("lognormal(mu=2,sigma=1)", &["missing parameter unit"]),
    (
        "lognormal(mu=2,sigma=1,unit=hours)",
        &["unit", "'hours'", "ns, us, ms or s"],
    ),
    (
        "gamma(mean=100us,q=2)",
        &["gamma: unknown parameter 'q' (allowed: mean, k, theta)"],
    ),
    (
        "gamma(mean=100us,k=0)",
        &["gamma: parameter k must be > 0, got 0"],
    ),
    ("gamma(mean=1ms,k=2,theta=1us)", &["either mean or theta"]),
    (
        "weibull(mean=100us,k=-0.7)",
        &["weibull: parameter k must be > 0"],
    ),
    (
        "weibull(mean=100us,k=0.0001)",
        &["weibull: parameter k", "representable"],
    ),
    (
        // μ = ln(mean) − σ²/2 is −∞: every sample was 0 ns, silently
        "lognormal(mean=1us,sigma=1e308)",
        &["lognormal: parameter sigma", "is finite", "got 1e308"],
    ),
    (
        "pareto(mean=100us,alpha=1)",
        &["pareto: parameter alpha must be > 1", "got 1"],
    ),
    ("pareto(mean=100us,alpha=0.5)", &["alpha", "> 1"]),
    (
        "pareto(mean=0ns,alpha=2)",
        &["pareto: parameter mean must be > 0"],
    ),
    (
        "exponential(mean=100)",
        &[
            "exponential: parameter mean must be a duration",
            "got '100'",
        ],
    ),
    ("exponential(mean=12xs)", &["mean", "'12xs'"]),
    ("exponential()", &["missing parameter mean"]),
    ("exponential(mean=1us,mean=2us)", &["mean given twice"]),
    (
        "uniform(min=1ms,max=10us)",
        &["uniform: parameter max must be > min (1ms), got 10us"],
    ),
    ("uniform(min=1ms)", &["missing parameter max"]),
    ("constant(abc)", &["constant: parameter value", "'abc'"]),
    ("constant(1us,2us)", &["too many values"]),
    (
        "mix(0.9:constant(20us),0.2:constant(2ms))",
        &["weights must sum to 1", "1.1"],
    ),
    (
        "mix(-0.5:constant(1us),1.5:constant(2us))",
        &["weight of component 1 must be > 0"],
    ),
    (
        "mix(1:constant(20us),constant(2ms))",
        &["component 2", "WEIGHT:SPEC"],
    ),
    (
        "mix(x:constant(1us))",
        &["weight of component 1", "finite number", "'x'"],
    ),
    (
        "mix(1:lognorm(mean=1us,sigma=1))",
        &["unknown distribution 'lognorm'"],
    ),
    ("mix()", &["at least one"]),
    ("exponential(mean=1us", &["closing ')'"]),
    ("exponential(mean=1us))", &["unbalanced"]),
    ("exponential(mean=1us,)", &["empty argument"]),
    ("", &["empty"]),
    ("(1us)", &["does not start with a name"]),
    ("trace()", &["missing parameter file"]),
    (
        "trace(file=/definitely/not/here.csv)",
        &["trace: /definitely/not/here.csv", "cannot read"],
    ),
    (
        "trace(path=x.csv)",
        &["unknown parameter 'path'", "allowed: file"],
    ),
];

#[test]
fn every_invalid_distribution_spec_names_the_problem() {
    assert!(BAD_DISTRIBUTIONS.len() >= 15);
    for (spec, words) in BAD_DISTRIBUTIONS {
        let err = match Distribution::parse(spec) {
            Ok(d) => panic!("{spec:?} parsed as {d}"),
            Err(e) => e.to_string(),
        };
        assert!(!err.contains('\n'), "{spec}: multi-line message {err:?}");
        for w in *words {
            assert!(err.contains(w), "{spec}: message {err:?} lacks {w:?}");
        }
    }
}

#[test]
fn nesting_is_bounded() {
    let mut spec = "constant(1us)".to_string();
    for _ in 0..10_000 {
        spec = format!("mix(1:{spec})");
    }
    let err = Distribution::parse(&spec).unwrap_err().to_string();
    assert!(err.contains("nest"), "{err}");
    // moderate nesting is fine
    let ok = "mix(1:mix(1:mix(1:constant(1us))))";
    assert_eq!(Distribution::parse(ok).unwrap().mean_ns(), 1_000.0);
}

#[test]
fn invalid_durations() {
    for (input, word) in [
        ("100", "unit is required"),
        ("12xs", "use ns, us, ms or s"),
        ("-5us", "negative"),
        ("", "empty"),
        ("nanms", "number"),
        ("1e40s", "too large"),
    ] {
        let msg = parse_duration(input).unwrap_err().to_string();
        assert!(msg.contains(word), "{input}: {msg}");
    }
}

/// A parse's outcome with the value dropped and the error as its message.
fn outcome<T>(r: Result<T, workloads::SpecError>) -> Result<(), String> {
    r.map(drop).map_err(|e| e.to_string())
}

#[test]
fn invalid_arrivals_speeds_and_kinds() {
    let cases: Vec<(Result<(), String>, &str)> = vec![
        (
            outcome(Arrivals::parse("poisson(rate=-5/s)")),
            "poisson: parameter rate must be > 0",
        ),
        (
            outcome(Arrivals::parse("poisson(rate=5/hour)")),
            "per s, ms, us or ns",
        ),
        (
            outcome(Arrivals::parse("poisson()")),
            "missing parameter rate",
        ),
        (
            outcome(Arrivals::parse("poisson(lambda=3)")),
            "unknown parameter 'lambda'",
        ),
        (
            outcome(Arrivals::parse("bursty")),
            "unknown arrival process 'bursty'",
        ),
        (outcome(Arrivals::parse("closed(1)")), "takes no parameters"),
        (
            outcome(parse_speeds("1,0,1")),
            "speeds: parameter speed 2 must be > 0, got 0",
        ),
        (outcome(parse_speeds("1,,1")), "speed 2"),
        (outcome(parse_speeds("1,fast")), "'fast'"),
        (
            outcome(parse_speeds("turbo")),
            "unknown speed profile 'turbo'",
        ),
        (outcome(parse_speeds("1,inf")), "finite"),
        (outcome(Kind::parse("nap")), "unknown kind of work 'nap'"),
    ];
    for (result, word) in cases {
        let msg = result.expect_err(word);
        assert!(msg.contains(word), "{msg:?} lacks {word:?}");
    }
}

/// Random token soup: parsing never panics, and whatever parses samples without panicking and
/// displays as a spec that parses back to the same distribution.
#[test]
fn random_specs_never_panic_and_valid_ones_round_trip() {
    use rand::{Rng, SeedableRng};
    const TOKENS: &[&str] = &[
        "mix",
        "constant",
        "exponential",
        "lognormal",
        "gamma",
        "weibull",
        "pareto",
        "uniform",
        "(",
        "(",
        ")",
        ")",
        ",",
        "=",
        ":",
        "mean",
        "sigma",
        "k",
        "alpha",
        "mu",
        "unit",
        "theta",
        "min",
        "max",
        "value",
        "1",
        "0.5",
        "-1",
        "100us",
        "1e400",
        "ns",
        "us",
        "\"",
        "'",
        " ",
        "0",
        "nan",
        "inf",
        "2ms",
        "1:",
        "0.5:",
        "1e-300",
        "1e300",
        "0ns",
    ];
    let mut rng = rand_pcg::Pcg64::seed_from_u64(1);
    let mut valid = 0;
    for i in 0..30_000 {
        let mut spec = if i % 3 == 0 {
            let len = rng.gen_range(1..14);
            (0..len)
                .map(|_| TOKENS[rng.gen_range(0..TOKENS.len())])
                .collect()
        } else {
            structured(&mut rng, 0)
        };
        // Mutate some: delete or insert a character.
        if i % 5 == 1 && !spec.is_empty() {
            let at = rng.gen_range(0..spec.len());
            if spec.is_char_boundary(at) {
                if rng.gen_bool(0.5) {
                    spec.remove(at);
                } else {
                    spec.insert(at, ['(', ')', ',', '=', ':', '-', '"'][rng.gen_range(0..7)]);
                }
            }
        }
        let _ = parse_duration(&spec);
        let _ = Arrivals::parse(&spec);
        let _ = parse_speeds(&spec);
        let _ = Kind::parse(&spec);
        match Distribution::parse(&spec) {
            Ok(d) => {
                valid += 1;
                let mut r = rand_pcg::Pcg64::seed_from_u64(2);
                for _ in 0..20 {
                    let x = d.sample(&mut r);
                    assert!(x <= workloads::MAX_SAMPLE_NS, "{spec}");
                }
                let _ = (d.mean_ns(), d.cv());
                let again = Distribution::parse(&d.to_string())
                    .unwrap_or_else(|e| panic!("{spec} -> {d} does not reparse: {e}"));
                assert_eq!(again, d, "{spec}");
            }
            Err(e) => assert!(!e.to_string().contains('\n'), "{spec}: {e}"),
        }
    }
    assert!(valid > 2_000, "only {valid} random specs were valid");
    // Structured valid specs, with extreme parameters.
    for spec in [
        "gamma(mean=1ms,k=1e-300)",
        "gamma(mean=1ms,k=1e300)",
        "lognormal(mean=1ms,sigma=1e200)",
        "lognormal(mu=-1e300,sigma=1e-300,unit=s)",
        "pareto(mean=1ns,alpha=1.0000000001)",
        "pareto(mean=1ns,alpha=1e308)",
        "weibull(mean=18446744073s,k=0.05)",
        "uniform(min=0ns,max=18446744073s)",
        "constant(18446744073s)",
    ] {
        if let Ok(d) = Distribution::parse(spec) {
            let mut r = rand_pcg::Pcg64::seed_from_u64(3);
            for _ in 0..100 {
                assert!(d.sample(&mut r) <= workloads::MAX_SAMPLE_NS);
            }
            let _ = (d.mean_ns(), d.cv(), d.to_string());
        }
    }
}

fn structured(rng: &mut impl rand::Rng, depth: usize) -> String {
    const NAMES: &[&str] = &[
        "constant",
        "exponential",
        "lognormal",
        "gamma",
        "weibull",
        "pareto",
        "uniform",
        "mix",
    ];
    let name = NAMES[rng.gen_range(0..if depth > 2 { 7 } else { NAMES.len() })];
    if name == "mix" {
        let parts = rng.gen_range(1..4);
        let mut weights: Vec<f64> = (0..parts).map(|_| rng.gen_range(1..5) as f64).collect();
        let total: f64 = weights.iter().sum();
        weights.iter_mut().for_each(|w| *w /= total);
        let inner: Vec<String> = weights
            .iter()
            .map(|w| format!("{w}:{}", structured(rng, depth + 1)))
            .collect();
        return format!("mix({})", inner.join(","));
    }
    let keys: &[(&str, char)] = match name {
        "constant" => &[("value", 'd')],
        "exponential" => &[("mean", 'd')],
        "lognormal" => &[("mean", 'd'), ("sigma", 'n'), ("mu", 'n'), ("unit", 'u')],
        "gamma" => &[("mean", 'd'), ("k", 'n'), ("theta", 'd')],
        "weibull" => &[("mean", 'd'), ("k", 'n')],
        "pareto" => &[("mean", 'd'), ("alpha", 'n')],
        _ => &[("min", 'd'), ("max", 'd')],
    };
    const DURATIONS: &[&str] = &["1ns", "100us", "1ms", "2.5s", "0ns", "7us", "1.25ms"];
    const NUMBERS: &[&str] = &["0.5", "1", "1.5", "2", "3", "-1", "0", "0.7", "4.6"];
    const ODD: &[&str] = &["1e400", "nan", "x", "1", "us", "100", ""];
    let mut list = Vec::new();
    for (key, kind) in keys {
        if rng.gen_bool(0.2) {
            continue;
        }
        let v = if rng.gen_bool(0.05) {
            ODD[rng.gen_range(0..ODD.len())]
        } else {
            match kind {
                'd' => DURATIONS[rng.gen_range(0..DURATIONS.len())],
                'n' => NUMBERS[rng.gen_range(0..NUMBERS.len())],
                _ => ["us", "ms", "ns", "s"][rng.gen_range(0..4)],
            }
        };
        list.push(format!("{key}={v}"));
    }
    format!("{name}({})", list.join(","))
}
