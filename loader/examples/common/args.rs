//! Command-line and measuring helpers shared by the benchmark examples.

use std::sync::Arc;

use rand::SeedableRng;
use workloads::Distribution;

/// Print `PROGRAM: msg` and exit with status 2 (bad input).
pub fn usage(msg: &str) -> ! {
    let program = std::env::args()
        .next()
        .and_then(|p| {
            std::path::Path::new(&p)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "example".to_string());
    eprintln!("{program}: {msg}");
    std::process::exit(2);
}

/// The value after flag `name`, if the flag is given.
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == name)?;
    match args.get(i + 1) {
        Some(v) => Some(v.clone()),
        None => usage(&format!("{name}: needs a value")),
    }
}

/// Flag `name` as a whole number ≥ 1, or `default`.
pub fn num(name: &str, default: usize) -> usize {
    match arg(name) {
        None => default,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => usage(&format!(
                "{name}: '{v}' is not allowed; allowed: a whole number >= 1"
            )),
        },
    }
}

/// `n` costs (ns) drawn from distribution `spec` with `seed`.
pub fn draw(spec: &str, n: usize, seed: u64) -> Arc<Vec<u64>> {
    let d = Distribution::parse(spec).expect("a valid distribution");
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    Arc::new((0..n).map(|_| d.sample(&mut rng)).collect())
}

/// CPU time of the calling thread, in ns.
pub fn thread_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// Burn `ns` of the calling thread's CPU time (a preempted spin is not cut short).
pub fn spin_cpu(ns: u64) {
    let start = thread_cpu_ns();
    while thread_cpu_ns() - start < ns {
        std::hint::spin_loop();
    }
}

/// CPU time of the whole process (user + system), in ns.
#[allow(dead_code)] // not every example that includes this module measures the process
pub fn process_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// Clock `id` in ns.
fn clock_ns(id: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant of the platform.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    assert_eq!(rc, 0, "clock {id} is supported");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
