//! One window rule (issue 28): the engine's default windows and queues are the ones the
//! simulated pipeline computes for the same stages, from the one function in
//! `scheduler::window`.

use std::sync::Arc;

use loader::{Pipeline, Remainder, Sampler, Stage};
use scheduler::{SimPipeline, SimStage, SimStageKind};

/// A stage: cpu or blocking, its concurrency, its queue if given.
type StageSpec = (bool, usize, Option<usize>);

fn sim(stages: &[StageSpec], batch: usize, workers: usize) -> SimPipeline {
    let mut p = SimPipeline::new(
        stages
            .iter()
            .enumerate()
            .map(|(k, &(cpu, c, queue))| SimStage {
                name: format!("s{k}"),
                kind: if cpu {
                    SimStageKind::Cpu {
                        concurrency: Some(c),
                        strategy: Arc::from(strategies::parse("central").unwrap()),
                    }
                } else {
                    SimStageKind::Blocking { threads: c }
                },
                queue,
                cost_ns: Arc::from(vec![1_000u64]),
            })
            .collect(),
        workers,
        10,
    );
    p.batch = batch;
    p
}

#[test]
fn the_engine_and_the_simulator_size_windows_by_one_rule() {
    let cases: &[(&[StageSpec], usize)] = &[
        (&[(false, 32, None), (true, 2, None)], 1),
        (&[(false, 32, None), (true, 2, None)], 32),
        (&[(true, 2, Some(1))], 64),
        (
            &[(false, 3, Some(7)), (true, 5, None), (true, 1, Some(100))],
            4,
        ),
        (&[(true, 1 << 20, Some(usize::MAX))], 8),
    ];
    for &(stages, batch) in cases {
        let workers = 2;
        let mut b = Pipeline::from_sampler(10, Sampler::sequential()).workers(workers);
        for (k, &(cpu, c, q)) in stages.iter().enumerate() {
            let name = format!("s{k}");
            let mut st = if cpu {
                Stage::cpu(&name).concurrency(c)
            } else {
                Stage::blocking(&name, c)
            };
            if let Some(q) = q {
                st = st.queue(q);
            }
            b = b.map(st, |i: usize| i);
        }
        let mut p = b.batch(batch, Remainder::Partial).build().unwrap();
        let s = sim(stages, batch, workers);
        assert_eq!(p.windows()[0], s.window(), "{stages:?} batch {batch}");
        assert_eq!(p.epoch(0).map(|r| r.unwrap().len()).sum::<usize>(), 10);
        let report = p.report().unwrap();
        for k in 0..stages.len() {
            assert_eq!(report.stages[k].queue, s.queue(k), "{stages:?} stage {k}");
            assert_eq!(report.stages[k].concurrency, s.concurrency(k));
        }
    }
}
