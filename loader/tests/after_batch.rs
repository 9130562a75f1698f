//! Stages after a `batch` (from a Python fuzz run): a `flat_map` or a `filter` whose input is
//! a batch, and a second `batch` after a first. Each item exactly once, in order; counts and
//! orders only, no assertion on wall-clock time.

use loader::{OnFailure, Pipeline, Remainder, Sampler, Stage};

#[test]
fn a_flat_map_after_a_batch_hands_on_every_item_once_in_order() {
    for (ordered, kind) in [(true, 0), (false, 0), (true, 1), (false, 1)] {
        let stage = if kind == 0 {
            Stage::cpu("unbatch")
        } else {
            Stage::blocking("unbatch", 2)
        };
        let mut p = Pipeline::from_sampler(10, Sampler::sequential())
            .batch(3, Remainder::Partial)
            .flat_map(stage, |b: Vec<usize>| b)
            .map(Stage::cpu("double"), |i: usize| 2 * i)
            .ordered(ordered)
            .workers(2)
            .build()
            .unwrap();
        for epoch in 0..2 {
            let mut got: Vec<usize> = p.epoch(epoch).map(|r| r.unwrap()).collect();
            if !ordered {
                got.sort_unstable();
            }
            assert_eq!(
                got,
                (0..10).map(|i| 2 * i).collect::<Vec<_>>(),
                "ordered {ordered}"
            );
        }
        let r = p.report().unwrap();
        assert_eq!(r.items, 10);
    }
}

#[test]
fn a_filter_after_a_batch_keeps_the_batches_it_keeps() {
    let mut p = Pipeline::from_sampler(10, Sampler::sequential())
        .batch(2, Remainder::Partial)
        .filter(Stage::cpu("keep"), |b: &Vec<usize>| b[0] % 4 == 0)
        .workers(2)
        .build()
        .unwrap();
    let got: Vec<Vec<usize>> = p.epoch(0).map(|r| r.unwrap()).collect();
    assert_eq!(got, vec![vec![0, 1], vec![4, 5], vec![8, 9]]);
    // and a state after the epoch says it is done
    assert_eq!(p.state().epoch, 1);
}

#[test]
fn a_failing_flat_map_after_a_batch_is_one_error_at_the_batchs_position() {
    let mut p = Pipeline::from_sampler(9, Sampler::sequential())
        .batch(3, Remainder::Partial)
        .try_map(Stage::cpu("check"), |b: Vec<usize>| {
            if b.contains(&4) {
                Err("bad batch")
            } else {
                Ok(b)
            }
        })
        .flat_map(Stage::cpu("unbatch"), |b: Vec<usize>| b)
        .workers(2)
        .build()
        .unwrap();
    let got: Vec<Result<usize, u64>> = p
        .epoch(0)
        .map(|r| r.map_err(|e| e.position().unwrap()))
        .collect();
    assert_eq!(got, vec![Ok(0), Ok(1), Ok(2), Err(3), Ok(6), Ok(7), Ok(8)]);
    let mut p = Pipeline::from_sampler(9, Sampler::sequential())
        .batch(3, Remainder::Partial)
        .flat_map(Stage::cpu("unbatch"), |b: Vec<usize>| b)
        .filter(Stage::cpu("odd"), |i: &usize| i % 2 == 1)
        .on_failure(OnFailure::Skip)
        .workers(2)
        .build()
        .unwrap();
    let got: Vec<usize> = p.epoch(0).map(|r| r.unwrap()).collect();
    assert_eq!(got, vec![1, 3, 5, 7]);
}

#[test]
fn a_batch_after_a_batch_groups_whole_batches() {
    for ordered in [true, false] {
        let mut p = Pipeline::from_sampler(12, Sampler::sequential())
            .batch(3, Remainder::Partial)
            .batch(2, Remainder::Partial)
            .ordered(ordered)
            .workers(1)
            .build()
            .unwrap();
        let mut got: Vec<Vec<Vec<usize>>> = p.epoch(0).map(|r| r.unwrap()).collect();
        got.sort();
        let want = |a: usize| vec![(a..a + 3).collect::<Vec<_>>(), (a + 3..a + 6).collect()];
        if ordered {
            assert_eq!(got, vec![want(0), want(6)]);
        } else {
            assert_eq!(got.len(), 2, "{got:?}");
            assert!(got.iter().all(|b| b.len() == 2), "{got:?}");
        }
        let mut p = Pipeline::from_sampler(14, Sampler::sequential())
            .batch(3, Remainder::Partial)
            .map(Stage::cpu("sum"), |b: Vec<usize>| b.iter().sum::<usize>())
            .batch(2, Remainder::Drop)
            .ordered(ordered)
            .workers(2)
            .build()
            .unwrap();
        let mut got: Vec<Vec<usize>> = p.epoch(0).map(|r| r.unwrap()).collect();
        got.sort();
        // batches [0,1,2]=3 [3,4,5]=12 [6,7,8]=21 [9,10,11]=30 [12,13]=25; pairs, the odd one dropped
        if ordered {
            assert_eq!(got, vec![vec![3, 12], vec![21, 30]]);
        } else {
            assert_eq!(got.len(), 2);
            assert!(got.iter().all(|b| b.len() == 2));
        }
        let r = p.report().unwrap();
        assert_eq!(r.items, 2);
    }
}

#[test]
fn a_state_taken_inside_a_flat_map_after_a_batch_resumes_exactly() {
    let build = || {
        Pipeline::from_sampler(20, Sampler::shuffled(5))
            .batch(4, Remainder::Partial)
            .flat_map(Stage::cpu("unbatch"), |b: Vec<usize>| b)
            .workers(2)
            .window(4)
            .build()
            .unwrap()
    };
    let mut all = Vec::new();
    let state = {
        let mut p = build();
        let mut it = p.epoch(0);
        for _ in 0..6 {
            all.push(it.next().unwrap().unwrap());
        }
        let s = it.state();
        drop(it);
        s
    };
    let mut q = build();
    q.restore(&state).unwrap();
    all.extend(q.epoch(0).map(|r| r.unwrap()));
    let mut want = {
        let mut p = build();
        p.epoch(0).map(|r| r.unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(all, want, "the same order as an uninterrupted run");
    want.sort_unstable();
    assert_eq!(want, (0..20).collect::<Vec<_>>());
}
