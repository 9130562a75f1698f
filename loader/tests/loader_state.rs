//! `LoaderState` is the pipeline's state in the loader's terms: positions are samples at
//! sample granularity and batches at batch granularity. A state whose consumed positions are
//! scattered (an as-ready loader at sample granularity) resumes on a batch-granularity loader
//! with every remaining sample exactly once, in batches cut from what is left. Counts only.

use std::collections::BTreeMap;

use loader::{Granularity, Loader, LoaderState, Remainder, Sampler};

fn build(gran: Granularity, ordered: bool) -> Loader<impl loader::Dataset<Sample = usize>> {
    Loader::builder(loader::from_fn(103, Ok::<_, String>))
        .batch_size(8)
        .remainder(Remainder::Pad)
        .shuffle(5)
        .workers(3)
        .granularity(gran)
        .ordered(ordered)
        .build()
        .unwrap()
}

fn counts(v: &[usize]) -> BTreeMap<usize, usize> {
    let mut m = BTreeMap::new();
    for &i in v {
        *m.entry(i).or_insert(0) += 1;
    }
    m
}

#[test]
fn a_state_with_part_of_a_batch_consumed_resumes_at_batch_granularity_exactly() {
    let order = Sampler::shuffled(5).indices(103, 1);
    // 104 positions (padded to a multiple of 8)
    let want: Vec<usize> = (0..104).map(|p| order[p % order.len()]).collect();
    // two batches handed out as ready: 16 positions, 3 of them a prefix
    let consumed = vec![5, 9, 10, 17, 22, 30, 40, 41, 50, 63, 77, 90, 103];
    let head: Vec<usize> = (0..3).chain(consumed.iter().copied()).collect();
    let state = LoaderState {
        epoch: 1,
        batches_done: 2,
        positions_done: 3,
        consumed,
        ..build(Granularity::Sample, false).state()
    };
    for ordered in [true, false] {
        let mut l = build(Granularity::Batch, ordered);
        l.restore(&state).unwrap();
        assert_eq!(l.state(), state, "the state reads back as restored");
        // and part-way, it lists the restored positions and the batches handed out since
        {
            let mut it = l.epoch(1);
            let first = it.next().unwrap().unwrap();
            let mid = it.state();
            assert_eq!(mid.batches_done, 3);
            assert_eq!(mid.positions_done + mid.consumed.len(), 24);
            drop(it);
            let mut again = build(Granularity::Sample, ordered);
            again.restore(&mid).unwrap();
            let mut rest: Vec<usize> = head.iter().map(|&p| want[p]).collect();
            rest.extend(first.indices);
            rest.extend(again.epoch(1).flat_map(|b| b.unwrap().indices));
            assert_eq!(counts(&rest), counts(&want), "ordered {ordered}, part-way");
        }
        l.restore(&state).unwrap();
        let mut got: Vec<usize> = head.iter().map(|&p| want[p]).collect();
        let numbers: Vec<usize> = l
            .epoch(1)
            .map(|b| {
                let b = b.unwrap();
                got.extend(b.indices);
                b.number
            })
            .collect();
        assert_eq!(counts(&got), counts(&want), "ordered {ordered}");
        // the 88 positions left are 11 batches, numbered on from the 2 handed out
        assert_eq!(numbers, (2..13).collect::<Vec<_>>(), "ordered {ordered}");
        assert_eq!(l.state().epoch, 2);
    }
}

#[test]
fn a_batch_granularity_state_lists_whole_batches_as_sample_positions() {
    let mut l = build(Granularity::Batch, true);
    let mut it = l.epoch(0);
    for _ in 0..3 {
        it.next().unwrap().unwrap();
    }
    let s = it.state();
    assert_eq!((s.epoch, s.batches_done, s.positions_done), (0, 3, 24));
    assert!(s.consumed.is_empty());
    drop(it);
    assert_eq!(l.state(), s);
    // the same state resumes at sample granularity
    let mut other = build(Granularity::Sample, true);
    other.restore(&s).unwrap();
    let rest: Vec<usize> = other.epoch(0).map(|b| b.unwrap().number).collect();
    assert_eq!(rest, (3..13).collect::<Vec<_>>());
}

#[test]
fn an_epoch_whose_sampler_panics_leaves_the_loader_at_that_epoch() {
    // The user's sampler panics for epoch 1: the panic reaches the caller of `epoch(1)` (the
    // prefetch of epoch 1 behind epoch 0 fails quietly), and the loader stays at epoch 1 with
    // nothing consumed: it did not advance past an epoch that never ran.
    let mut l = Loader::builder(loader::from_fn(20, Ok::<_, String>))
        .batch_size(4)
        .sampler(Sampler::from_fn(|epoch, len| {
            assert!(epoch != 1, "no order for epoch 1");
            (0..len).collect()
        }))
        .workers(2)
        .build()
        .unwrap();
    assert_eq!(l.epoch(0).map(|b| b.unwrap().data.len()).sum::<usize>(), 20);
    assert_eq!(l.state().epoch, 1);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| l.epoch(1).count()));
    assert!(r.is_err());
    let state = l.state();
    assert_eq!((state.epoch, state.batches_done), (1, 0));
    assert_eq!(l.epoch(2).count(), 5);
}

/// A state whose batch count disagrees with its consumed positions was not written by a
/// loader: resuming it would have ended the epoch early (samples lost) or late. Refused,
/// naming the field; the loader is unchanged and a true state still resumes.
#[test]
fn a_state_whose_batches_and_positions_disagree_is_refused() {
    let mut l = build(Granularity::Sample, true);
    let good = {
        let mut it = l.epoch(0);
        it.next().unwrap().unwrap();
        it.next().unwrap().unwrap();
        it.state()
    };
    assert_eq!((good.batches_done, good.positions_done), (2, 16));
    for forged in [
        LoaderState {
            batches_done: 12,
            ..good.clone()
        },
        LoaderState {
            positions_done: 8,
            ..good.clone()
        },
        LoaderState {
            consumed: vec![40, 41],
            ..good.clone()
        },
    ] {
        let mut fresh = build(Granularity::Sample, true);
        let err = fresh.restore(&forged).unwrap_err().to_string();
        assert!(
            err.starts_with("cannot resume: field batches_done: "),
            "{err}"
        );
        assert_eq!(fresh.state().positions_done, 0, "nothing restored");
    }
    let mut fresh = build(Granularity::Sample, true);
    fresh.restore(&good).unwrap();
    let rest: usize = fresh.epoch(0).map(|b| b.unwrap().indices.len()).sum();
    assert_eq!(rest, 104 - 16);
}
