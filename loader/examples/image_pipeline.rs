//! The image loader as a pipeline: read each file's bytes on blocking threads (with an optional
//! injected latency standing in for network storage), decode on the CPU workers, resize and
//! normalise on the CPU workers, batch 16 and collate to one flat `Vec<f32>`. Prints the stage
//! statistics about once a second and the report with its bottleneck at the end.
//!
//! Uses the same generated image folder as `image_loader` (written on the first run).
//!
//! ```text
//! cargo run --release -p loader --example image_pipeline [-- FOLDER] [--workers N]
//!     [--read-threads N] [--read-latency 5ms] [--images N] [--trace FILE]
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use loader::{Pipeline, Remainder, Sampler, Stage};

#[path = "common/images.rs"]
mod images;
use images::{list_images, normalise, write_images, BATCH, SIDE};

fn usage_error(message: &str) -> ! {
    eprintln!("image_pipeline: {message}");
    std::process::exit(2);
}

struct Args {
    folder: Option<PathBuf>,
    workers: usize,
    read_threads: usize,
    read_latency: Duration,
    images: usize,
    trace: Option<PathBuf>,
}

/// `5ms`, `250us`, `0`: a whole number with a unit (ns, us, ms, s).
fn duration(v: &str) -> Option<Duration> {
    if v == "0" {
        return Some(Duration::ZERO);
    }
    let at = v.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = v.split_at(at);
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "ns" => Duration::from_nanos(n),
        "us" => Duration::from_micros(n),
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        _ => return None,
    })
}

fn parse_args() -> Args {
    let mut args = Args {
        folder: None,
        workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        read_threads: 8,
        read_latency: Duration::ZERO,
        images: 300,
        trace: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> String {
            it.next()
                .unwrap_or_else(|| usage_error(&format!("{name} needs a value")))
        };
        let mut number = |name: &str| -> usize {
            match value(name).parse::<usize>() {
                Ok(v) if v > 0 => v,
                _ => usage_error(&format!("{name} needs a whole number >= 1")),
            }
        };
        match a.as_str() {
            "--workers" => args.workers = number("--workers"),
            "--read-threads" => args.read_threads = number("--read-threads"),
            "--images" => args.images = number("--images"),
            "--read-latency" => {
                let v = value("--read-latency");
                args.read_latency = duration(&v).unwrap_or_else(|| {
                    usage_error(&format!(
                        "--read-latency: '{v}' is not allowed; allowed: a whole number with a unit (ns, us, ms, s), e.g. 5ms"
                    ))
                })
            }
            "--trace" => args.trace = Some(PathBuf::from(value("--trace"))),
            flag if flag.starts_with("--") => usage_error(&format!(
                "unknown flag '{flag}'; allowed: --workers N, --read-threads N, --read-latency DUR, --images N, --trace FILE, and a folder"
            )),
            folder => args.folder = Some(PathBuf::from(folder)),
        }
    }
    args
}

fn folder(args: &Args) -> PathBuf {
    if let Some(d) = &args.folder {
        return d.clone();
    }
    let d = images::default_folder();
    if list_images(&d).map_or(0, |f| f.len()) < args.images {
        let t = Instant::now();
        if let Err(e) = write_images(&d, args.images) {
            eprintln!(
                "image_pipeline: cannot write images to {}: {e}",
                d.display()
            );
            std::process::exit(1);
        }
        println!(
            "wrote {} images to {} in {:.1} s",
            args.images,
            d.display(),
            t.elapsed().as_secs_f64()
        );
    }
    d
}

fn read(path: &Path, latency: Duration) -> Result<Vec<u8>, String> {
    if !latency.is_zero() {
        std::thread::sleep(latency); // network storage stands here
    }
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn main() {
    let args = parse_args();
    let dir = folder(&args);
    let files = list_images(&dir).unwrap_or_else(|e| usage_error(&e));
    println!(
        "{} images in {}: read ({} threads, +{:?} each) → decode (cpu) → resize+normalise (cpu) → batch {BATCH} → collate (cpu), {} CPU workers",
        files.len(),
        dir.display(),
        args.read_threads,
        args.read_latency,
        args.workers
    );
    let latency = args.read_latency;
    let paths = files.clone();
    let mut builder = Pipeline::from_sampler(files.len(), Sampler::shuffled(7))
        .try_map(
            Stage::blocking("read", args.read_threads),
            move |i: usize| read(&paths[i], latency),
        )
        .try_map(Stage::cpu("decode"), |bytes: Vec<u8>| {
            image::load_from_memory(&bytes).map_err(|e| e.to_string())
        })
        .map(Stage::cpu("resize"), |img: image::DynamicImage| {
            normalise(&img)
        })
        .batch(BATCH, Remainder::Partial)
        .map(Stage::cpu("collate"), |batch: Vec<Vec<f32>>| batch.concat())
        .workers(args.workers)
        .log_every(Duration::from_secs(1));
    if let Some(t) = &args.trace {
        builder = builder.trace(t);
    }
    let mut pipeline = match builder.build() {
        Ok(p) => p,
        Err(e) => usage_error(&e.to_string()),
    };
    let t = Instant::now();
    let (mut images, mut failed) = (0, 0);
    for batch in pipeline.epoch(0) {
        match batch {
            Ok(b) => {
                assert_eq!(b.len() % (3 * (SIDE * SIDE) as usize), 0);
                images += b.len() / (3 * (SIDE * SIDE) as usize);
            }
            Err(e) => {
                eprintln!("{e}");
                failed += 1;
            }
        }
    }
    println!(
        "{images} images in {:.2} s = {:.1} images/s ({failed} failed batches)\n",
        t.elapsed().as_secs_f64(),
        images as f64 / t.elapsed().as_secs_f64()
    );
    let report = pipeline.report().expect("a finished epoch");
    println!("{report}");
    if let Some(t) = &args.trace {
        println!("\ntrace: {} (replay a stage with `schedlab run --workload 'trace(file={},stage=decode)'`)", t.display(), t.display());
    }
}
