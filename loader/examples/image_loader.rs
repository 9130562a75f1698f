//! A real loader: decode a folder of PNG and JPEG files, resize each to 224×224, normalise to
//! f32 (ImageNet mean and standard deviation, CHW layout) and collate batches of 16 into one
//! flat `Vec<f32>`; print images/s and the `LoaderReport` for several strategies, beside one
//! worker's rate times the worker count.
//!
//! With no folder it first writes a few hundred images of widely varying sizes (64 to 1,600
//! pixels a side, half PNG, half JPEG) to a folder under the system's temp directory, and
//! reuses them on the next run.
//!
//! ```text
//! cargo run --release -p loader --example image_loader [-- FOLDER] [--workers N] [--images N]
//! ```

use std::path::PathBuf;
use std::time::Instant;

use loader::{Loader, LoaderBuilder, LoaderError};

#[path = "common/images.rs"]
mod images;
use images::{list_images, load_image, write_images, BATCH, SIDE};

fn usage_error(message: &str) -> ! {
    eprintln!("image_loader: {message}");
    std::process::exit(2);
}

struct Args {
    folder: Option<PathBuf>,
    workers: usize,
    images: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        folder: None,
        workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        images: 300,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut number = |name: &str| -> usize {
            match it.next().and_then(|v| v.parse::<usize>().ok()) {
                Some(v) if v > 0 => v,
                _ => usage_error(&format!("{name} needs a whole number >= 1")),
            }
        };
        match a.as_str() {
            "--workers" => args.workers = number("--workers"),
            "--images" => args.images = number("--images"),
            flag if flag.starts_with("--") => usage_error(&format!(
                "unknown flag '{flag}'; allowed: --workers N, --images N, and a folder"
            )),
            folder => args.folder = Some(PathBuf::from(folder)),
        }
    }
    args
}

/// Adjusts a builder for one configuration.
type Configure = dyn Fn(LoaderBuilder<Images>) -> LoaderBuilder<Images>;

type Images = loader::FromFn<Box<dyn Fn(usize) -> Result<Vec<f32>, String> + Send + Sync>>;

fn dataset(files: &[PathBuf]) -> Images {
    let files = files.to_vec();
    loader::from_fn(
        files.len(),
        Box::new(move |i: usize| load_image(&files[i])) as Box<dyn Fn(usize) -> _ + Send + Sync>,
    )
}

/// One epoch under one configuration: images/s and the report.
fn epoch(
    files: &[PathBuf],
    workers: usize,
    configure: impl FnOnce(LoaderBuilder<Images>) -> LoaderBuilder<Images>,
) -> Result<(f64, loader::LoaderReport), LoaderError> {
    let mut l = configure(
        Loader::builder(dataset(files))
            .batch_size(BATCH)
            .workers(workers),
    )
    .collate(|samples: Vec<Vec<f32>>| samples.concat())
    .prefetch_next_epoch(false)
    .build()?;
    let t = Instant::now();
    let mut images = 0;
    for batch in l.epoch(0) {
        let batch = batch?;
        assert_eq!(
            batch.data.len(),
            batch.indices.len() * 3 * (SIDE * SIDE) as usize
        );
        images += batch.indices.len();
    }
    let rate = images as f64 / t.elapsed().as_secs_f64();
    Ok((rate, l.report().expect("a finished epoch").clone()))
}

fn main() {
    let args = parse_args();
    let dir = match &args.folder {
        Some(d) => d.clone(),
        None => {
            let d = images::default_folder();
            if list_images(&d).map_or(0, |f| f.len()) < args.images {
                let t = Instant::now();
                if let Err(e) = write_images(&d, args.images) {
                    eprintln!("image_loader: cannot write images to {}: {e}", d.display());
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
    };
    let files = list_images(&dir).unwrap_or_else(|e| usage_error(&e));
    // read every file once so that no configuration pays for a cold page cache
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::read(f).map_or(0, |b| b.len() as u64))
        .sum();
    let p = args.workers;
    println!(
        "{} images ({:.1} MB) in {}, batch {BATCH}, resized to {SIDE}×{SIDE}, {p} workers",
        files.len(),
        bytes as f64 / 1e6,
        dir.display()
    );

    let run = |label: &str,
               workers: usize,
               f: &dyn Fn(LoaderBuilder<Images>) -> LoaderBuilder<Images>| match epoch(
        &files, workers, f,
    ) {
        Ok(r) => {
            println!("{label}: {:.1} images/s", r.0);
            Some(r)
        }
        Err(e) => {
            eprintln!("image_loader: {label}: {e}");
            std::process::exit(1);
        }
    };
    let (one, _) = run("1 worker (baseline)", 1, &|b| b.strategy("central")).expect("ran");
    println!("one worker × {p} = {:.1} images/s\n", one * p as f64);
    let configs: [(&str, &Configure); 4] = [
        ("PyTorch-style (batch, round-robin)", &|b| b.pytorch_style()),
        ("work-stealing, sample, ordered", &|b| {
            b.strategy("work-stealing")
        }),
        ("central, sample, ordered", &|b| b.strategy("central")),
        ("work-stealing, sample, as ready", &|b| {
            b.strategy("work-stealing").ordered(false)
        }),
    ];
    for (label, f) in configs {
        if let Some((rate, report)) = run(label, p, f) {
            println!("  = {:.2} of one worker × {p}", rate / (one * p as f64));
            println!("{report}\n");
        }
    }
}
