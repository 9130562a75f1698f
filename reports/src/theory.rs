//! The reference curves the figures draw measurements against: Amdahl's and Gustafson's laws
//! (with a least-squares fit of the serial fraction) and the M/M/c queue (Erlang C).

/// Amdahl's speedup with serial fraction `s` on `n` workers: `1 / (s + (1 − s) / n)`.
pub fn amdahl(s: f64, n: f64) -> f64 {
    1.0 / (s + (1.0 - s) / n)
}

/// Gustafson's scaled speedup with serial fraction `s` on `n` workers: `s + n (1 − s)`.
pub fn gustafson(s: f64, n: f64) -> f64 {
    s + n * (1.0 - s)
}

/// Least-squares serial fraction `s` from measured `(workers, speedup)` points:
/// `1/S = s + (1 − s)/N` is linear in `s`, so
/// `s = Σ (1/S_i − 1/N_i)(1 − 1/N_i) / Σ (1 − 1/N_i)²`, clamped to [0, 1].
/// `None` when no point has N > 1 (nothing to fit).
///
/// ```
/// use reports::theory::{amdahl, fit_amdahl};
/// let pts: Vec<(f64, f64)> = [1.0, 2.0, 4.0, 8.0].iter().map(|&n| (n, amdahl(0.1, n))).collect();
/// assert!((fit_amdahl(&pts).unwrap() - 0.1).abs() < 1e-12);
/// ```
pub fn fit_amdahl(points: &[(f64, f64)]) -> Option<f64> {
    let (mut num, mut den) = (0.0, 0.0);
    for &(n, s) in points {
        if n <= 1.0 || s <= 0.0 || !n.is_finite() || !s.is_finite() {
            continue;
        }
        let a = 1.0 - 1.0 / n;
        num += (1.0 / s - 1.0 / n) * a;
        den += a * a;
    }
    (den > 0.0).then(|| (num / den).clamp(0.0, 1.0))
}

/// Erlang C: the probability that an arrival waits in an M/M/c queue with offered load
/// `a = λ/μ` (requires `a < c`; returns 1 otherwise). Computed with the stable Erlang B
/// recursion.
///
/// ```
/// use reports::theory::mmc_wait;
/// // docs/theory.md: c = 4, λ = 3.2, μ = 1 → W_q = 0.7455.
/// assert!((mmc_wait(4, 3.2, 1.0).unwrap() - 0.7455).abs() < 1e-4);
/// ```
pub fn erlang_c(c: usize, a: f64) -> f64 {
    if c == 0 || a >= c as f64 {
        return 1.0;
    }
    let mut b = 1.0; // Erlang B with 0 servers
    for k in 1..=c {
        b = a * b / (k as f64 + a * b);
    }
    let rho = a / c as f64;
    b / (1.0 - rho + rho * b)
}

/// Mean wait in queue of M/M/c with arrival rate `lambda` and service rate `mu` per server
/// (same time unit): `C(c, λ/μ) / (cμ − λ)`. `None` when the queue is unstable (`λ ≥ cμ`).
pub fn mmc_wait(c: usize, lambda: f64, mu: f64) -> Option<f64> {
    let cap = c as f64 * mu;
    if lambda >= cap || mu <= 0.0 || lambda < 0.0 {
        return None;
    }
    Some(erlang_c(c, lambda / mu) / (cap - lambda))
}

/// The rate of `poisson(rate=R[/s|/ms|/us|/ns])` in arrivals per second; `None` for other specs.
///
/// ```
/// use reports::theory::poisson_rate;
/// assert_eq!(poisson_rate("poisson(rate=20000/s)"), Some(20000.0));
/// assert_eq!(poisson_rate("poisson(rate=2/ms)"), Some(2000.0));
/// assert_eq!(poisson_rate("closed"), None);
/// ```
pub fn poisson_rate(spec: &str) -> Option<f64> {
    let inner = spec.trim().strip_prefix("poisson(")?.strip_suffix(')')?;
    let raw = inner
        .trim()
        .strip_prefix("rate")?
        .trim_start()
        .strip_prefix('=')?;
    let (num, per) = match raw.split_once('/') {
        Some((n, u)) => (n.trim(), u.trim()),
        None => (raw.trim(), "s"),
    };
    let scale = match per {
        "s" => 1.0,
        "ms" => 1e3,
        "us" | "µs" | "μs" => 1e6,
        "ns" => 1e9,
        _ => return None,
    };
    num.parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r > 0.0)
        .map(|r| r * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erlang_c_matches_theory_values() {
        // docs/theory.md (M/M/c), μ = 1.
        for (c, lambda, wq) in [
            (2, 1.8, 4.263),
            (4, 3.2, 0.7455),
            (8, 7.2, 0.8769),
            (16, 14.4, 0.3696),
        ] {
            let got = mmc_wait(c, lambda, 1.0).unwrap();
            assert!((got - wq).abs() < 1e-3, "c={c} λ={lambda}: {got} vs {wq}");
        }
        assert_eq!(mmc_wait(2, 2.0, 1.0), None);
        // M/M/1: C = ρ.
        assert!((erlang_c(1, 0.6) - 0.6).abs() < 1e-12);
    }

    #[test]
    fn amdahl_fit_recovers_known_serial_fractions() {
        for s in [0.0, 0.01, 0.05, 0.2, 0.5] {
            let pts: Vec<(f64, f64)> = [1.0, 2.0, 4.0, 8.0, 16.0]
                .iter()
                .map(|&n| (n, amdahl(s, n)))
                .collect();
            let fit = fit_amdahl(&pts).unwrap();
            assert!((fit - s).abs() < 0.01, "s={s}: fitted {fit}");
        }
        // With noise of ±2% on the speedups, still within 0.01 for s = 0.1.
        let pts: Vec<(f64, f64)> = [2.0, 4.0, 8.0, 16.0, 32.0]
            .iter()
            .zip([1.02, 0.98, 1.01, 0.99, 1.0])
            .map(|(&n, f)| (n, amdahl(0.1, n) * f))
            .collect();
        let fit = fit_amdahl(&pts).unwrap();
        assert!((fit - 0.1).abs() < 0.01, "noisy fit {fit}");
        assert_eq!(fit_amdahl(&[(1.0, 1.0)]), None);
    }

    #[test]
    fn gustafson_is_linear() {
        assert_eq!(gustafson(0.0, 8.0), 8.0);
        assert_eq!(gustafson(1.0, 8.0), 1.0);
        assert_eq!(gustafson(0.5, 3.0), 2.0);
    }
}
