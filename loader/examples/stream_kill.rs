//! Resume that survives `kill -9` (issue 30): a child process reads JSON-lines shards through a
//! shuffle buffer, a blocking and a cpu stage and batches, appends each batch to a file, and
//! every `every` batches checkpoints atomically (the pipeline state and the output length,
//! written to a temporary file and renamed). The parent SIGKILLs it at seeded random points,
//! restarts it (each time with other worker and thread counts), and at the end compares the
//! output with an uninterrupted run's, byte for byte, and counts lost and duplicated items.
//!
//! ```text
//! cargo run --release -p loader --example stream_kill -- [items] [kills] [seed]
//! ```
//!
//! `loader/tests/kill9.rs` runs the same code (3,000 items, 5 kills).

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use loader::source::{JsonLines, Shards, Source};
use loader::{Pipeline, PipelineState, Remainder, Stage};
use scheduler::SmallRng;

/// What the parent runs.
pub struct Config {
    /// Work directory (data, the reference run, the killed run).
    pub dir: PathBuf,
    /// Items in all shards.
    pub items: usize,
    /// Shards (uneven sizes).
    pub shards: usize,
    /// SIGKILLs.
    pub kills: usize,
    /// Seeds the kill points and the worker counts.
    pub seed: u64,
    /// Epochs each run goes through.
    pub epochs: u64,
    /// The shuffle buffer.
    pub buffer: usize,
    /// Checkpoint every this many batches.
    pub every: usize,
    /// The child sleeps this long after each batch (so that kills land mid-run).
    pub throttle_us: u64,
}

/// What the parent found.
#[derive(Debug)]
pub struct Outcome {
    /// Kills that hit a running child.
    pub kills: usize,
    /// Child processes started for the killed run.
    pub starts: usize,
    /// Items in the reference output.
    pub items: usize,
    /// Items of the reference missing from the killed run's output.
    pub lost: usize,
    /// Items more often in the killed run's output than in the reference.
    pub duplicated: usize,
    /// Outputs equal byte for byte.
    pub identical: bool,
    /// The largest checkpoint (state JSON) written, in bytes.
    pub largest_state: usize,
    /// The longest a restarted child took from its start to its first batch written.
    pub slowest_restore: Duration,
}

/// Write `items` JSON-lines samples over `shards` files of uneven sizes.
pub fn write_data(dir: &Path, items: usize, shards: usize) -> Vec<PathBuf> {
    fs::create_dir_all(dir).unwrap();
    let weights: Vec<usize> = (0..shards).map(|s| 3 + s % 4).collect();
    let sum: usize = weights.iter().sum();
    let mut next = 0;
    (0..shards)
        .map(|s| {
            let n = if s + 1 == shards {
                items - next
            } else {
                items * weights[s] / sum
            };
            let text: String = (next..next + n)
                .map(|i| format!("{{\"id\":{i},\"text\":\"{}\"}}\n", "x".repeat(i % 13)))
                .collect();
            next += n;
            let p = dir.join(format!("part-{s:03}.jsonl"));
            fs::write(&p, text).unwrap();
            p
        })
        .collect()
}

fn shard_paths(data: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    v.sort();
    v
}

/// The child: `data out workers threads every epochs buffer throttle_us`.
pub fn child_main(args: &[String]) -> Result<(), String> {
    let arg = |i: usize| -> Result<&str, String> {
        args.get(i)
            .map(String::as_str)
            .ok_or(format!("missing argument {i}"))
    };
    let num = |i: usize| -> Result<u64, String> {
        arg(i)?.parse().map_err(|e| format!("argument {i}: {e}"))
    };
    let (data, out) = (PathBuf::from(arg(0)?), PathBuf::from(arg(1)?));
    let (workers, threads, every) = (num(2)? as usize, num(3)? as usize, num(4)? as usize);
    let (epochs, buffer, throttle) = (num(5)?, num(6)? as usize, num(7)?);
    let started = Instant::now();
    let ckpt = out.join("ckpt.json");
    let saved: Option<(PipelineState, u64)> = match fs::read_to_string(&ckpt) {
        Ok(text) => Some(serde_json::from_str(&text).map_err(|e| format!("{ckpt:?}: {e}"))?),
        Err(_) => None,
    };
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(out.join("out.txt"))
        .map_err(|e| e.to_string())?;
    let mut len = saved.as_ref().map_or(0, |(_, n)| *n);
    file.set_len(len).map_err(|e| e.to_string())?;
    file.seek(SeekFrom::Start(len)).map_err(|e| e.to_string())?;

    let source = Shards::new(shard_paths(&data), JsonLines)
        .shuffle(3)
        .shuffled(buffer, 5);
    let mut p = Pipeline::from_stateful(source)
        .map(Stage::blocking("parse", threads), |line: String| {
            let id = line["{\"id\":".len()..].split(',').next().unwrap_or("?");
            id.parse::<u64>().unwrap_or(u64::MAX)
        })
        .map(Stage::cpu("work"), |id: u64| {
            let mut h = id;
            for _ in 0..(id % 5) * 100 {
                h = h.rotate_left(7) ^ 0x51;
            }
            std::hint::black_box(h);
            id
        })
        .batch(16, Remainder::Partial)
        .workers(workers)
        .build()
        .map_err(|e| e.to_string())?;
    let first = match &saved {
        Some((state, _)) => {
            p.restore(state).map_err(|e| e.to_string())?;
            state.epoch
        }
        None => 0,
    };
    let mut wrote_first = false;
    for epoch in first..epochs {
        let mut items = p.epoch(epoch);
        let mut n = 0;
        while let Some(batch) = items.next() {
            let batch = batch.map_err(|e| e.to_string())?;
            let line = format!(
                "{epoch}:{}\n",
                batch
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            );
            file.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
            len += line.len() as u64;
            if !wrote_first {
                wrote_first = true;
                let ms = started.elapsed().as_secs_f64() * 1e3;
                fs::write(out.join("first_ms"), format!("{ms}")).map_err(|e| e.to_string())?;
            }
            n += 1;
            if n % every == 0 {
                let text =
                    serde_json::to_string(&(items.state(), len)).map_err(|e| e.to_string())?;
                let tmp = out.join("ckpt.tmp");
                fs::write(&tmp, text).map_err(|e| e.to_string())?;
                fs::rename(&tmp, &ckpt).map_err(|e| e.to_string())?;
            }
            if throttle > 0 {
                std::thread::sleep(Duration::from_micros(throttle));
            }
        }
    }
    fs::write(out.join("done"), "").map_err(|e| e.to_string())?;
    Ok(())
}

fn ids(text: &str) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let (epoch, rest) = line.split_once(':').unwrap_or(("?", line));
        for id in rest.split(',') {
            *m.entry(format!("{epoch}:{id}")).or_default() += 1;
        }
    }
    m
}

/// The parent: a reference run, then a run killed `cfg.kills` times; `spawn(args)` makes the
/// command that runs [`child_main`] with `args`.
pub fn parent(cfg: &Config, spawn: &dyn Fn(&[String]) -> Command) -> Result<Outcome, String> {
    let data = cfg.dir.join("data");
    let _ = fs::remove_dir_all(&cfg.dir);
    write_data(&data, cfg.items, cfg.shards);
    let args = |out: &Path, workers: usize, threads: usize| -> Vec<String> {
        vec![
            data.display().to_string(),
            out.display().to_string(),
            workers.to_string(),
            threads.to_string(),
            cfg.every.to_string(),
            cfg.epochs.to_string(),
            cfg.buffer.to_string(),
            cfg.throttle_us.to_string(),
        ]
    };
    let run = |out: &Path, workers, threads| -> Result<(), String> {
        let status = spawn(&args(out, workers, threads))
            .status()
            .map_err(|e| e.to_string())?;
        status
            .success()
            .then_some(())
            .ok_or(format!("child: {status}"))
    };
    let reference_dir = cfg.dir.join("reference");
    fs::create_dir_all(&reference_dir).map_err(|e| e.to_string())?;
    run(&reference_dir, 2, 2)?;
    let reference = fs::read(reference_dir.join("out.txt")).map_err(|e| e.to_string())?;
    let line_ends: Vec<usize> = reference
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i + 1)
        .collect();

    let out = cfg.dir.join("killed");
    fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let mut rng = SmallRng::new(cfg.seed);
    let mut targets: Vec<usize> = (0..cfg.kills)
        .map(|_| line_ends[rng.below(line_ends.len() - 1)])
        .collect();
    targets.sort();
    let (mut kills, mut starts, mut largest_state) = (0, 0, 0);
    let mut slowest_restore = Duration::ZERO;
    for target in targets {
        let (w, t) = (1 + rng.below(3), 1 + rng.below(4));
        let mut child = spawn(&args(&out, w, t))
            .spawn()
            .map_err(|e| e.to_string())?;
        starts += 1;
        loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                if !status.success() {
                    return Err(format!("child: {status}"));
                }
                break;
            }
            let size = fs::metadata(out.join("out.txt")).map_or(0, |m| m.len() as usize);
            if size >= target {
                child.kill().map_err(|e| e.to_string())?; // SIGKILL
                child.wait().map_err(|e| e.to_string())?;
                kills += 1;
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        if let Ok(text) = fs::read_to_string(out.join("ckpt.json")) {
            largest_state = largest_state.max(text.len());
        }
        if let Ok(ms) = fs::read_to_string(out.join("first_ms")) {
            if starts > 1 {
                let ms: f64 = ms.parse().unwrap_or(0.0);
                slowest_restore = slowest_restore.max(Duration::from_secs_f64(ms / 1e3));
            }
            let _ = fs::remove_file(out.join("first_ms"));
        }
    }
    let (w, t) = (1 + rng.below(3), 1 + rng.below(4));
    run(&out, w, t)?;
    starts += 1;
    let killed = fs::read(out.join("out.txt")).map_err(|e| e.to_string())?;
    let (a, b) = (
        ids(&String::from_utf8_lossy(&reference)),
        ids(&String::from_utf8_lossy(&killed)),
    );
    let lost = a
        .iter()
        .map(|(k, n)| n.saturating_sub(*b.get(k).unwrap_or(&0)))
        .sum();
    let duplicated = b
        .iter()
        .map(|(k, n)| n.saturating_sub(*a.get(k).unwrap_or(&0)))
        .sum();
    Ok(Outcome {
        kills,
        starts,
        items: a.values().sum(),
        lost,
        duplicated,
        identical: reference == killed,
        largest_state,
        slowest_restore,
    })
}

#[allow(dead_code)]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("child") {
        if let Err(e) = child_main(&args[1..]) {
            eprintln!("stream_kill child: {e}");
            std::process::exit(1);
        }
        return;
    }
    let num = |i: usize, d: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let cfg = Config {
        dir: std::env::temp_dir().join(format!("schedlab-stream-kill-{}", std::process::id())),
        items: num(0, 100_000) as usize,
        kills: num(1, 20) as usize,
        seed: num(2, 1),
        shards: 16,
        epochs: 2,
        buffer: 10_000,
        every: 25,
        throttle_us: 100,
    };
    let exe = std::env::current_exe().expect("this program's path");
    let spawn = |a: &[String]| {
        let mut c = Command::new(&exe);
        c.arg("child").args(a);
        c
    };
    match parent(&cfg, &spawn) {
        Ok(o) => {
            println!(
                "{} items x {} epochs, {} kills ({} starts): lost {}, duplicated {}, identical {}; largest state {} bytes; slowest restart to its first batch {:.0} ms",
                cfg.items, cfg.epochs, o.kills, o.starts, o.lost, o.duplicated, o.identical,
                o.largest_state, o.slowest_restore.as_secs_f64() * 1e3
            );
            let _ = fs::remove_dir_all(&cfg.dir);
            if !o.identical {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("stream_kill: {e}");
            std::process::exit(1);
        }
    }
}
