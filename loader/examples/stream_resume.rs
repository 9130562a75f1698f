//! The resume figures of issue 30: a shuffle buffer of `--buffer` items (10,000) over tar
//! shards of `--items` samples (100,000, in shards of 2,000, each a ~`--kb` KB `.bin` and a
//! `.cls`), read → batch 32 on 2 workers. A reference run records every key in order; then,
//! at `--cuts` points spread over the epoch, the pipeline's state is taken between batches,
//! serialized (JSON), loaded into a new pipeline, and the time from `restore` to the first
//! batch is measured; the next `--check` batches must equal the reference's.
//!
//! Printed per cut: the state's size in bytes, the restore time to the first item (wall
//! clock, and the process's CPU time over it: on a loaded machine the wall time is mostly
//! waiting for a core), and how
//! many source samples the restore read again (the shuffle buffer re-reads from the oldest
//! buffered position; samples between the buffered ones are seeked past, not read); then
//! the largest of each.
//!
//! ```text
//! cargo run --release -p loader --example stream_resume [-- --items 100000 --buffer 10000 --kb 10 --cuts 20 --check 20]
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use loader::source::{
    ShardIter, ShardReader, ShardSamples, Shards, Source, SourceError, TarReader, TarSample,
};
use loader::{Pipeline, PipelineState, Remainder};

#[path = "common/args.rs"]
#[allow(dead_code)]
mod args;
use args::num;

#[path = "common/tar_shards.rs"]
mod tar_shards;
use tar_shards::write_tar_shards;

const PER_SHARD: usize = 2_000;

/// The process's CPU time (user + system) in seconds.
fn cpu_s() -> f64 {
    // SAFETY: `getrusage` fills the zeroed struct it is given.
    let u = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn write_shards(dir: &Path, items: usize, kb: usize) -> Vec<PathBuf> {
    let body: Vec<u8> = (0..kb * 1024).map(|j| (j * 31 % 251) as u8).collect();
    let shards = items.div_ceil(PER_SHARD);
    write_tar_shards(
        dir,
        shards,
        |s| PER_SHARD.min(items - s * PER_SHARD),
        "bin",
        |_, _| body.clone(),
    )
}

/// The tar reader, counting the samples it reads (not those it steps over or passes over).
struct Counting(Arc<AtomicU64>);

/// A tar shard's samples, counted as they are read.
struct Counted(ShardIter<TarSample>, Arc<AtomicU64>);

impl Iterator for Counted {
    type Item = Result<Option<TarSample>, SourceError>;
    fn next(&mut self) -> Option<Self::Item> {
        let r = self.0.next();
        if matches!(r, Some(Ok(Some(_)))) {
            self.1.fetch_add(1, Relaxed);
        }
        r
    }
}

impl ShardSamples<TarSample> for Counted {
    fn skip_sample(&mut self) -> Option<Result<bool, SourceError>> {
        self.0.skip_sample()
    }
}

impl ShardReader for Counting {
    type Item = TarSample;
    fn name(&self) -> String {
        TarReader.name()
    }
    fn open(
        &self,
        path: &Path,
        from: u64,
        every: u64,
        offset: u64,
    ) -> Result<ShardIter<TarSample>, SourceError> {
        let it = TarReader.open(path, from, every, offset)?;
        Ok(Box::new(Counted(it, Arc::clone(&self.0))))
    }
}

fn pipeline(paths: &[PathBuf], buffer: usize, read: &Arc<AtomicU64>) -> Pipeline<Vec<String>> {
    let source = Shards::new(paths.to_vec(), Counting(Arc::clone(read))).shuffled(buffer, 7);
    Pipeline::from_stateful(source)
        .map(loader::Stage::cpu("key"), |s: TarSample| s.key)
        .batch(32, Remainder::Partial)
        .workers(2)
        .build()
        .unwrap()
}

fn main() {
    let items = num("--items", 100_000);
    let buffer = num("--buffer", 10_000);
    let kb = num("--kb", 10);
    let cuts = num("--cuts", 20);
    let check = num("--check", 20);
    let dir = std::env::temp_dir().join(format!("schedlab-stream-resume-{}", std::process::id()));
    let t = Instant::now();
    let paths = write_shards(&dir, items, kb);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "wrote {items} samples of ~{kb} KB in {} shards in {:.1} s; shuffle buffer {buffer}, batch 32; load average {}",
        paths.len(),
        t.elapsed().as_secs_f64(),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );

    // The reference run, with the states at the cut points.
    let read = Arc::new(AtomicU64::new(0));
    let mut p = pipeline(&paths, buffer, &read);
    let batches = items.div_ceil(32);
    let at: Vec<usize> = (1..=cuts).map(|k| k * batches / (cuts + 1)).collect();
    let mut reference: Vec<Vec<String>> = Vec::with_capacity(batches);
    let mut states: Vec<(usize, String)> = Vec::new();
    let t = Instant::now();
    {
        let mut it = p.epoch(0);
        loop {
            if at.contains(&reference.len()) {
                states.push((reference.len(), serde_json::to_string(&it.state()).unwrap()));
            }
            match it.next() {
                Some(b) => reference.push(b.unwrap()),
                None => break,
            }
        }
    }
    let all: usize = reference.iter().map(Vec::len).sum();
    assert_eq!(all, items, "every sample once");
    let mut keys: Vec<&String> = reference.iter().flatten().collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), items, "no sample twice");
    println!(
        "reference run: {all} samples in {:.2} s",
        t.elapsed().as_secs_f64()
    );

    let (mut max_bytes, mut max_s, mut max_cpu, mut max_read) = (0, 0.0f64, 0.0f64, 0);
    for (b, json) in &states {
        let state: PipelineState = serde_json::from_str(json).unwrap();
        let read = Arc::new(AtomicU64::new(0));
        let (t, c) = (Instant::now(), cpu_s());
        let mut q = pipeline(&paths, buffer, &read);
        q.restore(&state).unwrap();
        let mut it = q.epoch(0);
        let first = it.next().expect("a batch after the cut").unwrap();
        let s = t.elapsed().as_secs_f64();
        let cpu = cpu_s() - c;
        let reread = read.load(Relaxed);
        let mut got = vec![first];
        got.extend(
            it.by_ref()
                .take(check.saturating_sub(1))
                .map(|r| r.unwrap()),
        );
        let want = &reference[*b..(*b + got.len()).min(reference.len())];
        assert_eq!(got, want, "the run after the cut at batch {b}");
        drop(it);
        println!(
            "cut at batch {b} ({} samples out): state {} bytes; restore to the first batch {:.3} s ({cpu:.3} s CPU), {reread} samples read to get there; next {} batches identical",
            b * 32,
            json.len(),
            s,
            got.len()
        );
        max_cpu = max_cpu.max(cpu);
        max_bytes = max_bytes.max(json.len());
        max_s = max_s.max(s);
        max_read = max_read.max(reread);
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "largest state {max_bytes} bytes (limit 65536); slowest restore to the first batch {max_s:.3} s (limit 1 s), most CPU {max_cpu:.3} s; most samples read by a restore {max_read}; load average {}",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
