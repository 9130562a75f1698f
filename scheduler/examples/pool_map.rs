//! A persistent pool as a parallel map over a stream of ids, results back in order: this
//! crate's `par_iter().map().collect()`, with worker-local state and bounded memory.
//!
//! ```sh
//! cargo run --release -p scheduler --example pool_map
//! ```

use scheduler::{JobOptions, Pool};

/// A stand-in for per-sample work whose cost varies: a few thousand rounds of a hash.
fn work(id: usize, scratch: &mut Vec<u64>) -> u64 {
    scratch.clear();
    let rounds = 100 + (id * 7919) % 5000;
    let mut x = id as u64 + 1;
    for _ in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        scratch.push(x);
    }
    scratch.iter().fold(0, |a, &b| a ^ b)
}

fn main() {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    // Each worker builds its state once (here a scratch buffer; a decoder or a file handle in
    // a data loader) and keeps it for the pool's life.
    let pool = Pool::builder(workers)
        .build_with(|_worker| Vec::<u64>::with_capacity(8192))
        .expect("start the pool");
    let strategy = strategies::parse("work-stealing").expect("a known strategy");
    let n = 200_000;
    for epoch in 0..3 {
        // At most 1,024 ids in flight: results not yet taken back bound the memory held.
        let mut job = pool
            .job(
                strategy.as_ref(),
                JobOptions::default().max_in_flight(1024).seed(epoch),
                |id, _worker, scratch: &mut Vec<u64>| work(id, scratch),
            )
            .expect("open a job");
        let start = std::time::Instant::now();
        let (mut submitted, mut results) = (0, Vec::with_capacity(n));
        while results.len() < n {
            // Feed what fits, then take the next result in id order.
            let room = job.room().min(n - submitted);
            if room > 0 {
                submitted = job.try_submit(room).expect("room was checked").end;
            }
            let outcome = job.next().expect("an id is in flight");
            assert_eq!(outcome.task, results.len(), "results come back in id order");
            results.push(outcome.result.expect("work() does not panic"));
        }
        let report = job.finish().expect("the job ran");
        let check = results.iter().fold(0, |a, &b| a ^ b);
        println!(
            "epoch {epoch}: {n} results in order in {:.1} ms on {workers} workers \
             (LIF {:.3}, {} steals, checksum {check:x})",
            start.elapsed().as_secs_f64() * 1e3,
            report.lif,
            report.steals
        );
    }
    println!(
        "threads spawned for all three epochs: {}",
        pool.threads_spawned()
    );
}
