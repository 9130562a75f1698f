//! Traces written by the test are read back exactly, and malformed ones name the file and line.

mod common;

use common::TempDir;
use workloads::{Arrivals, Distribution, SpecError, Workload};

fn spec(path: &std::path::Path) -> String {
    format!("trace(file={})", path.display())
}

#[test]
fn csv_with_durations_round_trips() {
    let dir = TempDir::new("csv");
    let costs = [120_000u64, 5_000, 2_000_000, 0, 7];
    let mut text = String::from("id,cost\n");
    for (i, c) in costs.iter().enumerate() {
        text.push_str(&format!("{i},{}\n", workloads::format_duration(*c)));
    }
    let path = dir.file("costs.csv", &text);
    let d = Distribution::parse(&spec(&path)).unwrap();
    let t = d.trace().unwrap();
    assert_eq!(t.cost_ns(), &costs);
    assert!(t.arrival_ns().is_none());
    let tasks = Workload::new(d.clone()).generate(costs.len(), 9).unwrap();
    assert_eq!(tasks.cost_ns, costs);
    assert_eq!(tasks.arrival_ns, vec![0; costs.len()]);
    // a prefix is allowed, more than the rows is an error naming the file and its row count
    assert_eq!(
        Workload::new(d.clone()).generate(2, 0).unwrap().cost_ns,
        &costs[..2]
    );
    let err = Workload::new(d.clone()).generate(6, 0).unwrap_err();
    assert!(matches!(
        err,
        SpecError::TraceTooShort {
            rows: 5,
            requested: 6,
            ..
        }
    ));
    assert!(
        err.to_string().contains("costs.csv has 5 rows but 6 tasks"),
        "{err}"
    );
    // empirical mean, display round trip
    assert!((d.mean_ns() - costs.iter().sum::<u64>() as f64 / 5.0).abs() < 1e-6);
    assert_eq!(Distribution::parse(&d.to_string()).unwrap(), d);
}

#[test]
fn csv_with_ns_columns_and_arrivals_round_trips() {
    let dir = TempDir::new("csv-ns");
    let path = dir.file(
        "with arrivals.csv",
        "# a comment\ncost_ns, arrival_ns\n100,0\n\n200,50\n300,50\n",
    );
    let d = Distribution::parse(&format!("trace(file=\"{}\")", path.display())).unwrap();
    let w = Workload {
        distribution: d.clone(),
        estimate_error: 0.0,
        arrivals: Arrivals::Trace,
    };
    let tasks = w.generate(3, 0).unwrap();
    assert_eq!(tasks.cost_ns, vec![100, 200, 300]);
    assert_eq!(tasks.arrival_ns, vec![0, 50, 50]);
    // the path has a space, so the canonical spec quotes it
    assert!(d.to_string().contains('"'));
    assert_eq!(Distribution::parse(&d.to_string()).unwrap(), d);
}

#[test]
fn json_numbers_and_objects_round_trip() {
    let dir = TempDir::new("json");
    let path = dir.file("costs.json", "[100, 2000, 30000.4]");
    let d = Distribution::parse(&spec(&path)).unwrap();
    assert_eq!(d.trace().unwrap().cost_ns(), &[100, 2000, 30000]);

    let path = dir.file(
        "tasks.json",
        r#"[{"cost_ns": 10, "arrival_ns": 0}, {"cost_ns": 20, "arrival_ns": 5}, {"cost": "3us", "arrival": "1us"}]"#,
    );
    let d = Distribution::parse(&spec(&path)).unwrap();
    let w = Workload {
        distribution: d,
        estimate_error: 0.0,
        arrivals: Arrivals::Trace,
    };
    let tasks = w.generate(3, 1).unwrap();
    assert_eq!(tasks.cost_ns, vec![10, 20, 3000]);
    assert_eq!(tasks.arrival_ns, vec![0, 5, 1000]);
}

#[test]
fn malformed_traces_name_the_file_and_line() {
    let dir = TempDir::new("bad");
    let cases: [(&str, &str, &str); 9] = [
        (
            "bad-cost.csv",
            "cost\n1us\n2us\n3us\n4us\n5us\n12xs\n",
            "line 7: cost '12xs' is not a duration (use ns, us, ms or s)",
        ),
        (
            "no-column.csv",
            "id,time\n1,2\n",
            "no 'cost' or 'cost_ns' column",
        ),
        ("short-row.csv", "id,cost\n1,2us\n2\n", "line 3"),
        ("bad-ns.csv", "cost_ns\n10\n-5\n", "line 3: cost_ns '-5'"),
        (
            "backwards.csv",
            "cost_ns,arrival_ns\n1,10\n1,5\n",
            "line 3: arrival 5ns is earlier",
        ),
        ("empty.csv", "cost\n", "has no rows"),
        ("broken.json", "[1, 2,", "is not valid JSON"),
        ("object.json", "{\"cost_ns\": 1}", "must be a JSON array"),
        (
            "mixed.json",
            r#"[{"cost_ns": 1, "arrival_ns": 0}, {"cost_ns": 2}]"#,
            "element 2: has no arrival",
        ),
    ];
    for (name, contents, expected) in cases {
        let path = dir.file(name, contents);
        let err = Distribution::parse(&spec(&path)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("trace: "), "{msg}");
        assert!(msg.contains(name), "{name}: {msg}");
        assert!(msg.contains(expected), "{name}: {msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
    let missing = dir.0.join("missing.csv");
    let msg = Distribution::parse(&spec(&missing))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("missing.csv") && msg.contains("cannot read"),
        "{msg}"
    );
}

#[test]
fn trace_arrivals_need_a_trace_with_arrivals() {
    let dir = TempDir::new("noarr");
    let path = dir.file("c.csv", "cost\n1us\n");
    let w = Workload {
        distribution: Distribution::parse(&spec(&path)).unwrap(),
        estimate_error: 0.0,
        arrivals: Arrivals::Trace,
    };
    assert!(w
        .generate(1, 0)
        .unwrap_err()
        .to_string()
        .contains("no 'arrival'"));
    let w = Workload {
        distribution: Distribution::constant(1),
        estimate_error: 0.0,
        arrivals: Arrivals::Trace,
    };
    assert!(w.generate(1, 0).is_err());
}

#[test]
fn a_trace_inside_a_mix_is_sampled() {
    let dir = TempDir::new("mixtrace");
    let path = dir.file("c.csv", "cost\n1us\n3us\n");
    let d = Distribution::parse(&format!(
        "mix(0.5:trace(file={}),0.5:constant(2us))",
        path.display()
    ))
    .unwrap();
    assert!((d.mean_ns() - 2_000.0).abs() < 1e-9);
    let tasks = Workload::new(d).generate(1000, 4).unwrap();
    assert!(tasks
        .cost_ns
        .iter()
        .all(|c| [1_000, 2_000, 3_000].contains(c)));
    assert!(tasks.cost_ns.contains(&1_000) && tasks.cost_ns.contains(&3_000));
}

/// A pipeline trace as the loader writes it: a comment, the header, rows of three stages
/// interleaved in completion order.
const PIPELINE: &str = "# schedlab pipeline trace v1
stage,kind,epoch,item,cost_ns
read,blocking,0,0,2103345
read,blocking,0,1,1987000
decode,cpu,0,0,250120
read,blocking,0,2,2500000
decode,cpu,0,1,240000
batch,cpu,0,0,1000
decode,cpu,0,2,260500.4
";

#[test]
fn a_stage_selects_its_rows_in_file_order() {
    let dir = TempDir::new("stages");
    let path = dir.file("pipe.csv", PIPELINE);
    assert_eq!(
        workloads::Trace::stages(&path).unwrap(),
        ["read", "decode", "batch"]
    );
    for (stage, costs) in [
        ("read", &[2_103_345u64, 1_987_000, 2_500_000][..]),
        ("decode", &[250_120, 240_000, 260_500]),
        ("batch", &[1_000]),
    ] {
        let d =
            Distribution::parse(&format!("trace(file={},stage={stage})", path.display())).unwrap();
        let t = d.trace().unwrap();
        assert_eq!(t.stage(), Some(stage));
        assert_eq!(t.cost_ns(), costs, "{stage}");
        // the canonical spec names the stage and parses back to the same trace
        assert!(d.to_string().ends_with(&format!(",stage={stage})")), "{d}");
        assert_eq!(Distribution::parse(&d.to_string()).unwrap(), d);
        // a workload replays the stage's rows as its tasks
        let tasks = Workload::new(d).generate(costs.len(), 0).unwrap();
        assert_eq!(tasks.cost_ns, costs);
    }
    // the stage's name is case-sensitive, its key is not; it may be quoted
    let d =
        Distribution::parse(&format!("trace(file={}, STAGE=\"decode\")", path.display())).unwrap();
    assert_eq!(d.trace().unwrap().len(), 3);
    // a file without stages has none
    let plain = dir.file("plain.csv", "cost\n1us\n");
    assert!(workloads::Trace::stages(&plain).unwrap().is_empty());
    let json = dir.file("plain.json", "[1, 2]");
    assert!(workloads::Trace::stages(&json).unwrap().is_empty());
}

#[test]
fn one_stage_needs_no_selection_and_arrivals_are_per_stage() {
    let dir = TempDir::new("onestage");
    let path = dir.file("one.csv", "stage,cost\ndecode,1us\ndecode,2us\n");
    let d = Distribution::parse(&spec(&path)).unwrap();
    assert_eq!(d.trace().unwrap().cost_ns(), &[1_000, 2_000]);
    assert_eq!(d.trace().unwrap().stage(), None);
    let d = Distribution::parse(&format!("trace(file={},stage=decode)", path.display())).unwrap();
    assert_eq!(d.trace().unwrap().stage(), Some("decode"));

    // arrivals are checked for order among the selected stage's rows only
    let path = dir.file(
        "arr.csv",
        "stage,cost_ns,arrival_ns\na,1,10\nb,2,0\na,3,20\nb,4,5\n",
    );
    let w = Workload {
        distribution: Distribution::parse(&format!("trace(file={},stage=b)", path.display()))
            .unwrap(),
        estimate_error: 0.0,
        arrivals: Arrivals::Trace,
    };
    let tasks = w.generate(2, 0).unwrap();
    assert_eq!(tasks.cost_ns, vec![2, 4]);
    assert_eq!(tasks.arrival_ns, vec![0, 5]);
}

#[test]
fn stage_errors_name_the_stages_present() {
    let dir = TempDir::new("stage-errors");
    let pipe = dir.file("pipe.csv", PIPELINE);
    let plain = dir.file("plain.csv", "cost\n1us\n");
    let json = dir.file("plain.json", "[1, 2]");
    let with =
        |p: &std::path::Path, stage: &str| format!("trace(file={},stage={stage})", p.display());
    let cases = [
        (
            spec(&pipe),
            "holds 3 stages (read, decode, batch); choose one with stage=NAME",
        ),
        (
            with(&pipe, "resize"),
            "has no stage 'resize' (its stages: read, decode, batch)",
        ),
        (
            with(&pipe, "Decode"),
            "has no stage 'Decode' (its stages: read, decode, batch)",
        ),
        (with(&plain, "decode"), "has no 'stage' column"),
        (with(&json, "decode"), "JSON trace, which has no stages"),
    ];
    for (spec, expected) in cases {
        let msg = Distribution::parse(&spec).unwrap_err().to_string();
        assert!(msg.starts_with("trace: "), "{msg}");
        assert!(msg.contains(expected), "{spec}: {msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
    // a malformed row of an unselected stage is still an error, with its line
    let bad = dir.file("bad.csv", "stage,cost\nread,1us\ndecode,2xs\n");
    let msg = Distribution::parse(&with(&bad, "read"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("bad.csv line 3: cost '2xs'"), "{msg}");
    assert!(workloads::Trace::stages(&bad).is_err());
    // an empty stage name, and a row too short to have one
    let empty = dir.file("empty-stage.csv", "stage,cost\nread,1us\n,2us\n");
    let msg = Distribution::parse(&spec(&empty)).unwrap_err().to_string();
    assert!(msg.contains("line 3: has an empty stage name"), "{msg}");
    let short = dir.file("short.csv", "cost,stage\n1us,read\n2us\n");
    let msg = Distribution::parse(&spec(&short)).unwrap_err().to_string();
    assert!(msg.contains("line 3: has 1 fields"), "{msg}");
    // many stages are listed up to a point
    let mut many = String::from("stage,cost\n");
    for i in 0..100 {
        many.push_str(&format!("s{i},1us\n"));
    }
    let many = dir.file("many.csv", &many);
    let msg = Distribution::parse(&spec(&many)).unwrap_err().to_string();
    assert!(
        msg.contains("holds 100 stages (s0, s1,") && msg.contains("and 80 more"),
        "{msg}"
    );
    // the trace parameter list names stage
    let msg = Distribution::parse(&format!("trace(file={},stag=read)", pipe.display()))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("allowed: file, stage"), "{msg}");
}
