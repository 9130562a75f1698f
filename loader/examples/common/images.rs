//! What the image examples share: a generated folder of PNG and JPEG files of widely varying
//! sizes, and the resize-and-normalise transform.
#![allow(dead_code)] // each example uses its part

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::{Rgb, RgbImage};
use scheduler::SmallRng;

/// Side of the resized images.
pub const SIDE: u32 = 224;
/// Images per batch.
pub const BATCH: usize = 16;
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The folder the examples generate their images in (under the system's temp directory).
pub fn default_folder() -> PathBuf {
    std::env::temp_dir().join("schedlab-loader-images")
}

/// Write `n` images of widely varying sizes (log-uniform sides), half PNG and half JPEG.
pub fn write_images(dir: &Path, n: usize) -> std::io::Result<()> {
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

/// The folder's `.png`, `.jpg` and `.jpeg` files, sorted; an error names the folder.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("folder {}: {e}", dir.display()))?;
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
    if files.is_empty() {
        return Err(format!(
            "folder {}: no .png, .jpg or .jpeg file",
            dir.display()
        ));
    }
    Ok(files)
}

/// Decode, resize to 224×224 and normalise one file into CHW f32.
pub fn load_image(path: &Path) -> Result<Vec<f32>, String> {
    let img = image::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(normalise(&img))
}

/// Resize to 224×224 and normalise into CHW f32 (ImageNet mean and standard deviation).
pub fn normalise(img: &image::DynamicImage) -> Vec<f32> {
    let rgb = img.resize_exact(SIDE, SIDE, FilterType::Triangle).to_rgb8();
    let plane = (SIDE * SIDE) as usize;
    let mut out = vec![0f32; 3 * plane];
    for (i, px) in rgb.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (px[c] as f32 / 255.0 - MEAN[c]) / STD[c];
        }
    }
    out
}
