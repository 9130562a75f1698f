//! The shard benchmark of issue 30: tar shards (16 × 2,000 samples of ~50 KB by default,
//! written to a temporary directory first) read by [`Shards`] + [`TarReader`] → decode in a
//! `cpu` stage (a spin of `--decode-us` thread-CPU µs over the sample's bytes) → batches of
//! 32, in order, on P = `--workers` CPU workers.
//!
//! Each repetition runs, in the same process, the **read alone** (the shard source → batch,
//! no decode), the **decode alone** (the same decode over the first samples' bodies held in
//! memory, fed by a counter → batch) and the **whole** pipeline, interleaved one shard at a
//! time (each run a new pipeline over one shard's samples, the order of the three rotating;
//! with `--shuffle`, one run each over all shards), and prints the whole pipeline's rate
//! against two limits:
//! * the **slowest stage's**: the lower of the read-alone and decode-alone rates, each
//!   measured by the wall clock in the same repetition (so a machine shared with other work
//!   slows the limit as it slows the pipeline);
//! * the **CPU** limit: the decode-alone rate × decode / (decode + read), with the decode's
//!   CPU time per item (measured in the whole run) and the read's (process CPU time per item
//!   in the read-alone run, the engine's hand-offs included): the read runs on the same
//!   cores as the decode, so the slowest stage's limit is reachable only as far as the read
//!   is cheap. On P idle cores this is P / (decode + read).
//!
//! It ends with the median and the range of each ratio. Also printed: the raw source alone
//! (no pipeline, on one thread) in CPU µs per sample, the reader's own cost.
//!
//! ```text
//! cargo run --release -p loader --example shards_bench [-- --shards 16 --samples 2000 --kb 50 --decode-us 200 --workers 2 --reps 5 --shuffle 0 --prefetch 0]
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use loader::source::{Prefetch, Shards, Source, TarReader, TarSample};
use loader::{Pipeline, Remainder, Stage};

#[path = "common/args.rs"]
#[allow(dead_code)]
mod args;
use args::{num, process_cpu_ns, spin_cpu, thread_cpu_ns};

#[path = "common/tar_shards.rs"]
mod tar_shards;
use tar_shards::write_tar_shards;

fn write_shards(dir: &Path, shards: usize, samples: usize, kb: usize) -> Vec<PathBuf> {
    write_tar_shards(
        dir,
        shards,
        |_| samples,
        "jpg",
        |s, i| {
            let size = kb * 1024 * (75 + (i * 7919 % 51)) / 100; // 75% .. 125% of kb
            (0..size).map(|j| (j ^ i ^ s) as u8).collect()
        },
    )
}

fn source(paths: &[PathBuf], shuffle: usize) -> Box<dyn Source<Item = TarSample>> {
    let shards = Shards::new(paths.to_vec(), TarReader).shuffle(1);
    let s: Box<dyn Source<Item = TarSample>> = if shuffle > 0 {
        Box::new(shards.shuffled(shuffle, 2))
    } else {
        Box::new(shards)
    };
    // `--prefetch N`: the shards read ahead on a thread of their own (N samples), off the
    // CPU workers that otherwise pull the source between decodes.
    match num("--prefetch", 0) {
        0 => s,
        depth => Box::new(Prefetch::new(s, depth)),
    }
}

/// The decode: a sum over the body, then a spin to `us` µs of this thread's CPU time in all;
/// adds the CPU time it took to `spent`.
fn decode(body: &[u8], us: u64, spent: &AtomicU64) -> u64 {
    let t0 = thread_cpu_ns();
    let sum = body.iter().step_by(64).fold(0u64, |a, &b| a + u64::from(b));
    spin_cpu((us * 1_000).saturating_sub(thread_cpu_ns() - t0));
    spent.fetch_add(thread_cpu_ns() - t0, Relaxed);
    sum
}

/// The median and the range of `v`.
fn summary(v: &mut [f64]) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "median {:.3}, range {:.3}..{:.3} over {} reps",
        v[v.len() / 2],
        v[0],
        v[v.len() - 1],
        v.len()
    )
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn main() {
    let shards = num("--shards", 16);
    let samples = num("--samples", 2_000);
    let kb = num("--kb", 50);
    let decode_us = num("--decode-us", 200) as u64;
    let workers = num("--workers", 2);
    let reps = num("--reps", 5);
    let shuffle = num("--shuffle", 0);
    let dir = std::env::temp_dir().join(format!("schedlab-shards-bench-{}", std::process::id()));
    let t = Instant::now();
    let paths = write_shards(&dir, shards, samples, kb);
    let n = (shards * samples) as f64;
    println!(
        "wrote {shards} shards x {samples} samples of ~{kb} KB in {:.1} s; decode {decode_us} us on {workers} workers, batch 32, in order, shuffle buffer {shuffle}; load average {}",
        t.elapsed().as_secs_f64(),
        load()
    );
    // The bodies the decode-alone run works on: the first samples of the first shard.
    let bodies: Arc<Vec<Vec<u8>>> = {
        let mut s = Shards::new(paths[..1].to_vec(), TarReader);
        s.start(0).unwrap();
        Arc::new(
            std::iter::from_fn(|| s.next())
                .take(256)
                .map(|r| r.unwrap().fields.remove("jpg").unwrap())
                .collect(),
        )
    };
    let (mut stage_ratios, mut cpu_ratios) = (Vec::new(), Vec::new());
    for rep in 0..reps {
        // The raw source, no pipeline, on this thread: the reader's own CPU time.
        let mut s = source(&paths, shuffle);
        s.start(0).unwrap();
        let cpu = thread_cpu_ns();
        let mut count = 0;
        while let Some(r) = s.next() {
            r.unwrap();
            count += 1;
        }
        let raw_cpu = (thread_cpu_ns() - cpu) as f64 / n;
        assert_eq!(count as f64, n);
        // The three runs, interleaved shard by shard (one shard's samples each, the order
        // rotating), so that they see the same load: time and process CPU time summed.
        let (mut read_s, mut read_cpu, mut decode_s, mut whole_s) = (0.0, 0.0, 0.0, 0.0);
        let (mut in_order, mut decode_ns) = (true, 0u64);
        let groups: Vec<Vec<PathBuf>> = if shuffle > 0 {
            vec![paths.clone()]
        } else {
            paths.iter().map(|p| vec![p.clone()]).collect()
        };
        for (g, group) in groups.iter().enumerate() {
            let m = group.len() * samples;
            for part in 0..3 {
                match (part + g + rep) % 3 {
                    0 => {
                        // The read alone: source → batch.
                        let mut p = Pipeline::from_stateful(source(group, shuffle))
                            .batch(32, Remainder::Partial)
                            .workers(workers)
                            .build()
                            .unwrap();
                        let (t, cpu) = (Instant::now(), process_cpu_ns());
                        let count: usize = p.epoch(0).map(|b| b.unwrap().len()).sum();
                        read_s += t.elapsed().as_secs_f64();
                        read_cpu += (process_cpu_ns() - cpu) as f64;
                        assert_eq!(count, m);
                    }
                    1 => {
                        // The decode alone: a counter → decode over bodies in memory → batch.
                        let spent = Arc::new(AtomicU64::new(0));
                        let (b, sp) = (Arc::clone(&bodies), Arc::clone(&spent));
                        let mut p = Pipeline::from_source(move |_| 0..m)
                            .map(Stage::cpu("decode"), move |i: usize| {
                                decode(&b[i % b.len()], decode_us, &sp)
                            })
                            .batch(32, Remainder::Partial)
                            .workers(workers)
                            .build()
                            .unwrap();
                        let t = Instant::now();
                        let count: usize = p.epoch(0).map(|b| b.unwrap().len()).sum();
                        decode_s += t.elapsed().as_secs_f64();
                        assert_eq!(count, m);
                    }
                    _ => {
                        // The whole pipeline.
                        let spent = Arc::new(AtomicU64::new(0));
                        let sp = Arc::clone(&spent);
                        let mut p = Pipeline::from_stateful(source(group, shuffle))
                            .map(Stage::cpu("decode"), move |s: TarSample| {
                                let sum = decode(&s.fields["jpg"], decode_us, &sp);
                                (s.key, sum)
                            })
                            .batch(32, Remainder::Partial)
                            .workers(workers)
                            .build()
                            .unwrap();
                        let t = Instant::now();
                        let mut last = String::new();
                        let mut count = 0;
                        for b in p.epoch(0) {
                            for (key, _) in b.unwrap() {
                                in_order &= shuffle > 0
                                    || key > last
                                    || count == 0
                                    || key[..4] != last[..4];
                                last = key;
                                count += 1;
                            }
                        }
                        whole_s += t.elapsed().as_secs_f64();
                        assert_eq!(count, m);
                        decode_ns += spent.load(Relaxed);
                    }
                }
            }
        }
        let (rate, read_rate, decode_rate) = (n / whole_s, n / read_s, n / decode_s);
        let (read_cpu, decode_mean) = (read_cpu / n, decode_ns as f64 / n);
        let stage_limit = read_rate.min(decode_rate);
        let cpu_limit = decode_rate * decode_mean / (decode_mean + read_cpu);
        stage_ratios.push(rate / stage_limit);
        cpu_ratios.push(rate / cpu_limit);
        println!(
            "rep {rep}: {rate:.0} items/s; read alone {read_rate:.0}/s ({:.1} us CPU/item; raw source {:.1} us), decode alone {decode_rate:.0}/s ({:.0} us CPU); slowest-stage limit {stage_limit:.0}/s -> {:.3}; CPU limit {cpu_limit:.0}/s -> {:.3}; within-shard order kept: {in_order}; load {}",
            read_cpu / 1e3,
            raw_cpu / 1e3,
            decode_mean / 1e3,
            rate / stage_limit,
            rate / cpu_limit,
            load()
        );
    }
    println!(
        "fraction of the slowest stage's limit: {}",
        summary(&mut stage_ratios)
    );
    println!("fraction of the CPU limit: {}", summary(&mut cpu_ratios));
    std::fs::remove_dir_all(&dir).unwrap();
}
