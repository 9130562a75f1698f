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

use std::path::{Path, PathBuf};
use std::time::Instant;

use image::imageops::FilterType;
use image::{Rgb, RgbImage};
use loader::{Builder, Loader, LoaderError};
use scheduler::SmallRng;

const SIDE: u32 = 224;
const BATCH: usize = 16;
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

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

/// Write `n` images of widely varying sizes (log-uniform sides), half PNG and half JPEG.
fn write_images(dir: &Path, n: usize) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let jobs: Vec<usize> = (0..n).collect();
    let threads = std::thread::available_parallelism().map_or(1, |p| p.get());
    std::thread::scope(|s| {
        for part in jobs.chunks(n.div_ceil(threads).max(1)) {
            s.spawn(move || {
                for &i in part {
                    let mut rng = SmallRng::for_stream(2024, i as u64);
                    let mut side = || (64.0 * 25f64.powf(rng.unit_f64())) as u32; // 64..1600
                    let (w, h) = (side(), side());
                    let mut noise = SmallRng::for_stream(7, i as u64);
                    let img = RgbImage::from_fn(w, h, |x, y| {
                        let r = noise.next_u64();
                        Rgb([
                            ((x * 255 / w) as u8).wrapping_add(r as u8 & 31),
                            ((y * 255 / h) as u8).wrapping_add((r >> 8) as u8 & 31),
                            (((x + y) * 97 / (w + h)) as u8).wrapping_add((r >> 16) as u8 & 63),
                        ])
                    });
                    let ext = if i % 2 == 0 { "png" } else { "jpg" };
                    img.save(dir.join(format!("img{i:04}.{ext}")))
                        .expect("writing a generated image");
                }
            });
        }
    });
    Ok(())
}

fn list_images(dir: &Path) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => usage_error(&format!("folder {}: {e}", dir.display())),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension()
                    .and_then(|e| e.to_str())
                    .map(str::to_ascii_lowercase)
                    .as_deref(),
                Some("png" | "jpg" | "jpeg")
            )
        })
        .collect();
    files.sort();
    files
}

/// Decode, resize to 224×224 and normalise one file into CHW f32.
fn load_image(path: &Path) -> Result<Vec<f32>, String> {
    let img = image::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let rgb = img.resize_exact(SIDE, SIDE, FilterType::Triangle).to_rgb8();
    let plane = (SIDE * SIDE) as usize;
    let mut out = vec![0f32; 3 * plane];
    for (i, px) in rgb.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (px[c] as f32 / 255.0 - MEAN[c]) / STD[c];
        }
    }
    Ok(out)
}

/// Adjusts a builder for one configuration.
type Configure = dyn Fn(Builder<Images>) -> Builder<Images>;

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
    configure: impl FnOnce(Builder<Images>) -> Builder<Images>,
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
            let d = std::env::temp_dir().join("schedlab-loader-images");
            if !d.is_dir() || list_images(&d).len() < args.images {
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
    let files = list_images(&dir);
    if files.is_empty() {
        usage_error(&format!(
            "folder {}: no .png, .jpg or .jpeg file",
            dir.display()
        ));
    }
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

    let run =
        |label: &str, workers: usize, f: &dyn Fn(Builder<Images>) -> Builder<Images>| match epoch(
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
