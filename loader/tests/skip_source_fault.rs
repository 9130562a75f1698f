//! A failed source item under `OnFailure::Skip` is skipped (and counted) whether or not the
//! pipeline has a stage.

use loader::source::{Source, SourceError, SourceFingerprint, SourceState};
use loader::{OnFailure, Pipeline, Stage};

/// `0..n`, position `bad` a failure (the source goes on after it).
struct Faulty {
    n: u64,
    bad: u64,
    pos: u64,
    epoch: u64,
}

impl Source for Faulty {
    type Item = u64;
    fn fingerprint(&self) -> SourceFingerprint {
        SourceFingerprint::new("faulty", &[("n", self.n.to_string())])
    }
    fn start(&mut self, epoch: u64) -> Result<(), SourceError> {
        self.epoch = epoch;
        self.pos = 0;
        Ok(())
    }
    fn next(&mut self) -> Option<Result<u64, SourceError>> {
        let p = self.pos;
        if p >= self.n {
            return None;
        }
        self.pos += 1;
        Some(if p == self.bad {
            Err(SourceError::Other(format!("bad item {p}")))
        } else {
            Ok(p)
        })
    }
    fn state(&self) -> SourceState {
        SourceState::new("faulty", vec![self.epoch, self.pos])
    }
    fn restore(&mut self, state: &SourceState) -> Result<(), SourceError> {
        let w = state.expect("faulty", 2)?;
        self.epoch = w[0];
        self.pos = w[1];
        Ok(())
    }
}

fn faulty() -> Faulty {
    Faulty {
        n: 6,
        bad: 2,
        pos: 0,
        epoch: 0,
    }
}

/// The epoch of a pipeline over [`faulty`], with or without a stage, under `policy`.
fn run(stage: bool, policy: OnFailure) -> Vec<Result<u64, loader::PipelineError>> {
    let b = Pipeline::from_stateful(faulty());
    let mut p = if stage {
        b.map(Stage::cpu("same"), |x: u64| x)
            .on_failure(policy)
            .build()
    } else {
        b.on_failure(policy).build()
    }
    .unwrap();
    let got = p.epoch(0).collect();
    got
}

#[test]
fn a_failed_source_item_is_skipped_with_or_without_a_stage() {
    for stage in [false, true] {
        let got = run(stage, OnFailure::Skip);
        assert!(got.iter().all(|r| r.is_ok()), "stage {stage}: {got:?}");
        let got: Vec<u64> = got.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(got, [0, 1, 3, 4, 5], "stage {stage}");
    }
}

#[test]
fn a_failed_source_item_is_an_error_at_its_position_under_yield() {
    for stage in [false, true] {
        let got = run(stage, OnFailure::Yield);
        assert_eq!(got.len(), 6);
        assert!(got[2].is_err() && got.iter().filter(|r| r.is_err()).count() == 1);
    }
}
