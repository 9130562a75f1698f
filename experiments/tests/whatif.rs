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
