//! Mixing benchmark (issue 31): four sources of different read speeds (sleep-based read
//! costs, each prefetched on its own thread) mixed 0.4/0.3/0.2/0.1 through a pipeline with a
//! cpu stage.
//!
//! The limit is the rate at which the slowest source, relative to its needed share, can
//! supply: `min_i(rate_i / w_i)`, with `rate_i` each source's own read rate measured alone in
//! this process, just before each mixed run (alternated, so both see the same load). Prints
//! per run: the mix's rate, the limit, their ratio, the maximum deviation of every source's
//! count from `N × w` over every window of the output, and the mix's statistics; then the
//! ratios' median and spread, with the load average before and after.
//!
//! `cargo run --release -p loader --example mix_bench [runs] [items]`

use std::time::{Duration, Instant};

use loader::source::{IterSource, Mix, Source};
use loader::{Pipeline, Stage};

const WEIGHTS: [f64; 4] = [0.4, 0.3, 0.2, 0.1];
/// Each source's read cost per item.
const COST_US: [u64; 4] = [100, 200, 400, 1000];

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// An iterator whose items cost a sleep each.
struct Slow {
    id: usize,
    next: u64,
}

impl Iterator for Slow {
    type Item = (usize, u64);
    fn next(&mut self) -> Option<(usize, u64)> {
        std::thread::sleep(Duration::from_micros(COST_US[self.id]));
        self.next += 1;
        Some((self.id, self.next - 1))
    }
}

/// Source `i`: endless, each item costs `COST_US[i]` of sleep, read ahead on its thread.
fn slow(i: usize) -> Box<dyn Source<Item = (usize, u64)>> {
    let makers: [fn(u64) -> Slow; 4] = [
        |_| Slow { id: 0, next: 0 },
        |_| Slow { id: 1, next: 0 },
        |_| Slow { id: 2, next: 0 },
        |_| Slow { id: 3, next: 0 },
    ];
    Box::new(IterSource::new(makers[i]).prefetched(64))
}

/// Source `i` read alone for `dur`: items per second.
fn alone(i: usize, dur: Duration) -> f64 {
    let mut s = slow(i);
    s.start(0).unwrap();
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed() < dur {
        s.next().unwrap().unwrap();
        n += 1;
    }
    n as f64 / t0.elapsed().as_secs_f64()
}

/// The largest |count − N·w| over every window of `seq`, any source.
fn window_deviation(seq: &[usize]) -> f64 {
    let mut worst = 0.0f64;
    for (i, w) in WEIGHTS.iter().enumerate() {
        let (mut count, mut lo, mut hi) = (0u64, 0.0f64, 0.0f64);
        for (n, &s) in seq.iter().enumerate() {
            count += (s == i) as u64;
            let d = count as f64 - (n + 1) as f64 * w;
            worst = worst.max((d - lo).abs()).max((d - hi).abs());
            lo = lo.min(d);
            hi = hi.max(d);
        }
    }
    worst
}

fn main() {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().map_or(5, |a| a.parse().expect("runs"));
    let items: usize = args.next().map_or(4000, |a| a.parse().expect("items"));
    println!(
        "mix_bench: weights {WEIGHTS:?}, read costs {COST_US:?} µs/item (sleep, prefetched 64), {items} items per run, {runs} runs"
    );
    println!("load average before: {}", loadavg());
    let mut ratios = Vec::new();
    for run in 0..runs {
        let rates: Vec<f64> = (0..4)
            .map(|i| alone(i, Duration::from_millis(300)))
            .collect();
        let limit = rates
            .iter()
            .zip(WEIGHTS)
            .map(|(r, w)| r / w)
            .fold(f64::INFINITY, f64::min);
        let mix = Mix::new((0..4).map(slow).collect(), WEIGHTS.to_vec())
            .unwrap()
            .names(["a", "b", "c", "d"].map(String::from).to_vec())
            .unwrap();
        let stats = mix.stats_handle();
        let mut p = Pipeline::from_stateful(mix)
            .map(Stage::cpu("checksum"), |(i, v): (usize, u64)| {
                // A little cpu work per item.
                let mut h = v ^ 0x9e37_79b9_7f4a_7c15;
                for _ in 0..2_000 {
                    h = h.rotate_left(5).wrapping_mul(0x100_0000_01b3) ^ v;
                }
                (i, v, h)
            })
            .build()
            .unwrap();
        let t0 = Instant::now();
        let seq: Vec<usize> = p.epoch(0).take(items).map(|r| r.unwrap().0).collect();
        let rate = seq.len() as f64 / t0.elapsed().as_secs_f64();
        drop(p);
        let ratio = rate / limit;
        ratios.push(ratio);
        let rates_s: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
        println!(
            "run {run}: alone items/s [{}] → limit {limit:.0}/s; mix {rate:.0}/s = {ratio:.3} of the limit; max window deviation {:.3}",
            rates_s.join(", "),
            window_deviation(&seq)
        );
        print!("{}", stats.snapshot());
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "fraction of the limit: median {:.3}, min {:.3}, max {:.3} over {runs} runs",
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1]
    );
    println!("load average after: {}", loadavg());
}
