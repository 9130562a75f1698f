//! A `flat_map`'s children are pulled from its iterator only as the next segment has room
//! (issue 27): the iterator is kept, not its children. Counts, orders and exactly-once only; no
//! assertion on wall-clock time.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use loader::{OnFailure, Pipeline, PipelineError, Remainder, Sampler, Stage};

/// Children made so far by every child iterator.
fn produced() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

/// Child `(i, j)` for `j` in `0..n`, each counted in `made` as it is made.
fn children(made: &Arc<AtomicUsize>, i: usize, n: usize) -> impl Iterator<Item = (usize, usize)> {
    let made = Arc::clone(made);
    (0..n).map(move |j| {
        made.fetch_add(1, SeqCst);
        (i, j)
    })
}

#[test]
fn a_flat_maps_children_are_made_only_as_the_next_segment_has_room() {
    const CHILDREN: usize = 200_000;
    let window = 8;
    let made = produced();
    let mut p = Pipeline::from_source(|_| 0..3usize)
        .flat_map(Stage::cpu("split"), {
            let made = Arc::clone(&made);
            move |i: usize| children(&made, i, CHILDREN)
        })
        .window(window)
        .workers(2)
        .build()
        .unwrap();
    let mut taken = 0usize;
    let mut most_ahead = 0;
    for r in p.epoch(0) {
        let (i, j) = r.unwrap();
        assert_eq!(
            (i, j),
            (taken / CHILDREN, taken % CHILDREN),
            "in order, once"
        );
        taken += 1;
        // the children made and not yet taken are in the second segment's window
        let ahead = made.load(SeqCst) - taken;
        assert!(
            ahead <= window,
            "{ahead} children made ahead of the consumer, window {window}"
        );
        most_ahead = most_ahead.max(ahead);
    }
    assert_eq!(taken, 3 * CHILDREN);
    assert_eq!(made.load(SeqCst), 3 * CHILDREN, "each child made once");
    assert!(
        most_ahead > 0,
        "the children were made ahead of the consumer"
    );
    // two segments: the parents (their iterators), then the children
    assert!(
        p.held_peak() <= 2 * window,
        "held_peak {} > {}",
        p.held_peak(),
        2 * window
    );
    assert_eq!(p.report().unwrap().items, (3 * CHILDREN) as u64);
}

#[test]
fn stages_around_a_flat_map_keep_its_children_within_the_window() {
    const CHILDREN: usize = 20_000;
    let window = 12;
    for ordered in [true, false] {
        let made = produced();
        let mut p = Pipeline::from_sampler(5, Sampler::shuffled(3))
            .map(Stage::blocking("read", 2), |i: usize| i)
            .flat_map(Stage::cpu("split"), {
                let made = Arc::clone(&made);
                move |i: usize| children(&made, i, CHILDREN)
            })
            .map(Stage::cpu("touch"), |(i, j): (usize, usize)| (i, j + 1))
            .window(window)
            .ordered(ordered)
            .workers(2)
            .build()
            .unwrap();
        let mut seen = vec![0u8; 5 * CHILDREN];
        let mut got = Vec::new();
        let mut taken = 0usize;
        for r in p.epoch(1) {
            let (i, j) = r.unwrap();
            seen[i * CHILDREN + j - 1] += 1;
            if j == 1 {
                got.push(i);
            }
            taken += 1;
            let ahead = made.load(SeqCst) - taken;
            assert!(
                ahead <= window,
                "{ahead} made ahead, window {window}, ordered {ordered}"
            );
        }
        assert!(
            seen.iter().all(|&n| n == 1),
            "every child once, ordered {ordered}"
        );
        if ordered {
            assert_eq!(
                got,
                Sampler::shuffled(3).indices(5, 1),
                "parents in source order"
            );
        }
        assert!(
            p.held_peak() <= 2 * window,
            "{} > {}",
            p.held_peak(),
            2 * window
        );
    }
}

#[test]
fn a_child_iterator_that_panics_is_an_error_at_its_position_after_the_children_before_it() {
    let mut p = Pipeline::from_sampler(4, Sampler::sequential())
        .flat_map(Stage::cpu("split"), |i: usize| {
            (0..10usize).map(move |j| {
                assert!(!(i == 2 && j == 6), "child {j} of {i} broke");
                (i, j)
            })
        })
        .window(4)
        .workers(2)
        .build()
        .unwrap();
    let got: Vec<Result<(usize, usize), PipelineError>> = p.epoch(0).collect();
    let want: Vec<(usize, usize)> = (0..4)
        .flat_map(|i| (0..if i == 2 { 6 } else { 10 }).map(move |j| (i, j)))
        .collect();
    assert_eq!(got.len(), want.len() + 1);
    let ok: Vec<(usize, usize)> = got
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    assert_eq!(ok, want);
    let e = got[26].as_ref().unwrap_err();
    assert_eq!((e.stage(), e.position()), (Some("split"), Some(2)), "{e}");
    assert!(e.to_string().contains("child 6 of 2 broke"), "{e}");
    // skipped, it is counted and the rest goes on
    let mut p = Pipeline::from_sampler(4, Sampler::sequential())
        .flat_map(Stage::cpu("split"), |i: usize| {
            (0..10usize).map(move |j| {
                assert!(!(i == 2 && j == 6), "child {j} of {i} broke");
                (i, j)
            })
        })
        .on_failure(OnFailure::Skip)
        .window(4)
        .workers(2)
        .build()
        .unwrap();
    let got: Vec<(usize, usize)> = p.epoch(0).map(|r| r.unwrap()).collect();
    assert_eq!(got, want);
    assert_eq!(p.report().unwrap().failures, 1);
}

#[test]
fn state_and_restore_are_exact_inside_a_large_flat_map() {
    const CHILDREN: usize = 3_000;
    let build = |made: &Arc<AtomicUsize>| {
        Pipeline::from_sampler(4, Sampler::shuffled(5))
            .flat_map(Stage::cpu("split"), {
                let made = Arc::clone(made);
                move |i: usize| children(&made, i, CHILDREN)
            })
            .batch(7, Remainder::Partial)
            .window(64)
            .workers(2)
            .build()
            .unwrap()
    };
    let made = produced();
    let all: Vec<Vec<(usize, usize)>> = build(&made).epoch(2).map(|r| r.unwrap()).collect();
    assert_eq!(all.len(), (4 * CHILDREN).div_ceil(7));
    for cut in [1, 300, 428, 429, 1000, all.len() - 1] {
        let made = produced();
        let mut first = build(&made);
        let (head, state) = {
            let mut it = first.epoch(2);
            let head: Vec<_> = it.by_ref().take(cut).map(|r| r.unwrap()).collect();
            (head, it.state())
        };
        let json = serde_json::to_string(&state).unwrap();
        let mut second = build(&made);
        second
            .restore(&serde_json::from_str(&json).unwrap())
            .unwrap();
        let tail: Vec<_> = second.epoch(2).map(|r| r.unwrap()).collect();
        let mut joined = head;
        joined.extend(tail);
        assert_eq!(joined, all, "cut after {cut} batches");
    }
}
