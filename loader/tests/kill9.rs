//! Resume survives `kill -9` (issue 30): the child of `examples/stream_kill.rs` checkpoints
//! every few batches; it is SIGKILLed at 5 seeded points and restarted with other worker and
//! thread counts; its output must equal the uninterrupted run's byte for byte.

#[path = "../examples/stream_kill.rs"]
#[allow(dead_code)]
mod stream_kill;

use std::process::Command;

const CHILD: &str = "SCHEDLAB_STREAM_KILL_CHILD";

/// The child process's entry point: this test binary runs itself with `--exact child_entry`
/// and the child's arguments in `SCHEDLAB_STREAM_KILL_CHILD`; without it, nothing to do.
#[test]
fn child_entry() {
    if let Ok(args) = std::env::var(CHILD) {
        let args: Vec<String> = serde_json::from_str(&args).unwrap();
        stream_kill::child_main(&args).unwrap();
    }
}

#[test]
fn a_pipeline_killed_9_at_random_points_and_restarted_writes_the_uninterrupted_output() {
    let exe = std::env::current_exe().unwrap();
    let spawn = |args: &[String]| {
        let mut c = Command::new(&exe);
        c.args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
            .env(CHILD, serde_json::to_string(args).unwrap())
            .stdout(std::process::Stdio::null());
        c
    };
    let cfg = stream_kill::Config {
        dir: std::env::temp_dir().join(format!("schedlab-kill9-{}", std::process::id())),
        items: 3_000,
        shards: 7,
        kills: 5,
        seed: 11,
        epochs: 2,
        buffer: 200,
        every: 5,
        throttle_us: 1_000,
    };
    let o = stream_kill::parent(&cfg, &spawn).unwrap();
    assert_eq!(o.items, 6_000);
    assert_eq!((o.lost, o.duplicated), (0, 0), "{o:?}");
    assert!(o.identical, "{o:?}");
    assert!(o.kills >= 3, "the kills should land mid-run: {o:?}");
    let _ = std::fs::remove_dir_all(&cfg.dir);
}
