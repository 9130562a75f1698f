//! The shard benchmark of issue 30: tar shards (16 × 2,000 samples of ~50 KB by default,
//! written to a temporary directory first) read by [`Shards`] + [`TarReader`] → decode in a
//! `cpu` stage (a spin of `--decode-us` thread-CPU µs over the sample's bytes) → batches of
//! 32, in order, on P = `--workers` CPU workers.
//!
//! Printed per repetition: items/s, and two limits: the **slowest stage's** (the lower of the
//! read rate measured alone, source → batch with no decode, and P / the measured mean decode
//! time) and the **CPU** limit (P cores / the read's and the decode's CPU time per item added,
//! since the tar reader's thread and the feeder share the same cores as decode).
//!
//! ```text
//! cargo run --release -p loader --example shards_bench [-- --shards 16 --samples 2000 --kb 50 --decode-us 200 --workers 2 --reps 3 --shuffle 0]
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use loader::source::{Shards, Source, TarReader, TarSample};
use loader::{Pipeline, Remainder, Stage};

#[path = "common/args.rs"]
#[allow(dead_code)]
mod args;
use args::{num, process_cpu_ns, spin_cpu, thread_cpu_ns};

fn write_shards(dir: &Path, shards: usize, samples: usize, kb: usize) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    (0..shards)
        .map(|s| {
            let path = dir.join(format!("shard-{s:04}.tar"));
            let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
            let mut b = tar::Builder::new(file);
            for i in 0..samples {
                let size = kb * 1024 * (75 + (i * 7919 % 51)) / 100; // 75% .. 125% of kb
                let body: Vec<u8> = (0..size).map(|j| (j ^ i ^ s) as u8).collect();
                for (ext, data) in [("jpg", body.as_slice()), ("cls", &b"7"[..])] {
                    let mut h = tar::Header::new_gnu();
                    h.set_size(data.len() as u64);
                    h.set_mode(0o644);
                    h.set_cksum();
                    b.append_data(&mut h, format!("{s:04}{i:06}.{ext}"), data)
                        .unwrap();
                }
            }
            b.into_inner().unwrap();
            path
        })
        .collect()
}

fn source(paths: &[PathBuf], shuffle: usize) -> Box<dyn Source<Item = TarSample>> {
    let shards = Shards::new(paths.to_vec(), TarReader).shuffle(1);
    if shuffle > 0 {
        Box::new(shards.shuffled(shuffle, 2))
    } else {
        Box::new(shards)
    }
}

fn main() {
    let shards = num("shards", 16);
    let samples = num("samples", 2_000);
    let kb = num("kb", 50);
    let decode_us = num("decode-us", 200) as u64;
    let workers = num("workers", 2);
    let reps = num("reps", 3);
    let shuffle = num("shuffle", 0);
    let dir = std::env::temp_dir().join(format!("schedlab-shards-bench-{}", std::process::id()));
    let t = Instant::now();
    let paths = write_shards(&dir, shards, samples, kb);
    let n = (shards * samples) as f64;
    println!(
        "wrote {shards} shards x {samples} samples of ~{kb} KB in {:.1} s; decode {decode_us} us on {workers} workers, batch 32, in order, shuffle buffer {shuffle}",
        t.elapsed().as_secs_f64()
    );
    for rep in 0..reps {
        // The read alone: source → batch.
        let mut p = Pipeline::from_stateful(source(&paths, shuffle))
            .batch(32, Remainder::Partial)
            .workers(workers)
            .build()
            .unwrap();
        let (t, cpu) = (Instant::now(), process_cpu_ns());
        let count: usize = p.epoch(0).map(|b| b.unwrap().len()).sum();
        let read_s = t.elapsed().as_secs_f64();
        let read_cpu_ns = (process_cpu_ns() - cpu) as f64 / n;
        assert_eq!(count as f64, n);
        let read_rate = n / read_s;

        // The whole pipeline.
        let decode_ns = Arc::new(AtomicU64::new(0));
        let d = Arc::clone(&decode_ns);
        let mut p = Pipeline::from_stateful(source(&paths, shuffle))
            .map(Stage::cpu("decode"), move |s: TarSample| {
                let t0 = thread_cpu_ns();
                let body = &s.fields["jpg"];
                let sum = body.iter().step_by(64).fold(0u64, |a, &b| a + u64::from(b));
                spin_cpu((decode_us * 1_000).saturating_sub(thread_cpu_ns() - t0));
                d.fetch_add(thread_cpu_ns() - t0, Relaxed);
                (s.key, sum)
            })
            .batch(32, Remainder::Partial)
            .workers(workers)
            .build()
            .unwrap();
        let t = Instant::now();
        let mut last = String::new();
        let mut in_order = true;
        let mut count = 0;
        for b in p.epoch(0) {
            for (key, _) in b.unwrap() {
                in_order &= shuffle > 0 || key > last || count == 0 || key[..4] != last[..4];
                last = key;
                count += 1;
            }
        }
        let s = t.elapsed().as_secs_f64();
        assert_eq!(count as f64, n);
        let rate = n / s;
        let decode_mean = decode_ns.load(Relaxed) as f64 / n;
        let stage_limit = read_rate.min(workers as f64 * 1e9 / decode_mean);
        let cpu_limit = workers as f64 * 1e9 / (decode_mean + read_cpu_ns);
        println!(
            "rep {rep}: {rate:.0} items/s ({s:.2} s); read alone {read_rate:.0}/s ({read_cpu_ns:.0} ns CPU/item), decode {:.0} us; slowest-stage limit {stage_limit:.0}/s -> {:.3}; CPU limit {cpu_limit:.0}/s -> {:.3}; within-shard order kept: {in_order}",
            decode_mean / 1e3,
            rate / stage_limit,
            rate / cpu_limit
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
