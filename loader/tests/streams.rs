//! Streams (issue 30): stateful sources pulled lazily, shards exactly once across ranks, a
//! seeded shuffle buffer, and exact resume of all of it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use loader::source::{
    FnReader, IterSource, JsonLines, ShardReader, Shards, Source, TarReader, TarSample,
};
use loader::{OnFailure, Pipeline, PipelineError, PipelineState, Remainder, Stage};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("schedlab-streams-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `n` tar shards of `per` samples each (`{shard}-{i}.txt` and `.cls`).
fn write_tars(dir: &Path, n: usize, per: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|s| {
            let path = dir.join(format!("shard-{s:03}.tar"));
            let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
            for i in 0..per {
                for (ext, data) in [
                    ("txt", format!("{s}-{i}").repeat(1 + i % 5)),
                    ("cls", format!("{}", i % 10)),
                ] {
                    let mut h = tar::Header::new_gnu();
                    h.set_size(data.len() as u64);
                    h.set_mode(0o644);
                    h.set_cksum();
                    b.append_data(&mut h, format!("s{s}/{i:05}.{ext}"), data.as_bytes())
                        .unwrap();
                }
            }
            b.finish().unwrap();
            path
        })
        .collect()
}

fn write_jsonl(dir: &Path, sizes: &[usize]) -> Vec<PathBuf> {
    sizes
        .iter()
        .enumerate()
        .map(|(s, &n)| {
            let path = dir.join(format!("part-{s:03}.jsonl"));
            let text: String = (0..n)
                .map(|i| format!("{{\"s\":{s},\"i\":{i}}}\n"))
                .collect();
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect()
}

fn drain<S: Source>(s: &mut S, epoch: u64) -> Vec<S::Item>
where
    S::Item: std::fmt::Debug,
{
    s.start(epoch).unwrap();
    std::iter::from_fn(|| s.next())
        .map(|r| r.unwrap())
        .collect()
}

/// A reader of synthetic shards (`path` = "shard:len") that counts its opens per path.
fn counting_reader(opens: Arc<Mutex<HashMap<String, usize>>>) -> impl ShardReader<Item = String> {
    FnReader::new("synthetic", move |p: &Path| {
        let name = p.display().to_string();
        *opens.lock().unwrap().entry(name.clone()).or_default() += 1;
        let len: usize = name.split(':').nth(1).unwrap().parse().unwrap();
        Ok::<_, String>((0..len).map(move |i| format!("{name}#{i}")))
    })
}

#[test]
fn shards_give_every_sample_exactly_once_across_ranks_each_shard_read_by_one_rank() {
    for world in 1..=5 {
        for n in 0..=9 {
            for shuffle in [None, Some(3)] {
                let paths: Vec<PathBuf> = (0..n).map(|s| format!("s{s}:40").into()).collect();
                let opens = Arc::new(Mutex::new(HashMap::new()));
                let reader = Arc::new(counting_reader(Arc::clone(&opens)));
                let mut all = Vec::new();
                let mut counts = Vec::new();
                for rank in 0..world {
                    let mut s = Shards::new(paths.clone(), Arc::clone(&reader))
                        .rank(rank, world)
                        .unwrap();
                    if let Some(seed) = shuffle {
                        s = s.shuffle(seed);
                    }
                    let got = drain(&mut s, 2);
                    counts.push(got.len());
                    all.extend(got);
                }
                let total = all.len();
                all.sort();
                all.dedup();
                assert_eq!((all.len(), total), (n * 40, n * 40), "world {world}, n {n}");
                assert!(opens.lock().unwrap().values().all(|&c| c == 1));
                let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
                assert!(hi - lo <= 40, "{counts:?}: at most one shard apart");
            }
        }
    }
}

#[test]
fn balanced_shards_split_the_leftover_shards_so_counts_differ_by_at_most_one() {
    for world in 1..=5 {
        for n in 0..=9 {
            let paths: Vec<PathBuf> = (0..n).map(|s| format!("s{s}:37").into()).collect();
            let opens = Arc::new(Mutex::new(HashMap::new()));
            let reader = Arc::new(counting_reader(Arc::clone(&opens)));
            let mut all = Vec::new();
            let mut counts = Vec::new();
            for rank in 0..world {
                let mut s = Shards::new(paths.clone(), Arc::clone(&reader))
                    .rank(rank, world)
                    .unwrap()
                    .shuffle(11)
                    .balanced(true);
                let got = drain(&mut s, 1);
                counts.push(got.len());
                all.extend(got);
            }
            let total = all.len();
            all.sort();
            all.dedup();
            assert_eq!((all.len(), total), (n * 37, n * 37));
            let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            assert!(hi - lo <= 1, "world {world}, n {n}: {counts:?}");
            // A whole shard is opened by one rank; a leftover one by every rank, once each.
            let opened = opens.lock().unwrap();
            let leftover = n % world;
            assert_eq!(
                opened.values().filter(|&&c| c == world).count(),
                if world > 1 { leftover } else { n }
            );
            assert!(opened.values().all(|&c| c == 1 || c == world));
        }
    }
}

#[test]
fn the_shard_order_is_reshuffled_per_epoch_from_the_seed() {
    let paths: Vec<PathBuf> = (0..16).map(|s| format!("s{s}:1").into()).collect();
    let reader = Arc::new(counting_reader(Arc::default()));
    let mut a = Shards::new(paths.clone(), Arc::clone(&reader)).shuffle(5);
    let mut b = Shards::new(paths.clone(), Arc::clone(&reader)).shuffle(5);
    let (e0, e1) = (drain(&mut a, 0), drain(&mut a, 1));
    assert_ne!(e0, e1);
    assert_eq!(drain(&mut b, 1), e1);
    let mut c = Shards::new(paths, reader).shuffle(6);
    assert_ne!(drain(&mut c, 1), e1);
}

#[test]
fn tar_shards_group_members_by_key_and_resume_inside_a_shard() {
    let dir = temp_dir("tar");
    let paths = write_tars(&dir, 3, 50);
    let mut s = Shards::new(paths.clone(), TarReader);
    let all: Vec<TarSample> = drain(&mut s, 0);
    assert_eq!(all.len(), 150);
    assert_eq!(all[51].key, "s1/00001");
    assert_eq!(all[51].fields["txt"], b"1-1".repeat(2));
    assert_eq!(all[51].fields["cls"], b"1");
    for cut in [0, 1, 49, 50, 77, 149, 150] {
        let mut s = Shards::new(paths.clone(), TarReader);
        s.start(0).unwrap();
        for _ in 0..cut {
            s.next().unwrap().unwrap();
        }
        let state = s.state();
        let mut t = Shards::new(paths.clone(), TarReader);
        t.restore(&state).unwrap();
        let rest: Vec<TarSample> = std::iter::from_fn(|| t.next())
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(rest, all[cut..], "cut {cut}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unreadable_shard_is_one_failed_item_at_its_position_and_the_rest_arrive() {
    let dir = temp_dir("bad");
    let mut paths = write_jsonl(&dir, &[5, 5]);
    paths.insert(1, dir.join("missing.jsonl"));
    let mut p = Pipeline::from_stateful(Shards::new(paths, JsonLines))
        .map(Stage::cpu("len"), |s: String| s.len())
        .build()
        .unwrap();
    let items: Vec<Result<usize, PipelineError>> = p.epoch(0).collect();
    assert_eq!(items.len(), 11);
    let errs: Vec<&PipelineError> = items.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(errs.len(), 1);
    assert_eq!(
        (errs[0].stage(), errs[0].position()),
        (Some("source"), Some(5))
    );
    assert!(errs[0].to_string().contains("missing.jsonl"), "{}", errs[0]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_endless_source_is_pulled_at_most_the_windows_ahead_of_the_consumer() {
    let pulled = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&pulled);
    let source = IterSource::new(move |_| {
        let counter = Arc::clone(&counter);
        (0u64..).inspect(move |_| {
            counter.fetch_add(1, SeqCst);
        })
    });
    let mut p = Pipeline::from_stateful(source)
        .map(Stage::blocking("read", 4), |x: u64| x + 1)
        .map(Stage::cpu("decode"), |x: u64| x * 2)
        .window(16)
        .workers(2)
        .build()
        .unwrap();
    let mut items = p.epoch(0);
    for i in 0..1_000u64 {
        assert_eq!(items.next().unwrap().unwrap(), (i + 1) * 2);
        let ahead = pulled.load(SeqCst) - (i + 1);
        assert!(
            ahead <= 16 + 1,
            "{ahead} pulled ahead of the consumer at item {i}"
        );
    }
    drop(items);
    assert!(p.held_peak() <= 16);
}

fn shuffled_pipeline(workers: usize, threads: usize, seed: u64) -> Pipeline<u64> {
    let source = IterSource::new(|_| 0u64..5_000).shuffled(500, seed);
    Pipeline::from_stateful(source)
        .map(Stage::blocking("read", threads), |x: u64| x)
        .map(Stage::cpu("decode"), |x: u64| {
            // Uneven work, so that items finish out of order.
            let mut h = x;
            for _ in 0..(x % 7) * 200 {
                h = h.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            std::hint::black_box(h);
            x
        })
        .workers(workers)
        .build()
        .unwrap()
}

#[test]
fn the_shuffle_buffer_is_deterministic_whatever_the_workers_and_threads() {
    let reference: Vec<u64> = shuffled_pipeline(1, 1, 9)
        .epoch(0)
        .map(|r| r.unwrap())
        .collect();
    let mut sorted = reference.clone();
    sorted.sort();
    assert_eq!(sorted, (0..5_000).collect::<Vec<_>>(), "a permutation");
    assert_ne!(reference, sorted, "shuffled");
    // Displacement: a buffer of 500 moves an item at most ~500 places earlier.
    assert!(reference
        .iter()
        .enumerate()
        .all(|(i, &x)| x as usize <= i + 500));
    for (w, t) in [(2, 1), (3, 8), (1, 4)] {
        let v: Vec<u64> = shuffled_pipeline(w, t, 9)
            .epoch(0)
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(v, reference, "workers {w}, threads {t}");
    }
    let other: Vec<u64> = shuffled_pipeline(2, 2, 10)
        .epoch(0)
        .map(|r| r.unwrap())
        .collect();
    assert_ne!(other, reference);
    let epoch1: Vec<u64> = shuffled_pipeline(2, 2, 9)
        .epoch(1)
        .map(|r| r.unwrap())
        .collect();
    assert_ne!(epoch1, reference);
}

type Batch = Vec<String>;

fn tar_pipeline(
    paths: &[PathBuf],
    rank: usize,
    world: usize,
    workers: usize,
    threads: usize,
    buffer: usize,
) -> Pipeline<Batch> {
    let shards = Shards::new(paths.to_vec(), TarReader)
        .rank(rank, world)
        .unwrap()
        .shuffle(4)
        .balanced(true);
    Pipeline::from_stateful(shards.shuffled(buffer, 8))
        .map(Stage::blocking("fetch", threads), |s: TarSample| s)
        .try_map(Stage::cpu("decode"), |s: TarSample| {
            let text = String::from_utf8(s.fields["txt"].clone()).map_err(|e| e.to_string())?;
            Ok::<_, String>(format!("{}={}", s.key, text.len()))
        })
        .batch(7, Remainder::Partial)
        .workers(workers)
        .build()
        .unwrap()
}

fn run_all(p: &mut Pipeline<Batch>, epochs: std::ops::Range<u64>) -> Vec<Batch> {
    let mut out = Vec::new();
    for e in epochs {
        out.extend(p.epoch(e).map(|r| r.unwrap()));
    }
    out
}

#[test]
fn resume_from_any_batch_is_identical_to_the_uninterrupted_run_with_other_workers() {
    let dir = temp_dir("resume");
    let paths = write_tars(&dir, 5, 40);
    for (rank, world) in [(0, 1), (1, 2)] {
        let reference = run_all(&mut tar_pipeline(&paths, rank, world, 2, 2, 64), 0..2);
        let per_epoch = reference.len() / 2;
        let mut cuts: Vec<usize> = (0..reference.len()).step_by(3).collect();
        cuts.push(per_epoch);
        for cut in cuts {
            // Run to `cut` batches, take the state (with items in flight), stop.
            let mut p = tar_pipeline(&paths, rank, world, 2, 3, 64);
            let (epoch, k) = ((cut / per_epoch) as u64, cut % per_epoch);
            let mut got = run_all(&mut p, 0..epoch);
            let state = {
                let mut items = p.epoch(epoch);
                got.extend(items.by_ref().take(k).map(|r| r.unwrap()));
                items.state()
            };
            let json = serde_json::to_string(&state).unwrap();
            let state: PipelineState = serde_json::from_str(&json).unwrap();
            // Resume in another pipeline built the same way, with other workers and threads.
            let mut q = tar_pipeline(&paths, rank, world, 1 + cut % 3, 1 + cut % 5, 64);
            q.restore(&state).unwrap();
            got.extend(run_all(&mut q, epoch..2));
            assert_eq!(got, reference, "rank {rank}/{world}, cut at batch {cut}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn resume_after_an_epoch_iterator_was_dropped_goes_on_from_where_it_stood() {
    let dir = temp_dir("drop");
    let paths = write_tars(&dir, 3, 30);
    let reference = run_all(&mut tar_pipeline(&paths, 0, 1, 2, 2, 16), 0..1);
    let mut p = tar_pipeline(&paths, 0, 1, 2, 2, 16);
    let mut got = Vec::new();
    for _ in 0..4 {
        got.extend(p.epoch(0).take(3).map(|r| r.unwrap()));
    }
    got.extend(p.epoch(0).map(|r| r.unwrap()));
    assert_eq!(got, reference);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_state_with_a_10000_item_shuffle_buffer_stays_under_64_kb() {
    let source = IterSource::new(|_| 0u64..).shuffled(10_000, 1);
    let mut p = Pipeline::from_stateful(source)
        .map(Stage::cpu("id"), |x: u64| x)
        .window(256)
        .build()
        .unwrap();
    let mut items = p.epoch(0);
    let mut largest = 0;
    for i in 0..60_000 {
        items.next().unwrap().unwrap();
        if i % 5_000 == 0 {
            largest = largest.max(serde_json::to_string(&items.state()).unwrap().len());
        }
    }
    assert!(largest <= 64 * 1024, "{largest} bytes");
    assert!(largest > 0);
}

#[test]
fn a_state_from_another_shard_list_rank_world_seed_or_buffer_is_refused_in_one_line() {
    let dir = temp_dir("refuse");
    let paths = write_tars(&dir, 4, 10);
    let mut p = tar_pipeline(&paths, 0, 2, 1, 1, 8);
    let state = {
        let mut items = p.epoch(0);
        items.next().unwrap().unwrap();
        items.state()
    };
    let build = |paths: &[PathBuf], rank, world, seed, buffer| {
        let shards = Shards::new(paths.to_vec(), TarReader)
            .rank(rank, world)
            .unwrap()
            .shuffle(seed)
            .balanced(true);
        Pipeline::from_stateful(shards.shuffled(buffer, 8))
            .map(Stage::blocking("fetch", 1), |s: TarSample| s)
            .try_map(Stage::cpu("decode"), |s: TarSample| {
                Ok::<_, String>(format!("{}={}", s.key, s.fields["txt"].len()))
            })
            .batch(7, Remainder::Partial)
            .build()
            .unwrap()
    };
    assert!(build(&paths, 0, 2, 4, 8).restore(&state).is_ok());
    let cases = [
        (build(&paths[..3], 0, 2, 4, 8), "shards 4"),
        (build(&paths, 1, 2, 4, 8), "rank 0"),
        (build(&paths, 0, 3, 4, 8), "world_size 2"),
        (build(&paths, 0, 2, 5, 8), "shuffle seed 4"),
        (build(&paths, 0, 2, 4, 9), "buffer_size 8"),
    ];
    for (mut q, needle) in cases {
        let e = q.restore(&state).unwrap_err();
        let m = e.to_string();
        assert!(matches!(e, PipelineError::State(_)), "{m}");
        assert!(m.contains(needle) && !m.contains('\n'), "{needle}: {m}");
    }
    let mut it = Pipeline::from_source(|_| 0..10u32).build().unwrap();
    assert!(it.restore(&state).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn as_ready_delivery_with_a_stateful_source_resumes_exactly_once() {
    let make = || {
        Pipeline::from_stateful(IterSource::new(|_| 0u64..3_000).shuffled(100, 2))
            .map(Stage::cpu("work"), |x: u64| {
                let mut h = x;
                for _ in 0..(x % 11) * 300 {
                    h = h.rotate_left(5) ^ 0x9E37;
                }
                std::hint::black_box(h);
                x
            })
            .ordered(false)
            .workers(3)
            .on_failure(OnFailure::Yield)
            .build()
            .unwrap()
    };
    for cut in [1, 500, 2_999] {
        let mut p = make();
        let mut got: Vec<u64> = Vec::new();
        let state = {
            let mut items = p.epoch(0);
            got.extend(items.by_ref().take(cut).map(|r| r.unwrap()));
            items.state()
        };
        let mut q = make();
        q.restore(&state).unwrap();
        got.extend(q.epoch(0).map(|r| r.unwrap()));
        let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
        for x in got {
            *counts.entry(x).or_default() += 1;
        }
        assert_eq!(counts.len(), 3_000, "cut {cut}");
        assert!(counts.values().all(|&c| c == 1), "cut {cut}: duplicates");
    }
}

#[test]
fn rank_and_world_size_are_checked() {
    let e = Shards::new(vec![], JsonLines).rank(2, 2).err().unwrap();
    assert_eq!(e.to_string(), "rank: must be in 0..2 (world_size), got 2");
    let e = Shards::new(vec![], JsonLines).rank(0, 0).err().unwrap();
    assert_eq!(e.to_string(), "world_size: must be >= 1, got 0");
}

/// A shard listed twice was read twice (every sample of it delivered twice): refused when
/// the epoch starts, naming the second place; each path once is read as before.
#[test]
fn a_shard_listed_twice_is_refused_naming_the_repeat() {
    let dir = temp_dir("twice");
    let paths = write_jsonl(&dir, &[3, 2]);
    let twice = vec![paths[0].clone(), paths[1].clone(), paths[0].clone()];
    let mut s = Shards::new(twice, JsonLines);
    let e = s.start(0).unwrap_err().to_string();
    assert!(
        e.starts_with("paths[2]: ") && e.contains("is paths[0] again; each shard is read once"),
        "{e}"
    );
    let mut once = Shards::new(paths, JsonLines);
    assert_eq!(drain(&mut once, 0).len(), 5);
}

#[test]
fn passing_over_a_sample_leaves_the_shards_where_reading_it_does() {
    let dir = temp_dir("skip");
    let paths = write_tars(&dir, 5, 9);
    for (rank, world) in [(0, 1), (1, 2), (2, 3)] {
        let make = || {
            Shards::new(paths.clone(), TarReader)
                .rank(rank, world)
                .unwrap()
                .shuffle(3)
                .balanced(true)
        };
        let reference: Vec<String> = drain(&mut make(), 0).into_iter().map(|s| s.key).collect();
        let mut read = make();
        let mut passed = make();
        read.start(0).unwrap();
        passed.start(0).unwrap();
        for (i, want) in reference.iter().enumerate() {
            if i % 3 == 1 {
                assert_eq!(passed.skip(), Some(Ok(())));
            } else {
                assert_eq!(&passed.next().unwrap().unwrap().key, want);
            }
            read.next().unwrap().unwrap();
            assert_eq!(
                passed.state(),
                read.state(),
                "rank {rank}/{world}, item {i}"
            );
        }
        assert!(passed.skip().is_none() && read.next().is_none());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Bytes this thread has read with `read` calls so far (Linux's per-thread `rchar`).
#[cfg(target_os = "linux")]
fn thread_bytes_read() -> u64 {
    let io = std::fs::read_to_string("/proc/thread-self/io").unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
#[cfg(target_os = "linux")]
fn a_shuffle_restore_reads_only_the_buffered_samples_of_tar_shards() {
    let dir = temp_dir("restore-seek");
    const SIZE: usize = 20_000;
    let body = vec![7u8; SIZE];
    let paths: Vec<PathBuf> = (0..3)
        .map(|s| {
            let path = dir.join(format!("shard-{s}.tar"));
            let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
            for i in 0..200 {
                for (ext, data) in [("bin", &body[..]), ("cls", &b"1"[..])] {
                    let mut h = tar::Header::new_gnu();
                    h.set_size(data.len() as u64);
                    h.set_mode(0o644);
                    h.set_cksum();
                    b.append_data(&mut h, format!("{s}-{i:03}.{ext}"), data)
                        .unwrap();
                }
            }
            b.finish().unwrap();
            path
        })
        .collect();
    let (buffer, given) = (50, 300);
    let make = || Shards::new(paths.clone(), TarReader).shuffled(buffer, 5);
    let mut s = make();
    s.start(0).unwrap();
    for _ in 0..given {
        s.next().unwrap().unwrap();
    }
    let state = s.state();
    let rest: Vec<String> = std::iter::from_fn(|| s.next())
        .map(|r| r.unwrap().key)
        .collect();
    // The restore goes back to the source position `at` (at or before the oldest buffered
    // sample) and reads on to `given + buffer`: of those, only `buffer` are kept.
    let at = state.word(3).unwrap() as usize;
    let span = given + buffer - at;
    assert!(
        span >= 3 * buffer,
        "the test needs a span ({span}) well over the buffer"
    );

    let mut t = make();
    let before = thread_bytes_read();
    t.restore(&state).unwrap();
    let read = (thread_bytes_read() - before) as usize;
    // Each kept sample: its data, padding and the next headers; each one passed over: its
    // two headers and the small member (read through the scratch buffer), not its data.
    let bound = buffer * (SIZE + 2_048) + span * 2_048 + 65_536;
    assert!(
        read <= bound,
        "restore read {read} bytes; the {buffer} buffered samples and the headers of the \
         {span} passed over are at most {bound} (reading all {span} would be over {})",
        span * SIZE
    );
    assert!(bound < span * SIZE);
    let again: Vec<String> = std::iter::from_fn(|| t.next())
        .map(|r| r.unwrap().key)
        .collect();
    assert_eq!(again, rest);
    std::fs::remove_dir_all(&dir).unwrap();
}
