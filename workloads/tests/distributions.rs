//! Sampled moments against the analytic ones (`docs/theory.md`), medians for heavy tails, mix proportions,
//! and canonical display round trips.

use rand::SeedableRng;
use rand_pcg::Pcg64;
use workloads::{Distribution, Summary};

const N: usize = 200_000;
const SEED: u64 = 0x5eed;

fn samples(spec: &str) -> (Distribution, Vec<u64>) {
    let d = Distribution::parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
    let mut rng = Pcg64::seed_from_u64(SEED);
    let v = (0..N).map(|_| d.sample(&mut rng)).collect();
    (d, v)
}

fn mean_cv(v: &[u64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, var.sqrt() / m)
}

fn median(mut v: Vec<u64>) -> f64 {
    v.sort_unstable();
    v[v.len() / 2] as f64
}

/// (spec, requested mean in ns, whether to check the cv)
const MOMENT_CASES: &[(&str, f64, bool)] = &[
    ("constant(100us)", 100_000.0, true),
    ("uniform(min=10us,max=1ms)", 505_000.0, true),
    ("exponential(mean=100us)", 100_000.0, true),
    ("lognormal(mean=100us,sigma=1)", 100_000.0, true),
    ("lognormal(mean=100us,sigma=0.5)", 100_000.0, true),
    // exp(mu + s^2/2) in us: mu = ln(100) - 0.5
    (
        "lognormal(mu=4.105170185988092,sigma=1,unit=us)",
        100_000.0,
        true,
    ),
    ("gamma(mean=100us,k=0.5)", 100_000.0, true),
    ("gamma(mean=100us,k=4)", 100_000.0, true),
    ("gamma(k=2,theta=50us)", 100_000.0, true),
    ("weibull(mean=100us,k=0.7)", 100_000.0, true),
    ("weibull(mean=100us,k=2)", 100_000.0, true),
    ("pareto(mean=100us,alpha=3)", 100_000.0, false),
    ("pareto(mean=100us,alpha=5)", 100_000.0, true),
    ("mix(0.9:constant(20us),0.1:constant(2ms))", 218_000.0, true),
    (
        "mix(0.5:exponential(mean=50us),0.5:gamma(mean=150us,k=2))",
        100_000.0,
        true,
    ),
];

#[test]
fn sample_mean_and_cv_match_the_analytic_ones() {
    for &(spec, mean, check_cv) in MOMENT_CASES {
        let (d, v) = samples(spec);
        assert!(
            (d.mean_ns() - mean).abs() / mean < 1e-9,
            "{spec}: analytic mean {} != requested {mean}",
            d.mean_ns()
        );
        let (m, cv) = mean_cv(&v);
        eprintln!(
            "{spec}: mean {m:.1} (want {mean}), cv {cv:.4} (analytic {:?})",
            d.cv()
        );
        assert!(
            (m - mean).abs() / mean < 0.02,
            "{spec}: sample mean {m} not within 2% of {mean}"
        );
        if check_cv {
            let want = d.cv().expect("finite cv");
            if want == 0.0 {
                assert_eq!(cv, 0.0, "{spec}");
            } else {
                assert!(
                    (cv - want).abs() / want < 0.05,
                    "{spec}: sample cv {cv} not within 5% of analytic {want}"
                );
            }
        }
    }
}

#[test]
fn analytic_cv_formulas() {
    let cv = |s: &str| Distribution::parse(s).unwrap().cv();
    assert_eq!(cv("exponential(mean=1ms)"), Some(1.0));
    assert!((cv("lognormal(mean=1ms,sigma=1)").unwrap() - (1f64.exp() - 1.0).sqrt()).abs() < 1e-12);
    assert!((cv("gamma(mean=1ms,k=0.25)").unwrap() - 2.0).abs() < 1e-12);
    assert!((cv("pareto(mean=1ms,alpha=3)").unwrap() - 1.0 / 3f64.sqrt()).abs() < 1e-12);
    assert_eq!(cv("pareto(mean=1ms,alpha=2)"), None);
    assert_eq!(
        cv("mix(0.5:constant(1ms),0.5:pareto(mean=1ms,alpha=1.5))"),
        None
    );
    // Weibull k = 1 is exponential.
    assert!((cv("weibull(mean=1ms,k=1)").unwrap() - 1.0).abs() < 1e-9);
    // Uniform on [0, b]: cv = 1/sqrt(3).
    assert!((cv("uniform(min=0ns,max=1ms)").unwrap() - 1.0 / 3f64.sqrt()).abs() < 1e-12);
}

#[test]
fn heavy_tails_are_checked_on_the_median() {
    // lognormal: median = e^mu = mean * e^{-s^2/2}
    let (_, v) = samples("lognormal(mean=100us,sigma=2)");
    let want = 100_000.0 * (-2.0f64).exp();
    let got = median(v);
    assert!(
        (got - want).abs() / want < 0.02,
        "lognormal median {got} vs {want}"
    );

    // pareto: median = x_m 2^{1/a}, x_m = m (a-1)/a
    let (_, v) = samples("pareto(mean=100us,alpha=1.5)");
    let want = 100_000.0 * (0.5 / 1.5) * 2f64.powf(1.0 / 1.5);
    let got = median(v);
    assert!(
        (got - want).abs() / want < 0.02,
        "pareto median {got} vs {want}"
    );
    // and nothing below the scale
    let (_, v) = samples("pareto(mean=100us,alpha=1.5)");
    assert!(v.iter().all(|&x| x as f64 >= 100_000.0 / 3.0 - 1.0));
}

#[test]
fn mix_proportions_within_one_percent() {
    let d = Distribution::parse("mix(0.9:constant(20us),0.1:constant(2ms))").unwrap();
    let mut rng = Pcg64::seed_from_u64(99);
    let n = 100_000;
    let mut small = 0usize;
    for _ in 0..n {
        match d.sample(&mut rng) {
            20_000 => small += 1,
            2_000_000 => {}
            other => panic!("unexpected sample {other}"),
        }
    }
    let p = small as f64 / n as f64;
    assert!((p - 0.9).abs() < 0.01, "share of the first class {p}");

    let d =
        Distribution::parse("mix(0.2:constant(1us),0.3:constant(2us),0.5:constant(3us))").unwrap();
    let mut counts = [0usize; 3];
    for _ in 0..n {
        counts[(d.sample(&mut rng) / 1000 - 1) as usize] += 1;
    }
    for (c, want) in counts.iter().zip([0.2, 0.3, 0.5]) {
        assert!((*c as f64 / n as f64 - want).abs() < 0.01, "{counts:?}");
    }
}

#[test]
fn samples_are_deterministic_for_a_seed() {
    let d = Distribution::parse("gamma(mean=100us,k=0.5)").unwrap();
    let draw = |seed| {
        let mut rng = Pcg64::seed_from_u64(seed);
        (0..100).map(|_| d.sample(&mut rng)).collect::<Vec<_>>()
    };
    assert_eq!(draw(1), draw(1));
    assert_ne!(draw(1), draw(2));
}

#[test]
fn display_is_canonical_and_reparses() {
    let cases = [
        ("constant(100us)", "constant(100us)"),
        ("constant(value=0.1ms)", "constant(100us)"),
        ("constant(0ns)", "constant(0ns)"),
        ("Uniform( 10us , 1ms )", "uniform(min=10us,max=1ms)"),
        ("exponential(mean=1.5ms)", "exponential(mean=1500us)"),
        ("lognormal(100us,1.5)", "lognormal(mean=100us,sigma=1.5)"),
        (
            "lognormal(mu=4.6,sigma=1.5,unit=us)",
            "lognormal(mu=4.6,sigma=1.5,unit=us)",
        ),
        ("gamma(mean=100us,k=0.5)", "gamma(mean=100us,k=0.5)"),
        ("gamma(k=2,theta=50us)", "gamma(k=2,theta=50us)"),
        ("weibull(mean=2s,k=0.7)", "weibull(mean=2s,k=0.7)"),
        (
            "pareto(mean=100us,alpha=1.5)",
            "pareto(mean=100us,alpha=1.5)",
        ),
        (
            "mix(0.9:constant(20us), 0.1:mix(0.5:constant(1ms),0.5:exponential(mean=3ms)))",
            "mix(0.9:constant(20us),0.1:mix(0.5:constant(1ms),0.5:exponential(mean=3ms)))",
        ),
    ];
    for (input, canonical) in cases {
        let d = Distribution::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(d.to_string(), canonical, "{input}");
        let again: Distribution = canonical.parse().unwrap();
        assert_eq!(again, d, "{input}");
        assert_eq!(again.to_string(), canonical);
    }
    // serde goes through the canonical string
    let d = Distribution::parse("gamma(k=2,theta=50us)").unwrap();
    let json = serde_json::to_string(&d).unwrap();
    assert_eq!(json, "\"gamma(k=2,theta=50us)\"");
    assert_eq!(serde_json::from_str::<Distribution>(&json).unwrap(), d);
}

#[test]
fn summary_reports_quantiles_and_a_histogram() {
    let d = Distribution::parse("exponential(mean=100us)").unwrap();
    let s = Summary::sample(&d, 50_000, 3).unwrap();
    assert_eq!(s.n, 50_000);
    assert!(
        s.min <= s.p50 && s.p50 <= s.p90 && s.p90 <= s.p99 && s.p99 <= s.p999 && s.p999 <= s.max
    );
    // exponential median = mean ln 2
    assert!((s.p50 as f64 / (100_000.0 * 2f64.ln()) - 1.0).abs() < 0.03);
    assert_eq!(s.histogram.len(), workloads::HISTOGRAM_BINS);
    assert_eq!(s.histogram.iter().map(|b| b.count).sum::<u64>(), 50_000);
    assert_eq!(s.analytic_cv, Some(1.0));
    let text = s.render_text();
    assert!(text.contains("analytic 100us"), "{text}");
    assert!(text.lines().count() > 20);
    let json = serde_json::to_value(&s).unwrap();
    for key in [
        "n",
        "mean_ns",
        "sd_ns",
        "cv",
        "min",
        "p50",
        "p90",
        "p99",
        "p999",
        "max",
        "analytic_mean_ns",
        "analytic_cv",
        "histogram",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    // constant: one bin
    let s = Summary::sample(&Distribution::constant(5), 10, 0).unwrap();
    assert_eq!(s.histogram.len(), 1);
    assert_eq!(s.cv, 0.0);
    assert!(Summary::sample(&d, 0, 0).is_err());
}
