//! The old names (issue 28: one vocabulary) still work, as deprecated aliases of the new.
#![allow(deprecated)]

use loader::{
    from_fn, Builder, Epoch, Loader, LoaderBuilder, LoaderEpoch, LoaderError, OnError, OnFailure,
    Pipeline, PipelineEpoch, Sampler, Stage,
};

fn ds() -> impl loader::Dataset<Sample = usize> {
    from_fn(10, |i| {
        if i == 3 {
            Err("bad".to_string())
        } else {
            Ok(i)
        }
    })
}

#[test]
fn on_error_is_on_failure_under_its_old_name() {
    for (old, new) in [
        (OnError::Yield, OnFailure::Yield),
        (OnError::Skip, OnFailure::Skip),
    ] {
        assert_eq!(OnFailure::from(old), new);
        let run = |b: Builder<_>| -> Vec<Result<Vec<usize>, LoaderError>> {
            let mut l = b.batch_size(2).workers(2).build().unwrap();
            let v: Epoch<'_, _, _> = l.epoch(0);
            v.map(|r| r.map(|b| b.data)).collect()
        };
        let a = run(Loader::builder(ds()).on_error(old));
        let b = run(Loader::builder(ds()).on_failure(new));
        assert_eq!(a, b);
    }
    // Skip leaves sample 3 out; Yield makes batch 1 an error.
    let skip: Vec<_> = {
        let mut l = Loader::builder(ds())
            .batch_size(2)
            .on_failure(OnFailure::Skip)
            .build()
            .unwrap();
        l.epoch(0).map(|r| r.unwrap().data).collect()
    };
    assert_eq!(skip[1], vec![2]);
}

#[test]
fn halt_is_refused_by_the_loader_with_a_typed_error() {
    let e = Loader::builder(ds())
        .on_failure(OnFailure::Halt(loader::MaxFailures::Count(1)))
        .build()
        .unwrap_err();
    assert!(
        matches!(e, LoaderError::Config(ref m) if m.starts_with("on_failure: halt")),
        "{e}"
    );
}

#[test]
fn the_iterators_and_builders_have_one_name_each() {
    let b: LoaderBuilder<_> = Loader::builder(ds());
    let mut l: Loader<_> = b.build().unwrap();
    let it: LoaderEpoch<'_, _, _> = l.epoch(0);
    assert_eq!(it.count(), 10);
    let mut p = Pipeline::from_sampler(5, Sampler::sequential())
        .map(Stage::cpu("get"), |i: usize| i)
        .workers(1)
        .build()
        .unwrap();
    let it: PipelineEpoch<'_, usize> = p.epoch(0);
    let old: loader::pipeline::Items<'_, usize> = it;
    assert_eq!(
        old.map(Result::unwrap).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
}
