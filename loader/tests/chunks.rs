//! Chunked blocking stages (`try_map_chunks_with`): a thread takes the items already waiting,
//! up to its chunk, in one call. Each item still runs exactly once, keeps its place, its own
//! failure and the memory bound; a panic or a wrong count of results fails that call's items
//! only. No assertion on wall-clock time: sleeps only let items queue up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use loader::{Pipeline, PipelineError, Remainder, Sampler, Stage};

/// Every call's items, in the order each call got them.
type Calls = Arc<Mutex<Vec<Vec<usize>>>>;

/// A gate the first call waits at until `n` items have been read from the source, so that
/// the stage's queue holds items when the threads take their next ones (chunks form without
/// relying on timing).
struct Gate {
    read: Mutex<usize>,
    cv: Condvar,
    n: usize,
}

impl Gate {
    fn new(n: usize) -> Arc<Gate> {
        Arc::new(Gate {
            read: Mutex::new(0),
            cv: Condvar::new(),
            n,
        })
    }

    fn count(&self) {
        *self.read.lock().unwrap() += 1;
        self.cv.notify_all();
    }

    fn wait(&self) {
        let mut r = self.read.lock().unwrap();
        while *r < self.n {
            r = self.cv.wait(r).unwrap();
        }
    }
}

/// A pipeline over `0..n` whose blocking stage "ask" (`threads`, `chunk`) records its calls
/// and doubles each item (`bad` items fail with their own message).
fn asking(
    n: usize,
    threads: usize,
    chunk: usize,
    calls: &Calls,
    gate: &Arc<Gate>,
    bad: fn(usize) -> bool,
) -> loader::PipelineBuilder<usize> {
    let (c, g, src_gate) = (Arc::clone(calls), Arc::clone(gate), Arc::clone(gate));
    Pipeline::from_source(move |_| {
        let g = Arc::clone(&src_gate);
        (0..n).inspect(move |_| g.count())
    })
    .try_map_chunks_with(
        Stage::blocking("ask", threads),
        chunk,
        |_| (),
        move |items: Vec<usize>, _: &mut ()| {
            g.wait();
            c.lock().unwrap().push(items.clone());
            std::thread::sleep(Duration::from_micros(200));
            items
                .into_iter()
                .map(|i| {
                    if bad(i) {
                        Err(format!("bad {i}"))
                    } else {
                        Ok(i * 2)
                    }
                })
                .collect()
        },
    )
}

#[test]
fn each_item_runs_once_in_a_chunk_and_arrives_in_order() {
    for (threads, chunk) in [(1, 4), (3, 8), (4, 2)] {
        let calls: Calls = Arc::default();
        // the queue holds 2 × threads × chunk items: the first call waits for a chunk more
        let gate = Gate::new(chunk + 1);
        let mut p = asking(600, threads, chunk, &calls, &gate, |_| false)
            .map(Stage::cpu("decode"), |i: usize| i + 1)
            .workers(2)
            .build()
            .unwrap();
        let got: Vec<usize> = p.epoch(0).map(|r| r.unwrap()).collect();
        assert_eq!(got, (0..600).map(|i| i * 2 + 1).collect::<Vec<_>>());
        let calls = calls.lock().unwrap();
        let mut seen: HashMap<usize, usize> = HashMap::new();
        for call in calls.iter() {
            assert!(!call.is_empty() && call.len() <= chunk, "{call:?}");
            // a chunk is the items at the front of the queue: consecutive positions
            assert!(call.windows(2).all(|w| w[1] == w[0] + 1), "{call:?}");
            for &i in call {
                *seen.entry(i).or_insert(0) += 1;
            }
        }
        assert_eq!(seen.len(), 600);
        assert!(seen.values().all(|&c| c == 1));
        assert!(
            calls.iter().any(|c| c.len() > 1),
            "threads {threads}, chunk {chunk}: no call took more than one item"
        );
        assert_eq!(p.threads_alive(), 0);
    }
}

#[test]
fn a_failing_item_fails_alone_at_its_position() {
    let calls: Calls = Arc::default();
    let gate = Gate::new(9);
    let mut p = asking(200, 2, 8, &calls, &gate, |i| i % 10 == 3)
        .workers(1)
        .build()
        .unwrap();
    let got: Vec<Result<usize, PipelineError>> = p.epoch(3).collect();
    assert_eq!(got.len(), 200);
    for (pos, r) in got.iter().enumerate() {
        match r {
            Ok(v) => assert_eq!((*v, pos % 10 != 3), (pos * 2, true)),
            Err(e) => {
                assert_eq!(pos % 10, 3, "{e}");
                assert_eq!(e.position(), Some(pos as u64));
                assert_eq!(e.stage(), Some("ask"));
                assert!(e.to_string().contains(&format!("bad {pos}")), "{e}");
            }
        }
    }
    assert!(calls.lock().unwrap().iter().any(|c| c.len() > 1));
}

#[test]
fn a_panic_or_a_wrong_count_fails_that_calls_items_only() {
    for panics in [true, false] {
        let calls: Calls = Arc::default();
        let c = Arc::clone(&calls);
        let mut p = Pipeline::from_sampler(300, Sampler::sequential())
            .try_map_chunks_with(
                Stage::blocking("ask", 2),
                6,
                |_| (),
                move |items: Vec<usize>, _: &mut ()| -> Vec<Result<usize, String>> {
                    c.lock().unwrap().push(items.clone());
                    std::thread::sleep(Duration::from_micros(100));
                    if items.contains(&150) {
                        if panics {
                            panic!("asked about 150");
                        }
                        return vec![Ok(0)]; // one result, whatever the count asked
                    }
                    items.into_iter().map(Ok).collect()
                },
            )
            .workers(1)
            .build()
            .unwrap();
        let got: Vec<Result<usize, PipelineError>> = p.epoch(0).collect();
        assert_eq!(got.len(), 300);
        let calls = calls.lock().unwrap();
        let doomed: Vec<usize> = calls.iter().find(|c| c.contains(&150)).unwrap().clone();
        let single = doomed.len() == 1;
        for (pos, r) in got.iter().enumerate() {
            match r {
                Ok(v) => {
                    assert!(!doomed.contains(&pos), "{pos} was in {doomed:?}");
                    assert_eq!(*v, pos);
                }
                Err(e) if panics => {
                    assert!(doomed.contains(&pos), "{pos}: {e}");
                    assert!(
                        matches!(e, PipelineError::Item { panicked: true, .. }),
                        "{e}"
                    );
                    assert!(e.to_string().contains("asked about 150"), "{e}");
                }
                Err(e) => {
                    // a chunk of one item given one result is right: only longer ones fail
                    assert!(doomed.contains(&pos) && !single, "{pos}: {e}");
                    assert!(
                        e.to_string().contains("returned 1 results for a chunk of"),
                        "{e}"
                    );
                }
            }
        }
    }
}

#[test]
fn chunks_keep_the_window_and_resume_exactly() {
    fn build(calls: &Calls) -> Pipeline<Vec<usize>> {
        let c = Arc::clone(calls);
        Pipeline::from_sampler(400, Sampler::shuffled(5))
            .try_map_chunks_with(
                Stage::blocking("ask", 3),
                8,
                |_| (),
                move |items: Vec<usize>, _: &mut ()| -> Vec<Result<usize, String>> {
                    c.lock().unwrap().push(items.clone());
                    std::thread::sleep(Duration::from_micros(50));
                    items.into_iter().map(Ok).collect()
                },
            )
            .batch(7, Remainder::Partial)
            .workers(2)
            .window(48)
            .build()
            .unwrap()
    }
    let calls: Calls = Arc::default();
    let mut whole = build(&calls);
    let all: Vec<Vec<usize>> = whole.epoch(2).map(|r| r.unwrap()).collect();
    // two segments (to the batch, after it), each at most its window of 48
    assert!(whole.held_peak() <= 2 * 48, "held {}", whole.held_peak());
    for cut in [0, 3, 30, all.len()] {
        let mut first = build(&calls);
        let (head, state) = {
            let mut it = first.epoch(2);
            let head: Vec<_> = it.by_ref().take(cut).map(|r| r.unwrap()).collect();
            (head, it.state())
        };
        let mut second = build(&calls);
        second.restore(&state).unwrap();
        let mut joined = head;
        joined.extend(second.epoch(2).map(|r| r.unwrap()));
        assert_eq!(joined, all, "cut after {cut} batches");
        assert!(second.held_peak() <= 2 * 48);
    }
}

#[test]
fn a_chunk_of_one_is_a_plain_call_and_bad_chunks_are_refused() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let mut p = Pipeline::from_sampler(50, Sampler::sequential())
        .try_map_chunks_with(
            Stage::blocking("ask", 2),
            1,
            |_| (),
            move |items: Vec<usize>, _: &mut ()| -> Vec<Result<usize, String>> {
                assert_eq!(items.len(), 1);
                c.fetch_add(1, SeqCst);
                items.into_iter().map(Ok).collect()
            },
        )
        .workers(1)
        .build()
        .unwrap();
    assert_eq!(p.epoch(0).filter(|r| r.is_ok()).count(), 50);
    assert_eq!(calls.load(SeqCst), 50);
    let f = |items: Vec<usize>, _: &mut ()| -> Vec<Result<usize, String>> {
        items.into_iter().map(Ok).collect()
    };
    let e = Pipeline::from_sampler(5, Sampler::sequential())
        .try_map_chunks_with(Stage::blocking("ask", 2), 0, |_| (), f)
        .build()
        .unwrap_err();
    assert_eq!(e.to_string(), "ask: chunk: must be >= 1 item, got 0");
    let e = Pipeline::from_sampler(5, Sampler::sequential())
        .try_map_chunks_with(Stage::cpu("ask"), 4, |_| (), f)
        .workers(1)
        .build()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "ask: chunk: only a blocking stage's threads take items in chunks"
    );
}

#[test]
fn a_chunk_time_bounds_the_chunks_by_the_mean_item_time() {
    // Under a limit no item fits (1 ns), every call takes one item; under one every chunk
    // fits (an hour), chunks form as without a limit.
    for (limit, chunks) in [
        (Duration::from_nanos(1), false),
        (Duration::from_secs(3600), true),
    ] {
        let calls: Calls = Arc::default();
        let (c, gate) = (Arc::clone(&calls), Gate::new(9));
        let g = Arc::clone(&gate);
        let mut p = Pipeline::from_source(move |_| {
            let g = Arc::clone(&g);
            (0..300usize).inspect(move |_| g.count())
        })
        .try_map_chunks_with(
            Stage::blocking("ask", 2).chunk_time(limit),
            8,
            |_| (),
            move |items: Vec<usize>, _: &mut ()| -> Vec<Result<usize, String>> {
                gate.wait();
                c.lock().unwrap().push(items.clone());
                std::thread::sleep(Duration::from_micros(200));
                items.into_iter().map(Ok).collect()
            },
        )
        .workers(1)
        .build()
        .unwrap();
        let got: Vec<usize> = p.epoch(0).map(|r| r.unwrap()).collect();
        assert_eq!(got, (0..300).collect::<Vec<_>>());
        let calls = calls.lock().unwrap();
        assert_eq!(calls.iter().map(Vec::len).sum::<usize>(), 300);
        assert_eq!(calls.iter().any(|c| c.len() > 1), chunks, "limit {limit:?}");
    }
    let e = Pipeline::from_sampler(5, Sampler::sequential())
        .map(
            Stage::blocking("read", 2).chunk_time(Duration::from_millis(1)),
            |i: usize| i,
        )
        .build()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "read: chunk_time: only a chunked stage (try_map_chunks_with) takes items in chunks"
    );
}
