//! Parsing strategy specs: canonical forms round-trip; bad input is named, never a panic.

use scheduler::{run_threads, RunError, RunSpec, Tasks};

#[test]
fn every_registered_default_spec_round_trips() {
    for entry in strategies::registry() {
        let spec = entry.default_spec();
        let s = strategies::parse(&spec).unwrap();
        assert_eq!(s.spec(), spec, "canonical form of {}", entry.name);
        assert_eq!(strategies::parse(&s.spec()).unwrap().spec(), s.spec());
        assert_eq!(strategies::parse(entry.name).unwrap().spec(), spec);
    }
}

#[test]
fn bad_specs_are_rejected_with_the_problem_named() {
    let cases = [
        ("fastest", "unknown strategy 'fastest'"),
        ("round-robin(x=1)", "unknown parameter 'x'"),
        ("central(chunk=0)", "chunk must be a whole number >= 1"),
        ("central(chunk=-2)", "chunk must be a whole number >= 1"),
        ("central(chunk=two)", "got 'two'"),
        ("central(size=2)", "allowed: chunk"),
        ("central(chunk=1", "missing ')'"),
        ("guided(min=0)", "min must be"),
        (
            "work-stealing(victim=nearest)",
            "victim must be one of random, numa",
        ),
        ("work-stealing(steal=all)", "steal must be one of half, one"),
        (
            "weighted-rr(weights=1,-1)",
            "weights must be finite and >= 0, got -1",
        ),
        (
            "weighted-rr(weights=0,0)",
            "at least one weight must be > 0",
        ),
        ("weighted-rr(weights=1,x)", "got 'x'"),
        ("spt(order=asc)", "takes no parameters"),
        ("", "a name is required"),
    ];
    for (spec, expected) in cases {
        match strategies::parse(spec) {
            Ok(s) => panic!("{spec:?} was accepted as {}", s.spec()),
            Err(e) => assert!(
                e.to_string().contains(expected),
                "{spec:?}: got {e:?}, expected it to mention {expected:?}"
            ),
        }
    }
}

#[test]
fn weights_of_the_wrong_length_are_rejected_before_running() {
    let s = strategies::parse("weighted-rr(weights=1,1,2)").unwrap();
    let err = run_threads(&RunSpec::new(2), s.as_ref(), &Tasks::closed(5), |_, _| {
        panic!("nothing may run")
    })
    .unwrap_err();
    assert!(matches!(err, RunError::Invalid(_)));
    assert!(
        err.to_string().contains("3 weights given for 2 workers"),
        "{err}"
    );
}
