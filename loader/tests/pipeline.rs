//! Pipelines: order, exactly-once, regrouping, faults, the memory bound, cancellation, resume
//! and bad settings. No assertion on wall-clock time; sleeps only vary completion order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loader::{MaxFailures, OnFailure, Pipeline, PipelineError, Remainder, Sampler, Stage};

/// A few microseconds of sleep that vary by item, so items finish out of order.
fn jitter(i: usize) {
    std::thread::sleep(Duration::from_micros(((i * 7919) % 13) as u64 * 40));
}

fn counter() -> Arc<Mutex<HashMap<usize, usize>>> {
    Arc::new(Mutex::new(HashMap::new()))
}

#[test]
fn ordered_items_in_source_order_each_stage_once_per_item() {
    for workers in [1, 2, 3] {
        let (reads, decodes) = (counter(), counter());
        let (r, d) = (Arc::clone(&reads), Arc::clone(&decodes));
        let mut p = Pipeline::from_sampler(500, Sampler::shuffled(3))
            .map(Stage::blocking("read", 8), move |i: usize| {
                *r.lock().unwrap().entry(i).or_insert(0) += 1;
                jitter(i);
                i
            })
            .map(Stage::cpu("decode"), move |i: usize| {
                *d.lock().unwrap().entry(i).or_insert(0) += 1;
                jitter(i + 1);
                i * 2
            })
            .workers(workers)
            .build()
            .unwrap();
        let got: Vec<usize> = p.epoch(4).map(|r| r.unwrap()).collect();
        let want: Vec<usize> = Sampler::shuffled(3)
            .indices(500, 4)
            .into_iter()
            .map(|i| i * 2)
            .collect();
        assert_eq!(got, want, "P = {workers}");
        for c in [&reads, &decodes] {
            let c = c.lock().unwrap();
            assert_eq!(c.len(), 500);
            assert!(c.values().all(|&n| n == 1), "each item ran once per stage");
        }
        assert_eq!(p.threads_alive(), 0);
        let report = p.report().unwrap();
        assert_eq!(report.items, 500);
        assert_eq!(report.stages.len(), 2);
        assert_eq!(report.stages[0].items_in, 500);
        assert_eq!(report.stages[1].items_out, 500);
        assert!(report.bottleneck.is_some());
    }
}

#[test]
fn as_ready_gives_every_item_once() {
    let mut p = Pipeline::from_source(|_| 0..2_000u64)
        .map(Stage::blocking("wait", 4), |i: u64| {
            jitter(i as usize);
            i
        })
        .map(Stage::cpu("square"), |i: u64| i * i)
        .ordered(false)
        .workers(2)
        .build()
        .unwrap();
    let mut got: Vec<u64> = p.epoch(0).map(|r| r.unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, (0..2_000u64).map(|i| i * i).collect::<Vec<_>>());
}

#[test]
fn filter_flat_map_and_batches_keep_source_order() {
    // keep odd i, each becomes (i, 0), (i, 1), … (i % 3 children), batches of 4
    let mut p = Pipeline::from_source(|_| 0..300usize)
        .filter(Stage::cpu("odd"), |i: &usize| i % 2 == 1)
        .map(Stage::blocking("slow", 6), |i: usize| {
            jitter(i);
            i
        })
        .flat_map(Stage::cpu("split"), |i: usize| {
            (0..i % 3).map(move |j| (i, j))
        })
        .map(Stage::cpu("shuffle-time"), |x: (usize, usize)| {
            jitter(x.0 + x.1);
            x
        })
        .batch(4, Remainder::Partial)
        .map(Stage::cpu("collate"), |b: Vec<(usize, usize)>| b)
        .workers(2)
        .build()
        .unwrap();
    let flat: Vec<(usize, usize)> = (0..300)
        .filter(|i| i % 2 == 1)
        .flat_map(|i| (0..i % 3).map(move |j| (i, j)))
        .collect();
    let want: Vec<Vec<(usize, usize)>> = flat.chunks(4).map(|c| c.to_vec()).collect();
    let got: Vec<Vec<(usize, usize)>> = p.epoch(0).map(|r| r.unwrap()).collect();
    assert_eq!(got, want);
    // Drop mode: the short last batch is left out.
    let mut p = Pipeline::from_source(|_| 0..10usize)
        .batch(4, Remainder::Drop)
        .workers(1)
        .build()
        .unwrap();
    let got: Vec<Vec<usize>> = p.epoch(0).map(|r| r.unwrap()).collect();
    assert_eq!(got, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]]);
}

#[test]
fn a_failing_item_is_an_error_at_its_position_naming_stage_position_and_epoch() {
    let mut p = Pipeline::from_sampler(40, Sampler::sequential())
        .map(Stage::blocking("read", 4), |i: usize| i)
        .try_map(Stage::cpu("decode"), |i: usize| {
            if i == 7 {
                Err(format!("corrupt {i}"))
            } else if i == 21 {
                panic!("decoder crashed on {i}")
            } else {
                Ok(i)
            }
        })
        .workers(2)
        .build()
        .unwrap();
    let got: Vec<Result<usize, PipelineError>> = p.epoch(2).collect();
    assert_eq!(got.len(), 40);
    for (pos, r) in got.iter().enumerate() {
        match (pos, r) {
            (
                7,
                Err(PipelineError::Item {
                    stage,
                    position,
                    index,
                    epoch,
                    message,
                    panicked,
                    ..
                }),
            ) => {
                assert_eq!(
                    (stage.as_str(), *position, *index, *epoch),
                    ("decode", 7, Some(7), 2)
                );
                assert_eq!((message.as_str(), *panicked), ("corrupt 7", false));
            }
            (21, Err(e @ PipelineError::Item { panicked: true, .. })) => {
                assert_eq!(e.position(), Some(21));
                assert!(
                    e.to_string().contains("stage 'decode' panicked on item 21"),
                    "{e}"
                );
            }
            (p, Ok(v)) => assert_eq!(*v, p),
            (p, other) => panic!("position {p}: {other:?}"),
        }
    }
    assert_eq!(p.report().unwrap().failures, 2);
}

#[test]
fn skip_leaves_bad_items_out_of_batches_and_halt_stops_after_the_limit() {
    let bad = |i: usize| if i % 10 == 3 { Err("bad") } else { Ok(i) };
    let mut p = Pipeline::from_source(|_| 0..40usize)
        .try_map(Stage::cpu("check"), bad)
        .batch(5, Remainder::Partial)
        .on_failure(OnFailure::Skip)
        .workers(2)
        .build()
        .unwrap();
    let got: Vec<Vec<usize>> = p.epoch(0).map(|r| r.unwrap()).collect();
    let good: Vec<usize> = (0..40).filter(|i| i % 10 != 3).collect();
    assert_eq!(got, good.chunks(5).map(|c| c.to_vec()).collect::<Vec<_>>());
    assert_eq!(p.report().unwrap().failures, 4);

    let mut p = Pipeline::from_source(|_| 0..100usize)
        .try_map(Stage::cpu("check"), bad)
        .on_failure(OnFailure::Halt(MaxFailures::Count(2)))
        .workers(2)
        .build()
        .unwrap();
    let got: Vec<Result<usize, PipelineError>> = p.epoch(0).collect();
    let errors: Vec<&PipelineError> = got.iter().filter_map(|r| r.as_ref().err()).collect();
    // 3 and 13 are yielded; 23 passes the limit: it is the halt
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(matches!(
        errors[2],
        PipelineError::Halted { failures: 3, .. }
    ));
    assert_eq!(got.len(), 24, "the epoch ends at the halt");

    let mut p = Pipeline::from_source(|_| 0..100usize)
        .try_map(Stage::cpu("check"), bad)
        .on_failure(OnFailure::Halt(MaxFailures::Fraction(0.05)))
        .workers(1)
        .build()
        .unwrap();
    let errors = p.epoch(0).filter(|r| r.is_err()).count();
    assert_eq!(errors, 6); // 5 failures allowed (5% of 100), the 6th is the halt
}

#[test]
fn a_panicking_batch_collate_names_its_stage() {
    let mut p = Pipeline::from_source(|_| 0..20usize)
        .batch(5, Remainder::Partial)
        .map(Stage::cpu("collate"), |b: Vec<usize>| {
            assert!(!b.contains(&12), "collate boom");
            b.len()
        })
        .workers(2)
        .build()
        .unwrap();
    let got: Vec<Result<usize, PipelineError>> = p.epoch(0).collect();
    assert_eq!(got.len(), 4);
    let e = got[2].as_ref().unwrap_err();
    assert_eq!((e.stage(), e.position()), (Some("collate"), Some(10)));
    assert!(e.to_string().contains("collate boom"));
}

/// Counts its live values: the items that exist at once.
struct Tracked(Arc<AtomicUsize>);

impl Tracked {
    fn new(live: &Arc<AtomicUsize>, peak: &Arc<AtomicUsize>) -> Tracked {
        let now = live.fetch_add(1, SeqCst) + 1;
        peak.fetch_max(now, SeqCst);
        Tracked(Arc::clone(live))
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

#[test]
fn items_held_never_exceed_the_sum_of_the_windows() {
    let live = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (l, k) = (Arc::clone(&live), Arc::clone(&peak));
    let window = 24;
    let mut p = Pipeline::from_source(|_| 0..3_000usize)
        .map(Stage::blocking("make", 6), move |i: usize| {
            jitter(i);
            (i, Tracked::new(&l, &k))
        })
        .map(Stage::cpu("work"), |x: (usize, Tracked)| x)
        .batch(8, Remainder::Partial)
        .map(Stage::cpu("collate"), |b: Vec<(usize, Tracked)>| b)
        .window(window)
        .workers(2)
        .build()
        .unwrap();
    let mut n = 0;
    for b in p.epoch(0) {
        let b = b.unwrap();
        n += b.len();
        // the consumer is slow: the pipeline fills up to its bound meanwhile
        std::thread::sleep(Duration::from_micros(300));
    }
    assert_eq!(n, 3_000);
    // two segments (to the batch, after it), each at most `window` items; a batch in the
    // second segment holds 8 tracked values, and the consumer holds one batch
    let bound = window + window * 8 + 8;
    let seen = peak.load(SeqCst);
    assert!(
        seen <= bound,
        "{seen} tracked values alive at once, bound {bound}"
    );
    assert!(
        p.held_peak() <= 2 * window,
        "{} > {}",
        p.held_peak(),
        2 * window
    );
    assert!(seen > 8, "the pipeline did fill up ({seen})");
    assert_eq!(live.load(SeqCst), 0);
}

#[test]
fn dropping_mid_epoch_cancels_and_leaves_no_thread_behind() {
    let started = Arc::new(AtomicUsize::new(0));
    let s = Arc::clone(&started);
    let mut p = Pipeline::from_source(|_| 0..1_000_000usize)
        .map(Stage::blocking("read", 16), move |i: usize| {
            s.fetch_add(1, SeqCst);
            std::thread::sleep(Duration::from_millis(1));
            i
        })
        .map(Stage::cpu("decode"), |i: usize| i)
        .workers(2)
        .build()
        .unwrap();
    {
        let mut it = p.epoch(0);
        for want in 0..50 {
            assert_eq!(it.next().unwrap().unwrap(), want);
        }
        // the read stage's 16 threads are running (so that the 0 below means they were joined)
        assert_eq!(it.threads_alive(), 16);
        let report = it.report().unwrap();
        assert_eq!(report.stages[0].concurrency, 16);
    }
    assert_eq!(p.threads_alive(), 0, "every blocking thread joined");
    let after = started.load(SeqCst);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(started.load(SeqCst), after, "nothing runs after the drop");
    // the pipeline continues where it stood
    let next: Vec<usize> = p.epoch(0).take(3).map(|r| r.unwrap()).collect();
    assert_eq!(next, vec![50, 51, 52]);
    assert_eq!(p.threads_alive(), 0);
}

#[test]
fn state_and_restore_resume_exactly_across_flat_map_and_batches() {
    fn build() -> Pipeline<Vec<(usize, usize)>> {
        Pipeline::from_sampler(200, Sampler::shuffled(11))
            .map(Stage::blocking("read", 5), |i: usize| {
                jitter(i);
                i
            })
            .filter(Stage::cpu("keep"), |i: &usize| i % 5 != 0)
            .flat_map(Stage::cpu("split"), |i: usize| {
                (0..i % 4).map(move |j| (i, j))
            })
            .batch(3, Remainder::Partial)
            .workers(2)
            .build()
            .unwrap()
    }
    let mut whole = build();
    let all: Vec<Vec<(usize, usize)>> = whole.epoch(1).map(|r| r.unwrap()).collect();
    for cut in [0, 1, 7, 40, all.len() - 1, all.len()] {
        let mut first = build();
        let (head, state) = {
            let mut it = first.epoch(1);
            let head: Vec<_> = it.by_ref().take(cut).map(|r| r.unwrap()).collect();
            (head, it.state())
        };
        let json = serde_json::to_string(&state).unwrap();
        let mut second = build();
        second
            .restore(&serde_json::from_str(&json).unwrap())
            .unwrap();
        let tail: Vec<_> = second.epoch(1).map(|r| r.unwrap()).collect();
        let mut joined = head;
        joined.extend(tail);
        assert_eq!(joined, all, "cut after {cut} batches");
    }
}

#[test]
fn bad_settings_are_refused_at_build_naming_stage_and_field() {
    let e = Pipeline::from_source(|_| 0..1usize)
        .map(Stage::cpu("decode").concurrency(0), |i: usize| i)
        .build()
        .unwrap_err();
    assert_eq!(e.to_string(), "decode: concurrency: must be >= 1, got 0");
    let e = Pipeline::from_source(|_| 0..1usize)
        .batch(0, Remainder::Partial)
        .build()
        .unwrap_err();
    assert_eq!(e.to_string(), "batch(0): size: must be >= 1, got 0");
    let e = Pipeline::from_source(|_| 0..1usize)
        .map(
            Stage::cpu("aug").strategy("work-stealing(victim=nowhere)"),
            |i: usize| i,
        )
        .workers(2)
        .build()
        .unwrap_err();
    assert!(e.to_string().starts_with("aug: strategy: "), "{e}");
    let e = Pipeline::from_source(|_| 0..1usize)
        .map(Stage::blocking("read", 0), |i: usize| i)
        .build()
        .unwrap_err();
    assert_eq!(e.to_string(), "read: concurrency: must be >= 1, got 0");
    let e = Pipeline::from_source(|_| 0..1usize)
        .map(Stage::cpu("a"), |i: usize| i)
        .map(Stage::cpu("a"), |i: usize| i)
        .build()
        .unwrap_err();
    assert!(e.to_string().starts_with("a: name: "), "{e}");
    let e = Pipeline::from_source(|_| 0..1usize)
        .batch(8, Remainder::Partial)
        .window(4)
        .build()
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("pipeline: window: 4 items cannot hold a batch of 8"),
        "{e}"
    );
    let e = Pipeline::from_source(|_| 0..1usize)
        .batch(8, Remainder::Pad)
        .build()
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("batch(8): remainder: pad is not supported"),
        "{e}"
    );
}

#[test]
fn a_pipeline_without_cpu_stages_needs_no_pool_and_empty_sources_end_at_once() {
    let mut p = Pipeline::from_source(|e| 0..e as usize)
        .map(Stage::blocking("io", 3), |i: usize| i + 1)
        .workers(0)
        .build()
        .unwrap();
    assert_eq!(p.cpu_workers(), 0);
    assert_eq!(p.epoch(0).count(), 0);
    assert_eq!(
        p.epoch(5).map(|r| r.unwrap()).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(p.threads_alive(), 0);
}

#[test]
fn per_runner_state_is_built_once_per_cpu_worker_and_per_thread() {
    let inits = Arc::new(AtomicUsize::new(0));
    let i2 = Arc::clone(&inits);
    let i3 = Arc::clone(&inits);
    let mut p = Pipeline::from_source(|_| 0..100usize)
        .try_map_with(
            Stage::blocking("open", 3),
            move |_r| {
                i2.fetch_add(1, SeqCst);
                0usize
            },
            |i: usize, seen: &mut usize| {
                *seen += 1;
                Ok::<_, String>(i)
            },
        )
        .try_map_with(
            Stage::cpu("decode"),
            move |_r| {
                i3.fetch_add(100, SeqCst);
                Vec::<usize>::new()
            },
            |i: usize, buf: &mut Vec<usize>| {
                buf.push(i);
                Ok::<_, String>(i)
            },
        )
        .workers(2)
        .build()
        .unwrap();
    assert_eq!(
        inits.load(SeqCst),
        200,
        "the pool's 2 workers built their decode state"
    );
    assert_eq!(p.epoch(0).count(), 100);
    assert_eq!(
        inits.load(SeqCst),
        203,
        "each of the 3 read threads built its state"
    );
}

#[test]
fn the_report_names_the_waiting_stage_and_progress_and_trace_see_every_stage() {
    let dir = std::env::temp_dir().join(format!("schedlab-pipeline-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("trace.csv");
    let seen = Arc::new(AtomicUsize::new(0));
    let s = Arc::clone(&seen);
    let mut p = Pipeline::from_source(|_| 0..60usize)
        .map(Stage::blocking("read", 2), |i: usize| {
            std::thread::sleep(Duration::from_millis(2)); // 2 threads: 1,000 items/s at most
            i
        })
        .map(Stage::cpu("decode"), |i: usize| i + 1)
        .workers(2)
        .trace(&trace)
        .progress(Duration::ZERO, move |r| {
            assert_eq!(r.stages.len(), 2);
            s.fetch_add(1, SeqCst);
        })
        .build()
        .unwrap();
    assert_eq!(p.epoch(3).count(), 60);
    assert!(
        seen.load(SeqCst) >= 59,
        "a report before every item but the first"
    );
    let r = p.report().unwrap();
    let b = r.bottleneck.as_ref().unwrap();
    // read's capacity is 2 / ≥ 2 ms; decode's is P / (an add): orders of magnitude apart
    assert_eq!(b.stage, "read", "{r}");
    assert_eq!(b.unit, "thread");
    assert!(r.limit_per_s <= 1_000.0, "{r}");
    assert!(b.one_more_per_s > r.limit_per_s);
    assert_eq!(r.source_items, 60);
    let json = serde_json::to_value(r).unwrap();
    assert_eq!(json["bottleneck"]["stage"], "read");
    assert_eq!(json["stages"][1]["kind"], "cpu");
    let text = std::fs::read_to_string(&trace).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("# schedlab pipeline trace v1"));
    assert_eq!(lines.next(), Some("stage,kind,epoch,item,cost_ns"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 120);
    for (stage, kind) in [("read", "blocking"), ("decode", "cpu")] {
        let mut items: Vec<usize> = rows
            .iter()
            .filter(|r| r[0] == stage)
            .inspect(|r| assert_eq!((r[1], r[2]), (kind, "3")))
            .map(|r| r[3].parse().unwrap())
            .collect();
        items.sort_unstable();
        assert_eq!(items, (0..60).collect::<Vec<_>>());
    }
    assert!(rows
        .iter()
        .filter(|r| r[0] == "read")
        .all(|r| r[4].parse::<u64>().unwrap() >= 2_000_000));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_cpu_stages_strategy_decides_which_worker_runs_which_item() {
    // round-robin: item i (bound to task id i in queue order) runs on worker i mod P
    let mut p = Pipeline::from_source(|_| 0..400usize)
        .map(Stage::blocking("feed", 4), |i: usize| {
            jitter(i);
            i
        })
        .try_map_with(
            Stage::cpu("where").strategy("round-robin"),
            |r| match r {
                loader::pipeline::Runner::Cpu(w) => w,
                loader::pipeline::Runner::Thread(_) => usize::MAX,
            },
            |i: usize, w: &mut usize| Ok::<_, String>((i, *w)),
        )
        .workers(3)
        .build()
        .unwrap();
    let got: Vec<(usize, usize)> = p.epoch(0).map(|r| r.unwrap()).collect();
    assert_eq!(got.len(), 400);
    // items reach the stage out of order (the feed jitters), and each is bound to the next id
    let by_worker = got.iter().fold([0usize; 3], |mut c, &(_, w)| {
        c[w] += 1;
        c
    });
    assert!(
        by_worker.iter().all(|&c| (133..=134).contains(&c)),
        "{by_worker:?}"
    );
    for (k, &(i, _)) in got.iter().enumerate() {
        assert_eq!(i, k, "in source order");
    }
}

#[test]
fn a_pipeline_is_send_and_a_bare_source_passes_through() {
    fn send<T: Send>(_: &T) {}
    let mut p = Pipeline::from_source(|e| (0..5u64).map(move |i| i + e))
        .workers(1)
        .build()
        .unwrap();
    send(&p);
    let got: Vec<u64> = std::thread::spawn(move || p.epoch(10).map(|r| r.unwrap()).collect())
        .join()
        .unwrap();
    assert_eq!(got, vec![10, 11, 12, 13, 14]);
}

#[test]
fn a_panicking_source_ends_the_epoch_with_an_error_at_its_position() {
    let mut p = Pipeline::from_source(|_| {
        (0..10usize).inspect(|&i| assert!(i != 6, "listing broke at {i}"))
    })
    .map(Stage::cpu("double"), |i: usize| i * 2)
    .workers(2)
    .build()
    .unwrap();
    let got: Vec<Result<usize, PipelineError>> = p.epoch(0).collect();
    assert_eq!(got.len(), 7);
    for (i, r) in got.iter().take(6).enumerate() {
        assert_eq!(r.as_ref().unwrap(), &(i * 2));
    }
    let e = got[6].as_ref().unwrap_err();
    assert_eq!((e.stage(), e.position()), (Some("source"), Some(6)));
    assert!(e.to_string().contains("listing broke at 6"), "{e}");
    let mut p = Pipeline::from_source(|e| {
        assert!(e != 1, "no epoch 1");
        0..3usize
    })
    .workers(1)
    .build()
    .unwrap();
    assert_eq!(p.epoch(0).count(), 3);
    let got: Vec<Result<usize, PipelineError>> = p.epoch(1).collect();
    assert!(
        matches!(&got[..], [Err(PipelineError::Start(m))] if m.contains("no epoch 1")),
        "{got:?}"
    );
}

#[test]
fn restore_refuses_a_state_taken_from_another_source_naming_what_differs() {
    fn take_state(p: &mut Pipeline<usize>, n: usize) -> loader::PipelineState {
        let mut it = p.epoch(0);
        for _ in 0..n {
            it.next().unwrap().unwrap();
        }
        it.state()
    }
    fn sampled(len: usize, sampler: Sampler) -> Pipeline<usize> {
        Pipeline::from_sampler(len, sampler)
            .map(Stage::cpu("work"), |i: usize| i)
            .workers(2)
            .build()
            .unwrap()
    }
    let refused = |state: &loader::PipelineState, mut p: Pipeline<usize>| -> String {
        let json = serde_json::to_string(state).unwrap();
        let back: loader::PipelineState = serde_json::from_str(&json).unwrap();
        let e = p.restore(&back).unwrap_err();
        assert!(matches!(e, PipelineError::State(_)), "{e:?}");
        let m = e.to_string();
        assert!(!m.contains('\n'), "{m}");
        m
    };
    // 10,000 items into 100
    let big = take_state(&mut sampled(10_000, Sampler::sequential()), 50);
    let m = refused(&big, sampled(100, Sampler::sequential()));
    assert!(
        m.contains("state was taken from a source of 10000 items; this pipeline's has 100"),
        "{m}"
    );
    // shuffled into sequential, another seed, another shard
    let shuffled = take_state(&mut sampled(100, Sampler::shuffled(7)), 23);
    let m = refused(&shuffled, sampled(100, Sampler::sequential()));
    assert!(
        m.contains("a shuffled sampler (seed 7)") && m.contains("sequential"),
        "{m}"
    );
    let m = refused(&shuffled, sampled(100, Sampler::shuffled(8)));
    assert!(m.contains("seed 7") && m.contains("seed 8"), "{m}");
    let sharded = take_state(&mut sampled(100, Sampler::shuffled(7).shard(0, 2)), 5);
    let m = refused(&sharded, sampled(100, Sampler::shuffled(7).shard(1, 2)));
    assert!(
        m.contains("shard rank 0 of 2") && m.contains("rank 1 of 2"),
        "{m}"
    );
    // same stage names, another kind or an added batch
    let blocking = Pipeline::from_sampler(100, Sampler::shuffled(7))
        .map(Stage::blocking("work", 2), |i: usize| i)
        .build()
        .unwrap();
    let m = refused(&shuffled, blocking);
    assert!(
        m.contains("work (cpu)") && m.contains("work (blocking)"),
        "{m}"
    );

    // an iterator source: its length is checked when the epoch opens
    let iter = |n: usize| {
        Pipeline::from_source(move |_| 0..n)
            .map(Stage::cpu("work"), |i: usize| i)
            .workers(2)
            .build()
            .unwrap()
    };
    let state = take_state(&mut iter(10_000), 30);
    let mut small = iter(100);
    small.restore(&state).unwrap();
    let first: Vec<_> = small.epoch(0).collect();
    assert_eq!(first.len(), 1, "the error, then the end");
    let m = first[0].as_ref().unwrap_err().to_string();
    assert!(
        m.contains("state was taken from a source of 10000 items; this pipeline's has 100"),
        "{m}"
    );

    // a matching restore is still exact: shuffled, cut after 23 items
    let mut whole = sampled(100, Sampler::shuffled(7));
    let all: Vec<usize> = whole.epoch(0).map(|r| r.unwrap()).collect();
    let mut again = sampled(100, Sampler::shuffled(7));
    again.restore(&shuffled).unwrap();
    let rest: Vec<usize> = again.epoch(0).map(|r| r.unwrap()).collect();
    assert_eq!(rest, all[23..].to_vec());
    let mut again = iter(10_000);
    again.restore(&state).unwrap();
    let rest: Vec<usize> = again.epoch(0).map(|r| r.unwrap()).collect();
    assert_eq!(rest, (30..10_000).collect::<Vec<_>>());
}

/// The worker a cpu stage's state was made for.
fn worker_of(r: loader::pipeline::Runner) -> usize {
    match r {
        loader::pipeline::Runner::Cpu(w) => w,
        loader::pipeline::Runner::Thread(_) => usize::MAX,
    }
}

#[test]
fn an_item_runs_on_through_a_free_default_cpu_stage_on_the_worker_that_finished_it() {
    // `b` has a slot free whenever a worker finishes an item of `a` (2 workers, concurrency 2,
    // the finishing worker runs nothing of `b`) and nothing queued: every item goes on to `b`
    // on the worker that ran its `a`, at once, with no ticket of `b`'s job.
    let calls = counter();
    let (ca, cb) = (Arc::clone(&calls), Arc::clone(&calls));
    let mut p = Pipeline::from_source(|_| 0..500usize)
        .try_map_with(
            Stage::cpu("a").concurrency(1),
            worker_of,
            move |i: usize, w: &mut usize| {
                *ca.lock().unwrap().entry(i).or_default() += 1;
                Ok::<_, String>((i, *w))
            },
        )
        .try_map_with(
            Stage::cpu("b").concurrency(2),
            worker_of,
            move |(i, wa): (usize, usize), w: &mut usize| {
                *cb.lock().unwrap().entry(i + 1000).or_default() += 1;
                Ok::<_, String>((i, wa, *w))
            },
        )
        .workers(2)
        .build()
        .unwrap();
    let got: Vec<(usize, usize, usize)> = p.epoch(0).map(|r| r.unwrap()).collect();
    assert_eq!(got.len(), 500);
    for (k, &(i, wa, wb)) in got.iter().enumerate() {
        assert_eq!(i, k, "in source order");
        assert_eq!(wa, wb, "item {i}: a on worker {wa}, b on worker {wb}");
    }
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), 1000);
    assert!(calls.values().all(|&c| c == 1), "each stage once per item");
}

#[test]
fn a_cpu_stage_with_its_own_strategy_after_a_cpu_stage_still_follows_it() {
    // No running on into a stage whose strategy decides the worker: round-robin puts item i
    // (bound to task id i in queue order: `a` runs one item at a time, so items arrive in
    // order) on worker i mod P, whoever finished its `a`.
    let mut p = Pipeline::from_source(|_| 0..300usize)
        .map(Stage::cpu("a").concurrency(1), |i: usize| i)
        .try_map_with(
            Stage::cpu("where").strategy("round-robin"),
            worker_of,
            |i: usize, w: &mut usize| Ok::<_, String>((i, *w)),
        )
        .workers(3)
        .build()
        .unwrap();
    let got: Vec<(usize, usize)> = p.epoch(0).map(|r| r.unwrap()).collect();
    assert_eq!(got.len(), 300);
    for (k, &(i, w)) in got.iter().enumerate() {
        assert_eq!((i, w), (k, k % 3), "item {k}");
    }
}

#[test]
fn dropping_the_epoch_while_items_run_on_through_cpu_stages_runs_none_twice() {
    // Three cpu stages that run items on; the consumer lets go after a few: every call of a
    // later stage follows one of the stage before it for the same item, none runs twice, and
    // the pipeline opens the next epoch.
    let calls = counter();
    let stage = |k: usize| {
        let c = Arc::clone(&calls);
        move |i: usize| {
            *c.lock().unwrap().entry(k * 100_000 + i).or_default() += 1;
            jitter(i);
            i
        }
    };
    let mut p = Pipeline::from_source(|_| 0..20_000usize)
        .map(Stage::cpu("a"), stage(0))
        .map(Stage::cpu("b"), stage(1))
        .map(Stage::cpu("c"), stage(2))
        .workers(2)
        .build()
        .unwrap();
    let first: Vec<usize> = p.epoch(0).take(50).map(|r| r.unwrap()).collect();
    assert_eq!(first, (0..50).collect::<Vec<_>>());
    let again: Vec<usize> = p.epoch(1).take(3).map(|r| r.unwrap()).collect();
    assert_eq!(again, vec![0, 1, 2]);
    drop(p);
    let calls = calls.lock().unwrap();
    for (&key, &n) in calls.iter() {
        let (k, i) = (key / 100_000, key % 100_000);
        // epochs 0 and 1 run the same positions: each stage at most once per item per epoch
        assert!(n <= 2, "stage {k} item {i} ran {n} times");
        if k > 0 {
            let before = calls.get(&((k - 1) * 100_000 + i)).copied().unwrap_or(0);
            assert!(
                n <= before,
                "stage {k} item {i}: {n} calls, {before} before it"
            );
        }
    }
}
