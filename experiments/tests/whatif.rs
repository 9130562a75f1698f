//! `schedlab whatif`: predictions from a trace, the recommendation, `--json`, `--out`, and bad
//! input (exit 2, one line naming the file or flag, nothing printed or written).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn schedlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_schedlab"))
        .args(args)
        .output()
        .expect("schedlab runs")
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("schedlab-whatif-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A two-stage trace: read 2 ms (blocking), decode 250 µs (cpu), constant, `n` items, rows in
/// the interleaved completion order the loader writes.
fn trace(dir: &Path, n: usize) -> PathBuf {
    let mut s = String::from("# schedlab pipeline trace v1\nstage,kind,epoch,item,cost_ns\n");
    for i in 0..n {
        s.push_str(&format!(
            "read,blocking,0,{i},2000000\ndecode,cpu,0,{i},250000\n"
        ));
    }
    let p = dir.join("pipe.csv");
    std::fs::write(&p, s).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn predicts_each_configuration_and_recommends_the_cheapest_within_5_percent() {
    let d = dir("json");
    let t = trace(&d, 4_096);
    let out = schedlab(&[
        "whatif",
        s(&t),
        "--batch",
        "32",
        "--workers",
        "1,2,4",
        "--concurrency",
        "read=8,16",
        "--cores",
        "4",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let configs = v["configs"].as_array().unwrap();
    assert_eq!(configs.len(), 6);
    // Limits: read c / 2 ms = 500 c; decode P / 250 µs = 4,000 P.
    for c in configs {
        let p = c["workers"].as_f64().unwrap();
        let read = c["concurrency"]["read"].as_f64().unwrap();
        let limit = (read / 2e-3).min(p / 250e-6);
        assert!((c["limit_per_s"].as_f64().unwrap() / limit - 1.0).abs() < 1e-9);
        let ips = c["items_per_s"].as_f64().unwrap();
        assert!(ips <= limit * (1.0 + 1e-9) && ips > 0.9 * limit, "{c}");
        assert_eq!(c["report"]["items"], 4_096);
    }
    // read=16 on 2 workers reaches 8,000/s; 4 workers add nothing (read-bound): the
    // recommendation is P=2, read=16, the best is no more than 5% better.
    let rec = &configs[v["recommended"].as_u64().unwrap() as usize];
    assert_eq!(rec["workers"], 2);
    assert_eq!(rec["concurrency"]["read"], 16);
    let best = &configs[v["best"].as_u64().unwrap() as usize];
    assert!(rec["items_per_s"].as_f64().unwrap() >= 0.95 * best["items_per_s"].as_f64().unwrap());
    assert!(v["why"].as_str().unwrap().contains("bottleneck"));
    // Deterministic: the same command, the same bytes.
    let again = schedlab(&[
        "whatif",
        s(&t),
        "--batch",
        "32",
        "--workers",
        "1,2,4",
        "--concurrency",
        "read=8,16",
        "--cores",
        "4",
        "--json",
    ]);
    assert_eq!(out.stdout, again.stdout);
}

#[test]
fn out_writes_the_page_the_figure_and_the_json() {
    let d = dir("out");
    let t = trace(&d, 1_000);
    let o = d.join("report");
    let out = schedlab(&[
        "whatif",
        s(&t),
        "--workers",
        "1,2",
        "--concurrency",
        "read=4,8",
        "--strategy",
        "central,work-stealing",
        "--out",
        s(&o),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("recommended:") && text.contains("why:"),
        "{text}"
    );
    for f in [
        "index.html",
        "whatif.json",
        "whatif-throughput.svg",
        "whatif-throughput.png",
    ] {
        assert!(o.join(f).metadata().unwrap().len() > 0, "{f}");
    }
    let html = std::fs::read_to_string(o.join("index.html")).unwrap();
    assert!(html.contains("whatif-throughput.png") && html.contains("recommended"));
}

/// Every bad input: exit 2, one line on stderr naming the file or flag, nothing on stdout, no
/// `--out` directory.
#[test]
fn bad_input_exits_2_with_one_line() {
    let d = dir("bad");
    let t = trace(&d, 10);
    let write = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let other = write("other.csv", "cost,arrival\n1us,0ns\n");
    let v2 = write(
        "v2.csv",
        "# schedlab pipeline trace v2\nstage,kind,epoch,item,cost_ns\n",
    );
    let cut = {
        let full = std::fs::read_to_string(&t).unwrap();
        write("cut.csv", &full[..full.len() - 4])
    };
    let badrow = write(
        "badrow.csv",
        "# schedlab pipeline trace v1\nstage,kind,epoch,item,cost_ns\nread,blocking,0,0,12x\n",
    );
    let empty = write("empty.csv", "");
    // Costs that overflow the simulated clock, or no time at all.
    let costs = |name: &str, n: usize, read: &str, decode: &str| {
        let mut t = String::from("# schedlab pipeline trace v1\nstage,kind,epoch,item,cost_ns\n");
        for i in 0..n {
            t.push_str(&format!(
                "read,blocking,0,{i},{read}\ndecode,cpu,0,{i},{decode}\n"
            ));
        }
        write(name, &t)
    };
    let max = costs("max.csv", 10, "18446744073709551615", "250000");
    let e18 = costs("e18.csv", 100, "1000000000000000000", "250000");
    let e16 = costs("e16.csv", 100, "1000", "10000000000000000");
    let zero = costs("zero.csv", 10, "0", "0");
    let missing = d.join("missing.csv");
    let o = d.join("never");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![s(&missing), "--concurrency", "read=4"], "missing.csv"),
        (
            vec![s(&other), "--concurrency", "read=4"],
            "not a schedlab pipeline trace",
        ),
        (vec![s(&v2), "--concurrency", "read=4"], "version `v2`"),
        (vec![s(&cut), "--concurrency", "read=4"], "truncated"),
        (vec![s(&badrow), "--concurrency", "read=4"], "line 3"),
        (vec![s(&empty), "--concurrency", "read=4"], "empty"),
        (vec![s(&t)], "read"), // a blocking stage without its threads
        (vec![s(&t), "--concurrency", "resize=4"], "resize"),
        (vec![s(&t), "--concurrency", "read=0"], "--concurrency"),
        (vec![s(&t), "--concurrency", "read=p"], "blocking"),
        (vec![s(&t), "--concurrency", "read"], "STAGE=LIST"),
        (
            vec![s(&t), "--concurrency", "read=4", "--workers", "2,x"],
            "--workers",
        ),
        (
            vec![s(&t), "--concurrency", "read=4", "--strategy", "nope"],
            "--strategy",
        ),
        (
            vec![s(&t), "--concurrency", "read=4", "--window", "0"],
            "--window",
        ),
        (
            vec![
                s(&t),
                "--concurrency",
                "read=4",
                "--batch",
                "8",
                "--window",
                "4",
            ],
            "--window",
        ),
        (
            vec![s(&t), "--concurrency", "read=4", "--items", "11"],
            "--items",
        ),
        (
            vec![s(&t), "--concurrency", "read=4", "--batch", "0"],
            "--batch",
        ),
        (
            vec![s(&t), "--concurrency", "read=4", "--cores", "0"],
            "--cores",
        ),
        // Integrity (issue 27): values that wrapped, panicked or read as wrong numbers.
        (
            vec![
                s(&t),
                "--concurrency",
                "read=4",
                "--workers",
                "18446744073709551615",
            ],
            "--workers: 18446744073709551615 is above the limit of 4096",
        ),
        (
            vec![s(&t), "--concurrency", "read=4", "--workers", "1000000000"],
            "limit of 4096",
        ),
        (
            vec![s(&t), "--concurrency", "read=18446744073709551615"],
            "--concurrency: read: 18446744073709551615 is above the limit of 1048576",
        ),
        (
            vec![s(&t), "--concurrency", "read=4", "--concurrency", "decode=1,2000000"],
            "--concurrency: decode: 2000000 is above the limit of 1048576",
        ),
        (
            vec![s(&t), "--concurrency", "read=4", "--queue", "18446744073709551615"],
            "--queue: 18446744073709551615 (every stage's input queue) is above the limit of 1048576",
        ),
        (
            vec![s(&t), "--concurrency", "read=4", "--batch", "18446744073709551615"],
            "--batch: 18446744073709551615 is above the limit of 1048576",
        ),
        (
            vec![s(&t), "--concurrency", "read=4", "--cores", "1e-12"],
            "--cores: 0.000000000001 is not allowed; allowed: a number from 0.01 to 4096",
        ),
        (
            vec![s(&t), "--concurrency", "read=4", "--cores", "NaN"],
            "--cores",
        ),
        (
            vec![s(&t), "--concurrency", "read=4", "--cores", "inf"],
            "--cores",
        ),
        (
            vec![s(&t), "--concurrency", "read=4", "--cores", "100000"],
            "--cores",
        ),
        (
            vec![s(&max), "--concurrency", "read=4"],
            "max.csv: stage read: simulated time would pass u64::MAX ns",
        ),
        (vec![s(&e18), "--concurrency", "read=4"], "584 years"),
        (
            vec![s(&e16), "--concurrency", "read=4", "--cores", "0.01"],
            "stretched by P / cores",
        ),
        (
            vec![s(&zero), "--concurrency", "read=4"],
            "every service time is 0 ns",
        ),
        (
            vec![
                s(&t),
                "--concurrency",
                "read=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20",
                "--workers",
                "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20",
                "--window",
                "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20",
                "--queue",
                "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20",
            ],
            "160000 configurations",
        ),
    ];
    for (args, expect) in cases {
        let mut all = vec!["whatif"];
        all.extend(&args);
        all.extend(["--out", s(&o)]);
        let out = schedlab(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: partial output");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!o.exists(), "{args:?}: wrote {}", o.display());
    }
}

/// `--cores` defaults to this machine's CPUs, and the output says so: on a 2-CPU machine the
/// recommendation for a cpu-bound trace is not P = 8 (it was, with a core per worker).
#[test]
fn cores_default_to_this_machines_cpus_and_the_output_says_so() {
    let d = dir("cores");
    let mut text = String::from("# schedlab pipeline trace v1\nstage,kind,epoch,item,cost_ns\n");
    for i in 0..512 {
        text.push_str(&format!("decode,cpu,0,{i},250000\n"));
    }
    let t = d.join("cpu.csv");
    std::fs::write(&t, text).unwrap();
    let cpus = std::thread::available_parallelism().unwrap().get();
    let out = schedlab(&["whatif", s(&t), "--workers", "1,2,4,8", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["cores"].as_f64(), Some(cpus as f64), "{v}");
    assert_eq!(v["cores_from"], "this machine");
    let out = schedlab(&["whatif", s(&t), "--workers", "1,2,4,8"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!("cores: {cpus} (this machine; --cores to change)")),
        "{text}"
    );
    // On 2 cores, 4 and 8 workers share them: P = 2 is as fast and cheaper.
    let out = schedlab(&[
        "whatif",
        s(&t),
        "--workers",
        "1,2,4,8",
        "--cores",
        "2",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let configs = v["configs"].as_array().unwrap();
    assert_eq!(
        configs[v["recommended"].as_u64().unwrap() as usize]["workers"],
        2,
        "{v}"
    );
    assert_eq!(v["cores_from"], "--cores");
    let out = schedlab(&["whatif", s(&t), "--workers", "1,2", "--cores", "1.5"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("cores: 1.5 (--cores)"), "{text}");
}

/// A rate below 1 item/s is printed with its digits, not as "0 items/s".
#[test]
fn slow_rates_are_not_printed_as_zero() {
    let d = dir("slow");
    // Three items of 10^15 ns (11.6 days) each through one read thread.
    let mut text = String::from("# schedlab pipeline trace v1\nstage,kind,epoch,item,cost_ns\n");
    for i in 0..3 {
        text.push_str(&format!("read,blocking,0,{i},1000000000000000\n"));
    }
    let t = d.join("slow.csv");
    std::fs::write(&t, text).unwrap();
    let out = schedlab(&["whatif", s(&t), "--concurrency", "read=1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("1.000e-6"), "{text}");
    assert!(!text.contains("(0 items/s"), "{text}");
}

/// The help names a command that works without `just`.
#[test]
fn help_gives_the_plain_cargo_command() {
    let out = schedlab(&["whatif", "--help"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("cargo run --release -p loader --example image_pipeline -- --trace pipe.csv"),
        "{text}"
    );
    assert!(
        text.contains("cargo run --release -p experiments -- whatif"),
        "{text}"
    );
}
